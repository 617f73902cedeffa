//! Postgres read replicas (streaming standbys): which one may serve a read that must include
//! every change below a watermark, and which are down or lagging and so skipped.
//!
//! A standby's snapshot is built from the transactions it has replayed, so
//! `pg_snapshot_xmin(pg_current_snapshot())` on the standby means what it means on the primary:
//! every transaction below it has finished, and a committed one is visible. That watermark only
//! grows, so one observed before a read is a lower bound of what the read sees. Each replica
//! has a prober that refreshes it: every second, and at once when a read found it too low.

use super::error::{StoreError, StoreResult};
use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::{Postgres, Row};
use std::str::FromStr;
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::Notify;

/// How often an idle replica is probed, and how long a probe may take.
const PROBE_EVERY: Duration = Duration::from_secs(1);
/// Probes a read asked for are at least this far apart: a lagging replica under load costs
/// its prober a bounded rate of trivial queries, not one per read.
const PROBE_GAP: Duration = Duration::from_millis(5);
/// How long a replica that failed is skipped before a probe may bring it back.
const DOWN_FOR: Duration = Duration::from_secs(2);

/// The configured read replicas, tried in turn.
#[derive(Debug)]
pub(super) struct ReadReplicas {
    replicas: Vec<Arc<Replica>>,
    next: AtomicUsize,
}

#[derive(Debug)]
struct Replica {
    /// `replica-N`, for logs and metrics: the URL may hold a password.
    label: String,
    pool: PgPool,
    /// Every transaction below this watermark is finished in any snapshot taken from now on;
    /// `i64::MIN` until the first probe answers.
    replayed: AtomicI64,
    /// Skipped until then, after a failure.
    down_until: Mutex<Option<Instant>>,
    /// Asks the prober for a fresh watermark.
    wake: Notify,
}

impl ReadReplicas {
    /// Pools for `urls` (opened lazily, like the primary's) and their probers.
    pub(super) fn connect(
        urls: &[String],
        max_connections: u32,
        acquire_timeout: Duration,
        statement_timeout: Option<Duration>,
    ) -> StoreResult<Self> {
        let mut replicas = Vec::with_capacity(urls.len());
        for (i, url) in urls.iter().enumerate() {
            let label = format!("replica-{i}");
            let mut connect = PgConnectOptions::from_str(url)
                .map_err(|e| StoreError::Config(format!("bad read replica URL ({label}): {e}")))?
                .application_name("guardian-service");
            if let Some(limit) = statement_timeout {
                connect = connect.options([(
                    "statement_timeout",
                    format!("{}ms", limit.as_millis().max(1)),
                )]);
            }
            // A replica that does not answer quickly is skipped for the primary, which does.
            let pool = PgPoolOptions::new()
                .max_connections(max_connections)
                .acquire_timeout(acquire_timeout.min(Duration::from_millis(500)))
                .connect_lazy_with(connect);
            let replica = Arc::new(Replica {
                label,
                pool,
                replayed: AtomicI64::new(i64::MIN),
                down_until: Mutex::new(None),
                wake: Notify::new(),
            });
            tokio::spawn(probe(Arc::downgrade(&replica)));
            replicas.push(replica);
        }
        Ok(Self {
            replicas,
            next: AtomicUsize::new(0),
        })
    }

    /// A connection to a replica that is up and has replayed every transaction below
    /// `needed`, with the watermark the read will include; `None` when no replica may serve
    /// it (then the caller reads the primary).
    pub(super) async fn connection(&self, needed: i64) -> Option<(PoolConnection<Postgres>, i64)> {
        let count = self.replicas.len();
        if count == 0 {
            return None;
        }
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        for i in 0..count {
            let replica = &self.replicas[(start + i) % count];
            if replica.is_down() {
                metrics::counter!("guardians_read_route_total", "target" => "primary", "why" => "replica_down")
                    .increment(1);
                continue;
            }
            let replayed = replica.replayed.load(Ordering::SeqCst);
            if replayed < needed {
                metrics::counter!("guardians_read_route_total", "target" => "primary", "why" => "lagging")
                    .increment(1);
                replica.wake.notify_one();
                continue;
            }
            match replica.pool.acquire().await {
                Ok(conn) => {
                    metrics::counter!("guardians_read_route_total", "target" => "replica", "why" => "fresh")
                        .increment(1);
                    return Some((conn, replayed));
                }
                Err(err) => replica.failed(&err.to_string()),
            }
        }
        None
    }

    /// Closes every replica pool.
    pub(super) async fn close(&self) {
        for replica in &self.replicas {
            replica.pool.close().await;
        }
    }
}

impl Replica {
    fn is_down(&self) -> bool {
        let slot = self.down_until.lock().unwrap_or_else(|e| e.into_inner());
        slot.is_some_and(|until| Instant::now() < until)
    }

    /// Skips the replica for a while; logged once per outage.
    fn failed(&self, cause: &str) {
        let mut slot = self.down_until.lock().unwrap_or_else(|e| e.into_inner());
        if slot.is_none() {
            tracing::warn!(replica = %self.label, %cause, "read replica unavailable; reading the primary");
        }
        *slot = Some(Instant::now() + DOWN_FOR);
    }

    fn recovered(&self) {
        let mut slot = self.down_until.lock().unwrap_or_else(|e| e.into_inner());
        if slot.take().is_some() {
            tracing::info!(replica = %self.label, "read replica answers again");
        }
    }

    /// Reads the replica's watermark.
    async fn watermark(&self) -> StoreResult<i64> {
        let query = sqlx::query(
            "SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint AS w, \
             pg_is_in_recovery() AS standby",
        );
        let row = tokio::time::timeout(PROBE_EVERY, query.fetch_one(&self.pool))
            .await
            .map_err(|_| StoreError::Unavailable("probe timed out".into()))??;
        if !row.try_get::<bool, _>("standby")? {
            // A promoted standby is a primary of its own: its transactions are not this
            // service's, so its watermark means nothing here.
            return Err(StoreError::Unavailable("not a standby (promoted?)".into()));
        }
        Ok(row.try_get("w")?)
    }
}

/// Keeps one replica's watermark fresh until the store is dropped.
async fn probe(replica: std::sync::Weak<Replica>) {
    loop {
        let Some(replica) = replica.upgrade() else {
            return;
        };
        match replica.watermark().await {
            Ok(watermark) => {
                replica.replayed.fetch_max(watermark, Ordering::SeqCst);
                replica.recovered();
            }
            Err(err) => replica.failed(&err.to_string()),
        }
        let wake = async {
            replica.wake.notified().await;
            tokio::time::sleep(PROBE_GAP).await;
        };
        if replica.pool.is_closed() {
            return;
        }
        let _ = tokio::time::timeout(PROBE_EVERY, wake).await;
    }
}
