//! Support for tests: throwaway databases on a real Postgres server and SQLite. Kept in the
//! library so that unit and integration tests share it, and compiled only for them (the
//! `test-util` feature, which the integration tests turn on).

use crate::store::{self, ConnectOptions, Store, StoreResult};
use sqlx::{Connection, PgConnection};
use std::sync::Arc;
use std::time::Duration;

/// The server tests use: `DATABASE_URL` (any database on it; it is only used to create and drop
/// others), else the local default.
pub fn postgres_admin_url() -> String {
    std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

/// A database created for one test and dropped when this value is dropped.
#[derive(Debug)]
pub struct TestDatabase {
    /// URL of the new database.
    pub url: String,
    name: String,
    admin_url: String,
}

impl TestDatabase {
    /// Creates an empty database with a unique name.
    pub async fn create() -> Self {
        Self::create_from(None).await
    }

    /// Creates a database with a unique name holding the current schema: a copy of a template
    /// database migrated once (per schema version, shared by every test process), which is far
    /// quicker than running the migrations for each test.
    pub async fn create_migrated() -> Self {
        let template = migrated_template().await;
        Self::create_from(Some(&template)).await
    }

    /// Creates an empty database with a unique name on the server `admin_url` names.
    pub async fn create_on(admin_url: &str) -> Self {
        Self::create_on_from(admin_url.to_owned(), None).await
    }

    /// This database's URL with the host of `server_url`: the same database on another server,
    /// such as a standby of this one.
    pub fn url_on(&self, server_url: &str) -> String {
        replace_database(server_url, &self.name)
    }

    async fn create_from(template: Option<&str>) -> Self {
        Self::create_on_from(postgres_admin_url(), template).await
    }

    async fn create_on_from(admin_url: String, template: Option<&str>) -> Self {
        let name = format!("guardians_test_{}", uuid::Uuid::new_v4().simple());
        let mut admin = admin_connection(&admin_url).await;
        let sql = match template {
            Some(template) => format!("CREATE DATABASE {name} TEMPLATE {template}"),
            None => format!("CREATE DATABASE {name}"),
        };
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
            .execute(&mut admin)
            .await
            .expect("create test database");
        let url = replace_database(&admin_url, &name);
        Self {
            url,
            name,
            admin_url,
        }
    }

    /// Connection options for this database with a pool of `max_connections`.
    pub fn options(&self, max_connections: u32) -> ConnectOptions {
        ConnectOptions::plain(self.url.clone(), max_connections, Duration::from_secs(10))
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        // Drop in a thread of its own: Drop cannot await, and the test's runtime may be ending.
        let admin_url = self.admin_url.clone();
        let name = self.name.clone();
        let _ = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async move {
                if let Ok(mut admin) = PgConnection::connect(&admin_url).await {
                    let sql = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
                    let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
                        .execute(&mut admin)
                        .await;
                }
            });
        })
        .join();
    }
}

async fn admin_connection(admin_url: &str) -> PgConnection {
    PgConnection::connect(admin_url)
        .await
        .unwrap_or_else(|e| panic!("tests need Postgres at DATABASE_URL or 127.0.0.1:5432: {e}"))
}

/// The name of a database migrated to the embedded schema, made on first use. Test processes
/// running at once take turns under an advisory lock; the template is built under a temporary
/// name and renamed when complete, so a half-migrated template is never copied.
async fn migrated_template() -> String {
    static READY: tokio::sync::OnceCell<String> = tokio::sync::OnceCell::const_new();
    READY
        .get_or_init(|| async {
            let name = format!(
                "guardians_template_{}",
                store::postgres::migrations_digest()
            );
            let admin_url = postgres_admin_url();
            let mut admin = admin_connection(&admin_url).await;
            // Any constant key: it only serialises template builders.
            let lock = "SELECT pg_advisory_lock(4242001)";
            sqlx::raw_sql(lock).execute(&mut admin).await.expect("lock");
            let exists: Option<i32> =
                sqlx::query_scalar("SELECT 1 FROM pg_database WHERE datname = $1")
                    .bind(&name)
                    .fetch_optional(&mut admin)
                    .await
                    .expect("look for the template");
            if exists.is_none() {
                let building = format!("{name}_building");
                for sql in [
                    format!("DROP DATABASE IF EXISTS {building} WITH (FORCE)"),
                    format!("CREATE DATABASE {building}"),
                ] {
                    sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
                        .execute(&mut admin)
                        .await
                        .expect("create the template");
                }
                let options = ConnectOptions::plain(
                    replace_database(&admin_url, &building),
                    1,
                    Duration::from_secs(10),
                );
                let store = store::connect(&options).await.expect("connect");
                store.migrate().await.expect("migrate the template");
                store.close().await;
                let rename = format!("ALTER DATABASE {building} RENAME TO {name}");
                sqlx::raw_sql(sqlx::AssertSqlSafe(rename))
                    .execute(&mut admin)
                    .await
                    .expect("publish the template");
            }
            let unlock = "SELECT pg_advisory_unlock(4242001)";
            sqlx::raw_sql(unlock)
                .execute(&mut admin)
                .await
                .expect("unlock");
            name
        })
        .await
        .clone()
}

/// `url` with its database name replaced.
fn replace_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    // The path starts at the first '/' after "scheme://host".
    let after_scheme = base.find("://").map(|i| i + 3).unwrap_or(0);
    let base = match base[after_scheme..].find('/') {
        Some(slash) => &base[..after_scheme + slash],
        None => base,
    };
    match query {
        Some(q) => format!("{base}/{name}?{q}"),
        None => format!("{base}/{name}"),
    }
}

/// A fresh, migrated Postgres store and the database that holds it.
pub async fn postgres_store() -> (Arc<dyn Store>, TestDatabase) {
    let db = TestDatabase::create_migrated().await;
    let store = store::connect(&db.options(16)).await.expect("connect");
    (store, db)
}

/// A fresh, migrated SQLite store in a temporary file (a file rather than `:memory:` so that
/// the pool has several connections, as in production use).
pub async fn sqlite_store() -> StoreResult<(Arc<dyn Store>, TempDir)> {
    let dir = TempDir::new();
    let url = format!("sqlite://{}/guardians.db", dir.path.display());
    let store = store::connect(&ConnectOptions::plain(url, 8, Duration::from_secs(10))).await?;
    store.migrate().await?;
    Ok((store, dir))
}

/// A temporary directory removed on drop.
#[derive(Debug)]
pub struct TempDir {
    /// Where it is.
    pub path: std::path::PathBuf,
}

impl TempDir {
    /// Creates a new, empty directory under the system's temporary folder.
    pub fn new() -> Self {
        let path =
            std::env::temp_dir().join(format!("guardians-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&path).expect("create temp dir");
        Self { path }
    }
}

impl Default for TempDir {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::replace_database;

    #[test]
    fn database_name_is_replaced_keeping_host_and_options() {
        assert_eq!(
            replace_database("postgres://postgres@127.0.0.1:5432/postgres", "t1"),
            "postgres://postgres@127.0.0.1:5432/t1"
        );
        assert_eq!(
            replace_database("postgres://u@h/db?sslmode=disable", "t2"),
            "postgres://u@h/t2?sslmode=disable"
        );
        assert_eq!(
            replace_database("postgres://u@h", "t3"),
            "postgres://u@h/t3"
        );
    }
}
