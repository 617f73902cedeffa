//! `spawn_app`: a server on a fresh database, ready when this returns, and its clients.

use guardian_service::config::ServeConfig;
use guardian_service::proto::{
    directory_service_client::DirectoryServiceClient,
    guardian_service_client::GuardianServiceClient, settings_service_client::SettingsServiceClient,
};
use guardian_service::testing::{TempDir, TestDatabase};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_stream::StreamExt;
use tonic::transport::Channel;
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

/// A running server and what it needs to stay alive.
pub struct TestApp {
    pub channel: Channel,
    shutdown: Option<oneshot::Sender<()>>,
    pub handle: Option<JoinHandle<Result<(), guardian_service::server::ServeError>>>,
    pub db: Option<TestDatabase>,
    _dir: Option<TempDir>,
}

impl TestApp {
    pub fn settings(&self) -> SettingsServiceClient<Channel> {
        SettingsServiceClient::new(self.channel.clone())
    }
    pub fn directory(&self) -> DirectoryServiceClient<Channel> {
        DirectoryServiceClient::new(self.channel.clone())
    }
    pub fn guardians(&self) -> GuardianServiceClient<Channel> {
        GuardianServiceClient::new(self.channel.clone())
    }
    pub fn health(&self) -> HealthClient<Channel> {
        HealthClient::new(self.channel.clone())
    }

    /// Asks the server to stop and waits until it has.
    pub async fn stop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(handle) = self.handle.take() {
            handle.await.expect("server task").expect("server result");
        }
    }
}

/// A server on a fresh Postgres database, SERVING.
pub async fn spawn_app() -> TestApp {
    let db = TestDatabase::create().await;
    let config = ServeConfig::for_database(db.url.clone());
    let mut app = spawn_with(config).await;
    app.db = Some(db);
    app
}

/// A server on a fresh SQLite file, SERVING.
pub async fn spawn_sqlite_app() -> TestApp {
    let dir = TempDir::new();
    let config = ServeConfig::for_database(format!("sqlite://{}/g.db", dir.path.display()));
    let mut app = spawn_with(config).await;
    app._dir = Some(dir);
    app
}

/// A server with `config` (its listen address is replaced by a free loopback port), returned
/// once health reports SERVING.
pub async fn spawn_with(config: ServeConfig) -> TestApp {
    let mut app = spawn_unready(config).await;
    wait_for(&mut app, ServingStatus::Serving).await;
    app
}

/// A server with `config`, returned as soon as it listens (it may be NOT_SERVING).
pub async fn spawn_unready(config: ServeConfig) -> TestApp {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (tx, rx) = oneshot::channel::<()>();
    let handle = tokio::spawn(guardian_service::server::serve(
        config,
        listener,
        async move {
            let _ = rx.await;
        },
    ));
    let channel = Channel::from_shared(format!("http://{addr}"))
        .expect("uri")
        .connect()
        .await
        .expect("connect");
    TestApp {
        channel,
        shutdown: Some(tx),
        handle: Some(handle),
        db: None,
        _dir: None,
    }
}

/// Waits, by watching health (no polling, no sleep), until the server reports `status`.
pub async fn wait_for(app: &mut TestApp, status: ServingStatus) {
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
pub fn reason(status: &tonic::Status) -> String {
    use tonic_types::StatusExt;
    status
        .get_details_error_info()
        .map(|i| {
            assert_eq!(i.domain, "guardians.v1");
            i.reason
        })
        .unwrap_or_default()
}
