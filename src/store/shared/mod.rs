//! SQL that is the same on Postgres and SQLite, written once and expanded for each backend's
//! connection type. A macro rather than generic code: sqlx's per-database trait bounds would
//! have to be repeated on every function, while the SQL text and row mapping are identical.
//! Backend-specific statements (row locks, SKIP LOCKED) are passed in by each backend.

#[macro_use]
mod bulk;
#[macro_use]
mod directory;
#[macro_use]
mod families;
#[macro_use]
mod feed;
#[macro_use]
mod invitations;
#[macro_use]
mod journal;
#[macro_use]
mod access;
#[macro_use]
mod privacy;
#[macro_use]
mod retention;
#[macro_use]
mod settings;
#[macro_use]
mod summaries;

/// Pushes `ids` as bound parameters of an `IN (` list the query has opened, and closes it.
macro_rules! in_list {
    ($query:expr, $ids:expr) => {{
        let mut ids = $query.separated(", ");
        for id in $ids {
            ids.push_bind(id.as_str());
        }
        $query.push(")");
    }};
}

/// The columns of an invitation row, in [`crate::store::rows::InvitationRow`]'s order.
macro_rules! invitation_columns {
    () => {
        "invitation_id, domain, student_id, invited_email, state, removal_reason, inviter_id, \
         guardian_id, guardian_email, guardian_display_name, token_hash, create_time, \
         update_time, expire_time, accept_time, version, source, remind_time, reminder_token_hash, \
         family_id"
    };
}

/// The columns of a [`crate::store::rows::LinkRow`], read from `invitations` as `i`.
macro_rules! link_columns {
    () => {
        "i.invitation_id AS l_invitation_id, i.invited_email AS l_invited_email, i.guardian_id AS l_guardian_id, \
         i.guardian_email AS l_guardian_email, \
         i.guardian_display_name AS l_guardian_display_name, i.source AS l_source, \
         i.create_time AS l_create_time, i.accept_time AS l_accept_time"
    };
}

/// Implements every repository trait and [`crate::store::Session`] for `$session<C>`, where `C`
/// derefs to the backend's connection (a pooled connection or an open transaction).
/// `$claim_sql` claims due outbox messages (binds: now, lease_until, limit); `$expired_sql`
/// selects and locks expired PENDING invitations (binds: now, limit), `$reminders_sql` those
/// whose reminder is due (binds: now, limit), `$families_sql` the unsent families whose window
/// closed (binds: now, limit), `$ended_sql` the ended invitations past their domain's retention
/// (binds: now, now less the shortest retention, limit) and `$audit_purge_sql` deletes audit
/// events past theirs (same binds), `$access_purge_sql` the access records past theirs (same
/// binds); `$watermark_sql` selects
/// the feed's watermark as `w`, `$head_sql` the revision that includes every commit so far.
macro_rules! impl_session_repos {
    (
        $session:ident,
        $conn:ty,
        claim_sql = $claim_sql:expr,
        expired_sql = $expired_sql:expr,
        reminders_sql = $reminders_sql:expr,
        families_sql = $families_sql:expr,
        ended_sql = $ended_sql:expr,
        audit_purge_sql = $audit_purge_sql:expr,
        access_purge_sql = $access_purge_sql:expr,
        watermark_sql = $watermark_sql:literal,
        head_sql = $head_sql:expr
    ) => {
        impl_settings_repo!($session, $conn);
        impl_bulk_repo!($session, $conn);
        impl_directory_repo!($session, $conn);
        impl_invitation_repo!($session, $conn, $expired_sql, $reminders_sql);
        impl_family_repo!($session, $conn, $families_sql);
        impl_retention_repo!($session, $conn, $ended_sql, $audit_purge_sql);
        impl_privacy_repo!($session, $conn);
        impl_access_repo!($session, $conn, $access_purge_sql);
        impl_journal_repos!($session, $conn, $claim_sql);
        impl_feed_repo!($session, $conn, $watermark_sql, $head_sql);
        impl_summary_repo!($session, $conn);
        impl<C> $crate::store::Session for $session<C> where
            C: std::ops::DerefMut<Target = $conn> + Send
        {
        }
    };
}
