//! The outbox dispatcher: runs in every replica, claims due messages in batches (each claim a
//! short lease, so no two dispatchers send the same message), sends them, and records the
//! outcome: SENT, QUEUED again after an exponential backoff with jitter, or FAILED after the
//! last attempt, with the last error.

use super::transport::{SendError, Transport};
use crate::domain::{Clock, DeliveryStatus, OutboxMessage};
use crate::store::{Store, StoreResult};
use chrono::TimeDelta;
use rand::Rng;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// How the dispatcher paces itself.
#[derive(Debug, Clone)]
pub struct DispatchPolicy {
    /// Messages claimed at a time.
    pub batch: u32,
    /// How long a claim keeps other dispatchers off a message (longer than one send).
    pub lease: TimeDelta,
    /// Attempts before a message is FAILED.
    pub max_attempts: i32,
    /// Delay after the first failure; doubled each time.
    pub first_backoff: TimeDelta,
    /// Longest delay between attempts.
    pub max_backoff: TimeDelta,
}

impl Default for DispatchPolicy {
    fn default() -> Self {
        Self {
            batch: 50,
            // Short, and renewed while a batch is being sent: a dispatcher that dies holds its
            // messages back for a minute at most.
            lease: TimeDelta::seconds(60),
            max_attempts: 8,
            first_backoff: TimeDelta::seconds(10),
            max_backoff: TimeDelta::hours(1),
        }
    }
}

impl DispatchPolicy {
    /// The delay before attempt `attempts + 1`, with ±20% jitter so that replicas retrying a
    /// recovered server do not all come back at once.
    pub fn backoff(&self, attempts: i32) -> TimeDelta {
        let exp = attempts.clamp(0, 20) as u32;
        let base = self
            .first_backoff
            .num_milliseconds()
            .saturating_mul(1i64 << exp);
        let capped = base.min(self.max_backoff.num_milliseconds());
        let jitter = rand::rng().random_range(0.8..1.2);
        TimeDelta::milliseconds((capped as f64 * jitter) as i64)
    }
}

/// What one round did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Round {
    /// Handed to the transport.
    pub sent: usize,
    /// Failed and queued again.
    pub retried: usize,
    /// Given up.
    pub failed: usize,
}

/// Sends what the outbox holds.
#[derive(Debug, Clone)]
pub struct Dispatcher {
    store: Arc<dyn Store>,
    transport: Arc<dyn Transport>,
    clock: Arc<dyn Clock>,
    policy: DispatchPolicy,
}

impl Dispatcher {
    /// A dispatcher over `store` sending through `transport`.
    pub fn new(
        store: Arc<dyn Store>,
        transport: Arc<dyn Transport>,
        clock: Arc<dyn Clock>,
        policy: DispatchPolicy,
    ) -> Self {
        Self {
            store,
            transport,
            clock,
            policy,
        }
    }

    /// Sends every message due now, batch after batch, and returns what happened.
    pub async fn dispatch_due(&self) -> StoreResult<Round> {
        self.dispatch_until(None).await
    }

    /// [`Dispatcher::dispatch_due`], stopping between messages once `stop` says so and giving
    /// back the claim on the messages not yet sent.
    pub async fn dispatch_until(&self, stop: Option<&watch::Receiver<bool>>) -> StoreResult<Round> {
        let mut total = Round::default();
        loop {
            let round = self.dispatch_batch(stop).await?;
            let handled = round.sent + round.retried + round.failed;
            total.sent += round.sent;
            total.retried += round.retried;
            total.failed += round.failed;
            if handled < self.policy.batch as usize || stop.is_some_and(|s| *s.borrow()) {
                return Ok(total);
            }
        }
    }

    async fn dispatch_batch(&self, stop: Option<&watch::Receiver<bool>>) -> StoreResult<Round> {
        let now = self.clock.now();
        // The claim commits at once: the lease, not a held transaction, keeps others off.
        let claimed = {
            let mut tx = self.store.begin().await?;
            let claimed = tx
                .claim_due_messages(now, now + self.policy.lease, self.policy.batch)
                .await?;
            tx.commit().await?;
            claimed
        };
        let mut round = Round::default();
        let mut lease_until = now + self.policy.lease;
        for (i, message) in claimed.iter().enumerate() {
            let rest = || {
                claimed[i..]
                    .iter()
                    .map(|m| m.message_id.clone())
                    .collect::<Vec<_>>()
            };
            if stop.is_some_and(|s| *s.borrow()) {
                // Shutting down: the unsent messages are due again now, for another replica.
                let mut session = self.store.session().await?;
                session
                    .reschedule_messages(&rest(), self.clock.now())
                    .await?;
                tracing::info!(
                    released = claimed.len() - i,
                    "outbox claims given back on shutdown"
                );
                return Ok(round);
            }
            let now = self.clock.now();
            if now + self.policy.lease / 2 >= lease_until {
                // Half the lease is gone (slow SMTP): renew it for what is left.
                lease_until = now + self.policy.lease;
                let mut session = self.store.session().await?;
                session.reschedule_messages(&rest(), lease_until).await?;
            }
            let outcome = self.transport.send(message).await;
            self.record(message, outcome, &mut round).await?;
        }
        Ok(round)
    }

    async fn record(
        &self,
        message: &OutboxMessage,
        outcome: Result<(), SendError>,
        round: &mut Round,
    ) -> StoreResult<()> {
        let now = self.clock.now();
        let attempts = message.attempts + 1;
        let mut session = self.store.session().await?;
        match outcome {
            Ok(()) => {
                round.sent += 1;
                metrics::counter!("guardians_mail_sent_total").increment(1);
                session
                    .record_delivery(&message.message_id, DeliveryStatus::Sent, now, None, now)
                    .await
            }
            Err(err) => {
                // The transport's text goes to the outbox row only: an SMTP reply may quote the
                // recipient's address, which must not reach the logs.
                let error = err.to_string();
                let kind = match err {
                    SendError::Transient(_) => "transient",
                    SendError::Permanent(_) => "permanent",
                };
                metrics::counter!("guardians_mail_failures_total", "kind" => kind).increment(1);
                let give_up =
                    matches!(err, SendError::Permanent(_)) || attempts >= self.policy.max_attempts;
                if give_up {
                    round.failed += 1;
                    tracing::warn!(message_id = %message.message_id, attempts, kind, "email failed for good");
                    session
                        .record_delivery(
                            &message.message_id,
                            DeliveryStatus::Failed,
                            now,
                            Some(&error),
                            now,
                        )
                        .await
                } else {
                    round.retried += 1;
                    let next = now + self.policy.backoff(message.attempts);
                    tracing::info!(message_id = %message.message_id, attempts, kind, "email will be retried");
                    session
                        .record_delivery(
                            &message.message_id,
                            DeliveryStatus::Queued,
                            next,
                            Some(&error),
                            now,
                        )
                        .await
                }
            }
        }
    }

    /// Dispatches every `interval` until told to stop.
    pub async fn run(self, interval: Duration, mut stop: watch::Receiver<bool>) {
        loop {
            match self.dispatch_until(Some(&stop)).await {
                Ok(round) if round != Round::default() => {
                    tracing::info!(
                        sent = round.sent,
                        retried = round.retried,
                        failed = round.failed,
                        "outbox"
                    );
                }
                Ok(_) => {}
                Err(err) => tracing::warn!(error = %err, "outbox dispatch failed; will retry"),
            }
            tokio::select! {
                _ = tokio::time::sleep(interval) => {}
                _ = stop.changed() => return,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter_and_stops_at_the_cap() {
        let p = DispatchPolicy::default();
        for attempts in 0..5 {
            let expected = 10_000i64 << attempts;
            let got = p.backoff(attempts).num_milliseconds();
            assert!(
                (expected * 8 / 10..=expected * 12 / 10).contains(&got),
                "{attempts}: {got}"
            );
        }
        assert!(p.backoff(30).num_milliseconds() <= 3_600_000 * 12 / 10);
    }
}
