//! A guardian's summary preferences: reading and changing them (the guardian, or an admin or
//! service of a domain of one of their children), and the unsubscribe link of an email.

use super::build::GuardianContext;
use crate::app::access::require;
use crate::app::lifecycle::hash_token;
use crate::app::{App, AppError, AppResult, GuardianRef, Missing};
use crate::auth::Authorized;
use crate::domain::policy::Permission;
use crate::domain::summary::{Frequency, PreferencesPatch, Schedule, SummaryPreferences};
use crate::domain::{
    Caller, CallerRole, DomainName, DomainSettings, Locale, UserId, ValidationError,
};
use crate::store::Session;
use std::collections::HashSet;

/// Longest unsubscribe token taken (they are 43 characters).
const MAX_TOKEN: usize = 256;

/// A guardian's preferences: what they chose, and what is in force.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreferencesView {
    /// Their own choices (`None`: the default applies).
    pub chosen: SummaryPreferences,
    /// The schedule in force.
    pub schedule: Schedule,
    /// The language in force.
    pub locale: Locale,
}

/// What an unsubscribe link leads to, for the page that confirms it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnsubscribeLink {
    /// The guardian's language, for the page.
    pub locale: Locale,
    /// Whether the link was used already.
    pub used: bool,
}

/// The guardian a summaries call is about, and which of their children the caller may see.
#[derive(Debug, Clone)]
pub(crate) struct SummarySubject {
    /// The guardian.
    pub(crate) guardian: UserId,
    /// The children the caller may see; `None` when the caller is the guardian (all of them).
    pub(crate) visible_students: Option<HashSet<UserId>>,
}

impl App {
    /// Resolves `guardian` for `caller`: a guardian may name only themself; an admin or service
    /// only a guardian of a student in a domain they act in (any other is GUARDIAN_NOT_FOUND,
    /// so nothing leaks across tenants).
    pub(crate) async fn summary_subject(
        &self,
        session: &mut dyn Session,
        caller: &Caller,
        guardian: &GuardianRef,
    ) -> AppResult<SummarySubject> {
        let id = guardian.resolve(caller)?;
        match caller.role {
            CallerRole::Guardian if id.as_str() == caller.subject => Ok(SummarySubject {
                guardian: id,
                visible_students: None,
            }),
            CallerRole::Guardian => Err(AppError::NotAllowed(
                "guardians may only see their own summaries".into(),
            )),
            CallerRole::Admin | CallerRole::Service => {
                let visible: HashSet<UserId> = session
                    .links_of_guardians(std::slice::from_ref(&id))
                    .await?
                    .into_iter()
                    .filter(|l| caller.acts_in(&l.domain))
                    .map(|l| l.student_id)
                    .collect();
                if visible.is_empty() {
                    return Err(AppError::NotFound(Missing::Guardian));
                }
                Ok(SummarySubject {
                    guardian: id,
                    visible_students: Some(visible),
                })
            }
            CallerRole::Teacher | CallerRole::Student => Err(AppError::NotAllowed(
                "the caller's role may not make this call".into(),
            )),
        }
    }

    /// A guardian's preferences.
    pub async fn summary_preferences(
        &self,
        who: &Authorized,
        guardian: &GuardianRef,
    ) -> AppResult<PreferencesView> {
        let caller = require(who, Permission::ReadSummaries)?;
        let mut session = self.store.session().await?;
        let subject = self
            .summary_subject(session.as_mut(), caller, guardian)
            .await?;
        self.preferences_view(session.as_mut(), &subject.guardian)
            .await
    }

    /// Changes a guardian's preferences as `patch` says.
    pub async fn update_summary_preferences(
        &self,
        who: &Authorized,
        guardian: &GuardianRef,
        patch: &PreferencesPatch,
    ) -> AppResult<PreferencesView> {
        let caller = require(who, Permission::WriteSummaryPreferences)?;
        let subject = {
            let mut session = self.store.session().await?;
            self.summary_subject(session.as_mut(), caller, guardian)
                .await?
        };
        let mut session = self.store.session().await?;
        session
            .patch_summary_preferences(&subject.guardian, patch, self.clock.now())
            .await?;
        self.preferences_view(session.as_mut(), &subject.guardian)
            .await
    }

    /// Applies an unsubscribe link: the guardian's frequency becomes NEVER. The link is its
    /// own credential and works once.
    pub async fn unsubscribe(&self, token: &str) -> AppResult<Frequency> {
        let hash = token_hash(token)?;
        let mut tx = self.store.begin().await?;
        let guardian = tx
            .use_unsubscribe_token(&hash)
            .await?
            .ok_or(AppError::NotFound(Missing::UnsubscribeLink))?;
        let never = PreferencesPatch {
            frequency: Some(Some(Frequency::Never)),
            ..PreferencesPatch::default()
        };
        tx.patch_summary_preferences(&guardian, &never, self.clock.now())
            .await?;
        tx.commit().await?;
        metrics::counter!("guardians_summary_unsubscribes_total").increment(1);
        Ok(Frequency::Never)
    }

    /// What an unsubscribe link leads to, without using it (a GET must change nothing).
    pub async fn unsubscribe_link(&self, token: &str) -> AppResult<UnsubscribeLink> {
        let hash = token_hash(token)?;
        let mut session = self.store.session().await?;
        let (guardian, used) = session
            .find_unsubscribe_token(&hash)
            .await?
            .ok_or(AppError::NotFound(Missing::UnsubscribeLink))?;
        let view = self.preferences_view(session.as_mut(), &guardian).await?;
        Ok(UnsubscribeLink {
            locale: view.locale,
            used,
        })
    }

    /// What is in force for `guardian`: their choices over the defaults of their first
    /// child's domain (or the service's, when they have no child linked now).
    pub(crate) async fn preferences_view(
        &self,
        session: &mut dyn Session,
        guardian: &UserId,
    ) -> AppResult<PreferencesView> {
        let context = self.guardian_context(session, guardian).await?;
        view_of(session, guardian, context.as_ref()).await
    }
}

/// [`App::preferences_view`] of a guardian whose context is read already.
pub(crate) async fn view_of(
    session: &mut dyn Session,
    guardian: &UserId,
    context: Option<&GuardianContext>,
) -> AppResult<PreferencesView> {
    let (chosen, defaults) = match context {
        Some(context) => (context.preferences.clone(), context.defaults.clone()),
        None => {
            let chosen = session
                .get_summary_preferences(guardian)
                .await?
                .unwrap_or_else(|| SummaryPreferences::unset(guardian.clone()));
            (chosen, service_defaults())
        }
    };
    Ok(PreferencesView {
        schedule: chosen.schedule(&defaults),
        locale: chosen.locale_or(&defaults),
        chosen,
    })
}

/// The defaults of a guardian with no child linked: those of a new domain.
fn service_defaults() -> DomainSettings {
    DomainSettings::defaults(DomainName::from_trusted(String::new()))
}

/// The stored form of a link's token, after checking its shape.
fn token_hash(token: &str) -> AppResult<String> {
    let token = token.trim();
    if token.is_empty() || token.len() > MAX_TOKEN {
        return Err(ValidationError::invalid("token", "token is empty or malformed").into());
    }
    Ok(hash_token(token))
}
