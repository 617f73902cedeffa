//! Guardian email summaries: the scheduler's run (every replica runs it; the delivery record's
//! key makes each summary exactly once) and what it builds.

mod build;
mod ingest;
mod preferences;
mod reads;
#[cfg(test)]
mod tests;

pub use ingest::{ItemOutcome, MAX_ACTIVITY_ITEMS};
pub use preferences::{PreferencesView, UnsubscribeLink};
pub use reads::{DeliveryQuery, PreviewTarget, SummaryPreview};

use super::lifecycle::new_token;
use super::{App, AppError, AppResult};
use crate::domain::summary::{SummaryDelivery, SummaryOutcome};
use crate::domain::{DeliveryStatus, OutboxMessage, UserId};
use crate::mail::summary::{SummaryLetter, render_summary};
use crate::store::{StoreError, UniqueKey};
use chrono::{DateTime, Utc};

/// Guardians read per page: the run never holds more than a page in memory.
const PAGE: u32 = 500;

/// What one run of the scheduler did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SummaryRun {
    /// Guardians looked at.
    pub guardians: usize,
    /// Summaries queued for sending.
    pub queued: usize,
    /// Summaries with nothing to report, recorded SKIPPED_EMPTY.
    pub skipped_empty: usize,
    /// Due summaries another run (or replica) had built already.
    pub already_built: usize,
}

impl App {
    /// Builds, once, every summary due at `now`: for each guardian whose latest send instant
    /// has come and whose summary for that period does not exist, the summary, then its
    /// delivery record and (unless empty) its email in one transaction. Two runs at once build each
    /// summary once: the second one's delivery record is refused by the key and its
    /// transaction rolls back.
    pub async fn run_due_summaries(&self, now: DateTime<Utc>) -> AppResult<SummaryRun> {
        let mut run = SummaryRun::default();
        let mut after: Option<UserId> = None;
        loop {
            let page = {
                let mut session = self.store.session().await?;
                session.linked_guardians(after.as_ref(), PAGE).await?
            };
            let Some(last) = page.last() else { break };
            after = Some(last.clone());
            for guardian in &page {
                run.guardians += 1;
                match self.build_due_summary(guardian, now).await? {
                    Due::Built(SummaryOutcome::SkippedEmpty) => run.skipped_empty += 1,
                    Due::Built(_) => run.queued += 1,
                    Due::AlreadyBuilt => run.already_built += 1,
                    Due::Nothing => {}
                }
            }
            if page.len() < PAGE as usize {
                break;
            }
        }
        Ok(run)
    }

    /// One guardian's due summary, if one is due and not built yet; what became of it.
    async fn build_due_summary(&self, guardian: &UserId, now: DateTime<Utc>) -> AppResult<Due> {
        // Deciding and building only read, on a plain connection: most guardians are not due
        // on most runs, and on SQLite a transaction would take the write lock for each of them.
        let mut session = self.store.session().await?;
        let Some(context) = self.guardian_context(session.as_mut(), guardian).await? else {
            return Ok(Due::Nothing);
        };
        let schedule = context.schedule(None);
        let Some(period) = schedule.latest_due(now) else {
            return Ok(Due::Nothing);
        };
        if session.has_summary_delivery(guardian, &period.key).await? {
            return Ok(Due::AlreadyBuilt);
        }
        let window = self
            .window(session.as_mut(), guardian, &schedule, &period)
            .await?;
        let built = self
            .build_summary(session.as_mut(), &context.children(), &window)
            .await?;
        // One connection at a time: the write below takes its own.
        drop(session);
        if built.students.is_empty() {
            // Every child's domain has access off: no summary and no record, so that one
            // switched back on the same day still gets today's.
            return Ok(Due::Nothing);
        }
        let mut delivery = SummaryDelivery {
            guardian_id: guardian.clone(),
            period_key: period.key.clone(),
            frequency: period.frequency,
            period_start: window.activity_since,
            period_end: period.end,
            student_ids: built.students.clone(),
            counts: built.summary.counts(),
            message_id: None,
            outcome: SummaryOutcome::SkippedEmpty,
            unsubscribe_token_hash: None,
            create_time: now,
        };
        let mut message = None;
        if !built.summary.is_empty() {
            let recipient = context
                .links
                .iter()
                .find_map(|l| l.guardian.as_ref().map(|g| g.email.clone()))
                .ok_or_else(|| AppError::Internal("a link without its guardian".into()))?;
            let (token, hash) = new_token();
            let unsubscribe_url = format!(
                "{}/summaries/unsubscribe?token={token}",
                self.config.public_url.trim_end_matches('/')
            );
            let rendered = render_summary(&SummaryLetter {
                summary: &built.summary,
                guardian_name: context.name(),
                locale: context.locale(),
                frequency: period.frequency,
                period_end: period.end,
                zone: schedule.zone,
                unsubscribe_url: &unsubscribe_url,
            })
            .map_err(AppError::Internal)?;
            let message_id = uuid::Uuid::now_v7().to_string();
            delivery.message_id = Some(message_id.clone());
            delivery.outcome = SummaryOutcome::Queued;
            delivery.unsubscribe_token_hash = Some(hash);
            message = Some(OutboxMessage {
                message_id,
                invitation_id: None,
                recipient,
                subject: rendered.subject,
                body_text: rendered.text,
                body_html: rendered.html,
                status: DeliveryStatus::Queued,
                attempts: 0,
                next_attempt_time: now,
                last_error: None,
                create_time: now,
                sent_time: None,
                list_unsubscribe: Some(unsubscribe_url),
            });
        }
        let mut tx = self.store.begin().await?;
        match tx.insert_summary_delivery(&delivery).await {
            Ok(()) => {}
            // Another replica built it since we looked: ours rolls back with the transaction.
            Err(StoreError::AlreadyExists(UniqueKey::SummaryDelivery)) => {
                return Ok(Due::AlreadyBuilt);
            }
            Err(other) => return Err(other.into()),
        }
        if let Some(message) = &message {
            tx.enqueue_message(message).await?;
        }
        tx.commit().await?;
        Ok(Due::Built(delivery.outcome))
    }
}

/// What the scheduler found for one guardian.
enum Due {
    /// No summary due (no links, NEVER, not yet time, or every child's access off).
    Nothing,
    /// Due, but built already.
    AlreadyBuilt,
    /// Built now.
    Built(SummaryOutcome),
}
