//! Guardian email summaries (summaries.md): the activity they are made of, when they are due,
//! and what one holds. Pure: the store reads the inputs, the app writes the outputs.

pub mod activity;
pub mod content;
pub mod schedule;
#[cfg(test)]
mod tests;

pub use activity::{
    ActivityItem, Announcement, CourseWork, ItemState, Submission, SubmissionState,
};
pub use content::{ClassInput, Summary, SummaryCounts, Window, summarise_class};
pub use schedule::{Frequency, Period, Schedule};

use super::ids::UserId;
use super::settings::{DomainSettings, Locale};
use chrono::{DateTime, Utc, Weekday};
use chrono_tz::Tz;

/// A guardian's own choices; `None` follows the defaults of their children's domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SummaryPreferences {
    /// The guardian.
    pub guardian_id: UserId,
    /// How often.
    pub frequency: Option<Frequency>,
    /// The day of a WEEKLY summary.
    pub weekly_day: Option<Weekday>,
    /// Their time zone.
    pub time_zone: Option<Tz>,
    /// Their language.
    pub locale: Option<Locale>,
    /// When last changed; `None` if never stored.
    pub update_time: Option<DateTime<Utc>>,
}

impl SummaryPreferences {
    /// Nothing chosen.
    pub fn unset(guardian_id: UserId) -> Self {
        Self {
            guardian_id,
            frequency: None,
            weekly_day: None,
            time_zone: None,
            locale: None,
            update_time: None,
        }
    }

    /// The schedule in force: these choices over `defaults` (the settings of the domain of the
    /// guardian's first child).
    pub fn schedule(&self, defaults: &DomainSettings) -> Schedule {
        Schedule {
            frequency: self.frequency.unwrap_or(defaults.default_summary_frequency),
            weekly_day: self.weekly_day.unwrap_or(schedule::DEFAULT_WEEKLY_DAY),
            zone: self.time_zone.unwrap_or(defaults.summary_time_zone),
            send_hour: u32::try_from(defaults.summary_send_hour)
                .unwrap_or(schedule::DEFAULT_SEND_HOUR),
        }
    }

    /// The language of their summaries.
    pub fn locale_or(&self, defaults: &DomainSettings) -> Locale {
        self.locale.unwrap_or(defaults.default_locale)
    }
}

/// What became of one summary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SummaryOutcome {
    /// In the outbox.
    Queued,
    /// Handed to the mail server.
    Sent,
    /// Gave up after retries.
    Failed,
    /// Nothing to report: not sent.
    SkippedEmpty,
}

impl SummaryOutcome {
    /// The stored and wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "QUEUED",
            Self::Sent => "SENT",
            Self::Failed => "FAILED",
            Self::SkippedEmpty => "SKIPPED_EMPTY",
        }
    }

    /// Parses a stored name.
    pub fn from_name(name: &str) -> Option<Self> {
        [Self::Queued, Self::Sent, Self::Failed, Self::SkippedEmpty]
            .into_iter()
            .find(|o| o.as_str() == name)
    }
}

/// The record of one built summary; unique per (guardian, period key).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SummaryDelivery {
    /// The guardian.
    pub guardian_id: UserId,
    /// The period's key (its local send date).
    pub period_key: String,
    /// The frequency it was built for.
    pub frequency: Frequency,
    /// The period's start.
    pub period_start: DateTime<Utc>,
    /// The period's end (the send instant).
    pub period_end: DateTime<Utc>,
    /// The children it covered.
    pub student_ids: Vec<UserId>,
    /// Its line counts.
    pub counts: SummaryCounts,
    /// The outbox message, when one was queued.
    pub message_id: Option<String>,
    /// SKIPPED_EMPTY, or QUEUED at build time (the outbox tells the rest).
    pub outcome: SummaryOutcome,
    /// Hash of the unsubscribe token in its email.
    pub unsubscribe_token_hash: Option<String>,
    /// When it was built.
    pub create_time: DateTime<Utc>,
}

/// A change of preferences: each `Some` field is set, `Some(None)` clears the choice so that
/// the default applies again.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PreferencesPatch {
    /// How often.
    pub frequency: Option<Option<Frequency>>,
    /// The day of a WEEKLY summary.
    pub weekly_day: Option<Option<Weekday>>,
    /// Their time zone.
    pub time_zone: Option<Option<Tz>>,
    /// Their language.
    pub locale: Option<Option<Locale>>,
}
