//! Query shapes the repositories accept.

use crate::domain::{DomainName, Email, InvitationId, InvitationState, Link, User, UserId};
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

impl LinkFilter {
    /// The page this filter selects from one student's links in invitation id order (as
    /// [`StudentLinks`] holds them): the rows `list_links` gives of that student (the scope and
    /// the domain are the caller's to have matched).
    pub fn page_of(&self, links: &[Link]) -> Vec<Link> {
        links
            .iter()
            .filter(|link| {
                self.after.is_none_or(|after| link.invitation_id > after)
                    && self
                        .invited_email
                        .as_ref()
                        .is_none_or(|email| &link.invited_email == email)
            })
            .take(self.limit as usize)
            .cloned()
            .collect()
    }
}

/// Who a guardianship check is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GuardianKey {
    /// The guardian's account id.
    Id(UserId),
    /// The guardian's profile or invited address.
    Email(Email),
}

/// A student with their ACCEPTED links: what the link reads (checks, a student's guardians)
/// need of one student, and what the per-replica link cache holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StudentLinks {
    /// The directory record under the id asked for (any role: the reader decides what an id
    /// that is not a student's means).
    pub student: User,
    /// The ACCEPTED links, in invitation id order.
    pub links: Vec<Link>,
    /// The domain's stored `guardian_access_enabled`, read with the links; `None` when the
    /// domain stored no settings (the defaults apply).
    pub stored_access: Option<bool>,
}

impl StudentLinks {
    /// The student's id.
    pub fn id(&self) -> &UserId {
        &self.student.user_id
    }

    /// The student's domain.
    pub fn domain(&self) -> &DomainName {
        &self.student.domain
    }

    /// Whether `key` names one of the links (an address matches the own or the invited one).
    pub fn has(&self, key: &GuardianKey) -> bool {
        self.links.iter().any(|link| match key {
            GuardianKey::Id(g) => &link.guardian.guardian_id == g,
            GuardianKey::Email(e) => &link.guardian.email == e || &link.invited_email == e,
        })
    }

    /// A student of `domain` linked to `guardians` (`g1` is `g1@families.example`): what the
    /// cache's unit tests fill it with.
    #[cfg(test)]
    pub(crate) fn sample(student: &str, domain: &str, guardians: &[&str]) -> Self {
        use crate::domain::{GuardianProfile, InvitationSource, Role};
        let domain = DomainName::parse(domain).expect("a valid domain");
        let student_id = UserId::parse(student).expect("a valid id");
        let links = guardians
            .iter()
            .enumerate()
            .map(|(n, g)| {
                let address = Email::parse(&format!("{g}@families.example")).expect("valid");
                Link {
                    invitation_id: InvitationId::parse(&format!(
                        "00000000-0000-4000-8000-{:012}",
                        n + 1
                    ))
                    .expect("a valid id"),
                    guardian: GuardianProfile {
                        guardian_id: UserId::parse(g).expect("a valid id"),
                        email: address.clone(),
                        display_name: String::new(),
                    },
                    invited_email: address,
                    source: InvitationSource::Manual,
                    linked_time: DateTime::<Utc>::UNIX_EPOCH,
                }
            })
            .collect();
        Self {
            student: User {
                user_id: student_id,
                email: Email::parse(&format!("{student}@{domain}")).expect("valid"),
                domain,
                role: Role::Student,
                verified_teacher: false,
                display_name: String::new(),
                locale: None,
            },
            links,
            stored_access: None,
        }
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
