//! Row shapes shared by both backends and their conversion into domain records. Rows are
//! private to the store; a stored value that does not parse is [`StoreError::Corrupt`].

use super::error::{StoreError, StoreResult};
use crate::domain::CourseId;
use crate::domain::summary::{
    Announcement, CourseWork, Frequency, ItemState, Submission, SubmissionState, SummaryCounts,
    SummaryDelivery, SummaryOutcome, SummaryPreferences,
};
use crate::domain::{
    AuditDetails, AuditEvent, DeliveryStatus, DomainName, DomainSettings, Email, GuardianProfile,
    IdempotencyRecord, InstitutionType, Invitation, InvitationId, InvitationSource,
    InvitationState, Link, Locale, OutboxMessage, Role, SettingChange, User, UserId, WhoCanManage,
};
use chrono::{DateTime, Utc};

fn corrupt(what: &str) -> StoreError {
    StoreError::Corrupt(format!("unreadable {what}"))
}

/// An address read back from the store.
pub(crate) fn email(raw: &str) -> StoreResult<Email> {
    Email::parse(raw).map_err(|_| corrupt("email address"))
}

fn invitation_id(raw: &str) -> StoreResult<InvitationId> {
    InvitationId::parse(raw).map_err(|_| corrupt("invitation id"))
}

#[derive(sqlx::FromRow)]
pub(crate) struct SettingsRow {
    domain: String,
    institution_type: String,
    guardian_access_enabled: bool,
    who_can_manage: String,
    allowlisted_domains: String,
    invitation_ttl_days: i32,
    max_guardians_per_student: i32,
    max_students_per_guardian: i32,
    default_locale: String,
    version: i64,
    update_time: DateTime<Utc>,
    summary_time_zone: String,
    summary_send_hour: i32,
    default_summary_frequency: String,
    school_name: Option<String>,
    mail_from_name: Option<String>,
    reply_to_address: Option<String>,
    invitation_reminder_days: i32,
    ended_retention_days: i32,
    audit_retention_days: i32,
}

impl TryFrom<SettingsRow> for DomainSettings {
    type Error = StoreError;
    fn try_from(row: SettingsRow) -> StoreResult<Self> {
        Ok(Self {
            domain: DomainName::from_trusted(row.domain),
            institution_type: InstitutionType::from_name(&row.institution_type)
                .ok_or_else(|| corrupt("institution type"))?,
            guardian_access_enabled: row.guardian_access_enabled,
            who_can_manage: WhoCanManage::from_name(&row.who_can_manage)
                .ok_or_else(|| corrupt("who_can_manage"))?,
            allowlisted_domains: row
                .allowlisted_domains
                .split_whitespace()
                .map(|d| DomainName::from_trusted(d.to_owned()))
                .collect(),
            invitation_ttl_days: row.invitation_ttl_days,
            max_guardians_per_student: row.max_guardians_per_student,
            max_students_per_guardian: row.max_students_per_guardian,
            default_locale: Locale::parse(&row.default_locale).map_err(|_| corrupt("locale"))?,
            summary_time_zone: row
                .summary_time_zone
                .parse()
                .map_err(|_| corrupt("summary time zone"))?,
            summary_send_hour: row.summary_send_hour,
            default_summary_frequency: Frequency::from_name(&row.default_summary_frequency)
                .ok_or_else(|| corrupt("summary frequency"))?,
            school_name: row.school_name,
            mail_from_name: row.mail_from_name,
            reply_to_address: row.reply_to_address.as_deref().map(email).transpose()?,
            invitation_reminder_days: row.invitation_reminder_days,
            ended_retention_days: row.ended_retention_days,
            audit_retention_days: row.audit_retention_days,
            version: row.version,
            update_time: Some(row.update_time),
        })
    }
}

/// The stored form of an allowlist.
pub(crate) fn allowlist_text(settings: &DomainSettings) -> String {
    settings
        .allowlisted_domains
        .iter()
        .map(DomainName::as_str)
        .collect::<Vec<_>>()
        .join(" ")
}

#[derive(sqlx::FromRow)]
pub(crate) struct UserRow {
    user_id: String,
    domain: String,
    email: String,
    role: String,
    verified_teacher: bool,
    display_name: String,
    locale: Option<String>,
}

/// A user's row read beside other tables' columns, under `u_` names.
#[derive(sqlx::FromRow)]
pub(crate) struct PrefixedUserRow {
    u_user_id: String,
    u_domain: String,
    u_email: String,
    u_role: String,
    u_verified_teacher: bool,
    u_display_name: String,
    u_locale: Option<String>,
}

impl TryFrom<PrefixedUserRow> for User {
    type Error = StoreError;
    fn try_from(row: PrefixedUserRow) -> StoreResult<Self> {
        UserRow {
            user_id: row.u_user_id,
            domain: row.u_domain,
            email: row.u_email,
            role: row.u_role,
            verified_teacher: row.u_verified_teacher,
            display_name: row.u_display_name,
            locale: row.u_locale,
        }
        .try_into()
    }
}

impl TryFrom<UserRow> for User {
    type Error = StoreError;
    fn try_from(row: UserRow) -> StoreResult<Self> {
        Ok(Self {
            user_id: UserId::from_trusted(row.user_id),
            domain: DomainName::from_trusted(row.domain),
            email: email(&row.email)?,
            role: Role::from_name(&row.role).ok_or_else(|| corrupt("role"))?,
            verified_teacher: row.verified_teacher,
            display_name: row.display_name,
            locale: row
                .locale
                .map(|l| Locale::parse(&l).map_err(|_| corrupt("locale")))
                .transpose()?,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct InvitationRow {
    invitation_id: String,
    domain: String,
    student_id: String,
    invited_email: String,
    state: String,
    removal_reason: Option<String>,
    inviter_id: String,
    guardian_id: Option<String>,
    guardian_email: Option<String>,
    guardian_display_name: Option<String>,
    token_hash: String,
    create_time: DateTime<Utc>,
    update_time: DateTime<Utc>,
    expire_time: DateTime<Utc>,
    accept_time: Option<DateTime<Utc>>,
    version: i64,
    source: String,
    remind_time: Option<DateTime<Utc>>,
    reminder_token_hash: Option<String>,
    family_id: Option<String>,
}

impl TryFrom<InvitationRow> for Invitation {
    type Error = StoreError;
    fn try_from(row: InvitationRow) -> StoreResult<Self> {
        let guardian = match (row.guardian_id, row.guardian_email) {
            (Some(id), Some(address)) => Some(GuardianProfile {
                guardian_id: UserId::from_trusted(id),
                email: email(&address)?,
                display_name: row.guardian_display_name.unwrap_or_default(),
            }),
            (None, None) => None,
            _ => return Err(corrupt("guardian profile")),
        };
        Ok(Self {
            id: invitation_id(&row.invitation_id)?,
            domain: DomainName::from_trusted(row.domain),
            student_id: UserId::from_trusted(row.student_id),
            invited_email: email(&row.invited_email)?,
            state: InvitationState::from_parts(&row.state, row.removal_reason.as_deref())
                .ok_or_else(|| corrupt("invitation state"))?,
            inviter_id: row.inviter_id,
            guardian,
            token_hash: row.token_hash,
            create_time: row.create_time,
            update_time: row.update_time,
            expire_time: row.expire_time,
            accept_time: row.accept_time,
            version: row.version,
            source: InvitationSource::parse(&row.source).ok_or_else(|| corrupt("source"))?,
            remind_time: row.remind_time,
            reminder_token_hash: row.reminder_token_hash,
            family_id: row.family_id,
        })
    }
}

/// An ACCEPTED link beside its student's row, under `l_` names; all `None` on the row of a
/// student without links (an outer join).
#[derive(sqlx::FromRow)]
pub(crate) struct LinkRow {
    l_invitation_id: Option<String>,
    l_invited_email: Option<String>,
    l_guardian_id: Option<String>,
    l_guardian_email: Option<String>,
    l_guardian_display_name: Option<String>,
    l_source: Option<String>,
    l_create_time: Option<DateTime<Utc>>,
    l_accept_time: Option<DateTime<Utc>>,
}

impl LinkRow {
    /// The row's link, `None` on a row without one.
    pub(crate) fn into_link(self) -> StoreResult<Option<Link>> {
        let Some(id) = self.l_invitation_id else {
            return Ok(None);
        };
        let (Some(invited), Some(guardian_id), Some(own), Some(source), Some(created)) = (
            self.l_invited_email,
            self.l_guardian_id,
            self.l_guardian_email,
            self.l_source,
            self.l_create_time,
        ) else {
            return Err(corrupt("link"));
        };
        Ok(Some(Link {
            invitation_id: invitation_id(&id)?,
            guardian: GuardianProfile {
                guardian_id: UserId::from_trusted(guardian_id),
                email: email(&own)?,
                display_name: self.l_guardian_display_name.unwrap_or_default(),
            },
            invited_email: email(&invited)?,
            source: InvitationSource::parse(&source).ok_or_else(|| corrupt("source"))?,
            linked_time: self.l_accept_time.unwrap_or(created),
        }))
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct EventRow {
    event_id: i64,
    domain: String,
    student_id: Option<String>,
    invitation_id: Option<String>,
    action: String,
    actor_id: String,
    request_id: Option<String>,
    create_time: DateTime<Utc>,
    details: Option<String>,
}

impl TryFrom<EventRow> for AuditEvent {
    type Error = StoreError;
    fn try_from(row: EventRow) -> StoreResult<Self> {
        Ok(Self {
            event_id: row.event_id,
            domain: DomainName::from_trusted(row.domain),
            student_id: row.student_id.map(UserId::from_trusted),
            invitation_id: row
                .invitation_id
                .as_deref()
                .map(invitation_id)
                .transpose()?,
            action: row.action,
            actor_id: row.actor_id,
            request_id: row.request_id,
            create_time: row.create_time,
            details: row
                .details
                .as_deref()
                .map(details)
                .transpose()?
                .unwrap_or_default(),
        })
    }
}

/// A row of the change feed: an event with its revision.
#[derive(sqlx::FromRow)]
pub(crate) struct ChangeRow {
    revision: i64,
    #[sqlx(flatten)]
    event: EventRow,
}

impl TryFrom<ChangeRow> for crate::store::RecordedChange {
    type Error = StoreError;
    fn try_from(row: ChangeRow) -> StoreResult<Self> {
        let event: AuditEvent = row.event.try_into()?;
        Ok(Self {
            position: crate::domain::Position {
                revision: row.revision,
                event: event.event_id,
            },
            event,
        })
    }
}

/// The stored form of [`AuditDetails`]: JSON, so that new kinds of particulars need no new
/// columns.
#[derive(serde::Serialize, serde::Deserialize)]
struct DetailsJson {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    setting_changes: Vec<SettingChangeJson>,
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    counts: std::collections::BTreeMap<String, i64>,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct SettingChangeJson {
    field: String,
    old: String,
    new: String,
}

/// The column value of an event's details; NULL when there are none.
pub(crate) fn details_text(details: &AuditDetails) -> Option<String> {
    if details.is_empty() {
        return None;
    }
    let json = DetailsJson {
        setting_changes: details
            .setting_changes
            .iter()
            .map(|c| SettingChangeJson {
                field: c.field.clone(),
                old: c.old_value.clone(),
                new: c.new_value.clone(),
            })
            .collect(),
        counts: details.counts.clone(),
    };
    // Serialising strings and integers cannot fail.
    serde_json::to_string(&json).ok()
}

fn details(text: &str) -> StoreResult<AuditDetails> {
    let json: DetailsJson = serde_json::from_str(text)
        .map_err(|_| StoreError::Corrupt("unreadable audit event details".into()))?;
    Ok(AuditDetails {
        setting_changes: json
            .setting_changes
            .into_iter()
            .map(|c| SettingChange {
                field: c.field,
                old_value: c.old,
                new_value: c.new,
            })
            .collect(),
        counts: json.counts,
    })
}

#[derive(sqlx::FromRow)]
pub(crate) struct OutboxRow {
    message_id: String,
    invitation_id: Option<String>,
    recipient: String,
    subject: String,
    body_text: String,
    body_html: String,
    status: String,
    attempts: i32,
    next_attempt_time: DateTime<Utc>,
    last_error: Option<String>,
    create_time: DateTime<Utc>,
    sent_time: Option<DateTime<Utc>>,
    list_unsubscribe: Option<String>,
    from_name: Option<String>,
    reply_to: Option<String>,
    family_id: Option<String>,
}

impl TryFrom<OutboxRow> for OutboxMessage {
    type Error = StoreError;
    fn try_from(row: OutboxRow) -> StoreResult<Self> {
        Ok(Self {
            message_id: row.message_id,
            invitation_id: row
                .invitation_id
                .as_deref()
                .map(invitation_id)
                .transpose()?,
            recipient: email(&row.recipient)?,
            subject: row.subject,
            body_text: row.body_text,
            body_html: row.body_html,
            status: DeliveryStatus::from_name(&row.status)
                .ok_or_else(|| corrupt("delivery status"))?,
            attempts: row.attempts,
            next_attempt_time: row.next_attempt_time,
            last_error: row.last_error,
            create_time: row.create_time,
            sent_time: row.sent_time,
            list_unsubscribe: row.list_unsubscribe,
            from_name: row.from_name,
            reply_to: row.reply_to.as_deref().map(email).transpose()?,
            family_id: row.family_id,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct IdempotencyRow {
    principal: String,
    request_id: String,
    method: String,
    request_hash: String,
    response: Vec<u8>,
    create_time: DateTime<Utc>,
}

impl From<IdempotencyRow> for IdempotencyRecord {
    fn from(row: IdempotencyRow) -> Self {
        Self {
            principal: row.principal,
            request_id: row.request_id,
            method: row.method,
            request_hash: row.request_hash,
            response: row.response,
            create_time: row.create_time,
        }
    }
}

/// Converts every row, failing on the first unreadable one.
pub(crate) fn convert_all<R, T>(rows: Vec<R>) -> StoreResult<Vec<T>>
where
    T: TryFrom<R, Error = StoreError>,
{
    rows.into_iter().map(T::try_from).collect()
}

#[derive(sqlx::FromRow)]
pub(crate) struct CourseWorkRow {
    course_id: String,
    course_work_id: String,
    title: String,
    due_time: Option<DateTime<Utc>>,
    state: String,
    update_time: DateTime<Utc>,
    publish_time: Option<DateTime<Utc>>,
}

impl TryFrom<CourseWorkRow> for CourseWork {
    type Error = StoreError;
    fn try_from(row: CourseWorkRow) -> StoreResult<Self> {
        Ok(Self {
            course_id: CourseId::from_trusted(row.course_id),
            course_work_id: row.course_work_id,
            title: row.title,
            due_time: row.due_time,
            state: ItemState::from_name(&row.state).ok_or_else(|| corrupt("work state"))?,
            update_time: row.update_time,
            publish_time: row.publish_time,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct SubmissionRow {
    course_id: String,
    course_work_id: String,
    student_id: String,
    state: String,
    update_time: DateTime<Utc>,
}

impl TryFrom<SubmissionRow> for Submission {
    type Error = StoreError;
    fn try_from(row: SubmissionRow) -> StoreResult<Self> {
        Ok(Self {
            course_id: CourseId::from_trusted(row.course_id),
            course_work_id: row.course_work_id,
            student_id: UserId::from_trusted(row.student_id),
            state: SubmissionState::from_name(&row.state)
                .ok_or_else(|| corrupt("submission state"))?,
            update_time: row.update_time,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct AnnouncementRow {
    course_id: String,
    announcement_id: String,
    text: String,
    state: String,
    update_time: DateTime<Utc>,
    publish_time: Option<DateTime<Utc>>,
}

impl TryFrom<AnnouncementRow> for Announcement {
    type Error = StoreError;
    fn try_from(row: AnnouncementRow) -> StoreResult<Self> {
        Ok(Self {
            course_id: CourseId::from_trusted(row.course_id),
            announcement_id: row.announcement_id,
            text: row.text,
            state: ItemState::from_name(&row.state).ok_or_else(|| corrupt("announcement state"))?,
            update_time: row.update_time,
            publish_time: row.publish_time,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct PreferencesRow {
    guardian_id: String,
    frequency: Option<String>,
    weekly_day: Option<String>,
    time_zone: Option<String>,
    locale: Option<String>,
    update_time: DateTime<Utc>,
}

impl TryFrom<PreferencesRow> for SummaryPreferences {
    type Error = StoreError;
    fn try_from(row: PreferencesRow) -> StoreResult<Self> {
        Ok(Self {
            guardian_id: UserId::from_trusted(row.guardian_id),
            frequency: row
                .frequency
                .map(|f| Frequency::from_name(&f).ok_or_else(|| corrupt("frequency")))
                .transpose()?,
            weekly_day: row
                .weekly_day
                .map(|d| d.parse().map_err(|_| corrupt("weekly day")))
                .transpose()?,
            time_zone: row
                .time_zone
                .map(|z| z.parse().map_err(|_| corrupt("time zone")))
                .transpose()?,
            locale: row
                .locale
                .map(|l| Locale::parse(&l).map_err(|_| corrupt("locale")))
                .transpose()?,
            update_time: Some(row.update_time),
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct DeliveryRow {
    guardian_id: String,
    period_key: String,
    frequency: String,
    period_start: DateTime<Utc>,
    period_end: DateTime<Utc>,
    student_ids: String,
    missing_count: i32,
    upcoming_count: i32,
    activity_count: i32,
    outcome: String,
    message_id: Option<String>,
    unsubscribe_token_hash: Option<String>,
    create_time: DateTime<Utc>,
    /// The outbox's status of the summary's message: what became of a QUEUED one.
    message_status: Option<String>,
}

impl TryFrom<DeliveryRow> for SummaryDelivery {
    type Error = StoreError;
    fn try_from(row: DeliveryRow) -> StoreResult<Self> {
        let stored =
            SummaryOutcome::from_name(&row.outcome).ok_or_else(|| corrupt("summary outcome"))?;
        let outcome = match row.message_status.as_deref() {
            Some("SENT") => SummaryOutcome::Sent,
            Some("FAILED") => SummaryOutcome::Failed,
            _ => stored,
        };
        Ok(Self {
            guardian_id: UserId::from_trusted(row.guardian_id),
            period_key: row.period_key,
            frequency: Frequency::from_name(&row.frequency)
                .ok_or_else(|| corrupt("summary frequency"))?,
            period_start: row.period_start,
            period_end: row.period_end,
            student_ids: row
                .student_ids
                .split_whitespace()
                .map(|s| UserId::from_trusted(s.to_owned()))
                .collect(),
            counts: SummaryCounts {
                missing: i64::from(row.missing_count),
                upcoming: i64::from(row.upcoming_count),
                activity: i64::from(row.activity_count),
            },
            message_id: row.message_id,
            outcome,
            unsubscribe_token_hash: row.unsubscribe_token_hash,
            create_time: row.create_time,
        })
    }
}

/// (course id, domain) rows as read.
pub(crate) fn course_domains(rows: Vec<(String, String)>) -> Vec<(CourseId, DomainName)> {
    rows.into_iter()
        .map(|(c, d)| (CourseId::from_trusted(c), DomainName::from_trusted(d)))
        .collect()
}

#[derive(sqlx::FromRow)]
pub(crate) struct FamilyRow {
    family_id: String,
    domain: String,
    invited_email: String,
    inviter_id: String,
    open_until: DateTime<Utc>,
    create_time: DateTime<Utc>,
    sent_time: Option<DateTime<Utc>>,
}

impl TryFrom<FamilyRow> for crate::domain::Family {
    type Error = StoreError;
    fn try_from(row: FamilyRow) -> StoreResult<Self> {
        Ok(Self {
            id: row.family_id,
            domain: DomainName::from_trusted(row.domain),
            invited_email: email(&row.invited_email)?,
            inviter_id: row.inviter_id,
            open_until: row.open_until,
            create_time: row.create_time,
            sent_time: row.sent_time,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct AccessRow {
    record_id: i64,
    domain: String,
    caller: String,
    caller_role: String,
    method: String,
    student_id: Option<String>,
    row_count: i32,
    create_time: DateTime<Utc>,
}

impl TryFrom<AccessRow> for crate::domain::AccessRecord {
    type Error = StoreError;
    fn try_from(row: AccessRow) -> StoreResult<Self> {
        Ok(Self {
            record_id: row.record_id,
            domain: DomainName::from_trusted(row.domain),
            caller: row.caller,
            caller_role: crate::domain::CallerRole::parse(&row.caller_role)
                .ok_or_else(|| corrupt("caller role"))?,
            method: row.method,
            student_id: row.student_id.map(UserId::from_trusted),
            rows: i64::from(row.row_count),
            create_time: row.create_time,
        })
    }
}
