//! Page tokens: any text a client sends decodes to a position or INVALID_PAGE_TOKEN, never a
//! panic; a token the server made decodes to its position, and only for the same filters.

#![no_main]

use guardian_service::app::{AppError, PageTokens};
use libfuzzer_sys::fuzz_target;

const FILTERS: [&str; 2] = ["school.example", "STUDENT"];

fuzz_target!(|input: (&str, &str)| {
    let (token, position) = input;
    let tokens = PageTokens::new(b"fuzzing secret");
    match tokens.decode(token, &FILTERS) {
        Ok(None) => assert!(token.is_empty()),
        // Only a token this key signed decodes: it must encode back to the same position.
        Ok(Some(key)) => assert_eq!(
            tokens.decode(&tokens.encode(&key, &FILTERS), &FILTERS).ok(),
            Some(Some(key))
        ),
        Err(AppError::InvalidPageToken) => {}
        Err(other) => panic!("unexpected error {other:?}"),
    }
    let made = tokens.encode(position, &FILTERS);
    assert_eq!(
        tokens.decode(&made, &FILTERS).ok(),
        Some(Some(position.to_owned()))
    );
    assert!(matches!(
        tokens.decode(&made, &["school.example", "TEACHER"]),
        Err(AppError::InvalidPageToken)
    ));
});
