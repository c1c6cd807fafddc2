//! The accept loop: how long a client may take and how many may be served at once. Slow or
//! silent clients must not hold connections forever, and a crowd of them must not keep the
//! orchestrator's probes from an answer.
//!
//! Every limit is applied per connection:
//! - the request head: hyper's `header_read_timeout` (its timer starts when the connection is
//!   ready for a head: accepted, or the previous response sent);
//! - the request body: one deadline, `request_body_timeout` after the head arrived, for the
//!   whole body ([`DeadlineBody`]). A body still incomplete then fails to read; the handler
//!   answers (408 where it reads the body itself) and hyper closes the connection, since the
//!   unread rest cannot be skipped. tower-http's `RequestBodyTimeout` is not enough: its timer
//!   restarts at every frame, so a byte every few seconds would hold the connection for as
//!   long as the body size limit allows;
//! - the answer: a write to the socket that makes no progress for `request_body_timeout` (the
//!   client stopped reading, its receive window full) fails and closes the connection
//!   (`tokio-io-timeout`'s write timeout, under hyper). Without it a client that pipelines
//!   requests and never reads the answers holds its connection for ever, hyper waiting to write.
//!   The same value as the body's: both bound how long a client may stall a transfer, and a
//!   second key would be one more to get wrong. It bounds a stall, not a download: every write
//!   that progresses restarts it;
//! - the wait for the next request on a kept-alive connection: `idle_timeout`, enforced by
//!   hyper's graceful shutdown of the connection once no request has been in flight for that
//!   long (at most `header_read_timeout`, whose timer also runs during that wait);
//! - the number of connections: a semaphore of `max_connections` permits taken in the accept
//!   loop (the documented pattern for a connection cap with hyper).
//!
//! No read timeout on the socket: every wait for the client's bytes is already bounded (the
//! head by `header_read_timeout`, the body by its deadline, the wait between requests by
//! `idle_timeout`), and hyper also reads while a handler works (to notice a closed connection),
//! so a read timeout would cut a slow answer that the client is patiently waiting for.
//!
//! Probes at the cap: beyond `max_connections`, [`PROBE_RESERVE`] more connections are
//! accepted, and those are served by a router that answers only `/healthz` and `/readyz`
//! (anything else: 503), without keep-alive so each frees its slot after one answer, and with
//! [`PROBE_HEAD_TIMEOUT`] for the head, so silent clients cannot hold the reserve. A connection
//! beyond both is closed at once rather than left waiting in the kernel's backlog.
//!
//! On stop, connections get [`SHUTDOWN_GRACE`] to finish the request in flight; any still open
//! then (a client that does not read its answer) is dropped, so the daemon's own shutdown steps
//! that follow the server's (the lease hand-over, the store's close) are not starved.
//!
//! HTTP/1.1 only: the limits above are HTTP/1 settings, and nothing speaks HTTP/2 without TLS to
//! a monitoring daemon.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::ConnectInfo;
use axum::http::Request;
use http_body::{Body, Frame, SizeHint};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio::task::JoinSet;
use tokio::time::{Instant, Sleep};
use tokio_io_timeout::TimeoutStream;
use tower::ServiceExt;

use crate::settings::ServerLimits;

/// Connections accepted beyond `server.max_connections` that answer only the probes.
pub const PROBE_RESERVE: usize = 16;

/// How long a reserve connection may take to send its request head. A probe sends its head at
/// once; a client that holds a reserve slot silently would otherwise keep it for the whole
/// `header_read_timeout`, and sixteen such clients, reconnecting, would lock the probes out.
pub const PROBE_HEAD_TIMEOUT: Duration = Duration::from_secs(1);

/// How long connections still open at stop may take to finish before they are dropped.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

/// Serves `app` (and `probes` on reserve connections) on `listener` within `limits` until `stop`
/// turns true; then stops accepting, lets each connection finish its request in flight within
/// [`SHUTDOWN_GRACE`], drops those still open, and returns.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    probes: Router,
    limits: ServerLimits,
    mut stop: watch::Receiver<bool>,
) {
    let regular = Arc::new(Semaphore::new(limits.max_connections));
    let reserve = Arc::new(Semaphore::new(PROBE_RESERVE));
    let mut conns = JoinSet::new();
    loop {
        let accepted = tokio::select! {
            _ = stop.wait_for(|s| *s) => break,
            Some(_) = conns.join_next(), if !conns.is_empty() => continue,
            a = listener.accept() => a,
        };
        let (stream, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                // Out of file descriptors, most likely: wait for connections to close rather
                // than spin on the error.
                tracing::warn!(error = %e, "cannot accept a connection");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let (router, probe_only, permit) = if let Ok(p) = regular.clone().try_acquire_owned() {
            (app.clone(), false, p)
        } else if let Ok(p) = reserve.clone().try_acquire_owned() {
            tracing::debug!(%peer, "at the connection cap: serving the probes only");
            (probes.clone(), true, p)
        } else {
            tracing::debug!(%peer, "at the connection cap and its probe reserve: closed");
            continue;
        };
        conns.spawn(connection(
            stream,
            peer,
            router,
            probe_only,
            limits,
            stop.clone(),
            permit,
        ));
    }
    drop(listener);
    let finished = async { while conns.join_next().await.is_some() {} };
    if tokio::time::timeout(SHUTDOWN_GRACE, finished)
        .await
        .is_err()
    {
        tracing::info!(
            open = conns.len(),
            "connections still open after the shutdown grace period: dropped"
        );
        conns.abort_all();
        while conns.join_next().await.is_some() {}
    }
}

/// One connection, from its first byte to its close; `_permit` frees its slot when it ends.
async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    router: Router,
    probe_only: bool,
    limits: ServerLimits,
    mut stop: watch::Receiver<bool>,
    _permit: OwnedSemaphorePermit,
) {
    let started = Instant::now();
    let activity = Arc::new(Activity::default());
    let service = router
        .map_request(on_request(
            peer,
            limits.request_body_timeout,
            activity.clone(),
        ))
        .map_response(on_response(started, activity.clone()));
    let mut builder = auto::Builder::new(TokioExecutor::new()).http1_only();
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(if probe_only {
            limits.header_read_timeout.min(PROBE_HEAD_TIMEOUT)
        } else {
            limits.header_read_timeout
        })
        .keep_alive(!probe_only);
    let mut io = TimeoutStream::new(stream);
    io.set_write_timeout(Some(limits.request_body_timeout));
    let conn = builder.serve_connection(
        TokioIo::new(Box::pin(io)),
        TowerToHyperService::new(service),
    );
    tokio::pin!(conn);
    let mut closing = false;
    let mut check_idle = Instant::now() + limits.idle_timeout;
    loop {
        tokio::select! {
            res = conn.as_mut() => {
                if let Err(e) = res {
                    tracing::debug!(%peer, error = %e, "connection ended with an error");
                }
                return;
            }
            _ = stop.wait_for(|s| *s), if !closing => {
                conn.as_mut().graceful_shutdown();
                closing = true;
            }
            _ = tokio::time::sleep_until(check_idle), if !closing => {
                match activity.idle_since(started) {
                    Some(since) if since.elapsed() >= limits.idle_timeout => {
                        tracing::debug!(%peer, "idle keep-alive connection closed");
                        conn.as_mut().graceful_shutdown();
                        closing = true;
                    }
                    Some(since) => check_idle = since + limits.idle_timeout,
                    None => check_idle = Instant::now() + limits.idle_timeout,
                }
            }
        }
    }
}

/// Marks a request in flight, tells the handlers who is asking (`ConnectInfo`, as axum's own
/// server does) and sets its body's deadline: the head has just arrived.
fn on_request<B>(
    peer: SocketAddr,
    body_timeout: Duration,
    activity: Arc<Activity>,
) -> impl Fn(Request<B>) -> Request<DeadlineBody<B>> + Clone {
    move |req| {
        let mut req = req.map(|b| DeadlineBody::new(b, body_timeout));
        req.extensions_mut().insert(ConnectInfo(peer));
        activity.in_flight.fetch_add(1, Ordering::SeqCst);
        req
    }
}

/// Marks the answer out: from now on the connection waits for its next request.
fn on_response<B>(started: Instant, activity: Arc<Activity>) -> impl Fn(B) -> B + Clone {
    move |res| {
        activity.in_flight.fetch_sub(1, Ordering::SeqCst);
        activity.served.fetch_add(1, Ordering::SeqCst);
        let ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        activity.last_ms.store(ms, Ordering::SeqCst);
        res
    }
}

/// A request body that must arrive whole within one deadline, set when the head arrived and
/// never moved: a client trickling its body cannot stretch it (unlike a timer per frame).
/// What has arrived before the deadline is still delivered; only a wait beyond it fails, with
/// [`BodyDeadline`].
pub struct DeadlineBody<B> {
    inner: B,
    timeout: Duration,
    deadline: Pin<Box<Sleep>>,
}

impl<B> DeadlineBody<B> {
    pub fn new(inner: B, timeout: Duration) -> DeadlineBody<B> {
        DeadlineBody {
            inner,
            timeout,
            deadline: Box::pin(tokio::time::sleep(timeout)),
        }
    }
}

impl<B> Body for DeadlineBody<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<axum::BoxError>,
{
    type Data = Bytes;
    type Error = axum::BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        if let Poll::Ready(frame) = Pin::new(&mut self.inner).poll_frame(cx) {
            return Poll::Ready(frame.map(|f| f.map_err(Into::into)));
        }
        match self.deadline.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Some(Err(Box::new(BodyDeadline(self.timeout))))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// A request body did not arrive whole within `server.request_body_timeout` of its head.
#[derive(Debug, thiserror::Error)]
#[error(
    "the request body did not arrive within {} ms (`server.request_body_timeout`)",
    .0.as_millis()
)]
pub struct BodyDeadline(pub Duration);

impl BodyDeadline {
    /// The deadline error behind `err` (a body read that failed, through any wrapping), if that
    /// is why it failed.
    pub fn behind<'a>(err: &'a (dyn std::error::Error + 'static)) -> Option<&'a BodyDeadline> {
        let mut cur = Some(err);
        while let Some(e) = cur {
            if let Some(d) = e.downcast_ref::<BodyDeadline>() {
                return Some(d);
            }
            cur = e.source();
        }
        None
    }
}

/// What the idle check needs to know about a connection's requests.
#[derive(Debug, Default)]
struct Activity {
    in_flight: AtomicUsize,
    served: AtomicU64,
    /// When the last answer left the handler, in ms since the connection was accepted.
    last_ms: AtomicU64,
}

impl Activity {
    /// Since when the connection waits for its next request; `None` while a request is in
    /// flight or before the first one (the first head has `header_read_timeout`).
    fn idle_since(&self, started: Instant) -> Option<Instant> {
        if self.in_flight.load(Ordering::SeqCst) > 0 || self.served.load(Ordering::SeqCst) == 0 {
            return None;
        }
        Some(started + Duration::from_millis(self.last_ms.load(Ordering::SeqCst)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::routing::get;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A request on a fresh connection; the answer's status line, or "" when the server closed
    /// the connection without one.
    async fn ask(addr: SocketAddr, path: &str) -> String {
        let mut s = TcpStream::connect(addr).await.unwrap();
        let req = format!("GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
        // The server may have closed already: a refused write is an answer too.
        let _ = s.write_all(req.as_bytes()).await;
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out).await;
        String::from_utf8_lossy(&out)
            .lines()
            .next()
            .unwrap_or("")
            .to_string()
    }

    /// At the cap, new connections go to the probe router (the probes answered, the rest 503);
    /// beyond the reserve they are closed at once; a freed slot serves the whole app again; and
    /// `stop` ends the server with its connections.
    #[tokio::test]
    async fn at_the_cap_the_reserve_answers_only_the_probes() {
        let app = Router::new().route("/api", get(|| async { "app" }));
        let probes = Router::new()
            .route("/healthz", get(|| async { "ok" }))
            .fallback(|| async { (axum::http::StatusCode::SERVICE_UNAVAILABLE, "at the cap") });
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let limits = ServerLimits {
            max_connections: 2,
            ..ServerLimits::default()
        };
        let (stop_tx, stop) = watch::channel(false);
        let server = tokio::spawn(serve(listener, app, probes, limits, stop));

        assert_eq!(ask(addr, "/api").await, "HTTP/1.1 200 OK");
        // Two silent connections take the regular slots.
        let mut held = Vec::new();
        for _ in 0..2 {
            held.push(TcpStream::connect(addr).await.unwrap());
        }
        // Accepted in order: once a later connection is answered, the held ones are counted.
        assert_eq!(ask(addr, "/healthz").await, "HTTP/1.1 200 OK");
        assert_eq!(ask(addr, "/api").await, "HTTP/1.1 503 Service Unavailable");
        // The reserve full too: closed without an answer.
        for _ in 0..PROBE_RESERVE {
            held.push(TcpStream::connect(addr).await.unwrap());
        }
        assert_eq!(ask(addr, "/healthz").await, "");
        // Silent reserve connections lose their slot after the probes' short head timeout,
        // while the regular ones (10 s) still hold theirs: the probes are answered again.
        let cut = Instant::now();
        let deadline = cut + PROBE_HEAD_TIMEOUT + Duration::from_secs(2);
        while ask(addr, "/healthz").await != "HTTP/1.1 200 OK" {
            assert!(
                Instant::now() < deadline,
                "the reserve frees its silent slots"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(
            cut.elapsed() >= PROBE_HEAD_TIMEOUT / 2,
            "the reserve was full until then"
        );
        assert_eq!(ask(addr, "/api").await, "HTTP/1.1 503 Service Unavailable");
        // Freeing the regular slots serves the app again.
        drop(held);
        eventually_app(addr).await;

        stop_tx.send(true).unwrap();
        tokio::time::timeout(Duration::from_secs(5), server)
            .await
            .expect("serve returns after stop")
            .unwrap();
    }

    /// Asks for the app until it answers (the server notices closed connections as it reads
    /// them, not at once).
    async fn eventually_app(addr: SocketAddr) {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            if ask(addr, "/api").await == "HTTP/1.1 200 OK" {
                return;
            }
            assert!(Instant::now() < deadline, "the app is served again");
            tokio::task::yield_now().await;
        }
    }
}
