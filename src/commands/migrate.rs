//! `guardian-service migrate`: apply pending migrations and exit, creating a missing Postgres
//! database first when the role may.

use crate::store::{self, ConnectOptions};
use std::time::Duration;

/// Migrates the database at `database_url`.
pub(super) async fn run(database_url: String) -> Result<(), String> {
    if database_url.starts_with("postgres") {
        match store::diagnose::check_postgres(&database_url).await {
            Ok(()) => {}
            Err(problem) if problem.missing_database => {
                store::diagnose::create_database(&database_url).await?;
                tracing::info!("created the database");
            }
            Err(problem) => return Err(problem.message),
        }
    }
    let store = store::connect(&ConnectOptions::plain(
        database_url,
        2,
        Duration::from_secs(30),
    ))
    .await
    .map_err(|e| e.to_string())?;
    store.migrate().await.map_err(|e| e.to_string())?;
    store.close().await;
    tracing::info!("migrations applied");
    Ok(())
}
