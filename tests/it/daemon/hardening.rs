//! Hostile clients against the real binary (`synmon run`, real TCP):
//! - 200 connections that send half a request head and 50 requests whose body is shorter than
//!   their `Content-Length` are closed by the server within `server.header_read_timeout` and
//!   `server.request_body_timeout` (2 s here, so the test is quick), a kept-alive connection
//!   within `server.idle_timeout` (1 s), while `/healthz` answers each probe in < 100 ms on a
//!   fresh connection throughout;
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
/// `server.idle_timeout` of the test daemon.
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

/// Reads until the server closes the connection (EOF or reset); what it sent, and when it
/// closed. Panics if it stays open for `limit`.
async fn until_closed(mut s: TcpStream, limit: Duration) -> (String, Instant) {
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
    let (answer, _) = until_closed(s, Duration::from_secs(5)).await;
    let status = answer
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, started.elapsed())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_clients_are_closed_within_the_timeouts_while_healthz_answers() {
    synmon::tls::install();
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let cfg = config(
        dir.path(),
        port,
        "  header_read_timeout: 2s\n  request_body_timeout: 2s\n  idle_timeout: 1s\n",
    );
    let _daemon = Child::spawn(&cfg);
    wait_healthy(port).await;
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();

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
        let mut s = TcpStream::connect(addr).await.unwrap();
        let (kind, first_part): (&str, &[u8]) = if i < 200 {
            (
                "half head",
                b"GET /api/v1/checks HTTP/1.1\r\nHost: synmon\r\nX-Slow: ",
            )
        } else {
            (
                "short body",
                b"POST /api/v1/silences HTTP/1.1\r\nHost: synmon\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"matchers\": ",
            )
        };
        s.write_all(first_part).await.unwrap();
        slow.spawn(async move {
            let (answer, closed) = until_closed(s, TIMEOUT + GRACE + GRACE).await;
            (kind, answer, closed - opened)
        });
    }
    // A kept-alive connection: one answer, then closed for idleness.
    let mut kept = TcpStream::connect(addr).await.unwrap();
    kept.write_all(b"GET /healthz HTTP/1.1\r\nHost: synmon\r\n\r\n")
        .await
        .unwrap();
    let mut first = [0u8; 1024];
    let n = kept.read(&mut first).await.unwrap();
    let answered = Instant::now();
    assert!(
        String::from_utf8_lossy(&first[..n]).starts_with("HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&first[..n])
    );
    let (_, idle_closed) = until_closed(kept, IDLE + GRACE).await;
    let idle_for = idle_closed - answered;

    let mut closed = Vec::new();
    while let Some(r) = slow.join_next().await {
        closed.push(r.unwrap());
    }
    done_tx.send(true).unwrap();
    let answers = probes.await.unwrap();

    assert!(
        idle_for >= IDLE - Duration::from_millis(100) && idle_for <= IDLE + GRACE,
        "a kept-alive connection is closed after `idle_timeout` (1 s), before `header_read_timeout`; it took {idle_for:?}"
    );
    assert_eq!(closed.len(), 250);
    for (kind, answer, after) in &closed {
        assert!(
            *after >= TIMEOUT - Duration::from_millis(100) && *after <= TIMEOUT + GRACE,
            "{kind}: closed after {after:?}, the timeout is {TIMEOUT:?}"
        );
        match *kind {
            // Nothing to answer: the head never ended.
            "half head" => assert_eq!(answer, "", "{kind}"),
            // The handler gets a body that failed to arrive: refused, then the connection is
            // closed (the rest of the body cannot be skipped).
            _ => assert!(answer.starts_with("HTTP/1.1 4"), "{kind}: {answer}"),
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_anonymous_flood_never_limits_authenticated_clients_behind_the_same_address() {
    synmon::tls::install();
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let cfg = config(
        dir.path(),
        port,
        &format!(
            "  api_rate_limit: 20\n  auth_token: \"{AUTH_TOKEN}\"\n  auth:\n    hs256_secret: \"{JWT_SECRET}\"\n"
        ),
    );
    let _daemon = Child::spawn(&cfg);
    wait_healthy(port).await;
    let base = format!("http://127.0.0.1:{port}");
    let now = chrono::Utc::now().timestamp();
    let jwt = jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        &json!({"sub": "alice", "aud": "admin", "exp": now + 600}),
        &jsonwebtoken::EncodingKey::from_secret(JWT_SECRET.as_bytes()),
    )
    .unwrap();
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
