//! The failure switches every fake receiver server shares (PagerDuty, webhook, and Slack when it
//! lands): answer an error status for the next N requests, go down and come back, or hold
//! requests unanswered until released. Waiting helpers wake on the fake's own counters (tokio
//! `watch`), so tests against a running daemon never sleep a fixed time.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tokio::sync::watch;

/// `Retry-After` (seconds) a fake sends with a 429 unless told otherwise.
pub const DEFAULT_RETRY_AFTER_SECS: u64 = 7;

/// Shared state and switches of one fake server. Fakes hand it out as `Arc<Controls>` and deref
/// to it, so `fake.fail_next(1, 429)` works on every fake.
pub struct Controls {
    fail: Mutex<VecDeque<u16>>,
    retry_after_secs: AtomicU64,
    down: AtomicBool,
    hold: watch::Sender<bool>,
    /// Every request that reached a handler (failed, refused, held or accepted).
    requests: watch::Sender<usize>,
    /// Requests waiting for `hold(false)` right now.
    held: watch::Sender<usize>,
    /// Requests the fake accepted (and recorded).
    accepted: watch::Sender<usize>,
}

impl Default for Controls {
    fn default() -> Self {
        Controls {
            fail: Mutex::new(VecDeque::new()),
            retry_after_secs: AtomicU64::new(DEFAULT_RETRY_AFTER_SECS),
            down: AtomicBool::new(false),
            hold: watch::channel(false).0,
            requests: watch::channel(0).0,
            held: watch::channel(0).0,
            accepted: watch::channel(0).0,
        }
    }
}

/// Decrements the held counter even when the client goes away and hyper drops the handler.
struct HeldGuard<'a>(&'a watch::Sender<usize>);

impl Drop for HeldGuard<'_> {
    fn drop(&mut self) {
        self.0.send_modify(|n| *n -= 1);
    }
}

impl Controls {
    /// Answer `status` to the next `n` requests instead of handling them (a 429 carries
    /// `Retry-After`). Calls queue up: `fail_next(1, 500); fail_next(1, 429)` fails twice.
    pub fn fail_next(&self, n: usize, status: u16) {
        let mut q = self.fail.lock().unwrap();
        q.extend(std::iter::repeat_n(status, n));
    }

    /// Forgets the failures `fail_next` still has queued: the next request is handled normally.
    /// Ends an open-ended failure (`fail_next(100_000, 500)`) at a moment the test picks.
    pub fn clear_failures(&self) {
        self.fail.lock().unwrap().clear();
    }

    /// The `Retry-After` seconds sent with 429 answers (default `DEFAULT_RETRY_AFTER_SECS`).
    pub fn set_retry_after(&self, secs: u64) {
        self.retry_after_secs.store(secs, Ordering::SeqCst);
    }

    pub fn retry_after(&self) -> Duration {
        Duration::from_secs(self.retry_after_secs.load(Ordering::SeqCst))
    }

    /// Down: new connections are accepted and closed at once (the client sees a connection
    /// error), and requests arriving on connections already open get `503` with
    /// `Connection: close`. `set_down(false)` brings the fake back on the same address.
    pub fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
    }

    pub fn is_down(&self) -> bool {
        self.down.load(Ordering::SeqCst)
    }

    /// Hold: requests are read and then left unanswered until `hold(false)`, after which they
    /// are handled normally. A held request whose client disconnects (killed, timed out) is
    /// dropped by the server and never recorded, as if the event was lost in flight. Used to
    /// kill a sender while a notification is in flight.
    pub fn hold(&self, hold: bool) {
        self.hold.send_replace(hold);
    }

    /// Requests that reached the fake so far, whatever it answered.
    pub fn requests(&self) -> usize {
        *self.requests.borrow()
    }

    /// Requests waiting on `hold` right now.
    pub fn held(&self) -> usize {
        *self.held.borrow()
    }

    /// Requests the fake accepted so far.
    pub fn accepted(&self) -> usize {
        *self.accepted.borrow()
    }

    /// Returns as soon as at least `n` requests arrived; panics after `timeout`.
    pub async fn wait_for_requests(&self, n: usize, timeout: Duration) {
        wait(&self.requests, n, timeout, "requests").await;
    }

    /// Returns as soon as at least `n` requests are being held; panics after `timeout`.
    pub async fn wait_for_held(&self, n: usize, timeout: Duration) {
        wait(&self.held, n, timeout, "held requests").await;
    }

    /// Returns as soon as no request is held (their clients went away, or `hold(false)`);
    /// panics after `timeout`. A held request whose client disconnects is dropped by the
    /// server, never recorded: wait for this after killing a sender, before releasing.
    pub async fn wait_for_no_held(&self, timeout: Duration) {
        let mut rx = self.held.subscribe();
        if tokio::time::timeout(timeout, rx.wait_for(|c| *c == 0))
            .await
            .is_err()
        {
            panic!(
                "waited {timeout:?} for held requests to go, {} left",
                self.held()
            );
        }
    }

    /// Returns as soon as at least `n` requests were accepted; panics after `timeout`.
    pub async fn wait_for_accepted(&self, n: usize, timeout: Duration) {
        wait(&self.accepted, n, timeout, "accepted requests").await;
    }

    /// Called by a fake's handler first. `Some(response)`: answer that and stop (down, or an
    /// injected failure). `None`: check the protocol and, if valid, record and call `accept`.
    /// Waits here while the fake is held.
    pub async fn gate(&self) -> Option<Response> {
        self.requests.send_modify(|n| *n += 1);
        if self.is_down() {
            return Some(down_response());
        }
        let mut rx = self.hold.subscribe();
        if *rx.borrow_and_update() {
            self.held.send_modify(|n| *n += 1);
            let _guard = HeldGuard(&self.held);
            let _ = rx.wait_for(|h| !*h).await;
        }
        if self.is_down() {
            return Some(down_response());
        }
        let status = self.fail.lock().unwrap().pop_front()?;
        let code = StatusCode::from_u16(status).expect("a valid status for fail_next");
        let mut resp = (
            code,
            [(header::CONTENT_TYPE, "application/json")],
            format!(r#"{{"status":"injected failure","message":"fake answered {status}"}}"#),
        )
            .into_response();
        if status == 429 {
            resp.headers_mut().insert(
                header::RETRY_AFTER,
                HeaderValue::from(self.retry_after_secs.load(Ordering::SeqCst)),
            );
        }
        Some(resp)
    }

    /// Counts one accepted request; call it after recording the request.
    pub fn accept(&self) {
        self.accepted.send_modify(|n| *n += 1);
    }
}

fn down_response() -> Response {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        [(header::CONNECTION, "close")],
        "down",
    )
        .into_response()
}

async fn wait(counter: &watch::Sender<usize>, n: usize, timeout: Duration, what: &str) {
    let mut rx = counter.subscribe();
    let res = tokio::time::timeout(timeout, rx.wait_for(|c| *c >= n)).await;
    if res.is_err() {
        panic!(
            "waited {timeout:?} for {n} {what}, saw {}",
            *counter.borrow()
        );
    }
}

/// A TCP listener that drops new connections while its fake is down, so a down fake looks like
/// a dead host (the client's request fails at the connection) rather than a 5xx.
pub struct SwitchableListener {
    inner: tokio::net::TcpListener,
    controls: std::sync::Arc<Controls>,
}

impl axum::serve::Listener for SwitchableListener {
    type Io = tokio::net::TcpStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let (io, addr) = axum::serve::Listener::accept(&mut self.inner).await;
            if self.controls.is_down() {
                drop(io);
                continue;
            }
            return (io, addr);
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.inner.local_addr()
    }
}

/// Serves `app` on 127.0.0.1:0 behind the controls' down switch; returns the bound address.
/// The server task lives as long as the test's runtime.
pub async fn serve(app: axum::Router, controls: std::sync::Arc<Controls>) -> SocketAddr {
    let inner = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind 127.0.0.1:0");
    let addr = inner.local_addr().expect("local addr");
    let listener = SwitchableListener { inner, controls };
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    addr
}
