//! Whether a database has applied every migration this build embeds.

/// Versions of the migrations this build embeds, to compare with those applied.
pub(crate) fn embedded_versions(migrator: &sqlx::migrate::Migrator) -> Vec<i64> {
    migrator.iter().map(|m| m.version).collect()
}

/// Whether every embedded version is among the applied ones.
pub(crate) fn all_applied(embedded: &[i64], applied: &[i64]) -> bool {
    embedded.iter().all(|v| applied.contains(v))
}
