//! The invitation workflow over gRPC on Postgres: the lifecycle, every error reason it owns,
//! visibility, tokens, expiry by an injected clock, and the audit trail.

use crate::fixtures::{
    SCHOOL, accept_as, assert_status, invite, link, seed_school, set_settings, token_of,
};
use crate::helpers::{admin, guardian, spawn_app, spawn_app_with_clock, teacher};
use chrono::TimeDelta;
use guardian_service::domain::clock::ManualClock;
use guardian_service::proto::*;
use std::sync::Arc;
use tonic::Code;

fn accept(token: &str) -> AcceptGuardianInvitationRequest {
    AcceptGuardianInvitationRequest {
        token: token.into(),
        display_name: "Pat Parent".into(),
        ..Default::default()
    }
}

fn get_inv(student: &str, id: &str) -> GetGuardianInvitationRequest {
    GetGuardianInvitationRequest {
        student_id: student.into(),
        invitation_id: id.into(),
        ..Default::default()
    }
}

#[tokio::test]
async fn an_invitation_is_created_accepted_listed_checked_and_removed() {
    let app = spawn_app().await;
    seed_school(&app, 2).await;
    let inv = invite(&app, "s1", " Parent@Example.org ").await;
    assert_eq!(inv.state, InvitationState::Pending as i32);
    assert_eq!(inv.invited_email_address, "parent@example.org");
    assert_eq!(inv.delivery_status, DeliveryStatus::Queued as i32);
    assert_eq!(inv.inviter_id, "platform");
    let expire = inv.expire_time.unwrap().seconds - inv.create_time.unwrap().seconds;
    assert_eq!(expire, 120 * 86_400, "expires after the domain's 120 days");

    let token = token_of(&app, &inv.invitation_id).await;
    assert!(
        !format!("{inv:?}").contains(&token),
        "the token is never returned"
    );

    let parent = guardian("g-100", "parent@example.org");
    let link = app
        .guardians_as(&parent)
        .accept_guardian_invitation(accept(&token))
        .await
        .unwrap()
        .into_inner()
        .guardian
        .unwrap();
    assert_eq!(
        (link.student_id.as_str(), link.guardian_id.as_str()),
        ("s1", "g-100")
    );
    assert_eq!(
        link.guardian_profile.as_ref().unwrap().display_name,
        "Pat Parent"
    );
    assert_eq!(link.invited_email_address, "", "hidden from the guardian");

    let got = app
        .guardians()
        .get_guardian_invitation(get_inv("s1", &inv.invitation_id))
        .await
        .unwrap()
        .into_inner()
        .invitation
        .unwrap();
    assert_eq!(got.state, InvitationState::Accepted as i32);
    assert_eq!(got.guardian_id, "g-100");

    let listed = app
        .guardians()
        .list_guardians(ListGuardiansRequest {
            student_id: "s1".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.guardians.len(), 1);
    assert_eq!(
        listed.guardians[0].invited_email_address, "parent@example.org",
        "shown to services"
    );
    // The reverse lookup, as the guardian: "me".
    let mine = app
        .guardians_as(&parent)
        .list_guardians(ListGuardiansRequest {
            student_id: "-".into(),
            guardian_id: "me".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(mine.guardians.len(), 1);

    let check = |g: check_guardianship_request::Guardian| CheckGuardianshipRequest {
        student_id: "s1".into(),
        guardian: Some(g),
        ..Default::default()
    };
    let by_id = app
        .guardians()
        .check_guardianship(check(check_guardianship_request::Guardian::GuardianId(
            "g-100".into(),
        )))
        .await
        .unwrap()
        .into_inner();
    assert!(by_id.linked && by_id.guardian_access_enabled);
    let by_email = app
        .guardians()
        .check_guardianship(check(check_guardianship_request::Guardian::GuardianEmail(
            "PARENT@example.org".into(),
        )))
        .await
        .unwrap()
        .into_inner();
    assert!(by_email.linked);
    let stranger = app
        .guardians()
        .check_guardianship(check(check_guardianship_request::Guardian::GuardianId(
            "g-999".into(),
        )))
        .await
        .unwrap()
        .into_inner();
    assert!(!stranger.linked);

    // The guardian removes their own link.
    app.guardians_as(&parent)
        .delete_guardian(DeleteGuardianRequest {
            student_id: "s1".into(),
            guardian_id: "me".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    let after = app
        .guardians()
        .check_guardianship(check(check_guardianship_request::Guardian::GuardianId(
            "g-100".into(),
        )))
        .await
        .unwrap()
        .into_inner();
    assert!(!after.linked);

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
    let actions: Vec<&str> = events.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(
        actions,
        vec![
            "invitation.created",
            "invitation.accepted",
            "guardian.removed"
        ]
    );
    assert_eq!(events[2].actor_id, "g-100");
}

#[tokio::test]
async fn declining_cancelling_and_resending_follow_the_lifecycle() {
    let app = spawn_app().await;
    seed_school(&app, 1).await;
    let inv = invite(&app, "s1", "a@example.org").await;
    let old_token = token_of(&app, &inv.invitation_id).await;
    let resent = app
        .guardians()
        .resend_guardian_invitation(ResendGuardianInvitationRequest {
            student_id: "s1".into(),
            invitation_id: inv.invitation_id.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .invitation
        .unwrap();
    assert_ne!(resent.etag, inv.etag);
    let new_token = token_of(&app, &inv.invitation_id).await;
    assert_ne!(new_token, old_token);
    let parent = guardian("g-1", "a@example.org");
    assert_status(
        app.guardians_as(&parent)
            .accept_guardian_invitation(accept(&old_token))
            .await,
        Code::NotFound,
        "INVITATION_NOT_FOUND",
    );

    let declined = app
        .guardians_as(&parent)
        .decline_guardian_invitation(DeclineGuardianInvitationRequest {
            token: new_token.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .invitation
        .unwrap();
    assert_eq!(
        (declined.state, declined.removal_reason),
        (
            InvitationState::Removed as i32,
            RemovalReason::Declined as i32
        )
    );
    // Single use: the token no longer works.
    assert_status(
        app.guardians_as(&parent)
            .accept_guardian_invitation(accept(&new_token))
            .await,
        Code::FailedPrecondition,
        "INVITATION_NOT_PENDING",
    );

    let second = invite(&app, "s1", "a@example.org").await;
    let cancel = CancelGuardianInvitationRequest {
        student_id: "s1".into(),
        invitation_id: second.invitation_id.clone(),
        etag: "\"999\"".into(),
        ..Default::default()
    };
    assert_status(
        app.guardians()
            .cancel_guardian_invitation(cancel.clone())
            .await,
        Code::Aborted,
        "ETAG_MISMATCH",
    );
    let cancel = CancelGuardianInvitationRequest {
        etag: second.etag.clone(),
        ..cancel
    };
    let cancelled = app
        .guardians()
        .cancel_guardian_invitation(cancel.clone())
        .await
        .unwrap()
        .into_inner()
        .invitation
        .unwrap();
    assert_eq!(cancelled.removal_reason, RemovalReason::Cancelled as i32);
    let again = CancelGuardianInvitationRequest {
        etag: String::new(),
        ..cancel
    };
    assert_status(
        app.guardians().cancel_guardian_invitation(again).await,
        Code::FailedPrecondition,
        "INVITATION_NOT_PENDING",
    );
}

#[tokio::test]
async fn bad_requests_get_the_contract_reasons_and_write_nothing() {
    let app = spawn_app().await;
    seed_school(&app, 1).await;
    let long = format!("{}@x.org", "a".repeat(250));
    // (student_id, invited address, request_id, code, reason)
    let cases: [(&str, &str, &str, Code, &str); 7] = [
        (
            "s1",
            "not an email",
            "",
            Code::InvalidArgument,
            "INVALID_EMAIL",
        ),
        ("s1", &long, "", Code::InvalidArgument, "INVALID_EMAIL"),
        (
            "",
            "a@example.org",
            "",
            Code::InvalidArgument,
            "INVALID_STUDENT_ID",
        ),
        (
            "-",
            "a@example.org",
            "",
            Code::InvalidArgument,
            "INVALID_STUDENT_ID",
        ),
        (
            "s1",
            "S1@School.Example",
            "",
            Code::InvalidArgument,
            "GUARDIAN_EMAIL_IS_STUDENT",
        ),
        (
            "nobody",
            "a@example.org",
            "",
            Code::NotFound,
            "STUDENT_NOT_FOUND",
        ),
        (
            "s1",
            "a@example.org",
            "not-a-uuid",
            Code::InvalidArgument,
            "INVALID_ARGUMENT",
        ),
    ];
    for (student, email, request_id, code, reason) in cases {
        let request = CreateGuardianInvitationRequest {
            student_id: student.into(),
            invited_email_address: email.into(),
            request_id: request_id.into(),
            student_ids: Vec::new(),
        };
        let result = app.guardians().create_guardian_invitation(request).await;
        let err = result.expect_err(reason);
        assert_eq!(
            (err.code(), crate::helpers::reason(&err).as_str()),
            (code, reason),
            "{student:?} {email:?} {request_id:?}: {err:?}"
        );
    }
    assert_status(
        app.guardians()
            .get_guardian_invitation(get_inv("s1", "nope"))
            .await,
        Code::InvalidArgument,
        "INVALID_ARGUMENT",
    );
    assert_status(
        app.guardians()
            .get_guardian_invitation(get_inv("s1", &uuid::Uuid::now_v7().to_string()))
            .await,
        Code::NotFound,
        "INVITATION_NOT_FOUND",
    );
    assert_status(
        app.guardians()
            .delete_guardian(DeleteGuardianRequest {
                student_id: "s1".into(),
                guardian_id: "g-9".into(),
                ..Default::default()
            })
            .await,
        Code::NotFound,
        "GUARDIAN_NOT_FOUND",
    );
    app.guardians()
        .delete_guardian(DeleteGuardianRequest {
            student_id: "s1".into(),
            guardian_id: "g-9".into(),
            allow_missing: true,
            ..Default::default()
        })
        .await
        .expect("allow_missing");
    let list = ListGuardianInvitationsRequest {
        student_id: "s1".into(),
        page_token: "bogus".into(),
        ..Default::default()
    };
    assert_status(
        app.guardians().list_guardian_invitations(list).await,
        Code::InvalidArgument,
        "INVALID_PAGE_TOKEN",
    );
    let list = ListGuardianInvitationsRequest {
        student_id: "s1".into(),
        page_size: -1,
        ..Default::default()
    };
    assert_status(
        app.guardians().list_guardian_invitations(list).await,
        Code::InvalidArgument,
        "INVALID_ARGUMENT",
    );
    let all = ListGuardianInvitationsRequest {
        student_id: "s1".into(),
        states: vec![1, 2, 3, 4],
        ..Default::default()
    };
    assert!(
        app.guardians()
            .list_guardian_invitations(all)
            .await
            .unwrap()
            .into_inner()
            .invitations
            .is_empty(),
        "nothing was written"
    );
}

#[tokio::test]
async fn duplicates_links_and_declines_are_refused() {
    let app = spawn_app().await;
    seed_school(&app, 2).await;
    let first = invite(&app, "s1", "dup@example.org").await;
    let create = CreateGuardianInvitationRequest {
        student_id: "s1".into(),
        invited_email_address: "DUP@example.org".into(),
        request_id: String::new(),
        student_ids: Vec::new(),
    };
    assert_status(
        app.guardians()
            .create_guardian_invitation(create.clone())
            .await,
        Code::AlreadyExists,
        "INVITATION_ALREADY_PENDING",
    );
    accept_as(&app, &first, "g-1", "dup@example.org").await;
    assert_status(
        app.guardians().create_guardian_invitation(create).await,
        Code::AlreadyExists,
        "GUARDIAN_ALREADY_LINKED",
    );

    for _ in 0..3 {
        let inv = invite(&app, "s2", "no@example.org").await;
        let token = token_of(&app, &inv.invitation_id).await;
        app.guardians_as(&guardian("g-2", "no@example.org"))
            .decline_guardian_invitation(DeclineGuardianInvitationRequest {
                token,
                ..Default::default()
            })
            .await
            .unwrap();
    }
    let create = CreateGuardianInvitationRequest {
        student_id: "s2".into(),
        invited_email_address: "no@example.org".into(),
        request_id: String::new(),
        student_ids: Vec::new(),
    };
    assert_status(
        app.guardians().create_guardian_invitation(create).await,
        Code::FailedPrecondition,
        "TOO_MANY_DECLINES",
    );
}

#[tokio::test]
async fn limits_are_enforced_with_limit_and_current_in_the_error() {
    let app = spawn_app().await;
    seed_school(&app, 3).await;
    set_settings(
        &app,
        DomainSettings {
            max_guardians_per_student: 2,
            max_students_per_guardian: 2,
            ..Default::default()
        },
        &["max_guardians_per_student", "max_students_per_guardian"],
    )
    .await;
    invite(&app, "s1", "one@example.org").await;
    invite(&app, "s1", "two@example.org").await;
    let create = |s: &str, e: &str| CreateGuardianInvitationRequest {
        student_id: s.into(),
        invited_email_address: e.into(),
        request_id: String::new(),
        student_ids: Vec::new(),
    };
    let err = assert_status(
        app.guardians()
            .create_guardian_invitation(create("s1", "three@example.org"))
            .await,
        Code::ResourceExhausted,
        "STUDENT_GUARDIAN_LIMIT_REACHED",
    );
    use tonic_types::StatusExt;
    let info = err.get_details_error_info().unwrap();
    assert_eq!(
        (
            info.metadata["limit"].as_str(),
            info.metadata["current"].as_str()
        ),
        ("2", "2")
    );

    invite(&app, "s2", "one@example.org").await;
    assert_status(
        app.guardians()
            .create_guardian_invitation(create("s3", "one@example.org"))
            .await,
        Code::ResourceExhausted,
        "GUARDIAN_STUDENT_LIMIT_REACHED",
    );
}

#[tokio::test]
async fn guardian_access_off_blocks_invitations_and_acceptance_but_keeps_links() {
    let clock = Arc::new(ManualClock::new(chrono::Utc::now()));
    let app = spawn_app_with_clock(clock.clone()).await;
    seed_school(&app, 2).await;
    link(&app, "s1", "kept@example.org", "g-1", "kept@example.org").await;
    let waiting = invite(&app, "s2", "waiting@example.org").await;
    let waiting_token = token_of(&app, &waiting.invitation_id).await;

    set_settings(
        &app,
        DomainSettings {
            guardian_access_enabled: false,
            ..Default::default()
        },
        &["guardian_access_enabled"],
    )
    .await;
    // Replicas may serve cached settings for up to a second.
    clock.advance(TimeDelta::seconds(1));
    let create = CreateGuardianInvitationRequest {
        student_id: "s2".into(),
        invited_email_address: "new@example.org".into(),
        request_id: String::new(),
        student_ids: Vec::new(),
    };
    assert_status(
        app.guardians().create_guardian_invitation(create).await,
        Code::FailedPrecondition,
        "GUARDIAN_ACCESS_DISABLED",
    );
    assert_status(
        app.guardians_as(&guardian("g-2", "waiting@example.org"))
            .accept_guardian_invitation(accept(&waiting_token))
            .await,
        Code::FailedPrecondition,
        "GUARDIAN_ACCESS_DISABLED",
    );
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
    assert!(
        check.linked && !check.guardian_access_enabled,
        "links are kept, access reported off"
    );
}

#[tokio::test]
async fn an_expired_invitation_is_never_shown_or_accepted_as_pending() {
    let clock = Arc::new(ManualClock::new(chrono::Utc::now()));
    let app = spawn_app_with_clock(clock.clone()).await;
    seed_school(&app, 1).await;
    let inv = invite(&app, "s1", "late@example.org").await;
    let token = token_of(&app, &inv.invitation_id).await;
    clock.advance(TimeDelta::days(120));
    let got = app
        .guardians()
        .get_guardian_invitation(get_inv("s1", &inv.invitation_id))
        .await
        .unwrap()
        .into_inner()
        .invitation
        .unwrap();
    assert_eq!(got.state, InvitationState::Expired as i32);
    let pending = app
        .guardians()
        .list_guardian_invitations(ListGuardianInvitationsRequest {
            student_id: "s1".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(pending.invitations.is_empty(), "not listed as pending");
    let expired = ListGuardianInvitationsRequest {
        student_id: "s1".into(),
        states: vec![InvitationState::Expired as i32],
        ..Default::default()
    };
    assert_eq!(
        app.guardians()
            .list_guardian_invitations(expired)
            .await
            .unwrap()
            .into_inner()
            .invitations
            .len(),
        1
    );
    assert_status(
        app.guardians_as(&guardian("g-1", "late@example.org"))
            .accept_guardian_invitation(accept(&token))
            .await,
        Code::FailedPrecondition,
        "INVITATION_EXPIRED",
    );
    // The address may be invited again at once: the stale row is settled first.
    let again = invite(&app, "s1", "late@example.org").await;
    assert_eq!(again.state, InvitationState::Pending as i32);
}

#[tokio::test]
async fn the_upkeep_expires_due_invitations_once_with_an_event() {
    let clock = Arc::new(ManualClock::new(chrono::Utc::now()));
    let app = spawn_app_with_clock(clock.clone()).await;
    seed_school(&app, 3).await;
    for s in ["s1", "s2", "s3"] {
        invite(&app, s, "sweep@example.org").await;
    }
    clock.advance(TimeDelta::days(121));
    let store = guardian_service::store::connect(&app.db.as_ref().unwrap().options(4))
        .await
        .unwrap();
    let upkeep = guardian_service::app::App::new(store, clock.clone(), Default::default());
    let (a, b) = tokio::join!(upkeep.run_upkeep(2), upkeep.run_upkeep(2));
    assert_eq!(
        a.unwrap().expired + b.unwrap().expired,
        3,
        "each invitation expired exactly once"
    );
    assert_eq!(upkeep.run_upkeep(2).await.unwrap().expired, 0);
    let events = app
        .guardians_as(&admin(SCHOOL))
        .list_guardian_events(ListGuardianEventsRequest {
            domain: SCHOOL.into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .events;
    assert_eq!(
        events
            .iter()
            .filter(|e| e.action == "invitation.expired")
            .count(),
        3
    );
}

#[tokio::test]
async fn deleting_a_student_removes_their_invitations_and_links() {
    let app = spawn_app().await;
    seed_school(&app, 1).await;
    let linked = link(&app, "s1", "x@example.org", "g-1", "x@example.org").await;
    let waiting = invite(&app, "s1", "y@example.org").await;
    let store = guardian_service::store::connect(&app.db.as_ref().unwrap().options(2))
        .await
        .unwrap();
    app.directory()
        .delete_users(DeleteUsersRequest {
            user_ids: vec!["s1".into()],
        })
        .await
        .unwrap();
    let mut session = store.session().await.unwrap();
    for id in [&linked.invitation_id, &waiting.invitation_id] {
        let inv = session
            .get_invitation(guardian_service::domain::InvitationId::parse(id).unwrap())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            inv.state,
            guardian_service::domain::InvitationState::Removed(
                guardian_service::domain::RemovalReason::StudentRemoved
            )
        );
    }
}

#[tokio::test]
async fn invited_addresses_are_shown_only_to_those_who_may_manage() {
    let app = spawn_app().await;
    seed_school(&app, 1).await;
    let inv = invite(&app, "s1", "private@example.org").await;
    let as_verified = app
        .guardians_as(&teacher("t-verified", SCHOOL))
        .get_guardian_invitation(get_inv("s1", &inv.invitation_id))
        .await
        .unwrap()
        .into_inner()
        .invitation
        .unwrap();
    assert_eq!(as_verified.invited_email_address, "private@example.org");
    let as_unverified = app
        .guardians_as(&teacher("t-unverified", SCHOOL))
        .get_guardian_invitation(get_inv("s1", &inv.invitation_id))
        .await
        .unwrap()
        .into_inner()
        .invitation
        .unwrap();
    assert_eq!(
        as_unverified.invited_email_address, "",
        "reads, but may not manage"
    );
    let as_student = app
        .guardians_as(&crate::helpers::student("s1", SCHOOL))
        .get_guardian_invitation(get_inv("me", &inv.invitation_id))
        .await
        .unwrap()
        .into_inner()
        .invitation
        .unwrap();
    assert_eq!(as_student.invited_email_address, "");
}
