//! The feed follower: one per replica. Woken by the store's change signal (Postgres
//! `LISTEN`), it reads every new change in revision order, drops what each affects from the
//! link cache and the settings cache, and advances the replica's watermark, which also wakes
//! the watchers. Between signals it looks on a short period, so that a lost notification or a
//! change held back behind a slow transaction costs a fraction of the staleness bound.

use crate::app::App;
use crate::domain::{Position, audit::actions};
use crate::store::{ChangeScope, ChangeSignal, RecordedChange, StoreResult};
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// Changes read per query.
const PAGE: u32 = 1000;

/// How soon to look again while changes are held back behind a transaction still running.
const HELD_BACK_RETRY: Duration = Duration::from_millis(10);

/// How long to wait before retrying when the store cannot be reached.
const FAILURE_RETRY: Duration = Duration::from_millis(500);

/// Follows the feed until `stop` turns true.
pub async fn follow_changes(app: App, mut stop: watch::Receiver<bool>) {
    let mut signal: Option<Box<dyn ChangeSignal>> = None;
    let mut at: Option<Position> = None;
    // A quarter of the bound: a stall shows as staleness well before an answer could be late.
    let period = (app.freshness.config().max_staleness / 4).max(Duration::from_millis(10));
    loop {
        if signal.is_none() {
            match app.store.change_signal().await {
                Ok(s) => signal = Some(s),
                Err(e) => {
                    tracing::warn!(error = %e, "cannot listen for changes; looking periodically")
                }
            }
        }
        let wait = match catch_up(&app, &mut at).await {
            Ok(true) => HELD_BACK_RETRY,
            Ok(false) => period,
            Err(e) => {
                tracing::warn!(error = %e, "the change feed could not be read; retrying");
                FAILURE_RETRY
            }
        };
        tokio::select! {
            _ = async {
                match signal.as_mut() {
                    Some(s) => s.changed().await,
                    None => std::future::pending().await,
                }
            } => {}
            _ = tokio::time::sleep(wait) => {}
            _ = stop.wait_for(|stop| *stop) => return,
        }
    }
}

/// Applies every change there is; true when some are held back (look again soon).
async fn catch_up(app: &App, at: &mut Option<Position>) -> StoreResult<bool> {
    let started = Instant::now();
    let mut session = app.store.session().await?;
    let everything = ChangeScope::default();
    loop {
        // The first look starts at the end: the cache is empty, history has nothing for it.
        let from = at.unwrap_or(Position {
            revision: i64::MAX,
            event: i64::MAX,
        });
        let page = session.changes_after(&everything, from, PAGE).await?;
        for change in &page.changes {
            apply(app, change);
        }
        *at = Some(match at {
            Some(_) => page.end(from, PAGE),
            None => Position::below(page.watermark),
        });
        if page.changes.len() == PAGE as usize {
            continue;
        }
        app.freshness
            .advance(page.watermark, (!page.pending).then_some(started));
        return Ok(page.pending);
    }
}

/// Drops from the caches what one change affects.
fn apply(app: &App, change: &RecordedChange) {
    let revision = change.position.revision;
    let event = &change.event;
    if event.action == actions::SETTINGS_UPDATED {
        app.settings_cache.forget(&event.domain);
    }
    let Some(cache) = app.freshness.cache() else {
        return;
    };
    match &event.student_id {
        Some(student) => cache.drop_student(student, revision),
        // Users pushed or deleted may move a student between domains or remove one: rare
        // and wholesale, so everything goes.
        None if event.action == actions::USERS_UPSERTED
            || event.action == actions::USERS_DELETED =>
        {
            cache.drop_all(revision)
        }
        None => {}
    }
}
