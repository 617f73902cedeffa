//! The transport's side of the contract, between the observation layer and authentication:
//! each RPC's deadline (longer for bulk calls, shorter when the client asks), answered with
//! `DEADLINE_EXCEEDED`; unknown methods answered `UNIMPLEMENTED` before any token is looked at;
//! and tonic's own refusals of a request message re-coded as the client's fault
//! (`INVALID_ARGUMENT` for bytes that do not decode, `RESOURCE_EXHAUSTED` for an oversized one),
//! where tonic says `INTERNAL` and `OUT_OF_RANGE`.

use super::status::status;
use bytes::Bytes;
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::Instant;
use tonic::Code;
use tonic::body::Body;
use tower::{Layer, Service};

/// The moment an RPC must be answered by, in the request's extensions, so that work in rows
/// (bulk calls) can stop starting rows in time to report the ones it finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestDeadline(pub Instant);

/// Deadlines of the server's RPCs.
#[derive(Debug, Clone, Copy)]
pub struct Deadlines {
    /// Every RPC but the bulk ones.
    pub default: Duration,
    /// BulkCreateGuardianInvitations, BulkDeleteGuardians and SyncGuardians.
    pub bulk: Duration,
}

const BULK_METHODS: [&str; 3] = [
    "/guardians.v1.GuardianService/BulkCreateGuardianInvitations",
    "/guardians.v1.GuardianService/BulkDeleteGuardians",
    "/guardians.v1.GuardianService/SyncGuardians",
];

impl Deadlines {
    /// The server's deadline for the RPC at `path`.
    pub fn for_method(&self, path: &str) -> Duration {
        if BULK_METHODS.contains(&path) {
            self.bulk
        } else {
            self.default
        }
    }
}

/// Parses a `grpc-timeout` header value: up to 8 digits and a unit (H, M, S, m, u, n).
pub fn parse_grpc_timeout(raw: &str) -> Option<Duration> {
    let (digits, unit) = raw.split_at(raw.len().checked_sub(1)?);
    if digits.is_empty() || digits.len() > 8 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(n * 3600),
        "M" => Duration::from_secs(n * 60),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => return None,
    })
}

/// Wraps services with [`DeadlineService`].
#[derive(Debug, Clone)]
pub struct DeadlineLayer {
    deadlines: Deadlines,
    stopping: watch::Receiver<bool>,
}

impl DeadlineLayer {
    /// A layer applying `deadlines`; streams are ended once `stopping` turns true.
    pub fn new(deadlines: Deadlines, stopping: watch::Receiver<bool>) -> Self {
        Self {
            deadlines,
            stopping,
        }
    }
}

impl<S> Layer<S> for DeadlineLayer {
    type Service = DeadlineService<S>;
    fn layer(&self, inner: S) -> Self::Service {
        DeadlineService {
            inner,
            deadlines: self.deadlines,
            stopping: self.stopping.clone(),
        }
    }
}

/// The service [`DeadlineLayer`] builds.
#[derive(Debug, Clone)]
pub struct DeadlineService<S> {
    inner: S,
    deadlines: Deadlines,
    stopping: watch::Receiver<bool>,
}

type BoxFuture<T, E> = Pin<Box<dyn Future<Output = Result<T, E>> + Send>>;

/// Whether `path` is served here: one of the contract's RPCs, health or reflection.
fn is_known(path: &str) -> bool {
    crate::auth::gate::permission_for(path).is_some() || crate::auth::gate::is_public(path)
}

impl<S, ReqBody, ResBody> Service<http::Request<ReqBody>> for DeadlineService<S>
where
    S: Service<http::Request<ReqBody>, Response = http::Response<ResBody>>,
    S::Future: Send + 'static,
    ResBody: http_body::Body<Data = Bytes> + Send + 'static,
    ResBody::Error: Into<tonic::codegen::StdError>,
{
    type Response = http::Response<Body>;
    type Error = S::Error;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<ReqBody>) -> Self::Future {
        let path = request.uri().path();
        if !is_known(path) {
            let answer = status(
                Code::Unimplemented,
                "UNIMPLEMENTED",
                "no such method on this server",
                HashMap::new(),
            )
            .into_http::<Body>();
            return Box::pin(async move { Ok(answer) });
        }
        let mut budget = self.deadlines.for_method(path);
        // A stream (health Watch, the change feed) lives as long as its client wants: no
        // server deadline.
        let streaming = path == "/grpc.health.v1.Health/Watch"
            || path == "/guardians.v1.GuardianService/WatchGuardianChanges"
            || path.ends_with("/ServerReflectionInfo");
        if let Some(asked) = request
            .headers()
            .get("grpc-timeout")
            .and_then(|v| v.to_str().ok())
            .and_then(parse_grpc_timeout)
        {
            budget = budget.min(asked);
        }
        let deadline = Instant::now() + budget;
        request.extensions_mut().insert(RequestDeadline(deadline));
        // The connection counts as busy, not idle, until this call is answered.
        let busy = request
            .extensions()
            .get::<crate::listener::ConnectionInfo>()
            .map(|c| c.activity.begin());
        let future = self.inner.call(request);
        let stopping = self.stopping.clone();
        Box::pin(async move {
            let response = if streaming {
                // A stream (health Watch) never ends by itself: end it when the server stops,
                // or it holds the graceful shutdown open until the drain timeout. The
                // connection stays busy while the stream is open, not just until its headers.
                let response = future.await?;
                return Ok(response.map(|body| Body::new(UntilStopping::new(body, stopping, busy))));
            } else {
                let _busy = busy;
                match tokio::time::timeout_at(deadline, future).await {
                    Ok(response) => response?,
                    Err(_) => {
                        return Ok(status(
                            Code::DeadlineExceeded,
                            "DEADLINE_EXCEEDED",
                            format!(
                                "the call did not finish within its deadline of {} ms; it may \
                                 or may not have taken effect: retry with the same request_id",
                                budget.as_millis()
                            ),
                            HashMap::new(),
                        )
                        .into_http());
                    }
                }
            };
            Ok(recode_transport_refusal(response.map(Body::new)))
        })
    }
}

/// A response body that ends with `UNAVAILABLE` trailers once the server is stopping.
struct UntilStopping<B> {
    inner: Pin<Box<B>>,
    stopped: Pin<Box<dyn Future<Output = ()> + Send>>,
    ended: bool,
    /// Keeps the connection out of the idle timeout while the stream is open.
    _busy: Option<crate::listener::RpcGuard>,
}

impl<B> UntilStopping<B> {
    fn new(
        inner: B,
        mut stopping: watch::Receiver<bool>,
        busy: Option<crate::listener::RpcGuard>,
    ) -> Self {
        Self {
            inner: Box::pin(inner),
            stopped: Box::pin(async move {
                let _ = stopping.wait_for(|stop| *stop).await;
            }),
            ended: false,
            _busy: busy,
        }
    }
}

impl<B> http_body::Body for UntilStopping<B>
where
    B: http_body::Body<Data = Bytes>,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
        if self.ended {
            return Poll::Ready(None);
        }
        // What the stream has ready goes first (the NOT_SERVING update of a stopping server).
        if let Poll::Ready(frame) = self.inner.as_mut().poll_frame(cx) {
            return Poll::Ready(frame);
        }
        if self.stopped.as_mut().poll(cx).is_ready() {
            self.ended = true;
            let mut trailers = http::HeaderMap::new();
            trailers.insert("grpc-status", http::HeaderValue::from_static("14"));
            trailers.insert(
                "grpc-message",
                http::HeaderValue::from_static("server%20shutting%20down"),
            );
            return Poll::Ready(Some(Ok(http_body::Frame::trailers(trailers))));
        }
        Poll::Pending
    }
}

/// tonic refuses a request message it cannot decode with `INTERNAL`, and one over the size
/// limit with `OUT_OF_RANGE`, before any handler runs; both are the client's doing.
fn recode_transport_refusal<B: Default>(response: http::Response<B>) -> http::Response<B> {
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    };
    let code = header("grpc-status");
    let message = header("grpc-message").replace("%20", " ");
    let recoded =
        if code == (Code::Internal as i32).to_string() && message.starts_with("failed to decode") {
            Some((
                Code::InvalidArgument,
                "INVALID_ARGUMENT",
                "the request message could not be decoded as the method's protobuf message",
            ))
        } else if code == (Code::OutOfRange as i32).to_string()
            && message.contains("message length too large")
        {
            Some((
                Code::ResourceExhausted,
                "MESSAGE_TOO_LARGE",
                "the request message is larger than the server accepts",
            ))
        } else {
            None
        };
    match recoded {
        Some((code, reason, message)) => status(code, reason, message, HashMap::new()).into_http(),
        None => response,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_timeouts_parse_with_their_units() {
        assert_eq!(parse_grpc_timeout("5S"), Some(Duration::from_secs(5)));
        assert_eq!(parse_grpc_timeout("250m"), Some(Duration::from_millis(250)));
        assert_eq!(parse_grpc_timeout("2H"), Some(Duration::from_secs(7200)));
        assert_eq!(parse_grpc_timeout("100u"), Some(Duration::from_micros(100)));
        for bad in ["", "S", "5", "5s", "123456789S", "-1S", "1.5S"] {
            assert_eq!(parse_grpc_timeout(bad), None, "{bad}");
        }
    }

    #[test]
    fn bulk_methods_get_the_bulk_deadline() {
        let d = Deadlines {
            default: Duration::from_secs(10),
            bulk: Duration::from_secs(120),
        };
        assert_eq!(
            d.for_method("/guardians.v1.GuardianService/SyncGuardians"),
            Duration::from_secs(120)
        );
        assert_eq!(
            d.for_method("/guardians.v1.GuardianService/CheckGuardianship"),
            Duration::from_secs(10)
        );
    }
}
