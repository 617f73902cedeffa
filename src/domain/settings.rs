//! A domain's guardian settings, their defaults and the rules for changing them.

use super::audit::SettingChange;
use super::email::Email;
use super::error::ValidationError;
use super::ids::DomainName;
use super::summary::schedule::{DEFAULT_SEND_HOUR, Frequency};
use chrono::{DateTime, Utc};
use chrono_tz::Tz;

/// The kind of school; it sets the default of guardian access.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InstitutionType {
    /// Primary and secondary: guardian access on by default.
    PrimarySecondary,
    /// Higher education: guardian access off by default.
    HigherEducation,
}

impl InstitutionType {
    /// Guardian access for a domain of this type that never chose otherwise.
    pub fn default_guardian_access(self) -> bool {
        match self {
            Self::PrimarySecondary => true,
            Self::HigherEducation => false,
        }
    }

    /// The stored and wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::PrimarySecondary => "PRIMARY_SECONDARY",
            Self::HigherEducation => "HIGHER_EDUCATION",
        }
    }

    /// Parses a stored name.
    pub fn from_name(name: &str) -> Option<Self> {
        [Self::PrimarySecondary, Self::HigherEducation]
            .into_iter()
            .find(|t| t.as_str() == name)
    }
}

/// Who may invite and remove guardians.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WhoCanManage {
    /// Administrators and the student's verified teachers.
    VerifiedTeachers,
    /// Administrators only.
    DomainAdminsOnly,
}

impl WhoCanManage {
    /// The stored and wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::VerifiedTeachers => "VERIFIED_TEACHERS",
            Self::DomainAdminsOnly => "DOMAIN_ADMINS_ONLY",
        }
    }

    /// Parses a stored name.
    pub fn from_name(name: &str) -> Option<Self> {
        [Self::VerifiedTeachers, Self::DomainAdminsOnly]
            .into_iter()
            .find(|t| t.as_str() == name)
    }
}

/// The language of the emails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Locale {
    /// English.
    En,
    /// Dutch.
    Nl,
}

impl Locale {
    /// The language tag.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::En => "en",
            Self::Nl => "nl",
        }
    }

    /// Parses a language tag (`en`, `nl`, case-insensitive).
    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        match raw.trim().to_ascii_lowercase().as_str() {
            "en" => Ok(Self::En),
            "nl" => Ok(Self::Nl),
            _ => Err(ValidationError::invalid(
                "default_locale",
                "locale must be \"en\" or \"nl\"",
            )),
        }
    }
}

/// Inclusive bounds of the numeric settings (api.md).
pub const TTL_DAYS: (i32, i32) = (1, 120);
/// Bounds of `max_guardians_per_student`.
pub const GUARDIANS_PER_STUDENT: (i32, i32) = (1, 20);
/// Bounds of `max_students_per_guardian`.
pub const STUDENTS_PER_GUARDIAN: (i32, i32) = (1, 100);
/// Bounds of `summary_send_hour`.
pub const SEND_HOURS: (i32, i32) = (0, 23);
/// How many partner domains a domain may allowlist.
pub const MAX_ALLOWLISTED_DOMAINS: usize = 100;
/// Bounds of `invitation_reminder_days` (0 turns reminders off).
pub const REMINDER_DAYS: (i32, i32) = (0, 60);
/// Days before expiry a PENDING invitation is reminded of, for domains that never chose.
pub const DEFAULT_REMINDER_DAYS: i32 = 7;
/// Bounds of `ended_retention_days`.
pub const ENDED_RETENTION_DAYS: (i32, i32) = (1, 3650);
/// Days an ended invitation keeps its addresses and the guardian's profile, by default.
pub const DEFAULT_ENDED_RETENTION_DAYS: i32 = 90;
/// Bounds of `audit_retention_days` (at least the change feed's retention and a school month).
pub const AUDIT_RETENTION_DAYS: (i32, i32) = (30, 3650);
/// Days audit events are kept, by default.
pub const DEFAULT_AUDIT_RETENTION_DAYS: i32 = 400;
/// Longest school name and From name, in characters: both go into headers and subjects.
pub const MAX_NAME_CHARS: usize = 100;

/// The guardian settings of one domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DomainSettings {
    /// The domain they belong to.
    pub domain: DomainName,
    /// The kind of school.
    pub institution_type: InstitutionType,
    /// Whether guardians may be invited, accept, and get email.
    pub guardian_access_enabled: bool,
    /// Who may manage guardians.
    pub who_can_manage: WhoCanManage,
    /// Partner domains whose students may join this domain's courses.
    pub allowlisted_domains: Vec<DomainName>,
    /// How long invitations stay acceptable.
    pub invitation_ttl_days: i32,
    /// ACCEPTED + PENDING per student.
    pub max_guardians_per_student: i32,
    /// Students per guardian address.
    pub max_students_per_guardian: i32,
    /// Language of the emails.
    pub default_locale: Locale,
    /// The zone summaries' send hour is read in, for guardians who chose none.
    pub summary_time_zone: Tz,
    /// The local hour summaries go at (0-23).
    pub summary_send_hour: i32,
    /// How often guardians who chose nothing get a summary.
    pub default_summary_frequency: Frequency,
    /// The school's name as families know it, used in every email (else the domain name).
    pub school_name: Option<String>,
    /// The display name the emails come from (else the school's name, else the service's).
    pub mail_from_name: Option<String>,
    /// Where replies to the emails go (else to the service's From address).
    pub reply_to_address: Option<Email>,
    /// Days before expiry a PENDING invitation gets one reminder; 0 sends none.
    pub invitation_reminder_days: i32,
    /// Days after an invitation ended (REMOVED, EXPIRED) that its addresses and the guardian's
    /// profile are replaced by keyed hashes.
    pub ended_retention_days: i32,
    /// Days the audit trail keeps an event.
    pub audit_retention_days: i32,
    /// Incremented by every stored change; 0 for defaults never stored. The etag is derived from it.
    pub version: i64,
    /// When last stored; `None` for defaults never stored.
    pub update_time: Option<DateTime<Utc>>,
}

impl DomainSettings {
    /// What a domain with nothing stored gets: primary/secondary, access on, verified teachers.
    pub fn defaults(domain: DomainName) -> Self {
        Self {
            domain,
            institution_type: InstitutionType::PrimarySecondary,
            guardian_access_enabled: InstitutionType::PrimarySecondary.default_guardian_access(),
            who_can_manage: WhoCanManage::VerifiedTeachers,
            allowlisted_domains: Vec::new(),
            invitation_ttl_days: TTL_DAYS.1,
            max_guardians_per_student: GUARDIANS_PER_STUDENT.1,
            max_students_per_guardian: 20,
            default_locale: Locale::En,
            summary_time_zone: Tz::UTC,
            summary_send_hour: DEFAULT_SEND_HOUR as i32,
            default_summary_frequency: Frequency::Weekly,
            school_name: None,
            mail_from_name: None,
            reply_to_address: None,
            invitation_reminder_days: DEFAULT_REMINDER_DAYS,
            ended_retention_days: DEFAULT_ENDED_RETENTION_DAYS,
            audit_retention_days: DEFAULT_AUDIT_RETENTION_DAYS,
            version: 0,
            update_time: None,
        }
    }

    /// The opaque etag clients send back: the version in quotes, as HTTP does.
    pub fn etag(&self) -> String {
        format!("\"{}\"", self.version)
    }

    /// How the emails name the school: its chosen name, else the domain.
    pub fn school_display_name(&self) -> &str {
        self.school_name.as_deref().unwrap_or(self.domain.as_str())
    }

    /// The From display name of the emails, when the domain set one (or a school name).
    pub fn sender_name(&self) -> Option<&str> {
        self.mail_from_name
            .as_deref()
            .or(self.school_name.as_deref())
    }

    /// When an invitation sent at `sent` and acceptable until `expires` is reminded: that many
    /// days before it expires, if reminders are on and that moment comes after the sending.
    pub fn reminder_time(
        &self,
        sent: DateTime<Utc>,
        expires: DateTime<Utc>,
    ) -> Option<DateTime<Utc>> {
        if self.invitation_reminder_days == 0 {
            return None;
        }
        let at = expires - chrono::TimeDelta::days(i64::from(self.invitation_reminder_days));
        (at > sent).then_some(at)
    }

    /// Applies a patch and returns the settings to store, enforcing the institution-type rule:
    /// when the type changes and the patch does not set guardian access, access follows the new
    /// type's default.
    pub fn apply(&self, patch: SettingsPatch) -> Result<Self, ValidationError> {
        let mut next = self.clone();
        if let Some(kind) = patch.institution_type {
            if kind != self.institution_type && patch.guardian_access_enabled.is_none() {
                next.guardian_access_enabled = kind.default_guardian_access();
            }
            next.institution_type = kind;
        }
        if let Some(enabled) = patch.guardian_access_enabled {
            next.guardian_access_enabled = enabled;
        }
        if let Some(who) = patch.who_can_manage {
            next.who_can_manage = who;
        }
        if let Some(domains) = patch.allowlisted_domains {
            next.allowlisted_domains = normalise_allowlist(&self.domain, domains)?;
        }
        if let Some(days) = patch.invitation_ttl_days {
            next.invitation_ttl_days = in_range("invitation_ttl_days", days, TTL_DAYS)?;
        }
        if let Some(n) = patch.max_guardians_per_student {
            next.max_guardians_per_student =
                in_range("max_guardians_per_student", n, GUARDIANS_PER_STUDENT)?;
        }
        if let Some(n) = patch.max_students_per_guardian {
            next.max_students_per_guardian =
                in_range("max_students_per_guardian", n, STUDENTS_PER_GUARDIAN)?;
        }
        if let Some(locale) = patch.default_locale {
            next.default_locale = locale;
        }
        if let Some(zone) = patch.summary_time_zone {
            next.summary_time_zone = zone;
        }
        if let Some(hour) = patch.summary_send_hour {
            next.summary_send_hour = in_range("summary_send_hour", hour, SEND_HOURS)?;
        }
        if let Some(frequency) = patch.default_summary_frequency {
            next.default_summary_frequency = frequency;
        }
        if let Some(name) = patch.school_name {
            next.school_name = display_name("school_name", &name)?;
        }
        if let Some(name) = patch.mail_from_name {
            next.mail_from_name = display_name("mail_from_name", &name)?;
        }
        if let Some(raw) = patch.reply_to_address {
            next.reply_to_address = match raw.trim() {
                "" => None,
                address => Some(Email::parse(address).map_err(|_| {
                    ValidationError::invalid(
                        "reply_to_address",
                        "reply_to_address must be an email address (or empty for none)",
                    )
                })?),
            };
        }
        if let Some(days) = patch.invitation_reminder_days {
            next.invitation_reminder_days =
                in_range("invitation_reminder_days", days, REMINDER_DAYS)?;
        }
        if let Some(days) = patch.ended_retention_days {
            next.ended_retention_days =
                in_range("ended_retention_days", days, ENDED_RETENTION_DAYS)?;
        }
        if let Some(days) = patch.audit_retention_days {
            next.audit_retention_days =
                in_range("audit_retention_days", days, AUDIT_RETENTION_DAYS)?;
        }
        Ok(next)
    }

    /// The fields whose values differ from `before`, by API name, old and new in wire form,
    /// for the audit trail.
    pub fn changes_from(&self, before: &Self) -> Vec<SettingChange> {
        let fields = [
            (
                "institution_type",
                before.institution_type.as_str().to_owned(),
                self.institution_type.as_str().to_owned(),
            ),
            (
                "guardian_access_enabled",
                before.guardian_access_enabled.to_string(),
                self.guardian_access_enabled.to_string(),
            ),
            (
                "who_can_manage",
                before.who_can_manage.as_str().to_owned(),
                self.who_can_manage.as_str().to_owned(),
            ),
            (
                "allowlisted_domains",
                allowlist_text(&before.allowlisted_domains),
                allowlist_text(&self.allowlisted_domains),
            ),
            (
                "invitation_ttl_days",
                before.invitation_ttl_days.to_string(),
                self.invitation_ttl_days.to_string(),
            ),
            (
                "max_guardians_per_student",
                before.max_guardians_per_student.to_string(),
                self.max_guardians_per_student.to_string(),
            ),
            (
                "max_students_per_guardian",
                before.max_students_per_guardian.to_string(),
                self.max_students_per_guardian.to_string(),
            ),
            (
                "default_locale",
                before.default_locale.as_str().to_owned(),
                self.default_locale.as_str().to_owned(),
            ),
            (
                "summary_time_zone",
                before.summary_time_zone.name().to_owned(),
                self.summary_time_zone.name().to_owned(),
            ),
            (
                "summary_send_hour",
                before.summary_send_hour.to_string(),
                self.summary_send_hour.to_string(),
            ),
            (
                "default_summary_frequency",
                before.default_summary_frequency.as_str().to_owned(),
                self.default_summary_frequency.as_str().to_owned(),
            ),
            (
                "school_name",
                before.school_name.clone().unwrap_or_default(),
                self.school_name.clone().unwrap_or_default(),
            ),
            (
                "mail_from_name",
                before.mail_from_name.clone().unwrap_or_default(),
                self.mail_from_name.clone().unwrap_or_default(),
            ),
            (
                // The audit trail keeps that it changed, not the address.
                "reply_to_address",
                presence(before.reply_to_address.is_some()),
                presence(self.reply_to_address.is_some()),
            ),
            (
                "invitation_reminder_days",
                before.invitation_reminder_days.to_string(),
                self.invitation_reminder_days.to_string(),
            ),
            (
                "ended_retention_days",
                before.ended_retention_days.to_string(),
                self.ended_retention_days.to_string(),
            ),
            (
                "audit_retention_days",
                before.audit_retention_days.to_string(),
                self.audit_retention_days.to_string(),
            ),
        ];
        fields
            .into_iter()
            .filter(|(_, old, new)| old != new)
            .map(|(field, old_value, new_value)| SettingChange {
                field: field.to_owned(),
                old_value,
                new_value,
            })
            .collect()
    }
}

/// Whether an address is set, for the audit trail (which keeps no address).
fn presence(set: bool) -> String {
    if set { "set" } else { "" }.to_owned()
}

/// A name shown in emails: trimmed, empty for none, one line, at most [`MAX_NAME_CHARS`].
fn display_name(field: &str, raw: &str) -> Result<Option<String>, ValidationError> {
    let name = raw.trim();
    if name.is_empty() {
        return Ok(None);
    }
    if name.chars().any(char::is_control) {
        return Err(ValidationError::invalid(
            field,
            format!("{field} must be one line without control characters"),
        ));
    }
    if name.chars().count() > MAX_NAME_CHARS {
        return Err(ValidationError::invalid(
            field,
            format!("{field} must be at most {MAX_NAME_CHARS} characters"),
        ));
    }
    Ok(Some(name.to_owned()))
}

/// An allowlist as one comma-separated value (empty for none).
fn allowlist_text(domains: &[DomainName]) -> String {
    domains
        .iter()
        .map(DomainName::as_str)
        .collect::<Vec<_>>()
        .join(",")
}

/// The fields an update changes; `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SettingsPatch {
    /// New institution type.
    pub institution_type: Option<InstitutionType>,
    /// New guardian access.
    pub guardian_access_enabled: Option<bool>,
    /// New management policy.
    pub who_can_manage: Option<WhoCanManage>,
    /// New allowlist (replaces the old one).
    pub allowlisted_domains: Option<Vec<DomainName>>,
    /// New invitation lifetime.
    pub invitation_ttl_days: Option<i32>,
    /// New per-student limit.
    pub max_guardians_per_student: Option<i32>,
    /// New per-guardian limit.
    pub max_students_per_guardian: Option<i32>,
    /// New email language.
    pub default_locale: Option<Locale>,
    /// New zone of the summaries' send hour.
    pub summary_time_zone: Option<Tz>,
    /// New send hour.
    pub summary_send_hour: Option<i32>,
    /// New default frequency.
    pub default_summary_frequency: Option<Frequency>,
    /// New school name (empty clears it).
    pub school_name: Option<String>,
    /// New From display name (empty clears it).
    pub mail_from_name: Option<String>,
    /// New Reply-To address (empty clears it).
    pub reply_to_address: Option<String>,
    /// New reminder lead time in days (0 turns reminders off).
    pub invitation_reminder_days: Option<i32>,
    /// New retention of ended invitations' personal data, in days.
    pub ended_retention_days: Option<i32>,
    /// New retention of audit events, in days.
    pub audit_retention_days: Option<i32>,
}

fn in_range(field: &str, value: i32, (min, max): (i32, i32)) -> Result<i32, ValidationError> {
    if (min..=max).contains(&value) {
        Ok(value)
    } else {
        Err(ValidationError::invalid(
            field,
            format!("{field} must be between {min} and {max}"),
        ))
    }
}

fn normalise_allowlist(
    own: &DomainName,
    mut domains: Vec<DomainName>,
) -> Result<Vec<DomainName>, ValidationError> {
    domains.sort();
    domains.dedup();
    if domains.len() > MAX_ALLOWLISTED_DOMAINS {
        return Err(ValidationError::invalid(
            "allowlisted_domains",
            format!("at most {MAX_ALLOWLISTED_DOMAINS} domains may be allowlisted"),
        ));
    }
    if domains.contains(own) {
        return Err(ValidationError::invalid(
            "allowlisted_domains",
            "a domain cannot allowlist itself",
        ));
    }
    Ok(domains)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn defaults() -> DomainSettings {
        DomainSettings::defaults(DomainName::parse("school.example").unwrap())
    }

    #[test]
    fn defaults_match_the_contract() {
        let s = defaults();
        assert_eq!(s.institution_type, InstitutionType::PrimarySecondary);
        assert!(s.guardian_access_enabled);
        assert_eq!(s.who_can_manage, WhoCanManage::VerifiedTeachers);
        assert_eq!(s.invitation_ttl_days, 120);
        assert_eq!(s.max_guardians_per_student, 20);
        assert_eq!(s.max_students_per_guardian, 20);
        assert_eq!(s.default_locale, Locale::En);
        assert_eq!(s.etag(), "\"0\"");
    }

    #[test]
    fn changes_name_each_changed_field_with_old_and_new_values() {
        let before = defaults();
        let after = before
            .apply(SettingsPatch {
                institution_type: Some(InstitutionType::HigherEducation),
                allowlisted_domains: Some(vec![
                    DomainName::parse("b.example").unwrap(),
                    DomainName::parse("a.example").unwrap(),
                ]),
                invitation_ttl_days: Some(120),
                ..Default::default()
            })
            .unwrap();
        let changes = after.changes_from(&before);
        let seen: Vec<(&str, &str, &str)> = changes
            .iter()
            .map(|c| (c.field.as_str(), c.old_value.as_str(), c.new_value.as_str()))
            .collect();
        assert_eq!(
            seen,
            [
                ("institution_type", "PRIMARY_SECONDARY", "HIGHER_EDUCATION"),
                ("guardian_access_enabled", "true", "false"),
                ("allowlisted_domains", "", "a.example,b.example"),
            ]
        );
        assert!(after.changes_from(&after).is_empty());
    }

    #[test]
    fn changing_institution_type_moves_access_to_its_default() {
        let higher = defaults()
            .apply(SettingsPatch {
                institution_type: Some(InstitutionType::HigherEducation),
                ..Default::default()
            })
            .unwrap();
        assert!(!higher.guardian_access_enabled);
        let back = higher
            .apply(SettingsPatch {
                institution_type: Some(InstitutionType::PrimarySecondary),
                ..Default::default()
            })
            .unwrap();
        assert!(back.guardian_access_enabled);
    }

    #[test]
    fn explicit_access_wins_over_the_type_default() {
        let s = defaults()
            .apply(SettingsPatch {
                institution_type: Some(InstitutionType::HigherEducation),
                guardian_access_enabled: Some(true),
                ..Default::default()
            })
            .unwrap();
        assert!(s.guardian_access_enabled);
    }

    #[test]
    fn unchanged_type_keeps_a_chosen_access() {
        let off = defaults()
            .apply(SettingsPatch {
                guardian_access_enabled: Some(false),
                ..Default::default()
            })
            .unwrap();
        let same_type = off
            .apply(SettingsPatch {
                institution_type: Some(InstitutionType::PrimarySecondary),
                ..Default::default()
            })
            .unwrap();
        assert!(!same_type.guardian_access_enabled);
    }

    #[test]
    fn numeric_settings_are_bounded_inclusively() {
        type PatchOf = fn(i32) -> SettingsPatch;
        let cases: [(PatchOf, (i32, i32)); 5] = [
            (
                |v| SettingsPatch {
                    ended_retention_days: Some(v),
                    ..Default::default()
                },
                ENDED_RETENTION_DAYS,
            ),
            (
                |v| SettingsPatch {
                    audit_retention_days: Some(v),
                    ..Default::default()
                },
                AUDIT_RETENTION_DAYS,
            ),
            (
                |v| SettingsPatch {
                    invitation_ttl_days: Some(v),
                    ..Default::default()
                },
                TTL_DAYS,
            ),
            (
                |v| SettingsPatch {
                    max_guardians_per_student: Some(v),
                    ..Default::default()
                },
                GUARDIANS_PER_STUDENT,
            ),
            (
                |v| SettingsPatch {
                    max_students_per_guardian: Some(v),
                    ..Default::default()
                },
                STUDENTS_PER_GUARDIAN,
            ),
        ];
        for (patch, (min, max)) in cases {
            assert!(defaults().apply(patch(min)).is_ok());
            assert!(defaults().apply(patch(max)).is_ok());
            assert!(defaults().apply(patch(min - 1)).is_err());
            assert!(defaults().apply(patch(max + 1)).is_err());
        }
    }

    #[test]
    fn school_identity_is_trimmed_bounded_and_clearable() {
        let s = defaults()
            .apply(SettingsPatch {
                school_name: Some("  Lincoln High  ".into()),
                reply_to_address: Some("Office@Lincoln.k12.example".into()),
                ..Default::default()
            })
            .unwrap();
        assert_eq!(s.school_name.as_deref(), Some("Lincoln High"));
        assert_eq!(s.school_display_name(), "Lincoln High");
        assert_eq!(
            s.sender_name(),
            Some("Lincoln High"),
            "the From name follows the school"
        );
        assert_eq!(
            s.reply_to_address.as_ref().map(Email::as_str),
            Some("office@lincoln.k12.example")
        );
        let named = s
            .apply(SettingsPatch {
                mail_from_name: Some("Lincoln High office".into()),
                ..Default::default()
            })
            .unwrap();
        assert_eq!(named.sender_name(), Some("Lincoln High office"));
        let cleared = named
            .apply(SettingsPatch {
                school_name: Some(String::new()),
                mail_from_name: Some(" ".into()),
                reply_to_address: Some(String::new()),
                ..Default::default()
            })
            .unwrap();
        assert_eq!(cleared.school_display_name(), "school.example");
        assert_eq!(cleared.sender_name(), None);
        assert_eq!(cleared.reply_to_address, None);
        let audit = cleared.changes_from(&named);
        assert!(
            audit.iter().all(|c| !c.old_value.contains('@')),
            "the audit keeps no address: {audit:?}"
        );

        for bad in [
            SettingsPatch {
                school_name: Some("Lincoln\r\nBcc: x@y.example".into()),
                ..Default::default()
            },
            SettingsPatch {
                mail_from_name: Some("x".repeat(MAX_NAME_CHARS + 1)),
                ..Default::default()
            },
            SettingsPatch {
                reply_to_address: Some("not an address".into()),
                ..Default::default()
            },
            SettingsPatch {
                invitation_reminder_days: Some(REMINDER_DAYS.1 + 1),
                ..Default::default()
            },
            SettingsPatch {
                invitation_reminder_days: Some(-1),
                ..Default::default()
            },
        ] {
            assert!(defaults().apply(bad.clone()).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_reminder_comes_that_many_days_before_expiry_and_only_after_sending() {
        use chrono::TimeZone;
        let sent = Utc.with_ymd_and_hms(2026, 1, 1, 9, 0, 0).unwrap();
        let s = defaults();
        let expires = sent + chrono::TimeDelta::days(120);
        assert_eq!(
            s.reminder_time(sent, expires),
            Some(expires - chrono::TimeDelta::days(DEFAULT_REMINDER_DAYS.into()))
        );
        let short = sent + chrono::TimeDelta::days(7);
        assert_eq!(
            s.reminder_time(sent, short),
            None,
            "it would come at the sending"
        );
        let off = s
            .apply(SettingsPatch {
                invitation_reminder_days: Some(0),
                ..Default::default()
            })
            .unwrap();
        assert_eq!(off.reminder_time(sent, expires), None);
    }

    #[test]
    fn allowlist_is_deduplicated_and_cannot_name_itself() {
        let d = |s: &str| DomainName::parse(s).unwrap();
        let s = defaults()
            .apply(SettingsPatch {
                allowlisted_domains: Some(vec![d("b.example"), d("a.example"), d("b.example")]),
                ..Default::default()
            })
            .unwrap();
        assert_eq!(s.allowlisted_domains, vec![d("a.example"), d("b.example")]);
        let own = defaults().apply(SettingsPatch {
            allowlisted_domains: Some(vec![d("school.example")]),
            ..Default::default()
        });
        assert!(own.is_err());
    }
}
