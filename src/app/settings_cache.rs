//! A per-replica cache of domain settings with a short lifetime, so that the hot path reads no
//! settings row per call while a change still reaches every replica within one second. A
//! lifetime rather than LISTEN/NOTIFY keeps it portable to SQLite and to Postgres-compatible
//! engines without notifications.

use crate::domain::{DomainName, DomainSettings};
use std::collections::HashMap;
use std::sync::RwLock;
use std::time::{Duration, Instant};

/// Settings read recently, by domain.
#[derive(Debug)]
pub struct SettingsCache {
    ttl: Duration,
    entries: RwLock<HashMap<DomainName, (Instant, DomainSettings)>>,
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

    /// The cached settings of `domain`, if read less than `ttl` ago.
    pub fn get(&self, domain: &DomainName) -> Option<DomainSettings> {
        let entries = self.entries.read().unwrap_or_else(|e| e.into_inner());
        entries
            .get(domain)
            .filter(|(read_at, _)| read_at.elapsed() < self.ttl)
            .map(|(_, settings)| settings.clone())
    }

    /// Remembers settings just read or written.
    pub fn put(&self, settings: DomainSettings) {
        let mut entries = self.entries.write().unwrap_or_else(|e| e.into_inner());
        if entries.len() >= MAX_ENTRIES && !entries.contains_key(&settings.domain) {
            entries.clear();
        }
        entries.insert(settings.domain.clone(), (Instant::now(), settings));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_expire_after_their_lifetime() {
        let domain = DomainName::parse("school.example").unwrap();
        let fresh = SettingsCache::new(Duration::from_secs(60));
        fresh.put(DomainSettings::defaults(domain.clone()));
        assert!(fresh.get(&domain).is_some());
        let expired = SettingsCache::new(Duration::ZERO);
        expired.put(DomainSettings::defaults(domain.clone()));
        assert!(expired.get(&domain).is_none());
    }
}
