//! What summaries are made of, as other systems push it: class activity from the coursework
//! backend, and a class's switch that leaves it out of summaries.

use crate::app::access::require;
use crate::app::{App, AppError, AppResult, Missing};
use crate::auth::Authorized;
use crate::domain::audit::{AuditDetails, AuditEvent, actions};
use crate::domain::policy::Permission;
use crate::domain::summary::ActivityItem;
use crate::domain::{CallerRole, CourseId, DomainName, ValidationError};
use std::collections::HashMap;

/// Most items one PublishClassActivity call takes.
pub const MAX_ACTIVITY_ITEMS: usize = 1000;

/// The outcome of one published item: stored (`true`), older than the stored one and ignored
/// (`false`), or refused.
pub type ItemOutcome = Result<bool, AppError>;

impl App {
    /// Upserts class activity, newest `update_time` winning. Each item is checked on its own
    /// (its fields, its course, the caller's right to that course's domain); the accepted ones
    /// are written in one transaction. Items that failed to parse arrive as their error.
    pub async fn publish_activity(
        &self,
        who: &Authorized,
        items: Vec<Result<ActivityItem, ValidationError>>,
    ) -> AppResult<Vec<ItemOutcome>> {
        let caller = require(who, Permission::PublishActivity)?;
        if items.len() > MAX_ACTIVITY_ITEMS {
            return Err(ValidationError::invalid(
                "items",
                format!("at most {MAX_ACTIVITY_ITEMS} items per call"),
            )
            .into());
        }
        let mut outcomes: Vec<Option<ItemOutcome>> = Vec::with_capacity(items.len());
        let mut accepted = Vec::new();
        {
            let mut session = self.store.session().await?;
            let mut domains: HashMap<CourseId, Option<DomainName>> = HashMap::new();
            for (index, item) in items.into_iter().enumerate() {
                let item = match item.and_then(|i| i.validate().map(|()| i)) {
                    Ok(item) => item,
                    Err(invalid) => {
                        outcomes.push(Some(Err(invalid.into())));
                        continue;
                    }
                };
                let course = item.course_id().clone();
                let domain = match domains.get(&course) {
                    Some(known) => known.clone(),
                    None => {
                        let found = session.get_course(&course).await?.map(|c| c.domain);
                        domains.insert(course, found.clone());
                        found
                    }
                };
                // A course of another tenant is as unknown as one that does not exist.
                if domain.is_some_and(|d| caller.acts_in(&d)) {
                    outcomes.push(None);
                    accepted.push((index, item));
                } else {
                    outcomes.push(Some(Err(AppError::NotFound(Missing::Course))));
                }
            }
        }
        if !accepted.is_empty() {
            let mut tx = self.store.begin().await?;
            for (index, item) in &accepted {
                let applied = match item {
                    ActivityItem::CourseWork(w) => tx.upsert_course_work(w).await?,
                    ActivityItem::Submission(s) => tx.upsert_submission(s).await?,
                    ActivityItem::Announcement(a) => tx.upsert_announcement(a).await?,
                };
                outcomes[*index] = Some(Ok(applied));
            }
            tx.commit().await?;
        }
        metrics::counter!("guardians_activity_items_total").increment(accepted.len() as u64);
        Ok(outcomes
            .into_iter()
            .map(|o| o.unwrap_or_else(|| Err(AppError::Internal("an item left unanswered".into()))))
            .collect())
    }

    /// Leaves a class out of every summary (`enabled` false), or puts it back. The course's
    /// own teachers may, whatever `who_can_manage` says; admins and services of its domain too.
    pub async fn set_course_summaries(
        &self,
        who: &Authorized,
        course_id: &CourseId,
        enabled: bool,
    ) -> AppResult<bool> {
        let caller = require(who, Permission::ManageCourseSummaries)?;
        let mut tx = self.store.begin().await?;
        let course = tx.get_course(course_id).await?;
        match caller.role {
            CallerRole::Teacher => {
                let teaches = course.as_ref().is_some_and(|c| {
                    c.teacher_ids.iter().any(|t| t.as_str() == caller.subject)
                        && caller.acts_in(&c.domain)
                });
                if !teaches {
                    return Err(AppError::NotAllowed(
                        "teachers may only change the classes they teach".into(),
                    ));
                }
            }
            CallerRole::Admin | CallerRole::Service => {
                if !course.as_ref().is_some_and(|c| caller.acts_in(&c.domain)) {
                    return Err(AppError::NotFound(Missing::Course));
                }
            }
            CallerRole::Student | CallerRole::Guardian => {
                return Err(AppError::NotAllowed(
                    "the caller's role may not make this call".into(),
                ));
            }
        }
        let Some(course) = course else {
            return Err(AppError::NotFound(Missing::Course));
        };
        let now = self.clock.now();
        tx.set_course_summaries(course_id, enabled, now).await?;
        tx.append_event(&AuditEvent {
            event_id: 0,
            domain: course.domain.clone(),
            student_id: None,
            invitation_id: None,
            action: actions::COURSE_SUMMARIES_UPDATED.into(),
            actor_id: caller.subject.clone(),
            request_id: None,
            create_time: now,
            details: AuditDetails::counts([("guardian_summaries_enabled", i64::from(enabled))]),
        })
        .await?;
        tx.commit().await?;
        Ok(enabled)
    }
}
