//! The rules of a sync from a student information system: what it may remove, and the safety
//! limit that stops a broken export (an empty guardian column, a wrong file) from unlinking a
//! school's families before anyone notices.

use super::invitation::InvitationSource;

/// The safety limit when the caller sets none: a run may delete a tenth of a domain's links.
pub const DEFAULT_MAX_REMOVAL_PERCENT: u32 = 10;

/// What a sync may remove of what is not in its list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RemoveScope {
    /// Only what a sync made: a guardian a person invited stays, whatever the list says.
    #[default]
    SyncedOnly,
    /// Every link and pending invitation of the student.
    All,
}

impl RemoveScope {
    /// Whether a sync in this scope may remove an invitation or link made by `source`.
    pub fn may_remove(self, source: InvitationSource) -> bool {
        match self {
            Self::All => true,
            Self::SyncedOnly => source == InvitationSource::Sync,
        }
    }
}

/// A run would delete more links than the safety limit allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RemovalLimitExceeded {
    /// The most deletions allowed.
    pub limit: i64,
    /// The deletions planned.
    pub planned: i64,
}

/// The most links a run may delete in a domain that has `links`: `percent` of them rounded
/// down, and never less than one (a single family's change is not a mass removal).
pub fn removal_limit(links: i64, percent: u32) -> i64 {
    (links.max(0) * i64::from(percent) / 100).max(1)
}

/// Whether a run that deletes `planned` of a domain's `links` may go ahead.
pub fn check_removals(
    planned: i64,
    links: i64,
    percent: u32,
    force: bool,
) -> Result<(), RemovalLimitExceeded> {
    let limit = removal_limit(links, percent);
    if planned > limit && !force {
        Err(RemovalLimitExceeded { limit, planned })
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_limit_is_a_share_of_the_links_and_at_least_one() {
        let cases = [
            // (links, percent, limit)
            (0, 10, 1),
            (5, 10, 1),
            (19, 10, 1),
            (20, 10, 2),
            (1_000, 10, 100),
            (1_000, 100, 1_000),
            (1_000, 1, 10),
            (-3, 10, 1),
        ];
        for (links, percent, limit) in cases {
            assert_eq!(
                removal_limit(links, percent),
                limit,
                "{links} links at {percent}%"
            );
        }
    }

    #[test]
    fn a_run_over_the_limit_is_refused_unless_forced() {
        assert_eq!(check_removals(100, 1_000, 10, false), Ok(()));
        assert_eq!(
            check_removals(101, 1_000, 10, false),
            Err(RemovalLimitExceeded {
                limit: 100,
                planned: 101
            })
        );
        assert_eq!(check_removals(101, 1_000, 10, true), Ok(()));
        assert_eq!(check_removals(1, 0, 10, false), Ok(()));
        assert_eq!(
            check_removals(2, 3, 10, false),
            Err(RemovalLimitExceeded {
                limit: 1,
                planned: 2
            })
        );
    }

    #[test]
    fn synced_only_spares_what_a_person_made() {
        use InvitationSource::{Manual, Sync};
        assert!(RemoveScope::SyncedOnly.may_remove(Sync));
        assert!(!RemoveScope::SyncedOnly.may_remove(Manual));
        assert!(RemoveScope::All.may_remove(Sync));
        assert!(RemoveScope::All.may_remove(Manual));
    }
}
