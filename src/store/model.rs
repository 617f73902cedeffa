//! Query shapes the repositories accept.

use crate::domain::{DomainName, Email, InvitationId, InvitationState, UserId};
use chrono::{DateTime, Utc};

/// Whose invitations a listing covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InvitationScope {
    /// One student's.
    Student(UserId),
    /// Every student's of a domain (`student_id = "-"`).
    Domain(DomainName),
    /// Every invitation sent to one address (a guardian's own invitations).
    Address(Email),
    /// Every invitation (platform services).
    All,
}

/// Which observed states a listing returns. Expiry is applied at `now`: a PENDING row past its
/// expiry counts as EXPIRED.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StateFilter {
    /// PENDING and not expired.
    pub pending: bool,
    /// ACCEPTED.
    pub accepted: bool,
    /// EXPIRED, or PENDING past expiry.
    pub expired: bool,
    /// REMOVED for any reason.
    pub removed: bool,
}

impl StateFilter {
    /// The contract's default: PENDING only.
    pub fn pending_only() -> Self {
        Self {
            pending: true,
            ..Self::default()
        }
    }

    /// Every state.
    pub fn all() -> Self {
        Self {
            pending: true,
            accepted: true,
            expired: true,
            removed: true,
        }
    }

    /// Adds a state to the filter.
    pub fn with(mut self, state: InvitationState) -> Self {
        match state {
            InvitationState::Pending => self.pending = true,
            InvitationState::Accepted => self.accepted = true,
            InvitationState::Expired => self.expired = true,
            InvitationState::Removed(_) => self.removed = true,
        }
        self
    }
}

/// A page of invitations.
#[derive(Debug, Clone)]
pub struct InvitationFilter {
    /// Whose.
    pub scope: InvitationScope,
    /// Only those sent to this address.
    pub invited_email: Option<Email>,
    /// Which states.
    pub states: StateFilter,
    /// The instant expiry is judged at.
    pub now: DateTime<Utc>,
    /// Keyset position: only ids greater than this.
    pub after: Option<InvitationId>,
    /// Page size.
    pub limit: u32,
}

/// Whose guardian links a listing covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkScope {
    /// One student's guardians.
    Student(UserId),
    /// Every link in a domain.
    Domain(DomainName),
    /// Every student of one guardian (the reverse lookup).
    Guardian(UserId),
    /// Every link (platform services).
    All,
}

/// A page of guardian links.
#[derive(Debug, Clone)]
pub struct LinkFilter {
    /// Whose.
    pub scope: LinkScope,
    /// Only links made from invitations to this address.
    pub invited_email: Option<Email>,
    /// Only links of students of this domain (a reverse lookup by an admin).
    pub domain: Option<DomainName>,
    /// Keyset position: only invitation ids greater than this.
    pub after: Option<InvitationId>,
    /// Page size.
    pub limit: u32,
}

/// Who a guardianship check is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GuardianKey {
    /// The guardian's account id.
    Id(UserId),
    /// The guardian's profile or invited address.
    Email(Email),
}

/// What CheckGuardianships needs of one student: their domain and the keys of their ACCEPTED
/// links.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StudentLinks {
    /// The student.
    pub student: UserId,
    /// Their domain.
    pub domain: DomainName,
    /// Per ACCEPTED link: the guardian's account id, own address and invited address.
    pub links: Vec<(String, String, String)>,
    /// The domain's stored `guardian_access_enabled`, read with the links; `None` when the
    /// domain stored no settings (the defaults apply).
    pub stored_access: Option<bool>,
}

impl StudentLinks {
    /// Whether `key` names one of the links (an address matches the own or the invited one).
    pub fn has(&self, key: &GuardianKey) -> bool {
        self.links.iter().any(|(id, own, invited)| match key {
            GuardianKey::Id(g) => g.as_str() == id,
            GuardianKey::Email(e) => e.as_str() == own || e.as_str() == invited,
        })
    }
}

/// Which changes a feed reader follows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChangeScope {
    /// Only this domain's changes; `None` for every domain.
    pub domain: Option<crate::domain::DomainName>,
    /// Only this student's changes.
    pub student: Option<crate::domain::UserId>,
}

/// One recorded change and its place in the feed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedChange {
    /// Where it sits.
    pub position: crate::domain::Position,
    /// What happened.
    pub event: crate::domain::AuditEvent,
}

/// A page of the change feed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangePage {
    /// The changes, in position order.
    pub changes: Vec<RecordedChange>,
    /// Every transaction with a revision below this had finished when the page was read.
    pub watermark: i64,
    /// Whether changes at or above the watermark were already visible (committed but held
    /// back behind a transaction still running): a reader should look again soon.
    pub pending: bool,
}

impl ChangePage {
    /// Where a reader that asked for up to `limit` changes after `after` stands once it has
    /// this page: after its last change; and, when the page was not full (nothing more below
    /// the watermark), past everything below the watermark.
    pub fn end(&self, after: crate::domain::Position, limit: u32) -> crate::domain::Position {
        let last = self.changes.last().map_or(after, |c| c.position).max(after);
        if self.changes.len() == limit as usize {
            last
        } else {
            last.max(crate::domain::Position::below(self.watermark))
        }
    }
}

/// One invitation ended by a set-based write (see [`crate::store::BulkRepo::end_invitations`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndedInvitation {
    /// Which.
    pub id: InvitationId,
    /// The version it was read at: the write is skipped when it changed since.
    pub expected_version: i64,
    /// Its new state (with its removal reason).
    pub state: InvitationState,
    /// When.
    pub update_time: DateTime<Utc>,
}
