//! `guardianctl watch`: the change feed as it comes, one line a change. Heartbeats print
//! nothing but move the position; on Ctrl-C (or when the stream ends) the token to resume from
//! goes to stderr, so that `--from` picks up exactly there.

use crate::client::{Client, describe};
use clap::ValueEnum;
use guardian_service::proto::guardian_change::Kind;
use guardian_service::proto::{GuardianChange, WatchGuardianChangesRequest};
use std::process::ExitCode;

/// How changes are printed.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum WatchFormat {
    /// One aligned line a change.
    Text,
    /// One JSON object a line.
    Json,
}

/// Follows `domain` (or `*`) from `from` (empty: now) until Ctrl-C.
pub(crate) async fn watch(
    client: &Client,
    domain: String,
    student: Option<String>,
    from: Option<String>,
    format: WatchFormat,
) -> Result<ExitCode, String> {
    let mut position = from.unwrap_or_default();
    let mut stream = client
        .guardians()
        .watch_guardian_changes(WatchGuardianChangesRequest {
            domain,
            student_id: student.unwrap_or_default(),
            start_token: position.clone(),
        })
        .await
        .map_err(|s| describe(&s))?
        .into_inner();
    let interrupted = tokio::signal::ctrl_c();
    tokio::pin!(interrupted);
    let outcome = loop {
        tokio::select! {
            message = stream.message() => match message {
                Ok(Some(message)) => {
                    let Some(change) = message.change else { continue };
                    position = change.consistency_token.clone();
                    if change.kind != Kind::Unspecified as i32 {
                        println!("{}", line(&change, format));
                    }
                }
                Ok(None) => break Err("the server ended the stream".to_string()),
                Err(status) => break Err(describe(&status)),
            },
            _ = &mut interrupted => break Ok(()),
        }
    };
    if !position.is_empty() {
        eprintln!("resume with: --from {position}");
    }
    outcome.map(|()| ExitCode::SUCCESS)
}

fn line(change: &GuardianChange, format: WatchFormat) -> String {
    let kind = Kind::try_from(change.kind)
        .map(|k| k.as_str_name())
        .unwrap_or("UNKNOWN");
    let time = change
        .commit_time
        .as_ref()
        .and_then(|t| chrono::DateTime::from_timestamp(t.seconds, t.nanos.max(0) as u32))
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_default();
    let invitation = change
        .invitation
        .as_ref()
        .map(|i| i.invitation_id.as_str())
        .unwrap_or("");
    match format {
        WatchFormat::Text => format!(
            "{time}  {kind:<18} {:<24} {:<16} {:<16} {invitation}",
            change.domain, change.student_id, change.guardian_id
        ),
        WatchFormat::Json => serde_json::json!({
            "token": change.consistency_token,
            "time": time,
            "kind": kind,
            "action": change.action,
            "domain": change.domain,
            "student_id": change.student_id,
            "guardian_id": change.guardian_id,
            "invitation_id": invitation,
        })
        .to_string(),
    }
}
