//! Reminders before an invitation expires (issue 16, item 4): one per PENDING invitation, the
//! domain's `invitation_reminder_days` before expiry by the injected clock, exactly once across
//! replicas, recorded as an event; none after acceptance or with reminders off; a resend starts
//! the count again; the reminder's link and the first email's link both work.

use crate::fixtures::{
    accept_as, invitations_with_event, invite, replica, seed_school, set_settings, subjects_to,
    token_of,
};
use crate::helpers::{TestApp, guardian, spawn_app_with_clock};
use chrono::TimeDelta;
use guardian_service::domain::clock::ManualClock;
use guardian_service::proto::*;
use std::sync::Arc;

/// How many reminders were queued to `address`.
async fn reminders_to(app: &TestApp, address: &str) -> usize {
    subjects_to(app, address)
        .await
        .iter()
        .filter(|s| s.starts_with("Reminder:"))
        .count()
}

/// The reminder events of the school, by invitation id.
async fn reminder_events(app: &TestApp) -> Vec<String> {
    invitations_with_event(app, "invitation.reminded").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_reminder_comes_days_before_expiry_exactly_once_across_replicas() {
    let clock = Arc::new(ManualClock::new(chrono::Utc::now()));
    let app = spawn_app_with_clock(clock.clone()).await;
    seed_school(&app, 3).await;
    let waiting = invite(&app, "s1", "waiting@example.org").await;
    let first_link_kept = invite(&app, "s2", "keeps@example.org").await;
    let first_token = token_of(&app, &first_link_kept.invitation_id).await;
    let quick = invite(&app, "s3", "quick@example.org").await;
    accept_as(&app, &quick, "g-quick", "quick@example.org").await;
    let (a, b) = (
        replica(&app, clock.clone()).await,
        replica(&app, clock.clone()).await,
    );

    // The default: 7 days before the 120 days run out. A minute early, nothing.
    clock.advance(TimeDelta::days(113) - TimeDelta::minutes(1));
    assert_eq!(a.run_upkeep(10).await.unwrap().reminded, 0);
    clock.advance(TimeDelta::minutes(2));
    let (ra, rb) = tokio::join!(a.run_upkeep(1), b.run_upkeep(1));
    assert_eq!(
        ra.unwrap().reminded + rb.unwrap().reminded,
        2,
        "the two waiting invitations, each reminded by one replica"
    );
    assert_eq!(a.run_upkeep(10).await.unwrap().reminded, 0);
    assert_eq!(b.run_upkeep(10).await.unwrap().reminded, 0);
    assert_eq!(reminders_to(&app, "waiting@example.org").await, 1);
    assert_eq!(reminders_to(&app, "keeps@example.org").await, 1);
    assert_eq!(reminders_to(&app, "quick@example.org").await, 0, "accepted");
    let mut events = reminder_events(&app).await;
    events.sort();
    let mut expected = vec![
        waiting.invitation_id.clone(),
        first_link_kept.invitation_id.clone(),
    ];
    expected.sort();
    assert_eq!(events, expected, "one event per reminder");

    // The reminder's own link accepts; the first email's link still works beside it.
    accept_as(&app, &waiting, "g-waiting", "waiting@example.org").await;
    app.guardians_as(&guardian("g-keeps", "keeps@example.org"))
        .accept_guardian_invitation(AcceptGuardianInvitationRequest {
            token: first_token,
            ..Default::default()
        })
        .await
        .expect("the first email's link still accepts");

    // Days later, nothing more is sent.
    clock.advance(TimeDelta::days(3));
    assert_eq!(a.run_upkeep(10).await.unwrap().reminded, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resend_starts_the_count_again_and_a_domain_may_choose_or_refuse_reminders() {
    let clock = Arc::new(ManualClock::new(chrono::Utc::now()));
    let app = spawn_app_with_clock(clock.clone()).await;
    seed_school(&app, 2).await;
    set_settings(
        &app,
        DomainSettings {
            invitation_reminder_days: Some(30),
            ..Default::default()
        },
        &["invitation_reminder_days"],
    )
    .await;
    let resent = invite(&app, "s1", "resent@example.org").await;
    let sweeper = replica(&app, clock.clone()).await;

    // Reminded 30 days before expiry; resent then, the count starts again from the new expiry.
    clock.advance(TimeDelta::days(90));
    assert_eq!(sweeper.run_upkeep(10).await.unwrap().reminded, 1);
    app.guardians()
        .resend_guardian_invitation(ResendGuardianInvitationRequest {
            student_id: "s1".into(),
            invitation_id: resent.invitation_id.clone(),
            ..Default::default()
        })
        .await
        .expect("resend");
    assert_eq!(sweeper.run_upkeep(10).await.unwrap().reminded, 0);
    clock.advance(TimeDelta::days(89));
    assert_eq!(sweeper.run_upkeep(10).await.unwrap().reminded, 0);
    clock.advance(TimeDelta::days(1) + TimeDelta::minutes(1));
    assert_eq!(sweeper.run_upkeep(10).await.unwrap().reminded, 1);
    assert_eq!(reminders_to(&app, "resent@example.org").await, 2);

    // Turned off: an invitation already scheduled gets none, and new ones are not scheduled.
    let off = invite(&app, "s2", "off@example.org").await;
    set_settings(
        &app,
        DomainSettings {
            invitation_reminder_days: Some(0),
            ..Default::default()
        },
        &["invitation_reminder_days"],
    )
    .await;
    let later = invite(&app, "s2", "later@example.org").await;
    clock.advance(TimeDelta::days(119));
    assert_eq!(sweeper.run_upkeep(10).await.unwrap().reminded, 0);
    assert_eq!(reminders_to(&app, "off@example.org").await, 0);
    assert_eq!(reminders_to(&app, "later@example.org").await, 0);
    assert!(
        !reminder_events(&app)
            .await
            .iter()
            .any(|id| *id == off.invitation_id || *id == later.invitation_id)
    );
}
