//! The audit trail and the background upkeep: expiring invitations and forgetting old
//! request ids. Upkeep is safe with any number of replicas running it at once.

use super::access::{require, require_domain};
use super::idempotency::RETENTION;
use super::lifecycle::{apply, audit};
use super::views::Page;
use super::{App, AppError, AppResult};
use crate::auth::Authorized;
use crate::domain::policy::Permission;
use crate::domain::{AuditEvent, DomainName, InvitationEvent, UserId, paging};

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

/// What one upkeep round did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Upkeep {
    /// Invitations moved to EXPIRED.
    pub expired: usize,
    /// Request ids forgotten.
    pub purged: u64,
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

    /// One round of upkeep: expires due invitations in batches of `batch` (each batch one
    /// transaction, claimed with SKIP LOCKED so replicas share the work) and purges request ids
    /// older than the retention.
    pub async fn run_upkeep(&self, batch: u32) -> AppResult<Upkeep> {
        let mut done = Upkeep::default();
        loop {
            let now = self.clock.now();
            let mut tx = self.store.begin().await?;
            let due = tx.claim_expired_pending(now, batch).await?;
            if due.is_empty() {
                break;
            }
            let claimed = due.len();
            for invitation in due {
                let expired = apply(
                    tx.as_mut(),
                    invitation,
                    InvitationEvent::Expire,
                    now,
                    &|_| {},
                )
                .await?;
                audit(
                    tx.as_mut(),
                    &expired,
                    InvitationEvent::Expire.audit_action(),
                    SYSTEM_ACTOR,
                    None,
                    now,
                )
                .await?;
            }
            tx.commit().await?;
            done.expired += claimed;
            if claimed < batch as usize {
                break;
            }
        }
        let mut session = self.store.session().await?;
        done.purged = session
            .purge_idempotency(self.clock.now() - RETENTION)
            .await?;
        Ok(done)
    }
}
