//! Shared SQL of [`crate::store::FeedRepo`]: the change feed read from the audit trail. The two
//! backends differ only in how they name the watermark and the head (passed in).

macro_rules! impl_feed_repo {
    ($session:ident, $conn:ty, $watermark_sql:literal, $head_sql:expr) => {
        impl<C> $session<C> {
            /// The watermark, and whether any stored change is at or above it (held back).
            /// The newest revision is one step down the feed index: a filter against the
            /// watermark's expression instead made the planner scan the whole audit table
            /// (20 ms at 70,000 events, on every look of every follower and watcher).
            pub(crate) const FEED_WATERMARK_SQL: &'static str = concat!(
                "SELECT w, COALESCE((SELECT MAX(revision) FROM guardian_events), -1) >= w FROM (",
                $watermark_sql,
                ") AS head"
            );
        }

        #[async_trait::async_trait]
        impl<C> $crate::store::FeedRepo for $session<C>
        where
            C: std::ops::DerefMut<Target = $conn> + Send,
        {
            async fn changes_after(
                &mut self,
                scope: &$crate::store::ChangeScope,
                after: $crate::domain::Position,
                limit: u32,
            ) -> $crate::store::StoreResult<$crate::store::ChangePage> {
                // The watermark first, in a statement of its own: the page below it is read by
                // a later snapshot, in which every transaction under the watermark is visible
                // if it committed.
                let (watermark, pending): (i64, bool) = sqlx::query_as(Self::FEED_WATERMARK_SQL)
                .fetch_one(&mut *self.conn)
                .await?;
                let mut query = sqlx::QueryBuilder::<<$conn as sqlx::Connection>::Database>::new(
                    "SELECT revision, event_id, domain, student_id, invitation_id, action, \
                     actor_id, request_id, create_time, details FROM guardian_events \
                     WHERE (revision, event_id) > (",
                );
                query.push_bind(after.revision).push(", ").push_bind(after.event);
                query.push(") AND revision < ").push_bind(watermark);
                if let Some(domain) = &scope.domain {
                    query.push(" AND domain = ").push_bind(domain.as_str());
                }
                if let Some(student) = &scope.student {
                    query.push(" AND student_id = ").push_bind(student.as_str());
                }
                query
                    .push(" ORDER BY revision, event_id LIMIT ")
                    .push_bind(i64::from(limit));
                let rows: Vec<$crate::store::rows::ChangeRow> =
                    query.build_query_as().fetch_all(&mut *self.conn).await?;
                let changes = rows
                    .into_iter()
                    .map(TryInto::try_into)
                    .collect::<$crate::store::StoreResult<Vec<_>>>()?;
                Ok($crate::store::ChangePage {
                    changes,
                    watermark,
                    pending,
                })
            }

            async fn committed_head(
                &mut self,
            ) -> $crate::store::StoreResult<$crate::domain::Position> {
                let revision: i64 = sqlx::query_scalar($head_sql)
                    .fetch_one(&mut *self.conn)
                    .await?;
                Ok($crate::domain::Position {
                    revision,
                    event: i64::MAX,
                })
            }

            async fn first_change_time(
                &mut self,
                after: $crate::domain::Position,
            ) -> $crate::store::StoreResult<Option<chrono::DateTime<chrono::Utc>>> {
                let time: Option<chrono::DateTime<chrono::Utc>> = sqlx::query_scalar(
                    "SELECT create_time FROM guardian_events \
                     WHERE (revision, event_id) > ($1, $2) ORDER BY revision, event_id LIMIT 1",
                )
                .bind(after.revision)
                .bind(after.event)
                .fetch_optional(&mut *self.conn)
                .await?;
                Ok(time)
            }

            async fn invitations_by_id(
                &mut self,
                ids: &[$crate::domain::InvitationId],
            ) -> $crate::store::StoreResult<Vec<$crate::domain::Invitation>> {
                if ids.is_empty() {
                    return Ok(Vec::new());
                }
                let mut query = sqlx::QueryBuilder::<<$conn as sqlx::Connection>::Database>::new(
                    concat!(
                        "SELECT ",
                        invitation_columns!(),
                        " FROM invitations WHERE invitation_id IN ("
                    ),
                );
                let texts: Vec<String> = ids.iter().map(|i| i.to_text()).collect();
                in_list!(query, &texts);
                let rows: Vec<$crate::store::rows::InvitationRow> =
                    query.build_query_as().fetch_all(&mut *self.conn).await?;
                $crate::store::rows::convert_all(rows)
            }
        }
    };
}
