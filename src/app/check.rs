//! CheckGuardianship, the hot path other services call: is G a guardian of S?

use super::access::require;
use super::{App, AppError, AppResult, Missing};
use crate::auth::Authorized;
use crate::domain::policy::{Permission, StudentAccess};
use crate::domain::{CallerRole, Email, StudentRef, UserId};
use crate::store::GuardianKey;

/// Who a CheckGuardianship asks about.
#[derive(Debug, Clone)]
pub enum CheckSubject {
    /// An account id.
    Id(UserId),
    /// An address.
    Email(Email),
}

/// The answer of CheckGuardianship.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Guardianship {
    /// An ACCEPTED link exists.
    pub linked: bool,
    /// Guardian access is on in the student's domain.
    pub guardian_access_enabled: bool,
}

impl App {
    /// CheckGuardianship, the hot path: for admins and services one round trip to the store
    /// (student domain and link together) plus cached settings; other callers go through the
    /// full per-student decision.
    pub async fn check_guardianship(
        &self,
        who: &Authorized,
        student: &UserId,
        subject: &CheckSubject,
    ) -> AppResult<Guardianship> {
        let caller = require(who, Permission::ReadGuardians)?;
        let key = match subject {
            CheckSubject::Id(id) => GuardianKey::Id(id.clone()),
            CheckSubject::Email(email) => GuardianKey::Email(email.clone()),
        };
        if matches!(caller.role, CallerRole::Admin | CallerRole::Service) {
            let mut session = self.store.session().await?;
            let (domain, linked) = session
                .check_guardianship(student, &key)
                .await?
                .ok_or(AppError::NotFound(Missing::Student))?;
            if !caller.acts_in(&domain) {
                return Err(AppError::NotFound(Missing::Student));
            }
            let settings = self.settings_via(session.as_mut(), &domain).await?;
            return Ok(Guardianship {
                linked,
                guardian_access_enabled: settings.guardian_access_enabled,
            });
        }
        let ctx = self
            .authorize_student(
                caller,
                &StudentRef::Id(student.clone()),
                StudentAccess::Read,
            )
            .await?;
        let mut session = self.store.session().await?;
        let (_, linked) = session
            .check_guardianship(&ctx.student.user_id, &key)
            .await?
            .unwrap_or((ctx.student.domain.clone(), false));
        Ok(Guardianship {
            linked,
            guardian_access_enabled: ctx.settings.guardian_access_enabled,
        })
    }
}
