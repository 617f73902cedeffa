//! Retention of personal data, run by the upkeep in small batches: ended invitations past their
//! domain's `ended_retention_days` get stand-ins for their addresses and the guardian's id (see
//! [`super::pseudonyms`]), audit events and access records past `audit_retention_days` are
//! deleted, and families
//! (whose rows hold the address) go 130 days after their email. Sent mail
//! bodies are dropped when sent, request ids after a day and class activity after its look-back
//! by the rest of the upkeep.

use super::pseudonyms::Pseudonyms;
use super::{App, AppResult};
use crate::domain::{Invitation, UserId};
use crate::store::Transaction;
use chrono::{DateTime, Utc};

/// What one round of retention did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Retained {
    /// Ended invitations whose personal data was replaced by stand-ins.
    pub anonymised: usize,
    /// Audit events deleted.
    pub events_purged: u64,
    /// Families deleted, long after their email went.
    pub families_purged: u64,
    /// Access records deleted (as old as audit events).
    pub access_purged: u64,
    /// Sent or failed emails whose recipient and subject were replaced.
    pub messages_anonymised: usize,
}

/// How long a family outlives its email: past the longest an invitation of it can be accepted
/// (120 days) with a margin, after which nothing reads it.
pub(crate) const FAMILY_RETENTION_DAYS: i64 = 130;

/// How long a sent (or failed) email keeps its recipient and subject: as a family, past the
/// longest an invitation waits for its answer. Its status stays, so an invitation's delivery
/// status and a guardian's list of summaries still read it.
pub(crate) const MESSAGE_RETENTION_DAYS: i64 = 130;

impl App {
    /// Applies every domain's retention, `batch` rows per transaction, each transaction short
    /// so that writers never wait long on it.
    pub(crate) async fn apply_retention(&self, batch: u32) -> AppResult<Retained> {
        let mut done = Retained::default();
        loop {
            let now = self.clock.now();
            let mut tx = self.store.begin().await?;
            let ended = tx.claim_ended_identified(now, batch).await?;
            if ended.is_empty() {
                break;
            }
            let claimed = ended.len();
            for invitation in &ended {
                anonymise(tx.as_mut(), &self.config.pseudonyms, invitation, now).await?;
            }
            tx.commit().await?;
            done.anonymised += claimed;
            if claimed < batch as usize {
                break;
            }
        }
        let mut session = self.store.session().await?;
        loop {
            let purged = session.purge_audit_events(self.clock.now(), batch).await?;
            done.events_purged += purged;
            if purged < u64::from(batch) {
                break;
            }
        }
        loop {
            let purged = session
                .purge_access_records(self.clock.now(), batch)
                .await?;
            done.access_purged += purged;
            if purged < u64::from(batch) {
                break;
            }
        }
        drop(session);
        done.messages_anonymised = self.anonymise_old_messages(batch).await?;
        let mut session = self.store.session().await?;
        let before = self.clock.now() - chrono::TimeDelta::days(FAMILY_RETENTION_DAYS);
        loop {
            let purged = session.purge_sent_families(before, batch).await?;
            done.families_purged += purged;
            if purged < u64::from(batch) {
                break;
            }
        }
        Ok(done)
    }

    /// Gives sent and failed emails older than [`MESSAGE_RETENTION_DAYS`] a stand-in recipient
    /// and drops their subject (it names the child), `batch` per transaction. Replicas doing
    /// the same rows at once write the same stand-ins.
    async fn anonymise_old_messages(&self, batch: u32) -> AppResult<usize> {
        let mut done = 0;
        loop {
            let before = self.clock.now() - chrono::TimeDelta::days(MESSAGE_RETENTION_DAYS);
            let mut tx = self.store.begin().await?;
            let old = tx.identified_messages(before, batch).await?;
            for (message_id, recipient) in &old {
                let stand_in = self.config.pseudonyms.email(recipient);
                tx.erase_message(message_id, Some(&stand_in)).await?;
            }
            tx.commit().await?;
            done += old.len();
            if old.len() < batch as usize {
                return Ok(done);
            }
        }
    }

    /// The stand-in an address gets once its invitations are past retention: the invite rules
    /// count its declines under either.
    pub(crate) fn stand_in(&self, email: &crate::domain::Email) -> crate::domain::Email {
        self.config.pseudonyms.email(email)
    }
}

/// Replaces an invitation's invited address, and its guardian's id and address, by their
/// stand-ins and clears the guardian's name; returns the guardian's stand-in id, if it had one.
pub(crate) async fn anonymise(
    tx: &mut dyn Transaction,
    stand_ins: &Pseudonyms,
    invitation: &Invitation,
    now: DateTime<Utc>,
) -> AppResult<Option<UserId>> {
    let guardian = invitation
        .guardian
        .as_ref()
        .map(|g| (stand_ins.user_id(&g.guardian_id), stand_ins.email(&g.email)));
    tx.anonymise_invitation(
        invitation.id,
        &stand_ins.email(&invitation.invited_email),
        guardian.as_ref().map(|(id, email)| (id, email)),
        now,
    )
    .await?;
    Ok(guardian.map(|(id, _)| id))
}
