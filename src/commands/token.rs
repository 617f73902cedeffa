//! `guardian-service token`: a signed HS256 token for operators and the walk-through.

use std::time::Duration;

/// What to put in the token, and the secret to sign it with.
#[derive(Debug, clap::Args)]
pub(super) struct TokenArgs {
    /// Subject: user id, guardian account id or service name.
    #[arg(long)]
    sub: String,
    /// Role: admin, teacher, student, guardian or service.
    #[arg(long)]
    role: String,
    /// Domain (`*` for platform services; leave out for guardians).
    #[arg(long)]
    domain: Option<String>,
    /// Email address (required for guardians).
    #[arg(long)]
    email: Option<String>,
    /// Scopes for services (repeat, or separate with spaces).
    #[arg(long, num_args = 1..)]
    scope: Vec<String>,
    /// Lifetime, e.g. 15m, 1h, 7d.
    #[arg(long, default_value = "1h", value_parser = crate::config::parse_duration)]
    ttl: Duration,
    /// HS256 secret; without it the development secret in the data folder is used.
    #[arg(long, env = "GUARDIANS_JWT_HS256_SECRET", hide_env_values = true)]
    jwt_hs256_secret: Option<String>,
    /// A file holding the HS256 secret.
    #[arg(long, env = "GUARDIANS_JWT_HS256_SECRET_FILE", hide_env_values = true)]
    jwt_hs256_secret_file: Option<std::path::PathBuf>,
    /// `iss` to put in the token.
    #[arg(long, env = "GUARDIANS_JWT_ISSUER", hide_env_values = true)]
    jwt_issuer: Option<String>,
    /// `aud` to put in the token.
    #[arg(long, env = "GUARDIANS_JWT_AUDIENCE", hide_env_values = true)]
    jwt_audience: Option<String>,
    /// Folder of the development secret.
    #[arg(
        long,
        env = "GUARDIANS_DATA_DIR",
        default_value = ".",
        hide_env_values = true
    )]
    data_dir: std::path::PathBuf,
}

/// Prints the token `args` describe.
pub(super) fn run(args: TokenArgs) -> Result<(), String> {
    use crate::auth::{KeySources, dev, issue};
    let sources = KeySources {
        hs256_secret: args.jwt_hs256_secret,
        hs256_secret_file: args.jwt_hs256_secret_file,
        ..KeySources::default()
    };
    let secret = match sources.secret().map_err(|e| e.to_string())? {
        Some(secret) => secret,
        None => dev::load_or_create_dev_secret(&args.data_dir)
            .map_err(|e| format!("cannot read the development secret: {e}"))?,
    };
    let mut claims = issue::TokenClaims::new(&args.sub, &args.role, args.ttl);
    claims.domain = args.domain;
    claims.email = args.email;
    let scopes = args.scope.join(" ");
    claims.scope = (!scopes.trim().is_empty()).then_some(scopes);
    claims.iss = args.jwt_issuer;
    claims.aud = args.jwt_audience;
    println!("{}", issue::sign_hs256(&claims, &secret)?);
    Ok(())
}
