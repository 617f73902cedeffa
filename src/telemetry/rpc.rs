//! The observation layer, outermost on every RPC: a span per call (method, gRPC status code,
//! caller role and domain; never an address or a token), the request count and latency
//! histogram by method and code, and one log line for each client-caused failure (server-caused
//! ones are logged once, with their cause, where the status is built).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;
use tower::{Layer, Service};
use tracing::Instrument;

/// Wraps services with [`RpcService`].
#[derive(Debug, Clone, Copy, Default)]
pub struct RpcLayer;

impl<S> Layer<S> for RpcLayer {
    type Service = RpcService<S>;
    fn layer(&self, inner: S) -> Self::Service {
        RpcService { inner }
    }
}

/// The service [`RpcLayer`] builds.
#[derive(Debug, Clone)]
pub struct RpcService<S> {
    inner: S,
}

type BoxFuture<T, E> = Pin<Box<dyn Future<Output = Result<T, E>> + Send>>;

/// The gRPC status code of a response: in the headers for a failed unary call (trailers-only),
/// absent (so OK, pending the trailers) for one that succeeded.
fn status_code<B>(response: &http::Response<B>) -> i32 {
    response
        .headers()
        .get("grpc-status")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// The method as a static string: one of the contract's, health or reflection, or "other".
fn static_method(path: &str) -> &'static str {
    if let Some((known, _)) = crate::auth::gate::METHOD_PERMISSIONS
        .iter()
        .find(|(m, _)| *m == path)
    {
        return known;
    }
    const OTHERS: [&str; 4] = [
        "/grpc.health.v1.Health/Check",
        "/grpc.health.v1.Health/Watch",
        "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
        "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
    ];
    OTHERS.into_iter().find(|m| *m == path).unwrap_or("other")
}

/// The name of a gRPC status code, as a static string.
fn code_name(code: i32) -> &'static str {
    use tonic::Code;
    match Code::from_i32(code) {
        Code::Ok => "Ok",
        Code::Cancelled => "Cancelled",
        Code::Unknown => "Unknown",
        Code::InvalidArgument => "InvalidArgument",
        Code::DeadlineExceeded => "DeadlineExceeded",
        Code::NotFound => "NotFound",
        Code::AlreadyExists => "AlreadyExists",
        Code::PermissionDenied => "PermissionDenied",
        Code::ResourceExhausted => "ResourceExhausted",
        Code::FailedPrecondition => "FailedPrecondition",
        Code::Aborted => "Aborted",
        Code::OutOfRange => "OutOfRange",
        Code::Unimplemented => "Unimplemented",
        Code::Internal => "Internal",
        Code::Unavailable => "Unavailable",
        Code::DataLoss => "DataLoss",
        Code::Unauthenticated => "Unauthenticated",
    }
}

/// Codes that mean the server (or what it depends on) failed, not the caller.
fn server_caused(code: i32) -> bool {
    use tonic::Code;
    matches!(
        Code::from_i32(code),
        Code::Internal | Code::Unknown | Code::DataLoss | Code::Unavailable | Code::Unimplemented
    )
}

impl<S, ReqBody, ResBody> Service<http::Request<ReqBody>> for RpcService<S>
where
    S: Service<http::Request<ReqBody>, Response = http::Response<ResBody>>,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<ReqBody>) -> Self::Future {
        // Labels are static strings: no allocation per call, and a bounded label set even when
        // a client sends paths that are not ours.
        let method = static_method(request.uri().path());
        let span = tracing::info_span!(
            "rpc",
            otel.name = %method,
            rpc.system = "grpc",
            rpc.method = %method,
            rpc.grpc.status_code = tracing::field::Empty,
            caller.role = tracing::field::Empty,
            caller.domain = tracing::field::Empty,
        );
        super::tracing_context::adopt_remote_parent(&span, request.headers());
        let started = Instant::now();
        // Entered while the inner layers run their synchronous part, so that the auth layer
        // can record the caller on this span.
        let future = {
            let _entered = span.enter();
            self.inner.call(request)
        };
        let recorded = span.clone();
        Box::pin(
            async move {
                let result = future.await;
                let code = match &result {
                    Ok(response) => status_code(response),
                    Err(_) => tonic::Code::Unknown as i32,
                };
                recorded.record("rpc.grpc.status_code", code);
                let code_name = code_name(code);
                metrics::counter!("guardians_rpc_requests_total", "method" => method, "code" => code_name)
                    .increment(1);
                metrics::histogram!("guardians_rpc_duration_seconds", "method" => method, "code" => code_name)
                    .record(started.elapsed().as_secs_f64());
                if code != 0 && !server_caused(code) {
                    tracing::info!(code = code_name, "rpc refused");
                }
                result
            }
            .instrument(span),
        )
    }
}
