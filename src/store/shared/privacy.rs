//! Shared SQL of [`crate::store::PrivacyRepo`]: one person's records by one key at a time, and
//! the statements that erase what is kept about them beside their invitations.

macro_rules! impl_privacy_repo {
    ($session:ident, $conn:ty) => {
        #[async_trait::async_trait]
        impl<C> $crate::store::PrivacyRepo for $session<C>
        where
            C: std::ops::DerefMut<Target = $conn> + Send,
        {
            async fn invitations_of_guardian(
                &mut self,
                guardian: &$crate::domain::UserId,
            ) -> $crate::store::StoreResult<Vec<$crate::domain::Invitation>> {
                let rows: Vec<$crate::store::rows::InvitationRow> = sqlx::query_as(concat!(
                    "SELECT ",
                    invitation_columns!(),
                    " FROM invitations WHERE guardian_id = $1 ORDER BY invitation_id"
                ))
                .bind(guardian.as_str())
                .fetch_all(&mut *self.conn)
                .await?;
                $crate::store::rows::convert_all(rows)
            }

            async fn invitations_of_address(
                &mut self,
                email: &$crate::domain::Email,
            ) -> $crate::store::StoreResult<Vec<$crate::domain::Invitation>> {
                let rows: Vec<$crate::store::rows::InvitationRow> = sqlx::query_as(concat!(
                    "SELECT ",
                    invitation_columns!(),
                    " FROM invitations WHERE invited_email = $1 UNION SELECT ",
                    invitation_columns!(),
                    " FROM invitations WHERE guardian_email = $1 ORDER BY invitation_id"
                ))
                .bind(email.as_str())
                .fetch_all(&mut *self.conn)
                .await?;
                $crate::store::rows::convert_all(rows)
            }

            async fn invitations_of_student(
                &mut self,
                student: &$crate::domain::UserId,
            ) -> $crate::store::StoreResult<Vec<$crate::domain::Invitation>> {
                let rows: Vec<$crate::store::rows::InvitationRow> = sqlx::query_as(concat!(
                    "SELECT ",
                    invitation_columns!(),
                    " FROM invitations WHERE student_id = $1 ORDER BY invitation_id"
                ))
                .bind(student.as_str())
                .fetch_all(&mut *self.conn)
                .await?;
                $crate::store::rows::convert_all(rows)
            }

            async fn events_of_invitation(
                &mut self,
                invitation: &$crate::domain::Invitation,
            ) -> $crate::store::StoreResult<Vec<$crate::domain::AuditEvent>> {
                // Through the (domain, student) index: events have no index of their own by
                // invitation, and a student has few.
                let rows: Vec<$crate::store::rows::EventRow> = sqlx::query_as(
                    "SELECT * FROM guardian_events WHERE domain = $1 AND student_id = $2 \
                     AND invitation_id = $3 ORDER BY event_id",
                )
                .bind(invitation.domain.as_str())
                .bind(invitation.student_id.as_str())
                .bind(invitation.id.to_text())
                .fetch_all(&mut *self.conn)
                .await?;
                $crate::store::rows::convert_all(rows)
            }

            async fn events_of_student(
                &mut self,
                domain: &$crate::domain::DomainName,
                student: &$crate::domain::UserId,
            ) -> $crate::store::StoreResult<Vec<$crate::domain::AuditEvent>> {
                let rows: Vec<$crate::store::rows::EventRow> = sqlx::query_as(
                    "SELECT * FROM guardian_events WHERE domain = $1 AND student_id = $2 \
                     ORDER BY event_id",
                )
                .bind(domain.as_str())
                .bind(student.as_str())
                .fetch_all(&mut *self.conn)
                .await?;
                $crate::store::rows::convert_all(rows)
            }

            async fn messages_of(
                &mut self,
                invitations: &[$crate::domain::InvitationId],
                families: &[String],
                message_ids: &[String],
            ) -> $crate::store::StoreResult<Vec<$crate::domain::OutboxMessage>> {
                let mut rows: Vec<$crate::store::rows::OutboxRow> = Vec::new();
                for id in invitations {
                    rows.extend(
                        sqlx::query_as("SELECT * FROM outbox WHERE invitation_id = $1")
                            .bind(id.to_text())
                            .fetch_all(&mut *self.conn)
                            .await?,
                    );
                }
                for family in families {
                    rows.extend(
                        sqlx::query_as("SELECT * FROM outbox WHERE family_id = $1")
                            .bind(family)
                            .fetch_all(&mut *self.conn)
                            .await?,
                    );
                }
                for id in message_ids {
                    rows.extend(
                        sqlx::query_as("SELECT * FROM outbox WHERE message_id = $1")
                            .bind(id)
                            .fetch_all(&mut *self.conn)
                            .await?,
                    );
                }
                let mut messages: Vec<$crate::domain::OutboxMessage> =
                    $crate::store::rows::convert_all(rows)?;
                messages.sort_by(|a, b| {
                    (a.create_time, &a.message_id).cmp(&(b.create_time, &b.message_id))
                });
                messages.dedup_by(|a, b| a.message_id == b.message_id);
                Ok(messages)
            }

            async fn summary_deliveries_of(
                &mut self,
                guardian: &$crate::domain::UserId,
            ) -> $crate::store::StoreResult<Vec<$crate::domain::summary::SummaryDelivery>> {
                let rows: Vec<$crate::store::rows::DeliveryRow> = sqlx::query_as(
                    "SELECT d.*, o.status AS message_status FROM summary_deliveries d \
                     LEFT JOIN outbox o ON o.message_id = d.message_id \
                     WHERE d.guardian_id = $1 ORDER BY d.period_key",
                )
                .bind(guardian.as_str())
                .fetch_all(&mut *self.conn)
                .await?;
                $crate::store::rows::convert_all(rows)
            }

            async fn replace_event_actor(
                &mut self,
                invitation: &$crate::domain::Invitation,
                actor: &str,
                stand_in: &str,
            ) -> $crate::store::StoreResult<()> {
                sqlx::query(
                    "UPDATE guardian_events SET actor_id = $5 WHERE domain = $1 \
                     AND student_id = $2 AND invitation_id = $3 AND actor_id = $4",
                )
                .bind(invitation.domain.as_str())
                .bind(invitation.student_id.as_str())
                .bind(invitation.id.to_text())
                .bind(actor)
                .bind(stand_in)
                .execute(&mut *self.conn)
                .await?;
                Ok(())
            }

            async fn erase_message(
                &mut self,
                message_id: &str,
                stand_in: Option<&$crate::domain::Email>,
            ) -> $crate::store::StoreResult<bool> {
                let cancelled = sqlx::query(
                    "UPDATE outbox SET status = 'FAILED', \
                     last_error = 'cancelled: the recipient''s data was erased' \
                     WHERE message_id = $1 AND status = 'QUEUED'",
                )
                .bind(message_id)
                .execute(&mut *self.conn)
                .await?
                .rows_affected();
                sqlx::query(
                    "UPDATE outbox SET recipient = COALESCE($2, recipient), subject = '', \
                     body_text = '', body_html = '', \
                     list_unsubscribe = NULL, last_error = CASE WHEN last_error LIKE \
                     'cancelled:%' THEN last_error ELSE NULL END WHERE message_id = $1",
                )
                .bind(message_id)
                .bind(stand_in.map(|s| s.as_str()))
                .execute(&mut *self.conn)
                .await?;
                Ok(cancelled > 0)
            }

            async fn erase_address(
                &mut self,
                email: &$crate::domain::Email,
                stand_in: &$crate::domain::Email,
            ) -> $crate::store::StoreResult<()> {
                sqlx::query(
                    "UPDATE invitation_families SET invited_email = $2 WHERE invited_email = $1",
                )
                .bind(email.as_str())
                .bind(stand_in.as_str())
                .execute(&mut *self.conn)
                .await?;
                sqlx::query("DELETE FROM guardian_addresses WHERE email = $1")
                    .bind(email.as_str())
                    .execute(&mut *self.conn)
                    .await?;
                Ok(())
            }

            async fn erase_guardian_account(
                &mut self,
                guardian: &$crate::domain::UserId,
                stand_in: &$crate::domain::UserId,
                principal: &str,
            ) -> $crate::store::StoreResult<()> {
                sqlx::query("DELETE FROM summary_preferences WHERE guardian_id = $1")
                    .bind(guardian.as_str())
                    .execute(&mut *self.conn)
                    .await?;
                sqlx::query(
                    "UPDATE summary_deliveries SET guardian_id = $2 WHERE guardian_id = $1",
                )
                .bind(guardian.as_str())
                .bind(stand_in.as_str())
                .execute(&mut *self.conn)
                .await?;
                sqlx::query("DELETE FROM idempotency_keys WHERE principal = $1")
                    .bind(principal)
                    .execute(&mut *self.conn)
                    .await?;
                Ok(())
            }

            async fn delete_submissions_of(
                &mut self,
                student: &$crate::domain::UserId,
            ) -> $crate::store::StoreResult<u64> {
                let done = sqlx::query("DELETE FROM submissions WHERE student_id = $1")
                    .bind(student.as_str())
                    .execute(&mut *self.conn)
                    .await?;
                Ok(done.rows_affected())
            }
        }
    };
}
