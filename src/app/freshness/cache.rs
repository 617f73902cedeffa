//! The per-replica cache of students' links: what the hot path answers from in
//! `minimize_latency` and `at_least_as_fresh`, kept fresh by the feed follower.
//!
//! The race every such cache has: a reader misses, reads the database, and stores what it read
//! just after the follower dropped that key for a newer change, so the old answer would stay.
//! Here the follower marks the key's bucket with the change's revision *before* dropping the
//! key, and a reader keeps what it stored only if no change at or above the watermark it saw
//! before its read has marked the bucket since (checked after storing, so one of the two
//! always removes a stale entry).

use crate::domain::UserId;
use crate::store::StudentLinks;
use std::hash::BuildHasher;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

/// Buckets of keys, each remembering the newest change applied to any of its keys.
const BUCKETS: usize = 4096;

/// Students' links by student id.
pub struct LinkCache {
    entries: moka::sync::Cache<UserId, Arc<StudentLinks>>,
    touched: Box<[AtomicI64]>,
    /// The newest change that dropped every entry (a directory change).
    everything_touched: AtomicI64,
    hasher: std::collections::hash_map::RandomState,
}

impl std::fmt::Debug for LinkCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LinkCache")
            .field("entries", &self.entries.entry_count())
            .finish()
    }
}

impl LinkCache {
    /// A cache of at most `capacity` students.
    pub fn new(capacity: u64) -> Self {
        Self {
            entries: moka::sync::Cache::new(capacity),
            touched: (0..BUCKETS).map(|_| AtomicI64::new(i64::MIN)).collect(),
            everything_touched: AtomicI64::new(i64::MIN),
            hasher: std::collections::hash_map::RandomState::new(),
        }
    }

    fn bucket(&self, student: &UserId) -> &AtomicI64 {
        &self.touched[(self.hasher.hash_one(student) as usize) % BUCKETS]
    }

    /// The cached links of `student`.
    pub fn get(&self, student: &UserId) -> Option<Arc<StudentLinks>> {
        self.entries.get(student)
    }

    /// Stores links read from the database by a reader that saw `watermark` applied before
    /// it began the read; dropped again if a change the read may have missed came in since.
    pub fn fill(&self, watermark: i64, links: impl Into<Arc<StudentLinks>>) {
        let links = links.into();
        let student = links.id().clone();
        self.entries.insert(student.clone(), links);
        if self.bucket(&student).load(Ordering::SeqCst) >= watermark
            || self.everything_touched.load(Ordering::SeqCst) >= watermark
        {
            self.entries.invalidate(&student);
        }
    }

    /// Drops `student`'s entry for a change at `revision`.
    pub fn drop_student(&self, student: &UserId, revision: i64) {
        self.bucket(student).fetch_max(revision, Ordering::SeqCst);
        self.entries.invalidate(student);
    }

    /// Drops every entry for a change at `revision` (one that may move or remove students).
    pub fn drop_all(&self, revision: i64) {
        self.everything_touched
            .fetch_max(revision, Ordering::SeqCst);
        self.entries.invalidate_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn links(student: &str, guardians: &[&str]) -> StudentLinks {
        StudentLinks::sample(student, "school.example", guardians)
    }

    #[test]
    fn a_fill_that_raced_a_change_is_not_kept() {
        let cache = LinkCache::new(100);
        let s1 = UserId::parse("s1").unwrap();
        // A reader saw watermark 10, read the database; meanwhile the follower applied a change
        // of revision 12 to s1. What the reader read may predate it: not kept.
        cache.drop_student(&s1, 12);
        cache.fill(10, links("s1", &["g1"]));
        assert!(cache.get(&s1).is_none());
        // A reader that began after the change was applied (watermark 13) keeps its read.
        cache.fill(13, links("s1", &[]));
        assert!(cache.get(&s1).unwrap().links.is_empty());
        // A change applied after a fill drops the entry.
        cache.drop_student(&s1, 14);
        assert!(cache.get(&s1).is_none());
    }

    #[test]
    fn a_directory_change_drops_everything_and_refuses_older_reads() {
        let cache = LinkCache::new(100);
        cache.fill(5, links("s1", &["g1"]));
        cache.fill(5, links("s2", &["g2"]));
        cache.drop_all(7);
        assert!(cache.get(&UserId::parse("s1").unwrap()).is_none());
        cache.fill(6, links("s2", &["g2"]));
        assert!(cache.get(&UserId::parse("s2").unwrap()).is_none());
        cache.fill(8, links("s2", &["g2"]));
        assert!(cache.get(&UserId::parse("s2").unwrap()).is_some());
    }
}
