//! The data map test: docs/privacy.md names every column of every table, on both backends, so
//! a migration that adds one cannot skip saying whether it holds personal data.

use crate::store::{self, ConnectOptions};
use crate::testing::{TempDir, TestDatabase};
use std::collections::BTreeSet;
use std::time::Duration;

const DATA_MAP: &str = include_str!("../../docs/privacy.md");

/// Every `table.column` the page names in backquotes.
fn named_columns() -> BTreeSet<String> {
    DATA_MAP
        .split('`')
        .skip(1)
        .step_by(2)
        .filter(|name| {
            let mut parts = name.split('.');
            let ok = |p: Option<&str>| {
                p.is_some_and(|p| {
                    !p.is_empty() && p.chars().all(|c| c.is_ascii_lowercase() || c == '_')
                })
            };
            ok(parts.next()) && ok(parts.next()) && parts.next().is_none()
        })
        .map(str::to_owned)
        .collect()
}

/// Fails naming each of `columns` (table, column) that the page does not name.
fn assert_all_named(columns: &[(String, String)]) {
    assert!(
        columns.len() > 100,
        "the schema was read: {}",
        columns.len()
    );
    let named = named_columns();
    let unnamed: Vec<String> = columns
        .iter()
        .map(|(table, column)| format!("{table}.{column}"))
        .filter(|c| !named.contains(c))
        .collect();
    assert_eq!(
        unnamed,
        Vec::<String>::new(),
        "columns docs/privacy.md does not name"
    );
}

#[test]
fn the_page_names_columns_in_its_tables() {
    let named = named_columns();
    assert!(named.contains("invitations.invited_email"));
    assert!(named.contains("outbox.body_text"));
    assert!(!named.iter().any(|n| n.starts_with("store.")), "{named:?}");
}

#[tokio::test]
async fn every_postgres_column_is_in_the_data_map() {
    let db = TestDatabase::create_migrated().await;
    let store = store::postgres::PostgresStore::connect(&db.options(2))
        .await
        .unwrap();
    let columns: Vec<(String, String)> = sqlx::query_as(
        "SELECT table_name::text, column_name::text FROM information_schema.columns \
         WHERE table_schema = 'public' AND table_name <> '_sqlx_migrations' \
         ORDER BY table_name, ordinal_position",
    )
    .fetch_all(store.pool())
    .await
    .unwrap();
    assert_all_named(&columns);
}

#[tokio::test]
async fn every_sqlite_column_is_in_the_data_map() {
    let dir = TempDir::new();
    let options = ConnectOptions::plain(
        format!("sqlite://{}/map.db", dir.path.display()),
        1,
        Duration::from_secs(5),
    );
    let store = store::sqlite::SqliteStore::connect(&options).await.unwrap();
    crate::store::Store::migrate(&store).await.unwrap();
    let mut conn = <sqlx::SqliteConnection as sqlx::Connection>::connect(&options.url)
        .await
        .unwrap();
    let columns: Vec<(String, String)> = sqlx::query_as(
        "SELECT m.name, p.name FROM sqlite_master m JOIN pragma_table_info(m.name) p \
         WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%' AND m.name <> '_sqlx_migrations' \
         ORDER BY m.name, p.cid",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    assert_all_named(&columns);
}
