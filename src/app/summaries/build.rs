//! Gathering summaries from the store, a page of guardians at a time: their links and
//! preferences, each child's classes with summaries enabled in domains with guardian access on,
//! and the classes' activity, each read once per page whatever the number of guardians. The
//! scheduler and the preview both build through here, so a preview is what would be sent.

use crate::app::{App, AppResult};
use crate::domain::summary::content::{LOOK_BACK_DAYS, summarise_class};
use crate::domain::summary::{
    Announcement, ClassInput, CourseWork, Period, Schedule, SubmissionState, Summary,
    SummaryPreferences, Window,
};
use crate::domain::{CourseId, DomainName, DomainSettings, Invitation, Locale, User, UserId};
use crate::store::Session;
use chrono::{DateTime, TimeDelta, Utc};
use std::collections::{HashMap, HashSet};

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
    /// Their schedule.
    pub(crate) fn schedule(&self) -> Schedule {
        self.preferences.schedule(&self.defaults)
    }

    /// Their language.
    pub(crate) fn locale(&self) -> Locale {
        self.preferences.locale_or(&self.defaults)
    }

    /// Their children, in link order.
    pub(crate) fn children(&self) -> Vec<UserId> {
        self.links.iter().map(|l| l.student_id.clone()).collect()
    }

    /// The school's sender name and Reply-To, when all their children are in one domain (a
    /// summary about children of two schools comes from the service itself).
    pub(crate) fn sender(&self) -> (Option<String>, Option<crate::domain::Email>) {
        let one_school = self.links.iter().all(|l| l.domain == self.defaults.domain);
        if !one_school {
            return (None, None);
        }
        (
            self.defaults.sender_name().map(str::to_owned),
            self.defaults.reply_to_address.clone(),
        )
    }

    /// How the email greets them: the name they gave when accepting.
    pub(crate) fn name(&self) -> &str {
        self.links
            .iter()
            .find_map(|l| l.guardian.as_ref().map(|g| g.display_name.as_str()))
            .unwrap_or("")
    }
}

/// One summary to build: whose children, over which window.
#[derive(Debug, Clone)]
pub(crate) struct BuildRequest {
    /// The children it covers if their domains allow.
    pub(crate) children: Vec<UserId>,
    /// The instants it is built around.
    pub(crate) window: Window,
}

/// A built summary and what it covers.
#[derive(Debug, Clone)]
pub(crate) struct Built {
    /// The content.
    pub(crate) summary: Summary,
    /// Children whose domains allow summaries (covered, even if nothing was to be said).
    pub(crate) students: Vec<UserId>,
}

/// What a page of children's classes holds, read once for every summary of the page.
struct Classes {
    students: HashMap<UserId, User>,
    courses: HashMap<UserId, Vec<(CourseId, DomainName)>>,
    disabled: HashSet<CourseId>,
    work: HashMap<CourseId, Vec<CourseWork>>,
    announcements: HashMap<CourseId, Vec<Announcement>>,
    submissions: HashMap<(UserId, CourseId), HashMap<String, SubmissionState>>,
}

impl App {
    /// Reads what deciding a guardian's summary needs; `None` when they have no links.
    pub(crate) async fn guardian_context(
        &self,
        session: &mut dyn Session,
        guardian: &UserId,
    ) -> AppResult<Option<GuardianContext>> {
        let mut contexts = self
            .guardian_contexts(session, std::slice::from_ref(guardian))
            .await?;
        Ok(contexts.remove(guardian))
    }

    /// [`Self::guardian_context`] of a page of guardians, in three reads; those without links
    /// are absent.
    pub(crate) async fn guardian_contexts(
        &self,
        session: &mut dyn Session,
        guardians: &[UserId],
    ) -> AppResult<HashMap<UserId, GuardianContext>> {
        let mut links: HashMap<UserId, Vec<Invitation>> = HashMap::new();
        for link in session.links_of_guardians(guardians).await? {
            if let Some(guardian) = link.guardian.as_ref().map(|g| g.guardian_id.clone()) {
                links.entry(guardian).or_default().push(link);
            }
        }
        let mut preferences: HashMap<UserId, SummaryPreferences> = session
            .summary_preferences_of(guardians)
            .await?
            .into_iter()
            .map(|p| (p.guardian_id.clone(), p))
            .collect();
        let mut contexts = HashMap::with_capacity(links.len());
        for (guardian, links) in links {
            let Some(first) = links.first() else { continue };
            let defaults = self.settings_via(session, &first.domain).await?;
            let preferences = preferences
                .remove(&guardian)
                .unwrap_or_else(|| SummaryPreferences::unset(guardian.clone()));
            contexts.insert(
                guardian,
                GuardianContext {
                    links,
                    preferences,
                    defaults,
                },
            );
        }
        Ok(contexts)
    }

    /// Builds each request's summary: per child whose domain has guardian access on, per class
    /// with summaries enabled in a domain with access on. The page's children, classes and
    /// activity are read once for all of them.
    pub(crate) async fn build_summaries(
        &self,
        session: &mut dyn Session,
        requests: &[BuildRequest],
    ) -> AppResult<Vec<Built>> {
        let mut access: HashMap<DomainName, bool> = HashMap::new();
        let classes = self.read_classes(session, requests, &mut access).await?;
        Ok(requests
            .iter()
            .map(|request| build_one(request, &classes, &access))
            .collect())
    }

    /// Reads the classes of every child of `requests`, and fills `access` for every domain
    /// concerned.
    async fn read_classes(
        &self,
        session: &mut dyn Session,
        requests: &[BuildRequest],
        access: &mut HashMap<DomainName, bool>,
    ) -> AppResult<Classes> {
        let mut children: Vec<UserId> = requests
            .iter()
            .flat_map(|r| r.children.iter().cloned())
            .collect();
        children.sort();
        children.dedup();
        let students: HashMap<UserId, User> = session
            .users_by_id(&children)
            .await?
            .into_iter()
            .map(|u| (u.user_id.clone(), u))
            .collect();
        let mut courses: HashMap<UserId, Vec<(CourseId, DomainName)>> = HashMap::new();
        for (student, course, domain) in session.courses_of_students(&children).await? {
            courses.entry(student).or_default().push((course, domain));
        }
        let domains: HashSet<&DomainName> = students
            .values()
            .map(|s| &s.domain)
            .chain(courses.values().flatten().map(|(_, d)| d))
            .collect();
        for domain in domains {
            if !access.contains_key(domain) {
                let on = self
                    .settings_via(session, domain)
                    .await?
                    .guardian_access_enabled;
                access.insert(domain.clone(), on);
            }
        }
        // Only classes that can appear: a partner-domain class needs access on in its domain.
        let mut open: Vec<CourseId> = courses
            .values()
            .flatten()
            .filter(|(_, domain)| access.get(domain).copied().unwrap_or(false))
            .map(|(course, _)| course.clone())
            .collect();
        open.sort();
        open.dedup();
        let disabled: HashSet<CourseId> = session
            .courses_without_summaries(&open)
            .await?
            .into_iter()
            .collect();
        open.retain(|c| !disabled.contains(c));
        let since = requests
            .iter()
            .map(|r| (r.window.now - TimeDelta::days(LOOK_BACK_DAYS)).min(r.window.activity_since))
            .min();
        let (work_rows, announcement_rows) = match since {
            Some(since) => session.class_activity(&open, since).await?,
            None => (Vec::new(), Vec::new()),
        };
        let mut work: HashMap<CourseId, Vec<CourseWork>> = HashMap::new();
        for w in work_rows {
            work.entry(w.course_id.clone()).or_default().push(w);
        }
        let mut announcements: HashMap<CourseId, Vec<Announcement>> = HashMap::new();
        for a in announcement_rows {
            announcements
                .entry(a.course_id.clone())
                .or_default()
                .push(a);
        }
        let mut submissions: HashMap<(UserId, CourseId), HashMap<String, SubmissionState>> =
            HashMap::new();
        for s in session.submissions_of(&children, &open).await? {
            submissions
                .entry((s.student_id, s.course_id))
                .or_default()
                .insert(s.course_work_id, s.state);
        }
        Ok(Classes {
            students,
            courses,
            disabled,
            work,
            announcements,
            submissions,
        })
    }
}

/// One summary from what the page read.
fn build_one(
    request: &BuildRequest,
    classes: &Classes,
    access: &HashMap<DomainName, bool>,
) -> Built {
    let on = |domain: &DomainName| access.get(domain).copied().unwrap_or(false);
    let mut summary = Summary::default();
    let mut students = Vec::new();
    for child in &request.children {
        let Some(student) = classes.students.get(child) else {
            continue;
        };
        if !on(&student.domain) {
            continue;
        }
        students.push(student.user_id.clone());
        let parts = classes
            .courses
            .get(child)
            .into_iter()
            .flatten()
            .filter(|(course, domain)| on(domain) && !classes.disabled.contains(course))
            .map(|(course, _)| {
                let input = ClassInput {
                    course_id: course.clone(),
                    work: classes.work.get(course).cloned().unwrap_or_default(),
                    submissions: classes
                        .submissions
                        .get(&(child.clone(), course.clone()))
                        .cloned()
                        .unwrap_or_default(),
                    announcements: classes
                        .announcements
                        .get(course)
                        .cloned()
                        .unwrap_or_default(),
                };
                summarise_class(&input, &request.window)
            })
            .collect();
        summary.add_child(student.user_id.clone(), student.display_name.clone(), parts);
    }
    Built { summary, students }
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
