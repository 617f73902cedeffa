//! The audit trail: ListGuardianEvents, and the actor recorded for the service's own changes.

use super::access::{require, require_domain};
use super::read_models::Page;
use super::{App, AppError, AppResult};
use crate::auth::Authorized;
use crate::domain::policy::Permission;
use crate::domain::{AuditEvent, DomainName, UserId, paging};

/// The actor recorded for changes the service makes by itself.
pub const SYSTEM_ACTOR: &str = "system";

/// A ListGuardianEvents request.
#[derive(Debug, Clone)]
pub struct EventQuery {
    /// The domain.
    pub domain: DomainName,
    /// Only this student's events.
    pub student: Option<UserId>,
    /// Raw page size.
    pub page_size: i32,
    /// Previous page's token.
    pub page_token: String,
}

impl App {
    /// ListGuardianEvents, oldest first.
    pub async fn list_events(
        &self,
        who: &Authorized,
        query: EventQuery,
    ) -> AppResult<Page<AuditEvent>> {
        require_domain(require(who, Permission::ReadEvents)?, &query.domain)?;
        let size = paging::page_size(query.page_size)?;
        let student_key = query.student.as_ref().map(UserId::as_str).unwrap_or("");
        let filters = [query.domain.as_str(), student_key];
        let after = match self.page_tokens.decode(&query.page_token, &filters)? {
            Some(k) => k.parse::<i64>().map_err(|_| AppError::InvalidPageToken)?,
            None => 0,
        };
        let mut session = self.store.session().await?;
        let mut events = session
            .list_events(&query.domain, query.student.as_ref(), after, size + 1)
            .await?;
        let next_page_token = self.page_tokens.cut(
            &mut events,
            size,
            |last| last.event_id.to_string(),
            &filters,
        );
        Ok(Page {
            items: events,
            next_page_token,
        })
    }
}
