//! Background upkeep: reminding and expiring invitations, forgetting old request ids and
//! purging class activity past the summaries' look-back. Safe with any number of replicas running it at once.

use super::App;
use super::AppResult;
use super::idempotency::RETENTION;
use super::lifecycle::expire;
use crate::domain::summary::content::LOOK_BACK_DAYS;
use chrono::TimeDelta;

/// What one upkeep round did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Upkeep {
    /// Invitations moved to EXPIRED.
    pub expired: usize,
    /// Reminders sent.
    pub reminded: usize,
    /// Family emails queued (their windows closed).
    pub families: usize,
    /// Ended invitations whose personal data was replaced by stand-ins (retention).
    pub anonymised: usize,
    /// Audit events deleted (retention).
    pub events_purged: u64,
    /// Access records deleted (retention).
    pub access_records_purged: u64,
    /// Old emails whose recipient and subject were replaced (retention).
    pub messages_anonymised: usize,
    /// Request ids forgotten.
    pub purged: u64,
    /// Rows of class activity older than the summaries' look-back, deleted.
    pub activity_purged: u64,
}

impl App {
    /// One round of upkeep: expires due invitations and sends due reminders in batches of
    /// `batch` (each batch one transaction, claimed with SKIP LOCKED so replicas share the
    /// work) and purges request ids older than the retention.
    pub async fn run_upkeep(&self, batch: u32) -> AppResult<Upkeep> {
        let mut done = Upkeep {
            families: self.send_due_families(batch).await?,
            reminded: self.send_due_reminders(batch).await?,
            ..Upkeep::default()
        };
        loop {
            let now = self.clock.now();
            let mut tx = self.store.begin().await?;
            let due = tx.claim_expired_pending(now, batch).await?;
            if due.is_empty() {
                break;
            }
            let claimed = due.len();
            for invitation in due {
                expire(tx.as_mut(), invitation, None, now).await?;
            }
            tx.commit().await?;
            done.expired += claimed;
            if claimed < batch as usize {
                break;
            }
        }
        let mut session = self.store.session().await?;
        done.purged = session
            .purge_idempotency(self.clock.now() - RETENTION)
            .await?;
        done.activity_purged = session
            .purge_activity(self.clock.now() - TimeDelta::days(LOOK_BACK_DAYS))
            .await?;
        drop(session);
        let retained = self.apply_retention(batch).await?;
        done.anonymised = retained.anonymised;
        done.events_purged = retained.events_purged;
        done.access_records_purged = retained.access_purged;
        done.messages_anonymised = retained.messages_anonymised;
        Ok(done)
    }
}
