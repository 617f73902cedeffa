//! Provenance and safe sync: what a sync made is marked SYNC, a sync removes only that unless
//! told ALL, and a sync that would delete too many of a domain's links is refused (per call by
//! the server, per run by guardianctl) unless forced.

use crate::cli::guardianctl;
use crate::fixtures::{accept_as, assert_status, invite, link, seed_school};
use crate::helpers::{TestApp, spawn_app, spawn_sqlite_app};
use guardian_service::proto::*;
use tonic::Code;

fn request(student: &str, emails: &[&str], scope: SyncRemoveScope) -> SyncGuardiansRequest {
    SyncGuardiansRequest {
        student_id: student.into(),
        guardian_email_addresses: emails.iter().map(|e| e.to_string()).collect(),
        remove_scope: scope as i32,
        ..Default::default()
    }
}

async fn sync(app: &TestApp, req: SyncGuardiansRequest) -> SyncGuardiansResponse {
    app.guardians()
        .sync_guardians(req)
        .await
        .unwrap_or_else(|e| panic!("sync: {e:?}"))
        .into_inner()
}

/// Each action as "KIND address", sorted.
fn actions(reply: &SyncGuardiansResponse) -> Vec<String> {
    let mut all: Vec<String> = reply
        .actions
        .iter()
        .map(|a| {
            assert_eq!(a.code, 0, "{a:?}");
            let kind = sync_action::Kind::try_from(a.kind).unwrap().as_str_name();
            format!("{kind} {}", a.email_address)
        })
        .collect();
    all.sort();
    all
}

/// The student's invitations in `states`, as "address SOURCE", sorted.
async fn invitations_of(app: &TestApp, student: &str, states: &[InvitationState]) -> Vec<String> {
    let mut all: Vec<String> = app
        .guardians()
        .list_guardian_invitations(ListGuardianInvitationsRequest {
            student_id: student.into(),
            states: states.iter().map(|s| *s as i32).collect(),
            page_size: 100,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .invitations
        .into_iter()
        .map(|i| {
            let source = InvitationSource::try_from(i.source).unwrap().as_str_name();
            format!("{} {source}", i.invited_email_address)
        })
        .collect();
    all.sort();
    all
}

/// The student's guardians as "guardian_id SOURCE", sorted.
async fn links_of(app: &TestApp, student: &str) -> Vec<String> {
    let mut all: Vec<String> = app
        .guardians()
        .list_guardians(ListGuardiansRequest {
            student_id: student.into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .guardians
        .into_iter()
        .map(|g| {
            let source = InvitationSource::try_from(g.source).unwrap().as_str_name();
            format!("{} {source}", g.guardian_id)
        })
        .collect();
    all.sort();
    all
}

/// Syncs `student` to `emails` and accepts each invitation the sync sent, as guardian
/// "g-<local part>": links a sync made.
async fn synced_links(app: &TestApp, student: &str, emails: &[&str]) {
    let reply = sync(app, request(student, emails, SyncRemoveScope::SyncedOnly)).await;
    for action in &reply.actions {
        if action.kind != sync_action::Kind::Invite as i32 {
            continue;
        }
        let invitation = GuardianInvitation {
            invitation_id: action.invitation_id.clone(),
            ..Default::default()
        };
        let address = action.email_address.as_str();
        let local = address.split('@').next().unwrap();
        accept_as(app, &invitation, &format!("g-{local}"), address).await;
    }
}

async fn provenance_decides_what_a_sync_removes(app: &TestApp) {
    seed_school(app, 2).await;
    link(
        app,
        "s1",
        "manual@example.org",
        "g-manual",
        "manual@example.org",
    )
    .await;
    invite(app, "s1", "waiting@example.org").await;

    // A sync invites what is missing, marked SYNC, and leaves what people made alone.
    let first = sync(
        app,
        request("s1", &["synced@example.org"], SyncRemoveScope::SyncedOnly),
    )
    .await;
    assert_eq!(actions(&first), vec!["INVITE synced@example.org"]);
    assert_eq!(
        invitations_of(app, "s1", &[InvitationState::Pending]).await,
        vec!["synced@example.org SYNC", "waiting@example.org MANUAL"]
    );
    let invitation_id = first.actions[0].invitation_id.clone();
    let accepted = GuardianInvitation {
        invitation_id,
        ..Default::default()
    };
    accept_as(app, &accepted, "g-synced", "synced@example.org").await;
    assert_eq!(
        links_of(app, "s1").await,
        vec!["g-manual MANUAL", "g-synced SYNC"]
    );

    // The export no longer lists the synced guardian: only that link goes, the person's link
    // and pending invitation stay although the list names neither.
    let second = sync(
        app,
        request("s1", &["new@example.org"], SyncRemoveScope::SyncedOnly),
    )
    .await;
    assert_eq!(
        actions(&second),
        vec![
            "DELETE_GUARDIAN synced@example.org",
            "INVITE new@example.org"
        ]
    );
    assert_eq!(second.domain, crate::fixtures::SCHOOL);
    assert_eq!(second.domain_link_count, 2, "counted before the deletion");
    assert_eq!(links_of(app, "s1").await, vec!["g-manual MANUAL"]);
    assert_eq!(
        invitations_of(app, "s1", &[InvitationState::Pending]).await,
        vec!["new@example.org SYNC", "waiting@example.org MANUAL"]
    );

    // Told ALL, it removes what people made as well.
    let all = sync(
        app,
        request("s1", &["new@example.org"], SyncRemoveScope::All),
    )
    .await;
    assert_eq!(
        actions(&all),
        vec![
            "CANCEL_INVITATION waiting@example.org",
            "DELETE_GUARDIAN manual@example.org",
            "KEEP new@example.org",
        ]
    );
    assert!(links_of(app, "s1").await.is_empty());
    assert_eq!(
        invitations_of(app, "s1", &[InvitationState::Pending]).await,
        vec!["new@example.org SYNC"]
    );
    // Nothing deleted, nothing counted.
    let calm = sync(
        app,
        request("s1", &["new@example.org"], SyncRemoveScope::All),
    )
    .await;
    assert_eq!(actions(&calm), vec!["KEEP new@example.org"]);
    assert_eq!(calm.domain_link_count, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provenance_decides_what_a_sync_removes_on_postgres() {
    provenance_decides_what_a_sync_removes(&spawn_app().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provenance_decides_what_a_sync_removes_on_sqlite() {
    provenance_decides_what_a_sync_removes(&spawn_sqlite_app().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mass_removal_is_refused_unless_forced() {
    let app = spawn_app().await;
    seed_school(&app, 2).await;
    let family = ["a@example.org", "b@example.org", "c@example.org"];
    synced_links(&app, "s1", &family).await;
    assert_eq!(links_of(&app, "s1").await.len(), 3);

    // Deleting three of the domain's three links is far over 10% (the limit is one link).
    let wrong_export = request("s1", &["d@example.org"], SyncRemoveScope::SyncedOnly);
    for dry_run in [true, false] {
        let refused = app
            .guardians()
            .sync_guardians(SyncGuardiansRequest {
                dry_run,
                ..wrong_export.clone()
            })
            .await;
        let status = assert_status(
            refused,
            Code::FailedPrecondition,
            "SYNC_REMOVAL_LIMIT_EXCEEDED",
        );
        use tonic_types::StatusExt;
        let info = status.get_details_error_info().unwrap();
        assert_eq!(
            (
                info.metadata["limit"].as_str(),
                info.metadata["current"].as_str()
            ),
            ("1", "3")
        );
    }
    // Nothing was done: the links stay, nothing was invited.
    assert_eq!(links_of(&app, "s1").await.len(), 3);
    assert!(
        invitations_of(&app, "s1", &[InvitationState::Pending])
            .await
            .is_empty()
    );

    // Out of range limits are refused as arguments.
    for percent in [-1, 101] {
        let bad = app
            .guardians()
            .sync_guardians(SyncGuardiansRequest {
                max_removal_percent: percent,
                ..wrong_export.clone()
            })
            .await;
        assert_status(bad, Code::InvalidArgument, "INVALID_ARGUMENT");
    }

    // A limit of 100% lets all three go; so would force.
    let forced = sync(
        &app,
        SyncGuardiansRequest {
            force: true,
            ..wrong_export.clone()
        },
    )
    .await;
    assert_eq!(forced.actions.len(), 4);
    assert!(links_of(&app, "s1").await.is_empty());
    assert_eq!(
        invitations_of(&app, "s1", &[InvitationState::Pending]).await,
        vec!["d@example.org SYNC"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guardianctl_holds_the_whole_run_to_the_limit() {
    let app = spawn_app().await;
    seed_school(&app, 4).await;
    for s in 1..=4 {
        synced_links(&app, &format!("s{s}"), &[&format!("old{s}@example.org")]).await;
    }
    // The export lost its guardians and names a placeholder for everyone: each call would
    // delete one link (never over a call's limit), the run deletes all four.
    let dir = guardian_service::testing::TempDir::new();
    let csv = dir.path.join("sync.csv");
    let mut body = String::from("Student,Guardian\n");
    for s in 1..=4 {
        body.push_str(&format!("s{s},office@example.org\n"));
    }
    std::fs::write(&csv, body).unwrap();
    let csv = csv.display().to_string();
    let addr = app.channel_uri.clone();

    for dry in [true, false] {
        let mut args = vec!["sync", "--csv", csv.as_str()];
        if dry {
            args.push("--dry-run");
        }
        let refused = guardianctl(&addr, &args);
        let stderr = String::from_utf8_lossy(&refused.stderr);
        assert_eq!(refused.status.code(), Some(2), "{stderr}");
        assert!(
            stderr.contains("4 of 4 links (the limit is 1, 10%)") && stderr.contains("--force"),
            "{stderr}"
        );
    }
    for s in 1..=4 {
        let student = format!("s{s}");
        assert_eq!(links_of(&app, &student).await.len(), 1, "nothing changed");
        assert!(
            invitations_of(&app, &student, &[InvitationState::Pending])
                .await
                .is_empty()
        );
    }

    let forced = guardianctl(&addr, &["sync", "--csv", &csv, "--force"]);
    assert_eq!(
        forced.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&forced.stderr)
    );
    for s in 1..=4 {
        let student = format!("s{s}");
        assert!(links_of(&app, &student).await.is_empty());
        assert_eq!(
            invitations_of(&app, &student, &[InvitationState::Pending]).await,
            vec!["office@example.org SYNC"]
        );
    }
}

/// `guardianctl list ... --format csv` as rows of named columns.
fn listed(app: &TestApp, what: &str) -> Vec<std::collections::HashMap<String, String>> {
    let out = guardianctl(
        &app.channel_uri,
        &[
            "list",
            what,
            "--student",
            "-",
            "--state",
            "pending,accepted",
            "--format",
            "csv",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut reader = csv::Reader::from_reader(out.stdout.as_slice());
    let header = reader.headers().unwrap().clone();
    reader
        .records()
        .map(|r| {
            header
                .iter()
                .zip(r.unwrap().iter())
                .map(|(h, v)| (h.to_owned(), v.to_owned()))
                .collect()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_name_their_student_and_say_who_made_them() {
    let app = spawn_app().await;
    seed_school(&app, 2).await;
    link(&app, "s1", "mum@example.org", "g-mum", "mum@example.org").await;
    sync(
        &app,
        request("s2", &["dad@example.org"], SyncRemoveScope::SyncedOnly),
    )
    .await;

    // The API: every read path, the admin's one-round-trip list and the teacher's alike.
    let for_teacher = app
        .guardians_as(&crate::helpers::teacher(
            "t-verified",
            crate::fixtures::SCHOOL,
        ))
        .list_guardians(ListGuardiansRequest {
            student_id: "s1".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .guardians;
    let for_admin = app
        .guardians_as(&crate::helpers::admin(crate::fixtures::SCHOOL))
        .list_guardians(ListGuardiansRequest {
            student_id: "s1".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .guardians;
    for guardians in [&for_teacher, &for_admin] {
        assert_eq!(
            guardians
                .iter()
                .map(|g| (
                    g.student_email_address.as_str(),
                    g.student_display_name.as_str()
                ))
                .collect::<Vec<_>>(),
            vec![("s1@school.example", "Name of s1")]
        );
    }
    let pending = app
        .guardians()
        .list_guardian_invitations(ListGuardianInvitationsRequest {
            student_id: "s2".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .invitations;
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].student_display_name, "Name of s2");
    let one = app
        .guardians()
        .get_guardian_invitation(GetGuardianInvitationRequest {
            student_id: "s2".into(),
            invitation_id: pending[0].invitation_id.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .invitation
        .unwrap();
    assert_eq!(one.student_email_address, "s2@school.example");

    // guardianctl lists every student's rows with names and provenance.
    let guardians = listed(&app, "guardians");
    assert_eq!(guardians.len(), 1);
    assert_eq!(guardians[0]["student_email"], "s1@school.example");
    assert_eq!(guardians[0]["student_name"], "Name of s1");
    assert_eq!(guardians[0]["source"], "MANUAL");
    let mut invitations: Vec<(String, String, String)> = listed(&app, "invitations")
        .into_iter()
        .map(|row| {
            (
                row["student_name"].clone(),
                row["invited_email"].clone(),
                row["source"].clone(),
            )
        })
        .collect();
    invitations.sort();
    assert_eq!(
        invitations,
        vec![
            (
                "Name of s1".to_owned(),
                "mum@example.org".to_owned(),
                "MANUAL".to_owned()
            ),
            (
                "Name of s2".to_owned(),
                "dad@example.org".to_owned(),
                "SYNC".to_owned()
            ),
        ]
    );
}

/// A sync is one transaction under the student's lock: its removal, its cancellation and its
/// two invitations are written together (one transaction id on all their audit events), a dry
/// run before it writes nothing, and the invitations count against the limit after the
/// removals (a student at the limit of 2 ends with the two listed addresses).
#[tokio::test]
async fn a_sync_applies_its_plan_in_one_transaction() {
    let app = spawn_app().await;
    seed_school(&app, 1).await;
    crate::fixtures::set_settings(
        &app,
        DomainSettings {
            max_guardians_per_student: 2,
            ..Default::default()
        },
        &["max_guardians_per_student"],
    )
    .await;
    link(
        &app,
        "s1",
        "a@families.example",
        "g-a",
        "a@families.example",
    )
    .await;
    invite(&app, "s1", "b@families.example").await;
    let wanted = ["c@families.example", "d@families.example"];
    let mut req = request("s1", &wanted, SyncRemoveScope::All);
    req.force = true;
    let before = crate::bulk::held(&app).await;
    let dry = sync(
        &app,
        SyncGuardiansRequest {
            dry_run: true,
            ..req.clone()
        },
    )
    .await;
    assert_eq!(
        crate::bulk::held(&app).await,
        before,
        "a dry run writes nothing"
    );
    let reply = sync(&app, req).await;
    assert_eq!(actions(&dry), actions(&reply));
    assert_eq!(
        actions(&reply),
        [
            "CANCEL_INVITATION b@families.example",
            "DELETE_GUARDIAN a@families.example",
            "INVITE c@families.example",
            "INVITE d@families.example"
        ]
    );
    assert_eq!(
        invitations_of(&app, "s1", &[InvitationState::Pending]).await,
        ["c@families.example SYNC", "d@families.example SYNC"]
    );
    let transactions = crate::bulk_remove::transactions_writing(
        &app,
        "action IN ('guardian.removed', 'invitation.cancelled') OR (action = \
         'invitation.created' AND invitation_id IN \
         (SELECT invitation_id FROM invitations WHERE source = 'SYNC'))",
    )
    .await;
    assert_eq!(transactions, 1);
}
