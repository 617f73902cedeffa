//! The scheduler on both stores, driven by a manual clock: when summaries go, exactly once
//! under concurrent runs, and what they leave out.

use crate::app::{App, AppConfig};
use crate::domain::clock::ManualClock;
use crate::domain::summary::*;
use crate::domain::*;
use crate::store::Store;
use chrono::{DateTime, Datelike, TimeDelta, TimeZone, Utc};
use std::sync::Arc;

const SCHOOL: &str = "school.example";
const OTHER: &str = "other.example";

fn at(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, mo, d, h, mi, 0).unwrap()
}

fn uid(id: &str) -> UserId {
    UserId::parse(id).unwrap()
}

fn course(id: &str) -> CourseId {
    CourseId::parse(id).unwrap()
}

/// Guardian `g1` (address g1@example.org) of `s1` and `s2` in SCHOOL and `o1` in OTHER; each
/// child in their own class (`math`, `art`, `music`) with one missing and one upcoming item.
async fn seed(store: &Arc<dyn Store>, now: DateTime<Utc>) {
    let mut s = store.session().await.unwrap();
    for (student, domain, class) in [
        ("s1", SCHOOL, "math"),
        ("s2", SCHOOL, "art"),
        ("o1", OTHER, "music"),
    ] {
        let domain = DomainName::parse(domain).unwrap();
        s.upsert_user(
            &User {
                user_id: uid(student),
                domain: domain.clone(),
                email: Email::parse(&format!("{student}@{domain}")).unwrap(),
                role: Role::Student,
                verified_teacher: false,
                display_name: format!("Child {student}"),
                locale: None,
            },
            now,
        )
        .await
        .unwrap();
        s.upsert_course(
            &Course {
                course_id: course(class),
                domain: domain.clone(),
                teacher_ids: vec![],
                student_ids: vec![uid(student)],
            },
            now,
        )
        .await
        .unwrap();
        let address = Email::parse("g1@example.org").unwrap();
        s.insert_invitation(&Invitation {
            id: InvitationId::generate(),
            domain,
            student_id: uid(student),
            invited_email: address.clone(),
            state: InvitationState::Accepted,
            inviter_id: "t1".into(),
            guardian: Some(GuardianProfile {
                guardian_id: uid("g1"),
                email: address,
                display_name: "Pat".into(),
            }),
            token_hash: uuid::Uuid::new_v4().simple().to_string(),
            create_time: now - TimeDelta::days(30),
            update_time: now - TimeDelta::days(30),
            expire_time: now + TimeDelta::days(90),
            accept_time: Some(now - TimeDelta::days(29)),
            version: 1,
            source: crate::domain::InvitationSource::Manual,
            remind_time: None,
            reminder_token_hash: None,
            family_id: None,
        })
        .await
        .unwrap();
        for (id, due, state) in [
            ("late", now - TimeDelta::days(2), SubmissionState::Assigned),
            ("soon", now + TimeDelta::days(2), SubmissionState::Assigned),
        ] {
            s.upsert_course_work(&CourseWork {
                course_id: course(class),
                course_work_id: id.into(),
                title: format!("{class} {id} <b>"),
                due_time: Some(due),
                state: ItemState::Published,
                update_time: now - TimeDelta::days(20),
                publish_time: None,
            })
            .await
            .unwrap();
            s.upsert_submission(&Submission {
                course_id: course(class),
                course_work_id: id.into(),
                student_id: uid(student),
                state,
                update_time: now - TimeDelta::days(20),
            })
            .await
            .unwrap();
        }
    }
}

fn app(store: &Arc<dyn Store>, clock: &Arc<ManualClock>) -> App {
    App::new(store.clone(), clock.clone(), AppConfig::default())
}

async fn outbox_of(store: &Arc<dyn Store>, now: DateTime<Utc>) -> Vec<OutboxMessage> {
    let mut s = store.session().await.unwrap();
    s.claim_due_messages(now + TimeDelta::days(400), now, 1000)
        .await
        .unwrap()
}

async fn set_access(store: &Arc<dyn Store>, domain: &str, on: bool) {
    let mut s = store.session().await.unwrap();
    let domain = DomainName::parse(domain).unwrap();
    let current = s.get_settings(&domain).await.unwrap();
    let version = current.as_ref().map_or(0, |c| c.version);
    let mut next = current.unwrap_or_else(|| DomainSettings::defaults(domain));
    next.guardian_access_enabled = on;
    s.put_settings(&next, version).await.unwrap();
}

macro_rules! on_both_stores {
    ($($case:ident),* $(,)?) => {
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $case() {
                    let (store, _db) = crate::testing::postgres_store().await;
                    super::$case(store).await;
                }
            )*
        }
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $case() {
                    let (store, _dir) = crate::testing::sqlite_store().await.expect("sqlite store");
                    super::$case(store).await;
                }
            )*
        }
    };
}

on_both_stores!(
    weekly_summaries_go_on_friday_once_covering_every_child,
    concurrent_runs_build_each_summary_once,
    access_off_disabled_classes_and_never_are_left_out,
    daily_summaries_go_at_the_local_hour_across_daylight_saving_changes,
    a_build_that_dies_before_commit_is_built_again_once,
    a_removed_link_stops_the_childs_section,
);

async fn weekly_summaries_go_on_friday_once_covering_every_child(store: Arc<dyn Store>) {
    // Friday 6 March 2026, 16:59 UTC: the default (WEEKLY, Friday, 17:00 UTC) is a minute away.
    let friday = at(2026, 3, 6, 16, 59);
    seed(&store, friday).await;
    let clock = Arc::new(ManualClock::new(friday));
    let app = app(&store, &clock);
    // The service "was down" last Friday: that missed period is built now, late, once.
    let late = app.run_due_summaries(friday).await.unwrap();
    assert_eq!((late.guardians, late.queued), (1, 1));
    assert_eq!(
        app.run_due_summaries(friday).await.unwrap().already_built,
        1
    );
    let run = app
        .run_due_summaries(friday + TimeDelta::minutes(1))
        .await
        .unwrap();
    assert_eq!((run.guardians, run.queued), (1, 1));
    let again = app
        .run_due_summaries(friday + TimeDelta::hours(3))
        .await
        .unwrap();
    assert_eq!((again.queued, again.already_built), (0, 1));
    let mail = outbox_of(&store, friday).await;
    assert_eq!(mail.len(), 2);
    let summary = mail
        .iter()
        .find(|m| m.subject.ends_with("6 March 2026"))
        .expect("this Friday's summary");
    assert_eq!(summary.recipient.as_str(), "g1@example.org");
    assert_eq!(
        summary.subject,
        "Weekly summary for 3 children, 6 March 2026"
    );
    for class in ["math", "art", "music"] {
        assert!(
            summary
                .body_text
                .contains(&format!("{class} late <b> (was due")),
            "{class}"
        );
        assert!(
            summary
                .body_text
                .contains(&format!("{class} soon <b> (due")),
            "{class}"
        );
        assert!(
            summary
                .body_html
                .contains(&format!("{class} late &lt;b&gt;")),
            "{class}"
        );
    }
    let url = summary.list_unsubscribe.as_deref().unwrap();
    assert!(url.starts_with("http://localhost:8080/summaries/unsubscribe?token="));
    assert!(summary.body_text.contains(url));
    let mut s = store.session().await.unwrap();
    let deliveries = s
        .list_summary_deliveries(&uid("g1"), None, 10)
        .await
        .unwrap();
    let keys: Vec<&str> = deliveries.iter().map(|d| d.period_key.as_str()).collect();
    assert_eq!(keys, ["2026-03-06", "2026-02-27"]);
    assert_eq!(deliveries[0].counts.missing, 3);
    assert_eq!(deliveries[0].counts.upcoming, 3);
    // The next Friday builds the next one; nothing on the days between.
    for day in 1..7 {
        let run = app
            .run_due_summaries(friday + TimeDelta::days(day))
            .await
            .unwrap();
        assert_eq!(run.queued + run.skipped_empty, 0, "day {day}");
    }
    let next = app
        .run_due_summaries(friday + TimeDelta::days(7) + TimeDelta::minutes(1))
        .await
        .unwrap();
    assert_eq!(next.queued + next.skipped_empty, 1);
}

async fn concurrent_runs_build_each_summary_once(store: Arc<dyn Store>) {
    let friday = at(2026, 3, 6, 17, 30);
    seed(&store, friday).await;
    let clock = Arc::new(ManualClock::new(friday));
    // Two replicas, many rounds: each round's period is a new Friday.
    for week in 0..5 {
        let now = friday + TimeDelta::days(7 * week);
        let replicas: Vec<_> = (0..4)
            .map(|_| {
                let app = app(&store, &clock);
                tokio::spawn(async move { app.run_due_summaries(now).await.unwrap() })
            })
            .collect();
        let mut built = 0;
        for replica in replicas {
            let run = replica.await.unwrap();
            built += run.queued + run.skipped_empty;
        }
        assert_eq!(built, 1, "week {week}: exactly one replica built it");
    }
    let mut s = store.session().await.unwrap();
    let deliveries = s
        .list_summary_deliveries(&uid("g1"), None, 10)
        .await
        .unwrap();
    assert_eq!(deliveries.len(), 5);
    assert_eq!(
        s.count_queued_messages().await.unwrap(),
        deliveries.iter().filter(|d| d.message_id.is_some()).count() as i64
    );
}

async fn access_off_disabled_classes_and_never_are_left_out(store: Arc<dyn Store>) {
    let friday = at(2026, 3, 6, 17, 30);
    seed(&store, friday).await;
    let clock = Arc::new(ManualClock::new(friday));
    let app = app(&store, &clock);
    set_access(&store, OTHER, false).await;
    {
        let mut s = store.session().await.unwrap();
        s.set_course_summaries(&course("art"), false, friday)
            .await
            .unwrap();
    }
    app.run_due_summaries(friday).await.unwrap();
    let mail = outbox_of(&store, friday).await;
    assert_eq!(mail.len(), 1);
    assert_eq!(mail[0].subject, "Weekly summary for 1 child, 6 March 2026");
    assert!(mail[0].body_text.contains("math late"));
    assert!(
        !mail[0].body_text.contains("art late"),
        "a disabled class is absent"
    );
    assert!(
        !mail[0].body_text.contains("music"),
        "a domain with access off is absent"
    );
    let mut s = store.session().await.unwrap();
    let delivered = s.last_summary_delivery(&uid("g1")).await.unwrap().unwrap();
    assert_eq!(delivered.student_ids, [uid("s1"), uid("s2")]);

    // NEVER: nothing is built at all.
    let never = PreferencesPatch {
        frequency: Some(Some(Frequency::Never)),
        ..PreferencesPatch::default()
    };
    s.patch_summary_preferences(&uid("g1"), &never, friday)
        .await
        .unwrap();
    drop(s);
    let run = app
        .run_due_summaries(friday + TimeDelta::days(7))
        .await
        .unwrap();
    assert_eq!(run.queued + run.skipped_empty + run.already_built, 0);

    // Nothing to say: recorded SKIPPED_EMPTY, nothing sent.
    let mut s = store.session().await.unwrap();
    let unset = PreferencesPatch {
        frequency: Some(None),
        ..PreferencesPatch::default()
    };
    s.patch_summary_preferences(&uid("g1"), &unset, friday)
        .await
        .unwrap();
    s.delete_course(&course("math")).await.unwrap();
    drop(s);
    let run = app
        .run_due_summaries(friday + TimeDelta::days(14))
        .await
        .unwrap();
    assert_eq!((run.queued, run.skipped_empty), (0, 1));
    let mut s = store.session().await.unwrap();
    let last = s.last_summary_delivery(&uid("g1")).await.unwrap().unwrap();
    assert_eq!(last.outcome, SummaryOutcome::SkippedEmpty);
    assert!(last.message_id.is_none());
}

async fn daily_summaries_go_at_the_local_hour_across_daylight_saving_changes(
    store: Arc<dyn Store>,
) {
    use chrono_tz::America::Los_Angeles;
    use chrono_tz::Europe::Amsterdam;
    let start = at(2026, 3, 1, 0, 0);
    seed(&store, start).await;
    let clock = Arc::new(ManualClock::new(start));
    let app = app(&store, &clock);
    // Each window runs the scheduler every hour from three days before a change to four days
    // after it (so a weekend is inside), in chronological order.
    let windows = [
        (
            Los_Angeles,
            chrono::NaiveDate::from_ymd_opt(2026, 3, 8).unwrap(),
        ),
        (
            Amsterdam,
            chrono::NaiveDate::from_ymd_opt(2026, 3, 29).unwrap(),
        ),
        (
            Amsterdam,
            chrono::NaiveDate::from_ymd_opt(2026, 10, 25).unwrap(),
        ),
        (
            Los_Angeles,
            chrono::NaiveDate::from_ymd_opt(2026, 11, 1).unwrap(),
        ),
    ];
    for (zone, change) in windows {
        {
            let mut s = store.session().await.unwrap();
            let daily_here = PreferencesPatch {
                frequency: Some(Some(Frequency::Daily)),
                time_zone: Some(Some(zone)),
                ..PreferencesPatch::default()
            };
            s.patch_summary_preferences(&uid("g1"), &daily_here, start)
                .await
                .unwrap();
        }
        let first = (change - chrono::Days::new(3))
            .and_hms_opt(0, 0, 0)
            .unwrap();
        let first = Utc.from_utc_datetime(&first);
        let last = first + TimeDelta::days(7);
        let mut now = first;
        while now <= last {
            app.run_due_summaries(now).await.unwrap();
            now += TimeDelta::hours(1);
        }
        // Expected, written without the scheduler's code: 17:00 local on each weekday, the
        // first run building the latest one before it once, late.
        let send = |d: chrono::NaiveDate| {
            zone.with_ymd_and_hms(d.year(), d.month(), d.day(), 17, 0, 0)
                .single()
                .unwrap()
                .with_timezone(&Utc)
        };
        let weekdays: Vec<chrono::NaiveDate> = (0..14)
            .map(|i| change - chrono::Days::new(7) + chrono::Days::new(i))
            .filter(|d| !matches!(d.weekday(), chrono::Weekday::Sat | chrono::Weekday::Sun))
            .collect();
        let missed = weekdays.iter().rev().find(|d| send(**d) <= first).copied();
        let expected: Vec<(String, DateTime<Utc>)> = weekdays
            .iter()
            .copied()
            .filter(|d| send(*d) > first && send(*d) <= last)
            .map(|d| (d.format("%Y-%m-%d").to_string(), send(d)))
            .collect();
        let mut s = store.session().await.unwrap();
        let all = s
            .list_summary_deliveries(&uid("g1"), None, 500)
            .await
            .unwrap();
        let mut built: Vec<(String, DateTime<Utc>)> = all
            .iter()
            .filter(|d| d.period_end > first && d.period_end <= last)
            .map(|d| (d.period_key.clone(), d.period_end))
            .collect();
        built.sort();
        assert_eq!(built, expected, "{zone} around {change}");
        // The period due before the window's first run was built too (by that run, or by the
        // previous window when they touch: one summary per local day, whatever the zone).
        let missed = missed.unwrap().format("%Y-%m-%d").to_string();
        assert!(all.iter().any(|d| d.period_key == missed), "{missed}");
    }
}

async fn a_build_that_dies_before_commit_is_built_again_once(store: Arc<dyn Store>) {
    let friday = at(2026, 3, 6, 17, 30);
    seed(&store, friday).await;
    let clock = Arc::new(ManualClock::new(friday));
    let app = app(&store, &clock);
    let delivery = |key: &str| SummaryDelivery {
        guardian_id: uid("g1"),
        period_key: key.into(),
        frequency: Frequency::Weekly,
        period_start: friday - TimeDelta::days(7),
        period_end: friday,
        student_ids: vec![uid("s1")],
        counts: SummaryCounts::default(),
        message_id: None,
        outcome: SummaryOutcome::SkippedEmpty,
        unsubscribe_token_hash: None,
        create_time: friday,
    };
    // A replica recorded this Friday's summary and died before committing: its transaction
    // is rolled back, and another replica running meanwhile or later builds it once.
    let mut dying = store.begin().await.unwrap();
    dying
        .insert_summary_delivery(&delivery("2026-03-06"))
        .await
        .unwrap();
    let other = {
        let app = app.clone();
        tokio::spawn(async move { app.run_due_summaries(friday).await.unwrap() })
    };
    drop(dying);
    let run = other.await.unwrap();
    assert_eq!(run.queued, 1);
    let again = app.run_due_summaries(friday).await.unwrap();
    assert_eq!((again.queued, again.already_built), (0, 1));
    let mut s = store.session().await.unwrap();
    let all = s
        .list_summary_deliveries(&uid("g1"), None, 10)
        .await
        .unwrap();
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].outcome, SummaryOutcome::Queued);
    assert_eq!(outbox_of(&store, friday).await.len(), 1);
}

async fn a_removed_link_stops_the_childs_section(store: Arc<dyn Store>) {
    let friday = at(2026, 3, 6, 17, 30);
    seed(&store, friday).await;
    let clock = Arc::new(ManualClock::new(friday));
    let app = app(&store, &clock);
    {
        let mut s = store.session().await.unwrap();
        let links = s
            .list_links(&crate::store::LinkFilter {
                scope: crate::store::LinkScope::Guardian(uid("g1")),
                invited_email: None,
                domain: None,
                after: None,
                limit: 10,
            })
            .await
            .unwrap();
        let link = links.iter().find(|l| l.student_id == uid("s2")).unwrap();
        let mut removed = link.clone();
        removed.state = InvitationState::Removed(RemovalReason::GuardianRemoved);
        removed.update_time = friday;
        s.update_invitation(&removed, link.version).await.unwrap();
    }
    app.run_due_summaries(friday).await.unwrap();
    let mail = outbox_of(&store, friday).await;
    assert_eq!(mail.len(), 1);
    assert_eq!(
        mail[0].subject,
        "Weekly summary for 2 children, 6 March 2026"
    );
    assert!(
        !mail[0].body_text.contains("art late"),
        "{}",
        mail[0].body_text
    );
    assert!(mail[0].body_text.contains("math late") && mail[0].body_text.contains("music late"));
}
