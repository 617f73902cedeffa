//! The audit trail's record: one transition of an invitation, one settings change or one
//! directory change summary, who made it and when.

use super::ids::{DomainName, InvitationId, UserId};
use chrono::{DateTime, Utc};
use std::collections::BTreeMap;

/// One audited change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEvent {
    /// Assigned by the store, increasing; 0 before it is stored.
    pub event_id: i64,
    /// The domain whose trail it is in: the student's, or the domain whose settings or
    /// directory changed.
    pub domain: DomainName,
    /// The student, for an invitation's transition; `None` for domain-wide changes.
    pub student_id: Option<UserId>,
    /// The invitation, for an invitation's transition.
    pub invitation_id: Option<InvitationId>,
    /// What happened, e.g. `invitation.created` or `settings.updated`.
    pub action: String,
    /// Who made it happen.
    pub actor_id: String,
    /// The request id it happened under.
    pub request_id: Option<String>,
    /// When.
    pub create_time: DateTime<Utc>,
    /// What changed, for settings changes and directory summaries.
    pub details: AuditDetails,
}

/// The particulars of a domain-wide change. Never personal data: field values of the domain's
/// settings, and counts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditDetails {
    /// Each settings field that changed.
    pub setting_changes: Vec<SettingChange>,
    /// How many of what, e.g. `users` -> 120.
    pub counts: BTreeMap<String, i64>,
}

impl AuditDetails {
    /// Whether there is nothing to record.
    pub fn is_empty(&self) -> bool {
        self.setting_changes.is_empty() && self.counts.is_empty()
    }

    /// Details made of counts only.
    pub fn counts<'a>(counts: impl IntoIterator<Item = (&'a str, i64)>) -> Self {
        Self {
            setting_changes: Vec::new(),
            counts: counts.into_iter().map(|(k, v)| (k.to_owned(), v)).collect(),
        }
    }
}

/// That an administrator or a service read guardians' addresses: who, when, which student
/// (none for a listing without one), through which call and how many rows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessRecord {
    /// Assigned by the store, increasing; 0 before it is stored.
    pub record_id: i64,
    /// The domain whose records were read.
    pub domain: DomainName,
    /// The caller's subject (an administrator's user id or a service's name).
    pub caller: String,
    /// The caller's role.
    pub caller_role: super::caller::CallerRole,
    /// The RPC, e.g. `ListGuardianInvitations`.
    pub method: String,
    /// The student whose records were read.
    pub student_id: Option<UserId>,
    /// How many rows with addresses the caller got.
    pub rows: i64,
    /// When.
    pub create_time: DateTime<Utc>,
}

/// One settings field's old and new value, in their wire form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettingChange {
    /// The field's name in the API, e.g. `guardian_access_enabled`.
    pub field: String,
    /// The value before.
    pub old_value: String,
    /// The value after.
    pub new_value: String,
}

/// Actions of domain-wide changes.
pub mod actions {
    /// A domain's settings were changed.
    pub const SETTINGS_UPDATED: &str = "settings.updated";
    /// Users were created or replaced.
    pub const USERS_UPSERTED: &str = "directory.users_upserted";
    /// Users were deleted.
    pub const USERS_DELETED: &str = "directory.users_deleted";
    /// A course was created or replaced.
    pub const COURSE_UPSERTED: &str = "directory.course_upserted";
    /// A course was deleted.
    pub const COURSE_DELETED: &str = "directory.course_deleted";
    /// A class was left out of summaries, or put back.
    pub const COURSE_SUMMARIES_UPDATED: &str = "summaries.course_settings_updated";
    /// The invitee of a PENDING invitation was reminded before it expires (no change to the
    /// link or the invitation a client sees, so the change feed does not carry it).
    pub const INVITATION_REMINDED: &str = "invitation.reminded";
    /// A person's records were exported (counts only; PrivacyService).
    pub const PERSON_EXPORTED: &str = "privacy.person_exported";
    /// A person's records were erased (counts only; PrivacyService).
    pub const PERSON_ERASED: &str = "privacy.person_erased";
}
