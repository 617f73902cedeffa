//! Shared SQL of [`crate::store::InvitationRepo`]. Expiry is judged in SQL at the caller's `now`
//! so that no read shows PENDING past `expire_time`, whether or not the sweeper ran.

macro_rules! impl_invitation_repo {
    ($session:ident, $conn:ty, $expired_sql:expr, $reminders_sql:expr) => {
        #[async_trait::async_trait]
        impl<C> $crate::store::InvitationRepo for $session<C>
        where
            C: std::ops::DerefMut<Target = $conn> + Send,
        {
            async fn insert_invitation(
                &mut self,
                inv: &$crate::domain::Invitation,
            ) -> $crate::store::StoreResult<()> {
                let guardian = inv.guardian.as_ref();
                sqlx::query(concat!(
                    "INSERT INTO invitations (",
                    invitation_columns!(),
                    ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20)"
                ))
                .bind(inv.id.to_text())
                .bind(inv.domain.as_str())
                .bind(inv.student_id.as_str())
                .bind(inv.invited_email.as_str())
                .bind(inv.state.name())
                .bind(inv.state.removal_reason().map(|r| r.as_str()))
                .bind(&inv.inviter_id)
                .bind(guardian.map(|g| g.guardian_id.as_str()))
                .bind(guardian.map(|g| g.email.as_str()))
                .bind(guardian.map(|g| g.display_name.as_str()))
                .bind(&inv.token_hash)
                .bind(inv.create_time)
                .bind(inv.update_time)
                .bind(inv.expire_time)
                .bind(inv.accept_time)
                .bind(inv.version)
                .bind(inv.source.name())
                .bind(inv.remind_time)
                .bind(inv.reminder_token_hash.as_deref())
                .bind(inv.family_id.as_deref())
                .execute(&mut *self.conn)
                .await
                .map_err(|e| $crate::store::error::invitation_unique(e, inv))?;
                Ok(())
            }

            async fn get_invitation(
                &mut self,
                id: $crate::domain::InvitationId,
            ) -> $crate::store::StoreResult<Option<$crate::domain::Invitation>> {
                let row: Option<$crate::store::rows::InvitationRow> = sqlx::query_as(concat!(
                    "SELECT ",
                    invitation_columns!(),
                    " FROM invitations WHERE invitation_id = $1"
                ))
                .bind(id.to_text())
                .fetch_optional(&mut *self.conn)
                .await?;
                row.map(TryInto::try_into).transpose()
            }

            async fn get_invitation_by_token_hash(
                &mut self,
                token_hash: &str,
            ) -> $crate::store::StoreResult<Option<$crate::domain::Invitation>> {
                let row: Option<$crate::store::rows::InvitationRow> = sqlx::query_as(concat!(
                    "SELECT ",
                    invitation_columns!(),
                    " FROM invitations WHERE token_hash = $1 OR reminder_token_hash = $1"
                ))
                .bind(token_hash)
                .fetch_optional(&mut *self.conn)
                .await?;
                row.map(TryInto::try_into).transpose()
            }

            async fn update_invitation(
                &mut self,
                next: &$crate::domain::Invitation,
                expected_version: i64,
            ) -> $crate::store::StoreResult<$crate::domain::Invitation> {
                let guardian = next.guardian.as_ref();
                let row: Option<$crate::store::rows::InvitationRow> = sqlx::query_as(concat!(
                    "UPDATE invitations SET state = $2, removal_reason = $3, guardian_id = $4, \
                     guardian_email = $5, guardian_display_name = $6, token_hash = $7, \
                     update_time = $8, expire_time = $9, accept_time = $10, \
                     remind_time = $12, reminder_token_hash = $13, \
                     version = version + 1 WHERE invitation_id = $1 AND version = $11 RETURNING ",
                    invitation_columns!()
                ))
                .bind(next.id.to_text())
                .bind(next.state.name())
                .bind(next.state.removal_reason().map(|r| r.as_str()))
                .bind(guardian.map(|g| g.guardian_id.as_str()))
                .bind(guardian.map(|g| g.email.as_str()))
                .bind(guardian.map(|g| g.display_name.as_str()))
                .bind(&next.token_hash)
                .bind(next.update_time)
                .bind(next.expire_time)
                .bind(next.accept_time)
                .bind(expected_version)
                .bind(next.remind_time)
                .bind(next.reminder_token_hash.as_deref())
                .fetch_optional(&mut *self.conn)
                .await
                .map_err(|e| $crate::store::error::invitation_unique(e, next))?;
                row.ok_or($crate::store::StoreError::Conflict)?.try_into()
            }

            async fn list_invitations(
                &mut self,
                filter: &$crate::store::InvitationFilter,
            ) -> $crate::store::StoreResult<Vec<$crate::domain::Invitation>> {
                use $crate::store::InvitationScope;
                // One statement per scope so that each uses its own index.
                macro_rules! by {
                    ($scope:literal) => {
                        concat!(
                            "SELECT ",
                            invitation_columns!(),
                            " FROM invitations WHERE ",
                            $scope,
                            " AND invitation_id > $2 \
                             AND (($3 AND state = 'PENDING' AND expire_time > $4) \
                               OR ($5 AND state = 'ACCEPTED') \
                               OR ($6 AND (state = 'EXPIRED' OR (state = 'PENDING' AND expire_time <= $4))) \
                               OR ($7 AND state = 'REMOVED')) \
                             AND ($8 IS NULL OR invited_email = $8) \
                             ORDER BY invitation_id LIMIT $9"
                        )
                    };
                }
                let (sql, key) = match &filter.scope {
                    InvitationScope::Student(id) => (by!("student_id = $1"), id.as_str()),
                    InvitationScope::Domain(domain) => (by!("domain = $1"), domain.as_str()),
                    InvitationScope::Address(email) => (by!("invited_email = $1"), email.as_str()),
                    // "$1 = $1" holds for any key: the statement keeps its parameters.
                    InvitationScope::All => (by!("$1 = $1"), "all"),
                };
                let rows: Vec<$crate::store::rows::InvitationRow> = sqlx::query_as(sql)
                    .bind(key)
                    .bind(filter.after.map(|a| a.to_text()).unwrap_or_default())
                    .bind(filter.states.pending)
                    .bind(filter.now)
                    .bind(filter.states.accepted)
                    .bind(filter.states.expired)
                    .bind(filter.states.removed)
                    .bind(filter.invited_email.as_ref().map(|e| e.as_str()))
                    .bind(i64::from(filter.limit))
                    .fetch_all(&mut *self.conn)
                    .await?;
                $crate::store::rows::convert_all(rows)
            }

            async fn list_links(
                &mut self,
                filter: &$crate::store::LinkFilter,
            ) -> $crate::store::StoreResult<Vec<$crate::domain::Invitation>> {
                use $crate::store::LinkScope;
                macro_rules! by {
                    ($scope:literal) => {
                        concat!(
                            "SELECT ",
                            invitation_columns!(),
                            " FROM invitations WHERE ",
                            $scope,
                            " AND state = 'ACCEPTED' AND invitation_id > $2 \
                             AND ($3 IS NULL OR invited_email = $3) \
                             AND ($5 IS NULL OR domain = $5) \
                             ORDER BY invitation_id LIMIT $4"
                        )
                    };
                }
                let (sql, key) = match &filter.scope {
                    LinkScope::Student(id) => (by!("student_id = $1"), id.as_str()),
                    LinkScope::Domain(domain) => (by!("domain = $1"), domain.as_str()),
                    LinkScope::Guardian(id) => (by!("guardian_id = $1"), id.as_str()),
                    LinkScope::All => (by!("$1 = $1"), "all"),
                };
                let rows: Vec<$crate::store::rows::InvitationRow> = sqlx::query_as(sql)
                    .bind(key)
                    .bind(filter.after.map(|a| a.to_text()).unwrap_or_default())
                    .bind(filter.invited_email.as_ref().map(|e| e.as_str()))
                    .bind(i64::from(filter.limit))
                    .bind(filter.domain.as_ref().map(|d| d.as_str()))
                    .fetch_all(&mut *self.conn)
                    .await?;
                $crate::store::rows::convert_all(rows)
            }

            async fn is_linked_by_id(
                &mut self,
                student: &$crate::domain::UserId,
                guardian: &$crate::domain::UserId,
            ) -> $crate::store::StoreResult<bool> {
                let hit: Option<i32> = sqlx::query_scalar(
                    "SELECT 1 FROM invitations WHERE student_id = $1 AND guardian_id = $2 \
                     AND state = 'ACCEPTED'",
                )
                .bind(student.as_str())
                .bind(guardian.as_str())
                .fetch_optional(&mut *self.conn)
                .await?;
                Ok(hit.is_some())
            }

            async fn is_linked_by_email(
                &mut self,
                student: &$crate::domain::UserId,
                email: &$crate::domain::Email,
            ) -> $crate::store::StoreResult<bool> {
                let hit: Option<i32> = sqlx::query_scalar(
                    "SELECT 1 FROM invitations WHERE student_id = $1 AND state = 'ACCEPTED' \
                     AND (guardian_email = $2 OR invited_email = $2) LIMIT 1",
                )
                .bind(student.as_str())
                .bind(email.as_str())
                .fetch_optional(&mut *self.conn)
                .await?;
                Ok(hit.is_some())
            }

            async fn count_active_for_student(
                &mut self,
                student: &$crate::domain::UserId,
                now: chrono::DateTime<chrono::Utc>,
            ) -> $crate::store::StoreResult<i64> {
                let count: i64 = sqlx::query_scalar(
                    "SELECT COUNT(*) FROM invitations WHERE student_id = $1 \
                     AND (state = 'ACCEPTED' OR (state = 'PENDING' AND expire_time > $2))",
                )
                .bind(student.as_str())
                .bind(now)
                .fetch_one(&mut *self.conn)
                .await?;
                Ok(count)
            }

            async fn count_students_for_address(
                &mut self,
                email: &$crate::domain::Email,
                now: chrono::DateTime<chrono::Utc>,
            ) -> $crate::store::StoreResult<i64> {
                // Two index lookups (invited address; accepted profile address) rather than
                // an OR across columns, which no index serves.
                let count: i64 = sqlx::query_scalar(
                    "SELECT COUNT(DISTINCT student_id) FROM ( \
                       SELECT student_id FROM invitations WHERE invited_email = $1 \
                       AND (state = 'ACCEPTED' OR (state = 'PENDING' AND expire_time > $2)) \
                       UNION ALL \
                       SELECT student_id FROM invitations WHERE guardian_email = $1 \
                       AND state = 'ACCEPTED') AS students",
                )
                .bind(email.as_str())
                .bind(now)
                .fetch_one(&mut *self.conn)
                .await?;
                Ok(count)
            }

            async fn count_domain_links(
                &mut self,
                domain: &$crate::domain::DomainName,
            ) -> $crate::store::StoreResult<i64> {
                let count: i64 = sqlx::query_scalar(
                    "SELECT COUNT(*) FROM invitations WHERE domain = $1 AND state = 'ACCEPTED'",
                )
                .bind(domain.as_str())
                .fetch_one(&mut *self.conn)
                .await?;
                Ok(count)
            }

            async fn count_declines(
                &mut self,
                student: &$crate::domain::UserId,
                email: &$crate::domain::Email,
            ) -> $crate::store::StoreResult<i64> {
                let count: i64 = sqlx::query_scalar(
                    "SELECT COUNT(*) FROM invitations WHERE student_id = $1 \
                     AND invited_email = $2 AND state = 'REMOVED' AND removal_reason = 'DECLINED'",
                )
                .bind(student.as_str())
                .bind(email.as_str())
                .fetch_one(&mut *self.conn)
                .await?;
                Ok(count)
            }

            async fn find_link(
                &mut self,
                student: &$crate::domain::UserId,
                guardian: &$crate::domain::UserId,
            ) -> $crate::store::StoreResult<Option<$crate::domain::Invitation>> {
                let row: Option<$crate::store::rows::InvitationRow> = sqlx::query_as(concat!(
                    "SELECT ",
                    invitation_columns!(),
                    " FROM invitations WHERE student_id = $1 AND guardian_id = $2 \
                     AND state = 'ACCEPTED'"
                ))
                .bind(student.as_str())
                .bind(guardian.as_str())
                .fetch_optional(&mut *self.conn)
                .await?;
                row.map(TryInto::try_into).transpose()
            }

            async fn check_guardianship(
                &mut self,
                student: &$crate::domain::UserId,
                guardian: &$crate::store::GuardianKey,
            ) -> $crate::store::StoreResult<Option<($crate::domain::DomainName, bool)>> {
                use $crate::store::GuardianKey;
                // One round trip, two index lookups: the student's row and the link.
                let row: Option<(String, i64)> = match guardian {
                    GuardianKey::Id(id) => sqlx::query_as(
                        "SELECT u.domain, (SELECT COUNT(*) FROM invitations i \
                           WHERE i.student_id = u.user_id AND i.guardian_id = $2 \
                           AND i.state = 'ACCEPTED') FROM users u WHERE u.user_id = $1",
                    )
                    .bind(student.as_str())
                    .bind(id.as_str()),
                    GuardianKey::Email(email) => sqlx::query_as(
                        "SELECT u.domain, (SELECT COUNT(*) FROM invitations i \
                           WHERE i.student_id = u.user_id AND i.state = 'ACCEPTED' \
                           AND (i.guardian_email = $2 OR i.invited_email = $2)) \
                         FROM users u WHERE u.user_id = $1",
                    )
                    .bind(student.as_str())
                    .bind(email.as_str()),
                }
                .fetch_optional(&mut *self.conn)
                .await?;
                Ok(row.map(|(domain, links)| {
                    ($crate::domain::DomainName::from_trusted(domain), links > 0)
                }))
            }

            async fn student_links(
                &mut self,
                students: &[$crate::domain::UserId],
            ) -> $crate::store::StoreResult<Vec<$crate::store::StudentLinks>> {
                if students.is_empty() {
                    return Ok(Vec::new());
                }
                use sqlx::Row as _;
                // One statement: each student's row with their links beside it (none: one row
                // of NULLs), the user's and the link's columns under their own prefixes. The
                // domain's stored access switch rides along, for reads that may not use the
                // settings cache.
                let mut query = sqlx::QueryBuilder::<<$conn as sqlx::Connection>::Database>::new(
                    concat!(
                        "SELECT u.user_id AS u_user_id, u.domain AS u_domain, u.email AS u_email, \
                         u.role AS u_role, u.verified_teacher AS u_verified_teacher, \
                         u.display_name AS u_display_name, u.locale AS u_locale, \
                         s.guardian_access_enabled AS stored_access, ",
                        link_columns!(),
                        " FROM users u \
                         LEFT JOIN invitations i ON i.student_id = u.user_id \
                         AND i.state = 'ACCEPTED' \
                         LEFT JOIN domain_settings s ON s.domain = u.domain \
                         WHERE u.user_id IN ("
                    ),
                );
                in_list!(query, students);
                query.push(" ORDER BY u.user_id, i.invitation_id");
                let rows = query.build().fetch_all(&mut *self.conn).await?;
                let mut out: Vec<$crate::store::StudentLinks> = Vec::new();
                for row in &rows {
                    let id: &str = row.try_get("u_user_id")?;
                    if out.last().is_none_or(|l| l.student.user_id.as_str() != id) {
                        let user: $crate::domain::User =
                            <$crate::store::rows::PrefixedUserRow as sqlx::FromRow<'_, _>>::from_row(row)?
                                .try_into()?;
                        out.push($crate::store::StudentLinks {
                            student: user,
                            links: Vec::new(),
                            stored_access: row.try_get("stored_access")?,
                        });
                    }
                    let last = out.last_mut().expect("pushed above");
                    let link = <$crate::store::rows::LinkRow as sqlx::FromRow<'_, _>>::from_row(row)?
                        .into_link()?;
                    last.links.extend(link);
                }
                Ok(out)
            }

            async fn count_live_invitations(&mut self) -> $crate::store::StoreResult<(i64, i64)> {
                let pending: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM invitations WHERE state = 'PENDING'")
                    .fetch_one(&mut *self.conn)
                    .await?;
                let accepted: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM invitations WHERE state = 'ACCEPTED'")
                    .fetch_one(&mut *self.conn)
                    .await?;
                Ok((pending, accepted))
            }

            async fn claim_expired_pending(
                &mut self,
                now: chrono::DateTime<chrono::Utc>,
                limit: u32,
            ) -> $crate::store::StoreResult<Vec<$crate::domain::Invitation>> {
                let rows: Vec<$crate::store::rows::InvitationRow> = sqlx::query_as($expired_sql)
                    .bind(now)
                    .bind(i64::from(limit))
                    .fetch_all(&mut *self.conn)
                    .await?;
                $crate::store::rows::convert_all(rows)
            }

            async fn claim_due_reminders(
                &mut self,
                now: chrono::DateTime<chrono::Utc>,
                limit: u32,
            ) -> $crate::store::StoreResult<Vec<$crate::domain::Invitation>> {
                let rows: Vec<$crate::store::rows::InvitationRow> = sqlx::query_as($reminders_sql)
                    .bind(now)
                    .bind(i64::from(limit))
                    .fetch_all(&mut *self.conn)
                    .await?;
                $crate::store::rows::convert_all(rows)
            }

            async fn mark_reminded(
                &mut self,
                reminders: &[($crate::domain::InvitationId, Option<String>)],
                now: chrono::DateTime<chrono::Utc>,
            ) -> $crate::store::StoreResult<Vec<$crate::domain::Invitation>> {
                if reminders.is_empty() {
                    return Ok(Vec::new());
                }
                // The due condition again, under the rows' locks: of two replicas (or a sweep
                // and a resend) exactly one finds each still due.
                let mut query = sqlx::QueryBuilder::<<$conn as sqlx::Connection>::Database>::new(
                    "WITH sent (invitation_id, token_hash) AS (",
                );
                query.push_values(reminders, |mut row, (id, hash)| {
                    row.push_bind(id.to_text()).push_bind(hash.clone());
                });
                query.push(
                    ") UPDATE invitations SET remind_time = NULL, reminder_token_hash = \
                     (SELECT s.token_hash FROM sent s WHERE s.invitation_id = \
                     invitations.invitation_id) WHERE invitation_id IN (SELECT invitation_id \
                     FROM sent) AND state = 'PENDING' AND remind_time <= ",
                );
                query.push_bind(now);
                query.push(" AND expire_time > ");
                query.push_bind(now);
                query.push(concat!(" RETURNING ", invitation_columns!()));
                let rows: Vec<$crate::store::rows::InvitationRow> =
                    query.build_query_as().fetch_all(&mut *self.conn).await?;
                $crate::store::rows::convert_all(rows)
            }
        }
    };
}
