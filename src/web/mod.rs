//! The service's public web side, on its own port (`GUARDIANS_HTTP_LISTEN`): the page behind a
//! summary email's unsubscribe link. gRPC stays on its own listener; this is plain HTTP/1.1
//! for mail clients and browsers.

mod unsubscribe;

use crate::app::App;
use axum::Router;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Every route of the web side.
pub fn router(app: App) -> Router {
    Router::new()
        .route(
            "/summaries/unsubscribe",
            axum::routing::get(unsubscribe::show).post(unsubscribe::apply),
        )
        .with_state(app)
}

/// Serves the web side on `listener` until `stop` turns true.
pub fn start(listener: TcpListener, app: App, mut stop: watch::Receiver<bool>) -> JoinHandle<()> {
    if let Ok(bound) = listener.local_addr() {
        tracing::info!(address = %bound, "serving the unsubscribe page over HTTP");
    }
    tokio::spawn(async move {
        let stopped = async move {
            // A closed channel means the server is gone: stop as well.
            while !*stop.borrow_and_update() {
                if stop.changed().await.is_err() {
                    break;
                }
            }
        };
        if let Err(err) = axum::serve(listener, router(app))
            .with_graceful_shutdown(stopped)
            .await
        {
            tracing::error!(error = %err, "the web listener failed");
        }
    })
}
