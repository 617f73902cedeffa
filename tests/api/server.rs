//! The server shell: health, reflection, limits, the embedded store, unreachable databases.

use crate::helpers::{
    reason, spawn_app, spawn_sqlite_app, spawn_unready, spawn_with, test_config, wait_for,
};
use guardian_service::config::ServeConfig;
use guardian_service::proto::{GetDomainSettingsRequest, UpsertUsersRequest, User, UserRole};
use std::time::Duration;
use tokio_stream::StreamExt;
use tonic::Code;
use tonic::transport::Channel;
use tonic_health::pb::health_check_response::ServingStatus;

#[tokio::test]
async fn reflection_lists_every_service_in_both_versions() {
    let app = spawn_app().await;
    use tonic_reflection::pb::v1 as r1;
    use tonic_reflection::pb::v1alpha as r0;
    let mut v1 = r1::server_reflection_client::ServerReflectionClient::new(app.channel.clone());
    let request = r1::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(r1::server_reflection_request::MessageRequest::ListServices(
            String::new(),
        )),
    };
    let mut replies = v1
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .unwrap()
        .into_inner();
    let reply = replies.next().await.unwrap().unwrap();
    let Some(r1::server_reflection_response::MessageResponse::ListServicesResponse(list)) =
        reply.message_response
    else {
        panic!("unexpected reflection reply");
    };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    for service in [
        "guardians.v1.GuardianService",
        "guardians.v1.SettingsService",
        "guardians.v1.DirectoryService",
        "grpc.health.v1.Health",
    ] {
        assert!(
            names.contains(&service.to_string()),
            "{service} missing from {names:?}"
        );
    }
    let mut v0 = r0::server_reflection_client::ServerReflectionClient::new(app.channel.clone());
    assert!(files_v1alpha(&mut v0, "guardians.v1.SettingsService").await > 0);

    // The error details' types, so that clients resolving them by reflection can decode
    // errors' reasons instead of showing base64.
    for symbol in [
        "google.rpc.ErrorInfo",
        "google.rpc.BadRequest",
        "google.rpc.Status",
    ] {
        assert!(files_v1(&mut v1, symbol).await > 0, "{symbol} over v1");
        assert!(
            files_v1alpha(&mut v0, symbol).await > 0,
            "{symbol} over v1alpha"
        );
    }
}

type ReflectionV1 =
    tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient<Channel>;
type ReflectionV1Alpha =
    tonic_reflection::pb::v1alpha::server_reflection_client::ServerReflectionClient<Channel>;

/// How many files reflection v1 returns for the file containing `symbol`.
async fn files_v1(client: &mut ReflectionV1, symbol: &str) -> usize {
    use tonic_reflection::pb::v1::{
        ServerReflectionRequest, server_reflection_request::MessageRequest,
        server_reflection_response::MessageResponse,
    };
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::FileContainingSymbol(symbol.into())),
    };
    let mut replies = client
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .unwrap()
        .into_inner();
    match replies.next().await.unwrap().unwrap().message_response {
        Some(MessageResponse::FileDescriptorResponse(files)) => files.file_descriptor_proto.len(),
        other => panic!("{symbol}: {other:?}"),
    }
}

/// [`files_v1`] over reflection v1alpha, which grpcurl 1.8 speaks.
async fn files_v1alpha(client: &mut ReflectionV1Alpha, symbol: &str) -> usize {
    use tonic_reflection::pb::v1alpha::{
        ServerReflectionRequest, server_reflection_request::MessageRequest,
        server_reflection_response::MessageResponse,
    };
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::FileContainingSymbol(symbol.into())),
    };
    let mut replies = client
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .unwrap()
        .into_inner();
    match replies.next().await.unwrap().unwrap().message_response {
        Some(MessageResponse::FileDescriptorResponse(files)) => files.file_descriptor_proto.len(),
        other => panic!("{symbol}: {other:?}"),
    }
}

#[tokio::test]
async fn the_embedded_sqlite_store_serves_the_same_api() {
    let app = spawn_sqlite_app().await;
    let users = vec![User {
        user_id: "s1".into(),
        domain: "school.example".into(),
        email: "s1@school.example".into(),
        role: UserRole::Student as i32,
        ..Default::default()
    }];
    app.directory()
        .upsert_users(UpsertUsersRequest { users })
        .await
        .unwrap();
    let s = app
        .settings()
        .get_domain_settings(GetDomainSettingsRequest {
            domain: "school.example".into(),
        })
        .await
        .unwrap();
    assert!(s.into_inner().settings.unwrap().guardian_access_enabled);
}

#[tokio::test]
async fn oversized_messages_are_refused() {
    let app_db = guardian_service::testing::TestDatabase::create().await;
    let config = ServeConfig {
        max_message_bytes: 4096,
        ..test_config(&app_db.url)
    };
    let app = spawn_with(config).await;
    let users = (0..200)
        .map(|i| User {
            user_id: format!("student-{i}"),
            domain: "school.example".into(),
            email: format!("student-{i}@school.example"),
            role: UserRole::Student as i32,
            ..Default::default()
        })
        .collect();
    let err = app
        .directory()
        .upsert_users(UpsertUsersRequest { users })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::ResourceExhausted, "{err:?}");
    assert_eq!(crate::helpers::reason(&err), "MESSAGE_TOO_LARGE");
}

#[tokio::test]
async fn an_unreachable_database_is_not_serving_and_fails_fast_with_unavailable() {
    // Nothing listens on port 9 of loopback (discard is not run here).
    let config = ServeConfig {
        db_acquire_timeout: Duration::from_millis(300),
        ..test_config("postgres://postgres@127.0.0.1:9/none")
    };
    let mut app = spawn_unready(config).await;
    wait_for(&mut app, ServingStatus::NotServing).await;
    let started = std::time::Instant::now();
    let err = app
        .settings()
        .get_domain_settings(GetDomainSettingsRequest {
            domain: "school.example".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(
        (err.code(), reason(&err).as_str()),
        (Code::Unavailable, "UNAVAILABLE")
    );
    // Not a timing assertion on speed: only that it did not hang until the request deadline.
    assert!(started.elapsed() < Duration::from_secs(10));
    app.stop().await;
}

#[tokio::test]
async fn shutdown_reports_not_serving_and_ends_cleanly() {
    let mut app = spawn_app().await;
    let mut watch = app
        .health()
        .watch(tonic_health::pb::HealthCheckRequest {
            service: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        watch.next().await.unwrap().unwrap().status,
        ServingStatus::Serving as i32
    );
    let stopping = tokio::spawn(async move {
        app.stop().await;
    });
    let update = watch
        .next()
        .await
        .expect("an update before the stream ends")
        .unwrap();
    assert_eq!(update.status, ServingStatus::NotServing as i32);
    // A watcher that goes away lets the drain finish without waiting for the drain timeout.
    drop(watch);
    stopping.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_database_stops_the_start_with_what_to_do_and_migrate_creates_it() {
    // A database name that is free: made, then dropped (the guard drops it again at the end).
    let db = guardian_service::testing::TestDatabase::create().await;
    let name = db.url.rsplit('/').next().unwrap().to_owned();
    let admin = guardian_service::testing::postgres_admin_url();
    let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&admin)
        .await
        .unwrap();
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("DROP DATABASE {name}")))
        .execute(&mut conn)
        .await
        .unwrap();

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let err = guardian_service::server::serve(test_config(&db.url), listener, async {})
        .await
        .expect_err("no database, no server");
    let said = err.to_string();
    // The URL's host and port, as the message should name them.
    let server = db
        .url
        .rsplit_once('@')
        .map_or(db.url.as_str(), |(_, rest)| rest);
    let server = server.split('/').next().unwrap();
    assert!(
        said.contains(&format!("database {name} does not exist"))
            && said.contains("guardian-service migrate")
            && said.contains(server),
        "{said}"
    );

    let migrate = std::process::Command::new(env!("CARGO_BIN_EXE_guardian-service"))
        .args(["migrate", "--database-url", &db.url])
        .output()
        .unwrap();
    assert!(
        migrate.status.success(),
        "{}",
        String::from_utf8_lossy(&migrate.stderr)
    );
    let migrated: i64 = {
        let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&db.url)
            .await
            .expect("migrate created the database");
        sqlx::query_scalar("SELECT COUNT(*) FROM _sqlx_migrations WHERE success")
            .fetch_one(&mut conn)
            .await
            .unwrap()
    };
    assert!(migrated > 0);
}
