//! Email: templates rendered into the outbox in the same transaction as the change that causes
//! them, and a dispatcher that delivers the outbox through SMTP or into a folder.

pub mod dispatcher;
pub mod templates;
pub mod transport;

pub use dispatcher::{DispatchPolicy, Dispatcher, Round};
pub use templates::{
    FamilyChild, Rendered, Template, format_date, render, render_family, schedule_phrase,
};
pub use transport::{FolderTransport, SendError, SmtpTransport, Transport};
pub mod summary;
