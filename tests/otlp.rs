//! Spans reach a real OTLP receiver on loopback: every RPC is a span named by its method, with
//! its status code, joined to the caller's trace by `traceparent`.

#[path = "api/helpers.rs"]
#[allow(dead_code)]
mod helpers;

use guardian_service::proto::GetDomainSettingsRequest;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::trace::v1::Span;
use tokio::sync::mpsc;
use tracing_subscriber::layer::SubscriberExt;

/// A minimal OTLP/gRPC trace collector: every span it receives goes down a channel.
struct Collector(mpsc::UnboundedSender<Span>);

#[tonic::async_trait]
impl TraceService for Collector {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        for resource in request.into_inner().resource_spans {
            for scope in resource.scope_spans {
                for span in scope.spans {
                    let _ = self.0.send(span);
                }
            }
        }
        Ok(tonic::Response::new(ExportTraceServiceResponse {
            partial_success: None,
        }))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rpc_spans_arrive_at_an_otlp_collector_in_the_callers_trace() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let collector_addr = listener.local_addr().unwrap();
    let (tx, mut spans) = mpsc::unbounded_channel();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(TraceServiceServer::new(Collector(tx)))
            .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener)),
    );

    let provider =
        guardian_service::telemetry::otlp_provider(&format!("http://{collector_addr}")).unwrap();
    let tracer = {
        use opentelemetry::trace::TracerProvider;
        provider.tracer("guardian-service")
    };
    let subscriber = tracing_subscriber::registry()
        .with(guardian_service::telemetry::log_filter(Some("info")))
        .with(tracing_opentelemetry::layer().with_tracer(tracer));
    tracing::subscriber::set_global_default(subscriber).unwrap();

    let db = guardian_service::testing::TestDatabase::create_migrated().await;
    let app = helpers::spawn_with(helpers::test_config(&db.url)).await;
    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let mut request = tonic::Request::new(GetDomainSettingsRequest {
        domain: "school.example".into(),
    });
    request.metadata_mut().insert(
        "traceparent",
        format!("00-{trace_id}-00f067aa0ba902b7-01")
            .parse()
            .unwrap(),
    );
    app.settings().get_domain_settings(request).await.unwrap();

    // Flush: shutting the provider down exports what is buffered.
    tokio::task::spawn_blocking(move || provider.shutdown())
        .await
        .unwrap()
        .unwrap();
    let method = "/guardians.v1.SettingsService/GetDomainSettings";
    let mut seen = Vec::new();
    let span = loop {
        let span = tokio::time::timeout(std::time::Duration::from_secs(10), spans.recv())
            .await
            .expect("spans reach the collector")
            .expect("collector open");
        if span.name == method {
            break span;
        }
        seen.push(span.name);
    };
    let hex: String = span.trace_id.iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(hex, trace_id, "the RPC joined the caller's trace");
    let code = span
        .attributes
        .iter()
        .find(|a| a.key == "rpc.grpc.status_code");
    assert!(
        code.is_some(),
        "the status code is recorded: {:?}",
        span.attributes
    );
    let role = span.attributes.iter().find(|a| a.key == "caller.role");
    assert!(role.is_some(), "the caller's role is recorded");
    drop(db);
}
