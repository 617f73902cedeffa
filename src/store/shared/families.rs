//! Shared SQL of [`crate::store::FamilyRepo`].

/// The columns of a family row, in [`crate::store::rows::FamilyRow`]'s order.
macro_rules! family_columns {
    () => {
        "family_id, domain, invited_email, inviter_id, open_until, create_time, sent_time"
    };
}

macro_rules! impl_family_repo {
    ($session:ident, $conn:ty, $families_sql:expr) => {
        #[async_trait::async_trait]
        impl<C> $crate::store::FamilyRepo for $session<C>
        where
            C: std::ops::DerefMut<Target = $conn> + Send,
        {
            async fn open_families(
                &mut self,
                emails: &[$crate::domain::Email],
                now: chrono::DateTime<chrono::Utc>,
            ) -> $crate::store::StoreResult<Vec<$crate::domain::Family>> {
                if emails.is_empty() {
                    return Ok(Vec::new());
                }
                let mut query =
                    sqlx::QueryBuilder::<<$conn as sqlx::Connection>::Database>::new(concat!(
                        "SELECT ",
                        family_columns!(),
                        " FROM invitation_families WHERE sent_time IS NULL AND open_until > "
                    ));
                query.push_bind(now);
                query.push(" AND invited_email IN (");
                let mut list = query.separated(", ");
                for email in emails {
                    list.push_bind(email.as_str());
                }
                query.push(")");
                let rows: Vec<$crate::store::rows::FamilyRow> =
                    query.build_query_as().fetch_all(&mut *self.conn).await?;
                $crate::store::rows::convert_all(rows)
            }

            async fn insert_families(
                &mut self,
                families: &[$crate::domain::Family],
            ) -> $crate::store::StoreResult<()> {
                if families.is_empty() {
                    return Ok(());
                }
                let mut query = sqlx::QueryBuilder::<<$conn as sqlx::Connection>::Database>::new(
                    concat!("INSERT INTO invitation_families (", family_columns!(), ") "),
                );
                query.push_values(families, |mut row, f| {
                    row.push_bind(&f.id)
                        .push_bind(f.domain.as_str())
                        .push_bind(f.invited_email.as_str())
                        .push_bind(&f.inviter_id)
                        .push_bind(f.open_until)
                        .push_bind(f.create_time)
                        .push_bind(f.sent_time);
                });
                query.build().execute(&mut *self.conn).await?;
                Ok(())
            }

            async fn claim_due_families(
                &mut self,
                now: chrono::DateTime<chrono::Utc>,
                limit: u32,
            ) -> $crate::store::StoreResult<Vec<$crate::domain::Family>> {
                let rows: Vec<$crate::store::rows::FamilyRow> = sqlx::query_as($families_sql)
                    .bind(now)
                    .bind(i64::from(limit))
                    .fetch_all(&mut *self.conn)
                    .await?;
                $crate::store::rows::convert_all(rows)
            }

            async fn mark_family_sent(
                &mut self,
                family_id: &str,
                now: chrono::DateTime<chrono::Utc>,
                token_hash: Option<&str>,
            ) -> $crate::store::StoreResult<bool> {
                let done = sqlx::query(
                    "UPDATE invitation_families SET sent_time = $2, token_hash = $3 \
                     WHERE family_id = $1 AND sent_time IS NULL",
                )
                .bind(family_id)
                .bind(now)
                .bind(token_hash)
                .execute(&mut *self.conn)
                .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn family_by_token_hash(
                &mut self,
                token_hash: &str,
            ) -> $crate::store::StoreResult<Option<$crate::domain::Family>> {
                let row: Option<$crate::store::rows::FamilyRow> = sqlx::query_as(concat!(
                    "SELECT ",
                    family_columns!(),
                    " FROM invitation_families WHERE token_hash = $1"
                ))
                .bind(token_hash)
                .fetch_optional(&mut *self.conn)
                .await?;
                row.map(TryInto::try_into).transpose()
            }

            async fn family_invitations(
                &mut self,
                family_id: &str,
            ) -> $crate::store::StoreResult<Vec<$crate::domain::Invitation>> {
                let rows: Vec<$crate::store::rows::InvitationRow> = sqlx::query_as(concat!(
                    "SELECT ",
                    invitation_columns!(),
                    " FROM invitations WHERE family_id = $1 ORDER BY create_time, invitation_id"
                ))
                .bind(family_id)
                .fetch_all(&mut *self.conn)
                .await?;
                $crate::store::rows::convert_all(rows)
            }

            async fn replace_token_hash(
                &mut self,
                id: $crate::domain::InvitationId,
                token_hash: &str,
            ) -> $crate::store::StoreResult<()> {
                sqlx::query("UPDATE invitations SET token_hash = $2 WHERE invitation_id = $1")
                    .bind(id.to_text())
                    .bind(token_hash)
                    .execute(&mut *self.conn)
                    .await?;
                Ok(())
            }
        }
    };
}
