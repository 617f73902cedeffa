//! CheckGuardianship, the hot path other services call: is G a guardian of S?

use super::access::require;
use super::freshness::Consistency;
use super::link_batch::{MAX_BATCH_STUDENTS, position_after};
use super::{App, AppError, AppResult, Missing};
use crate::auth::Authorized;
use crate::domain::policy::{Permission, StudentAccess};
use crate::domain::{CallerRole, DomainSettings, Email, Position, StudentRef, UserId};
use crate::domain::{DomainName, ValidationError};
use crate::store::{GuardianKey, Session, StudentLinks};
use std::collections::HashMap;
use std::sync::Arc;

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

impl CheckSubject {
    fn key(self) -> GuardianKey {
        match self {
            Self::Id(id) => GuardianKey::Id(id),
            Self::Email(email) => GuardianKey::Email(email),
        }
    }
}

/// The answer of CheckGuardianship.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Guardianship {
    /// An ACCEPTED link exists.
    pub linked: bool,
    /// Guardian access is on in the student's domain.
    pub guardian_access_enabled: bool,
}

/// Answers with the position they include (`None` when the replica cannot say yet).
#[derive(Debug)]
pub struct Answered<T> {
    /// The answers.
    pub answer: T,
    /// Every change up to here is included.
    pub at: Option<Position>,
}

/// Students' links for a set of questions, and what they include.
pub(super) struct LinkRead {
    pub(super) links: HashMap<UserId, Arc<StudentLinks>>,
    pub(super) at: Option<Position>,
    /// Read from memory: settings may come from memory too.
    from_memory: bool,
}

impl App {
    /// CheckGuardianship. For admins and services: from the replica's cache when the
    /// consistency allows and the cache is caught up, else one round trip to the store, plus
    /// cached settings; other callers go through the full per-student decision.
    pub async fn check_guardianship(
        &self,
        who: &Authorized,
        student: &UserId,
        subject: &CheckSubject,
        consistency: Consistency,
    ) -> AppResult<Answered<Guardianship>> {
        let caller = require(who, Permission::ReadGuardians)?;
        if !matches!(caller.role, CallerRole::Admin | CallerRole::Service) {
            let at = self.primary_position();
            let answer = self.check_as_person(caller, student, subject).await?;
            return Ok(Answered { answer, at });
        }
        let answered = self
            .check_as_manager(
                caller,
                vec![Ok((student.clone(), subject.clone()))],
                consistency,
            )
            .await?;
        let answer = answered
            .answer
            .into_iter()
            .next()
            .ok_or_else(|| AppError::Internal("a check without its answer".into()))??;
        Ok(Answered {
            answer,
            at: answered.at,
        })
    }

    /// A teacher's, student's or guardian's question: the full per-student decision first.
    async fn check_as_person(
        &self,
        caller: &crate::domain::Caller,
        student: &UserId,
        subject: &CheckSubject,
    ) -> AppResult<Guardianship> {
        let ctx = self
            .authorize_student(
                caller,
                &StudentRef::Id(student.clone()),
                StudentAccess::Read,
            )
            .await?;
        let mut session = self.store.session().await?;
        let (_, linked) = session
            .check_guardianship(&ctx.student.user_id, &subject.clone().key())
            .await?
            .unwrap_or((ctx.student.domain.clone(), false));
        Ok(Guardianship {
            linked,
            guardian_access_enabled: ctx.settings.guardian_access_enabled,
        })
    }

    /// CheckGuardianships: many questions in one call, answered in request order, each on its
    /// own (an unknown or another tenant's student fails that pair only). For admins and
    /// services at most one round trip for all pairs (the cache answers what it holds; the
    /// students and links it lacks come in one statement) plus cached settings; other callers
    /// are answered pair by pair as by CheckGuardianship.
    pub async fn check_guardianships(
        &self,
        who: &Authorized,
        pairs: Vec<Result<(UserId, CheckSubject), ValidationError>>,
        consistency: Consistency,
    ) -> AppResult<Answered<Vec<AppResult<Guardianship>>>> {
        let caller = require(who, Permission::ReadGuardians)?;
        if pairs.len() > MAX_CHECKS {
            return Err(ValidationError::invalid(
                "checks",
                format!("at most {MAX_CHECKS} checks per call"),
            )
            .into());
        }
        if !matches!(caller.role, CallerRole::Admin | CallerRole::Service) {
            let at = self.primary_position();
            let mut answers = Vec::with_capacity(pairs.len());
            for pair in pairs {
                answers.push(match pair {
                    Ok((student, subject)) => {
                        self.check_as_person(caller, &student, &subject).await
                    }
                    Err(invalid) => Err(invalid.into()),
                });
            }
            return Ok(Answered {
                answer: answers,
                at,
            });
        }
        self.check_as_manager(caller, pairs, consistency).await
    }

    /// Admins' and services' questions: at most one round trip for all of them.
    async fn check_as_manager(
        &self,
        caller: &crate::domain::Caller,
        pairs: Vec<Result<(UserId, CheckSubject), ValidationError>>,
        consistency: Consistency,
    ) -> AppResult<Answered<Vec<AppResult<Guardianship>>>> {
        let mut students: Vec<UserId> = pairs
            .iter()
            .filter_map(|p| p.as_ref().ok().map(|(s, _)| s.clone()))
            .collect();
        students.sort();
        students.dedup();
        let mut session = None;
        let read = self
            .student_links_of(&students, consistency, &mut session)
            .await?;
        let mut settings: HashMap<DomainName, DomainSettings> = HashMap::new();
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
            let Some(links) = read
                .links
                .get(&student)
                .filter(|l| caller.acts_in(l.domain()))
            else {
                answers.push(Err(AppError::NotFound(Missing::Student)));
                continue;
            };
            // From memory, the settings may be as old as the links; read from the store, the
            // switch came with the links.
            let guardian_access_enabled =
                if read.from_memory || consistency == Consistency::MinimizeLatency {
                    if !settings.contains_key(links.domain()) {
                        let found = self.cached_settings(links.domain(), &mut session).await?;
                        settings.insert(links.domain().clone(), found);
                    }
                    settings[links.domain()].guardian_access_enabled
                } else {
                    links.stored_access.unwrap_or_else(|| {
                        DomainSettings::defaults(links.domain().clone()).guardian_access_enabled
                    })
                };
            answers.push(Ok(Guardianship {
                linked: links.has(&subject.key()),
                guardian_access_enabled,
            }));
        }
        Ok(Answered {
            answer: answers,
            at: read.at,
        })
    }

    /// The links of `students` under `consistency`: from the cache where it may answer, the
    /// rest (or all) from the store in one statement, which then fills the cache.
    pub(super) async fn student_links_of(
        &self,
        students: &[UserId],
        consistency: Consistency,
        session: &mut Option<Box<dyn Session>>,
    ) -> AppResult<LinkRead> {
        let mut links = HashMap::with_capacity(students.len());
        let usable = self.freshness.usable_cache(consistency);
        let mut missing: Vec<UserId> = Vec::new();
        if let Some((cache, _)) = usable {
            for student in students {
                match cache.get(student) {
                    Some(found) => {
                        links.insert(student.clone(), found);
                    }
                    None => missing.push(student.clone()),
                }
            }
        } else {
            missing = students.to_vec();
        }
        metrics::counter!("guardians_link_cache_total", "result" => "hit")
            .increment((students.len() - missing.len()) as u64);
        metrics::counter!("guardians_link_cache_total", "result" => if usable.is_some() { "miss" } else { "bypass" })
            .increment(missing.len() as u64);
        // A position included by every source the answer came from.
        let mut at = usable.map(|(_, watermark)| Position::below(watermark));
        if !missing.is_empty() {
            let (read, fill_watermark, read_at) = if consistency == Consistency::FullyConsistent
                && missing.len() <= MAX_BATCH_STUDENTS
            {
                // On the primary, with whatever other fully consistent questions are waiting.
                let read = self.link_batcher.read(missing).await?;
                (read.links, read.applied, position_after(read.applied))
            } else {
                // Taken before the read: what the read may be missing is what comes after.
                let applied = self.freshness.applied();
                let route = self.read_route(consistency).await?;
                let (read, route) = read_on!(self, route, |s| s.student_links(&missing));
                let (fill_watermark, read_at) = (route.fill_watermark(applied), route.at);
                *session = Some(route.session);
                (
                    read.into_iter().map(Arc::new).collect(),
                    fill_watermark,
                    read_at,
                )
            };
            for found in read {
                if let Some(cache) = self.freshness.cache() {
                    cache.fill(fill_watermark, found.clone());
                }
                links.insert(found.id().clone(), found);
            }
            at = match (at, read_at) {
                (Some(cached), Some(read)) => Some(cached.min(read)),
                (cached, read) => cached.or(read),
            };
        } else if usable.is_none() {
            at = self.primary_position();
        }
        Ok(LinkRead {
            links,
            at,
            from_memory: usable.is_some(),
        })
    }

    /// A domain's settings from the settings cache, opening a session only on a miss.
    pub(super) async fn cached_settings(
        &self,
        domain: &DomainName,
        session: &mut Option<Box<dyn Session>>,
    ) -> AppResult<DomainSettings> {
        if let Some(cached) = self.settings_cache.get(domain, self.clock.now()) {
            return Ok(cached);
        }
        self.settings_via(open(&self.store, session).await?.as_mut(), domain)
            .await
    }

    /// The position a read from the store that starts now includes.
    pub(crate) fn primary_position(&self) -> Option<Position> {
        position_after(self.freshness.applied())
    }
}

/// The session in `slot`, opened on first use.
async fn open<'a>(
    store: &Arc<dyn crate::store::Store>,
    slot: &'a mut Option<Box<dyn Session>>,
) -> AppResult<&'a mut Box<dyn Session>> {
    if slot.is_none() {
        *slot = Some(store.session().await?);
    }
    Ok(slot.as_mut().expect("opened above"))
}
