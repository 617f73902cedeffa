//! What use cases return to the transport: records with what the caller may see of them.

use crate::domain::{
    DeliveryStatus, DomainName, Email, Invitation, InvitationState, Link, User, UserId,
};
use std::collections::HashMap;

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
    /// The student it is about, where the directory has them.
    pub student: Option<StudentLabel>,
}

/// A guardian link as one caller sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuardianView {
    /// Whose link.
    pub student_id: UserId,
    /// The domain the link belongs to (the student's).
    pub domain: DomainName,
    /// The link.
    pub link: Link,
    /// Whether the caller may see `invited_email_address`.
    pub show_invited_email: bool,
    /// The student it is about, where the directory has them.
    pub student: Option<StudentLabel>,
}

impl GuardianView {
    /// The view of `invitation`, which must be an ACCEPTED link.
    pub(crate) fn of_link(
        invitation: &Invitation,
        show_invited_email: bool,
        student: Option<StudentLabel>,
    ) -> super::AppResult<Self> {
        let link = Link::of(invitation).ok_or_else(|| {
            super::AppError::Internal("a link that is not an accepted invitation".into())
        })?;
        Ok(Self {
            student_id: invitation.student_id.clone(),
            domain: invitation.domain.clone(),
            link,
            show_invited_email,
            student,
        })
    }
}

/// The student a row is about, shown beside it so that an operator reads names, not ids. Every
/// caller who may read the row may read these: they were authorized for the student.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StudentLabel {
    /// The student's address.
    pub email: Email,
    /// The student's name.
    pub display_name: String,
}

impl StudentLabel {
    /// The label of a directory record.
    pub fn of(user: &User) -> Self {
        Self {
            email: user.email.clone(),
            display_name: user.display_name.clone(),
        }
    }
}

/// The labels of the students of a page of rows: one lookup for the page.
pub(crate) async fn student_labels<'a>(
    session: &mut dyn crate::store::Session,
    students: impl Iterator<Item = &'a UserId>,
) -> crate::store::StoreResult<HashMap<UserId, StudentLabel>> {
    let mut ids: Vec<UserId> = students.cloned().collect();
    ids.sort();
    ids.dedup();
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    Ok(session
        .users_by_id(&ids)
        .await?
        .iter()
        .map(|user| (user.user_id.clone(), StudentLabel::of(user)))
        .collect())
}

/// A page of results.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T> {
    /// The items.
    pub items: Vec<T>,
    /// Token of the next page; empty on the last.
    pub next_page_token: String,
}
