//! Queued email: a message written in the same transaction as the change that causes it, and
//! where its delivery stands.

use super::email::Email;
use super::ids::InvitationId;
use chrono::{DateTime, Utc};

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
    /// The one-click unsubscribe URL of a summary (`List-Unsubscribe`, RFC 8058).
    pub list_unsubscribe: Option<String>,
    /// The From display name (the school's), else the service's own.
    pub from_name: Option<String>,
    /// Where replies go (the school's office), else nowhere but the From address.
    pub reply_to: Option<Email>,
    /// The family whose one email this is: its delivery is each of the family's invitations'.
    pub family_id: Option<String>,
}
