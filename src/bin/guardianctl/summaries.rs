//! `guardianctl summaries`: what a guardian would receive now (or an example about a student),
//! and the summaries built for a guardian.

use crate::client::{Client, describe};
use crate::views::{Format, print};
use clap::{Subcommand, ValueEnum};
use guardian_service::proto::{
    ListSummaryDeliveriesRequest, PreviewGuardianSummaryRequest, SummaryFrequency,
    summary_delivery::Outcome,
};
use std::process::ExitCode;

#[derive(Debug, Subcommand)]
pub(crate) enum SummariesAction {
    /// Print the summary a guardian would receive if it were built now: its subject and text
    /// part (or HTML with --html). With --student, an example about that student.
    Preview {
        /// The guardian's account id.
        #[arg(long, conflicts_with = "student", required_unless_present = "student")]
        guardian: Option<String>,
        /// A student id: an example as a guardian with the domain's defaults would get it.
        #[arg(long)]
        student: Option<String>,
        /// Build as if this were the guardian's frequency.
        #[arg(long, value_enum)]
        frequency: Option<FrequencyArg>,
        /// Print the HTML part instead of the text.
        #[arg(long)]
        html: bool,
    },
    /// List the summaries built for a guardian, newest first: what went out and why not.
    Deliveries {
        /// The guardian's account id.
        #[arg(long)]
        guardian: String,
        /// Output format.
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum FrequencyArg {
    Daily,
    Weekly,
}

pub(crate) async fn summaries(
    client: &Client,
    action: SummariesAction,
) -> Result<ExitCode, String> {
    match action {
        SummariesAction::Preview {
            guardian,
            student,
            frequency,
            html,
        } => {
            let frequency = match frequency {
                None => SummaryFrequency::Unspecified,
                Some(FrequencyArg::Daily) => SummaryFrequency::Daily,
                Some(FrequencyArg::Weekly) => SummaryFrequency::Weekly,
            };
            let preview = client
                .summaries()
                .preview_guardian_summary(PreviewGuardianSummaryRequest {
                    guardian_id: guardian.unwrap_or_default(),
                    student_id: student.unwrap_or_default(),
                    frequency: frequency as i32,
                })
                .await
                .map_err(|s| describe(&s))?
                .into_inner();
            println!("Subject: {}\n", preview.subject);
            println!(
                "{}",
                if html {
                    &preview.html_body
                } else {
                    &preview.text_body
                }
            );
            if preview.empty {
                eprintln!(
                    "nothing to report: the scheduler would record this period as SKIPPED_EMPTY \
                     and send nothing"
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        SummariesAction::Deliveries { guardian, format } => {
            let mut rows = Vec::new();
            let mut page_token = String::new();
            loop {
                let page = client
                    .summaries()
                    .list_summary_deliveries(ListSummaryDeliveriesRequest {
                        guardian_id: guardian.clone(),
                        page_size: 500,
                        page_token,
                    })
                    .await
                    .map_err(|s| describe(&s))?
                    .into_inner();
                rows.extend(page.deliveries.iter().map(|d| {
                    vec![
                        d.period.clone(),
                        SummaryFrequency::try_from(d.frequency)
                            .map(|f| f.as_str_name().to_owned())
                            .unwrap_or_default(),
                        Outcome::try_from(d.outcome)
                            .map(|o| o.as_str_name().to_owned())
                            .unwrap_or_default(),
                        d.student_ids.join(" "),
                        d.missing_count.to_string(),
                        d.upcoming_count.to_string(),
                        d.activity_count.to_string(),
                    ]
                }));
                if page.next_page_token.is_empty() {
                    break;
                }
                page_token = page.next_page_token;
            }
            print(
                format,
                &[
                    "period",
                    "frequency",
                    "outcome",
                    "students",
                    "missing",
                    "upcoming",
                    "activity",
                ],
                &rows,
            )?;
            Ok(ExitCode::SUCCESS)
        }
    }
}
