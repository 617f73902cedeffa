//! Email addresses, parsed once at the edge: trimmed, case-folded, at most 254 characters and
//! shaped as an RFC 5322 addr-spec (dot-atom local part; quoted local parts and address literals
//! are refused because no school directory issues them).

use super::error::{ValidationError, ValidationReason};
use std::fmt;

/// The longest address a mail system accepts (RFC 5321 path limit less the angle brackets).
pub const MAX_EMAIL_LEN: usize = 254;
const MAX_LOCAL_LEN: usize = 64;
const MAX_LABEL_LEN: usize = 63;

/// A valid, normalised email address. Two addresses that differ only in case or surrounding
/// white space are equal.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Email(String);

impl Email {
    /// Parses raw input. Errors carry `INVALID_EMAIL` and describe the problem without
    /// repeating the address.
    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        let invalid =
            |what: &str| ValidationError::new(ValidationReason::InvalidEmail, "email", what);
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            return Err(invalid("the email address is empty"));
        }
        if trimmed.chars().count() > MAX_EMAIL_LEN {
            return Err(invalid("the email address is longer than 254 characters"));
        }
        if !trimmed.is_ascii() {
            return Err(invalid("the email address must be ASCII"));
        }
        let folded = trimmed.to_ascii_lowercase();
        let Some((local, domain)) = folded.rsplit_once('@') else {
            return Err(invalid("the email address has no @"));
        };
        if !is_dot_atom(local, MAX_LOCAL_LEN, is_atext) {
            return Err(invalid("the part before @ is not a valid local part"));
        }
        if !is_hostname(domain) {
            return Err(invalid("the part after @ is not a valid domain name"));
        }
        Ok(Self(folded))
    }

    /// The normalised address.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The part after the `@`.
    pub fn domain(&self) -> &str {
        self.0.rsplit_once('@').map(|(_, d)| d).unwrap_or_default()
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Debug output never shows the address: it is personal data and Debug ends up in logs.
impl fmt::Debug for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Email(<redacted>)")
    }
}

/// RFC 5322 `atext`: letters, digits and the listed specials.
fn is_atext(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!#$%&'*+-/=?^_`{|}~".contains(c)
}

/// One or more runs of `allowed` characters separated by single dots, at most `max` long.
fn is_dot_atom(s: &str, max: usize, allowed: fn(char) -> bool) -> bool {
    !s.is_empty()
        && s.len() <= max
        && s.split('.')
            .all(|atom| !atom.is_empty() && atom.chars().all(allowed))
}

/// A host name: dot-separated labels of letters, digits and inner hyphens.
pub(crate) fn is_hostname(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= MAX_LABEL_LEN
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_trimmed_and_case_folded() {
        let email = Email::parse("  Ann.Smith@Lincoln.K12.Example \t").unwrap();
        assert_eq!(email.as_str(), "ann.smith@lincoln.k12.example");
        assert_eq!(
            email,
            Email::parse("ann.smith@LINCOLN.k12.example").unwrap()
        );
        assert_eq!(email.domain(), "lincoln.k12.example");
    }

    #[test]
    fn plus_addressing_and_specials_are_valid() {
        for ok in [
            "a+b@x.org",
            "o'brien@x.org",
            "a_b-c@sub-domain.x.org",
            "x@localhost",
        ] {
            assert!(Email::parse(ok).is_ok(), "{ok} should be valid");
        }
    }

    #[test]
    fn malformed_addresses_are_invalid_email() {
        for bad in [
            "",
            "   ",
            "no-at-sign",
            "@x.org",
            "a@",
            "a@@x.org",
            "a..b@x.org",
            ".a@x.org",
            "a.@x.org",
            "a b@x.org",
            "a@-x.org",
            "a@x-.org",
            "a@x..org",
            "\"quoted\"@x.org",
            "a@[127.0.0.1]",
            "jöhn@x.org",
        ] {
            let err = Email::parse(bad)
                .err()
                .unwrap_or_else(|| panic!("{bad:?} should be invalid"));
            assert_eq!(err.reason, ValidationReason::InvalidEmail, "{bad:?}");
        }
        // A trailing newline is white space like any other and is trimmed.
        assert!(Email::parse("a@x.org\n").is_ok());
    }

    #[test]
    fn length_limits_hold_at_the_boundary() {
        let domain = format!(
            "{}.{}.{}.org",
            "a".repeat(63),
            "b".repeat(63),
            "c".repeat(63)
        );
        let local_len = MAX_EMAIL_LEN - 1 - domain.len();
        assert!(local_len <= MAX_LOCAL_LEN);
        let at_limit = format!("{}@{domain}", "x".repeat(local_len));
        assert_eq!(at_limit.len(), 254);
        assert!(Email::parse(&at_limit).is_ok());
        let over = format!("{}@{domain}", "x".repeat(local_len + 1));
        assert_eq!(over.len(), 255);
        assert!(Email::parse(&over).is_err());
        let long_local = format!("{}@x.org", "x".repeat(65));
        assert!(Email::parse(&long_local).is_err());
    }

    #[test]
    fn debug_output_hides_the_address() {
        let email = Email::parse("secret.parent@x.org").unwrap();
        assert!(!format!("{email:?}").contains("secret"));
    }
}
