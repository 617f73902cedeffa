//! Integration tests: the real server in-process on 127.0.0.1:0, called over real gRPC with the
//! generated clients, each test on a fresh Postgres database.

mod access;
mod auth;
mod browser;
mod bulk;
mod bulk_remove;
mod check_many;
mod cli;
mod concurrency;
mod connections;
mod directory;
mod families;
mod feed;
mod fixtures;
mod hardening;
mod helpers;
mod invitations;
mod language;
mod mail;
mod matrix;
mod oneroster;
mod oneroster_export;
mod privacy;
mod properties;
mod reminders;
mod replicas;
mod resend;
mod retention;
mod server;
mod settings;
mod summaries;
mod sync;
mod transport;
mod unsubscribe;
