//! Opaque page tokens: the keyset position plus a digest of the request's filters, so that a
//! token cannot be replayed against a different query (`INVALID_PAGE_TOKEN`).

use super::error::AppError;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

#[derive(Serialize, Deserialize)]
struct Token {
    /// The last key served.
    k: String,
    /// Digest of the filters the token belongs to.
    f: String,
}

/// Digest of the parts that must stay the same between pages.
fn filter_digest(filters: &[&str]) -> String {
    let mut hasher = Sha256::new();
    for part in filters {
        hasher.update((part.len() as u64).to_le_bytes());
        hasher.update(part.as_bytes());
    }
    hex(&hasher.finalize()[..12])
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Encodes the position after `last_key` for the query described by `filters`.
pub fn encode(last_key: &str, filters: &[&str]) -> String {
    let token = Token {
        k: last_key.to_owned(),
        f: filter_digest(filters),
    };
    // Serialising two strings cannot fail.
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(&token).unwrap_or_default())
}

/// Cuts `rows`, fetched as one page plus one, to the page, and returns the next page's token
/// made from the last row served (empty when nothing follows).
pub fn cut<T>(
    rows: &mut Vec<T>,
    size: u32,
    key_of: impl Fn(&T) -> String,
    filters: &[&str],
) -> String {
    let more = rows.len() > size as usize;
    rows.truncate(size as usize);
    match (more, rows.last()) {
        (true, Some(last)) => encode(&key_of(last), filters),
        _ => String::new(),
    }
}

/// Decodes a client's token: `None` for the first page, the last key served otherwise.
pub fn decode(token: &str, filters: &[&str]) -> Result<Option<String>, AppError> {
    if token.is_empty() {
        return Ok(None);
    }
    let bytes = URL_SAFE_NO_PAD
        .decode(token)
        .map_err(|_| AppError::InvalidPageToken)?;
    let token: Token = serde_json::from_slice(&bytes).map_err(|_| AppError::InvalidPageToken)?;
    if token.f != filter_digest(filters) {
        return Err(AppError::InvalidPageToken);
    }
    Ok(Some(token.k))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_round_trips_for_the_same_filters() {
        let t = encode("user-42", &["school.example", "STUDENT"]);
        assert_eq!(
            decode(&t, &["school.example", "STUDENT"])
                .unwrap()
                .as_deref(),
            Some("user-42")
        );
        assert_eq!(decode("", &["x"]).unwrap(), None);
    }

    #[test]
    fn a_token_from_other_filters_or_tampered_is_refused() {
        let t = encode("user-42", &["school.example", "STUDENT"]);
        assert!(matches!(
            decode(&t, &["school.example", "TEACHER"]),
            Err(AppError::InvalidPageToken)
        ));
        // Shifting the boundary between filter parts changes the digest too.
        assert!(matches!(
            decode(&t, &["school.exampleS", "TUDENT"]),
            Err(AppError::InvalidPageToken)
        ));
        for bad in ["%%%", "bm90IGpzb24", &t[..t.len() - 2]] {
            assert!(
                matches!(
                    decode(bad, &["school.example", "STUDENT"]),
                    Err(AppError::InvalidPageToken)
                ),
                "{bad}"
            );
        }
    }
}
