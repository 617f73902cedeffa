//! The export's forms: one JSON document, or a zip of CSV files with the same columns. Each
//! kind of record is written as (column, value) pairs once, and both forms are made from them.

use super::super::{AppError, AppResult};
use super::gather::{PersonRecords, PersonSelector};
use crate::domain::summary::{SummaryDelivery, SummaryPreferences};
use crate::domain::{AuditEvent, Invitation, OutboxMessage, User};
use chrono::{DateTime, SecondsFormat, Utc};
use std::io::Write;

/// The form of an export.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    /// One JSON document.
    Json,
    /// A zip of CSV files.
    CsvZip,
}

/// A rendered export.
#[derive(Debug, Clone)]
pub struct Exported {
    /// Its media type.
    pub content_type: &'static str,
    /// A file name for it (never a name or an address).
    pub file_name: String,
    /// The bytes.
    pub bytes: Vec<u8>,
}

/// One record as named values; `None` is an empty cell or a JSON null.
type Record = Vec<(&'static str, Option<String>)>;

/// A kind of record with its column names (written even when there are no records).
struct Table {
    name: &'static str,
    columns: &'static [&'static str],
    records: Vec<Record>,
}

/// Renders `records` in `format`.
pub(super) fn render(
    person: &PersonSelector,
    records: &PersonRecords,
    format: ExportFormat,
    now: DateTime<Utc>,
) -> AppResult<Exported> {
    let tables = tables(records);
    let stamp = now.format("%Y%m%dT%H%M%SZ");
    match format {
        ExportFormat::Json => Ok(Exported {
            content_type: "application/json",
            file_name: format!("person-export-{stamp}.json"),
            bytes: json(person, records, &tables, now),
        }),
        ExportFormat::CsvZip => Ok(Exported {
            content_type: "application/zip",
            file_name: format!("person-export-{stamp}.zip"),
            bytes: zip(person, records, &tables, now)
                .map_err(|e| AppError::Internal(format!("writing the export: {e}")))?,
        }),
    }
}

fn time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn some(value: impl Into<String>) -> Option<String> {
    Some(value.into())
}

/// Who the export is about and how complete it is, as named values.
fn about(person: &PersonSelector, records: &PersonRecords, now: DateTime<Utc>) -> Record {
    let join = |values: Vec<&str>| values.join(" ");
    vec![
        ("format", some("guardian-service person export v1")),
        ("exported_at", some(time(now))),
        (
            "kind",
            some(if person.is_guardian() {
                "guardian"
            } else {
                "student"
            }),
        ),
        (
            "guardian_ids",
            some(join(
                records.guardian_ids.iter().map(|i| i.as_str()).collect(),
            )),
        ),
        (
            "email_addresses",
            some(join(records.addresses.iter().map(|a| a.as_str()).collect())),
        ),
        // false: another school holds records of the person too; theirs are not here.
        ("complete", some(records.whole_person.to_string())),
    ]
}

fn tables(records: &PersonRecords) -> Vec<Table> {
    vec![
        Table {
            name: "student",
            columns: &[
                "user_id",
                "domain",
                "email_address",
                "display_name",
                "locale",
            ],
            records: records.student.iter().map(user).collect(),
        },
        Table {
            name: "invitations",
            columns: INVITATION_COLUMNS,
            records: records.invitations.iter().map(invitation).collect(),
        },
        Table {
            name: "events",
            columns: &[
                "event_id",
                "domain",
                "action",
                "actor_id",
                "student_id",
                "invitation_id",
                "request_id",
                "create_time",
            ],
            records: records.events.iter().map(event).collect(),
        },
        Table {
            name: "emails",
            columns: &[
                "message_id",
                "invitation_id",
                "recipient",
                "subject",
                "status",
                "attempts",
                "create_time",
                "sent_time",
            ],
            records: records.messages.iter().map(message).collect(),
        },
        Table {
            name: "summary_preferences",
            columns: &[
                "guardian_id",
                "frequency",
                "weekly_day",
                "time_zone",
                "locale",
                "update_time",
            ],
            records: records.preferences.iter().map(preferences).collect(),
        },
        Table {
            name: "summary_deliveries",
            columns: &[
                "guardian_id",
                "period_key",
                "frequency",
                "period_start",
                "period_end",
                "student_ids",
                "missing_count",
                "upcoming_count",
                "activity_count",
                "outcome",
                "create_time",
            ],
            records: records.deliveries.iter().map(delivery).collect(),
        },
    ]
}

const INVITATION_COLUMNS: &[&str] = &[
    "invitation_id",
    "domain",
    "student_id",
    "invited_email_address",
    "state",
    "removal_reason",
    "inviter_id",
    "guardian_id",
    "guardian_email_address",
    "guardian_display_name",
    "source",
    "create_time",
    "update_time",
    "expire_time",
    "accept_time",
];

fn user(u: &User) -> Record {
    vec![
        ("user_id", some(u.user_id.as_str())),
        ("domain", some(u.domain.as_str())),
        ("email_address", some(u.email.as_str())),
        ("display_name", some(u.display_name.as_str())),
        ("locale", u.locale.map(|l| l.as_str().to_owned())),
    ]
}

fn invitation(i: &Invitation) -> Record {
    let reason = i.state.removal_reason().map(|r| r.as_str().to_owned());
    vec![
        ("invitation_id", some(i.id.to_text())),
        ("domain", some(i.domain.as_str())),
        ("student_id", some(i.student_id.as_str())),
        ("invited_email_address", some(i.invited_email.as_str())),
        ("state", some(i.state.name())),
        ("removal_reason", reason),
        ("inviter_id", some(i.inviter_id.as_str())),
        (
            "guardian_id",
            i.guardian
                .as_ref()
                .map(|g| g.guardian_id.as_str().to_owned()),
        ),
        (
            "guardian_email_address",
            i.guardian.as_ref().map(|g| g.email.as_str().to_owned()),
        ),
        (
            "guardian_display_name",
            i.guardian.as_ref().map(|g| g.display_name.clone()),
        ),
        ("source", some(i.source.name())),
        ("create_time", some(time(i.create_time))),
        ("update_time", some(time(i.update_time))),
        ("expire_time", some(time(i.expire_time))),
        ("accept_time", i.accept_time.map(time)),
    ]
}

fn event(e: &AuditEvent) -> Record {
    vec![
        ("event_id", some(e.event_id.to_string())),
        ("domain", some(e.domain.as_str())),
        ("action", some(e.action.as_str())),
        ("actor_id", some(e.actor_id.as_str())),
        (
            "student_id",
            e.student_id.as_ref().map(|s| s.as_str().to_owned()),
        ),
        ("invitation_id", e.invitation_id.map(|i| i.to_text())),
        ("request_id", e.request_id.clone()),
        ("create_time", some(time(e.create_time))),
    ]
}

fn message(m: &OutboxMessage) -> Record {
    vec![
        ("message_id", some(m.message_id.as_str())),
        ("invitation_id", m.invitation_id.map(|i| i.to_text())),
        ("recipient", some(m.recipient.as_str())),
        ("subject", some(m.subject.as_str())),
        ("status", some(m.status.as_str())),
        ("attempts", some(m.attempts.to_string())),
        ("create_time", some(time(m.create_time))),
        ("sent_time", m.sent_time.map(time)),
    ]
}

fn preferences(p: &SummaryPreferences) -> Record {
    vec![
        ("guardian_id", some(p.guardian_id.as_str())),
        ("frequency", p.frequency.map(|f| f.as_str().to_owned())),
        ("weekly_day", p.weekly_day.map(|d| d.to_string())),
        ("time_zone", p.time_zone.map(|z| z.name().to_owned())),
        ("locale", p.locale.map(|l| l.as_str().to_owned())),
        ("update_time", p.update_time.map(time)),
    ]
}

fn delivery(d: &SummaryDelivery) -> Record {
    vec![
        ("guardian_id", some(d.guardian_id.as_str())),
        ("period_key", some(d.period_key.as_str())),
        ("frequency", some(d.frequency.as_str())),
        ("period_start", some(time(d.period_start))),
        ("period_end", some(time(d.period_end))),
        (
            "student_ids",
            some(
                d.student_ids
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(" "),
            ),
        ),
        ("missing_count", some(d.counts.missing.to_string())),
        ("upcoming_count", some(d.counts.upcoming.to_string())),
        ("activity_count", some(d.counts.activity.to_string())),
        ("outcome", some(d.outcome.as_str())),
        ("create_time", some(time(d.create_time))),
    ]
}

fn object(record: &Record) -> serde_json::Value {
    serde_json::Value::Object(
        record
            .iter()
            .map(|(k, v)| {
                let value = v
                    .clone()
                    .map_or(serde_json::Value::Null, serde_json::Value::String);
                ((*k).to_owned(), value)
            })
            .collect(),
    )
}

fn json(
    person: &PersonSelector,
    records: &PersonRecords,
    tables: &[Table],
    now: DateTime<Utc>,
) -> Vec<u8> {
    let mut document = serde_json::Map::new();
    document.insert("person".into(), object(&about(person, records, now)));
    for table in tables {
        let rows = table.records.iter().map(object).collect();
        document.insert(table.name.into(), serde_json::Value::Array(rows));
    }
    let mut bytes = serde_json::to_vec_pretty(&serde_json::Value::Object(document))
        .expect("a JSON value always serialises");
    bytes.push(b'\n');
    bytes
}

fn csv_of(columns: &[&str], records: &[Record]) -> Result<Vec<u8>, csv::Error> {
    let mut writer = csv::Writer::from_writer(Vec::new());
    writer.write_record(columns)?;
    for record in records {
        writer.write_record(record.iter().map(|(_, v)| v.as_deref().unwrap_or("")))?;
    }
    writer
        .into_inner()
        .map_err(|e| csv::Error::from(e.into_error()))
}

fn zip(
    person: &PersonSelector,
    records: &PersonRecords,
    tables: &[Table],
    now: DateTime<Utc>,
) -> Result<Vec<u8>, Box<dyn std::error::Error + Send + Sync>> {
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    let about = about(person, records, now);
    let columns: Vec<&str> = about.iter().map(|(k, _)| *k).collect();
    zip.start_file("person.csv", options)?;
    zip.write_all(&csv_of(&columns, &[about])?)?;
    for table in tables {
        zip.start_file(format!("{}.csv", table.name), options)?;
        zip.write_all(&csv_of(table.columns, &table.records)?)?;
    }
    Ok(zip.finish()?.into_inner())
}
