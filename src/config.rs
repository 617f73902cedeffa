//! Configuration of `guardian-service serve`: every setting is a flag and a `GUARDIANS_*`
//! environment variable (api.md, "Configuration").

use clap::Args;
use std::net::SocketAddr;
use std::time::Duration;

/// Settings of the server.
#[derive(Debug, Clone, Args)]
pub struct ServeConfig {
    /// gRPC listen address. Without keys the server only binds loopback (development mode).
    #[arg(
        long,
        env = "GUARDIANS_LISTEN",
        default_value = "127.0.0.1:50051",
        hide_env_values = true
    )]
    pub listen: SocketAddr,

    /// `postgres://...`, `sqlite://path` or `sqlite::memory:`.
    #[arg(
        long,
        env = "GUARDIANS_DATABASE_URL",
        default_value = "sqlite://guardians.db",
        hide_env_values = true
    )]
    pub database_url: String,

    /// Postgres read replicas (streaming standbys of the primary), comma-separated. Link reads
    /// in `minimize_latency` and `at_least_as_fresh` use one that has replayed what the read
    /// needs, else the primary.
    #[arg(
        long,
        env = "GUARDIANS_READ_DATABASE_URL",
        value_delimiter = ',',
        hide_env_values = true
    )]
    pub read_database_url: Vec<String>,

    /// HS256 shared secret for tokens (at least 32 bytes).
    #[arg(long, env = "GUARDIANS_JWT_HS256_SECRET", hide_env_values = true)]
    pub jwt_hs256_secret: Option<String>,

    /// A file holding the HS256 secret, for secrets mounted as files.
    #[arg(long, env = "GUARDIANS_JWT_HS256_SECRET_FILE", hide_env_values = true)]
    pub jwt_hs256_secret_file: Option<std::path::PathBuf>,

    /// A JSON Web Key Set file of public keys (RS256, ES256, EdDSA); several keys for rotation.
    #[arg(long, env = "GUARDIANS_JWKS_FILE", hide_env_values = true)]
    pub jwks_file: Option<std::path::PathBuf>,

    /// Required `iss` claim, when set.
    #[arg(long, env = "GUARDIANS_JWT_ISSUER", hide_env_values = true)]
    pub jwt_issuer: Option<String>,

    /// Required `aud` claim, when set.
    #[arg(long, env = "GUARDIANS_JWT_AUDIENCE", hide_env_values = true)]
    pub jwt_audience: Option<String>,

    /// Secret that signs page tokens; every replica needs the same one. Unset: derived from
    /// the HS256 (or development) secret; with only a JWKS file, a random key per process.
    #[arg(long, env = "GUARDIANS_PAGE_TOKEN_SECRET", hide_env_values = true)]
    pub page_token_secret: Option<String>,

    /// Folder for local state: the development secret.
    #[arg(
        long,
        env = "GUARDIANS_DATA_DIR",
        default_value = ".",
        hide_env_values = true
    )]
    pub data_dir: std::path::PathBuf,

    /// Base of the accept and decline links in invitation emails.
    #[arg(
        long,
        env = "GUARDIANS_ACCEPT_URL",
        default_value = "http://localhost:8080/guardian-invitations",
        hide_env_values = true
    )]
    pub accept_url: String,

    /// Public base URL of this service's web pages: the summaries' unsubscribe links point at
    /// `<URL>/summaries/unsubscribe`.
    #[arg(
        long,
        env = "GUARDIANS_PUBLIC_URL",
        default_value = "http://localhost:8080",
        hide_env_values = true
    )]
    pub public_url: String,

    /// SMTP server for email, e.g. `smtp://user:pass@host:587?tls=required`; unset: `.eml`
    /// files are written to the mail folder instead.
    #[arg(long, env = "GUARDIANS_SMTP_URL", hide_env_values = true)]
    pub smtp_url: Option<String>,

    /// Folder for `.eml` files when no SMTP server is configured.
    #[arg(
        long,
        env = "GUARDIANS_MAIL_DIR",
        default_value = "./mail",
        hide_env_values = true
    )]
    pub mail_dir: std::path::PathBuf,

    /// Sender of every email.
    #[arg(
        long,
        env = "GUARDIANS_MAIL_FROM",
        default_value = "Guardian notifications <no-reply@guardians.invalid>",
        hide_env_values = true
    )]
    pub mail_from: String,

    /// Run the outbox dispatcher in this replica.
    #[arg(long, env = "GUARDIANS_MAIL_DISPATCHER", default_value_t = true, action = clap::ArgAction::Set, hide_env_values = true)]
    pub mail_dispatcher: bool,

    /// Run the summary scheduler in this replica (every replica may: each summary is built
    /// once whatever the number).
    #[arg(long, env = "GUARDIANS_SUMMARY_SCHEDULER", default_value_t = true, action = clap::ArgAction::Set, hide_env_values = true)]
    pub summary_scheduler: bool,

    /// Students whose links this replica keeps in memory for the hot path; 0 turns the cache
    /// off (every read goes to the database).
    #[arg(
        long,
        env = "GUARDIANS_CACHE_CAPACITY",
        default_value_t = 100_000,
        hide_env_values = true
    )]
    pub cache_capacity: u64,

    /// How old an answer of a `minimize_latency` read may be: past it, a replica whose feed
    /// has not caught up reads the database instead of its cache.
    #[arg(long, env = "GUARDIANS_MAX_STALENESS", default_value = "1s", value_parser = parse_duration, hide_env_values = true)]
    pub max_staleness: Duration,

    /// How far back a change token may resume the feed; older is CHANGE_TOKEN_EXPIRED.
    #[arg(long, env = "GUARDIANS_FEED_RETENTION", default_value = "7d", value_parser = parse_duration, hide_env_values = true)]
    pub feed_retention: Duration,

    /// How often a quiet WatchGuardianChanges stream gets a heartbeat with the latest token.
    #[arg(long, env = "GUARDIANS_FEED_HEARTBEAT", default_value = "5s", value_parser = parse_duration, hide_env_values = true)]
    pub feed_heartbeat: Duration,

    /// How often the dispatcher looks for due email.
    #[arg(long, env = "GUARDIANS_MAIL_POLL_INTERVAL", default_value = "1s", value_parser = parse_duration, hide_env_values = true)]
    pub mail_poll_interval: Duration,

    /// Delivery attempts before an email is marked FAILED.
    #[arg(
        long,
        env = "GUARDIANS_MAIL_MAX_ATTEMPTS",
        default_value_t = 8,
        hide_env_values = true
    )]
    pub mail_max_attempts: i32,

    /// Where the unsubscribe page of summary emails is served over HTTP (behind the public
    /// base URL, `GUARDIANS_PUBLIC_URL`).
    #[arg(
        long,
        env = "GUARDIANS_HTTP_LISTEN",
        default_value = "127.0.0.1:8080",
        hide_env_values = true
    )]
    pub http_listen: Option<SocketAddr>,

    /// Where Prometheus reads `/metrics`.
    #[arg(
        long,
        env = "GUARDIANS_METRICS_LISTEN",
        default_value = "127.0.0.1:9464",
        hide_env_values = true
    )]
    pub metrics_listen: Option<SocketAddr>,

    /// Invitations to one address within this window go out as one family email (0s: each
    /// invitation's email at once, on its own).
    #[arg(long, env = "GUARDIANS_FAMILY_WINDOW", default_value = "60s", value_parser = parse_duration, hide_env_values = true)]
    pub family_window: Duration,

    /// How often this replica expires due invitations and purges old request ids.
    #[arg(long, env = "GUARDIANS_UPKEEP_INTERVAL", default_value = "30s", value_parser = parse_duration, hide_env_values = true)]
    pub upkeep_interval: Duration,

    /// Largest number of database connections this replica opens.
    #[arg(
        long,
        env = "GUARDIANS_DB_MAX_CONNECTIONS",
        default_value_t = 16,
        hide_env_values = true
    )]
    pub db_max_connections: u32,

    /// How long a request waits for a free database connection before failing UNAVAILABLE.
    #[arg(long, env = "GUARDIANS_DB_ACQUIRE_TIMEOUT", default_value = "2s", value_parser = parse_duration, hide_env_values = true)]
    pub db_acquire_timeout: Duration,

    /// Longest one Postgres statement may run or wait for a lock (0: no limit). Below the
    /// request deadline, so a call stuck on the database fails UNAVAILABLE in time.
    #[arg(long, env = "GUARDIANS_STATEMENT_TIMEOUT", default_value = "5s", value_parser = parse_duration, hide_env_values = true)]
    pub statement_timeout: Duration,

    /// Deadline of every RPC on the server side (a client's shorter grpc-timeout wins).
    #[arg(long, env = "GUARDIANS_REQUEST_TIMEOUT", default_value = "10s", value_parser = parse_duration, hide_env_values = true)]
    pub request_timeout: Duration,

    /// Deadline of BulkCreateGuardianInvitations, BulkDeleteGuardians and SyncGuardians. A bulk
    /// call stops starting rows shortly before it and reports the rows it did not attempt.
    #[arg(long, env = "GUARDIANS_BULK_REQUEST_TIMEOUT", default_value = "120s", value_parser = parse_duration, hide_env_values = true)]
    pub bulk_request_timeout: Duration,

    /// Largest request or response message, in bytes.
    #[arg(long, env = "GUARDIANS_MAX_MESSAGE_BYTES", default_value_t = 8 * 1024 * 1024, hide_env_values = true)]
    pub max_message_bytes: usize,

    /// Most RPCs in flight on one client connection; further ones wait.
    #[arg(
        long,
        env = "GUARDIANS_CONCURRENCY_PER_CONNECTION",
        default_value_t = 256,
        hide_env_values = true
    )]
    pub concurrency_per_connection: usize,

    /// Most client connections open at once; further clients wait in the listen backlog.
    #[arg(
        long,
        env = "GUARDIANS_MAX_CONNECTIONS",
        default_value_t = 4096,
        hide_env_values = true
    )]
    pub max_connections: usize,

    /// How long a new connection may stay silent before it is closed.
    #[arg(long, env = "GUARDIANS_HANDSHAKE_TIMEOUT", default_value = "10s", value_parser = parse_duration, hide_env_values = true)]
    pub handshake_timeout: Duration,

    /// How long a connection may have no RPC in flight before it is closed (clients reconnect
    /// transparently).
    #[arg(long, env = "GUARDIANS_IDLE_TIMEOUT", default_value = "10m", value_parser = parse_duration, hide_env_values = true)]
    pub idle_timeout: Duration,

    /// Interval of HTTP/2 keepalive pings to each client.
    #[arg(long, env = "GUARDIANS_KEEPALIVE_INTERVAL", default_value = "30s", value_parser = parse_duration, hide_env_values = true)]
    pub keepalive_interval: Duration,

    /// A client that does not answer a keepalive ping within this is disconnected.
    #[arg(long, env = "GUARDIANS_KEEPALIVE_TIMEOUT", default_value = "10s", value_parser = parse_duration, hide_env_values = true)]
    pub keepalive_timeout: Duration,

    /// Apply pending migrations at start-up. Turn off where a separate job migrates.
    #[arg(long, env = "GUARDIANS_AUTO_MIGRATE", default_value_t = true, action = clap::ArgAction::Set, hide_env_values = true)]
    pub auto_migrate: bool,

    /// After SIGTERM, how long to report NOT_SERVING before refusing new RPCs, so that load
    /// balancers stop sending first.
    #[arg(long, env = "GUARDIANS_SHUTDOWN_GRACE", default_value = "0s", value_parser = parse_duration, hide_env_values = true)]
    pub shutdown_grace: Duration,

    /// After that, how long RPCs in flight may take to finish before the server stops anyway.
    #[arg(long, env = "GUARDIANS_DRAIN_TIMEOUT", default_value = "20s", value_parser = parse_duration, hide_env_values = true)]
    pub drain_timeout: Duration,
}

impl ServeConfig {
    /// The feed and cache settings of the use cases.
    pub fn freshness(&self) -> crate::app::freshness::FreshnessConfig {
        crate::app::freshness::FreshnessConfig {
            cache_capacity: self.cache_capacity,
            max_staleness: self.max_staleness,
            feed_retention: self.feed_retention,
            heartbeat: self.feed_heartbeat,
        }
    }

    /// The defaults, as with no flags and no environment, for `database_url`.
    pub fn for_database(database_url: impl Into<String>) -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 50051)),
            database_url: database_url.into(),
            read_database_url: Vec::new(),
            jwt_hs256_secret: None,
            jwt_hs256_secret_file: None,
            jwks_file: None,
            jwt_issuer: None,
            jwt_audience: None,
            page_token_secret: None,
            data_dir: std::path::PathBuf::from("."),
            accept_url: "http://localhost:8080/guardian-invitations".into(),
            public_url: "http://localhost:8080".into(),
            upkeep_interval: Duration::from_secs(30),
            family_window: crate::app::DEFAULT_FAMILY_WINDOW,
            http_listen: None,
            metrics_listen: None,
            smtp_url: None,
            mail_dir: std::path::PathBuf::from("./mail"),
            mail_from: "Guardian notifications <no-reply@guardians.invalid>".into(),
            mail_dispatcher: true,
            summary_scheduler: true,
            cache_capacity: 100_000,
            max_staleness: Duration::from_secs(1),
            feed_retention: Duration::from_secs(7 * 86_400),
            feed_heartbeat: Duration::from_secs(5),
            mail_poll_interval: Duration::from_secs(1),
            mail_max_attempts: 8,
            db_max_connections: 16,
            db_acquire_timeout: Duration::from_secs(2),
            statement_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(10),
            bulk_request_timeout: Duration::from_secs(120),
            max_message_bytes: 8 * 1024 * 1024,
            concurrency_per_connection: 256,
            max_connections: 4096,
            handshake_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(600),
            keepalive_interval: Duration::from_secs(30),
            keepalive_timeout: Duration::from_secs(10),
            auto_migrate: true,
            shutdown_grace: Duration::ZERO,
            drain_timeout: Duration::from_secs(20),
        }
    }
}

impl ServeConfig {
    /// The mail transport this configuration names.
    pub fn mail_transport(&self) -> Result<std::sync::Arc<dyn crate::mail::Transport>, String> {
        let from: lettre::message::Mailbox = self
            .mail_from
            .parse()
            .map_err(|e| format!("GUARDIANS_MAIL_FROM is not a mailbox: {e}"))?;
        Ok(match &self.smtp_url {
            Some(url) => std::sync::Arc::new(crate::mail::SmtpTransport::from_url(url, from)?),
            None => std::sync::Arc::new(crate::mail::FolderTransport::new(
                self.mail_dir.clone(),
                from,
            )),
        })
    }

    /// The dispatcher's pacing from this configuration.
    pub fn dispatch_policy(&self) -> crate::mail::DispatchPolicy {
        crate::mail::DispatchPolicy {
            max_attempts: self.mail_max_attempts.max(1),
            ..Default::default()
        }
    }

    /// Where the keys come from.
    pub fn key_sources(&self) -> crate::auth::KeySources {
        crate::auth::KeySources {
            hs256_secret: self.jwt_hs256_secret.clone(),
            hs256_secret_file: self.jwt_hs256_secret_file.clone(),
            jwks_file: self.jwks_file.clone(),
            issuer: self.jwt_issuer.clone(),
            audience: self.jwt_audience.clone(),
        }
    }
}

/// Parses `250ms`, `10s`, `5m`, `1h` (or a bare number of seconds).
pub fn parse_duration(raw: &str) -> Result<Duration, String> {
    let raw = raw.trim();
    let split = raw.find(|c: char| !c.is_ascii_digit()).unwrap_or(raw.len());
    let (number, unit) = raw.split_at(split);
    let n: u64 = number
        .parse()
        .map_err(|_| format!("{raw:?} is not a duration such as 500ms, 10s, 5m or 1h"))?;
    match unit {
        "ms" => Ok(Duration::from_millis(n)),
        "" | "s" => Ok(Duration::from_secs(n)),
        "m" => Ok(Duration::from_secs(n * 60)),
        "h" => Ok(Duration::from_secs(n * 3600)),
        "d" => Ok(Duration::from_secs(n * 86_400)),
        _ => Err(format!("unknown unit in {raw:?}; use ms, s, m, h or d")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(clap::Parser)]
    struct Cli {
        #[command(flatten)]
        serve: ServeConfig,
    }

    #[test]
    fn several_read_replicas_are_separated_by_commas() {
        use clap::Parser;
        let cli = Cli::try_parse_from([
            "guardian-service",
            "--read-database-url",
            "postgres://a.example/g,postgres://b.example/g",
        ])
        .unwrap();
        assert_eq!(
            cli.serve.read_database_url,
            ["postgres://a.example/g", "postgres://b.example/g"]
        );
        let none = Cli::try_parse_from(["guardian-service"]).unwrap();
        assert!(none.serve.read_database_url.is_empty());
    }

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("10"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("5y").is_err());
    }
}
