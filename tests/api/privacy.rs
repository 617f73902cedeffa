//! PrivacyService over real gRPC and Postgres: a guardian's export holds exactly their records
//! (three children across two domains, another guardian beside them), an administrator sees
//! their own domain's part, erasure ends the links and leaves nothing that names the person in
//! any table, it is idempotent and authorised, and a student's erasure is DeleteUsers plus the
//! same anonymisation.

use crate::fixtures::{
    OTHER, PARTNER, SCHOOL, accept_as, assert_status, invitations_of, invite, link, school_events,
    seed_school, token_of,
};
use crate::helpers::{TestApp, admin, guardian, service, spawn_app};
use guardian_service::proto::*;
use std::collections::BTreeSet;
use std::io::Read;
use tonic::Code;

const PARENT: &str = "parent@example.org";
const PARENT_ID: &str = "g-erase-me";
const KEEP: &str = "keep@example.org";
const KEEP_ID: &str = "g-keep-me";

/// A data protection officer's service: privacy.admin in every domain.
fn dpo() -> String {
    service("dpo", "*", &["privacy.admin"])
}

fn by_guardian(id: &str) -> Option<PersonSelector> {
    Some(PersonSelector {
        person: Some(person_selector::Person::GuardianId(id.into())),
    })
}

fn by_email(email: &str) -> Option<PersonSelector> {
    Some(PersonSelector {
        person: Some(person_selector::Person::GuardianEmailAddress(email.into())),
    })
}

fn by_student(id: &str) -> Option<PersonSelector> {
    Some(PersonSelector {
        person: Some(person_selector::Person::StudentId(id.into())),
    })
}

/// The parent: linked to s1 and s2 of SCHOOL and p1 of PARTNER (three children, two domains;
/// s2's link accepted with a request id, so a stored reply of theirs exists), invited for s3
/// and not answered yet. Another guardian is linked to s1 beside them.
async fn family(app: &TestApp) -> Vec<GuardianInvitation> {
    seed_school(app, 3).await;
    let s1 = link(app, "s1", PARENT, PARENT_ID, PARENT).await;
    let s2 = invite(app, "s2", PARENT).await;
    let token = token_of(app, &s2.invitation_id).await;
    app.guardians_as(&guardian(PARENT_ID, PARENT))
        .accept_guardian_invitation(AcceptGuardianInvitationRequest {
            token,
            request_id: uuid::Uuid::new_v4().to_string(),
            ..Default::default()
        })
        .await
        .expect("accept s2");
    let p1 = invite(app, "p1", PARENT).await;
    accept_as(app, &p1, PARENT_ID, PARENT).await;
    let s3 = invite(app, "s3", PARENT).await;
    link(app, "s1", KEEP, KEEP_ID, KEEP).await;
    app.summaries_as(&guardian(PARENT_ID, PARENT))
        .update_summary_preferences(UpdateSummaryPreferencesRequest {
            preferences: Some(SummaryPreferences {
                guardian_id: "me".into(),
                frequency: SummaryFrequency::Daily as i32,
                ..Default::default()
            }),
            update_mask: Some(prost_types::FieldMask {
                paths: vec!["frequency".into()],
            }),
        })
        .await
        .expect("preferences");
    vec![s1, s2, p1, s3]
}

async fn export(
    app: &TestApp,
    token: &str,
    person: Option<PersonSelector>,
    format: ExportFormat,
) -> Result<(String, String, Vec<u8>), tonic::Status> {
    let mut stream = app
        .privacy_as(token)
        .export_person_data(ExportPersonDataRequest {
            person,
            format: format as i32,
        })
        .await?
        .into_inner();
    let first = stream.message().await?.expect("a first message");
    let (content_type, name) = (first.content_type.clone(), first.file_name.clone());
    let mut bytes = first.data;
    while let Some(next) = stream.message().await? {
        assert!(
            next.content_type.is_empty(),
            "named in the first message only"
        );
        bytes.extend(next.data);
    }
    Ok((content_type, name, bytes))
}

async fn export_json(
    app: &TestApp,
    token: &str,
    person: Option<PersonSelector>,
) -> Result<serde_json::Value, tonic::Status> {
    let (content_type, name, bytes) = export(app, token, person, ExportFormat::Json).await?;
    assert_eq!(content_type, "application/json");
    assert!(
        name.starts_with("person-export-") && name.ends_with(".json"),
        "{name}"
    );
    Ok(serde_json::from_slice(&bytes).expect("a JSON document"))
}

/// ErasePersonData without a request id.
async fn erase_as(
    app: &TestApp,
    token: &str,
    person: Option<PersonSelector>,
) -> Result<ErasePersonDataResponse, tonic::Status> {
    app.privacy_as(token)
        .erase_person_data(ErasePersonDataRequest {
            person,
            request_id: String::new(),
        })
        .await
        .map(tonic::Response::into_inner)
}

fn column(document: &serde_json::Value, table: &str, field: &str) -> BTreeSet<String> {
    document[table]
        .as_array()
        .unwrap_or_else(|| panic!("{table} is a list"))
        .iter()
        .filter_map(|r| r[field].as_str().map(str::to_owned))
        .collect()
}

fn set(values: &[&str]) -> BTreeSet<String> {
    values.iter().map(|v| v.to_string()).collect()
}

/// Rows of every table of the database whose text holds any of `needles`, as "table: count".
async fn rows_naming(app: &TestApp, needles: &[&str]) -> Vec<String> {
    let pool = sqlx::PgPool::connect(&app.database_url).await.unwrap();
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT table_name::text FROM information_schema.tables WHERE table_schema = 'public' \
         AND table_type = 'BASE TABLE' AND table_name NOT LIKE '\\_sqlx%' ORDER BY 1",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert!(tables.len() > 10, "{tables:?}");
    let mut found = Vec::new();
    for table in tables {
        for needle in needles {
            // The table names come from the catalogue, never from input.
            let count: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
                "SELECT COUNT(*) FROM {table} x WHERE strpos(x::text, $1) > 0"
            )))
            .bind(needle)
            .fetch_one(&pool)
            .await
            .unwrap();
            if count > 0 {
                found.push(format!("{table}: {count} naming {needle}"));
            }
        }
    }
    pool.close().await;
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_guardians_export_holds_exactly_their_records() {
    let app = spawn_app().await;
    let invitations = family(&app).await;
    let ids: BTreeSet<String> = invitations
        .iter()
        .map(|i| i.invitation_id.clone())
        .collect();

    let whole = export_json(&app, &dpo(), by_guardian(PARENT_ID))
        .await
        .unwrap();
    assert_eq!(whole["person"]["kind"], "guardian");
    assert_eq!(whole["person"]["complete"], "true");
    assert_eq!(whole["person"]["email_addresses"], PARENT);
    assert_eq!(column(&whole, "invitations", "invitation_id"), ids);
    assert_eq!(
        column(&whole, "invitations", "student_id"),
        set(&["p1", "s1", "s2", "s3"])
    );
    assert_eq!(
        column(&whole, "invitations", "domain"),
        set(&[PARTNER, SCHOOL])
    );
    // Every event of those invitations: created, and accepted for the three links.
    let events = whole["events"].as_array().unwrap();
    assert_eq!(events.len(), 4 + 3, "{events:?}");
    assert!(
        events
            .iter()
            .all(|e| ids.contains(e["invitation_id"].as_str().unwrap()))
    );
    // Four invitations and three welcomes, all to the parent; the students' notices of a new
    // guardian are theirs, not here.
    assert_eq!(column(&whole, "emails", "recipient"), set(&[PARENT]));
    assert_eq!(whole["emails"].as_array().unwrap().len(), 7);
    assert_eq!(
        column(&whole, "summary_preferences", "frequency"),
        set(&["DAILY"])
    );
    let text = whole.to_string();
    assert!(
        !text.contains(KEEP) && !text.contains(KEEP_ID),
        "nothing of the other guardian"
    );

    // By address: the same records.
    let by_address = export_json(&app, &dpo(), by_email(PARENT)).await.unwrap();
    assert_eq!(column(&by_address, "invitations", "invitation_id"), ids);

    // SCHOOL's administrator: SCHOOL's part only, marked incomplete, and no per-person records
    // (preferences are shared with PARTNER's school).
    let school = export_json(&app, &admin(SCHOOL), by_guardian(PARENT_ID))
        .await
        .unwrap();
    assert_eq!(school["person"]["complete"], "false");
    assert_eq!(
        column(&school, "invitations", "student_id"),
        set(&["s1", "s2", "s3"])
    );
    assert!(school["summary_preferences"].as_array().unwrap().is_empty());
    assert!(!school.to_string().contains(PARTNER));

    // Another tenant's administrator: not found, as for a person nobody knows.
    assert_status(
        export_json(&app, &admin(OTHER), by_guardian(PARENT_ID)).await,
        Code::NotFound,
        "PERSON_NOT_FOUND",
    );
    assert_status(
        export_json(&app, &dpo(), by_guardian("g-nobody")).await,
        Code::NotFound,
        "PERSON_NOT_FOUND",
    );
    // Neither a guardian nor a teacher may ask; nor a service without the scope.
    for token in [
        guardian(PARENT_ID, PARENT),
        crate::helpers::teacher("t-verified", SCHOOL),
        service("svc", "*", &["guardians.read", "guardians.write"]),
    ] {
        assert_status(
            export_json(&app, &token, by_guardian(PARENT_ID)).await,
            Code::PermissionDenied,
            "NOT_ALLOWED_TO_MANAGE",
        );
    }
    assert_status(
        export_json(&app, &dpo(), None).await,
        Code::InvalidArgument,
        "INVALID_ARGUMENT",
    );

    // The zip: one CSV per kind with the same rows.
    let (content_type, name, bytes) =
        export(&app, &dpo(), by_guardian(PARENT_ID), ExportFormat::CsvZip)
            .await
            .unwrap();
    assert_eq!(content_type, "application/zip");
    assert!(name.ends_with(".zip"));
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes)).expect("a zip");
    let mut names: Vec<String> = zip
        .file_names()
        .map(|n| n.expect("a file name").into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "emails.csv",
            "events.csv",
            "invitations.csv",
            "person.csv",
            "student.csv",
            "summary_deliveries.csv",
            "summary_preferences.csv"
        ]
    );
    let mut csv = String::new();
    zip.by_name("invitations.csv")
        .unwrap()
        .read_to_string(&mut csv)
        .unwrap();
    let mut reader = csv::Reader::from_reader(csv.as_bytes());
    assert_eq!(&reader.headers().unwrap()[0], "invitation_id");
    let exported: BTreeSet<String> = reader.records().map(|r| r.unwrap()[0].to_owned()).collect();
    assert_eq!(exported, ids);

    // Each export is in the audit trail of the domains it read, with counts only.
    let exports: Vec<_> = school_events(&app)
        .await
        .into_iter()
        .filter(|e| e.action == "privacy.person_exported")
        .collect();
    assert_eq!(
        exports.len(),
        4,
        "three by the service, one by the administrator"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn erasing_a_guardian_ends_their_links_and_leaves_nothing_that_names_them() {
    let app = spawn_app().await;
    let invitations = family(&app).await;
    assert!(!rows_naming(&app, &[PARENT, PARENT_ID]).await.is_empty());
    let erase = |token: String, request_id: String| {
        let mut client = app.privacy_as(&token);
        async move {
            client
                .erase_person_data(ErasePersonDataRequest {
                    person: by_email(PARENT),
                    request_id,
                })
                .await
                .map(|r| r.into_inner())
        }
    };

    // Another tenant's administrator: not found, and nothing changes.
    assert_status(
        erase(admin(OTHER), String::new()).await,
        Code::NotFound,
        "PERSON_NOT_FOUND",
    );
    assert_eq!(
        invitations_of(&app, "s1")
            .await
            .iter()
            .filter(|i| i.state == InvitationState::Accepted as i32)
            .count(),
        2
    );

    let request_id = uuid::Uuid::new_v4().to_string();
    let done = erase(dpo(), request_id.clone()).await.unwrap();
    assert_eq!(
        (
            done.links_removed,
            done.invitations_cancelled,
            done.invitations_anonymised,
            done.messages_cancelled,
            done.already_erased
        ),
        (3, 1, 4, 7, false),
        "three links, one pending invitation, seven queued emails (four invitations, three \
         welcomes: no dispatcher runs in these tests)"
    );
    assert!(!done.consistency_token.is_empty());
    // A retry gets the first answer; a new request finds the person gone.
    let again = erase(dpo(), request_id).await.unwrap();
    assert_eq!((again.links_removed, again.already_erased), (3, false));
    let later = erase(dpo(), uuid::Uuid::new_v4().to_string())
        .await
        .unwrap();
    assert_eq!(
        (
            later.links_removed,
            later.invitations_anonymised,
            later.already_erased
        ),
        (0, 0, true)
    );
    assert_status(
        erase(admin(OTHER), String::new()).await,
        Code::NotFound,
        "PERSON_NOT_FOUND",
    );

    // The school sees the invitations ended, for the reason, and the other guardian kept.
    let s1 = invitations_of(&app, "s1").await;
    let parents: Vec<_> = s1
        .iter()
        .filter(|i| i.invitation_id == invitations[0].invitation_id)
        .collect();
    assert_eq!(parents.len(), 1);
    assert_eq!(parents[0].state, InvitationState::Removed as i32);
    assert_eq!(
        parents[0].removal_reason,
        RemovalReason::GuardianErased as i32
    );
    assert!(
        parents[0]
            .invited_email_address
            .ends_with("@erased.invalid")
    );
    let kept: Vec<_> = s1
        .iter()
        .filter(|i| i.state == InvitationState::Accepted as i32)
        .collect();
    assert_eq!(kept.len(), 1);
    assert_eq!(kept[0].invited_email_address, KEEP);
    let linked = app
        .guardians()
        .check_guardianship(CheckGuardianshipRequest {
            student_id: "s1".into(),
            guardian: Some(check_guardianship_request::Guardian::GuardianId(
                PARENT_ID.into(),
            )),
            consistency: Some(Consistency {
                requirement: Some(consistency::Requirement::FullyConsistent(true)),
            }),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(!linked.linked);

    // No row of any table names the parent; the other guardian is still there.
    assert_eq!(
        rows_naming(&app, &[PARENT, PARENT_ID]).await,
        Vec::<String>::new()
    );
    assert!(!rows_naming(&app, &[KEEP]).await.is_empty());
    for person in [by_guardian(PARENT_ID), by_email(PARENT)] {
        assert_status(
            export_json(&app, &dpo(), person).await,
            Code::NotFound,
            "PERSON_NOT_FOUND",
        );
    }

    // The audit trail keeps that it happened, by whom, with counts: never the address.
    let events = school_events(&app).await;
    assert_eq!(
        events
            .iter()
            .filter(|e| e.action == "guardian.erased")
            .count(),
        3,
        "s1 and s2's links and s3's invitation"
    );
    let erasures: Vec<_> = events
        .iter()
        .filter(|e| e.action == "privacy.person_erased")
        .collect();
    assert_eq!(erasures.len(), 1);
    assert_eq!(erasures[0].actor_id, "dpo");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_administrator_erases_their_schools_part_and_a_student_whole() {
    let app = spawn_app().await;
    family(&app).await;
    // SCHOOL's administrator erases the parent from SCHOOL: PARTNER's link stays, and so do
    // what is kept per person (PARTNER still mails them).
    let done = erase_as(&app, &admin(SCHOOL), by_guardian(PARENT_ID))
        .await
        .unwrap();
    assert_eq!((done.links_removed, done.invitations_cancelled), (2, 1));
    let partner = export_json(&app, &dpo(), by_guardian(PARENT_ID))
        .await
        .unwrap();
    assert_eq!(column(&partner, "invitations", "student_id"), set(&["p1"]));
    assert_eq!(
        partner["person"]["complete"], "true",
        "all that is left is PARTNER's"
    );

    // A student: gone from the directory, their links ended as by DeleteUsers, their
    // guardians' addresses on their invitations replaced.
    let s1 = erase_as(&app, &admin(SCHOOL), by_student("s1"))
        .await
        .unwrap();
    // The parent's invitation was anonymised already; the other guardian's is now.
    assert_eq!((s1.links_removed, s1.invitations_anonymised), (1, 1));
    assert_status(
        app.directory()
            .get_user(GetUserRequest {
                user_id: "s1".into(),
            })
            .await,
        Code::NotFound,
        "USER_NOT_FOUND",
    );
    // Nothing names the student but their id; the other guardian's invitation for them no
    // longer holds the guardian's address (their own account's records stay theirs).
    assert_eq!(
        rows_naming(&app, &["s1@school.example", "Name of s1"]).await,
        Vec::<String>::new()
    );
    let pool = sqlx::PgPool::connect(&app.database_url).await.unwrap();
    let addresses: Vec<String> =
        sqlx::query_scalar("SELECT invited_email FROM invitations WHERE student_id = 's1'")
            .fetch_all(&pool)
            .await
            .unwrap();
    pool.close().await;
    assert_eq!(addresses.len(), 2);
    assert!(
        addresses.iter().all(|a| a.ends_with("@erased.invalid")),
        "{addresses:?}"
    );
    let again = erase_as(&app, &admin(SCHOOL), by_student("s1"))
        .await
        .unwrap();
    assert!(again.already_erased);
    assert_status(
        export_json(&app, &admin(SCHOOL), by_student("s1")).await,
        Code::NotFound,
        "PERSON_NOT_FOUND",
    );
    assert_status(
        erase_as(&app, &admin(OTHER), by_student("s2")).await,
        Code::NotFound,
        "PERSON_NOT_FOUND",
    );
}

/// `guardianctl privacy` as the data protection officer, answering the confirmation with
/// `answer` on standard input.
fn privacy_cli(app: &TestApp, args: &[&str], answer: &str) -> std::process::Output {
    use std::io::Write;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_guardianctl"))
        .args(["--server", &app.channel_uri, "privacy"])
        .args(args)
        .env("GUARDIANS_TOKEN", dpo())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run guardianctl");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(answer.as_bytes())
        .unwrap();
    child.wait_with_output().expect("guardianctl ends")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guardianctl_exports_and_erases_after_confirmation() {
    let app = spawn_app().await;
    family(&app).await;
    let dir = guardian_service::testing::TempDir::new();
    let path = dir.path.join("export.zip");
    let path = path.display().to_string();
    let out = privacy_cli(
        &app,
        &[
            "export",
            "--guardian-email",
            PARENT,
            "--format",
            "zip",
            "--output",
            &path,
        ],
        "",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let zip = zip::ZipArchive::new(std::fs::File::open(&path).unwrap()).unwrap();
    assert!(
        zip.file_names()
            .any(|n| n.is_ok_and(|n| n == "invitations.csv"))
    );
    let out = privacy_cli(&app, &["export", "--student-id", "s2"], "");
    assert!(out.status.success());
    let student: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(student["student"][0]["user_id"], "s2");

    // Not confirmed: nothing happens.
    let out = privacy_cli(&app, &["erase", "--guardian-id", PARENT_ID], "no\n");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("nothing was erased"));
    assert!(
        export_json(&app, &dpo(), by_guardian(PARENT_ID))
            .await
            .is_ok()
    );
    // Confirmed by typing, then --yes on a person already erased.
    let out = privacy_cli(&app, &["erase", "--guardian-id", PARENT_ID], "erase\n");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("3 links removed"), "{said}");
    let out = privacy_cli(&app, &["erase", "--guardian-id", PARENT_ID, "--yes"], "");
    assert!(String::from_utf8_lossy(&out.stdout).contains("already erased"));
    let out = privacy_cli(&app, &["export", "--guardian-id", PARENT_ID], "");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("PERSON_NOT_FOUND"));
}

/// SCHOOL's access records as its administrator lists them: "caller method student rows".
async fn access_records(app: &TestApp, student: &str, page_size: i32) -> Vec<String> {
    app.privacy_as(&admin(SCHOOL))
        .list_access_records(ListAccessRecordsRequest {
            domain: SCHOOL.into(),
            student_id: student.into(),
            page_size,
            page_token: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .access_records
        .iter()
        .map(|r| {
            format!(
                "{}:{} {} {} {}",
                r.caller_role, r.caller, r.method, r.student_id, r.row_count
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_of_addresses_by_administrators_and_services_are_recorded() {
    let app = spawn_app().await;
    family(&app).await;
    assert!(
        access_records(&app, "", 50).await.is_empty(),
        "inviting reads nothing"
    );
    let reader = service("svc-reader", SCHOOL, &["guardians.read"]);

    // An administrator lists s1's invitations (two links); a service lists s2's guardians and
    // reads one invitation; a teacher and the guardian read too, and are not recorded (they
    // see no invited address, or no one else's).
    let invitations = app
        .guardians_as(&admin(SCHOOL))
        .list_guardian_invitations(ListGuardianInvitationsRequest {
            student_id: "s1".into(),
            states: vec![InvitationState::Accepted as i32],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .invitations;
    assert_eq!(invitations.len(), 2);
    app.guardians_as(&reader)
        .list_guardians(ListGuardiansRequest {
            student_id: "s2".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    app.guardians_as(&reader)
        .get_guardian_invitation(GetGuardianInvitationRequest {
            student_id: "s1".into(),
            invitation_id: invitations[0].invitation_id.clone(),
            ..Default::default()
        })
        .await
        .unwrap();
    app.guardians_as(&guardian(PARENT_ID, PARENT))
        .list_guardians(ListGuardiansRequest {
            student_id: "-".into(),
            guardian_id: "me".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    app.guardians_as(&crate::helpers::teacher("t-verified", SCHOOL))
        .list_guardians(ListGuardiansRequest {
            student_id: "s1".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    // A listing that shows nothing leaves nothing.
    app.guardians_as(&admin(SCHOOL))
        .list_guardians(ListGuardiansRequest {
            student_id: "s3".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    let admin_caller = format!("admin:admin@{SCHOOL}");
    assert_eq!(
        access_records(&app, "", 50).await,
        [
            "service:svc-reader GetGuardianInvitation s1 1".to_owned(),
            "service:svc-reader ListGuardians s2 1".to_owned(),
            format!("{admin_caller} ListGuardianInvitations s1 2"),
        ],
        "newest first"
    );
    // An export: one record per student it showed.
    export_json(&app, &admin(SCHOOL), by_guardian(PARENT_ID))
        .await
        .unwrap();
    let all = access_records(&app, "", 50).await;
    assert_eq!(all.len(), 3 + 3);
    assert!(
        all[..3].iter().all(|r| r.contains("ExportPersonData")),
        "{all:?}"
    );
    // By student, and by page.
    assert_eq!(
        access_records(&app, "s1", 50).await,
        [
            format!("{admin_caller} ExportPersonData s1 1"),
            "service:svc-reader GetGuardianInvitation s1 1".to_owned(),
            format!("{admin_caller} ListGuardianInvitations s1 2"),
        ]
    );
    let mut privacy = app.privacy_as(&admin(SCHOOL));
    let first = privacy
        .list_access_records(ListAccessRecordsRequest {
            domain: SCHOOL.into(),
            student_id: "s1".into(),
            page_size: 2,
            page_token: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(first.access_records.len(), 2);
    let rest = privacy
        .list_access_records(ListAccessRecordsRequest {
            domain: SCHOOL.into(),
            student_id: "s1".into(),
            page_size: 2,
            page_token: first.next_page_token,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(rest.access_records.len(), 1);
    assert_eq!(rest.access_records[0].method, "ListGuardianInvitations");
    assert!(rest.next_page_token.is_empty());

    // Another tenant's administrator may not list SCHOOL's; nor may a reading service.
    for token in [admin(OTHER), reader] {
        assert_status(
            app.privacy_as(&token)
                .list_access_records(ListAccessRecordsRequest {
                    domain: SCHOOL.into(),
                    ..Default::default()
                })
                .await,
            Code::PermissionDenied,
            "NOT_ALLOWED_TO_MANAGE",
        );
    }
}

/// Two erasures of one guardian at once, and the guardian accepting their pending invitation at
/// the same moment: whatever order the locks give, the work is done once, the other erasure
/// finds the person gone, and nothing links or names the guardian afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn erasures_racing_each_other_and_an_accept_erase_once() {
    let app = spawn_app().await;
    let invitations = family(&app).await;
    let s3_token = token_of(&app, &invitations[3].invitation_id).await;
    let mut first = app.privacy_as(&dpo());
    let mut second = app.privacy_as(&dpo());
    let mut accepting = app.guardians_as(&guardian(PARENT_ID, PARENT));
    let request = |person| ErasePersonDataRequest {
        person,
        request_id: uuid::Uuid::new_v4().to_string(),
    };
    let (a, b, accepted) = tokio::join!(
        first.erase_person_data(request(by_email(PARENT))),
        second.erase_person_data(request(by_guardian(PARENT_ID))),
        accepting.accept_guardian_invitation(AcceptGuardianInvitationRequest {
            token: s3_token,
            ..Default::default()
        }),
    );
    let (a, b) = (a.unwrap().into_inner(), b.unwrap().into_inner());
    assert_eq!(
        [a.already_erased, b.already_erased]
            .iter()
            .filter(|e| **e)
            .count(),
        1,
        "one did the work: {a:?} {b:?}"
    );
    let worker = if a.already_erased { &b } else { &a };
    match accepted {
        // The accept came first: its link was erased with the others.
        Ok(_) => assert_eq!((worker.links_removed, worker.invitations_cancelled), (4, 0)),
        // The erasure came first: the invitation had ended.
        Err(status) => {
            assert_eq!(crate::helpers::reason(&status), "INVITATION_NOT_PENDING");
            assert_eq!((worker.links_removed, worker.invitations_cancelled), (3, 1));
        }
    }
    assert_eq!(
        rows_naming(&app, &[PARENT, PARENT_ID]).await,
        Vec::<String>::new()
    );
}
