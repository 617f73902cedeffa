//! `spawn_app`: a server on a fresh database, ready when this returns, and its clients.

use guardian_service::auth::issue::{TokenClaims, sign_hs256};
use guardian_service::config::ServeConfig;
use guardian_service::domain::{Clock, SystemClock};
use guardian_service::proto::{
    directory_service_client::DirectoryServiceClient,
    guardian_service_client::GuardianServiceClient, privacy_service_client::PrivacyServiceClient,
    settings_service_client::SettingsServiceClient, summary_service_client::SummaryServiceClient,
};
use guardian_service::testing::{TempDir, TestDatabase};
use std::sync::Arc;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_stream::StreamExt;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::{Interceptor, interceptor::InterceptedService};
use tonic::transport::Channel;
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

/// The HS256 secret test servers verify tokens with.
pub(crate) const SECRET: &str = "guardian-service-test-secret-0123456789abcdef";

/// A signed token for `claims`.
pub(crate) fn sign(claims: &TokenClaims) -> String {
    sign_hs256(claims, SECRET.as_bytes()).expect("sign")
}

fn claims(sub: &str, role: &str, domain: Option<&str>) -> TokenClaims {
    let mut c = TokenClaims::new(sub, role, std::time::Duration::from_secs(3600));
    c.domain = domain.map(str::to_owned);
    c
}

/// A token of a domain administrator.
pub(crate) fn admin(domain: &str) -> String {
    sign(&claims(&format!("admin@{domain}"), "admin", Some(domain)))
}

/// A token of a teacher (whether verified is the directory's business).
pub(crate) fn teacher(sub: &str, domain: &str) -> String {
    sign(&claims(sub, "teacher", Some(domain)))
}

/// A token of a student.
pub(crate) fn student(sub: &str, domain: &str) -> String {
    sign(&claims(sub, "student", Some(domain)))
}

/// A token of a guardian.
pub(crate) fn guardian(sub: &str, email: &str) -> String {
    let mut c = claims(sub, "guardian", None);
    c.email = Some(email.into());
    sign(&c)
}

/// A token of a service acting in `domain` (or `*`) with `scopes`.
pub(crate) fn service(sub: &str, domain: &str, scopes: &[&str]) -> String {
    let mut c = claims(sub, "service", Some(domain));
    c.scope = Some(scopes.join(" "));
    sign(&c)
}

/// A platform service with every scope in every domain: the default caller of the helpers.
pub(crate) fn platform() -> String {
    service(
        "platform",
        "*",
        &[
            "guardians.read",
            "guardians.write",
            "settings.read",
            "settings.write",
            "directory.write",
            "invitations.accept",
            "activity.write",
        ],
    )
}

/// Adds `authorization: Bearer <token>` to every call.
#[derive(Clone)]
pub(crate) struct Bearer(Option<MetadataValue<Ascii>>);

impl Bearer {
    pub(crate) fn new(token: &str) -> Self {
        Self(Some(
            format!("Bearer {token}").parse().expect("ascii token"),
        ))
    }
    pub(crate) fn none() -> Self {
        Self(None)
    }
}

impl Interceptor for Bearer {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(value) = &self.0 {
            request
                .metadata_mut()
                .insert("authorization", value.clone());
        }
        Ok(request)
    }
}

/// A channel whose calls carry a token.
pub(crate) type Authed = InterceptedService<Channel, Bearer>;

/// A running server and what it needs to stay alive.
pub(crate) struct TestApp {
    pub database_url: String,
    pub channel_uri: String,
    pub channel: Channel,
    shutdown: Option<oneshot::Sender<()>>,
    pub handle: Option<JoinHandle<Result<(), guardian_service::server::ServeError>>>,
    pub db: Option<TestDatabase>,
    _dir: Option<TempDir>,
}

impl TestApp {
    fn authed(&self, token: &str) -> Authed {
        InterceptedService::new(self.channel.clone(), Bearer::new(token))
    }
    /// SettingsService as the platform service.
    pub(crate) fn settings(&self) -> SettingsServiceClient<Authed> {
        self.settings_as(&platform())
    }
    /// SettingsService as the holder of `token`.
    pub(crate) fn settings_as(&self, token: &str) -> SettingsServiceClient<Authed> {
        SettingsServiceClient::new(self.authed(token))
    }
    /// DirectoryService as the platform service.
    pub(crate) fn directory(&self) -> DirectoryServiceClient<Authed> {
        self.directory_as(&platform())
    }
    /// DirectoryService as the holder of `token`.
    pub(crate) fn directory_as(&self, token: &str) -> DirectoryServiceClient<Authed> {
        DirectoryServiceClient::new(self.authed(token))
    }
    /// GuardianService as the platform service.
    pub(crate) fn guardians(&self) -> GuardianServiceClient<Authed> {
        self.guardians_as(&platform())
    }
    /// GuardianService as the holder of `token`.
    pub(crate) fn guardians_as(&self, token: &str) -> GuardianServiceClient<Authed> {
        GuardianServiceClient::new(self.authed(token))
    }
    /// SummaryService as the platform service.
    pub(crate) fn summaries(&self) -> SummaryServiceClient<Authed> {
        self.summaries_as(&platform())
    }
    /// SummaryService as the holder of `token`.
    pub(crate) fn summaries_as(&self, token: &str) -> SummaryServiceClient<Authed> {
        SummaryServiceClient::new(self.authed(token))
    }
    /// PrivacyService as the holder of `token`.
    pub(crate) fn privacy_as(&self, token: &str) -> PrivacyServiceClient<Authed> {
        PrivacyServiceClient::new(self.authed(token))
    }
    pub(crate) fn health(&self) -> HealthClient<Channel> {
        HealthClient::new(self.channel.clone())
    }

    /// Asks the server to stop and waits until it has.
    pub(crate) async fn stop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(handle) = self.handle.take() {
            handle.await.expect("server task").expect("server result");
        }
    }
}

/// A server on a fresh Postgres database, SERVING.
pub(crate) async fn spawn_app() -> TestApp {
    let db = TestDatabase::create_migrated().await;
    let config = test_config(&db.url);
    let mut app = spawn_with(config).await;
    app.db = Some(db);
    app
}

/// A server on a fresh SQLite file, SERVING.
pub(crate) async fn spawn_sqlite_app() -> TestApp {
    let dir = TempDir::new();
    let config = test_config(&format!("sqlite://{}/g.db", dir.path.display()));
    let mut app = spawn_with(config).await;
    app._dir = Some(dir);
    app
}

/// The server configuration of tests: the database, and tokens signed with [`SECRET`].
pub(crate) fn test_config(database_url: &str) -> ServeConfig {
    ServeConfig {
        jwt_hs256_secret: Some(SECRET.into()),
        // Mail tests drive a dispatcher of their own; others leave the outbox as it is.
        mail_dispatcher: false,
        // Summary tests build them with `summaries run-once` at a chosen instant; a scheduler
        // ticking on its own would race them.
        summary_scheduler: false,
        // Upkeep tests run rounds of their own at chosen instants; the server's own round
        // would race them (a reminder or an expiry counted by neither).
        upkeep_interval: std::time::Duration::from_secs(24 * 3600),
        // Each invitation's email at once, as most tests read it right after inviting; the
        // family tests choose a window and close it with the clock.
        family_window: std::time::Duration::ZERO,
        ..ServeConfig::for_database(database_url)
    }
}

/// A server with `config` (its listen address is replaced by a free loopback port), returned
/// once health reports SERVING.
pub(crate) async fn spawn_with(config: ServeConfig) -> TestApp {
    let mut app = spawn_unready(config).await;
    wait_for(&mut app, ServingStatus::Serving).await;
    app
}

/// A server with `config`, returned as soon as it listens (it may be NOT_SERVING).
pub(crate) async fn spawn_unready(config: ServeConfig) -> TestApp {
    spawn_unready_with_clock(config, Arc::new(SystemClock)).await
}

/// A server on a fresh Postgres database whose time is `clock`, SERVING.
pub(crate) async fn spawn_app_with_clock(clock: Arc<dyn Clock>) -> TestApp {
    let db = TestDatabase::create_migrated().await;
    let mut app = spawn_unready_with_clock(test_config(&db.url), clock).await;
    wait_for(&mut app, ServingStatus::Serving).await;
    app.db = Some(db);
    app
}

/// A server with `config` and `clock`, returned as soon as it listens.
pub(crate) async fn spawn_unready_with_clock(
    config: ServeConfig,
    clock: Arc<dyn Clock>,
) -> TestApp {
    spawn_unready_on(config, clock, None).await
}

/// A server on a fresh Postgres database whose time is `clock`, with its unsubscribe page on a
/// free loopback port: SERVING, and the page's base URL (also its public URL).
pub(crate) async fn spawn_app_with_web(clock: Arc<dyn Clock>) -> (TestApp, String) {
    let db = TestDatabase::create_migrated().await;
    let web = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", web.local_addr().expect("addr"));
    let config = ServeConfig {
        public_url: url.clone(),
        ..test_config(&db.url)
    };
    let mut app = spawn_unready_on(config, clock, Some(web)).await;
    wait_for(&mut app, ServingStatus::Serving).await;
    app.db = Some(db);
    (app, url)
}

async fn spawn_unready_on(
    config: ServeConfig,
    clock: Arc<dyn Clock>,
    web: Option<tokio::net::TcpListener>,
) -> TestApp {
    let database_url = config.database_url.clone();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (tx, rx) = oneshot::channel::<()>();
    let handle = tokio::spawn(guardian_service::server::serve_with_listeners(
        config,
        listener,
        web,
        async move {
            let _ = rx.await;
        },
        clock,
    ));
    let channel_uri = format!("http://{addr}");
    let channel = Channel::from_shared(channel_uri.clone())
        .expect("uri")
        .connect()
        .await
        .expect("connect");
    TestApp {
        database_url,
        channel_uri,
        channel,
        shutdown: Some(tx),
        handle: Some(handle),
        db: None,
        _dir: None,
    }
}

/// Waits, by watching health (no polling, no sleep), until the server reports `status`.
pub(crate) async fn wait_for(app: &mut TestApp, status: ServingStatus) {
    let mut stream = app
        .health()
        .watch(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .expect("watch health")
        .into_inner();
    while let Some(reply) = stream.next().await {
        if reply.expect("health reply").status == status as i32 {
            return;
        }
    }
    panic!("health stream ended before {status:?}");
}

/// The ErrorInfo reason of a status.
pub(crate) fn reason(status: &tonic::Status) -> String {
    use tonic_types::StatusExt;
    status
        .get_details_error_info()
        .map(|i| {
            assert_eq!(i.domain, "guardians.v1");
            i.reason
        })
        .unwrap_or_default()
}
