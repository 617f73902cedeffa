//! `guardian-service`: serve the v1 API (the default) or migrate the database.

use clap::{Parser, Subcommand};
use guardian_service::config::ServeConfig;
use guardian_service::store::{self, ConnectOptions};
use std::process::ExitCode;
use std::time::Duration;

#[derive(Debug, Parser)]
#[command(
    name = "guardian-service",
    version,
    about = "System of record for student-guardian links"
)]
#[command(args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    serve: ServeConfig,
}

// Parsed once at start-up: the size of the largest variant costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the gRPC API (the default when no command is given).
    Serve(ServeConfig),
    /// Print a signed token (HS256 with the configured secret, else the development secret).
    Token(TokenArgs),
    /// Apply pending database migrations and exit.
    Migrate {
        /// The database to migrate.
        #[arg(
            long,
            env = "GUARDIANS_DATABASE_URL",
            default_value = "sqlite://guardians.db",
            hide_env_values = true
        )]
        database_url: String,
    },
}

#[derive(Debug, clap::Args)]
struct TokenArgs {
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
    #[arg(long, default_value = "1h", value_parser = guardian_service::config::parse_duration)]
    ttl: Duration,
    /// HS256 secret; without it the development secret in the data folder is used.
    #[arg(long, env = "GUARDIANS_JWT_HS256_SECRET", hide_env_values = true)]
    jwt_hs256_secret: Option<String>,
    /// A file holding the HS256 secret.
    #[arg(long, env = "GUARDIANS_JWT_HS256_SECRET_FILE")]
    jwt_hs256_secret_file: Option<std::path::PathBuf>,
    /// `iss` to put in the token.
    #[arg(long, env = "GUARDIANS_JWT_ISSUER")]
    jwt_issuer: Option<String>,
    /// `aud` to put in the token.
    #[arg(long, env = "GUARDIANS_JWT_AUDIENCE")]
    jwt_audience: Option<String>,
    /// Folder of the development secret.
    #[arg(long, env = "GUARDIANS_DATA_DIR", default_value = ".")]
    data_dir: std::path::PathBuf,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let telemetry = guardian_service::telemetry::init();
    let result = match cli.command {
        None => serve(cli.serve).await,
        Some(Command::Serve(config)) => serve(config).await,
        Some(Command::Migrate { database_url }) => migrate(database_url).await,
        Some(Command::Token(args)) => token(args),
    };
    telemetry.shutdown();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            tracing::error!("{message}");
            eprintln!("guardian-service: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(config: ServeConfig) -> Result<(), String> {
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", config.listen))?;
    guardian_service::server::serve(config, listener, shutdown_signal())
        .await
        .map_err(|e| e.to_string())
}

fn token(args: TokenArgs) -> Result<(), String> {
    use guardian_service::auth::{KeySources, dev, issue};
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

async fn migrate(database_url: String) -> Result<(), String> {
    let store = store::connect(&ConnectOptions {
        url: database_url,
        max_connections: 2,
        acquire_timeout: Duration::from_secs(30),
        statement_timeout: None,
    })
    .await
    .map_err(|e| e.to_string())?;
    store.migrate().await.map_err(|e| e.to_string())?;
    store.close().await;
    tracing::info!("migrations applied");
    Ok(())
}

/// Resolves on SIGTERM or Ctrl-C.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}
