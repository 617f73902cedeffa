//! The audit trail's record: one transition of an invitation, who made it and when.

use super::ids::{DomainName, InvitationId, UserId};
use chrono::{DateTime, Utc};

/// One audited transition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEvent {
    /// Assigned by the store, increasing; 0 before it is stored.
    pub event_id: i64,
    /// The student's domain.
    pub domain: DomainName,
    /// The student.
    pub student_id: UserId,
    /// The invitation.
    pub invitation_id: InvitationId,
    /// What happened, e.g. `invitation.created`.
    pub action: String,
    /// Who made it happen.
    pub actor_id: String,
    /// The request id it happened under.
    pub request_id: Option<String>,
    /// When.
    pub create_time: DateTime<Utc>,
}
