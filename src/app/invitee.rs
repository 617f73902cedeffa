//! The invitee's answer: accept (the invitation becomes the guardian link) or decline.

use super::access::require;
use super::idempotency::{Encoder, Replay, RequestKey, commit_with};
use super::lifecycle::{Letter, apply, audit, hash_token, language_of_guardian};
use super::read_models::{GuardianView, InvitationView, StudentLabel};
use super::write::lock_for_write;
use super::{App, AppError, AppResult, Missing};
use crate::auth::Authorized;
use crate::domain::policy::Permission;
use crate::domain::{
    CallerRole, Email, GuardianProfile, InvitationEvent, Role, UserId, ValidationError,
    user::MAX_DISPLAY_NAME_CHARS,
};
use crate::mail::{Template, schedule_phrase};
use crate::store::Transaction;

/// An AcceptGuardianInvitation or DeclineGuardianInvitation request.
#[derive(Debug, Clone)]
pub struct Answer {
    /// The token from the email.
    pub token: String,
    /// The guardian's account id (services only; a guardian's token supplies it).
    pub guardian_id: Option<UserId>,
    /// The guardian's email (services only).
    pub email: Option<Email>,
    /// The guardian's name.
    pub display_name: String,
}

/// What an accept did: the link the token named (the first, for a family's token), and for a
/// family's token every link of the family the guardian now has.
#[derive(Debug)]
pub struct Acceptance {
    /// The link, as a retry replays it.
    pub first: Replay<GuardianView>,
    /// Every link of the family (a family token only; empty for one invitation's token).
    pub family: Vec<GuardianView>,
}

/// Who answers: taken from a guardian's token, or given by a service.
struct Answerer {
    guardian_id: UserId,
    email: Email,
    display_name: String,
}

fn answerer(who: &Authorized, answer: &Answer) -> AppResult<Answerer> {
    let caller = who.caller();
    let display_name = answer.display_name.trim().to_owned();
    if display_name.chars().count() > MAX_DISPLAY_NAME_CHARS {
        return Err(ValidationError::invalid("display_name", "display_name is too long").into());
    }
    let (guardian_id, email) = match caller.role {
        CallerRole::Guardian => (
            UserId::parse(&caller.subject).map_err(|_| {
                AppError::Unauthenticated("the guardian's subject is not a valid account id".into())
            })?,
            caller.email.clone().ok_or_else(|| {
                AppError::Unauthenticated("a guardian token must carry an email".into())
            })?,
        ),
        _ => (
            answer.guardian_id.clone().ok_or_else(|| {
                ValidationError::invalid("guardian_id", "a service must name the guardian_id")
            })?,
            answer.email.clone().ok_or_else(|| {
                ValidationError::new(
                    crate::domain::error::ValidationReason::InvalidEmail,
                    "email",
                    "a service must give the guardian's email",
                )
            })?,
        ),
    };
    Ok(Answerer {
        guardian_id,
        email,
        display_name,
    })
}

impl App {
    /// AcceptGuardianInvitation: PENDING -> ACCEPTED; the student is told and the guardian
    /// welcomed. A family's token accepts every invitation of the family still PENDING, each
    /// its own transition with its own event and confirmation; `family` then holds every link
    /// of the family this guardian has (so a retry answers as the first call did).
    pub async fn accept_invitation(
        &self,
        who: &Authorized,
        answer: &Answer,
        key: Option<&RequestKey>,
        encode: Encoder<'_, GuardianView>,
    ) -> AppResult<Acceptance> {
        require(who, Permission::AnswerInvitation)?;
        let person = answerer(who, answer)?;
        let mut session = self.store.session().await?;
        let hash = token_hash_of(&answer.token)?;
        if let Some(found) = session.get_invitation_by_token_hash(&hash).await? {
            drop(session);
            let first = self.accept_one(who, &person, &found, key, encode).await?;
            return Ok(Acceptance {
                first,
                family: Vec::new(),
            });
        }
        let family = session
            .family_by_token_hash(&hash)
            .await?
            .ok_or(AppError::NotFound(Missing::Invitation))?;
        let members = session
            .family_invitations(std::slice::from_ref(&family.id))
            .await?;
        drop(session);
        let now = self.clock.now();
        let mut links = Vec::new();
        let mut refused = None;
        for member in &members {
            let linked_to_them = member.state == crate::domain::InvitationState::Accepted
                && member
                    .guardian
                    .as_ref()
                    .is_some_and(|g| g.guardian_id == person.guardian_id);
            if linked_to_them {
                links.push(self.link_view(who, member.clone()).await?);
                continue;
            }
            match self.accept_one(who, &person, member, None, encode).await {
                Ok(Replay::Fresh(view)) => links.push(view),
                Ok(Replay::Replayed(_)) => {}
                Err(error) => {
                    refused.get_or_insert(error);
                }
            }
        }
        let Some(first) = links.first().cloned() else {
            // Nothing accepted: the first reason, or the family's state as one invitation's.
            return Err(refused.unwrap_or_else(|| {
                let expired = members
                    .iter()
                    .all(|m| m.observed_state(now) == crate::domain::InvitationState::Expired);
                if expired {
                    AppError::from(crate::domain::TransitionError::Expired)
                } else {
                    AppError::from(crate::domain::TransitionError::NotPending)
                }
            }));
        };
        Ok(Acceptance {
            first: Replay::Fresh(first),
            family: links,
        })
    }

    /// A link as an answerer sees it.
    async fn link_view(
        &self,
        who: &Authorized,
        link: crate::domain::Invitation,
    ) -> AppResult<GuardianView> {
        let mut session = self.store.session().await?;
        let student = session.get_user(&link.student_id).await?;
        GuardianView::of_link(
            &link,
            who.caller().role == CallerRole::Service,
            student.as_ref().map(StudentLabel::of),
        )
    }

    /// Accepts one invitation found by its token (or its family's).
    async fn accept_one(
        &self,
        who: &Authorized,
        person: &Answerer,
        found: &crate::domain::Invitation,
        key: Option<&RequestKey>,
        encode: Encoder<'_, GuardianView>,
    ) -> AppResult<Replay<GuardianView>> {
        let caller = who.caller();
        let mut tx = self.store.begin().await?;
        if let Some(bytes) = lock_for_write(tx.as_mut(), &found.student_id, key).await? {
            return Ok(Replay::Replayed(bytes));
        }
        let settings = self.settings_via(tx.as_mut(), &found.domain).await?;
        let now = self.clock.now();
        let current = tx
            .get_invitation(found.id)
            .await?
            .ok_or(AppError::NotFound(Missing::Invitation))?;
        if !settings.guardian_access_enabled {
            return Err(AppError::GuardianAccessDisabled);
        }
        // The invitation's own state speaks first: a second accept is "not pending".
        crate::domain::transition(current.observed_state(now), InvitationEvent::Accept)?;
        if tx
            .find_link(&current.student_id, &person.guardian_id)
            .await?
            .is_some()
        {
            return Err(AppError::GuardianAlreadyLinked);
        }
        let profile = GuardianProfile {
            guardian_id: person.guardian_id.clone(),
            email: person.email.clone(),
            display_name: person.display_name.clone(),
        };
        let link = apply(
            tx.as_mut(),
            current,
            InvitationEvent::Accept,
            now,
            &|next| {
                next.guardian = Some(profile.clone());
                next.accept_time = Some(now);
            },
        )
        .await?;
        let request_id = key.map(|k| k.request_id.as_str());
        audit(
            tx.as_mut(),
            &link,
            InvitationEvent::Accept.audit_action(),
            &caller.subject,
            request_id,
            now,
        )
        .await?;
        let student = tx.get_user(&link.student_id).await?;
        let student_name = student
            .as_ref()
            .map(|s| s.display_name.clone())
            .unwrap_or_default();
        let guardian_name = if person.display_name.is_empty() {
            person.email.to_string()
        } else {
            person.display_name.clone()
        };
        // Each in their own language: the student's from the directory, the guardian's from
        // their summary preferences; else the domain's.
        let student_locale = student.as_ref().and_then(|s| s.locale);
        let guardian_locale = language_of_guardian(tx.as_mut(), &person.guardian_id).await?;
        for (to, template, locale) in [
            (
                student.as_ref().map(|s| &s.email),
                Template::AcceptedToStudent,
                student_locale,
            ),
            (
                Some(&person.email),
                Template::WelcomeGuardian,
                guardian_locale,
            ),
        ] {
            let Some(to) = to else { continue };
            let schedule = schedule_phrase(&settings, locale.unwrap_or(settings.default_locale));
            let values = [
                ("student_name", student_name.as_str()),
                ("guardian_name", guardian_name.as_str()),
                ("schedule", schedule.as_str()),
            ];
            self.queue_mail(
                tx.as_mut(),
                &Letter {
                    settings: &settings,
                    invitation: &link,
                    to,
                    template,
                    values: &values,
                    locale,
                },
                now,
            )
            .await?;
        }
        let view = GuardianView::of_link(
            &link,
            caller.role == CallerRole::Service,
            student.as_ref().map(StudentLabel::of),
        )?;
        let student = view.student_id.clone();
        commit_with(self, tx, &[student], key, now, view, encode).await
    }

    /// DeclineGuardianInvitation ("I am not the guardian"): PENDING -> REMOVED(DECLINED).
    pub async fn decline_invitation(
        &self,
        who: &Authorized,
        answer: &Answer,
        key: Option<&RequestKey>,
        encode: Encoder<'_, InvitationView>,
    ) -> AppResult<Replay<InvitationView>> {
        let caller = require(who, Permission::AnswerInvitation)?;
        if caller.role == CallerRole::Guardian {
            answerer(who, answer)?;
        }
        let mut tx = self.store.begin().await?;
        let found = invitation_by_token(tx.as_mut(), &answer.token).await?;
        if let Some(bytes) = lock_for_write(tx.as_mut(), &found.student_id, key).await? {
            return Ok(Replay::Replayed(bytes));
        }
        let now = self.clock.now();
        let current = tx
            .get_invitation(found.id)
            .await?
            .ok_or(AppError::NotFound(Missing::Invitation))?;
        let declined = apply(tx.as_mut(), current, InvitationEvent::Decline, now, &|_| {}).await?;
        let request_id = key.map(|k| k.request_id.as_str());
        audit(
            tx.as_mut(),
            &declined,
            InvitationEvent::Decline.audit_action(),
            &caller.subject,
            request_id,
            now,
        )
        .await?;
        let student = tx.get_user(&declined.student_id).await?;
        self.tell_inviter(tx.as_mut(), &declined, student.as_ref(), now)
            .await?;
        let view = InvitationView {
            observed_state: declined.state,
            invitation: declined,
            show_invited_email: caller.role == CallerRole::Service,
            delivery: None,
            student: student.as_ref().map(StudentLabel::of),
        };
        let student = view.invitation.student_id.clone();
        commit_with(self, tx, &[student], key, now, view, encode).await
    }
}

impl App {
    /// Tells the inviter, when a person in the directory with an address, that the invitee
    /// said they are not the guardian: the student's name and the fact, never the address
    /// (the invitee may be a stranger to the family).
    async fn tell_inviter(
        &self,
        tx: &mut dyn Transaction,
        declined: &crate::domain::Invitation,
        student: Option<&crate::domain::User>,
        now: chrono::DateTime<chrono::Utc>,
    ) -> AppResult<()> {
        let Ok(inviter_id) = UserId::parse(&declined.inviter_id) else {
            return Ok(());
        };
        let Some(inviter) = tx.get_user(&inviter_id).await? else {
            return Ok(());
        };
        if !matches!(inviter.role, Role::Teacher | Role::Admin) {
            return Ok(());
        }
        let settings = self.settings_via(tx, &declined.domain).await?;
        let student_name = student.map(|s| s.display_name.as_str()).unwrap_or_default();
        let values = [
            ("student_name", student_name),
            ("inviter_name", inviter.display_name.as_str()),
        ];
        self.queue_mail(
            tx,
            &Letter {
                settings: &settings,
                invitation: declined,
                to: &inviter.email,
                template: Template::DeclinedToInviter,
                values: &values,
                locale: inviter.locale,
            },
            now,
        )
        .await
    }
}

/// The stored form of a token from an email, once it looks like one.
fn token_hash_of(token: &str) -> AppResult<String> {
    let token = token.trim();
    if token.is_empty() || token.len() > 256 {
        return Err(ValidationError::invalid("token", "token is empty or malformed").into());
    }
    Ok(hash_token(token))
}

/// The invitation a token from an email belongs to.
async fn invitation_by_token(
    tx: &mut dyn Transaction,
    token: &str,
) -> AppResult<crate::domain::Invitation> {
    tx.get_invitation_by_token_hash(&token_hash_of(token)?)
        .await?
        .ok_or(AppError::NotFound(Missing::Invitation))
}
