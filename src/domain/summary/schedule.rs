//! When a guardian's summary is due: DAILY on weekdays, WEEKLY on the chosen day, at the send
//! hour in the guardian's time zone, exactly once per local day across daylight-saving changes.

use crate::domain::error::ValidationError;
use chrono::{DateTime, Datelike, Days, LocalResult, NaiveDate, TimeZone, Utc, Weekday};
use chrono_tz::Tz;

/// How often a guardian gets a summary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Frequency {
    /// Never: unsubscribed.
    Never,
    /// Monday to Friday.
    Daily,
    /// Once a week, on the chosen day.
    Weekly,
}

impl Frequency {
    /// The stored and wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Never => "NEVER",
            Self::Daily => "DAILY",
            Self::Weekly => "WEEKLY",
        }
    }

    /// Parses a stored name.
    pub fn from_name(name: &str) -> Option<Self> {
        [Self::Never, Self::Daily, Self::Weekly]
            .into_iter()
            .find(|f| f.as_str() == name)
    }
}

/// The weekday a WEEKLY summary goes on when the guardian chose none.
pub const DEFAULT_WEEKLY_DAY: Weekday = Weekday::Fri;
/// The local hour summaries go at when the domain chose none.
pub const DEFAULT_SEND_HOUR: u32 = 17;

/// Parses an IANA time-zone name against the bundled zone database.
pub fn parse_zone(field: &str, raw: &str) -> Result<Tz, ValidationError> {
    raw.trim().parse::<Tz>().map_err(|_| {
        ValidationError::invalid(
            field,
            format!("{field} must be an IANA time zone such as Europe/Amsterdam"),
        )
    })
}

/// A weekday by its English name (`FRIDAY`, case-insensitive).
pub fn parse_weekday(field: &str, raw: &str) -> Result<Weekday, ValidationError> {
    raw.trim()
        .parse::<Weekday>()
        .map_err(|_| ValidationError::invalid(field, format!("{field} must be a day of the week")))
}

/// The stored and wire name of a weekday (`FRIDAY`).
pub fn weekday_name(day: Weekday) -> &'static str {
    match day {
        Weekday::Mon => "MONDAY",
        Weekday::Tue => "TUESDAY",
        Weekday::Wed => "WEDNESDAY",
        Weekday::Thu => "THURSDAY",
        Weekday::Fri => "FRIDAY",
        Weekday::Sat => "SATURDAY",
        Weekday::Sun => "SUNDAY",
    }
}

/// One guardian's effective schedule: their preferences over the domain's defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Schedule {
    /// How often.
    pub frequency: Frequency,
    /// The day of a WEEKLY summary.
    pub weekly_day: Weekday,
    /// The zone the send hour is read in.
    pub zone: Tz,
    /// The local hour (0-23).
    pub send_hour: u32,
}

/// One summary period: what a summary covers and the instant it is due.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Period {
    /// Unique per guardian: the local date of the send day (`2026-11-27`). At most one summary
    /// per guardian per local day, whatever the frequency.
    pub key: String,
    /// The frequency it was built for.
    pub frequency: Frequency,
    /// The previous send instant: the period covers [start, end).
    pub start: DateTime<Utc>,
    /// The send instant.
    pub end: DateTime<Utc>,
}

/// How far back a due period is looked for: a week covers every WEEKLY day.
const LOOK_BACK_DAYS: u64 = 8;

impl Schedule {
    /// Whether `date` is a send day.
    pub fn sends_on(&self, date: NaiveDate) -> bool {
        match self.frequency {
            Frequency::Never => false,
            Frequency::Daily => !matches!(date.weekday(), Weekday::Sat | Weekday::Sun),
            Frequency::Weekly => date.weekday() == self.weekly_day,
        }
    }

    /// The instant of the send hour on local `date`. An hour skipped by a daylight-saving change
    /// is taken as the first instant after the gap; an hour that happens twice, the first time.
    pub fn send_instant(&self, date: NaiveDate) -> DateTime<Utc> {
        let mut hour = self.send_hour.min(23);
        loop {
            let local = date.and_hms_opt(hour, 0, 0);
            let resolved = local.map(|naive| self.zone.from_local_datetime(&naive));
            match resolved {
                Some(LocalResult::Single(t)) | Some(LocalResult::Ambiguous(t, _)) => {
                    return t.with_timezone(&Utc);
                }
                // Gaps are at most an hour or two and never cross midnight in any zone that
                // sends at a school hour; at the very end of a day, take the day's last instant.
                Some(LocalResult::None) if hour < 23 => hour += 1,
                Some(LocalResult::None) | None => {
                    return date
                        .and_hms_opt(23, 59, 59)
                        .map(|naive| self.zone.from_utc_datetime(&naive).with_timezone(&Utc))
                        .unwrap_or_default();
                }
            }
        }
    }

    /// The latest period whose send instant is at or before `now`, looking back a week: the one
    /// to build if it has not been. After downtime that is the latest missed period only.
    pub fn latest_due(&self, now: DateTime<Utc>) -> Option<Period> {
        let today = now.with_timezone(&self.zone).date_naive();
        let mut send_days = (0..=LOOK_BACK_DAYS)
            .filter_map(|back| today.checked_sub_days(Days::new(back)))
            .filter(|date| self.sends_on(*date));
        let (date, end) = send_days
            .by_ref()
            .map(|date| (date, self.send_instant(date)))
            .find(|(_, at)| *at <= now)?;
        let start = self.previous_send(date);
        Some(Period {
            key: date.format("%Y-%m-%d").to_string(),
            frequency: self.frequency,
            start,
            end,
        })
    }

    /// The send instant before the one on `date` (for a first summary's activity window).
    fn previous_send(&self, date: NaiveDate) -> DateTime<Utc> {
        (1..=LOOK_BACK_DAYS)
            .filter_map(|back| date.checked_sub_days(Days::new(back)))
            .find(|d| self.sends_on(*d))
            .map(|d| self.send_instant(d))
            .unwrap_or_else(|| self.send_instant(date) - chrono::TimeDelta::days(7))
    }

    /// The end of the "upcoming" window of a summary sent at `sent`: DAILY, the end of the next
    /// local day; WEEKLY, seven days on.
    pub fn upcoming_until(&self, sent: DateTime<Utc>) -> DateTime<Utc> {
        match self.frequency {
            Frequency::Weekly | Frequency::Never => sent + chrono::TimeDelta::days(7),
            Frequency::Daily => {
                let local_day = sent.with_timezone(&self.zone).date_naive();
                let after_tomorrow = local_day
                    .checked_add_days(Days::new(2))
                    .unwrap_or(local_day);
                match after_tomorrow
                    .and_hms_opt(0, 0, 0)
                    .map(|naive| self.zone.from_local_datetime(&naive))
                {
                    Some(LocalResult::Single(t)) | Some(LocalResult::Ambiguous(t, _)) => {
                        t.with_timezone(&Utc)
                    }
                    Some(LocalResult::None) | None => sent + chrono::TimeDelta::days(2),
                }
            }
        }
    }
}
