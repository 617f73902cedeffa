//! Course work, submissions and announcements as the coursework backend publishes them: only
//! what a summary needs, upserted by id, the newest `update_time` winning.

use crate::domain::error::ValidationError;
use crate::domain::ids::{CourseId, UserId};
use chrono::{DateTime, Utc};

/// Longest id of a work item or announcement.
const MAX_ITEM_ID: usize = 256;
/// Longest title kept (a summary shortens further).
const MAX_TITLE: usize = 3_000;
/// Longest announcement text kept.
const MAX_TEXT: usize = 30_000;

/// Whether a work item or announcement is live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ItemState {
    /// Visible to students.
    Published,
    /// Withdrawn: it no longer appears in summaries.
    Deleted,
}

impl ItemState {
    /// The stored and wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Published => "PUBLISHED",
            Self::Deleted => "DELETED",
        }
    }

    /// Parses a stored name.
    pub fn from_name(name: &str) -> Option<Self> {
        [Self::Published, Self::Deleted]
            .into_iter()
            .find(|s| s.as_str() == name)
    }
}

/// Where a student's submission stands. Never a grade.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubmissionState {
    /// Not turned in yet.
    Assigned,
    /// Turned in.
    TurnedIn,
    /// Returned by the teacher.
    Returned,
    /// The student need not do it.
    Excused,
}

impl SubmissionState {
    /// The stored and wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Assigned => "ASSIGNED",
            Self::TurnedIn => "TURNED_IN",
            Self::Returned => "RETURNED",
            Self::Excused => "EXCUSED",
        }
    }

    /// Parses a stored name.
    pub fn from_name(name: &str) -> Option<Self> {
        [
            Self::Assigned,
            Self::TurnedIn,
            Self::Returned,
            Self::Excused,
        ]
        .into_iter()
        .find(|s| s.as_str() == name)
    }
}

/// A piece of course work.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CourseWork {
    /// Its course.
    pub course_id: CourseId,
    /// Its id within the coursework backend.
    pub course_work_id: String,
    /// Its title.
    pub title: String,
    /// When it is due, if it is.
    pub due_time: Option<DateTime<Utc>>,
    /// Published or deleted.
    pub state: ItemState,
    /// The backend's last change; an older one than stored is ignored.
    pub update_time: DateTime<Utc>,
    /// When it was first seen published: set by the store, ignored on input.
    pub publish_time: Option<DateTime<Utc>>,
}

/// A student's submission of a piece of course work.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Submission {
    /// The work's course.
    pub course_id: CourseId,
    /// The work.
    pub course_work_id: String,
    /// The student.
    pub student_id: UserId,
    /// Where it stands.
    pub state: SubmissionState,
    /// The backend's last change.
    pub update_time: DateTime<Utc>,
}

/// A class announcement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Announcement {
    /// Its course.
    pub course_id: CourseId,
    /// Its id within the coursework backend.
    pub announcement_id: String,
    /// Its text.
    pub text: String,
    /// Published or deleted.
    pub state: ItemState,
    /// The backend's last change.
    pub update_time: DateTime<Utc>,
    /// When it was first seen published: set by the store, ignored on input.
    pub publish_time: Option<DateTime<Utc>>,
}

/// One published item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ActivityItem {
    /// Course work.
    CourseWork(CourseWork),
    /// A submission.
    Submission(Submission),
    /// An announcement.
    Announcement(Announcement),
}

impl ActivityItem {
    /// The item's course.
    pub fn course_id(&self) -> &CourseId {
        match self {
            Self::CourseWork(w) => &w.course_id,
            Self::Submission(s) => &s.course_id,
            Self::Announcement(a) => &a.course_id,
        }
    }

    /// Checks the lengths the store keeps.
    pub fn validate(&self) -> Result<(), ValidationError> {
        match self {
            Self::CourseWork(w) => {
                item_id("course_work.course_work_id", &w.course_work_id)?;
                bounded("course_work.title", &w.title, MAX_TITLE)
            }
            Self::Submission(s) => item_id("submission.course_work_id", &s.course_work_id),
            Self::Announcement(a) => {
                item_id("announcement.announcement_id", &a.announcement_id)?;
                bounded("announcement.text", &a.text, MAX_TEXT)
            }
        }
    }
}

fn item_id(field: &str, id: &str) -> Result<(), ValidationError> {
    if id.is_empty() {
        return Err(ValidationError::invalid(field, format!("{field} is empty")));
    }
    bounded(field, id, MAX_ITEM_ID)
}

fn bounded(field: &str, text: &str, max: usize) -> Result<(), ValidationError> {
    if text.chars().count() > max {
        Err(ValidationError::invalid(
            field,
            format!("{field} is longer than {max} characters"),
        ))
    } else {
        Ok(())
    }
}

/// Shortens text for a summary: at most `max` characters, cut at a word where one is near,
/// with an ellipsis when cut; line breaks become spaces.
pub fn shorten(text: &str, max: usize) -> String {
    let flat: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() <= max {
        return flat;
    }
    let cut: String = flat.chars().take(max.saturating_sub(1)).collect();
    let at_word = match cut.rfind(' ') {
        Some(space) if space * 5 >= cut.len() * 4 => &cut[..space],
        _ => cut.as_str(),
    };
    format!("{}…", at_word.trim_end())
}
