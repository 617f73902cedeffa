//! Email end to end: the outbox, the dispatcher, a real SMTP server on loopback (aiosmtpd) and
//! the folder transport (quality.md R6, and the cases).

use crate::fixtures::{SCHOOL, invite, seed_school, set_settings};
use crate::helpers::{TestApp, guardian, spawn_app_with_clock};
use chrono::TimeDelta;
use guardian_service::domain::Clock;
use guardian_service::domain::clock::ManualClock;
use guardian_service::mail::{
    DispatchPolicy, Dispatcher, FolderTransport, SmtpTransport, Transport,
};
use guardian_service::proto::*;
use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;

/// An aiosmtpd server writing what it receives into a folder; stopped on drop.
struct SmtpSink {
    child: Child,
    folder: PathBuf,
    _dir: guardian_service::testing::TempDir,
}

impl SmtpSink {
    fn start(port: u16) -> Self {
        let dir = guardian_service::testing::TempDir::new();
        let folder = dir.path.join("received");
        let python = std::env::var("GUARDIANS_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
        let script = format!("{}/tests/support/smtp_sink.py", env!("CARGO_MANIFEST_DIR"));
        let mut child = Command::new(python)
            .arg(script)
            .arg(port.to_string())
            .arg(&folder)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect(
                "start the SMTP sink (needs python3 with aiosmtpd; scripts/test.sh installs it)",
            );
        // Wait for the server to say it listens: no sleep, a line on its stdout.
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line.trim(), "ready", "the SMTP sink did not start");
        Self {
            child,
            folder,
            _dir: dir,
        }
    }

    /// Every message received so far, as raw text.
    fn received(&self) -> Vec<String> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(&self.folder)
            .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
            .unwrap_or_default();
        files.retain(|p| p.extension().is_some_and(|e| e == "eml"));
        files.sort();
        files
            .iter()
            .map(|p| std::fs::read_to_string(p).unwrap())
            .collect()
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub(crate) async fn dispatcher(
    app: &TestApp,
    transport: Arc<dyn Transport>,
    clock: Arc<dyn Clock>,
    policy: DispatchPolicy,
) -> Dispatcher {
    let store = guardian_service::store::connect(&guardian_service::store::ConnectOptions::plain(
        app.database_url.clone(),
        4,
        std::time::Duration::from_secs(10),
    ))
    .await
    .expect("store");
    Dispatcher::new(store, transport, clock, policy)
}

fn smtp(port: u16) -> Arc<dyn Transport> {
    Arc::new(
        SmtpTransport::from_url(
            &format!("smtp://127.0.0.1:{port}"),
            "School <no-reply@school.example>".parse().unwrap(),
        )
        .unwrap(),
    )
}

/// Undoes quoted-printable soft breaks and escapes, which mail bodies may use.
fn unfold(raw: &str) -> String {
    let joined = raw.replace("=\r\n", "").replace("=\n", "");
    let mut out = Vec::new();
    let bytes = joined.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'='
            && i + 2 < bytes.len()
            && let Ok(b) = u8::from_str_radix(&joined[i + 1..i + 3], 16)
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn accept_token(mail: &str) -> String {
    let text = unfold(mail);
    let start = text.find("/accept?token=").expect("an accept link") + "/accept?token=".len();
    text[start..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect()
}

/// The delivery status of an invitation of `s1`, as GetGuardianInvitation and
/// ListGuardianInvitations both report it (they must agree).
async fn delivery(app: &TestApp, id: &str) -> i32 {
    let got = app
        .guardians()
        .get_guardian_invitation(GetGuardianInvitationRequest {
            student_id: "s1".into(),
            invitation_id: id.into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .invitation
        .unwrap()
        .delivery_status;
    let listed = app
        .guardians()
        .list_guardian_invitations(ListGuardianInvitationsRequest {
            student_id: "s1".into(),
            states: vec![1, 2, 3, 4],
            page_size: 100,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .invitations
        .into_iter()
        .find(|i| i.invitation_id == id)
        .expect("listed")
        .delivery_status;
    assert_eq!(listed, got, "the listing and the invitation disagree");
    got
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_invitation_arrives_by_smtp_in_dutch_and_its_link_accepts() {
    let clock = Arc::new(ManualClock::new(chrono::Utc::now()));
    let app = spawn_app_with_clock(clock.clone()).await;
    seed_school(&app, 1).await;
    set_settings(
        &app,
        DomainSettings {
            default_locale: "nl".into(),
            ..Default::default()
        },
        &["default_locale"],
    )
    .await;
    let port = free_port();
    let sink = SmtpSink::start(port);
    let inv = invite(&app, "s1", "ouder@example.org").await;
    let round = dispatcher(&app, smtp(port), clock.clone(), DispatchPolicy::default())
        .await
        .dispatch_due()
        .await
        .unwrap();
    assert_eq!(round.sent, 1);
    let mails = sink.received();
    assert_eq!(mails.len(), 1);
    let mail = &mails[0];
    assert!(
        mail.starts_with("X-Envelope-To: ouder@example.org"),
        "{mail}"
    );
    assert!(
        mail.contains("Subject: Uitnodiging: volg het schoolwerk van Name of s1"),
        "{mail}"
    );
    assert!(mail.contains("Message-ID: <"), "a stable Message-ID");
    assert_eq!(
        delivery(&app, &inv.invitation_id).await,
        DeliveryStatus::Sent as i32
    );

    let token = accept_token(mail);
    let link = app
        .guardians_as(&guardian("g-1", "ouder@example.org"))
        .accept_guardian_invitation(AcceptGuardianInvitationRequest {
            token,
            ..Default::default()
        })
        .await
        .expect("the emailed link accepts")
        .into_inner();
    assert_eq!(link.guardian.unwrap().student_id, "s1");
}

/// The header `name` of a raw message, unfolded, or "" when absent.
fn header(mail: &str, name: &str) -> String {
    let head = mail
        .split("\r\n\r\n")
        .next()
        .unwrap_or(mail)
        .replace("\r\n ", " ");
    head.lines()
        .find_map(|l| l.strip_prefix(&format!("{name}: ")))
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_school_is_named_in_its_emails_which_reply_to_its_office() {
    let clock = Arc::new(ManualClock::new(chrono::Utc::now()));
    let app = spawn_app_with_clock(clock.clone()).await;
    seed_school(&app, 2).await;
    set_settings(
        &app,
        DomainSettings {
            school_name: "Lincoln High".into(),
            reply_to_address: "Office@School.example".into(),
            ..Default::default()
        },
        &["school_name", "reply_to_address"],
    )
    .await;
    let port = free_port();
    let sink = SmtpSink::start(port);
    // A service invites (no person): the email names the school's administration.
    invite(&app, "s1", "ouder@example.org").await;
    // A teacher in the directory invites: the email names them.
    app.guardians_as(&crate::helpers::teacher("t-verified", SCHOOL))
        .create_guardian_invitation(CreateGuardianInvitationRequest {
            student_id: "s2".into(),
            invited_email_address: "ouder2@example.org".into(),
            request_id: String::new(),
            student_ids: Vec::new(),
        })
        .await
        .expect("the teacher invites");
    let mailer = dispatcher(&app, smtp(port), clock.clone(), DispatchPolicy::default()).await;
    assert_eq!(mailer.dispatch_due().await.unwrap().sent, 2);
    let mails = sink.received();
    let to = |address: &str| -> String {
        let mail = mails
            .iter()
            .find(|m| m.starts_with(&format!("X-Envelope-To: {address}")))
            .unwrap_or_else(|| panic!("no mail to {address}"));
        mail.clone()
    };
    for mail in [to("ouder@example.org"), to("ouder2@example.org")] {
        assert_eq!(
            header(&mail, "From"),
            "\"Lincoln High\" <no-reply@school.example>",
            "the school's name on the service's address"
        );
        assert_eq!(header(&mail, "Reply-To"), "office@school.example");
        assert!(
            header(&mail, "Subject").ends_with("at Lincoln High"),
            "{mail}"
        );
        let body = unfold(&mail);
        assert!(
            !body.contains(&format!("of {SCHOOL}")),
            "no domain name where the school's is due: {body}"
        );
    }
    let body = unfold(&to("ouder@example.org"));
    assert!(
        body.contains("The administration of Lincoln High invites you"),
        "{body}"
    );
    let body = unfold(&to("ouder2@example.org"));
    assert!(
        body.contains("Name of t-verified of Lincoln High invites you"),
        "{body}"
    );

    // A From name of its own, and the school's name cleared: the domain's name comes back in
    // the body, the From name stays the chosen one, and without a Reply-To there is none.
    set_settings(
        &app,
        DomainSettings {
            mail_from_name: "Lincoln office".into(),
            school_name: String::new(),
            reply_to_address: String::new(),
            ..Default::default()
        },
        &["mail_from_name", "school_name", "reply_to_address"],
    )
    .await;
    invite(&app, "s1", "ouder3@example.org").await;
    assert_eq!(mailer.dispatch_due().await.unwrap().sent, 1);
    let mails = sink.received();
    let mail = mails
        .iter()
        .find(|m| m.starts_with("X-Envelope-To: ouder3@example.org"))
        .expect("the third mail");
    assert_eq!(
        header(mail, "From"),
        "\"Lincoln office\" <no-reply@school.example>"
    );
    assert_eq!(header(mail, "Reply-To"), "");
    assert!(
        unfold(mail).contains(&format!("The administration of {SCHOOL} invites you")),
        "{mail}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mail_waits_while_smtp_is_down_and_is_delivered_once_when_it_is_back() {
    let clock = Arc::new(ManualClock::new(chrono::Utc::now()));
    let app = spawn_app_with_clock(clock.clone()).await;
    seed_school(&app, 1).await;
    let port = free_port();
    let first = invite(&app, "s1", "a@example.org").await;
    invite(&app, "s1", "b@example.org").await;
    let d = dispatcher(&app, smtp(port), clock.clone(), DispatchPolicy::default()).await;
    let down = d.dispatch_due().await.unwrap();
    assert_eq!((down.sent, down.retried, down.failed), (0, 2, 0));
    assert_eq!(
        delivery(&app, &first.invitation_id).await,
        DeliveryStatus::Queued as i32
    );
    // Not due again before the backoff ends.
    assert_eq!(d.dispatch_due().await.unwrap().retried, 0);

    let sink = SmtpSink::start(port);
    clock.advance(TimeDelta::minutes(1));
    let up = d.dispatch_due().await.unwrap();
    assert_eq!(up.sent, 2);
    assert_eq!(
        d.dispatch_due().await.unwrap().sent,
        0,
        "nothing is sent twice"
    );
    clock.advance(TimeDelta::hours(2));
    assert_eq!(d.dispatch_due().await.unwrap().sent, 0);
    assert_eq!(sink.received().len(), 2);
    assert_eq!(
        delivery(&app, &first.invitation_id).await,
        DeliveryStatus::Sent as i32
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_that_keeps_failing_is_marked_failed() {
    let clock = Arc::new(ManualClock::new(chrono::Utc::now()));
    let app = spawn_app_with_clock(clock.clone()).await;
    seed_school(&app, 1).await;
    let inv = invite(&app, "s1", "never@example.org").await;
    let policy = DispatchPolicy {
        max_attempts: 2,
        ..Default::default()
    };
    let d = dispatcher(&app, smtp(free_port()), clock.clone(), policy).await;
    assert_eq!(d.dispatch_due().await.unwrap().retried, 1);
    clock.advance(TimeDelta::minutes(5));
    assert_eq!(d.dispatch_due().await.unwrap().failed, 1);
    assert_eq!(
        delivery(&app, &inv.invitation_id).await,
        DeliveryStatus::Failed as i32
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_dispatchers_on_one_database_never_send_a_message_twice() {
    let clock = Arc::new(ManualClock::new(chrono::Utc::now()));
    let app = spawn_app_with_clock(clock.clone()).await;
    seed_school(&app, 2).await;
    for i in 0..15 {
        invite(&app, "s1", &format!("p{i}@example.org")).await;
        invite(&app, "s2", &format!("q{i}@example.org")).await;
    }
    let port = free_port();
    let sink = SmtpSink::start(port);
    let policy = DispatchPolicy {
        batch: 4,
        ..Default::default()
    };
    let a = dispatcher(&app, smtp(port), clock.clone(), policy.clone()).await;
    let b = dispatcher(&app, smtp(port), clock.clone(), policy).await;
    let (ra, rb) = tokio::join!(a.dispatch_due(), b.dispatch_due());
    assert_eq!(ra.unwrap().sent + rb.unwrap().sent, 30);
    let mails = sink.received();
    assert_eq!(mails.len(), 30);
    let ids: BTreeSet<String> = mails
        .iter()
        .map(|m| {
            m.lines()
                .find(|l| l.starts_with("Message-ID:"))
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(ids.len(), 30, "every message once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn names_are_escaped_in_html_and_mail_goes_to_a_folder_by_default() {
    let clock = Arc::new(ManualClock::new(chrono::Utc::now()));
    let app = spawn_app_with_clock(clock.clone()).await;
    seed_school(&app, 1).await;
    app.directory()
        .upsert_users(UpsertUsersRequest {
            users: vec![User {
                user_id: "s1".into(),
                domain: SCHOOL.into(),
                email: "s1@school.example".into(),
                role: UserRole::Student as i32,
                display_name: "<script>alert(1)</script>".into(),
                ..Default::default()
            }],
        })
        .await
        .unwrap();
    invite(&app, "s1", "html@example.org").await;
    let dir = guardian_service::testing::TempDir::new();
    let folder = dir.path.join("mail");
    let transport = Arc::new(FolderTransport::new(
        folder.clone(),
        "School <no-reply@school.example>".parse().unwrap(),
    ));
    assert_eq!(
        dispatcher(&app, transport, clock.clone(), DispatchPolicy::default())
            .await
            .dispatch_due()
            .await
            .unwrap()
            .sent,
        1
    );
    let mut files: Vec<PathBuf> = std::fs::read_dir(&folder)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert_eq!(files.len(), 2, "{files:?}");
    assert!(has_extension(&files[0], "eml") && has_extension(&files[1], "txt"));
    // The .txt beside the message holds the link on one line, as a person would copy it.
    let txt = std::fs::read_to_string(&files[1]).unwrap();
    assert!(
        txt.lines()
            .any(|l| l.contains("/accept?token=") && l.starts_with("http")),
        "{txt}"
    );
    let raw = std::fs::read_to_string(&files[0]).unwrap();
    let mail = unfold(&raw);
    let html = &mail[mail.find("Content-Type: text/html").expect("an HTML part")..];
    assert!(html.contains("&lt;script&gt;alert(1)&lt;"), "{html}");
    assert!(!html.contains("<script>"), "{html}");
    // From the raw message: decoding twice would turn a token starting with two hex digits
    // ("token=3F...") into something else.
    assert!(!accept_token(&raw).is_empty());
}

fn has_extension(path: &Path, ext: &str) -> bool {
    path.extension().is_some_and(|e| e == ext)
}

/// A transport that "sends" by counting, moving the clock on by `step` per message, and
/// optionally raising the stop flag after the first message. Before each send it records how
/// many other claimed messages another replica could claim right now (their lease lapsed).
#[derive(Debug)]
struct SlowTransport {
    clock: Arc<ManualClock>,
    step: TimeDelta,
    stop_after_first: Option<tokio::sync::watch::Sender<bool>>,
    database_url: String,
    sent: std::sync::Mutex<Vec<String>>,
    claimable_while_sending: std::sync::Mutex<Vec<i64>>,
}

#[async_trait::async_trait]
impl Transport for SlowTransport {
    async fn send(
        &self,
        message: &guardian_service::domain::OutboxMessage,
    ) -> Result<(), guardian_service::mail::SendError> {
        let pool = sqlx::PgPool::connect(&self.database_url).await.unwrap();
        let claimable: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM outbox WHERE status = 'QUEUED' AND next_attempt_time <= $1 \
             AND message_id <> $2",
        )
        .bind(self.clock.now())
        .bind(&message.message_id)
        .fetch_one(&pool)
        .await
        .unwrap();
        pool.close().await;
        self.claimable_while_sending.lock().unwrap().push(claimable);
        self.sent.lock().unwrap().push(message.message_id.clone());
        self.clock.advance(self.step);
        if let Some(stop) = &self.stop_after_first {
            let _ = stop.send(true);
        }
        Ok(())
    }
}

fn slow(
    app: &TestApp,
    clock: &Arc<ManualClock>,
    step: TimeDelta,
    stop: Option<tokio::sync::watch::Sender<bool>>,
) -> Arc<SlowTransport> {
    Arc::new(SlowTransport {
        clock: clock.clone(),
        step,
        stop_after_first: stop,
        database_url: app.database_url.clone(),
        sent: Default::default(),
        claimable_while_sending: Default::default(),
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dispatcher_renews_its_lease_while_a_slow_batch_is_sent() {
    let clock = Arc::new(ManualClock::new(chrono::Utc::now()));
    let app = spawn_app_with_clock(clock.clone()).await;
    seed_school(&app, 1).await;
    for i in 0..5 {
        invite(&app, "s1", &format!("p{i}@example.org")).await;
    }
    // 40 s per message against a 60 s lease: without renewal the third message onwards
    // would be claimable by another replica while this one still holds them.
    let transport = slow(&app, &clock, TimeDelta::seconds(40), None);
    let a = dispatcher(
        &app,
        transport.clone(),
        clock.clone(),
        DispatchPolicy::default(),
    )
    .await;
    let round = a.dispatch_due().await.unwrap();
    assert_eq!(round.sent, 5);
    assert_eq!(
        *transport.claimable_while_sending.lock().unwrap(),
        vec![0; 5],
        "no claimed message was ever free for another dispatcher"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopping_dispatcher_gives_back_what_it_did_not_send() {
    let clock = Arc::new(ManualClock::new(chrono::Utc::now()));
    let app = spawn_app_with_clock(clock.clone()).await;
    seed_school(&app, 1).await;
    for i in 0..4 {
        invite(&app, "s1", &format!("p{i}@example.org")).await;
    }
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stopping = slow(&app, &clock, TimeDelta::zero(), Some(stop_tx));
    let a = dispatcher(
        &app,
        stopping.clone(),
        clock.clone(),
        DispatchPolicy::default(),
    )
    .await;
    let round = a.dispatch_until(Some(&stop_rx)).await.unwrap();
    assert_eq!(
        round.sent, 1,
        "it finished the message in hand, then stopped"
    );
    // Another replica, at the same moment, finds the other three due at once: the lease was
    // given back, not left to run out.
    let other = slow(&app, &clock, TimeDelta::zero(), None);
    let b = dispatcher(
        &app,
        other.clone(),
        clock.clone(),
        DispatchPolicy::default(),
    )
    .await;
    assert_eq!(b.dispatch_due().await.unwrap().sent, 3);
    let mut all: Vec<String> = stopping.sent.lock().unwrap().clone();
    all.extend(other.sent.lock().unwrap().iter().cloned());
    all.sort();
    all.dedup();
    assert_eq!(all.len(), 4, "each message sent once");
}
