//! Listings, settings and health: paging through everything and printing it as a table, CSV
//! or JSON lines.

use crate::client::{Client, describe};
use clap::{Subcommand, ValueEnum};
use guardian_service::proto::{
    DomainSettings, GetDomainSettingsRequest, InstitutionType, InvitationSource, InvitationState,
    ListGuardianInvitationsRequest, ListGuardiansRequest, UpdateDomainSettingsRequest,
    WhoCanManage,
};
use std::process::ExitCode;

/// How listings are printed.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum Format {
    /// Aligned columns.
    Table,
    /// CSV with a header.
    Csv,
    /// One JSON object per line.
    Json,
}

/// Prints `rows` under `header` in `format`.
pub(crate) fn print(format: Format, header: &[&str], rows: &[Vec<String>]) -> Result<(), String> {
    match format {
        Format::Table => {
            let widths: Vec<usize> = (0..header.len())
                .map(|i| {
                    rows.iter()
                        .map(|r| r[i].len())
                        .chain([header[i].len()])
                        .max()
                        .unwrap_or(0)
                })
                .collect();
            let line = |cells: Vec<&str>| {
                cells
                    .iter()
                    .zip(&widths)
                    .map(|(c, w)| format!("{c:<w$}"))
                    .collect::<Vec<_>>()
                    .join("  ")
            };
            println!("{}", line(header.to_vec()));
            for r in rows {
                println!("{}", line(r.iter().map(String::as_str).collect()));
            }
        }
        Format::Csv => {
            let mut out = csv::Writer::from_writer(std::io::stdout());
            out.write_record(header).map_err(|e| e.to_string())?;
            for r in rows {
                out.write_record(r).map_err(|e| e.to_string())?;
            }
            out.flush().map_err(|e| e.to_string())?;
        }
        Format::Json => {
            for r in rows {
                let object: serde_json::Map<String, serde_json::Value> = header
                    .iter()
                    .zip(r)
                    .map(|(k, v)| (k.to_string(), serde_json::Value::String(v.clone())))
                    .collect();
                println!("{}", serde_json::Value::Object(object));
            }
        }
    }
    Ok(())
}

/// MANUAL or SYNC; empty from a server that does not say.
fn source_name(raw: i32) -> String {
    match InvitationSource::try_from(raw) {
        Ok(InvitationSource::Unspecified) | Err(_) => String::new(),
        Ok(source) => source.as_str_name().to_owned(),
    }
}

pub(crate) async fn list_guardians(
    client: &Client,
    student: &str,
    format: Format,
) -> Result<ExitCode, String> {
    let mut rows = Vec::new();
    let mut token = String::new();
    loop {
        let page = client
            .guardians()
            .list_guardians(ListGuardiansRequest {
                student_id: student.into(),
                page_size: 500,
                page_token: token,
                ..Default::default()
            })
            .await
            .map_err(|s| describe(&s))?
            .into_inner();
        for g in page.guardians {
            let profile = g.guardian_profile.unwrap_or_default();
            rows.push(vec![
                g.student_id,
                g.student_email_address,
                g.student_display_name,
                g.guardian_id,
                profile.email_address,
                profile.display_name,
                g.invited_email_address,
                source_name(g.source),
            ]);
        }
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    print(
        format,
        &[
            "student",
            "student_email",
            "student_name",
            "guardian_id",
            "email",
            "name",
            "invited_email",
            "source",
        ],
        &rows,
    )?;
    Ok(ExitCode::SUCCESS)
}

pub(crate) async fn list_invitations(
    client: &Client,
    student: &str,
    states: &[String],
    format: Format,
) -> Result<ExitCode, String> {
    let states = states
        .iter()
        .map(|s| {
            InvitationState::from_str_name(&s.to_ascii_uppercase())
                .map(|s| s as i32)
                .ok_or(format!("unknown state {s}"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut rows = Vec::new();
    let mut token = String::new();
    loop {
        let page = client
            .guardians()
            .list_guardian_invitations(ListGuardianInvitationsRequest {
                student_id: student.into(),
                states: states.clone(),
                page_size: 500,
                page_token: token,
                ..Default::default()
            })
            .await
            .map_err(|s| describe(&s))?
            .into_inner();
        for i in page.invitations {
            let state = InvitationState::try_from(i.state)
                .map(|s| s.as_str_name())
                .unwrap_or("?")
                .to_owned();
            rows.push(vec![
                i.invitation_id,
                i.student_id,
                i.student_email_address,
                i.student_display_name,
                i.invited_email_address,
                state,
                source_name(i.source),
            ]);
        }
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    print(
        format,
        &[
            "invitation_id",
            "student",
            "student_email",
            "student_name",
            "invited_email",
            "state",
            "source",
        ],
        &rows,
    )?;
    Ok(ExitCode::SUCCESS)
}

/// `settings get` and `settings set`.
#[derive(Debug, Subcommand)]
// Parsed once per run from the command line: the size of `Set` costs nothing.
#[allow(clippy::large_enum_variant)]
pub(crate) enum SettingsAction {
    /// Print a domain's settings.
    Get {
        /// The domain.
        #[arg(long)]
        domain: String,
    },
    /// Change the given settings of a domain.
    Set {
        /// The domain.
        #[arg(long)]
        domain: String,
        /// verified-teachers or domain-admins-only.
        #[arg(long)]
        who_can_manage: Option<String>,
        /// on or off.
        #[arg(long)]
        guardian_access: Option<String>,
        /// primary-secondary or higher-education.
        #[arg(long)]
        institution_type: Option<String>,
        /// en or nl.
        #[arg(long)]
        locale: Option<String>,
        /// Invitation lifetime in days (1-120).
        #[arg(long)]
        invitation_ttl_days: Option<i32>,
        /// Guardians per student (1-20).
        #[arg(long)]
        max_guardians_per_student: Option<i32>,
        /// Students per guardian (1-100).
        #[arg(long)]
        max_students_per_guardian: Option<i32>,
        /// The school's name in every email ("" for the domain name).
        #[arg(long)]
        school_name: Option<String>,
        /// The From display name of the emails ("" for the school's name).
        #[arg(long)]
        mail_from_name: Option<String>,
        /// Where replies to the emails go ("" for none).
        #[arg(long)]
        reply_to: Option<String>,
        /// Days before expiry a pending invitation is reminded of (0 for no reminders).
        #[arg(long)]
        reminder_days: Option<i32>,
        /// Days an ended invitation keeps its addresses before they become stand-ins.
        #[arg(long)]
        ended_retention_days: Option<i32>,
        /// Days the audit trail keeps an event.
        #[arg(long)]
        audit_retention_days: Option<i32>,
    },
}

fn show(s: &DomainSettings) {
    println!("domain                     {}", s.domain);
    println!(
        "institution_type           {}",
        InstitutionType::try_from(s.institution_type)
            .map(|t| t.as_str_name())
            .unwrap_or("?")
    );
    println!("guardian_access_enabled    {}", s.guardian_access_enabled);
    println!(
        "who_can_manage             {}",
        WhoCanManage::try_from(s.who_can_manage)
            .map(|t| t.as_str_name())
            .unwrap_or("?")
    );
    println!(
        "allowlisted_domains        {}",
        s.allowlisted_domains.join(" ")
    );
    println!("invitation_ttl_days        {}", s.invitation_ttl_days);
    println!("max_guardians_per_student  {}", s.max_guardians_per_student);
    println!("max_students_per_guardian  {}", s.max_students_per_guardian);
    println!("default_locale             {}", s.default_locale);
    println!("school_name                {}", s.school_name);
    println!("mail_from_name             {}", s.mail_from_name);
    println!("reply_to_address           {}", s.reply_to_address);
    println!(
        "invitation_reminder_days   {}",
        s.invitation_reminder_days.unwrap_or_default()
    );
    println!(
        "ended_retention_days       {}",
        s.ended_retention_days.unwrap_or_default()
    );
    println!(
        "audit_retention_days       {}",
        s.audit_retention_days.unwrap_or_default()
    );
    println!("etag                       {}", s.etag);
}

pub(crate) async fn settings(client: &Client, action: SettingsAction) -> Result<ExitCode, String> {
    match action {
        SettingsAction::Get { domain } => {
            let s = client
                .settings()
                .get_domain_settings(GetDomainSettingsRequest { domain })
                .await
                .map_err(|s| describe(&s))?
                .into_inner()
                .settings
                .unwrap_or_default();
            show(&s);
        }
        SettingsAction::Set {
            domain,
            who_can_manage,
            guardian_access,
            institution_type,
            locale,
            invitation_ttl_days,
            max_guardians_per_student,
            max_students_per_guardian,
            school_name,
            mail_from_name,
            reply_to,
            reminder_days,
            ended_retention_days,
            audit_retention_days,
        } => {
            let mut s = DomainSettings {
                domain,
                ..Default::default()
            };
            let mut paths = Vec::new();
            if let Some(v) = who_can_manage {
                s.who_can_manage = match v.as_str() {
                    "verified-teachers" => WhoCanManage::VerifiedTeachers,
                    "domain-admins-only" => WhoCanManage::DomainAdminsOnly,
                    other => {
                        return Err(format!(
                            "--who-can-manage: {other}? use verified-teachers or domain-admins-only"
                        ));
                    }
                } as i32;
                paths.push("who_can_manage");
            }
            if let Some(v) = guardian_access {
                s.guardian_access_enabled = match v.as_str() {
                    "on" => true,
                    "off" => false,
                    other => return Err(format!("--guardian-access: {other}? use on or off")),
                };
                paths.push("guardian_access_enabled");
            }
            if let Some(v) = institution_type {
                s.institution_type = match v.as_str() {
                    "primary-secondary" => InstitutionType::PrimarySecondary,
                    "higher-education" => InstitutionType::HigherEducation,
                    other => {
                        return Err(format!(
                            "--institution-type: {other}? use primary-secondary or higher-education"
                        ));
                    }
                } as i32;
                paths.push("institution_type");
            }
            if let Some(v) = locale {
                s.default_locale = v;
                paths.push("default_locale");
            }
            if let Some(v) = invitation_ttl_days {
                s.invitation_ttl_days = v;
                paths.push("invitation_ttl_days");
            }
            if let Some(v) = max_guardians_per_student {
                s.max_guardians_per_student = v;
                paths.push("max_guardians_per_student");
            }
            if let Some(v) = max_students_per_guardian {
                s.max_students_per_guardian = v;
                paths.push("max_students_per_guardian");
            }
            if let Some(v) = school_name {
                s.school_name = v;
                paths.push("school_name");
            }
            if let Some(v) = mail_from_name {
                s.mail_from_name = v;
                paths.push("mail_from_name");
            }
            if let Some(v) = reply_to {
                s.reply_to_address = v;
                paths.push("reply_to_address");
            }
            if let Some(v) = reminder_days {
                s.invitation_reminder_days = Some(v);
                paths.push("invitation_reminder_days");
            }
            if let Some(v) = ended_retention_days {
                s.ended_retention_days = Some(v);
                paths.push("ended_retention_days");
            }
            if let Some(v) = audit_retention_days {
                s.audit_retention_days = Some(v);
                paths.push("audit_retention_days");
            }
            if paths.is_empty() {
                return Err("name at least one setting to change".into());
            }
            let s = client
                .settings()
                .update_domain_settings(UpdateDomainSettingsRequest {
                    settings: Some(s),
                    update_mask: Some(prost_types::FieldMask {
                        paths: paths.into_iter().map(String::from).collect(),
                    }),
                    etag: String::new(),
                })
                .await
                .map_err(|s| describe(&s))?
                .into_inner()
                .settings
                .unwrap_or_default();
            show(&s);
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub(crate) async fn health(server: &str) -> Result<ExitCode, String> {
    use tonic_health::pb::{
        HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
    };
    let channel = crate::client::connect_channel(server).await?;
    let status = HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .map_err(|e| format!("health check failed: {}", e.message()))?
        .into_inner()
        .status();
    println!("{}", status.as_str_name());
    Ok(if status == ServingStatus::Serving {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
