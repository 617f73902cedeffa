//! Shared SQL of [`crate::store::DirectoryRepo`].

macro_rules! impl_directory_repo {
    ($session:ident, $conn:ty) => {
        #[async_trait::async_trait]
        impl<C> $crate::store::DirectoryRepo for $session<C>
        where
            C: std::ops::DerefMut<Target = $conn> + Send,
        {
            async fn upsert_user(
                &mut self,
                user: &$crate::domain::User,
                now: chrono::DateTime<chrono::Utc>,
            ) -> $crate::store::StoreResult<()> {
                sqlx::query(
                    "INSERT INTO users (user_id, domain, email, role, verified_teacher, \
                     display_name, locale, update_time) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
                     ON CONFLICT (user_id) DO UPDATE SET domain = excluded.domain, \
                     email = excluded.email, role = excluded.role, \
                     verified_teacher = excluded.verified_teacher, \
                     display_name = excluded.display_name, locale = excluded.locale, \
                     update_time = excluded.update_time",
                )
                .bind(user.user_id.as_str())
                .bind(user.domain.as_str())
                .bind(user.email.as_str())
                .bind(user.role.as_str())
                .bind(user.verified_teacher)
                .bind(&user.display_name)
                .bind(user.locale.map(|l| l.as_str()))
                .bind(now)
                .execute(&mut *self.conn)
                .await
                .map_err(|e| {
                    $crate::store::StoreError::unique_as(e, $crate::store::UniqueKey::UserEmail)
                })?;
                Ok(())
            }

            async fn delete_user(
                &mut self,
                user_id: &$crate::domain::UserId,
            ) -> $crate::store::StoreResult<bool> {
                let done = sqlx::query("DELETE FROM users WHERE user_id = $1")
                    .bind(user_id.as_str())
                    .execute(&mut *self.conn)
                    .await?;
                // A deleted student's work goes with them (summaries.md).
                sqlx::query("DELETE FROM submissions WHERE student_id = $1")
                    .bind(user_id.as_str())
                    .execute(&mut *self.conn)
                    .await?;
                Ok(done.rows_affected() > 0)
            }

            async fn get_user(
                &mut self,
                user_id: &$crate::domain::UserId,
            ) -> $crate::store::StoreResult<Option<$crate::domain::User>> {
                let row: Option<$crate::store::rows::UserRow> =
                    sqlx::query_as("SELECT * FROM users WHERE user_id = $1")
                        .bind(user_id.as_str())
                        .fetch_optional(&mut *self.conn)
                        .await?;
                row.map(TryInto::try_into).transpose()
            }

            async fn get_user_by_email(
                &mut self,
                email: &$crate::domain::Email,
            ) -> $crate::store::StoreResult<Option<$crate::domain::User>> {
                let row: Option<$crate::store::rows::UserRow> =
                    sqlx::query_as("SELECT * FROM users WHERE email = $1")
                        .bind(email.as_str())
                        .fetch_optional(&mut *self.conn)
                        .await?;
                row.map(TryInto::try_into).transpose()
            }

            async fn list_users(
                &mut self,
                domain: &$crate::domain::DomainName,
                role: Option<$crate::domain::Role>,
                after: Option<&$crate::domain::UserId>,
                limit: u32,
            ) -> $crate::store::StoreResult<Vec<$crate::domain::User>> {
                let rows: Vec<$crate::store::rows::UserRow> = sqlx::query_as(
                    "SELECT * FROM users WHERE domain = $1 AND ($2 IS NULL OR role = $2) \
                     AND user_id > $3 ORDER BY user_id LIMIT $4",
                )
                .bind(domain.as_str())
                .bind(role.map(|r| r.as_str()))
                .bind(after.map(|a| a.as_str()).unwrap_or(""))
                .bind(i64::from(limit))
                .fetch_all(&mut *self.conn)
                .await?;
                $crate::store::rows::convert_all(rows)
            }

            async fn upsert_course(
                &mut self,
                course: &$crate::domain::Course,
                now: chrono::DateTime<chrono::Utc>,
            ) -> $crate::store::StoreResult<()> {
                sqlx::query(
                    "INSERT INTO courses (course_id, domain, update_time) VALUES ($1, $2, $3) \
                     ON CONFLICT (course_id) DO UPDATE SET domain = excluded.domain, \
                     update_time = excluded.update_time",
                )
                .bind(course.course_id.as_str())
                .bind(course.domain.as_str())
                .bind(now)
                .execute(&mut *self.conn)
                .await?;
                sqlx::query("DELETE FROM course_members WHERE course_id = $1")
                    .bind(course.course_id.as_str())
                    .execute(&mut *self.conn)
                    .await?;
                let members = course
                    .teacher_ids
                    .iter()
                    .map(|id| (id, "TEACHER"))
                    .chain(course.student_ids.iter().map(|id| (id, "STUDENT")));
                for (user_id, role) in members {
                    sqlx::query(
                        "INSERT INTO course_members (course_id, user_id, role) VALUES ($1, $2, $3) \
                         ON CONFLICT DO NOTHING",
                    )
                    .bind(course.course_id.as_str())
                    .bind(user_id.as_str())
                    .bind(role)
                    .execute(&mut *self.conn)
                    .await?;
                }
                Ok(())
            }

            async fn delete_course(
                &mut self,
                course_id: &$crate::domain::CourseId,
            ) -> $crate::store::StoreResult<bool> {
                let done = sqlx::query("DELETE FROM courses WHERE course_id = $1")
                    .bind(course_id.as_str())
                    .execute(&mut *self.conn)
                    .await?;
                // A deleted course's activity and summary setting go with it (summaries.md).
                for sql in [
                    "DELETE FROM course_work WHERE course_id = $1",
                    "DELETE FROM submissions WHERE course_id = $1",
                    "DELETE FROM announcements WHERE course_id = $1",
                    "DELETE FROM course_summary_settings WHERE course_id = $1",
                ] {
                    sqlx::query(sql)
                        .bind(course_id.as_str())
                        .execute(&mut *self.conn)
                        .await?;
                }
                Ok(done.rows_affected() > 0)
            }

            async fn get_course(
                &mut self,
                course_id: &$crate::domain::CourseId,
            ) -> $crate::store::StoreResult<Option<$crate::domain::Course>> {
                let domain: Option<String> =
                    sqlx::query_scalar("SELECT domain FROM courses WHERE course_id = $1")
                        .bind(course_id.as_str())
                        .fetch_optional(&mut *self.conn)
                        .await?;
                let Some(domain) = domain else {
                    return Ok(None);
                };
                let members: Vec<(String, String)> = sqlx::query_as(
                    "SELECT user_id, role FROM course_members WHERE course_id = $1 \
                     ORDER BY role, user_id",
                )
                .bind(course_id.as_str())
                .fetch_all(&mut *self.conn)
                .await?;
                let mut course = $crate::domain::Course {
                    course_id: course_id.clone(),
                    domain: $crate::domain::DomainName::from_trusted(domain),
                    teacher_ids: Vec::new(),
                    student_ids: Vec::new(),
                };
                for (user_id, role) in members {
                    let id = $crate::domain::UserId::from_trusted(user_id);
                    if role == "TEACHER" {
                        course.teacher_ids.push(id);
                    } else {
                        course.student_ids.push(id);
                    }
                }
                Ok(Some(course))
            }

            async fn courses_teaching(
                &mut self,
                teacher: &$crate::domain::UserId,
                student: &$crate::domain::UserId,
            ) -> $crate::store::StoreResult<
                Vec<($crate::domain::CourseId, $crate::domain::DomainName)>,
            > {
                let rows: Vec<(String, String)> = sqlx::query_as(
                    "SELECT c.course_id, c.domain FROM course_members t \
                     JOIN course_members s ON s.course_id = t.course_id \
                       AND s.role = 'STUDENT' AND s.user_id = $2 \
                     JOIN courses c ON c.course_id = t.course_id \
                     WHERE t.user_id = $1 AND t.role = 'TEACHER' ORDER BY c.course_id",
                )
                .bind(teacher.as_str())
                .bind(student.as_str())
                .fetch_all(&mut *self.conn)
                .await?;
                Ok($crate::store::rows::course_domains(rows))
            }
        }
    };
}
