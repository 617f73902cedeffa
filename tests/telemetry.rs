//! Telemetry under a representative workload (quality.md R12): with every log at TRACE level
//! captured, no email address, accept or unsubscribe token, announcement text or JWT appears;
//! and Prometheus metrics are served.

#[path = "api/fixtures.rs"]
#[allow(dead_code)]
mod fixtures;
#[path = "api/helpers.rs"]
#[allow(dead_code)]
mod helpers;

use fixtures::{invite, seed_school, token_of};
use guardian_service::proto::*;
use helpers::{guardian, platform, spawn_with, test_config};
use std::io::Write;
use std::sync::{Arc, Mutex};

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
    type Writer = Captured;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_at_trace_level_hold_no_address_token_or_jwt_and_metrics_are_served() {
    let captured = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter(guardian_service::telemetry::log_filter(Some("trace")))
        .with_writer(captured.clone())
        .finish();
    tracing::subscriber::set_global_default(subscriber)
        .expect("the only subscriber of this test binary");

    let db = guardian_service::testing::TestDatabase::create_migrated().await;
    let metrics_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = guardian_service::testing::TempDir::new();
    let config = guardian_service::config::ServeConfig {
        metrics_listen: Some(format!("127.0.0.1:{metrics_port}").parse().unwrap()),
        ..test_config(&db.url)
    };
    let mut app = spawn_with(config).await;
    app.db = Some(db);

    // The workload: directory, invitations, an answer, reads, refusals, bulk, upkeep and mail.
    seed_school(&app, 2).await;
    let inv = invite(&app, "s1", "Secret.Parent@Example.org").await;
    let accept_token = token_of(&app, &inv.invitation_id).await;
    let parent_jwt = guardian("g-1", "secret.parent@example.org");
    app.guardians_as(&parent_jwt)
        .accept_guardian_invitation(AcceptGuardianInvitationRequest {
            token: accept_token.clone(),
            ..Default::default()
        })
        .await
        .unwrap();
    let _ = app
        .guardians()
        .check_guardianship(CheckGuardianshipRequest {
            student_id: "s1".into(),
            guardian: Some(check_guardianship_request::Guardian::GuardianEmail(
                "secret.parent@example.org".into(),
            )),
            ..Default::default()
        })
        .await
        .unwrap();
    let _ = app
        .guardians()
        .list_guardians(ListGuardiansRequest {
            student_id: "s1@school.example".into(),
            ..Default::default()
        })
        .await;
    let _ = app
        .guardians()
        .create_guardian_invitation(CreateGuardianInvitationRequest {
            student_id: "s2".into(),
            invited_email_address: "broken address@example.org".into(),
            request_id: String::new(),
            student_ids: Vec::new(),
        })
        .await;
    let _ = app
        .guardians_as("not.a.jwt")
        .check_guardianship(CheckGuardianshipRequest::default())
        .await;
    let _ = app
        .guardians()
        .bulk_create_guardian_invitations(BulkCreateGuardianInvitationsRequest {
            rows: vec![BulkCreateGuardianInvitationsRow {
                student_id: "s2".into(),
                invited_email_address: "bulk.parent@example.org".into(),
            }],
            dry_run: false,
            request_id: uuid::Uuid::new_v4().to_string(),
        })
        .await
        .unwrap();
    let _ = app
        .guardians()
        .create_guardian_invitation(CreateGuardianInvitationRequest {
            student_id: "s2".into(),
            invited_email_address: "bulk.parent@example.org".into(),
            request_id: String::new(),
            student_ids: Vec::new(),
        })
        .await;

    // Summaries: activity in, a preview, the scheduler's build, the unsubscribe link.
    let friday = chrono::DateTime::parse_from_rfc3339("2026-11-27T17:00:00Z")
        .unwrap()
        .with_timezone(&chrono::Utc);
    let announced = prost_types::Timestamp {
        seconds: friday.timestamp() - 86_400,
        nanos: 0,
    };
    let published = app
        .summaries()
        .publish_class_activity(PublishClassActivityRequest {
            items: vec![ActivityItem {
                item: Some(activity_item::Item::Announcement(Announcement {
                    course_id: "math".into(),
                    announcement_id: "a1".into(),
                    text: "Secret announcement about the recorder".into(),
                    state: ActivityState::Published as i32,
                    update_time: Some(announced),
                })),
            }],
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(published.results[0].code, 0);
    app.summaries_as(&parent_jwt)
        .preview_guardian_summary(PreviewGuardianSummaryRequest {
            guardian_id: "me".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    let summaries_store = guardian_service::store::connect(&app.db.as_ref().unwrap().options(2))
        .await
        .unwrap();
    let built = guardian_service::app::App::new(
        summaries_store,
        Arc::new(guardian_service::domain::SystemClock),
        guardian_service::app::AppConfig::default(),
    )
    .run_due_summaries(friday)
    .await
    .unwrap();
    assert_eq!(built.queued, 1, "{built:?}");
    let pool = sqlx::PgPool::connect(&app.database_url).await.unwrap();
    let link: String = sqlx::query_scalar(
        "SELECT list_unsubscribe FROM outbox WHERE list_unsubscribe IS NOT NULL",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    pool.close().await;
    let unsubscribe_token = link.split_once("token=").unwrap().1.to_owned();
    guardian_service::proto::summary_service_client::SummaryServiceClient::new(app.channel.clone())
        .unsubscribe_from_summaries(UnsubscribeFromSummariesRequest {
            token: unsubscribe_token.clone(),
        })
        .await
        .unwrap();

    // The metrics endpoint counts what happened.
    let body = http_get(metrics_port, "/metrics").await;
    assert!(body.contains("guardians_rpc_requests_total"), "{body}");
    assert!(
        body.contains("code=\"AlreadyExists\""),
        "refusals are counted by code"
    );
    assert!(
        body.contains("guardians_rpc_duration_seconds_bucket"),
        "latency histogram"
    );

    // Send the queued mail, so that the dispatcher's logs are in the capture too.
    let store = guardian_service::store::connect(&app.db.as_ref().unwrap().options(2))
        .await
        .unwrap();
    let transport = Arc::new(guardian_service::mail::FolderTransport::new(
        dir.path.join("mail"),
        "School <no-reply@school.example>".parse().unwrap(),
    ));
    let sent = guardian_service::mail::Dispatcher::new(
        store,
        transport,
        Arc::new(guardian_service::domain::SystemClock),
        Default::default(),
    )
    .dispatch_due()
    .await
    .unwrap();
    assert!(sent.sent >= 3, "{sent:?}");
    app.stop().await;

    let logs = String::from_utf8_lossy(&captured.0.lock().unwrap()).to_lowercase();
    assert!(
        logs.len() > 10_000,
        "the capture holds the workload's logs ({} bytes)",
        logs.len()
    );
    for secret in [
        "secret.parent@example.org",
        "bulk.parent@example.org",
        "s1@school.example",
        "broken address",
        &accept_token.to_lowercase(),
        &unsubscribe_token.to_lowercase(),
        "secret announcement",
        &parent_jwt.to_lowercase(),
        &platform().to_lowercase()[..40],
        "eyj", // the start of every JWT header
    ] {
        assert!(!logs.contains(secret), "the logs contain {secret:?}");
    }
}

/// A plain HTTP/1.1 GET on loopback.
async fn http_get(port: u16, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("metrics port");
    stream
        .write_all(
            format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        )
        .await
        .unwrap();
    let mut body = String::new();
    stream.read_to_string(&mut body).await.unwrap();
    body
}
