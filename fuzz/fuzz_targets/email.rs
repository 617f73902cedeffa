//! Email::parse on any text: it never panics, and what it accepts is normalised, bounded and
//! stable (parsing the normalised form gives the same address).

#![no_main]

use guardian_service::domain::Email;
use guardian_service::domain::email::MAX_EMAIL_LEN;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|raw: &str| {
    let Ok(email) = Email::parse(raw) else {
        return;
    };
    let text = email.as_str();
    assert!(text.len() <= MAX_EMAIL_LEN, "too long: {}", text.len());
    assert!(text.is_ascii() && !text.chars().any(|c| c.is_ascii_control() || c == ' '));
    assert_eq!(text, text.to_ascii_lowercase());
    assert_eq!(text.matches('@').count(), 1, "{text:?}");
    assert!(!email.domain().is_empty());
    assert_eq!(
        Email::parse(text).as_ref(),
        Ok(&email),
        "not stable: {text:?}"
    );
});
