//! Plain functions the shared SQL macros call.

use super::error::{StoreError, UniqueKey};
use crate::domain::Invitation;

/// Tells which of the invitation table's unique rules a write broke, from the constraint name
/// (Postgres) or the columns named in the message (SQLite).
pub(crate) fn invitation_unique(err: sqlx::Error, _written: &Invitation) -> StoreError {
    let key = match &err {
        sqlx::Error::Database(db) if db.is_unique_violation() => {
            let text = format!("{} {}", db.constraint().unwrap_or_default(), db.message());
            if text.contains("token") {
                UniqueKey::InvitationToken
            } else if text.contains("one_link") || text.contains("guardian_id") {
                UniqueKey::GuardianLink
            } else if text.contains("pkey") || text.contains("invitation_id") {
                UniqueKey::InvitationId
            } else {
                UniqueKey::PendingInvitation
            }
        }
        _ => return StoreError::from(err),
    };
    StoreError::AlreadyExists(key)
}

/// Versions of the migrations this build embeds, to compare with those applied.
pub(crate) fn embedded_versions(migrator: &sqlx::migrate::Migrator) -> Vec<i64> {
    migrator.iter().map(|m| m.version).collect()
}

/// Whether every embedded version is among the applied ones.
pub(crate) fn all_applied(embedded: &[i64], applied: &[i64]) -> bool {
    embedded.iter().all(|v| applied.contains(v))
}
