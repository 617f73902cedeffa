//! Shared SQL of the append-mostly tables: [`crate::store::EventRepo`],
//! [`crate::store::OutboxRepo`] and [`crate::store::IdempotencyRepo`].

macro_rules! impl_journal_repos {
    ($session:ident, $conn:ty, $claim_sql:expr) => {
        #[async_trait::async_trait]
        impl<C> $crate::store::EventRepo for $session<C>
        where
            C: std::ops::DerefMut<Target = $conn> + Send,
        {
            async fn append_event(
                &mut self,
                e: &$crate::domain::AuditEvent,
            ) -> $crate::store::StoreResult<i64> {
                // RETURNING shows the row as inserted: on SQLite, before the trigger that sets
                // its revision to its id.
                let (id, revision): (i64, i64) = sqlx::query_as(
                    "INSERT INTO guardian_events (domain, student_id, invitation_id, action, \
                     actor_id, request_id, create_time, details) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING event_id, revision",
                )
                .bind(e.domain.as_str())
                .bind(e.student_id.as_ref().map(|s| s.as_str()))
                .bind(e.invitation_id.map(|i| i.to_text()))
                .bind(&e.action)
                .bind(&e.actor_id)
                .bind(e.request_id.as_deref())
                .bind(e.create_time)
                .bind($crate::store::rows::details_text(&e.details))
                .fetch_one(&mut *self.conn)
                .await?;
                let revision = if revision == 0 { id } else { revision };
                self.feed_revision = self.feed_revision.max(Some(revision));
                Ok(id)
            }
        }

        #[async_trait::async_trait]
        impl<C> $crate::store::OutboxRepo for $session<C>
        where
            C: std::ops::DerefMut<Target = $conn> + Send,
        {
            async fn enqueue_message(
                &mut self,
                m: &$crate::domain::OutboxMessage,
            ) -> $crate::store::StoreResult<()> {
                self.enqueue_messages(std::slice::from_ref(m)).await
            }

            async fn enqueue_messages(
                &mut self,
                messages: &[$crate::domain::OutboxMessage],
            ) -> $crate::store::StoreResult<()> {
                if messages.is_empty() {
                    return Ok(());
                }
                let mut query = sqlx::QueryBuilder::<<$conn as sqlx::Connection>::Database>::new(
                    "INSERT INTO outbox (message_id, invitation_id, recipient, subject, \
                     body_text, body_html, status, attempts, next_attempt_time, last_error, \
                     create_time, sent_time, list_unsubscribe, from_name, reply_to, family_id) ",
                );
                query.push_values(messages, |mut row, m| {
                    row.push_bind(&m.message_id)
                        .push_bind(m.invitation_id.map(|i| i.to_text()))
                        .push_bind(m.recipient.as_str())
                        .push_bind(&m.subject)
                        .push_bind(&m.body_text)
                        .push_bind(&m.body_html)
                        .push_bind(m.status.as_str())
                        .push_bind(m.attempts)
                        .push_bind(m.next_attempt_time)
                        .push_bind(m.last_error.as_deref())
                        .push_bind(m.create_time)
                        .push_bind(m.sent_time)
                        .push_bind(m.list_unsubscribe.as_deref())
                        .push_bind(m.from_name.as_deref())
                        .push_bind(m.reply_to.as_ref().map(|e| e.as_str()))
                        .push_bind(m.family_id.as_deref());
                });
                query.build().execute(&mut *self.conn).await.map_err(|e| {
                    $crate::store::StoreError::unique_as(e, $crate::store::UniqueKey::OutboxMessage)
                })?;
                Ok(())
            }

            async fn claim_due_messages(
                &mut self,
                now: chrono::DateTime<chrono::Utc>,
                lease_until: chrono::DateTime<chrono::Utc>,
                limit: u32,
            ) -> $crate::store::StoreResult<Vec<$crate::domain::OutboxMessage>> {
                let rows: Vec<$crate::store::rows::OutboxRow> = sqlx::query_as($claim_sql)
                    .bind(now)
                    .bind(lease_until)
                    .bind(i64::from(limit))
                    .fetch_all(&mut *self.conn)
                    .await?;
                let mut messages: Vec<$crate::domain::OutboxMessage> =
                    $crate::store::rows::convert_all(rows)?;
                // RETURNING has no order; deliver oldest first.
                messages.sort_by(|a, b| a.message_id.cmp(&b.message_id));
                Ok(messages)
            }

            async fn reschedule_messages(
                &mut self,
                message_ids: &[String],
                at: chrono::DateTime<chrono::Utc>,
            ) -> $crate::store::StoreResult<()> {
                for id in message_ids {
                    sqlx::query(
                        "UPDATE outbox SET next_attempt_time = $2 \
                         WHERE message_id = $1 AND status = 'QUEUED'",
                    )
                    .bind(id)
                    .bind(at)
                    .execute(&mut *self.conn)
                    .await?;
                }
                Ok(())
            }

            async fn record_delivery(
                &mut self,
                message_id: &str,
                status: $crate::domain::DeliveryStatus,
                next_attempt_time: chrono::DateTime<chrono::Utc>,
                error: Option<&str>,
                now: chrono::DateTime<chrono::Utc>,
            ) -> $crate::store::StoreResult<()> {
                let sent_time = (status == $crate::domain::DeliveryStatus::Sent).then_some(now);
                sqlx::query(
                    // A sent message's bodies are dropped: an invitation's carries its token,
                    // which is otherwise kept only as a hash.
                    "UPDATE outbox SET status = $2, attempts = attempts + 1, \
                     next_attempt_time = $3, last_error = $4, sent_time = $5, \
                     body_text = CASE WHEN $2 = 'SENT' THEN '' ELSE body_text END, \
                     body_html = CASE WHEN $2 = 'SENT' THEN '' ELSE body_html END \
                     WHERE message_id = $1",
                )
                .bind(message_id)
                .bind(status.as_str())
                .bind(next_attempt_time)
                .bind(error)
                .bind(sent_time)
                .execute(&mut *self.conn)
                .await?;
                Ok(())
            }

            async fn get_message(
                &mut self,
                message_id: &str,
            ) -> $crate::store::StoreResult<Option<$crate::domain::OutboxMessage>> {
                let row: Option<$crate::store::rows::OutboxRow> =
                    sqlx::query_as("SELECT * FROM outbox WHERE message_id = $1")
                        .bind(message_id)
                        .fetch_optional(&mut *self.conn)
                        .await?;
                row.map(TryInto::try_into).transpose()
            }

            async fn count_queued_messages(&mut self) -> $crate::store::StoreResult<i64> {
                let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM outbox WHERE status = 'QUEUED'")
                    .fetch_one(&mut *self.conn)
                    .await?;
                Ok(count)
            }

            async fn latest_delivery_status(
                &mut self,
                invitation_id: $crate::domain::InvitationId,
            ) -> $crate::store::StoreResult<Option<$crate::domain::DeliveryStatus>> {
                // One invitation's is a page of one: its own messages and its family's.
                let mut found = self.latest_delivery_statuses(&[invitation_id]).await?;
                Ok(found.remove(&invitation_id))
            }

            async fn latest_delivery_statuses(
                &mut self,
                invitation_ids: &[$crate::domain::InvitationId],
            ) -> $crate::store::StoreResult<
                std::collections::HashMap<
                    $crate::domain::InvitationId,
                    $crate::domain::DeliveryStatus,
                >,
            > {
                let mut found = std::collections::HashMap::new();
                if invitation_ids.is_empty() {
                    return Ok(found);
                }
                // The newest message of each invitation: none newer (by time, then id) exists.
                let mut query = sqlx::QueryBuilder::<<$conn as sqlx::Connection>::Database>::new(
                    "SELECT invitation_id, status, create_time, message_id FROM outbox o \
                     WHERE NOT EXISTS (SELECT 1 FROM outbox n WHERE n.invitation_id = \
                     o.invitation_id AND (n.create_time > o.create_time OR (n.create_time = \
                     o.create_time AND n.message_id > o.message_id))) AND o.invitation_id IN (",
                );
                let mut ids = query.separated(", ");
                for id in invitation_ids {
                    ids.push_bind(id.to_text());
                }
                query.push(")");
                type Latest = (String, String, chrono::DateTime<chrono::Utc>, String);
                let own: Vec<Latest> = query.build_query_as().fetch_all(&mut *self.conn).await?;
                // The emails of their families (one each, as a rule).
                let mut query = sqlx::QueryBuilder::<<$conn as sqlx::Connection>::Database>::new(
                    "SELECT i.invitation_id, o.status, o.create_time, o.message_id FROM \
                     invitations i JOIN outbox o ON o.family_id = i.family_id \
                     WHERE i.invitation_id IN (",
                );
                let mut ids = query.separated(", ");
                for id in invitation_ids {
                    ids.push_bind(id.to_text());
                }
                query.push(")");
                let of_families: Vec<Latest> =
                    query.build_query_as().fetch_all(&mut *self.conn).await?;
                let mut newest: std::collections::HashMap<String, Latest> =
                    std::collections::HashMap::new();
                for row in own.into_iter().chain(of_families) {
                    let newer = newest
                        .get(&row.0)
                        .is_none_or(|seen| (row.2, &row.3) > (seen.2, &seen.3));
                    if newer {
                        newest.insert(row.0.clone(), row);
                    }
                }
                // A family still open for more children has its email to come: queued.
                let mut query = sqlx::QueryBuilder::<<$conn as sqlx::Connection>::Database>::new(
                    "SELECT i.invitation_id FROM invitations i JOIN invitation_families f \
                     ON f.family_id = i.family_id WHERE f.sent_time IS NULL \
                     AND i.invitation_id IN (",
                );
                let mut ids = query.separated(", ");
                for id in invitation_ids {
                    ids.push_bind(id.to_text());
                }
                query.push(")");
                let waiting: Vec<(String,)> =
                    query.build_query_as().fetch_all(&mut *self.conn).await?;
                let mut rows: Vec<(String, String)> = newest
                    .into_values()
                    .map(|(id, status, _, _)| (id, status))
                    .collect();
                let known: std::collections::HashSet<String> =
                    rows.iter().map(|(id, _)| id.clone()).collect();
                rows.extend(
                    waiting
                        .into_iter()
                        .filter(|(id,)| !known.contains(id))
                        .map(|(id,)| (id, "QUEUED".to_owned())),
                );
                for (id, status) in rows {
                    let corrupt = |what: &str| $crate::store::StoreError::Corrupt(what.into());
                    let id = $crate::domain::InvitationId::parse(&id)
                        .map_err(|_| corrupt("unreadable invitation id in the outbox"))?;
                    let status = $crate::domain::DeliveryStatus::from_name(&status)
                        .ok_or_else(|| corrupt("unreadable delivery status"))?;
                    found.insert(id, status);
                }
                Ok(found)
            }
        }

        #[async_trait::async_trait]
        impl<C> $crate::store::IdempotencyRepo for $session<C>
        where
            C: std::ops::DerefMut<Target = $conn> + Send,
        {
            async fn get_idempotency(
                &mut self,
                principal: &str,
                request_id: &str,
            ) -> $crate::store::StoreResult<Option<$crate::domain::IdempotencyRecord>> {
                let row: Option<$crate::store::rows::IdempotencyRow> = sqlx::query_as(
                    "SELECT * FROM idempotency_keys WHERE principal = $1 AND request_id = $2",
                )
                .bind(principal)
                .bind(request_id)
                .fetch_optional(&mut *self.conn)
                .await?;
                Ok(row.map(Into::into))
            }

            async fn put_idempotency(
                &mut self,
                r: &$crate::domain::IdempotencyRecord,
            ) -> $crate::store::StoreResult<()> {
                sqlx::query(
                    "INSERT INTO idempotency_keys (principal, request_id, method, request_hash, \
                     response, create_time) VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .bind(&r.principal)
                .bind(&r.request_id)
                .bind(&r.method)
                .bind(&r.request_hash)
                .bind(&r.response)
                .bind(r.create_time)
                .execute(&mut *self.conn)
                .await
                .map_err(|e| {
                    $crate::store::StoreError::unique_as(e, $crate::store::UniqueKey::IdempotencyKey)
                })?;
                Ok(())
            }

            async fn purge_idempotency(
                &mut self,
                before: chrono::DateTime<chrono::Utc>,
            ) -> $crate::store::StoreResult<u64> {
                let done = sqlx::query("DELETE FROM idempotency_keys WHERE create_time < $1")
                    .bind(before)
                    .execute(&mut *self.conn)
                    .await?;
                Ok(done.rows_affected())
            }
        }
    };
}
