//! Development mode: with no keys configured, a secret generated once and kept in the data
//! folder signs and verifies tokens, so that a newcomer can call the server at once. Only ever
//! on loopback.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Where the development secret lives inside the data folder.
pub const DEV_SECRET_FILE: &str = ".guardians-dev-secret";

/// The development secret's path for a data folder.
pub fn dev_secret_path(data_dir: &Path) -> PathBuf {
    data_dir.join(DEV_SECRET_FILE)
}

/// Reads the development secret, creating it (readable by the owner only) if absent.
pub fn load_or_create_dev_secret(data_dir: &Path) -> std::io::Result<Vec<u8>> {
    let path = dev_secret_path(data_dir);
    if let Ok(existing) = std::fs::read_to_string(&path) {
        let trimmed = existing.trim();
        if trimmed.len() >= 43 {
            return Ok(trimmed.as_bytes().to_vec());
        }
    }
    std::fs::create_dir_all(data_dir)?;
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let secret = URL_SAFE_NO_PAD.encode(bytes);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(&path)?;
    file.write_all(secret.as_bytes())?;
    Ok(secret.into_bytes())
}

/// Reads the development secret if one exists.
pub fn read_dev_secret(data_dir: &Path) -> Option<Vec<u8>> {
    std::fs::read_to_string(dev_secret_path(data_dir))
        .ok()
        .map(|s| s.trim().as_bytes().to_vec())
        .filter(|s| s.len() >= 43)
}
