//! Conversions shared by the services: timestamps, field naming of validation errors.

use crate::domain::ValidationError;
use chrono::{DateTime, Utc};

/// A time from the wire, refused under `field` when out of range.
pub(super) fn instant(
    field: &str,
    raw: prost_types::Timestamp,
) -> Result<DateTime<Utc>, ValidationError> {
    u32::try_from(raw.nanos)
        .ok()
        .and_then(|nanos| DateTime::from_timestamp(raw.seconds, nanos))
        .ok_or_else(|| ValidationError::invalid(field, format!("{field} is not a valid time")))
}

/// A protobuf timestamp of an instant.
pub(super) fn timestamp(t: DateTime<Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: t.timestamp(),
        nanos: t.timestamp_subsec_nanos() as i32,
    }
}

/// Parses with `parse` and reports a failure under the request's own field name
/// (`users[3].email` rather than `email`).
pub(super) fn parse_field<T>(
    field: &str,
    raw: &str,
    parse: impl FnOnce(&str) -> Result<T, ValidationError>,
) -> Result<T, ValidationError> {
    parse(raw).map_err(|e| e.for_field(field))
}

/// A required message field that is absent.
pub(super) fn missing(field: &str) -> ValidationError {
    ValidationError::invalid(field, format!("{field} is required"))
}

/// The proto form of a summary frequency.
pub(super) fn frequency_to_proto(
    frequency: crate::domain::summary::Frequency,
) -> crate::proto::SummaryFrequency {
    use crate::domain::summary::Frequency;
    use crate::proto::SummaryFrequency as P;
    match frequency {
        Frequency::Never => P::Never,
        Frequency::Daily => P::Daily,
        Frequency::Weekly => P::Weekly,
    }
}

/// A frequency from the wire; unspecified or unknown values are refused under `field`.
pub(super) fn frequency_from_proto(
    field: &str,
    raw: i32,
) -> Result<crate::domain::summary::Frequency, ValidationError> {
    use crate::domain::summary::Frequency;
    use crate::proto::SummaryFrequency as P;
    match P::try_from(raw) {
        Ok(P::Never) => Ok(Frequency::Never),
        Ok(P::Daily) => Ok(Frequency::Daily),
        Ok(P::Weekly) => Ok(Frequency::Weekly),
        Ok(P::Unspecified) | Err(_) => Err(ValidationError::invalid(
            field,
            "frequency must be NEVER, DAILY or WEEKLY",
        )),
    }
}

/// The `consistency` of a link read; unset is `minimize_latency`.
pub(super) fn consistency(
    raw: Option<crate::proto::Consistency>,
) -> Result<crate::app::freshness::Consistency, ValidationError> {
    use crate::app::freshness::Consistency;
    use crate::proto::consistency::Requirement;
    Ok(match raw.and_then(|c| c.requirement) {
        None | Some(Requirement::MinimizeLatency(_)) => Consistency::MinimizeLatency,
        Some(Requirement::FullyConsistent(_)) => Consistency::FullyConsistent,
        Some(Requirement::AtLeastAsFresh(token)) => {
            Consistency::AtLeastAsFresh(change_token("consistency.at_least_as_fresh", &token)?)
        }
    })
}

/// A consistency or change token this service made.
pub(super) fn change_token(
    field: &str,
    raw: &str,
) -> Result<crate::domain::Position, ValidationError> {
    crate::domain::Position::from_token(raw.trim())
        .ok_or_else(|| ValidationError::invalid(field, "not a consistency token of this service"))
}

/// Responses of writes: each carries the token that includes the write.
pub(super) trait WriteResponse {
    /// Sets `consistency_token`.
    fn set_token(&mut self, token: String);
}

macro_rules! write_responses {
    ($($message:ident),* $(,)?) => {
        $(impl WriteResponse for crate::proto::$message {
            fn set_token(&mut self, token: String) {
                self.consistency_token = token;
            }
        })*
    };
}

write_responses!(
    CreateGuardianInvitationResponse,
    CancelGuardianInvitationResponse,
    ResendGuardianInvitationResponse,
    AcceptGuardianInvitationResponse,
    DeclineGuardianInvitationResponse,
    DeleteGuardianResponse,
    BulkCreateGuardianInvitationsResponse,
    BulkDeleteGuardiansResponse,
    ResendGuardianInvitationsResponse,
    SyncGuardiansResponse,
    UpdateDomainSettingsResponse,
    UpsertUsersResponse,
    DeleteUsersResponse,
    UpsertCourseResponse,
    DeleteCourseResponse,
    ErasePersonDataResponse,
);

/// A write's response with its consistency token: the revision of what the call committed
/// (noted by the store inside [`scoped`]); for a replay or a call that changed nothing, the
/// committed head, which includes whatever an earlier call did.
pub(super) async fn stamped<M: WriteResponse>(
    app: &crate::app::App,
    mut response: tonic::Response<M>,
) -> Result<tonic::Response<M>, tonic::Status> {
    let token = match crate::store::COMMITTED_REVISION.try_with(std::cell::Cell::get) {
        Ok(Some(revision)) => crate::domain::Position {
            revision,
            event: i64::MAX,
        }
        .to_token(),
        _ => app.write_token().await,
    };
    response.get_mut().set_token(token);
    Ok(response)
}

/// Runs a handler with a slot for the revisions its commits note.
pub(super) async fn scoped<F: std::future::Future>(handler: F) -> F::Output {
    crate::store::COMMITTED_REVISION
        .scope(std::cell::Cell::new(None), handler)
        .await
}
