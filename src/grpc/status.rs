//! THE one place that turns a use case's error into a gRPC status: code, fixed message,
//! `google.rpc.ErrorInfo` (domain `guardians.v1`, the contract's reason, metadata) and
//! `BadRequest` field violations. Server-side causes go to the log, never to the caller.

use super::auth_layer::AuthFailure;
use crate::app::{AppError, Missing};
use std::collections::HashMap;
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

/// The ErrorInfo domain of every error.
pub const ERROR_DOMAIN: &str = "guardians.v1";

/// Builds a status with ErrorInfo.
pub fn status(
    code: Code,
    reason: &str,
    message: impl Into<String>,
    metadata: HashMap<String, String>,
) -> Status {
    Status::with_error_details(
        code,
        message,
        ErrorDetails::with_error_info(reason, ERROR_DOMAIN, metadata),
    )
}

/// A per-row or per-item failure as its result message carries it: the code, the reason and
/// the fixed message a whole call with that error would end with.
pub fn error_fields(err: AppError) -> (i32, String, String) {
    let status = to_status(err);
    (
        status.code() as i32,
        reason_of(&status),
        status.message().to_owned(),
    )
}

/// The ErrorInfo reason of a status built here (empty for one that has none).
pub fn reason_of(status: &Status) -> String {
    status
        .get_details_error_info()
        .map(|i| i.reason)
        .unwrap_or_default()
}

impl From<AppError> for Status {
    /// The error a whole call ends with: its server-side cause is logged, then mapped.
    fn from(err: AppError) -> Self {
        log_server_errors(std::iter::once(&err));
        to_status(err)
    }
}

/// The status of a request the authentication layer turned away: the same table, so that a
/// refusal reads the same from the gate and from a use case.
pub fn auth_failure_status(failure: AuthFailure) -> Status {
    match failure {
        AuthFailure::Unauthenticated(err) => to_status(AppError::Unauthenticated(err.to_string())),
        AuthFailure::Denied(denial) => to_status(AppError::from(denial)),
    }
}

/// Logs the server-side causes among `errors` (the caller sees only a fixed message) once, with
/// how many there were, and counts database outages: a bulk call whose thousand rows met one
/// outage logs one line, not a thousand.
pub fn log_server_errors<'a>(errors: impl Iterator<Item = &'a AppError>) {
    let mut unavailable = 0u64;
    let mut internal = 0u64;
    let mut first: Option<&AppError> = None;
    for err in errors {
        match err {
            AppError::Unavailable(_) => unavailable += 1,
            AppError::Internal(_) => internal += 1,
            _ => continue,
        }
        first.get_or_insert(err);
    }
    if unavailable > 0 {
        // Counted so that pool waits that ran out (and an unreachable database) show on the
        // dashboard.
        metrics::counter!("guardians_db_unavailable_total").increment(unavailable);
    }
    match first {
        Some(AppError::Unavailable(cause)) => {
            tracing::error!(%cause, unavailable, internal, "database unavailable");
        }
        Some(AppError::Internal(cause)) => {
            tracing::error!(%cause, unavailable, internal, "internal error");
        }
        _ => {}
    }
}

impl From<crate::domain::ValidationError> for Status {
    fn from(err: crate::domain::ValidationError) -> Self {
        to_status(AppError::Invalid(err))
    }
}

fn plain(code: Code, reason: &str, message: &str) -> Status {
    status(code, reason, message, HashMap::new())
}

/// Maps an error to its status (see the table in api.md). Pure: logs nothing, so that it can
/// serve each row of a bulk answer.
pub fn to_status(err: AppError) -> Status {
    use AppError as E;
    match err {
        E::Invalid(v) => {
            let reason = v.reason.as_str();
            let fields: Vec<&str> = v.violations.iter().map(|f| f.field.as_str()).collect();
            let metadata = HashMap::from([("fields".to_owned(), fields.join(","))]);
            let mut details = ErrorDetails::with_error_info(reason, ERROR_DOMAIN, metadata);
            for f in &v.violations {
                details.add_bad_request_violation(f.field.clone(), f.description.clone());
            }
            Status::with_error_details(Code::InvalidArgument, v.to_string(), details)
        }
        E::InvalidPageToken => plain(
            Code::InvalidArgument,
            "INVALID_PAGE_TOKEN",
            "the page token is invalid or the request's other fields changed between pages",
        ),
        E::RequestIdReused => plain(
            Code::InvalidArgument,
            "REQUEST_ID_REUSED",
            "the request_id was already used for a different request",
        ),
        E::GuardianEmailIsStudent => plain(
            Code::InvalidArgument,
            "GUARDIAN_EMAIL_IS_STUDENT",
            "the invited address is the student's own",
        ),
        E::Unauthenticated(why) => status(
            Code::Unauthenticated,
            "UNAUTHENTICATED",
            format!("unauthenticated: {why}"),
            HashMap::new(),
        ),
        E::NotAllowed(why) => status(
            Code::PermissionDenied,
            "NOT_ALLOWED_TO_MANAGE",
            format!("permission denied: {why}"),
            HashMap::new(),
        ),
        E::NotFound(what) => {
            let (reason, message) = match what {
                Missing::Student => ("STUDENT_NOT_FOUND", "no such student"),
                Missing::Invitation => ("INVITATION_NOT_FOUND", "no such invitation"),
                Missing::Guardian => ("GUARDIAN_NOT_FOUND", "no such guardian of the student"),
                Missing::User => ("USER_NOT_FOUND", "no such user"),
                Missing::Course => ("COURSE_NOT_FOUND", "no such course"),
                Missing::UnsubscribeLink => (
                    "UNSUBSCRIBE_LINK_NOT_FOUND",
                    "the unsubscribe link is unknown or was used already",
                ),
                Missing::Person => (
                    "PERSON_NOT_FOUND",
                    "no record about this person is visible to the caller",
                ),
            };
            plain(Code::NotFound, reason, message)
        }
        E::InvitationAlreadyPending => plain(
            Code::AlreadyExists,
            "INVITATION_ALREADY_PENDING",
            "a pending invitation for this student and address already exists",
        ),
        E::GuardianAlreadyLinked => plain(
            Code::AlreadyExists,
            "GUARDIAN_ALREADY_LINKED",
            "the address is already a guardian of the student",
        ),
        E::StudentGuardianLimitReached { limit, current } => status(
            Code::ResourceExhausted,
            "STUDENT_GUARDIAN_LIMIT_REACHED",
            format!(
                "the student has {current} guardians and pending invitations; the limit is {limit}"
            ),
            limit_metadata(limit, current),
        ),
        E::GuardianStudentLimitReached { limit, current } => status(
            Code::ResourceExhausted,
            "GUARDIAN_STUDENT_LIMIT_REACHED",
            format!("the guardian address has {current} students; the limit is {limit}"),
            limit_metadata(limit, current),
        ),
        E::GuardianAccessDisabled => plain(
            Code::FailedPrecondition,
            "GUARDIAN_ACCESS_DISABLED",
            "guardian access is disabled for the student's domain",
        ),
        E::SyncRemovalLimitExceeded { limit, planned } => status(
            Code::FailedPrecondition,
            "SYNC_REMOVAL_LIMIT_EXCEEDED",
            format!(
                "the sync would delete {planned} links, more than the safety limit of {limit}; \
                 check the list, or set force"
            ),
            limit_metadata(limit, planned),
        ),
        E::TooManyDeclines => plain(
            Code::FailedPrecondition,
            "TOO_MANY_DECLINES",
            "this address declined too many invitations for this student",
        ),
        E::InvitationNotPending => plain(
            Code::FailedPrecondition,
            "INVITATION_NOT_PENDING",
            "the invitation is not pending",
        ),
        E::InvitationExpired => plain(
            Code::FailedPrecondition,
            "INVITATION_EXPIRED",
            "the invitation has expired",
        ),
        E::ChangeTokenExpired => plain(
            Code::OutOfRange,
            "CHANGE_TOKEN_EXPIRED",
            "the token is older than the change feed's retention; read the current state and \
             watch from now",
        ),
        E::EtagMismatch => plain(
            Code::Aborted,
            "ETAG_MISMATCH",
            "the resource changed since the given etag; read it again",
        ),
        E::NotAttempted => plain(
            Code::Unavailable,
            "ROW_NOT_ATTEMPTED",
            "the row was not attempted before the call's deadline; nothing of it was applied, \
             send it again",
        ),
        // Server-caused: the cause is logged by whoever ends the call (see
        // `log_server_errors`), never sent.
        E::Unavailable(_) => plain(
            Code::Unavailable,
            "UNAVAILABLE",
            "the database is unavailable; retry",
        ),
        E::Internal(_) => plain(Code::Internal, "INTERNAL", "internal error"),
    }
}

fn limit_metadata(limit: i64, current: i64) -> HashMap<String, String> {
    HashMap::from([
        ("limit".to_owned(), limit.to_string()),
        ("current".to_owned(), current.to_string()),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::ValidationError;
    use crate::domain::error::ValidationReason;

    #[test]
    fn validation_errors_carry_reason_and_field_violations() {
        let err = ValidationError::new(
            ValidationReason::InvalidEmail,
            "invited_email_address",
            "no @",
        );
        let status = to_status(AppError::Invalid(err));
        assert_eq!(status.code(), Code::InvalidArgument);
        let details = status.get_error_details();
        let info = details.error_info().unwrap();
        assert_eq!(
            (info.reason.as_str(), info.domain.as_str()),
            ("INVALID_EMAIL", ERROR_DOMAIN)
        );
        let violations = &details.bad_request().unwrap().field_violations;
        assert_eq!(violations[0].field, "invited_email_address");
    }

    #[test]
    fn limits_carry_limit_and_current() {
        let status = to_status(AppError::StudentGuardianLimitReached {
            limit: 20,
            current: 20,
        });
        assert_eq!(status.code(), Code::ResourceExhausted);
        let info = status.get_details_error_info().unwrap();
        assert_eq!(info.reason, "STUDENT_GUARDIAN_LIMIT_REACHED");
        assert_eq!(info.metadata["limit"], "20");
        assert_eq!(info.metadata["current"], "20");
    }

    #[test]
    fn internal_causes_stay_out_of_the_message() {
        let status = to_status(AppError::Internal("password=hunter2 at db".into()));
        assert_eq!(status.code(), Code::Internal);
        assert!(!status.message().contains("hunter2"));
    }
}
