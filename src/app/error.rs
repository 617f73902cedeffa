//! What a use case can fail with: one variant per reason of the contract (api.md, "Errors").
//! The gRPC layer turns each into a status in exactly one place (`grpc::status`).

use crate::domain::invite_rules::InviteRefusal;
use crate::domain::{TransitionError, ValidationError};
use crate::store::StoreError;
use thiserror::Error;

/// A resource that was looked for and not found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Missing {
    /// `STUDENT_NOT_FOUND`
    Student,
    /// `INVITATION_NOT_FOUND`
    Invitation,
    /// `GUARDIAN_NOT_FOUND`
    Guardian,
    /// `USER_NOT_FOUND`
    User,
    /// `COURSE_NOT_FOUND`
    Course,
    /// `UNSUBSCRIBE_LINK_NOT_FOUND`: unknown, or used already.
    UnsubscribeLink,
    /// `PERSON_NOT_FOUND`: the caller may see no record about the person.
    Person,
}

/// Why a use case refused or failed. Messages never contain an email address or a token.
#[derive(Debug, Error)]
pub enum AppError {
    /// A field of the request is malformed (`INVALID_EMAIL`, `INVALID_STUDENT_ID`,
    /// `INVALID_ARGUMENT`), with the fields concerned.
    #[error("invalid request: {0}")]
    Invalid(#[from] ValidationError),
    /// `INVALID_PAGE_TOKEN`
    #[error("the page token is invalid or belongs to another query")]
    InvalidPageToken,
    /// `REQUEST_ID_REUSED`
    #[error("the request id was used before for a different request")]
    RequestIdReused,
    /// `GUARDIAN_EMAIL_IS_STUDENT`
    #[error("the invited address is the student's own")]
    GuardianEmailIsStudent,
    /// `UNAUTHENTICATED`
    #[error("unauthenticated: {0}")]
    Unauthenticated(String),
    /// `NOT_ALLOWED_TO_MANAGE`
    #[error("not allowed: {0}")]
    NotAllowed(String),
    /// `*_NOT_FOUND`
    #[error("{0:?} not found")]
    NotFound(Missing),
    /// `INVITATION_ALREADY_PENDING`
    #[error("a pending invitation for this student and address exists")]
    InvitationAlreadyPending,
    /// `GUARDIAN_ALREADY_LINKED`
    #[error("the address is already a guardian of the student")]
    GuardianAlreadyLinked,
    /// `STUDENT_GUARDIAN_LIMIT_REACHED`
    #[error("the student has {current} of at most {limit} guardians and invitations")]
    StudentGuardianLimitReached {
        /// The domain's limit.
        limit: i64,
        /// Accepted plus pending now.
        current: i64,
    },
    /// `GUARDIAN_STUDENT_LIMIT_REACHED`
    #[error("the guardian address has {current} of at most {limit} students")]
    GuardianStudentLimitReached {
        /// The domain's limit.
        limit: i64,
        /// Students of the address now.
        current: i64,
    },
    /// `GUARDIAN_ACCESS_DISABLED`
    #[error("guardian access is disabled for the domain")]
    GuardianAccessDisabled,
    /// `TOO_MANY_DECLINES`
    #[error("this address declined too many invitations for this student")]
    TooManyDeclines,
    /// `SYNC_REMOVAL_LIMIT_EXCEEDED`
    #[error("the sync would delete {planned} links; the safety limit is {limit}")]
    SyncRemovalLimitExceeded {
        /// The most deletions allowed.
        limit: i64,
        /// The deletions planned.
        planned: i64,
    },
    /// `INVITATION_NOT_PENDING`
    #[error("the invitation is not pending")]
    InvitationNotPending,
    /// `INVITATION_EXPIRED`
    #[error("the invitation has expired")]
    InvitationExpired,
    /// `CHANGE_TOKEN_EXPIRED`: the feed no longer holds the changes after the token.
    #[error("the change token is older than the feed's retention")]
    ChangeTokenExpired,
    /// `ETAG_MISMATCH`
    #[error("the resource changed since the given etag")]
    EtagMismatch,
    /// `UNAVAILABLE` / `ROW_NOT_ATTEMPTED`: a bulk row left undone because the call's deadline
    /// was near; nothing of it was applied, so sending it again is safe.
    #[error("the row was not attempted before the call's deadline")]
    NotAttempted,
    /// `UNAVAILABLE`: the database cannot be reached; safe to retry. Holds the cause for the log.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// `INTERNAL`: a bug or an unexpected failure. Holds the cause for the log only.
    #[error("internal: {0}")]
    Internal(String),
}

/// Result of a use case.
pub type AppResult<T> = Result<T, AppError>;

impl From<StoreError> for AppError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::Unavailable(cause) => Self::Unavailable(cause),
            // A serialisation failure left after the use case's own retries is transient too.
            StoreError::Retry(cause) => Self::Unavailable(cause),
            other => Self::Internal(other.to_string()),
        }
    }
}

impl From<TransitionError> for AppError {
    fn from(err: TransitionError) -> Self {
        match err {
            TransitionError::NotPending => Self::InvitationNotPending,
            TransitionError::Expired => Self::InvitationExpired,
        }
    }
}

impl From<InviteRefusal> for AppError {
    fn from(refusal: InviteRefusal) -> Self {
        match refusal {
            InviteRefusal::TooManyDeclines => Self::TooManyDeclines,
            InviteRefusal::AlreadyLinked => Self::GuardianAlreadyLinked,
            InviteRefusal::AlreadyPending => Self::InvitationAlreadyPending,
            InviteRefusal::StudentLimitReached { limit, current } => {
                Self::StudentGuardianLimitReached { limit, current }
            }
        }
    }
}

impl From<crate::domain::sync_rules::RemovalLimitExceeded> for AppError {
    fn from(e: crate::domain::sync_rules::RemovalLimitExceeded) -> Self {
        Self::SyncRemovalLimitExceeded {
            limit: e.limit,
            planned: e.planned,
        }
    }
}
