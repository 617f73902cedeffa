//! Accepting client connections so that no client can starve the others: at most
//! `max_connections` at once (further ones wait in the kernel's backlog), a connection that has
//! sent nothing within the handshake timeout is closed, one with no RPC in flight for the idle
//! timeout is closed, and accept errors such as running out of file descriptors back off
//! instead of spinning. HTTP/2 keepalive pings (set on the server) find peers that vanished.

use futures_util::Stream;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::{Instant, Sleep};

/// Limits on client connections.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    /// Most connections open at once.
    pub max_connections: usize,
    /// How long a new connection may stay silent before it is closed.
    pub handshake_timeout: Duration,
    /// How long a connection may have no RPC in flight before it is closed.
    pub idle_timeout: Duration,
}

/// What the RPC layer and the connection share: how many RPCs are in flight on it and when
/// the last one ended.
#[derive(Debug)]
pub struct Activity {
    in_flight: AtomicUsize,
    /// Milliseconds since `origin` when the connection last became idle.
    idle_since_ms: AtomicU64,
    origin: Instant,
}

impl Activity {
    fn new() -> Self {
        Self {
            in_flight: AtomicUsize::new(0),
            idle_since_ms: AtomicU64::new(0),
            origin: Instant::now(),
        }
    }

    /// Marks an RPC as started; the connection is busy until the guard is dropped.
    pub fn begin(self: &Arc<Self>) -> RpcGuard {
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        RpcGuard(self.clone())
    }

    fn idle_since(&self) -> Option<Instant> {
        (self.in_flight.load(Ordering::SeqCst) == 0)
            .then(|| self.origin + Duration::from_millis(self.idle_since_ms.load(Ordering::SeqCst)))
    }
}

/// An RPC in flight on a connection.
#[derive(Debug)]
pub struct RpcGuard(Arc<Activity>);

impl Drop for RpcGuard {
    fn drop(&mut self) {
        let since = self.0.origin.elapsed().as_millis() as u64;
        self.0.idle_since_ms.store(since, Ordering::SeqCst);
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Per-connection facts in every request's extensions.
#[derive(Debug, Clone)]
pub struct ConnectionInfo {
    /// The client's address.
    pub remote_addr: Option<SocketAddr>,
    /// The connection's RPC activity.
    pub activity: Arc<Activity>,
}

/// One accepted connection, holding its place under the cap until it closes.
#[derive(Debug)]
pub struct LimitedStream {
    inner: TcpStream,
    _place: OwnedSemaphorePermit,
    activity: Arc<Activity>,
    limits: ConnectionLimits,
    heard_from: bool,
    timer: Pin<Box<Sleep>>,
}

impl LimitedStream {
    /// Whether the connection has outlived its handshake or idle allowance; re-arms the
    /// timer otherwise.
    fn poll_expired(&mut self, cx: &mut Context<'_>) -> bool {
        while self.timer.as_mut().poll(cx).is_ready() {
            if !self.heard_from {
                return true;
            }
            let next = match self.activity.idle_since() {
                Some(since) if since + self.limits.idle_timeout <= Instant::now() => return true,
                Some(since) => since + self.limits.idle_timeout,
                // Busy: look again one idle period from now.
                None => Instant::now() + self.limits.idle_timeout,
            };
            self.timer.as_mut().reset(next);
        }
        false
    }
}

impl AsyncRead for LimitedStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        match Pin::new(&mut self.inner).poll_read(cx, buf) {
            Poll::Ready(result) => {
                if buf.filled().len() > before && !self.heard_from {
                    self.heard_from = true;
                    let idle = Instant::now() + self.limits.idle_timeout;
                    self.timer.as_mut().reset(idle);
                }
                Poll::Ready(result)
            }
            // The server always has a read pending, so the timers are looked at here.
            Poll::Pending if self.poll_expired(cx) => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                if self.heard_from {
                    "connection idle for too long"
                } else {
                    "client sent nothing within the handshake timeout"
                },
            ))),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl AsyncWrite for LimitedStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

impl tonic::transport::server::Connected for LimitedStream {
    type ConnectInfo = ConnectionInfo;
    fn connect_info(&self) -> ConnectionInfo {
        ConnectionInfo {
            remote_addr: self.inner.peer_addr().ok(),
            activity: self.activity.clone(),
        }
    }
}

/// Shortest and longest pause after an accept error that is not about one connection.
const ACCEPT_BACKOFF: (Duration, Duration) = (Duration::from_millis(5), Duration::from_secs(1));

/// Errors that concern only the connection being accepted: take the next one at once.
fn is_per_connection(err: &io::Error) -> bool {
    matches!(
        err.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionRefused
            | io::ErrorKind::Interrupted
    )
}

/// Connections from `listener` under `limits`. The stream never yields an error: accept
/// failures are logged and waited out here.
pub fn incoming(
    listener: TcpListener,
    limits: ConnectionLimits,
) -> impl Stream<Item = Result<LimitedStream, io::Error>> {
    let places = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    futures_util::stream::unfold(
        (listener, places, ACCEPT_BACKOFF.0),
        move |(listener, places, mut backoff)| async move {
            // Wait for a free place before accepting: past the cap, clients queue in the
            // kernel's backlog instead of holding descriptors here.
            let place = places.clone().acquire_owned().await.ok()?;
            loop {
                match listener.accept().await {
                    Ok((stream, _)) => {
                        // Small responses must not wait for delayed ACKs (~40 ms).
                        let _ = stream.set_nodelay(true);
                        let stream = LimitedStream {
                            inner: stream,
                            _place: place,
                            activity: Arc::new(Activity::new()),
                            limits,
                            heard_from: false,
                            timer: Box::pin(tokio::time::sleep(limits.handshake_timeout)),
                        };
                        return Some((Ok(stream), (listener, places, ACCEPT_BACKOFF.0)));
                    }
                    Err(err) if is_per_connection(&err) => continue,
                    Err(err) => {
                        // EMFILE, ENFILE, ENOBUFS: retrying at once would spin a core while
                        // nothing can change; closing connections (timeouts) frees descriptors.
                        tracing::warn!(error = %err, pause = ?backoff, "cannot accept connections; pausing");
                        metrics::counter!("guardians_accept_errors_total").increment(1);
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(ACCEPT_BACKOFF.1);
                    }
                }
            }
        },
    )
}
