//! `guardian-service`: serve the v1 API (the default) or migrate the database.

use clap::{Parser, Subcommand};
use guardian_service::config::ServeConfig;
use guardian_service::store::{self, ConnectOptions};
use std::process::ExitCode;
use std::time::Duration;

#[derive(Debug, Parser)]
#[command(
    name = "guardian-service",
    version,
    about = "System of record for student-guardian links"
)]
#[command(args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    serve: ServeConfig,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the gRPC API (the default when no command is given).
    Serve(ServeConfig),
    /// Apply pending database migrations and exit.
    Migrate {
        /// The database to migrate.
        #[arg(
            long,
            env = "GUARDIANS_DATABASE_URL",
            default_value = "sqlite://guardians.db",
            hide_env_values = true
        )]
        database_url: String,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    guardian_service::telemetry::init_logging();
    let cli = Cli::parse();
    let result = match cli.command {
        None => serve(cli.serve).await,
        Some(Command::Serve(config)) => serve(config).await,
        Some(Command::Migrate { database_url }) => migrate(database_url).await,
    };
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
    guardian_service::server::serve(config, listener, shutdown_signal())
        .await
        .map_err(|e| e.to_string())
}

async fn migrate(database_url: String) -> Result<(), String> {
    let store = store::connect(&ConnectOptions {
        url: database_url,
        max_connections: 2,
        acquire_timeout: Duration::from_secs(30),
    })
    .await
    .map_err(|e| e.to_string())?;
    store.migrate().await.map_err(|e| e.to_string())?;
    store.close().await;
    tracing::info!("migrations applied");
    Ok(())
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
