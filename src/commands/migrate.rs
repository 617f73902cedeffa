//! `guardian-service migrate`: apply pending migrations and exit.

use crate::store::{self, ConnectOptions};
use std::time::Duration;

/// Migrates the database at `database_url`.
pub(super) async fn run(database_url: String) -> Result<(), String> {
    let store = store::connect(&ConnectOptions {
        url: database_url,
        max_connections: 2,
        acquire_timeout: Duration::from_secs(30),
        statement_timeout: None,
    })
    .await
    .map_err(|e| e.to_string())?;
    store.migrate().await.map_err(|e| e.to_string())?;
    store.close().await;
    tracing::info!("migrations applied");
    Ok(())
}
