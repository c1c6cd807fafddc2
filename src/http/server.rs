//! The accept loop: how long a client may take and how many may be served at once. Slow or
//! silent clients must not hold connections forever, and a crowd of them must not keep the
//! orchestrator's probes from an answer.
//!
//! Every limit is a library setting, applied per connection:
//! - the request head: hyper's `header_read_timeout` (its timer starts when the connection is
//!   ready for a head: accepted, or the previous response sent);
//! - the request body: tower-http's `RequestBodyTimeout` (a body still incomplete after
//!   `request_body_timeout` fails to read; the handler answers and hyper closes the connection,
//!   since the unread rest cannot be skipped);
//! - the wait for the next request on a kept-alive connection: `idle_timeout`, enforced by
//!   hyper's graceful shutdown of the connection once no request has been in flight for that
//!   long (at most `header_read_timeout`, whose timer also runs during that wait);
//! - the number of connections: a semaphore of `max_connections` permits taken in the accept
//!   loop (the documented pattern for a connection cap with hyper).
//!
//! Probes at the cap: beyond `max_connections`, [`PROBE_RESERVE`] more connections are
//! accepted, and those are served by a router that answers only `/healthz` and `/readyz`
//! (anything else: 503), without keep-alive so each frees its slot after one answer. A
//! connection beyond both is closed at once rather than left waiting in the kernel's backlog.
//!
//! HTTP/1.1 only: the limits above are HTTP/1 settings, and nothing speaks HTTP/2 without TLS to
//! a monitoring daemon.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use axum::http::Request;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tower::ServiceExt;
use tower_http::timeout::RequestBodyTimeout;

use crate::settings::ServerLimits;

/// Connections accepted beyond `server.max_connections` that answer only the probes.
pub const PROBE_RESERVE: usize = 16;

/// Serves `app` (and `probes` on reserve connections) on `listener` within `limits` until `stop`
/// turns true; then stops accepting, lets each connection finish its request in flight, and
/// returns when all are closed.
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
    while conns.join_next().await.is_some() {}
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
    let service = RequestBodyTimeout::new(router, limits.request_body_timeout)
        .map_request(on_request(peer, activity.clone()))
        .map_response(on_response(started, activity.clone()));
    let mut builder = auto::Builder::new(TokioExecutor::new()).http1_only();
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .keep_alive(!probe_only);
    let conn = builder.serve_connection(TokioIo::new(stream), TowerToHyperService::new(service));
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

/// Marks a request in flight and tells the handlers who is asking (`ConnectInfo`, as axum's own
/// server does).
fn on_request<B>(
    peer: SocketAddr,
    activity: Arc<Activity>,
) -> impl Fn(Request<B>) -> Request<B> + Clone {
    move |mut req| {
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
