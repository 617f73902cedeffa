//! Compiles the v1 contract into Rust and writes the descriptor set that server reflection serves.

use std::{env, path::PathBuf};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out_dir = PathBuf::from(env::var("OUT_DIR")?);
    let mut config = tonic_prost_build::Config::new();
    // A protoc named by PROTOC (e.g. Debian's protobuf-compiler) wins; otherwise the vendored
    // binary, so that a fresh machine builds with nothing installed.
    let protoc = match env::var_os("PROTOC") {
        Some(path) => PathBuf::from(path),
        None => protoc_bin_vendored::protoc_bin_path()?,
    };
    config.protoc_executable(protoc);
    let files = [
        "proto/guardians/v1/resources.proto",
        "proto/guardians/v1/guardian_service.proto",
        "proto/guardians/v1/settings_service.proto",
        "proto/guardians/v1/directory_service.proto",
        "proto/guardians/v1/summary_service.proto",
        "proto/guardians/v1/privacy_service.proto",
    ];
    tonic_prost_build::configure()
        .file_descriptor_set_path(out_dir.join("guardians_v1_descriptor.bin"))
        .compile_with_config(config, &files, &["proto"])?;
    println!("cargo:rerun-if-changed=proto");
    // sqlx::migrate! embeds these at compile time; a new migration must rebuild the crate.
    println!("cargo:rerun-if-changed=migrations");
    println!("cargo:rerun-if-env-changed=PROTOC");
    Ok(())
}
