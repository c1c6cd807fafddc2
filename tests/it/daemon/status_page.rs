//! The status page in real Chromium against a daemon running the three journeys on the sandbox:
//! states and numbers match `/api/v1/checks`; a target error containing `<script>` renders as
//! text; axe-core finds no critical or serious violation; after a fault (no toast) the page
//! updates itself without a reload, announces the change, and shows the failing step and its
//! screenshot; the run page lists steps, timings and artifacts. Without a browser:
//! `server.auth_token` guards the page, run pages, artifacts and API, and leaves probes open.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use synmon::clock::SystemClock;
use synmon::daemon::Options;
use synmon::journey::webdriver::Browser;
use synmon::settings::Config;

use crate::support::*;

const PASSWORD: &str = "synthetic-demo";
/// What the XSS target answers: markup that would run if the page did not escape it.
const XSS_BODY: &str = r#"<script>window.__xss=1</script><img src=x onerror="window.__xss=2">"#;

const RULE: &str = r#"
rules:
  - alert: journey_failing
    metric: synmon.check.runs
    match: { check: align_category, outcome: fail }
    by: [check]
    aggregate: rate
    window: 5m
    op: ">"
    threshold: 0
    severity: page
    annotations:
      summary: "{{ labels.check }} failed"
      runbook_url: https://runbooks.rvp.test/synmon/journey-failing
"#;

/// The repo's journey SLOs (alerts/slo.yaml without the 30-day time-slice uptime SLO, whose
/// evaluation alone takes seconds in a debug build and would hold the evaluator every second).
const SLOS: &str = r#"
slos:
  - name: journey_availability
    objective: 99.9
    period: 30d
    sli:
      events:
        metric: synmon.check.runs
        match: { check: "=~align_category|save_profile|feed_push" }
        good: { outcome: pass }
        total: { outcome: "=~pass|fail" }
  - name: journey_latency
    objective: 95
    sli:
      latency:
        metric: synmon.check.latency
        match: { check: "=~align_category|save_profile|feed_push", outcome: pass }
        threshold_ms: 400
"#;

/// axe-core's browser bundle, installed by `.ci/run` / `scripts/test.sh` (npm `axe-core`).
fn axe_source() -> String {
    let path = std::env::var("SYNMON_AXE_JS")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join(".ci/node/node_modules/axe-core/axe.min.js")
        });
    std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "axe-core not found at {} ({e}): run `npm ci --prefix .ci/node` (scripts/test.sh does)",
            path.display()
        )
    })
}

/// A target whose every answer is a 500 with markup in the body (it ends up in the error).
async fn xss_target() -> std::net::SocketAddr {
    let app = axum::Router::new().fallback(|| async {
        (
            axum::http::StatusCode::INTERNAL_SERVER_ERROR,
            [("content-type", "text/html")],
            XSS_BODY,
        )
    });
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    addr
}

async fn get_json(url: &str) -> Value {
    reqwest::get(url).await.unwrap().json().await.unwrap()
}

/// Waits until every check in `names` has a last run satisfying `ok`.
async fn wait_runs(d: &TestDaemon, names: &[&str], ok: impl Fn(&synmon::run::RunResult) -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    loop {
        let done = {
            let last = d.last_runs();
            names.iter().all(|n| last.get(*n).is_some_and(&ok))
        };
        if done {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "runs not there: {:#?}",
            d.last_runs()
                .values()
                .map(|r| (&r.check, r.outcome, &r.error))
                .collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Polls a page script until it returns `true`.
async fn wait_in_page(b: &Browser, script: &str, what: &str, timeout: Duration) {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if b.eval(script).await.unwrap() == json!(true) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "page never showed: {what}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// The checks table as the browser renders it.
const READ_ROWS: &str = r#"
return Array.from(document.querySelectorAll('#checks tbody tr')).map(function(tr){
  var cells = tr.querySelectorAll('td');
  return {
    check: tr.dataset.check, location: tr.dataset.location, state: tr.dataset.state,
    name: tr.querySelector('th').textContent,
    location_text: cells[0].textContent,
    badge: tr.querySelector('.state').textContent,
    p95: ['data-p95-5m', 'data-p95-1h', 'data-p95-24h'].map(function(a){ return JSON.parse(tr.getAttribute(a)); }),
    p95_text: [cells[3].textContent, cells[4].textContent, cells[5].textContent],
    availability: JSON.parse(tr.dataset.availability),
    availability_text: cells[7].textContent,
    last_text: cells[8].textContent
  };
});
"#;

fn state_of(outcome: &Value) -> &'static str {
    match outcome.as_str() {
        Some("pass") => "passing",
        Some("fail") => "failing",
        Some("error") => "probe error",
        _ => "no data",
    }
}

/// The page's checks agree with `/api/v1/checks`, value by value. Runs can land between the
/// two reads: retried until the API answers the same before and after the page.
async fn assert_page_matches_api(b: &Browser, base: &str) -> Vec<Value> {
    for _ in 0..5 {
        let before = get_json(&format!("{base}/api/v1/checks")).await;
        b.goto(&format!("{base}/"), Duration::from_secs(30))
            .await
            .unwrap();
        let rows = b.eval(READ_ROWS).await.unwrap();
        let after = get_json(&format!("{base}/api/v1/checks")).await;
        if before["checks"] != after["checks"] {
            continue;
        }
        let rows = rows.as_array().unwrap().clone();
        let api = after["checks"].as_array().unwrap();
        assert_eq!(rows.len(), api.len(), "{rows:#?}");
        for c in api {
            let name = c["name"].as_str().unwrap();
            let location = &c["location"];
            let row = rows
                .iter()
                .find(|r| r["check"] == name && r["location"] == *location)
                .unwrap_or_else(|| panic!("{name} at {location} missing from the page"));
            assert_eq!(row["name"], name);
            assert_eq!(row["location_text"], *location, "{name}");
            assert_eq!(row["state"], state_of(&c["outcome"]), "{name}");
            assert_eq!(row["badge"], state_of(&c["outcome"]), "{name}");
            for (i, w) in ["5m", "1h", "24h"].iter().enumerate() {
                let p = &c["latency_ms"][w]["p95"];
                // As numbers: JSON from the page spells 1.0 as 1.
                assert_eq!(row["p95"][i].as_f64(), p.as_f64(), "{name} p95 {w}");
                let text = row["p95_text"][i].as_str().unwrap();
                match p.as_f64() {
                    Some(v) => assert!(
                        text.starts_with(&format!("{v:.0} ms")),
                        "{name} {w}: {text}"
                    ),
                    None => assert_eq!(text, "no data"),
                }
            }
            let ratio = &c["uptime"]["24h"]["ratio"];
            assert_eq!(row["availability"].as_f64(), ratio.as_f64(), "{name}");
            if let Some(r) = ratio.as_f64() {
                let text = row["availability_text"].as_str().unwrap();
                assert!(text.starts_with(&format!("{:.2} %", r * 100.0)), "{text}");
                let counts = format!(
                    "({} pass, {} fail, {} probe error)",
                    c["uptime"]["24h"]["pass"],
                    c["uptime"]["24h"]["fail"],
                    c["uptime"]["24h"]["error"]
                );
                assert!(text.contains(&counts), "{text} vs {counts}");
            }
        }
        return rows;
    }
    panic!("the API kept changing while the page loaded");
}

/// Injects axe-core and returns the critical and serious violations of the current page.
async fn axe_violations(b: &Browser, axe: &str) -> Vec<Value> {
    let loaded = b
        .eval(&format!("{axe}\n;return typeof window.axe;"))
        .await
        .unwrap();
    assert_eq!(loaded, json!("object"), "axe-core did not load");
    let v = b
        .eval(
            "return axe.run(document, {resultTypes: ['violations']}).then(function(r){ \
               return r.violations.map(function(v){ return {id: v.id, impact: v.impact, help: v.help, \
                 nodes: v.nodes.map(function(n){ return n.html; }).slice(0, 3)}; }); });",
        )
        .await
        .unwrap();
    v.as_array()
        .unwrap()
        .iter()
        .filter(|x| matches!(x["impact"].as_str(), Some("critical" | "serious")))
        .cloned()
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_status_page_in_chromium_matches_the_api_escapes_targets_passes_axe_and_shows_a_failure()
 {
    let _b = BROWSER.lock().await;
    synmon::tls::install();
    let axe = axe_source();
    let dir = tempfile::tempdir().unwrap();
    let sbx = sqlite_sandbox(dir.path(), PASSWORD).await;
    let xss = xss_target().await;
    std::fs::create_dir_all(dir.path().join("alerts")).unwrap();
    std::fs::write(dir.path().join("alerts/journey.yaml"), RULE).unwrap();
    std::fs::write(dir.path().join("alerts/slo.yaml"), SLOS).unwrap();
    let cfg = write_config(
        dir.path(),
        &sbx.base_url(),
        PASSWORD,
        &format!(
            r#"store:
  url: sqlite://synmon.db
alerts: alerts
evaluation_interval: 1s
checks:
  interval: 30s
  timeout: 25s
  retry_on_failure: {{ count: 0 }}
  journeys:
    - name: align_category
    - name: save_profile
    - name: feed_push
  http:
    - {{ name: xss_probe, url: "http://{xss}/boom", interval: 1h, timeout: 5s }}
flags:
  files: ["{registry}"]
"#,
            registry = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("flags/flag_registry.yaml")
                .display()
        ),
    );
    // Rules are evaluated every second, as in production (the alert must show up by itself).
    let opts = Options {
        manual_evaluation: false,
        ..TestDaemon::options()
    };
    let d = TestDaemon::spawn_with(Config::load(&cfg).unwrap(), opts, Arc::new(SystemClock)).await;
    let base = d.base_url();
    let journeys = ["align_category", "save_profile", "feed_push"];
    wait_runs(&d, &journeys, |r| r.outcome == synmon::Outcome::Pass).await;
    wait_runs(&d, &["xss_probe"], |_| true).await;

    // A second session on the daemon's own chromedriver.
    let driver = d.driver();
    let endpoint = driver.endpoint().await.unwrap();
    let config = d.config();
    let b = Browser::connect(
        &endpoint,
        &config.webdriver,
        true,
        Duration::from_secs(30),
        Duration::from_secs(30),
    )
    .await
    .unwrap();

    // 1. Every check listed with its state and the API's numbers.
    let rows = assert_page_matches_api(&b, &base).await;
    for j in journeys {
        let row = rows.iter().find(|r| r["check"] == j).unwrap();
        assert_eq!(row["state"], "passing", "{row:#}");
        assert!(row["p95"][0].as_f64().is_some(), "{j} has a p95: {row:#}");
    }
    // The p95 target comes from the latency SLO (400 ms) and the charts are inline SVG.
    let charts = b
        .eval(
            "return {svgs: document.querySelectorAll('article.journey svg[role=img]').length, \
              journeys: document.querySelectorAll('article.journey').length, \
              targets: Array.from(document.querySelectorAll('#checks tbody tr')).map(function(t){return t.querySelectorAll('td')[6].textContent;}), \
              scripts: Array.from(document.scripts).map(function(s){return s.src;}), \
              budgets: Array.from(document.querySelectorAll('#slos tr[data-slo]')).map(function(t){return t.dataset.slo;})};",
        )
        .await
        .unwrap();
    assert_eq!(charts["journeys"], 3, "{charts:#}");
    assert_eq!(
        charts["svgs"], 6,
        "a 24 h p95 chart and a step chart per journey: {charts:#}"
    );
    assert!(
        charts["targets"]
            .as_array()
            .unwrap()
            .contains(&json!("< 400 ms")),
        "{charts:#}"
    );
    assert_eq!(
        charts["scripts"],
        json!([""]),
        "one inline script, nothing external"
    );
    assert_eq!(
        charts["budgets"],
        json!(["journey_availability", "journey_latency"])
    );

    // 2. The XSS probe: the target's markup is text, nothing ran, no element was created.
    let xss_row = rows.iter().find(|r| r["check"] == "xss_probe").unwrap();
    assert_eq!(xss_row["state"], "failing");
    assert!(
        xss_row["last_text"].as_str().unwrap().contains(XSS_BODY),
        "{xss_row:#}"
    );
    let xss_state = b
        .eval(
            "return {ran: window.__xss === undefined ? null : window.__xss, \
              imgs: document.querySelectorAll('img[src=x]').length, \
              injected: Array.from(document.scripts).filter(function(s){return s.textContent.indexOf('__xss')>=0;}).length, \
              failure: document.querySelector('#latest-failure pre.error').textContent};",
        )
        .await
        .unwrap();
    assert_eq!(xss_state["ran"], Value::Null, "{xss_state:#}");
    assert_eq!(xss_state["imgs"], 0);
    assert_eq!(xss_state["injected"], 0);
    assert!(
        xss_state["failure"].as_str().unwrap().contains(XSS_BODY),
        "{xss_state:#}"
    );

    // 3. axe-core: no critical or serious violation on the status page (the Flags panel
    //    included: the config carries the repo's registry).
    let flag_rows = b
        .eval("return document.querySelectorAll('#flags caption, #flags tbody tr[data-flag] th[scope=row]').length;")
        .await
        .unwrap();
    assert_eq!(flag_rows, json!(5), "a caption and 4 flags in the panel");
    let bad = axe_violations(&b, &axe).await;
    assert!(bad.is_empty(), "axe violations on /: {bad:#?}");

    // 4. A fault: the toast never shows. Without a reload, the page swaps in the new state and
    //    announces it in the live region; the latest failure shows the failing step and the
    //    screenshot.
    b.goto(&format!("{base}/"), Duration::from_secs(30))
        .await
        .unwrap();
    let passed = d.last_run("align_category").unwrap().run_id;
    set_faults(&sbx.base_url(), json!({"kind": "suppress_toast"})).await;
    wait_runs(&d, &["align_category"], |r| {
        r.run_id != passed && r.outcome == synmon::Outcome::Fail
    })
    .await;
    let failed = d.last_run("align_category").unwrap();
    let failed_step = failed.failed_step.clone().expect("a failing step");
    b.eval("window.__marker = 'same page'; return true;")
        .await
        .unwrap();
    wait_in_page(
        &b,
        "var r = document.querySelector('tr[data-check=align_category]'); return !!r && r.dataset.state === 'failing' && !!document.querySelector('li[data-alert=journey_failing]');",
        "align_category failing and its alert, by auto-refresh",
        Duration::from_secs(40),
    )
    .await;
    let after = b
        .eval(
            "var f = document.getElementById('latest-failure'); var img = f && f.querySelector('img.shot'); \
             var a = document.querySelector('li[data-alert=journey_failing]'); \
             return {marker: window.__marker, live: document.getElementById('live').textContent, \
               live_role: document.getElementById('live').getAttribute('aria-live'), \
               check: f && f.dataset.check, run: f && f.dataset.run, step: f && f.querySelector('.failed-step').textContent, \
               error: f && f.querySelector('pre.error').textContent, \
               img: img && img.getAttribute('src'), \
               alert_links: Array.from(a.querySelectorAll('a')).map(function(x){return x.getAttribute('href');})};",
        )
        .await
        .unwrap();
    assert_eq!(after["marker"], "same page", "no full reload: {after:#}");
    assert_eq!(after["live_role"], "polite");
    // save_profile shows a toast too, so it may be the newest failure, and the live region
    // holds the last refresh's changes: a refresh after align_category's may announce
    // save_profile's alone. Either journey's failure must carry its own step, error and
    // screenshot.
    let live = after["live"].as_str().unwrap();
    assert!(
        journeys
            .iter()
            .any(|j| live.contains(&format!("{j} is now failing (was passing)"))),
        "{after:#}"
    );
    let shown = after["run"].as_str().unwrap();
    let shown_run: Value = get_json(&format!("{base}/api/v1/runs/{shown}")).await;
    assert!(
        journeys.contains(&after["check"].as_str().unwrap()),
        "{after:#}"
    );
    assert_eq!(after["step"], shown_run["failed_step"], "{after:#}");
    assert_eq!(after["error"], shown_run["error"]);
    let shot = shown_run["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["kind"] == "screenshot")
        .expect("a screenshot artifact");
    assert_eq!(after["img"], shot["url"], "{after:#}");
    assert!(
        after["alert_links"]
            .as_array()
            .unwrap()
            .contains(&json!(format!("/runs/{}", failed.run_id))),
        "{after:#}"
    );
    assert!(
        after["alert_links"]
            .as_array()
            .unwrap()
            .contains(&json!("https://runbooks.rvp.test/synmon/journey-failing"))
    );
    wait_in_page(
        &b,
        "var i = document.querySelector('#latest-failure img.shot'); return !!i && i.complete && i.naturalWidth > 0;",
        "the screenshot loaded",
        Duration::from_secs(10),
    )
    .await;

    // 5. The run page: steps with timings, the failing one marked, artifacts, the screenshot.
    b.goto(
        &format!("{base}/runs/{}", failed.run_id),
        Duration::from_secs(30),
    )
    .await
    .unwrap();
    wait_in_page(
        &b,
        "var i = document.querySelector('img.shot'); return !!i && i.complete && i.naturalWidth > 0;",
        "the run page's screenshot loaded",
        Duration::from_secs(10),
    )
    .await;
    let run = b
        .eval(
            "return {outcome: document.getElementById('content').dataset.outcome, \
              steps: Array.from(document.querySelectorAll('#step-table tbody tr')).map(function(t){return {name: t.dataset.step, outcome: t.dataset.outcome, latency: t.querySelectorAll('td')[2].textContent};}), \
              artifacts: Array.from(document.querySelectorAll('#artifacts li')).map(function(l){return l.dataset.kind;}), \
              bars: document.querySelectorAll('svg[role=img] rect').length};",
        )
        .await
        .unwrap();
    assert_eq!(run["outcome"], "fail");
    let steps = run["steps"].as_array().unwrap();
    assert_eq!(steps.len(), failed.steps.len(), "{run:#}");
    assert_eq!(run["bars"], json!(failed.steps.len()));
    for (row, st) in steps.iter().zip(&failed.steps) {
        assert_eq!(row["name"], st.name.as_str());
        assert_eq!(row["outcome"], st.outcome.as_str());
        assert_eq!(row["latency"], format!("{:.1} ms", st.latency_ms));
    }
    assert!(
        steps
            .iter()
            .any(|s| s["name"] == failed_step.as_str() && s["outcome"] == "fail"),
        "{run:#}"
    );
    assert!(
        run["artifacts"]
            .as_array()
            .unwrap()
            .contains(&json!("screenshot")),
        "{run:#}"
    );
    let bad = axe_violations(&b, &axe).await;
    assert!(bad.is_empty(), "axe violations on the run page: {bad:#?}");

    // The page after the fault also passes axe (alerts and the failure section are present).
    b.goto(&format!("{base}/"), Duration::from_secs(30))
        .await
        .unwrap();
    let bad = axe_violations(&b, &axe).await;
    assert!(
        bad.is_empty(),
        "axe violations on / with a failure: {bad:#?}"
    );

    b.close().await;
    d.stop().await;
    sbx.shutdown().await;
}

/// The "Flags" panel on the injected clock: the repo's registry, the flags still in the code
/// soonest expiry first, with the days and what the policy asks that `synmon flags audit` gives
/// on the same date; no panel without a registry.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_flags_panel_lists_the_next_expiries_at_the_clocks_date() {
    synmon::tls::install();
    let dir = tempfile::tempdir().unwrap();
    let registry =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("flags/flag_registry.yaml");
    let base = "store:\n  url: sqlite://synmon.db\nchecks:\n  journeys: []\n";
    let cfg = write_config(
        dir.path(),
        "http://127.0.0.1:9",
        PASSWORD,
        &format!("{base}flags:\n  files: [\"{}\"]\n", registry.display()),
    );
    let at = chrono::DateTime::parse_from_rfc3339("2026-01-01T09:30:00Z")
        .unwrap()
        .with_timezone(&chrono::Utc);
    let d = TestDaemon::spawn_with(
        Config::load(&cfg).unwrap(),
        TestDaemon::options(),
        Arc::new(synmon::clock::ManualClock::new(at)),
    )
    .await;
    let html = reqwest::get(format!("{}/status/fragment", d.base_url()))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains(r#"<h2 id="h-flags">Flags</h2>"#), "{html}");
    assert!(html.contains("as of 2026-01-01"), "{html}");
    let rows: Vec<&str> = html
        .split("<tr data-flag=")
        .skip(1)
        .map(|r| r.split("</tr>").next().unwrap())
        .collect();
    let expected = [
        ("FF_FEED_ALIGNMENT_ENFORCE", "renew_or_remove", 14),
        ("FF_CATEGORY_MANAGEMENT_PAGE", "none", 31),
        ("FF_GOOGLE_CONNECT_SUITE", "none", 59),
        ("FF_CATEGORY_QUICK_ACTIONS", "none", 78),
    ];
    assert_eq!(rows.len(), expected.len(), "{html}");
    for (row, (key, action, days)) in rows.iter().zip(expected) {
        assert!(
            row.starts_with(&format!(
                r#""{key}" data-action="{action}" data-days="{days}">"#
            )),
            "{row}"
        );
    }
    assert!(
        rows[0].contains("<td>api_team</td><td>active</td>")
            && rows[0].contains("renew or remove: expires in 14 day(s)"),
        "{}",
        rows[0]
    );
    d.stop().await;

    // No registry, no panel.
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), "http://127.0.0.1:9", PASSWORD, base);
    let d = TestDaemon::spawn(Config::load(&cfg).unwrap()).await;
    let html = reqwest::get(format!("{}/status/fragment", d.base_url()))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!html.contains("h-flags"), "{html}");
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_auth_token_guards_pages_runs_artifacts_and_api_but_not_probes() {
    synmon::tls::install();
    let dir = tempfile::tempdir().unwrap();
    let sbx = sqlite_sandbox(dir.path(), PASSWORD).await;
    let token = format!("tok-{}", uuid::Uuid::new_v4().simple());
    std::fs::write(dir.path().join("status.token"), format!("{token}\n")).unwrap();
    let cfg = write_config(
        dir.path(),
        &sbx.base_url(),
        PASSWORD,
        "store:\n  url: sqlite://synmon.db\nserver:\n  auth_token: file:status.token\nchecks:\n  journeys: []\n  http:\n    - { name: auth_health, url: /svc/auth/healthz }\n",
    );
    let d = TestDaemon::spawn(Config::load(&cfg).unwrap()).await;
    wait_runs(&d, &["auth_health"], |_| true).await;
    let run_id = d.last_run("auth_health").unwrap().run_id;
    // Evidence files are what the token protects most: customer data can be in them.
    let art = dir.path().join("artifacts").join(&run_id);
    std::fs::create_dir_all(&art).unwrap();
    std::fs::write(art.join("screenshot.png"), b"\x89PNG fake").unwrap();

    let base = d.base_url();
    let c = reqwest::Client::new();
    let guarded = [
        "/".to_string(),
        "/status/fragment".to_string(),
        format!("/runs/{run_id}"),
        format!("/artifacts/{run_id}/screenshot.png"),
        "/api/v1/checks".to_string(),
        format!("/api/v1/runs/{run_id}"),
    ];
    for path in &guarded {
        let url = format!("{base}{path}");
        let none = c.get(&url).send().await.unwrap();
        assert_eq!(none.status(), 401, "{path} without credentials");
        let challenges: Vec<_> = none.headers().get_all("www-authenticate").iter().collect();
        assert_eq!(challenges.len(), 2, "{path}: {challenges:?}");
        let wrong = c
            .get(&url)
            .bearer_auth("not-the-token")
            .send()
            .await
            .unwrap();
        assert_eq!(wrong.status(), 401, "{path} with a wrong token");
        let ok = c.get(&url).bearer_auth(&token).send().await.unwrap();
        assert_eq!(ok.status(), 200, "{path} with the token");
        let body = ok.text().await.unwrap();
        assert!(!body.contains(&token), "{path} shows the token");
        let basic = c
            .get(&url)
            .basic_auth("ops", Some(&token))
            .send()
            .await
            .unwrap();
        assert_eq!(
            basic.status(),
            200,
            "{path} with the browser's Basic credentials"
        );
    }
    for path in ["/healthz", "/readyz", "/metrics"] {
        let r = c.get(format!("{base}{path}")).send().await.unwrap();
        assert_eq!(r.status(), 200, "{path} stays open for probes");
        assert!(!r.text().await.unwrap().contains(&token));
    }
    d.stop().await;
    sbx.shutdown().await;
}

#[test]
fn a_short_auth_token_is_a_config_error_naming_its_field() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(
        dir.path(),
        "http://127.0.0.1:9",
        PASSWORD,
        "server:\n  auth_token: short\n",
    );
    let err = Config::load(&cfg).unwrap_err().to_string();
    assert!(
        err.contains("server.auth_token: must be at least 16 characters"),
        "{err}"
    );
    assert!(
        !err.contains("short\n") && !err.contains("`short`"),
        "the value is not echoed: {err}"
    );
}
