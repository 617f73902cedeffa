//! `guardian-service`: the command line lives in [`guardian_service::commands`].

use clap::Parser;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    guardian_service::commands::run(guardian_service::commands::Cli::parse()).await
}
