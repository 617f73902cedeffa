//! Conversions shared by the services: timestamps, field naming of validation errors.

use crate::domain::ValidationError;
use chrono::{DateTime, Utc};

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
