//! guardianctl, the real binary, against a real server on Postgres: CSV imports with malformed
//! lines, dry runs, removal, sync, and an import interrupted by killing the server (R7).

use crate::fixtures::{SCHOOL, invite, link, seed_school};
use crate::helpers::{TestApp, platform, spawn_app};
use guardian_service::proto::*;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

pub(crate) fn guardianctl(app_addr: &str, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_guardianctl"))
        .args(["--server", app_addr])
        .args(args)
        .env("GUARDIANS_TOKEN", platform())
        .output()
        .expect("run guardianctl")
}

fn addr(app: &TestApp) -> String {
    app.channel_uri.clone()
}

fn write(dir: &guardian_service::testing::TempDir, name: &str, bytes: &[u8]) -> String {
    let path = dir.path.join(name);
    std::fs::write(&path, bytes).unwrap();
    path.display().to_string()
}

fn read_report(path: &str) -> Vec<Vec<String>> {
    let mut reader = csv::Reader::from_path(path).unwrap();
    reader
        .records()
        .map(|r| r.unwrap().iter().map(str::to_owned).collect())
        .collect()
}

async fn pending_of(app: &TestApp, student: &str) -> Vec<String> {
    let mut emails: Vec<String> = app
        .guardians()
        .list_guardian_invitations(ListGuardianInvitationsRequest {
            student_id: student.into(),
            page_size: 100,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .invitations
        .into_iter()
        .map(|i| i.invited_email_address)
        .collect();
    emails.sort();
    emails
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_import_keeps_good_rows_and_reports_bad_ones_by_line() {
    let app = spawn_app().await;
    seed_school(&app, 3).await;
    let dir = guardian_service::testing::TempDir::new();
    let csv = write(
        &dir,
        "gam.csv",
        b"\xEF\xBB\xBFStudent,Guardian\r\ns1@school.example,Mum@Example.org\r\n\r\ns2,dad@example.org,extra\r\ns2,not-an-email\r\nnobody,x@example.org\r\n\"s3\",\"carer@example.org\"\r\n",
    );
    let report = dir.path.join("report.csv").display().to_string();

    let dry = guardianctl(
        &addr(&app),
        &["invite", "--csv", &csv, "--dry-run", "--report", &report],
    );
    assert_eq!(
        dry.status.code(),
        Some(1),
        "some rows fail even in a dry run"
    );
    assert!(
        pending_of(&app, "s1").await.is_empty(),
        "a dry run changes nothing"
    );
    let dry_summary = String::from_utf8_lossy(&dry.stdout);
    assert!(
        dry_summary.contains("invite (dry run, nothing changed): 5 rows, 2 planned, 3 would fail"),
        "{dry_summary}"
    );
    let planned = read_report(&report);
    assert_eq!(planned.iter().find(|r| r[0] == "2").unwrap()[3], "PLANNED");

    let out = guardianctl(&addr(&app), &["invite", "--csv", &csv, "--report", &report]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary = String::from_utf8_lossy(&out.stdout);
    assert!(summary.contains("5 rows, 2 ok, 3 failed"), "{summary}");
    let rows = read_report(&report);
    let by_line = |line: &str| {
        rows.iter()
            .find(|r| r[0] == line)
            .unwrap_or_else(|| panic!("line {line} in {rows:?}"))
            .clone()
    };
    assert_eq!(by_line("2")[3], "OK");
    assert_eq!(
        by_line("4")[4],
        "malformed: 3 fields where the header has 2"
    );
    // The reason speaks of the field, not of the row's place in a chunk.
    assert!(
        by_line("5")[4].starts_with("INVALID_EMAIL: invited_email_address"),
        "{:?}",
        by_line("5")
    );
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        said.contains("line 4: FAILED: malformed: 3 fields where the header has 2"),
        "{said}"
    );
    assert!(!said.contains(":  :") && !said.contains("rows["), "{said}");
    assert!(
        by_line("6")[4].contains("STUDENT_NOT_FOUND"),
        "{:?}",
        by_line("6")
    );
    assert_eq!(by_line("7")[3], "OK");
    assert_eq!(pending_of(&app, "s1").await, vec!["mum@example.org"]);
    assert_eq!(pending_of(&app, "s3").await, vec!["carer@example.org"]);

    // Running the same file again is safe: the done rows replay, nothing doubles.
    let again = guardianctl(&addr(&app), &["invite", "--csv", &csv]);
    assert!(
        String::from_utf8_lossy(&again.stdout).contains("2 ok"),
        "{}",
        String::from_utf8_lossy(&again.stdout)
    );
    assert_eq!(pending_of(&app, "s1").await, vec!["mum@example.org"]);

    let missing_header = write(&dir, "bad.csv", b"s1,a@example.org\n");
    let out = guardianctl(&addr(&app), &["invite", "--csv", &missing_header]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("line 1"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remove_and_sync_make_the_file_true() {
    let app = spawn_app().await;
    seed_school(&app, 3).await;
    // s1: one guardian who accepted under another address, one pending, one to remove. People
    // made them all, so only a sync told to remove ALL touches them.
    link(&app, "s1", "old@example.org", "g-moved", "new@example.org").await;
    link(&app, "s1", "gone@example.org", "g-gone", "gone@example.org").await;
    invite(&app, "s1", "stale@example.org").await;
    invite(&app, "s2", "untouched@example.org").await;

    let dir = guardian_service::testing::TempDir::new();
    // s1 keeps the guardian by their profile address, keeps nothing else, gains one; s2 is
    // not in the file and is left alone.
    let csv = write(&dir, "sync.csv", b"student_email,guardian_email\ns1@school.example,new@example.org\ns1@school.example,added@example.org\n");
    let report = dir.path.join("sync.csv.report").display().to_string();
    let dry = guardianctl(
        &addr(&app),
        &[
            "sync",
            "--csv",
            &csv,
            "--remove-scope",
            "all",
            "--dry-run",
            "--report",
            &report,
        ],
    );
    assert_eq!(
        dry.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&dry.stdout)
    );
    // Two rows of the file become four actions; a dry run plans them.
    let dry_summary = String::from_utf8_lossy(&dry.stdout);
    assert!(
        dry_summary.contains(
            "sync (dry run, nothing changed): 2 rows, 4 actions: 4 planned, 0 would fail"
        ),
        "{dry_summary}"
    );
    let plan = read_report(&report);
    let removal = plan
        .iter()
        .find(|r| r[2] == "gone@example.org")
        .expect("the removal is planned");
    assert_eq!(
        (removal[0].as_str(), removal[3].as_str()),
        ("", "DELETE_GUARDIAN PLANNED"),
        "an action from no line of the file has no line number"
    );
    assert_eq!(pending_of(&app, "s1").await, vec!["stale@example.org"]);

    let sync_all = [
        "sync",
        "--csv",
        &csv,
        "--remove-scope",
        "all",
        "--report",
        &report,
    ];
    let out = guardianctl(&addr(&app), &sync_all);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let outcomes: Vec<String> = read_report(&report)
        .into_iter()
        .map(|r| format!("{} {}", r[2], r[3]))
        .collect();
    for expected in [
        "new@example.org KEEP OK",
        "added@example.org INVITE OK",
        "gone@example.org DELETE_GUARDIAN OK",
        "stale@example.org CANCEL_INVITATION OK",
    ] {
        assert!(
            outcomes.contains(&expected.to_string()),
            "{expected} not in {outcomes:?}"
        );
    }
    assert_eq!(pending_of(&app, "s1").await, vec!["added@example.org"]);
    assert_eq!(pending_of(&app, "s2").await, vec!["untouched@example.org"]);
    let links = app
        .guardians()
        .list_guardians(ListGuardiansRequest {
            student_id: "s1".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .guardians;
    assert_eq!(
        links
            .iter()
            .map(|g| g.guardian_id.as_str())
            .collect::<Vec<_>>(),
        vec!["g-moved"]
    );

    // An unchanged file changes nothing more.
    let again = guardianctl(&addr(&app), &sync_all);
    assert_eq!(again.status.code(), Some(0));
    assert!(
        read_report(&report).iter().all(|r| r[3] == "KEEP OK"),
        "{:?}",
        read_report(&report)
    );

    // An empty list removes nothing unless asked to.
    let empty = SyncGuardiansRequest {
        student_id: "s1".into(),
        remove_scope: SyncRemoveScope::All as i32,
        ..Default::default()
    };
    let plan = app
        .guardians()
        .sync_guardians(empty.clone())
        .await
        .unwrap()
        .into_inner();
    assert!(plan.actions.is_empty());
    let all = SyncGuardiansRequest {
        allow_remove_all: true,
        ..empty
    };
    let plan = app
        .guardians()
        .sync_guardians(all)
        .await
        .unwrap()
        .into_inner();
    assert_eq!(plan.actions.len(), 2, "{:?}", plan.actions);
    assert!(pending_of(&app, "s1").await.is_empty());

    // Removal by CSV, by address.
    let dir2 = guardian_service::testing::TempDir::new();
    let csv = write(
        &dir2,
        "remove.csv",
        b"Student,Guardian\ns2,nobody@example.org\n",
    );
    let out = guardianctl(&addr(&app), &["remove", "--csv", &csv]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "no such guardian is a failed row"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("GUARDIAN_NOT_FOUND"));
    let _ = SCHOOL;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remove_ends_the_link_and_the_pending_invitations_of_the_pair() {
    let app = spawn_app().await;
    seed_school(&app, 3).await;
    link(
        &app,
        "s1",
        "linked@example.org",
        "g-1",
        "linked@example.org",
    )
    .await;
    invite(&app, "s2", "waiting@example.org").await;
    let dir = guardian_service::testing::TempDir::new();
    let report = dir.path.join("report.csv").display().to_string();
    let outcomes = |report: &str| -> Vec<String> {
        read_report(report)
            .into_iter()
            .map(|r| {
                let reason = r[4].split(':').next().unwrap_or_default();
                format!("{} {} {reason}", r[1], r[3])
            })
            .collect()
    };

    // Each row's reach narrowed: a pending invitation is not a link, and the other way round.
    let csv = write(
        &dir,
        "narrow.csv",
        b"Student,Guardian\ns1,linked@example.org\ns2,waiting@example.org\n",
    );
    let accepted_only = guardianctl(
        &addr(&app),
        &[
            "remove",
            "--csv",
            &csv,
            "--accepted-only",
            "--report",
            &report,
        ],
    );
    assert_eq!(accepted_only.status.code(), Some(1));
    assert_eq!(
        outcomes(&report),
        vec!["s1 OK ", "s2 FAILED GUARDIAN_NOT_FOUND"]
    );
    assert_eq!(pending_of(&app, "s2").await, vec!["waiting@example.org"]);
    link(
        &app,
        "s1",
        "linked@example.org",
        "g-1",
        "linked@example.org",
    )
    .await;
    let pending_only = guardianctl(
        &addr(&app),
        &[
            "remove",
            "--csv",
            &csv,
            "--pending-only",
            "--report",
            &report,
        ],
    );
    assert_eq!(pending_only.status.code(), Some(1));
    assert_eq!(
        outcomes(&report),
        vec!["s1 FAILED INVITATION_NOT_FOUND", "s2 OK "]
    );
    assert!(pending_of(&app, "s2").await.is_empty());
    let s1_links = |app: &TestApp| {
        let mut guardians = app.guardians();
        async move {
            guardians
                .list_guardians(ListGuardiansRequest {
                    student_id: "s1".into(),
                    ..Default::default()
                })
                .await
                .unwrap()
                .into_inner()
                .guardians
                .len()
        }
    };
    assert_eq!(
        s1_links(&app).await,
        1,
        "a pending-only removal leaves the link"
    );

    // By default a row ends whatever the pair has: the link, the pending invitations.
    let waiting = invite(&app, "s2", "waiting@example.org").await;
    let csv = write(
        &dir,
        "both.csv",
        b"Student,Guardian\ns1,linked@example.org\ns2,waiting@example.org\ns3,nobody@example.org\n",
    );
    let both = guardianctl(&addr(&app), &["remove", "--csv", &csv, "--report", &report]);
    assert_eq!(
        both.status.code(),
        Some(1),
        "the third row has nothing to remove"
    );
    assert_eq!(
        outcomes(&report),
        vec!["s1 OK ", "s2 OK ", "s3 FAILED GUARDIAN_NOT_FOUND"]
    );
    assert_eq!(s1_links(&app).await, 0);
    assert!(pending_of(&app, "s2").await.is_empty());
    let cancelled = app
        .guardians()
        .get_guardian_invitation(GetGuardianInvitationRequest {
            student_id: "s2".into(),
            invitation_id: waiting.invitation_id.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .invitation
        .unwrap();
    assert_eq!(
        (cancelled.state, cancelled.removal_reason),
        (
            InvitationState::Removed as i32,
            RemovalReason::Cancelled as i32
        )
    );
}

/// The real server binary, as a child process, returned once it reports SERVING.
struct ServerProcess {
    child: std::process::Child,
}

impl ServerProcess {
    fn start(database_url: &str, port: u16, data_dir: &std::path::Path) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_guardian-service"))
            .env("GUARDIANS_DATABASE_URL", database_url)
            .env("GUARDIANS_LISTEN", format!("127.0.0.1:{port}"))
            .env("GUARDIANS_JWT_HS256_SECRET", crate::helpers::SECRET)
            .env("GUARDIANS_MAIL_DISPATCHER", "false")
            // Each invitation's email queued with it, so a test counts one per row.
            .env("GUARDIANS_FAMILY_WINDOW", "0s")
            .env("GUARDIANS_DATA_DIR", data_dir)
            .env("RUST_LOG", "info")
            .env("GUARDIANS_LOG_FORMAT", "text")
            .stderr(Stdio::piped())
            .spawn()
            .expect("start guardian-service");
        // Wait for its own word that it serves; keep draining its log afterwards so that a
        // full pipe never blocks it.
        let stderr = child.stderr.take().unwrap();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut ready = Some(ready_tx);
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if line.contains("SERVING")
                    && !line.contains("NOT_SERVING")
                    && let Some(tx) = ready.take()
                {
                    let _ = tx.send(());
                }
            }
        });
        ready_rx.recv().expect("the server reported SERVING");
        Self { child }
    }

    fn kill(mut self) {
        self.child.kill().expect("kill");
        self.child.wait().expect("reap");
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_import_cut_short_by_killing_the_server_completes_on_rerun_without_duplicates() {
    let db = guardian_service::testing::TestDatabase::create().await;
    let dir = guardian_service::testing::TempDir::new();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let server = ServerProcess::start(&db.url, port, &dir.path);
    let uri = format!("http://127.0.0.1:{port}");

    // 150 students, 20 guardians each (the limit): 3,000 rows in 15 chunks, six in flight.
    const STUDENTS: usize = 150;
    const ROWS: i64 = STUDENTS as i64 * 20;
    let channel = tonic::transport::Channel::from_shared(uri.clone())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let bearer = crate::helpers::Bearer::new(&platform());
    let authed = tonic::service::interceptor::InterceptedService::new(channel, bearer);
    let users = (0..STUDENTS)
        .map(|n| User {
            user_id: format!("k{n}"),
            domain: SCHOOL.into(),
            email: format!("k{n}@{SCHOOL}"),
            role: UserRole::Student as i32,
            ..Default::default()
        })
        .collect();
    directory_service_client::DirectoryServiceClient::new(authed)
        .upsert_users(UpsertUsersRequest { users })
        .await
        .unwrap();
    let mut csv = String::from("Student,Guardian\n");
    for n in 0..STUDENTS {
        for g in 0..20 {
            csv.push_str(&format!("k{n},g{g}-k{n}@families.example\n"));
        }
    }
    let path = write(&dir, "big.csv", csv.as_bytes());

    let report = dir.path.join("first-run.csv");
    let mut import = Command::new(env!("CARGO_BIN_EXE_guardianctl"))
        .args(["--server", &uri, "invite", "--csv", &path, "--chunk", "200"])
        .arg("--report")
        .arg(&report)
        .env("GUARDIANS_TOKEN", platform())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Kill the server once the import reports its first tenth done.
    let mut progress = BufReader::new(import.stderr.take().unwrap()).lines();
    loop {
        let line = progress.next().expect("progress before the end").unwrap();
        if line.starts_with("progress:") {
            break;
        }
    }
    server.kill();
    let first = import.wait_with_output().unwrap();
    assert_eq!(
        first.status.code(),
        Some(1),
        "the cut-short import reports unfinished rows"
    );
    // R15: no row is reported FAILED that may have been applied; the ones cut off are UNKNOWN,
    // and every row reported OK is in the database.
    let outcomes: Vec<String> = csv::Reader::from_path(&report)
        .unwrap()
        .records()
        .map(|r| r.unwrap()[3].to_owned())
        .collect();
    let count = |what: &str| outcomes.iter().filter(|o| o.as_str() == what).count() as i64;
    let (ok, unknown) = (count("OK"), count("UNKNOWN"));
    assert_eq!(count("FAILED"), 0, "{outcomes:?}");
    assert!(unknown > 0, "the cut-off chunks are unknown");
    assert_eq!(ok + unknown, ROWS);
    let pool = sqlx::PgPool::connect(&db.url).await.unwrap();
    let applied: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM invitations")
        .fetch_one(&pool)
        .await
        .unwrap();
    pool.close().await;
    assert!(
        ok <= applied && applied <= ok + unknown,
        "ok {ok}, unknown {unknown}, applied {applied}"
    );

    let _server = ServerProcess::start(&db.url, port, &dir.path);
    let rerun = Command::new(env!("CARGO_BIN_EXE_guardianctl"))
        .args(["--server", &uri, "invite", "--csv", &path, "--chunk", "200"])
        .env("GUARDIANS_TOKEN", platform())
        .output()
        .unwrap();
    let summary = String::from_utf8_lossy(&rerun.stdout);
    assert_eq!(
        rerun.status.code(),
        Some(0),
        "{summary}{}",
        String::from_utf8_lossy(&rerun.stderr)
    );
    assert!(
        summary.contains(&format!("{ROWS} rows, {ROWS} ok, 0 failed")),
        "{summary}"
    );

    let pool = sqlx::PgPool::connect(&db.url).await.unwrap();
    let invitations: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM invitations")
        .fetch_one(&pool)
        .await
        .unwrap();
    let created: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM guardian_events WHERE action = 'invitation.created'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    let mails: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM outbox")
        .fetch_one(&pool)
        .await
        .unwrap();
    pool.close().await;
    assert_eq!(
        (invitations, created, mails),
        (ROWS, ROWS, ROWS),
        "one effect per row"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_problems_and_a_missing_token_are_named() {
    let app = spawn_app().await;
    seed_school(&app, 1).await;
    let host_port = addr(&app).trim_start_matches("http://").to_owned();
    // host:port is plain HTTP/2.
    let ok = guardianctl(&host_port, &["list", "guardians", "--student", "s1"]);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );

    let stderr = |out: &std::process::Output| String::from_utf8_lossy(&out.stderr).into_owned();
    // Port 1 (tcpmux): privileged and unused, so refused; a port freed by this test could be
    // taken by a parallel one in between.
    let refused = guardianctl("127.0.0.1:1", &["list", "guardians", "--student", "s1"]);
    assert_eq!(refused.status.code(), Some(2));
    assert!(
        stderr(&refused).contains("connection refused"),
        "{}",
        stderr(&refused)
    );

    let tls = guardianctl("https://127.0.0.1:1", &["health"]);
    assert!(stderr(&tls).contains("plain HTTP/2"), "{}", stderr(&tls));

    let no_token = Command::new(env!("CARGO_BIN_EXE_guardianctl"))
        .args([
            "--server",
            &host_port,
            "list",
            "guardians",
            "--student",
            "s1",
        ])
        .env_remove("GUARDIANS_TOKEN")
        .output()
        .unwrap();
    assert_eq!(no_token.status.code(), Some(2));
    let said = stderr(&no_token);
    assert!(
        said.contains("GUARDIANS_TOKEN") && said.contains("guardian-service token"),
        "{said}"
    );
}

#[test]
fn help_lists_every_variable_read_without_dangling_values() {
    let help = Command::new(env!("CARGO_BIN_EXE_guardian-service"))
        .arg("--help")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&help.stdout);
    for variable in [
        "GUARDIANS_DATABASE_URL",
        "GUARDIANS_LISTEN",
        "RUST_LOG",
        "GUARDIANS_LOG_FORMAT",
        "OTEL_EXPORTER_OTLP_ENDPOINT",
    ] {
        assert!(text.contains(variable), "{variable} missing from --help");
    }
    // `[env: NAME=]` is what clap shows for an unset variable unless values are hidden.
    assert!(!text.contains("=]"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bench_counts_only_ok_as_done_and_names_every_other_answer() {
    let app = spawn_app().await;
    let student = User {
        user_id: "s0".into(),
        domain: SCHOOL.into(),
        email: format!("s0@{SCHOOL}"),
        role: UserRole::Student as i32,
        ..Default::default()
    };
    app.directory()
        .upsert_users(UpsertUsersRequest {
            users: vec![student],
        })
        .await
        .unwrap();
    // One student (scale 1/100,000) and 40 invitations: 20 fit the limit, 20 are refused.
    let run = || {
        Command::new(env!("CARGO_BIN_EXE_guardian-bench"))
            .args(["run", "--server", &addr(&app), "--scenario", "create"])
            .args(["--requests", "40", "--warmup", "0", "--scale", "0.00001"])
            .args(["--concurrency", "8", "--channels", "1"])
            .env("GUARDIANS_JWT_HS256_SECRET", crate::helpers::SECRET)
            .output()
            .unwrap()
    };
    let first = run();
    let said = String::from_utf8_lossy(&first.stdout);
    assert!(
        said.contains("20 requests answered OK")
            && said.contains("20 errors (RESOURCE_EXHAUSTED 20)"),
        "{said}{}",
        String::from_utf8_lossy(&first.stderr)
    );
    // A second run sends new addresses: still refused by the limit, never "already pending".
    let second = run();
    let said = String::from_utf8_lossy(&second.stdout);
    assert!(
        said.contains("0 requests answered OK") && said.contains("(RESOURCE_EXHAUSTED 40)"),
        "{said}"
    );
}

#[test]
fn summaries_run_once_refuses_an_unmigrated_database_and_reports_what_it_built() {
    let dir = guardian_service::testing::TempDir::new();
    let url = format!("sqlite://{}/guardians.db", dir.path.display());
    let run_once = || {
        Command::new(env!("CARGO_BIN_EXE_guardian-service"))
            .args(["summaries", "run-once", "--at", "2026-03-06T18:00:00+01:00"])
            .env("GUARDIANS_DATABASE_URL", &url)
            .output()
            .expect("run guardian-service")
    };
    let refused = run_once();
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("guardian-service migrate"), "{stderr}");
    let migrated = Command::new(env!("CARGO_BIN_EXE_guardian-service"))
        .args(["migrate"])
        .env("GUARDIANS_DATABASE_URL", &url)
        .output()
        .expect("migrate");
    assert!(migrated.status.success());
    let done = run_once();
    let stdout = String::from_utf8_lossy(&done.stdout);
    assert!(
        done.status.success(),
        "{}",
        String::from_utf8_lossy(&done.stderr)
    );
    assert!(
        stdout.contains("at 2026-03-06 17:00:00 UTC: 0 guardians looked at, 0 summaries queued"),
        "{stdout}"
    );
}

/// `guardianctl watch` with stdout piped: its next printed line (heartbeats print none).
fn next_line(lines: &mut impl Iterator<Item = std::io::Result<String>>) -> String {
    lines.next().expect("a line").expect("readable")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_prints_changes_as_they_come_and_the_token_to_resume_from() {
    let app = spawn_app().await;
    seed_school(&app, 40).await;
    let mut child = Command::new(env!("CARGO_BIN_EXE_guardianctl"))
        .args(["--server", &addr(&app), "watch", "--domain", SCHOOL])
        .env("GUARDIANS_TOKEN", platform())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start guardianctl watch");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    // The watch starts "from now" once connected; a change made before that would be missed,
    // so keep inviting (new addresses) until the first invitation shows up. "From now" is below
    // the database's transaction watermark, which a transaction of any database of the server
    // (another test's) holds back: the seeding's own settings change may come first.
    let reader = std::thread::spawn(move || {
        let mut first = next_line(&mut lines);
        while first.contains("SETTINGS_CHANGED") {
            first = next_line(&mut lines);
        }
        (first, lines)
    });
    let mut n = 0;
    while !reader.is_finished() {
        // Spread over students, so that no student's limit is reached however long it takes.
        invite(
            &app,
            &format!("s{}", n % 40 + 1),
            &format!("early{n}@example.org"),
        )
        .await;
        n += 1;
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let (first, _lines) = reader.join().unwrap();
    assert!(first.contains("INVITATION_CHANGED"), "{first}");
    assert!(first.contains(SCHOOL), "{first}");
    // Ctrl-C: the resume token on stderr.
    Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill");
    let output = child.wait_with_output().expect("watch exits");
    assert!(output.status.success(), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    let token = stderr
        .lines()
        .find_map(|l| l.strip_prefix("resume with: --from "))
        .expect("the resume token")
        .trim()
        .to_owned();
    // Everything after that position, and nothing before it: the last early invitations (if
    // any came after the printed one) and then this one.
    let invitation = invite(&app, "s1", "after@example.org").await;
    let mut child = Command::new(env!("CARGO_BIN_EXE_guardianctl"))
        .args(["--server", &addr(&app), "watch", "--domain", SCHOOL])
        .args(["--from", &token, "--format", "json"])
        .env("GUARDIANS_TOKEN", platform())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start guardianctl watch --from");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    loop {
        let line = next_line(&mut lines);
        let change: serde_json::Value = serde_json::from_str(&line).expect("json");
        assert_eq!(change["kind"], "INVITATION_CHANGED");
        if change["invitation_id"] == invitation.invitation_id.as_str() {
            break;
        }
    }
    child.kill().expect("stop");
    let _ = child.wait();
}
