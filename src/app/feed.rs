//! The change feed for callers (freshness.md): WatchGuardianChanges and the resumable cursor
//! of ListGuardianEvents. Both read the audit trail below the store's watermark, so a watcher
//! sees every committed change exactly once in revision order, whatever the writers do.

use super::access::{require, require_domain};
use super::read_models::{InvitationView, Page};
use super::{App, AppError, AppResult};
use crate::auth::Authorized;
use crate::domain::policy::Permission;
use crate::domain::{
    AuditEvent, Caller, CallerDomains, ChangeKind, DomainName, InvitationId, Position, UserId,
};
use crate::store::{ChangeScope, Session};
use std::collections::HashMap;

/// Longest a ListGuardianEvents page waits for transactions that were running when it was asked
/// for (see [`App::events_after`]).
const LIST_WAIT: std::time::Duration = std::time::Duration::from_secs(1);

/// Changes read per step of a watch.
const WATCH_PAGE: u32 = 500;

/// What a watch follows.
#[derive(Debug, Clone)]
pub struct WatchQuery {
    /// One domain, or `None` for every domain (`*`, platform services only).
    pub domain: Option<DomainName>,
    /// Only this student's changes.
    pub student: Option<UserId>,
    /// Resume after this position; `None`: from now.
    pub start: Option<Position>,
}

/// One change as a watcher sees it.
#[derive(Debug, Clone)]
pub struct FeedChange {
    /// Its position: resume after it.
    pub position: Position,
    /// What it means.
    pub kind: ChangeKind,
    /// The audit event behind it.
    pub event: AuditEvent,
    /// The invitation concerned as it is now, if it still exists.
    pub invitation: Option<InvitationView>,
}

/// One step of a watch: the changes found and where the watcher stands after them.
#[derive(Debug, Clone)]
pub struct FeedStep {
    /// The changes the caller may see, in order.
    pub changes: Vec<FeedChange>,
    /// Every change up to here has been delivered (or was not the caller's to see).
    pub at: Position,
    /// More changes are ready: step again at once.
    pub more: bool,
    /// Changes committed behind a slower transaction are waiting: step again soon.
    pub held_back: bool,
}

/// An opened watch: what it follows and where it starts.
#[derive(Debug, Clone)]
pub struct OpenWatch {
    /// The changes it follows.
    pub scope: ChangeScope,
    /// Where it starts.
    pub at: Position,
}

impl App {
    /// Checks the caller and the start token of a watch.
    pub async fn open_watch(&self, who: &Authorized, query: WatchQuery) -> AppResult<OpenWatch> {
        let caller = require(who, Permission::ReadEvents)?;
        match &query.domain {
            Some(domain) => require_domain(caller, domain)?,
            None if caller.domains == CallerDomains::All => {}
            None => {
                return Err(AppError::NotAllowed(
                    "only platform services may watch every domain (\"*\")".into(),
                ));
            }
        }
        let mut session = self.store.session().await?;
        let at = match query.start {
            Some(position) => {
                self.check_retention(session.as_mut(), position).await?;
                position
            }
            None => self.feed_now(session.as_mut()).await?,
        };
        Ok(OpenWatch {
            scope: ChangeScope {
                domain: query.domain,
                student: query.student,
            },
            at,
        })
    }

    /// The next changes of an opened watch after `at`, as `caller` may see them.
    pub async fn next_changes(
        &self,
        caller: &Caller,
        watch: &OpenWatch,
        at: Position,
    ) -> AppResult<FeedStep> {
        let mut session = self.store.session().await?;
        let page = session.changes_after(&watch.scope, at, WATCH_PAGE).await?;
        let more = page.changes.len() == WATCH_PAGE as usize;
        let at = page.end(at, WATCH_PAGE);
        let ids: Vec<InvitationId> = page
            .changes
            .iter()
            .filter_map(|c| c.event.invitation_id)
            .collect();
        let now = self.clock.now();
        let invitations: HashMap<InvitationId, _> = session
            .invitations_by_id(&ids)
            .await?
            .into_iter()
            .map(|i| (i.id, i))
            .collect();
        let changes = page
            .changes
            .into_iter()
            .filter(|c| caller.acts_in(&c.event.domain))
            .filter_map(|c| {
                let kind = ChangeKind::of_action(&c.event.action)?;
                let invitation = c
                    .event
                    .invitation_id
                    .and_then(|id| invitations.get(&id))
                    .map(|i| InvitationView {
                        observed_state: i.observed_state(now),
                        invitation: i.clone(),
                        // Admins of the domain and services: those who may list addresses.
                        show_invited_email: true,
                        delivery: None,
                        // The feed carries ids: a follower keeps its own directory.
                        student: None,
                    });
                Some(FeedChange {
                    position: c.position,
                    kind,
                    event: c.event,
                    invitation,
                })
            })
            .collect();
        Ok(FeedStep {
            changes,
            at,
            more,
            held_back: page.pending,
        })
    }

    /// ListGuardianEvents from a position, with the position its page ends at: the audit trail
    /// in revision order, below the watermark.
    pub(crate) async fn events_after(
        &self,
        domain: &DomainName,
        student: Option<&UserId>,
        after: Position,
        limit: u32,
    ) -> AppResult<(Page<(Position, AuditEvent)>, Position, bool)> {
        let mut session = self.store.session().await?;
        if after.revision != i64::MIN {
            self.check_retention(session.as_mut(), after).await?;
        }
        let scope = ChangeScope {
            domain: Some(domain.clone()),
            student: student.cloned(),
        };
        // Everything committed before the call is listed: the page waits (briefly) for the
        // watermark to pass it, so a caller reads its own writes in the trail. A transaction
        // held open elsewhere on the server can hold the watermark back longer than that;
        // then the page ends at the watermark and the resume token picks up from there.
        let head = session.committed_head().await?;
        let waiting_since = std::time::Instant::now();
        let page = loop {
            let page = session.changes_after(&scope, after, limit).await?;
            let complete = page.changes.len() == limit as usize
                || page.watermark >= head.needed_watermark()
                || waiting_since.elapsed() >= LIST_WAIT;
            if complete {
                break page;
            }
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        };
        let full = page.changes.len() == limit as usize;
        let end = page.end(after, limit);
        let items = page
            .changes
            .into_iter()
            .map(|c| (c.position, c.event))
            .collect();
        Ok((
            Page {
                items,
                next_page_token: String::new(),
            },
            end,
            full,
        ))
    }

    /// `CHANGE_TOKEN_EXPIRED` when the changes right after `position` are older than the
    /// feed's retention: a consumer that far behind must start again from a snapshot.
    async fn check_retention(
        &self,
        session: &mut dyn Session,
        position: Position,
    ) -> AppResult<()> {
        let retention = chrono::TimeDelta::from_std(self.freshness.config().feed_retention)
            .unwrap_or(chrono::TimeDelta::MAX);
        let cutoff = self.clock.now() - retention;
        match session.first_change_time(position).await? {
            Some(first) if first < cutoff => Err(AppError::ChangeTokenExpired),
            _ => Ok(()),
        }
    }

    /// Where "from now" starts: below the store's watermark, so that a transaction still
    /// running (it may commit with a lower revision than one already visible) is not skipped.
    async fn feed_now(&self, session: &mut dyn Session) -> AppResult<Position> {
        let beyond = Position {
            revision: i64::MAX,
            event: i64::MAX,
        };
        let page = session
            .changes_after(&ChangeScope::default(), beyond, 1)
            .await?;
        Ok(Position::below(page.watermark))
    }
}
