//! Notification benchmarks (issue 6).
//!
//! 1. Outbox throughput: N alert groups routed, grouped, deduplicated and written to the
//!    outbox (one flush), then delivered by the webhook receiver to a local HTTP endpoint by
//!    one delivery worker. Prints notifications per second for each phase (SQLite store).
//! 2. Detection to delivery: the daemon (in-process, real clock) checks the sandbox's auth
//!    health endpoint every second and evaluates rules every second; a rule pages on any failed
//!    run, routed with `group_wait: 0s` to a local webhook. A fault makes the endpoint answer
//!    500; the time from switching the fault on to the webhook receiving the notification is
//!    measured over several trials (and the same for the resolve after the fault clears).
//!
//! Run: `cargo bench --bench notify` (N from NOTIFY_BENCH_N, default 5000; trials from
//! NOTIFY_BENCH_TRIALS, default 3).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use axum::routing::post;
use tokio::sync::mpsc;
use tokio::time::Instant;

use synmon::clock::SystemClock;
use synmon::notify::deliver::Backoff;
use synmon::notify::dispatch::IncomingAlert;
use synmon::notify::pipeline::Notifier;

/// A webhook endpoint that reports each received notification's status and arrival time.
async fn collector() -> (String, mpsc::UnboundedReceiver<(Instant, String)>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let app = axum::Router::new().route(
        "/hook",
        post(move |body: axum::Json<serde_json::Value>| {
            let tx = tx.clone();
            async move {
                let status = body["status"].as_str().unwrap_or("").to_string();
                let _ = tx.send((Instant::now(), status));
                "ok"
            }
        }),
    );
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    (format!("http://{addr}/hook"), rx)
}

fn notify_config(hook: &str) -> synmon::notify::NotifyConfig {
    #[derive(serde::Deserialize)]
    struct Doc {
        receivers: Vec<synmon::notify::config::RawReceiver>,
        route: synmon::notify::config::RawRoute,
    }
    let yaml = format!(
        "receivers:\n  - {{ name: hook, type: webhook, url: \"{hook}\" }}\nroute:\n  receiver: hook\n  group_by: [alertname, check]\n  group_wait: 0s\n"
    );
    let d: Doc = yaml_serde::from_str(&yaml).unwrap();
    synmon::notify::config::validate(d.receivers, Some(d.route), Path::new("."), &mut |p, m| {
        panic!("{p}: {m}")
    })
}

async fn throughput(n: usize) {
    let dir = tempfile::tempdir().unwrap();
    let url = synmon::config::Secret::new(format!(
        "sqlite://{}",
        dir.path().join("bench.db").display()
    ));
    let store = synmon::store::Store::connect(&url).await.unwrap();
    let (hook, mut rx) = collector().await;
    let notifier = Notifier::new(
        &notify_config(&hook),
        store,
        Arc::new(SystemClock),
        Backoff::default(),
        "http://127.0.0.1:3005",
        None,
    )
    .await
    .unwrap();
    let now = chrono::Utc::now();
    let alerts: Vec<IncomingAlert> = (0..n)
        .map(|i| {
            let labels: BTreeMap<String, String> = [
                ("alertname".to_string(), "bench".to_string()),
                ("check".to_string(), format!("check_{i:05}")),
                ("severity".to_string(), "warning".to_string()),
            ]
            .into_iter()
            .collect();
            IncomingAlert {
                fingerprint: synmon::rules::eval::fingerprint("bench", &labels),
                annotations: BTreeMap::from([(
                    "summary".to_string(),
                    format!("check_{i:05} is slow"),
                )]),
                labels,
                starts_at: now,
                condition: None,
                run: None,
                affected: Vec::new(),
            }
        })
        .collect();
    let t = Instant::now();
    let queued = notifier.sync(&alerts).await.unwrap();
    let enqueue = t.elapsed();
    assert_eq!(queued, n);
    let t = Instant::now();
    let mut delivered = 0;
    while delivered < n {
        let pass = notifier.deliver_all().await.unwrap();
        assert_eq!(pass.retried + pass.failed, 0);
        delivered += pass.sent;
    }
    let deliver = t.elapsed();
    let mut got = 0;
    while rx.try_recv().is_ok() {
        got += 1;
    }
    assert_eq!(got, n, "the endpoint saw every notification");
    println!(
        "outbox throughput, {n} notifications (SQLite store, webhook on loopback):\n  route+group+dedup+enqueue: {:.0} ms ({:.0}/s)\n  delivery (one worker):     {:.0} ms ({:.0}/s)\n  end to end:                {:.0}/s",
        enqueue.as_secs_f64() * 1e3,
        n as f64 / enqueue.as_secs_f64(),
        deliver.as_secs_f64() * 1e3,
        n as f64 / deliver.as_secs_f64(),
        n as f64 / (enqueue + deliver).as_secs_f64(),
    );
}

const RULE: &str = r#"
rules:
  - alert: auth_health_failing
    metric: synmon.check.runs
    match: { check: auth_health, outcome: fail }
    by: [check]
    aggregate: rate
    window: 1m
    op: ">"
    threshold: 0
    severity: page
    route: bench
    annotations:
      summary: "auth health is failing"
"#;

async fn detection(trials: usize) {
    let dir = tempfile::tempdir().unwrap();
    let sbx = rvp_sandbox::start(rvp_sandbox::SandboxConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        database_url: format!("sqlite://{}", dir.path().join("rvp.db").display()),
        admin_token: Some("bench-admin".into()),
        synthetic_password: "bench-password".into(),
        ..rvp_sandbox::SandboxConfig::default()
    })
    .await
    .unwrap();
    let (hook, mut rx) = collector().await;
    std::fs::create_dir_all(dir.path().join("alerts")).unwrap();
    std::fs::create_dir_all(dir.path().join("journeys")).unwrap();
    std::fs::write(dir.path().join("alerts/bench.yaml"), RULE).unwrap();
    let cfg = dir.path().join("synmon.yaml");
    std::fs::write(
        &cfg,
        format!(
            "targets:\n  local:\n    base_url: \"{}\"\ntenant: synthetic\ncredentials:\n  username: synthetic@rvp.test\n  password: bench-password\nstore:\n  url: sqlite://synmon.db\nevaluation_interval: 1s\nchecks:\n  interval: 1s\n  max_offset: 1s\n  journeys: []\n  http:\n    - {{ name: auth_health, url: /svc/auth/healthz, expect: {{ status: 200 }} }}\nreceivers:\n  - {{ name: hook, type: webhook, url: \"{hook}\" }}\nroute:\n  receiver: console\n  group_by: [alertname, check]\n  group_wait: 0s\n  group_interval: 1s\n  routes:\n    - {{ matchers: {{ route: bench }}, receiver: hook }}\n",
            sbx.base_url()
        ),
    )
    .unwrap();
    let config = synmon::settings::Config::load(&cfg).unwrap();
    let d = synmon::daemon::Daemon::start(
        config,
        synmon::daemon::Options {
            listen: Some("127.0.0.1:0".parse().unwrap()),
            ..Default::default()
        },
        Arc::new(SystemClock),
    )
    .await
    .unwrap();
    let admin = reqwest::Client::new();
    let faults = format!("{}/__sandbox/faults", sbx.base_url());
    tokio::time::sleep(Duration::from_secs(3)).await; // healthy runs first
    let mut fire = Vec::new();
    let mut resolve = Vec::new();
    for _ in 0..trials {
        while rx.try_recv().is_ok() {}
        let t = Instant::now();
        admin
            .post(&faults)
            .bearer_auth("bench-admin")
            .json(
                &serde_json::json!({"kind": "error", "route": "/svc/auth/healthz", "status": 500}),
            )
            .send()
            .await
            .unwrap();
        let (at, status) = rx.recv().await.unwrap();
        assert_eq!(status, "firing");
        fire.push(at - t);
        let t = Instant::now();
        admin
            .delete(&faults)
            .bearer_auth("bench-admin")
            .send()
            .await
            .unwrap();
        let (at, status) = rx.recv().await.unwrap();
        assert_eq!(status, "resolved");
        resolve.push(at - t);
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    d.shutdown().await;
    sbx.shutdown().await;
    let show = |v: &[Duration]| {
        let mut ms: Vec<f64> = v.iter().map(|d| d.as_secs_f64() * 1e3).collect();
        ms.sort_by(f64::total_cmp);
        format!(
            "min {:.0} ms, median {:.0} ms, max {:.0} ms ({} trials)",
            ms[0],
            ms[ms.len() / 2],
            ms[ms.len() - 1],
            ms.len()
        )
    };
    println!(
        "detection to delivery (check interval 1 s, evaluation 1 s, for 0 s, group_wait 0 s; goal <= interval + for + 1 s = 2 s):\n  fault on -> trigger at the webhook: {}\n  fault off -> resolve at the webhook: {} (the rule's 1 m window must empty first)",
        show(&fire),
        show(&resolve)
    );
}

#[tokio::main]
async fn main() {
    synmon::tls::install();
    let n = std::env::var("NOTIFY_BENCH_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5000);
    let trials = std::env::var("NOTIFY_BENCH_TRIALS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    throughput(n).await;
    if trials > 0 {
        detection(trials).await;
    }
}
