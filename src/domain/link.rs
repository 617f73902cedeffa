//! A guardian link as readers see it: the parts of an ACCEPTED invitation a link read shows,
//! and all the per-replica link cache keeps of it (no tokens, no reminder or expiry state).

use super::ids::{DomainName, InvitationId, UserId};
use super::invitation::{GuardianProfile, Invitation, InvitationSource, InvitationState};
use chrono::{DateTime, Utc};

/// An ACCEPTED link between a student and a guardian.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    /// The invitation that became the link (and orders a student's links for paging).
    pub invitation_id: InvitationId,
    /// The student's domain when invited.
    pub domain: DomainName,
    /// The student.
    pub student_id: UserId,
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
            domain: invitation.domain.clone(),
            student_id: invitation.student_id.clone(),
            guardian,
            invited_email: invitation.invited_email.clone(),
            source: invitation.source,
            linked_time: invitation.accept_time.unwrap_or(invitation.create_time),
        })
    }
}
