//! `guardianctl privacy`: a person's export (JSON or a zip of CSV files), their erasure (which
//! asks for confirmation unless `--yes`), and who read guardians' addresses.

use crate::client::{Client, describe};
use crate::views::{Format, print};
use clap::{Subcommand, ValueEnum};
use guardian_service::proto::{
    ErasePersonDataRequest, ExportFormat, ExportPersonDataRequest, ListAccessRecordsRequest,
    PersonSelector, person_selector::Person,
};
use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, Subcommand)]
pub(crate) enum PrivacyAction {
    /// Export every record about a person (to --output, or standard output).
    Export {
        #[command(flatten)]
        person: PersonArgs,
        /// json (one document) or zip (one CSV file per kind of record).
        #[arg(long, value_enum, default_value = "json")]
        format: ExportFormatArg,
        /// Write the export here instead of standard output.
        #[arg(long)]
        output: Option<PathBuf>,
    },
    /// Erase a person: end their links and replace every record about them by stand-ins.
    Erase {
        #[command(flatten)]
        person: PersonArgs,
        /// Do not ask for confirmation.
        #[arg(long)]
        yes: bool,
    },
    /// List who read guardians' addresses in a domain, newest first.
    Access {
        /// The domain.
        #[arg(long)]
        domain: String,
        /// Only reads of this student.
        #[arg(long)]
        student: Option<String>,
        /// At most this many records.
        #[arg(long, default_value_t = 100)]
        limit: usize,
        /// Output format.
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
}

#[derive(Debug, clap::Args)]
#[group(required = true, multiple = false)]
pub(crate) struct PersonArgs {
    /// A guardian's account id.
    #[arg(long)]
    guardian_id: Option<String>,
    /// A guardian's address.
    #[arg(long)]
    guardian_email: Option<String>,
    /// A student's id.
    #[arg(long)]
    student_id: Option<String>,
}

impl PersonArgs {
    fn selector(&self) -> PersonSelector {
        let person = match (&self.guardian_id, &self.guardian_email, &self.student_id) {
            (Some(id), _, _) => Person::GuardianId(id.clone()),
            (_, Some(email), _) => Person::GuardianEmailAddress(email.clone()),
            (_, _, Some(id)) => Person::StudentId(id.clone()),
            (None, None, None) => unreachable!("clap requires one"),
        };
        PersonSelector {
            person: Some(person),
        }
    }

    /// How the person is named on the terminal (the operator typed it).
    fn describe(&self) -> String {
        match (&self.guardian_id, &self.guardian_email, &self.student_id) {
            (Some(id), _, _) => format!("guardian {id}"),
            (_, Some(email), _) => format!("the guardian with address {email}"),
            (_, _, Some(id)) => format!("student {id}"),
            (None, None, None) => String::new(),
        }
    }
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum ExportFormatArg {
    Json,
    Zip,
}

pub(crate) async fn privacy(client: &Client, action: PrivacyAction) -> Result<ExitCode, String> {
    match action {
        PrivacyAction::Export {
            person,
            format,
            output,
        } => export(client, &person, format, output).await,
        PrivacyAction::Erase { person, yes } => erase(client, &person, yes).await,
        PrivacyAction::Access {
            domain,
            student,
            limit,
            format,
        } => access(client, domain, student, limit, format).await,
    }
}

async fn access(
    client: &Client,
    domain: String,
    student: Option<String>,
    limit: usize,
    format: Format,
) -> Result<ExitCode, String> {
    let mut rows = Vec::new();
    let mut page_token = String::new();
    while rows.len() < limit {
        let page = client
            .privacy()
            .list_access_records(ListAccessRecordsRequest {
                domain: domain.clone(),
                student_id: student.clone().unwrap_or_default(),
                page_size: i32::try_from(limit - rows.len()).unwrap_or(500).min(500),
                page_token,
            })
            .await
            .map_err(|s| describe(&s))?
            .into_inner();
        rows.extend(page.access_records.iter().map(|r| {
            vec![
                r.create_time
                    .as_ref()
                    .and_then(|t| chrono::DateTime::from_timestamp(t.seconds, 0))
                    .map(|t| t.to_rfc3339())
                    .unwrap_or_default(),
                r.caller_role.clone(),
                r.caller.clone(),
                r.method.clone(),
                r.student_id.clone(),
                r.row_count.to_string(),
            ]
        }));
        if page.next_page_token.is_empty() {
            break;
        }
        page_token = page.next_page_token;
    }
    print(
        format,
        &["time", "role", "caller", "method", "student", "rows"],
        &rows,
    )?;
    Ok(ExitCode::SUCCESS)
}

async fn export(
    client: &Client,
    person: &PersonArgs,
    format: ExportFormatArg,
    output: Option<PathBuf>,
) -> Result<ExitCode, String> {
    let format = match format {
        ExportFormatArg::Json => ExportFormat::Json,
        ExportFormatArg::Zip => ExportFormat::CsvZip,
    };
    let mut stream = client
        .privacy()
        .export_person_data(ExportPersonDataRequest {
            person: Some(person.selector()),
            format: format.into(),
        })
        .await
        .map_err(|s| describe(&s))?
        .into_inner();
    let mut bytes = Vec::new();
    let mut name = String::new();
    while let Some(message) = stream.message().await.map_err(|s| describe(&s))? {
        if !message.file_name.is_empty() {
            name = message.file_name;
        }
        bytes.extend_from_slice(&message.data);
    }
    match output {
        Some(path) => {
            std::fs::write(&path, &bytes)
                .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
            eprintln!(
                "wrote {} bytes to {} (the server named it {name})",
                bytes.len(),
                path.display()
            );
        }
        None => std::io::stdout()
            .write_all(&bytes)
            .map_err(|e| format!("cannot write the export: {e}"))?,
    }
    Ok(ExitCode::SUCCESS)
}

async fn erase(client: &Client, person: &PersonArgs, yes: bool) -> Result<ExitCode, String> {
    if !yes {
        eprint!(
            "Erase {}? Their links end and every record about them is replaced by stand-ins; \
             this cannot be undone. Type \"erase\" to go on: ",
            person.describe()
        );
        let mut answer = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut answer)
            .map_err(|e| format!("cannot read the answer: {e}"))?;
        if answer.trim() != "erase" {
            eprintln!("nothing was erased");
            return Ok(ExitCode::from(1));
        }
    }
    let response = client
        .privacy()
        .erase_person_data(ErasePersonDataRequest {
            person: Some(person.selector()),
            // A retry of this command after a lost answer would erase nothing more anyway;
            // the id makes the answer the same.
            request_id: uuid::Uuid::new_v4().to_string(),
        })
        .await
        .map_err(|s| describe(&s))?
        .into_inner();
    if response.already_erased {
        println!("already erased: nothing identifiable was left");
    } else {
        println!(
            "erased: {} links removed, {} pending invitations cancelled, {} invitations \
             anonymised, {} queued emails cancelled",
            response.links_removed,
            response.invitations_cancelled,
            response.invitations_anonymised,
            response.messages_cancelled
        );
    }
    Ok(ExitCode::SUCCESS)
}
