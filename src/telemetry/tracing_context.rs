//! W3C trace context: a call that arrives with `traceparent` joins the caller's trace. Without
//! an OpenTelemetry exporter configured there is nothing to join, and this does nothing.

/// Makes `span` a child of the remote span named by the request's `traceparent`, if any.
pub fn adopt_remote_parent(_span: &tracing::Span, _headers: &http::HeaderMap) {}
