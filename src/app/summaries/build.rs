//! Gathering one guardian's summary from the store: their links, each child's classes with
//! summaries enabled in domains with guardian access on, and the classes' activity. The
//! scheduler and the preview both build through here, so a preview is what would be sent.

use super::preferences::links_of;
use crate::app::{App, AppResult};
use crate::domain::summary::content::{LOOK_BACK_DAYS, summarise_class};
use crate::domain::summary::{
    ClassInput, Frequency, Period, Schedule, Summary, SummaryPreferences, Window,
};
use crate::domain::{DomainName, DomainSettings, Invitation, Locale, UserId};
use crate::store::Session;
use chrono::{DateTime, TimeDelta, Utc};
use std::collections::HashMap;

/// Everything about one guardian that deciding and building their summary needs.
#[derive(Debug, Clone)]
pub(crate) struct GuardianContext {
    /// Their ACCEPTED links, by invitation id.
    pub(crate) links: Vec<Invitation>,
    /// Their stored preferences (or none chosen).
    pub(crate) preferences: SummaryPreferences,
    /// Settings of the domain of their first child: the defaults they follow.
    pub(crate) defaults: DomainSettings,
}

impl GuardianContext {
    /// Their schedule, with `frequency` in place of theirs when given (previews).
    pub(crate) fn schedule(&self, frequency: Option<Frequency>) -> Schedule {
        let mut schedule = self.preferences.schedule(&self.defaults);
        if let Some(f) = frequency {
            schedule.frequency = f;
        }
        schedule
    }

    /// Their language.
    pub(crate) fn locale(&self) -> Locale {
        self.preferences.locale_or(&self.defaults)
    }

    /// Their children, in link order.
    pub(crate) fn children(&self) -> Vec<UserId> {
        self.links.iter().map(|l| l.student_id.clone()).collect()
    }

    /// How the email greets them: the name they gave when accepting.
    pub(crate) fn name(&self) -> &str {
        self.links
            .iter()
            .find_map(|l| l.guardian.as_ref().map(|g| g.display_name.as_str()))
            .unwrap_or("")
    }
}

/// A built summary and what it covers.
#[derive(Debug, Clone)]
pub(crate) struct Built {
    /// The content.
    pub(crate) summary: Summary,
    /// Children whose domains allow summaries (covered, even if nothing was to be said).
    pub(crate) students: Vec<UserId>,
}

impl App {
    /// Reads what deciding a guardian's summary needs; `None` when they have no links.
    pub(crate) async fn guardian_context(
        &self,
        session: &mut dyn Session,
        guardian: &UserId,
    ) -> AppResult<Option<GuardianContext>> {
        let links = links_of(session, guardian).await?;
        let Some(first) = links.first() else {
            return Ok(None);
        };
        let defaults = self.settings_via(session, &first.domain).await?;
        let preferences = session
            .get_summary_preferences(guardian)
            .await?
            .unwrap_or_else(|| SummaryPreferences::unset(guardian.clone()));
        Ok(Some(GuardianContext {
            links,
            preferences,
            defaults,
        }))
    }

    /// The window a summary for `period` covers: activity since the guardian's previous
    /// summary (or the period's start for a first one), at most the look-back.
    pub(crate) async fn window(
        &self,
        session: &mut dyn Session,
        guardian: &UserId,
        schedule: &Schedule,
        period: &Period,
    ) -> AppResult<Window> {
        let previous = session.last_summary_delivery(guardian).await?;
        Ok(window_after(
            previous.map(|p| p.period_end),
            schedule,
            period,
        ))
    }

    /// Builds the summary of `children` over `window`: per child whose domain has guardian
    /// access on, per class with summaries enabled in a domain with access on.
    pub(crate) async fn build_summary(
        &self,
        session: &mut dyn Session,
        children: &[UserId],
        window: &Window,
    ) -> AppResult<Built> {
        let mut summary = Summary::default();
        let mut students = Vec::new();
        let mut access: HashMap<DomainName, bool> = HashMap::new();
        let look_back = window.now - TimeDelta::days(LOOK_BACK_DAYS);
        let since = look_back.min(window.activity_since);
        for child in children {
            let Some(student) = session.get_user(child).await? else {
                continue;
            };
            if !self
                .access_on(session, &mut access, &student.domain)
                .await?
            {
                continue;
            }
            students.push(student.user_id.clone());
            let mut courses = Vec::new();
            for (course, domain) in session.courses_of_student(&student.user_id).await? {
                // A partner-domain class: the course's domain must allow summaries too.
                if self.access_on(session, &mut access, &domain).await? {
                    courses.push(course);
                }
            }
            let disabled = session.courses_without_summaries(&courses).await?;
            courses.retain(|c| !disabled.contains(c));
            let (work, announcements) = session.class_activity(&courses, since).await?;
            let submissions = session.submissions_of(&student.user_id, &courses).await?;
            let classes = courses
                .iter()
                .map(|course| {
                    let input = ClassInput {
                        course_id: course.clone(),
                        work: work
                            .iter()
                            .filter(|w| &w.course_id == course)
                            .cloned()
                            .collect(),
                        submissions: submissions
                            .iter()
                            .filter(|s| &s.course_id == course)
                            .map(|s| (s.course_work_id.clone(), s.state))
                            .collect(),
                        announcements: announcements
                            .iter()
                            .filter(|a| &a.course_id == course)
                            .cloned()
                            .collect(),
                    };
                    summarise_class(&input, window)
                })
                .collect();
            summary.add_child(
                student.user_id.clone(),
                student.display_name.clone(),
                classes,
            );
        }
        Ok(Built { summary, students })
    }

    async fn access_on(
        &self,
        session: &mut dyn Session,
        known: &mut HashMap<DomainName, bool>,
        domain: &DomainName,
    ) -> AppResult<bool> {
        if let Some(on) = known.get(domain) {
            return Ok(*on);
        }
        let on = self
            .settings_via(session, domain)
            .await?
            .guardian_access_enabled;
        known.insert(domain.clone(), on);
        Ok(on)
    }
}

/// The window of a summary for `period`: activity since the guardian's previous summary
/// (`previous_end`), or the period's start for a first one, at most the look-back.
pub(crate) fn window_after(
    previous_end: Option<DateTime<Utc>>,
    schedule: &Schedule,
    period: &Period,
) -> Window {
    let since = previous_end
        .filter(|end| *end < period.end)
        .unwrap_or(period.start)
        .max(period.end - TimeDelta::days(LOOK_BACK_DAYS));
    Window {
        now: period.end,
        activity_since: since,
        upcoming_until: schedule.upcoming_until(period.end),
    }
}
