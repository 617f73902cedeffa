//! A per-replica cache of domain settings with a short lifetime, so that the hot path reads no
//! settings row per call while a change still reaches every replica within one second. A
//! lifetime rather than LISTEN/NOTIFY keeps it portable to SQLite and to Postgres-compatible
//! engines without notifications.

use crate::domain::{DomainName, DomainSettings};
use chrono::{DateTime, Utc};
use std::collections::HashMap;
use std::sync::RwLock;
use std::time::Duration;

/// Settings read recently, by domain.
#[derive(Debug)]
pub struct SettingsCache {
    ttl: Duration,
    entries: RwLock<HashMap<DomainName, (DateTime<Utc>, DomainSettings)>>,
}

/// Past this many domains the cache is cleared rather than grown: a bound on memory.
const MAX_ENTRIES: usize = 10_000;

impl SettingsCache {
    /// An empty cache whose entries live for `ttl`.
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            entries: RwLock::new(HashMap::new()),
        }
    }

    /// The cached settings of `domain`, if read less than `ttl` before `now` (the service's
    /// clock, so that tests move time instead of waiting; a clock that went back counts as
    /// stale).
    pub fn get(&self, domain: &DomainName, now: DateTime<Utc>) -> Option<DomainSettings> {
        let entries = self.entries.read().unwrap_or_else(|e| e.into_inner());
        entries
            .get(domain)
            .filter(|(read_at, _)| (now - *read_at).to_std().is_ok_and(|age| age < self.ttl))
            .map(|(_, settings)| settings.clone())
    }

    /// Forgets `domain`'s settings (they changed, perhaps on another replica).
    pub fn forget(&self, domain: &DomainName) {
        let mut entries = self.entries.write().unwrap_or_else(|e| e.into_inner());
        entries.remove(domain);
    }

    /// Remembers settings read or written at `now`.
    pub fn put(&self, settings: DomainSettings, now: DateTime<Utc>) {
        let mut entries = self.entries.write().unwrap_or_else(|e| e.into_inner());
        if entries.len() >= MAX_ENTRIES && !entries.contains_key(&settings.domain) {
            entries.clear();
        }
        entries.insert(settings.domain.clone(), (now, settings));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_expire_after_their_lifetime() {
        let domain = DomainName::parse("school.example").unwrap();
        let cache = SettingsCache::new(Duration::from_millis(500));
        let t0 = Utc::now();
        cache.put(DomainSettings::defaults(domain.clone()), t0);
        assert!(cache.get(&domain, t0).is_some());
        assert!(
            cache
                .get(&domain, t0 + chrono::TimeDelta::milliseconds(499))
                .is_some()
        );
        assert!(
            cache
                .get(&domain, t0 + chrono::TimeDelta::milliseconds(500))
                .is_none()
        );
        assert!(
            cache
                .get(&domain, t0 - chrono::TimeDelta::seconds(1))
                .is_none(),
            "clock went back"
        );
    }
}
