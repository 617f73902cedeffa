//! Shared SQL of [`crate::store::BulkRepo`]: `IN` lists and multi-row `VALUES`, which both
//! backends read the same way (but for the stored responses: each backend's session has its own
//! `idempotency_records`). Callers keep a chunk small enough for either backend's limit
//! on bound parameters (16 per invitation row: 500 rows are 8,000).

macro_rules! impl_bulk_repo {
    ($session:ident, $conn:ty) => {
        #[async_trait::async_trait]
        impl<C> $crate::store::BulkRepo for $session<C>
        where
            C: std::ops::DerefMut<Target = $conn> + Send,
        {
            async fn users_by_email(
                &mut self,
                emails: &[$crate::domain::Email],
            ) -> $crate::store::StoreResult<Vec<$crate::domain::User>> {
                if emails.is_empty() {
                    return Ok(Vec::new());
                }
                let mut query = sqlx::QueryBuilder::<<$conn as sqlx::Connection>::Database>::new(
                    "SELECT * FROM users WHERE email IN (",
                );
                in_list!(query, emails);
                let rows: Vec<$crate::store::rows::UserRow> =
                    query.build_query_as().fetch_all(&mut *self.conn).await?;
                $crate::store::rows::convert_all(rows)
            }

            async fn invitations_of_students(
                &mut self,
                students: &[$crate::domain::UserId],
            ) -> $crate::store::StoreResult<Vec<$crate::domain::Invitation>> {
                if students.is_empty() {
                    return Ok(Vec::new());
                }
                let mut query =
                    sqlx::QueryBuilder::<<$conn as sqlx::Connection>::Database>::new(concat!(
                        "SELECT ",
                        invitation_columns!(),
                        " FROM invitations WHERE student_id IN ("
                    ));
                in_list!(query, students);
                query.push(" ORDER BY student_id, invitation_id");
                let rows: Vec<$crate::store::rows::InvitationRow> =
                    query.build_query_as().fetch_all(&mut *self.conn).await?;
                $crate::store::rows::convert_all(rows)
            }

            async fn pending_sent_before(
                &mut self,
                domain: &$crate::domain::DomainName,
                before: chrono::DateTime<chrono::Utc>,
                now: chrono::DateTime<chrono::Utc>,
                limit: u32,
            ) -> $crate::store::StoreResult<Vec<$crate::domain::Invitation>> {
                // The PENDING partial index on expire_time narrows to live invitations; a
                // domain's waiting invitations are few next to its links.
                let rows: Vec<$crate::store::rows::InvitationRow> = sqlx::query_as(concat!(
                    "SELECT ",
                    invitation_columns!(),
                    " FROM invitations WHERE state = 'PENDING' AND expire_time > $1 \
                     AND domain = $2 AND update_time < $3 \
                     ORDER BY update_time, invitation_id LIMIT $4"
                ))
                .bind(now)
                .bind(domain.as_str())
                .bind(before)
                .bind(i64::from(limit))
                .fetch_all(&mut *self.conn)
                .await?;
                $crate::store::rows::convert_all(rows)
            }

            async fn guardian_locales(
                &mut self,
                emails: &[$crate::domain::Email],
            ) -> $crate::store::StoreResult<Vec<($crate::domain::Email, $crate::domain::Locale)>>
            {
                if emails.is_empty() {
                    return Ok(Vec::new());
                }
                // One index per address column (as count_students_for_address), no OR.
                let mut query = sqlx::QueryBuilder::<<$conn as sqlx::Connection>::Database>::new(
                    "SELECT i.guardian_email AS email, p.locale FROM invitations i \
                     JOIN summary_preferences p ON p.guardian_id = i.guardian_id \
                     WHERE i.state = 'ACCEPTED' AND p.locale IS NOT NULL \
                     AND i.guardian_email IN (",
                );
                in_list!(query, emails);
                query.push(
                    " UNION SELECT i.invited_email AS email, p.locale FROM invitations i \
                     JOIN summary_preferences p ON p.guardian_id = i.guardian_id \
                     WHERE i.state = 'ACCEPTED' AND p.locale IS NOT NULL \
                     AND i.invited_email IN (",
                );
                in_list!(query, emails);
                let rows: Vec<(String, String)> =
                    query.build_query_as().fetch_all(&mut *self.conn).await?;
                rows.into_iter()
                    .map(|(email, locale)| {
                        Ok((
                            $crate::store::rows::email(&email)?,
                            $crate::domain::Locale::parse(&locale).map_err(|_| {
                                $crate::store::StoreError::Corrupt("unreadable locale".into())
                            })?,
                        ))
                    })
                    .collect()
            }

            async fn students_of_addresses(
                &mut self,
                emails: &[$crate::domain::Email],
                now: chrono::DateTime<chrono::Utc>,
            ) -> $crate::store::StoreResult<Vec<($crate::domain::Email, $crate::domain::UserId)>>
            {
                if emails.is_empty() {
                    return Ok(Vec::new());
                }
                // As count_students_for_address: one index per address column, no OR.
                let mut query = sqlx::QueryBuilder::<<$conn as sqlx::Connection>::Database>::new(
                    "SELECT invited_email, student_id FROM invitations WHERE (state = 'ACCEPTED' \
                     OR (state = 'PENDING' AND expire_time > ",
                );
                query.push_bind(now);
                query.push(")) AND invited_email IN (");
                in_list!(query, emails);
                query.push(
                    " UNION SELECT guardian_email, student_id FROM invitations \
                     WHERE state = 'ACCEPTED' AND guardian_email IN (",
                );
                in_list!(query, emails);
                let rows: Vec<(String, String)> =
                    query.build_query_as().fetch_all(&mut *self.conn).await?;
                rows.into_iter()
                    .map(|(email, student)| {
                        Ok((
                            $crate::store::rows::email(&email)?,
                            $crate::domain::UserId::from_trusted(student),
                        ))
                    })
                    .collect()
            }

            async fn get_idempotency_many(
                &mut self,
                principal: &str,
                request_ids: &[String],
            ) -> $crate::store::StoreResult<Vec<$crate::domain::IdempotencyRecord>> {
                if request_ids.is_empty() {
                    return Ok(Vec::new());
                }
                // Each backend probes the primary key its own way (see `idempotency_records`).
                self.idempotency_records(principal, request_ids).await
            }

            async fn insert_invitations(
                &mut self,
                invitations: &[$crate::domain::Invitation],
            ) -> $crate::store::StoreResult<()> {
                if invitations.is_empty() {
                    return Ok(());
                }
                let mut query = sqlx::QueryBuilder::<<$conn as sqlx::Connection>::Database>::new(
                    concat!("INSERT INTO invitations (", invitation_columns!(), ") "),
                );
                query.push_values(invitations, |mut row, inv| {
                    let guardian = inv.guardian.as_ref();
                    row.push_bind(inv.id.to_text())
                        .push_bind(inv.domain.as_str())
                        .push_bind(inv.student_id.as_str())
                        .push_bind(inv.invited_email.as_str())
                        .push_bind(inv.state.name())
                        .push_bind(inv.state.removal_reason().map(|r| r.as_str()))
                        .push_bind(&inv.inviter_id)
                        .push_bind(guardian.map(|g| g.guardian_id.as_str()))
                        .push_bind(guardian.map(|g| g.email.as_str()))
                        .push_bind(guardian.map(|g| g.display_name.as_str()))
                        .push_bind(&inv.token_hash)
                        .push_bind(inv.create_time)
                        .push_bind(inv.update_time)
                        .push_bind(inv.expire_time)
                        .push_bind(inv.accept_time)
                        .push_bind(inv.version)
                        .push_bind(inv.source.name())
                        .push_bind(inv.remind_time)
                        .push_bind(inv.reminder_token_hash.as_deref())
                        .push_bind(inv.family_id.as_deref());
                });
                query.build().execute(&mut *self.conn).await.map_err(|e| {
                    $crate::store::StoreError::unique_as(
                        e,
                        $crate::store::UniqueKey::PendingInvitation,
                    )
                })?;
                Ok(())
            }

            async fn end_invitations(
                &mut self,
                ended: &[$crate::store::EndedInvitation],
            ) -> $crate::store::StoreResult<u64> {
                if ended.is_empty() {
                    return Ok(0);
                }
                // UPDATE ... FROM a VALUES list reads the same on both backends (SQLite 3.33 and
                // later); the list's columns are column1 to column5 on both.
                let mut query = sqlx::QueryBuilder::<<$conn as sqlx::Connection>::Database>::new(
                    "UPDATE invitations SET state = v.column2, removal_reason = v.column3, \
                     update_time = v.column4, version = version + 1 FROM (",
                );
                query.push_values(ended, |mut row, e| {
                    row.push_bind(e.id.to_text())
                        .push_bind(e.state.name())
                        .push_bind(e.state.removal_reason().map(|r| r.as_str()))
                        .push_bind(e.update_time)
                        .push_bind(e.expected_version);
                });
                query.push(
                    ") AS v WHERE invitations.invitation_id = v.column1 \
                     AND invitations.version = v.column5",
                );
                Ok(query
                    .build()
                    .execute(&mut *self.conn)
                    .await?
                    .rows_affected())
            }

            async fn append_events(
                &mut self,
                events: &[$crate::domain::AuditEvent],
            ) -> $crate::store::StoreResult<()> {
                if events.is_empty() {
                    return Ok(());
                }
                let mut query = sqlx::QueryBuilder::<<$conn as sqlx::Connection>::Database>::new(
                    "INSERT INTO guardian_events (domain, student_id, invitation_id, action, \
                     actor_id, request_id, create_time, details) ",
                );
                query.push_values(events, |mut row, e| {
                    row.push_bind(e.domain.as_str())
                        .push_bind(e.student_id.as_ref().map(|s| s.as_str()))
                        .push_bind(e.invitation_id.map(|i| i.to_text()))
                        .push_bind(&e.action)
                        .push_bind(&e.actor_id)
                        .push_bind(e.request_id.as_deref())
                        .push_bind(e.create_time)
                        .push_bind($crate::store::rows::details_text(&e.details));
                });
                // As append_event: on SQLite the revision is the id, set by a trigger after
                // RETURNING has seen the row.
                query.push(" RETURNING event_id, revision");
                let stored: Vec<(i64, i64)> =
                    query.build_query_as().fetch_all(&mut *self.conn).await?;
                let newest = stored
                    .into_iter()
                    .map(|(id, revision)| if revision == 0 { id } else { revision })
                    .max();
                self.feed_revision = self.feed_revision.max(newest);
                Ok(())
            }

            async fn put_idempotency_many(
                &mut self,
                records: &[$crate::domain::IdempotencyRecord],
            ) -> $crate::store::StoreResult<()> {
                if records.is_empty() {
                    return Ok(());
                }
                let mut query = sqlx::QueryBuilder::<<$conn as sqlx::Connection>::Database>::new(
                    "INSERT INTO idempotency_keys (principal, request_id, method, request_hash, \
                     response, create_time) ",
                );
                query.push_values(records, |mut row, r| {
                    row.push_bind(&r.principal)
                        .push_bind(&r.request_id)
                        .push_bind(&r.method)
                        .push_bind(&r.request_hash)
                        .push_bind(&r.response)
                        .push_bind(r.create_time);
                });
                query.build().execute(&mut *self.conn).await.map_err(|e| {
                    $crate::store::StoreError::unique_as(
                        e,
                        $crate::store::UniqueKey::IdempotencyKey,
                    )
                })?;
                Ok(())
            }
        }
    };
}
