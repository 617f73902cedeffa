//! The invitation lifecycle as one pure transition function. An ACCEPTED invitation is the
//! guardian link; every (state, event) pair is decided here and nowhere else.

use super::email::Email;
use super::ids::{DomainName, InvitationId, UserId};
use chrono::{DateTime, Utc};

/// Why an invitation or link ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RemovalReason {
    /// A manager cancelled the pending invitation.
    Cancelled,
    /// The invitee said "I am not the guardian".
    Declined,
    /// A manager or the guardian removed the link.
    GuardianRemoved,
    /// The student was deleted from the directory.
    StudentRemoved,
    /// The guardian's data was erased at their request.
    GuardianErased,
}

impl RemovalReason {
    /// Every reason, for exhaustive tests.
    pub const ALL: [Self; 5] = [
        Self::Cancelled,
        Self::Declined,
        Self::GuardianRemoved,
        Self::StudentRemoved,
        Self::GuardianErased,
    ];

    /// The stored and wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Cancelled => "CANCELLED",
            Self::Declined => "DECLINED",
            Self::GuardianRemoved => "GUARDIAN_REMOVED",
            Self::StudentRemoved => "STUDENT_REMOVED",
            Self::GuardianErased => "GUARDIAN_ERASED",
        }
    }

    /// Parses a stored name.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == name)
    }
}

/// Where an invitation is in its lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum InvitationState {
    /// Waiting for the invitee.
    Pending,
    /// Accepted: the guardian link exists.
    Accepted,
    /// Nobody answered in time.
    Expired,
    /// Ended, for the reason held.
    Removed(RemovalReason),
}

impl InvitationState {
    /// The stored and wire name of the state (without the removal reason).
    pub fn name(self) -> &'static str {
        match self {
            Self::Pending => "PENDING",
            Self::Accepted => "ACCEPTED",
            Self::Expired => "EXPIRED",
            Self::Removed(_) => "REMOVED",
        }
    }

    /// The removal reason, for REMOVED.
    pub fn removal_reason(self) -> Option<RemovalReason> {
        match self {
            Self::Removed(reason) => Some(reason),
            Self::Pending | Self::Accepted | Self::Expired => None,
        }
    }

    /// Rebuilds a state from its stored parts.
    pub fn from_parts(name: &str, reason: Option<&str>) -> Option<Self> {
        match name {
            "PENDING" => Some(Self::Pending),
            "ACCEPTED" => Some(Self::Accepted),
            "EXPIRED" => Some(Self::Expired),
            "REMOVED" => reason.and_then(RemovalReason::from_name).map(Self::Removed),
            _ => None,
        }
    }

    /// The state a reader must see at `now`: a PENDING invitation past its expiry is EXPIRED,
    /// whether or not the sweeper has written that yet.
    pub fn observed_at(self, expire_time: DateTime<Utc>, now: DateTime<Utc>) -> Self {
        match self {
            Self::Pending if now >= expire_time => Self::Expired,
            Self::Pending | Self::Accepted | Self::Expired | Self::Removed(_) => self,
        }
    }
}

/// Something that happens to an invitation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum InvitationEvent {
    /// The invitee accepts with the token.
    Accept,
    /// The invitee declines with the token.
    Decline,
    /// A manager cancels.
    Cancel,
    /// A manager sends it again (new token, new expiry).
    Resend,
    /// The expiry time passed.
    Expire,
    /// A manager or the guardian removes the link.
    DeleteGuardian,
    /// The student was deleted from the directory.
    RemoveStudent,
    /// The guardian's data is erased: their links and pending invitations end.
    EraseGuardian,
}

impl InvitationEvent {
    /// Every event, for exhaustive tests.
    pub const ALL: [Self; 8] = [
        Self::Accept,
        Self::Decline,
        Self::Cancel,
        Self::Resend,
        Self::Expire,
        Self::DeleteGuardian,
        Self::RemoveStudent,
        Self::EraseGuardian,
    ];
}

impl InvitationEvent {
    /// The audit trail's name for this event.
    pub fn audit_action(self) -> &'static str {
        match self {
            Self::Accept => "invitation.accepted",
            Self::Decline => "invitation.declined",
            Self::Cancel => "invitation.cancelled",
            Self::Resend => "invitation.resent",
            Self::Expire => "invitation.expired",
            Self::DeleteGuardian => "guardian.removed",
            Self::RemoveStudent => "student.removed",
            Self::EraseGuardian => "guardian.erased",
        }
    }
}

/// A transition the lifecycle does not allow; both are FAILED_PRECONDITION to a caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransitionError {
    /// `INVITATION_NOT_PENDING`: the state does not allow the event.
    NotPending,
    /// `INVITATION_EXPIRED`: accept or decline after the expiry time.
    Expired,
}

/// The lifecycle: the state after `event` happens in `state`, or why it cannot. Callers pass the
/// *observed* state (see [`InvitationState::observed_at`]) so that time is accounted for.
pub fn transition(
    state: InvitationState,
    event: InvitationEvent,
) -> Result<InvitationState, TransitionError> {
    use InvitationEvent as E;
    use InvitationState as S;
    match (state, event) {
        (S::Pending, E::Accept) => Ok(S::Accepted),
        (S::Pending, E::Decline) => Ok(S::Removed(RemovalReason::Declined)),
        (S::Pending, E::Cancel) => Ok(S::Removed(RemovalReason::Cancelled)),
        (S::Pending, E::Resend) => Ok(S::Pending),
        (S::Pending, E::Expire) => Ok(S::Expired),
        (S::Pending, E::RemoveStudent) => Ok(S::Removed(RemovalReason::StudentRemoved)),
        (S::Pending, E::DeleteGuardian) => Err(TransitionError::NotPending),
        (S::Pending | S::Accepted, E::EraseGuardian) => {
            Ok(S::Removed(RemovalReason::GuardianErased))
        }

        (S::Accepted, E::DeleteGuardian) => Ok(S::Removed(RemovalReason::GuardianRemoved)),
        (S::Accepted, E::RemoveStudent) => Ok(S::Removed(RemovalReason::StudentRemoved)),
        (S::Accepted, E::Accept | E::Decline | E::Cancel | E::Resend | E::Expire) => {
            Err(TransitionError::NotPending)
        }

        // The invitee who comes too late is told so, not that the invitation is "not pending".
        (S::Expired, E::Accept | E::Decline) => Err(TransitionError::Expired),
        (
            S::Expired,
            E::Cancel
            | E::Resend
            | E::Expire
            | E::DeleteGuardian
            | E::RemoveStudent
            | E::EraseGuardian,
        ) => Err(TransitionError::NotPending),

        (
            S::Removed(_),
            E::Accept
            | E::Decline
            | E::Cancel
            | E::Resend
            | E::Expire
            | E::DeleteGuardian
            | E::RemoveStudent
            | E::EraseGuardian,
        ) => Err(TransitionError::NotPending),
    }
}

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

/// Who made an invitation: a person (one call, a CSV file) or a sync from the school's student
/// information system. A sync removes only what a sync made, unless told otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum InvitationSource {
    /// A person invited (CreateGuardianInvitation, BulkCreateGuardianInvitations).
    #[default]
    Manual,
    /// SyncGuardians invited.
    Sync,
}

impl InvitationSource {
    /// The stored name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Manual => "MANUAL",
            Self::Sync => "SYNC",
        }
    }

    /// The source a stored name names.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "MANUAL" => Some(Self::Manual),
            "SYNC" => Some(Self::Sync),
            _ => None,
        }
    }
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
    /// Who made it: a person or a sync.
    pub source: InvitationSource,
    /// When its one reminder is due, while PENDING; `None` once sent, or when none is due.
    pub remind_time: Option<DateTime<Utc>>,
    /// SHA-256 of the reminder's token, which works beside the first one.
    pub reminder_token_hash: Option<String>,
    /// The family it was sent with (one email for several children), if any.
    pub family_id: Option<String>,
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

#[cfg(test)]
mod tests;
