//! Shared SQL of [`crate::store::SummaryRepo`]: class activity (newest `update_time` wins, in
//! one statement), preferences, and summary deliveries unique per (guardian, period).

macro_rules! impl_summary_repo {
    ($session:ident, $conn:ty) => {
        #[async_trait::async_trait]
        impl<C> $crate::store::SummaryRepo for $session<C>
        where
            C: std::ops::DerefMut<Target = $conn> + Send,
        {
            async fn upsert_course_work(
                &mut self,
                w: &$crate::domain::summary::CourseWork,
            ) -> $crate::store::StoreResult<bool> {
                // publish_time: the first update seen PUBLISHED, kept from then on.
                let done = sqlx::query(
                    "INSERT INTO course_work (course_id, course_work_id, title, due_time, state, \
                     update_time, publish_time) VALUES ($1, $2, $3, $4, $5, $6, \
                     CASE WHEN $5 = 'PUBLISHED' THEN $6 END) \
                     ON CONFLICT (course_id, course_work_id) DO UPDATE SET \
                     title = excluded.title, due_time = excluded.due_time, \
                     state = excluded.state, update_time = excluded.update_time, \
                     publish_time = COALESCE(course_work.publish_time, excluded.publish_time) \
                     WHERE excluded.update_time > course_work.update_time",
                )
                .bind(w.course_id.as_str())
                .bind(&w.course_work_id)
                .bind(&w.title)
                .bind(w.due_time)
                .bind(w.state.as_str())
                .bind(w.update_time)
                .execute(&mut *self.conn)
                .await?;
                Ok(done.rows_affected() > 0)
            }

            async fn upsert_submission(
                &mut self,
                s: &$crate::domain::summary::Submission,
            ) -> $crate::store::StoreResult<bool> {
                let done = sqlx::query(
                    "INSERT INTO submissions (course_id, course_work_id, student_id, state, \
                     update_time) VALUES ($1, $2, $3, $4, $5) \
                     ON CONFLICT (course_id, student_id, course_work_id) DO UPDATE SET \
                     state = excluded.state, update_time = excluded.update_time \
                     WHERE excluded.update_time > submissions.update_time",
                )
                .bind(s.course_id.as_str())
                .bind(&s.course_work_id)
                .bind(s.student_id.as_str())
                .bind(s.state.as_str())
                .bind(s.update_time)
                .execute(&mut *self.conn)
                .await?;
                Ok(done.rows_affected() > 0)
            }

            async fn upsert_announcement(
                &mut self,
                a: &$crate::domain::summary::Announcement,
            ) -> $crate::store::StoreResult<bool> {
                let done = sqlx::query(
                    "INSERT INTO announcements (course_id, announcement_id, text, state, \
                     update_time, publish_time) VALUES ($1, $2, $3, $4, $5, \
                     CASE WHEN $4 = 'PUBLISHED' THEN $5 END) \
                     ON CONFLICT (course_id, announcement_id) DO UPDATE SET \
                     text = excluded.text, state = excluded.state, \
                     update_time = excluded.update_time, \
                     publish_time = COALESCE(announcements.publish_time, excluded.publish_time) \
                     WHERE excluded.update_time > announcements.update_time",
                )
                .bind(a.course_id.as_str())
                .bind(&a.announcement_id)
                .bind(&a.text)
                .bind(a.state.as_str())
                .bind(a.update_time)
                .execute(&mut *self.conn)
                .await?;
                Ok(done.rows_affected() > 0)
            }

            async fn get_course_work(
                &mut self,
                course_id: &$crate::domain::CourseId,
                course_work_id: &str,
            ) -> $crate::store::StoreResult<Option<$crate::domain::summary::CourseWork>> {
                let row: Option<$crate::store::rows::CourseWorkRow> = sqlx::query_as(
                    "SELECT * FROM course_work WHERE course_id = $1 AND course_work_id = $2",
                )
                .bind(course_id.as_str())
                .bind(course_work_id)
                .fetch_optional(&mut *self.conn)
                .await?;
                row.map(TryInto::try_into).transpose()
            }

            async fn class_activity(
                &mut self,
                courses: &[$crate::domain::CourseId],
                since: chrono::DateTime<chrono::Utc>,
            ) -> $crate::store::StoreResult<(
                Vec<$crate::domain::summary::CourseWork>,
                Vec<$crate::domain::summary::Announcement>,
            )> {
                if courses.is_empty() {
                    return Ok((Vec::new(), Vec::new()));
                }
                type Db = <$conn as sqlx::Connection>::Database;
                let mut query = sqlx::QueryBuilder::<Db>::new(
                    "SELECT * FROM course_work WHERE state = 'PUBLISHED' AND (due_time >= ",
                );
                query.push_bind(since);
                query.push(" OR publish_time >= ");
                query.push_bind(since);
                query.push(") AND course_id IN (");
                in_list!(query, courses);
                let work: Vec<$crate::store::rows::CourseWorkRow> =
                    query.build_query_as().fetch_all(&mut *self.conn).await?;
                let mut query = sqlx::QueryBuilder::<Db>::new(
                    "SELECT * FROM announcements WHERE state = 'PUBLISHED' AND publish_time >= ",
                );
                query.push_bind(since);
                query.push(" AND course_id IN (");
                in_list!(query, courses);
                let announcements: Vec<$crate::store::rows::AnnouncementRow> =
                    query.build_query_as().fetch_all(&mut *self.conn).await?;
                Ok((
                    $crate::store::rows::convert_all(work)?,
                    $crate::store::rows::convert_all(announcements)?,
                ))
            }

            async fn submissions_of(
                &mut self,
                students: &[$crate::domain::UserId],
                courses: &[$crate::domain::CourseId],
            ) -> $crate::store::StoreResult<Vec<$crate::domain::summary::Submission>> {
                if students.is_empty() || courses.is_empty() {
                    return Ok(Vec::new());
                }
                let mut query = sqlx::QueryBuilder::<<$conn as sqlx::Connection>::Database>::new(
                    "SELECT * FROM submissions WHERE student_id IN (",
                );
                in_list!(query, students);
                query.push(" AND course_id IN (");
                in_list!(query, courses);
                let rows: Vec<$crate::store::rows::SubmissionRow> =
                    query.build_query_as().fetch_all(&mut *self.conn).await?;
                $crate::store::rows::convert_all(rows)
            }

            async fn purge_activity(
                &mut self,
                before: chrono::DateTime<chrono::Utc>,
            ) -> $crate::store::StoreResult<u64> {
                let mut purged = 0;
                // Work still due after `before` stays: it can be upcoming or missing.
                for sql in [
                    "DELETE FROM course_work WHERE update_time < $1 \
                     AND (due_time IS NULL OR due_time < $1)",
                    "DELETE FROM submissions WHERE update_time < $1 AND NOT EXISTS (SELECT 1 \
                     FROM course_work w WHERE w.course_id = submissions.course_id \
                     AND w.course_work_id = submissions.course_work_id)",
                    "DELETE FROM announcements WHERE update_time < $1",
                ] {
                    purged += sqlx::query(sql)
                        .bind(before)
                        .execute(&mut *self.conn)
                        .await?
                        .rows_affected();
                }
                Ok(purged)
            }

            async fn courses_of_students(
                &mut self,
                students: &[$crate::domain::UserId],
            ) -> $crate::store::StoreResult<
                Vec<(
                    $crate::domain::UserId,
                    $crate::domain::CourseId,
                    $crate::domain::DomainName,
                )>,
            > {
                if students.is_empty() {
                    return Ok(Vec::new());
                }
                let mut query = sqlx::QueryBuilder::<<$conn as sqlx::Connection>::Database>::new(
                    "SELECT m.user_id, c.course_id, c.domain FROM course_members m \
                     JOIN courses c ON c.course_id = m.course_id \
                     WHERE m.role = 'STUDENT' AND m.user_id IN (",
                );
                in_list!(query, students);
                query.push(" ORDER BY m.user_id, c.course_id");
                let rows: Vec<(String, String, String)> =
                    query.build_query_as().fetch_all(&mut *self.conn).await?;
                Ok(rows
                    .into_iter()
                    .map(|(student, course, domain)| {
                        (
                            $crate::domain::UserId::from_trusted(student),
                            $crate::domain::CourseId::from_trusted(course),
                            $crate::domain::DomainName::from_trusted(domain),
                        )
                    })
                    .collect())
            }

            async fn users_by_id(
                &mut self,
                users: &[$crate::domain::UserId],
            ) -> $crate::store::StoreResult<Vec<$crate::domain::User>> {
                if users.is_empty() {
                    return Ok(Vec::new());
                }
                let mut query = sqlx::QueryBuilder::<<$conn as sqlx::Connection>::Database>::new(
                    "SELECT * FROM users WHERE user_id IN (",
                );
                in_list!(query, users);
                let rows: Vec<$crate::store::rows::UserRow> =
                    query.build_query_as().fetch_all(&mut *self.conn).await?;
                $crate::store::rows::convert_all(rows)
            }

            async fn links_of_guardians(
                &mut self,
                guardians: &[$crate::domain::UserId],
            ) -> $crate::store::StoreResult<Vec<$crate::domain::Invitation>> {
                if guardians.is_empty() {
                    return Ok(Vec::new());
                }
                let mut query = sqlx::QueryBuilder::<<$conn as sqlx::Connection>::Database>::new(
                    concat!(
                        "SELECT ",
                        invitation_columns!(),
                        " FROM invitations WHERE state = 'ACCEPTED' AND guardian_id IN ("
                    ),
                );
                in_list!(query, guardians);
                query.push(" ORDER BY guardian_id, invitation_id");
                let rows: Vec<$crate::store::rows::InvitationRow> =
                    query.build_query_as().fetch_all(&mut *self.conn).await?;
                $crate::store::rows::convert_all(rows)
            }

            async fn summary_preferences_of(
                &mut self,
                guardians: &[$crate::domain::UserId],
            ) -> $crate::store::StoreResult<Vec<$crate::domain::summary::SummaryPreferences>>
            {
                if guardians.is_empty() {
                    return Ok(Vec::new());
                }
                let mut query = sqlx::QueryBuilder::<<$conn as sqlx::Connection>::Database>::new(
                    "SELECT * FROM summary_preferences WHERE guardian_id IN (",
                );
                in_list!(query, guardians);
                let rows: Vec<$crate::store::rows::PreferencesRow> =
                    query.build_query_as().fetch_all(&mut *self.conn).await?;
                $crate::store::rows::convert_all(rows)
            }

            async fn last_summary_deliveries(
                &mut self,
                guardians: &[$crate::domain::UserId],
            ) -> $crate::store::StoreResult<Vec<$crate::domain::summary::SummaryDelivery>> {
                if guardians.is_empty() {
                    return Ok(Vec::new());
                }
                let mut query = sqlx::QueryBuilder::<<$conn as sqlx::Connection>::Database>::new(
                    "SELECT d.*, o.status AS message_status FROM summary_deliveries d \
                     LEFT JOIN outbox o ON o.message_id = d.message_id \
                     WHERE d.period_key = (SELECT MAX(x.period_key) FROM summary_deliveries x \
                     WHERE x.guardian_id = d.guardian_id) AND d.guardian_id IN (",
                );
                in_list!(query, guardians);
                let rows: Vec<$crate::store::rows::DeliveryRow> =
                    query.build_query_as().fetch_all(&mut *self.conn).await?;
                $crate::store::rows::convert_all(rows)
            }

            async fn set_course_summaries(
                &mut self,
                course_id: &$crate::domain::CourseId,
                enabled: bool,
                now: chrono::DateTime<chrono::Utc>,
            ) -> $crate::store::StoreResult<()> {
                sqlx::query(
                    "INSERT INTO course_summary_settings (course_id, guardian_summaries_enabled, \
                     update_time) VALUES ($1, $2, $3) ON CONFLICT (course_id) DO UPDATE SET \
                     guardian_summaries_enabled = excluded.guardian_summaries_enabled, \
                     update_time = excluded.update_time",
                )
                .bind(course_id.as_str())
                .bind(enabled)
                .bind(now)
                .execute(&mut *self.conn)
                .await?;
                Ok(())
            }

            async fn courses_without_summaries(
                &mut self,
                courses: &[$crate::domain::CourseId],
            ) -> $crate::store::StoreResult<Vec<$crate::domain::CourseId>> {
                if courses.is_empty() {
                    return Ok(Vec::new());
                }
                let mut query = sqlx::QueryBuilder::<<$conn as sqlx::Connection>::Database>::new(
                    "SELECT course_id FROM course_summary_settings \
                     WHERE NOT guardian_summaries_enabled AND course_id IN (",
                );
                in_list!(query, courses);
                let rows: Vec<(String,)> =
                    query.build_query_as().fetch_all(&mut *self.conn).await?;
                Ok(rows
                    .into_iter()
                    .map(|(c,)| $crate::domain::CourseId::from_trusted(c))
                    .collect())
            }

            async fn get_summary_preferences(
                &mut self,
                guardian: &$crate::domain::UserId,
            ) -> $crate::store::StoreResult<Option<$crate::domain::summary::SummaryPreferences>>
            {
                let row: Option<$crate::store::rows::PreferencesRow> =
                    sqlx::query_as("SELECT * FROM summary_preferences WHERE guardian_id = $1")
                        .bind(guardian.as_str())
                        .fetch_optional(&mut *self.conn)
                        .await?;
                row.map(TryInto::try_into).transpose()
            }

            async fn patch_summary_preferences(
                &mut self,
                guardian: &$crate::domain::UserId,
                patch: &$crate::domain::summary::PreferencesPatch,
                now: chrono::DateTime<chrono::Utc>,
            ) -> $crate::store::StoreResult<()> {
                sqlx::query(
                    "INSERT INTO summary_preferences (guardian_id, frequency, weekly_day, \
                     time_zone, locale, update_time) VALUES ($1, $2, $3, $4, $5, $6) \
                     ON CONFLICT (guardian_id) DO UPDATE SET \
                     frequency = CASE WHEN $7 THEN excluded.frequency \
                         ELSE summary_preferences.frequency END, \
                     weekly_day = CASE WHEN $8 THEN excluded.weekly_day \
                         ELSE summary_preferences.weekly_day END, \
                     time_zone = CASE WHEN $9 THEN excluded.time_zone \
                         ELSE summary_preferences.time_zone END, \
                     locale = CASE WHEN $10 THEN excluded.locale \
                         ELSE summary_preferences.locale END, \
                     update_time = excluded.update_time",
                )
                .bind(guardian.as_str())
                .bind(patch.frequency.flatten().map(|f| f.as_str()))
                .bind(
                    patch
                        .weekly_day
                        .flatten()
                        .map($crate::domain::summary::schedule::weekday_name),
                )
                .bind(patch.time_zone.flatten().map(|z| z.name()))
                .bind(patch.locale.flatten().map(|l| l.as_str()))
                .bind(now)
                .bind(patch.frequency.is_some())
                .bind(patch.weekly_day.is_some())
                .bind(patch.time_zone.is_some())
                .bind(patch.locale.is_some())
                .execute(&mut *self.conn)
                .await?;
                Ok(())
            }

            async fn linked_guardians(
                &mut self,
                after: Option<&$crate::domain::UserId>,
                limit: u32,
            ) -> $crate::store::StoreResult<Vec<$crate::domain::UserId>> {
                let rows: Vec<(String,)> = sqlx::query_as(
                    "SELECT DISTINCT guardian_id FROM invitations WHERE state = 'ACCEPTED' \
                     AND guardian_id > $1 ORDER BY guardian_id LIMIT $2",
                )
                .bind(after.map(|a| a.as_str()).unwrap_or(""))
                .bind(i64::from(limit))
                .fetch_all(&mut *self.conn)
                .await?;
                Ok(rows
                    .into_iter()
                    .map(|(g,)| $crate::domain::UserId::from_trusted(g))
                    .collect())
            }

            async fn insert_summary_delivery(
                &mut self,
                d: &$crate::domain::summary::SummaryDelivery,
            ) -> $crate::store::StoreResult<()> {
                let inserted = self
                    .insert_summary_deliveries(std::slice::from_ref(d))
                    .await?;
                if inserted.is_empty() {
                    return Err($crate::store::StoreError::AlreadyExists(
                        $crate::store::UniqueKey::SummaryDelivery,
                    ));
                }
                Ok(())
            }

            async fn insert_summary_deliveries(
                &mut self,
                deliveries: &[$crate::domain::summary::SummaryDelivery],
            ) -> $crate::store::StoreResult<Vec<$crate::domain::UserId>> {
                if deliveries.is_empty() {
                    return Ok(Vec::new());
                }
                // ON CONFLICT DO NOTHING rather than a unique violation: on Postgres a failed
                // statement would poison the caller's transaction.
                let mut query = sqlx::QueryBuilder::<<$conn as sqlx::Connection>::Database>::new(
                    "INSERT INTO summary_deliveries (guardian_id, period_key, frequency, \
                     period_start, period_end, student_ids, missing_count, upcoming_count, \
                     activity_count, outcome, message_id, unsubscribe_token_hash, create_time) ",
                );
                query.push_values(deliveries, |mut row, d| {
                    row.push_bind(d.guardian_id.as_str())
                        .push_bind(&d.period_key)
                        .push_bind(d.frequency.as_str())
                        .push_bind(d.period_start)
                        .push_bind(d.period_end)
                        .push_bind(
                            d.student_ids
                                .iter()
                                .map(|s| s.as_str())
                                .collect::<Vec<_>>()
                                .join(" "),
                        )
                        .push_bind(d.counts.missing)
                        .push_bind(d.counts.upcoming)
                        .push_bind(d.counts.activity)
                        .push_bind(d.outcome.as_str())
                        .push_bind(d.message_id.as_deref())
                        .push_bind(d.unsubscribe_token_hash.as_deref())
                        .push_bind(d.create_time);
                });
                query.push(" ON CONFLICT (guardian_id, period_key) DO NOTHING RETURNING guardian_id");
                let rows: Vec<(String,)> =
                    query.build_query_as().fetch_all(&mut *self.conn).await?;
                Ok(rows
                    .into_iter()
                    .map(|(g,)| $crate::domain::UserId::from_trusted(g))
                    .collect())
            }

            async fn last_summary_delivery(
                &mut self,
                guardian: &$crate::domain::UserId,
            ) -> $crate::store::StoreResult<Option<$crate::domain::summary::SummaryDelivery>> {
                let mut last = self.list_summary_deliveries(guardian, None, 1).await?;
                Ok(last.pop())
            }

            async fn list_summary_deliveries(
                &mut self,
                guardian: &$crate::domain::UserId,
                before: Option<&str>,
                limit: u32,
            ) -> $crate::store::StoreResult<Vec<$crate::domain::summary::SummaryDelivery>> {
                let rows: Vec<$crate::store::rows::DeliveryRow> = sqlx::query_as(
                    "SELECT d.*, o.status AS message_status FROM summary_deliveries d \
                     LEFT JOIN outbox o ON o.message_id = d.message_id \
                     WHERE d.guardian_id = $1 AND ($2 IS NULL OR d.period_key < $2) \
                     ORDER BY d.period_key DESC LIMIT $3",
                )
                .bind(guardian.as_str())
                .bind(before)
                .bind(i64::from(limit))
                .fetch_all(&mut *self.conn)
                .await?;
                $crate::store::rows::convert_all(rows)
            }

            async fn use_unsubscribe_token(
                &mut self,
                token_hash: &str,
            ) -> $crate::store::StoreResult<Option<$crate::domain::UserId>> {
                let guardian: Option<String> = sqlx::query_scalar(
                    "UPDATE summary_deliveries SET unsubscribe_used = TRUE \
                     WHERE unsubscribe_token_hash = $1 AND NOT unsubscribe_used \
                     RETURNING guardian_id",
                )
                .bind(token_hash)
                .fetch_optional(&mut *self.conn)
                .await?;
                Ok(guardian.map($crate::domain::UserId::from_trusted))
            }

            async fn find_unsubscribe_token(
                &mut self,
                token_hash: &str,
            ) -> $crate::store::StoreResult<Option<($crate::domain::UserId, bool)>> {
                let found: Option<(String, bool)> = sqlx::query_as(
                    "SELECT guardian_id, unsubscribe_used FROM summary_deliveries \
                     WHERE unsubscribe_token_hash = $1",
                )
                .bind(token_hash)
                .fetch_optional(&mut *self.conn)
                .await?;
                Ok(found.map(|(g, used)| ($crate::domain::UserId::from_trusted(g), used)))
            }
        }
    };
}
