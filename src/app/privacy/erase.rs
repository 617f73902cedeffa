//! ErasePersonData: a guardian's links and pending invitations end (GUARDIAN_ERASED), a
//! student leaves the directory (as DeleteUsers), and every record about the person gets the
//! stand-ins retention gives (docs/privacy.md), all in one transaction under the students'
//! locks, so a crash leaves either nothing or all of it.

use super::super::access::require;
use super::super::directory::directory_event;
use super::super::idempotency::{Encoder, Replay, RequestKey, commit_with, replayed};
use super::super::lifecycle::audit;
use super::super::pseudonyms::is_stand_in;
use super::super::retention::anonymise;
use super::super::{App, AppResult};
use super::gather::{self, PersonRecords, PersonSelector};
use crate::auth::Authorized;
use crate::domain::audit::actions;
use crate::domain::policy::Permission;
use crate::domain::{AuditDetails, Caller, InvitationEvent, InvitationState, UserId, transition};
use crate::store::Transaction;
use chrono::{DateTime, Utc};
use std::collections::BTreeSet;

/// What an erasure did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Erased {
    /// Accepted links that ended.
    pub links_removed: u32,
    /// Pending invitations that ended.
    pub invitations_cancelled: u32,
    /// Invitations whose personal data was replaced by stand-ins.
    pub invitations_anonymised: u32,
    /// Queued emails to the person that will not be sent.
    pub messages_cancelled: u32,
    /// Nothing identifiable was left to erase.
    pub already_erased: bool,
}

impl App {
    /// ErasePersonData. A retry with the same request id gets the first response.
    pub async fn erase_person(
        &self,
        who: &Authorized,
        person: &PersonSelector,
        key: Option<&RequestKey>,
        encode: Encoder<'_, Erased>,
    ) -> AppResult<Replay<Erased>> {
        let caller = require(who, Permission::PrivacyAdmin)?;
        if let Some(bytes) = self.replay_before(key).await? {
            return Ok(Replay::Replayed(bytes));
        }
        let now = self.clock.now();
        let mut tx = self.store.begin().await?;
        // Read once to learn whose locks to take, then again under them: a link accepted in
        // between is erased too.
        let first = gather::gather(tx.as_mut(), caller, person).await?;
        let mut students: Vec<UserId> = match person {
            PersonSelector::Student(student) => vec![student.clone()],
            PersonSelector::Guardian(_) | PersonSelector::GuardianEmail(_) => first
                .invitations
                .iter()
                .map(|i| i.student_id.clone())
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect(),
        };
        tx.lock_students(&students).await?;
        if let Some(bytes) = match key {
            Some(key) => replayed(tx.as_mut(), key).await?,
            None => None,
        } {
            return Ok(Replay::Replayed(bytes));
        }
        let mut records = gather::gather(tx.as_mut(), caller, person).await?;
        // A link accepted for another student between the two reads: its student is locked
        // too, and the records read once more, so its write is not refused as a conflict.
        let extra: Vec<UserId> = records
            .invitations
            .iter()
            .map(|i| i.student_id.clone())
            .filter(|s| !students.contains(s))
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        if !extra.is_empty() {
            tx.lock_students(&extra).await?;
            students.extend(extra);
            records = gather::gather(tx.as_mut(), caller, person).await?;
        }
        let erased = if records.is_empty() {
            gather::erased_before(tx.as_mut(), caller, person, &self.config.pseudonyms).await?;
            Erased {
                already_erased: true,
                ..Erased::default()
            }
        } else {
            let request_id = key.map(|k| k.request_id.as_str());
            let done = self
                .erase_records(tx.as_mut(), caller, person, &records, request_id, now)
                .await?;
            for domain in records.domains() {
                let details = AuditDetails::counts([
                    ("guardians", i64::from(person.is_guardian())),
                    ("students", i64::from(!person.is_guardian())),
                    ("links_removed", i64::from(done.links_removed)),
                    (
                        "invitations_cancelled",
                        i64::from(done.invitations_cancelled),
                    ),
                    (
                        "invitations_anonymised",
                        i64::from(done.invitations_anonymised),
                    ),
                    ("messages_cancelled", i64::from(done.messages_cancelled)),
                ]);
                let mut event =
                    directory_event(&domain, actions::PERSON_ERASED, caller, details, now);
                event.request_id = request_id.map(str::to_owned);
                tx.append_event(&event).await?;
            }
            done
        };
        let result = commit_with(self, tx, &students, key, now, erased, encode).await?;
        metrics::counter!("guardians_privacy_requests_total", "request" => "erase").increment(1);
        Ok(result)
    }

    async fn erase_records(
        &self,
        tx: &mut dyn Transaction,
        caller: &Caller,
        person: &PersonSelector,
        records: &PersonRecords,
        request_id: Option<&str>,
        now: DateTime<Utc>,
    ) -> AppResult<Erased> {
        let stand_ins = &self.config.pseudonyms;
        let actor = caller.subject.as_str();
        let mut done = Erased::default();
        let event = match person {
            PersonSelector::Student(_) => InvitationEvent::RemoveStudent,
            PersonSelector::Guardian(_) | PersonSelector::GuardianEmail(_) => {
                InvitationEvent::EraseGuardian
            }
        };
        for invitation in &records.invitations {
            let observed = invitation.observed_state(now);
            if matches!(
                observed,
                InvitationState::Pending | InvitationState::Accepted
            ) {
                let mut next = invitation.clone();
                next.state = transition(observed, event)?;
                next.update_time = now;
                tx.update_invitation(&next, invitation.version).await?;
                audit(tx, &next, event.audit_action(), actor, request_id, now).await?;
                if observed == InvitationState::Accepted {
                    done.links_removed += 1;
                } else {
                    done.invitations_cancelled += 1;
                }
            }
            if is_stand_in(&invitation.invited_email) {
                continue;
            }
            let stand_in = anonymise(tx, stand_ins, invitation, now).await?;
            done.invitations_anonymised += 1;
            if let (Some(profile), Some(stand_in)) = (&invitation.guardian, &stand_in) {
                tx.replace_event_actor(invitation, profile.guardian_id.as_str(), stand_in.as_str())
                    .await?;
            }
        }
        for message in &records.messages {
            let stand_in = stand_ins.email(&message.recipient);
            if tx
                .erase_message(&message.message_id, Some(&stand_in))
                .await?
            {
                done.messages_cancelled += 1;
            }
        }
        // Mail to others that may name the person: not sent any more, its bodies gone.
        for message in &records.related_messages {
            tx.erase_message(&message.message_id, None).await?;
        }
        if let Some(student) = &records.student {
            // As DeleteUsers: the directory record goes (its classes with it), and with it
            // the hand-in states summaries were made of.
            tx.delete_submissions_of(&student.user_id).await?;
            tx.delete_user(&student.user_id).await?;
        }
        if records.whole_person && person.is_guardian() {
            for address in &records.addresses {
                tx.erase_address(address, &stand_ins.email(address)).await?;
            }
            for id in &records.guardian_ids {
                // The principal key a guardian's own requests were stored under.
                let principal = format!("guardian::{}", id.as_str());
                tx.erase_guardian_account(id, &stand_ins.user_id(id), &principal)
                    .await?;
            }
        }
        Ok(done)
    }
}
