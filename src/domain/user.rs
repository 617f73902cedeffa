//! People and courses of the directory, as other systems push them in.

use super::email::Email;
use super::error::ValidationError;
use super::ids::{CourseId, DomainName, UserId};
use super::settings::Locale;

/// The role of a directory user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// May have guardians.
    Student,
    /// May manage guardians when verified and allowed.
    Teacher,
    /// A domain administrator.
    Admin,
}

impl Role {
    /// The stored and wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Student => "STUDENT",
            Self::Teacher => "TEACHER",
            Self::Admin => "ADMIN",
        }
    }

    /// Parses a stored name.
    pub fn from_name(name: &str) -> Option<Self> {
        [Self::Student, Self::Teacher, Self::Admin]
            .into_iter()
            .find(|r| r.as_str() == name)
    }
}

/// A directory user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// Stable id from the system of origin.
    pub user_id: UserId,
    /// The user's domain.
    pub domain: DomainName,
    /// The user's address; unique across the directory.
    pub email: Email,
    /// The user's role.
    pub role: Role,
    /// Whether the domain verified this teacher (meaningful for teachers only).
    pub verified_teacher: bool,
    /// Name shown in emails.
    pub display_name: String,
    /// Preferred language; `None` means the domain's default.
    pub locale: Option<Locale>,
}

/// Longest display name kept.
pub const MAX_DISPLAY_NAME_CHARS: usize = 200;

/// A display name as it will be stored and written into emails: trimmed, at most
/// [`MAX_DISPLAY_NAME_CHARS`], and free of control characters (a NUL cannot be stored in
/// Postgres text, and line breaks would let a name forge mail headers or lines).
pub fn parse_display_name(raw: &str) -> Result<String, ValidationError> {
    let name = raw.trim();
    if name.chars().count() > MAX_DISPLAY_NAME_CHARS {
        return Err(ValidationError::invalid(
            "display_name",
            format!("display_name is longer than {MAX_DISPLAY_NAME_CHARS} characters"),
        ));
    }
    if name.chars().any(char::is_control) {
        return Err(ValidationError::invalid(
            "display_name",
            "display_name must not contain control characters (NUL, line breaks, tabs)",
        ));
    }
    Ok(name.to_owned())
}

/// A course and its membership.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Course {
    /// Stable id from the system of origin.
    pub course_id: CourseId,
    /// The domain that owns the course.
    pub domain: DomainName,
    /// The course's teachers.
    pub teacher_ids: Vec<UserId>,
    /// The course's students (possibly of partner domains).
    pub student_ids: Vec<UserId>,
}
