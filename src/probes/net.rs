//! TCP connect and DNS resolution checks, as every peer offers.

use std::time::Duration;

use tokio::time::Instant;

use crate::outcome::Outcome;
use crate::run::{RunResult, StepResult, Timing};

fn step(
    name: &str,
    action: &str,
    took: Duration,
    outcome: Outcome,
    error: Option<String>,
) -> StepResult {
    StepResult {
        name: name.to_string(),
        action: action.to_string(),
        latency_ms: took.as_secs_f64() * 1000.0,
        timed: true,
        timing: Timing::Outside,
        navigation: None,
        outcome,
        error,
    }
}

/// Connects to `address` (host:port) and closes; the latency is the connect time.
pub async fn tcp(run: &mut RunResult, address: &str, timeout: Duration) {
    let t = Instant::now();
    let res = tokio::time::timeout(timeout, tokio::net::TcpStream::connect(address)).await;
    let took = t.elapsed();
    let (outcome, error) = match res {
        Ok(Ok(_)) => (Outcome::Pass, None),
        Ok(Err(e)) => (Outcome::Fail, Some(format!("connect {address}: {e}"))),
        Err(_) => (
            Outcome::Fail,
            Some(format!(
                "connect {address}: no answer within {} ms",
                timeout.as_millis()
            )),
        ),
    };
    finish(
        run,
        step(&format!("connect {address}"), "tcp", took, outcome, error),
    );
}

/// Resolves `host`; fails when it has no address.
pub async fn dns(run: &mut RunResult, host: &str, timeout: Duration) {
    let t = Instant::now();
    let res = tokio::time::timeout(timeout, tokio::net::lookup_host((host, 0)))
        .await
        .map(|r| r.map(|addrs| addrs.count()));
    let took = t.elapsed();
    let (outcome, error) = match res {
        Ok(Ok(n)) if n > 0 => (Outcome::Pass, None),
        Ok(Ok(_)) => (Outcome::Fail, Some(format!("resolve {host}: no address"))),
        Ok(Err(e)) => (Outcome::Fail, Some(format!("resolve {host}: {e}"))),
        Err(_) => (
            Outcome::Fail,
            Some(format!(
                "resolve {host}: no answer within {} ms",
                timeout.as_millis()
            )),
        ),
    };
    finish(
        run,
        step(&format!("resolve {host}"), "dns", took, outcome, error),
    );
}

fn finish(run: &mut RunResult, s: StepResult) {
    run.outcome = s.outcome;
    run.total_ms = s.latency_ms;
    run.timed_latency_ms = s.latency_ms;
    if s.outcome != Outcome::Pass {
        run.error = s.error.clone();
        run.failed_step = Some(s.name.clone());
    }
    run.steps.push(s);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn tcp_connects_to_a_listener_and_fails_on_a_closed_port() {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap().to_string();
        let mut ok = RunResult::begin(
            "t",
            crate::run::CheckKind::Tcp,
            "",
            "",
            "2026-11-26T00:00:00Z".parse().unwrap(),
        );
        tcp(&mut ok, &addr, Duration::from_secs(2)).await;
        assert_eq!(ok.outcome, Outcome::Pass, "{:?}", ok.error);
        drop(l);
        let mut bad = RunResult::begin(
            "t",
            crate::run::CheckKind::Tcp,
            "",
            "",
            "2026-11-26T00:00:00Z".parse().unwrap(),
        );
        tcp(&mut bad, &addr, Duration::from_secs(2)).await;
        assert_eq!(bad.outcome, Outcome::Fail);
        assert!(bad.error.unwrap().contains("connect"));
    }

    #[tokio::test]
    async fn dns_resolves_localhost_and_fails_on_an_invalid_name() {
        let mut ok = RunResult::begin(
            "d",
            crate::run::CheckKind::Dns,
            "",
            "",
            "2026-11-26T00:00:00Z".parse().unwrap(),
        );
        dns(&mut ok, "localhost", Duration::from_secs(2)).await;
        assert_eq!(ok.outcome, Outcome::Pass, "{:?}", ok.error);
        let mut bad = RunResult::begin(
            "d",
            crate::run::CheckKind::Dns,
            "",
            "",
            "2026-11-26T00:00:00Z".parse().unwrap(),
        );
        dns(&mut bad, "no-such-host.invalid", Duration::from_secs(2)).await;
        assert_eq!(bad.outcome, Outcome::Fail);
    }
}
