//! The server: the three services, health and reflection on one listener, with readiness that
//! follows the database, bounded messages, a request deadline and graceful shutdown.

use crate::app::{App, AppConfig, PageTokens};
use crate::auth::AuthMode;
use crate::config::ServeConfig;
use crate::domain::{Clock, SystemClock};
use crate::grpc::AuthLayer;
use crate::grpc::deadline::{DeadlineLayer, Deadlines};
use crate::grpc::{DirectoryApi, GuardiansApi, SettingsApi};
use crate::listener::ConnectionLimits;
use crate::mail::Dispatcher;
use crate::proto::{
    self, directory_service_server::DirectoryServiceServer,
    guardian_service_server::GuardianServiceServer, settings_service_server::SettingsServiceServer,
};
use crate::store::{self, ConnectOptions, Store, StoreError};
use crate::telemetry::rpc::RpcLayer;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;

/// The services whose health is reported, besides the whole server ("").
const SERVICES: [&str; 4] = [
    "",
    "guardians.v1.GuardianService",
    "guardians.v1.SettingsService",
    "guardians.v1.DirectoryService",
];

/// How long the mail dispatcher may take to finish the message in hand when stopping.
const DISPATCHER_STOP: Duration = Duration::from_secs(5);

/// How often readiness re-checks the database.
const READINESS_INTERVAL: Duration = Duration::from_secs(1);

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
    let (keys, mode) = config
        .key_sources()
        .load(&config.data_dir)
        .map_err(|e| ServeError::Auth(e.to_string()))?;
    let local = listener.local_addr().ok();
    if mode == AuthMode::Development {
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
    let store = store::connect(&ConnectOptions {
        url: config.database_url.clone(),
        max_connections: config.db_max_connections,
        acquire_timeout: config.db_acquire_timeout,
        statement_timeout: (!config.statement_timeout.is_zero())
            .then_some(config.statement_timeout),
    })
    .await?;
    let app = App::new(
        store.clone(),
        clock.clone(),
        AppConfig {
            accept_url: config.accept_url.clone(),
            page_tokens: page_tokens(&config, mode)?,
        },
    );

    let (health, health_service) = tonic_health::server::health_reporter();
    set_health(&health, ServingStatus::NotServing).await;
    let (stop_tx, stop_rx) = watch::channel(false);
    // Streams end once the server has said NOT_SERVING and waited its grace period.
    let (streams_end_tx, streams_end_rx) = watch::channel(false);
    let readiness = tokio::spawn(follow_readiness(
        store.clone(),
        health.clone(),
        config.auto_migrate,
        stop_rx.clone(),
    ));
    let upkeep = tokio::spawn(run_upkeep(
        app.clone(),
        config.upkeep_interval,
        stop_rx.clone(),
    ));
    if let Some(addr) = config.metrics_listen {
        match crate::telemetry::install_metrics(addr) {
            Ok(()) => tracing::info!(%addr, "serving Prometheus metrics on /metrics"),
            Err(err) => tracing::warn!(error = %err, "metrics are not served"),
        }
    }
    let gauges = tokio::spawn(crate::telemetry::sample_gauges(
        store.clone(),
        Duration::from_secs(15),
        stop_rx.clone(),
    ));
    let transport = config.mail_transport().map_err(ServeError::Mail)?;
    let dispatcher = config.mail_dispatcher.then(|| {
        let dispatcher = Dispatcher::new(
            store.clone(),
            transport,
            clock.clone(),
            config.dispatch_policy(),
        );
        tokio::spawn(dispatcher.run(config.mail_poll_interval, stop_rx))
    });

    // Both reflection versions: grpcurl 1.8 speaks only v1alpha, buf curl speaks v1.
    let reflection = || {
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(proto::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
    };
    let reflection_v1 = reflection().build_v1()?;
    let reflection_v1alpha = reflection().build_v1alpha()?;
    let max = config.max_message_bytes;

    let grace = config.shutdown_grace;
    let health_on_stop = health.clone();
    let (draining_tx, draining_rx) = tokio::sync::oneshot::channel::<()>();
    let drain = async move {
        shutdown.await;
        tracing::info!("shutting down: reporting NOT_SERVING");
        let _ = stop_tx.send(true);
        set_health(&health_on_stop, ServingStatus::NotServing).await;
        tokio::time::sleep(grace).await;
        let _ = streams_end_tx.send(true);
        let _ = draining_tx.send(());
    };
    // Streams are ended above; past the drain timeout the server stops regardless of any
    // call still running.
    let drain_timeout = config.drain_timeout;
    let drain_deadline = async move {
        match draining_rx.await {
            Ok(()) => tokio::time::sleep(drain_timeout).await,
            Err(_) => std::future::pending().await,
        }
    };

    tracing::info!(address = %listener.local_addr().map(|a| a.to_string()).unwrap_or_default(), backend = ?store.backend(), "serving gRPC");
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
        .serve_with_incoming_shutdown(crate::listener::incoming(listener, limits), drain);
    let result = tokio::select! {
        result = server => result,
        () = drain_deadline => {
            tracing::warn!(timeout = ?drain_timeout, "RPCs still open after the drain timeout; stopping");
            Ok(())
        }
    };
    readiness.abort();
    upkeep.abort();
    gauges.abort();
    if let Some(mut dispatcher) = dispatcher {
        // Told to stop with the others: it finishes the message it is sending and gives the
        // rest of its claim back, so other replicas need not wait out the lease.
        if tokio::time::timeout(DISPATCHER_STOP, &mut dispatcher)
            .await
            .is_err()
        {
            dispatcher.abort();
        }
    }
    store.close().await;
    tracing::info!("stopped");
    Ok(result?)
}

/// The page-token signer: the configured secret, else one derived from the token secret that
/// every replica shares already; with neither, a key of this process alone (said in the log,
/// since paging then breaks when consecutive pages reach different replicas).
fn page_tokens(config: &ServeConfig, mode: AuthMode) -> Result<PageTokens, ServeError> {
    if let Some(secret) = &config.page_token_secret {
        return Ok(PageTokens::new(secret.trim().as_bytes()));
    }
    let shared = match mode {
        AuthMode::Development => crate::auth::dev::read_dev_secret(&config.data_dir),
        AuthMode::Configured => config
            .key_sources()
            .secret()
            .map_err(|e| ServeError::Auth(e.to_string()))?,
    };
    Ok(match shared {
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

async fn set_health(health: &HealthReporter, status: ServingStatus) {
    for service in SERVICES {
        health.set_service_status(service, status).await;
    }
}

/// Reports SERVING while the database answers and is migrated (migrating first when allowed),
/// NOT_SERVING otherwise, until told to stop.
async fn follow_readiness(
    store: Arc<dyn Store>,
    health: HealthReporter,
    auto_migrate: bool,
    mut stop: watch::Receiver<bool>,
) {
    let mut last: Option<bool> = None;
    loop {
        let ready = check_ready(store.as_ref(), auto_migrate).await;
        if *stop.borrow() {
            return;
        }
        if last != Some(ready) {
            if ready {
                tracing::info!("database ready: SERVING");
            } else {
                tracing::warn!("database not ready: NOT_SERVING");
            }
            let status = if ready {
                ServingStatus::Serving
            } else {
                ServingStatus::NotServing
            };
            set_health(&health, status).await;
            last = Some(ready);
        }
        tokio::select! {
            _ = tokio::time::sleep(READINESS_INTERVAL) => {}
            _ = stop.changed() => return,
        }
    }
}

/// Expires due invitations and purges old request ids every `interval`, until told to stop.
/// Every replica runs it; the store hands each due invitation to one of them.
async fn run_upkeep(app: App, interval: Duration, mut stop: watch::Receiver<bool>) {
    /// Invitations expired per transaction.
    const BATCH: u32 = 500;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = stop.changed() => return,
        }
        match app.run_upkeep(BATCH).await {
            Ok(done) => {
                metrics::counter!("guardians_upkeep_runs_total").increment(1);
                metrics::counter!("guardians_invitations_expired_total")
                    .increment(done.expired as u64);
                if done.expired > 0 || done.purged > 0 {
                    tracing::info!(expired = done.expired, purged = done.purged, "upkeep");
                }
            }
            Err(err) => tracing::warn!(error = %err, "upkeep failed; will retry"),
        }
    }
}

async fn check_ready(store: &dyn Store, auto_migrate: bool) -> bool {
    match store.is_migrated().await {
        Ok(true) => true,
        Ok(false) if auto_migrate => match store.migrate().await {
            Ok(()) => true,
            Err(err) => {
                tracing::error!(error = %err, "migration failed");
                false
            }
        },
        Ok(false) => {
            tracing::warn!("database is not migrated; run `guardian-service migrate`");
            false
        }
        Err(err) => {
            tracing::warn!(error = %err, "database unreachable");
            false
        }
    }
}
