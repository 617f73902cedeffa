//! What one summary holds, built from a guardian's children's classes: per child, per class,
//! Missing, Upcoming and Class activity. Never grades; texts shortened.

use super::activity::{Announcement, CourseWork, ItemState, SubmissionState, shorten};
use crate::domain::ids::{CourseId, UserId};
use chrono::{DateTime, TimeDelta, Utc};
use std::collections::HashMap;

/// Longest title or announcement text in a summary.
pub const MAX_LINE: usize = 200;
/// How far back missing work is reported (and activity kept at all).
pub const LOOK_BACK_DAYS: i64 = 30;

/// The instants a summary is built around.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// The build instant (the period's send instant).
    pub now: DateTime<Utc>,
    /// Class activity published since then counts.
    pub activity_since: DateTime<Utc>,
    /// Work due before then is upcoming.
    pub upcoming_until: DateTime<Utc>,
}

impl Window {
    /// Missing work due before this is no longer reported.
    pub fn missing_since(&self) -> DateTime<Utc> {
        self.now - TimeDelta::days(LOOK_BACK_DAYS)
    }

    /// A line of class activity, when `published` falls in the window.
    fn activity(
        &self,
        kind: ActivityKind,
        text: &str,
        published: Option<DateTime<Utc>>,
    ) -> Option<ActivityLine> {
        let time = published.filter(|t| *t >= self.activity_since && *t < self.now)?;
        Some(ActivityLine {
            kind,
            text: shorten(text, MAX_LINE),
            time,
        })
    }
}

/// One class of one child, as read from the store.
#[derive(Debug, Clone)]
pub struct ClassInput {
    /// The course.
    pub course_id: CourseId,
    /// Its course work.
    pub work: Vec<CourseWork>,
    /// The child's submissions, by course work id.
    pub submissions: HashMap<String, SubmissionState>,
    /// Its announcements.
    pub announcements: Vec<Announcement>,
}

/// A line about a piece of work.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkLine {
    /// The shortened title.
    pub title: String,
    /// When it is (or was) due.
    pub due_time: DateTime<Utc>,
    /// Already turned in (upcoming work only).
    pub turned_in: bool,
}

/// What kind of class activity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActivityKind {
    /// An announcement.
    Announcement,
    /// Newly published work.
    NewWork,
}

/// A line of class activity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActivityLine {
    /// Announcement or new work.
    pub kind: ActivityKind,
    /// The shortened text or title.
    pub text: String,
    /// When it was published.
    pub time: DateTime<Utc>,
}

/// One class's part of a child's section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClassSummary {
    /// The course.
    pub course_id: CourseId,
    /// Published work past due whose submission is still ASSIGNED, oldest first.
    pub missing: Vec<WorkLine>,
    /// Published work due in the coming period, soonest first.
    pub upcoming: Vec<WorkLine>,
    /// Announcements and work published in the period, oldest first.
    pub activity: Vec<ActivityLine>,
}

impl ClassSummary {
    /// Whether there is nothing to say about the class.
    pub fn is_empty(&self) -> bool {
        self.missing.is_empty() && self.upcoming.is_empty() && self.activity.is_empty()
    }
}

/// One child's section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChildSummary {
    /// The student.
    pub student_id: UserId,
    /// Their name as the directory has it.
    pub display_name: String,
    /// Classes with something to say, by course id.
    pub classes: Vec<ClassSummary>,
}

/// A whole summary: one email.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Summary {
    /// Children with something to say.
    pub children: Vec<ChildSummary>,
}

/// How many lines of each kind a summary holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SummaryCounts {
    /// Missing work.
    pub missing: i64,
    /// Upcoming work.
    pub upcoming: i64,
    /// Class activity.
    pub activity: i64,
}

impl Summary {
    /// Nothing to report: recorded as SKIPPED_EMPTY, not sent.
    pub fn is_empty(&self) -> bool {
        self.children.is_empty()
    }

    /// Line counts, for the delivery record.
    pub fn counts(&self) -> SummaryCounts {
        let mut counts = SummaryCounts::default();
        for class in self.children.iter().flat_map(|c| &c.classes) {
            counts.missing += class.missing.len() as i64;
            counts.upcoming += class.upcoming.len() as i64;
            counts.activity += class.activity.len() as i64;
        }
        counts
    }

    /// Adds a child's section when any of their classes has something to say.
    pub fn add_child(
        &mut self,
        student_id: UserId,
        display_name: String,
        classes: Vec<ClassSummary>,
    ) {
        let mut classes: Vec<ClassSummary> =
            classes.into_iter().filter(|c| !c.is_empty()).collect();
        if classes.is_empty() {
            return;
        }
        classes.sort_by(|a, b| a.course_id.cmp(&b.course_id));
        self.children.push(ChildSummary {
            student_id,
            display_name,
            classes,
        });
    }
}

/// Builds one class's part for one child.
pub fn summarise_class(input: &ClassInput, window: &Window) -> ClassSummary {
    let mut missing = Vec::new();
    let mut upcoming = Vec::new();
    let mut activity = Vec::new();
    for work in input
        .work
        .iter()
        .filter(|w| w.state == ItemState::Published)
    {
        let submission = input.submissions.get(&work.course_work_id).copied();
        if let Some(due) = work.due_time {
            let line = |turned_in| WorkLine {
                title: shorten(&work.title, MAX_LINE),
                due_time: due,
                turned_in,
            };
            if due < window.now {
                if due >= window.missing_since() && submission == Some(SubmissionState::Assigned) {
                    missing.push(line(false));
                }
            } else if due < window.upcoming_until && submission != Some(SubmissionState::Excused) {
                let done = matches!(
                    submission,
                    Some(SubmissionState::TurnedIn | SubmissionState::Returned)
                );
                upcoming.push(line(done));
            }
        }
        activity.extend(window.activity(ActivityKind::NewWork, &work.title, work.publish_time));
    }
    for announcement in input
        .announcements
        .iter()
        .filter(|a| a.state == ItemState::Published)
    {
        activity.extend(window.activity(
            ActivityKind::Announcement,
            &announcement.text,
            announcement.publish_time,
        ));
    }
    missing.sort_by(|a, b| (a.due_time, &a.title).cmp(&(b.due_time, &b.title)));
    upcoming.sort_by(|a, b| (a.due_time, &a.title).cmp(&(b.due_time, &b.title)));
    activity.sort_by(|a, b| (a.time, &a.text).cmp(&(b.time, &b.text)));
    ClassSummary {
        course_id: input.course_id.clone(),
        missing,
        upcoming,
        activity,
    }
}
