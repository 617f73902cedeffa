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

/// Keeps the trace exporter alive; [`TelemetryGuard::shutdown`] flushes what is buffered.
#[derive(Debug, Default)]
pub struct TelemetryGuard {
    provider: Option<opentelemetry_sdk::trace::SdkTracerProvider>,
}

impl TelemetryGuard {
    /// Sends the spans still buffered and stops the exporter.
    pub fn shutdown(self) {
        if let Some(provider) = self.provider
            && let Err(err) = provider.shutdown()
        {
            eprintln!("guardian-service: flushing traces failed: {err}");
        }
    }
}

/// A tracer provider exporting over OTLP/gRPC to `endpoint`; the other standard `OTEL_*`
/// variables (service name, headers, timeout, sampler) are read by the SDK.
pub fn otlp_provider(
    endpoint: &str,
) -> Result<opentelemetry_sdk::trace::SdkTracerProvider, String> {
    use opentelemetry_otlp::WithExportConfig;
    use opentelemetry_sdk::trace::span_processor_with_async_runtime::BatchSpanProcessor;
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .with_endpoint(endpoint)
        .build()
        .map_err(|e| format!("OTLP exporter: {e}"))?;
    // The batch processor on the Tokio runtime: the tonic exporter needs one to send.
    let processor =
        BatchSpanProcessor::builder(exporter, opentelemetry_sdk::runtime::Tokio).build();
    let resource = opentelemetry_sdk::Resource::builder()
        .with_service_name("guardian-service")
        .build();
    opentelemetry::global::set_text_map_propagator(
        opentelemetry_sdk::propagation::TraceContextPropagator::new(),
    );
    Ok(opentelemetry_sdk::trace::SdkTracerProvider::builder()
        .with_span_processor(processor)
        .with_resource(resource)
        .build())
}

/// Installs the global subscriber: logs per `RUST_LOG` and `GUARDIANS_LOG_FORMAT`, plus span
/// export when `OTEL_EXPORTER_OTLP_ENDPOINT` is set. Call once, inside the Tokio runtime.
pub fn init() -> TelemetryGuard {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let filter = log_filter(std::env::var("RUST_LOG").ok().as_deref());
    let json = std::env::var("GUARDIANS_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json"));
    let endpoint = std::env::var("OTEL_EXPORTER_OTLP_ENDPOINT")
        .ok()
        .filter(|e| !e.trim().is_empty());
    let (provider, problem) = match endpoint.as_deref().map(otlp_provider) {
        Some(Ok(provider)) => (Some(provider), None),
        Some(Err(err)) => (None, Some(err)),
        None => (None, None),
    };
    let otel = provider.as_ref().map(|p| {
        use opentelemetry::trace::TracerProvider;
        tracing_opentelemetry::layer().with_tracer(p.tracer("guardian-service"))
    });
    let registry = tracing_subscriber::registry().with(filter).with(otel);
    let _ = if json {
        registry
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .with_writer(std::io::stderr),
            )
            .try_init()
    } else {
        registry
            .with(tracing_subscriber::fmt::layer().with_writer(std::io::stderr))
            .try_init()
    };
    if let Some(err) = problem {
        tracing::error!(error = %err, "traces are not exported");
    }
    TelemetryGuard { provider }
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
