//! Validation failures of raw input, named by the field they concern.

use std::fmt;

/// The contract's reason for a validation failure (see api.md, "Errors").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValidationReason {
    /// `INVALID_EMAIL`: malformed, empty or longer than 254 characters.
    InvalidEmail,
    /// `INVALID_STUDENT_ID`: empty or malformed student id.
    InvalidStudentId,
    /// `INVALID_ARGUMENT`: any other field problem.
    InvalidArgument,
}

impl ValidationReason {
    /// The reason string clients match on.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidEmail => "INVALID_EMAIL",
            Self::InvalidStudentId => "INVALID_STUDENT_ID",
            Self::InvalidArgument => "INVALID_ARGUMENT",
        }
    }
}

/// One field that was refused and why, in words safe to show the caller (never the value itself,
/// which may be an email address).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldViolation {
    /// The request field, by its proto name (e.g. `invited_email_address`).
    pub field: String,
    /// What is wrong with it.
    pub description: String,
}

/// Raw input that does not parse into a domain value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidationError {
    /// Which contract reason applies.
    pub reason: ValidationReason,
    /// The offending fields (at least one).
    pub violations: Vec<FieldViolation>,
}

impl ValidationError {
    /// A failure of a single field.
    pub fn new(reason: ValidationReason, field: &str, description: impl Into<String>) -> Self {
        Self {
            reason,
            violations: vec![FieldViolation {
                field: field.to_owned(),
                description: description.into(),
            }],
        }
    }

    /// `INVALID_ARGUMENT` on one field.
    pub fn invalid(field: &str, description: impl Into<String>) -> Self {
        Self::new(ValidationReason::InvalidArgument, field, description)
    }

    /// The same failure reported under another field name (a parser is written once and used
    /// for many request fields).
    pub fn for_field(mut self, field: &str) -> Self {
        for v in &mut self.violations {
            v.field = field.to_owned();
        }
        self
    }
}

impl fmt::Display for ValidationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for v in &self.violations {
            if !first {
                f.write_str("; ")?;
            }
            first = false;
            write!(f, "{}: {}", v.field, v.description)?;
        }
        Ok(())
    }
}

impl std::error::Error for ValidationError {}
