//! Opaque page tokens: the keyset position, bound to a digest of the request's filters and
//! signed with the server's key, so that a token can be neither replayed against a different
//! query nor edited to jump elsewhere (`INVALID_PAGE_TOKEN` either way).

use super::error::AppError;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Bytes of the signature kept in a token: 128 bits is far beyond guessing, and keeps tokens short.
const TAG_BYTES: usize = 16;

/// Signs and checks page tokens. Every replica behind one address must hold the same key, or a
/// token from one replica is refused by the next.
#[derive(Clone)]
pub struct PageTokens {
    key: HmacSha256,
}

impl std::fmt::Debug for PageTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PageTokens(..)")
    }
}

impl PageTokens {
    /// Tokens signed with a key derived from `secret` (labelled, so that a secret that also
    /// signs JWTs is never used as-is for a second purpose).
    pub fn new(secret: &[u8]) -> Self {
        let mut derive = HmacSha256::new_from_slice(secret).expect("HMAC takes keys of any length");
        derive.update(b"guardian-service page tokens v1");
        let derived = derive.finalize().into_bytes();
        Self {
            key: HmacSha256::new_from_slice(&derived).expect("HMAC takes keys of any length"),
        }
    }

    /// Tokens signed with a fresh random key: valid only in this process.
    pub fn random() -> Self {
        Self::new(&rand::random::<[u8; 32]>())
    }

    fn mac(&self, last_key: &str, filters: &[&str]) -> HmacSha256 {
        let mut mac = self.key.clone();
        for part in filters {
            mac.update(&(part.len() as u64).to_le_bytes());
            mac.update(part.as_bytes());
        }
        mac.update(&(last_key.len() as u64).to_le_bytes());
        mac.update(last_key.as_bytes());
        mac
    }

    /// Encodes the position after `last_key` for the query described by `filters`.
    pub fn encode(&self, last_key: &str, filters: &[&str]) -> String {
        let tag = self.mac(last_key, filters).finalize().into_bytes();
        format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(last_key.as_bytes()),
            URL_SAFE_NO_PAD.encode(&tag[..TAG_BYTES])
        )
    }

    /// Cuts `rows`, fetched as one page plus one, to the page, and returns the next page's
    /// token made from the last row served (empty when nothing follows).
    pub fn cut<T>(
        &self,
        rows: &mut Vec<T>,
        size: u32,
        key_of: impl Fn(&T) -> String,
        filters: &[&str],
    ) -> String {
        let more = rows.len() > size as usize;
        rows.truncate(size as usize);
        match (more, rows.last()) {
            (true, Some(last)) => self.encode(&key_of(last), filters),
            _ => String::new(),
        }
    }

    /// Decodes a client's token: `None` for the first page, the last key served otherwise.
    pub fn decode(&self, token: &str, filters: &[&str]) -> Result<Option<String>, AppError> {
        if token.is_empty() {
            return Ok(None);
        }
        let (key, tag) = token.split_once('.').ok_or(AppError::InvalidPageToken)?;
        let key = URL_SAFE_NO_PAD
            .decode(key)
            .ok()
            .and_then(|bytes| String::from_utf8(bytes).ok())
            .ok_or(AppError::InvalidPageToken)?;
        let tag = URL_SAFE_NO_PAD
            .decode(tag)
            .map_err(|_| AppError::InvalidPageToken)?;
        if tag.len() != TAG_BYTES {
            return Err(AppError::InvalidPageToken);
        }
        // Constant time: a token's tag cannot be found byte by byte from response times.
        self.mac(&key, filters)
            .verify_truncated_left(&tag)
            .map_err(|_| AppError::InvalidPageToken)?;
        Ok(Some(key))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILTERS: [&str; 2] = ["school.example", "STUDENT"];

    #[test]
    fn a_token_round_trips_for_the_same_filters() {
        let tokens = PageTokens::new(b"secret");
        let t = tokens.encode("user-42", &FILTERS);
        assert_eq!(
            tokens.decode(&t, &FILTERS).unwrap().as_deref(),
            Some("user-42")
        );
        assert_eq!(tokens.decode("", &["x"]).unwrap(), None);
        // Another replica with the same secret accepts it.
        assert!(PageTokens::new(b"secret").decode(&t, &FILTERS).is_ok());
    }

    #[test]
    fn a_token_from_other_filters_or_another_key_is_refused() {
        let tokens = PageTokens::new(b"secret");
        let t = tokens.encode("user-42", &FILTERS);
        let refused = |tokens: &PageTokens, token: &str, filters: &[&str]| {
            matches!(
                tokens.decode(token, filters),
                Err(AppError::InvalidPageToken)
            )
        };
        assert!(refused(&tokens, &t, &["school.example", "TEACHER"]));
        // Shifting the boundary between filter parts changes the signature too.
        assert!(refused(&tokens, &t, &["school.exampleS", "TUDENT"]));
        assert!(refused(&PageTokens::new(b"other"), &t, &FILTERS));
        for bad in ["%%%", "bm90IGpzb24", "a.b", &t[..t.len() - 2]] {
            assert!(refused(&tokens, bad, &FILTERS), "{bad}");
        }
    }

    #[test]
    fn an_edited_position_is_refused() {
        let tokens = PageTokens::new(b"secret");
        let t = tokens.encode("user-42", &FILTERS);
        let (_, tag) = t.split_once('.').unwrap();
        // The position a client would like to jump to, with the original signature.
        let forged = format!("{}.{tag}", URL_SAFE_NO_PAD.encode("user-00"));
        assert!(matches!(
            tokens.decode(&forged, &FILTERS),
            Err(AppError::InvalidPageToken)
        ));
        // Every single-character edit of the token is refused too.
        let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        for at in 0..t.len() {
            if t.as_bytes()[at] == b'.' {
                continue;
            }
            for &c in alphabet {
                if c == t.as_bytes()[at] {
                    continue;
                }
                let mut edited = t.clone().into_bytes();
                edited[at] = c;
                let edited = String::from_utf8(edited).unwrap();
                match tokens.decode(&edited, &FILTERS) {
                    Err(AppError::InvalidPageToken) => {}
                    // Base64's last character carries unused bits: an edit there can decode
                    // to the very same bytes, which is the same token, not a forgery.
                    Ok(Some(key)) => assert_eq!(key, "user-42", "{edited}"),
                    other => panic!("{edited}: {other:?}"),
                }
            }
        }
    }
}
