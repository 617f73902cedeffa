//! Retention of personal data (issue 17, item 1), by the injected clock: ended invitations past
//! the domain's `ended_retention_days` keep no address or guardian profile, only keyed stand-ins
//! (their declines still count against the address); live ones are untouched; audit events past
//! `audit_retention_days` are gone.

use crate::fixtures::{
    SCHOOL, assert_status, invitations_of, invite, link, replica, school_events, seed_school,
    set_settings, token_of,
};
use crate::helpers::{admin, guardian, spawn_app_with_clock};
use chrono::TimeDelta;
use guardian_service::domain::clock::ManualClock;
use guardian_service::proto::*;
use std::sync::Arc;
use tonic::Code;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ended_invitations_keep_only_stand_ins_after_retention_and_declines_still_count() {
    let clock = Arc::new(ManualClock::new(chrono::Utc::now()));
    let app = spawn_app_with_clock(clock.clone()).await;
    seed_school(&app, 3).await;
    set_settings(
        &app,
        DomainSettings {
            ended_retention_days: Some(30),
            audit_retention_days: Some(30),
            ..Default::default()
        },
        &["ended_retention_days", "audit_retention_days"],
    )
    .await;
    // s1: an address that said "I am not the guardian" three times.
    for _ in 0..3 {
        let inv = invite(&app, "s1", "spam@example.org").await;
        let token = token_of(&app, &inv.invitation_id).await;
        app.guardians_as(&guardian("g-x", "spam@example.org"))
            .decline_guardian_invitation(DeclineGuardianInvitationRequest {
                token,
                ..Default::default()
            })
            .await
            .unwrap();
    }
    // s2: a live link and a live invitation, both untouched by retention.
    link(
        &app,
        "s2",
        "parent@example.org",
        "g-parent",
        "parent@example.org",
    )
    .await;
    invite(&app, "s2", "waiting@example.org").await;
    // s3: a link that was removed: its guardian's profile goes too.
    link(&app, "s3", "ex@example.org", "g-ex", "ex@example.org").await;
    app.guardians_as(&admin(SCHOOL))
        .delete_guardian(DeleteGuardianRequest {
            student_id: "s3".into(),
            guardian_id: "g-ex".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(!school_events(&app).await.is_empty());
    let sweeper = replica(&app, clock.clone()).await;

    clock.advance(TimeDelta::days(29));
    let early = sweeper.run_upkeep(100).await.unwrap();
    assert_eq!((early.anonymised, early.events_purged), (0, 0));

    clock.advance(TimeDelta::days(2));
    let due = sweeper.run_upkeep(2).await.unwrap();
    assert_eq!(
        due.anonymised, 4,
        "three declines and the removed link, in batches of two"
    );
    assert!(due.events_purged > 0);
    assert!(
        school_events(&app).await.is_empty(),
        "every event was older than 30 days"
    );
    assert_eq!(
        sweeper.run_upkeep(100).await.unwrap().anonymised,
        0,
        "done once"
    );

    for ended in invitations_of(&app, "s1").await {
        assert!(
            ended.invited_email_address.ends_with("@erased.invalid"),
            "{ended:?}"
        );
    }
    let removed = &invitations_of(&app, "s3").await[0];
    assert!(removed.invited_email_address.ends_with("@erased.invalid"));
    assert!(removed.guardian_id.starts_with("erased-"), "{removed:?}");
    let mut live: Vec<String> = invitations_of(&app, "s2")
        .await
        .into_iter()
        .map(|i| i.invited_email_address)
        .collect();
    live.sort();
    assert_eq!(live, ["parent@example.org", "waiting@example.org"]);

    // The address's declines still count under its stand-in.
    assert_status(
        app.guardians()
            .create_guardian_invitation(CreateGuardianInvitationRequest {
                student_id: "s1".into(),
                invited_email_address: "Spam@Example.org".into(),
                ..Default::default()
            })
            .await,
        Code::FailedPrecondition,
        "TOO_MANY_DECLINES",
    );
    // What happens after the purge is kept.
    invite(&app, "s3", "new@example.org").await;
    let kept = school_events(&app).await;
    assert_eq!(kept.len(), 1);
    assert_eq!(kept[0].action, "invitation.created");
}

/// A sent email keeps its recipient and subject 130 days (past the longest an invitation waits
/// for its answer), then names nobody; its status stays, so the invitation still says SENT.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sent_emails_name_nobody_after_130_days() {
    let clock = Arc::new(ManualClock::new(chrono::Utc::now()));
    let app = spawn_app_with_clock(clock.clone()).await;
    seed_school(&app, 1).await;
    let invitation = invite(&app, "s1", "mail@example.org").await;
    // As the dispatcher would mark it (these tests run none).
    let pool = sqlx::PgPool::connect(&app.database_url).await.unwrap();
    sqlx::query("UPDATE outbox SET status = 'SENT', sent_time = create_time, body_text = '', body_html = ''")
        .execute(&pool)
        .await
        .unwrap();
    let naming = || async {
        sqlx::query_scalar::<_, i64>(
            "SELECT COUNT(*) FROM outbox WHERE recipient = 'mail@example.org' \
             OR subject LIKE '%Name of s1%'",
        )
        .fetch_one(&pool)
        .await
        .unwrap()
    };
    assert_eq!(naming().await, 1);
    let sweeper = replica(&app, clock.clone()).await;
    clock.advance(TimeDelta::days(129));
    assert_eq!(
        sweeper.run_upkeep(100).await.unwrap().messages_anonymised,
        0
    );
    assert_eq!(naming().await, 1);
    clock.advance(TimeDelta::days(2));
    assert_eq!(
        sweeper.run_upkeep(100).await.unwrap().messages_anonymised,
        1
    );
    assert_eq!(naming().await, 0);
    assert_eq!(
        sweeper.run_upkeep(100).await.unwrap().messages_anonymised,
        0,
        "done once"
    );
    let read = app
        .guardians()
        .get_guardian_invitation(GetGuardianInvitationRequest {
            student_id: "s1".into(),
            invitation_id: invitation.invitation_id,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .invitation
        .unwrap();
    assert_eq!(read.delivery_status, DeliveryStatus::Sent as i32);
    pool.close().await;
}
