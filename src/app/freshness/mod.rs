//! Fresh reads (freshness.md): the consistency a link read asks for, the feed follower that
//! keeps this replica's link cache fresh, and the rules for when the cache may answer.

mod cache;
mod follower;

pub use cache::LinkCache;
pub use follower::follow_changes;

use crate::domain::Position;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// How fresh a link read must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Consistency {
    /// Any answer no older than the staleness bound (the cache, when it is caught up).
    #[default]
    MinimizeLatency,
    /// An answer that includes every change up to this position.
    AtLeastAsFresh(Position),
    /// Read from the primary, now.
    FullyConsistent,
}

/// Settings of the feed and the cache.
#[derive(Debug, Clone)]
pub struct FreshnessConfig {
    /// Students the link cache holds; 0 turns it off.
    pub cache_capacity: u64,
    /// How old a cached answer may be (`GUARDIANS_MAX_STALENESS`).
    pub max_staleness: Duration,
    /// How far back a change token may resume (`GUARDIANS_FEED_RETENTION`).
    pub feed_retention: Duration,
    /// How often a quiet watcher gets a heartbeat with the latest token.
    pub heartbeat: Duration,
}

impl Default for FreshnessConfig {
    fn default() -> Self {
        Self {
            cache_capacity: 100_000,
            max_staleness: Duration::from_secs(1),
            feed_retention: Duration::from_secs(7 * 24 * 3600),
            heartbeat: Duration::from_secs(5),
        }
    }
}

/// This replica's view of the feed: how far the follower has applied it, and since when it
/// has known that nothing committed is missing.
#[derive(Debug)]
pub struct Freshness {
    config: FreshnessConfig,
    cache: Option<LinkCache>,
    /// Every change below this revision has been applied to the cache.
    applied: AtomicI64,
    /// The latest moment at which the follower knew that every change committed before it was
    /// applied; `None` until the follower first catches up.
    caught_up_at: Mutex<Option<Instant>>,
    /// The applied watermark, for watchers waiting for news.
    advanced: watch::Sender<i64>,
}

impl Freshness {
    /// Fresh state, nothing applied yet: the cache answers nothing until the follower runs.
    pub fn new(config: FreshnessConfig) -> Self {
        let cache = (config.cache_capacity > 0).then(|| LinkCache::new(config.cache_capacity));
        Self {
            config,
            cache,
            applied: AtomicI64::new(i64::MIN),
            caught_up_at: Mutex::new(None),
            advanced: watch::Sender::new(i64::MIN),
        }
    }

    /// The settings.
    pub fn config(&self) -> &FreshnessConfig {
        &self.config
    }

    /// The cache and the watermark it has applied, if a read in `consistency` may use it now.
    pub fn usable_cache(&self, consistency: Consistency) -> Option<(&LinkCache, i64)> {
        let cache = self.cache.as_ref()?;
        // None when the follower stalled (or the feed is held back): bypass until it catches up.
        let applied = self.recent_watermark()?;
        match consistency {
            Consistency::MinimizeLatency => Some((cache, applied)),
            Consistency::AtLeastAsFresh(token) => {
                (applied >= token.needed_watermark()).then_some((cache, applied))
            }
            Consistency::FullyConsistent => None,
        }
    }

    /// The applied watermark, if the follower caught up within the staleness bound: what a
    /// `minimize_latency` read from anywhere but this cache must include.
    pub fn recent_watermark(&self) -> Option<i64> {
        let caught_up = (*self.caught_up_at.lock().unwrap_or_else(|e| e.into_inner()))?;
        (caught_up.elapsed() < self.config.max_staleness).then(|| self.applied())
    }

    /// The applied watermark: every change below it is in the cache's view. A read that starts
    /// after this call sees at least those changes, whatever store it reads.
    pub fn applied(&self) -> i64 {
        self.applied.load(Ordering::SeqCst)
    }

    /// The follower's cache, for applying changes.
    pub(crate) fn cache(&self) -> Option<&LinkCache> {
        self.cache.as_ref()
    }

    /// Records that every change below `watermark` is applied, and, when `caught_up_at` is
    /// given, that nothing committed before then is missing.
    pub(crate) fn advance(&self, watermark: i64, caught_up_at: Option<Instant>) {
        let previous = self.applied.fetch_max(watermark, Ordering::SeqCst);
        if let Some(at) = caught_up_at {
            let mut slot = self.caught_up_at.lock().unwrap_or_else(|e| e.into_inner());
            if slot.is_none_or(|earlier| earlier < at) {
                *slot = Some(at);
            }
        }
        if watermark > previous {
            self.advanced.send_replace(watermark);
        }
    }

    /// Drops `student`'s cached links after a write of this replica committed: a read that began
    /// before (it saw at most today's watermark) cannot put them back; one that begins after
    /// reads the write.
    pub fn forget_student(&self, student: &crate::domain::UserId) {
        if let Some(cache) = &self.cache {
            cache.drop_student(student, self.applied());
        }
    }

    /// A receiver that changes whenever the applied watermark advances.
    pub fn subscribe(&self) -> watch::Receiver<i64> {
        self.advanced.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(capacity: u64) -> FreshnessConfig {
        FreshnessConfig {
            cache_capacity: capacity,
            max_staleness: Duration::from_millis(200),
            ..FreshnessConfig::default()
        }
    }

    #[test]
    fn the_cache_answers_only_when_caught_up_within_the_bound_and_fresh_enough() {
        let f = Freshness::new(config(10));
        assert!(
            f.usable_cache(Consistency::MinimizeLatency).is_none(),
            "before the follower"
        );
        let now = Instant::now();
        f.advance(100, Some(now));
        assert_eq!(
            f.usable_cache(Consistency::MinimizeLatency).map(|(_, w)| w),
            Some(100)
        );
        let token = |revision| Position { revision, event: 1 };
        assert!(
            f.usable_cache(Consistency::AtLeastAsFresh(token(99)))
                .is_some()
        );
        assert!(
            f.usable_cache(Consistency::AtLeastAsFresh(token(100)))
                .is_none(),
            "revision 100 is not below the watermark yet"
        );
        assert!(f.usable_cache(Consistency::FullyConsistent).is_none());
        // Caught up long ago: past the bound, nothing is answered from memory.
        let g = Freshness::new(config(10));
        g.advance(100, Some(now - Duration::from_millis(200)));
        assert!(g.usable_cache(Consistency::MinimizeLatency).is_none());
        // Advanced without catching up (changes held back): the old moment stands.
        g.advance(120, None);
        assert!(g.usable_cache(Consistency::MinimizeLatency).is_none());
        assert_eq!(g.applied(), 120);
    }

    #[test]
    fn no_capacity_no_cache() {
        let f = Freshness::new(config(0));
        f.advance(5, Some(Instant::now()));
        assert!(f.usable_cache(Consistency::MinimizeLatency).is_none());
        assert_eq!(f.applied(), 5);
    }
}
