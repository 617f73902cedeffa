//! Bulk calls for administrators' CSV files: invite many, remove many (a student's sync is in
//! `sync`). Every row is authorized like the single call, and a failing row never
//! affects another. Invitations and removals go in set-based chunks (`bulk_invite`,
//! `bulk_remove`). A retried request replays row by row, each row's request id derived from
//! the request's.

use super::access::require;
use super::bulk_invite::{InviteRow, InviteWork};
use super::bulk_remove::RemoveRow;
use super::bulk_remove::RemoveWork;
use super::chunk::ChunkRun;
use super::guardians::Removal;
use super::idempotency::{Encoder, Replay, RequestKey};
use super::read_models::InvitationView;
use super::{App, AppError, AppResult};
use crate::auth::Authorized;
use crate::domain::policy::Permission;
use crate::domain::{Email, StudentRef, UserId, ValidationError};
use chrono::{DateTime, TimeDelta, Utc};
use sha2::{Digest, Sha256};
use std::time::Instant;

/// Most rows one bulk call takes.
pub const MAX_BULK_ROWS: usize = 10_000;
/// Rows of one request in flight at once.
pub(super) const ROW_PARALLELISM: usize = 16;

/// The outcome of one row.
pub type RowOutcome<T> = Result<Replay<T>, AppError>;

/// Who a removal row names.
#[derive(Debug, Clone)]
pub enum GuardianSelector {
    /// By account id.
    Id(UserId),
    /// By profile or invited address.
    Email(Email),
}

/// How close to the call's deadline a bulk call stops starting rows: enough for the rows in
/// flight to finish and the answer to be written.
pub(super) const ROW_DEADLINE_MARGIN: TimeDelta = TimeDelta::seconds(1);

impl App {
    /// The moment, by the service's clock, after which no row is started: the transport's
    /// deadline less the margin. Measured by the injected clock (the system clock in
    /// production), so that a test can move past it without waiting.
    pub(super) fn cut_off(&self, deadline: Option<Instant>) -> Option<DateTime<Utc>> {
        deadline.map(|at| {
            let left = TimeDelta::from_std(at.saturating_duration_since(Instant::now()))
                .unwrap_or(TimeDelta::MAX);
            self.clock.now() + left - ROW_DEADLINE_MARGIN
        })
    }

    /// Refuses to start a row past the cut-off.
    pub(super) fn before_cut_off(&self, cut_off: Option<DateTime<Utc>>) -> AppResult<()> {
        match cut_off {
            Some(at) if self.clock.now() >= at => Err(AppError::NotAttempted),
            _ => Ok(()),
        }
    }
}

pub(super) fn too_many(rows: usize) -> AppResult<()> {
    if rows > MAX_BULK_ROWS {
        Err(
            ValidationError::invalid("rows", format!("at most {MAX_BULK_ROWS} rows per call"))
                .into(),
        )
    } else {
        Ok(())
    }
}

/// The request key of one part of a bulk request: stable for the same request and part.
pub(super) fn part_key(key: Option<&RequestKey>, part: &str, content: &str) -> Option<RequestKey> {
    key.map(|k| {
        let digest = Sha256::digest(format!("{}\u{0}{part}", k.request_id).as_bytes());
        RequestKey {
            principal: k.principal.clone(),
            request_id: crate::domain::hex::hex(&digest[..16]),
            method: k.method,
            request_hash: crate::domain::hex::hex(&Sha256::digest(content.as_bytes())),
        }
    })
}

impl App {
    /// BulkCreateGuardianInvitations: one outcome per row, in row order. Rows go in chunks,
    /// each one set-based transaction (see `bulk_invite`).
    pub async fn bulk_invite(
        &self,
        who: &Authorized,
        rows: Vec<Result<(StudentRef, Email), ValidationError>>,
        dry_run: bool,
        deadline: Option<Instant>,
        key: Option<&RequestKey>,
        encode: Encoder<'_, InvitationView>,
    ) -> AppResult<Vec<RowOutcome<InvitationView>>> {
        let caller = require(who, Permission::ManageGuardians)?;
        too_many(rows.len())?;
        let make = |index: usize, (student, email): (StudentRef, Email)| {
            let content = format!("{student:?}/{}", email.as_str());
            let row_key = part_key(key, &index.to_string(), &content);
            InviteRow {
                index,
                student,
                email,
                key: if dry_run { None } else { row_key },
            }
        };
        let run = ChunkRun { deadline, dry_run };
        let work = InviteWork {
            caller,
            dry_run,
            encode,
        };
        Ok(self.run_chunks(rows, run, make, &work).await)
    }

    /// BulkDeleteGuardians: one outcome per row, in row order. Rows go in chunks, each one
    /// set-based transaction (see `bulk_remove`).
    pub async fn bulk_remove(
        &self,
        who: &Authorized,
        rows: Vec<Result<(StudentRef, GuardianSelector), ValidationError>>,
        how: Removal,
        deadline: Option<Instant>,
        key: Option<&RequestKey>,
        encode: Encoder<'_, ()>,
    ) -> AppResult<Vec<RowOutcome<()>>> {
        let caller = require(who, Permission::ManageGuardians)?;
        too_many(rows.len())?;
        let make = |index: usize, (student, guardian): (StudentRef, GuardianSelector)| {
            let content = format!("{student:?}/{guardian:?}");
            let row_key = part_key(key, &index.to_string(), &content);
            RemoveRow {
                index,
                student,
                guardian,
                key: if how.dry_run { None } else { row_key },
            }
        };
        let run = ChunkRun {
            deadline,
            dry_run: how.dry_run,
        };
        let work = RemoveWork {
            caller,
            how,
            encode,
        };
        Ok(self.run_chunks(rows, run, make, &work).await)
    }
}
