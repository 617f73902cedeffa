//! Bulk resend (ResendGuardianInvitations): many PENDING invitations sent again, each with a new
//! token and expiry and the email again, named by (student, address) rows from a file or chosen
//! by when they were last sent. Each row is its own write on the one write path, authorized as
//! the single ResendGuardianInvitation would be.

use super::access::require;
use super::bulk::{MAX_BULK_ROWS, ROW_PARALLELISM, RowOutcome, part_key, too_many};
use super::idempotency::{Encoder, RequestKey};
use super::invitations::{Change, InvitationRef};
use super::read_models::InvitationView;
use super::write::Reply;
use super::{App, AppError, AppResult, Missing};
use crate::auth::Authorized;
use crate::domain::policy::{Permission, StudentAccess};
use crate::domain::{
    Caller, CallerRole, DomainName, Email, InvitationEvent, InvitationId, StudentRef,
    ValidationError,
};
use crate::store::{InvitationFilter, InvitationScope, StateFilter};
use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use std::time::Instant;

/// Which invitations a bulk resend sends again.
#[derive(Debug)]
pub enum ResendSelection {
    /// The PENDING invitation of each (student, address) pair; a malformed row is its error.
    Pairs(Vec<Result<(StudentRef, Email), ValidationError>>),
    /// Every live PENDING invitation of the domain last sent before the time, oldest first.
    SentBefore(DomainName, DateTime<Utc>),
}

/// What a bulk resend did.
#[derive(Debug)]
pub struct ResendOutcome {
    /// One outcome per row, in row order (per chosen invitation, oldest first).
    pub rows: Vec<RowOutcome<InvitationView>>,
    /// More invitations were sent before the time than one call takes.
    pub more: bool,
    /// For a choice by age, the invitation each row is about (so that a failed row still
    /// says which); empty for pairs.
    pub chosen: Vec<(crate::domain::UserId, InvitationId)>,
}

/// One invitation to send again, as a row names it.
enum Target {
    /// By the pair: the invitation is looked up when the row runs.
    Pair(StudentRef, Email),
    /// Chosen by age: known.
    Known(StudentRef, InvitationId),
}

impl App {
    /// ResendGuardianInvitations.
    pub async fn bulk_resend(
        &self,
        who: &Authorized,
        selection: ResendSelection,
        dry_run: bool,
        deadline: Option<Instant>,
        key: Option<&RequestKey>,
        encode: Encoder<'_, InvitationView>,
    ) -> AppResult<ResendOutcome> {
        let caller = require(who, Permission::ManageGuardians)?;
        let limit = MAX_BULK_ROWS;
        let mut chosen_ids = Vec::new();
        let (targets, more): (Vec<Result<Target, ValidationError>>, bool) = match selection {
            ResendSelection::Pairs(rows) => {
                too_many(rows.len())?;
                let targets = rows
                    .into_iter()
                    .map(|row| row.map(|(student, email)| Target::Pair(student, email)))
                    .collect();
                (targets, false)
            }
            ResendSelection::SentBefore(domain, before) => {
                // Choosing by age reads a whole domain: its administrators and services only.
                if !matches!(caller.role, CallerRole::Admin | CallerRole::Service)
                    || !caller.acts_in(&domain)
                {
                    return Err(AppError::NotAllowed(
                        "only the domain's administrators and services choose invitations by \
                         age; name the rows instead"
                            .into(),
                    ));
                }
                let mut session = self.store.session().await?;
                let mut chosen = session
                    .pending_sent_before(&domain, before, self.clock.now(), limit as u32 + 1)
                    .await?;
                let more = chosen.len() > limit;
                chosen.truncate(limit);
                chosen_ids = chosen
                    .iter()
                    .map(|inv| (inv.student_id.clone(), inv.id))
                    .collect();
                let targets = chosen
                    .into_iter()
                    .map(|inv| Ok(Target::Known(StudentRef::Id(inv.student_id), inv.id)))
                    .collect();
                (targets, more)
            }
        };
        let cut_off = self.cut_off(deadline);
        let rows = futures_util::stream::iter(targets.into_iter().enumerate())
            .map(|(index, target)| async move {
                let target = target?;
                self.before_cut_off(cut_off)?;
                // A chosen invitation's part is its id, so that a retried call, which chooses
                // again, replays each invitation it had already sent.
                let part = match &target {
                    Target::Pair(student, email) => {
                        format!("{index}\u{0}{student:?}/{}", email.as_str())
                    }
                    Target::Known(_, id) => id.to_text(),
                };
                let row_key = if dry_run {
                    None
                } else {
                    part_key(key, &part, &part)
                };
                self.resend_one(caller, target, dry_run, row_key.as_ref(), encode)
                    .await
            })
            .buffered(ROW_PARALLELISM)
            .collect()
            .await;
        Ok(ResendOutcome {
            rows,
            more,
            chosen: chosen_ids,
        })
    }

    async fn resend_one(
        &self,
        caller: &Caller,
        target: Target,
        dry_run: bool,
        key: Option<&RequestKey>,
        encode: Encoder<'_, InvitationView>,
    ) -> RowOutcome<InvitationView> {
        let mut tx = self.store.begin().await?;
        let student = match &target {
            Target::Pair(student, _) | Target::Known(student, _) => student,
        };
        let ctx = self
            .authorize_in(tx.as_mut(), caller, student, StudentAccess::Manage)
            .await?;
        let invitation_id = match target {
            Target::Known(_, id) => id,
            Target::Pair(_, email) => tx
                .list_invitations(&InvitationFilter {
                    scope: InvitationScope::Student(ctx.student.user_id.clone()),
                    invited_email: Some(email),
                    states: StateFilter::pending_only(),
                    now: self.clock.now(),
                    after: None,
                    limit: 1,
                })
                .await?
                .into_iter()
                .next()
                .map(|inv| inv.id)
                .ok_or(AppError::NotFound(Missing::Invitation))?,
        };
        let target = InvitationRef {
            student: StudentRef::Id(ctx.student.user_id.clone()),
            invitation_id,
            etag: None,
        };
        let change = Change {
            event: InvitationEvent::Resend,
            dry_run,
        };
        self.change_for(tx, caller, &ctx, &target, change, Reply { key, encode })
            .await
    }
}
