//! The server: the three services, health and reflection on one listener, with readiness that
//! follows the database, bounded messages, a request deadline and graceful shutdown.

use crate::app::{App, AppConfig, PageTokens, Pseudonyms};
use crate::auth::{AuthMode, KeySet};
use crate::config::ServeConfig;
use crate::domain::{Clock, SystemClock};
use crate::grpc::AuthLayer;
use crate::grpc::deadline::{DeadlineLayer, Deadlines};
use crate::grpc::{DirectoryApi, GuardiansApi, PrivacyApi, SettingsApi, SummariesApi};
use crate::listener::ConnectionLimits;
use crate::proto::{
    self, directory_service_server::DirectoryServiceServer,
    guardian_service_server::GuardianServiceServer, privacy_service_server::PrivacyServiceServer,
    settings_service_server::SettingsServiceServer, summary_service_server::SummaryServiceServer,
};
use crate::store::{self, ConnectOptions, Store, StoreError};
use crate::telemetry::rpc::RpcLayer;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tonic_health::ServingStatus;
use tonic_health::pb::health_server::{Health, HealthServer};
use tonic_health::server::HealthReporter;

mod background;

use background::{Background, set_health};

/// The services whose health is reported, besides the whole server ("").
const SERVICES: [&str; 4] = [
    "",
    "guardians.v1.GuardianService",
    "guardians.v1.SettingsService",
    "guardians.v1.DirectoryService",
];

/// Why the server could not run.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The store could not be set up.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The gRPC transport failed.
    #[error("gRPC transport: {0}")]
    Transport(#[from] tonic::transport::Error),
    /// The token keys could not be loaded, or development mode was asked to leave loopback.
    #[error("authentication: {0}")]
    Auth(String),
    /// The mail transport could not be set up.
    #[error("mail: {0}")]
    Mail(String),
    /// The web listener could not be set up.
    #[error("http: {0}")]
    Http(String),
    /// Reflection could not load the descriptors.
    #[error("reflection: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
}

/// Serves on `listener` until `shutdown` resolves, then reports NOT_SERVING, waits the grace
/// period, stops taking RPCs, lets those in flight finish, and closes the database pool.
pub async fn serve(
    config: ServeConfig,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    serve_with_clock(config, listener, shutdown, Arc::new(SystemClock)).await
}

/// [`serve`] with a given clock, so that tests can move time instead of sleeping.
pub async fn serve_with_clock(
    config: ServeConfig,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
    clock: Arc<dyn Clock>,
) -> Result<(), ServeError> {
    let web = match config.http_listen {
        Some(addr) => Some(
            TcpListener::bind(addr)
                .await
                .map_err(|e| ServeError::Http(format!("cannot listen on {addr}: {e}")))?,
        ),
        None => None,
    };
    serve_with_listeners(config, listener, web, shutdown, clock).await
}

/// [`serve_with_clock`] on listeners bound already: gRPC on `listener`, the web page on
/// `web` (instead of `http_listen`), so that callers can bind port 0 and know the port.
pub async fn serve_with_listeners(
    config: ServeConfig,
    listener: TcpListener,
    web: Option<TcpListener>,
    shutdown: impl Future<Output = ()> + Send + 'static,
    clock: Arc<dyn Clock>,
) -> Result<(), ServeError> {
    let (keys, mode) = load_keys(&config, &listener)?;
    check_database(&config.database_url).await?;
    let store = connect_store(&config).await?;
    let app = App::new(
        store.clone(),
        clock.clone(),
        AppConfig {
            accept_url: config.accept_url.clone(),
            page_tokens: page_tokens(&config, mode)?,
            pseudonyms: pseudonyms(&config, mode)?,
            public_url: config.public_url.clone(),
            freshness: config.freshness(),
            family_window: config.family_window,
        },
    );
    let (health, health_service) = tonic_health::server::health_reporter();
    set_health(&health, ServingStatus::NotServing).await;
    let (stop_tx, stop_rx) = watch::channel(false);
    // Streams end once the server has said NOT_SERVING and waited its grace period.
    let (streams_end_tx, streams_end_rx) = watch::channel(false);
    serve_metrics(&config);
    let web = web.map(|listener| crate::web::start(listener, app.clone(), stop_rx.clone()));
    let background = Background::start(&config, &app, &health, clock, stop_rx)?;
    let shutdown = Shutdown {
        signal: shutdown,
        stop_tx,
        health,
        streams_end_tx,
        grace: config.shutdown_grace,
        drain_timeout: config.drain_timeout,
    };
    tracing::info!(address = %listener.local_addr().map(|a| a.to_string()).unwrap_or_default(), backend = ?store.backend(), "serving gRPC");
    let result = run_grpc(
        &config,
        keys,
        &app,
        health_service,
        streams_end_rx,
        listener,
        shutdown,
    )
    .await;
    background.stop().await;
    if let Some(web) = web {
        // Stopped with the background tasks (the same signal); a request in flight finishes.
        let _ = web.await;
    }
    store.close().await;
    tracing::info!("stopped");
    result
}

/// The token keys; without any, development mode, which only listens on loopback.
fn load_keys(
    config: &ServeConfig,
    listener: &TcpListener,
) -> Result<(KeySet, AuthMode), ServeError> {
    let (keys, mode) = config
        .key_sources()
        .load(&config.data_dir)
        .map_err(|e| ServeError::Auth(e.to_string()))?;
    if mode == AuthMode::Development {
        let local = listener.local_addr().ok();
        if !local.is_some_and(|a| a.ip().is_loopback()) {
            return Err(ServeError::Auth(
                "no JWT keys are configured, so the server runs in development mode, which only \
                 listens on loopback; set GUARDIANS_JWT_HS256_SECRET or GUARDIANS_JWKS_FILE"
                    .into(),
            ));
        }
        tracing::warn!(
            "development mode: no JWT keys configured; tokens are signed with the secret in {}. \
             Get one with: guardian-service token --sub admin-1 --domain your.school --role admin",
            crate::auth::dev::dev_secret_path(&config.data_dir).display()
        );
    }
    Ok((keys, mode))
}

/// One connection to a Postgres database before serving: a database that cannot work (no such
/// database, a refused role, an unknown host) stops the start with what to do; one that is
/// merely not up yet is reported at once, and the server waits for it NOT_SERVING.
async fn check_database(url: &str) -> Result<(), ServeError> {
    if !url.starts_with("postgres") {
        return Ok(());
    }
    match store::diagnose::check_postgres(url).await {
        Ok(()) => Ok(()),
        Err(problem) if problem.permanent => {
            Err(ServeError::Store(StoreError::Config(problem.message)))
        }
        Err(problem) => {
            tracing::error!("{}; serving NOT_SERVING until it answers", problem.message);
            Ok(())
        }
    }
}

async fn connect_store(config: &ServeConfig) -> Result<Arc<dyn Store>, ServeError> {
    Ok(store::connect(&ConnectOptions {
        url: config.database_url.clone(),
        max_connections: config.db_max_connections,
        acquire_timeout: config.db_acquire_timeout,
        statement_timeout: (!config.statement_timeout.is_zero())
            .then_some(config.statement_timeout),
        read_urls: config.read_database_url.clone(),
    })
    .await?)
}

fn serve_metrics(config: &ServeConfig) {
    if let Some(addr) = config.metrics_listen {
        match crate::telemetry::install_metrics(addr) {
            Ok(()) => tracing::info!(%addr, "serving Prometheus metrics on /metrics"),
            Err(err) => tracing::warn!(error = %err, "metrics are not served"),
        }
    }
}

/// How the server stops: on `signal`, tell the background tasks and report NOT_SERVING, wait
/// `grace` for balancers to notice, end open streams and stop taking RPCs; past `drain_timeout`
/// more, stop regardless of any call still running.
struct Shutdown<F> {
    signal: F,
    stop_tx: watch::Sender<bool>,
    health: HealthReporter,
    streams_end_tx: watch::Sender<bool>,
    grace: Duration,
    drain_timeout: Duration,
}

/// The gRPC server with its layers and services, on `listener` until `shutdown` has run.
async fn run_grpc(
    config: &ServeConfig,
    keys: KeySet,
    app: &App,
    health_service: HealthServer<impl Health>,
    streams_end_rx: watch::Receiver<bool>,
    listener: TcpListener,
    shutdown: Shutdown<impl Future<Output = ()> + Send + 'static>,
) -> Result<(), ServeError> {
    let Shutdown {
        signal,
        stop_tx,
        health,
        streams_end_tx,
        grace,
        drain_timeout,
    } = shutdown;
    let (draining_tx, draining_rx) = tokio::sync::oneshot::channel::<()>();
    let drain = async move {
        signal.await;
        tracing::info!("shutting down: reporting NOT_SERVING");
        let _ = stop_tx.send(true);
        set_health(&health, ServingStatus::NotServing).await;
        tokio::time::sleep(grace).await;
        let _ = streams_end_tx.send(true);
        let _ = draining_tx.send(());
    };
    let drain_deadline = async move {
        match draining_rx.await {
            Ok(()) => tokio::time::sleep(drain_timeout).await,
            Err(_) => std::future::pending().await,
        }
    };

    // Both reflection versions: grpcurl 1.8 speaks only v1alpha, buf curl speaks v1. The
    // google.rpc files let a client that resolves error details by reflection decode their
    // ErrorInfo and BadRequest instead of showing base64.
    let reflection = || {
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(proto::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_types::pb::FILE_DESCRIPTOR_SET)
    };
    let reflection_v1 = reflection().build_v1()?;
    let reflection_v1alpha = reflection().build_v1alpha()?;
    let max = config.max_message_bytes;
    let limits = ConnectionLimits {
        max_connections: config.max_connections,
        handshake_timeout: config.handshake_timeout,
        idle_timeout: config.idle_timeout,
    };
    let deadlines = Deadlines {
        default: config.request_timeout,
        bulk: config.bulk_request_timeout,
    };
    let server = tonic::transport::Server::builder()
        // Outermost: every call is observed, refused ones too.
        .layer(RpcLayer)
        // Next, so that the deadline bounds authentication too and unknown methods are
        // UNIMPLEMENTED whatever the token.
        .layer(DeadlineLayer::new(deadlines, streams_end_rx))
        // Next, so that no handler runs for an unauthenticated or ungated call; health and
        // reflection pass through it on a named allow-list.
        .layer(AuthLayer::new(Arc::new(keys)))
        .concurrency_limit_per_connection(config.concurrency_per_connection)
        .http2_keepalive_interval(Some(config.keepalive_interval))
        .http2_keepalive_timeout(Some(config.keepalive_timeout))
        .add_service(health_service)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .add_service(
            GuardianServiceServer::new(GuardiansApi::new(app.clone()))
                .max_decoding_message_size(max)
                .max_encoding_message_size(max),
        )
        .add_service(
            SettingsServiceServer::new(SettingsApi::new(app.clone()))
                .max_decoding_message_size(max)
                .max_encoding_message_size(max),
        )
        .add_service(
            DirectoryServiceServer::new(DirectoryApi::new(app.clone()))
                .max_decoding_message_size(max)
                .max_encoding_message_size(max),
        )
        .add_service(
            SummaryServiceServer::new(SummariesApi::new(app.clone()))
                .max_decoding_message_size(max)
                .max_encoding_message_size(max),
        )
        .add_service(
            PrivacyServiceServer::new(PrivacyApi::new(app.clone()))
                .max_decoding_message_size(max)
                .max_encoding_message_size(max),
        )
        .serve_with_incoming_shutdown(crate::listener::incoming(listener, limits), drain);
    tokio::select! {
        result = server => Ok(result?),
        () = drain_deadline => {
            tracing::warn!(timeout = ?drain_timeout, "RPCs still open after the drain timeout; stopping");
            Ok(())
        }
    }
}

/// The page-token signer: the configured secret, else one derived from the token secret that
/// every replica shares already; with neither, a key of this process alone (said in the log,
/// since paging then breaks when consecutive pages reach different replicas).
fn page_tokens(config: &ServeConfig, mode: AuthMode) -> Result<PageTokens, ServeError> {
    Ok(match shared_secret(config, mode)? {
        Some(secret) => PageTokens::new(&secret),
        None => {
            tracing::warn!(
                "GUARDIANS_PAGE_TOKEN_SECRET is not set and there is no HS256 secret: page tokens \
                 are signed with a key of this process, so they fail on other replicas"
            );
            PageTokens::random()
        }
    })
}

/// The stand-ins of ended invitations' addresses, keyed by the same secret as page tokens (with
/// a label of their own): every replica and every restart must agree on them.
fn pseudonyms(config: &ServeConfig, mode: AuthMode) -> Result<Pseudonyms, ServeError> {
    Ok(match shared_secret(config, mode)? {
        Some(secret) => Pseudonyms::new(&secret),
        None => {
            tracing::warn!(
                "GUARDIANS_PAGE_TOKEN_SECRET is not set and there is no HS256 secret: ended \
                 invitations are pseudonymised with a key of this process, so after a restart \
                 their declines no longer count against the address"
            );
            Pseudonyms::random()
        }
    })
}

/// The secret page tokens and pseudonyms derive their keys from: GUARDIANS_PAGE_TOKEN_SECRET,
/// else the HS256 secret (the development one in development mode); `None` when neither is.
fn shared_secret(config: &ServeConfig, mode: AuthMode) -> Result<Option<Vec<u8>>, ServeError> {
    if let Some(secret) = &config.page_token_secret {
        return Ok(Some(secret.trim().as_bytes().to_vec()));
    }
    Ok(match mode {
        AuthMode::Development => crate::auth::dev::read_dev_secret(&config.data_dir),
        AuthMode::Configured => config
            .key_sources()
            .secret()
            .map_err(|e| ServeError::Auth(e.to_string()))?,
    }
    .map(|s| s.to_vec()))
}
