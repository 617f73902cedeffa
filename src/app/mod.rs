//! Use cases: load, decide with the domain's rules, persist in one transaction. Nothing here
//! knows about protobuf or SQL; callers above are the gRPC services and tools.

mod access;
mod directory;
mod error;
pub mod page_token;
mod settings;
mod settings_cache;

pub use directory::{UserPage, UserQuery};
pub use error::{AppError, AppResult, Missing};
pub use settings::SettingsUpdate;
pub use settings_cache::SettingsCache;

use crate::domain::Clock;
use crate::store::Store;
use std::sync::Arc;
use std::time::Duration;

/// How long a replica may serve settings it read before re-reading them. The contract asks
/// that every replica enforce a change within one second; half of that leaves room for the
/// read itself.
pub const SETTINGS_CACHE_TTL: Duration = Duration::from_millis(500);

/// The service's use cases over one store.
#[derive(Debug, Clone)]
pub struct App {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    settings_cache: Arc<SettingsCache>,
}

impl App {
    /// Use cases over `store`, telling time by `clock`.
    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>) -> Self {
        Self {
            store,
            clock,
            settings_cache: Arc::new(SettingsCache::new(SETTINGS_CACHE_TTL)),
        }
    }

    /// The store, for health checks and shutdown.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }
}
