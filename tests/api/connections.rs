//! Connections that hold resources without using them: silent sockets are closed after the
//! handshake timeout, idle ones after the idle timeout, and a server out of file descriptors
//! keeps serving new clients as the silent ones are shed.

use crate::helpers::{TestApp, spawn_with, test_config};
use guardian_service::testing::TestDatabase;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

/// A bound on how long a test waits for something the server must do by itself; reaching it
/// is a failure (the server never did it), not a measurement.
const PATIENCE: Duration = Duration::from_secs(60);

async fn spawn(handshake: Duration, idle: Duration) -> TestApp {
    let db = TestDatabase::create_migrated().await;
    let mut config = test_config(&db.url);
    config.handshake_timeout = handshake;
    config.idle_timeout = idle;
    let mut app = spawn_with(config).await;
    app.db = Some(db);
    app
}

fn address(app: &TestApp) -> String {
    app.channel_uri.trim_start_matches("http://").to_owned()
}

/// Reads until the server closes the connection; the bytes it sent before.
async fn read_until_closed(stream: &mut TcpStream) -> Vec<u8> {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    tokio::time::timeout(PATIENCE, async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await
    .expect("the server closes the connection by itself");
    got
}

#[tokio::test]
async fn a_connection_that_sends_nothing_is_closed_after_the_handshake_timeout() {
    let app = spawn(Duration::from_millis(200), Duration::from_secs(600)).await;
    let mut silent = TcpStream::connect(address(&app)).await.unwrap();
    read_until_closed(&mut silent).await;
    // The server itself still serves.
    app.health()
        .check(HealthCheckRequest::default())
        .await
        .expect("health");
}

#[tokio::test]
async fn a_connection_with_no_rpc_is_closed_after_the_idle_timeout() {
    let app = spawn(Duration::from_secs(600), Duration::from_millis(300)).await;
    let mut idle = TcpStream::connect(address(&app)).await.unwrap();
    // The HTTP/2 preface and an empty SETTINGS frame: a client that connected and then
    // made no call.
    idle.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00")
        .await
        .unwrap();
    let answered = read_until_closed(&mut idle).await;
    assert!(
        !answered.is_empty(),
        "the server spoke HTTP/2 before closing"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_out_of_file_descriptors_still_serves_a_new_client() {
    let db = TestDatabase::create_migrated().await;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = guardian_service::testing::TempDir::new();
    // 64 descriptors: a few hundred silent sockets exhaust them.
    let mut child = Command::new("sh")
        .args([
            "-c",
            "ulimit -n 64 && exec \"$0\"",
            env!("CARGO_BIN_EXE_guardian-service"),
        ])
        .env("GUARDIANS_DATABASE_URL", &db.url)
        .env("GUARDIANS_LISTEN", format!("127.0.0.1:{port}"))
        .env("GUARDIANS_JWT_HS256_SECRET", crate::helpers::SECRET)
        .env("GUARDIANS_MAIL_DISPATCHER", "false")
        .env("GUARDIANS_DATA_DIR", &dir.path)
        .env("GUARDIANS_HANDSHAKE_TIMEOUT", "500ms")
        .env("GUARDIANS_MAX_CONNECTIONS", "10000")
        .env("RUST_LOG", "warn,guardian_service=info")
        .stderr(Stdio::piped())
        .spawn()
        .expect("start guardian-service");
    let stderr = child.stderr.take().unwrap();
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let (log_tx, log_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut ready = Some(ready_tx);
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if line.contains("SERVING")
                && !line.contains("NOT_SERVING")
                && let Some(tx) = ready.take()
            {
                let _ = tx.send(());
            }
            let _ = log_tx.send(line);
        }
    });
    ready_rx.recv().expect("the server reported SERVING");

    let address = format!("127.0.0.1:{port}");
    let mut silent = Vec::new();
    for _ in 0..300 {
        silent.push(
            TcpStream::connect(&address)
                .await
                .expect("the backlog takes it"),
        );
    }
    let channel = tonic::transport::Channel::from_shared(format!("http://{address}"))
        .unwrap()
        .connect_timeout(PATIENCE)
        .connect()
        .await
        .expect("connect");
    let status = tokio::time::timeout(
        PATIENCE,
        HealthClient::new(channel).check(HealthCheckRequest::default()),
    )
    .await
    .expect("a fresh client is served while silent sockets are shed")
    .expect("health");
    assert_eq!(status.into_inner().status, 1, "SERVING");
    let _ = child.kill();
    let _ = child.wait();
    let log: Vec<String> = log_rx.try_iter().collect();
    assert!(
        log.iter().any(|l| l.contains("cannot accept connections")),
        "the descriptor limit was reached (so this test tested it):\n{}",
        log.join("\n")
    );
    drop(silent);
}

#[tokio::test]
async fn an_open_health_watch_does_not_hold_the_shutdown_open() {
    let db = TestDatabase::create_migrated().await;
    let mut config = test_config(&db.url);
    // Were the stream left open, stopping would wait this long.
    config.drain_timeout = Duration::from_secs(3600);
    let mut app = spawn_with(config).await;
    let mut watch = app
        .health()
        .watch(HealthCheckRequest::default())
        .await
        .expect("watch")
        .into_inner();
    assert!(watch.message().await.expect("first status").is_some());
    tokio::time::timeout(PATIENCE, app.stop())
        .await
        .expect("the server stops without waiting out the drain timeout");
    // The watcher is told why its stream ended (after the NOT_SERVING update).
    let ended = tokio::time::timeout(PATIENCE, async {
        loop {
            match watch.message().await {
                Ok(Some(_)) => continue,
                Ok(None) => return None,
                Err(status) => return Some(status.code()),
            }
        }
    })
    .await
    .expect("the stream ended");
    assert_eq!(ended, Some(tonic::Code::Unavailable));
    drop(db);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_watch_stream_keeps_its_connection_past_the_idle_timeout() {
    let mut app = spawn(Duration::from_secs(600), Duration::from_millis(300)).await;
    // A connection of its own for the watch, so that nothing else keeps it busy.
    let channel = tonic::transport::Channel::from_shared(app.channel_uri.clone())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut watch = HealthClient::new(channel)
        .watch(HealthCheckRequest::default())
        .await
        .unwrap()
        .into_inner();
    let first = watch.message().await.unwrap().expect("the current status");
    assert_eq!(first.status, 1, "SERVING");
    // A connection opened after the watch with no call: once the server has closed it for
    // idleness, the watch's connection has been quiet for longer than that.
    let mut idle = TcpStream::connect(address(&app)).await.unwrap();
    idle.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00")
        .await
        .unwrap();
    read_until_closed(&mut idle).await;
    // The watch is still open: it sees the server's own NOT_SERVING when it stops, rather
    // than a connection closed under it.
    let stopping = tokio::spawn(async move {
        app.stop().await;
    });
    let next = watch.message().await;
    assert!(
        matches!(&next, Ok(Some(update)) if update.status == 2),
        "the watch ended early: {next:?}"
    );
    stopping.await.unwrap();
}
