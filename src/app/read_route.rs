//! Where a link read reads: a read replica that has replayed what the read's consistency
//! needs, else the primary; and the position the answer includes.

/// Runs one read on a [`ReadRoute`]'s session (`read_on!(app, route, |s| s.list_links(f))`);
/// when the replica fails under it, once more on the primary. Evaluates to what was read and the
/// route it was read on, whose session stays open for the caller's next reads. A macro rather
/// than a function taking an async closure: such a closure's future cannot be shown `Send` for
/// every borrow of the session, which the RPC handlers need.
macro_rules! read_on {
    ($app:expr, $route:expr, |$session:ident| $read:expr) => {{
        let mut route: $crate::app::read_route::ReadRoute = $route;
        let found = {
            let $session = route.session.as_mut();
            $read.await
        };
        match found {
            Err(err) if route.retry_on_primary(&err) => {
                route = $app.primary_route().await?;
                let found = {
                    let $session = route.session.as_mut();
                    $read.await?
                };
                (found, route)
            }
            found => (found?, route),
        }
    }};
}

use super::freshness::Consistency;
use super::{App, AppResult};
use crate::domain::Position;
use crate::store::{Session, StoreError};

/// A session for one link read, and what a read on it includes.
pub(crate) struct ReadRoute {
    /// The connection.
    pub(crate) session: Box<dyn Session>,
    /// Every change up to here is included (`None` when the replica cannot say yet).
    pub(crate) at: Option<Position>,
    /// On a read replica: the watermark it had replayed.
    replica: Option<i64>,
}

impl ReadRoute {
    /// Whether `err` of a read on this route should be retried on the primary: the replica
    /// failed under it, or cancelled the read for a conflict with replay (SQLSTATE 40001,
    /// which a standby raises when replay must remove rows a query still reads).
    pub(crate) fn retry_on_primary(&self, err: &StoreError) -> bool {
        self.replica.is_some() && matches!(err, StoreError::Unavailable(_) | StoreError::Retry(_))
    }

    /// The watermark to fill the link cache with after reading here: what the reader had seen
    /// applied, lowered to what the replica had replayed.
    pub(crate) fn fill_watermark(&self, applied: i64) -> i64 {
        self.replica
            .map_or(applied, |replayed| replayed.min(applied))
    }
}

impl App {
    /// The session a link read under `consistency` uses. `fully_consistent` always reads the
    /// primary; `at_least_as_fresh` a replica that has replayed the token; `minimize_latency`
    /// a replica that has replayed what this replica's feed follower knew within the staleness
    /// bound (without a follower that recent, the primary).
    pub(crate) async fn read_route(&self, consistency: Consistency) -> AppResult<ReadRoute> {
        let needed = match consistency {
            Consistency::FullyConsistent => None,
            Consistency::AtLeastAsFresh(token) => Some(token.needed_watermark()),
            Consistency::MinimizeLatency => self.freshness.recent_watermark(),
        };
        let Some(needed) = needed else {
            return self.primary_route().await;
        };
        let read = self.store.read_session(needed).await?;
        match read.replica_watermark {
            Some(replayed) => Ok(ReadRoute {
                session: read.session,
                at: Some(Position::below(replayed)),
                replica: Some(replayed),
            }),
            None => Ok(ReadRoute {
                session: read.session,
                at: self.position_with(needed),
                replica: None,
            }),
        }
    }

    /// The primary, now.
    pub(crate) async fn primary_route(&self) -> AppResult<ReadRoute> {
        Ok(ReadRoute {
            session: self.store.session().await?,
            at: self.primary_position(),
            replica: None,
        })
    }

    /// What a primary read that starts now includes: at least what the follower applied and
    /// at least `needed` (a token the caller saw committed).
    fn position_with(&self, needed: i64) -> Option<Position> {
        Some(Position::below(self.freshness.applied().max(needed)))
    }
}
