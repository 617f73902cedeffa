//! The embedded store on SQLite, so that the service runs with no database server. Writers
//! take the database lock at `BEGIN IMMEDIATE`, which serialises every transaction that could
//! race; readers go on in parallel under WAL.

use super::error::{StoreError, StoreResult};
use super::migrations::{all_applied, embedded_versions};
use super::{Backend, ChangeSignal, ConnectOptions, Session, Store, Transaction};
use crate::domain::{Email, UserId};
use async_trait::async_trait;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{Sqlite, SqliteConnection};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// How long a writer waits for the lock before the store reports [`StoreError::Retry`].
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// A pool of connections to one SQLite database.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
    /// Counts commits, for [`ChangeSignal`]s.
    commits: Arc<watch::Sender<u64>>,
}

/// A connection or transaction of the SQLite store.
#[derive(Debug)]
pub struct SqliteSession<C> {
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
            " e WHERE e.create_time < $2 AND julianday(e.create_time) < julianday($1) \
             - COALESCE((SELECT s.audit_retention_days FROM domain_settings s WHERE s.domain = \
             e.domain), 400) ORDER BY e.create_time LIMIT $3)"
        )
    };
}

// No SKIP LOCKED: the claiming transaction holds the write lock, so two dispatchers claim one
// after the other and the second sees the first one's lease.
impl_session_repos!(
    SqliteSession,
    SqliteConnection,
    claim_sql = "UPDATE outbox SET next_attempt_time = $2 WHERE message_id IN ( \
                 SELECT message_id FROM outbox WHERE status = 'QUEUED' \
                 AND next_attempt_time <= $1 ORDER BY next_attempt_time, message_id \
                 LIMIT $3) RETURNING *",
    expired_sql = concat!(
        "SELECT ",
        invitation_columns!(),
        " FROM invitations WHERE state = 'PENDING' AND expire_time <= $1 \
         ORDER BY expire_time LIMIT $2"
    ),
    reminders_sql = concat!(
        "SELECT ",
        invitation_columns!(),
        " FROM invitations WHERE state = 'PENDING' AND remind_time <= $1 AND expire_time > $1 \
         ORDER BY remind_time LIMIT $2"
    ),
    families_sql = "SELECT family_id, domain, invited_email, inviter_id, open_until, create_time, \
                    sent_time FROM invitation_families WHERE sent_time IS NULL AND open_until <= $1 \
                    ORDER BY open_until LIMIT $2",
    ended_sql = concat!(
        "SELECT ",
        invitation_columns!(),
        " FROM invitations WHERE state IN ('REMOVED', 'EXPIRED') AND anonymised_time IS NULL \
         AND update_time < $2 AND julianday(update_time) < julianday($1) - COALESCE((SELECT \
         s.ended_retention_days FROM domain_settings s WHERE s.domain = invitations.domain), 90) \
         ORDER BY update_time LIMIT $3"
    ),
    audit_purge_sql = audit_purge!("guardian_events", "event_id"),
    access_purge_sql = audit_purge!("access_records", "record_id"),
    // One writer at a time: whatever a statement sees is complete.
    watermark_sql = "SELECT COALESCE(MAX(revision), 0) + 1 AS w FROM guardian_events",
    head_sql = "SELECT COALESCE(MAX(revision), 0) FROM guardian_events"
);

impl<C> SqliteSession<C>
where
    C: std::ops::DerefMut<Target = SqliteConnection> + Send,
{
    /// The stored responses of `request_ids`, by the primary key (SQLite probes it once per
    /// listed id).
    async fn idempotency_records(
        &mut self,
        principal: &str,
        request_ids: &[String],
    ) -> StoreResult<Vec<crate::domain::IdempotencyRecord>> {
        let mut query =
            sqlx::QueryBuilder::<Sqlite>::new("SELECT * FROM idempotency_keys WHERE principal = ");
        query.push_bind(principal);
        query.push(" AND request_id IN (");
        in_list!(query, request_ids);
        let rows: Vec<super::rows::IdempotencyRow> =
            query.build_query_as().fetch_all(&mut *self.conn).await?;
        Ok(rows.into_iter().map(Into::into).collect())
    }
}

impl SqliteStore {
    /// Opens (creating if missing) the database file, or a private in-memory database for
    /// `sqlite::memory:`.
    pub async fn connect(options: &ConnectOptions) -> StoreResult<Self> {
        let in_memory = options.url.contains(":memory:") || options.url.contains("mode=memory");
        let mut connect = SqliteConnectOptions::from_str(&options.url)
            .map_err(|e| StoreError::Config(format!("bad SQLite URL: {e}")))?
            .create_if_missing(true)
            .foreign_keys(true)
            .busy_timeout(BUSY_TIMEOUT);
        let mut pool = SqlitePoolOptions::new().acquire_timeout(options.acquire_timeout);
        if in_memory {
            // Each connection to :memory: is its own database: keep exactly one, forever.
            pool = pool
                .max_connections(1)
                .min_connections(1)
                .idle_timeout(None)
                .max_lifetime(None);
        } else {
            connect = connect
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal);
            pool = pool.max_connections(options.max_connections);
        }
        let pool = pool
            .connect_with(connect)
            .await
            .map_err(|e| StoreError::Unavailable(format!("cannot open SQLite database: {e}")))?;
        Ok(Self {
            pool,
            commits: Arc::new(watch::Sender::new(0)),
        })
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn session(&self) -> StoreResult<Box<dyn Session>> {
        let conn = self.pool.acquire().await?;
        Ok(Box::new(SqliteSession {
            conn,
            commits: self.commits.clone(),
            feed_revision: None,
        }))
    }

    async fn begin(&self) -> StoreResult<Box<dyn Transaction>> {
        let conn = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        Ok(Box::new(SqliteSession {
            conn,
            commits: self.commits.clone(),
            feed_revision: None,
        }))
    }

    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    fn backend(&self) -> Backend {
        Backend::Sqlite
    }

    fn pool_stats(&self) -> super::PoolStats {
        super::PoolStats {
            size: self.pool.size(),
            idle: self.pool.num_idle() as u32,
            max: self.pool.options().get_max_connections(),
        }
    }

    async fn migrate(&self) -> StoreResult<()> {
        MIGRATOR
            .run(&self.pool)
            .await
            .map_err(|e| StoreError::Internal(format!("migration failed: {e}")))
    }

    async fn is_migrated(&self) -> StoreResult<bool> {
        let exists: Option<String> = sqlx::query_scalar(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations'",
        )
        .fetch_optional(&self.pool)
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
        self.pool.close().await;
    }

    async fn change_signal(&self) -> StoreResult<Box<dyn ChangeSignal>> {
        Ok(Box::new(SqliteChangeSignal {
            commits: self.commits.subscribe(),
        }))
    }
}

/// [`ChangeSignal`] of this process's commits. Another process writing the same file is seen
/// by the follower's periodic look only.
struct SqliteChangeSignal {
    commits: watch::Receiver<u64>,
}

#[async_trait]
impl ChangeSignal for SqliteChangeSignal {
    async fn changed(&mut self) {
        if self.commits.changed().await.is_err() {
            // The store is gone: nothing will ever change again.
            std::future::pending::<()>().await;
        }
    }
}

#[async_trait]
impl Transaction for SqliteSession<sqlx::Transaction<'static, Sqlite>> {
    async fn lock_student(&mut self, _student: &UserId) -> StoreResult<()> {
        // BEGIN IMMEDIATE already holds the database's write lock for this transaction.
        Ok(())
    }

    async fn lock_address(&mut self, _email: &Email) -> StoreResult<()> {
        // Held already: see lock_student.
        Ok(())
    }

    async fn lock_students(&mut self, _students: &[UserId]) -> StoreResult<()> {
        // Held already: see lock_student.
        Ok(())
    }

    async fn lock_addresses(&mut self, _emails: &[Email]) -> StoreResult<()> {
        // Held already: see lock_student.
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

    /// Read replicas are standbys of a Postgres primary: with SQLite they are refused, not
    /// ignored.
    #[tokio::test]
    async fn read_replicas_are_refused_for_sqlite() {
        let options = ConnectOptions {
            read_urls: vec!["postgres://127.0.0.1/guardians".into()],
            ..ConnectOptions::plain("sqlite::memory:", 1, Duration::from_secs(5))
        };
        let refused = crate::store::connect(&options).await.unwrap_err();
        assert!(
            matches!(&refused, StoreError::Config(why) if why.contains("GUARDIANS_READ_DATABASE_URL")),
            "{refused:?}"
        );
    }

    /// Migration 3 rebuilds `guardian_events`: the events stored before keep their ids and
    /// values, and new ones are numbered after them.
    #[tokio::test]
    async fn the_audit_table_rebuild_keeps_every_event_and_its_id() {
        let options = ConnectOptions::plain("sqlite::memory:", 1, Duration::from_secs(5));
        let store = SqliteStore::connect(&options).await.unwrap();
        MIGRATOR.run_to(2, &store.pool).await.unwrap();
        for (id, student) in [(7, "s1"), (9, "s2")] {
            sqlx::query(
                "INSERT INTO guardian_events (event_id, domain, student_id, invitation_id, \
                 action, actor_id, request_id, create_time) \
                 VALUES ($1, 'school.example', $2, $3, 'invitation.created', 'a1', NULL, \
                 '2026-01-05T10:00:00Z')",
            )
            .bind(id)
            .bind(student)
            .bind(crate::domain::InvitationId::generate().to_text())
            .execute(&store.pool)
            .await
            .unwrap();
        }
        store.migrate().await.unwrap();
        let mut session = store.session().await.unwrap();
        let domain = crate::domain::DomainName::parse("school.example").unwrap();
        let scope = crate::store::ChangeScope {
            domain: Some(domain),
            student: None,
        };
        let page = session
            .changes_after(&scope, crate::domain::Position::ORIGIN, 10)
            .await
            .unwrap();
        let kept: Vec<crate::domain::AuditEvent> =
            page.changes.into_iter().map(|c| c.event).collect();
        let ids: Vec<i64> = kept.iter().map(|e| e.event_id).collect();
        assert_eq!(ids, [7, 9]);
        assert_eq!(kept[1].student_id.as_ref().map(UserId::as_str), Some("s2"));
        let mut next = kept[0].clone();
        next.student_id = None;
        next.invitation_id = None;
        assert_eq!(session.append_event(&next).await.unwrap(), 10);
    }
}
