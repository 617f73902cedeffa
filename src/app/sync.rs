//! SyncGuardians: make one student's guardians match a list. The plan is read under the
//! student's lock and applied in the same transaction, set-based: the cancellations and the
//! removals as the bulk removal writes them (`bulk_remove`), then the invitations as the bulk
//! invitation writes them (`bulk_invite`), so each invitation counts against the limits after
//! the removals. Should the set be refused, each action takes the single write path on its own.

use super::access::require;
use super::bulk::{GuardianSelector, part_key};
use super::bulk_invite::InviteRow;
use super::bulk_remove::RemoveRow;
use super::guardians::{PairRemoval, Removal, RemovalTarget, links_of};
use super::idempotency::{Replay, RequestKey};
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
use crate::store::{InvitationFilter, InvitationScope, Session, StateFilter, Transaction};

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

/// An invitation action's stored answer: the invitation's id, so that a retried call names it.
fn invitation_id_bytes(view: &InvitationView) -> Vec<u8> {
    view.invitation.id.to_text().into_bytes()
}

/// A removal action's stored answer: nothing.
fn no_bytes(_: &()) -> Vec<u8> {
    Vec::new()
}

impl App {
    /// SyncGuardians: plans what makes the student's guardians match `desired` and, unless
    /// `dry_run`, applies it. An empty list removes nothing unless `allow_remove_all`; what is
    /// not listed is removed only within `scope`, and deletions beyond the safety limit are
    /// refused before anything is done, unless forced. A guardian counts as listed when either
    /// their invited or their profile address is.
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
        let mut tx = self.store.begin().await?;
        let ctx = self
            .authorize_in(tx.as_mut(), caller, student, StudentAccess::Manage)
            .await?;
        tx.lock_student(&ctx.student.user_id).await?;
        let (mut plan, domain_link_count) =
            plan_sync(tx.as_mut(), &ctx, desired, how, self.clock.now()).await?;
        match self
            .apply_sync_in(tx.as_mut(), caller, &ctx, &mut plan, key, how.dry_run)
            .await
        {
            Ok(()) if how.dry_run => {}
            Ok(()) => {
                tx.commit().await.map_err(|error| {
                    AppError::Unavailable(format!(
                        "the sync's commit failed ({error}); retry the request"
                    ))
                })?;
                self.freshness.forget_student(&ctx.student.user_id);
            }
            Err(error) => {
                drop(tx);
                tracing::warn!(%error, "a sync failed as a set; applying its actions one by one");
                self.apply_one_by_one(caller, &ctx, &mut plan, key, how.dry_run)
                    .await;
            }
        }
        Ok(SyncOutcome {
            actions: plan,
            domain: ctx.student.domain.clone(),
            domain_link_count,
        })
    }

    /// Applies the plan inside `tx`: every action's outcome set, nothing committed.
    async fn apply_sync_in(
        &self,
        tx: &mut dyn Transaction,
        caller: &Caller,
        ctx: &StudentContext,
        plan: &mut [SyncAction],
        key: Option<&RequestKey>,
        dry_run: bool,
    ) -> AppResult<()> {
        let student = StudentRef::Id(ctx.student.user_id.clone());
        let (mut cancels, mut deletes, mut invites) = (Vec::new(), Vec::new(), Vec::new());
        for (index, action) in plan.iter_mut().enumerate() {
            let key = action_key(key, action, dry_run);
            let remove = |guardian| RemoveRow {
                index,
                student: student.clone(),
                guardian,
                key: key.clone(),
            };
            match action.kind {
                SyncKind::Keep => {}
                SyncKind::CancelInvitation => {
                    cancels.push(remove(GuardianSelector::Email(action.email.clone())));
                }
                SyncKind::DeleteGuardian => match &action.guardian_id {
                    Some(id) => deletes.push(remove(GuardianSelector::Id(id.clone()))),
                    None => action.outcome = Some(Err(AppError::NotFound(Missing::Guardian))),
                },
                SyncKind::Invite => invites.push(InviteRow {
                    index,
                    student: student.clone(),
                    email: action.email.clone(),
                    key,
                }),
            }
        }
        let cancel = Removal {
            allow_missing: false,
            dry_run,
            what: PairRemoval::PendingOnly,
        };
        let delete = Removal {
            allow_missing: true,
            dry_run,
            what: PairRemoval::LinkOnly,
        };
        for (rows, how) in [(&cancels, cancel), (&deletes, delete)] {
            let (outcomes, _) = self
                .remove_rows_in(tx, caller, rows, how, &no_bytes)
                .await?;
            for (row, outcome) in rows.iter().zip(outcomes) {
                plan[row.index].outcome = Some(outcome.map(|_| ()));
            }
        }
        let mode = InviteMode {
            dry_run,
            source: InvitationSource::Sync,
        };
        let (outcomes, _) = self
            .invite_rows_in(tx, caller, &invites, mode, &invitation_id_bytes)
            .await?;
        for (row, outcome) in invites.iter().zip(outcomes) {
            let action = &mut plan[row.index];
            // Not for a dry run: its invitation was rolled back.
            if !dry_run && let Ok(made) = &outcome {
                action.invitation_id = made_invitation(made);
            }
            action.outcome = Some(outcome.map(|_| ()));
        }
        Ok(())
    }

    /// Applies each action of the plan on the single write path, in its own transaction;
    /// whatever fails is that action's outcome.
    async fn apply_one_by_one(
        &self,
        caller: &Caller,
        ctx: &StudentContext,
        plan: &mut [SyncAction],
        key: Option<&RequestKey>,
        dry_run: bool,
    ) {
        for action in plan.iter_mut() {
            if action.kind == SyncKind::Keep {
                continue;
            }
            let key = action_key(key, action, dry_run);
            let result = self
                .apply_sync_action(caller, ctx, action, key.as_ref(), dry_run)
                .await;
            if !dry_run && let Ok(Some(invited)) = result {
                action.invitation_id = Some(invited);
            }
            action.outcome = Some(result.map(|_| ()));
        }
    }

    /// Applies one planned sync action on the one write path; an invitation made (or made by
    /// the first of a retried call) is returned.
    async fn apply_sync_action(
        &self,
        caller: &Caller,
        ctx: &StudentContext,
        action: &SyncAction,
        key: Option<&RequestKey>,
        dry_run: bool,
    ) -> AppResult<Option<InvitationId>> {
        let invitation_id = Reply::<InvitationView> {
            key,
            encode: &invitation_id_bytes,
        };
        let tx = self.store.begin().await?;
        match action.kind {
            SyncKind::Keep => Ok(None),
            SyncKind::Invite => {
                let mode = InviteMode {
                    dry_run,
                    source: InvitationSource::Sync,
                };
                let made = self
                    .invite(tx, caller, ctx, &action.email, invitation_id, mode)
                    .await?;
                Ok(made_invitation(&made))
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
                let reply = Reply {
                    key,
                    encode: &no_bytes,
                };
                self.remove_link(tx, caller, ctx, &guardian, how, reply)
                    .await
                    .map(|_| None)
            }
        }
    }
}

/// The request key of one action of a sync (none for a dry run): stable for the same request,
/// kind and address, so a retried call replays each action.
fn action_key(key: Option<&RequestKey>, action: &SyncAction, dry_run: bool) -> Option<RequestKey> {
    if dry_run {
        return None;
    }
    let part = format!("{:?}/{}", action.kind, action.email.as_str());
    part_key(key, &part, action.email.as_str())
}

/// The invitation an invite action made, or that the first of a retried call made.
fn made_invitation(made: &Replay<InvitationView>) -> Option<InvitationId> {
    match made {
        Replay::Fresh(view) => Some(view.invitation.id),
        Replay::Replayed(bytes) => std::str::from_utf8(bytes)
            .ok()
            .and_then(|text| InvitationId::parse(text).ok()),
    }
}

/// What makes the student's guardians match `desired`, removals first, read on `session` (the
/// sync's transaction, under the student's lock), held to the safety limit; and the domain's
/// links it was measured against (0 when the plan deletes none: not counted).
async fn plan_sync(
    session: &mut dyn Session,
    ctx: &StudentContext,
    mut desired: Vec<Email>,
    how: SyncOptions,
    now: chrono::DateTime<chrono::Utc>,
) -> AppResult<(Vec<SyncAction>, i64)> {
    desired.sort();
    desired.dedup();
    let links = links_of(session, &ctx.student.user_id).await?;
    let pending = session
        .list_invitations(&InvitationFilter {
            scope: InvitationScope::Student(ctx.student.user_id.clone()),
            invited_email: None,
            states: StateFilter::pending_only(),
            now,
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
    Ok((plan, domain_link_count))
}
