//! The browser's requests carry the run's trace context to the target's origins only.
//!
//! Real Chromium through real chromedriver: the shipped `align_category` journey (its login
//! submits a form that navigates while requests are being intercepted, the case a WebDriver
//! BiDi intercept could not finish) against the sandbox, which records the `traceparent` and
//! `tracestate` of every request (`/__debug/traces`); and a journey that opens a third-party
//! page whose server records what it got.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, header};
use axum::response::IntoResponse;
use axum::routing::get;
use serde::Deserialize;
use synmon::Outcome;
use synmon::journey::RunResult;
use synmon::settings::Config;
use synmon::trace::context::{parse_trace_id, step_span_id, traceparent};

use crate::support::*;

const PASSWORD: &str = "synthetic-demo";

#[derive(Debug, Deserialize)]
struct Seen {
    method: String,
    path: String,
    traceparent: Option<String>,
    tracestate: Option<String>,
}

async fn seen(base: &str) -> Vec<Seen> {
    reqwest::get(format!("{base}/__debug/traces"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// The `traceparent` each step of `run` gives its requests, by step index.
fn step_parents(run: &RunResult) -> Vec<String> {
    let id = parse_trace_id(run.trace_id.as_deref().expect("a run has a trace id")).unwrap();
    (0..run.steps.len())
        .map(|i| traceparent(id, step_span_id(id, i)))
        .collect()
}

fn step_index(run: &RunResult, name: &str) -> usize {
    run.steps
        .iter()
        .position(|s| s.name == name)
        .unwrap_or_else(|| panic!("no step {name}"))
}

/// The config of a target at `base` whose journeys directory (in `dir`) holds only the journey
/// `name` (`yaml`).
fn with_journey(dir: &std::path::Path, base: &str, name: &str, yaml: &str) -> Config {
    let journeys = dir.join("journeys");
    std::fs::create_dir(&journeys).unwrap();
    std::fs::write(journeys.join(format!("{name}.yaml")), yaml).unwrap();
    let file = dir.join("synmon.yaml");
    std::fs::write(
        &file,
        format!(
            "targets:\n  staging:\n    base_url: \"{base}\"\ntenant: synthetic\ncredentials:\n  username: synthetic@rvp.test\n  password: \"{PASSWORD}\"\njourneys: \"{}\"\nartifacts: artifacts\n",
            journeys.display()
        ),
    )
    .unwrap();
    Config::load(&file).unwrap()
}

/// Over each way a pooled browser is spoken to and isolated: the local browser's DevTools
/// socket (the default: the interception rides on it, in the run tab's session), a kept tab
/// cleared between runs (the interception of run 1 ends, run 2's starts in the same tab), and
/// WebDriver BiDi (the tab gets a DevTools socket of its own).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_journeys_browser_requests_carry_its_trace_under_the_step_that_made_them() {
    for webdriver in [
        "",
        "webdriver:\n  isolation: clear\n",
        "webdriver:\n  local_protocol: bidi\n",
    ] {
        requests_carry_the_trace_of_their_step(webdriver).await;
    }
}

async fn requests_carry_the_trace_of_their_step(webdriver: &str) {
    let dir = tempfile::tempdir().unwrap();
    let sbx = sqlite_sandbox(dir.path(), PASSWORD).await;
    let base = sbx.base_url();
    let cfg = Config::load(&write_config(dir.path(), &base, PASSWORD, webdriver)).unwrap();
    let target = cfg.target(None).unwrap().clone();
    let journey = cfg.journey("align_category").unwrap();
    let (runner, driver) = runner(cfg.clone());
    let mut trace_ids = BTreeSet::new();
    // Twice: the second run is served by the pooled browser, in a new tab (or the tab cleared)
    // that must carry the new run's trace, never the last one's.
    for round in 0..2 {
        let before = seen(&base).await.len();
        let run = runner.run(&journey, &target).await;
        assert_eq!(run.outcome, Outcome::Pass, "{webdriver}{run:#?}");
        if round == 1 {
            assert_eq!(run.browser_reused, Some(true), "{webdriver}");
        }
        let trace_id = run.trace_id.clone().unwrap();
        assert!(trace_ids.insert(trace_id.clone()), "a new trace per run");
        let parents = step_parents(&run);
        let requests: Vec<Seen> = seen(&base).await.into_iter().skip(before).collect();
        assert!(requests.len() >= 5, "{webdriver}{requests:#?}");
        for r in &requests {
            let tp = r.traceparent.as_deref().unwrap_or_else(|| {
                panic!("{webdriver}{} {} carried no traceparent", r.method, r.path)
            });
            assert!(
                parents.iter().any(|p| p == tp),
                "{webdriver}{} {}: {tp} is not under one of the run's steps ({trace_id})",
                r.method,
                r.path
            );
            assert_eq!(
                r.tracestate.as_deref(),
                Some("synmon=c:align_category;l:local"),
                "{webdriver}{} {}",
                r.method,
                r.path
            );
        }
        // Each page load and the login's form post hang under the step that caused them: the
        // post is made by the navigating click, the categories page by `goto`.
        let under = |method: &str, path: &str| -> Vec<&str> {
            requests
                .iter()
                .filter(|r| r.method == method && r.path == path)
                .filter_map(|r| r.traceparent.as_deref())
                .collect()
        };
        assert_eq!(
            under("GET", "/login"),
            [parents[step_index(&run, "open login")].as_str()],
            "{webdriver}"
        );
        let posts = under("POST", "/login");
        assert_eq!(
            posts,
            [parents[step_index(&run, "submit login")].as_str()],
            "{webdriver}{requests:#?}"
        );
        let categories = under("GET", "/t/synthetic/categories");
        assert!(
            categories.contains(&parents[step_index(&run, "open categories")].as_str()),
            "{webdriver}{requests:#?}"
        );
    }
    driver.shutdown().await;
    sbx.shutdown().await;
}

/// A window the run's page opens belongs to the run: its requests to the target carry the
/// run's trace too, under the step that opened it (the local browser's DevTools socket sets
/// up every page of the run's context as it is attached, interception included).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_window_the_runs_page_opens_sends_the_runs_trace_too() {
    let dir = tempfile::tempdir().unwrap();
    let sbx = sqlite_sandbox(dir.path(), PASSWORD).await;
    let base = sbx.base_url();
    let cfg = with_journey(
        dir.path(),
        &base,
        "opener",
        "name: opener\nsteps:\n  - goto: /login\n  - script:\n      js: \"window.open('/healthz'); return true;\"\n    name: open a window\n  - switch_to: new_window\n  - wait_for: { selector: body }\n",
    );
    let target = cfg.target(None).unwrap().clone();
    let journey = cfg.journey("opener").unwrap();
    let (runner, driver) = runner(cfg.clone());
    for _ in 0..2 {
        let before = seen(&base).await.len();
        let run = runner.run(&journey, &target).await;
        assert_eq!(run.outcome, Outcome::Pass, "{run:#?}");
        let requests: Vec<Seen> = seen(&base).await.into_iter().skip(before).collect();
        let opened: Vec<&Seen> = requests.iter().filter(|r| r.path == "/healthz").collect();
        assert_eq!(opened.len(), 1, "{requests:#?}");
        let parents = step_parents(&run);
        assert_eq!(
            opened[0].traceparent.as_deref(),
            Some(parents[step_index(&run, "open a window")].as_str()),
            "{requests:#?}"
        );
    }
    driver.shutdown().await;
    sbx.shutdown().await;
}

/// `webdriver.trace_requests: false`: the tab's requests reach the target without synmon's
/// headers (no interception, no round trip per request), while the run keeps its trace id.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_trace_requests_off_the_browsers_requests_carry_no_trace_but_the_run_keeps_its_id() {
    let dir = tempfile::tempdir().unwrap();
    let sbx = sqlite_sandbox(dir.path(), PASSWORD).await;
    let base = sbx.base_url();
    let extra = "webdriver:\n  trace_requests: false\n";
    let cfg = Config::load(&write_config(dir.path(), &base, PASSWORD, extra)).unwrap();
    assert!(!cfg.webdriver.trace_requests);
    let target = cfg.target(None).unwrap().clone();
    let journey = cfg.journey("align_category").unwrap();
    let (runner, driver) = runner(cfg.clone());
    let run = runner.run(&journey, &target).await;
    assert_eq!(run.outcome, Outcome::Pass, "{run:#?}");
    assert!(run.trace_id.is_some(), "the run still has its trace id");
    let requests = seen(&base).await;
    assert!(requests.len() >= 5, "{requests:#?}");
    for r in &requests {
        assert_eq!(
            (r.traceparent.as_deref(), r.tracestate.as_deref()),
            (None, None),
            "{} {} carried trace headers",
            r.method,
            r.path
        );
    }
    driver.shutdown().await;
    sbx.shutdown().await;
}

type Log = Arc<Mutex<Vec<(String, HeaderMap)>>>;

async fn page(State(log): State<Log>, headers: HeaderMap) -> impl IntoResponse {
    log.lock().unwrap().push(("/page".into(), headers));
    (
        [(header::CONTENT_TYPE, "text/html")],
        "<!doctype html><title>third party</title><img src=\"/pixel\">\
         <script>fetch('/data').then(r => r.text()).then(t => { \
           const p = document.createElement('p'); p.id = 'done'; p.textContent = t; \
           document.body.append(p); });</script>",
    )
}

async fn pixel(State(log): State<Log>, headers: HeaderMap) -> impl IntoResponse {
    log.lock().unwrap().push(("/pixel".into(), headers));
    ([(header::CONTENT_TYPE, "image/gif")], Vec::<u8>::new())
}

async fn data(State(log): State<Log>, headers: HeaderMap) -> impl IntoResponse {
    log.lock().unwrap().push(("/data".into(), headers));
    "fetched"
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_third_party_page_and_its_requests_carry_no_trace_header() {
    let dir = tempfile::tempdir().unwrap();
    let sbx = sqlite_sandbox(dir.path(), PASSWORD).await;
    let base = sbx.base_url();
    let log: Log = Log::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let cdn: SocketAddr = listener.local_addr().unwrap();
    let app = Router::new()
        .route("/page", get(page))
        .route("/pixel", get(pixel))
        .route("/data", get(data))
        .with_state(log.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let cfg = with_journey(
        dir.path(),
        &base,
        "mixed",
        &format!(
            "name: mixed\nsteps:\n  - goto: \"http://{cdn}/page\"\n    name: third party page\n    until: {{ selector: \"#done\", text: fetched }}\n  - goto: /login\n    name: target page\n"
        ),
    );
    let target = cfg.target(None).unwrap().clone();
    let journey = cfg.journey("mixed").unwrap();
    let (runner, driver) = runner(cfg.clone());
    let before = seen(&base).await.len();
    let run = runner.run(&journey, &target).await;
    assert_eq!(run.outcome, Outcome::Pass, "{run:#?}");

    let got = std::mem::take(&mut *log.lock().unwrap());
    let paths: BTreeSet<&str> = got.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(
        paths,
        BTreeSet::from(["/page", "/pixel", "/data"]),
        "{got:?}"
    );
    for (path, h) in &got {
        assert!(h.get("traceparent").is_none(), "{path}: {h:?}");
        assert!(h.get("tracestate").is_none(), "{path}: {h:?}");
    }
    // The same run's request to the target did carry it, under its own step.
    let parents = step_parents(&run);
    let target_requests: Vec<Seen> = seen(&base).await.into_iter().skip(before).collect();
    let login: Vec<&Seen> = target_requests
        .iter()
        .filter(|r| r.path == "/login")
        .collect();
    assert_eq!(login.len(), 1, "{target_requests:#?}");
    assert_eq!(login[0].traceparent.as_deref(), Some(parents[1].as_str()));
    driver.shutdown().await;
    sbx.shutdown().await;
}
