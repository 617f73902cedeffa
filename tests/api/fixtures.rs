//! A school to test the workflow in: a domain with an admin, a verified and an unverified
//! teacher, students and a course, plus a partner domain; and helpers to read what only email
//! would reveal (the accept token).

use crate::helpers::{TestApp, reason};
use guardian_service::proto::{
    AcceptGuardianInvitationRequest, Course, CreateGuardianInvitationRequest, DomainSettings,
    GuardianInvitation, UpdateDomainSettingsRequest, UpsertCourseRequest, UpsertUsersRequest, User,
    UserRole,
};
use tonic::Code;

pub(crate) const SCHOOL: &str = "school.example";
pub(crate) const PARTNER: &str = "partner.example";
pub(crate) const OTHER: &str = "other.example";
/// A domain that once consented to SCHOOL's courses; the matrix withdraws that consent.
pub(crate) const LONE: &str = "lone.example";

fn person(id: &str, domain: &str, role: UserRole, verified: bool) -> User {
    User {
        user_id: id.into(),
        domain: domain.into(),
        email: format!("{id}@{domain}"),
        role: role as i32,
        verified_teacher: verified,
        display_name: format!("Name of {id}"),
        locale: String::new(),
    }
}

/// Seeds: in SCHOOL teachers `t-verified` and `t-unverified`, students `s1`..`s{n}`, course
/// `math` taught by both teachers to every student; in PARTNER student `p1` and in LONE
/// student `q1`, both enrolled in `math` (SCHOOL, PARTNER and LONE allowlist each other, as
/// enrolment across domains needs); in OTHER student `o1` and teacher `o-teacher` teaching `o1`.
pub(crate) async fn seed_school(app: &TestApp, students: usize) {
    allowlist(app, SCHOOL, &[PARTNER, LONE]).await;
    allowlist(app, PARTNER, &[SCHOOL]).await;
    allowlist(app, LONE, &[SCHOOL]).await;
    let mut users = vec![
        person("t-verified", SCHOOL, UserRole::Teacher, true),
        person("t-unverified", SCHOOL, UserRole::Teacher, false),
        person("a1", SCHOOL, UserRole::Admin, false),
        person("p1", PARTNER, UserRole::Student, false),
        person("q1", LONE, UserRole::Student, false),
        person("o1", OTHER, UserRole::Student, false),
        person("o-teacher", OTHER, UserRole::Teacher, true),
    ];
    let ids: Vec<String> = (1..=students).map(|i| format!("s{i}")).collect();
    users.extend(
        ids.iter()
            .map(|id| person(id, SCHOOL, UserRole::Student, false)),
    );
    app.directory()
        .upsert_users(UpsertUsersRequest { users })
        .await
        .expect("seed users");
    let mut student_ids = ids;
    student_ids.extend(["p1".into(), "q1".into()]);
    let math = Course {
        course_id: "math".into(),
        domain: SCHOOL.into(),
        teacher_ids: vec!["t-verified".into(), "t-unverified".into()],
        student_ids,
    };
    app.directory()
        .upsert_course(UpsertCourseRequest { course: Some(math) })
        .await
        .expect("seed course");
    let other = Course {
        course_id: "other-math".into(),
        domain: OTHER.into(),
        teacher_ids: vec!["o-teacher".into()],
        student_ids: vec!["o1".into()],
    };
    app.directory()
        .upsert_course(UpsertCourseRequest {
            course: Some(other),
        })
        .await
        .expect("seed course");
}

/// Sets the allowlist of `domain`.
pub(crate) async fn allowlist(app: &TestApp, domain: &str, partners: &[&str]) {
    app.settings()
        .update_domain_settings(UpdateDomainSettingsRequest {
            settings: Some(DomainSettings {
                domain: domain.into(),
                allowlisted_domains: partners.iter().map(|p| p.to_string()).collect(),
                ..Default::default()
            }),
            update_mask: Some(prost_types::FieldMask {
                paths: vec!["allowlisted_domains".into()],
            }),
            etag: String::new(),
        })
        .await
        .expect("allowlist");
}

/// Invites `email` for `student` as the platform service.
pub(crate) async fn invite(app: &TestApp, student: &str, email: &str) -> GuardianInvitation {
    app.guardians()
        .create_guardian_invitation(CreateGuardianInvitationRequest {
            student_id: student.into(),
            invited_email_address: email.into(),
            request_id: String::new(),
            student_ids: Vec::new(),
        })
        .await
        .unwrap_or_else(|e| panic!("invite {student}: {e:?}"))
        .into_inner()
        .invitation
        .expect("invitation")
}

/// Accepts `invitation` with the token from its email, as guardian `guardian_id` whose own
/// address is `email`.
pub(crate) async fn accept_as(
    app: &TestApp,
    invitation: &GuardianInvitation,
    guardian_id: &str,
    email: &str,
) {
    let token = token_of(app, &invitation.invitation_id).await;
    app.guardians_as(&crate::helpers::guardian(guardian_id, email))
        .accept_guardian_invitation(AcceptGuardianInvitationRequest {
            token,
            ..Default::default()
        })
        .await
        .unwrap_or_else(|e| panic!("accept as {guardian_id}: {e:?}"));
}

/// Invites `invited` for `student` and accepts it as `guardian_id` with address `email`: a link.
pub(crate) async fn link(
    app: &TestApp,
    student: &str,
    invited: &str,
    guardian_id: &str,
    email: &str,
) -> GuardianInvitation {
    let invitation = invite(app, student, invited).await;
    accept_as(app, &invitation, guardian_id, email).await;
    invitation
}

/// Changes the SCHOOL settings named by `paths` to the values in `settings`.
pub(crate) async fn set_settings(app: &TestApp, settings: DomainSettings, paths: &[&str]) {
    app.settings()
        .update_domain_settings(UpdateDomainSettingsRequest {
            settings: Some(DomainSettings {
                domain: SCHOOL.into(),
                ..settings
            }),
            update_mask: Some(prost_types::FieldMask {
                paths: paths.iter().map(|p| p.to_string()).collect(),
            }),
            etag: String::new(),
        })
        .await
        .expect("settings");
}

/// The accept token of an invitation, read from its newest queued email that carries one (a
/// cancellation notice does not), as the invitee would.
pub(crate) async fn token_of(app: &TestApp, invitation_id: &str) -> String {
    const NEWEST_INVITATION: &str = "SELECT body_text FROM outbox WHERE invitation_id = $1 \
         AND body_text LIKE '%/accept?token=%' ORDER BY create_time DESC, message_id DESC LIMIT 1";
    let url = &app.database_url;
    let body: String = if url.starts_with("sqlite:") {
        let pool = sqlx::SqlitePool::connect(url).await.expect("connect");
        let body = sqlx::query_scalar(NEWEST_INVITATION)
            .bind(invitation_id)
            .fetch_one(&pool)
            .await;
        pool.close().await;
        body.expect("an invitation email")
    } else {
        let pool = sqlx::PgPool::connect(url).await.expect("connect");
        let body = sqlx::query_scalar(NEWEST_INVITATION)
            .bind(invitation_id)
            .fetch_one(&pool)
            .await;
        pool.close().await;
        body.expect("an invitation email")
    };
    let start = body.find("/accept?token=").expect("accept link") + "/accept?token=".len();
    body[start..].split_whitespace().next().unwrap().to_owned()
}

/// Asserts a status's code and ErrorInfo reason.
pub(crate) fn assert_status(
    result: Result<impl std::fmt::Debug, tonic::Status>,
    code: Code,
    why: &str,
) -> tonic::Status {
    let err = result.expect_err(why);
    assert_eq!((err.code(), reason(&err).as_str()), (code, why), "{err:?}");
    err
}

/// Subjects of the messages queued to `recipient` (Postgres), oldest first.
pub(crate) async fn subjects_to(app: &TestApp, recipient: &str) -> Vec<String> {
    let pool = sqlx::PgPool::connect(&app.database_url).await.unwrap();
    let subjects = sqlx::query_scalar(
        "SELECT subject FROM outbox WHERE recipient = $1 ORDER BY create_time, message_id",
    )
    .bind(recipient)
    .fetch_all(&pool)
    .await
    .unwrap();
    pool.close().await;
    subjects
}

/// SCHOOL's audit events, oldest first (up to 1,000).
pub(crate) async fn school_events(app: &TestApp) -> Vec<guardian_service::proto::GuardianEvent> {
    app.guardians_as(&crate::helpers::admin(SCHOOL))
        .list_guardian_events(guardian_service::proto::ListGuardianEventsRequest {
            domain: SCHOOL.into(),
            page_size: 1000,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .events
}

/// The ids of the invitations named by SCHOOL's audit events of `action`, oldest first.
pub(crate) async fn invitations_with_event(app: &TestApp, action: &str) -> Vec<String> {
    school_events(app)
        .await
        .into_iter()
        .filter(|e| e.action == action)
        .map(|e| e.invitation_id)
        .collect()
}

/// Every invitation of a SCHOOL student in any state, as its administrator lists them.
pub(crate) async fn invitations_of(
    app: &TestApp,
    student: &str,
) -> Vec<guardian_service::proto::GuardianInvitation> {
    app.guardians_as(&crate::helpers::admin(SCHOOL))
        .list_guardian_invitations(guardian_service::proto::ListGuardianInvitationsRequest {
            student_id: student.into(),
            states: vec![1, 2, 3, 4],
            page_size: 100,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .invitations
}

/// Another replica on the test's database and `clock`, for running upkeep rounds beside the
/// server's.
pub(crate) async fn replica(
    app: &TestApp,
    clock: std::sync::Arc<guardian_service::domain::clock::ManualClock>,
) -> guardian_service::app::App {
    let store = guardian_service::store::connect(&app.db.as_ref().unwrap().options(4))
        .await
        .unwrap();
    // The server's key for stand-ins, as every replica of one deployment shares it.
    let config = guardian_service::app::AppConfig {
        pseudonyms: guardian_service::app::Pseudonyms::new(crate::helpers::SECRET.as_bytes()),
        ..Default::default()
    };
    guardian_service::app::App::new(store, clock, config)
}

/// The guardians ListGuardians shows for s1 under `consistency`.
pub(crate) async fn guardians_of_s1(
    app: &TestApp,
    consistency: Option<guardian_service::proto::Consistency>,
) -> Vec<String> {
    app.guardians()
        .list_guardians(guardian_service::proto::ListGuardiansRequest {
            student_id: "s1".into(),
            consistency,
            ..Default::default()
        })
        .await
        .expect("list")
        .into_inner()
        .guardians
        .into_iter()
        .map(|g| g.guardian_id)
        .collect()
}
