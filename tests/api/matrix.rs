//! The authorization matrix (quality.md R8): every RPC x every kind of caller x a student or
//! domain that is the caller's own, another tenant's, or an allowlisted partner's x both values
//! of who_can_manage x guardian access on and off. The expected code of each cell is written
//! here from api.md's "Who may do what" table, independently of the server's policy code.
//!
//! Calls are built so that an allowed call ends in a known, harmless outcome (OK, or NOT_FOUND
//! for a random invitation id) and changes nothing the next cell depends on.

use crate::fixtures::{LONE, OTHER, PARTNER, SCHOOL, link, seed_school};
use crate::helpers::{TestApp, admin, guardian, reason, service, spawn_app, student, teacher};
use futures_util::StreamExt;
use guardian_service::proto::*;
use prost::Message;
use std::sync::atomic::{AtomicUsize, Ordering};
use tonic::Code;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rpc {
    CreateGuardianInvitation,
    GetGuardianInvitation,
    ListGuardianInvitations,
    CancelGuardianInvitation,
    ResendGuardianInvitation,
    AcceptGuardianInvitation,
    DeclineGuardianInvitation,
    GetGuardian,
    ListGuardians,
    DeleteGuardian,
    CheckGuardianship,
    CheckGuardianships,
    BulkCreateGuardianInvitations,
    SyncGuardians,
    BulkDeleteGuardians,
    ResendGuardianInvitations,
    ListGuardianEvents,
    WatchGuardianChanges,
    GetDomainSettings,
    UpdateDomainSettings,
    UpsertUsers,
    DeleteUsers,
    UpsertCourse,
    DeleteCourse,
    GetUser,
    ListUsers,
    PublishClassActivity,
    UpdateCourseSummarySettings,
    GetSummaryPreferences,
    UpdateSummaryPreferences,
    PreviewGuardianSummary,
    ListSummaryDeliveries,
    UnsubscribeFromSummaries,
    ExportPersonData,
    ErasePersonData,
    ListAccessRecords,
}

const RPCS: [Rpc; 36] = [
    Rpc::CreateGuardianInvitation,
    Rpc::GetGuardianInvitation,
    Rpc::ListGuardianInvitations,
    Rpc::CancelGuardianInvitation,
    Rpc::ResendGuardianInvitation,
    Rpc::AcceptGuardianInvitation,
    Rpc::DeclineGuardianInvitation,
    Rpc::GetGuardian,
    Rpc::ListGuardians,
    Rpc::DeleteGuardian,
    Rpc::CheckGuardianship,
    Rpc::CheckGuardianships,
    Rpc::BulkCreateGuardianInvitations,
    Rpc::SyncGuardians,
    Rpc::BulkDeleteGuardians,
    Rpc::ResendGuardianInvitations,
    Rpc::ListGuardianEvents,
    Rpc::WatchGuardianChanges,
    Rpc::GetDomainSettings,
    Rpc::UpdateDomainSettings,
    Rpc::UpsertUsers,
    Rpc::DeleteUsers,
    Rpc::UpsertCourse,
    Rpc::DeleteCourse,
    Rpc::GetUser,
    Rpc::ListUsers,
    Rpc::PublishClassActivity,
    Rpc::UpdateCourseSummarySettings,
    Rpc::GetSummaryPreferences,
    Rpc::UpdateSummaryPreferences,
    Rpc::PreviewGuardianSummary,
    Rpc::ListSummaryDeliveries,
    Rpc::UnsubscribeFromSummaries,
    Rpc::ExportPersonData,
    Rpc::ErasePersonData,
    Rpc::ListAccessRecords,
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Who {
    Admin,
    VerifiedTeacher,
    UnverifiedTeacher,
    Student,
    LinkedGuardian,
    OtherGuardian,
    ServiceAllScopes,
    ServiceReadOnly,
    ServiceNoScopes,
}

const WHO: [Who; 9] = [
    Who::Admin,
    Who::VerifiedTeacher,
    Who::UnverifiedTeacher,
    Who::Student,
    Who::LinkedGuardian,
    Who::OtherGuardian,
    Who::ServiceAllScopes,
    Who::ServiceReadOnly,
    Who::ServiceNoScopes,
];

/// Whose student or domain a call targets, seen from the caller (whose domain is SCHOOL).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Whose {
    Own,
    OtherTenant,
    Partner,
    /// SCHOOL lists LONE, but LONE does not list SCHOOL (it withdrew its consent after its
    /// student joined SCHOOL's course): SCHOOL's teachers get nothing.
    OneSidedPartner,
}

const WHOSE: [Whose; 4] = [
    Whose::Own,
    Whose::OtherTenant,
    Whose::Partner,
    Whose::OneSidedPartner,
];

impl Whose {
    fn student(self) -> &'static str {
        match self {
            Whose::Own => "s1",
            Whose::OtherTenant => "o1",
            Whose::Partner => "p1",
            Whose::OneSidedPartner => "q1",
        }
    }
    fn domain(self) -> &'static str {
        match self {
            Whose::Own => SCHOOL,
            Whose::OtherTenant => OTHER,
            Whose::Partner => PARTNER,
            Whose::OneSidedPartner => LONE,
        }
    }
    /// A course of the domain (`summary_targets` adds the partners' ones).
    fn course(self) -> &'static str {
        match self {
            Whose::Own => "math",
            Whose::OtherTenant => "other-math",
            Whose::Partner => "p-course",
            Whose::OneSidedPartner => "q-course",
        }
    }
    /// A guardian linked to this domain's student only (`summary_targets` links them).
    fn guardian(self) -> &'static str {
        match self {
            Whose::Own => "g-own",
            Whose::OtherTenant => "g-o",
            Whose::Partner => "g-p",
            Whose::OneSidedPartner => "g-q",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Ok,
    Fails(Code, &'static str),
}

const DENIED: Outcome = Outcome::Fails(Code::PermissionDenied, "NOT_ALLOWED_TO_MANAGE");
const NO_STUDENT: Outcome = Outcome::Fails(Code::NotFound, "STUDENT_NOT_FOUND");
const NO_INVITATION: Outcome = Outcome::Fails(Code::NotFound, "INVITATION_NOT_FOUND");
const ACCESS_OFF: Outcome = Outcome::Fails(Code::FailedPrecondition, "GUARDIAN_ACCESS_DISABLED");
const NO_COURSE: Outcome = Outcome::Fails(Code::NotFound, "COURSE_NOT_FOUND");
const NO_GUARDIAN: Outcome = Outcome::Fails(Code::NotFound, "GUARDIAN_NOT_FOUND");
const NO_PERSON: Outcome = Outcome::Fails(Code::NotFound, "PERSON_NOT_FOUND");

/// The table of api.md, for one cell.
fn expected(rpc: Rpc, who: Who, whose: Whose, teachers_manage: bool, access_on: bool) -> Outcome {
    use Rpc as R;
    use Who as W;
    let own = whose == Whose::Own;
    // What a call on a student's guardians may do once allowed.
    let allowed = |rpc: Rpc| match rpc {
        R::CreateGuardianInvitation if !access_on => ACCESS_OFF,
        // The invited address is the student's own: refused after authorization.
        R::CreateGuardianInvitation => {
            Outcome::Fails(Code::InvalidArgument, "GUARDIAN_EMAIL_IS_STUDENT")
        }
        R::ResendGuardianInvitation if !access_on => ACCESS_OFF,
        R::GetGuardianInvitation | R::CancelGuardianInvitation | R::ResendGuardianInvitation => {
            NO_INVITATION
        }
        R::DeleteGuardian => Outcome::Fails(Code::NotFound, "GUARDIAN_NOT_FOUND"),
        _ => Outcome::Ok,
    };
    let manages = matches!(
        rpc,
        R::CreateGuardianInvitation
            | R::CancelGuardianInvitation
            | R::ResendGuardianInvitation
            | R::DeleteGuardian
            | R::SyncGuardians
    );
    let reads = matches!(
        rpc,
        R::GetGuardianInvitation
            | R::ListGuardianInvitations
            | R::GetGuardian
            | R::ListGuardians
            | R::CheckGuardianship
            | R::CheckGuardianships
    );
    if manages || reads {
        return match who {
            W::Admin => {
                if own {
                    allowed(rpc)
                } else {
                    NO_STUDENT
                }
            }
            W::ServiceAllScopes => {
                if own {
                    allowed(rpc)
                } else {
                    NO_STUDENT
                }
            }
            W::ServiceReadOnly if manages => DENIED,
            W::ServiceReadOnly => {
                if own {
                    allowed(rpc)
                } else {
                    NO_STUDENT
                }
            }
            W::ServiceNoScopes => DENIED,
            // Both teachers teach s1 (own), p1 (mutual partner) and q1 (one-sided), not o1.
            W::VerifiedTeacher | W::UnverifiedTeacher => {
                if matches!(whose, Whose::OtherTenant | Whose::OneSidedPartner) {
                    DENIED
                } else if reads {
                    allowed(rpc)
                } else if !teachers_manage || who == W::UnverifiedTeacher {
                    DENIED
                } else if whose == Whose::Partner && !access_on {
                    ACCESS_OFF
                } else {
                    allowed(rpc)
                }
            }
            W::Student if manages => DENIED,
            W::Student => {
                if own {
                    allowed(rpc)
                } else {
                    DENIED
                }
            }
            // The linked guardian is linked to all four students; they may read, and delete
            // only their own link (the matrix deletes someone else's).
            W::LinkedGuardian if reads => allowed(rpc),
            W::LinkedGuardian | W::OtherGuardian => DENIED,
        };
    }
    match rpc {
        R::AcceptGuardianInvitation | R::DeclineGuardianInvitation => match who {
            W::LinkedGuardian | W::OtherGuardian | W::ServiceAllScopes => NO_INVITATION,
            _ => DENIED,
        },
        // Empty bulk calls: only the gate speaks (each row is authorized like the single call).
        R::BulkCreateGuardianInvitations
        | R::BulkDeleteGuardians
        | R::ResendGuardianInvitations => match who {
            W::Admin
            | W::VerifiedTeacher
            | W::UnverifiedTeacher
            | W::LinkedGuardian
            | W::OtherGuardian
            | W::ServiceAllScopes => Outcome::Ok,
            W::Student | W::ServiceReadOnly | W::ServiceNoScopes => DENIED,
        },
        // The feed is the audit trail's: the same callers.
        R::ListGuardianEvents | R::WatchGuardianChanges => match who {
            W::Admin | W::ServiceAllScopes | W::ServiceReadOnly => {
                if own {
                    Outcome::Ok
                } else {
                    DENIED
                }
            }
            _ => DENIED,
        },
        R::GetDomainSettings => {
            match who {
                W::Admin | W::VerifiedTeacher | W::UnverifiedTeacher | W::ServiceAllScopes => {
                    if own { Outcome::Ok } else { DENIED }
                }
                _ => DENIED,
            }
        }
        R::UpdateDomainSettings | R::UpsertUsers | R::UpsertCourse | R::ListUsers => match who {
            W::Admin | W::ServiceAllScopes => {
                if own {
                    Outcome::Ok
                } else {
                    DENIED
                }
            }
            _ => DENIED,
        },
        R::DeleteUsers | R::DeleteCourse => match who {
            W::Admin | W::ServiceAllScopes => Outcome::Ok,
            _ => DENIED,
        },
        R::GetUser => match who {
            W::Admin | W::ServiceAllScopes => {
                if own {
                    Outcome::Ok
                } else {
                    Outcome::Fails(Code::NotFound, "USER_NOT_FOUND")
                }
            }
            _ => DENIED,
        },
        // summaries.md: activity from its domain's admins and services with activity.write.
        R::PublishClassActivity => match who {
            W::Admin | W::ServiceAllScopes if own => Outcome::Ok,
            W::Admin | W::ServiceAllScopes => NO_COURSE,
            _ => DENIED,
        },
        // The class's own teachers (verified or not, whatever who_can_manage says), its
        // domain's admins, services with directory.write.
        R::UpdateCourseSummarySettings => match who {
            W::Admin | W::ServiceAllScopes if own => Outcome::Ok,
            W::Admin | W::ServiceAllScopes => NO_COURSE,
            W::VerifiedTeacher | W::UnverifiedTeacher if own => Outcome::Ok,
            _ => DENIED,
        },
        // Guardians ask about themselves ("me"); admins and services about a guardian of a
        // student of their domain (another one is not found).
        R::GetSummaryPreferences | R::ListSummaryDeliveries => match who {
            W::Admin | W::ServiceAllScopes | W::ServiceReadOnly if own => Outcome::Ok,
            W::Admin | W::ServiceAllScopes | W::ServiceReadOnly => NO_GUARDIAN,
            W::LinkedGuardian | W::OtherGuardian => Outcome::Ok,
            _ => DENIED,
        },
        R::UpdateSummaryPreferences => match who {
            W::Admin | W::ServiceAllScopes if own => Outcome::Ok,
            W::Admin | W::ServiceAllScopes => NO_GUARDIAN,
            W::LinkedGuardian | W::OtherGuardian => Outcome::Ok,
            _ => DENIED,
        },
        // As for reading the student's guardians; the target guardian has one child.
        R::PreviewGuardianSummary => match who {
            W::Admin | W::ServiceAllScopes | W::ServiceReadOnly if own => Outcome::Ok,
            W::Admin | W::ServiceAllScopes | W::ServiceReadOnly => NO_GUARDIAN,
            W::VerifiedTeacher | W::UnverifiedTeacher
                if matches!(whose, Whose::Own | Whose::Partner) =>
            {
                Outcome::Ok
            }
            W::Student if own => Outcome::Ok,
            W::LinkedGuardian | W::OtherGuardian => Outcome::Ok,
            _ => DENIED,
        },
        // No bearer token needed: everyone reaches the token check, and a made-up link is
        // not found.
        R::UnsubscribeFromSummaries => Outcome::Fails(Code::NotFound, "UNSUBSCRIBE_LINK_NOT_FOUND"),
        // Admins and services with privacy.admin, about a guardian linked in their domain;
        // one of another domain is not found.
        R::ExportPersonData => match who {
            W::Admin | W::ServiceAllScopes if own => Outcome::Ok,
            W::Admin | W::ServiceAllScopes => NO_PERSON,
            _ => DENIED,
        },
        // The matrix erases nobody: a made-up student, not found to those allowed.
        R::ErasePersonData => match who {
            W::Admin | W::ServiceAllScopes => NO_PERSON,
            _ => DENIED,
        },
        R::ListAccessRecords => match who {
            W::Admin | W::ServiceAllScopes if own => Outcome::Ok,
            _ => DENIED,
        },
        _ => unreachable!("{rpc:?} is a student RPC"),
    }
}

fn token_of_who(who: Who) -> String {
    match who {
        Who::Admin => admin(SCHOOL),
        Who::VerifiedTeacher => teacher("t-verified", SCHOOL),
        Who::UnverifiedTeacher => teacher("t-unverified", SCHOOL),
        Who::Student => student("s1", SCHOOL),
        Who::LinkedGuardian => guardian("g-linked", "linked@example.org"),
        Who::OtherGuardian => guardian("g-other", "other@example.org"),
        Who::ServiceAllScopes => service(
            "svc-all",
            SCHOOL,
            &[
                "guardians.read",
                "guardians.write",
                "settings.read",
                "settings.write",
                "directory.write",
                "invitations.accept",
                "activity.write",
                "privacy.admin",
            ],
        ),
        Who::ServiceReadOnly => service("svc-read", SCHOOL, &["guardians.read"]),
        Who::ServiceNoScopes => service("svc-none", SCHOOL, &[]),
    }
}

static SEQ: AtomicUsize = AtomicUsize::new(0);

fn ok<T>(r: Result<tonic::Response<T>, tonic::Status>) -> Result<(), tonic::Status> {
    r.map(|_| ())
}

async fn call(app: &TestApp, rpc: Rpc, who: Who, whose: Whose) -> Result<(), tonic::Status> {
    let token = token_of_who(who);
    let mut g = app.guardians_as(&token);
    let mut s = app.settings_as(&token);
    let mut d = app.directory_as(&token);
    let mut m = app.summaries_as(&token);
    // Guardians ask about themselves; everyone else about the guardian of `whose`'s student.
    let target_guardian = match who {
        Who::LinkedGuardian | Who::OtherGuardian => "me".to_string(),
        _ => whose.guardian().to_string(),
    };
    let course = whose.course().to_string();
    let student = whose.student().to_string();
    let domain = whose.domain().to_string();
    let random_id = uuid::Uuid::now_v7().to_string();
    let n = SEQ.fetch_add(1, Ordering::Relaxed);
    match rpc {
        Rpc::CreateGuardianInvitation => ok(g
            .create_guardian_invitation(CreateGuardianInvitationRequest {
                invited_email_address: format!("{student}@{domain}"),
                student_id: student,
                request_id: String::new(),
                student_ids: Vec::new(),
            })
            .await),
        Rpc::GetGuardianInvitation => ok(g
            .get_guardian_invitation(GetGuardianInvitationRequest {
                student_id: student,
                invitation_id: random_id,
                ..Default::default()
            })
            .await),
        Rpc::ListGuardianInvitations => ok(g
            .list_guardian_invitations(ListGuardianInvitationsRequest {
                student_id: student,
                ..Default::default()
            })
            .await),
        Rpc::CancelGuardianInvitation => ok(g
            .cancel_guardian_invitation(CancelGuardianInvitationRequest {
                student_id: student,
                invitation_id: random_id,
                ..Default::default()
            })
            .await),
        Rpc::ResendGuardianInvitation => ok(g
            .resend_guardian_invitation(ResendGuardianInvitationRequest {
                student_id: student,
                invitation_id: random_id,
                ..Default::default()
            })
            .await),
        Rpc::AcceptGuardianInvitation => ok(g
            .accept_guardian_invitation(AcceptGuardianInvitationRequest {
                token: "no-such-token".into(),
                guardian_id: "g-new".into(),
                email: "new@example.org".into(),
                ..Default::default()
            })
            .await),
        Rpc::DeclineGuardianInvitation => ok(g
            .decline_guardian_invitation(DeclineGuardianInvitationRequest {
                token: "no-such-token".into(),
                ..Default::default()
            })
            .await),
        Rpc::GetGuardian => ok(g
            .get_guardian(GetGuardianRequest {
                student_id: student,
                guardian_id: "g-linked".into(),
                ..Default::default()
            })
            .await),
        Rpc::ListGuardians => ok(g
            .list_guardians(ListGuardiansRequest {
                student_id: student,
                ..Default::default()
            })
            .await),
        Rpc::DeleteGuardian => ok(g
            .delete_guardian(DeleteGuardianRequest {
                student_id: student,
                guardian_id: "g-nobody".into(),
                ..Default::default()
            })
            .await),
        Rpc::CheckGuardianship => ok(g
            .check_guardianship(CheckGuardianshipRequest {
                student_id: student,
                guardian: Some(check_guardianship_request::Guardian::GuardianId(
                    "g-linked".into(),
                )),
                ..Default::default()
            })
            .await),
        Rpc::CheckGuardianships => {
            let response = g
                .check_guardianships(CheckGuardianshipsRequest {
                    checks: vec![CheckGuardianshipRequest {
                        student_id: student,
                        guardian: Some(check_guardianship_request::Guardian::GuardianId(
                            "g-linked".into(),
                        )),
                        ..Default::default()
                    }],
                    ..Default::default()
                })
                .await?
                .into_inner();
            // Each question is answered on its own: its result is the cell's outcome.
            match response.results.as_slice() {
                [r] if r.code == 0 => Ok(()),
                [r] => Err(result_status(r.code, &r.reason, &r.message)),
                other => panic!("one result per question, got {other:?}"),
            }
        }
        Rpc::BulkCreateGuardianInvitations => ok(g
            .bulk_create_guardian_invitations(BulkCreateGuardianInvitationsRequest::default())
            .await),
        Rpc::SyncGuardians => ok(g
            .sync_guardians(SyncGuardiansRequest {
                student_id: student,
                ..Default::default()
            })
            .await),
        Rpc::BulkDeleteGuardians => ok(g
            .bulk_delete_guardians(BulkDeleteGuardiansRequest::default())
            .await),
        Rpc::ResendGuardianInvitations => ok(g
            .resend_guardian_invitations(ResendGuardianInvitationsRequest::default())
            .await),
        Rpc::ListGuardianEvents => ok(g
            .list_guardian_events(ListGuardianEventsRequest {
                domain,
                ..Default::default()
            })
            .await),
        // Opening the stream is what is authorized: it fails at once or streams.
        Rpc::WatchGuardianChanges => ok(g
            .watch_guardian_changes(WatchGuardianChangesRequest {
                domain,
                ..Default::default()
            })
            .await),
        Rpc::GetDomainSettings => ok(s
            .get_domain_settings(GetDomainSettingsRequest { domain })
            .await),
        Rpc::UpdateDomainSettings => ok(s
            .update_domain_settings(UpdateDomainSettingsRequest {
                settings: Some(DomainSettings {
                    domain,
                    invitation_ttl_days: 120,
                    ..Default::default()
                }),
                update_mask: Some(prost_types::FieldMask {
                    paths: vec!["invitation_ttl_days".into()],
                }),
                etag: String::new(),
            })
            .await),
        Rpc::UpsertUsers => ok(d
            .upsert_users(UpsertUsersRequest {
                users: vec![User {
                    user_id: format!("m-{n}"),
                    email: format!("m-{n}@{domain}"),
                    domain,
                    role: UserRole::Student as i32,
                    ..Default::default()
                }],
            })
            .await),
        Rpc::DeleteUsers => ok(d
            .delete_users(DeleteUsersRequest {
                user_ids: vec!["no-such-user".into()],
            })
            .await),
        Rpc::UpsertCourse => ok(d
            .upsert_course(UpsertCourseRequest {
                course: Some(Course {
                    course_id: format!("m-course-{n}"),
                    domain,
                    ..Default::default()
                }),
            })
            .await),
        Rpc::DeleteCourse => ok(d
            .delete_course(DeleteCourseRequest {
                course_id: "no-such-course".into(),
            })
            .await),
        Rpc::GetUser => ok(d.get_user(GetUserRequest { user_id: student }).await),
        Rpc::ListUsers => ok(d
            .list_users(ListUsersRequest {
                domain,
                ..Default::default()
            })
            .await),
        Rpc::PublishClassActivity => {
            let item = ActivityItem {
                item: Some(activity_item::Item::CourseWork(CourseWork {
                    course_id: course,
                    course_work_id: "matrix-work".into(),
                    title: "Matrix".into(),
                    state: ActivityState::Published as i32,
                    update_time: Some(prost_types::Timestamp {
                        seconds: 1_790_000_000,
                        nanos: 0,
                    }),
                    ..Default::default()
                })),
            };
            let response = m
                .publish_class_activity(PublishClassActivityRequest { items: vec![item] })
                .await?
                .into_inner();
            // The call succeeds whatever its items do; the item's result is the cell's outcome.
            match response.results.as_slice() {
                [r] if r.code == 0 => Ok(()),
                [r] => Err(result_status(r.code, &r.reason, &r.message)),
                other => panic!("one result per item, got {other:?}"),
            }
        }
        Rpc::UpdateCourseSummarySettings => ok(m
            .update_course_summary_settings(UpdateCourseSummarySettingsRequest {
                course_id: course,
                guardian_summaries_enabled: true,
            })
            .await),
        Rpc::GetSummaryPreferences => ok(m
            .get_summary_preferences(GetSummaryPreferencesRequest {
                guardian_id: target_guardian,
            })
            .await),
        Rpc::UpdateSummaryPreferences => ok(m
            .update_summary_preferences(UpdateSummaryPreferencesRequest {
                preferences: Some(SummaryPreferences {
                    guardian_id: target_guardian,
                    weekly_day: "FRIDAY".into(),
                    ..Default::default()
                }),
                update_mask: Some(prost_types::FieldMask {
                    paths: vec!["weekly_day".into()],
                }),
            })
            .await),
        Rpc::PreviewGuardianSummary => ok(m
            .preview_guardian_summary(PreviewGuardianSummaryRequest {
                guardian_id: target_guardian,
                ..Default::default()
            })
            .await),
        Rpc::ListSummaryDeliveries => ok(m
            .list_summary_deliveries(ListSummaryDeliveriesRequest {
                guardian_id: target_guardian,
                ..Default::default()
            })
            .await),
        Rpc::UnsubscribeFromSummaries => ok(m
            .unsubscribe_from_summaries(UnsubscribeFromSummariesRequest {
                token: format!("no-such-link-{n}"),
            })
            .await),
        Rpc::ExportPersonData => ok(app
            .privacy_as(&token)
            .export_person_data(ExportPersonDataRequest {
                person: Some(PersonSelector {
                    person: Some(person_selector::Person::GuardianId(whose.guardian().into())),
                }),
                format: ExportFormat::Json as i32,
            })
            .await),
        Rpc::ErasePersonData => ok(app
            .privacy_as(&token)
            .erase_person_data(ErasePersonDataRequest {
                person: Some(PersonSelector {
                    person: Some(person_selector::Person::StudentId(format!("nobody-{n}"))),
                }),
                request_id: String::new(),
            })
            .await),
        Rpc::ListAccessRecords => ok(app
            .privacy_as(&token)
            .list_access_records(ListAccessRecordsRequest {
                domain,
                ..Default::default()
            })
            .await),
    }
}

/// A failed item's result as the status a single call would have ended with.
fn result_status(code: i32, reason: &str, message: &str) -> tonic::Status {
    use tonic_types::{ErrorDetails, StatusExt};
    tonic::Status::with_error_details(
        tonic::Code::from_i32(code),
        message,
        ErrorDetails::with_error_info(reason, "guardians.v1", std::collections::HashMap::new()),
    )
}

/// The targets of the summary RPCs: a course in each partner domain, and a guardian linked to
/// each domain's student alone.
async fn summary_targets(app: &TestApp) {
    for (course, domain) in [("p-course", PARTNER), ("q-course", LONE)] {
        app.directory()
            .upsert_course(UpsertCourseRequest {
                course: Some(Course {
                    course_id: course.into(),
                    domain: domain.into(),
                    ..Default::default()
                }),
            })
            .await
            .expect("course");
    }
    for whose in WHOSE {
        let address = format!("{}@example.org", whose.guardian());
        link(app, whose.student(), &address, whose.guardian(), &address).await;
    }
}

async fn configure(app: &TestApp, teachers_manage: bool, access_on: bool) {
    for domain in [SCHOOL, OTHER, PARTNER, LONE] {
        let who = if teachers_manage {
            WhoCanManage::VerifiedTeachers
        } else {
            WhoCanManage::DomainAdminsOnly
        };
        let allowlist = match domain {
            SCHOOL => vec![PARTNER.to_string(), LONE.to_string()],
            PARTNER => vec![SCHOOL.to_string()],
            _ => Vec::new(),
        };
        app.settings()
            .update_domain_settings(UpdateDomainSettingsRequest {
                settings: Some(DomainSettings {
                    domain: domain.into(),
                    who_can_manage: who as i32,
                    guardian_access_enabled: access_on,
                    allowlisted_domains: allowlist,
                    ..Default::default()
                }),
                update_mask: Some(prost_types::FieldMask {
                    paths: vec![
                        "who_can_manage".into(),
                        "guardian_access_enabled".into(),
                        "allowlisted_domains".into(),
                    ],
                }),
                etag: String::new(),
            })
            .await
            .expect("configure");
    }
}

#[test]
fn the_matrix_lists_every_rpc_of_the_proto() {
    let set = prost_types::FileDescriptorSet::decode(guardian_service::proto::FILE_DESCRIPTOR_SET)
        .unwrap();
    let mut methods: Vec<String> = set
        .file
        .iter()
        .flat_map(|f| {
            f.service
                .iter()
                .flat_map(|s| s.method.iter().map(|m| m.name().to_string()))
        })
        .collect();
    methods.sort();
    let mut listed: Vec<String> = RPCS.iter().map(|r| format!("{r:?}")).collect();
    listed.sort();
    assert_eq!(
        listed, methods,
        "every RPC of the proto needs its row in the matrix"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_rpc_answers_every_caller_as_the_contract_says() {
    let app = spawn_app().await;
    seed_school(&app, 1).await;
    configure(&app, true, true).await;
    for student in ["s1", "o1", "p1", "q1"] {
        link(
            &app,
            student,
            "linked@example.org",
            "g-linked",
            "linked@example.org",
        )
        .await;
    }
    summary_targets(&app).await;
    let mut cells = 0;
    let mut wrong = Vec::new();
    for teachers_manage in [true, false] {
        for access_on in [true, false] {
            configure(&app, teachers_manage, access_on).await;
            // No cell changes what another cell sees (see `call`), so the cells of one
            // configuration run at once, a bounded number at a time.
            let grid = RPCS.iter().flat_map(|rpc| {
                WHO.iter()
                    .flat_map(move |who| WHOSE.iter().map(move |whose| (*rpc, *who, *whose)))
            });
            let outcomes: Vec<_> = futures_util::stream::iter(grid)
                .map(|(rpc, who, whose)| {
                    let app = &app;
                    async move {
                        let want = expected(rpc, who, whose, teachers_manage, access_on);
                        let got = match call(app, rpc, who, whose).await {
                            Ok(()) => Outcome::Ok,
                            Err(status) => {
                                let r = reason(&status);
                                match (want, status.code()) {
                                    (Outcome::Fails(code, why), c) if c == code && r == why => want,
                                    _ => {
                                        Outcome::Fails(status.code(), Box::leak(r.into_boxed_str()))
                                    }
                                }
                            }
                        };
                        (rpc, who, whose, want, got)
                    }
                })
                .buffer_unordered(16)
                .collect()
                .await;
            for (rpc, who, whose, want, got) in outcomes {
                cells += 1;
                if got != want {
                    wrong.push(format!(
                        "{rpc:?} as {who:?} on {whose:?} (teachers manage: {teachers_manage}, access: {access_on}): want {want:?}, got {got:?}"
                    ));
                }
            }
        }
    }
    wrong.sort();
    assert_eq!(cells, RPCS.len() * 9 * 4 * 2 * 2);
    assert!(
        wrong.is_empty(),
        "{} of {cells} cells differ:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
}
