//! SummaryService over gRPC on Postgres: activity in (per-item results, newest wins), the
//! preview against what `summaries run-once` then queues, deliveries, preferences, the
//! teachers' switch per class, and the unsubscribe link (no bearer token, once, its own
//! guardian only).

use crate::fixtures::{SCHOOL, assert_status, link, seed_school};
use crate::helpers::{Bearer, TestApp, admin, guardian, spawn_app_with_clock, teacher};
use chrono::{DateTime, TimeZone, Utc};
use guardian_service::domain::clock::ManualClock;
use guardian_service::proto::summary_service_client::SummaryServiceClient;
use guardian_service::proto::*;
use std::process::Command;
use std::sync::Arc;
use tonic::Code;
use tonic_types::StatusExt;

/// A Friday at the default send hour (17:00 in the default zone, UTC).
pub(crate) fn friday_evening() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 27, 17, 0, 0).unwrap()
}

fn ts(y: i32, mo: u32, d: u32, h: u32) -> Option<prost_types::Timestamp> {
    let t = Utc.with_ymd_and_hms(y, mo, d, h, 0, 0).unwrap();
    Some(prost_types::Timestamp {
        seconds: t.timestamp(),
        nanos: 0,
    })
}

fn work(
    id: &str,
    title: &str,
    due: Option<prost_types::Timestamp>,
    updated: Option<prost_types::Timestamp>,
) -> ActivityItem {
    ActivityItem {
        item: Some(activity_item::Item::CourseWork(CourseWork {
            course_id: "math".into(),
            course_work_id: id.into(),
            title: title.into(),
            due_time: due,
            state: ActivityState::Published as i32,
            update_time: updated,
        })),
    }
}

fn submission(
    work: &str,
    state: SubmissionState,
    updated: Option<prost_types::Timestamp>,
) -> ActivityItem {
    ActivityItem {
        item: Some(activity_item::Item::Submission(StudentSubmission {
            course_id: "math".into(),
            course_work_id: work.into(),
            student_id: "s1".into(),
            state: state as i32,
            update_time: updated,
        })),
    }
}

fn announcement(id: &str, text: &str, updated: Option<prost_types::Timestamp>) -> ActivityItem {
    ActivityItem {
        item: Some(activity_item::Item::Announcement(Announcement {
            course_id: "math".into(),
            announcement_id: id.into(),
            text: text.into(),
            state: ActivityState::Published as i32,
            update_time: updated,
        })),
    }
}

/// A school whose student `s1` has guardians `g1` and `g2`, a missing essay, upcoming
/// fractions (published twice, out of order) and an announcement with markup in it.
pub(crate) async fn school_with_activity(app: &TestApp) -> Vec<ActivityItemResult> {
    seed_school(app, 1).await;
    link(app, "s1", "g1@example.org", "g1", "g1@example.org").await;
    link(app, "s1", "g2@example.org", "g2", "g2@example.org").await;
    let items = vec![
        work(
            "essay",
            "Essay on autumn",
            ts(2026, 11, 25, 9),
            ts(2026, 11, 23, 8),
        ),
        submission("essay", SubmissionState::Assigned, ts(2026, 11, 23, 8)),
        work(
            "fractions",
            "Fractions worksheet",
            ts(2026, 11, 30, 9),
            ts(2026, 11, 25, 8),
        ),
        // An older version of the same item, delivered late: ignored.
        work(
            "fractions",
            "Fractions draft",
            ts(2026, 11, 30, 9),
            ts(2026, 11, 24, 8),
        ),
        announcement(
            "a1",
            "Bring your <b>recorder</b> on Monday",
            ts(2026, 11, 26, 8),
        ),
    ];
    app.summaries()
        .publish_class_activity(PublishClassActivityRequest { items })
        .await
        .expect("publish")
        .into_inner()
        .results
}

/// `guardian-service summaries run-once --at` against the test database; its report line.
fn run_once(app: &TestApp, at: DateTime<Utc>) -> String {
    run_once_linking_to(app, at, "http://localhost:8080")
}

/// [`run_once`] with the emails' links going to `public_url`.
pub(crate) fn run_once_linking_to(app: &TestApp, at: DateTime<Utc>, public_url: &str) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_guardian-service"))
        .args(["summaries", "run-once", "--at", &at.to_rfc3339()])
        .env("GUARDIANS_DATABASE_URL", &app.database_url)
        .env("GUARDIANS_PUBLIC_URL", public_url)
        .output()
        .expect("run guardian-service");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The text body and List-Unsubscribe URL of the summary queued to `recipient`.
async fn queued_summary(app: &TestApp, recipient: &str) -> (String, String) {
    let pool = sqlx::PgPool::connect(&app.database_url)
        .await
        .expect("connect");
    let row: (String, String) = sqlx::query_as(
        "SELECT body_text, list_unsubscribe FROM outbox \
         WHERE recipient = $1 AND list_unsubscribe IS NOT NULL",
    )
    .bind(recipient)
    .fetch_one(&pool)
    .await
    .expect("one summary email");
    pool.close().await;
    row
}

fn token_in(url: &str) -> String {
    url.split_once("token=").expect("a token").1.to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_preview_is_what_run_once_queues_and_the_link_unsubscribes_once() {
    let clock = Arc::new(ManualClock::new(friday_evening()));
    let app = spawn_app_with_clock(clock).await;
    let results = school_with_activity(&app).await;
    let applied: Vec<(i32, bool)> = results.iter().map(|r| (r.code, r.applied)).collect();
    assert_eq!(
        applied,
        [(0, true), (0, true), (0, true), (0, false), (0, true)]
    );

    let g1 = guardian("g1", "g1@example.org");
    let preview = app
        .summaries_as(&g1)
        .preview_guardian_summary(PreviewGuardianSummaryRequest {
            guardian_id: "me".into(),
            ..Default::default()
        })
        .await
        .expect("preview")
        .into_inner();
    assert!(!preview.empty);
    assert_eq!(preview.student_ids, ["s1"]);
    assert_eq!(
        preview.subject,
        "Weekly summary for 1 child, 27 November 2026"
    );
    for line in [
        "Missing:\n  * Essay on autumn",
        "Upcoming:\n  * Fractions worksheet",
        "Bring your <b>recorder</b> on Monday",
    ] {
        assert!(
            preview.text_body.contains(line),
            "{line}\n{}",
            preview.text_body
        );
    }
    assert!(!preview.text_body.contains("Fractions draft"));
    // The HTML part escapes what teachers wrote.
    assert!(preview.html_body.contains("Bring your &lt;b&gt;recorder"));
    assert!(!preview.html_body.contains("<b>recorder"));

    // The scheduler's command builds the same email, with a working link in place of the
    // preview's.
    let said = run_once(&app, friday_evening());
    assert!(said.contains("2 summaries queued"), "{said}");
    let (text, link_url) = queued_summary(&app, "g1@example.org").await;
    let token = token_in(&link_url);
    assert_eq!(text.replace(&token, "preview"), preview.text_body);
    // The operator's view of the same: guardianctl over gRPC.
    let shown = crate::cli::guardianctl(
        &app.channel_uri,
        &[
            "summaries",
            "deliveries",
            "--guardian",
            "g1",
            "--format",
            "csv",
        ],
    );
    assert!(
        shown.status.success(),
        "{}",
        String::from_utf8_lossy(&shown.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&shown.stdout),
        "period,frequency,outcome,students,missing,upcoming,activity\n\
         2026-11-27,WEEKLY,QUEUED,s1,1,1,3\n"
    );
    let example = crate::cli::guardianctl(
        &app.channel_uri,
        &[
            "summaries",
            "preview",
            "--student",
            "s1",
            "--frequency",
            "daily",
        ],
    );
    let printed = String::from_utf8_lossy(&example.stdout);
    assert!(
        example.status.success(),
        "{}",
        String::from_utf8_lossy(&example.stderr)
    );
    assert!(
        printed.starts_with("Subject: Daily summary for 1 child, 27 November 2026\n")
            && printed.contains("Essay on autumn"),
        "{printed}"
    );
    let again = run_once(&app, friday_evening());
    assert!(
        again.contains("0 summaries queued") && again.contains("2 built earlier"),
        "{again}"
    );

    let deliveries = app
        .summaries_as(&g1)
        .list_summary_deliveries(ListSummaryDeliveriesRequest {
            guardian_id: "me".into(),
            ..Default::default()
        })
        .await
        .expect("deliveries")
        .into_inner();
    let d = &deliveries.deliveries[..];
    assert_eq!(d.len(), 1);
    assert_eq!(
        (
            d[0].period.as_str(),
            d[0].outcome,
            d[0].missing_count,
            d[0].upcoming_count,
            d[0].activity_count
        ),
        (
            "2026-11-27",
            summary_delivery::Outcome::Queued as i32,
            1,
            1,
            3
        )
    );
    assert_eq!(d[0].student_ids, ["s1"]);

    // The link needs no account, works once, and only for its own guardian.
    let mut anonymous = SummaryServiceClient::with_interceptor(app.channel.clone(), Bearer::none());
    let done = anonymous
        .unsubscribe_from_summaries(UnsubscribeFromSummariesRequest {
            token: token.clone(),
        })
        .await
        .expect("unsubscribe")
        .into_inner();
    assert_eq!(done.frequency, SummaryFrequency::Never as i32);
    assert_status(
        anonymous
            .unsubscribe_from_summaries(UnsubscribeFromSummariesRequest { token })
            .await,
        Code::NotFound,
        "UNSUBSCRIBE_LINK_NOT_FOUND",
    );
    let prefs = |who: &'static str| {
        let app = &app;
        async move {
            app.summaries()
                .get_summary_preferences(GetSummaryPreferencesRequest {
                    guardian_id: who.into(),
                })
                .await
                .expect("preferences")
                .into_inner()
                .preferences
                .expect("preferences")
        }
    };
    let g1_prefs = prefs("g1").await;
    assert_eq!(g1_prefs.frequency, SummaryFrequency::Never as i32);
    assert_eq!(g1_prefs.explicitly_set, ["frequency"]);
    let g2_prefs = prefs("g2").await;
    assert_eq!(g2_prefs.frequency, SummaryFrequency::Weekly as i32);
    assert!(g2_prefs.explicitly_set.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publishing_answers_per_item_and_refuses_oversized_calls() {
    let app = spawn_app_with_clock(Arc::new(ManualClock::new(friday_evening()))).await;
    seed_school(&app, 1).await;
    let mut other_course = work("w", "Elsewhere", None, ts(2026, 11, 20, 8));
    if let Some(activity_item::Item::CourseWork(w)) = &mut other_course.item {
        w.course_id = "other-math".into();
    }
    let items = vec![
        work("w", "Fine", None, ts(2026, 11, 20, 8)),
        work("w2", "No update time", None, None),
        other_course,
        ActivityItem { item: None },
        submission("w", SubmissionState::Unspecified, ts(2026, 11, 20, 8)),
    ];
    let results = app
        .summaries_as(&admin(SCHOOL))
        .publish_class_activity(PublishClassActivityRequest { items })
        .await
        .expect("publish")
        .into_inner()
        .results;
    let got: Vec<(i32, &str)> = results
        .iter()
        .map(|r| (r.index, r.reason.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            (0, ""),
            (1, "INVALID_ARGUMENT"),
            // Another tenant's course is as unknown as a missing one.
            (2, "COURSE_NOT_FOUND"),
            (3, "INVALID_ARGUMENT"),
            (4, "INVALID_ARGUMENT"),
        ]
    );
    assert!(
        results[1]
            .message
            .contains("items[1].course_work.update_time"),
        "{}",
        results[1].message
    );
    let too_many = vec![work("w", "Fine", None, ts(2026, 11, 20, 8)); 1001];
    assert_status(
        app.summaries()
            .publish_class_activity(PublishClassActivityRequest { items: too_many })
            .await,
        Code::InvalidArgument,
        "INVALID_ARGUMENT",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_teacher_leaves_their_class_out_and_preferences_are_checked() {
    let app = spawn_app_with_clock(Arc::new(ManualClock::new(friday_evening()))).await;
    school_with_activity(&app).await;
    let preview = |app: &TestApp| {
        let mut client = app.summaries_as(&admin(SCHOOL));
        async move {
            client
                .preview_guardian_summary(PreviewGuardianSummaryRequest {
                    student_id: "s1".into(),
                    ..Default::default()
                })
                .await
                .expect("preview")
                .into_inner()
        }
    };
    let example = preview(&app).await;
    assert!(!example.empty && example.text_body.contains("Essay on autumn"));
    // An unverified teacher of the class may: it is their own choice about their class.
    let off = app
        .summaries_as(&teacher("t-unverified", SCHOOL))
        .update_course_summary_settings(UpdateCourseSummarySettingsRequest {
            course_id: "math".into(),
            guardian_summaries_enabled: false,
        })
        .await
        .expect("switch off")
        .into_inner();
    assert!(!off.guardian_summaries_enabled);
    let without = preview(&app).await;
    assert!(without.empty, "{}", without.text_body);
    assert!(!without.text_body.contains("Essay on autumn"));

    let mut g1 = app.summaries_as(&guardian("g1", "g1@example.org"));
    let update = |prefs: SummaryPreferences, paths: &[&str]| UpdateSummaryPreferencesRequest {
        preferences: Some(prefs),
        update_mask: Some(prost_types::FieldMask {
            paths: paths.iter().map(|p| p.to_string()).collect(),
        }),
    };
    let err = assert_status(
        g1.update_summary_preferences(update(
            SummaryPreferences {
                guardian_id: "me".into(),
                time_zone: "Europe/Atlantis".into(),
                ..Default::default()
            },
            &["time_zone"],
        ))
        .await,
        Code::InvalidArgument,
        "INVALID_ARGUMENT",
    );
    let fields: Vec<String> = err
        .get_details_bad_request()
        .expect("field violations")
        .field_violations
        .into_iter()
        .map(|v| v.field)
        .collect();
    assert_eq!(fields, ["preferences.time_zone"]);
    let set = g1
        .update_summary_preferences(update(
            SummaryPreferences {
                guardian_id: "me".into(),
                frequency: SummaryFrequency::Daily as i32,
                time_zone: "Europe/Amsterdam".into(),
                locale: "nl".into(),
                ..Default::default()
            },
            &["frequency", "time_zone", "locale"],
        ))
        .await
        .expect("update")
        .into_inner()
        .preferences
        .unwrap();
    assert_eq!(
        (
            set.frequency,
            set.time_zone.as_str(),
            set.locale.as_str(),
            set.explicitly_set.len()
        ),
        (SummaryFrequency::Daily as i32, "Europe/Amsterdam", "nl", 3)
    );
    // An empty value under the mask gives the choice back to the domain's default.
    let cleared = g1
        .update_summary_preferences(update(
            SummaryPreferences {
                guardian_id: "me".into(),
                ..Default::default()
            },
            &["time_zone"],
        ))
        .await
        .expect("clear")
        .into_inner()
        .preferences
        .unwrap();
    assert_eq!(cleared.time_zone, "UTC");
    assert_eq!(cleared.explicitly_set, ["frequency", "locale"]);
    // Another guardian is not theirs to read.
    assert_status(
        g1.get_summary_preferences(GetSummaryPreferencesRequest {
            guardian_id: "g2".into(),
        })
        .await,
        Code::PermissionDenied,
        "NOT_ALLOWED_TO_MANAGE",
    );
}
