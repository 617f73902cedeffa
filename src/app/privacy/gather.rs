//! Finding a person's records: a guardian by account id or address, a student by id, limited
//! to what the caller's domains hold.

use super::super::pseudonyms::is_stand_in;
use super::super::{AppError, AppResult, Missing};
use crate::domain::summary::{SummaryDelivery, SummaryPreferences};
use crate::domain::{
    AuditEvent, Caller, DomainName, Email, Invitation, InvitationId, OutboxMessage, User, UserId,
};
use crate::store::Session;
use std::collections::{BTreeMap, BTreeSet};

/// Whose records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PersonSelector {
    /// A guardian's account: its invitations, and those sent to its addresses that nobody
    /// else accepted.
    Guardian(UserId),
    /// A guardian's address: as [`Self::Guardian`] for every account that accepted with it,
    /// and the invitations sent to it.
    GuardianEmail(Email),
    /// A student.
    Student(UserId),
}

impl PersonSelector {
    /// Whether the selector names a guardian.
    pub fn is_guardian(&self) -> bool {
        !matches!(self, Self::Student(_))
    }
}

/// Every record about one person that the caller may see.
#[derive(Debug, Clone, Default)]
pub(super) struct PersonRecords {
    /// The guardian's account ids (none for a student).
    pub(super) guardian_ids: Vec<UserId>,
    /// The person's addresses found in the records.
    pub(super) addresses: Vec<Email>,
    /// The student's directory record.
    pub(super) student: Option<User>,
    /// The invitations and links, by id.
    pub(super) invitations: Vec<Invitation>,
    /// The audit events about them, oldest first.
    pub(super) events: Vec<AuditEvent>,
    /// The emails to the person, oldest first.
    pub(super) messages: Vec<OutboxMessage>,
    /// Emails to others about the person's invitations (a student told of a new guardian):
    /// not the person's to export, but their bodies may name the person.
    pub(super) related_messages: Vec<OutboxMessage>,
    /// The guardian's summary preferences.
    pub(super) preferences: Vec<SummaryPreferences>,
    /// The summaries built for the guardian.
    pub(super) deliveries: Vec<SummaryDelivery>,
    /// Every record of the person is in the caller's domains, so the records kept per person
    /// rather than per domain are the caller's to see and erase too.
    pub(super) whole_person: bool,
}

impl PersonRecords {
    /// Nothing personal is visible.
    pub(super) fn is_empty(&self) -> bool {
        self.student.is_none() && self.invitations.is_empty()
    }

    /// The domains the records are in.
    pub(super) fn domains(&self) -> BTreeSet<DomainName> {
        let mut domains: BTreeSet<DomainName> =
            self.invitations.iter().map(|i| i.domain.clone()).collect();
        if let Some(student) = &self.student {
            domains.insert(student.domain.clone());
        }
        domains
    }
}

/// The caller's view of the person's records. Records already replaced by stand-ins (by
/// retention or an earlier erasure) are not the person's any more and are left out.
pub(super) async fn gather(
    session: &mut dyn Session,
    caller: &Caller,
    person: &PersonSelector,
) -> AppResult<PersonRecords> {
    match person {
        PersonSelector::Student(student) => gather_student(session, caller, student).await,
        PersonSelector::Guardian(id) => {
            let ids = BTreeSet::from([id.clone()]);
            gather_guardian(session, caller, ids, None).await
        }
        PersonSelector::GuardianEmail(email) => {
            let ids = session
                .invitations_of_address(email)
                .await?
                .into_iter()
                .filter_map(|i| i.guardian.map(|g| g.guardian_id))
                .collect();
            gather_guardian(session, caller, ids, Some(email)).await
        }
    }
}

async fn gather_guardian(
    session: &mut dyn Session,
    caller: &Caller,
    ids: BTreeSet<UserId>,
    address: Option<&Email>,
) -> AppResult<PersonRecords> {
    let mut all: BTreeMap<InvitationId, Invitation> = BTreeMap::new();
    let mut addresses: BTreeSet<Email> = address.into_iter().cloned().collect();
    for id in &ids {
        for invitation in session.invitations_of_guardian(id).await? {
            addresses.insert(invitation.invited_email.clone());
            if let Some(guardian) = &invitation.guardian {
                addresses.insert(guardian.email.clone());
            }
            all.insert(invitation.id, invitation);
        }
    }
    addresses.retain(|a| !is_stand_in(a));
    for address in &addresses {
        // Sent to the person's address and accepted by nobody: theirs. Accepted by another
        // account, it is that account's record.
        for invitation in session.invitations_of_address(address).await? {
            if invitation.guardian.is_none() {
                all.insert(invitation.id, invitation);
            }
        }
    }
    let found = all.len();
    let invitations: Vec<Invitation> = all
        .into_values()
        .filter(|i| caller.acts_in(&i.domain))
        .collect();
    let whole_person = invitations.len() == found;
    let visible_addresses: BTreeSet<Email> = invitations
        .iter()
        .flat_map(|i| {
            std::iter::once(i.invited_email.clone())
                .chain(i.guardian.iter().map(|g| g.email.clone()))
        })
        .filter(|a| addresses.contains(a))
        .chain(address.cloned())
        .collect();
    let mut records = PersonRecords {
        guardian_ids: ids.into_iter().collect(),
        addresses: visible_addresses.into_iter().collect(),
        invitations,
        whole_person,
        ..PersonRecords::default()
    };
    if records.invitations.is_empty() {
        return Ok(records);
    }
    for invitation in &records.invitations {
        records
            .events
            .extend(session.events_of_invitation(invitation).await?);
    }
    records.events.sort_by_key(|e| e.event_id);
    let mut summary_messages = Vec::new();
    if whole_person {
        for id in &records.guardian_ids {
            if let Some(preferences) = session.get_summary_preferences(id).await? {
                records.preferences.push(preferences);
            }
            let deliveries = session.summary_deliveries_of(id).await?;
            summary_messages.extend(deliveries.iter().filter_map(|d| d.message_id.clone()));
            records.deliveries.extend(deliveries);
        }
    }
    let messages = messages_of(session, &records.invitations, &summary_messages).await?;
    (records.messages, records.related_messages) = messages
        .into_iter()
        .partition(|m| records.addresses.contains(&m.recipient));
    Ok(records)
}

async fn gather_student(
    session: &mut dyn Session,
    caller: &Caller,
    student: &UserId,
) -> AppResult<PersonRecords> {
    // Only a student: a teacher's or an administrator's records are not a student's.
    let user = session
        .get_user(student)
        .await?
        .filter(|u| u.role == crate::domain::Role::Student && caller.acts_in(&u.domain));
    let found = session.invitations_of_student(student).await?;
    let invitations: Vec<Invitation> = found
        .iter()
        .filter(|i| caller.acts_in(&i.domain))
        .cloned()
        .collect();
    let identified = invitations.iter().any(|i| !is_stand_in(&i.invited_email));
    if user.is_none() && !identified {
        return Ok(PersonRecords::default());
    }
    let mut records = PersonRecords {
        addresses: user.iter().map(|u| u.email.clone()).collect(),
        whole_person: invitations.len() == found.len(),
        student: user,
        invitations,
        ..PersonRecords::default()
    };
    for domain in records.domains() {
        records
            .events
            .extend(session.events_of_student(&domain, student).await?);
    }
    let messages = messages_of(session, &records.invitations, &[]).await?;
    (records.messages, records.related_messages) = messages
        .into_iter()
        .partition(|m| records.addresses.contains(&m.recipient));
    Ok(records)
}

async fn messages_of(
    session: &mut dyn Session,
    invitations: &[Invitation],
    message_ids: &[String],
) -> AppResult<Vec<OutboxMessage>> {
    let ids: Vec<InvitationId> = invitations.iter().map(|i| i.id).collect();
    let families: BTreeSet<String> = invitations
        .iter()
        .filter_map(|i| i.family_id.clone())
        .collect();
    let families: Vec<String> = families.into_iter().collect();
    Ok(session.messages_of(&ids, &families, message_ids).await?)
}

/// Whether the person was erased before (or retention replaced all their records): records
/// under their stand-ins are in the caller's domains. Otherwise they are unknown to the caller.
pub(super) async fn erased_before(
    session: &mut dyn Session,
    caller: &Caller,
    person: &PersonSelector,
    stand_ins: &crate::app::Pseudonyms,
) -> AppResult<()> {
    let found = match person {
        PersonSelector::Guardian(id) => {
            session
                .invitations_of_guardian(&stand_ins.user_id(id))
                .await?
        }
        PersonSelector::GuardianEmail(email) => {
            session
                .invitations_of_address(&stand_ins.email(email))
                .await?
        }
        PersonSelector::Student(student) => session.invitations_of_student(student).await?,
    };
    if found.iter().any(|i| caller.acts_in(&i.domain)) {
        Ok(())
    } else {
        Err(AppError::NotFound(Missing::Person))
    }
}
