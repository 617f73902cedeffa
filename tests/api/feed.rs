//! The change feed and fresh reads over gRPC (freshness.md): watchers see every committed
//! change once and in order while writers race, resume from any token, expire, stay within
//! their tenant; a second replica's cache never reports a removed link past the bound, and a
//! write's token is honoured on a replica that did not make it.

use crate::fixtures::*;
use crate::helpers::*;
use guardian_service::domain::Position;
use guardian_service::domain::clock::ManualClock;
use guardian_service::proto::consistency::Requirement;
use guardian_service::proto::guardian_change::Kind;
use guardian_service::proto::*;
use std::sync::Arc;
use std::time::Duration;
use tokio_stream::StreamExt;
use tonic::Code;

/// A watch of `domain` as the platform service, from `start` (empty: now).
async fn watch(
    app: &TestApp,
    domain: &str,
    start: &str,
) -> tonic::Streaming<WatchGuardianChangesResponse> {
    app.guardians()
        .watch_guardian_changes(WatchGuardianChangesRequest {
            domain: domain.into(),
            start_token: start.into(),
            ..Default::default()
        })
        .await
        .expect("watch")
        .into_inner()
}

/// The next change of a stream (heartbeats skipped), or `None` if the stream ended.
async fn next_change(
    stream: &mut tonic::Streaming<WatchGuardianChangesResponse>,
) -> Option<GuardianChange> {
    loop {
        let message = tokio::time::timeout(Duration::from_secs(30), stream.next())
            .await
            .expect("a change within 30 s")?
            .expect("stream item");
        let change = message.change.expect("change");
        if change.kind != Kind::Unspecified as i32 {
            return Some(change);
        }
    }
}

/// What a change is about, to compare with the audit trail.
fn identity(change: &GuardianChange) -> (String, String) {
    let invitation = change
        .invitation
        .as_ref()
        .map(|i| i.invitation_id.clone())
        .unwrap_or_default();
    (invitation, change.action.clone())
}

/// The audit trail of `domain` in revision order, as (invitation, action), without the
/// actions the feed does not carry (directory summaries).
async fn trail(app: &TestApp, domain: &str) -> Vec<(String, String)> {
    let mut all = Vec::new();
    let mut page_token = String::new();
    loop {
        let page = app
            .guardians()
            .list_guardian_events(ListGuardianEventsRequest {
                domain: domain.into(),
                page_size: 500,
                page_token,
                ..Default::default()
            })
            .await
            .expect("events")
            .into_inner();
        all.extend(
            page.events
                .iter()
                .filter(|e| !e.action.starts_with("directory."))
                .map(|e| (e.invitation_id.clone(), e.action.clone())),
        );
        if page.next_page_token.is_empty() {
            return all;
        }
        page_token = page.next_page_token;
    }
}

/// Where SCHOOL's trail ends now (it holds fewer than 500 events in these tests).
async fn trail_end(app: &TestApp) -> String {
    app.guardians()
        .list_guardian_events(ListGuardianEventsRequest {
            domain: SCHOOL.into(),
            page_size: 500,
            ..Default::default()
        })
        .await
        .expect("events")
        .into_inner()
        .resume_token
}

/// Waits until everything written so far is below the feed's watermark, so that a watch "from
/// now" opened after it sees none of it. (The watermark is the whole Postgres server's: another
/// test's transaction still running holds it back for a moment, and "now" starts there.)
async fn settle(app: &TestApp) {
    let marker = app
        .directory()
        .upsert_users(UpsertUsersRequest {
            users: vec![User {
                user_id: "settle-marker".into(),
                domain: SCHOOL.into(),
                email: "settle-marker@school.example".into(),
                role: UserRole::Teacher as i32,
                display_name: "Marker".into(),
                ..Default::default()
            }],
        })
        .await
        .expect("marker")
        .into_inner()
        .consistency_token;
    let written = Position::from_token(&marker).expect("a token");
    loop {
        let end = Position::from_token(&trail_end(app).await).expect("a token");
        if end >= written {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Invites, accepts and removes a guardian of `student` `rounds` times: three changes a round.
async fn churn(app: &TestApp, student: &str, rounds: usize) {
    for round in 0..rounds {
        let guardian = format!("g-{student}-{round}");
        let email = format!("{guardian}@example.org");
        link(app, student, &email, &guardian, &email).await;
        app.guardians()
            .delete_guardian(DeleteGuardianRequest {
                student_id: student.into(),
                guardian_id: guardian,
                ..Default::default()
            })
            .await
            .expect("remove");
    }
}

/// A watcher that disconnects after every `every` changes and resumes from the last token,
/// until it has `wanted` changes.
async fn follow_with_reconnects(
    app: &TestApp,
    start: String,
    every: usize,
    wanted: usize,
) -> Vec<GuardianChange> {
    let mut seen = Vec::new();
    let mut token = start;
    while seen.len() < wanted {
        let mut stream = watch(app, SCHOOL, &token).await;
        for _ in 0..every {
            let change = next_change(&mut stream).await.expect("open stream");
            token = change.consistency_token.clone();
            seen.push(change);
            if seen.len() == wanted {
                break;
            }
        }
        // Dropped here: the next round resumes after the last change it got.
    }
    seen
}

async fn writers_and_watchers(app: Arc<TestApp>, writers: usize, rounds: usize) {
    let app = &app;
    seed_school(app, writers).await;
    settle(app).await;
    // Where the watchers start: the end of the trail so far (the seeding's events).
    let start = trail_end(app).await;
    let before = trail(app, SCHOOL).await.len();
    let wanted = writers * rounds * 3;
    let watchers: Vec<_> = [3usize, 7, 1000]
        .into_iter()
        .map(|every| {
            let app = Arc::clone(app);
            let start = start.clone();
            tokio::spawn(async move { follow_with_reconnects(&app, start, every, wanted).await })
        })
        .collect();
    let tasks: Vec<_> = (1..=writers)
        .map(|w| {
            let app = Arc::clone(app);
            tokio::spawn(async move { churn(&app, &format!("s{w}"), rounds).await })
        })
        .collect();
    for t in tasks {
        t.await.expect("writer");
    }
    let expected: Vec<(String, String)> = trail(app, SCHOOL).await.split_off(before);
    assert_eq!(expected.len(), wanted, "the trail holds every change");
    for (i, watcher) in watchers.into_iter().enumerate() {
        let seen: Vec<(String, String)> = watcher
            .await
            .expect("watcher")
            .iter()
            .map(identity)
            .collect();
        assert_eq!(
            seen, expected,
            "watcher {i}: every change once, in revision order"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn eight_writers_and_three_resuming_watchers_see_every_change_once_in_order() {
    writers_and_watchers(Arc::new(spawn_app().await), 8, 4).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_feed_works_the_same_on_sqlite() {
    writers_and_watchers(Arc::new(spawn_sqlite_app().await), 3, 2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_say_what_happened_to_which_link() {
    let app = spawn_app().await;
    seed_school(&app, 2).await;
    settle(&app).await;
    let mut stream = watch(&app, SCHOOL, "").await;
    let invitation = link(&app, "s1", "mum@example.org", "g-mum", "mum@example.org").await;
    let created = next_change(&mut stream).await.unwrap();
    assert_eq!(created.kind, Kind::InvitationChanged as i32);
    assert_eq!(created.student_id, "s1");
    assert_eq!(created.domain, SCHOOL);
    assert!(created.commit_time.is_some());
    let added = next_change(&mut stream).await.unwrap();
    assert_eq!(added.kind, Kind::LinkAdded as i32);
    assert_eq!(added.guardian_id, "g-mum");
    let shown = added.invitation.expect("the invitation");
    assert_eq!(shown.invitation_id, invitation.invitation_id);
    assert_eq!(shown.invited_email_address, "mum@example.org");
    app.settings()
        .update_domain_settings(UpdateDomainSettingsRequest {
            settings: Some(DomainSettings {
                domain: SCHOOL.into(),
                guardian_access_enabled: false,
                ..Default::default()
            }),
            update_mask: Some(prost_types::FieldMask {
                paths: vec!["guardian_access_enabled".into()],
            }),
            ..Default::default()
        })
        .await
        .expect("settings");
    let settings = next_change(&mut stream).await.unwrap();
    assert_eq!(settings.kind, Kind::SettingsChanged as i32);
    assert!(settings.student_id.is_empty());
    app.directory()
        .delete_users(DeleteUsersRequest {
            user_ids: vec!["s1".into()],
        })
        .await
        .expect("delete");
    let removed = next_change(&mut stream).await.unwrap();
    assert_eq!(removed.kind, Kind::StudentRemoved as i32);
    assert_eq!(removed.student_id, "s1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quiet_watch_gets_heartbeats_that_resume_where_it_stood() {
    let db = guardian_service::testing::TestDatabase::create_migrated().await;
    let config = guardian_service::config::ServeConfig {
        feed_heartbeat: Duration::from_millis(50),
        ..test_config(&db.url)
    };
    let mut app = spawn_with(config).await;
    app.db = Some(db);
    seed_school(&app, 1).await;
    settle(&app).await;
    let mut stream = watch(&app, SCHOOL, "").await;
    let beat = tokio::time::timeout(Duration::from_secs(30), stream.next())
        .await
        .expect("a heartbeat")
        .unwrap()
        .unwrap()
        .change
        .unwrap();
    assert_eq!(beat.kind, Kind::Unspecified as i32);
    assert!(!beat.consistency_token.is_empty());
    drop(stream);
    invite(&app, "s1", "later@example.org").await;
    let mut resumed = watch(&app, SCHOOL, &beat.consistency_token).await;
    let change = next_change(&mut resumed).await.unwrap();
    assert_eq!(change.action, "invitation.created");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watcher_sees_only_its_own_tenant() {
    let app = spawn_app().await;
    seed_school(&app, 1).await;
    settle(&app).await;
    let mut theirs = app
        .guardians_as(&admin(OTHER))
        .watch_guardian_changes(WatchGuardianChangesRequest {
            domain: OTHER.into(),
            ..Default::default()
        })
        .await
        .expect("watch own domain")
        .into_inner();
    invite(&app, "s1", "school@example.org").await;
    invite(&app, "o1", "other@example.org").await;
    let first = next_change(&mut theirs).await.unwrap();
    assert_eq!(
        first.student_id, "o1",
        "SCHOOL's change is not OTHER's to see"
    );
    for (token, domain, why) in [
        (admin(OTHER), SCHOOL, "another tenant's domain"),
        (admin(OTHER), "*", "every domain, not a platform service"),
        (teacher("t-verified", SCHOOL), SCHOOL, "a teacher"),
        (
            service("reader", SCHOOL, &[]),
            SCHOOL,
            "a service without guardians.read",
        ),
    ] {
        let refused = app
            .guardians_as(&token)
            .watch_guardian_changes(WatchGuardianChangesRequest {
                domain: domain.into(),
                ..Default::default()
            })
            .await;
        let status = refused.expect_err(why);
        assert_eq!(status.code(), Code::PermissionDenied, "{why}: {status:?}");
    }
    let malformed = app
        .guardians()
        .watch_guardian_changes(WatchGuardianChangesRequest {
            domain: SCHOOL.into(),
            start_token: "not-a-token".into(),
            ..Default::default()
        })
        .await;
    assert_status(malformed, Code::InvalidArgument, "INVALID_ARGUMENT");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_older_than_retention_is_expired() {
    let clock = Arc::new(ManualClock::new(chrono::Utc::now()));
    let app = spawn_app_with_clock(clock.clone()).await;
    seed_school(&app, 1).await;
    settle(&app).await;
    let start = trail_end(&app).await;
    invite(&app, "s1", "old@example.org").await;
    let mut stream = watch(&app, SCHOOL, &start).await;
    let change = next_change(&mut stream).await.unwrap();
    drop(stream);
    clock.advance(chrono::TimeDelta::days(8));
    let expired = app
        .guardians()
        .watch_guardian_changes(WatchGuardianChangesRequest {
            domain: SCHOOL.into(),
            start_token: start.clone(),
            ..Default::default()
        })
        .await;
    assert_status(expired, Code::OutOfRange, "CHANGE_TOKEN_EXPIRED");
    let listed = app
        .guardians()
        .list_guardian_events(ListGuardianEventsRequest {
            domain: SCHOOL.into(),
            start_token: start,
            ..Default::default()
        })
        .await;
    assert_status(listed, Code::OutOfRange, "CHANGE_TOKEN_EXPIRED");
    // After the old change, nothing is missing: that token still resumes.
    watch(&app, SCHOOL, &change.consistency_token).await;
}

/// A second server on `app`'s database, with `config` changes.
async fn replica(app: &TestApp, max_staleness: Duration) -> TestApp {
    spawn_with(guardian_service::config::ServeConfig {
        max_staleness,
        ..test_config(&app.database_url)
    })
    .await
}

fn check_of(
    student: &str,
    guardian: &str,
    consistency: Option<Requirement>,
) -> CheckGuardianshipRequest {
    CheckGuardianshipRequest {
        student_id: student.into(),
        guardian: Some(check_guardianship_request::Guardian::GuardianId(
            guardian.into(),
        )),
        consistency: consistency.map(|r| Consistency {
            requirement: Some(r),
        }),
    }
}

/// The guardians ListGuardians gives of s1 on `app` (the platform service: from the replica's
/// cache in the default mode, as the check).
async fn listed_on(app: &TestApp, consistency: Option<Requirement>) -> Vec<String> {
    let consistency = consistency.map(|r| Consistency {
        requirement: Some(r),
    });
    guardians_of_s1(app, consistency).await
}

async fn linked_on(app: &TestApp, consistency: Option<Requirement>) -> CheckGuardianshipResponse {
    app.guardians()
        .check_guardianship(check_of("s1", "g1", consistency))
        .await
        .expect("check")
        .into_inner()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_removed_link_is_never_reported_by_another_replica_once_the_bound_has_passed() {
    let a = spawn_app().await;
    seed_school(&a, 1).await;
    let bound = Duration::from_millis(300);
    let b = replica(&a, bound).await;
    link(&a, "s1", "g1@example.org", "g1", "g1@example.org").await;
    // B answers checks and lists from its cache once it holds s1.
    for _ in 0..3 {
        assert!(linked_on(&b, None).await.linked);
        assert_eq!(listed_on(&b, None).await, ["g1"]);
    }
    a.guardians()
        .delete_guardian(DeleteGuardianRequest {
            student_id: "s1".into(),
            guardian_id: "g1".into(),
            ..Default::default()
        })
        .await
        .expect("remove on A");
    let removed = std::time::Instant::now();
    // Ask B over and over until well past the bound; every answer asked after the bound had
    // passed must be "not linked" (answers before it may still be "linked").
    loop {
        let asked = std::time::Instant::now();
        let answer = linked_on(&b, None).await;
        let listed = listed_on(&b, None).await;
        if asked.duration_since(removed) >= bound {
            assert!(!answer.linked, "B reported a removed link after the bound");
            assert!(listed.is_empty(), "B listed a removed link after the bound");
        }
        if asked.duration_since(removed) >= bound * 3 {
            break;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_writes_token_is_honoured_on_a_replica_that_did_not_make_it() {
    let a = spawn_app().await;
    seed_school(&a, 1).await;
    let b = replica(&a, Duration::from_secs(60)).await;
    // B has s1 in its cache, unlinked, and may keep it for up to a minute.
    assert!(!linked_on(&b, None).await.linked);
    assert!(listed_on(&b, None).await.is_empty());
    let invitation = invite(&a, "s1", "g1@example.org").await;
    let token = token_of(&a, &invitation.invitation_id).await;
    let accepted = a
        .guardians_as(&guardian("g1", "g1@example.org"))
        .accept_guardian_invitation(AcceptGuardianInvitationRequest {
            token,
            ..Default::default()
        })
        .await
        .expect("accept on A")
        .into_inner();
    assert!(!accepted.consistency_token.is_empty());
    let fresh = linked_on(
        &b,
        Some(Requirement::AtLeastAsFresh(
            accepted.consistency_token.clone(),
        )),
    )
    .await;
    assert!(fresh.linked, "the token's write is included");
    assert_eq!(
        listed_on(
            &b,
            Some(Requirement::AtLeastAsFresh(
                accepted.consistency_token.clone()
            ))
        )
        .await,
        ["g1"],
        "in a listing too"
    );
    assert!(!fresh.consistency_token.is_empty());
    // The answer's own token is at least as fresh: using it again answers the same.
    let again = linked_on(
        &b,
        Some(Requirement::AtLeastAsFresh(fresh.consistency_token)),
    )
    .await;
    assert!(again.linked);
    assert!(
        linked_on(&b, Some(Requirement::FullyConsistent(true)))
            .await
            .linked
    );
    // The replica that made the write reads it in the default mode too.
    assert!(linked_on(&a, None).await.linked);
    let bad = b
        .guardians()
        .check_guardianship(check_of(
            "s1",
            "g1",
            Some(Requirement::AtLeastAsFresh("garbage".into())),
        ))
        .await;
    assert_status(bad, Code::InvalidArgument, "INVALID_ARGUMENT");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_goes_on_when_the_database_drops_every_connection() {
    let app = spawn_app().await;
    seed_school(&app, 1).await;
    settle(&app).await;
    let mut stream = watch(&app, SCHOOL, "").await;
    invite(&app, "s1", "before@example.org").await;
    assert_eq!(
        next_change(&mut stream).await.unwrap().action,
        "invitation.created"
    );
    // Every connection of the server (its pool and its LISTEN) is cut.
    let pool = sqlx::PgPool::connect(&app.database_url)
        .await
        .expect("connect");
    let cut: Vec<bool> = sqlx::query_scalar(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = current_database() AND pid <> pg_backend_pid()",
    )
    .fetch_all(&pool)
    .await
    .expect("terminate");
    pool.close().await;
    assert!(!cut.is_empty());
    // A call may meet a dead pooled connection once; the retry is the client's, as for any
    // UNAVAILABLE.
    let mut invited = None;
    for _ in 0..5 {
        let result = app
            .guardians()
            .create_guardian_invitation(CreateGuardianInvitationRequest {
                student_id: "s1".into(),
                invited_email_address: "after@example.org".into(),
                request_id: "4f4c8a8e-3a53-4d7e-9d55-0c4b8f2c1a77".into(),
                student_ids: Vec::new(),
            })
            .await;
        match result {
            Ok(r) => {
                invited = r.into_inner().invitation;
                break;
            }
            Err(e) if e.code() == Code::Unavailable => continue,
            Err(e) => panic!("{e:?}"),
        }
    }
    let invited = invited.expect("the invitation after the cut");
    let change = next_change(&mut stream).await.expect("the stream goes on");
    assert_eq!(
        change.invitation.map(|i| i.invitation_id),
        Some(invited.invitation_id)
    );
}
