//! A guardian link as readers see it: the parts of an ACCEPTED invitation a link read shows,
//! and all the per-replica link cache keeps of each of a student's links (no tokens, no
//! reminder or expiry state, and not the student's id and domain, which the student's entry
//! holds once).

use super::ids::InvitationId;
use super::invitation::{GuardianProfile, Invitation, InvitationSource, InvitationState};
use chrono::{DateTime, Utc};

/// An ACCEPTED link of a student to a guardian.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    /// The invitation that became the link (and orders a student's links for paging).
    pub invitation_id: InvitationId,
    /// The guardian, as they accepted.
    pub guardian: GuardianProfile,
    /// The address the invitation went to.
    pub invited_email: super::Email,
    /// Who made the invitation.
    pub source: InvitationSource,
    /// When the link began (acceptance; the invitation's creation for links made without one).
    pub linked_time: DateTime<Utc>,
}

impl Link {
    /// The link an invitation is: `None` unless it is ACCEPTED with a guardian's profile.
    pub fn of(invitation: &Invitation) -> Option<Self> {
        if invitation.state != InvitationState::Accepted {
            return None;
        }
        let guardian = invitation.guardian.clone()?;
        Some(Self {
            invitation_id: invitation.id,
            guardian,
            invited_email: invitation.invited_email.clone(),
            source: invitation.source,
            linked_time: invitation.accept_time.unwrap_or(invitation.create_time),
        })
    }
}
