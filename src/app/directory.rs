//! The directory: users and courses pushed in by other systems.

use super::access::{require, require_domain};
use super::lifecycle::audit;
use super::{App, AppError, AppResult, Missing};
use crate::auth::Authorized;
use crate::domain::audit::actions;
use crate::domain::policy::{self, Permission};
use crate::domain::{
    AuditDetails, AuditEvent, Caller, Course, CourseId, DomainName, InvitationEvent, Role, User,
    UserId, paging, transition,
};
use crate::store::{InvitationFilter, InvitationScope, StateFilter};
use chrono::{DateTime, Utc};
use std::collections::BTreeMap;

/// Most users one UpsertUsers call takes.
pub(super) const MAX_USERS_PER_CALL: usize = 1000;
/// Most members (teachers plus students) of one course.
pub(super) const MAX_COURSE_MEMBERS: usize = 10_000;

/// A page request of users.
#[derive(Debug, Clone)]
pub struct UserQuery {
    /// Whose users.
    pub domain: DomainName,
    /// Only this role.
    pub role: Option<Role>,
    /// The raw requested page size.
    pub page_size: i32,
    /// The previous page's token, or empty.
    pub page_token: String,
}

/// A page of users.
#[derive(Debug, Clone)]
pub struct UserPage {
    /// The users, by id.
    pub users: Vec<User>,
    /// Token of the next page; empty on the last.
    pub next_page_token: String,
}

impl App {
    /// Creates or replaces users, all or none. The caller must act in each user's domain, and
    /// in the domain of any user it replaces.
    pub async fn upsert_users(&self, who: &Authorized, users: Vec<User>) -> AppResult<Vec<User>> {
        let caller = require(who, Permission::WriteDirectory)?;
        for user in &users {
            require_domain(caller, &user.domain)?;
        }
        if users.len() > MAX_USERS_PER_CALL {
            return Err(crate::domain::ValidationError::invalid(
                "users",
                format!("at most {MAX_USERS_PER_CALL} users per call"),
            )
            .into());
        }
        let now = self.clock.now();
        let mut tx = self.store.begin().await?;
        // Per domain: how many users were created and how many replaced.
        let mut counts: BTreeMap<&DomainName, (i64, i64)> = BTreeMap::new();
        for (i, user) in users.iter().enumerate() {
            let existed = match tx.get_user(&user.user_id).await? {
                Some(existing) => {
                    require_domain(caller, &existing.domain)?;
                    true
                }
                None => false,
            };
            let count = counts.entry(&user.domain).or_default();
            if existed {
                count.1 += 1;
            } else {
                count.0 += 1;
            }
            match tx.upsert_user(user, now).await {
                Ok(()) => {}
                Err(crate::store::StoreError::AlreadyExists(_)) => {
                    return Err(crate::domain::ValidationError::invalid(
                        &format!("users[{i}].email"),
                        "another user already has this email address",
                    )
                    .into());
                }
                Err(other) => return Err(other.into()),
            }
        }
        for (domain, (created, replaced)) in counts {
            let details = AuditDetails::counts([("created", created), ("replaced", replaced)]);
            let event = directory_event(domain, actions::USERS_UPSERTED, caller, details, now);
            tx.append_event(&event).await?;
        }
        tx.commit().await?;
        // A user pushed again may have moved between domains: its cached domain goes.
        for user in &users {
            self.freshness.forget_student(&user.user_id);
        }
        Ok(users)
    }

    /// Deletes users; a deleted student's PENDING and ACCEPTED records become
    /// REMOVED(STUDENT_REMOVED), each with its audit event. Returns how many users existed.
    /// Users of domains the caller does not act in count as absent, so nothing leaks.
    pub async fn delete_users(&self, who: &Authorized, ids: &[UserId]) -> AppResult<usize> {
        let caller = require(who, Permission::WriteDirectory)?;
        if ids.len() > MAX_USERS_PER_CALL {
            return Err(crate::domain::ValidationError::invalid(
                "user_ids",
                format!("at most {MAX_USERS_PER_CALL} users per call"),
            )
            .into());
        }
        let actor = caller.subject.as_str();
        let mut deleted = 0;
        // Per domain: users deleted, and their invitations and links removed with them.
        let mut counts: BTreeMap<DomainName, (i64, i64)> = BTreeMap::new();
        // One transaction per user keeps each lock short; each user's removal is atomic.
        for id in ids {
            let now = self.clock.now();
            let mut tx = self.store.begin().await?;
            tx.lock_student(id).await?;
            let Some(user) = tx.get_user(id).await? else {
                continue;
            };
            if !caller.acts_in(&user.domain) {
                continue;
            }
            let count = counts.entry(user.domain.clone()).or_default();
            count.0 += 1;
            if user.role == Role::Student {
                let active = StateFilter {
                    pending: true,
                    accepted: true,
                    ..StateFilter::default()
                };
                let mut after = None;
                loop {
                    let page = tx
                        .list_invitations(&InvitationFilter {
                            scope: InvitationScope::Student(id.clone()),
                            invited_email: None,
                            states: active,
                            now,
                            after,
                            limit: 100,
                        })
                        .await?;
                    let Some(last) = page.last() else { break };
                    after = Some(last.id);
                    for invitation in page {
                        let event = InvitationEvent::RemoveStudent;
                        let mut next = invitation.clone();
                        next.state = transition(invitation.observed_state(now), event)?;
                        next.update_time = now;
                        tx.update_invitation(&next, invitation.version).await?;
                        audit(tx.as_mut(), &next, event.audit_action(), actor, None, now).await?;
                        count.1 += 1;
                    }
                }
            }
            tx.delete_user(id).await?;
            tx.commit().await?;
            self.freshness.forget_student(id);
            deleted += 1;
        }
        // The summary has its own transaction, after the users' (each of which recorded its
        // removed invitations one by one): a call cut short leaves those, without a summary.
        if !counts.is_empty() {
            let now = self.clock.now();
            let mut tx = self.store.begin().await?;
            for (domain, (users, removed)) in &counts {
                let details =
                    AuditDetails::counts([("users", *users), ("invitations_removed", *removed)]);
                let event = directory_event(domain, actions::USERS_DELETED, caller, details, now);
                tx.append_event(&event).await?;
            }
            tx.commit().await?;
        }
        Ok(deleted)
    }

    /// One user; a user of another domain is "not found".
    pub async fn get_user(&self, who: &Authorized, id: &UserId) -> AppResult<User> {
        let caller = require(who, Permission::ReadDirectory)?;
        let mut session = self.store.session().await?;
        session
            .get_user(id)
            .await?
            .filter(|u| caller.acts_in(&u.domain))
            .ok_or(AppError::NotFound(Missing::User))
    }

    /// A page of a domain's users, by id.
    pub async fn list_users(&self, who: &Authorized, query: UserQuery) -> AppResult<UserPage> {
        require_domain(require(who, Permission::ReadDirectory)?, &query.domain)?;
        let size = paging::page_size(query.page_size)?;
        let role = query.role.map(Role::as_str).unwrap_or("");
        let filters = [query.domain.as_str(), role];
        let after = self
            .page_tokens
            .decode(&query.page_token, &filters)?
            .map(|k| UserId::parse(&k).map_err(|_| AppError::InvalidPageToken))
            .transpose()?;
        let mut session = self.store.session().await?;
        let mut users = session
            .list_users(&query.domain, query.role, after.as_ref(), size + 1)
            .await?;
        let next_page_token =
            self.page_tokens
                .cut(&mut users, size, |last| last.user_id.to_string(), &filters);
        Ok(UserPage {
            users,
            next_page_token,
        })
    }

    /// Creates or replaces a course and its membership, in a domain the caller acts in.
    pub async fn upsert_course(&self, who: &Authorized, course: Course) -> AppResult<Course> {
        let caller = require(who, Permission::WriteDirectory)?;
        require_domain(caller, &course.domain)?;
        if course.teacher_ids.len() + course.student_ids.len() > MAX_COURSE_MEMBERS {
            return Err(crate::domain::ValidationError::invalid(
                "course",
                format!("a course has at most {MAX_COURSE_MEMBERS} members"),
            )
            .into());
        }
        let mut tx = self.store.begin().await?;
        if let Some(existing) = tx.get_course(&course.course_id).await? {
            require_domain(caller, &existing.domain)?;
        }
        // A student of another domain joins only with both domains' consent, whoever writes
        // the directory: enrolment is what gives a course's teachers rights over a student.
        let course_settings = self.settings_via(tx.as_mut(), &course.domain).await?;
        for id in &course.student_ids {
            let Some(user) = tx.get_user(id).await? else {
                continue;
            };
            if user.domain != course.domain {
                let student_settings = self.settings_via(tx.as_mut(), &user.domain).await?;
                policy::partners_consent(&course_settings, &student_settings)?;
            }
        }
        let now = self.clock.now();
        tx.upsert_course(&course, now).await?;
        let details = AuditDetails::counts([
            ("teachers", course.teacher_ids.len() as i64),
            ("students", course.student_ids.len() as i64),
        ]);
        let event = directory_event(
            &course.domain,
            actions::COURSE_UPSERTED,
            caller,
            details,
            now,
        );
        tx.append_event(&event).await?;
        tx.commit().await?;
        Ok(course)
    }

    /// Deletes a course; deleting one that does not exist (or belongs to a domain the caller
    /// does not act in) succeeds without effect, so nothing leaks and retries are safe.
    pub async fn delete_course(&self, who: &Authorized, id: &CourseId) -> AppResult<()> {
        let caller = require(who, Permission::WriteDirectory)?;
        let mut tx = self.store.begin().await?;
        match tx.get_course(id).await? {
            Some(course) if caller.acts_in(&course.domain) => {
                tx.delete_course(id).await?;
                let details = AuditDetails::counts([("courses", 1)]);
                let now = self.clock.now();
                let event = directory_event(
                    &course.domain,
                    actions::COURSE_DELETED,
                    caller,
                    details,
                    now,
                );
                tx.append_event(&event).await?;
                tx.commit().await?;
            }
            _ => {}
        }
        Ok(())
    }
}

/// A domain-wide event for the domain's audit trail (a directory change summary, a privacy
/// request): counts, no personal data, no student, no invitation.
pub(super) fn directory_event(
    domain: &DomainName,
    action: &str,
    caller: &Caller,
    details: AuditDetails,
    now: DateTime<Utc>,
) -> AuditEvent {
    AuditEvent {
        event_id: 0,
        domain: domain.clone(),
        student_id: None,
        invitation_id: None,
        action: action.into(),
        actor_id: caller.subject.clone(),
        request_id: None,
        create_time: now,
        details,
    }
}
