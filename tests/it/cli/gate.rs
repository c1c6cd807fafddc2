//! `synmon gate` end to end, through the real binary and its exit codes: verdicts over stored
//! data sets built to pass, to breach p95, to breach availability and to have too few samples
//! (SQLite files and PostgreSQL); firing page alerts from the stored alert state; `--runs 5`
//! against the sandbox with and without its latency fault; `--source` against an in-process
//! daemon; JUnit parsed back as XML.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use synmon::Outcome;
use synmon::clock::{Clock, SystemClock};
use synmon::config::Secret;
use synmon::run::{CheckKind, RunResult, StepResult, Timing};
use synmon::settings::Config;
use synmon::store::{Store, StoredRun};

use crate::support::*;

const PASSWORD: &str = "synthetic-demo";

/// The tests here run one at a time: they start binaries, databases and the sandbox, and the
/// fresh-runs test measures real latency, which a busy 2-core machine would distort.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
const JOURNEYS: [&str; 3] = ["align_category", "save_profile", "feed_push"];

fn now() -> DateTime<Utc> {
    SystemClock.now()
}

/// A journey run `minutes_ago` with `ms` of timed latency.
fn run(check: &str, minutes_ago: i64, outcome: Outcome, ms: f64) -> RunResult {
    let t = now() - chrono::Duration::seconds(minutes_ago * 60 + 5);
    let mut r = RunResult::begin(check, CheckKind::Journey, "staging", "local", t);
    r.outcome = outcome;
    r.steps.push(StepResult {
        name: "save mapping".into(),
        action: "click".into(),
        latency_ms: ms,
        timed: true,
        timing: Timing::InPage,
        navigation: None,
        outcome,
        error: None,
    });
    r.timed_latency_ms = ms;
    r.total_ms = ms + 1500.0;
    r
}

/// One run a minute for the last `n` minutes of every journey, all passing at 120 ms, then
/// `tweak` applied to each run (check, minute, run).
fn data_set(n: i64, tweak: impl Fn(&str, i64, &mut RunResult)) -> Vec<RunResult> {
    let mut runs = Vec::new();
    for j in JOURNEYS {
        for m in 0..n {
            let mut r = run(j, m, Outcome::Pass, 120.0);
            tweak(j, m, &mut r);
            runs.push(r);
        }
    }
    runs
}

/// A config for the gate (journeys from the repo, no API checks) whose store is `store_url`.
fn gate_config(dir: &Path, store_url: &str, extra: &str) -> PathBuf {
    write_config(
        dir,
        "http://127.0.0.1:9",
        PASSWORD,
        &format!("store:\n  url: \"{store_url}\"\n{extra}"),
    )
}

fn gate(dir: &Path, config: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_synmon"))
        .arg("gate")
        .args(args)
        .arg("--config")
        .arg(config)
        .arg("--json")
        .arg(dir.join("gate.json"))
        .arg("--junit")
        .arg(dir.join("gate.xml"))
        .arg("--reports-dir")
        .arg(dir.join("reports"))
        .env_remove("RUST_LOG")
        .output()
        .expect("run synmon gate")
}

fn describe(o: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn verdicts(dir: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("gate.json")).unwrap()).unwrap()
}

fn criterion<'a>(v: &'a Value, check: &str, name: &str) -> &'a Value {
    v["criteria"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["check"] == check && c["criterion"] == name)
        .unwrap_or_else(|| panic!("no {check}/{name} in {v:#}"))
}

/// The JUnit file parsed as XML: (classname, name, failure/error/skipped element or "", its
/// message).
fn junit_cases(dir: &Path) -> Vec<(String, String, String, String)> {
    let text = std::fs::read_to_string(dir.join("gate.xml")).unwrap();
    let doc = roxmltree::Document::parse(&text).expect("JUnit output is well-formed XML");
    let root = doc.root_element();
    assert_eq!(root.tag_name().name(), "testsuites");
    let suite = root
        .children()
        .find(|n| n.has_tag_name("testsuite"))
        .expect("a testsuite");
    let cases: Vec<_> = suite
        .children()
        .filter(|n| n.has_tag_name("testcase"))
        .map(|c| {
            let outcome = c.children().find(|n| n.is_element());
            (
                c.attribute("classname").unwrap().to_string(),
                c.attribute("name").unwrap().to_string(),
                outcome
                    .map(|n| n.tag_name().name().to_string())
                    .unwrap_or_default(),
                outcome
                    .and_then(|n| n.attribute("message"))
                    .unwrap_or_default()
                    .to_string(),
            )
        })
        .collect();
    assert_eq!(
        suite.attribute("tests").unwrap().parse::<usize>().unwrap(),
        cases.len()
    );
    let failures = cases.iter().filter(|c| c.2 == "failure").count();
    assert_eq!(
        suite
            .attribute("failures")
            .unwrap()
            .parse::<usize>()
            .unwrap(),
        failures
    );
    cases
}

async fn store_with<R: synmon::store::RunRow>(url: &str, runs: &[R]) -> Store {
    let store = Store::connect(&Secret::new(url.to_string())).await.unwrap();
    store.insert_runs(runs).await.unwrap();
    store
}

/// The maintenance window the recorder judged a run of `data_set` to be in: for the data set
/// `failures inside maintenance`, minutes 5 to 15 of align_category and save_profile.
fn window_of(case: &str, journey: &str, minute: i64) -> Option<String> {
    (case == "failures inside maintenance" && journey != "feed_push" && (5..=15).contains(&minute))
        .then(|| "db-upgrade".to_string())
}

/// The four stored data sets and the verdict each must get, on the store at `url` (a fresh
/// database per case, made by `fresh`).
async fn stored_data_sets<F, Fut>(fresh: F)
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = String>,
{
    type Tweak = Box<dyn Fn(&str, i64, &mut RunResult)>;
    let cases: Vec<(&str, i64, Tweak, i32)> = vec![
        ("pass", 60, Box::new(|_, _, _| {}), 0),
        (
            "breach p95",
            60,
            // Every tenth align_category run takes 650 ms: p95 is 650.
            Box::new(|j, m, r| {
                if j == "align_category" && m % 10 == 0 {
                    r.timed_latency_ms = 650.0;
                    r.steps[0].latency_ms = 650.0;
                }
            }),
            1,
        ),
        (
            "breach availability",
            60,
            // One failed save_profile run in 60: 98.3% < 99.9%.
            Box::new(|j, m, r| {
                if j == "save_profile" && m == 7 {
                    r.outcome = Outcome::Fail;
                    r.error = Some("badge missing".into());
                }
            }),
            1,
        ),
        ("too few samples", 12, Box::new(|_, _, _| {}), 2),
        (
            "failures inside maintenance",
            60,
            // Inside the window (see `window_of`) align_category is slow (650 ms) and
            // save_profile fails: counted, either breaches; marked as maintenance, neither.
            Box::new(|j, m, r| {
                if (5..=15).contains(&m) && j == "align_category" {
                    r.timed_latency_ms = 650.0;
                    r.steps[0].latency_ms = 650.0;
                }
                if (5..=15).contains(&m) && j == "save_profile" {
                    r.outcome = Outcome::Fail;
                    r.error = Some("503 during the upgrade".into());
                }
            }),
            0,
        ),
    ];
    for (i, (name, n, tweak, code)) in cases.into_iter().enumerate() {
        let dir = tempfile::tempdir().unwrap();
        let url = fresh(i).await;
        let runs: Vec<StoredRun> = data_set(n, tweak)
            .into_iter()
            .enumerate()
            .map(|(i, run)| StoredRun {
                maintenance: window_of(name, &run.check, i as i64 % n),
                run,
            })
            .collect();
        let store = store_with(&url, &runs).await;
        store.close().await;
        let cfg = gate_config(dir.path(), &url, "");
        let out = gate(dir.path(), &cfg, &["--window", "1h"]);
        assert_eq!(out.status.code(), Some(code), "{name}: {}", describe(&out));
        let v = verdicts(dir.path());
        assert_eq!(v["exit_code"], code, "{name}");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            stdout.contains("p95 vs target") && stdout.contains("align_category"),
            "{name}: {stdout}"
        );
        match name {
            "pass" => {
                for j in JOURNEYS {
                    assert_eq!(criterion(&v, j, "p95")["verdict"], "pass", "{v:#}");
                    assert_eq!(criterion(&v, j, "p95")["value"], 120.0);
                    assert_eq!(criterion(&v, j, "availability")["value"], 100.0);
                    assert_eq!(criterion(&v, j, "samples")["value"], 60.0);
                }
                assert_eq!(criterion(&v, "overall", "availability")["verdict"], "pass");
                // Not configured here: skipped, not failed.
                assert_eq!(
                    criterion(&v, "feed_push_jobs", "success_rate")["verdict"],
                    "skipped"
                );
                assert_eq!(criterion(&v, "alerts", "page_alerts")["verdict"], "pass");
                assert!(stdout.contains("verdict: PASS (exit 0)"), "{stdout}");
                // The day's perf report carries the verdicts under `gate`.
                let day = now().format("%Y%m%d");
                let perf: Value = serde_json::from_str(
                    &std::fs::read_to_string(dir.path().join(format!("reports/perf-{day}.json")))
                        .unwrap(),
                )
                .unwrap();
                assert_eq!(perf["gate"]["exit_code"], 0);
                assert_eq!(perf["gate"]["window"], "1h");
            }
            "breach p95" => {
                let c = criterion(&v, "align_category", "p95");
                assert_eq!(c["verdict"], "breach", "{v:#}");
                assert_eq!(c["value"], 650.0);
                assert_eq!(criterion(&v, "save_profile", "p95")["verdict"], "pass");
                // JUnit: exactly that criterion fails, with the numbers.
                let cases = junit_cases(dir.path());
                let failed: Vec<_> = cases.iter().filter(|c| c.2 == "failure").collect();
                assert_eq!(failed.len(), 1, "{cases:?}");
                assert_eq!(
                    (failed[0].0.as_str(), failed[0].1.as_str()),
                    ("align_category", "p95")
                );
                assert_eq!(failed[0].3, "p95 650 ms >= target 400 ms");
                assert!(stdout.contains("SLA BREACHED (exit 1)"), "{stdout}");
            }
            "breach availability" => {
                let c = criterion(&v, "save_profile", "availability");
                assert_eq!(c["verdict"], "breach", "{v:#}");
                assert_eq!(c["message"], "98.33% (59 of 60 runs passed) < target 99.9%");
                assert_eq!(
                    criterion(&v, "overall", "availability")["verdict"],
                    "breach"
                );
                assert_eq!(
                    criterion(&v, "align_category", "availability")["verdict"],
                    "pass"
                );
            }
            "failures inside maintenance" => {
                assert_eq!(v["verdict"], "pass", "{v:#}");
                assert_eq!(v["maintenance_runs"], 22, "{v:#}");
                let row = |j: &str| {
                    v["checks"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .find(|c| c["check"] == j)
                        .unwrap()
                        .clone()
                };
                for (j, maintenance) in [
                    ("align_category", 11),
                    ("save_profile", 11),
                    ("feed_push", 0),
                ] {
                    let r = row(j);
                    assert_eq!(r["maintenance_runs"], maintenance, "{j}: {r:#}");
                    assert_eq!(r["samples"], 60 - maintenance, "{j}: {r:#}");
                    assert_eq!(r["fail"], 0, "{j}: {r:#}");
                }
                assert_eq!(criterion(&v, "align_category", "p95")["value"], 120.0);
                assert_eq!(
                    criterion(&v, "save_profile", "availability")["value"],
                    100.0
                );
                assert!(
                    stdout.contains(
                        "note: 22 runs inside maintenance windows are not judged \
                         (align_category 11, save_profile 11)"
                    ),
                    "{stdout}"
                );
                assert!(stdout.contains("verdict: PASS (exit 0)"), "{stdout}");
            }
            "too few samples" => {
                let c = criterion(&v, "align_category", "samples");
                assert_eq!(c["verdict"], "cannot_judge", "{v:#}");
                assert_eq!(
                    c["message"],
                    "only 12 judged runs, fewer than the minimum 20: cannot judge"
                );
                assert!(stdout.contains("CANNOT JUDGE (exit 2)"), "{stdout}");
                // JUnit reports cannot-judge as errors, never as passes.
                let cases = junit_cases(dir.path());
                assert!(
                    cases
                        .iter()
                        .any(|c| c.0 == "align_category" && c.1 == "samples" && c.2 == "error")
                );
            }
            _ => unreachable!(),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn window_verdicts_on_sqlite_data_sets() {
    let _serial = SERIAL.lock().await;
    let root = tempfile::tempdir().unwrap();
    let root_path = root.path().to_path_buf();
    stored_data_sets(|i| {
        let p = root_path.join(format!("store{i}.db"));
        async move { format!("sqlite://{}", p.display()) }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn window_verdicts_on_postgres_data_sets() {
    let _serial = SERIAL.lock().await;
    let dbs = Arc::new(tokio::sync::Mutex::new(Vec::new()));
    let d = dbs.clone();
    stored_data_sets(move |_| {
        let d = d.clone();
        async move {
            let pg = TempPg::create().await;
            let url = pg.url.clone();
            d.lock().await.push(pg);
            url
        }
    })
    .await;
    for pg in dbs.lock().await.drain(..) {
        pg.drop_db().await;
    }
}

/// A firing page alert in the state the daemon persisted blocks a release with healthy runs;
/// a firing warning does not.
#[tokio::test]
async fn a_firing_page_alert_in_the_store_breaches() {
    let _serial = SERIAL.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("synmon.db").display());
    let store = store_with(&url, &data_set(30, |_, _, _| {})).await;
    let alert = |rule: &str, severity: &str| {
        json!({
            "rule": rule, "fingerprint": rule, "labels": {"severity": severity, "slo": "uptime"},
            "phase": "firing", "active_at": now(), "fired_at": now(), "pending_ms": 0,
            "last_eval": now(), "last_true_at": now(), "healthy_streak": 0, "value": 20.0,
            "annotations": {}, "flapping": false
        })
    };
    let state = json!({"alerts": {"w": alert("latency_warning", "warning")}, "changes": {}});
    store
        .save_alert_state("evaluator", &state, now())
        .await
        .unwrap();
    let cfg = gate_config(dir.path(), &url, "");
    let out = gate(dir.path(), &cfg, &["--window", "1h"]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));

    let state = json!({"alerts": {"w": alert("latency_warning", "warning"), "p": alert("uptime_burn_rate_page", "page")}, "changes": {}});
    store
        .save_alert_state("evaluator", &state, now())
        .await
        .unwrap();
    store.close().await;
    let out = gate(dir.path(), &cfg, &["--window", "1h"]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let v = verdicts(dir.path());
    let c = criterion(&v, "alerts", "page_alerts");
    assert_eq!(c["verdict"], "breach");
    assert_eq!(
        c["message"],
        "page-severity alerts firing: uptime_burn_rate_page"
    );
}

#[tokio::test]
async fn bad_flags_and_an_unreachable_store_cannot_judge() {
    let _serial = SERIAL.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = gate_config(dir.path(), "postgres://nobody@127.0.0.1:9/none", "");
    let out = gate(dir.path(), &cfg, &["--window", "1h"]);
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot judge"));
    let out = gate(dir.path(), &cfg, &["--window", "soon"]);
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    // Neither mode, or both: a usage error, exit 2.
    let out = gate(dir.path(), &cfg, &[]);
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    let out = gate(dir.path(), &cfg, &["--window", "1h", "--runs", "3"]);
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    // A daemon that is not there.
    let out = gate(
        dir.path(),
        &cfg,
        &["--window", "1h", "--source", "http://127.0.0.1:9"],
    );
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
}

/// `--source`: the same verdicts from a running daemon's API as from its store, including the
/// page alerts firing in its evaluator now.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn source_asks_a_running_daemon() {
    let _serial = SERIAL.lock().await;
    use synmon::daemon::Options;
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("synmon.db").display());
    let mut runs = data_set(40, |_, _, _| {});
    // A retried slot: the first attempt failed, the retry passed — one passing run.
    let mut first = run("save_profile", 50, Outcome::Fail, 0.0);
    let mut retry = run("save_profile", 50, Outcome::Pass, 130.0);
    retry.attempt = 2;
    retry.scheduled_at = first.scheduled_at;
    first.error = Some("toast missing".into());
    runs.extend([first, retry]);
    store_with(&url, &runs).await.close().await;

    // The daemon schedules nothing (its store holds the history); the gate's config lists the
    // journeys to judge.
    let daemon_dir = dir.path().join("daemon");
    std::fs::create_dir_all(&daemon_dir).unwrap();
    let dcfg = gate_config(&daemon_dir, &url, "checks:\n  journeys: []\n");
    let d = TestDaemon::spawn_with(
        Config::load(&dcfg).unwrap(),
        Options {
            manual_evaluation: true,
            ..Options::default()
        },
        Arc::new(SystemClock),
    )
    .await;
    let source = d.base_url();
    let cfg = gate_config(dir.path(), "sqlite://unused.db", "");
    let out = tokio::task::spawn_blocking({
        let (dir, cfg, source) = (dir.path().to_path_buf(), cfg.clone(), source.clone());
        move || gate(&dir, &cfg, &["--window", "1h", "--source", &source])
    })
    .await
    .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let v = verdicts(dir.path());
    assert_eq!(
        criterion(&v, "save_profile", "samples")["value"],
        41.0,
        "{v:#}"
    );
    assert_eq!(
        criterion(&v, "save_profile", "availability")["value"],
        100.0
    );

    // The API answers the samples document itself.
    let api: Value = reqwest::get(format!("{source}/api/v1/gate?window=1h"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(api["window"], "1h");
    assert_eq!(
        api["checks"]["align_category"]["pass_latencies_ms"]
            .as_array()
            .unwrap()
            .len(),
        40
    );
    assert!(!api.to_string().contains(PASSWORD));
    let bad = reqwest::get(format!("{source}/api/v1/gate?window=soon"))
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    let absurd = reqwest::get(format!("{source}/api/v1/gate?window=99999999999999d"))
        .await
        .unwrap();
    assert_eq!(absurd.status(), 400);
    let body: Value = absurd.json().await.unwrap();
    assert_eq!(
        body["error"],
        "window: `99999999999999d` is longer than the longest allowed window (400d)"
    );

    // A page alert firing in the daemon's evaluator now.
    {
        let mut a = d.alerting().await;
        let alert: synmon::rules::eval::Alert = serde_json::from_value(json!({
            "rule": "journey_availability_burn_rate_page", "fingerprint": "f1",
            "labels": {"severity": "page", "slo": "journey_availability"},
            "phase": "firing", "active_at": now(), "fired_at": now(), "pending_ms": 0,
            "last_eval": now(), "last_true_at": now(), "healthy_streak": 0, "value": 15.0,
            "annotations": {}, "flapping": false
        }))
        .unwrap();
        a.state.alerts.insert("f1".into(), alert);
    }
    let out = tokio::task::spawn_blocking({
        let (dir, cfg) = (dir.path().to_path_buf(), cfg.clone());
        move || gate(&dir, &cfg, &["--window", "1h", "--source", &source])
    })
    .await
    .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let v = verdicts(dir.path());
    assert_eq!(criterion(&v, "alerts", "page_alerts")["verdict"], "breach");
    d.stop().await;
}

const RUNS_CHECKS: &str = r#"
  http:
    - { name: auth_health, service: auth, url: /svc/auth/healthz, expect: { status: 200, json: { /status: ok } } }
    - name: swis_preview
      service: inventory
      url: /api/t/{tenant}/swis/preview
      auth: { login: { url: /api/login, token: /token } }
"#;

/// `--runs 5` against the sandbox: everything passes; with the latency fault on the
/// align-category save, the worst of 5 runs breaches the journeys' latency SLO: exit 1.
///
/// Real Chromium on a machine that may be loaded (two cores shared with builds and other
/// browser tests): the journeys' SLO latency is set to 1.5 s here instead of the shipped 400 ms
/// (an unloaded timed run takes ~120 ms), and the fault adds 2 s to the save, so neither verdict
/// depends on the machine's load.
const RUNS_SLO_MS: u64 = 1500;
const RUNS_FAULT_MS: u64 = 2000;
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_mode_against_the_sandbox_passes_and_breaches_with_the_latency_fault() {
    let _serial = SERIAL.lock().await;
    let _b = BROWSER.lock().await;
    synmon::tls::install();
    let dir = tempfile::tempdir().unwrap();
    let sbx = sqlite_sandbox(dir.path(), PASSWORD).await;
    let db = format!("sqlite://{}", dir.path().join("rvp.db").display());
    std::fs::create_dir_all(dir.path().join("alerts")).unwrap();
    std::fs::write(
        dir.path().join("alerts/slo.yaml"),
        format!(
            "slos:\n  - name: journey_latency\n    objective: 95\n    sli:\n      latency:\n        metric: synmon.check.latency\n        match: {{ check: \"=~align_category|save_profile|feed_push\", outcome: pass }}\n        threshold_ms: {RUNS_SLO_MS}\n"
        ),
    )
    .unwrap();
    let sql = format!(
        "alerts: alerts\ndatabase:\n  url: \"{db}\"\nchecks:\n  interval: 30s\n{RUNS_CHECKS}  sql:\n    - name: feed_push_success_rate\n      metric: feed_push_success_rate\n      query: >-\n        SELECT 100.0 * sum(CASE WHEN j.job_status = 'success' THEN 1 ELSE 0 END) / NULLIF(sum(CASE WHEN j.job_status IN ('success', 'failed') THEN 1 ELSE 0 END), 0) AS value FROM feed_push_jobs j\n"
    );
    let cfg = write_config(dir.path(), &sbx.base_url(), PASSWORD, &sql);
    let run_gate = |cfg: PathBuf| {
        let dir = dir.path().to_path_buf();
        tokio::task::spawn_blocking(move || gate(&dir, &cfg, &["--runs", "5"]))
    };
    let out = run_gate(cfg.clone()).await.unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let v = verdicts(dir.path());
    for c in JOURNEYS.iter().chain(&["auth_health", "swis_preview"]) {
        assert_eq!(criterion(&v, c, "samples")["value"], 5.0, "{c}: {v:#}");
        assert_eq!(criterion(&v, c, "availability")["message"], "all 5 passed");
    }
    assert_eq!(
        criterion(&v, "feed_push_jobs", "success_rate")["verdict"],
        "pass",
        "{v:#}"
    );
    assert_eq!(criterion(&v, "alerts", "page_alerts")["verdict"], "skipped");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("fewer than 20"), "{stdout}");

    // The fault: only align_category is run (it is the journey the fault slows).
    set_faults(
        &sbx.base_url(),
        json!({"kind": "latency", "route": "/api/t/*/categories/*/mapping", "ms": RUNS_FAULT_MS}),
    )
    .await;
    let slow = write_config(
        dir.path(),
        &sbx.base_url(),
        PASSWORD,
        "alerts: alerts\nchecks:\n  journeys:\n    - name: align_category\n",
    );
    let out = run_gate(slow).await.unwrap();
    clear_faults(&sbx.base_url()).await;
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let v = verdicts(dir.path());
    let c = criterion(&v, "align_category", "p95");
    assert_eq!(c["verdict"], "breach", "{v:#}");
    assert!(c["value"].as_f64().unwrap() > RUNS_FAULT_MS as f64, "{c:#}");
    assert_eq!(c["target"], RUNS_SLO_MS as f64, "{c:#}");
    assert!(
        c["message"].as_str().unwrap().starts_with("worst run "),
        "{c:#}"
    );
    let cases = junit_cases(dir.path());
    assert!(
        cases
            .iter()
            .any(|c| c.0 == "align_category" && c.1 == "p95" && c.2 == "failure"),
        "{cases:?}"
    );
    sbx.shutdown().await;
}

/// `synmon report`: one self-contained HTML file with the three charts, the numbers, and never
/// a run's error text (it may quote what the target or a secret said).
#[tokio::test]
async fn report_writes_an_offline_html_file_with_charts() {
    let _serial = SERIAL.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("synmon.db").display());
    let runs = data_set(180, |j, m, r| {
        if j == "feed_push" && m == 42 {
            r.outcome = Outcome::Fail;
            r.error = Some(format!("login refused for password {PASSWORD}"));
        }
    });
    store_with(&url, &runs).await.close().await;
    // The repo's flag registry: the report lists its flags as of today.
    let registry = Path::new(env!("CARGO_MANIFEST_DIR")).join("flags/flag_registry.yaml");
    let cfg = gate_config(
        dir.path(),
        &url,
        &format!("flags:\n  files: [\"{}\"]\n", registry.display()),
    );
    let out_dir = dir.path().join("out");
    let out = Command::new(env!("CARGO_BIN_EXE_synmon"))
        .args(["report", "--since", "7d", "--out"])
        .arg(&out_dir)
        .arg("--config")
        .arg(&cfg)
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let html = std::fs::read_to_string(out_dir.join("index.html")).unwrap();
    assert_eq!(html.matches("<svg").count(), 3, "p95, availability, budget");
    for j in JOURNEYS {
        assert!(html.contains(&format!("<td>{j}</td>")), "{j}");
    }
    assert!(html.contains("p95 latency per journey"));
    assert!(html.contains("Error budget remaining"));
    assert!(!html.contains("<script") && !html.contains("src=") && !html.contains("href="));
    assert!(!html.contains(PASSWORD), "no secret in the report");
    // feed_push: 1 failure in 180 runs.
    assert!(
        html.contains("<tr><td>feed_push</td><td>180</td><td>1</td>"),
        "{html}"
    );
    // The flags still in the code, soonest expiry first, each with what the policy asks.
    assert!(html.contains("<h2>Feature flags</h2>"), "{html}");
    let order: Vec<usize> = [
        "FF_FEED_ALIGNMENT_ENFORCE",
        "FF_CATEGORY_MANAGEMENT_PAGE",
        "FF_GOOGLE_CONNECT_SUITE",
        "FF_CATEGORY_QUICK_ACTIONS",
    ]
    .iter()
    .map(|k| {
        html.find(&format!("<tr><td>{k}</td><td>"))
            .unwrap_or_else(|| panic!("{k} not listed: {html}"))
    })
    .collect();
    assert!(order.is_sorted(), "soonest expiry first: {order:?}");
    assert!(
        html.contains("<tr><td>FF_FEED_ALIGNMENT_ENFORCE</td><td>api_team</td><td>active</td><td>2026-01-15</td>"),
        "{html}"
    );

    let bad = Command::new(env!("CARGO_BIN_EXE_synmon"))
        .args(["report", "--since", "soon", "--out"])
        .arg(&out_dir)
        .arg("--config")
        .arg(&cfg)
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2), "{}", describe(&bad));
}

/// The gate's narrow store read (`Store::gate_runs`) gives the same samples as judging every
/// run point, on both dialects: retried slots once, cancelled runs never, errors apart.
#[tokio::test]
async fn the_narrow_gate_query_matches_whole_run_points_on_sqlite_and_postgres() {
    let _serial = SERIAL.lock().await;
    let mut runs = data_set(30, |j, m, r| match (j, m % 7) {
        ("save_profile", 3) => r.outcome = Outcome::Error,
        ("feed_push", 5) => r.cancelled = true,
        ("align_category", 2) => r.outcome = Outcome::Fail,
        _ => {}
    });
    // Retried slots: fail then pass; error then fail (attempt 2 counts).
    for (check, second) in [
        ("align_category", Outcome::Pass),
        ("save_profile", Outcome::Fail),
    ] {
        let mut first = run(check, 45, Outcome::Fail, 0.0);
        if second == Outcome::Fail {
            first.outcome = Outcome::Error;
        }
        let mut retry = run(check, 45, second, 140.0);
        retry.attempt = 2;
        retry.scheduled_at = first.scheduled_at;
        retry.started_at = first.started_at + chrono::Duration::seconds(5);
        runs.extend([first, retry]);
    }
    // Inside a maintenance window: feed_push minutes 10 to 14 (minute 12 was cancelled) and
    // both attempts of align_category's retried slot.
    let runs: Vec<StoredRun> = runs
        .into_iter()
        .enumerate()
        .map(|(i, run)| {
            let marked = (i / 30 == 2 && (10..=14).contains(&(i % 30))) || i == 90 || i == 91;
            StoredRun {
                maintenance: marked.then(|| "window".to_string()),
                run,
            }
        })
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let pg = TempPg::create().await;
    for url in [
        format!("sqlite://{}", dir.path().join("s.db").display()),
        pg.url.clone(),
    ] {
        let store = store_with(&url, &runs).await;
        let since = now() - chrono::Duration::hours(1);
        let until = now();
        let mut narrow =
            synmon::gate::samples::from_gate_runs(store.gate_runs(since, until).await.unwrap());
        let mut whole =
            synmon::gate::samples::from_points(&store.run_points_since(since).await.unwrap());
        for s in narrow.values_mut().chain(whole.values_mut()) {
            s.pass_latencies_ms.sort_by(f64::total_cmp);
        }
        assert_eq!(narrow, whole, "{url}");
        let a = &narrow["align_category"];
        assert_eq!(
            (a.pass(), a.fail, a.error, a.maintenance_runs),
            (26, 4, 0, 1),
            "{url}: {a:?}"
        );
        let s = &narrow["save_profile"];
        assert_eq!((s.pass(), s.fail, s.error), (26, 1, 4), "{url}: {s:?}");
        let f = &narrow["feed_push"];
        assert_eq!((f.judged(), f.maintenance_runs), (30 - 4 - 4, 4), "{url}");
        store.close().await;
    }
    pg.drop_db().await;
}

/// `--source` against a daemon that requires `server.auth_token`: refused (401, cannot judge)
/// without the token, answered with it from `SYNMON_SOURCE_TOKEN`; the token never printed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn source_sends_the_daemons_auth_token() {
    let _serial = SERIAL.lock().await;
    use synmon::daemon::Options;
    const TOKEN: &str = "gate-source-token-0123456789";
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("synmon.db").display());
    store_with(&url, &data_set(40, |_, _, _| {}))
        .await
        .close()
        .await;
    let daemon_dir = dir.path().join("daemon");
    std::fs::create_dir_all(&daemon_dir).unwrap();
    let dcfg = gate_config(
        &daemon_dir,
        &url,
        &format!("server:\n  auth_token: \"{TOKEN}\"\nchecks:\n  journeys: []\n"),
    );
    let d = TestDaemon::spawn_with(
        Config::load(&dcfg).unwrap(),
        Options {
            manual_evaluation: true,
            ..Options::default()
        },
        Arc::new(SystemClock),
    )
    .await;
    let source = d.base_url();
    let cfg = gate_config(dir.path(), "sqlite://unused.db", "");
    let run = |token: Option<&'static str>| {
        let (dir, cfg, source) = (dir.path().to_path_buf(), cfg.clone(), source.clone());
        tokio::task::spawn_blocking(move || {
            let mut c = Command::new(env!("CARGO_BIN_EXE_synmon"));
            c.args(["gate", "--window", "1h", "--source", &source, "--config"])
                .arg(&cfg)
                .arg("--reports-dir")
                .arg(dir.join("reports"))
                .env_remove("RUST_LOG")
                .env_remove("SYNMON_SOURCE_TOKEN");
            if let Some(t) = token {
                c.env("SYNMON_SOURCE_TOKEN", t);
            }
            c.output().expect("run synmon gate")
        })
    };
    let refused = run(None).await.unwrap();
    assert_eq!(refused.status.code(), Some(2), "{}", describe(&refused));
    assert!(describe(&refused).contains("401"), "{}", describe(&refused));
    let ok = run(Some(TOKEN)).await.unwrap();
    assert_eq!(ok.status.code(), Some(0), "{}", describe(&ok));
    assert!(!describe(&ok).contains(TOKEN) && !describe(&refused).contains(TOKEN));
    d.stop().await;
}
