//! The production store on PostgreSQL. Invariants are decided by the database: partial unique
//! indexes, compare-and-set updates, `FOR UPDATE` row locks on the student and
//! `FOR UPDATE SKIP LOCKED` for work that many replicas share.

use super::error::{StoreError, StoreResult};
use super::migrations::{all_applied, embedded_versions};
use super::replicas::ReadReplicas;
use super::{Backend, ChangeSignal, ConnectOptions, ReadSession, Session, Store, Transaction};
use crate::domain::{Email, UserId};
use async_trait::async_trait;
use sqlx::postgres::{PgConnectOptions, PgListener, PgPool, PgPoolOptions};
use sqlx::{PgConnection, Postgres};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// A digest of the embedded migrations (versions and checksums): equal digests, equal schemas.
/// Tests name their migrated template database by it.
pub fn migrations_digest() -> String {
    use sha2::Digest;
    let mut digest = sha2::Sha256::new();
    for migration in MIGRATOR.iter() {
        digest.update(migration.version.to_le_bytes());
        digest.update(&migration.checksum);
    }
    crate::domain::hex::hex(&digest.finalize()[..8])
}

/// A pool of connections to one Postgres database.
#[derive(Debug, Clone)]
pub struct PostgresStore {
    pool: PgPool,
    /// Counts commits that wrote changes, for the notifier.
    commits: Arc<watch::Sender<u64>>,
    /// Standbys that may serve reads; empty without `GUARDIANS_READ_DATABASE_URL`.
    replicas: Arc<ReadReplicas>,
}

/// A connection or transaction of the Postgres store.
#[derive(Debug)]
pub struct PgSession<C> {
    conn: C,
    commits: Arc<watch::Sender<u64>>,
    /// The revision of what this transaction appended to the change feed, if anything.
    feed_revision: Option<i64>,
}

/// Deletes up to $3 rows of an audit table (`$table`, keyed by `$id`) older than their
/// domain's `audit_retention_days` at $1; $2 bounds the time by the shortest retention, so the
/// time index is walked from the oldest row and stops early.
macro_rules! audit_purge {
    ($table:literal, $id:literal) => {
        concat!(
            "DELETE FROM ",
            $table,
            " WHERE ",
            $id,
            " IN (SELECT e.",
            $id,
            " FROM ",
            $table,
            " e WHERE e.create_time < $2 AND e.create_time < $1 - make_interval(days => \
             COALESCE((SELECT s.audit_retention_days FROM domain_settings s WHERE s.domain = \
             e.domain), 400)) ORDER BY e.create_time LIMIT $3)"
        )
    };
}

impl_session_repos!(
    PgSession,
    PgConnection,
    claim_sql = "UPDATE outbox SET next_attempt_time = $2 WHERE message_id IN ( \
                 SELECT message_id FROM outbox WHERE status = 'QUEUED' \
                 AND next_attempt_time <= $1 ORDER BY next_attempt_time, message_id \
                 LIMIT $3 FOR UPDATE SKIP LOCKED) RETURNING *",
    expired_sql = concat!(
        "SELECT ",
        invitation_columns!(),
        " FROM invitations WHERE state = 'PENDING' AND expire_time <= $1 \
         ORDER BY expire_time LIMIT $2 FOR UPDATE SKIP LOCKED"
    ),
    reminders_sql = concat!(
        "SELECT ",
        invitation_columns!(),
        " FROM invitations WHERE state = 'PENDING' AND remind_time <= $1 AND expire_time > $1 \
         ORDER BY remind_time LIMIT $2 FOR UPDATE SKIP LOCKED"
    ),
    families_sql = "SELECT family_id, domain, invited_email, inviter_id, open_until, create_time, \
                    sent_time FROM invitation_families WHERE sent_time IS NULL AND open_until <= $1 \
                    ORDER BY open_until LIMIT $2 FOR UPDATE SKIP LOCKED",
    ended_sql = concat!(
        "SELECT ",
        invitation_columns!(),
        " FROM invitations WHERE state IN ('REMOVED', 'EXPIRED') AND anonymised_time IS NULL \
         AND update_time < $2 AND update_time < $1 - make_interval(days => COALESCE((SELECT \
         s.ended_retention_days FROM domain_settings s WHERE s.domain = invitations.domain), 90)) \
         ORDER BY update_time LIMIT $3 FOR UPDATE SKIP LOCKED"
    ),
    audit_purge_sql = audit_purge!("guardian_events", "event_id"),
    access_purge_sql = audit_purge!("access_records", "record_id"),
    // Every transaction id below the snapshot's xmin has finished; xmax is the first id not
    // yet handed out, so every commit so far is below it.
    watermark_sql = "SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint AS w",
    head_sql = "SELECT pg_snapshot_xmax(pg_current_snapshot())::text::bigint - 1"
);

impl<C> PgSession<C>
where
    C: std::ops::DerefMut<Target = PgConnection> + Send,
{
    /// The stored responses of `request_ids`: one primary-key probe per id. An `IN` list here
    /// was planned as a scan of every record of the principal whenever the statistics lagged
    /// behind a large import (all of them are one principal's), which made each chunk slower
    /// than the one before; a lateral lookup cannot be planned that way.
    async fn idempotency_records(
        &mut self,
        principal: &str,
        request_ids: &[String],
    ) -> StoreResult<Vec<crate::domain::IdempotencyRecord>> {
        let rows: Vec<super::rows::IdempotencyRow> = sqlx::query_as(
            "SELECT k.* FROM UNNEST($2::text[]) AS r(id) CROSS JOIN LATERAL \
             (SELECT * FROM idempotency_keys WHERE principal = $1 AND request_id = r.id) AS k",
        )
        .bind(principal)
        .bind(request_ids)
        .fetch_all(&mut *self.conn)
        .await?;
        Ok(rows.into_iter().map(Into::into).collect())
    }
}

impl PostgresStore {
    /// Builds the pool. Connections are opened on first use, so the server can start (and
    /// report NOT_SERVING) while the database is still coming up.
    pub async fn connect(options: &ConnectOptions) -> StoreResult<Self> {
        let mut connect = PgConnectOptions::from_str(&options.url)
            .map_err(|e| StoreError::Config(format!("bad Postgres URL: {e}")))?
            .application_name("guardian-service");
        if let Some(limit) = options.statement_timeout {
            connect = connect.options([(
                "statement_timeout",
                format!("{}ms", limit.as_millis().max(1)),
            )]);
        }
        let pool = PgPoolOptions::new()
            .max_connections(options.max_connections)
            .acquire_timeout(options.acquire_timeout)
            .connect_lazy_with(connect);
        let commits = Arc::new(watch::Sender::new(0));
        tokio::spawn(notify_after_commits(
            pool.connect_options(),
            commits.subscribe(),
        ));
        let replicas = Arc::new(ReadReplicas::connect(
            &options.read_urls,
            options.max_connections,
            options.acquire_timeout,
            options.statement_timeout,
        )?);
        Ok(Self {
            pool,
            commits,
            replicas,
        })
    }

    /// A session of this store on `conn` (a pooled connection, a transaction, or a replica's
    /// connection).
    fn session_on<C>(&self, conn: C) -> PgSession<C> {
        PgSession {
            conn,
            commits: self.commits.clone(),
            feed_revision: None,
        }
    }

    /// The underlying pool, for tools that seed data in bulk.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }
}

#[async_trait]
impl Store for PostgresStore {
    async fn session(&self) -> StoreResult<Box<dyn Session>> {
        Ok(Box::new(self.session_on(self.pool.acquire().await?)))
    }

    async fn read_session(&self, needed: i64) -> StoreResult<ReadSession> {
        if let Some((conn, watermark)) = self.replicas.connection(needed).await {
            return Ok(ReadSession {
                session: Box::new(self.session_on(conn)),
                replica_watermark: Some(watermark),
            });
        }
        Ok(ReadSession {
            session: self.session().await?,
            replica_watermark: None,
        })
    }

    async fn begin(&self) -> StoreResult<Box<dyn Transaction>> {
        Ok(Box::new(self.session_on(self.pool.begin().await?)))
    }

    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    fn backend(&self) -> Backend {
        Backend::Postgres
    }

    fn pool_stats(&self) -> super::PoolStats {
        super::PoolStats {
            size: self.pool.size(),
            idle: self.pool.num_idle() as u32,
            max: self.pool.options().get_max_connections(),
        }
    }

    async fn migrate(&self) -> StoreResult<()> {
        // A migration may build an index for minutes: it runs on a connection of its own,
        // without the request path's statement limit.
        let options = (*self.pool.connect_options())
            .clone()
            .options([("statement_timeout", "0")]);
        let pool = PgPoolOptions::new()
            .max_connections(1)
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(options)
            .await?;
        let result = MIGRATOR
            .run(&pool)
            .await
            .map_err(|e| StoreError::Internal(format!("migration failed: {e}")));
        pool.close().await;
        result
    }

    async fn is_migrated(&self) -> StoreResult<bool> {
        let exists: Option<String> =
            sqlx::query_scalar("SELECT to_regclass('_sqlx_migrations')::text")
                .fetch_one(&self.pool)
                .await?;
        if exists.is_none() {
            return Ok(false);
        }
        let applied: Vec<i64> =
            sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success")
                .fetch_all(&self.pool)
                .await?;
        Ok(all_applied(&embedded_versions(&MIGRATOR), &applied))
    }

    async fn close(&self) {
        self.replicas.close().await;
        self.pool.close().await;
    }

    async fn change_signal(&self) -> StoreResult<Box<dyn ChangeSignal>> {
        // Its own connection, outside the pool: a listener holds it for as long as it lives.
        let own = PgPoolOptions::new()
            .max_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_lazy_with((*self.pool.connect_options()).clone());
        let mut listener = PgListener::connect_with(&own).await?;
        listener.ignore_pool_close_event(true);
        listener.listen(CHANGE_CHANNEL).await?;
        Ok(Box::new(PgChangeSignal { listener }))
    }
}

/// The channel the replicas' notifiers notify and their followers listen on.
const CHANGE_CHANNEL: &str = "guardian_changes";

/// Tells every replica's follower (`LISTEN`) that this one committed changes: after the
/// commits, from a connection of its own with `synchronous_commit` off, once for any number of
/// commits made meanwhile. Notifying inside the writing transactions would hold Postgres'
/// notification-queue lock through each of their commits and serialise them. Ends when the
/// store is dropped.
async fn notify_after_commits(options: Arc<PgConnectOptions>, mut commits: watch::Receiver<u64>) {
    let own = PgPoolOptions::new()
        .max_connections(1)
        .connect_lazy_with((*options).clone().options([("synchronous_commit", "off")]));
    while commits.changed().await.is_ok() {
        commits.mark_unchanged();
        let notified = sqlx::query("SELECT pg_notify($1, '')")
            .bind(CHANGE_CHANNEL)
            .execute(&own)
            .await;
        if let Err(e) = notified {
            // The followers also look on their own period: a lost wake-up costs time only.
            tracing::warn!(error = %e, "could not notify the change feed; retrying");
            tokio::time::sleep(LISTEN_RETRY).await;
            commits.mark_changed();
        }
    }
}

/// [`ChangeSignal`] by `LISTEN`.
struct PgChangeSignal {
    listener: PgListener,
}

#[async_trait]
impl ChangeSignal for PgChangeSignal {
    async fn changed(&mut self) {
        match self.listener.try_recv().await {
            // A notification; or `None`: the connection was lost and made again, and what was
            // notified meanwhile is gone, so the caller looks anyway.
            Ok(_) => {}
            Err(e) => {
                // The database is unreachable: look again later rather than spin.
                tracing::warn!(error = %e, "change listener failed; retrying");
                tokio::time::sleep(LISTEN_RETRY).await;
            }
        }
    }
}

/// How long a failed listener waits before it tries again.
const LISTEN_RETRY: Duration = Duration::from_secs(1);

#[async_trait]
impl Transaction for PgSession<sqlx::Transaction<'static, Postgres>> {
    async fn lock_student(&mut self, student: &UserId) -> StoreResult<()> {
        sqlx::query("SELECT 1 FROM users WHERE user_id = $1 FOR UPDATE")
            .bind(student.as_str())
            .fetch_optional(&mut *self.conn)
            .await?;
        Ok(())
    }

    async fn lock_address(&mut self, email: &Email) -> StoreResult<()> {
        // One statement: inserting the row locks it, and so does updating it on conflict.
        sqlx::query(
            "INSERT INTO guardian_addresses (email) VALUES ($1) \
             ON CONFLICT (email) DO UPDATE SET email = excluded.email",
        )
        .bind(email.as_str())
        .execute(&mut *self.conn)
        .await?;
        Ok(())
    }

    async fn lock_students(&mut self, students: &[UserId]) -> StoreResult<()> {
        if students.is_empty() {
            return Ok(());
        }
        let mut ids: Vec<&str> = students.iter().map(UserId::as_str).collect();
        ids.sort_unstable();
        ids.dedup();
        // Rows are locked as the sort hands them out: in id order.
        sqlx::query("SELECT 1 FROM users WHERE user_id = ANY($1) ORDER BY user_id FOR UPDATE")
            .bind(&ids)
            .fetch_all(&mut *self.conn)
            .await?;
        Ok(())
    }

    async fn lock_addresses(&mut self, emails: &[Email]) -> StoreResult<()> {
        if emails.is_empty() {
            return Ok(());
        }
        let mut addresses: Vec<&str> = emails.iter().map(Email::as_str).collect();
        addresses.sort_unstable();
        addresses.dedup();
        // As lock_address; the rows are inserted (and locked) in the order of the array.
        sqlx::query(
            "INSERT INTO guardian_addresses (email) \
             SELECT email FROM UNNEST($1::text[]) WITH ORDINALITY AS a(email, n) ORDER BY n \
             ON CONFLICT (email) DO UPDATE SET email = excluded.email",
        )
        .bind(&addresses)
        .execute(&mut *self.conn)
        .await?;
        Ok(())
    }

    async fn commit(self: Box<Self>) -> StoreResult<()> {
        self.conn.commit().await?;
        if let Some(revision) = self.feed_revision {
            super::note_commit(revision);
            self.commits.send_modify(|n| *n = n.wrapping_add(1));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::TestDatabase;

    /// Every look of every follower and watcher runs the feed's watermark statement: it must
    /// not read the audit trail row by row. With 40,000 events of as many past transactions,
    /// half of them newer than the statistics, its plan holds no sequential scan. (The
    /// statement it replaced was planned as a whole-table scan on a bench database, 20 ms at
    /// 70,000 events, though not in this setting: this guards the new form, whose MAX is one
    /// step down the index whatever the statistics say.)
    #[tokio::test]
    async fn the_feed_watermark_does_not_scan_the_audit_trail() {
        let db = TestDatabase::create_migrated().await;
        let store = PostgresStore::connect(&db.options(2)).await.unwrap();
        let insert = |from: i64| {
            sqlx::query(
                "INSERT INTO guardian_events (revision, domain, student_id, action, actor_id, \
                 create_time) SELECT n, 'school.example', 's' || n, 'invitation.created', 'a1', \
                 now() FROM generate_series($1::bigint, $1 + 19999) AS n",
            )
            .bind(from)
        };
        insert(1).execute(store.pool()).await.unwrap();
        sqlx::query("ANALYZE guardian_events")
            .execute(store.pool())
            .await
            .unwrap();
        // As in a growing trail: as many events again since the statistics were taken.
        insert(20001).execute(store.pool()).await.unwrap();
        let explain = format!(
            "EXPLAIN (FORMAT JSON) {}",
            PgSession::<PgConnection>::FEED_WATERMARK_SQL
        );
        let plan: serde_json::Value = sqlx::query_scalar(sqlx::AssertSqlSafe(explain))
            .fetch_one(store.pool())
            .await
            .unwrap();
        let plan = plan.to_string();
        assert!(plan.contains("guardian_events"), "{plan}");
        assert!(!plan.contains("Seq Scan"), "{plan}");
    }
}
