//! Conformance of [`crate::store::SummaryRepo`]: newest-wins ingest whatever the delivery order,
//! one delivery per (guardian, period), single-use unsubscribe tokens, purge and cascade.

use super::{t0, uid};
use crate::domain::summary::*;
use crate::domain::*;
use crate::store::*;
use chrono::TimeDelta;
use std::sync::Arc;

fn course(id: &str) -> CourseId {
    CourseId::parse(id).unwrap()
}

fn work(title: &str, state: ItemState, at: chrono::DateTime<chrono::Utc>) -> CourseWork {
    CourseWork {
        course_id: course("math"),
        course_work_id: "w1".into(),
        title: title.into(),
        due_time: Some(t0() + TimeDelta::days(3)),
        state,
        update_time: at,
        publish_time: None,
    }
}

pub(super) async fn activity_ends_in_the_newest_state_whatever_the_order(store: Arc<dyn Store>) {
    let mut s = store.session().await.unwrap();
    let t1 = t0();
    let t2 = t0() + TimeDelta::minutes(5);
    let t3 = t0() + TimeDelta::minutes(10);
    // The newest arrives first; the older one and a duplicate are ignored.
    assert!(
        s.upsert_course_work(&work("v2", ItemState::Published, t2))
            .await
            .unwrap()
    );
    assert!(
        !s.upsert_course_work(&work("v1", ItemState::Published, t1))
            .await
            .unwrap()
    );
    assert!(
        !s.upsert_course_work(&work("v2 again", ItemState::Published, t2))
            .await
            .unwrap()
    );
    let stored = s
        .get_course_work(&course("math"), "w1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.title, "v2");
    assert_eq!(stored.publish_time, Some(t2));
    // A newer deletion wins, and the first publication time is kept.
    assert!(
        s.upsert_course_work(&work("v3", ItemState::Deleted, t3))
            .await
            .unwrap()
    );
    let stored = s
        .get_course_work(&course("math"), "w1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (stored.state, stored.publish_time),
        (ItemState::Deleted, Some(t2))
    );

    let submission = |state, at| Submission {
        course_id: course("math"),
        course_work_id: "w1".into(),
        student_id: uid("s1"),
        state,
        update_time: at,
    };
    assert!(
        s.upsert_submission(&submission(SubmissionState::TurnedIn, t2))
            .await
            .unwrap()
    );
    assert!(
        !s.upsert_submission(&submission(SubmissionState::Assigned, t1))
            .await
            .unwrap()
    );
    let subs = s
        .submissions_of(&[uid("s1"), uid("s9")], &[course("math")])
        .await
        .unwrap();
    assert_eq!(subs.len(), 1);
    assert_eq!(subs[0].state, SubmissionState::TurnedIn);

    let announcement = |text: &str, at| Announcement {
        course_id: course("math"),
        announcement_id: "a1".into(),
        text: text.into(),
        state: ItemState::Published,
        update_time: at,
        publish_time: None,
    };
    assert!(
        s.upsert_announcement(&announcement("edited", t3))
            .await
            .unwrap()
    );
    assert!(
        !s.upsert_announcement(&announcement("first", t1))
            .await
            .unwrap()
    );
    let (_, announcements) = s.class_activity(&[course("math")], t1).await.unwrap();
    assert_eq!(announcements.len(), 1);
    assert_eq!(announcements[0].text, "edited");
    assert_eq!(announcements[0].publish_time, Some(t3));
}

pub(super) async fn class_activity_is_purged_by_age_and_goes_with_its_course(
    store: Arc<dyn Store>,
) {
    let mut s = store.session().await.unwrap();
    s.upsert_course(
        &Course {
            course_id: course("math"),
            domain: DomainName::parse("school.example").unwrap(),
            teacher_ids: vec![],
            student_ids: vec![uid("s1")],
        },
        t0(),
    )
    .await
    .unwrap();
    let old = t0() - TimeDelta::days(40);
    let mut stale = work("stale", ItemState::Published, old);
    stale.due_time = Some(old);
    s.upsert_course_work(&stale).await.unwrap();
    let mut due_later = work("due later", ItemState::Published, old);
    due_later.course_work_id = "w2".into();
    due_later.due_time = Some(t0() + TimeDelta::days(1));
    s.upsert_course_work(&due_later).await.unwrap();
    let purged = s.purge_activity(t0() - TimeDelta::days(30)).await.unwrap();
    assert_eq!(purged, 1);
    assert!(
        s.get_course_work(&course("math"), "w1")
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        s.get_course_work(&course("math"), "w2")
            .await
            .unwrap()
            .is_some()
    );
    assert_eq!(
        s.courses_of_students(&[uid("s1"), uid("nobody")])
            .await
            .unwrap(),
        [(
            uid("s1"),
            course("math"),
            DomainName::parse("school.example").unwrap()
        )]
    );
    s.upsert_user(
        &crate::domain::User {
            user_id: uid("s1"),
            domain: DomainName::parse("school.example").unwrap(),
            email: crate::domain::Email::parse("s1@school.example").unwrap(),
            role: crate::domain::Role::Student,
            verified_teacher: false,
            display_name: "S1".into(),
            locale: None,
        },
        t0(),
    )
    .await
    .unwrap();
    let found = s.users_by_id(&[uid("s1"), uid("nobody")]).await.unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].user_id, uid("s1"));
    assert!(s.users_by_id(&[]).await.unwrap().is_empty());
    s.set_course_summaries(&course("math"), false, t0())
        .await
        .unwrap();
    assert_eq!(
        s.courses_without_summaries(&[course("math"), course("art")])
            .await
            .unwrap(),
        [course("math")]
    );
    s.delete_course(&course("math")).await.unwrap();
    assert!(
        s.get_course_work(&course("math"), "w2")
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        s.courses_without_summaries(&[course("math")])
            .await
            .unwrap()
            .is_empty()
    );
}

fn delivery(guardian: &str, key: &str, token: Option<&str>) -> SummaryDelivery {
    SummaryDelivery {
        guardian_id: uid(guardian),
        period_key: key.into(),
        frequency: Frequency::Weekly,
        period_start: t0() - TimeDelta::days(7),
        period_end: t0(),
        student_ids: vec![uid("s1"), uid("s2")],
        counts: SummaryCounts {
            missing: 1,
            upcoming: 2,
            activity: 3,
        },
        message_id: None,
        outcome: if token.is_some() {
            SummaryOutcome::Queued
        } else {
            SummaryOutcome::SkippedEmpty
        },
        unsubscribe_token_hash: token.map(str::to_owned),
        create_time: t0(),
    }
}

pub(super) async fn one_summary_per_guardian_and_period_and_tokens_work_once(
    store: Arc<dyn Store>,
) {
    let mut s = store.session().await.unwrap();
    s.insert_summary_delivery(&delivery("g1", "2026-10-23", Some("hash-a")))
        .await
        .unwrap();
    s.insert_summary_delivery(&delivery("g1", "2026-10-30", None))
        .await
        .unwrap();
    let again = s
        .insert_summary_delivery(&delivery("g1", "2026-10-30", Some("hash-b")))
        .await
        .unwrap_err();
    assert!(matches!(
        again,
        StoreError::AlreadyExists(UniqueKey::SummaryDelivery)
    ));
    let listed = s
        .list_summary_deliveries(&uid("g1"), None, 10)
        .await
        .unwrap();
    let keys: Vec<&str> = listed.iter().map(|d| d.period_key.as_str()).collect();
    assert_eq!(keys, ["2026-10-30", "2026-10-23"]);
    assert_eq!(listed[1], delivery("g1", "2026-10-23", Some("hash-a")));
    s.insert_summary_delivery(&delivery("g2", "2026-10-23", None))
        .await
        .unwrap();
    // The newest of each guardian asked about, and nothing for one without any.
    let mut lasts: Vec<(String, String)> = s
        .last_summary_deliveries(&[uid("g1"), uid("g2"), uid("g3")])
        .await
        .unwrap()
        .into_iter()
        .map(|d| (d.guardian_id.to_string(), d.period_key))
        .collect();
    lasts.sort();
    assert_eq!(
        lasts,
        [
            ("g1".to_string(), "2026-10-30".to_string()),
            ("g2".to_string(), "2026-10-23".to_string())
        ]
    );
    let older = s
        .list_summary_deliveries(&uid("g1"), Some("2026-10-30"), 10)
        .await
        .unwrap();
    assert_eq!(older.len(), 1);
    assert_eq!(
        s.last_summary_delivery(&uid("g1"))
            .await
            .unwrap()
            .unwrap()
            .period_key,
        "2026-10-30"
    );
    // Looking a token up does not use it; using it does, once.
    assert_eq!(
        s.find_unsubscribe_token("hash-a").await.unwrap(),
        Some((uid("g1"), false))
    );
    assert_eq!(
        s.use_unsubscribe_token("hash-a").await.unwrap(),
        Some(uid("g1"))
    );
    assert_eq!(
        s.find_unsubscribe_token("hash-a").await.unwrap(),
        Some((uid("g1"), true))
    );
    assert_eq!(s.find_unsubscribe_token("hash-x").await.unwrap(), None);
    assert_eq!(s.use_unsubscribe_token("hash-a").await.unwrap(), None);
    assert_eq!(s.use_unsubscribe_token("hash-x").await.unwrap(), None);

    let prefs = SummaryPreferences {
        guardian_id: uid("g1"),
        frequency: Some(Frequency::Daily),
        weekly_day: Some(chrono::Weekday::Mon),
        time_zone: Some(chrono_tz::Tz::Europe__Amsterdam),
        locale: Some(Locale::Nl),
        update_time: Some(t0()),
    };
    let all = PreferencesPatch {
        frequency: Some(prefs.frequency),
        weekly_day: Some(prefs.weekly_day),
        time_zone: Some(prefs.time_zone),
        locale: Some(prefs.locale),
    };
    s.patch_summary_preferences(&uid("g1"), &all, t0())
        .await
        .unwrap();
    assert_eq!(
        s.get_summary_preferences(&uid("g1")).await.unwrap(),
        Some(prefs.clone())
    );
    assert_eq!(s.get_summary_preferences(&uid("g2")).await.unwrap(), None);
    assert_eq!(
        s.summary_preferences_of(&[uid("g1"), uid("g2")])
            .await
            .unwrap(),
        [prefs]
    );
}

pub(super) async fn preference_patches_change_only_their_fields_even_at_once(
    store: Arc<dyn Store>,
) {
    let g = uid("g1");
    let frequency = |f| PreferencesPatch {
        frequency: Some(Some(f)),
        ..PreferencesPatch::default()
    };
    let locale = |l| PreferencesPatch {
        locale: Some(l),
        ..PreferencesPatch::default()
    };
    // Many rounds of two changes of different fields at once: each keeps the other's.
    for round in 0..20 {
        let (f, l) = if round % 2 == 0 {
            (Frequency::Daily, Some(Locale::Nl))
        } else {
            (Frequency::Weekly, Some(Locale::En))
        };
        let (mut a, mut b) = (
            store.session().await.unwrap(),
            store.session().await.unwrap(),
        );
        let (pf, pl) = (frequency(f), locale(l));
        let (ra, rb) = tokio::join!(
            a.patch_summary_preferences(&g, &pf, t0()),
            b.patch_summary_preferences(&g, &pl, t0()),
        );
        ra.unwrap();
        rb.unwrap();
        let stored = a.get_summary_preferences(&g).await.unwrap().unwrap();
        assert_eq!(
            (stored.frequency, stored.locale),
            (Some(f), l),
            "round {round}"
        );
    }
    // Clearing one field leaves the others.
    let mut s = store.session().await.unwrap();
    s.patch_summary_preferences(&g, &locale(None), t0())
        .await
        .unwrap();
    let stored = s.get_summary_preferences(&g).await.unwrap().unwrap();
    assert_eq!(
        (stored.frequency, stored.locale, stored.time_zone),
        (Some(Frequency::Weekly), None, None)
    );
}
