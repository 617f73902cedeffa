//! Email: the messages the service sends, rendered from templates into the outbox in the same
//! transaction as the change that causes them.

pub mod templates;

pub use templates::{Rendered, Template, escape_html, format_date, render};
