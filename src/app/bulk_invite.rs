//! Set-based BulkCreateGuardianInvitations. A chunk of rows is one transaction of about a dozen
//! statements, whatever its size: the students resolved in one query and authorized as the
//! single call would; the students locked in id order, then the addresses (the order every
//! writer keeps); the facts the rules need (each student's invitations, each address's
//! students, the stored first responses) read in three queries; the rules of
//! `domain::invite_rules` run in memory row by row, in row order, each row seeing the rows
//! before it; the accepted rows' invitations, audit events, emails and first responses
//! written with one multi-row insert each. A row that breaks a rule fails alone and writes
//! nothing. Should the database refuse the set (a failure before commit), the chunk is rolled
//! back and its rows take the single-invitation path one by one, so each gets its own answer.

use super::bulk::RowOutcome;
use super::families::Families;
use super::idempotency::{Encoder, Replay, RequestKey, first_response};
use super::invitations::{InviteMode, new_invitation};
use super::lifecycle::{InvitationLetter, audit_event, expire};
use super::read_models::{InvitationView, StudentLabel};
use super::students::StudentContext;
use super::write::Reply;
use super::{App, AppError, AppResult};
use crate::domain::invite_rules::InviteFacts;
use crate::domain::policy::StudentAccess;
use crate::domain::{
    Caller, DeliveryStatus, Email, IdempotencyRecord, Invitation, InvitationSource,
    InvitationState, Role, StudentRef, User, UserId,
};
use crate::mail::Template;
use crate::store::Transaction;
use chrono::{DateTime, Utc};
use std::collections::{HashMap, HashSet};

/// Rows in one set-based transaction: few enough that the largest insert (16 values per
/// invitation) stays far below either backend's limit on bound parameters, and a chunk's
/// locks are held for milliseconds.
pub(super) const CHUNK_ROWS: usize = 500;

/// One parsed row of a bulk invitation.
pub(super) struct InviteRow {
    /// Its position in the request.
    pub index: usize,
    /// The student it names.
    pub student: StudentRef,
    /// The address to invite.
    pub email: Email,
    /// Its own request key (none for a dry run or a request without an id).
    pub key: Option<RequestKey>,
}

/// A chunk checked and written, not yet committed.
struct Planned {
    tx: Box<dyn Transaction>,
    outcomes: Vec<RowOutcome<InvitationView>>,
    students: Vec<UserId>,
}

/// What the accepted rows of a chunk write.
#[derive(Default)]
struct Writes {
    invitations: Vec<Invitation>,
    events: Vec<crate::domain::AuditEvent>,
    messages: Vec<crate::domain::OutboxMessage>,
    responses: Vec<IdempotencyRecord>,
}

impl App {
    /// Invites the rows of one chunk: one outcome per row, in row order.
    pub(super) async fn invite_chunk(
        &self,
        caller: &Caller,
        rows: &[InviteRow],
        dry_run: bool,
        encode: Encoder<'_, InvitationView>,
    ) -> Vec<RowOutcome<InvitationView>> {
        let Planned {
            tx,
            outcomes,
            students,
        } = match self.plan_chunk(caller, rows, dry_run, encode).await {
            Ok(planned) => planned,
            Err(error) => {
                tracing::warn!(%error, rows = rows.len(), "a bulk chunk failed as a set; inviting its rows one by one");
                return self.invite_one_by_one(caller, rows, dry_run, encode).await;
            }
        };
        if dry_run {
            // Dropping the transaction rolls everything back.
            return outcomes;
        }
        match tx.commit().await {
            Ok(()) => {
                for student in &students {
                    self.freshness.forget_student(student);
                }
                outcomes
            }
            // The commit's fate is unknown: a retry with the same request id replays what
            // did commit and does the rest.
            Err(error) => {
                let text = format!("the chunk's commit failed ({error}); retry the request");
                outcomes
                    .into_iter()
                    .map(|outcome| match outcome {
                        Ok(Replay::Fresh(_)) => Err(AppError::Unavailable(text.clone())),
                        other => other,
                    })
                    .collect()
            }
        }
    }

    /// The single-invitation path for each row, in row order.
    async fn invite_one_by_one(
        &self,
        caller: &Caller,
        rows: &[InviteRow],
        dry_run: bool,
        encode: Encoder<'_, InvitationView>,
    ) -> Vec<RowOutcome<InvitationView>> {
        let mut outcomes = Vec::with_capacity(rows.len());
        for row in rows {
            outcomes.push(self.invite_row(caller, row, dry_run, encode).await);
        }
        outcomes
    }

    async fn invite_row(
        &self,
        caller: &Caller,
        row: &InviteRow,
        dry_run: bool,
        encode: Encoder<'_, InvitationView>,
    ) -> RowOutcome<InvitationView> {
        let mut tx = self.store.begin().await?;
        let ctx = self
            .authorize_in(tx.as_mut(), caller, &row.student, StudentAccess::Manage)
            .await?;
        let reply = Reply {
            key: row.key.as_ref(),
            encode,
        };
        let mode = InviteMode {
            dry_run,
            source: InvitationSource::Manual,
        };
        self.invite(tx, caller, &ctx, &row.email, reply, mode).await
    }

    /// Checks every row and writes the accepted ones, inside one transaction left open.
    async fn plan_chunk(
        &self,
        caller: &Caller,
        rows: &[InviteRow],
        dry_run: bool,
        encode: Encoder<'_, InvitationView>,
    ) -> AppResult<Planned> {
        let now = self.clock.now();
        let mut tx = self.store.begin().await?;
        let students = resolve_students(tx.as_mut(), rows).await?;
        // Authorization first, as on the single path: a replay answers only a caller that may
        // still manage the student.
        let mut outcomes: Vec<Option<RowOutcome<InvitationView>>> = Vec::with_capacity(rows.len());
        let mut contexts: HashMap<UserId, StudentContext> = HashMap::new();
        let mut row_students: Vec<Option<UserId>> = Vec::with_capacity(rows.len());
        for student in students {
            let known = student
                .as_ref()
                .and_then(|s| contexts.get(&s.user_id))
                .cloned();
            let decided = match known {
                Some(ctx) => Ok(ctx),
                None => {
                    self.decide_for(tx.as_mut(), caller, student, StudentAccess::Manage)
                        .await
                }
            };
            match decided {
                Ok(ctx) => {
                    row_students.push(Some(ctx.student.user_id.clone()));
                    contexts.insert(ctx.student.user_id.clone(), ctx);
                    outcomes.push(None);
                }
                Err(error) => {
                    row_students.push(None);
                    outcomes.push(Some(Err(error)));
                }
            }
        }
        let mut locked: Vec<UserId> = contexts.keys().cloned().collect();
        locked.sort();
        let mut addresses: Vec<Email> = rows
            .iter()
            .zip(&row_students)
            .filter(|(_, s)| s.is_some())
            .map(|(row, _)| row.email.clone())
            .collect();
        addresses.sort();
        addresses.dedup();
        tx.lock_students(&locked).await?;
        tx.lock_addresses(&addresses).await?;
        let stored = stored_responses(tx.as_mut(), rows).await?;
        let mut records: HashMap<UserId, Vec<Invitation>> = HashMap::new();
        for invitation in tx.invitations_of_students(&locked).await? {
            records
                .entry(invitation.student_id.clone())
                .or_default()
                .push(invitation);
        }
        let mut address_students: HashMap<Email, HashSet<UserId>> = HashMap::new();
        for (email, student) in tx.students_of_addresses(&addresses, now).await? {
            address_students.entry(email).or_default().insert(student);
        }
        let inviter = self.display_name_of(tx.as_mut(), caller).await?;
        // Addresses of guardians who chose a language get their invitation in it.
        let languages: HashMap<Email, crate::domain::Locale> =
            tx.guardian_locales(&addresses).await?.into_iter().collect();
        // A dry run shows no family: it would name one that is never stored.
        let mut families = match dry_run {
            true => None,
            false => Families::load(self, tx.as_mut(), &addresses, now).await?,
        };
        let mut writes = Writes::default();
        for ((row, student), outcome) in rows.iter().zip(&row_students).zip(&mut outcomes) {
            let Some(student) = student else { continue };
            if let Some(key) = &row.key
                && let Some(record) = stored.get(&key.request_id)
            {
                *outcome = Some(
                    if record.method == key.method && record.request_hash == key.request_hash {
                        Ok(Replay::Replayed(record.response.clone()))
                    } else {
                        Err(AppError::RequestIdReused)
                    },
                );
                continue;
            }
            let ctx = &contexts[student];
            let list = records.entry(student.clone()).or_default();
            let addressed = address_students.entry(row.email.clone()).or_default();
            let stand_in = self.stand_in(&row.email);
            let checked = check_row(ctx, list, addressed, &row.email, &stand_in, now);
            let stale = match checked {
                Ok(stale) => stale,
                Err(error) => {
                    *outcome = Some(Err(error));
                    continue;
                }
            };
            let request_id = row.key.as_ref().map(|k| k.request_id.as_str());
            for invitation in stale {
                // A PENDING row past its expiry still holds the one-pending index: settle it
                // first (rare, so one statement each is fine).
                let id = invitation.id;
                let expired = expire(tx.as_mut(), invitation, request_id, now).await?;
                if let Some(slot) = list.iter_mut().find(|i| i.id == id) {
                    *slot = expired;
                }
            }
            let (mut invitation, token) =
                new_invitation(caller, ctx, &row.email, InvitationSource::Manual, now);
            if let Some(families) = &mut families {
                families.join(&mut invitation, now);
            }
            list.push(invitation.clone());
            addressed.insert(student.clone());
            writes.events.push(audit_event(
                &invitation,
                "invitation.created",
                &caller.subject,
                request_id,
                now,
            ));
            let letter = InvitationLetter {
                template: Template::Invitation,
                settings: &ctx.settings,
                invitation: &invitation,
                token: &token,
                student_name: &ctx.student.display_name,
                inviter_name: &inviter,
                locale: languages.get(&row.email).copied(),
            };
            if invitation.family_id.is_none() {
                writes
                    .messages
                    .extend(self.invitation_message(&letter, now)?);
            }
            writes.invitations.push(invitation.clone());
            let view = InvitationView {
                observed_state: InvitationState::Pending,
                invitation,
                show_invited_email: ctx.grant.may_manage,
                delivery: ctx
                    .settings
                    .guardian_access_enabled
                    .then_some(DeliveryStatus::Queued),
                student: Some(StudentLabel::of(&ctx.student)),
            };
            if let Some(key) = &row.key {
                writes
                    .responses
                    .push(first_response(key, encode(&view), now));
            }
            *outcome = Some(Ok(Replay::Fresh(view)));
        }
        if let Some(families) = families {
            families.store(tx.as_mut()).await?;
        }
        tx.insert_invitations(&writes.invitations).await?;
        tx.append_events(&writes.events).await?;
        tx.enqueue_messages(&writes.messages).await?;
        tx.put_idempotency_many(&writes.responses).await?;
        let outcomes = outcomes
            .into_iter()
            .map(|o| o.unwrap_or(Err(AppError::Internal("a bulk row was not decided".into()))))
            .collect();
        Ok(Planned {
            tx,
            outcomes,
            students: locked,
        })
    }
}

/// The rules for one row against what the chunk knows so far, in the order the single path
/// checks them; on success, the student's stale PENDING invitations of the address to expire.
fn check_row(
    ctx: &StudentContext,
    records: &[Invitation],
    address_students: &HashSet<UserId>,
    invited: &Email,
    stand_in: &Email,
    now: DateTime<Utc>,
) -> AppResult<Vec<Invitation>> {
    if !ctx.settings.guardian_access_enabled {
        return Err(AppError::GuardianAccessDisabled);
    }
    if invited == &ctx.student.email {
        return Err(AppError::GuardianEmailIsStudent);
    }
    let facts = InviteFacts::of(records, invited, stand_in, now);
    facts.may_invite(i64::from(ctx.settings.max_guardians_per_student))?;
    let limit = i64::from(ctx.settings.max_students_per_guardian);
    let current = i64::try_from(address_students.len()).unwrap_or(i64::MAX);
    if current >= limit {
        return Err(AppError::GuardianStudentLimitReached { limit, current });
    }
    Ok(facts.stale.into_iter().cloned().collect())
}

/// Each row's student (`None`: unknown, or not a student), in two queries.
async fn resolve_students(
    tx: &mut dyn Transaction,
    rows: &[InviteRow],
) -> AppResult<Vec<Option<User>>> {
    let mut ids = Vec::new();
    let mut emails = Vec::new();
    for row in rows {
        match &row.student {
            StudentRef::Id(id) => ids.push(id.clone()),
            StudentRef::Email(email) => emails.push(email.clone()),
        }
    }
    // A chunk names each student several times (one row per guardian): ask once.
    ids.sort();
    ids.dedup();
    emails.sort();
    emails.dedup();
    let by_id: HashMap<UserId, User> = tx
        .users_by_id(&ids)
        .await?
        .into_iter()
        .map(|u| (u.user_id.clone(), u))
        .collect();
    let by_email: HashMap<Email, User> = tx
        .users_by_email(&emails)
        .await?
        .into_iter()
        .map(|u| (u.email.clone(), u))
        .collect();
    Ok(rows
        .iter()
        .map(|row| match &row.student {
            StudentRef::Id(id) => by_id.get(id).cloned(),
            StudentRef::Email(email) => by_email.get(email).cloned(),
        })
        .map(|user| user.filter(|u| u.role == Role::Student))
        .collect())
}

/// The stored first responses of the rows' request keys, by request id.
async fn stored_responses(
    tx: &mut dyn Transaction,
    rows: &[InviteRow],
) -> AppResult<HashMap<String, IdempotencyRecord>> {
    let Some(principal) = rows
        .iter()
        .find_map(|r| r.key.as_ref().map(|k| k.principal.clone()))
    else {
        return Ok(HashMap::new());
    };
    let ids: Vec<String> = rows
        .iter()
        .filter_map(|r| r.key.as_ref().map(|k| k.request_id.clone()))
        .collect();
    Ok(tx
        .get_idempotency_many(&principal, &ids)
        .await?
        .into_iter()
        .map(|r| (r.request_id.clone(), r))
        .collect())
}
