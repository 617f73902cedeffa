//! SettingsService: proto <-> domain for settings, and the handlers.

use super::convert::{frequency_from_proto, frequency_to_proto, missing, parse_field, timestamp};
use crate::app::{App, SettingsUpdate};
use crate::domain::summary::schedule::parse_zone;
use crate::domain::{
    DomainName, DomainSettings, InstitutionType, Locale, SettingsPatch, ValidationError,
    WhoCanManage,
};
use crate::grpc::authorized;
use crate::proto::{self, settings_service_server::SettingsService};
use tonic::{Request, Response, Status};

/// The settings service over the use cases.
#[derive(Debug, Clone)]
pub struct SettingsApi {
    app: App,
}

impl SettingsApi {
    /// Serves `app`.
    pub fn new(app: App) -> Self {
        Self { app }
    }
}

#[tonic::async_trait]
impl SettingsService for SettingsApi {
    async fn get_domain_settings(
        &self,
        request: Request<proto::GetDomainSettingsRequest>,
    ) -> Result<Response<proto::GetDomainSettingsResponse>, Status> {
        let who = authorized(&request)?;
        let proto::GetDomainSettingsRequest { domain } = request.into_inner();
        let domain = parse_field("domain", &domain, DomainName::parse)?;
        let settings = self.app.get_settings(&who, &domain).await?;
        Ok(Response::new(proto::GetDomainSettingsResponse {
            settings: Some(to_proto(&settings)),
        }))
    }

    async fn update_domain_settings(
        &self,
        request: Request<proto::UpdateDomainSettingsRequest>,
    ) -> Result<Response<proto::UpdateDomainSettingsResponse>, Status> {
        super::convert::scoped(async move {
            let who = authorized(&request)?;
            let update = parse_update(request.into_inner())?;
            let settings = self.app.update_settings(&who, update).await?;
            let response = proto::UpdateDomainSettingsResponse {
                settings: Some(to_proto(&settings)),
                ..Default::default()
            };
            super::convert::stamped(&self.app, Response::new(response)).await
        })
        .await
    }
}

/// The proto form of settings.
pub(super) fn to_proto(s: &DomainSettings) -> proto::DomainSettings {
    proto::DomainSettings {
        domain: s.domain.to_string(),
        institution_type: match s.institution_type {
            InstitutionType::PrimarySecondary => proto::InstitutionType::PrimarySecondary,
            InstitutionType::HigherEducation => proto::InstitutionType::HigherEducation,
        } as i32,
        guardian_access_enabled: s.guardian_access_enabled,
        who_can_manage: match s.who_can_manage {
            WhoCanManage::VerifiedTeachers => proto::WhoCanManage::VerifiedTeachers,
            WhoCanManage::DomainAdminsOnly => proto::WhoCanManage::DomainAdminsOnly,
        } as i32,
        allowlisted_domains: s
            .allowlisted_domains
            .iter()
            .map(ToString::to_string)
            .collect(),
        invitation_ttl_days: s.invitation_ttl_days,
        max_guardians_per_student: s.max_guardians_per_student,
        max_students_per_guardian: s.max_students_per_guardian,
        default_locale: s.default_locale.as_str().to_owned(),
        etag: s.etag(),
        update_time: s.update_time.map(timestamp),
        summary_time_zone: s.summary_time_zone.name().to_owned(),
        summary_send_hour: Some(s.summary_send_hour),
        default_summary_frequency: frequency_to_proto(s.default_summary_frequency) as i32,
        school_name: s.school_name.clone().unwrap_or_default(),
        mail_from_name: s.mail_from_name.clone().unwrap_or_default(),
        reply_to_address: s
            .reply_to_address
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_default(),
        invitation_reminder_days: Some(s.invitation_reminder_days),
        ended_retention_days: Some(s.ended_retention_days),
        audit_retention_days: Some(s.audit_retention_days),
    }
}

/// The fields a mask may name.
const WRITABLE: [&str; 17] = [
    "institution_type",
    "guardian_access_enabled",
    "who_can_manage",
    "allowlisted_domains",
    "invitation_ttl_days",
    "max_guardians_per_student",
    "max_students_per_guardian",
    "default_locale",
    "summary_time_zone",
    "summary_send_hour",
    "default_summary_frequency",
    "school_name",
    "mail_from_name",
    "reply_to_address",
    "invitation_reminder_days",
    "ended_retention_days",
    "audit_retention_days",
];

fn parse_update(
    req: proto::UpdateDomainSettingsRequest,
) -> Result<SettingsUpdate, ValidationError> {
    let proto::UpdateDomainSettingsRequest {
        settings,
        update_mask,
        etag,
    } = req;
    let settings = settings.ok_or_else(|| missing("settings"))?;
    let proto::DomainSettings {
        domain,
        institution_type,
        guardian_access_enabled,
        who_can_manage,
        allowlisted_domains,
        invitation_ttl_days,
        max_guardians_per_student,
        max_students_per_guardian,
        default_locale,
        etag: settings_etag,
        update_time: _,
        summary_time_zone,
        summary_send_hour,
        default_summary_frequency,
        school_name,
        mail_from_name,
        reply_to_address,
        invitation_reminder_days,
        ended_retention_days,
        audit_retention_days,
    } = settings;
    let domain = parse_field("settings.domain", &domain, DomainName::parse)?;
    let paths: Vec<String> = match update_mask {
        Some(mask) if mask.paths.iter().any(|p| p == "*") => {
            WRITABLE.iter().map(|p| p.to_string()).collect()
        }
        Some(mask) if !mask.paths.is_empty() => mask.paths,
        // AIP-134: without a mask, the populated fields are the ones to change.
        _ => {
            let populated = [
                institution_type != 0,
                guardian_access_enabled,
                who_can_manage != 0,
                !allowlisted_domains.is_empty(),
                invitation_ttl_days != 0,
                max_guardians_per_student != 0,
                max_students_per_guardian != 0,
                !default_locale.is_empty(),
                !summary_time_zone.is_empty(),
                summary_send_hour.is_some(),
                default_summary_frequency != 0,
                !school_name.is_empty(),
                !mail_from_name.is_empty(),
                !reply_to_address.is_empty(),
                invitation_reminder_days.is_some(),
                ended_retention_days.is_some(),
                audit_retention_days.is_some(),
            ];
            WRITABLE
                .iter()
                .zip(populated)
                .filter(|(_, set)| *set)
                .map(|(p, _)| p.to_string())
                .collect()
        }
    };
    let mut patch = SettingsPatch::default();
    for path in &paths {
        let field = format!("settings.{path}");
        match path.as_str() {
            "institution_type" => {
                patch.institution_type =
                    Some(match proto::InstitutionType::try_from(institution_type) {
                        Ok(proto::InstitutionType::PrimarySecondary) => {
                            InstitutionType::PrimarySecondary
                        }
                        Ok(proto::InstitutionType::HigherEducation) => {
                            InstitutionType::HigherEducation
                        }
                        Ok(proto::InstitutionType::Unspecified) | Err(_) => {
                            return Err(ValidationError::invalid(
                                &field,
                                "institution_type must be PRIMARY_SECONDARY or HIGHER_EDUCATION",
                            ));
                        }
                    });
            }
            "guardian_access_enabled" => {
                patch.guardian_access_enabled = Some(guardian_access_enabled)
            }
            "who_can_manage" => {
                patch.who_can_manage = Some(match proto::WhoCanManage::try_from(who_can_manage) {
                    Ok(proto::WhoCanManage::VerifiedTeachers) => WhoCanManage::VerifiedTeachers,
                    Ok(proto::WhoCanManage::DomainAdminsOnly) => WhoCanManage::DomainAdminsOnly,
                    Ok(proto::WhoCanManage::Unspecified) | Err(_) => {
                        return Err(ValidationError::invalid(
                            &field,
                            "who_can_manage must be VERIFIED_TEACHERS or DOMAIN_ADMINS_ONLY",
                        ));
                    }
                });
            }
            "allowlisted_domains" => {
                let parsed = allowlisted_domains
                    .iter()
                    .enumerate()
                    .map(|(i, d)| parse_field(&format!("{field}[{i}]"), d, DomainName::parse))
                    .collect::<Result<Vec<_>, _>>()?;
                patch.allowlisted_domains = Some(parsed);
            }
            "invitation_ttl_days" => patch.invitation_ttl_days = Some(invitation_ttl_days),
            "max_guardians_per_student" => {
                patch.max_guardians_per_student = Some(max_guardians_per_student)
            }
            "max_students_per_guardian" => {
                patch.max_students_per_guardian = Some(max_students_per_guardian)
            }
            "default_locale" => {
                patch.default_locale = Some(parse_field(&field, &default_locale, Locale::parse)?);
            }
            "summary_time_zone" => {
                patch.summary_time_zone = Some(parse_zone(&field, &summary_time_zone)?);
            }
            "summary_send_hour" => {
                patch.summary_send_hour = Some(summary_send_hour.ok_or_else(|| {
                    ValidationError::invalid(&field, "summary_send_hour is required (0-23)")
                })?);
            }
            "default_summary_frequency" => {
                patch.default_summary_frequency =
                    Some(frequency_from_proto(&field, default_summary_frequency)?);
            }
            "school_name" => patch.school_name = Some(school_name.clone()),
            "mail_from_name" => patch.mail_from_name = Some(mail_from_name.clone()),
            "reply_to_address" => patch.reply_to_address = Some(reply_to_address.clone()),
            "invitation_reminder_days" => {
                patch.invitation_reminder_days =
                    Some(invitation_reminder_days.ok_or_else(|| {
                        ValidationError::invalid(
                            &field,
                            "invitation_reminder_days is required (0-60)",
                        )
                    })?);
            }
            "ended_retention_days" => {
                patch.ended_retention_days = Some(ended_retention_days.ok_or_else(|| {
                    ValidationError::invalid(&field, "ended_retention_days is required (1-3650)")
                })?);
            }
            "audit_retention_days" => {
                patch.audit_retention_days = Some(audit_retention_days.ok_or_else(|| {
                    ValidationError::invalid(&field, "audit_retention_days is required (30-3650)")
                })?);
            }
            other => {
                return Err(ValidationError::invalid(
                    "update_mask",
                    format!("{other:?} is not a writable field of DomainSettings"),
                ));
            }
        }
    }
    let etag = [etag, settings_etag].into_iter().find(|e| !e.is_empty());
    Ok(SettingsUpdate {
        domain,
        patch,
        etag,
    })
}
