//! Code generated from `proto/guardians/v1` (the v1 contract) and its descriptor set, used by
//! the server, `guardianctl` and the bench tool.

#![allow(missing_docs, clippy::all, missing_debug_implementations)]

tonic::include_proto!("guardians.v1");

/// The encoded descriptor set that server reflection serves.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    tonic::include_file_descriptor_set!("guardians_v1_descriptor");
