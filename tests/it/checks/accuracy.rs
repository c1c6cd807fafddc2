//! In-page timing against the page's own truth, in real Chromium: a same-document click and a
//! form submit that redirects to a new document, 50 runs each through `Runner::run`, pooled
//! browsers with a fresh context per run (the default).
//!
//! The truth is what the page itself records: `performance.now()` in a capture-phase `click`
//! listener (the first script to see the click) and right after it shows the awaited result.
//! For the submit, both ends are epoch-anchored (`performance.timeOrigin + performance.now()`)
//! and the old document hands its start to the new one in `sessionStorage`. Each page posts its
//! truth to the test server, which keeps them in order.

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::State;
use axum::response::{Html, Redirect};
use axum::routing::{get, post};
use synmon::Outcome;
use synmon::journey::{RunResult, Timing};
use synmon::settings::Config;

use crate::support::*;

const RUNS: usize = 50;

/// The result appears 30 ms after the click (a handler doing work), then the truth is taken.
const CLICK_PAGE: &str = r#"<!doctype html><html><body>
<button id="go">Go</button>
<script>
// Posted in a later task: nothing but the result's insertion runs between it and the truth.
function post(v) { setTimeout(function () { fetch('/truth', { method: 'POST', body: String(v) }); }, 0); }
var t0 = null;
document.addEventListener('click', function () { t0 = performance.now(); }, true);
document.getElementById('go').addEventListener('click', function () {
  setTimeout(function () {
    var d = document.createElement('div'); d.id = 'result'; d.textContent = 'done';
    document.body.appendChild(d);
    var t1 = performance.now();
    post(t1 - t0);
  }, 30);
});
</script></body></html>"#;

const FORM_PAGE: &str = r#"<!doctype html><html><body>
<form method="post" action="/submit"><input name="q" value="x"><button id="send">Send</button></form>
<script>
document.addEventListener('click', function () {
  sessionStorage.setItem('t0', String(performance.timeOrigin + performance.now()));
}, true);
</script></body></html>"#;

/// A link whose page works 40 ms after the click before it navigates (in a later task, as an
/// app that saves first does). The start of the action then lies well before the navigation's
/// own: a start that never reached the runner would read ~40 ms short.
const LATE_PAGE: &str = r#"<!doctype html><html><body>
<a id="late" href="/done/L1">Continue</a>
<script>
document.addEventListener('click', function () {
  sessionStorage.setItem('t0', String(performance.timeOrigin + performance.now()));
}, true);
document.getElementById('late').addEventListener('click', function (e) {
  e.preventDefault();
  var href = e.currentTarget.href;
  setTimeout(function () { location.assign(href); }, 40);
});
</script></body></html>"#;

/// The confirmation shows 20 ms after the new document's scripts run.
const DONE_PAGE: &str = r#"<!doctype html><html><body>
<script>
// Read first: a document's first sessionStorage access may wait for the browser process.
var t0 = Number(sessionStorage.getItem('t0'));
function post(v) { setTimeout(function () { fetch('/truth', { method: 'POST', body: String(v) }); }, 0); }
setTimeout(function () {
  var d = document.createElement('div'); d.id = 'ok'; d.textContent = 'Order placed';
  document.body.appendChild(d);
  var t1 = performance.timeOrigin + performance.now();
  post(t1 - t0);
}, 20);
</script></body></html>"#;

/// The truths the pages posted, in order, and a wake-up for each.
#[derive(Default)]
struct Posted {
    values: Mutex<Vec<f64>>,
    arrived: tokio::sync::Notify,
}

type Truths = Arc<Posted>;

/// Waits until the page's truth of run `i` has arrived.
async fn truth_of(t: &Posted, i: usize) -> f64 {
    let wait = async {
        loop {
            let arrived = t.arrived.notified();
            if let Some(v) = t.values.lock().unwrap().get(i) {
                return *v;
            }
            arrived.await;
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(5), wait)
        .await
        .unwrap_or_else(|_| panic!("run {i}: the page never posted its truth"))
}

async fn pages() -> (String, Truths) {
    let truths: Truths = Arc::default();
    let app = Router::new()
        .route("/click", get(|| async { Html(CLICK_PAGE) }))
        .route("/form", get(|| async { Html(FORM_PAGE) }))
        .route("/late", get(|| async { Html(LATE_PAGE) }))
        // Post/redirect/get, as a real form does.
        .route("/submit", post(|| async { Redirect::to("/done/R123") }))
        .route("/done/{id}", get(|| async { Html(DONE_PAGE) }))
        .route(
            "/truth",
            post(|State(t): State<Truths>, body: String| async move {
                if let Ok(v) = body.parse::<f64>() {
                    t.values.lock().unwrap().push(v);
                    t.arrived.notify_waiters();
                }
            }),
        )
        .with_state(truths.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    (format!("http://{addr}"), truths)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

fn describe(r: &RunResult) -> String {
    serde_json::to_string_pretty(r).unwrap()
}

/// Runs `journey` `runs` times; returns (measured - truth) per run.
async fn errors(journey: &str, step: &str, timing: Timing, runs: usize) -> Vec<f64> {
    let (base_url, truths) = pages().await;
    let dir = tempfile::tempdir().unwrap();
    let jdir = dir.path().join("journeys");
    std::fs::create_dir_all(&jdir).unwrap();
    std::fs::write(
        jdir.join("click.yaml"),
        "name: click\nsteps:\n  - goto: /click\n  - click: \"#go\"\n    name: go\n    until: { selector: \"#result\" }\n",
    )
    .unwrap();
    std::fs::write(
        jdir.join("submit.yaml"),
        "name: submit\nsteps:\n  - goto: /form\n  - click: \"#send\"\n    name: send\n    until: { selector: \"#ok\", text: \"Order placed\" }\n",
    )
    .unwrap();
    std::fs::write(
        jdir.join("late.yaml"),
        "name: late\nsteps:\n  - goto: /late\n  - click: \"#late\"\n    name: continue\n    until: { selector: \"#ok\", text: \"Order placed\" }\n",
    )
    .unwrap();
    let file = dir.path().join("synmon.yaml");
    std::fs::write(
        &file,
        format!(
            "targets:\n  pages:\n    base_url: \"{base_url}\"\ntenant: t\ncredentials:\n  username: u\n  password: pass-word\njourneys: journeys\nartifacts: artifacts\nwebdriver:\n  sessions: 1\n"
        ),
    )
    .unwrap();
    let cfg = Config::load(&file).unwrap();
    let target = cfg.target(None).unwrap().clone();
    let (runner, driver) = runner(cfg.clone());
    let j = cfg.journey(journey).unwrap();
    let mut errs = Vec::new();
    for i in 0..runs {
        let r = runner.run(&j, &target).await;
        assert_eq!(r.outcome, Outcome::Pass, "run {i}: {}", describe(&r));
        let s = r.steps.iter().find(|s| s.name == step).unwrap();
        assert_eq!(s.timing, timing, "run {i}: {}", describe(&r));
        errs.push(s.latency_ms - truth_of(&truths, i).await);
    }
    driver.shutdown().await;
    errs
}

/// The median error must be within 5 ms. The p95 goal (<= 10 ms) is printed here and held in
/// the benchmark (`cargo bench --bench journey`, BENCHMARKS.md) on a quiet machine: under the
/// test suite's own load (other tests compile, run browsers and processes on 2 cores) a few
/// runs in 50 are descheduled for tens of milliseconds, which says nothing about the timing.
fn assert_accurate(what: &str, errs: &[f64]) {
    let mut abs: Vec<f64> = errs.iter().map(|e| e.abs()).collect();
    abs.sort_by(f64::total_cmp);
    let (median, p95) = (percentile(&abs, 0.5), percentile(&abs, 0.95));
    eprintln!(
        "{what}: |error| median {median:.2} ms, p95 {p95:.2} ms, max {:.2} ms",
        abs[abs.len() - 1]
    );
    assert!(
        median <= 5.0,
        "{what}: |measured - truth| median {median:.2} ms (<= 5), p95 {p95:.2} ms: {errs:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_same_document_click_reads_within_5_ms_of_the_page_truth_at_the_median() {
    let _b = BROWSER.lock().await;
    let errs = errors("click", "go", Timing::InPage, RUNS).await;
    assert_accurate("same-document click", &errs);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_submit_that_redirects_reads_within_5_ms_of_the_page_truth_at_the_median() {
    let _b = BROWSER.lock().await;
    let errs = errors("submit", "send", Timing::InPageNavigation, RUNS).await;
    assert_accurate("cross-document submit", &errs);
}

/// The start of an action that navigates crosses to the runner on the page channel when the
/// old document is about to go (the `navigate` event, or `pagehide`), not after every click.
/// Here the page navigates 40 ms after the click, from a later task: timed from the click, to
/// the new document's confirmation (a start lost on the way would read ~40 ms short).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_click_whose_page_navigates_later_is_timed_from_the_click() {
    let _b = BROWSER.lock().await;
    let errs = errors("late", "continue", Timing::InPageNavigation, 10).await;
    assert_accurate("navigation 40 ms after the click", &errs);
}
