//! The store's error contract, the same for both backends: the conformance suite checks that
//! each failure maps to the same variant on Postgres and on SQLite.

use crate::domain::Invitation;
use thiserror::Error;

/// Result of a store call.
pub type StoreResult<T> = Result<T, StoreError>;

/// Which uniqueness rule a write broke.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UniqueKey {
    /// One PENDING invitation per (student, address).
    PendingInvitation,
    /// One ACCEPTED link per (student, guardian).
    GuardianLink,
    /// Invitation tokens are unique.
    InvitationToken,
    /// Invitation ids are unique.
    InvitationId,
    /// Email addresses of directory users are unique.
    UserEmail,
    /// (principal, request id) is unique.
    IdempotencyKey,
    /// Outbox message ids are unique.
    OutboxMessage,
    /// One summary per (guardian, period).
    SummaryDelivery,
}

/// Why a store call failed.
#[derive(Debug, Error)]
pub enum StoreError {
    /// A uniqueness rule refused the write.
    #[error("unique key {0:?} already exists")]
    AlreadyExists(UniqueKey),
    /// A compare-and-set found the row changed (or gone): someone else won the race.
    #[error("the record changed concurrently")]
    Conflict,
    /// The database could not order this transaction against another; retrying may succeed.
    #[error("transaction conflict, retry: {0}")]
    Retry(String),
    /// The database cannot be reached, or no connection became free in time.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// A stored value that this build cannot read.
    #[error("stored data unreadable: {0}")]
    Corrupt(String),
    /// The database URL or options are unusable.
    #[error("store configuration: {0}")]
    Config(String),
    /// Any other database failure.
    #[error("database error: {0}")]
    Internal(String),
}

impl StoreError {
    /// Maps a unique violation to `key`, any other error as [`From`] does. Only the call site
    /// knows which rule an insert can break, so it names it.
    pub(crate) fn unique_as(err: sqlx::Error, key: UniqueKey) -> Self {
        match &err {
            sqlx::Error::Database(db) if db.is_unique_violation() => Self::AlreadyExists(key),
            _ => Self::from(err),
        }
    }
}

impl StoreError {
    /// Maps a unique violation to [`StoreError::Conflict`]: for writes whose uniqueness is the
    /// compare-and-set itself.
    pub(crate) fn unique_as_conflict(err: sqlx::Error) -> Self {
        match &err {
            sqlx::Error::Database(db) if db.is_unique_violation() => Self::Conflict,
            _ => Self::from(err),
        }
    }
}

impl From<sqlx::Error> for StoreError {
    fn from(err: sqlx::Error) -> Self {
        match &err {
            sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) => {
                Self::Unavailable(err.to_string())
            }
            sqlx::Error::Tls(_) | sqlx::Error::Protocol(_) => Self::Unavailable(err.to_string()),
            sqlx::Error::Database(db)
                if db.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some() =>
            {
                // The primary result code is the low byte of SQLite's extended code.
                let primary = db
                    .code()
                    .and_then(|c| c.parse::<i32>().ok())
                    .map(|c| c & 0xff);
                match primary {
                    // SQLITE_BUSY, SQLITE_LOCKED: another writer held the lock too long.
                    Some(5) | Some(6) => Self::Retry(err.to_string()),
                    _ => Self::Internal(err.to_string()),
                }
            }
            sqlx::Error::Database(db) => match db.code().as_deref() {
                // serialization_failure, deadlock_detected
                Some("40001") | Some("40P01") => Self::Retry(err.to_string()),
                // admin_shutdown, crash_shutdown, cannot_connect_now, too_many_connections
                Some("57P01") | Some("57P02") | Some("57P03") | Some("53300") => {
                    Self::Unavailable(err.to_string())
                }
                // query_canceled: the statement timeout fired (a slow or locked database).
                Some("57014") => Self::Unavailable(err.to_string()),
                // Connection exceptions, a refused role, a database that is not there: the
                // database cannot be used, which is not the caller's request's fault.
                Some(code)
                    if code.starts_with("08") || code.starts_with("28") || code == "3D000" =>
                {
                    Self::Unavailable(err.to_string())
                }
                _ => Self::Internal(err.to_string()),
            },
            sqlx::Error::ColumnDecode { .. } | sqlx::Error::Decode(_) => {
                Self::Corrupt(err.to_string())
            }
            _ => Self::Internal(err.to_string()),
        }
    }
}

/// Tells which of the invitation table's unique rules a write broke, from the constraint name
/// (Postgres) or the columns named in the message (SQLite).
pub(crate) fn invitation_unique(err: sqlx::Error, _written: &Invitation) -> StoreError {
    let key = match &err {
        sqlx::Error::Database(db) if db.is_unique_violation() => {
            let text = format!("{} {}", db.constraint().unwrap_or_default(), db.message());
            if text.contains("token") {
                UniqueKey::InvitationToken
            } else if text.contains("one_link") || text.contains("guardian_id") {
                UniqueKey::GuardianLink
            } else if text.contains("pkey") || text.contains("invitation_id") {
                UniqueKey::InvitationId
            } else {
                UniqueKey::PendingInvitation
            }
        }
        _ => return StoreError::from(err),
    };
    StoreError::AlreadyExists(key)
}
