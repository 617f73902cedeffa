//! Consistency tokens of answers and writes (freshness.md): what a caller passes back as
//! `at_least_as_fresh` to read its own writes on any replica.

use super::App;
use crate::domain::Position;

impl App {
    /// The token of a write that has committed: a position including every change committed
    /// so far. Empty when the store cannot say (the write stands; only the token is missing).
    pub async fn write_token(&self) -> String {
        let head = async {
            let mut session = self.store.session().await?;
            session.committed_head().await
        };
        match head.await {
            Ok(position) => position.to_token(),
            Err(e) => {
                tracing::warn!(error = %e, "no consistency token for a committed write");
                String::new()
            }
        }
    }

    /// The token of an answer read from the database from now on: every change below the
    /// replica's applied watermark had committed before the read began. Empty before the
    /// replica's feed follower first looked (tools without one).
    pub fn read_token(&self) -> String {
        self.primary_position()
            .map(Position::to_token)
            .unwrap_or_default()
    }
}
