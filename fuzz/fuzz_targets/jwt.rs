//! Bearer tokens: any text is verified or refused without a panic; fuzzed claims signed with
//! the configured key reach the claims parser, which turns them into a caller or refuses them.

#![no_main]

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use guardian_service::auth::KeySet;
use hmac::{Hmac, KeyInit, Mac};
use libfuzzer_sys::fuzz_target;

const SECRET: &[u8] = b"a fuzzing secret of at least 32 bytes";

fn signed(claims: &[u8]) -> String {
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
    let payload = URL_SAFE_NO_PAD.encode(claims);
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(SECRET).expect("any key length");
    mac.update(format!("{header}.{payload}").as_bytes());
    let signature = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
    format!("{header}.{payload}.{signature}")
}

fuzz_target!(|input: (bool, &[u8])| {
    let keys = KeySet::new(Some(SECRET), None, None, None).expect("keys");
    let (sign, bytes) = input;
    let token = if sign {
        signed(bytes)
    } else {
        String::from_utf8_lossy(bytes).into_owned()
    };
    if let Ok(caller) = keys.verify(&token) {
        // Unsigned text cannot pass: a caller comes only from claims this key signed.
        assert!(sign, "an unsigned token was accepted");
        assert!(!caller.subject.is_empty(), "a caller without a subject");
        // Verification is a pure function of the token: the cached answer is the same.
        assert_eq!(
            keys.verify(&token).ok().map(|c| c.subject),
            Some(caller.subject)
        );
    }
});
