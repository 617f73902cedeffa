//! Reading invitations: one by id (with its delivery status) and listings, of one student or
//! of everything the caller may see (`student_id = "-"`).

use super::access::require;
use super::read_models::{InvitationView, Page, StudentLabel, student_labels};
use super::{App, AppError, AppResult, Missing};
use crate::auth::Authorized;
use crate::domain::policy::{Permission, StudentAccess};
use crate::domain::{
    Caller, CallerDomains, CallerRole, Email, Invitation, InvitationId, InvitationState,
    StudentRef, paging,
};
use crate::store::{InvitationFilter, InvitationScope, StateFilter};

/// Whose invitations a listing wants.
#[derive(Debug, Clone)]
pub enum StudentSelector {
    /// One student.
    One(StudentRef),
    /// `-`: every student the caller may see.
    All,
}

/// A ListGuardianInvitations request.
#[derive(Debug, Clone)]
pub struct InvitationQuery {
    /// Whose.
    pub student: StudentSelector,
    /// Only to this address.
    pub invited_email: Option<Email>,
    /// States; empty means PENDING.
    pub states: Vec<InvitationState>,
    /// Raw page size.
    pub page_size: i32,
    /// Previous page's token.
    pub page_token: String,
}

impl App {
    /// GetGuardianInvitation, with the delivery status of its newest email.
    pub async fn get_invitation(
        &self,
        who: &Authorized,
        student: &StudentRef,
        id: InvitationId,
    ) -> AppResult<InvitationView> {
        let caller = require(who, Permission::ReadGuardians)?;
        let ctx = self
            .authorize_student(caller, student, StudentAccess::Read)
            .await?;
        let now = self.clock.now();
        let mut session = self.store.session().await?;
        let invitation = session
            .get_invitation(id)
            .await?
            .filter(|i| i.student_id == ctx.student.user_id)
            .filter(|i| caller.role != CallerRole::Guardian || is_own(caller, i))
            .ok_or(AppError::NotFound(Missing::Invitation))?;
        let delivery = session.latest_delivery_status(id).await?;
        let view = InvitationView {
            observed_state: invitation.observed_state(now),
            invitation,
            show_invited_email: ctx.grant.may_manage,
            delivery,
            student: Some(StudentLabel::of(&ctx.student)),
        };
        self.note_invitation_reads(caller, "GetGuardianInvitation", std::slice::from_ref(&view))
            .await?;
        Ok(view)
    }

    /// Notes the reads of invitations whose invited address the caller sees.
    async fn note_invitation_reads(
        &self,
        caller: &Caller,
        method: &'static str,
        views: &[InvitationView],
    ) -> AppResult<()> {
        let rows = views
            .iter()
            .filter(|v| v.show_invited_email)
            .map(|v| (&v.invitation.domain, &v.invitation.student_id));
        self.note_address_reads(caller, method, rows).await
    }

    /// ListGuardianInvitations.
    pub async fn list_invitations(
        &self,
        who: &Authorized,
        query: InvitationQuery,
    ) -> AppResult<Page<InvitationView>> {
        let caller = require(who, Permission::ReadGuardians)?;
        let size = paging::page_size(query.page_size)?;
        let (scope, show_email, guardian_only) = match &query.student {
            StudentSelector::One(student) => {
                let ctx = self
                    .authorize_student(caller, student, StudentAccess::Read)
                    .await?;
                (
                    InvitationScope::Student(ctx.student.user_id),
                    ctx.grant.may_manage,
                    caller.role == CallerRole::Guardian,
                )
            }
            StudentSelector::All => (
                all_scope(caller)?,
                caller.role != CallerRole::Guardian,
                false,
            ),
        };
        let mut states = StateFilter::default();
        for state in &query.states {
            states = states.with(*state);
        }
        if query.states.is_empty() {
            states = StateFilter::pending_only();
        }
        let scope_key = format!("{scope:?}");
        let email_key = query
            .invited_email
            .as_ref()
            .map(Email::as_str)
            .unwrap_or("");
        let states_key = format!("{states:?}");
        let filters = [scope_key.as_str(), email_key, states_key.as_str()];
        let after = self
            .page_tokens
            .decode(&query.page_token, &filters)?
            .map(|k| InvitationId::parse(&k).map_err(|_| AppError::InvalidPageToken))
            .transpose()?;
        let now = self.clock.now();
        let mut session = self.store.session().await?;
        let mut found = session
            .list_invitations(&InvitationFilter {
                scope,
                invited_email: query.invited_email.clone(),
                states,
                now,
                after,
                limit: size + 1,
            })
            .await?;
        let next_page_token =
            self.page_tokens
                .cut(&mut found, size, |last| last.id.to_text(), &filters);
        found.retain(|i| !guardian_only || is_own(caller, i));
        let ids: Vec<InvitationId> = found.iter().map(|i| i.id).collect();
        let delivery = session.latest_delivery_statuses(&ids).await?;
        let labels = student_labels(session.as_mut(), found.iter().map(|i| &i.student_id)).await?;
        let items: Vec<InvitationView> = found
            .into_iter()
            .map(|invitation| InvitationView {
                observed_state: invitation.observed_state(now),
                delivery: delivery.get(&invitation.id).copied(),
                student: labels.get(&invitation.student_id).cloned(),
                invitation,
                show_invited_email: show_email,
            })
            .collect();
        self.note_invitation_reads(caller, "ListGuardianInvitations", &items)
            .await?;
        Ok(Page {
            items,
            next_page_token,
        })
    }
}

/// An invitation a guardian caller may see: sent to their address or accepted by them.
fn is_own(caller: &Caller, invitation: &Invitation) -> bool {
    caller.email.as_ref() == Some(&invitation.invited_email)
        || invitation
            .guardian
            .as_ref()
            .is_some_and(|g| g.guardian_id.as_str() == caller.subject)
}

/// What `student_id = "-"` covers for this caller.
fn all_scope(caller: &Caller) -> AppResult<InvitationScope> {
    match caller.role {
        CallerRole::Admin => caller
            .home_domain()
            .cloned()
            .map(InvitationScope::Domain)
            .ok_or_else(|| AppError::NotAllowed("an admin token must name one domain".into())),
        CallerRole::Service => match &caller.domains {
            CallerDomains::All => Ok(InvitationScope::All),
            CallerDomains::Only(list) if list.len() == 1 => {
                Ok(InvitationScope::Domain(list[0].clone()))
            }
            CallerDomains::Only(_) => Err(crate::domain::ValidationError::invalid(
                "student_id",
                "\"-\" needs a service token of one domain or of every domain (\"*\")",
            )
            .into()),
        },
        CallerRole::Guardian => caller
            .email
            .clone()
            .map(InvitationScope::Address)
            .ok_or_else(|| AppError::NotAllowed("a guardian token must carry an email".into())),
        CallerRole::Teacher | CallerRole::Student => Err(AppError::NotAllowed(
            "\"-\" is for administrators, services and guardians".into(),
        )),
    }
}
