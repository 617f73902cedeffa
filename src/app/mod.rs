//! Use cases: load, decide with the domain's rules, persist in one transaction. Nothing here
//! knows about protobuf or SQL; callers above are the gRPC services and tools.

// First: its macro is used by the modules after it.
#[macro_use]
mod read_route;
mod access;
mod access_log;
mod audit;
mod bulk;
mod bulk_invite;
mod bulk_remove;
mod bulk_resend;
mod check;
mod chunk;
mod directory;
mod error;
mod families;
mod feed;
pub mod freshness;
mod guardians;
mod idempotency;
mod invitation_reads;
mod invitations;
mod invitee;
mod lifecycle;
mod link_batch;
pub mod page_token;
mod privacy;
mod pseudonyms;
mod read_models;
mod reminders;
mod retention;
mod settings;
mod settings_cache;
mod students;
mod summaries;
mod sync;
mod tokens;
mod upkeep;
mod write;

pub use access_log::{AccessLog, AccessPage, AccessQuery};
pub use audit::{EventPage, EventQuery, SYSTEM_ACTOR};
pub use bulk::{GuardianSelector, MAX_BULK_ROWS, RowOutcome};
pub use bulk_resend::{ResendOutcome, ResendSelection};
pub use check::{Answered, CheckSubject, Guardianship, MAX_CHECKS};
pub use directory::{UserPage, UserQuery};
pub use error::{AppError, AppResult, Missing};
pub use feed::{FeedChange, FeedStep, OpenWatch, WatchQuery};
pub use guardians::{GuardianQuery, GuardianRef, PairRemoval, Removal};
pub use idempotency::{Encoder, Replay, RequestKey};
pub use invitation_reads::{InvitationQuery, StudentSelector};
pub use invitations::InvitationRef;
pub use invitee::Answer;
pub use page_token::PageTokens;
pub use privacy::{Erased, ExportFormat, Exported, PersonSelector};
pub use pseudonyms::Pseudonyms;
pub use read_models::{GuardianView, InvitationView, Page, StudentLabel};
pub use settings::SettingsUpdate;
pub use settings_cache::SettingsCache;
pub use summaries::{
    DeliveryQuery, ItemOutcome, MAX_ACTIVITY_ITEMS, PreferencesView, PreviewTarget, SummaryPreview,
    SummaryRun, UnsubscribeLink,
};
pub use sync::{SyncAction, SyncKind, SyncOptions, SyncOutcome};
pub use upkeep::Upkeep;

use crate::domain::Clock;
use crate::store::Store;
use freshness::{Freshness, FreshnessConfig};
use std::sync::Arc;
use std::time::Duration;

/// How long a replica may serve settings it read before re-reading them. The contract asks
/// that every replica enforce a change within one second; half of that leaves room for the
/// read itself.
pub const SETTINGS_CACHE_TTL: Duration = Duration::from_millis(500);

/// Settings of the use cases that come from configuration.
#[derive(Debug, Clone)]
pub struct AppConfig {
    /// Base of the accept and decline links in invitation emails.
    pub accept_url: String,
    /// Signs page tokens; the same in every replica.
    pub page_tokens: PageTokens,
    /// Public base URL of this service's web pages (the summaries' unsubscribe page).
    pub public_url: String,
    /// The feed and the link cache.
    pub freshness: FreshnessConfig,
    /// Keys the stand-ins of ended invitations' addresses (the same in every replica).
    pub pseudonyms: Pseudonyms,
    /// Invitations to one address within this window are sent as one family email; zero
    /// sends each invitation's email at once, on its own.
    pub family_window: std::time::Duration,
}

/// How long invitations to one address gather into one email, unless the server is told.
pub const DEFAULT_FAMILY_WINDOW: std::time::Duration = std::time::Duration::from_secs(60);

impl Default for AppConfig {
    /// Defaults for tools and tests: page tokens valid in this process only.
    fn default() -> Self {
        Self {
            accept_url: "http://localhost:8080/guardian-invitations".into(),
            page_tokens: PageTokens::random(),
            public_url: "http://localhost:8080".into(),
            freshness: FreshnessConfig::default(),
            pseudonyms: Pseudonyms::random(),
            // Tools and tests read an invitation's email right after inviting; the server
            // takes its window from its configuration (DEFAULT_FAMILY_WINDOW unless set).
            family_window: std::time::Duration::ZERO,
        }
    }
}

/// The service's use cases over one store.
#[derive(Debug, Clone)]
pub struct App {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    settings_cache: Arc<SettingsCache>,
    freshness: Arc<Freshness>,
    page_tokens: PageTokens,
    config: Arc<AppConfig>,
    access_log: Arc<AccessLog>,
    link_batcher: Arc<link_batch::LinkBatcher>,
}

impl App {
    /// Use cases over `store`, telling time by `clock`.
    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>, config: AppConfig) -> Self {
        let freshness = Arc::new(Freshness::new(config.freshness.clone()));
        let link_batcher = Arc::new(link_batch::LinkBatcher::new(
            store.clone(),
            freshness.clone(),
        ));
        Self {
            store,
            clock,
            settings_cache: Arc::new(SettingsCache::new(SETTINGS_CACHE_TTL)),
            freshness,
            page_tokens: config.page_tokens.clone(),
            config: Arc::new(config),
            access_log: Arc::new(AccessLog::new()),
            link_batcher,
        }
    }

    /// This replica's view of the change feed.
    pub fn freshness(&self) -> &Arc<Freshness> {
        &self.freshness
    }

    /// The store, for health checks and shutdown.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }
}

#[cfg(test)]
mod tests;
