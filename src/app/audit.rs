//! The audit trail: ListGuardianEvents, and the actor recorded for the service's own changes.

use super::access::{require, require_domain};
use super::{App, AppError, AppResult};
use crate::auth::Authorized;
use crate::domain::policy::Permission;
use crate::domain::{AuditEvent, DomainName, Position, UserId, paging};

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
    /// Start after this position instead of at the beginning (ignored with a page token).
    pub start: Option<Position>,
}

/// A page of the audit trail and where it ends.
#[derive(Debug, Clone)]
pub struct EventPage {
    /// The events, in revision order.
    pub events: Vec<AuditEvent>,
    /// The next page's token; empty on the last page.
    pub next_page_token: String,
    /// Where the page ends, also on the last page: start there later for what happened since.
    pub resume_token: String,
}

impl App {
    /// ListGuardianEvents in revision order: an event committed late by a slower transaction
    /// is held back until it can be listed in its place, never skipped.
    pub async fn list_events(&self, who: &Authorized, query: EventQuery) -> AppResult<EventPage> {
        require_domain(require(who, Permission::ReadEvents)?, &query.domain)?;
        let size = paging::page_size(query.page_size)?;
        let student_key = query.student.as_ref().map(UserId::as_str).unwrap_or("");
        let filters = [query.domain.as_str(), student_key];
        let after = match self.page_tokens.decode(&query.page_token, &filters)? {
            Some(k) => Position::from_token(&k).ok_or(AppError::InvalidPageToken)?,
            None => query.start.unwrap_or(Position::ORIGIN),
        };
        let (page, end, full) = self
            .events_after(&query.domain, query.student.as_ref(), after, size)
            .await?;
        Ok(EventPage {
            events: page.items.into_iter().map(|(_, e)| e).collect(),
            next_page_token: if full {
                self.page_tokens.encode(&end.to_token(), &filters)
            } else {
                String::new()
            },
            resume_token: end.to_token(),
        })
    }
}
