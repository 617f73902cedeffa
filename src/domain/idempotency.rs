//! The record that makes a retried request answer as the first one did.

use chrono::{DateTime, Utc};

/// The first response to a request id, kept so that a retry gets it again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyRecord {
    /// Who sent the request (request ids are scoped to their caller).
    pub principal: String,
    /// The client's request id.
    pub request_id: String,
    /// The RPC it was sent to.
    pub method: String,
    /// Digest of the request, to tell a retry from a different request with the same id.
    pub request_hash: String,
    /// The encoded response.
    pub response: Vec<u8>,
    /// When first answered.
    pub create_time: DateTime<Utc>,
}
