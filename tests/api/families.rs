//! Family invitations (issue 16, item 1): invitations to one address for several students of
//! a domain, by one call with several students or by calls within the family window, go out as
//! one email naming every child, with one link that accepts them all and a decline link per
//! child; exactly one email even with two replicas sending.

use crate::fixtures::{
    SCHOOL, invitations_with_event, invite, replica, seed_school, set_settings, subjects_to,
};
use crate::helpers::{TestApp, admin, guardian, spawn_unready_with_clock, test_config, wait_for};
use chrono::TimeDelta;
use guardian_service::domain::clock::ManualClock;
use guardian_service::proto::*;
use guardian_service::testing::TestDatabase;
use std::sync::Arc;
use std::time::Duration;
use tonic_health::pb::health_check_response::ServingStatus;

const WINDOW: Duration = Duration::from_secs(60);

/// A server whose invitations gather into families for a minute, on `clock`.
async fn spawn_with_families(clock: Arc<ManualClock>) -> TestApp {
    let db = TestDatabase::create_migrated().await;
    let mut config = test_config(&db.url);
    config.family_window = WINDOW;
    let mut app = spawn_unready_with_clock(config, clock).await;
    wait_for(&mut app, ServingStatus::Serving).await;
    app.db = Some(db);
    seed_school(&app, 5).await;
    app
}

/// The plain-text bodies queued to `recipient`, oldest first.
async fn bodies_to(app: &TestApp, recipient: &str) -> Vec<String> {
    let pool = sqlx::PgPool::connect(&app.database_url).await.unwrap();
    let bodies = sqlx::query_scalar(
        "SELECT body_text FROM outbox WHERE recipient = $1 ORDER BY create_time, message_id",
    )
    .bind(recipient)
    .fetch_all(&pool)
    .await
    .unwrap();
    pool.close().await;
    bodies
}

/// The token of the first link in `body` that follows `marker`.
fn token_after(body: &str, marker: &str) -> String {
    let at = body
        .find(marker)
        .unwrap_or_else(|| panic!("{marker} in {body}"));
    let rest = &body[at..];
    let start = rest.find("token=").expect("a token") + "token=".len();
    rest[start..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect()
}

async fn invite_many(app: &TestApp, students: &[&str], email: &str) -> Vec<BulkRowResult> {
    app.guardians()
        .create_guardian_invitation(CreateGuardianInvitationRequest {
            student_ids: students.iter().map(|s| s.to_string()).collect(),
            invited_email_address: email.into(),
            ..Default::default()
        })
        .await
        .expect("invite several students")
        .into_inner()
        .results
}

async fn accept_with(
    app: &TestApp,
    token: &str,
    who: &str,
    email: &str,
) -> AcceptGuardianInvitationResponse {
    app.guardians_as(&guardian(who, email))
        .accept_guardian_invitation(AcceptGuardianInvitationRequest {
            token: token.into(),
            ..Default::default()
        })
        .await
        .expect("accept")
        .into_inner()
}

async fn invitation(app: &TestApp, student: &str, id: &str) -> GuardianInvitation {
    app.guardians_as(&admin(SCHOOL))
        .get_guardian_invitation(GetGuardianInvitationRequest {
            student_id: student.into(),
            invitation_id: id.into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .invitation
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_children_in_one_call_get_one_email_whose_link_accepts_all_three() {
    let clock = Arc::new(ManualClock::new(chrono::Utc::now()));
    let app = spawn_with_families(clock.clone()).await;
    let results = invite_many(&app, &["s1", "s2", "s3"], "mother@example.org").await;
    assert!(results.iter().all(|r| r.code == 0), "{results:?}");
    let family = results[0].invitation.as_ref().unwrap().family_id.clone();
    assert!(!family.is_empty());
    for r in &results {
        let shown = invitation(
            &app,
            &r.invitation.as_ref().unwrap().student_id,
            &r.invitation.as_ref().unwrap().invitation_id,
        )
        .await;
        assert_eq!(
            shown.family_id, family,
            "GetGuardianInvitation shows the family"
        );
        assert_eq!(
            shown.delivery_status,
            DeliveryStatus::Queued as i32,
            "its email is to come"
        );
    }
    // Nothing goes while the window is open.
    let sender = replica(&app, clock.clone()).await;
    assert_eq!(sender.run_upkeep(10).await.unwrap().families, 0);
    assert!(subjects_to(&app, "mother@example.org").await.is_empty());

    clock.advance(TimeDelta::from_std(WINDOW).unwrap());
    assert_eq!(sender.run_upkeep(10).await.unwrap().families, 1);
    let bodies = bodies_to(&app, "mother@example.org").await;
    assert_eq!(bodies.len(), 1, "one email for the family");
    let body = &bodies[0];
    for s in ["s1", "s2", "s3"] {
        assert!(body.contains(&format!("- Name of {s}: ")), "{body}");
    }
    assert!(body.contains("Accept for all 3 children"), "{body}");
    assert_eq!(
        invitation(
            &app,
            "s1",
            &results[0].invitation.as_ref().unwrap().invitation_id
        )
        .await
        .delivery_status,
        DeliveryStatus::Queued as i32,
        "the family's email is each invitation's"
    );

    let token = token_after(body, "Accept for all");
    let accepted = accept_with(&app, &token, "g-mother", "mother@example.org").await;
    let mut linked: Vec<String> = accepted
        .family_guardians
        .iter()
        .map(|g| g.student_id.clone())
        .collect();
    linked.sort();
    assert_eq!(linked, ["s1", "s2", "s3"]);
    assert_eq!(accepted.guardian.unwrap().guardian_id, "g-mother");
    for s in ["s1", "s2", "s3"] {
        assert_eq!(
            subjects_to(&app, &format!("{s}@{SCHOOL}")).await.len(),
            1,
            "{s} is told of their guardian"
        );
    }
    // A retry of the same link answers as the first did, changing nothing.
    let again = accept_with(&app, &token, "g-mother", "mother@example.org").await;
    assert_eq!(again.family_guardians.len(), 3);
    assert_eq!(
        invitations_with_event(&app, "invitation.accepted")
            .await
            .len(),
        3,
        "each invitation its own transition and event"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_within_the_window_share_an_email_and_a_later_one_gets_its_own() {
    let clock = Arc::new(ManualClock::new(chrono::Utc::now()));
    let app = spawn_with_families(clock.clone()).await;
    let a = invite(&app, "s1", "father@example.org").await;
    clock.advance(TimeDelta::seconds(20));
    let b = invite(&app, "s2", "father@example.org").await;
    clock.advance(TimeDelta::seconds(20));
    // A bulk row joins the family as well.
    app.guardians()
        .bulk_create_guardian_invitations(BulkCreateGuardianInvitationsRequest {
            rows: vec![BulkCreateGuardianInvitationsRow {
                student_id: "s3".into(),
                invited_email_address: "father@example.org".into(),
            }],
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(a.family_id, b.family_id);
    clock.advance(TimeDelta::seconds(21));
    // After the window: its own family, its own email.
    let d = invite(&app, "s4", "father@example.org").await;
    assert_ne!(d.family_id, a.family_id);

    let (one, two) = (
        replica(&app, clock.clone()).await,
        replica(&app, clock.clone()).await,
    );
    let (x, y) = tokio::join!(one.run_upkeep(1), two.run_upkeep(1));
    assert_eq!(
        x.unwrap().families + y.unwrap().families,
        1,
        "the closed family, sent by one replica"
    );
    assert_eq!(one.run_upkeep(10).await.unwrap().families, 0);
    let bodies = bodies_to(&app, "father@example.org").await;
    assert_eq!(bodies.len(), 1, "{bodies:?}");
    for s in ["s1", "s2", "s3"] {
        assert!(
            bodies[0].contains(&format!("- Name of {s}: ")),
            "{}",
            bodies[0]
        );
    }
    assert!(!bodies[0].contains("Name of s4"));

    clock.advance(TimeDelta::from_std(WINDOW).unwrap());
    let (x, y) = tokio::join!(one.run_upkeep(1), two.run_upkeep(1));
    assert_eq!(x.unwrap().families + y.unwrap().families, 1);
    let bodies = bodies_to(&app, "father@example.org").await;
    assert_eq!(bodies.len(), 2);
    assert!(
        bodies[1].contains("Name of s4") && bodies[1].contains("/accept?token="),
        "a family of one gets the invitation email itself: {}",
        bodies[1]
    );
    let token = token_after(&bodies[1], "Accept the invitation");
    let accepted = accept_with(&app, &token, "g-father", "father@example.org").await;
    assert_eq!(accepted.guardian.unwrap().student_id, "s4");
    assert!(accepted.family_guardians.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_child_at_the_limit_is_refused_alone_and_accept_all_takes_only_those_still_pending() {
    let clock = Arc::new(ManualClock::new(chrono::Utc::now()));
    let app = spawn_with_families(clock.clone()).await;
    set_settings(
        &app,
        DomainSettings {
            max_guardians_per_student: 1,
            ..Default::default()
        },
        &["max_guardians_per_student"],
    )
    .await;
    invite(&app, "s2", "someone@example.org").await;
    let results = invite_many(&app, &["s1", "s2", "s3", "s4"], "carer@example.org").await;
    let codes: Vec<(i32, &str)> = results
        .iter()
        .map(|r| (r.code, r.reason.as_str()))
        .collect();
    assert_eq!(
        codes,
        [
            (0, ""),
            (
                tonic::Code::ResourceExhausted as i32,
                "STUDENT_GUARDIAN_LIMIT_REACHED"
            ),
            (0, ""),
            (0, ""),
        ]
    );
    // One child's invitation is cancelled before the email goes: it is left out of it.
    let s3 = results[2].invitation.clone().unwrap();
    app.guardians()
        .cancel_guardian_invitation(CancelGuardianInvitationRequest {
            student_id: "s3".into(),
            invitation_id: s3.invitation_id.clone(),
            ..Default::default()
        })
        .await
        .unwrap();
    clock.advance(TimeDelta::from_std(WINDOW).unwrap());
    replica(&app, clock.clone())
        .await
        .run_upkeep(10)
        .await
        .unwrap();
    let bodies = bodies_to(&app, "carer@example.org").await;
    let family_email = bodies.last().unwrap();
    assert!(
        family_email.contains("Accept for all 2 children"),
        "{family_email}"
    );
    assert!(!family_email.contains("Name of s3"));
    // Declined for one child alone: that one ends, the other stays to accept.
    let decline = token_after(family_email, "- Name of s4: ");
    app.guardians_as(&guardian("g-carer", "carer@example.org"))
        .decline_guardian_invitation(DeclineGuardianInvitationRequest {
            token: decline,
            ..Default::default()
        })
        .await
        .expect("decline one child");
    let accepted = accept_with(
        &app,
        &token_after(family_email, "Accept for all"),
        "g-carer",
        "carer@example.org",
    )
    .await;
    let linked: Vec<String> = accepted
        .family_guardians
        .iter()
        .map(|g| g.student_id.clone())
        .collect();
    assert_eq!(linked, ["s1"], "only what was still pending");
    let s4 = invitation(
        &app,
        "s4",
        &results[3].invitation.as_ref().unwrap().invitation_id,
    )
    .await;
    assert_eq!(s4.state, InvitationState::Removed as i32);
    assert_eq!(s4.removal_reason, RemovalReason::Declined as i32);
}
