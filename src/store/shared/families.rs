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
                        " FROM invitation_families WHERE invited_email IN ("
                    ));
                let mut list = query.separated(", ");
                for email in emails {
                    list.push_bind(email.as_str());
                }
                query.push(")");
                // Whether a family is open is judged here, not in SQL: the address index alone
                // can answer the query, whatever the planner thinks of a table a bulk import is
                // filling (an address has few families, sent ones included).
                let rows: Vec<$crate::store::rows::FamilyRow> =
                    query.build_query_as().fetch_all(&mut *self.conn).await?;
                let families: Vec<$crate::domain::Family> = $crate::store::rows::convert_all(rows)?;
                Ok(families.into_iter().filter(|f| f.is_open(now)).collect())
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

            async fn mark_families_sent(
                &mut self,
                families: &[String],
                now: chrono::DateTime<chrono::Utc>,
            ) -> $crate::store::StoreResult<Vec<String>> {
                if families.is_empty() {
                    return Ok(Vec::new());
                }
                let mut query = sqlx::QueryBuilder::<<$conn as sqlx::Connection>::Database>::new(
                    "UPDATE invitation_families SET sent_time = ",
                );
                query.push_bind(now);
                query.push(" WHERE sent_time IS NULL AND family_id IN (");
                let mut list = query.separated(", ");
                for id in families {
                    list.push_bind(id);
                }
                query.push(") RETURNING family_id");
                let marked: Vec<(String,)> =
                    query.build_query_as().fetch_all(&mut *self.conn).await?;
                Ok(marked.into_iter().map(|(id,)| id).collect())
            }

            async fn set_family_token(
                &mut self,
                family_id: &str,
                token_hash: &str,
            ) -> $crate::store::StoreResult<()> {
                sqlx::query("UPDATE invitation_families SET token_hash = $2 WHERE family_id = $1")
                    .bind(family_id)
                    .bind(token_hash)
                    .execute(&mut *self.conn)
                    .await?;
                Ok(())
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
                families: &[String],
            ) -> $crate::store::StoreResult<Vec<$crate::domain::Invitation>> {
                if families.is_empty() {
                    return Ok(Vec::new());
                }
                let mut query =
                    sqlx::QueryBuilder::<<$conn as sqlx::Connection>::Database>::new(concat!(
                        "SELECT ",
                        invitation_columns!(),
                        " FROM invitations WHERE family_id IN ("
                    ));
                let mut list = query.separated(", ");
                for id in families {
                    list.push_bind(id);
                }
                query.push(") ORDER BY create_time, invitation_id");
                let rows: Vec<$crate::store::rows::InvitationRow> =
                    query.build_query_as().fetch_all(&mut *self.conn).await?;
                $crate::store::rows::convert_all(rows)
            }

            async fn replace_token_hashes(
                &mut self,
                tokens: &[($crate::domain::InvitationId, String)],
            ) -> $crate::store::StoreResult<()> {
                if tokens.is_empty() {
                    return Ok(());
                }
                // One statement for the lot, in SQL both backends read: the new hashes as a
                // table of values, each row's looked up by its id.
                let mut query = sqlx::QueryBuilder::<<$conn as sqlx::Connection>::Database>::new(
                    "WITH fresh (invitation_id, token_hash) AS (",
                );
                query.push_values(tokens, |mut row, (id, hash)| {
                    row.push_bind(id.to_text()).push_bind(hash);
                });
                query.push(
                    ") UPDATE invitations SET token_hash = (SELECT f.token_hash FROM fresh f \
                     WHERE f.invitation_id = invitations.invitation_id) \
                     WHERE invitation_id IN (SELECT invitation_id FROM fresh)",
                );
                query.build().execute(&mut *self.conn).await?;
                Ok(())
            }
        }
    };
}
