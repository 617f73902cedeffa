//! Reading and changing a domain's guardian settings.

use super::access::{require, require_domain};
use super::{App, AppError, AppResult};
use crate::auth::Authorized;
use crate::domain::audit::actions;
use crate::domain::policy::Permission;
use crate::domain::{AuditDetails, AuditEvent, DomainName, DomainSettings, SettingsPatch};
use crate::store::{Session, StoreError};

/// A requested change of settings.
#[derive(Debug, Clone)]
pub struct SettingsUpdate {
    /// The domain to change.
    pub domain: DomainName,
    /// The fields to change.
    pub patch: SettingsPatch,
    /// Change only if the stored settings still have this etag.
    pub etag: Option<String>,
}

/// How often an update without etag re-reads and re-applies after losing a race.
const UPDATE_ATTEMPTS: usize = 5;

impl App {
    /// The settings in force for `domain`: stored ones, or the defaults. Served from the
    /// replica's short-lived cache when fresh.
    pub async fn domain_settings(&self, domain: &DomainName) -> AppResult<DomainSettings> {
        if let Some(cached) = self.settings_cache.get(domain, self.clock.now()) {
            return Ok(cached);
        }
        let mut session = self.store.session().await?;
        self.settings_via(session.as_mut(), domain).await
    }

    /// [`App::domain_settings`] on a connection the caller already holds. A use case that holds
    /// one must not ask the pool for a second: under load every request would hold one and wait
    /// for another, and the pool would run dry.
    pub(crate) async fn settings_via(
        &self,
        session: &mut dyn Session,
        domain: &DomainName,
    ) -> AppResult<DomainSettings> {
        let now = self.clock.now();
        if let Some(cached) = self.settings_cache.get(domain, now) {
            return Ok(cached);
        }
        let settings = session
            .get_settings(domain)
            .await?
            .unwrap_or_else(|| DomainSettings::defaults(domain.clone()));
        self.settings_cache.put(settings.clone(), now);
        Ok(settings)
    }

    /// The settings as stored right now, bypassing the cache (for reads that must see a write
    /// that just happened, such as GetDomainSettings).
    pub async fn read_settings(&self, domain: &DomainName) -> AppResult<DomainSettings> {
        let mut session = self.store.session().await?;
        Ok(session
            .get_settings(domain)
            .await?
            .unwrap_or_else(|| DomainSettings::defaults(domain.clone())))
    }

    /// GetDomainSettings: the stored settings (not the cached ones, so that a caller reads its
    /// own write), for a caller of the domain.
    pub async fn get_settings(
        &self,
        who: &Authorized,
        domain: &DomainName,
    ) -> AppResult<DomainSettings> {
        require_domain(require(who, Permission::ReadSettings)?, domain)?;
        self.read_settings(domain).await
    }

    /// Applies an update with the institution-type rule, and appends a `settings.updated`
    /// event naming each changed field (old and new values) in the same transaction. With an
    /// etag, a stale one is `ETAG_MISMATCH`; without, a lost race is retried on the newer
    /// settings.
    pub async fn update_settings(
        &self,
        who: &Authorized,
        update: SettingsUpdate,
    ) -> AppResult<DomainSettings> {
        let caller = require(who, Permission::WriteSettings)?;
        require_domain(caller, &update.domain)?;
        for _ in 0..UPDATE_ATTEMPTS {
            let now = self.clock.now();
            let mut tx = self.store.begin().await?;
            let current = tx
                .get_settings(&update.domain)
                .await?
                .unwrap_or_else(|| DomainSettings::defaults(update.domain.clone()));
            if update
                .etag
                .as_deref()
                .is_some_and(|etag| etag != current.etag())
            {
                return Err(AppError::EtagMismatch);
            }
            let mut next = current.apply(update.patch.clone())?;
            next.update_time = Some(now);
            let stored = match tx.put_settings(&next, current.version).await {
                Ok(stored) => stored,
                Err(StoreError::Conflict) if update.etag.is_some() => {
                    return Err(AppError::EtagMismatch);
                }
                Err(StoreError::Conflict) => continue,
                Err(other) => return Err(other.into()),
            };
            tx.append_event(&AuditEvent {
                event_id: 0,
                domain: update.domain.clone(),
                student_id: None,
                invitation_id: None,
                action: actions::SETTINGS_UPDATED.into(),
                actor_id: caller.subject.clone(),
                request_id: None,
                create_time: now,
                details: AuditDetails {
                    setting_changes: stored.changes_from(&current),
                    counts: Default::default(),
                },
            })
            .await?;
            tx.commit().await?;
            self.settings_cache.put(stored.clone(), now);
            return Ok(stored);
        }
        Err(AppError::Unavailable(
            "settings kept changing concurrently; retry".into(),
        ))
    }
}
