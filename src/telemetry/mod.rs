//! Telemetry: logs (text or JSON by `GUARDIANS_LOG_FORMAT`, level by `RUST_LOG`), the RPC
//! observation layer, and Prometheus metrics on their own port (`GUARDIANS_METRICS_LISTEN`).
//! Nothing recorded here carries an email address, a token or a JWT.

pub mod rpc;
pub mod tracing_context;

use crate::store::Store;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tracing_subscriber::EnvFilter;

/// The log filter for a `RUST_LOG`-style spec (default `info`).
pub fn log_filter(spec: Option<&str>) -> EnvFilter {
    EnvFilter::try_new(spec.unwrap_or("info")).unwrap_or_else(|_| EnvFilter::new("info"))
}

/// Installs the global subscriber. Safe to call once per process.
pub fn init_logging() {
    let filter = log_filter(std::env::var("RUST_LOG").ok().as_deref());
    let json = std::env::var("GUARDIANS_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}

/// Latency buckets, in seconds, for the RPC histogram.
const LATENCY_BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

/// Serves `/metrics` on `addr`. A process has one metrics registry: a second server in the same
/// process (tests) keeps using the first one's.
pub fn install_metrics(addr: SocketAddr) -> Result<(), String> {
    metrics_exporter_prometheus::PrometheusBuilder::new()
        .with_http_listener(addr)
        .set_buckets(&LATENCY_BUCKETS)
        .map_err(|e| e.to_string())?
        .install()
        .map_err(|e| format!("cannot serve metrics on {addr}: {e}"))
}

/// Samples the gauges that are read rather than counted: the connection pool, the outbox depth
/// and the invitations by state (each an index-only count), every `interval`.
pub async fn sample_gauges(
    store: Arc<dyn Store>,
    interval: Duration,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    loop {
        let pool = store.pool_stats();
        metrics::gauge!("guardians_db_pool_connections", "state" => "in_use")
            .set(f64::from(pool.size - pool.idle));
        metrics::gauge!("guardians_db_pool_connections", "state" => "idle")
            .set(f64::from(pool.idle));
        metrics::gauge!("guardians_db_pool_max_connections").set(f64::from(pool.max));
        if let Ok(mut session) = store.session().await {
            if let Ok(depth) = session.count_queued_messages().await {
                metrics::gauge!("guardians_outbox_queued").set(depth as f64);
            }
            if let Ok((pending, accepted)) = session.count_live_invitations().await {
                metrics::gauge!("guardians_invitations", "state" => "PENDING").set(pending as f64);
                metrics::gauge!("guardians_invitations", "state" => "ACCEPTED")
                    .set(accepted as f64);
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = stop.changed() => return,
        }
    }
}
