//! Identifiers, each parsed once from raw input into a type that cannot hold a bad value.

use super::email::{Email, is_hostname};
use super::error::{ValidationError, ValidationReason};
use std::fmt;

const MAX_ID_LEN: usize = 128;

/// Ids come from other systems (SIS exports, identity providers): letters, digits and `-_.:`,
/// at most 128 characters. `@` is excluded so that an id can never be mistaken for an email.
fn is_external_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_ID_LEN
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':'))
}

macro_rules! external_id {
    ($(#[$doc:meta])* $name:ident, $what:literal) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
        pub struct $name(String);

        impl $name {
            /// Parses raw input (trimmed); refused with `INVALID_ARGUMENT` when empty or malformed.
            pub fn parse(raw: &str) -> Result<Self, ValidationError> {
                let trimmed = raw.trim();
                if trimmed.is_empty() {
                    return Err(ValidationError::invalid($what, concat!($what, " is empty")));
                }
                if !is_external_id(trimmed) {
                    return Err(ValidationError::invalid(
                        $what,
                        concat!($what, " must be 1-128 characters of letters, digits and -_.:"),
                    ));
                }
                Ok(Self(trimmed.to_owned()))
            }

            /// The id as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// Wraps a value read back from the store, where it was validated on the way in.
            pub fn from_trusted(value: String) -> Self {
                Self(value)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

external_id!(
    /// A user of the directory (student, teacher, admin) or a guardian's account id.
    UserId,
    "user_id"
);
external_id!(
    /// A course of the directory.
    CourseId,
    "course_id"
);

/// A domain (tenant), e.g. `lincoln.k12.example`: a lower-case host name.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct DomainName(String);

impl DomainName {
    /// Parses raw input: trimmed, case-folded, a valid host name.
    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        let folded = raw.trim().to_ascii_lowercase();
        if folded.is_empty() {
            return Err(ValidationError::invalid("domain", "domain is empty"));
        }
        if !is_hostname(&folded) {
            return Err(ValidationError::invalid(
                "domain",
                "domain must be a host name such as school.example",
            ));
        }
        Ok(Self(folded))
    }

    /// The domain as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Wraps a value read back from the store.
    pub fn from_trusted(value: String) -> Self {
        Self(value)
    }
}

impl fmt::Display for DomainName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A server-assigned invitation id: a UUIDv7, so ids sort by creation time.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct InvitationId(uuid::Uuid);

impl InvitationId {
    /// A fresh id.
    pub fn generate() -> Self {
        Self(uuid::Uuid::now_v7())
    }

    /// Parses an id given by a client.
    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        uuid::Uuid::try_parse(raw.trim())
            .map(Self)
            .map_err(|_| ValidationError::invalid("invitation_id", "invitation_id is not a UUID"))
    }

    /// The canonical hyphenated lower-case form, as stored.
    pub fn to_text(self) -> String {
        self.0.hyphenated().to_string()
    }
}

impl fmt::Display for InvitationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0.hyphenated())
    }
}

/// How a request names a student: by user id or by email address.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum StudentRef {
    /// The student's user id.
    Id(UserId),
    /// The student's email address in the directory.
    Email(Email),
}

impl StudentRef {
    /// Parses `student_id`: anything with an `@` is an email address. Errors are
    /// `INVALID_STUDENT_ID`.
    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        let trimmed = raw.trim();
        let invalid = |what: &str| {
            ValidationError::new(ValidationReason::InvalidStudentId, "student_id", what)
        };
        if trimmed.is_empty() {
            return Err(invalid("student_id is empty"));
        }
        if trimmed.contains('@') {
            return Email::parse(trimmed)
                .map(Self::Email)
                .map_err(|_| invalid("student_id is neither a user id nor a valid email address"));
        }
        UserId::parse(trimmed)
            .map(Self::Id)
            .map_err(|_| invalid("student_id must be 1-128 characters of letters, digits and -_.:"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_ids_accept_external_shapes_and_refuse_the_rest() {
        for ok in ["123456789", "s-42", "sis:2026.001", "A_b"] {
            assert_eq!(UserId::parse(ok).unwrap().as_str(), ok);
        }
        for bad in ["", " ", "a b", "a@b", "é", &"x".repeat(129)] {
            assert!(UserId::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn domains_are_case_folded_host_names() {
        assert_eq!(
            DomainName::parse(" Lincoln.K12.Example ").unwrap().as_str(),
            "lincoln.k12.example"
        );
        for bad in ["", "*", "a..b", "-a.b", "a b.c"] {
            assert!(DomainName::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn student_refs_tell_ids_from_emails() {
        assert!(matches!(StudentRef::parse("s1"), Ok(StudentRef::Id(_))));
        assert!(
            matches!(StudentRef::parse("Kid@School.Example"), Ok(StudentRef::Email(e)) if e.as_str() == "kid@school.example")
        );
        for bad in ["", "kid@", "a b"] {
            let err = StudentRef::parse(bad).unwrap_err();
            assert_eq!(err.reason, ValidationReason::InvalidStudentId, "{bad:?}");
        }
    }

    #[test]
    fn invitation_ids_round_trip_and_sort_by_creation() {
        let first = InvitationId::generate();
        let second = InvitationId::generate();
        assert!(first < second);
        assert_eq!(InvitationId::parse(&first.to_text()).unwrap(), first);
        assert!(InvitationId::parse("not-a-uuid").is_err());
    }
}
