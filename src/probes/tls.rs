//! TLS certificate expiry checks: a real handshake (verified against the system's web roots or
//! a configured CA file), then the days left on the leaf certificate, as a gauge and against a
//! minimum. A failed handshake (expired, wrong name, unknown issuer) is the target failing.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::time::Instant;
use tokio_rustls::rustls::{self, RootCertStore, pki_types::ServerName};

use crate::outcome::Outcome;
use crate::run::{RunResult, StepResult, Timing};

/// What a TLS check found: the leaf certificate's days left, when the handshake succeeded.
pub type DaysLeft = Option<f64>;

fn roots(ca_file: Option<&Path>) -> Result<RootCertStore, String> {
    let mut store = RootCertStore::empty();
    match ca_file {
        None => store.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
        Some(p) => {
            use rustls::pki_types::CertificateDer;
            use rustls::pki_types::pem::PemObject;
            let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(p)
                .map_err(|e| format!("cannot read CA file {}: {e}", p.display()))?
                .collect::<Result<_, _>>()
                .map_err(|e| format!("bad PEM in CA file {}: {e}", p.display()))?;
            for c in certs {
                store
                    .add(c)
                    .map_err(|e| format!("bad certificate in {}: {e}", p.display()))?;
            }
        }
    }
    Ok(store)
}

/// Connects to `address` (host:port), verifies the chain for `server_name` (default: the host),
/// and records the days left on the leaf certificate.
pub async fn tls(
    run: &mut RunResult,
    address: &str,
    server_name: Option<&str>,
    ca_file: Option<&Path>,
    min_days: f64,
    timeout: Duration,
    now: DateTime<Utc>,
) -> DaysLeft {
    let t = Instant::now();
    let res = tokio::time::timeout(timeout, handshake(address, server_name, ca_file)).await;
    let took = t.elapsed();
    let (outcome, error, days) = match res {
        Err(_) => (
            Outcome::Fail,
            Some(format!(
                "TLS handshake with {address}: no answer within {} ms",
                timeout.as_millis()
            )),
            None,
        ),
        Ok(Err((outcome, e))) => (outcome, Some(e), None),
        Ok(Ok(not_after)) => {
            let days = (not_after - now).num_seconds() as f64 / 86_400.0;
            if days < min_days {
                (
                    Outcome::Fail,
                    Some(format!(
                        "the certificate of {address} expires in {days:.1} days (minimum {min_days} days)"
                    )),
                    Some(days),
                )
            } else {
                (Outcome::Pass, None, Some(days))
            }
        }
    };
    let name = format!("tls {address}");
    run.steps.push(StepResult {
        name: name.clone(),
        action: "tls".into(),
        latency_ms: took.as_secs_f64() * 1000.0,
        timed: true,
        timing: Timing::Outside,
        navigation: None,
        outcome,
        error: error.clone(),
    });
    run.outcome = outcome;
    run.total_ms = took.as_secs_f64() * 1000.0;
    run.timed_latency_ms = run.total_ms;
    if outcome != Outcome::Pass {
        run.error = error;
        run.failed_step = Some(name);
    }
    days
}

async fn handshake(
    address: &str,
    server_name: Option<&str>,
    ca_file: Option<&Path>,
) -> Result<DateTime<Utc>, (Outcome, String)> {
    let roots = roots(ca_file).map_err(|e| (Outcome::Error, e))?;
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| (Outcome::Error, e.to_string()))?
    .with_root_certificates(roots)
    .with_no_client_auth();
    let host = server_name.map(str::to_string).unwrap_or_else(|| {
        address
            .rsplit_once(':')
            .map(|(h, _)| h)
            .unwrap_or(address)
            .to_string()
    });
    let name = ServerName::try_from(host.clone()).map_err(|_| {
        (
            Outcome::Error,
            format!("`{host}` is not a valid TLS server name"),
        )
    })?;
    let tcp = tokio::net::TcpStream::connect(address)
        .await
        .map_err(|e| (Outcome::Fail, format!("connect {address}: {e}")))?;
    let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .map_err(|e| (Outcome::Fail, format!("TLS handshake with {address}: {e}")))?;
    let (_, session) = tls.get_ref();
    let leaf = session
        .peer_certificates()
        .and_then(|c| c.first())
        .ok_or_else(|| (Outcome::Fail, format!("{address} sent no certificate")))?;
    let (_, cert) = x509_parser::parse_x509_certificate(leaf.as_ref()).map_err(|e| {
        (
            Outcome::Fail,
            format!("unreadable certificate from {address}: {e}"),
        )
    })?;
    let ts = cert.validity().not_after.timestamp();
    DateTime::from_timestamp(ts, 0)
        .ok_or_else(|| (Outcome::Fail, "certificate date out of range".into()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::{Clock, SystemClock};

    /// A TLS server on port 0 with a self-signed certificate for `localhost` that expires in
    /// `days`; returns its address and the CA (the certificate itself) as a PEM file.
    async fn server(days: i64, dir: &Path) -> (String, std::path::PathBuf) {
        let now = SystemClock.now();
        let mut params = rcgen::CertificateParams::new(vec!["localhost".to_string()]).unwrap();
        params.not_before = rcgen::date_time_ymd(2020, 1, 1);
        let end = (now + chrono::Duration::days(days)).date_naive();
        use chrono::Datelike;
        // Midnight UTC of that day: between days-1 and days days from now.
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
        (format!("localhost:{port}"), ca)
    }

    fn run() -> RunResult {
        RunResult::begin(
            "tls",
            crate::run::CheckKind::Tls,
            "t",
            "l",
            SystemClock.now(),
        )
    }

    #[tokio::test]
    async fn reports_days_left_and_fails_below_the_minimum() {
        let dir = tempfile::tempdir().unwrap();
        let (addr, ca) = server(10, dir.path()).await;
        let mut ok = run();
        let days = tls(
            &mut ok,
            &addr,
            None,
            Some(&ca),
            7.0,
            Duration::from_secs(5),
            SystemClock.now(),
        )
        .await;
        assert_eq!(ok.outcome, Outcome::Pass, "{:?}", ok.error);
        let d = days.unwrap();
        assert!((9.0..=10.0).contains(&d), "{d}");
        let mut soon = run();
        tls(
            &mut soon,
            &addr,
            None,
            Some(&ca),
            30.0,
            Duration::from_secs(5),
            SystemClock.now(),
        )
        .await;
        assert_eq!(soon.outcome, Outcome::Fail);
        let e = soon.error.unwrap();
        assert!(
            e.contains("expires in") && e.contains("(minimum 30 days)"),
            "{e}"
        );
    }

    #[tokio::test]
    async fn an_unknown_issuer_fails_the_handshake() {
        let dir = tempfile::tempdir().unwrap();
        let (addr, _) = server(10, dir.path()).await;
        let mut r = run();
        let days = tls(
            &mut r,
            &addr,
            None,
            None,
            7.0,
            Duration::from_secs(5),
            SystemClock.now(),
        )
        .await;
        assert_eq!(r.outcome, Outcome::Fail);
        assert!(days.is_none());
        assert!(
            r.error.unwrap().contains("TLS handshake"),
            "handshake error reported"
        );
    }
}
