//! Hostile clients against the real binary (`synmon run`, real TCP):
//! - 200 connections that send half a request head and 50 authenticated requests that trickle
//!   their body (a byte every 300 ms, which a timer restarted per frame would never catch) are
//!   closed by the server within `server.header_read_timeout` and `server.request_body_timeout`
//!   (2 s here, so the test is quick), while `/healthz` answers each probe in < 100 ms on a
//!   fresh connection throughout;
//! - a kept-alive connection is closed after `server.idle_timeout` (1 s), well before
//!   `header_read_timeout` (5 s) could; an anonymous `POST` is refused (401) without the server
//!   waiting for its body; a client that pipelines requests and never reads the answers is
//!   dropped once a write has stalled for `request_body_timeout`;
//! - SIGTERM with such a client connected stops the daemon cleanly within a few seconds;
//! - an anonymous flood from one address gets 429s, while clients behind the same address with
//!   the `server.auth_token` or an admin JWT never get one.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

use crate::support::*;

const AUTH_TOKEN: &str = "hardening-token-0123456789";
const JWT_SECRET: &str = "hardening-jwt-secret-0123456789ab";
/// `server.header_read_timeout` and `server.request_body_timeout` of the test daemon.
const TIMEOUT: Duration = Duration::from_secs(2);
/// `server.idle_timeout` of the test daemons.
const IDLE: Duration = Duration::from_secs(1);
/// How late after its timeout the server may close a connection on a loaded machine.
const GRACE: Duration = Duration::from_millis(1500);

/// A daemon without checks (no browser, no target) on `port`.
fn config(dir: &Path, port: u16, server: &str) -> std::path::PathBuf {
    write_config(
        dir,
        "http://127.0.0.1:9",
        "unused-password",
        &format!(
            "server:\n  listen: 127.0.0.1:{port}\n{server}store:\n  url: sqlite://synmon.db\nchecks:\n  journeys: []\n"
        ),
    )
}

/// Starts the real binary with `server` (indented `server:` keys) on a free port, and waits
/// until it answers.
async fn start(dir: &Path, server: &str) -> (Child, u16) {
    synmon::tls::install();
    let port = free_port();
    let daemon = Child::spawn(&config(dir, port, server));
    wait_healthy(port).await;
    (daemon, port)
}

/// Reads until the server closes the connection (EOF or reset); what it sent, and when it
/// closed. Panics if it stays open for `limit`.
async fn until_closed(
    s: &mut (impl tokio::io::AsyncRead + Unpin),
    limit: Duration,
) -> (String, Instant) {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let read_all = async {
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
    };
    tokio::time::timeout(limit, read_all)
        .await
        .expect("the server closes the connection");
    (String::from_utf8_lossy(&got).into_owned(), Instant::now())
}

/// One `/healthz` on a fresh connection: its status and how long it took.
async fn probe(addr: SocketAddr) -> (u16, Duration) {
    let started = Instant::now();
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: synmon\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let (answer, _) = until_closed(&mut s, Duration::from_secs(5)).await;
    (status_of(&answer), started.elapsed())
}

/// Size of [`big_artifact`]: far more than the socket buffers on both sides can hold (a few
/// MiB at most), so a client that does not read stalls the server in the middle of it.
const BIG: usize = 32 << 20;

/// Writes a [`BIG`] run artifact into the daemon's `artifacts` folder; its request.
fn big_artifact(dir: &Path) -> &'static [u8] {
    let run = dir.join("artifacts").join("run-1");
    std::fs::create_dir_all(&run).unwrap();
    std::fs::write(run.join("page.html"), vec![b'x'; BIG]).unwrap();
    b"GET /artifacts/run-1/page.html HTTP/1.1\r\nHost: synmon\r\n\r\n"
}

/// A connection whose receive buffer is as small as the kernel allows, so the server's writes
/// stall soon once the client stops reading.
async fn small_window(addr: SocketAddr) -> TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    socket.connect(addr).await.unwrap()
}

/// An admin JWT for the daemon's `server.auth` (`hs256_secret` [`JWT_SECRET`]).
fn admin_jwt() -> String {
    let now = chrono::Utc::now().timestamp();
    jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        &json!({"sub": "alice", "aud": "admin", "exp": now + 600}),
        &jsonwebtoken::EncodingKey::from_secret(JWT_SECRET.as_bytes()),
    )
    .unwrap()
}

/// `server.auth` with [`JWT_SECRET`], for the silence API.
fn jwt_auth() -> String {
    format!("  auth:\n    hs256_secret: \"{JWT_SECRET}\"\n")
}

/// The status code of an HTTP/1.1 answer, 0 for none.
fn status_of(answer: &str) -> u16 {
    answer
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_clients_are_closed_within_the_timeouts_while_healthz_answers() {
    let dir = tempfile::tempdir().unwrap();
    let (_daemon, port) = start(
        dir.path(),
        &format!(
            "  header_read_timeout: 2s\n  request_body_timeout: 2s\n  idle_timeout: 1s\n{}",
            jwt_auth()
        ),
    )
    .await;
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let jwt = admin_jwt();

    // Probes on fresh connections, every 100 ms, until the slow clients are all closed.
    let (done_tx, mut done_rx) = tokio::sync::watch::channel(false);
    let probes = tokio::spawn(async move {
        let mut answers = Vec::new();
        let mut every = tokio::time::interval(Duration::from_millis(100));
        while !*done_rx.borrow_and_update() {
            tokio::select! {
                _ = every.tick() => answers.push(probe(addr).await),
                _ = done_rx.changed() => {}
            }
        }
        answers
    });

    let mut slow = tokio::task::JoinSet::new();
    for i in 0..250 {
        let opened = Instant::now();
        let s = TcpStream::connect(addr).await.unwrap();
        let (mut rd, mut wr) = s.into_split();
        if i < 200 {
            wr.write_all(b"GET /api/v1/checks HTTP/1.1\r\nHost: synmon\r\nX-Slow: ")
                .await
                .unwrap();
            slow.spawn(async move {
                let (answer, closed) = until_closed(&mut rd, TIMEOUT + GRACE + GRACE).await;
                drop(wr);
                ("half head", answer, closed - opened)
            });
        } else {
            let head = format!(
                "POST /api/v1/silences HTTP/1.1\r\nHost: synmon\r\nAuthorization: Bearer {jwt}\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{{\"matchers\": "
            );
            wr.write_all(head.as_bytes()).await.unwrap();
            // One more byte every 300 ms while the connection lasts: each is a frame, so only
            // a deadline for the whole body ends this.
            let trickle = tokio::spawn(async move {
                let mut every = tokio::time::interval(Duration::from_millis(300));
                every.tick().await;
                loop {
                    every.tick().await;
                    if wr.write_all(b" ").await.is_err() {
                        return;
                    }
                }
            });
            slow.spawn(async move {
                let (answer, closed) = until_closed(&mut rd, TIMEOUT + GRACE + GRACE).await;
                trickle.abort();
                ("trickled body", answer, closed - opened)
            });
        }
    }

    let mut closed = Vec::new();
    while let Some(r) = slow.join_next().await {
        closed.push(r.unwrap());
    }
    done_tx.send(true).unwrap();
    let answers = probes.await.unwrap();

    assert_eq!(closed.len(), 250);
    for (kind, answer, after) in &closed {
        assert!(
            *after >= TIMEOUT - Duration::from_millis(100) && *after <= TIMEOUT + GRACE,
            "{kind}: closed after {after:?}, the timeout is {TIMEOUT:?}"
        );
        match *kind {
            // Nothing to answer: the head never ended.
            "half head" => assert_eq!(answer, "", "{kind}"),
            // The handler gets a body that failed to arrive in time: 408, then the connection
            // is closed (the rest of the body cannot be skipped).
            _ => {
                assert_eq!(status_of(answer), 408, "{kind}: {answer}");
                assert!(
                    answer.contains(
                        "the request body did not arrive within 2000 ms (`server.request_body_timeout`)"
                    ),
                    "{kind}: {answer}"
                );
            }
        }
    }
    assert!(
        answers.len() >= 15,
        "probed throughout: {} probes",
        answers.len()
    );
    for (i, (status, took)) in answers.iter().enumerate() {
        assert_eq!(*status, 200, "probe {i}");
        assert!(
            *took < Duration::from_millis(100),
            "probe {i} took {took:?}: {answers:?}"
        );
    }
}

/// `header_read_timeout` well above `idle_timeout`, so only the idle limit can close a
/// kept-alive connection in time; `request_body_timeout` (also the write stall limit) short.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_anonymous_writes_and_clients_that_never_read_are_cut_short() {
    const HEADER: Duration = Duration::from_secs(5);
    const BODY: Duration = Duration::from_secs(1);
    let dir = tempfile::tempdir().unwrap();
    let (_daemon, port) = start(
        dir.path(),
        &format!(
            "  header_read_timeout: 5s\n  request_body_timeout: 1s\n  idle_timeout: 1s\n{}",
            jwt_auth()
        ),
    )
    .await;
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();

    // A client that pipelines two requests for a large answer and never reads: the server's
    // write stalls in the middle of the first.
    let ask_big = big_artifact(dir.path());
    let mut never_reads = small_window(addr).await;
    never_reads.write_all(&ask_big.repeat(2)).await.unwrap();
    let mut peek = [0u8; 1];
    never_reads.peek(&mut peek).await.unwrap();
    let stalled_from = Instant::now();

    // A kept-alive connection: one answer, then closed for idleness.
    let mut kept = TcpStream::connect(addr).await.unwrap();
    kept.write_all(b"GET /healthz HTTP/1.1\r\nHost: synmon\r\n\r\n")
        .await
        .unwrap();
    let mut first = [0u8; 1024];
    let n = kept.read(&mut first).await.unwrap();
    let answered = Instant::now();
    assert_eq!(
        status_of(&String::from_utf8_lossy(&first[..n])),
        200,
        "{}",
        String::from_utf8_lossy(&first[..n])
    );
    let (_, idle_closed) = until_closed(&mut kept, IDLE + GRACE).await;
    let idle_for = idle_closed - answered;
    assert!(
        idle_for >= IDLE - Duration::from_millis(100) && idle_for <= IDLE + GRACE,
        "a kept-alive connection is closed after `idle_timeout` ({IDLE:?}); it took {idle_for:?}"
    );
    assert!(
        idle_for < HEADER,
        "closed before `header_read_timeout` could"
    );

    // An anonymous write announcing a large body and sending one byte of it: refused from its
    // head alone, long before the body deadline would have ended the wait.
    let asked = Instant::now();
    let mut anon = TcpStream::connect(addr).await.unwrap();
    anon.write_all(
        b"POST /api/v1/silences HTTP/1.1\r\nHost: synmon\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{",
    )
    .await
    .unwrap();
    let mut head = [0u8; 1024];
    let n = tokio::time::timeout(BODY, anon.read(&mut head))
        .await
        .expect("answered before the body deadline")
        .unwrap();
    let refused = String::from_utf8_lossy(&head[..n]).into_owned();
    assert_eq!(status_of(&refused), 401, "{refused}");
    assert!(refused.contains("missing bearer token"), "{refused}");
    assert!(
        asked.elapsed() < BODY,
        "refused at once: {:?}",
        asked.elapsed()
    );

    // The stalled client: past the write stall limit, read what reached it. A server that
    // still held the connection would now, its writes flowing again, send the whole answer;
    // one that dropped it sent only what the socket buffers took, then the end.
    tokio::time::sleep_until(stalled_from + BODY + GRACE).await;
    let mut received = 0usize;
    let mut buf = vec![0u8; 64 << 10];
    let drained = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match never_reads.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => received += n,
            }
        }
    })
    .await;
    assert!(drained.is_ok(), "the connection ends");
    assert!(received > 0, "the answer had begun");
    assert!(
        received < BIG,
        "dropped once its write stalled for `request_body_timeout`: {received} of {BIG} bytes sent"
    );
}

/// SIGTERM while a client that never reads holds a connection (with the default 30 s write
/// stall limit): the daemon drops it after its shutdown grace and stops cleanly, its own
/// shutdown steps done, instead of waiting on the client.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_with_a_client_that_never_reads_stops_promptly_and_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    // Once its answer has begun, the connection is busy writing it until the client reads.
    let ask_big = big_artifact(dir.path());
    let (mut daemon, port) = start(dir.path(), "").await;
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();

    let mut stream = small_window(addr).await;
    stream.write_all(ask_big).await.unwrap();
    // The answer has begun: the stop finds the connection in the middle of it.
    let mut peek = [0u8; 1];
    stream.peek(&mut peek).await.unwrap();

    let stopping = Instant::now();
    daemon.signal(nix::sys::signal::Signal::SIGTERM);
    let status = tokio::time::timeout(Duration::from_secs(8), daemon.0.wait())
        .await
        .expect("the daemon exits")
        .unwrap();
    let took = stopping.elapsed();
    let log = std::fs::read_to_string(dir.path().join("synmon.log")).unwrap();
    assert!(status.success(), "{status:?}\n{log}");
    assert!(took < Duration::from_secs(5), "stopped in {took:?}\n{log}");
    assert!(
        log.contains("connections still open after the shutdown grace period: dropped open=1"),
        "{log}"
    );
    assert!(log.contains("leader lease released"), "{log}");
    assert!(log.contains("synmon stopped"), "{log}");
    assert!(!log.contains("exiting anyway"), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_anonymous_flood_never_limits_authenticated_clients_behind_the_same_address() {
    let dir = tempfile::tempdir().unwrap();
    let (_daemon, port) = start(
        dir.path(),
        &format!(
            "  api_rate_limit: 20\n  auth_token: \"{AUTH_TOKEN}\"\n{}",
            jwt_auth()
        ),
    )
    .await;
    let base = format!("http://127.0.0.1:{port}");
    let jwt = admin_jwt();
    let client = reqwest::Client::new();

    let checks = format!("{base}/api/v1/checks");
    let flood = statuses(100, {
        let (client, url) = (client.clone(), checks.clone());
        move |_| client.get(&url)
    });
    let token_client = statuses(15, {
        let client = client.clone();
        move |_| client.get(&checks).bearer_auth(AUTH_TOKEN)
    });
    let jwt_client = statuses(15, {
        let url = format!("{base}/api/v1/silences");
        move |i| {
            client.post(&url).bearer_auth(&jwt).json(&json!({
                "matchers": {"check": format!("c{i}")},
                "ends_at": (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339(),
                "comment": "flood test",
            }))
        }
    });
    let flood = flood.await.unwrap();
    let token = token_client.await.unwrap();
    let jwt = jwt_client.await.unwrap();

    // The anonymous budget (20 a minute) is spent: the rest of the flood is refused.
    assert_eq!(flood.iter().filter(|s| **s == 429).count(), 80, "{flood:?}");
    assert!(flood.iter().all(|s| *s == 401 || *s == 429), "{flood:?}");
    assert_eq!(token, vec![200; 15], "the auth_token holder");
    assert_eq!(jwt, vec![201; 15], "the JWT subject");
}

/// Sends `n` requests one after the other in a task of their own, each built by `request(i)`,
/// and collects their status codes.
fn statuses(
    n: usize,
    request: impl Fn(usize) -> reqwest::RequestBuilder + Send + 'static,
) -> tokio::task::JoinHandle<Vec<u16>> {
    tokio::spawn(async move {
        let mut out = Vec::with_capacity(n);
        for i in 0..n {
            out.push(request(i).send().await.unwrap().status().as_u16());
        }
        out
    })
}
