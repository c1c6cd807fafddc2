//! Every check kind is scheduled by the real binary: a config with only a `tls:` check, and
//! one with only `tcp:` and `dns:` checks, list each check with an outcome in `/api/v1/checks`
//! within two intervals of the daemon answering.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tokio::time::Instant;

use crate::support::write_config;
use crate::support::{Child, free_port, get_json};

/// Short, so two intervals bound the wait; the probes answer locally in milliseconds.
const INTERVAL: Duration = Duration::from_secs(2);

/// A config with no journey on the schedule and only `checks` (a list of kinds).
fn config(dir: &Path, port: u16, checks: &str) -> std::path::PathBuf {
    write_config(
        dir,
        "http://127.0.0.1:9",
        "synthetic-demo",
        &format!(
            "server:\n  listen: 127.0.0.1:{port}\nstore:\n  url: sqlite://synmon.db\n\
             checks:\n  interval: {}s\n  journeys: []\n{checks}",
            INTERVAL.as_secs()
        ),
    )
}

/// A TLS listener on port 0 with an rcgen self-signed certificate for `localhost` (89 to 90
/// days left); returns its port and the certificate as the CA file to trust.
async fn tls_listener(dir: &Path) -> (u16, std::path::PathBuf) {
    use chrono::Datelike;
    use synmon::clock::{Clock, SystemClock};
    let mut params = rcgen::CertificateParams::new(vec!["localhost".to_string()]).unwrap();
    params.not_before = rcgen::date_time_ymd(2020, 1, 1);
    // Midnight UTC of that day: between 89 and 90 days from now.
    let end = (SystemClock.now() + chrono::Duration::days(90)).date_naive();
    params.not_after = rcgen::date_time_ymd(end.year(), end.month() as u8, end.day() as u8);
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    let ca = dir.join("ca.pem");
    std::fs::write(&ca, cert.pem()).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(
        vec![cert.der().clone()],
        rustls::pki_types::PrivateKeyDer::try_from(key.serialize_der()).unwrap(),
    )
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((s, _)) = l.accept().await {
            let a = acceptor.clone();
            tokio::spawn(async move {
                let _ = a.accept(s).await;
            });
        }
    });
    (port, ca)
}

/// Polls `url` every 50 ms until `pred` holds, or panics at `deadline` with the last answer.
async fn poll_until(url: &str, deadline: Instant, what: &str, pred: impl Fn(&Value) -> bool) {
    let mut last = Value::Null;
    loop {
        if let Some(v) = get_json(url).await {
            if pred(&v) {
                return;
            }
            last = v;
        }
        assert!(
            Instant::now() < deadline,
            "{what} not met in time; last answer: {last:#}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Each named check listed with the kind and outcome wanted.
fn listed(v: &Value, want: &[(&str, &str, &str)]) -> bool {
    let Some(checks) = v["checks"].as_array() else {
        return false;
    };
    want.iter().all(|(name, kind, outcome)| {
        checks
            .iter()
            .any(|c| c["name"] == *name && c["kind"] == *kind && c["outcome"] == *outcome)
    })
}

/// Starts `synmon run` on `cfg`; once it answers (bounded generously: start-up is not what is
/// measured), `want` must be listed within two intervals.
async fn assert_scheduled(cfg: &Path, port: u16, want: &[(&str, &str, &str)]) -> Child {
    let child = Child::spawn(cfg);
    let base = format!("http://127.0.0.1:{port}");
    let up = Instant::now() + Duration::from_secs(60);
    poll_until(&format!("{base}/healthz"), up, "daemon answering", |_| true).await;
    let within = Instant::now() + 2 * INTERVAL;
    poll_until(
        &format!("{base}/api/v1/checks"),
        within,
        "every check listed with its outcome within two intervals",
        |v| listed(v, want),
    )
    .await;
    child
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_config_with_only_a_tls_check_runs_it() {
    synmon::tls::install();
    let dir = tempfile::tempdir().unwrap();
    let (tls_port, ca) = tls_listener(dir.path()).await;
    let port = free_port();
    let cfg = config(
        dir.path(),
        port,
        &format!(
            "  tls:\n    - {{ name: cert, address: 'localhost:{tls_port}', ca_file: {}, timeout: 1s }}\n",
            ca.display()
        ),
    );
    let mut child = assert_scheduled(&cfg, port, &[("cert", "tls", "pass")]).await;
    // The kind's own metric: the days left on the certificate.
    let text = reqwest::get(format!("http://127.0.0.1:{port}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let line = text
        .lines()
        .find(|l| {
            l.starts_with("synmon_tls_certificate_expiry_remaining_seconds{")
                && l.contains("check=\"cert\"")
        })
        .unwrap_or_else(|| panic!("no certificate expiry for `cert` in:\n{text}"));
    let secs: f64 = line.rsplit(' ').next().unwrap().parse().unwrap();
    let days = secs / 86_400.0;
    assert!((89.0..=90.0).contains(&days), "{line}");
    child.0.kill().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_config_with_only_tcp_and_dns_checks_runs_them() {
    let dir = tempfile::tempdir().unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let tcp_port = listener.local_addr().unwrap().port();
    let accepting = tokio::spawn(async move {
        while let Ok((s, _)) = listener.accept().await {
            drop(s);
        }
    });
    let port = free_port();
    let cfg = config(
        dir.path(),
        port,
        &format!(
            "  tcp:\n    - {{ name: port, address: '127.0.0.1:{tcp_port}', timeout: 1s }}\n  \
             dns:\n    - {{ name: resolve, host: localhost, timeout: 1s }}\n"
        ),
    );
    let mut child = assert_scheduled(
        &cfg,
        port,
        &[("port", "tcp", "pass"), ("resolve", "dns", "pass")],
    )
    .await;
    child.0.kill().await.unwrap();
    accepting.abort();
}
