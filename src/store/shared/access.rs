//! Shared SQL of [`crate::store::AccessRepo`]; which records are past their domain's retention
//! is date arithmetic, which each backend writes its own way (`$purge_sql`).

macro_rules! impl_access_repo {
    ($session:ident, $conn:ty, $purge_sql:expr) => {
        #[async_trait::async_trait]
        impl<C> $crate::store::AccessRepo for $session<C>
        where
            C: std::ops::DerefMut<Target = $conn> + Send,
        {
            async fn insert_access_records(
                &mut self,
                records: &[$crate::domain::AccessRecord],
            ) -> $crate::store::StoreResult<()> {
                if records.is_empty() {
                    return Ok(());
                }
                let mut query = sqlx::QueryBuilder::<<$conn as sqlx::Connection>::Database>::new(
                    "INSERT INTO access_records (domain, caller, caller_role, method, \
                     student_id, row_count, create_time) ",
                );
                query.push_values(records, |mut row, r| {
                    row.push_bind(r.domain.as_str())
                        .push_bind(&r.caller)
                        .push_bind(r.caller_role.as_str())
                        .push_bind(&r.method)
                        .push_bind(r.student_id.as_ref().map(|s| s.as_str()))
                        .push_bind(i32::try_from(r.rows).unwrap_or(i32::MAX))
                        .push_bind(r.create_time);
                });
                query.build().execute(&mut *self.conn).await?;
                Ok(())
            }

            async fn list_access_records(
                &mut self,
                domain: &$crate::domain::DomainName,
                student: Option<&$crate::domain::UserId>,
                before: Option<i64>,
                limit: u32,
            ) -> $crate::store::StoreResult<Vec<$crate::domain::AccessRecord>> {
                let rows: Vec<$crate::store::rows::AccessRow> = sqlx::query_as(
                    "SELECT record_id, domain, caller, caller_role, method, student_id, \
                     row_count, create_time FROM access_records WHERE domain = $1 \
                     AND ($2 IS NULL OR student_id = $2) AND ($3 IS NULL OR record_id < $3) \
                     ORDER BY record_id DESC LIMIT $4",
                )
                .bind(domain.as_str())
                .bind(student.map(|s| s.as_str()))
                .bind(before)
                .bind(i64::from(limit))
                .fetch_all(&mut *self.conn)
                .await?;
                $crate::store::rows::convert_all(rows)
            }

            async fn purge_access_records(
                &mut self,
                now: chrono::DateTime<chrono::Utc>,
                limit: u32,
            ) -> $crate::store::StoreResult<u64> {
                purge_past_audit_retention!(self, $purge_sql, now, limit)
            }
        }
    };
}
