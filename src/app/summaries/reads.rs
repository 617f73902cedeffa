//! Reading summaries: a preview built by the scheduler's own code, and the record of what was
//! built for a guardian.

use super::build::{BuildRequest, window_after};
use super::preferences::{SummarySubject, view_of};
use crate::app::access::require;
use crate::app::{App, AppError, AppResult, GuardianRef, Missing, Page};
use crate::auth::Authorized;
use crate::domain::policy::{Permission, StudentAccess};
use crate::domain::summary::{Frequency, Period, Schedule, SummaryDelivery, SummaryPreferences};
use crate::domain::{Caller, CallerRole, Role, StudentRef, UserId, paging};
use crate::mail::summary::{SummaryLetter, render_summary};
use chrono::{DateTime, TimeDelta, Utc};

/// What a preview is of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PreviewTarget {
    /// A guardian's summary, as it would be sent now.
    Guardian(GuardianRef),
    /// An example about one student, as a guardian with the domain's defaults would get it.
    Student(UserId),
}

/// A summary as it would be sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SummaryPreview {
    /// The subject line.
    pub subject: String,
    /// The text part.
    pub text: String,
    /// The HTML part.
    pub html: String,
    /// Nothing to report: the scheduler would record it and send nothing.
    pub empty: bool,
    /// The children it covers.
    pub student_ids: Vec<UserId>,
}

/// A page request of a guardian's summaries.
#[derive(Debug, Clone)]
pub struct DeliveryQuery {
    /// Whose.
    pub guardian: GuardianRef,
    /// The raw requested page size.
    pub page_size: i32,
    /// The previous page's token, or empty.
    pub page_token: String,
}

/// The token a preview's unsubscribe link carries: a preview must not hand out a working one.
const PREVIEW_TOKEN: &str = "preview";

impl App {
    /// What would be sent if the summary were built now, by the scheduler's own code. A
    /// guardian previews their own; anyone else sees only the children whose guardians they
    /// may read, and an example about a student is open to whoever may read its guardians.
    pub async fn preview_summary(
        &self,
        who: &Authorized,
        target: &PreviewTarget,
        frequency: Option<Frequency>,
    ) -> AppResult<SummaryPreview> {
        let caller = require(who, Permission::ReadGuardians)?;
        let now = self.clock.now();
        let mut session = self.store.session().await?;
        let (children, mut schedule, locale, name, previous_end) = match target {
            PreviewTarget::Guardian(guardian) => {
                let id = guardian.resolve(caller)?;
                let context = self.guardian_context(session.as_mut(), &id).await?;
                let view = view_of(session.as_mut(), &id, context.as_ref()).await?;
                let mut children = context.as_ref().map(|c| c.children()).unwrap_or_default();
                let own = caller.role == CallerRole::Guardian && caller.subject == id.as_str();
                if !own {
                    children = self
                        .readable_children(session.as_mut(), caller, children)
                        .await?;
                    if children.is_empty() {
                        return Err(match caller.role {
                            CallerRole::Admin | CallerRole::Service => {
                                AppError::NotFound(Missing::Guardian)
                            }
                            _ => AppError::NotAllowed(
                                "the caller may not read this guardian's children".into(),
                            ),
                        });
                    }
                }
                let name = context.as_ref().map(|c| c.name().to_owned());
                let previous = session.last_summary_delivery(&id).await?;
                (
                    children,
                    view.schedule,
                    view.locale,
                    name.unwrap_or_default(),
                    previous.map(|p| p.period_end),
                )
            }
            PreviewTarget::Student(student) => {
                let student = self
                    .authorize_student(
                        caller,
                        &StudentRef::Id(student.clone()),
                        StudentAccess::Read,
                    )
                    .await?;
                let unset = SummaryPreferences::unset(student.student.user_id.clone());
                let schedule = unset.schedule(&student.settings);
                let locale = unset.locale_or(&student.settings);
                (
                    vec![student.student.user_id],
                    schedule,
                    locale,
                    String::new(),
                    None,
                )
            }
        };
        if let Some(f) = frequency {
            schedule.frequency = f;
        }
        // NEVER sends nothing; a preview then shows what a weekly summary would hold.
        if schedule.frequency == Frequency::Never {
            schedule.frequency = Frequency::Weekly;
        }
        let period = period_ending(&schedule, now);
        let window = window_after(previous_end, &schedule, &period);
        let built = self
            .build_summaries(session.as_mut(), &[BuildRequest { children, window }])
            .await?
            .pop()
            .ok_or_else(|| AppError::Internal("no summary built".into()))?;
        drop(session);
        let unsubscribe_url = format!(
            "{}/summaries/unsubscribe?token={PREVIEW_TOKEN}",
            self.config.public_url.trim_end_matches('/')
        );
        let rendered = render_summary(&SummaryLetter {
            summary: &built.summary,
            guardian_name: &name,
            locale,
            frequency: schedule.frequency,
            period_end: period.end,
            zone: schedule.zone,
            unsubscribe_url: &unsubscribe_url,
        })
        .map_err(AppError::Internal)?;
        Ok(SummaryPreview {
            subject: rendered.subject,
            text: rendered.text,
            html: rendered.html,
            empty: built.summary.is_empty(),
            student_ids: built.students,
        })
    }

    /// The summaries built for a guardian, newest first. An admin or service sees only the
    /// children of its own domains in each record.
    pub async fn list_summary_deliveries(
        &self,
        who: &Authorized,
        query: &DeliveryQuery,
    ) -> AppResult<Page<SummaryDelivery>> {
        let caller = require(who, Permission::ReadSummaries)?;
        let size = paging::page_size(query.page_size)?;
        let mut session = self.store.session().await?;
        let SummarySubject {
            guardian,
            visible_students,
        } = self
            .summary_subject(session.as_mut(), caller, &query.guardian)
            .await?;
        let filters = [guardian.as_str()];
        let before = self.page_tokens.decode(&query.page_token, &filters)?;
        let mut rows = session
            .list_summary_deliveries(&guardian, before.as_deref(), size + 1)
            .await?;
        let next_page_token =
            self.page_tokens
                .cut(&mut rows, size, |d| d.period_key.clone(), &filters);
        if let Some(visible) = visible_students {
            for row in &mut rows {
                row.student_ids.retain(|s| visible.contains(s));
            }
        }
        Ok(Page {
            items: rows,
            next_page_token,
        })
    }

    /// Those of `children` whose guardians `caller` may read.
    async fn readable_children(
        &self,
        session: &mut dyn crate::store::Session,
        caller: &Caller,
        children: Vec<UserId>,
    ) -> AppResult<Vec<UserId>> {
        let mut readable = Vec::new();
        for child in children {
            let student = session
                .get_user(&child)
                .await?
                .filter(|u| u.role == Role::Student);
            match self
                .decide_for(session, caller, student, StudentAccess::Read)
                .await
            {
                Ok(_) => readable.push(child),
                Err(AppError::NotAllowed(_) | AppError::NotFound(_)) => {}
                Err(other) => return Err(other),
            }
        }
        Ok(readable)
    }
}

/// The period a summary built at `now` would cover: the scheduler's own when `now` is a send
/// instant, else from the latest send instant (or a week back) to `now`.
fn period_ending(schedule: &Schedule, now: DateTime<Utc>) -> Period {
    match schedule.latest_due(now) {
        Some(period) if period.end == now => period,
        latest => Period {
            key: String::new(),
            frequency: schedule.frequency,
            start: latest.map(|p| p.end).unwrap_or(now - TimeDelta::days(7)),
            end: now,
        },
    }
}
