//! Signing tokens for operators and development (`guardian-service token`): HS256 with the
//! configured or development secret.

use jsonwebtoken::{EncodingKey, Header};
use serde::Serialize;
use std::time::Duration;

/// What a token says.
#[derive(Debug, Clone, Serialize)]
pub struct TokenClaims {
    /// Subject: user id, guardian account id or service name.
    pub sub: String,
    /// Role: admin, teacher, student, guardian or service.
    pub role: String,
    /// Domain (`*` for platform services; absent for guardians).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
    /// Email address (required for guardians).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// Space-separated scopes (services).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// Issuer, when the server checks one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    /// Audience, when the server checks one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aud: Option<String>,
    /// Issued at (seconds since the epoch).
    pub iat: i64,
    /// Expiry (seconds since the epoch).
    pub exp: i64,
    /// Not before (seconds since the epoch), when the token is for later.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nbf: Option<i64>,
}

impl TokenClaims {
    /// Claims valid from now for `ttl`.
    pub fn new(sub: &str, role: &str, ttl: Duration) -> Self {
        let now = chrono::Utc::now().timestamp();
        Self {
            sub: sub.to_owned(),
            role: role.to_owned(),
            domain: None,
            email: None,
            scope: None,
            iss: None,
            aud: None,
            iat: now,
            exp: now + ttl.as_secs() as i64,
            nbf: None,
        }
    }
}

/// Signs `claims` with an HS256 `secret`.
pub fn sign_hs256(claims: &TokenClaims, secret: &[u8]) -> Result<String, String> {
    let key = EncodingKey::from_secret(secret).map_err(|e| e.to_string())?;
    jsonwebtoken::encode(&Header::default(), claims, &key).map_err(|e| e.to_string())
}
