//! Alert rules evaluated by the daemon over real runs: the sandbox's latency fault drives the
//! align-category p95 rule through pending, firing and resolved, evaluation by evaluation; a
//! firing alert survives a restart on the real store without a new transition.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use synmon::clock::ManualClock;
use synmon::rules::eval::Phase;
use synmon::settings::Config;

use crate::support::*;

const PASSWORD: &str = "synthetic-demo";

/// How long a real run may take to finish.
const RUN_WAIT: Duration = Duration::from_secs(60);

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
    let d = TestDaemon::spawn_with(
        Config::load(&cfg).unwrap(),
        TestDaemon::options(),
        Arc::new(clock.clone()),
    )
    .await;
    let slow = d.next_run("align_category", None, RUN_WAIT).await;
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
    let api: serde_json::Value = reqwest::get(format!("http://{}/api/v1/alerts", d.addr()))
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
    // Runs keep coming (journeys of 15 s): wait, for at most five minutes, for one that started
    // after the clock moved and was fast again.
    let mut after = slow.run_id.clone();
    eventually(
        "a fast align_category run after the fault cleared",
        Duration::from_secs(300),
        async || {
            let r = d.next_run("align_category", Some(&after), RUN_WAIT).await;
            after = r.run_id.clone();
            (r.started_at >= start_time() + chrono::Duration::minutes(2)
                && r.timed_latency_ms <= 400.0)
                .then_some(())
        },
    )
    .await;
    let t3 = d.evaluate_now().await;
    assert_eq!(t3.len(), 1, "{t3:?}");
    assert_eq!((t3[0].from, t3[0].to), (Phase::Firing, Phase::Resolved));
    d.stop().await;
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

    let gauge_set = |d: &TestDaemon| d.registry().gauge("feed_approval_rate", &[]).is_some();
    let d = TestDaemon::spawn_with(
        Config::load(&cfg).unwrap(),
        TestDaemon::options(),
        Arc::new(clock.clone()),
    )
    .await;
    eventually("the feed_approval_rate gauge", RUN_WAIT, async || {
        gauge_set(&d).then_some(())
    })
    .await;
    let t = d.evaluate_now().await;
    assert_eq!(t.last().map(|t| t.to), Some(Phase::Firing), "{t:?}");
    let fired_at = t.last().unwrap().at;
    d.stop().await;

    clock.advance(chrono::Duration::minutes(5));
    let d = TestDaemon::spawn_with(
        Config::load(&cfg).unwrap(),
        TestDaemon::options(),
        Arc::new(clock.clone()),
    )
    .await;
    eventually("the feed_approval_rate gauge", RUN_WAIT, async || {
        gauge_set(&d).then_some(())
    })
    .await;
    let t = d.evaluate_now().await;
    assert!(t.is_empty(), "no new page after a restart: {t:?}");
    let a = d.alerting().await;
    let alert = a
        .state
        .alerts
        .values()
        .next()
        .expect("the alert is still there");
    assert_eq!(alert.phase, Phase::Firing);
    assert_eq!(alert.fired_at, Some(fired_at));
    drop(a);
    d.stop().await;
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

/// A daemon on `store_url` checking `/svc/auth/healthz` every second while the sandbox fails
/// it, and its first failing run, caught the moment it is recorded (polled every 2 ms, well
/// inside the store writer's 100 ms of gathering).
async fn first_failing_run(
    dir: &std::path::Path,
    store_url: &str,
) -> (rvp_sandbox::Sandbox, TestDaemon, synmon::run::RunResult) {
    let sbx = sqlite_sandbox(dir, PASSWORD).await;
    std::fs::create_dir_all(dir.join("alerts")).unwrap();
    std::fs::write(dir.join("alerts/health.yaml"), crate::notify::daemon::RULE).unwrap();
    let cfg = write_config(
        dir,
        &sbx.base_url(),
        PASSWORD,
        &format!(
            "store:\n  url: \"{store_url}\"\nalerts: alerts\nchecks:\n  interval: 1s\n  retry_on_failure: {{ count: 0 }}\n  journeys: []\n  http:\n    - {{ name: auth_health, url: /svc/auth/healthz, expect: {{ status: 200 }} }}\n"
        ),
    );
    set_faults(
        &sbx.base_url(),
        json!({"kind": "error", "route": "/svc/auth/healthz", "status": 500}),
    )
    .await;
    let d = TestDaemon::spawn(Config::load(&cfg).unwrap()).await;
    let deadline = tokio::time::Instant::now() + RUN_WAIT;
    let failed = loop {
        if let Some(r) = d.last_run("auth_health")
            && r.outcome == synmon::outcome::Outcome::Fail
        {
            break r;
        }
        assert!(tokio::time::Instant::now() < deadline, "no failing run");
        tokio::time::sleep(Duration::from_millis(2)).await;
    };
    (sbx, d, failed)
}

/// The runs behind a page are in the store before the page is queued: a kill -9 right after it
/// went out, then a restart, replays them, so the alert stays firing instead of resolving on an
/// empty window and paging again. The store is made slow: a transaction of the test holds
/// PostgreSQL's `runs` table against inserts (reads go on) and lets go after a second; the
/// evaluation of the failing run must wait for its write.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_runs_behind_a_page_are_stored_before_it_is_queued() {
    use sqlx::Connection;
    let dir = tempfile::tempdir().unwrap();
    let db = TempPg::create().await;
    // The tables exist before the lock is taken (connecting migrates).
    synmon::store::Store::connect(&synmon::config::Secret::new(db.url.clone()))
        .await
        .unwrap()
        .close()
        .await;
    let mut lock = sqlx::PgConnection::connect(&db.url).await.unwrap();
    sqlx::raw_sql("BEGIN; LOCK TABLE runs IN SHARE ROW EXCLUSIVE MODE")
        .execute(&mut lock)
        .await
        .unwrap();
    let (sbx, d, failed) = first_failing_run(dir.path(), &db.url).await;
    assert!(
        d.store()
            .stored_run(&failed.run_id)
            .await
            .unwrap()
            .is_none(),
        "the slow store has not taken the run yet"
    );
    let release = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(1)).await;
        sqlx::raw_sql("COMMIT").execute(&mut lock).await.unwrap();
    });
    let t = d.evaluate_now().await;
    assert_eq!(t.last().map(|t| t.to), Some(Phase::Firing), "{t:?}");
    // The firing alert has been handed to the notifier.
    assert!(
        d.store()
            .stored_run(&failed.run_id)
            .await
            .unwrap()
            .is_some(),
        "the failing run {} is not stored when its page is queued",
        failed.run_id
    );
    release.await.unwrap();
    d.stop().await;
    sbx.shutdown().await;
    db.drop_db().await;
}

/// The checks API links each check's last run the moment it is recorded: the run API and the
/// run page find it before the store's writer has written it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_just_recorded_run_is_found_before_it_is_stored() {
    let dir = tempfile::tempdir().unwrap();
    let (sbx, d, failed) = first_failing_run(dir.path(), "sqlite://synmon.db").await;
    let base = d.base_url();
    let id = &failed.run_id;
    let run = get_json(&format!("{base}/api/v1/runs/{id}")).await.unwrap();
    assert_eq!(run["run_id"], id.as_str(), "{run:#}");
    assert_eq!(run["outcome"], "fail", "{run:#}");
    let page = reqwest::get(format!("{base}/runs/{id}")).await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(
        page.text()
            .await
            .unwrap()
            .contains(&format!("data-run=\"{id}\""))
    );
    d.stop().await;
    sbx.shutdown().await;
}
