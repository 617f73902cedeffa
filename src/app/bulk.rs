//! Bulk calls for administrators' CSV files: invite many, remove many, and sync one student's
//! guardians to a list. Every row is authorized like the single call, and a failing row never
//! affects another. Invitations go in set-based chunks (`bulk_invite`); removals are each their
//! own transaction, run concurrently (the database serialises rows of one student). A retried
//! request replays row by row, each row's request id derived from the request's.

use super::access::require;
use super::bulk_invite::{CHUNK_ROWS, InviteRow};
use super::guardians::{PairRemoval, Removal, RemovalTarget, links_of};
use super::idempotency::{Encoder, Replay, RequestKey};
use super::invitations::{Change, InvitationRef, InviteMode};
use super::read_models::InvitationView;
use super::students::StudentContext;
use super::write::Reply;
use super::{App, AppError, AppResult, Missing};
use crate::auth::Authorized;
use crate::domain::policy::{Permission, StudentAccess};
use crate::domain::sync_rules::{RemoveScope, check_removals};
use crate::domain::{
    Caller, DomainName, Email, InvitationEvent, InvitationId, InvitationSource, InvitationState,
    StudentRef, UserId, ValidationError,
};
use crate::store::{InvitationFilter, InvitationScope, StateFilter};
use chrono::{DateTime, TimeDelta, Utc};
use futures_util::StreamExt;
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

/// One kind of sync action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncKind {
    /// Invite a missing address.
    Invite,
    /// Cancel a pending invitation not in the list.
    CancelInvitation,
    /// Remove a guardian none of whose addresses is in the list.
    DeleteGuardian,
    /// Already as wanted.
    Keep,
}

/// One planned sync action and, when applied, its outcome.
#[derive(Debug)]
pub struct SyncAction {
    /// What.
    pub kind: SyncKind,
    /// The address concerned.
    pub email: Email,
    /// The guardian concerned.
    pub guardian_id: Option<UserId>,
    /// The invitation concerned.
    pub invitation_id: Option<InvitationId>,
    /// `None` for a dry run or KEEP; the result otherwise.
    pub outcome: Option<Result<(), AppError>>,
}

/// How a sync treats what is not in its list.
#[derive(Debug, Clone, Copy)]
pub struct SyncOptions {
    /// Plan only.
    pub dry_run: bool,
    /// An empty list removes (within `scope`).
    pub allow_remove_all: bool,
    /// What may be removed.
    pub scope: RemoveScope,
    /// The safety limit, in percent of the domain's links (1 to 100).
    pub max_removal_percent: u32,
    /// Delete beyond the safety limit.
    pub force: bool,
}

/// A sync's plan (with outcomes when applied) and what its safety limit was measured against.
#[derive(Debug)]
pub struct SyncOutcome {
    /// Every action, removals first.
    pub actions: Vec<SyncAction>,
    /// The student's domain.
    pub domain: DomainName,
    /// The domain's links before the call; 0 when the plan deletes none (not counted).
    pub domain_link_count: i64,
}

/// Most addresses one SyncGuardians call takes: five times the largest guardian limit, so a
/// real family always fits and a runaway list is refused before any work.
pub(super) const MAX_SYNC_ADDRESSES: usize = 100;

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
        let mut outcomes: Vec<Option<RowOutcome<InvitationView>>> =
            std::iter::repeat_with(|| None).take(rows.len()).collect();
        let mut parsed = Vec::with_capacity(rows.len());
        for (index, row) in rows.into_iter().enumerate() {
            match row {
                Ok((student, email)) => {
                    let row_key = part_key(
                        key,
                        &index.to_string(),
                        &format!("{student:?}/{}", email.as_str()),
                    );
                    parsed.push(InviteRow {
                        index,
                        student,
                        email,
                        key: if dry_run { None } else { row_key },
                    });
                }
                Err(invalid) => outcomes[index] = Some(Err(invalid.into())),
            }
        }
        let cut_off = self.cut_off(deadline);
        for chunk in parsed.chunks(CHUNK_ROWS) {
            let results = match self.before_cut_off(cut_off) {
                Ok(()) => self.invite_chunk(caller, chunk, dry_run, encode).await,
                Err(_) => chunk.iter().map(|_| Err(AppError::NotAttempted)).collect(),
            };
            for (row, result) in chunk.iter().zip(results) {
                outcomes[row.index] = Some(result);
            }
        }
        Ok(outcomes
            .into_iter()
            .map(|o| o.unwrap_or(Err(AppError::NotAttempted)))
            .collect())
    }

    /// BulkDeleteGuardians: one outcome per row, in row order.
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
        let cut_off = self.cut_off(deadline);
        let outcomes = futures_util::stream::iter(rows.into_iter().enumerate())
            .map(|(i, row)| async move {
                let (student, guardian) = row?;
                self.before_cut_off(cut_off)?;
                let row_key = part_key(key, &i.to_string(), &format!("{student:?}/{guardian:?}"));
                let access = match &guardian {
                    GuardianSelector::Id(id) => StudentAccess::DeleteLink(id.clone()),
                    GuardianSelector::Email(_) => StudentAccess::Manage,
                };
                let row_key = if how.dry_run { None } else { row_key };
                let mut tx = self.store.begin().await?;
                let ctx = self
                    .authorize_in(tx.as_mut(), caller, &student, access)
                    .await?;
                let guardian = match guardian {
                    GuardianSelector::Id(id) => RemovalTarget::Id(id),
                    GuardianSelector::Email(email) => RemovalTarget::Email(email),
                };
                let reply = Reply {
                    key: row_key.as_ref(),
                    encode,
                };
                self.remove_link(tx, caller, &ctx, &guardian, how, reply)
                    .await
            })
            .buffered(ROW_PARALLELISM)
            .collect()
            .await;
        Ok(outcomes)
    }

    /// SyncGuardians: plans what makes the student's guardians match `desired` and, unless
    /// `dry_run`, applies each action on its own. An empty list removes nothing unless
    /// `allow_remove_all`; what is not listed is removed only within `scope`, and deletions
    /// beyond the safety limit are refused before anything is done, unless forced. A guardian
    /// counts as listed when either their invited or their profile address is.
    pub async fn sync_guardians(
        &self,
        who: &Authorized,
        student: &StudentRef,
        desired: Vec<Email>,
        how: SyncOptions,
        key: Option<&RequestKey>,
    ) -> AppResult<SyncOutcome> {
        let caller = require(who, Permission::ManageGuardians)?;
        if desired.len() > MAX_SYNC_ADDRESSES {
            return Err(ValidationError::invalid(
                "guardian_email_addresses",
                format!("at most {MAX_SYNC_ADDRESSES} addresses per student"),
            )
            .into());
        }
        if !(1..=100).contains(&how.max_removal_percent) {
            return Err(ValidationError::invalid(
                "max_removal_percent",
                "a share of the domain's links between 1 and 100",
            )
            .into());
        }
        let ctx = self
            .authorize_student(caller, student, StudentAccess::Manage)
            .await?;
        let mut desired = desired;
        desired.sort();
        desired.dedup();
        let mut session = self.store.session().await?;
        let links = links_of(session.as_mut(), &ctx.student.user_id).await?;
        let pending = session
            .list_invitations(&InvitationFilter {
                scope: InvitationScope::Student(ctx.student.user_id.clone()),
                invited_email: None,
                states: StateFilter::pending_only(),
                now: self.clock.now(),
                after: None,
                limit: 100,
            })
            .await?;
        let removing = !desired.is_empty() || how.allow_remove_all;
        let mut plan = Vec::new();
        for email in &desired {
            let linked = links.iter().find(|l| {
                &l.invited_email == email || l.guardian.as_ref().is_some_and(|g| &g.email == email)
            });
            let waiting = pending.iter().find(|p| &p.invited_email == email);
            let (kind, guardian_id, invitation_id) = match (linked, waiting) {
                (Some(link), _) => (
                    SyncKind::Keep,
                    link.guardian.as_ref().map(|g| g.guardian_id.clone()),
                    Some(link.id),
                ),
                (None, Some(p)) => (SyncKind::Keep, None, Some(p.id)),
                (None, None) => (SyncKind::Invite, None, None),
            };
            plan.push(SyncAction {
                kind,
                email: email.clone(),
                guardian_id,
                invitation_id,
                outcome: None,
            });
        }
        if removing {
            for link in links.iter().filter(|l| how.scope.may_remove(l.source)) {
                let listed = desired.contains(&link.invited_email)
                    || link
                        .guardian
                        .as_ref()
                        .is_some_and(|g| desired.contains(&g.email));
                if !listed {
                    plan.push(SyncAction {
                        kind: SyncKind::DeleteGuardian,
                        email: link
                            .guardian
                            .as_ref()
                            .map(|g| g.email.clone())
                            .unwrap_or_else(|| link.invited_email.clone()),
                        guardian_id: link.guardian.as_ref().map(|g| g.guardian_id.clone()),
                        invitation_id: Some(link.id),
                        outcome: None,
                    });
                }
            }
            for p in pending.iter().filter(|p| {
                p.state == InvitationState::Pending
                    && how.scope.may_remove(p.source)
                    && !desired.contains(&p.invited_email)
            }) {
                plan.push(SyncAction {
                    kind: SyncKind::CancelInvitation,
                    email: p.invited_email.clone(),
                    guardian_id: None,
                    invitation_id: Some(p.id),
                    outcome: None,
                });
            }
        }
        let deletions = plan
            .iter()
            .filter(|a| a.kind == SyncKind::DeleteGuardian)
            .count() as i64;
        // Counted only when there is something to hold to the limit: most syncs delete nothing.
        let domain_link_count = if deletions > 0 {
            session.count_domain_links(&ctx.student.domain).await?
        } else {
            0
        };
        drop(session);
        check_removals(
            deletions,
            domain_link_count,
            how.max_removal_percent,
            how.force,
        )?;
        // Removals first, so that invitations are counted against the limit after them.
        plan.sort_by_key(|a| match a.kind {
            SyncKind::DeleteGuardian | SyncKind::CancelInvitation => 0,
            SyncKind::Invite => 1,
            SyncKind::Keep => 2,
        });
        for action in &mut plan {
            if action.kind == SyncKind::Keep {
                continue;
            }
            let action_key = part_key(
                key,
                &format!("{:?}/{}", action.kind, action.email.as_str()),
                action.email.as_str(),
            );
            let action_key = if how.dry_run { None } else { action_key };
            let result = self
                .apply_sync_action(caller, &ctx, action, action_key.as_ref(), how.dry_run)
                .await;
            if let Ok(Some(invited)) = result {
                // Not for a dry run: its invitation was rolled back.
                if !how.dry_run {
                    action.invitation_id = Some(invited);
                }
            }
            action.outcome = Some(result.map(|_| ()));
        }
        Ok(SyncOutcome {
            actions: plan,
            domain: ctx.student.domain.clone(),
            domain_link_count,
        })
    }

    /// Applies one planned sync action on the one write path; whatever fails is that action's
    /// outcome, never the call's. An invitation made (or made by the first of a retried call)
    /// is returned.
    async fn apply_sync_action(
        &self,
        caller: &Caller,
        ctx: &StudentContext,
        action: &SyncAction,
        key: Option<&RequestKey>,
        dry_run: bool,
    ) -> AppResult<Option<InvitationId>> {
        // A retried call's invitation is found again by its id, stored as the action's reply.
        let invitation_id = Reply::<InvitationView> {
            key,
            encode: &|view| view.invitation.id.to_text().into_bytes(),
        };
        let ignore_unit = Reply::<()> {
            key,
            encode: &|_| Vec::new(),
        };
        let mode = InviteMode {
            dry_run,
            source: InvitationSource::Sync,
        };
        let tx = self.store.begin().await?;
        match action.kind {
            SyncKind::Keep => Ok(None),
            SyncKind::Invite => {
                let made = self
                    .invite(tx, caller, ctx, &action.email, invitation_id, mode)
                    .await?;
                Ok(match made {
                    Replay::Fresh(view) => Some(view.invitation.id),
                    Replay::Replayed(bytes) => String::from_utf8(bytes)
                        .ok()
                        .and_then(|text| InvitationId::parse(&text).ok()),
                })
            }
            SyncKind::CancelInvitation => {
                let target = InvitationRef {
                    student: StudentRef::Id(ctx.student.user_id.clone()),
                    invitation_id: action
                        .invitation_id
                        .ok_or(AppError::NotFound(Missing::Invitation))?,
                    etag: None,
                };
                let change = Change {
                    event: InvitationEvent::Cancel,
                    dry_run,
                };
                self.change_for(tx, caller, ctx, &target, change, invitation_id)
                    .await
                    .map(|_| None)
            }
            SyncKind::DeleteGuardian => {
                let guardian = RemovalTarget::Id(
                    action
                        .guardian_id
                        .clone()
                        .ok_or(AppError::NotFound(Missing::Guardian))?,
                );
                let how = Removal {
                    allow_missing: true,
                    dry_run,
                    what: PairRemoval::LinkOnly,
                };
                self.remove_link(tx, caller, ctx, &guardian, how, ignore_unit)
                    .await
                    .map(|_| None)
            }
        }
    }
}
