//! What use cases return to the transport: records with what the caller may see of them.

use crate::domain::{DeliveryStatus, Invitation, InvitationState};

/// An invitation as one caller sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvitationView {
    /// The record.
    pub invitation: Invitation,
    /// Its state at the time of the call (expiry applied).
    pub observed_state: InvitationState,
    /// Whether the caller may see `invited_email_address`.
    pub show_invited_email: bool,
    /// Delivery of the newest email about it, where looked up.
    pub delivery: Option<DeliveryStatus>,
}

/// A guardian link as one caller sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuardianView {
    /// The ACCEPTED invitation that is the link.
    pub link: Invitation,
    /// Whether the caller may see `invited_email_address`.
    pub show_invited_email: bool,
}

/// A page of results.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T> {
    /// The items.
    pub items: Vec<T>,
    /// Token of the next page; empty on the last.
    pub next_page_token: String,
}
