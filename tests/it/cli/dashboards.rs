//! Dashboards as code: lint names each mistake with file and JSON path; `render --grafana`
//! writes valid Grafana JSON whose every metric is on a real daemon's `/metrics`; push against
//! the fake Datadog creates, then updates, never duplicates, and honours 429 `Retry-After`.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use synmon::config::Secret;
use synmon::dashboards::{ApiError, DatadogClient, Sleeper};
use synmon::settings::Config;

use crate::fakes::datadog::{self as fake_datadog, FakeDatadog};
use crate::support::*;

const PASSWORD: &str = "synthetic-demo";

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// A config in `dir` with a copy of the repo's dashboards, and `extra` YAML.
fn project(dir: &Path, extra: &str) -> PathBuf {
    let dash = dir.join("dashboards");
    std::fs::create_dir_all(&dash).unwrap();
    for f in std::fs::read_dir(repo().join("dashboards")).unwrap() {
        let f = f.unwrap().path();
        std::fs::copy(&f, dash.join(f.file_name().unwrap())).unwrap();
    }
    write_config(
        dir,
        "http://127.0.0.1:9",
        PASSWORD,
        &format!("dashboards: dashboards\n{extra}"),
    )
}

fn edit(file: &Path, f: impl FnOnce(&mut Value)) {
    let mut v: Value = serde_json::from_str(&std::fs::read_to_string(file).unwrap()).unwrap();
    f(&mut v);
    std::fs::write(file, serde_json::to_string_pretty(&v).unwrap()).unwrap();
}

struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

async fn synmon(dir: &Path, args: &[&str]) -> Out {
    let o = tokio::process::Command::new(env!("CARGO_BIN_EXE_synmon"))
        .args(args)
        .current_dir(dir)
        .env_remove("RUST_LOG")
        .output()
        .await
        .expect("run synmon");
    Out {
        code: o.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

#[tokio::test]
async fn the_repo_dashboards_lint_clean() {
    let out = synmon(
        repo(),
        &["dashboards", "lint", "--config", "synmon.example.yaml"],
    )
    .await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(
        out.stdout,
        "dashboards: ok (4 dashboards: API Performance, Category Alignment, Feed Push Jobs, synmon Journeys)\n"
    );
}

#[tokio::test]
async fn lint_and_check_catch_a_misspelled_metric_a_wrong_widget_type_and_a_missing_field() {
    let dir = tempfile::tempdir().unwrap();
    project(dir.path(), "");
    let d = dir.path().join("dashboards");
    edit(&d.join("feed-push-jobs.json"), |v| {
        let q = &mut v["widgets"][0]["definition"]["requests"][0]["queries"][0]["query"];
        assert_eq!(q, "avg:feed_push_success_rate{$env}");
        *q = json!("avg:feed_push_sucess_rate{$env}");
        v["widgets"][3]["definition"]["type"] = json!("time_series");
    });
    edit(&d.join("category-alignment.json"), |v| {
        v.as_object_mut().unwrap().remove("layout_type");
    });
    edit(&d.join("api-performance.json"), |v| {
        v["widgets"][1]["definition"]["requests"][0]
            .as_object_mut()
            .unwrap()
            .remove("formulas");
    });
    let want = [
        "dashboards/api-performance.json: $.widgets[1].definition.requests[0]: missing required field `formulas`",
        "dashboards/category-alignment.json: $: missing required field `layout_type`",
        "dashboards/feed-push-jobs.json: $.widgets[3].definition.type: unknown widget type `time_series` (did you mean timeseries? supported: timeseries, query_value, toplist, distribution, heatmap, note, group)",
        "dashboards/feed-push-jobs.json: $.widgets[0].definition.requests[0].queries[0].query: unknown metric feed_push_sucess_rate (did you mean feed_push_success_rate?)",
        "4 error(s) in dashboards",
    ];
    let lint = synmon(dir.path(), &["dashboards", "lint"]).await;
    assert_eq!(lint.code, 1, "{}", lint.stderr);
    assert_eq!(lint.stderr.lines().collect::<Vec<_>>(), want);
    assert_eq!(lint.stdout, "");
    // `synmon check` runs the same lint and calls the configuration invalid.
    let check = synmon(dir.path(), &["check"]).await;
    assert_eq!(check.code, 2, "{}", check.stderr);
    assert_eq!(check.stderr.lines().collect::<Vec<_>>(), want);
}

/// PromQL aggregation operators (`sum by (x) (...)` puts a `by` between name and parenthesis).
const AGGREGATIONS: &[&str] = &[
    "sum",
    "avg",
    "min",
    "max",
    "count",
    "topk",
    "bottomk",
    "quantile",
    "stddev",
    "stdvar",
    "group",
    "count_values",
];

/// Metric names a PromQL expression reads (label matchers, grouping labels, ranges, strings
/// and function names left out).
fn promql_metrics(expr: &str) -> Vec<String> {
    let mut out = Vec::new();
    let b = expr.as_bytes();
    let mut i = 0;
    let mut after_by = false;
    while i < b.len() {
        let c = b[i] as char;
        match c {
            '{' | '[' | '"' => {
                let close = match c {
                    '{' => '}',
                    '[' => ']',
                    _ => '"',
                };
                i += 1;
                while i < b.len() && b[i] as char != close {
                    if b[i] == b'"' && close == '}' {
                        i += 1;
                        while i < b.len() && b[i] != b'"' {
                            i += 1;
                        }
                    }
                    i += 1;
                }
                i += 1;
            }
            '(' if after_by => {
                while i < b.len() && b[i] != b')' {
                    i += 1;
                }
                after_by = false;
                i += 1;
            }
            c if c.is_ascii_alphabetic() || c == '_' => {
                let s = i;
                while i < b.len()
                    && ((b[i] as char).is_ascii_alphanumeric() || b[i] == b'_' || b[i] == b':')
                {
                    i += 1;
                }
                let word = &expr[s..i];
                let mut j = i;
                while j < b.len() && b[j] == b' ' {
                    j += 1;
                }
                if matches!(word, "by" | "without") {
                    after_by = true;
                } else if AGGREGATIONS.contains(&word) || (j < b.len() && b[j] == b'(') {
                    // a function or aggregation
                } else {
                    out.push(word.to_string());
                }
            }
            _ => i += 1,
        }
    }
    out
}

#[test]
fn promql_metric_extraction() {
    assert_eq!(
        promql_metrics(
            "100 * (sum by (check) (increase(a_total{outcome=\"pa}ss\"}[$__rate_interval]))) / topk(10, max by (x, y) (b{quantile=\"0.95\"}))"
        ),
        vec!["a_total", "b"]
    );
}

/// The names of every sample on a Prometheus text page.
fn exposed(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| l.split(['{', ' ']).next().unwrap().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn render_grafana_is_valid_grafana_json_and_every_metric_is_on_a_real_daemons_metrics() {
    synmon::tls::install();
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("grafana");

    // Render the repo's dashboards with the shipped example config.
    let r = synmon(
        repo(),
        &[
            "dashboards",
            "render",
            "--config",
            "synmon.example.yaml",
            "--grafana",
            out_dir.to_str().unwrap(),
        ],
    )
    .await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(
        r.stdout,
        format!("4 Grafana dashboard(s) written to {}\n", out_dir.display())
    );

    let mut used: BTreeSet<String> = BTreeSet::new();
    let mut files: Vec<PathBuf> = std::fs::read_dir(&out_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    let names: Vec<String> = files
        .iter()
        .map(|f| f.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        names,
        [
            "api-performance.json",
            "category-alignment.json",
            "feed-push-jobs.json",
            "synmon-journeys.json"
        ]
    );
    for f in &files {
        let g: Value = serde_json::from_str(&std::fs::read_to_string(f).unwrap())
            .unwrap_or_else(|e| panic!("{}: not JSON: {e}", f.display()));
        let ctx = f.display().to_string();
        assert!(g["title"].as_str().is_some_and(|t| !t.is_empty()), "{ctx}");
        assert!(g["uid"].as_str().is_some_and(|u| u.len() <= 40), "{ctx}");
        assert!(
            g["schemaVersion"].as_u64().is_some_and(|v| v >= 30),
            "{ctx}"
        );
        let panels = g["panels"].as_array().expect("panels");
        assert!(!panels.is_empty(), "{ctx}");
        let mut ids = BTreeSet::new();
        for p in panels {
            let ty = p["type"].as_str().expect("panel type");
            assert!(
                ["timeseries", "stat", "bargauge", "heatmap", "text", "row"].contains(&ty),
                "{ctx}: {ty}"
            );
            assert!(
                ids.insert(p["id"].as_u64().expect("panel id")),
                "{ctx}: duplicate id"
            );
            let pos = &p["gridPos"];
            for k in ["x", "y", "w", "h"] {
                assert!(pos[k].as_u64().is_some(), "{ctx}: gridPos.{k} in {p}");
            }
            assert!(
                pos["x"].as_u64().unwrap() + pos["w"].as_u64().unwrap() <= 24,
                "{ctx}"
            );
            if ty == "row" || ty == "text" {
                continue;
            }
            assert_eq!(p["datasource"]["type"], "prometheus", "{ctx}");
            let targets = p["targets"].as_array().expect("targets");
            assert!(!targets.is_empty(), "{ctx}: {p}");
            for t in targets {
                let expr = t["expr"].as_str().expect("targets[].expr");
                assert!(!expr.is_empty() && t["refId"].as_str().is_some(), "{ctx}");
                let metrics = promql_metrics(expr);
                assert!(!metrics.is_empty(), "{ctx}: no metric in {expr}");
                used.extend(metrics);
            }
        }
    }
    // Targets were converted to base units: the feed push target 95% is 0.95.
    let feed: Value = serde_json::from_str(
        &std::fs::read_to_string(out_dir.join("feed-push-jobs.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(
        feed["panels"][0]["targets"][0]["expr"],
        "avg (feed_push_success_ratio)"
    );
    assert_eq!(
        feed["panels"][0]["fieldConfig"]["defaults"]["thresholds"]["steps"][1],
        json!({"color": "green", "value": 0.95})
    );
    assert_eq!(
        feed["panels"][0]["fieldConfig"]["defaults"]["unit"],
        "percentunit"
    );

    // A real daemon with the shipped config's HTTP and SQL checks against the sandbox (no
    // browser): one 429 route and one failing service so those counters exist too.
    let sbx = sqlite_sandbox(dir.path(), PASSWORD).await;
    set_faults(
        &sbx.base_url(),
        json!([
            {"kind": "rate_limit", "route": "/svc/integrations/*"},
            {"kind": "error", "route": "/svc/business_profile/*", "rate": 1.0, "status": 503}
        ]),
    )
    .await;
    let env: HashMap<String, String> = HashMap::from([
        ("RVP_STAGING_URL".into(), sbx.base_url()),
        (
            "RVP_DATABASE_URL".into(),
            format!("sqlite://{}", dir.path().join("rvp.db").display()),
        ),
        (
            "SYNMON_STORE_URL".into(),
            format!("sqlite://{}", dir.path().join("synmon.db").display()),
        ),
    ]);
    let mut cfg = Config::load_with_env(&repo().join("synmon.example.yaml"), &env).unwrap();
    cfg.checks.journeys.clear();
    cfg.artifacts_dir = dir.path().join("artifacts");
    for h in &mut cfg.checks.http {
        // Retries of the failing routes end within 4 s instead of the 30 s interval.
        h.schedule.timeout = Duration::from_secs(4);
        h.schedule.retry = None;
    }
    let want: Vec<String> = synmon::daemon::check_specs(&cfg)
        .into_iter()
        .map(|s| s.name)
        .collect();
    let d = TestDaemon::spawn(cfg).await;
    eventually(
        "a run of every check",
        Duration::from_secs(60),
        async || {
            let last = d.last_runs();
            let missing: Vec<&String> = want.iter().filter(|n| !last.contains_key(*n)).collect();
            missing.is_empty().then_some(())
        },
    )
    .await;
    d.evaluate_now().await; // exports the SLO gauges
    let text = reqwest::get(format!("http://{}/metrics", d.addr()))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let on_metrics = exposed(&text);
    let missing: Vec<&String> = used.iter().filter(|m| !on_metrics.contains(*m)).collect();
    assert!(
        missing.is_empty(),
        "the Grafana dashboards read metrics /metrics does not serve: {missing:?}\n/metrics has {on_metrics:?}"
    );
    d.stop().await;
    sbx.shutdown().await;
}

fn datadog_section(url: &str, api: &str, app: &str) -> String {
    format!("datadog:\n  api_url: \"{url}\"\n  api_key: \"{api}\"\n  app_key: \"{app}\"\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_creates_then_updates_and_never_duplicates() {
    let dd = FakeDatadog::start().await;
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    project(
        p,
        &datadog_section(&dd.url, fake_datadog::API_KEY, fake_datadog::APP_KEY),
    );

    // Nothing on Datadog yet: diff lists four creations and exits 1.
    let diff = synmon(p, &["dashboards", "diff"]).await;
    assert_eq!(diff.code, 1, "{}", diff.stderr);
    assert_eq!(
        diff.stdout.lines().collect::<Vec<_>>(),
        [
            "dashboards/api-performance.json: \"API Performance\": create (new dashboard, 6 widgets)",
            "dashboards/category-alignment.json: \"Category Alignment\": create (new dashboard, 8 widgets)",
            "dashboards/feed-push-jobs.json: \"Feed Push Jobs\": create (new dashboard, 8 widgets)",
            "dashboards/synmon-journeys.json: \"synmon Journeys\": create (new dashboard, 3 widgets)",
        ]
    );
    assert_eq!(dd.seen("POST"), 0, "diff never writes");

    let push = synmon(p, &["dashboards", "push"]).await;
    assert_eq!(push.code, 0, "{}", push.stderr);
    assert!(
        push.stdout
            .ends_with("4 created, 0 updated, 0 unchanged, 0 refused\n"),
        "{}",
        push.stdout
    );
    assert_eq!(dd.count(), 4);
    assert_eq!(dd.seen("POST"), 4);

    // Datadog's own fields (ids, author, widget ids) are not differences: in sync.
    let diff = synmon(p, &["dashboards", "diff"]).await;
    assert_eq!(diff.code, 0, "{}", diff.stdout);
    assert!(
        diff.stdout.lines().all(|l| l.ends_with("unchanged")),
        "{}",
        diff.stdout
    );
    let again = synmon(p, &["dashboards", "push"]).await;
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert!(
        again
            .stdout
            .ends_with("0 created, 0 updated, 4 unchanged, 0 refused\n"),
        "{}",
        again.stdout
    );
    assert_eq!((dd.count(), dd.seen("POST"), dd.seen("PUT")), (4, 4, 0));

    // Change one widget title: diff shows it, a dry run sends nothing, push updates in place.
    edit(&p.join("dashboards/feed-push-jobs.json"), |v| {
        v["widgets"][1]["definition"]["title"] = json!("Job queue depth (page > 1000)");
    });
    let diff = synmon(p, &["dashboards", "diff"]).await;
    assert_eq!(diff.code, 1);
    assert!(
        diff.stdout.contains(
            "dashboards/feed-push-jobs.json: \"Feed Push Jobs\" (abc-003-xyz): update, 1 change(s)\n  ~ $.widgets[1].definition.title: \"Job queue depth (alert > 1000)\" -> \"Job queue depth (page > 1000)\"\n"
        ),
        "{}",
        diff.stdout
    );
    let dry = synmon(p, &["dashboards", "push", "--dry-run"]).await;
    assert_eq!(dry.code, 0, "{}", dry.stderr);
    assert!(
        dry.stdout.contains("~ $.widgets[1].definition.title"),
        "{}",
        dry.stdout
    );
    assert!(
        dry.stdout
            .ends_with("dry run: 1 dashboard(s) would change; nothing sent\n")
    );
    assert_eq!(dd.seen("PUT"), 0);
    let push = synmon(p, &["dashboards", "push"]).await;
    assert_eq!(push.code, 0, "{}", push.stderr);
    assert!(
        push.stdout
            .ends_with("0 created, 1 updated, 3 unchanged, 0 refused\n"),
        "{}",
        push.stdout
    );
    assert_eq!((dd.count(), dd.seen("POST"), dd.seen("PUT")), (4, 4, 1));
    let stored = dd.by_title("Feed Push Jobs");
    assert_eq!(stored.len(), 1, "no duplicate dashboard");
    assert_eq!(
        stored[0]["widgets"][1]["definition"]["title"],
        "Job queue depth (page > 1000)"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_with_wrong_or_missing_keys_is_refused_without_printing_them() {
    let dd = FakeDatadog::start().await;
    let dir = tempfile::tempdir().unwrap();
    let wrong_key = "wrong-app-key-5ec2e7";
    project(
        dir.path(),
        &datadog_section(&dd.url, fake_datadog::API_KEY, wrong_key),
    );
    let push = synmon(dir.path(), &["dashboards", "push"]).await;
    assert_eq!(push.code, 1, "{}", push.stderr);
    assert!(push.stderr.contains("403 Forbidden"), "{}", push.stderr);
    for text in [&push.stdout, &push.stderr] {
        assert!(!text.contains(wrong_key) && !text.contains(fake_datadog::API_KEY));
    }
    assert_eq!(dd.count(), 0);
    let diff = synmon(dir.path(), &["dashboards", "diff"]).await;
    assert_eq!(diff.code, 2, "diff cannot compare: {}", diff.stderr);

    let empty = tempfile::tempdir().unwrap();
    project(empty.path(), &datadog_section(&dd.url, "", ""));
    let push = synmon(empty.path(), &["dashboards", "push"]).await;
    assert_eq!(push.code, 2);
    assert_eq!(
        push.stderr,
        "Datadog API keys are not set: fill `datadog.api_key` and `datadog.app_key` (e.g. from DD_API_KEY and DD_APP_KEY)\n"
    );
}

/// Records the waits instead of sleeping.
#[derive(Debug, Default)]
struct Recorder(Mutex<Vec<Duration>>);

impl Sleeper for Recorder {
    fn sleep(&self, d: Duration) -> std::pin::Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        self.0.lock().unwrap().push(d);
        Box::pin(async {})
    }
}

fn client(dd: &FakeDatadog, sleeper: Arc<Recorder>) -> DatadogClient {
    synmon::tls::install();
    DatadogClient::new(
        format!("{}/", dd.url).parse().unwrap(),
        Secret::new(fake_datadog::API_KEY),
        Secret::new(fake_datadog::APP_KEY),
        sleeper,
    )
    .unwrap()
}

#[tokio::test]
async fn a_429_is_honoured_with_its_retry_after_and_gives_up_after_five_attempts() {
    let dd = FakeDatadog::start().await;
    let sleeper = Arc::new(Recorder::default());
    let c = client(&dd, sleeper.clone());
    dd.throttle(&[7, 3]);
    let body = json!({"title": "T", "layout_type": "ordered", "widgets": []});
    let id = c.create(&body).await.expect("created after two 429s");
    assert_eq!(
        *sleeper.0.lock().unwrap(),
        [Duration::from_secs(7), Duration::from_secs(3)]
    );
    assert_eq!(dd.seen("POST"), 3);
    assert_eq!(dd.count(), 1);
    assert!(c.get(&id).await.unwrap().is_some());

    sleeper.0.lock().unwrap().clear();
    dd.throttle(&[1, 1, 1, 1, 1, 1]);
    match c.list().await {
        Err(ApiError::RateLimited { attempts, .. }) => assert_eq!(attempts, 5),
        other => panic!("expected RateLimited, got {other:?}"),
    }
    assert_eq!(sleeper.0.lock().unwrap().len(), 4);
}

#[tokio::test]
async fn the_fake_refuses_a_dashboard_without_its_required_fields() {
    let dd = FakeDatadog::start().await;
    let c = client(&dd, Arc::new(Recorder::default()));
    let err = c
        .create(&json!({"title": "T", "widgets": []}))
        .await
        .unwrap_err();
    assert!(err.is_refusal());
    assert_eq!(
        err.to_string(),
        "POST /api/v1/dashboard: Datadog answered 400 Bad Request: {\"errors\":[\"Invalid dashboard: 'layout_type' must be 'ordered' or 'free'\"]}"
    );
    assert_eq!(dd.count(), 0);
}
