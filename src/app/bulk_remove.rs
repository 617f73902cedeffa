//! Set-based BulkDeleteGuardians. A chunk of rows is one transaction of about ten statements,
//! whatever its size: the students resolved and authorized as the single call would (each
//! row's access is its own: a row naming a guardian by id is a DeleteLink), locked in id
//! order; their invitations, the stored first responses and the addressees' languages read
//! in one query each; each row then ends, in memory and in row order, the link and the
//! pending invitations it names (a later row of the same pair finds them ended), and the
//! chunk's ends, audit events, emails and first responses are written with one statement
//! each. The ends are one compare-and-set write: should a row have changed underneath (the
//! expiry sweep takes no student lock), or the database refuse the set, the chunk is rolled
//! back and its rows take the single removal path one by one, so each gets its own answer.

use super::bulk::{GuardianSelector, RowOutcome};
use super::chunk::{
    ChunkWork, invitations_by_student, row_context, stored_responses, students_to_lock,
};
use super::guardians::{Removal, RemovalTarget};
use super::idempotency::{Encoder, Replay, RequestKey, first_response};
use super::lifecycle::{audit_event, cancellation_notice, removal_notice};
use super::write::Reply;
use super::{App, AppError, AppResult, Missing};
use crate::domain::policy::StudentAccess;
use crate::domain::{
    AuditEvent, Caller, Email, IdempotencyRecord, Invitation, InvitationEvent, InvitationState,
    Locale, OutboxMessage, StudentRef, UserId, transition,
};
use crate::store::{EndedInvitation, Transaction};
use chrono::{DateTime, Utc};
use std::collections::HashMap;

/// One parsed row of a bulk removal.
pub(super) struct RemoveRow {
    /// Its position in the request.
    pub index: usize,
    /// The student it names.
    pub student: StudentRef,
    /// The guardian it names.
    pub guardian: GuardianSelector,
    /// Its own request key (none for a dry run or a request without an id).
    pub key: Option<RequestKey>,
}

impl RemoveRow {
    /// What the row asks of the student: naming a guardian by id is removing that link (which
    /// the guardian may do themselves); by address, managing the student's guardians.
    fn access(&self) -> StudentAccess {
        match &self.guardian {
            GuardianSelector::Id(id) => StudentAccess::DeleteLink(id.clone()),
            GuardianSelector::Email(_) => StudentAccess::Manage,
        }
    }
}

/// A chunk of a bulk removal: whose, how, and how its answers are kept.
pub(super) struct RemoveWork<'a> {
    /// Who removes.
    pub caller: &'a Caller,
    /// What each row ends, and whether for real.
    pub how: Removal,
    /// The answers' stored form.
    pub encode: Encoder<'a, ()>,
}

#[async_trait::async_trait]
impl ChunkWork for RemoveWork<'_> {
    type Row = RemoveRow;
    type Out = ();

    async fn write_in(
        &self,
        app: &App,
        tx: &mut dyn Transaction,
        rows: &[RemoveRow],
    ) -> AppResult<(Vec<RowOutcome<()>>, Vec<UserId>)> {
        app.remove_rows_in(tx, self.caller, rows, self.how, self.encode)
            .await
    }

    async fn one(&self, app: &App, row: &RemoveRow) -> RowOutcome<()> {
        app.remove_row(self.caller, row, self.how, self.encode)
            .await
    }
}

/// What the rows of a chunk write.
#[derive(Default)]
struct Writes {
    ended: Vec<EndedInvitation>,
    events: Vec<AuditEvent>,
    messages: Vec<OutboxMessage>,
    responses: Vec<IdempotencyRecord>,
}

/// The languages the chunk's emails are written in, where the addressee chose one.
struct Languages {
    of_addresses: HashMap<Email, Locale>,
    of_guardians: HashMap<UserId, Locale>,
}

impl App {
    /// One row on the single removal path: its own transaction.
    async fn remove_row(
        &self,
        caller: &Caller,
        row: &RemoveRow,
        how: Removal,
        encode: Encoder<'_, ()>,
    ) -> RowOutcome<()> {
        let mut tx = self.store.begin().await?;
        let ctx = self
            .authorize_in(tx.as_mut(), caller, &row.student, row.access())
            .await?;
        let target = match &row.guardian {
            GuardianSelector::Id(id) => RemovalTarget::Id(id.clone()),
            GuardianSelector::Email(email) => RemovalTarget::Email(email.clone()),
        };
        let reply = Reply {
            key: row.key.as_ref(),
            encode,
        };
        self.remove_link(tx, caller, &ctx, &target, how, reply)
            .await
    }

    /// Decides every row and writes the ends into `tx` (bulk removals, and the removals of a
    /// sync): one outcome per row, in row order, and the students locked.
    pub(super) async fn remove_rows_in(
        &self,
        tx: &mut dyn Transaction,
        caller: &Caller,
        rows: &[RemoveRow],
        how: Removal,
        encode: Encoder<'_, ()>,
    ) -> AppResult<(Vec<RowOutcome<()>>, Vec<UserId>)> {
        if rows.is_empty() {
            return Ok((Vec::new(), Vec::new()));
        }
        let now = self.clock.now();
        let asked: Vec<_> = rows
            .iter()
            .map(|row| (&row.student, row.access()))
            .collect();
        let decided = self.decide_rows(tx, caller, &asked).await?;
        let locked = students_to_lock(&decided);
        tx.lock_students(&locked).await?;
        let stored = stored_responses(tx, rows.iter().map(|r| r.key.as_ref())).await?;
        let mut records = invitations_by_student(tx, &locked).await?;
        let languages = self.languages_of(tx, rows, &records).await?;
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
            let list = records.entry(ctx.student.user_id.clone()).or_default();
            let (link, pending) = pick(list, &row.guardian, how, now);
            if link.is_none() && pending.is_empty() && !how.allow_missing {
                outcomes.push(Err(AppError::NotFound(if how.what.link() {
                    Missing::Guardian
                } else {
                    Missing::Invitation
                })));
                continue;
            }
            let request_id = row.key.as_ref().map(|k| k.request_id.as_str());
            let name = ctx.student.display_name.as_str();
            for index in pending {
                let cancelled = end(&mut list[index], InvitationEvent::Cancel, now, &mut writes)?;
                let locale = languages
                    .of_addresses
                    .get(&cancelled.invited_email)
                    .copied();
                let notice = cancellation_notice(&ctx.settings, name, &cancelled, locale, now)?;
                writes.messages.extend(notice);
                let action = InvitationEvent::Cancel.audit_action();
                let event = audit_event(&cancelled, action, &caller.subject, request_id, now);
                writes.events.push(event);
            }
            if let Some(index) = link {
                let event = InvitationEvent::DeleteGuardian;
                let removed = end(&mut list[index], event, now, &mut writes)?;
                let locale = removed
                    .guardian
                    .as_ref()
                    .and_then(|g| languages.of_guardians.get(&g.guardian_id).copied());
                let notice = removal_notice(&ctx.settings, name, &removed, locale, now)?;
                writes.messages.extend(notice);
                let action = event.audit_action();
                let event = audit_event(&removed, action, &caller.subject, request_id, now);
                writes.events.push(event);
            }
            if let Some(key) = &row.key {
                writes.responses.push(first_response(key, encode(&()), now));
            }
            outcomes.push(Ok(Replay::Fresh(())));
        }
        let written = tx.end_invitations(&writes.ended).await?;
        if written != writes.ended.len() as u64 {
            return Err(AppError::Unavailable(
                "an invitation of the chunk changed underneath".into(),
            ));
        }
        tx.append_events(&writes.events).await?;
        tx.enqueue_messages(&writes.messages).await?;
        tx.put_idempotency_many(&writes.responses).await?;
        Ok((outcomes, locked))
    }

    /// The languages chosen by the addresses the rows name (their pending invitations'
    /// cancellations) and by the guardians of the students' links (their removal notices),
    /// in one query each.
    async fn languages_of(
        &self,
        tx: &mut dyn Transaction,
        rows: &[RemoveRow],
        records: &HashMap<UserId, Vec<Invitation>>,
    ) -> AppResult<Languages> {
        let mut addresses: Vec<Email> = rows
            .iter()
            .filter_map(|row| match &row.guardian {
                GuardianSelector::Email(email) => Some(email.clone()),
                GuardianSelector::Id(_) => None,
            })
            .collect();
        addresses.sort();
        addresses.dedup();
        let mut guardians: Vec<UserId> = records
            .values()
            .flatten()
            .filter(|i| i.state == InvitationState::Accepted)
            .filter_map(|i| i.guardian.as_ref().map(|g| g.guardian_id.clone()))
            .collect();
        guardians.sort();
        guardians.dedup();
        let of_addresses = tx.guardian_locales(&addresses).await?.into_iter().collect();
        let of_guardians = tx
            .summary_preferences_of(&guardians)
            .await?
            .into_iter()
            .filter_map(|p| p.locale.map(|locale| (p.guardian_id, locale)))
            .collect();
        Ok(Languages {
            of_addresses,
            of_guardians,
        })
    }
}

/// Which of a student's invitations a row ends: the link of the guardian it names (by account
/// id, or by invited or profile address) and, by address, the pending invitations to it, as
/// far as the removal asks for each. An account id names no invitation.
fn pick(
    list: &[Invitation],
    guardian: &GuardianSelector,
    how: Removal,
    now: DateTime<Utc>,
) -> (Option<usize>, Vec<usize>) {
    let link = list.iter().position(|i| {
        how.what.link()
            && i.state == InvitationState::Accepted
            && match guardian {
                GuardianSelector::Id(id) => {
                    i.guardian.as_ref().is_some_and(|g| &g.guardian_id == id)
                }
                GuardianSelector::Email(email) => {
                    &i.invited_email == email
                        || i.guardian.as_ref().is_some_and(|g| &g.email == email)
                }
            }
    });
    let pending = match guardian {
        GuardianSelector::Email(email) if how.what.pending() => list
            .iter()
            .enumerate()
            .filter(|(_, i)| {
                i.observed_state(now) == InvitationState::Pending && &i.invited_email == email
            })
            .map(|(index, _)| index)
            .collect(),
        _ => Vec::new(),
    };
    (link, pending)
}

/// Ends `invitation` by `event` in memory (the chunk's later rows see it ended) and notes the
/// guarded write; returns the ended invitation.
fn end(
    invitation: &mut Invitation,
    event: InvitationEvent,
    now: DateTime<Utc>,
    writes: &mut Writes,
) -> AppResult<Invitation> {
    let state = transition(invitation.observed_state(now), event)?;
    writes.ended.push(EndedInvitation {
        id: invitation.id,
        expected_version: invitation.version,
        state,
        update_time: now,
    });
    invitation.state = state;
    invitation.update_time = now;
    invitation.version += 1;
    Ok(invitation.clone())
}
