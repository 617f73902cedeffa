//! The v1 contract over tonic: one module per service, proto <-> domain conversion next to its
//! handlers, and the one error -> status table in [`status`].

pub mod auth_layer;
mod convert;
pub mod deadline;
mod directory;
mod guardians;
mod privacy;
mod settings;
pub mod status;
mod summaries;

pub use auth_layer::{AuthLayer, authorized};
pub use directory::DirectoryApi;
pub use guardians::GuardiansApi;
pub use guardians::watch::ChangeStream;
pub use privacy::{ExportStream, PrivacyApi};
pub use settings::SettingsApi;
pub use summaries::SummariesApi;
