//! `guardian-bench`: seeds a realistic data set straight into a store, and drives a running
//! server over gRPC with N concurrent callers on M channels, printing RPS and latency
//! percentiles as text and JSON. ghz is not installable here, so the load generator is ours.

mod dataset;
mod feed_head;
mod load;
mod propagation;
mod summaries;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Debug, Parser)]
#[command(
    name = "guardian-bench",
    about = "Seed data and load-test guardian-service"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Write the data set into a database (migrating it first).
    Seed(dataset::SeedArgs),
    /// Drive a running server and report throughput and latency.
    Run(load::RunArgs),
    /// P9: the delay until a link removed on one replica is reported unlinked by another.
    Propagation(propagation::PropagationArgs),
    /// P8: seed class activity and time the build of every guardian's summary.
    Summaries(summaries::SummariesArgs),
    /// Print the change token of everything committed so far (a start for watchers).
    FeedHead(feed_head::FeedHeadArgs),
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Seed(args) => dataset::seed(args).await,
        Command::Run(args) => load::run(args).await,
        Command::Summaries(args) => summaries::run(args).await,
        Command::Propagation(args) => propagation::run(args).await,
        Command::FeedHead(args) => feed_head::run(args).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("guardian-bench: {message}");
            ExitCode::FAILURE
        }
    }
}
