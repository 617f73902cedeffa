//! Limits and transitions under concurrent calls (quality.md R1-R4), keyset paging under
//! concurrent inserts, settings reaching every replica, and the workflow on SQLite.

use crate::fixtures::{SCHOOL, invite, seed_school, set_settings, token_of};
use crate::helpers::{
    admin, guardian, reason, spawn_app, spawn_sqlite_app, spawn_unready_with_clock, spawn_with,
    teacher, test_config, wait_for,
};
use chrono::TimeDelta;
use guardian_service::domain::clock::ManualClock;
use guardian_service::proto::*;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use tonic::Code;

fn create(student: &str, email: &str) -> CreateGuardianInvitationRequest {
    CreateGuardianInvitationRequest {
        student_id: student.into(),
        invited_email_address: email.into(),
        request_id: String::new(),
        student_ids: Vec::new(),
    }
}

fn tally(results: Vec<Result<(), tonic::Status>>) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for r in results {
        let key = match r {
            Ok(()) => "OK".to_string(),
            Err(e) => reason(&e),
        };
        *counts.entry(key).or_insert(0) += 1;
    }
    counts
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sixty_four_concurrent_invitations_on_two_instances_stop_exactly_at_the_limit() {
    let first = spawn_app().await;
    let second = spawn_with(test_config(&first.database_url)).await;
    seed_school(&first, 1).await;
    let mut calls = Vec::new();
    for i in 0..64 {
        let mut client = if i % 2 == 0 {
            first.guardians()
        } else {
            second.guardians()
        };
        calls.push(tokio::spawn(async move {
            client
                .create_guardian_invitation(create("s1", &format!("parent{i}@example.org")))
                .await
                .map(|_| ())
        }));
    }
    let mut results = Vec::new();
    for c in calls {
        results.push(c.await.unwrap());
    }
    let counts = tally(results);
    assert_eq!(counts.get("OK"), Some(&20), "{counts:?}");
    assert_eq!(
        counts.get("STUDENT_GUARDIAN_LIMIT_REACHED"),
        Some(&44),
        "{counts:?}"
    );
    let listed = first
        .guardians()
        .list_guardian_invitations(ListGuardianInvitationsRequest {
            student_id: "s1".into(),
            page_size: 100,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.invitations.len(), 20);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn thirty_two_identical_invitations_leave_exactly_one() {
    let app = spawn_app().await;
    seed_school(&app, 1).await;
    let mut calls = Vec::new();
    for _ in 0..32 {
        let mut client = app.guardians();
        calls.push(tokio::spawn(async move {
            client
                .create_guardian_invitation(create("s1", "same@example.org"))
                .await
                .map(|_| ())
        }));
    }
    let mut results = Vec::new();
    for c in calls {
        results.push(c.await.unwrap());
    }
    let counts = tally(results);
    assert_eq!(counts.get("OK"), Some(&1), "{counts:?}");
    assert_eq!(
        counts.get("INVITATION_ALREADY_PENDING"),
        Some(&31),
        "{counts:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn accept_racing_cancel_has_exactly_one_winner() {
    let app = spawn_app().await;
    seed_school(&app, 10).await;
    for round in 1..=10 {
        let student = format!("s{round}");
        let inv = invite(&app, &student, "race@example.org").await;
        let token = token_of(&app, &inv.invitation_id).await;
        let mut acceptor = app.guardians_as(&guardian(&format!("g-{round}"), "race@example.org"));
        let mut canceller = app.guardians();
        let accept = tokio::spawn(async move {
            acceptor
                .accept_guardian_invitation(AcceptGuardianInvitationRequest {
                    token,
                    ..Default::default()
                })
                .await
                .map(|_| ())
        });
        let cancel_req = CancelGuardianInvitationRequest {
            student_id: student,
            invitation_id: inv.invitation_id,
            ..Default::default()
        };
        let cancel = tokio::spawn(async move {
            canceller
                .cancel_guardian_invitation(cancel_req)
                .await
                .map(|_| ())
        });
        let counts = tally(vec![accept.await.unwrap(), cancel.await.unwrap()]);
        assert_eq!(counts.get("OK"), Some(&1), "round {round}: {counts:?}");
        assert_eq!(
            counts.get("INVITATION_NOT_PENDING"),
            Some(&1),
            "round {round}: {counts:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_retried_request_id_has_one_effect_and_the_same_response() {
    let app = spawn_app().await;
    seed_school(&app, 1).await;
    let request = CreateGuardianInvitationRequest {
        request_id: uuid::Uuid::new_v4().to_string(),
        ..create("s1", "retry@example.org")
    };
    let first = app
        .guardians()
        .create_guardian_invitation(request.clone())
        .await
        .unwrap()
        .into_inner();
    // The "lost response" retries, some at once.
    let mut retries = Vec::new();
    for _ in 0..8 {
        let mut client = app.guardians();
        let request = request.clone();
        retries.push(tokio::spawn(async move {
            client
                .create_guardian_invitation(request)
                .await
                .map(|r| r.into_inner())
        }));
    }
    for r in retries {
        let mut again = r.await.unwrap().unwrap();
        // The token is taken after each answer (it includes the one write either way).
        assert!(!again.consistency_token.is_empty());
        again.consistency_token = first.consistency_token.clone();
        assert_eq!(again, first, "the first response, again");
    }
    let all = ListGuardianInvitationsRequest {
        student_id: "s1".into(),
        states: vec![1, 2, 3, 4],
        ..Default::default()
    };
    assert_eq!(
        app.guardians()
            .list_guardian_invitations(all)
            .await
            .unwrap()
            .into_inner()
            .invitations
            .len(),
        1
    );
    let events = app
        .guardians_as(&admin(SCHOOL))
        .list_guardian_events(ListGuardianEventsRequest {
            domain: SCHOOL.into(),
            student_id: "s1".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .events;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].request_id, request.request_id);

    let different = CreateGuardianInvitationRequest {
        invited_email_address: "other@example.org".into(),
        ..request.clone()
    };
    let err = app
        .guardians()
        .create_guardian_invitation(different)
        .await
        .unwrap_err();
    assert_eq!(
        (err.code(), reason(&err).as_str()),
        (Code::InvalidArgument, "REQUEST_ID_REUSED")
    );

    // Concurrent first attempts with one id: one effect, one response for all.
    let fresh = CreateGuardianInvitationRequest {
        request_id: uuid::Uuid::new_v4().to_string(),
        ..create("s1", "burst@example.org")
    };
    let mut burst = Vec::new();
    for _ in 0..8 {
        let mut client = app.guardians();
        let request = fresh.clone();
        burst.push(tokio::spawn(async move {
            client
                .create_guardian_invitation(request)
                .await
                .map(|r| r.into_inner())
        }));
    }
    let mut responses = BTreeSet::new();
    for b in burst {
        let mut response = b.await.unwrap().unwrap();
        // Each answer's token is its own (see above); the rest is the one first response.
        response.consistency_token.clear();
        responses.insert(format!("{response:?}"));
    }
    assert_eq!(responses.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn paging_a_thousand_invitations_by_seven_sees_each_once_while_others_are_added() {
    let app = spawn_app().await;
    seed_school(&app, 50).await;
    // Seed through the store: 50 students x 20 addresses.
    let store = guardian_service::store::connect(&app.db.as_ref().unwrap().options(4))
        .await
        .unwrap();
    let now = chrono::Utc::now();
    let mut existing = BTreeSet::new();
    {
        let mut tx = store.begin().await.unwrap();
        for s in 1..=50 {
            for g in 0..20 {
                let inv = guardian_service::domain::Invitation {
                    id: guardian_service::domain::InvitationId::generate(),
                    domain: guardian_service::domain::DomainName::parse(SCHOOL).unwrap(),
                    student_id: guardian_service::domain::UserId::parse(&format!("s{s}")).unwrap(),
                    invited_email: guardian_service::domain::Email::parse(&format!(
                        "g{g}@example.org"
                    ))
                    .unwrap(),
                    state: guardian_service::domain::InvitationState::Pending,
                    inviter_id: "seed".into(),
                    guardian: None,
                    token_hash: uuid::Uuid::new_v4().to_string(),
                    create_time: now,
                    update_time: now,
                    expire_time: now + TimeDelta::days(100),
                    accept_time: None,
                    version: 1,
                    source: guardian_service::domain::InvitationSource::Manual,
                    remind_time: None,
                    reminder_token_hash: None,
                    family_id: None,
                };
                existing.insert(inv.id.to_text());
                tx.insert_invitation(&inv).await.unwrap();
            }
        }
        tx.commit().await.unwrap();
    }
    assert_eq!(existing.len(), 1000);
    // Meanwhile, more invitations arrive for a student who still has room.
    set_settings(
        &app,
        DomainSettings {
            max_guardians_per_student: 20,
            ..Default::default()
        },
        &["max_guardians_per_student"],
    )
    .await;
    let writer = {
        let mut client = app.guardians();
        tokio::spawn(async move {
            for i in 0..40 {
                let _ = client
                    .create_guardian_invitation(create("p1", &format!("late{i}@example.org")))
                    .await;
            }
        })
    };
    let mut seen = Vec::new();
    let mut token = String::new();
    loop {
        let page = app
            .guardians_as(&admin(SCHOOL))
            .list_guardian_invitations(ListGuardianInvitationsRequest {
                student_id: "-".into(),
                page_size: 7,
                page_token: token.clone(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        assert!(page.invitations.len() <= 7);
        seen.extend(page.invitations.into_iter().map(|i| i.invitation_id));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    writer.await.unwrap();
    let unique: BTreeSet<_> = seen.iter().cloned().collect();
    assert_eq!(unique.len(), seen.len(), "an invitation was served twice");
    assert!(
        existing.is_subset(&unique),
        "an invitation that existed before paging was missed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_changed_who_can_manage_reaches_every_instance_within_a_second() {
    let clock = Arc::new(ManualClock::new(chrono::Utc::now()));
    let db = guardian_service::testing::TestDatabase::create().await;
    let mut a = spawn_unready_with_clock(test_config(&db.url), clock.clone()).await;
    let mut b = spawn_unready_with_clock(test_config(&db.url), clock.clone()).await;
    wait_for(
        &mut a,
        tonic_health::pb::health_check_response::ServingStatus::Serving,
    )
    .await;
    wait_for(
        &mut b,
        tonic_health::pb::health_check_response::ServingStatus::Serving,
    )
    .await;
    seed_school(&a, 2).await;
    let verified = teacher("t-verified", SCHOOL);
    // Instance B caches the settings while the teacher may manage.
    b.guardians_as(&verified)
        .create_guardian_invitation(create("s1", "before@example.org"))
        .await
        .unwrap();

    a.settings_as(&admin(SCHOOL))
        .update_domain_settings(UpdateDomainSettingsRequest {
            settings: Some(DomainSettings {
                domain: SCHOOL.into(),
                who_can_manage: WhoCanManage::DomainAdminsOnly as i32,
                ..Default::default()
            }),
            update_mask: Some(prost_types::FieldMask {
                paths: vec!["who_can_manage".into()],
            }),
            etag: String::new(),
        })
        .await
        .unwrap();
    clock.advance(TimeDelta::seconds(1));
    let err = b
        .guardians_as(&verified)
        .create_guardian_invitation(create("s2", "after@example.org"))
        .await
        .unwrap_err();
    assert_eq!(
        (err.code(), reason(&err).as_str()),
        (Code::PermissionDenied, "NOT_ALLOWED_TO_MANAGE")
    );
    // Administrators still may.
    b.guardians_as(&admin(SCHOOL))
        .create_guardian_invitation(create("s2", "after@example.org"))
        .await
        .unwrap();
    drop(db);
}

#[tokio::test]
async fn the_workflow_runs_on_the_embedded_sqlite_store_too() {
    let app = spawn_sqlite_app().await;
    seed_school(&app, 1).await;
    let inv = invite(&app, "s1", "lite@example.org").await;
    let err = app
        .guardians()
        .create_guardian_invitation(create("s1", "lite@example.org"))
        .await
        .unwrap_err();
    assert_eq!(reason(&err), "INVITATION_ALREADY_PENDING");
    let token = token_of(&app, &inv.invitation_id).await;
    let link = app
        .guardians_as(&guardian("g-1", "lite@example.org"))
        .accept_guardian_invitation(AcceptGuardianInvitationRequest {
            token,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .guardian
        .unwrap();
    assert_eq!(link.guardian_id, "g-1");
    let check = app
        .guardians()
        .check_guardianship(CheckGuardianshipRequest {
            student_id: "s1".into(),
            guardian: Some(check_guardianship_request::Guardian::GuardianId(
                "g-1".into(),
            )),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(check.linked);
}
