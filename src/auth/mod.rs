//! Identity and access: who is calling (token verification) and whether the called RPC is open
//! to them (the gate). Imports nothing above `domain`: the tower layer that runs both on each
//! request is `grpc::auth_layer`, and the per-student decision lives in the use cases, on the
//! pure rules of `domain::policy`.

pub mod dev;
pub mod gate;
pub mod issue;
pub mod keys;

pub use gate::Authorized;
pub use keys::{KeyError, KeySet, TokenError};

use std::path::{Path, PathBuf};

/// Where the keys come from (flags and `GUARDIANS_JWT_*` variables).
#[derive(Debug, Clone, Default)]
pub struct KeySources {
    /// HS256 shared secret.
    pub hs256_secret: Option<String>,
    /// A file holding the HS256 secret (for secrets mounted as files).
    pub hs256_secret_file: Option<PathBuf>,
    /// A JSON Web Key Set file of public keys.
    pub jwks_file: Option<PathBuf>,
    /// Required `iss`.
    pub issuer: Option<String>,
    /// Required `aud`.
    pub audience: Option<String>,
}

/// Whether the server checks real keys or runs in development mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMode {
    /// Keys are configured.
    Configured,
    /// No keys: a generated development secret, loopback only.
    Development,
}

impl KeySources {
    /// The configured HS256 secret, from the variable or the file.
    pub fn secret(&self) -> Result<Option<Vec<u8>>, KeyError> {
        if let Some(secret) = &self.hs256_secret {
            return Ok(Some(secret.trim().as_bytes().to_vec()));
        }
        match &self.hs256_secret_file {
            Some(path) => std::fs::read_to_string(path)
                .map(|s| Some(s.trim().as_bytes().to_vec()))
                .map_err(|e| KeyError(format!("cannot read the HS256 secret file: {e}"))),
            None => Ok(None),
        }
    }

    /// Loads the keys; with none configured, falls back to the development secret kept in
    /// `data_dir` (created on first use).
    pub fn load(&self, data_dir: &Path) -> Result<(KeySet, AuthMode), KeyError> {
        let secret = self.secret()?;
        let jwks = match &self.jwks_file {
            Some(path) => Some(
                std::fs::read_to_string(path)
                    .map_err(|e| KeyError(format!("cannot read the JWKS file: {e}")))?,
            ),
            None => None,
        };
        if secret.is_none() && jwks.is_none() {
            let dev = dev::load_or_create_dev_secret(data_dir)
                .map_err(|e| KeyError(format!("cannot create the development secret: {e}")))?;
            let keys = KeySet::new(Some(&dev), None, self.issuer.clone(), self.audience.clone())?;
            return Ok((keys, AuthMode::Development));
        }
        let keys = KeySet::new(
            secret.as_deref(),
            jwks.as_deref(),
            self.issuer.clone(),
            self.audience.clone(),
        )?;
        Ok((keys, AuthMode::Configured))
    }
}
