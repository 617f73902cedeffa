//! The v1 contract over tonic: one module per service, proto <-> domain conversion next to its
//! handlers, and the one error -> status table in [`status`].

mod convert;
pub mod deadline;
mod directory;
mod guardians;
mod guardians_convert;
mod settings;
pub mod status;

pub use directory::DirectoryApi;
pub use guardians::GuardiansApi;
pub use settings::SettingsApi;
