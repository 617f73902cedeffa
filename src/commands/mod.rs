//! The `guardian-service` command line: serve the v1 API (the default), apply migrations, or
//! print a signed token.

mod migrate;
mod summaries;
mod token;

use crate::config::ServeConfig;
use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// The variables read besides those of the options above.
const ENVIRONMENT: &str = "Also read from the environment:
  RUST_LOG                     log filter, e.g. info or guardian_service=debug (default: info)
  GUARDIANS_LOG_FORMAT         json for one JSON object a line (default: text)
  OTEL_EXPORTER_OTLP_ENDPOINT  export traces over OTLP/gRPC to this endpoint (default: none);
                               the other standard OTEL_* variables apply too";

/// The parsed command line.
#[derive(Debug, Parser)]
#[command(
    name = "guardian-service",
    version,
    about = "System of record for student-guardian links"
)]
#[command(args_conflicts_with_subcommands = true)]
#[command(after_help = ENVIRONMENT)]
pub struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    serve: ServeConfig,
}

// Parsed once at start-up: the size of the largest variant costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the gRPC API (the default when no command is given).
    Serve(ServeConfig),
    /// Print a signed token (HS256 with the configured secret, else the development secret).
    Token(token::TokenArgs),
    /// Apply pending database migrations and exit.
    Migrate(DatabaseArgs),
    /// Guardian email summaries: build the due ones now, as the servers' scheduler does.
    #[command(subcommand)]
    Summaries(summaries::SummariesCommand),
}

/// The database of a command that is not `serve`.
#[derive(Debug, clap::Args)]
struct DatabaseArgs {
    /// The database.
    #[arg(
        long,
        env = "GUARDIANS_DATABASE_URL",
        default_value = "sqlite://guardians.db",
        hide_env_values = true
    )]
    database_url: String,
}

/// Runs the command line's command; the exit code says whether it succeeded.
pub async fn run(cli: Cli) -> ExitCode {
    let telemetry = crate::telemetry::init();
    let result = match cli.command {
        None => serve(cli.serve).await,
        Some(Command::Serve(config)) => serve(config).await,
        Some(Command::Migrate(db)) => migrate::run(db.database_url).await,
        Some(Command::Token(args)) => token::run(args),
        Some(Command::Summaries(command)) => summaries::run(command).await,
    };
    telemetry.shutdown();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            tracing::error!("{message}");
            eprintln!("guardian-service: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(config: ServeConfig) -> Result<(), String> {
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", config.listen))?;
    crate::server::serve(config, listener, shutdown_signal())
        .await
        .map_err(|e| e.to_string())
}

/// Resolves on SIGTERM or Ctrl-C.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}
