//! `guardianctl`: the operator command line over the gRPC API. Only `health` exists so far;
//! CSV import, sync, listing and settings come with the bulk operations.

use clap::{Parser, Subcommand};
use std::process::ExitCode;
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

#[derive(Debug, Parser)]
#[command(name = "guardianctl", version, about = "Operate guardian-service")]
struct Cli {
    /// The server to talk to.
    #[arg(
        long,
        env = "GUARDIANS_SERVER",
        default_value = "http://127.0.0.1:50051",
        global = true
    )]
    server: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Print the server's health (SERVING or NOT_SERVING); exit non-zero unless SERVING.
    Health,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Health => match health(&cli.server).await {
            Ok(true) => ExitCode::SUCCESS,
            Ok(false) => ExitCode::from(1),
            Err(message) => {
                eprintln!("guardianctl: {message}");
                ExitCode::from(2)
            }
        },
    }
}

async fn health(server: &str) -> Result<bool, String> {
    let channel = tonic::transport::Channel::from_shared(server.to_owned())
        .map_err(|e| format!("bad server address {server}: {e}"))?
        .connect()
        .await
        .map_err(|e| format!("cannot connect to {server}: {e}"))?;
    let mut client = HealthClient::new(channel);
    let status = client
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .map_err(|e| format!("health check failed: {}", e.message()))?
        .into_inner()
        .status();
    println!("{}", status.as_str_name());
    Ok(status == tonic_health::pb::health_check_response::ServingStatus::Serving)
}
