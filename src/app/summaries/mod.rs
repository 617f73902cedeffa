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

use self::build::{BuildRequest, Built, GuardianContext, window_after};
use super::lifecycle::new_token;
use super::{App, AppError, AppResult};
use crate::domain::summary::{Period, Schedule, SummaryDelivery, SummaryOutcome, Window};
use crate::domain::{DeliveryStatus, OutboxMessage, UserId};
use crate::mail::summary::{SummaryLetter, render_summary};
use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use std::collections::{HashMap, HashSet};

/// Guardians read per page: the run holds at most a few pages in memory.
const PAGE: u32 = 500;
/// Pages built at once.
const PAGES_AT_ONCE: usize = 2;

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

impl SummaryRun {
    fn add(&mut self, other: SummaryRun) {
        self.guardians += other.guardians;
        self.queued += other.queued;
        self.skipped_empty += other.skipped_empty;
        self.already_built += other.already_built;
    }
}

impl App {
    /// Builds, once, every summary due at `now`, a page of guardians at a time: for each
    /// guardian whose latest send instant has come and whose summary for that period does not
    /// exist, the summary, then its delivery record and (unless empty) its email, the page's
    /// records and emails in one transaction. Two runs at once build each summary once: the
    /// second one's delivery record is refused by the key, and its email is not queued.
    pub async fn run_due_summaries(&self, now: DateTime<Utc>) -> AppResult<SummaryRun> {
        let mut run = SummaryRun::default();
        let mut after: Option<UserId> = None;
        // Pages are disjoint sets of guardians, so a few build at once: one page's reads and
        // rendering overlap another's writes.
        let mut building = FuturesUnordered::new();
        loop {
            let page = {
                let mut session = self.store.session().await?;
                session.linked_guardians(after.as_ref(), PAGE).await?
            };
            let Some(last) = page.last() else { break };
            after = Some(last.clone());
            let full = page.len() == PAGE as usize;
            building.push(self.build_page(page, now));
            if building.len() >= PAGES_AT_ONCE
                && let Some(part) = building.next().await
            {
                run.add(part?);
            }
            if !full {
                break;
            }
        }
        while let Some(part) = building.next().await {
            run.add(part?);
        }
        Ok(run)
    }

    /// One page of guardians: decide who is due, build their summaries, record and queue them.
    async fn build_page(&self, page: Vec<UserId>, now: DateTime<Utc>) -> AppResult<SummaryRun> {
        let mut run = SummaryRun {
            guardians: page.len(),
            ..SummaryRun::default()
        };
        let page = page.as_slice();
        // Deciding and building only read, on a plain connection: most guardians are not due
        // on most runs, and on SQLite a transaction would take the write lock.
        let mut session = self.store.session().await?;
        let mut contexts = self.guardian_contexts(session.as_mut(), page).await?;
        let lasts: HashMap<UserId, SummaryDelivery> = session
            .last_summary_deliveries(page)
            .await?
            .into_iter()
            .map(|d| (d.guardian_id.clone(), d))
            .collect();
        let mut due = Vec::new();
        for guardian in page {
            let Some(context) = contexts.remove(guardian) else {
                continue;
            };
            let schedule = context.schedule();
            let Some(period) = schedule.latest_due(now) else {
                continue;
            };
            let last = lasts.get(guardian);
            // Keys are local dates and only the latest due period is ever built: one as new
            // as this one means it is built.
            if last.is_some_and(|l| l.period_key >= period.key) {
                run.already_built += 1;
                continue;
            }
            let window = window_after(last.map(|l| l.period_end), &schedule, &period);
            due.push((guardian, context, schedule, period, window));
        }
        let requests: Vec<BuildRequest> = due
            .iter()
            .map(|(_, context, _, _, window)| BuildRequest {
                children: context.children(),
                window: *window,
            })
            .collect();
        let built = self.build_summaries(session.as_mut(), &requests).await?;
        // One connection at a time: the write below takes its own.
        drop(session);
        let mut outputs = Vec::with_capacity(due.len());
        for ((guardian, context, schedule, period, window), built) in due.into_iter().zip(built) {
            if built.students.is_empty() {
                // Every child's domain has access off: no summary and no record, so that one
                // switched back on the same day still gets today's.
                continue;
            }
            outputs.push(
                self.letter_for(guardian, &context, &schedule, &period, &window, built, now)?,
            );
        }
        if outputs.is_empty() {
            return Ok(run);
        }
        let (deliveries, mut messages): (Vec<SummaryDelivery>, Vec<Option<OutboxMessage>>) =
            outputs.into_iter().unzip();
        let mut tx = self.store.begin().await?;
        let inserted: HashSet<UserId> = tx
            .insert_summary_deliveries(&deliveries)
            .await?
            .into_iter()
            .collect();
        let mut queue = Vec::new();
        for (delivery, message) in deliveries.iter().zip(messages.iter_mut()) {
            if !inserted.contains(&delivery.guardian_id) {
                // Another replica built it since we looked: its email is queued, not ours.
                run.already_built += 1;
                continue;
            }
            match delivery.outcome {
                SummaryOutcome::SkippedEmpty => run.skipped_empty += 1,
                _ => run.queued += 1,
            }
            queue.extend(message.take());
        }
        tx.enqueue_messages(&queue).await?;
        tx.commit().await?;
        Ok(run)
    }

    /// The delivery record of a built summary and, unless it is empty, its email.
    #[allow(clippy::too_many_arguments)]
    fn letter_for(
        &self,
        guardian: &UserId,
        context: &GuardianContext,
        schedule: &Schedule,
        period: &Period,
        window: &Window,
        built: Built,
        now: DateTime<Utc>,
    ) -> AppResult<(SummaryDelivery, Option<OutboxMessage>)> {
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
        if built.summary.is_empty() {
            return Ok((delivery, None));
        }
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
        let (from_name, reply_to) = context.sender();
        let message = OutboxMessage {
            message_id,
            invitation_id: None,
            recipient,
            subject: rendered.subject,
            body_text: rendered.text,
            body_html: rendered.html,
            status: DeliveryStatus::Queued,
            attempts: 0,
            // Built as of `now`, sent from the real now on (run-once may build ahead).
            next_attempt_time: now.min(self.clock.now()),
            last_error: None,
            create_time: now,
            sent_time: None,
            list_unsubscribe: Some(unsubscribe_url),
            from_name,
            reply_to,
            family_id: None,
        };
        Ok((delivery, Some(message)))
    }
}
