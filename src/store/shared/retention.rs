//! Shared SQL of [`crate::store::RetentionRepo`]. Which rows are past their domain's retention
//! is date arithmetic, which each backend writes its own way (`$ended_sql`, `$audit_purge_sql`).

// Each query also bounds the time by the shortest retention any domain may choose (the
// settings' lower bound), so that it walks its time index from the oldest row and stops early.

/// Runs a purge of rows past their domain's `audit_retention_days` (binds: now, now less the
/// shortest retention a domain may choose, limit); how many rows went.
macro_rules! purge_past_audit_retention {
    ($session:ident, $sql:expr, $now:ident, $limit:ident) => {{
        let shortest =
            chrono::TimeDelta::days(i64::from($crate::domain::settings::AUDIT_RETENTION_DAYS.0));
        let done = sqlx::query($sql)
            .bind($now)
            .bind($now - shortest)
            .bind(i64::from($limit))
            .execute(&mut *$session.conn)
            .await?;
        Ok(done.rows_affected())
    }};
}
macro_rules! impl_retention_repo {
    ($session:ident, $conn:ty, $ended_sql:expr, $audit_purge_sql:expr) => {
        #[async_trait::async_trait]
        impl<C> $crate::store::RetentionRepo for $session<C>
        where
            C: std::ops::DerefMut<Target = $conn> + Send,
        {
            async fn claim_ended_identified(
                &mut self,
                now: chrono::DateTime<chrono::Utc>,
                limit: u32,
            ) -> $crate::store::StoreResult<Vec<$crate::domain::Invitation>> {
                let shortest = chrono::TimeDelta::days(i64::from(
                    $crate::domain::settings::ENDED_RETENTION_DAYS.0,
                ));
                let rows: Vec<$crate::store::rows::InvitationRow> = sqlx::query_as($ended_sql)
                    .bind(now)
                    .bind(now - shortest)
                    .bind(i64::from(limit))
                    .fetch_all(&mut *self.conn)
                    .await?;
                $crate::store::rows::convert_all(rows)
            }

            async fn anonymise_invitation(
                &mut self,
                id: $crate::domain::InvitationId,
                invited: &$crate::domain::Email,
                guardian: Option<(&$crate::domain::UserId, &$crate::domain::Email)>,
                now: chrono::DateTime<chrono::Utc>,
            ) -> $crate::store::StoreResult<()> {
                sqlx::query(
                    "UPDATE invitations SET invited_email = $2, guardian_id = $3, \
                     guardian_email = $4, guardian_display_name = CASE WHEN $3 IS NULL THEN \
                     NULL ELSE '' END, anonymised_time = $5, version = version + 1 \
                     WHERE invitation_id = $1 AND anonymised_time IS NULL",
                )
                .bind(id.to_text())
                .bind(invited.as_str())
                .bind(guardian.map(|(g, _)| g.as_str()))
                .bind(guardian.map(|(_, e)| e.as_str()))
                .bind(now)
                .execute(&mut *self.conn)
                .await?;
                Ok(())
            }

            async fn purge_audit_events(
                &mut self,
                now: chrono::DateTime<chrono::Utc>,
                limit: u32,
            ) -> $crate::store::StoreResult<u64> {
                purge_past_audit_retention!(self, $audit_purge_sql, now, limit)
            }

            async fn identified_messages(
                &mut self,
                before: chrono::DateTime<chrono::Utc>,
                limit: u32,
            ) -> $crate::store::StoreResult<Vec<(String, $crate::domain::Email)>> {
                // The predicate is the partial index's (outbox_identified), word for word.
                let rows: Vec<(String, String)> = sqlx::query_as(
                    "SELECT message_id, recipient FROM outbox WHERE status <> 'QUEUED' \
                     AND recipient NOT LIKE '%@erased.invalid' AND create_time < $1 \
                     ORDER BY create_time LIMIT $2",
                )
                .bind(before)
                .bind(i64::from(limit))
                .fetch_all(&mut *self.conn)
                .await?;
                rows.into_iter()
                    .map(|(id, recipient)| Ok((id, $crate::store::rows::email(&recipient)?)))
                    .collect()
            }

            async fn purge_sent_families(
                &mut self,
                before: chrono::DateTime<chrono::Utc>,
                limit: u32,
            ) -> $crate::store::StoreResult<u64> {
                let done = sqlx::query(
                    "DELETE FROM invitation_families WHERE family_id IN (SELECT family_id \
                     FROM invitation_families WHERE sent_time < $1 ORDER BY sent_time LIMIT $2)",
                )
                .bind(before)
                .bind(i64::from(limit))
                .execute(&mut *self.conn)
                .await?;
                Ok(done.rows_affected())
            }
        }
    };
}
