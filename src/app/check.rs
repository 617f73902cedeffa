//! CheckGuardianship, the hot path other services call: is G a guardian of S?

use super::access::require;
use super::{App, AppError, AppResult, Missing};
use crate::auth::Authorized;
use crate::domain::ValidationError;
use crate::domain::policy::{Permission, StudentAccess};
use crate::domain::{CallerRole, Email, StudentRef, UserId};
use crate::store::GuardianKey;
use std::collections::HashMap;

/// Most pairs one CheckGuardianships call takes.
pub const MAX_CHECKS: usize = 1000;

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

    /// CheckGuardianships: many questions in one call, answered in request order, each on its
    /// own (an unknown or another tenant's student fails that pair only). For admins and
    /// services one round trip for all pairs (the students and their links in one statement)
    /// plus cached settings; other callers are answered pair by pair as by CheckGuardianship.
    pub async fn check_guardianships(
        &self,
        who: &Authorized,
        pairs: Vec<Result<(UserId, CheckSubject), ValidationError>>,
    ) -> AppResult<Vec<AppResult<Guardianship>>> {
        let caller = require(who, Permission::ReadGuardians)?;
        if pairs.len() > MAX_CHECKS {
            return Err(ValidationError::invalid(
                "checks",
                format!("at most {MAX_CHECKS} checks per call"),
            )
            .into());
        }
        if !matches!(caller.role, CallerRole::Admin | CallerRole::Service) {
            let mut answers = Vec::with_capacity(pairs.len());
            for pair in pairs {
                answers.push(match pair {
                    Ok((student, subject)) => {
                        self.check_guardianship(who, &student, &subject).await
                    }
                    Err(invalid) => Err(invalid.into()),
                });
            }
            return Ok(answers);
        }
        let mut students: Vec<UserId> = pairs
            .iter()
            .filter_map(|p| p.as_ref().ok().map(|(s, _)| s.clone()))
            .collect();
        students.sort();
        students.dedup();
        let mut session = self.store.session().await?;
        let known: HashMap<UserId, crate::store::StudentLinks> = session
            .student_links(&students)
            .await?
            .into_iter()
            .map(|s| (s.student.clone(), s))
            .collect();
        let mut answers = Vec::with_capacity(pairs.len());
        for pair in pairs {
            let (student, subject) = match pair {
                Ok(pair) => pair,
                Err(invalid) => {
                    answers.push(Err(invalid.into()));
                    continue;
                }
            };
            // Another tenant's student is as unknown as a missing one.
            let Some(links) = known.get(&student).filter(|l| caller.acts_in(&l.domain)) else {
                answers.push(Err(AppError::NotFound(Missing::Student)));
                continue;
            };
            let key = match subject {
                CheckSubject::Id(id) => GuardianKey::Id(id),
                CheckSubject::Email(email) => GuardianKey::Email(email),
            };
            let settings = self.settings_via(session.as_mut(), &links.domain).await?;
            answers.push(Ok(Guardianship {
                linked: links.has(&key),
                guardian_access_enabled: settings.guardian_access_enabled,
            }));
        }
        Ok(answers)
    }
}
