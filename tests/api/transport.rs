//! What a client sees when the transport refuses a call: unknown methods, bytes that are not
//! the method's message, messages over the size limit, the server's own deadline, and a
//! database that does not answer in time. Each answer carries the contract's code and reason.

use crate::fixtures::{SCHOOL, assert_status, seed_school};
use crate::helpers::{Authed, Bearer, TestApp, platform, spawn_with, test_config};
use bytes::{Buf, BufMut};
use guardian_service::proto::GetUserRequest;
use guardian_service::testing::TestDatabase;
use std::time::Duration;
use tonic::Code;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};

/// Sends and receives message bytes as they are, so a test can send what no generated client
/// would.
#[derive(Debug, Clone, Copy, Default)]
struct RawCodec;

impl Codec for RawCodec {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = RawCodec;
    type Decoder = RawCodec;
    fn encoder(&mut self) -> Self::Encoder {
        RawCodec
    }
    fn decoder(&mut self) -> Self::Decoder {
        RawCodec
    }
}

impl Encoder for RawCodec {
    type Item = Vec<u8>;
    type Error = tonic::Status;
    fn encode(&mut self, item: Vec<u8>, dst: &mut EncodeBuf<'_>) -> Result<(), tonic::Status> {
        dst.put_slice(&item);
        Ok(())
    }
}

impl Decoder for RawCodec {
    type Item = Vec<u8>;
    type Error = tonic::Status;
    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Vec<u8>>, tonic::Status> {
        Ok(Some(src.copy_to_bytes(src.remaining()).to_vec()))
    }
}

async fn raw_call(
    app: &TestApp,
    token: Option<&str>,
    path: &'static str,
    body: Vec<u8>,
) -> Result<Vec<u8>, tonic::Status> {
    let bearer = token.map(Bearer::new).unwrap_or_else(Bearer::none);
    let channel: Authed =
        tonic::service::interceptor::InterceptedService::new(app.channel.clone(), bearer);
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.expect("ready");
    grpc.unary(
        tonic::Request::new(body),
        http::uri::PathAndQuery::from_static(path),
        RawCodec,
    )
    .await
    .map(tonic::Response::into_inner)
}

async fn spawn(config: impl FnOnce(&mut guardian_service::config::ServeConfig)) -> TestApp {
    let db = TestDatabase::create_migrated().await;
    let mut c = test_config(&db.url);
    config(&mut c);
    let mut app = spawn_with(c).await;
    app.db = Some(db);
    app
}

#[tokio::test]
async fn unknown_methods_are_unimplemented_with_or_without_a_token() {
    let app = spawn(|_| {}).await;
    for token in [None, Some(platform())] {
        for path in [
            "/guardians.v1.GuardianService/NoSuchMethod",
            "/guardians.v2.GuardianService/CheckGuardianship",
            "/some.Other/Thing",
        ] {
            let answer = raw_call(&app, token.as_deref(), path, Vec::new()).await;
            assert_status(answer, Code::Unimplemented, "UNIMPLEMENTED");
        }
    }
}

#[tokio::test]
async fn bytes_that_are_not_the_message_are_invalid_arguments() {
    let app = spawn(|_| {}).await;
    // Field 1 as a varint where a string is expected, then a truncated length.
    let garbage = vec![0x08, 0x96, 0x01, 0x12, 0xff];
    let answer = raw_call(
        &app,
        Some(&platform()),
        "/guardians.v1.DirectoryService/GetUser",
        garbage,
    )
    .await;
    assert_status(answer, Code::InvalidArgument, "INVALID_ARGUMENT");
}

/// Holds an exclusive lock on the users table from another connection until dropped, so
/// that any call reading users waits on the database for as long as the test wants.
async fn lock_users(app: &TestApp) -> sqlx::Transaction<'static, sqlx::Postgres> {
    let pool = sqlx::PgPool::connect(&app.database_url).await.unwrap();
    let mut tx = pool.begin().await.unwrap();
    sqlx::query("LOCK TABLE users IN ACCESS EXCLUSIVE MODE")
        .execute(&mut *tx)
        .await
        .unwrap();
    tx
}

#[tokio::test]
async fn the_servers_own_deadline_is_deadline_exceeded() {
    let app = spawn(|c| {
        c.request_timeout = Duration::from_millis(500);
        c.statement_timeout = Duration::ZERO;
    })
    .await;
    seed_school(&app, 1).await;
    let lock = lock_users(&app).await;
    let answer = app
        .directory()
        .get_user(GetUserRequest {
            user_id: "s1".into(),
        })
        .await;
    assert_status(answer, Code::DeadlineExceeded, "DEADLINE_EXCEEDED");
    lock.rollback().await.unwrap();
}

#[tokio::test]
async fn a_statement_stuck_on_the_database_fails_unavailable_before_the_deadline() {
    let app = spawn(|c| {
        c.request_timeout = Duration::from_secs(60);
        c.statement_timeout = Duration::from_millis(300);
    })
    .await;
    seed_school(&app, 1).await;
    let lock = lock_users(&app).await;
    let answer = app
        .directory()
        .get_user(GetUserRequest {
            user_id: "s1".into(),
        })
        .await;
    assert_status(answer, Code::Unavailable, "UNAVAILABLE");
    lock.rollback().await.unwrap();
    // The connection went back to the pool in a usable state.
    let user = app
        .directory()
        .get_user(GetUserRequest {
            user_id: "s1".into(),
        })
        .await
        .expect("after the lock")
        .into_inner();
    assert_eq!(user.user.map(|u| u.domain).as_deref(), Some(SCHOOL));
}
