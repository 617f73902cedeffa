//! Defects found by probing the service as an attacker and as a careless client would; each
//! test here reproduces one and would fail without its fix.

use crate::fixtures::{SCHOOL, allowlist, assert_status, seed_school};
use crate::helpers::{admin, service, spawn_app, spawn_app_with_clock, teacher};
use guardian_service::domain::clock::ManualClock;
use guardian_service::proto::*;
use tonic::Code;

const VICTIM: &str = "victim.example";

fn victim_student() -> User {
    User {
        user_id: "v1".into(),
        domain: VICTIM.into(),
        email: format!("v1@{VICTIM}"),
        role: UserRole::Student as i32,
        display_name: "Victim".into(),
        ..Default::default()
    }
}

fn trap_course() -> UpsertCourseRequest {
    UpsertCourseRequest {
        course: Some(Course {
            course_id: "trap".into(),
            domain: SCHOOL.into(),
            teacher_ids: vec!["t-verified".into()],
            student_ids: vec!["v1".into()],
        }),
    }
}

fn check(student: &str, email: &str) -> CheckGuardianshipRequest {
    CheckGuardianshipRequest {
        student_id: student.into(),
        guardian: Some(check_guardianship_request::Guardian::GuardianEmail(
            email.into(),
        )),
        ..Default::default()
    }
}

/// The attack as reported: SCHOOL lists VICTIM, VICTIM never listed SCHOOL. SCHOOL's admin
/// enrols VICTIM's student in a SCHOOL course, and SCHOOL's verified teacher invites an
/// attacker's address for that student.
#[tokio::test]
async fn a_one_sided_allowlist_gives_no_rights_over_another_domains_students() {
    let app = spawn_app().await;
    seed_school(&app, 1).await;
    allowlist(&app, SCHOOL, &[VICTIM]).await;
    app.directory()
        .upsert_users(UpsertUsersRequest {
            users: vec![victim_student()],
        })
        .await
        .expect("victim");

    // SCHOOL's directory writers cannot enrol the victim: neither its admin, nor its SIS.
    let refused = app
        .directory_as(&admin(SCHOOL))
        .upsert_course(trap_course())
        .await;
    assert_status(refused, Code::PermissionDenied, "NOT_ALLOWED_TO_MANAGE");
    let sis = service("sis", SCHOOL, &["directory.write"]);
    let refused = app.directory_as(&sis).upsert_course(trap_course()).await;
    assert_status(refused, Code::PermissionDenied, "NOT_ALLOWED_TO_MANAGE");

    // With VICTIM's consent the enrolment works; once VICTIM withdraws it, SCHOOL's teachers
    // can neither invite for, nor read, the student they still "teach".
    allowlist(&app, VICTIM, &[SCHOOL]).await;
    app.directory_as(&admin(SCHOOL))
        .upsert_course(trap_course())
        .await
        .expect("enrolment with consent on both sides");
    allowlist(&app, VICTIM, &[]).await;
    let t = teacher("t-verified", SCHOOL);
    let attack = app
        .guardians_as(&t)
        .create_guardian_invitation(CreateGuardianInvitationRequest {
            student_id: "v1".into(),
            invited_email_address: "attacker@evil.example".into(),
            request_id: String::new(),
            student_ids: Vec::new(),
        })
        .await;
    assert_status(attack, Code::PermissionDenied, "NOT_ALLOWED_TO_MANAGE");
    let read = app
        .guardians_as(&t)
        .list_guardian_invitations(ListGuardianInvitationsRequest {
            student_id: "v1".into(),
            ..Default::default()
        })
        .await;
    assert_status(read, Code::PermissionDenied, "NOT_ALLOWED_TO_MANAGE");
    let linked = app
        .guardians()
        .check_guardianship(check("v1", "attacker@evil.example"))
        .await
        .expect("check")
        .into_inner()
        .linked;
    assert!(!linked, "nothing was linked");
    let pending = app
        .guardians()
        .list_guardian_invitations(ListGuardianInvitationsRequest {
            student_id: "v1".into(),
            ..Default::default()
        })
        .await
        .expect("list")
        .into_inner()
        .invitations;
    assert!(pending.is_empty(), "nothing was invited: {pending:?}");

    // Mutual consent restores the teacher's rights.
    allowlist(&app, VICTIM, &[SCHOOL]).await;
    app.guardians_as(&t)
        .create_guardian_invitation(CreateGuardianInvitationRequest {
            student_id: "v1".into(),
            invited_email_address: "parent@home.example".into(),
            request_id: String::new(),
            student_ids: Vec::new(),
        })
        .await
        .expect("a teacher of a mutual partner may invite");
}

/// Two tenants whose tokens share `sub` and role: the second reuses the first's request id
/// (guardianctl derives them from the file, so they are predictable) and must not get the
/// first tenant's invitation back.
#[tokio::test]
async fn a_request_id_of_another_tenant_replays_nothing() {
    let app = spawn_app().await;
    seed_school(&app, 1).await;
    let request_id = uuid::Uuid::new_v4().to_string();
    let ours = service("sis", SCHOOL, &["guardians.write", "guardians.read"]);
    let theirs = service(
        "sis",
        "other.example",
        &["guardians.write", "guardians.read"],
    );
    let request = CreateGuardianInvitationRequest {
        student_id: "s1".into(),
        invited_email_address: "secret.parent@home.example".into(),
        request_id: request_id.clone(),
        student_ids: Vec::new(),
    };
    let first = app
        .guardians_as(&ours)
        .create_guardian_invitation(request.clone())
        .await
        .expect("first")
        .into_inner();
    // Same sub, role, request id and request: another tenant is refused as for any other
    // call on a student it may not see, and learns nothing.
    let replay = app
        .guardians_as(&theirs)
        .create_guardian_invitation(request.clone())
        .await;
    let err = assert_status(replay, Code::NotFound, "STUDENT_NOT_FOUND");
    assert!(!format!("{err:?}").contains("secret.parent"));
    // The owner still gets its replay.
    let again = app
        .guardians_as(&ours)
        .create_guardian_invitation(request)
        .await
        .expect("replay")
        .into_inner();
    // The same first response; only the consistency token is taken anew for each answer.
    assert_eq!(again.invitation, first.invitation);
}

/// A request id is scoped to the caller's domain even when the other tenant's call would be
/// allowed: the same id in another domain is a new request, not a replay.
#[tokio::test]
async fn the_same_request_id_in_two_domains_makes_two_invitations() {
    let app = spawn_app().await;
    seed_school(&app, 1).await;
    let request_id = uuid::Uuid::new_v4().to_string();
    let a = service("sis", SCHOOL, &["guardians.write"]);
    let b = service("sis", "other.example", &["guardians.write"]);
    let made = |token: String, student: &'static str| {
        let app = &app;
        let request_id = request_id.clone();
        async move {
            app.guardians_as(&token)
                .create_guardian_invitation(CreateGuardianInvitationRequest {
                    student_id: student.into(),
                    invited_email_address: "parent@home.example".into(),
                    request_id,
                    student_ids: Vec::new(),
                })
                .await
                .expect("invite")
                .into_inner()
                .invitation
                .expect("invitation")
        }
    };
    let first = made(a, "s1").await;
    let second = made(b, "o1").await;
    assert_ne!(first.invitation_id, second.invitation_id);
    assert_eq!(second.student_id, "o1");
}

/// R15: a bulk call whose deadline is shorter than its work stops starting rows in time and
/// answers for every row: each OK row is applied, each ROW_NOT_ATTEMPTED row is not, and no
/// row is left without an answer. The first chunk is held on the lock of its student while the
/// service's clock is moved past the cut-off (the deadline less the second kept for answering),
/// so the outcome depends on neither the machine's speed nor waiting: the first chunk is
/// answered, the rest is not attempted. The first chunk's 500 rows repeat one invitation (one
/// row applied, 499 refused as pending).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bulk_call_that_outlives_its_deadline_reports_every_row_truthfully() {
    let clock = std::sync::Arc::new(ManualClock::new(chrono::Utc::now()));
    let app = spawn_app_with_clock(clock.clone()).await;
    seed_school(&app, 1).await;
    let students: Vec<User> = (0..500)
        .map(|n| User {
            user_id: format!("b{n}"),
            domain: SCHOOL.into(),
            email: format!("b{n}@{SCHOOL}"),
            role: UserRole::Student as i32,
            ..Default::default()
        })
        .collect();
    app.directory()
        .upsert_users(UpsertUsersRequest { users: students })
        .await
        .expect("students");
    let rows: Vec<BulkCreateGuardianInvitationsRow> = (0..1_000)
        .map(|i| BulkCreateGuardianInvitationsRow {
            student_id: if i < 500 {
                "b0".into()
            } else {
                format!("b{}", i % 500)
            },
            invited_email_address: if i < 500 {
                "same@families.example".into()
            } else {
                format!("g{i}@families.example")
            },
        })
        .collect();
    let pool = sqlx::PgPool::connect(&app.database_url).await.unwrap();
    let mut blocker = pool.begin().await.unwrap();
    sqlx::query("SELECT 1 FROM users WHERE user_id = 'b0' FOR UPDATE")
        .execute(&mut *blocker)
        .await
        .unwrap();
    let mut request = tonic::Request::new(BulkCreateGuardianInvitationsRequest {
        rows,
        dry_run: false,
        request_id: uuid::Uuid::new_v4().to_string(),
    });
    // The server stops starting chunks one second before this deadline, by its own clock.
    let deadline = std::time::Duration::from_secs(60);
    request.set_timeout(deadline);
    let mut client = app.guardians();
    let call = tokio::spawn(async move { client.bulk_create_guardian_invitations(request).await });
    // Once the first chunk waits for the lock, the call has started; then its clock passes the
    // deadline and the lock is released.
    loop {
        let waiting: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM pg_stat_activity WHERE datname = current_database() \
             AND wait_event_type = 'Lock'",
        )
        .fetch_one(&pool)
        .await
        .unwrap();
        if waiting > 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    clock.advance(chrono::TimeDelta::from_std(deadline).unwrap());
    blocker.commit().await.unwrap();
    let results = call
        .await
        .unwrap()
        .expect("an answer within the deadline, not DEADLINE_EXCEEDED")
        .into_inner()
        .results;
    assert_eq!(results.len(), 1_000, "an answer for every row");
    let ok = results.iter().filter(|r| r.code == 0).count() as i64;
    let not_attempted = results
        .iter()
        .filter(|r| r.reason == "ROW_NOT_ATTEMPTED")
        .count() as i64;
    let pending = results
        .iter()
        .filter(|r| r.reason == "INVITATION_ALREADY_PENDING")
        .count();
    assert_eq!(ok, 1, "the first chunk, which had started, is applied");
    assert_eq!(pending, 499, "and its repeats are refused");
    assert_eq!(not_attempted, 500, "no chunk is started after the cut-off");
    let applied: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM invitations")
        .fetch_one(&pool)
        .await
        .unwrap();
    pool.close().await;
    assert_eq!(applied, ok, "exactly the rows reported OK are applied");
}

#[tokio::test]
async fn sync_and_delete_users_refuse_runaway_lists() {
    let app = spawn_app().await;
    seed_school(&app, 1).await;
    let sync = app
        .guardians()
        .sync_guardians(SyncGuardiansRequest {
            student_id: "s1".into(),
            guardian_email_addresses: (0..101).map(|i| format!("g{i}@home.example")).collect(),
            ..Default::default()
        })
        .await;
    assert_status(sync, Code::InvalidArgument, "INVALID_ARGUMENT");
    let delete = app
        .directory()
        .delete_users(DeleteUsersRequest {
            user_ids: (0..1001).map(|i| format!("u{i}")).collect(),
        })
        .await;
    assert_status(delete, Code::InvalidArgument, "INVALID_ARGUMENT");
}

#[tokio::test]
async fn control_characters_in_display_names_are_invalid_arguments() {
    let app = spawn_app().await;
    for name in ["Emma\0", "Emma\nBcc: x@evil.example", "\u{7}bell"] {
        let refused = app
            .directory()
            .upsert_users(UpsertUsersRequest {
                users: vec![User {
                    user_id: "n1".into(),
                    domain: SCHOOL.into(),
                    email: format!("n1@{SCHOOL}"),
                    role: UserRole::Student as i32,
                    display_name: name.into(),
                    ..Default::default()
                }],
            })
            .await;
        let err = assert_status(refused, Code::InvalidArgument, "INVALID_ARGUMENT");
        let details = tonic_types::StatusExt::get_error_details(&err);
        let fields: Vec<&str> = details
            .bad_request()
            .expect("field violations")
            .field_violations
            .iter()
            .map(|v| v.field.as_str())
            .collect();
        assert_eq!(fields, ["users[0].display_name"], "{name:?}");
    }
}

#[tokio::test]
async fn an_edited_page_token_is_invalid() {
    let app = spawn_app().await;
    seed_school(&app, 3).await;
    let page = app
        .directory()
        .list_users(ListUsersRequest {
            domain: SCHOOL.into(),
            page_size: 2,
            ..Default::default()
        })
        .await
        .expect("first page")
        .into_inner();
    let token = page.next_page_token;
    assert!(!token.is_empty());
    // Point the position at another user, keeping the signature.
    let (_, tag) = token.split_once('.').expect("position.signature");
    use base64::Engine;
    let forged = format!(
        "{}.{tag}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode("a")
    );
    let refused = app
        .directory()
        .list_users(ListUsersRequest {
            domain: SCHOOL.into(),
            page_size: 2,
            page_token: forged,
            ..Default::default()
        })
        .await;
    assert_status(refused, Code::InvalidArgument, "INVALID_PAGE_TOKEN");
    // The genuine token still works.
    app.directory()
        .list_users(ListUsersRequest {
            domain: SCHOOL.into(),
            page_size: 2,
            page_token: token,
            ..Default::default()
        })
        .await
        .expect("second page");
}
