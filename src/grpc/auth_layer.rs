//! The authentication layer in front of every service: verifies `authorization: Bearer <JWT>`,
//! runs the gate for the called method, and hands the handler an [`Authorized`] in the request
//! extensions. It is a tower layer rather than a tonic interceptor because an interceptor is
//! synchronous and never sees the method path, which the gate needs.

use super::status::auth_failure_status;
use crate::auth::gate::{self, Authorized};
use crate::auth::keys::{KeySet, TokenError};
use crate::domain::policy::Denial;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tower::{Layer, Service};

/// Wraps services with authentication and the gate.
#[derive(Debug, Clone)]
pub struct AuthLayer {
    keys: Arc<KeySet>,
}

impl AuthLayer {
    /// Verifies tokens against `keys`.
    pub fn new(keys: Arc<KeySet>) -> Self {
        Self { keys }
    }
}

impl<S> Layer<S> for AuthLayer {
    type Service = AuthService<S>;
    fn layer(&self, inner: S) -> Self::Service {
        AuthService {
            inner,
            keys: self.keys.clone(),
        }
    }
}

/// The service [`AuthLayer`] builds.
#[derive(Debug, Clone)]
pub struct AuthService<S> {
    inner: S,
    keys: Arc<KeySet>,
}

type BoxFuture<T, E> = Pin<Box<dyn Future<Output = Result<T, E>> + Send>>;

impl<S, ReqBody, ResBody> Service<http::Request<ReqBody>> for AuthService<S>
where
    S: Service<http::Request<ReqBody>, Response = http::Response<ResBody>>,
    S::Future: Send + 'static,
    ResBody: Default + Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<ReqBody>) -> Self::Future {
        let path = request.uri().path();
        if gate::is_public(path) {
            return Box::pin(self.inner.call(request));
        }
        match authorize(&self.keys, request.headers(), path) {
            Ok(authorized) => {
                request.extensions_mut().insert(authorized);
                Box::pin(self.inner.call(request))
            }
            Err(failure) => {
                let response = auth_failure_status(failure).into_http::<ResBody>();
                Box::pin(async move { Ok(response) })
            }
        }
    }
}

/// Why the layer turned a request away.
#[derive(Debug)]
pub enum AuthFailure {
    /// No token, or one that does not verify: UNAUTHENTICATED.
    Unauthenticated(TokenError),
    /// A verified caller the gate refuses for the method.
    Denied(Denial),
}

/// Authenticates the request's bearer token and admits it to `path`.
fn authorize(
    keys: &KeySet,
    headers: &http::HeaderMap,
    path: &str,
) -> Result<Authorized, AuthFailure> {
    let token = bearer(headers)
        .ok_or(TokenError::Missing)
        .map_err(unauthenticated)?;
    let caller = keys.verify(token).map_err(unauthenticated)?;
    // Role and domain describe the caller without identifying a person.
    let span = tracing::Span::current();
    span.record("caller.role", caller.role.as_str());
    if let Some(domain) = caller.home_domain() {
        span.record("caller.domain", domain.as_str());
    }
    gate::admit(caller, path).map_err(|denial| {
        tracing::debug!(method = path, ?denial, "refused by the gate");
        AuthFailure::Denied(denial)
    })
}

fn unauthenticated(err: TokenError) -> AuthFailure {
    tracing::debug!(reason = %err, "unauthenticated request");
    AuthFailure::Unauthenticated(err)
}

/// The token of an `authorization: Bearer <token>` header (scheme case-insensitive).
fn bearer(headers: &http::HeaderMap) -> Option<&str> {
    let value = headers.get(http::header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// The [`Authorized`] the layer put into a request; every handler starts here.
pub fn authorized<T>(request: &tonic::Request<T>) -> Result<Authorized, tonic::Status> {
    request
        .extensions()
        .get::<Authorized>()
        .cloned()
        .ok_or_else(|| auth_failure_status(AuthFailure::Unauthenticated(TokenError::Missing)))
}

#[cfg(test)]
mod tests {
    use super::bearer;

    #[test]
    fn bearer_tokens_are_read_case_insensitively() {
        let mut headers = http::HeaderMap::new();
        assert_eq!(bearer(&headers), None);
        headers.insert("authorization", "Bearer abc.def.ghi".parse().unwrap());
        assert_eq!(bearer(&headers), Some("abc.def.ghi"));
        headers.insert("authorization", "bearer xyz".parse().unwrap());
        assert_eq!(bearer(&headers), Some("xyz"));
        headers.insert("authorization", "Basic dXNlcg==".parse().unwrap());
        assert_eq!(bearer(&headers), None);
        headers.insert("authorization", "Bearer ".parse().unwrap());
        assert_eq!(bearer(&headers), None);
    }
}
