//! Token verification against the configured keys: an HS256 secret and/or a JWKS file of public
//! keys (RS256, ES256, EdDSA; `oct` keys for HS256), several at once for rotation. Signature
//! checks are the `jsonwebtoken` crate's; this module only chooses keys and reads claims.

use crate::domain::{Caller, CallerDomains, CallerRole, DomainName, Email, Scope};
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey, Validation, errors::ErrorKind};
use serde::Deserialize;
use std::collections::HashMap;
use std::sync::Mutex;

/// Clock skew tolerated on `exp` and `nbf`.
pub const LEEWAY_SECONDS: u64 = 60;

/// Why a token was refused. The text is safe to return: it never includes the token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// No `authorization: Bearer` metadata.
    #[error("missing bearer token")]
    Missing,
    /// `exp` is past (beyond the leeway).
    #[error("token expired")]
    Expired,
    /// Malformed, unsupported algorithm, unknown key, bad signature, or wrong issuer/audience.
    #[error("token is invalid: {0}")]
    Invalid(&'static str),
}

/// Why keys could not be loaded.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct KeyError(pub String);

struct Key {
    kid: Option<String>,
    algorithm: Algorithm,
    key: DecodingKey,
}

/// The keys tokens may be signed with, and the issuer and audience they must name.
pub struct KeySet {
    keys: Vec<Key>,
    issuer: Option<String>,
    audience: Option<String>,
    /// Tokens already verified, with their expiry: callers send the same token on every call,
    /// and checking a signature and parsing claims each time was a visible share of the hot
    /// path. Bounded; entries are only ever added after full verification.
    verified: Mutex<HashMap<String, (Caller, i64)>>,
}

/// Past this many cached tokens the cache starts over.
const MAX_CACHED_TOKENS: usize = 10_000;

impl std::fmt::Debug for KeySet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print key material.
        f.debug_struct("KeySet")
            .field("keys", &self.keys.len())
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .finish()
    }
}

impl KeySet {
    /// Keys from an optional HS256 secret and an optional JWKS document.
    pub fn new(
        hs256_secret: Option<&[u8]>,
        jwks_json: Option<&str>,
        issuer: Option<String>,
        audience: Option<String>,
    ) -> Result<Self, KeyError> {
        let mut keys = Vec::new();
        if let Some(secret) = hs256_secret {
            if secret.len() < 32 {
                return Err(KeyError(
                    "the HS256 secret must be at least 32 bytes".into(),
                ));
            }
            keys.push(Key {
                kid: None,
                algorithm: Algorithm::HS256,
                key: DecodingKey::from_secret(secret).map_err(|e| KeyError(e.to_string()))?,
            });
        }
        if let Some(json) = jwks_json {
            let set: JwkSet = serde_json::from_str(json)
                .map_err(|e| KeyError(format!("the JWKS file is not a JSON Web Key Set: {e}")))?;
            for jwk in &set.keys {
                let algorithm = match &jwk.algorithm {
                    AlgorithmParameters::RSA(_) => Algorithm::RS256,
                    AlgorithmParameters::EllipticCurve(ec) if ec.curve == EllipticCurve::P256 => {
                        Algorithm::ES256
                    }
                    AlgorithmParameters::OctetKeyPair(_) => Algorithm::EdDSA,
                    AlgorithmParameters::OctetKey(_) => Algorithm::HS256,
                    // Other curves, and key types added to the crate later, are refused loudly
                    // rather than skipped: a missing rotation key should stop the start-up.
                    _ => {
                        return Err(KeyError(
                            "unsupported JWK: use RSA (RS256), EC P-256 (ES256), OKP Ed25519 (EdDSA) or oct (HS256)".into(),
                        ));
                    }
                };
                let key = DecodingKey::from_jwk(jwk)
                    .map_err(|e| KeyError(format!("unusable JWK: {e}")))?;
                keys.push(Key {
                    kid: jwk.common.key_id.clone(),
                    algorithm,
                    key,
                });
            }
        }
        Ok(Self {
            keys,
            issuer,
            audience,
            verified: Mutex::new(HashMap::new()),
        })
    }

    /// Whether any key is configured.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Verifies a compact JWS and turns its claims into a [`Caller`].
    pub fn verify(&self, token: &str) -> Result<Caller, TokenError> {
        let now = chrono::Utc::now().timestamp();
        if let Some((caller, exp)) = self.lock().get(token)
            && now <= exp + LEEWAY_SECONDS as i64
        {
            return Ok(caller.clone());
        }
        let (caller, exp) = self.verify_uncached(token)?;
        let mut cache = self.lock();
        if cache.len() >= MAX_CACHED_TOKENS {
            cache.clear();
        }
        cache.insert(token.to_owned(), (caller.clone(), exp));
        Ok(caller)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (Caller, i64)>> {
        self.verified.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn verify_uncached(&self, token: &str) -> Result<(Caller, i64), TokenError> {
        let header = jsonwebtoken::decode_header(token)
            .map_err(|_| TokenError::Invalid("malformed token or unsupported algorithm"))?;
        let candidates = self.keys.iter().filter(|k| {
            k.algorithm == header.alg
                && match (&header.kid, &k.kid) {
                    (Some(wanted), Some(have)) => wanted == have,
                    _ => true,
                }
        });
        let mut outcome = Err(TokenError::Invalid("no configured key verifies this token"));
        for key in candidates {
            let mut validation = Validation::new(key.algorithm);
            validation.leeway = LEEWAY_SECONDS;
            // Off by default in jsonwebtoken: a token issued for later is not valid yet.
            validation.validate_nbf = true;
            // A configured issuer or audience must be present, not merely right when present.
            let mut required = vec!["exp", "sub"];
            required.extend(self.issuer.as_ref().map(|_| "iss"));
            required.extend(self.audience.as_ref().map(|_| "aud"));
            validation.set_required_spec_claims(&required);
            match &self.issuer {
                Some(iss) => validation.set_issuer(&[iss]),
                None => validation.iss = None,
            }
            match &self.audience {
                Some(aud) => validation.set_audience(&[aud]),
                None => validation.validate_aud = false,
            }
            match jsonwebtoken::decode::<Claims>(token, &key.key, &validation) {
                Ok(data) => {
                    let exp = data.claims.exp;
                    return data.claims.into_caller().map(|caller| (caller, exp));
                }
                Err(e) => {
                    outcome = Err(match e.kind() {
                        ErrorKind::ExpiredSignature => TokenError::Expired,
                        ErrorKind::InvalidIssuer => TokenError::Invalid("wrong issuer"),
                        ErrorKind::InvalidAudience => TokenError::Invalid("wrong audience"),
                        ErrorKind::ImmatureSignature => TokenError::Invalid("token not yet valid"),
                        ErrorKind::MissingRequiredClaim(_) => {
                            TokenError::Invalid("a required claim is missing")
                        }
                        _ => TokenError::Invalid("bad signature or claims"),
                    });
                    // A wrong signature may only mean another key with the same algorithm.
                    if !matches!(e.kind(), ErrorKind::InvalidSignature) {
                        break;
                    }
                }
            }
        }
        outcome
    }
}

/// The claims this service reads; `exp`, `iss` and `aud` are checked by the validation.
#[derive(Debug, Deserialize)]
struct Claims {
    sub: String,
    exp: i64,
    role: String,
    #[serde(default)]
    domain: Option<String>,
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    scope: Option<String>,
}

impl Claims {
    fn into_caller(self) -> Result<Caller, TokenError> {
        let role = CallerRole::parse(&self.role).ok_or(TokenError::Invalid("unknown role"))?;
        if self.sub.trim().is_empty() {
            return Err(TokenError::Invalid("empty subject"));
        }
        let domains = match (role, self.domain.as_deref().map(str::trim)) {
            (CallerRole::Guardian, _) => CallerDomains::Only(Vec::new()),
            (CallerRole::Service, Some("*")) => CallerDomains::All,
            (CallerRole::Service, Some(list)) => CallerDomains::Only(
                list.split_whitespace()
                    .map(DomainName::parse)
                    .collect::<Result<_, _>>()
                    .map_err(|_| TokenError::Invalid("malformed domain claim"))?,
            ),
            (_, Some(one)) if one != "*" => CallerDomains::Only(vec![
                DomainName::parse(one)
                    .map_err(|_| TokenError::Invalid("malformed domain claim"))?,
            ]),
            _ => {
                return Err(TokenError::Invalid(
                    "the token must name the caller's domain",
                ));
            }
        };
        let email = self
            .email
            .as_deref()
            .map(Email::parse)
            .transpose()
            .map_err(|_| TokenError::Invalid("malformed email claim"))?;
        if role == CallerRole::Guardian && email.is_none() {
            return Err(TokenError::Invalid(
                "a guardian token must carry an email claim",
            ));
        }
        let scopes = if role == CallerRole::Service {
            self.scope
                .as_deref()
                .unwrap_or_default()
                .split_whitespace()
                .filter_map(Scope::parse)
                .collect()
        } else {
            Vec::new()
        };
        Ok(Caller {
            subject: self.sub,
            role,
            domains,
            email,
            scopes,
        })
    }
}
