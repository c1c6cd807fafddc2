//! Every replica shows every location: a daemon of location `a` lists its own check from memory
//! and, from the store, the latest run of every other (check, location) pair of the last 24 h —
//! another location's, and another replica's of its own location — once per pair, on
//! PostgreSQL and on SQLite; the status page shows those rows with their location; and
//! `synmon gate --source` judges the runs of every location, not only the daemon's own.

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::Value;
use synmon::Outcome;
use synmon::clock::{Clock, SystemClock};
use synmon::run::{CheckKind, RunResult};
use synmon::settings::Config;

use crate::support::*;

const PASSWORD: &str = "synthetic-demo";

/// A target that answers every request 200 with `{"status": "ok"}`.
async fn healthy_target() -> String {
    let app =
        axum::Router::new().fallback(|| async { axum::Json(serde_json::json!({"status": "ok"})) });
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    format!("http://{addr}")
}

fn now() -> DateTime<Utc> {
    SystemClock.now()
}

/// An HTTP check's run at `location`, `minutes_ago`.
fn run(check: &str, location: &str, minutes_ago: i64, outcome: Outcome) -> RunResult {
    let mut r = RunResult::begin(
        check,
        CheckKind::Http,
        "staging",
        location,
        now() - chrono::Duration::minutes(minutes_ago),
    );
    r.outcome = outcome;
    r.total_ms = 40.0 + minutes_ago as f64;
    if outcome == Outcome::Fail {
        r.error = Some(format!("HTTP 503 at {location}"));
    }
    r
}

async fn checks_api(base: &str) -> Value {
    reqwest::get(format!("{base}/api/v1/checks"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// The entries of `(check, location)`.
fn entries<'a>(v: &'a Value, check: &str, location: &str) -> Vec<&'a Value> {
    v["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["name"] == check && c["location"] == location)
        .collect()
}

/// The one entry of `(check, location)`.
fn entry<'a>(v: &'a Value, check: &str, location: &str) -> &'a Value {
    let found = entries(v, check, location);
    assert_eq!(found.len(), 1, "one entry of {check} at {location}: {v:#}");
    found[0]
}

async fn every_location_listed(store_url: &str) {
    synmon::tls::install();
    let dir = tempfile::tempdir().unwrap();
    let target = healthy_target().await;
    let cfg = write_config(
        dir.path(),
        &target,
        PASSWORD,
        &format!(
            "location: a\nstore:\n  url: \"{store_url}\"\nchecks:\n  journeys: []\n  http:\n    - {{ name: auth_health, url: /svc/auth/healthz, interval: 5s }}\n"
        ),
    );
    let d = TestDaemon::spawn(Config::load(&cfg).unwrap()).await;
    let base = d.base_url();
    // The daemon's own run, stored: the store now holds (auth_health, a) too.
    eventually(
        "auth_health's own run stored",
        Duration::from_secs(30),
        async || {
            let runs = d.store().runs_for_check("auth_health", 5).await.unwrap();
            runs.into_iter().find(|r| r.location == "a")
        },
    )
    .await;

    // Location b's replica: auth_health passed, then failed (the latest); a check only b runs;
    // a cancelled run newer than the latest (never a last run); a run older than 24 h.
    let b = d.store().clone().for_replica("b-0");
    let b_latest = run("auth_health", "b", 1, Outcome::Fail);
    let mut cancelled = run("auth_health", "b", 0, Outcome::Error);
    cancelled.cancelled = true;
    b.insert_runs(&[
        run("auth_health", "b", 30, Outcome::Pass),
        run("auth_health", "b", 90, Outcome::Pass),
        run("auth_health", "b", 3, Outcome::Error),
        b_latest.clone(),
        cancelled,
        run("b_only", "b", 2, Outcome::Pass),
        run("gone", "b", 25 * 60, Outcome::Pass),
    ])
    .await
    .unwrap();
    // Another replica of location a: the same check (the daemon already lists that pair) and
    // one this daemon does not run.
    let a1 = d.store().clone().for_replica("a-1");
    let a1_failure = run("auth_health", "a", 0, Outcome::Fail);
    a1.insert_runs(&[a1_failure.clone(), run("a1_only", "a", 4, Outcome::Pass)])
        .await
        .unwrap();

    let v = checks_api(&base).await;
    assert_eq!(v["store_error"], Value::Null, "{v:#}");
    let listed: Vec<(String, String)> = v["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap().to_string(),
                c["location"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let pairs = |p: &[(&str, &str)]| -> Vec<(String, String)> {
        p.iter()
            .map(|(c, l)| (c.to_string(), l.to_string()))
            .collect()
    };
    // Own checks first, then the store's rows by location and name; "gone" is older than 24 h.
    assert_eq!(
        listed,
        pairs(&[
            ("auth_health", "a"),
            ("a1_only", "a"),
            ("auth_health", "b"),
            ("b_only", "b"),
        ]),
        "{v:#}"
    );

    // Its own check, from memory: the daemon's run (its first or a later one: the check runs
    // every 5 s, on the shared slot grid with a PostgreSQL store), not replica a-1's failure.
    let mine = entry(&v, "auth_health", "a");
    assert_eq!(mine["source"], "memory");
    assert_eq!(mine["outcome"], "pass", "{mine:#}");
    let mine_id = mine["last"]["run_id"].as_str().unwrap();
    assert_ne!(mine_id, a1_failure.run_id.as_str(), "{mine:#}");
    assert_eq!(mine["interval_ms"], 5_000);

    // Location b's auth_health, from the store: its latest run that was not cancelled.
    let theirs = entry(&v, "auth_health", "b");
    assert_eq!(theirs["source"], "store");
    assert_eq!(theirs["replica"], "b-0");
    assert_eq!(theirs["kind"], "http");
    assert_eq!(theirs["target"], "staging");
    assert_eq!(theirs["outcome"], "fail");
    assert_eq!(
        theirs["last"]["run_id"],
        b_latest.run_id.as_str(),
        "{theirs:#}"
    );
    assert_eq!(theirs["last"]["error"], "HTTP 503 at b");
    assert_eq!(theirs["last"]["latency_ms"], 41.0);
    // Memory-only figures are null, not made up.
    assert_eq!(theirs["interval_ms"], Value::Null);
    assert_eq!(theirs["latency_ms"]["1h"]["p95"], Value::Null);
    // Availability per window from the store: 5 m holds the failure and the probe error,
    // 1 h adds the pass 30 minutes ago, 24 h the one 90 minutes ago.
    let up = |w: &str| {
        let u = &theirs["uptime"][w];
        (
            u["pass"].as_u64().unwrap(),
            u["fail"].as_u64().unwrap(),
            u["error"].as_u64().unwrap(),
        )
    };
    assert_eq!(up("5m"), (0, 1, 1), "{theirs:#}");
    assert_eq!(up("1h"), (1, 1, 1));
    assert_eq!(up("24h"), (2, 1, 1));
    assert_eq!(theirs["uptime"]["24h"]["ratio"], 2.0 / 3.0);
    assert_eq!(theirs["uptime"]["5m"]["ratio"], 0.0);

    let a1_only = entry(&v, "a1_only", "a");
    assert_eq!(a1_only["source"], "store");
    assert_eq!(a1_only["replica"], "a-1");
    assert_eq!(entry(&v, "b_only", "b")["outcome"], "pass");
    assert!(entries(&v, "gone", "b").is_empty());

    // The status page: location b's row with its location and state, grouped after a's.
    let html = reqwest::get(format!("{base}/status/fragment"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let row = |check: &str, location: &str| {
        html.find(&format!(
            r#"<tr data-check="{check}" data-location="{location}""#
        ))
        .unwrap_or_else(|| panic!("no row of {check} at {location}: {html}"))
    };
    let b_row = &html[row("auth_health", "b")..];
    let b_row = &b_row[..b_row.find("</tr>").unwrap()];
    assert!(
        b_row.contains(r#"data-source="store" data-state="failing""#)
            && b_row.contains(r#"<th scope="row">auth_health</th><td>b</td>"#)
            && b_row.contains(&format!(r#"href="/runs/{}""#, b_latest.run_id))
            && b_row.contains("HTTP 503 at b"),
        "{b_row}"
    );
    assert!(row("auth_health", "a") < row("a1_only", "a"));
    assert!(row("a1_only", "a") < row("auth_health", "b"));
    assert!(row("auth_health", "b") < row("b_only", "b"));
    assert!(html.contains("4 checks in 2 locations"), "{html}");
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_location_is_listed_once_per_check_on_postgres() {
    let pg = TempPg::create().await;
    every_location_listed(&pg.url).await;
    pg.drop_db().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_location_is_listed_once_per_check_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    every_location_listed(&format!(
        "sqlite://{}",
        dir.path().join("synmon.db").display()
    ))
    .await;
}

fn gate(dir: &Path, config: &Path, source: &str) -> Output {
    Command::new(env!("CARGO_BIN_EXE_synmon"))
        .args(["gate", "--window", "1h", "--source", source, "--config"])
        .arg(config)
        .arg("--json")
        .arg(dir.join("gate.json"))
        .arg("--reports-dir")
        .arg(dir.join("reports"))
        .env_remove("RUST_LOG")
        .output()
        .expect("run synmon gate")
}

/// `synmon gate --source` asks a daemon of location `a` that runs nothing; the store holds
/// location a's passing journeys and location b's failures of one of them: the verdict counts
/// both locations' runs and breaches on b's failures.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gate_judges_every_locations_runs() {
    let pg = TempPg::create().await;
    let dir = tempfile::tempdir().unwrap();
    let daemon_dir = dir.path().join("daemon");
    std::fs::create_dir_all(&daemon_dir).unwrap();
    let dcfg = write_config(
        &daemon_dir,
        "http://127.0.0.1:9",
        PASSWORD,
        &format!(
            "location: a\nstore:\n  url: \"{}\"\nchecks:\n  journeys: []\n",
            pg.url
        ),
    );
    let d = TestDaemon::spawn(Config::load(&dcfg).unwrap()).await;
    let journey = |check: &str, location: &str, minute: i64, outcome: Outcome| {
        let mut r = run(check, location, minute, outcome);
        r.kind = CheckKind::Journey;
        r.timed_latency_ms = 120.0;
        r
    };
    let mut a_runs = Vec::new();
    for check in ["align_category", "save_profile", "feed_push"] {
        for m in 1..=40 {
            a_runs.push(journey(check, "a", m, Outcome::Pass));
        }
    }
    d.store()
        .clone()
        .for_replica("a-0")
        .insert_runs(&a_runs)
        .await
        .unwrap();
    let b_runs: Vec<RunResult> = (1..=10)
        .map(|m| journey("save_profile", "b", m, Outcome::Fail))
        .collect();
    d.store()
        .clone()
        .for_replica("b-0")
        .insert_runs(&b_runs)
        .await
        .unwrap();

    let source = d.base_url();
    let samples: Value = reqwest::get(format!("{source}/api/v1/gate?window=1h"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let save = &samples["checks"]["save_profile"];
    assert_eq!(save["fail"], 10, "{samples:#}");
    assert_eq!(save["pass_latencies_ms"].as_array().unwrap().len(), 40);

    // The gate's config lists the repo's journeys (the checks it judges).
    let cfg = write_config(dir.path(), "http://127.0.0.1:9", PASSWORD, "");
    let out = tokio::task::spawn_blocking({
        let (dir, cfg, source) = (dir.path().to_path_buf(), cfg.clone(), source.clone());
        move || gate(&dir, &cfg, &source)
    })
    .await
    .unwrap();
    let text = std::fs::read_to_string(dir.path().join("gate.json")).unwrap_or_else(|e| {
        panic!(
            "no verdicts ({e}): {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let v: Value = serde_json::from_str(&text).unwrap();
    let criterion = |check: &str, name: &str| {
        v["criteria"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["check"] == check && c["criterion"] == name)
            .unwrap_or_else(|| panic!("no {check}/{name} in {v:#}"))
            .clone()
    };
    assert_eq!(criterion("save_profile", "samples")["value"], 50.0, "{v:#}");
    assert_eq!(criterion("save_profile", "availability")["value"], 80.0);
    assert_eq!(
        criterion("save_profile", "availability")["verdict"],
        "breach"
    );
    assert_eq!(
        criterion("align_category", "availability")["verdict"],
        "pass"
    );
    assert_eq!(
        out.status.code(),
        Some(1),
        "b's failures breach the SLA: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    d.stop().await;
    pg.drop_db().await;
}
