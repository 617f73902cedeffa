//! `guardianctl import oneroster` against a real server on Postgres: a dry run changes nothing,
//! an apply mirrors the export (directory, then guardians as SYNC invitations), a second apply
//! changes nothing, a guardian dropped from the export is cancelled, 1.2 zips read as 1.1
//! folders do, and malformed exports are refused with file, line and column before anything is
//! written.

use crate::cli::guardianctl;
use crate::helpers::{TestApp, spawn_app};
use crate::oneroster_export::{Export, SCHOOL_NAME};
use guardian_service::proto::*;

const DOMAIN: &str = "lincoln.example";

fn import(app: &TestApp, path: &std::path::Path, extra: &[&str]) -> std::process::Output {
    let path = path.display().to_string();
    let mut args = vec!["import", "oneroster", path.as_str(), "--domain", DOMAIN];
    args.extend_from_slice(extra);
    guardianctl(&app.channel_uri, &args)
}

fn text(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

async fn users_of_domain(app: &TestApp) -> usize {
    app.directory()
        .list_users(ListUsersRequest {
            domain: DOMAIN.into(),
            page_size: 100,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .users
        .len()
}

/// The domain's PENDING invitations as "student address SOURCE", sorted.
async fn pending(app: &TestApp) -> Vec<String> {
    let mut all = Vec::new();
    for student in ["st1", "st2", "st3", "st4"] {
        let found = app
            .guardians()
            .list_guardian_invitations(ListGuardianInvitationsRequest {
                student_id: student.into(),
                ..Default::default()
            })
            .await;
        let Ok(found) = found else { continue };
        for i in found.into_inner().invitations {
            let source = InvitationSource::try_from(i.source).unwrap().as_str_name();
            all.push(format!("{student} {} {source}", i.invited_email_address));
        }
    }
    all.sort();
    all
}

async fn outbox_rows(app: &TestApp) -> i64 {
    let pool = sqlx::PgPool::connect(&app.database_url).await.unwrap();
    let count = sqlx::query_scalar("SELECT COUNT(*) FROM outbox")
        .fetch_one(&pool)
        .await
        .unwrap();
    pool.close().await;
    count
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_export_is_planned_applied_and_applied_again_to_no_effect() {
    let app = spawn_app().await;
    let dir = guardian_service::testing::TempDir::new();
    let folder = Export::default().folder(&dir.path, "export");

    // The dry run (the default) plans per school and writes nothing.
    let dry = import(&app, &folder, &[]);
    assert_eq!(dry.status.code(), Some(0), "{}", text(&dry));
    let said = text(&dry);
    assert!(
        said.contains("OneRoster 1.1 export: 7 users, 2 classes"),
        "{said}"
    );
    let school_line = said
        .lines()
        .find(|l| l.starts_with(SCHOOL_NAME))
        .unwrap_or_else(|| panic!("no line for the school in {said}"));
    let counts: Vec<&str> = school_line[SCHOOL_NAME.len()..]
        .split_whitespace()
        .filter(|c| *c != "|")
        .collect();
    // students teachers admins classes | invite cancel remove keep failed
    assert_eq!(
        counts,
        vec!["4", "2", "1", "2", "3", "0", "0", "0", "0"],
        "{said}"
    );
    assert!(said.contains("1 users without an email address"), "{said}");
    assert!(said.contains("nothing was changed"), "{said}");
    assert_eq!(users_of_domain(&app).await, 0);
    assert!(pending(&app).await.is_empty());

    // Applied: the directory, the classes, and the guardians as SYNC invitations.
    let applied = import(&app, &folder, &["--apply", "--teachers-verified"]);
    assert_eq!(applied.status.code(), Some(0), "{}", text(&applied));
    assert!(
        text(&applied).contains("3 invitations sent, 0 cancelled, 0 links removed"),
        "{}",
        text(&applied)
    );
    assert_eq!(users_of_domain(&app).await, 7);
    let teacher = app
        .directory()
        .get_user(GetUserRequest {
            user_id: "te1".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .user
        .unwrap();
    assert!(teacher.verified_teacher);
    assert_eq!(teacher.display_name, "Tess Math");
    assert_eq!(
        pending(&app).await,
        vec![
            "st1 pa1@family.example SYNC",
            "st2 pa1@family.example SYNC",
            "st3 pa2@family.example SYNC",
        ]
    );
    // The teacher of math may read st3's guardians: the class reached the directory.
    let as_teacher = app
        .guardians_as(&crate::helpers::teacher("te1", DOMAIN))
        .list_guardian_invitations(ListGuardianInvitationsRequest {
            student_id: "st3".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .invitations;
    assert_eq!(as_teacher.len(), 1);

    // The same export again: nothing to do, nothing mailed.
    let mails = outbox_rows(&app).await;
    let again = import(&app, &folder, &["--apply"]);
    assert_eq!(again.status.code(), Some(0), "{}", text(&again));
    assert!(
        text(&again).contains("0 invitations sent, 0 cancelled, 0 links removed"),
        "{}",
        text(&again)
    );
    assert_eq!(outbox_rows(&app).await, mails);

    // pa2 left the export: the invitation the sync made is cancelled.
    let changed = Export {
        st3_has_pa2: false,
        ..Export::default()
    }
    .folder(&dir.path, "changed");
    let applied = import(&app, &changed, &["--apply"]);
    assert_eq!(applied.status.code(), Some(0), "{}", text(&applied));
    assert!(
        text(&applied).contains("0 invitations sent, 1 cancelled, 0 links removed"),
        "{}",
        text(&applied)
    );
    assert_eq!(
        pending(&app).await,
        vec!["st1 pa1@family.example SYNC", "st2 pa1@family.example SYNC"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_one_point_two_zip_reads_as_a_folder_does() {
    let app = spawn_app().await;
    let dir = guardian_service::testing::TempDir::new();
    let zip = Export {
        version: "1.2",
        ..Export::default()
    }
    .zip(&dir.path, "export.zip");
    let applied = import(&app, &zip, &["--apply"]);
    assert_eq!(applied.status.code(), Some(0), "{}", text(&applied));
    assert!(
        text(&applied).contains("OneRoster 1.2 export: 7 users, 2 classes"),
        "{}",
        text(&applied)
    );
    assert_eq!(users_of_domain(&app).await, 7);
    assert_eq!(pending(&app).await.len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_exports_are_refused_before_anything_is_written() {
    let app = spawn_app().await;
    let dir = guardian_service::testing::TempDir::new();
    let header = "sourcedId,status,dateLastModified,enabledUser,orgSourcedIds,role,username,\
                  userIds,givenName,familyName,middleName,identifier,email,sms,phone,\
                  agentSourcedIds,grades,password\n";
    let row = |id: &str, role: &str, email: &str| {
        format!("{id},active,2026-09-01,true,school-1,{role},{id},,A,B,,,{email},,,\"\",,\n")
    };
    let cases: Vec<(&str, Export, &str)> = vec![
        (
            "missing",
            Export {
                without: vec!["enrollments.csv"],
                ..Export::default()
            },
            "enrollments.csv missing",
        ),
        (
            "no-email-column",
            Export {
                users_csv: Some("sourcedId,role,givenName,familyName\nst1,student,A,B\n".into()),
                ..Export::default()
            },
            "users.csv: no column email",
        ),
        (
            "bad-role",
            Export {
                users_csv: Some(format!(
                    "{header}{}{}",
                    row("st1", "student", "st1@lincoln.example"),
                    row("st2", "wizard", "st2@lincoln.example")
                )),
                ..Export::default()
            },
            "users.csv line 3, column role: \"wizard\" is not a OneRoster role",
        ),
        (
            "bad-email",
            Export {
                users_csv: Some(format!(
                    "{header}{}{}{}",
                    row("st1", "student", "st1@lincoln.example"),
                    row("st2", "student", "st2@lincoln.example"),
                    row("st3", "student", "not-an-address")
                )),
                ..Export::default()
            },
            "users.csv line 4, column email: \"not-an-address\" is not an email address",
        ),
        (
            "short-row",
            Export {
                users_csv: Some(format!("{header}st1,active\n")),
                ..Export::default()
            },
            "users.csv line 2: 2 fields where the header has 18",
        ),
    ];
    for (name, export, expected) in cases {
        let folder = export.folder(&dir.path, name);
        let out = import(&app, &folder, &["--apply"]);
        assert_eq!(out.status.code(), Some(2), "{name}: {}", text(&out));
        assert!(text(&out).contains(expected), "{name}: {}", text(&out));
    }
    assert_eq!(users_of_domain(&app).await, 0, "nothing was written");
}

/// Who leaves the school leaves the directory: asked to, a whole (bulk) export that no longer
/// lists a student removes them (their guardians' invitations end with them), and a class
/// marked `tobedeleted` goes in any case; the dry run shows it and changes nothing; an export cut short, that
/// would remove more students than the safety limit, is refused unless forced; a delta export
/// removes only the users it marks.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leavers_leave_the_directory_and_a_cut_export_is_refused() {
    let app = spawn_app().await;
    let dir = guardian_service::testing::TempDir::new();
    let full = Export::default().folder(&dir.path, "full");
    let applied = import(&app, &full, &["--apply"]);
    assert_eq!(applied.status.code(), Some(0), "{}", text(&applied));
    assert!(
        text(&applied)
            .contains("leaving the directory: 0 students, 0 teachers, 0 others; 0 classes deleted"),
        "{}",
        text(&applied)
    );
    assert_eq!(users_of_domain(&app).await, 7);

    let changed = Export {
        left: vec!["st1"],
        marked: vec!["math"],
        ..Export::default()
    }
    .folder(&dir.path, "changed");
    // Unlisted students stay unless asked: a domain may hold schools another export covers.
    let dry = import(&app, &changed, &[]);
    assert!(
        text(&dry)
            .contains("leaving the directory: 0 students, 0 teachers, 0 others; 1 classes deleted"),
        "{}",
        text(&dry)
    );
    let dry = import(&app, &changed, &["--remove-unlisted"]);
    assert_eq!(dry.status.code(), Some(0), "{}", text(&dry));
    assert!(
        text(&dry)
            .contains("leaving the directory: 1 students, 0 teachers, 0 others; 1 classes deleted"),
        "{}",
        text(&dry)
    );
    assert_eq!(users_of_domain(&app).await, 7, "a dry run changes nothing");
    let math_teacher = crate::helpers::teacher("te1", DOMAIN);
    let as_math_teacher = || async {
        app.guardians_as(&math_teacher)
            .list_guardian_invitations(ListGuardianInvitationsRequest {
                student_id: "st2".into(),
                ..Default::default()
            })
            .await
    };
    assert!(as_math_teacher().await.is_ok(), "te1 teaches st2 in math");
    let applied = import(&app, &changed, &["--apply", "--remove-unlisted"]);
    assert_eq!(applied.status.code(), Some(0), "{}", text(&applied));
    assert!(
        text(&applied).contains("1 users and 1 classes removed from the directory"),
        "{}",
        text(&applied)
    );
    assert_eq!(users_of_domain(&app).await, 6);
    let gone = app
        .directory()
        .get_user(GetUserRequest {
            user_id: "st1".into(),
        })
        .await
        .expect_err("st1 left");
    assert_eq!(gone.code(), tonic::Code::NotFound);
    assert_eq!(
        pending(&app).await,
        vec!["st2 pa1@family.example SYNC", "st3 pa2@family.example SYNC"],
        "st1's invitation ended with st1"
    );
    assert!(
        as_math_teacher().await.is_err(),
        "math is gone, and te1 with it"
    );

    // Cut short: two of the three remaining students missing is over the 10% limit.
    let cut = Export {
        left: vec!["st1", "st2", "st3"],
        ..Export::default()
    }
    .folder(&dir.path, "cut");
    let refused = import(&app, &cut, &["--apply", "--remove-unlisted"]);
    assert_ne!(refused.status.code(), Some(0), "{}", text(&refused));
    assert!(
        text(&refused).contains("would remove 2 of the domain's 3 students"),
        "{}",
        text(&refused)
    );
    assert_eq!(users_of_domain(&app).await, 6, "nothing changed");

    // A delta that marks te2: only te2 leaves; the users it does not list stay.
    let delta = Export {
        users_mode: "delta",
        left: vec![
            "st1", "st2", "st3", "st4", "te1", "ad1", "pa1", "pa2", "re1", "ai1",
        ],
        marked: vec!["te2"],
        ..Export::default()
    }
    .folder(&dir.path, "delta");
    let applied = import(&app, &delta, &["--apply"]);
    assert_eq!(applied.status.code(), Some(0), "{}", text(&applied));
    assert!(
        text(&applied).contains("leaving the directory: 0 students, 1 teachers, 0 others"),
        "{}",
        text(&applied)
    );
    assert_eq!(users_of_domain(&app).await, 5);
    assert_eq!(
        pending(&app).await,
        vec!["st2 pa1@family.example SYNC", "st3 pa2@family.example SYNC"],
        "a delta that lists no student syncs no guardians"
    );
}
