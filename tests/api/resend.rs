//! Bulk resend: ResendGuardianInvitations by rows and by age (driven by an injected clock), who
//! may choose by age, and `guardianctl resend` both ways against the real binary.

use crate::cli::guardianctl;
use crate::fixtures::{OTHER, SCHOOL, assert_status, invite, seed_school, token_of};
use crate::helpers::{TestApp, admin, spawn_app, spawn_app_with_clock, teacher};
use chrono::{TimeDelta, Utc};
use guardian_service::domain::clock::{Clock, ManualClock};
use guardian_service::proto::*;
use std::sync::Arc;
use tonic::Code;

fn at(t: chrono::DateTime<Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: t.timestamp(),
        nanos: 0,
    }
}

/// Messages queued to `recipient`.
async fn mails_to(app: &TestApp, recipient: &str) -> i64 {
    let pool = sqlx::PgPool::connect(&app.database_url).await.unwrap();
    let count = sqlx::query_scalar("SELECT COUNT(*) FROM outbox WHERE recipient = $1")
        .bind(recipient)
        .fetch_one(&pool)
        .await
        .unwrap();
    pool.close().await;
    count
}

/// Each result as "address code reason", in result order.
fn outcomes(reply: &ResendGuardianInvitationsResponse) -> Vec<String> {
    reply
        .results
        .iter()
        .map(|r| {
            let address = r
                .invitation
                .as_ref()
                .map(|i| i.invited_email_address.clone())
                .unwrap_or_default();
            format!("{address} {} {}", r.code, r.reason)
                .trim_end()
                .to_owned()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invitations_are_resent_by_rows_and_by_age() {
    let clock = Arc::new(ManualClock::new(Utc::now()));
    let app = spawn_app_with_clock(clock.clone()).await;
    seed_school(&app, 3).await;
    let old_a = invite(&app, "s1", "a@example.org").await;
    invite(&app, "s2", "b@example.org").await;
    clock.advance(TimeDelta::days(40));
    invite(&app, "s3", "c@example.org").await;
    let month_ago = clock.now() - TimeDelta::days(30);
    let by_age = ResendGuardianInvitationsRequest {
        sent_before: Some(at(month_ago)),
        domain: SCHOOL.into(),
        ..Default::default()
    };

    // A dry run chooses the two that waited longer than a month, oldest first, and sends none.
    let dry = app
        .guardians()
        .resend_guardian_invitations(ResendGuardianInvitationsRequest {
            dry_run: true,
            ..by_age.clone()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(outcomes(&dry), vec!["a@example.org 0", "b@example.org 0"]);
    assert!(!dry.more);
    assert_eq!(mails_to(&app, "a@example.org").await, 1);

    let first_token = token_of(&app, &old_a.invitation_id).await;
    let request_id = uuid::Uuid::new_v4().to_string();
    let sent = app
        .guardians()
        .resend_guardian_invitations(ResendGuardianInvitationsRequest {
            request_id: request_id.clone(),
            ..by_age.clone()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(outcomes(&sent), vec!["a@example.org 0", "b@example.org 0"]);
    let resent = sent.results[0].invitation.clone().unwrap();
    let expiry = resent.expire_time.unwrap().seconds;
    assert_eq!(
        expiry,
        (clock.now() + TimeDelta::days(120)).timestamp(),
        "a new expiry from now"
    );
    assert_eq!(mails_to(&app, "a@example.org").await, 2);
    assert_ne!(
        token_of(&app, &old_a.invitation_id).await,
        first_token,
        "the new email carries a new link"
    );

    // Resent, they no longer waited a month: a retry of the call sends nothing twice, and the
    // same choice again finds nothing.
    let retry = app
        .guardians()
        .resend_guardian_invitations(ResendGuardianInvitationsRequest {
            request_id,
            ..by_age.clone()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(retry.results.is_empty(), "{:?}", retry.results);
    assert_eq!(mails_to(&app, "a@example.org").await, 2);

    // By rows: each pair's pending invitation, or why not.
    let rows = app
        .guardians()
        .resend_guardian_invitations(ResendGuardianInvitationsRequest {
            rows: vec![
                ResendGuardianInvitationsRow {
                    student_id: "s3".into(),
                    invited_email_address: "c@example.org".into(),
                },
                ResendGuardianInvitationsRow {
                    student_id: "s1".into(),
                    invited_email_address: "nobody@example.org".into(),
                },
                ResendGuardianInvitationsRow {
                    student_id: "s1".into(),
                    invited_email_address: "not an address".into(),
                },
            ],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        outcomes(&rows),
        vec![
            "c@example.org 0",
            " 5 INVITATION_NOT_FOUND",
            " 3 INVALID_EMAIL"
        ]
    );
    assert_eq!(mails_to(&app, "c@example.org").await, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_a_domains_administrators_and_services_choose_by_age() {
    let app = spawn_app().await;
    seed_school(&app, 1).await;
    invite(&app, "s1", "a@example.org").await;
    let by_age = ResendGuardianInvitationsRequest {
        sent_before: Some(at(Utc::now() + TimeDelta::minutes(1))),
        ..Default::default()
    };
    let as_teacher = app
        .guardians_as(&teacher("t-verified", SCHOOL))
        .resend_guardian_invitations(by_age.clone())
        .await;
    assert_status(as_teacher, Code::PermissionDenied, "NOT_ALLOWED_TO_MANAGE");
    let other_admin = app
        .guardians_as(&admin(OTHER))
        .resend_guardian_invitations(ResendGuardianInvitationsRequest {
            domain: SCHOOL.into(),
            ..by_age.clone()
        })
        .await;
    assert_status(other_admin, Code::PermissionDenied, "NOT_ALLOWED_TO_MANAGE");
    let both = app
        .guardians()
        .resend_guardian_invitations(ResendGuardianInvitationsRequest {
            rows: vec![ResendGuardianInvitationsRow::default()],
            domain: SCHOOL.into(),
            ..by_age.clone()
        })
        .await;
    assert_status(both, Code::InvalidArgument, "INVALID_ARGUMENT");
    let no_domain = app
        .guardians()
        .resend_guardian_invitations(by_age.clone())
        .await;
    assert_status(no_domain, Code::InvalidArgument, "INVALID_ARGUMENT");

    // The school's own administrator chooses in their domain without naming it.
    let own = app
        .guardians_as(&admin(SCHOOL))
        .resend_guardian_invitations(by_age)
        .await
        .unwrap()
        .into_inner();
    assert_eq!(outcomes(&own), vec!["a@example.org 0"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guardianctl_resends_a_files_rows_or_everything_older_than_an_age() {
    let app = spawn_app().await;
    seed_school(&app, 3).await;
    invite(&app, "s1", "a@example.org").await;
    invite(&app, "s2", "b@example.org").await;
    let dir = guardian_service::testing::TempDir::new();
    let csv = dir.path.join("resend.csv");
    std::fs::write(
        &csv,
        "Student,Guardian\ns1,a@example.org\ns3,none@example.org\n",
    )
    .unwrap();
    let csv = csv.display().to_string();
    let report = dir.path.join("report.csv").display().to_string();
    let addr = app.channel_uri.clone();

    let by_file = guardianctl(&addr, &["resend", "--csv", &csv, "--report", &report]);
    assert_eq!(
        by_file.status.code(),
        Some(1),
        "one row has nothing to resend"
    );
    let stdout = String::from_utf8_lossy(&by_file.stdout);
    assert!(
        stdout.contains("resend: 2 rows, 1 ok, 1 failed"),
        "{stdout}"
    );
    assert_eq!(mails_to(&app, "a@example.org").await, 2);
    assert_eq!(mails_to(&app, "b@example.org").await, 1);

    // Everything waiting, whatever its age (0m), in the named domain.
    let by_age = guardianctl(
        &addr,
        &[
            "resend",
            "--pending-older-than",
            "0m",
            "--domain",
            SCHOOL,
            "--report",
            &report,
        ],
    );
    assert_eq!(
        by_age.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&by_age.stderr)
    );
    let mut guardians: Vec<String> = csv::Reader::from_path(&report)
        .unwrap()
        .records()
        .map(|r| r.unwrap()[2].to_owned())
        .collect();
    guardians.sort();
    assert_eq!(guardians, vec!["a@example.org", "b@example.org"]);
    assert_eq!(mails_to(&app, "a@example.org").await, 3);
    assert_eq!(mails_to(&app, "b@example.org").await, 2);

    let bad_age = guardianctl(&addr, &["resend", "--pending-older-than", "30 days"]);
    assert_eq!(bad_age.status.code(), Some(2));
}
