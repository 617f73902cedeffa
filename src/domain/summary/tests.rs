//! The schedule across weekdays and daylight-saving changes, and what a summary holds.

use super::activity::shorten;
use super::content::{ActivityKind, ClassInput, Window, summarise_class};
use super::schedule::{Frequency, Schedule, parse_zone};
use super::{Announcement, CourseWork, ItemState, SubmissionState};
use crate::domain::ids::CourseId;
use chrono::{DateTime, Datelike, TimeDelta, TimeZone, Timelike, Utc, Weekday};
use chrono_tz::Tz;
use std::collections::{BTreeSet, HashMap};

fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, mo, d, h, mi, 0).unwrap()
}

fn schedule(frequency: Frequency, zone: &str, hour: u32) -> Schedule {
    Schedule {
        frequency,
        weekly_day: Weekday::Fri,
        zone: parse_zone("time_zone", zone).unwrap(),
        send_hour: hour,
    }
}

/// Every send instant the schedule yields between `from` and `to`, walking in 10-minute steps
/// as a scheduler polling that often would see them: each new period key once.
fn sends(s: &Schedule, from: DateTime<Utc>, to: DateTime<Utc>) -> Vec<(String, DateTime<Utc>)> {
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    let mut now = from;
    while now < to {
        if let Some(p) = s.latest_due(now) {
            assert!(
                p.end <= now,
                "a period is due only once its send instant has come"
            );
            assert!(p.start < p.end);
            if p.end >= from && seen.insert(p.key.clone()) {
                out.push((p.key, p.end));
            }
        }
        now += TimeDelta::minutes(10);
    }
    out
}

#[test]
fn daily_goes_monday_to_friday_only_at_the_send_hour() {
    let s = schedule(Frequency::Daily, "Europe/Amsterdam", 17);
    // Monday 2 March to Sunday 15 March 2026: ten weekdays.
    let got = sends(&s, utc(2026, 3, 2, 0, 0), utc(2026, 3, 16, 0, 0));
    let keys: Vec<&str> = got.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        keys,
        [
            "2026-03-02",
            "2026-03-03",
            "2026-03-04",
            "2026-03-05",
            "2026-03-06",
            "2026-03-09",
            "2026-03-10",
            "2026-03-11",
            "2026-03-12",
            "2026-03-13"
        ]
    );
    for (_, at) in &got {
        let local = at.with_timezone(&s.zone);
        assert_eq!((local.hour(), local.minute()), (17, 0));
        assert!(!matches!(local.weekday(), Weekday::Sat | Weekday::Sun));
    }
}

#[test]
fn weekly_goes_on_friday_by_default_and_on_the_chosen_day() {
    let friday = schedule(Frequency::Weekly, "Europe/Amsterdam", 17);
    let got = sends(&friday, utc(2026, 3, 1, 0, 0), utc(2026, 3, 22, 0, 0));
    let keys: Vec<&str> = got.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(keys, ["2026-03-06", "2026-03-13", "2026-03-20"]);
    let monday = Schedule {
        weekly_day: Weekday::Mon,
        ..friday
    };
    let got = sends(&monday, utc(2026, 3, 1, 0, 0), utc(2026, 3, 22, 0, 0));
    let keys: Vec<&str> = got.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(keys, ["2026-03-02", "2026-03-09", "2026-03-16"]);
}

/// Across both changes of 2026 in each zone: one send per weekday, always at 17:00 local, so
/// the UTC instant moves by the hour the clocks moved.
#[test]
fn daylight_saving_changes_keep_one_send_a_day_at_the_local_hour() {
    let cases = [
        // zone, a week around the spring change, UTC hour before, after
        ("Europe/Amsterdam", utc(2026, 3, 23, 0, 0), 16, 15),
        ("Europe/Amsterdam", utc(2026, 10, 19, 0, 0), 15, 16),
        ("America/Los_Angeles", utc(2026, 3, 2, 12, 0), 1, 0),
        ("America/Los_Angeles", utc(2026, 10, 26, 12, 0), 0, 1),
    ];
    for (zone, monday, before_hour, after_hour) in cases {
        let s = schedule(Frequency::Daily, zone, 17);
        let got = sends(&s, monday, monday + TimeDelta::days(14));
        assert_eq!(got.len(), 10, "{zone} from {monday}: {got:?}");
        let dates: BTreeSet<_> = got.iter().map(|(k, _)| k.clone()).collect();
        assert_eq!(dates.len(), 10, "one per local day");
        for (_, at) in &got {
            assert_eq!(at.with_timezone(&s.zone).hour(), 17, "{zone} {at}");
        }
        assert_eq!(got.first().unwrap().1.hour(), before_hour, "{zone}");
        assert_eq!(got.last().unwrap().1.hour(), after_hour, "{zone}");
    }
}

#[test]
fn a_send_hour_skipped_or_repeated_by_the_clock_change_is_sent_once() {
    // 02:00 does not exist in Amsterdam on 29 March 2026: the send is at 03:00 CEST.
    let s = schedule(Frequency::Weekly, "Europe/Amsterdam", 2);
    let spring = Schedule {
        weekly_day: Weekday::Sun,
        ..s
    };
    let date = chrono::NaiveDate::from_ymd_opt(2026, 3, 29).unwrap();
    assert_eq!(spring.send_instant(date), utc(2026, 3, 29, 1, 0));
    // 02:00 happens twice on 25 October 2026: the first one (CEST), once.
    let date = chrono::NaiveDate::from_ymd_opt(2026, 10, 25).unwrap();
    assert_eq!(spring.send_instant(date), utc(2026, 10, 25, 0, 0));
    let got = sends(&spring, utc(2026, 10, 24, 12, 0), utc(2026, 10, 26, 0, 0));
    assert_eq!(got.len(), 1);
}

#[test]
fn after_downtime_only_the_latest_missed_period_is_due() {
    let s = schedule(Frequency::Daily, "UTC", 17);
    // Down from Monday morning to Thursday 09:00: Monday to Wednesday were missed.
    let p = s.latest_due(utc(2026, 3, 5, 9, 0)).unwrap();
    assert_eq!(p.key, "2026-03-04");
    assert_eq!(p.end, utc(2026, 3, 4, 17, 0));
    assert_eq!(p.start, utc(2026, 3, 3, 17, 0));
    // Monday's period starts at the Friday before.
    let monday = s.latest_due(utc(2026, 3, 9, 18, 0)).unwrap();
    assert_eq!(monday.start, utc(2026, 3, 6, 17, 0));
}

#[test]
fn never_is_never_due() {
    let s = schedule(Frequency::Never, "UTC", 17);
    assert!(s.latest_due(utc(2026, 3, 6, 18, 0)).is_none());
}

#[test]
fn unknown_zones_are_refused_naming_the_field() {
    let err = parse_zone("summary_time_zone", "Europe/Atlantis").unwrap_err();
    assert_eq!(err.violations[0].field, "summary_time_zone");
    assert_eq!(
        parse_zone("z", "America/Los_Angeles").unwrap(),
        Tz::America__Los_Angeles
    );
}

fn work(id: &str, due: Option<DateTime<Utc>>, published: DateTime<Utc>) -> CourseWork {
    CourseWork {
        course_id: CourseId::parse("math").unwrap(),
        course_work_id: id.into(),
        title: format!("Work {id}"),
        due_time: due,
        state: ItemState::Published,
        update_time: published,
        publish_time: Some(published),
    }
}

#[test]
fn a_class_lists_missing_upcoming_and_new_activity() {
    let now = utc(2026, 3, 6, 17, 0);
    let window = Window {
        now,
        activity_since: utc(2026, 2, 27, 17, 0),
        upcoming_until: now + TimeDelta::days(7),
    };
    let old = utc(2026, 1, 1, 9, 0);
    let mut submissions = HashMap::new();
    for (id, state) in [
        ("late", SubmissionState::Assigned),
        ("done-late", SubmissionState::TurnedIn),
        ("ancient", SubmissionState::Assigned),
        ("soon", SubmissionState::TurnedIn),
        ("excused", SubmissionState::Excused),
    ] {
        submissions.insert(id.to_string(), state);
    }
    let mut deleted = work("deleted", Some(now - TimeDelta::days(1)), old);
    deleted.state = ItemState::Deleted;
    submissions.insert("deleted".into(), SubmissionState::Assigned);
    let input = ClassInput {
        course_id: CourseId::parse("math").unwrap(),
        work: vec![
            work("late", Some(now - TimeDelta::days(2)), old),
            work("done-late", Some(now - TimeDelta::days(2)), old),
            work("ancient", Some(now - TimeDelta::days(40)), old),
            work("soon", Some(now + TimeDelta::days(2)), old),
            work("excused", Some(now + TimeDelta::days(2)), old),
            work("later", Some(now + TimeDelta::days(9)), old),
            work(
                "fresh",
                Some(now + TimeDelta::days(3)),
                now - TimeDelta::days(1),
            ),
            deleted,
        ],
        submissions,
        announcements: vec![Announcement {
            course_id: CourseId::parse("math").unwrap(),
            announcement_id: "a1".into(),
            text: "Field trip\non Monday".into(),
            state: ItemState::Published,
            update_time: now - TimeDelta::hours(3),
            publish_time: Some(now - TimeDelta::hours(3)),
        }],
    };
    let class = summarise_class(&input, &window);
    let titles = |lines: &[super::content::WorkLine]| -> Vec<String> {
        lines.iter().map(|l| l.title.clone()).collect()
    };
    assert_eq!(titles(&class.missing), ["Work late"]);
    assert_eq!(titles(&class.upcoming), ["Work soon", "Work fresh"]);
    assert!(class.upcoming[0].turned_in);
    assert!(!class.upcoming[1].turned_in);
    let activity: Vec<(ActivityKind, &str)> = class
        .activity
        .iter()
        .map(|a| (a.kind, a.text.as_str()))
        .collect();
    assert_eq!(
        activity,
        [
            (ActivityKind::NewWork, "Work fresh"),
            (ActivityKind::Announcement, "Field trip on Monday")
        ]
    );
}

#[test]
fn long_texts_are_shortened_at_a_word() {
    let text = "word ".repeat(100);
    let short = shorten(&text, 200);
    assert!(short.chars().count() <= 200);
    assert!(short.ends_with("word…"), "{short}");
    assert_eq!(shorten("  two\n lines ", 200), "two lines");
}
