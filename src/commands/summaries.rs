//! `guardian-service summaries run-once [--at RFC3339]`: builds, once, every summary due at
//! that instant into the outbox, then exits. The same code path as the servers' scheduler, and
//! exactly once with it: a summary either of them built is not built again.

use crate::app::{App, AppConfig};
use crate::domain::SystemClock;
use crate::store::{self, ConnectOptions};
use chrono::{DateTime, Utc};
use clap::{Args, Subcommand};
use std::sync::Arc;
use std::time::Duration;

/// What to do with summaries.
#[derive(Debug, Subcommand)]
pub(super) enum SummariesCommand {
    /// Build every summary due now (or at --at) into the outbox and exit.
    RunOnce(RunOnceArgs),
}

/// Options of `summaries run-once`.
#[derive(Debug, Args)]
pub(super) struct RunOnceArgs {
    /// Build as if it were this instant (RFC 3339, e.g. 2026-11-27T18:00:00+01:00).
    #[arg(long)]
    at: Option<DateTime<chrono::FixedOffset>>,
    #[command(flatten)]
    db: super::DatabaseArgs,
    /// Public base URL of the unsubscribe page.
    #[arg(
        long,
        env = "GUARDIANS_PUBLIC_URL",
        default_value = "http://localhost:8080",
        hide_env_values = true
    )]
    public_url: String,
}

/// Runs a summaries command.
pub(super) async fn run(command: SummariesCommand) -> Result<(), String> {
    let SummariesCommand::RunOnce(args) = command;
    let store = store::connect(&ConnectOptions::plain(
        args.db.database_url,
        4,
        Duration::from_secs(30),
    ))
    .await
    .map_err(|e| e.to_string())?;
    if !store.is_migrated().await.map_err(|e| e.to_string())? {
        return Err("the database is not migrated: run `guardian-service migrate` first".into());
    }
    let at: DateTime<Utc> = args.at.map_or_else(Utc::now, |t| t.with_timezone(&Utc));
    // The run is as of `at`; the clock stays the real one, so that the emails it queues are
    // due now even when `at` is ahead (a rehearsal of next Friday sends today).
    let app = App::new(
        store.clone(),
        Arc::new(SystemClock),
        AppConfig {
            public_url: args.public_url,
            ..AppConfig::default()
        },
    );
    let run = app.run_due_summaries(at).await.map_err(|e| e.to_string())?;
    store.close().await;
    println!(
        "at {at}: {} guardians looked at, {} summaries queued, {} empty (recorded, not sent), {} built earlier",
        run.guardians, run.queued, run.skipped_empty, run.already_built
    );
    Ok(())
}
