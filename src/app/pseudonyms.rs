//! Keyed hashes that stand in for a person's address and account id once the record that named
//! them is past its retention. The same input always gives the same stand-in, so a declined
//! address still counts its declines (the anti-spam rule holds); without the key nobody can
//! test a guessed address against a stored stand-in, which a plain hash would allow.

use crate::domain::{Email, UserId};
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// The domain every stand-in address is in (reserved by RFC 2606: it never receives mail).
pub(crate) const ERASED_DOMAIN: &str = "erased.invalid";

/// Makes stand-ins. Every replica must hold the same key, and it must outlive restarts, or an
/// address pseudonymised under one key is not recognised under the next.
#[derive(Clone)]
pub struct Pseudonyms {
    key: HmacSha256,
}

impl std::fmt::Debug for Pseudonyms {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Pseudonyms(..)")
    }
}

impl Pseudonyms {
    /// Stand-ins keyed by a key derived from `secret` (labelled, so that a secret that also
    /// signs tokens is never used as-is for a second purpose).
    pub fn new(secret: &[u8]) -> Self {
        let mut derive = HmacSha256::new_from_slice(secret).expect("HMAC takes keys of any length");
        derive.update(b"guardian-service pseudonyms v1");
        let derived = derive.finalize().into_bytes();
        Self {
            key: HmacSha256::new_from_slice(&derived).expect("HMAC takes keys of any length"),
        }
    }

    /// Stand-ins under a fresh random key: consistent in this process only.
    pub fn random() -> Self {
        Self::new(&rand::random::<[u8; 32]>())
    }

    fn digest(&self, kind: &str, value: &str) -> String {
        let mut mac = self.key.clone();
        mac.update(kind.as_bytes());
        mac.update(&[0]);
        mac.update(value.as_bytes());
        let bytes = mac.finalize().into_bytes();
        // 128 bits: collisions between a school's addresses are out of reach.
        crate::domain::hex::hex(&bytes[..16])
    }

    /// The stand-in of an address: a valid address in [`ERASED_DOMAIN`], so every reader of
    /// the row still parses it. A stand-in is its own stand-in.
    pub fn email(&self, email: &Email) -> Email {
        if is_stand_in(email) {
            return email.clone();
        }
        let text = format!("p-{}@{ERASED_DOMAIN}", self.digest("email", email.as_str()));
        Email::parse(&text).expect("a stand-in is a valid address")
    }

    /// The stand-in of an account id.
    pub fn user_id(&self, id: &UserId) -> UserId {
        if id.as_str().starts_with("erased-") {
            return id.clone();
        }
        let text = format!("erased-{}", self.digest("user", id.as_str()));
        UserId::parse(&text).expect("a stand-in is a valid id")
    }
}

/// Whether `email` is a stand-in rather than a person's address.
pub(crate) fn is_stand_in(email: &Email) -> bool {
    email.as_str().ends_with(&format!("@{ERASED_DOMAIN}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stand_ins_are_stable_per_key_valid_and_reveal_nothing() {
        let a = Pseudonyms::new(b"secret one");
        let parent = Email::parse("Parent@Example.org").unwrap();
        let p = a.email(&parent);
        assert_eq!(p, a.email(&Email::parse("parent@example.org").unwrap()));
        assert!(is_stand_in(&p));
        assert!(!p.as_str().contains("parent"));
        assert_eq!(a.email(&p), p, "a stand-in stays as it is");
        assert_ne!(p, Pseudonyms::new(b"secret two").email(&parent), "keyed");
        assert_ne!(p, a.email(&Email::parse("other@example.org").unwrap()));
        let id = UserId::parse("g-300").unwrap();
        let erased = a.user_id(&id);
        assert!(erased.as_str().starts_with("erased-"));
        assert_eq!(a.user_id(&erased), erased);
        assert_eq!(erased, a.user_id(&id));
    }
}
