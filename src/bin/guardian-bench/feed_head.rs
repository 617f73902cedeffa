//! `guardian-bench feed-head`: the change token of everything committed so far, so that
//! watchers started `--from` it see every later change however late they connect.

use guardian_service::store::{self, ConnectOptions};
use std::time::Duration;

/// Where the database is.
#[derive(Debug, clap::Args)]
pub(crate) struct FeedHeadArgs {
    /// The service's database.
    #[arg(long, env = "GUARDIANS_DATABASE_URL", hide_env_values = true)]
    database_url: String,
}

pub(crate) async fn run(args: FeedHeadArgs) -> Result<(), String> {
    let store = store::connect(&ConnectOptions::plain(
        args.database_url,
        1,
        Duration::from_secs(10),
    ))
    .await
    .map_err(|e| e.to_string())?;
    let head = store
        .session()
        .await
        .map_err(|e| e.to_string())?
        .committed_head()
        .await
        .map_err(|e| e.to_string())?;
    println!("{}", head.to_token());
    Ok(())
}
