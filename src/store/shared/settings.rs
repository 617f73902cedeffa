//! Shared SQL of [`crate::store::SettingsRepo`].

macro_rules! impl_settings_repo {
    ($session:ident, $conn:ty) => {
        #[async_trait::async_trait]
        impl<C> $crate::store::SettingsRepo for $session<C>
        where
            C: std::ops::DerefMut<Target = $conn> + Send,
        {
            async fn get_settings(
                &mut self,
                domain: &$crate::domain::DomainName,
            ) -> $crate::store::StoreResult<Option<$crate::domain::DomainSettings>> {
                let row: Option<$crate::store::rows::SettingsRow> =
                    sqlx::query_as("SELECT * FROM domain_settings WHERE domain = $1")
                        .bind(domain.as_str())
                        .fetch_optional(&mut *self.conn)
                        .await?;
                row.map(TryInto::try_into).transpose()
            }

            async fn put_settings(
                &mut self,
                s: &$crate::domain::DomainSettings,
                expected_version: i64,
            ) -> $crate::store::StoreResult<$crate::domain::DomainSettings> {
                let update_time = s.update_time.unwrap_or_else(chrono::Utc::now);
                let allowlist = $crate::store::rows::allowlist_text(s);
                let query = if expected_version == 0 {
                    sqlx::query_as(
                        "INSERT INTO domain_settings (domain, institution_type, \
                         guardian_access_enabled, who_can_manage, allowlisted_domains, \
                         invitation_ttl_days, max_guardians_per_student, \
                         max_students_per_guardian, default_locale, version, update_time, \
                         summary_time_zone, summary_send_hour, default_summary_frequency, \
                         school_name, mail_from_name, reply_to_address, \
                         invitation_reminder_days, ended_retention_days, \
                         audit_retention_days) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10 + 1, $11, $12, $13, $14, \
                         $15, $16, $17, $18, $19, $20) \
                         RETURNING *",
                    )
                } else {
                    sqlx::query_as(
                        "UPDATE domain_settings SET institution_type = $2, \
                         guardian_access_enabled = $3, who_can_manage = $4, \
                         allowlisted_domains = $5, invitation_ttl_days = $6, \
                         max_guardians_per_student = $7, max_students_per_guardian = $8, \
                         default_locale = $9, version = $10 + 1, update_time = $11, \
                         summary_time_zone = $12, summary_send_hour = $13, \
                         default_summary_frequency = $14, school_name = $15, \
                         mail_from_name = $16, reply_to_address = $17, \
                         invitation_reminder_days = $18, ended_retention_days = $19, \
                         audit_retention_days = $20 \
                         WHERE domain = $1 AND version = $10 RETURNING *",
                    )
                };
                let row: Option<$crate::store::rows::SettingsRow> = query
                    .bind(s.domain.as_str())
                    .bind(s.institution_type.as_str())
                    .bind(s.guardian_access_enabled)
                    .bind(s.who_can_manage.as_str())
                    .bind(allowlist)
                    .bind(s.invitation_ttl_days)
                    .bind(s.max_guardians_per_student)
                    .bind(s.max_students_per_guardian)
                    .bind(s.default_locale.as_str())
                    .bind(expected_version)
                    .bind(update_time)
                    .bind(s.summary_time_zone.name())
                    .bind(s.summary_send_hour)
                    .bind(s.default_summary_frequency.as_str())
                    .bind(s.school_name.as_deref())
                    .bind(s.mail_from_name.as_deref())
                    .bind(s.reply_to_address.as_ref().map(|e| e.as_str()))
                    .bind(s.invitation_reminder_days)
                    .bind(s.ended_retention_days)
                    .bind(s.audit_retention_days)
                    .fetch_optional(&mut *self.conn)
                    .await
                    // Two first writers of one domain: the loser's expectation is stale.
                    .map_err($crate::store::StoreError::unique_as_conflict)?;
                row.ok_or($crate::store::StoreError::Conflict)?.try_into()
            }
        }
    };
}
