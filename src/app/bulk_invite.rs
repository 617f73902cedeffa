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
use super::chunk::{
    ChunkWork, invitations_by_student, row_context, stored_responses, students_to_lock,
};
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
    InvitationState, StudentRef, UserId,
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

/// A chunk of a bulk invitation: whose, and how its answers are kept.
pub(super) struct InviteWork<'a> {
    /// Who invites.
    pub caller: &'a Caller,
    /// Check and roll back.
    pub dry_run: bool,
    /// The answers' stored form.
    pub encode: Encoder<'a, InvitationView>,
}

#[async_trait::async_trait]
impl ChunkWork for InviteWork<'_> {
    type Row = InviteRow;
    type Out = InvitationView;

    async fn write_in(
        &self,
        app: &App,
        tx: &mut dyn Transaction,
        rows: &[InviteRow],
    ) -> AppResult<(Vec<RowOutcome<InvitationView>>, Vec<UserId>)> {
        let mode = InviteMode {
            dry_run: self.dry_run,
            source: InvitationSource::Manual,
        };
        app.invite_rows_in(tx, self.caller, rows, mode, self.encode)
            .await
    }

    async fn one(&self, app: &App, row: &InviteRow) -> RowOutcome<InvitationView> {
        app.invite_row(self.caller, row, self.dry_run, self.encode)
            .await
    }
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
    /// One row on the single-invitation path: its own transaction.
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

    /// Checks every row and writes the accepted ones into `tx` (bulk invitations, and the
    /// invitations of a sync): one outcome per row, in row order, and the students locked.
    pub(super) async fn invite_rows_in(
        &self,
        tx: &mut dyn Transaction,
        caller: &Caller,
        rows: &[InviteRow],
        mode: InviteMode,
        encode: Encoder<'_, InvitationView>,
    ) -> AppResult<(Vec<RowOutcome<InvitationView>>, Vec<UserId>)> {
        let InviteMode { dry_run, source } = mode;
        if rows.is_empty() {
            return Ok((Vec::new(), Vec::new()));
        }
        let now = self.clock.now();
        // Authorization first, as on the single path: a replay answers only a caller that may
        // still manage the student.
        let asked: Vec<_> = rows
            .iter()
            .map(|row| (&row.student, StudentAccess::Manage))
            .collect();
        let decided = self.decide_rows(tx, caller, &asked).await?;
        let locked = students_to_lock(&decided);
        let mut addresses: Vec<Email> = rows
            .iter()
            .zip(&decided)
            .filter(|(_, d)| d.is_ok())
            .map(|(row, _)| row.email.clone())
            .collect();
        addresses.sort();
        addresses.dedup();
        tx.lock_students(&locked).await?;
        tx.lock_addresses(&addresses).await?;
        let stored = stored_responses(tx, rows.iter().map(|r| r.key.as_ref())).await?;
        let mut records = invitations_by_student(tx, &locked).await?;
        let mut address_students: HashMap<Email, HashSet<UserId>> = HashMap::new();
        for (email, student) in tx.students_of_addresses(&addresses, now).await? {
            address_students.entry(email).or_default().insert(student);
        }
        let inviter = self.display_name_of(tx, caller).await?;
        // Addresses of guardians who chose a language get their invitation in it.
        let languages: HashMap<Email, crate::domain::Locale> =
            tx.guardian_locales(&addresses).await?.into_iter().collect();
        // A dry run shows no family: it would name one that is never stored.
        let mut families = match dry_run {
            true => None,
            false => Families::load(self, tx, &addresses, now).await?,
        };
        let mut writes = Writes::default();
        let mut outcomes = Vec::with_capacity(rows.len());
        for (row, decided) in rows.iter().zip(decided) {
            let ctx = match row_context(decided, &stored, row.key.as_ref()) {
                Ok(ctx) => ctx,
                Err(answered) => {
                    outcomes.push(answered);
                    continue;
                }
            };
            let ctx = &ctx;
            let student = &ctx.student.user_id;
            let list = records.entry(student.clone()).or_default();
            let addressed = address_students.entry(row.email.clone()).or_default();
            let stand_in = self.stand_in(&row.email);
            let checked = check_row(ctx, list, addressed, &row.email, &stand_in, now);
            let stale = match checked {
                Ok(stale) => stale,
                Err(error) => {
                    outcomes.push(Err(error));
                    continue;
                }
            };
            let request_id = row.key.as_ref().map(|k| k.request_id.as_str());
            for invitation in stale {
                // A PENDING row past its expiry still holds the one-pending index: settle it
                // first (rare, so one statement each is fine).
                let id = invitation.id;
                let expired = expire(tx, invitation, request_id, now).await?;
                if let Some(slot) = list.iter_mut().find(|i| i.id == id) {
                    *slot = expired;
                }
            }
            let (mut invitation, token) = new_invitation(caller, ctx, &row.email, source, now);
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
            outcomes.push(Ok(Replay::Fresh(view)));
        }
        if let Some(families) = families {
            families.store(tx).await?;
        }
        tx.insert_invitations(&writes.invitations).await?;
        tx.append_events(&writes.events).await?;
        tx.enqueue_messages(&writes.messages).await?;
        tx.put_idempotency_many(&writes.responses).await?;
        Ok((outcomes, locked))
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
