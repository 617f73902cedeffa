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
