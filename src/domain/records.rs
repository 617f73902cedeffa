//! The records the service keeps: invitations (which are also the guardian links), audit events,
//! queued emails and idempotency records.

use super::email::Email;
use super::ids::{DomainName, InvitationId, UserId};
use super::invitation::InvitationState;
use chrono::{DateTime, Utc};

/// The profile a guardian gave when accepting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuardianProfile {
    /// The guardian's account id.
    pub guardian_id: UserId,
    /// The guardian's own address (may differ from the invited one).
    pub email: Email,
    /// The guardian's name.
    pub display_name: String,
}

/// An invitation; once ACCEPTED it is the guardian link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invitation {
    /// Server-assigned id.
    pub id: InvitationId,
    /// The student's domain when invited.
    pub domain: DomainName,
    /// The student.
    pub student_id: UserId,
    /// The invited address.
    pub invited_email: Email,
    /// The state as stored; readers use [`Invitation::observed_state`].
    pub state: InvitationState,
    /// Who invited (a user id or a service subject).
    pub inviter_id: String,
    /// Set once accepted.
    pub guardian: Option<GuardianProfile>,
    /// SHA-256 of the accept/decline token, hex; the token itself is never stored.
    pub token_hash: String,
    /// Creation time.
    pub create_time: DateTime<Utc>,
    /// Last change.
    pub update_time: DateTime<Utc>,
    /// End of acceptability.
    pub expire_time: DateTime<Utc>,
    /// When accepted.
    pub accept_time: Option<DateTime<Utc>>,
    /// Incremented on every change; guards compare-and-set updates and makes the etag.
    pub version: i64,
}

impl Invitation {
    /// The state a reader sees at `now` (PENDING past its expiry reads as EXPIRED).
    pub fn observed_state(&self, now: DateTime<Utc>) -> InvitationState {
        self.state.observed_at(self.expire_time, now)
    }

    /// The opaque etag clients send back.
    pub fn etag(&self) -> String {
        format!("\"{}\"", self.version)
    }
}

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

/// Where a queued email is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryStatus {
    /// Waiting for the dispatcher.
    Queued,
    /// Handed to the transport.
    Sent,
    /// Given up.
    Failed,
}

impl DeliveryStatus {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "QUEUED",
            Self::Sent => "SENT",
            Self::Failed => "FAILED",
        }
    }

    /// Parses a stored name.
    pub fn from_name(name: &str) -> Option<Self> {
        [Self::Queued, Self::Sent, Self::Failed]
            .into_iter()
            .find(|s| s.as_str() == name)
    }
}

/// An email in the outbox, written in the same transaction as the change that causes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxMessage {
    /// Stable id, also the email's Message-ID, so a resend after a crash is recognisable.
    pub message_id: String,
    /// The invitation it is about, if any.
    pub invitation_id: Option<InvitationId>,
    /// Where it goes.
    pub recipient: Email,
    /// Subject line.
    pub subject: String,
    /// Plain-text body.
    pub body_text: String,
    /// HTML body.
    pub body_html: String,
    /// Delivery status.
    pub status: DeliveryStatus,
    /// Delivery attempts made.
    pub attempts: i32,
    /// Not to be tried before this time (also the lease of a claimed message).
    pub next_attempt_time: DateTime<Utc>,
    /// The last transport error.
    pub last_error: Option<String>,
    /// When queued.
    pub create_time: DateTime<Utc>,
    /// When sent.
    pub sent_time: Option<DateTime<Utc>>,
}

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
