//! Request ids: a retry with the same id and the same request gets the first response, stored
//! in the same transaction as the effect, for at least [`RETENTION`].

use super::{App, AppError, AppResult};
use crate::domain::{IdempotencyRecord, UserId};
use crate::store::{Session, StoreError, Transaction};
use chrono::{DateTime, TimeDelta, Utc};

/// How long first responses are kept: the contract promises 24 hours; an hour more absorbs
/// clock differences between replicas.
pub(super) const RETENTION: TimeDelta = TimeDelta::hours(25);

/// Identifies one client request for replay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestKey {
    /// Who sent it: request ids are scoped to their caller.
    pub principal: String,
    /// The client's UUID.
    pub request_id: String,
    /// The RPC.
    pub method: &'static str,
    /// Digest of the whole request.
    pub request_hash: String,
}

/// A use case's result: done now, or the stored first response of an earlier identical request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Replay<T> {
    /// Done by this call.
    Fresh(T),
    /// The encoded first response.
    Replayed(Vec<u8>),
}

/// Turns a use case's result into the bytes stored for replay (the encoded response message).
pub type Encoder<'a, T> = &'a (dyn Fn(&T) -> Vec<u8> + Send + Sync);

/// The stored response for `key`, `REQUEST_ID_REUSED` if the id came with another request.
pub(crate) async fn replayed(
    session: &mut dyn Session,
    key: &RequestKey,
) -> AppResult<Option<Vec<u8>>> {
    match session
        .get_idempotency(&key.principal, &key.request_id)
        .await?
    {
        None => Ok(None),
        Some(record) if record.method == key.method && record.request_hash == key.request_hash => {
            Ok(Some(record.response))
        }
        Some(_) => Err(AppError::RequestIdReused),
    }
}

impl App {
    /// Checks for a replay before any work.
    pub(crate) async fn replay_before(
        &self,
        key: Option<&RequestKey>,
    ) -> AppResult<Option<Vec<u8>>> {
        let Some(key) = key else { return Ok(None) };
        let mut session = self.store.session().await?;
        replayed(session.as_mut(), key).await
    }
}

/// Stores the first response inside the effect's transaction, then commits, and drops
/// `students`' links from this replica's cache. If a concurrent
/// identical request stored it first, this transaction is dropped (rolled back) and the
/// winner's response is returned instead.
pub(crate) async fn commit_with<T>(
    app: &App,
    mut tx: Box<dyn Transaction>,
    students: &[UserId],
    key: Option<&RequestKey>,
    now: DateTime<Utc>,
    result: T,
    encode: Encoder<'_, T>,
) -> AppResult<Replay<T>> {
    if let Some(key) = key {
        let record = first_response(key, encode(&result), now);
        match tx.put_idempotency(&record).await {
            Ok(()) => {}
            Err(StoreError::AlreadyExists(_)) => {
                drop(tx);
                return match app.replay_before(Some(key)).await? {
                    Some(bytes) => Ok(Replay::Replayed(bytes)),
                    None => Err(AppError::Internal("idempotency record vanished".into())),
                };
            }
            Err(other) => return Err(other.into()),
        }
    }
    tx.commit().await?;
    // This replica reads its own write at once, whatever its feed follower has seen yet.
    for student in students {
        app.freshness.forget_student(student);
    }
    Ok(Replay::Fresh(result))
}

/// The record that stores `response` as the first response to `key`.
pub(crate) fn first_response(
    key: &RequestKey,
    response: Vec<u8>,
    now: DateTime<Utc>,
) -> IdempotencyRecord {
    IdempotencyRecord {
        principal: key.principal.clone(),
        request_id: key.request_id.clone(),
        method: key.method.to_owned(),
        request_hash: key.request_hash.clone(),
        response,
        create_time: now,
    }
}
