//! `synmon run` end to end: the real binary against the sandbox with real Chromium, reload on
//! SIGHUP, graceful stop on SIGTERM.

use std::path::Path;
use std::time::Duration;

use serde_json::Value;

use crate::support::*;

const PASSWORD: &str = "synthetic-demo";

const HTTP_CHECKS: &str = r#"
  http:
    - { name: auth_health, service: auth, url: /svc/auth/healthz, expect: { status: 200, json: { /status: ok } } }
    - { name: inventory_health, service: inventory, url: /svc/inventory/healthz }
    - name: swis_preview
      service: inventory
      url: /api/t/{tenant}/swis/preview
      auth: { login: { url: /api/login, token: /token } }
      metric: swis_preview_p95_ms
"#;

fn daemon_config(dir: &Path, base_url: &str, port: u16, checks: &str) -> std::path::PathBuf {
    write_config(
        dir,
        base_url,
        PASSWORD,
        &format!(
            "server:\n  listen: 127.0.0.1:{port}\nstore:\n  url: sqlite://synmon.db\nchecks:\n  interval: 30s\n  max_offset: 1s\n{checks}"
        ),
    )
}

fn all_reported(v: &Value) -> bool {
    v["checks"]
        .as_array()
        .is_some_and(|a| !a.is_empty() && a.iter().all(|c| !c["outcome"].is_null()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn synmon_run_reports_every_journey_and_api_check_then_stops_cleanly() {
    let _b = BROWSER.lock().await;
    synmon::tls::install();
    let dir = tempfile::tempdir().unwrap();
    let sbx = sqlite_sandbox(dir.path(), PASSWORD).await;
    let port = free_port();
    let cfg = daemon_config(dir.path(), &sbx.base_url(), port, HTTP_CHECKS);
    let mut child = Child::spawn(&cfg);
    let base = format!("http://127.0.0.1:{port}");

    let v = wait_for_api(
        &format!("{base}/api/v1/checks"),
        Duration::from_secs(90),
        all_reported,
    )
    .await;
    let checks = v["checks"].as_array().unwrap();
    let names: Vec<&str> = checks.iter().map(|c| c["name"].as_str().unwrap()).collect();
    for want in [
        "align_category",
        "save_profile",
        "feed_push",
        "auth_health",
        "inventory_health",
        "swis_preview",
    ] {
        assert!(names.contains(&want), "{want} missing from {names:?}");
    }
    for c in checks {
        assert_eq!(c["outcome"], "pass", "{c:#}");
        let p95 = c["latency_ms"]["5m"]["p95"].as_f64();
        assert!(p95.is_some_and(|p| p > 0.0), "p95 over 5 m for {c:#}");
        assert!(c["latency_ms"]["1h"]["p99"].as_f64().is_some());
        assert_eq!(c["uptime"]["5m"]["ratio"], 1.0);
    }

    // A run with its steps, through the API.
    let align = checks
        .iter()
        .find(|c| c["name"] == "align_category")
        .unwrap();
    let run_id = align["last"]["run_id"].as_str().unwrap();
    let run = get_json(&format!("{base}/api/v1/runs/{run_id}"))
        .await
        .unwrap();
    assert_eq!(run["outcome"], "pass");
    assert!(run["steps"].as_array().unwrap().len() >= 6, "{run:#}");
    // The list reads the store, which the writer fills in batches (up to 100 ms later).
    let runs = wait_for_api(
        &format!("{base}/api/v1/checks/align_category/runs?limit=5"),
        Duration::from_secs(10),
        |v| v["runs"][0]["run_id"] == run_id,
    )
    .await;
    assert_eq!(runs["runs"][0]["run_id"], run_id);

    // Prometheus text carries the journeys and the SWIS metric.
    let text = reqwest::get(format!("{base}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(text.contains("synmon_check_latency_seconds{"), "{text}");
    assert!(text.contains("check=\"align_category\""));
    assert!(text.contains("swis_preview_latency_seconds"), "{text}");
    let ready = reqwest::get(format!("{base}/readyz")).await.unwrap();
    assert_eq!(ready.status(), 200);

    // SIGTERM: exit 0 within 10 s, chromedriver gone.
    child.signal(nix::sys::signal::Signal::SIGTERM);
    let status = tokio::time::timeout(Duration::from_secs(10), child.0.wait())
        .await
        .expect("stops within 10 s")
        .unwrap();
    assert!(status.success(), "exit status {status:?}");
    assert!(
        reqwest::get(format!("{base}/healthz")).await.is_err(),
        "server stopped"
    );
    sbx.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_with_a_bad_config_keeps_the_old_one_and_a_good_one_applies() {
    synmon::tls::install();
    let dir = tempfile::tempdir().unwrap();
    let sbx = sqlite_sandbox(dir.path(), PASSWORD).await;
    let port = free_port();
    // No journeys scheduled: this test needs no browser.
    let checks = "  journeys: []\n  http:\n    - { name: auth_health, url: /svc/auth/healthz }\n";
    let cfg = daemon_config(dir.path(), &sbx.base_url(), port, checks);
    let good = std::fs::read_to_string(&cfg).unwrap();
    let child = Child::spawn(&cfg);
    let url = format!("http://127.0.0.1:{port}/api/v1/checks");
    wait_for_api(&url, Duration::from_secs(30), all_reported).await;

    std::fs::write(&cfg, format!("{good}  bogus_key: [\n")).unwrap();
    child.signal(nix::sys::signal::Signal::SIGHUP);
    // The old config keeps serving: same checks, still answering.
    let v = wait_for_api(&url, Duration::from_secs(5), all_reported).await;
    assert_eq!(v["checks"].as_array().unwrap().len(), 1);

    let with_more = good.replace(
        "    - { name: auth_health, url: /svc/auth/healthz }\n",
        "    - { name: auth_health, url: /svc/auth/healthz }\n    - { name: inventory_health, url: /svc/inventory/healthz }\n",
    );
    std::fs::write(&cfg, with_more).unwrap();
    child.signal(nix::sys::signal::Signal::SIGHUP);
    let v = wait_for_api(&url, Duration::from_secs(30), |v| {
        v["checks"].as_array().is_some_and(|a| a.len() == 2) && all_reported(v)
    })
    .await;
    assert!(
        v["checks"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["name"] == "inventory_health")
    );
    drop(child);
    sbx.shutdown().await;
}
