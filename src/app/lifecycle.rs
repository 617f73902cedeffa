//! Shared steps of every invitation transition: the guarded write, the audit event and the
//! emails, all inside the caller's transaction.

use super::{App, AppError, AppResult, Missing};
use crate::domain::{
    AuditDetails, AuditEvent, DeliveryStatus, DomainSettings, Email, Family, Invitation,
    InvitationEvent, Locale, OutboxMessage, transition,
};
use crate::mail::{FamilyChild, Rendered, Template, format_date, render, render_family};
use crate::store::{StoreError, Transaction, UniqueKey};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use rand::RngCore;
use sha2::{Digest, Sha256};

/// A fresh accept/decline token (256 random bits) and the hash that is all the store keeps.
pub(crate) fn new_token() -> (String, String) {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let token = URL_SAFE_NO_PAD.encode(bytes);
    let hash = hash_token(&token);
    (token, hash)
}

/// The stored form of a token.
pub(crate) fn hash_token(token: &str) -> String {
    crate::domain::hex::hex(&Sha256::digest(token.as_bytes()))
}

/// Applies `event` to `current` as a compare-and-set write, with `change` adding the event's
/// own fields. When the row changed underneath (the expiry sweeper does not lock the student),
/// the fresh row is judged again, so the caller gets the error that fits what happened.
pub(crate) async fn apply(
    tx: &mut dyn Transaction,
    mut current: Invitation,
    event: InvitationEvent,
    now: DateTime<Utc>,
    change: &(dyn Fn(&mut Invitation) + Send + Sync),
) -> AppResult<Invitation> {
    for _ in 0..3 {
        // Expiry acts on the stored state; everything else on what a reader sees now.
        let from = if event == InvitationEvent::Expire {
            current.state
        } else {
            current.observed_state(now)
        };
        let mut next = current.clone();
        next.state = transition(from, event)?;
        next.update_time = now;
        change(&mut next);
        match tx.update_invitation(&next, current.version).await {
            Ok(stored) => return Ok(stored),
            Err(StoreError::Conflict) => {
                current = tx
                    .get_invitation(current.id)
                    .await?
                    .ok_or(AppError::NotFound(Missing::Invitation))?;
            }
            Err(StoreError::AlreadyExists(UniqueKey::GuardianLink)) => {
                return Err(AppError::GuardianAlreadyLinked);
            }
            Err(StoreError::AlreadyExists(UniqueKey::PendingInvitation)) => {
                return Err(AppError::InvitationAlreadyPending);
            }
            Err(other) => return Err(other.into()),
        }
    }
    Err(AppError::Unavailable(
        "the invitation kept changing; retry".into(),
    ))
}

/// Expires a PENDING invitation whose time has passed, with its audit event by the system
/// (the upkeep sweep, and a new invitation that finds the old one still holding its place).
pub(crate) async fn expire(
    tx: &mut dyn Transaction,
    invitation: Invitation,
    request_id: Option<&str>,
    now: DateTime<Utc>,
) -> AppResult<Invitation> {
    let expired = apply(tx, invitation, InvitationEvent::Expire, now, &|_| {}).await?;
    let action = InvitationEvent::Expire.audit_action();
    audit(
        tx,
        &expired,
        action,
        super::audit::SYSTEM_ACTOR,
        request_id,
        now,
    )
    .await?;
    Ok(expired)
}

/// Appends the audit event of a transition.
pub(crate) async fn audit(
    tx: &mut dyn Transaction,
    invitation: &Invitation,
    action: &str,
    actor: &str,
    request_id: Option<&str>,
    now: DateTime<Utc>,
) -> AppResult<()> {
    tx.append_event(&audit_event(invitation, action, actor, request_id, now))
        .await?;
    Ok(())
}

/// The audit event of a transition.
pub(crate) fn audit_event(
    invitation: &Invitation,
    action: &str,
    actor: &str,
    request_id: Option<&str>,
    now: DateTime<Utc>,
) -> AuditEvent {
    AuditEvent {
        event_id: 0,
        domain: invitation.domain.clone(),
        student_id: Some(invitation.student_id.clone()),
        invitation_id: Some(invitation.id),
        action: action.to_owned(),
        actor_id: actor.to_owned(),
        request_id: request_id.map(str::to_owned),
        create_time: now,
        details: AuditDetails::default(),
    }
}

/// One email about an invitation.
pub(crate) struct Letter<'a> {
    /// Settings of the student's domain: language, and whether mail goes out at all.
    pub settings: &'a DomainSettings,
    /// The invitation it is about.
    pub invitation: &'a Invitation,
    /// The recipient.
    pub to: &'a Email,
    /// Which email.
    pub template: Template,
    /// The template's values.
    pub values: &'a [(&'a str, &'a str)],
    /// The recipient's own language, where known (else the domain's).
    pub locale: Option<Locale>,
}

/// An email with the invitation's accept and decline links: the invitation, or its reminder.
pub(crate) struct InvitationLetter<'a> {
    /// [`Template::Invitation`] or [`Template::Reminder`].
    pub template: Template,
    /// Settings of the student's domain.
    pub settings: &'a DomainSettings,
    /// The invitation.
    pub invitation: &'a Invitation,
    /// Its token, which exists only here and in the email.
    pub token: &'a str,
    /// The student's name.
    pub student_name: &'a str,
    /// The inviter's name; empty when the inviter is not a person in the directory (an
    /// administrator's account, a service), whom the email names by role.
    pub inviter_name: &'a str,
    /// The invitee's own language, where they are already a guardian who chose one.
    pub locale: Option<Locale>,
}

impl App {
    /// Queues one email, unless guardian access is off for the student's domain (turning
    /// access off blocks emails too).
    pub(crate) async fn queue_mail(
        &self,
        tx: &mut dyn Transaction,
        letter: &Letter<'_>,
        now: DateTime<Utc>,
    ) -> AppResult<()> {
        if let Some(message) = message_of(letter, now)? {
            tx.enqueue_message(&message).await?;
        }
        Ok(())
    }

    /// Queues the invitation email with its accept and decline links.
    pub(crate) async fn queue_invitation_mail(
        &self,
        tx: &mut dyn Transaction,
        letter: &InvitationLetter<'_>,
        now: DateTime<Utc>,
    ) -> AppResult<()> {
        if let Some(message) = self.invitation_message(letter, now)? {
            tx.enqueue_message(&message).await?;
        }
        Ok(())
    }

    /// The invitation email with its accept and decline links, `None` when access is off.
    pub(crate) fn invitation_message(
        &self,
        letter: &InvitationLetter<'_>,
        now: DateTime<Utc>,
    ) -> AppResult<Option<OutboxMessage>> {
        let base = self.config.accept_url.trim_end_matches('/');
        let token = letter.token;
        let accept = format!("{base}/accept?token={token}");
        let decline = format!("{base}/decline?token={token}");
        let invitation = letter.invitation;
        let locale = letter.locale.unwrap_or(letter.settings.default_locale);
        let expires = format_date(invitation.expire_time, locale);
        let values = [
            ("student_name", letter.student_name),
            ("inviter_name", letter.inviter_name),
            ("expire_date", expires.as_str()),
            ("accept_url", accept.as_str()),
            ("decline_url", decline.as_str()),
        ];
        let mail = Letter {
            settings: letter.settings,
            invitation,
            to: &invitation.invited_email,
            template: letter.template,
            values: &values,
            locale: Some(locale),
        };
        message_of(&mail, now)
    }
}

/// The email telling a guardian their link to a student was removed; `None` when the link
/// names no guardian account or access is off.
pub(crate) fn removal_notice(
    settings: &DomainSettings,
    student_name: &str,
    removed: &Invitation,
    locale: Option<Locale>,
    now: DateTime<Utc>,
) -> AppResult<Option<OutboxMessage>> {
    let Some(profile) = &removed.guardian else {
        return Ok(None);
    };
    let guardian_name = if profile.display_name.is_empty() {
        profile.email.to_string()
    } else {
        profile.display_name.clone()
    };
    let values = [
        ("student_name", student_name),
        ("guardian_name", guardian_name.as_str()),
    ];
    message_of(
        &Letter {
            settings,
            invitation: removed,
            to: &profile.email,
            template: Template::Removed,
            values: &values,
            locale,
        },
        now,
    )
}

/// The email telling an invited address that its invitation was cancelled; `None` when access
/// is off.
pub(crate) fn cancellation_notice(
    settings: &DomainSettings,
    student_name: &str,
    cancelled: &Invitation,
    locale: Option<Locale>,
    now: DateTime<Utc>,
) -> AppResult<Option<OutboxMessage>> {
    let values = [("student_name", student_name)];
    message_of(
        &Letter {
            settings,
            invitation: cancelled,
            to: &cancelled.invited_email,
            template: Template::Cancellation,
            values: &values,
            locale,
        },
        now,
    )
}

/// One email rendered for the outbox, `None` when guardian access is off for the student's
/// domain (turning access off blocks emails too).
fn message_of(letter: &Letter<'_>, now: DateTime<Utc>) -> AppResult<Option<OutboxMessage>> {
    let settings = letter.settings;
    if !settings.guardian_access_enabled {
        return Ok(None);
    }
    let mut values = letter.values.to_vec();
    values.push(("school", settings.school_display_name()));
    let rendered = render(
        letter.template,
        letter.locale.unwrap_or(settings.default_locale),
        &values,
    )
    .map_err(AppError::Internal)?;
    let mut message = school_message(settings, letter.to, rendered, now);
    message.invitation_id = Some(letter.invitation.id);
    Ok(Some(message))
}

/// A family's one email: every child by name with a decline link each, and one link that
/// accepts them all. `children` are (name, decline link, expiry); `None` when access is off.
pub(crate) fn family_message(
    settings: &DomainSettings,
    family: &Family,
    inviter_name: &str,
    accept_url: &str,
    children: &[(String, String, DateTime<Utc>)],
    locale: Option<Locale>,
    now: DateTime<Utc>,
) -> AppResult<Option<OutboxMessage>> {
    if !settings.guardian_access_enabled {
        return Ok(None);
    }
    let locale = locale.unwrap_or(settings.default_locale);
    let names: Vec<&str> = children.iter().map(|(name, _, _)| name.as_str()).collect();
    let names = list_phrase(&names, locale);
    // The first expiry: after it, not every child can be accepted any more.
    let expires = children
        .iter()
        .map(|(_, _, at)| *at)
        .min()
        .map(|at| format_date(at, locale))
        .unwrap_or_default();
    let values = [
        ("school", settings.school_display_name()),
        ("inviter_name", inviter_name),
        ("children_names", names.as_str()),
        ("expire_date", expires.as_str()),
        ("accept_url", accept_url),
    ];
    let listed: Vec<FamilyChild> = children
        .iter()
        .map(|(name, decline_url, _)| FamilyChild {
            name: name.clone(),
            decline_url: decline_url.clone(),
        })
        .collect();
    let rendered = render_family(locale, &values, &listed).map_err(AppError::Internal)?;
    let mut message = school_message(settings, &family.invited_email, rendered, now);
    message.family_id = Some(family.id.clone());
    Ok(Some(message))
}

/// "Emma", "Emma and Liam", "Emma, Liam and Noah" (Dutch: "en").
fn list_phrase(names: &[&str], locale: Locale) -> String {
    let and = match locale {
        Locale::En => "and",
        Locale::Nl => "en",
    };
    match names {
        [] => String::new(),
        [one] => (*one).to_owned(),
        [init @ .., last] => format!("{} {and} {last}", init.join(", ")),
    }
}

/// A queued message from the school: its sender name and Reply-To, about nothing yet.
fn school_message(
    settings: &DomainSettings,
    to: &Email,
    rendered: Rendered,
    now: DateTime<Utc>,
) -> OutboxMessage {
    let Rendered {
        subject,
        text,
        html,
    } = rendered;
    OutboxMessage {
        message_id: uuid::Uuid::now_v7().to_string(),
        invitation_id: None,
        recipient: to.clone(),
        subject,
        body_text: text,
        body_html: html,
        status: DeliveryStatus::Queued,
        attempts: 0,
        next_attempt_time: now,
        last_error: None,
        create_time: now,
        sent_time: None,
        list_unsubscribe: None,
        from_name: settings.sender_name().map(str::to_owned),
        reply_to: settings.reply_to_address.clone(),
        family_id: None,
    }
}

/// The language the guardian with this address chose (as a guardian of any student), if any:
/// mail to them is in it rather than the domain's.
pub(crate) async fn language_of_address(
    tx: &mut dyn Transaction,
    email: &Email,
) -> AppResult<Option<Locale>> {
    Ok(tx
        .guardian_locales(std::slice::from_ref(email))
        .await?
        .into_iter()
        .next()
        .map(|(_, locale)| locale))
}

/// The language a guardian chose for their summaries, if any: every mail to them is in it.
pub(crate) async fn language_of_guardian(
    tx: &mut dyn Transaction,
    guardian: &crate::domain::UserId,
) -> AppResult<Option<Locale>> {
    Ok(tx
        .get_summary_preferences(guardian)
        .await?
        .and_then(|p| p.locale))
}

/// What the emails of a batch need to know of people, read once for the batch: the names of the
/// students and inviters they mention, and the language each addressee chose.
pub(crate) struct Addressees {
    names: std::collections::HashMap<crate::domain::UserId, String>,
    languages: std::collections::HashMap<Email, Locale>,
}

impl Addressees {
    /// Reads the names of `people` (ids as stored; those that are no account id are skipped)
    /// and the chosen languages of `addresses`.
    pub(crate) async fn read(
        tx: &mut dyn Transaction,
        people: impl Iterator<Item = &str>,
        addresses: &[Email],
    ) -> AppResult<Self> {
        let mut ids: Vec<crate::domain::UserId> = people
            .filter_map(|id| crate::domain::UserId::parse(id).ok())
            .collect();
        ids.sort();
        ids.dedup();
        let names = tx
            .users_by_id(&ids)
            .await?
            .into_iter()
            .map(|u| (u.user_id, u.display_name))
            .collect();
        let languages = tx.guardian_locales(addresses).await?.into_iter().collect();
        Ok(Self { names, languages })
    }

    /// The directory name of `id`, empty when it is not a person there.
    pub(crate) fn name(&self, id: &str) -> String {
        crate::domain::UserId::parse(id)
            .ok()
            .and_then(|id| self.names.get(&id).cloned())
            .unwrap_or_default()
    }

    /// The language `address` chose, if any.
    pub(crate) fn language(&self, address: &Email) -> Option<Locale> {
        self.languages.get(address).copied()
    }
}
