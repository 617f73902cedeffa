//! Inviting guardians: create (under the rules of `domain::invite_rules`), resend, cancel.

use super::access::require;
use super::families::Families;
use super::idempotency::{Encoder, Replay, RequestKey};
use super::lifecycle::{
    InvitationLetter, apply, audit, cancellation_notice, expire, language_of_address, new_token,
};
use super::read_models::{InvitationView, StudentLabel};
use super::students::StudentContext;
use super::write::{Ending, Reply, end_write, lock_for_write};
use super::{App, AppError, AppResult, Missing};
use crate::auth::Authorized;
use crate::domain::invite_rules::InviteFacts;
use crate::domain::policy::{Permission, StudentAccess};
use crate::domain::{
    Caller, Email, Invitation, InvitationEvent, InvitationId, InvitationSource, InvitationState,
    StudentRef, UserId,
};
use crate::mail::Template;
use crate::store::{
    InvitationFilter, InvitationScope, StateFilter, StoreError, Transaction, UniqueKey,
};
use chrono::{DateTime, TimeDelta, Utc};

/// Most of a student's invitations read to decide on a new one (far above what a student has).
const MAX_STUDENT_RECORDS: u32 = 10_000;

/// Which invitation a request names.
#[derive(Debug, Clone)]
pub struct InvitationRef {
    /// The student.
    pub student: StudentRef,
    /// The invitation.
    pub invitation_id: InvitationId,
    /// Act only if the invitation still has this etag.
    pub etag: Option<String>,
}

/// A transition a manager asks for, and whether to keep it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Change {
    /// Cancel or Resend.
    pub event: InvitationEvent,
    /// Check and roll back.
    pub dry_run: bool,
}

/// How an invitation is made: for real or as a dry run, and by whom.
#[derive(Debug, Clone, Copy)]
pub(crate) struct InviteMode {
    /// Check and roll back.
    pub dry_run: bool,
    /// A person or a sync.
    pub source: InvitationSource,
}

impl InviteMode {
    /// A person's invitation, kept.
    pub(crate) const MANUAL: Self = Self {
        dry_run: false,
        source: InvitationSource::Manual,
    };
}

impl App {
    /// CreateGuardianInvitation.
    pub async fn create_invitation(
        &self,
        who: &Authorized,
        student: &StudentRef,
        invited: &Email,
        key: Option<&RequestKey>,
        encode: Encoder<'_, InvitationView>,
    ) -> AppResult<Replay<InvitationView>> {
        let caller = require(who, Permission::ManageGuardians)?;
        let mut tx = self.store.begin().await?;
        // Access first: a replay answers only a caller that may still see the student.
        let ctx = self
            .authorize_in(tx.as_mut(), caller, student, StudentAccess::Manage)
            .await?;
        let reply = Reply { key, encode };
        self.invite(tx, caller, &ctx, invited, reply, InviteMode::MANUAL)
            .await
    }

    /// Creates one invitation for a student the caller may manage (single and bulk calls).
    /// With `dry_run`, everything is checked and written inside the transaction, which is then
    /// rolled back: the answer is what a real call would give, and nothing stays.
    pub(crate) async fn invite(
        &self,
        mut tx: Box<dyn Transaction>,
        caller: &Caller,
        ctx: &StudentContext,
        invited: &Email,
        reply: Reply<'_, InvitationView>,
        mode: InviteMode,
    ) -> AppResult<Replay<InvitationView>> {
        let key = reply.key;
        let settings = &ctx.settings;
        let student = &ctx.student;
        if let Some(bytes) = lock_for_write(tx.as_mut(), &student.user_id, key).await? {
            return Ok(Replay::Replayed(bytes));
        }
        if !settings.guardian_access_enabled {
            return Err(AppError::GuardianAccessDisabled);
        }
        if invited == &student.email {
            return Err(AppError::GuardianEmailIsStudent);
        }
        let now = self.clock.now();
        // Student, then address: every writer takes the locks in this order.
        tx.lock_address(invited).await?;
        let request_id = key.map(|k| k.request_id.as_str());
        // One read of the student's invitations answers every check below (a student has a few
        // dozen at most); the student's lock keeps it true until commit.
        let records = tx
            .list_invitations(&InvitationFilter {
                scope: InvitationScope::Student(student.user_id.clone()),
                invited_email: None,
                states: StateFilter::all(),
                now,
                after: None,
                limit: MAX_STUDENT_RECORDS,
            })
            .await?;
        let facts = InviteFacts::of(&records, invited, &self.stand_in(invited), now);
        for &stale in &facts.stale {
            // A PENDING row past its expiry still holds the one-pending index: settle it first.
            expire(tx.as_mut(), stale.clone(), request_id, now).await?;
        }
        facts.may_invite(i64::from(settings.max_guardians_per_student))?;
        let address_limit = i64::from(settings.max_students_per_guardian);
        let address_current = tx.count_students_for_address(invited, now).await?;
        if address_current >= address_limit {
            return Err(AppError::GuardianStudentLimitReached {
                limit: address_limit,
                current: address_current,
            });
        }
        let (mut invitation, token) = new_invitation(caller, ctx, invited, mode.source, now);
        // A dry run shows no family: it would name one that is never stored.
        let families = match mode.dry_run {
            true => None,
            false => Families::load(self, tx.as_mut(), std::slice::from_ref(invited), now).await?,
        };
        if let Some(mut families) = families {
            // Its email goes with its family's, when the family's window closes.
            families.join(&mut invitation, now);
            families.store(tx.as_mut()).await?;
        }
        match tx.insert_invitation(&invitation).await {
            Ok(()) => {}
            Err(StoreError::AlreadyExists(UniqueKey::PendingInvitation)) => {
                return Err(AppError::InvitationAlreadyPending);
            }
            Err(StoreError::AlreadyExists(UniqueKey::GuardianLink)) => {
                return Err(AppError::GuardianAlreadyLinked);
            }
            Err(other) => return Err(other.into()),
        }
        audit(
            tx.as_mut(),
            &invitation,
            "invitation.created",
            &caller.subject,
            request_id,
            now,
        )
        .await?;
        if invitation.family_id.is_none() {
            let inviter = self.display_name_of(tx.as_mut(), caller).await?;
            let locale = language_of_address(tx.as_mut(), invited).await?;
            self.queue_invitation_mail(
                tx.as_mut(),
                &InvitationLetter {
                    template: Template::Invitation,
                    settings,
                    invitation: &invitation,
                    token: &token,
                    student_name: &student.display_name,
                    inviter_name: &inviter,
                    locale,
                },
                now,
            )
            .await?;
        }
        let view = InvitationView {
            observed_state: invitation.state,
            invitation,
            show_invited_email: ctx.grant.may_manage,
            delivery: settings
                .guardian_access_enabled
                .then_some(crate::domain::DeliveryStatus::Queued),
            student: Some(StudentLabel::of(&ctx.student)),
        };
        let ending = Ending {
            student: &ctx.student.user_id,
            reply,
            now,
            dry_run: mode.dry_run,
        };
        end_write(self, tx, view, ending).await
    }

    /// The name emails give the inviter: their directory name; empty for a caller who is not
    /// a named person there (an administrator's account, a service), whom the email names by
    /// role ("the school administration"), never by a domain name.
    pub(crate) async fn display_name_of(
        &self,
        tx: &mut dyn Transaction,
        caller: &Caller,
    ) -> AppResult<String> {
        if let Ok(id) = UserId::parse(&caller.subject)
            && let Some(user) = tx.get_user(&id).await?
        {
            return Ok(user.display_name);
        }
        Ok(String::new())
    }

    /// CancelGuardianInvitation: PENDING -> REMOVED(CANCELLED); the invitee is told.
    pub async fn cancel_invitation(
        &self,
        who: &Authorized,
        target: &InvitationRef,
        key: Option<&RequestKey>,
        encode: Encoder<'_, InvitationView>,
    ) -> AppResult<Replay<InvitationView>> {
        self.change_invitation(who, target, key, encode, InvitationEvent::Cancel)
            .await
    }

    /// ResendGuardianInvitation: a new token and expiry, and the email again.
    pub async fn resend_invitation(
        &self,
        who: &Authorized,
        target: &InvitationRef,
        key: Option<&RequestKey>,
        encode: Encoder<'_, InvitationView>,
    ) -> AppResult<Replay<InvitationView>> {
        self.change_invitation(who, target, key, encode, InvitationEvent::Resend)
            .await
    }

    async fn change_invitation(
        &self,
        who: &Authorized,
        target: &InvitationRef,
        key: Option<&RequestKey>,
        encode: Encoder<'_, InvitationView>,
        event: InvitationEvent,
    ) -> AppResult<Replay<InvitationView>> {
        let caller = require(who, Permission::ManageGuardians)?;
        let mut tx = self.store.begin().await?;
        let ctx = self
            .authorize_in(tx.as_mut(), caller, &target.student, StudentAccess::Manage)
            .await?;
        let change = Change {
            event,
            dry_run: false,
        };
        self.change_for(tx, caller, &ctx, target, change, Reply { key, encode })
            .await
    }

    /// Cancels or resends an invitation of a student the caller may manage (single and sync).
    pub(crate) async fn change_for(
        &self,
        mut tx: Box<dyn Transaction>,
        caller: &Caller,
        ctx: &StudentContext,
        target: &InvitationRef,
        change: Change,
        reply: Reply<'_, InvitationView>,
    ) -> AppResult<Replay<InvitationView>> {
        let key = reply.key;
        let Change { event, dry_run } = change;
        if let Some(bytes) = lock_for_write(tx.as_mut(), &ctx.student.user_id, key).await? {
            return Ok(Replay::Replayed(bytes));
        }
        if event == InvitationEvent::Resend && !ctx.settings.guardian_access_enabled {
            return Err(AppError::GuardianAccessDisabled);
        }
        let current = tx
            .get_invitation(target.invitation_id)
            .await?
            .filter(|i| i.student_id == ctx.student.user_id)
            .ok_or(AppError::NotFound(Missing::Invitation))?;
        if target
            .etag
            .as_deref()
            .is_some_and(|etag| etag != current.etag())
        {
            return Err(AppError::EtagMismatch);
        }
        let request_id = key.map(|k| k.request_id.as_str());
        let stored = self
            .manage_in(tx.as_mut(), caller, ctx, current, event, request_id)
            .await?;
        let now = self.clock.now();
        let view = InvitationView {
            observed_state: stored.observed_state(now),
            invitation: stored,
            show_invited_email: ctx.grant.may_manage,
            delivery: ctx
                .settings
                .guardian_access_enabled
                .then_some(crate::domain::DeliveryStatus::Queued),
            student: Some(StudentLabel::of(&ctx.student)),
        };
        let ending = Ending {
            student: &ctx.student.user_id,
            reply,
            now,
            dry_run,
        };
        end_write(self, tx, view, ending).await
    }
}

/// A new PENDING invitation of `ctx`'s student to `invited` from `caller`, and its token.
pub(crate) fn new_invitation(
    caller: &Caller,
    ctx: &StudentContext,
    invited: &Email,
    source: InvitationSource,
    now: DateTime<Utc>,
) -> (Invitation, String) {
    let (token, token_hash) = new_token();
    let student = &ctx.student;
    let ttl = TimeDelta::days(i64::from(ctx.settings.invitation_ttl_days));
    let invitation = Invitation {
        id: InvitationId::generate(),
        domain: student.domain.clone(),
        student_id: student.user_id.clone(),
        invited_email: invited.clone(),
        state: InvitationState::Pending,
        inviter_id: caller.subject.clone(),
        guardian: None,
        token_hash,
        create_time: now,
        update_time: now,
        expire_time: now + ttl,
        accept_time: None,
        version: 1,
        source,
        remind_time: ctx.settings.reminder_time(now, now + ttl),
        reminder_token_hash: None,
        family_id: None,
    };
    (invitation, token)
}

impl App {
    /// A manager's transition of one PENDING invitation (`Cancel` or `Resend`) inside a write
    /// already holding the student's lock: the state change, its audit event, and the email
    /// (the invitation again with a new token and expiry, or the cancellation notice).
    pub(crate) async fn manage_in(
        &self,
        tx: &mut dyn Transaction,
        caller: &Caller,
        ctx: &StudentContext,
        current: Invitation,
        event: InvitationEvent,
        request_id: Option<&str>,
    ) -> AppResult<Invitation> {
        let now = self.clock.now();
        let (token, token_hash) = new_token();
        let ttl = TimeDelta::days(i64::from(ctx.settings.invitation_ttl_days));
        let stored = if event == InvitationEvent::Resend {
            apply(tx, current, event, now, &|next| {
                next.token_hash = token_hash.clone();
                next.expire_time = now + ttl;
                // A new invitation in all but id: its reminder is due anew, and an earlier
                // reminder's link stops working with the first email's.
                next.remind_time = ctx.settings.reminder_time(now, now + ttl);
                next.reminder_token_hash = None;
            })
            .await?
        } else {
            apply(tx, current, event, now, &|_| {}).await?
        };
        audit(
            tx,
            &stored,
            event.audit_action(),
            &caller.subject,
            request_id,
            now,
        )
        .await?;
        let locale = language_of_address(tx, &stored.invited_email).await?;
        if event == InvitationEvent::Resend {
            let inviter = self.display_name_of(tx, caller).await?;
            self.queue_invitation_mail(
                tx,
                &InvitationLetter {
                    template: Template::Invitation,
                    settings: &ctx.settings,
                    invitation: &stored,
                    token: &token,
                    student_name: &ctx.student.display_name,
                    inviter_name: &inviter,
                    locale,
                },
                now,
            )
            .await?;
        } else {
            let notice = cancellation_notice(
                &ctx.settings,
                &ctx.student.display_name,
                &stored,
                locale,
                now,
            )?;
            if let Some(message) = notice {
                tx.enqueue_message(&message).await?;
            }
        }
        Ok(stored)
    }
}
