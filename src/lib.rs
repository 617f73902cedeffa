//! guardian-service: the system of record for the links between students and their guardians.
//!
//! Layers, each depending only on those before it: [`domain`] (pure rules) <- [`store`]
//! (persistence) <- [`app`] (use cases) <- [`grpc`] (the v1 contract over tonic).

pub mod app;
pub mod auth;
pub mod commands;
pub mod config;
pub mod domain;
pub mod grpc;
pub mod listener;
pub mod mail;
pub mod proto;
pub mod server;
pub mod store;
pub mod telemetry;
#[cfg(any(test, feature = "test-util"))]
pub mod testing;
pub mod web;
