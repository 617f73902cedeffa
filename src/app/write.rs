//! The one write path. Every change to a student's guardianship (invite, cancel, resend,
//! remove, accept, decline; single, bulk and sync) runs in one transaction on one connection:
//! the caller is authorized inside it, [`lock_for_write`] takes the student's lock and makes the
//! one idempotency check under it, the use case decides and writes, and [`end_write`] commits
//! with the first response (or rolls back a dry run).

use super::idempotency::{Encoder, Replay, RequestKey, commit_with, replayed};
use super::{App, AppResult};
use crate::domain::UserId;
use crate::store::Transaction;
use chrono::{DateTime, Utc};

/// Takes `student`'s lock and looks for the stored response to `key` under it: an identical
/// request that held the lock first has answered, and its bytes are the answer.
pub(crate) async fn lock_for_write(
    tx: &mut dyn Transaction,
    student: &UserId,
    key: Option<&RequestKey>,
) -> AppResult<Option<Vec<u8>>> {
    tx.lock_student(student).await?;
    match key {
        Some(key) => replayed(tx, key).await,
        None => Ok(None),
    }
}

/// How a write's answer is kept for a retry: under the request's key (none: not kept), encoded
/// as the RPC's response message.
pub(crate) struct Reply<'a, T> {
    /// The request's key.
    pub key: Option<&'a RequestKey>,
    /// The answer's stored form.
    pub encode: Encoder<'a, T>,
}

impl<T> Clone for Reply<'_, T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for Reply<'_, T> {}

/// How a write ends.
pub(crate) struct Ending<'a, T> {
    /// The student whose records changed (this replica's cache forgets them).
    pub student: &'a UserId,
    /// Where the answer is kept.
    pub reply: Reply<'a, T>,
    /// The time of the write.
    pub now: DateTime<Utc>,
    /// Roll back instead of committing.
    pub dry_run: bool,
}

/// Commits `tx` with `result` as the first response, or drops it (rolls back) for a dry run.
pub(crate) async fn end_write<T>(
    app: &App,
    tx: Box<dyn Transaction>,
    result: T,
    ending: Ending<'_, T>,
) -> AppResult<Replay<T>> {
    if ending.dry_run {
        return Ok(Replay::Fresh(result));
    }
    let Reply { key, encode } = ending.reply;
    commit_with(
        app,
        tx,
        std::slice::from_ref(ending.student),
        key,
        ending.now,
        result,
        encode,
    )
    .await
}
