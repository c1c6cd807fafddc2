//! Alert rules evaluated by the daemon over real runs: the sandbox's latency fault drives the
//! align-category p95 rule through pending, firing and resolved, evaluation by evaluation; a
//! firing alert survives a restart on the real store without a new transition.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use synmon::clock::ManualClock;
use synmon::config::Config;
use synmon::daemon::{Daemon, Options};
use synmon::rules::eval::Phase;

use crate::support::*;

const PASSWORD: &str = "synthetic-demo";

const P95_RULE: &str = r#"
rules:
  - alert: align_category_p95_high
    metric: synmon.check.latency
    match: { check: align_category, outcome: pass }
    by: [check]
    aggregate: p95
    window: 1m
    op: ">"
    threshold: 400
    for: 30s
    severity: warning
    route: slack-alerts
    annotations:
      summary: "{{ labels.check }} p95 {{ value }} ms (limit {{ threshold }} ms)"
"#;

fn start_time() -> chrono::DateTime<chrono::Utc> {
    "2026-11-26T12:00:00Z".parse().unwrap()
}

fn options() -> Options {
    Options {
        listen: Some("127.0.0.1:0".parse().unwrap()),
        no_offsets: true,
        manual_evaluation: true,
        ..Options::default()
    }
}

/// Waits for a finished run of `check` newer than `after` (real runs take real time).
async fn next_run(d: &Daemon, check: &str, after: Option<String>) -> synmon::run::RunResult {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(r) = d.shared.last.read().unwrap().get(check)
            && Some(&r.run_id) != after.as_ref()
        {
            return r.clone();
        }
        assert!(tokio::time::Instant::now() < deadline, "no new {check} run");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_latency_fault_makes_the_p95_rule_pend_then_fire_and_clearing_it_resolves() {
    let _b = BROWSER.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let sbx = sqlite_sandbox(dir.path(), PASSWORD).await;
    std::fs::create_dir_all(dir.path().join("alerts")).unwrap();
    std::fs::write(dir.path().join("alerts/journeys.yaml"), P95_RULE).unwrap();
    let cfg = write_config(
        dir.path(),
        &sbx.base_url(),
        PASSWORD,
        "store:\n  url: sqlite://synmon.db\nalerts: alerts\nchecks:\n  interval: 15s\n  timeout: 14s\n  journeys:\n    - name: align_category\n",
    );
    let clock = ManualClock::new(start_time());
    set_faults(
        &sbx.base_url(),
        json!({"kind": "latency", "route": "/api/t/*/categories/*/mapping", "ms": 600}),
    )
    .await;
    let d = Daemon::start(
        Config::load(&cfg).unwrap(),
        options(),
        Arc::new(clock.clone()),
    )
    .await
    .unwrap();
    let slow = next_run(&d, "align_category", None).await;
    assert!(slow.timed_latency_ms > 600.0, "{slow:?}");

    // Evaluation 1: above the threshold -> pending.
    let t1 = d.evaluate_now().await;
    assert_eq!(t1.len(), 1, "{t1:?}");
    assert_eq!((t1[0].from, t1[0].to), (Phase::Inactive, Phase::Pending));
    // Evaluation 2, 30 s later (the rule's `for`): firing.
    clock.advance(chrono::Duration::seconds(30));
    let t2 = d.evaluate_now().await;
    assert_eq!(t2.len(), 1, "{t2:?}");
    assert_eq!((t2[0].from, t2[0].to), (Phase::Pending, Phase::Firing));
    assert!(
        t2[0].annotations["summary"].contains("align_category p95"),
        "{t2:?}"
    );
    let api: serde_json::Value = reqwest::get(format!("http://{}/api/v1/alerts", d.addr))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(api["alerts"][0]["state"], "firing", "{api:#}");

    // Clear the fault; two minutes on, the slow runs have left the 1 m window and a fast run
    // is in it: evaluation 3 resolves.
    clear_faults(&sbx.base_url()).await;
    clock.advance(chrono::Duration::minutes(2));
    let mut last = next_run(&d, "align_category", Some(slow.run_id.clone())).await;
    while last.started_at < start_time() + chrono::Duration::minutes(2)
        || last.timed_latency_ms > 400.0
    {
        last = next_run(&d, "align_category", Some(last.run_id.clone())).await;
    }
    let t3 = d.evaluate_now().await;
    assert_eq!(t3.len(), 1, "{t3:?}");
    assert_eq!((t3[0].from, t3[0].to), (Phase::Firing, Phase::Resolved));
    d.shutdown().await;
    sbx.shutdown().await;
}

const GAUGE_RULE: &str = r#"
rules:
  - alert: approvals_reported
    metric: feed_approval_rate
    aggregate: last
    op: ">"
    threshold: 0
    severity: info
"#;

async fn firing_alert_survives_a_restart(store_url: &str) {
    let dir = tempfile::tempdir().unwrap();
    let sbx = sqlite_sandbox(dir.path(), PASSWORD).await;
    std::fs::create_dir_all(dir.path().join("alerts")).unwrap();
    std::fs::write(dir.path().join("alerts/business.yaml"), GAUGE_RULE).unwrap();
    let extra = format!(
        "store:\n  url: \"{store_url}\"\nalerts: alerts\nchecks:\n  interval: 1s\n  journeys: []\n  http:\n    - name: business_metrics\n      url: /api/metrics/business\n      gauges: {{ feed_approval_rate: /feed_approval_rate }}\n"
    );
    let cfg = write_config(dir.path(), &sbx.base_url(), PASSWORD, &extra);
    let clock = ManualClock::new(start_time());

    let gauge_set = |d: &Daemon| d.shared.registry.gauge("feed_approval_rate", &[]).is_some();
    let d = Daemon::start(
        Config::load(&cfg).unwrap(),
        options(),
        Arc::new(clock.clone()),
    )
    .await
    .unwrap();
    while !gauge_set(&d) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let t = d.evaluate_now().await;
    assert_eq!(t.last().map(|t| t.to), Some(Phase::Firing), "{t:?}");
    let fired_at = t.last().unwrap().at;
    d.shutdown().await;

    clock.advance(chrono::Duration::minutes(5));
    let d = Daemon::start(
        Config::load(&cfg).unwrap(),
        options(),
        Arc::new(clock.clone()),
    )
    .await
    .unwrap();
    while !gauge_set(&d) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let t = d.evaluate_now().await;
    assert!(t.is_empty(), "no new page after a restart: {t:?}");
    let a = d.shared.alerting.lock().await;
    let alert = a
        .state
        .alerts
        .values()
        .next()
        .expect("the alert is still there");
    assert_eq!(alert.phase, Phase::Firing);
    assert_eq!(alert.fired_at, Some(fired_at));
    drop(a);
    d.shutdown().await;
    sbx.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_firing_alert_survives_a_restart_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    firing_alert_survives_a_restart(&format!(
        "sqlite://{}",
        dir.path().join("store.db").display()
    ))
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_firing_alert_survives_a_restart_on_postgres() {
    let db = TempPg::create().await;
    firing_alert_survives_a_restart(&db.url).await;
    db.drop_db().await;
}
