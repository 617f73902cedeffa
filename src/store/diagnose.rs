//! What is wrong with a Postgres URL, in words an operator can act on: one connection at
//! start-up, its failure named (nothing listening, unknown host, wrong password, no such
//! database) with where and what to do, and whether waiting could help. The password is never
//! part of a message.

use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions as _, Connection, PgConnection};
use std::str::FromStr;
use std::time::Duration;

/// How long the start-up check waits for the database.
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// Why the database at a URL cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectProblem {
    /// What is wrong, where, and what to do.
    pub message: String,
    /// Waiting will not help (a wrong name, password or host); the alternative is a database
    /// that is starting or briefly away.
    pub permanent: bool,
    /// The database named by the URL does not exist (`migrate` can create it).
    pub missing_database: bool,
}

/// Where a URL points, without its password.
#[derive(Debug, Clone)]
struct Target {
    host: String,
    port: u16,
    user: String,
    database: String,
}

fn target(options: &PgConnectOptions) -> Target {
    Target {
        host: options.get_host().to_owned(),
        port: options.get_port(),
        user: options.get_username().to_owned(),
        database: options.get_database().unwrap_or("postgres").to_owned(),
    }
}

/// Opens one connection to `url`, or says why it cannot.
pub async fn check_postgres(url: &str) -> Result<(), ConnectProblem> {
    let options = PgConnectOptions::from_str(url).map_err(|e| ConnectProblem {
        message: format!("the Postgres URL cannot be read: {e}"),
        permanent: true,
        missing_database: false,
    })?;
    let at = target(&options);
    match tokio::time::timeout(PROBE_TIMEOUT, PgConnection::connect_with(&options)).await {
        Ok(Ok(conn)) => {
            let _ = conn.close().await;
            Ok(())
        }
        Ok(Err(err)) => Err(explain(&at, &err)),
        Err(_) => Err(ConnectProblem {
            message: format!(
                "Postgres at {}:{} did not answer within {}s: check the address and any firewall",
                at.host,
                at.port,
                PROBE_TIMEOUT.as_secs()
            ),
            permanent: false,
            missing_database: false,
        }),
    }
}

/// Creates the database `url` names, connecting to the server's `postgres` database with the
/// same role; the message says what to run instead when the role may not.
pub async fn create_database(url: &str) -> Result<(), String> {
    let options = PgConnectOptions::from_str(url).map_err(|e| format!("bad Postgres URL: {e}"))?;
    let at = target(&options);
    let mut admin = options
        .clone()
        .database("postgres")
        .connect()
        .await
        .map_err(|e| explain(&at, &e).message)?;
    let quoted = format!("\"{}\"", at.database.replace('"', "\"\""));
    let created = sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {quoted}")))
        .execute(&mut admin)
        .await;
    let _ = admin.close().await;
    created.map(drop).map_err(|e| {
        format!(
            "database {} does not exist and role {} cannot create it ({}): create it with \
             `createdb -h {} -p {} -U <a role that may> {}`, then migrate again",
            at.database,
            at.user,
            e.as_database_error()
                .map(|d| d.message().to_owned())
                .unwrap_or_else(|| e.to_string()),
            at.host,
            at.port,
            at.database
        )
    })
}

fn explain(at: &Target, err: &sqlx::Error) -> ConnectProblem {
    let (host, port, user, database) = (&at.host, at.port, &at.user, &at.database);
    let problem = |message: String, permanent: bool| ConnectProblem {
        message,
        permanent,
        missing_database: false,
    };
    if let Some(db) = err.as_database_error() {
        return match db.code().as_deref() {
            Some("3D000") => ConnectProblem {
                message: format!(
                    "database {database} does not exist on {host}:{port}: run `guardian-service \
                     migrate` (it creates the database when role {user} may) or `createdb -h \
                     {host} -p {port} -U {user} {database}`"
                ),
                permanent: true,
                missing_database: true,
            },
            Some("28P01") | Some("28000") => problem(
                format!(
                    "Postgres at {host}:{port} refused role {user} ({}): check the password in \
                     the URL and the server's pg_hba.conf",
                    db.message()
                ),
                true,
            ),
            _ => problem(
                format!(
                    "Postgres at {host}:{port} refused the connection: {}",
                    db.message()
                ),
                false,
            ),
        };
    }
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = source {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            if io.kind() == std::io::ErrorKind::ConnectionRefused {
                return problem(
                    format!(
                        "nothing listens at {host}:{port} (connection refused): is Postgres \
                         running, and is that its port?"
                    ),
                    false,
                );
            }
            if io.to_string().contains("lookup address") {
                return problem(
                    format!("unknown host {host}: check the host name in the database URL"),
                    true,
                );
            }
        }
        source = e.source();
    }
    problem(
        format!("cannot reach Postgres at {host}:{port}: {err}"),
        false,
    )
}
