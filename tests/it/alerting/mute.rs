//! Silences, inhibition, maintenance windows and the watchdog: control of the noise without
//! losing the signal.
//! - Alertmanager's control acceptance scenarios (`test/with_api_v2/acceptance/inhibit_test.go`,
//!   `silence_test.go`) on the notification harness of `notify/pipeline.rs` (manual clock, real
//!   SQLite store, the webhook receiver against a protocol-checking fake), exact counts:
//!   TestInhibiting, TestSilencing, TestSilenceDelete.
//! - The silence API's security: a table of tokens against silences for a Slack and a
//!   PagerDuty route, rate-limit headers and 429, `silenced: true` in `/api/v1/alerts`.
//! - A weekly maintenance window across a DST change mutes exactly the runs inside it, and the
//!   SLO budget leaves them out.
//! - The watchdog pings a dead man's switch from the real daemon process, and stops after
//!   kill -9.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use synmon::clock::ManualClock;
use synmon::mute::silence::{NewSilence, Silences};
use synmon::mute::{Inhibitor, MuteConfig};
use synmon::notify::dispatch::IncomingAlert;

use crate::fakes::webhook::FakeWebhook;
use crate::notify::pipeline::{Harness, alert, t0};
use crate::support::eventually;

/// The `receivers:` + `route:` of Alertmanager's control tests: one webhook, one group for
/// everything, 1 s group wait and interval, and a repeat interval of 1 s (Alertmanager's tests
/// use 1 ms to say "every flush"; synmon's minimum is 1 s, the same here with 1 s flushes).
fn am_route(url: &str) -> String {
    format!(
        r#"
receivers:
  - {{ name: default, type: webhook, url: "{url}" }}
route:
  receiver: default
  group_by: []
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 1s
"#
    )
}

fn with_start(a: IncomingAlert, s: i64) -> IncomingAlert {
    IncomingAlert {
        starts_at: t0() + chrono::Duration::seconds(s),
        ..a
    }
}

/// Each body as its alerts' `(alertname, zone, status)`, sorted.
fn batch(body: &Value) -> Vec<(String, String, String)> {
    let mut v: Vec<(String, String, String)> = body["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            let s = |k: &str| a["labels"][k].as_str().unwrap_or("").to_string();
            (
                s("alertname"),
                s("zone"),
                a["status"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    v.sort();
    v
}

fn row(name: &str, zone: &str, status: &str) -> (String, String, String) {
    (name.into(), zone.into(), status.into())
}

fn inhibit_rule() -> MuteConfig {
    let yaml = r#"
- source_matchers: { alertname: JobDown }
  target_matchers: { alertname: InstanceDown }
  equal: [job, zone]
"#;
    let raw: Vec<synmon::mute::config::RawInhibitRule> = yaml_serde::from_str(yaml).unwrap();
    let mut notify = synmon::notify::NotifyConfig {
        receivers: Vec::new(),
        route: synmon::notify::Route::default_to("console"),
    };
    let mut errs = Vec::new();
    let cfg = synmon::mute::config::validate(
        raw,
        Vec::new(),
        None,
        None,
        None,
        &mut notify,
        std::path::Path::new("."),
        &mut |p, m| errs.push(format!("{p}: {m}")),
    );
    assert!(errs.is_empty(), "{errs:?}");
    cfg
}

/// TestInhibiting: JobDown in zone aa inhibits InstanceDown in zone aa (equal: job, zone) but
/// not in zone ab; once JobDown resolves, the inhibited alert is notified again at the next
/// flush.
#[tokio::test]
async fn inhibiting_with_equal_labels() {
    let hook = FakeWebhook::start().await;
    let mut h = Harness::new(&am_route(&hook.url())).await;
    let cfg = inhibit_rule();
    h.notifier
        .add_muter(Arc::new(Inhibitor::new(cfg.inhibit_rules)))
        .await;
    let j = |name: &str, zone: &str| alert(name, &[("job", "testjob"), ("zone", zone)]);
    let base = [
        j("test1", "aa"),
        j("InstanceDown", "aa"),
        j("InstanceDown", "ab"),
    ];
    h.fire(&base).await; // at 0
    assert_eq!(h.run_until(1, &hook).await, [1]);
    // JobDown in zone aa fires at 1: the second batch leaves InstanceDown/aa out.
    let job_down = with_start(j("JobDown", "aa"), 1);
    let mut with_source = base.to_vec();
    with_source.push(job_down);
    h.fire(&with_source).await;
    assert_eq!(h.run_until(2, &hook).await, [2]);
    // JobDown resolves at 2: InstanceDown/aa is back in the third batch.
    h.fire(&base).await;
    assert_eq!(h.run_until(4, &hook).await, [3, 4]);

    let bodies = hook.bodies();
    assert_eq!(bodies.len(), 4);
    assert_eq!(
        batch(&bodies[0]),
        [
            row("InstanceDown", "aa", "firing"),
            row("InstanceDown", "ab", "firing"),
            row("test1", "aa", "firing"),
        ]
    );
    assert_eq!(
        batch(&bodies[1]),
        [
            row("InstanceDown", "ab", "firing"),
            row("JobDown", "aa", "firing"),
            row("test1", "aa", "firing"),
        ]
    );
    assert_eq!(
        batch(&bodies[2]),
        [
            row("InstanceDown", "aa", "firing"),
            row("InstanceDown", "ab", "firing"),
            row("JobDown", "aa", "resolved"),
            row("test1", "aa", "firing"),
        ]
    );
    assert_eq!(
        batch(&bodies[3]),
        [
            row("InstanceDown", "aa", "firing"),
            row("InstanceDown", "ab", "firing"),
            row("test1", "aa", "firing"),
        ],
        "the resolve was said once"
    );
}

fn silence(
    matchers: &[(&str, &str)],
    start: Option<DateTime<Utc>>,
    end: DateTime<Utc>,
) -> NewSilence {
    NewSilence {
        matchers: matchers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        starts_at: start,
        ends_at: end,
        comment: "acceptance".into(),
        created_by: None,
    }
}

fn names(body: &Value) -> Vec<String> {
    let mut v: Vec<String> = body["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["labels"]["alertname"].as_str().unwrap().to_string())
        .collect();
    v.sort();
    v
}

/// TestSilencing: a silence created between flushes, starting half a second later, mutes
/// test1 at the next two flushes; after it ends both alerts are notified again. The silence is
/// persisted.
#[tokio::test]
async fn silencing() {
    let hook = FakeWebhook::start().await;
    let mut h = Harness::new(&am_route(&hook.url())).await;
    let silences = Arc::new(Silences::load(h.store.clone()).await.unwrap());
    h.notifier.add_muter(silences.clone()).await;
    h.fire(&[alert("test1", &[]), alert("test2", &[])]).await;
    assert_eq!(h.run_until(1, &hook).await, [1]);
    // At 1 (Alertmanager: 2.3), a silence from 1.5 to 3.5 (2.5 to 4.5) for test1.
    let ms = |v: i64| t0() + chrono::Duration::milliseconds(v);
    let s = silence(&[("alertname", "test1")], Some(ms(1500)), ms(3500))
        .into_silence("alice", ms(1000))
        .unwrap();
    let id = silences.add(s).await.unwrap().id;
    assert_eq!(h.run_until(5, &hook).await, [2, 3, 4, 5]);
    let got: Vec<Vec<String>> = hook.bodies().iter().map(names).collect();
    assert_eq!(
        got,
        [
            vec!["test1", "test2"],
            vec!["test2"],
            vec!["test2"],
            vec!["test1", "test2"],
            vec!["test1", "test2"],
        ]
        .map(|v| v.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    );
    let reloaded = Silences::load(h.store.clone()).await.unwrap().all();
    assert_eq!(reloaded.len(), 1);
    assert_eq!(reloaded[0].id, id);
    assert_eq!(reloaded[0].created_by, "alice");
    assert_eq!(reloaded[0].ends_at, ms(3500));
}

/// TestSilenceDelete: a silence of everything (`alertname=~.*`, 100 s) mutes the first flush;
/// expired before the next one, both alerts are notified at that flush and after.
#[tokio::test]
async fn silence_delete() {
    let hook = FakeWebhook::start().await;
    let mut h = Harness::new(&am_route(&hook.url())).await;
    let silences = Arc::new(Silences::load(h.store.clone()).await.unwrap());
    h.notifier.add_muter(silences.clone()).await;
    let s = silence(
        &[("alertname", "=~.*")],
        None,
        t0() + chrono::Duration::seconds(100),
    )
    .into_silence("alice", t0())
    .unwrap();
    let id = silences.add(s).await.unwrap().id;
    h.fire(&[alert("test1", &[]), alert("test2", &[])]).await;
    assert_eq!(h.run_until(1, &hook).await, Vec::<i64>::new(), "silenced");
    let expired = silences
        .expire(&id, t0() + chrono::Duration::seconds(1))
        .await
        .unwrap();
    assert_eq!(expired.ends_at, t0() + chrono::Duration::seconds(1));
    assert_eq!(h.run_until(3, &hook).await, [2, 3]);
    for b in hook.bodies() {
        assert_eq!(names(&b), ["test1", "test2"]);
    }
    let stored = Silences::load(h.store.clone()).await.unwrap();
    assert_eq!(
        stored
            .get(&id)
            .unwrap()
            .state(t0() + chrono::Duration::seconds(1)),
        synmon::mute::silence::SilenceState::Expired,
        "the expiry is persisted"
    );
}

const SECRET: &str = "synmon-test-hs256-secret-of-32-bytes!!";
const PASSWORD: &str = "synthetic-demo";
/// How long a real HTTP run may take to be recorded and stored (the daemon's writer task stores
/// it a moment after it is recorded).
const RUN_WAIT: Duration = Duration::from_secs(60);

/// A rule that fires at the first evaluation (no data, `no_data: alert`) on the page route.
const NO_DATA_RULE: &str = r#"
rules:
  - alert: approvals_unknown
    metric: feed_approval_rate
    aggregate: last
    op: "<"
    threshold: 95
    severity: page
    route: page
    no_data: { policy: alert }
"#;

/// An in-process daemon (manual clock, manual evaluation) with a Slack and a PagerDuty route
/// (both without secrets: they fall back to the console, nothing leaves the machine).
async fn api_daemon(
    dir: &std::path::Path,
    rate_limit: u32,
    clock: &ManualClock,
) -> crate::support::TestDaemon {
    std::fs::create_dir_all(dir.join("alerts")).unwrap();
    std::fs::write(dir.join("alerts/rules.yaml"), NO_DATA_RULE).unwrap();
    let cfg = crate::support::write_config(
        dir,
        "http://127.0.0.1:9",
        PASSWORD,
        &format!(
            r##"server:
  api_rate_limit: {rate_limit}
  auth:
    hs256_secret: "{SECRET}"
store:
  url: sqlite://synmon.db
alerts: alerts
checks:
  journeys: []
receivers:
  - {{ name: slack-alerts, type: slack, token: "", channel: "#alerts" }}
  - {{ name: pagerduty, type: pagerduty, routing_key: "" }}
route:
  receiver: console
  group_wait: 0s
  group_interval: 1s
  routes:
    - {{ matchers: {{ route: page }}, receiver: pagerduty }}
    - {{ matchers: {{ route: slack-alerts }}, receiver: slack-alerts }}
"##
        ),
    );
    crate::support::TestDaemon::spawn_with(
        synmon::settings::Config::load(&cfg).unwrap(),
        crate::support::TestDaemon::options(),
        Arc::new(clock.clone()),
    )
    .await
}

/// A signed token with the given claims.
fn token(claims: Value, key: &[u8]) -> String {
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(key),
    )
    .unwrap()
}

struct Answer {
    status: u16,
    body: Value,
    headers: reqwest::header::HeaderMap,
}

async fn call(
    method: reqwest::Method,
    url: &str,
    bearer: Option<&str>,
    body: Option<Value>,
) -> Answer {
    let mut r = reqwest::Client::new().request(method, url);
    if let Some(b) = bearer {
        r = r.bearer_auth(b);
    }
    if let Some(b) = body {
        r = r.json(&b);
    }
    let resp = r.send().await.unwrap();
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body = resp.json().await.unwrap_or(Value::Null);
    Answer {
        status,
        body,
        headers,
    }
}

fn has_rate_headers(a: &Answer) -> bool {
    [
        "x-ratelimit-limit",
        "x-ratelimit-remaining",
        "x-ratelimit-reset",
    ]
    .iter()
    .all(|h| a.headers.contains_key(*h))
}

/// Every kind of token against silence creation for a Slack route and for a PagerDuty route:
/// 401 for none, expired and a wrong signature; 403 for a wrong audience and for a PagerDuty
/// silence without a fresh step-up; 201 otherwise. Every answer is JSON with the rate-limit
/// headers. The PagerDuty silence then shows the page as `silenced: true` in /api/v1/alerts,
/// and expiring it (DELETE) un-silences it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_table_against_slack_and_pagerduty_silences() {
    synmon::tls::install();
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(t0());
    let d = api_daemon(dir.path(), 100, &clock).await;
    let base = d.base_url();
    let now = t0().timestamp();
    let admin = |extra: Value| {
        let mut c = json!({"sub": "alice", "aud": "admin", "iat": now - 30, "exp": now + 600});
        for (k, v) in extra.as_object().unwrap() {
            c[k] = v.clone();
        }
        token(c, SECRET.as_bytes())
    };
    let rows: Vec<(&str, Option<String>, u16, u16)> = vec![
        ("none", None, 401, 401),
        ("expired", Some(admin(json!({"exp": now - 1}))), 401, 401),
        ("wrong aud", Some(admin(json!({"aud": "tenant"}))), 403, 403),
        (
            "wrong signature",
            Some(token(
                json!({"sub": "alice", "aud": "admin", "exp": now + 600}),
                b"another-secret-another-secret-123456",
            )),
            401,
            401,
        ),
        ("admin without step-up", Some(admin(json!({}))), 201, 403),
        (
            "admin with stale step-up",
            Some(admin(
                json!({"amr": ["pwd", "step_up"], "auth_time": now - 301}),
            )),
            201,
            403,
        ),
        (
            "admin with fresh step-up",
            Some(admin(
                json!({"amr": ["pwd", "step_up"], "auth_time": now - 120}),
            )),
            201,
            201,
        ),
    ];
    let body = |route: &str| {
        json!({
            "matchers": {"route": route},
            "ends_at": (t0() + chrono::Duration::hours(2)).to_rfc3339(),
            "comment": "planned database failover",
        })
    };
    let mut got = Vec::new();
    let mut pd_silence = None;
    for (name, tok, _, _) in &rows {
        let mut statuses = Vec::new();
        for route in ["slack-alerts", "page"] {
            let a = call(
                reqwest::Method::POST,
                &format!("{base}/api/v1/silences"),
                tok.as_deref(),
                Some(body(route)),
            )
            .await;
            assert!(has_rate_headers(&a), "{name}/{route}: {:?}", a.headers);
            if a.status == 201 {
                assert_eq!(a.body["created_by"], "alice");
                assert_eq!(a.body["status"], "active");
                if route == "page" {
                    pd_silence = a.body["id"].as_str().map(str::to_string);
                }
            } else {
                assert!(
                    a.body["error"].as_str().is_some_and(|e| !e.is_empty()),
                    "{name}/{route}: JSON error body, got {}",
                    a.body
                );
            }
            if a.status == 401 {
                assert!(a.headers.contains_key("www-authenticate"));
            }
            statuses.push(a.status);
        }
        got.push((name.to_string(), statuses[0], statuses[1]));
    }
    let want: Vec<(String, u16, u16)> = rows
        .iter()
        .map(|(n, _, s, p)| (n.to_string(), *s, *p))
        .collect();
    assert_eq!(got, want);

    // Four Slack silences and one PagerDuty silence were created.
    let list = call(
        reqwest::Method::GET,
        &format!("{base}/api/v1/silences"),
        None,
        None,
    )
    .await;
    assert!(has_rate_headers(&list));
    assert_eq!(list.body["silences"].as_array().unwrap().len(), 4);

    // The page fires; it is silenced, and stays visible in the API.
    d.evaluate_now().await;
    let alerts = call(
        reqwest::Method::GET,
        &format!("{base}/api/v1/alerts"),
        None,
        None,
    )
    .await;
    let page = &alerts.body["alerts"][0];
    assert_eq!(page["alert"], "approvals_unknown");
    assert_eq!(page["silenced"], true);
    let id = pd_silence.unwrap();
    assert_eq!(page["silenced_by"], json!([id]));
    // ...and on the status page, marked as muted.
    let html = reqwest::get(format!("{base}/"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains("approvals_unknown"), "{html}");
    assert!(
        html.contains(&format!("notifications muted: silenced ({id})")),
        "{html}"
    );
    d.notify_now().await.unwrap();
    assert!(
        d.store().outbox_recent(10).await.unwrap().is_empty(),
        "nothing was notified for the silenced page"
    );

    // Expiring needs a token too (aud=admin); then the page is no longer silenced.
    let url = format!("{base}/api/v1/silences/{id}");
    let no = call(reqwest::Method::DELETE, &url, None, None).await;
    assert_eq!(no.status, 401);
    let wrong = call(
        reqwest::Method::DELETE,
        &url,
        Some(&admin(json!({"aud": "tenant"}))),
        None,
    )
    .await;
    assert_eq!(wrong.status, 403);
    let ok = call(reqwest::Method::DELETE, &url, Some(&admin(json!({}))), None).await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    assert_eq!(ok.body["status"], "expired");
    let missing = call(
        reqwest::Method::DELETE,
        &format!("{base}/api/v1/silences/nope"),
        Some(&admin(json!({}))),
        None,
    )
    .await;
    assert_eq!(missing.status, 404);
    assert!(missing.body["error"].is_string());
    let alerts = call(
        reqwest::Method::GET,
        &format!("{base}/api/v1/alerts"),
        None,
        None,
    )
    .await;
    assert_eq!(alerts.body["alerts"][0]["silenced"], false);
    clock.advance(chrono::Duration::seconds(1));
    d.notify_now().await.unwrap();
    assert_eq!(
        d.store().outbox_recent(10).await.unwrap().len(),
        1,
        "the page is notified at the next flush after its silence expired"
    );

    // A bad body is a JSON 400 (after authentication).
    let bad = call(
        reqwest::Method::POST,
        &format!("{base}/api/v1/silences"),
        Some(&admin(json!({}))),
        Some(json!({"matchers": {}, "ends_at": "2030-01-01T00:00:00Z", "comment": "x"})),
    )
    .await;
    assert_eq!(bad.status, 400);
    assert_eq!(bad.body["error"], "`matchers` must name at least one label");
    d.stop().await;
}

/// The API's per-client limit: every answer counts down `X-RateLimit-Remaining`; past the limit
/// a JSON 429 with `Retry-After`; a minute later (on the daemon's clock) requests pass again.
/// Non-API paths are not limited.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limit_answers_429_with_retry_after() {
    synmon::tls::install();
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(t0());
    let d = api_daemon(dir.path(), 3, &clock).await;
    let url = format!("http://{}/api/v1/silences", d.addr());
    let header = |a: &Answer, h: &str| a.headers[h].to_str().unwrap().to_string();
    let reset = (t0().timestamp() + 60).to_string();
    for left in ["2", "1", "0"] {
        let a = call(reqwest::Method::GET, &url, None, None).await;
        assert_eq!(a.status, 200);
        assert_eq!(header(&a, "x-ratelimit-limit"), "3");
        assert_eq!(header(&a, "x-ratelimit-remaining"), left);
        assert_eq!(header(&a, "x-ratelimit-reset"), reset);
    }
    clock.advance(chrono::Duration::seconds(20));
    let a = call(reqwest::Method::GET, &url, None, None).await;
    assert_eq!(a.status, 429);
    assert_eq!(header(&a, "retry-after"), "40");
    assert_eq!(header(&a, "x-ratelimit-remaining"), "0");
    assert!(a.body["error"].as_str().unwrap().contains("rate limit"));
    // Mutations are limited as well, before authentication.
    let p = call(reqwest::Method::POST, &url, None, Some(json!({}))).await;
    assert_eq!(p.status, 429);
    // Health and metrics are never limited.
    let h = call(
        reqwest::Method::GET,
        &format!("http://{}/healthz", d.addr()),
        None,
        None,
    )
    .await;
    assert_eq!(h.status, 200);
    assert!(!has_rate_headers(&h));
    clock.advance(chrono::Duration::seconds(40));
    let a = call(reqwest::Method::GET, &url, None, None).await;
    assert_eq!(a.status, 200);
    assert_eq!(header(&a, "x-ratelimit-remaining"), "2");
    d.stop().await;
}

/// A weekly window (Sundays 01:30 Europe/Berlin, 2 h) on the night Berlin leaves summer time
/// (2026-10-25, 03:00 CEST -> 02:00 CET): it opens at 23:30 UTC (01:30 CEST) and lasts two real
/// hours, to 01:30 UTC (02:30 CET). Of runs every 10 minutes from 22:00 to 03:00 UTC, exactly
/// the 12 inside are muted and recorded as `maintenance`; they all failed, yet the SLO budget
/// is untouched, while the same runs without the window overspend it. A week later (winter
/// time) the window opens an hour later in UTC.
#[tokio::test]
async fn weekly_window_across_dst_mutes_exactly_its_runs_and_spares_the_budget() {
    use synmon::notify::dispatch::Muter;
    let yaml = r#"
- name: sunday-db-maintenance
  matchers: { check: "=~align_.*" }
  weekly: { days: [sun], start: "01:30", duration: 2h, time_zone: Europe/Berlin }
"#;
    let raw: Vec<synmon::mute::config::RawMaintenanceWindow> = yaml_serde::from_str(yaml).unwrap();
    let mut notify = synmon::notify::NotifyConfig {
        receivers: Vec::new(),
        route: synmon::notify::Route::default_to("console"),
    };
    let mut errs = Vec::new();
    let cfg = synmon::mute::config::validate(
        Vec::new(),
        raw,
        None,
        None,
        None,
        &mut notify,
        std::path::Path::new("."),
        &mut |p, m| errs.push(format!("{p}: {m}")),
    );
    assert!(errs.is_empty(), "{errs:?}");
    let windows = synmon::mute::Maintenance::new(cfg.maintenance_windows);
    let none = synmon::mute::Maintenance::new(Vec::new());

    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("slo.yaml"),
        r#"
slos:
  - name: align_availability
    objective: 99
    period: 30d
    sli:
      events:
        metric: synmon.check.runs
        match: { check: align_category }
        good: { outcome: pass }
        total: { outcome: "=~pass|fail" }
"#,
    )
    .unwrap();
    let (rules, errors) = synmon::rules::load_dir(dir.path());
    assert!(errors.is_empty(), "{errors:?}");

    let with = synmon::metrics::registry::Registry::new();
    let without = synmon::metrics::registry::Registry::new();
    let start: DateTime<Utc> = "2026-10-24T22:00:00Z".parse().unwrap();
    let window_open: DateTime<Utc> = "2026-10-24T23:30:00Z".parse().unwrap();
    let window_close: DateTime<Utc> = "2026-10-25T01:30:00Z".parse().unwrap();
    let mut muted = Vec::new();
    let mut end = start;
    for k in 0..=30 {
        let t = start + chrono::Duration::minutes(10 * k);
        let inside = window_open <= t && t < window_close;
        let mut run = synmon::run::RunResult::begin(
            "align_category",
            synmon::run::CheckKind::Journey,
            "staging",
            "eu",
            t,
        );
        run.total_ms = 150.0;
        // The maintenance breaks the journey; outside it everything passes.
        run.outcome = if inside {
            synmon::Outcome::Fail
        } else {
            synmon::Outcome::Pass
        };
        let labels = BTreeMap::from([
            ("check".to_string(), "align_category".to_string()),
            ("location".to_string(), "eu".to_string()),
        ]);
        assert_eq!(windows.muted(&labels, t), inside, "mute at {t}");
        if let Some(w) = windows.record_run(&with, &run, t).unwrap() {
            assert_eq!(w, "sunday-db-maintenance");
            muted.push(t.format("%H:%M").to_string());
        }
        assert_eq!(none.record_run(&without, &run, t).unwrap(), None);
        with.maintain(t);
        without.maintain(t);
        end = t;
    }
    assert_eq!(
        muted,
        [
            "23:30", "23:40", "23:50", "00:00", "00:10", "00:20", "00:30", "00:40", "00:50",
            "01:00", "01:10", "01:20"
        ]
    );
    // A check the window does not match is never muted.
    let other = BTreeMap::from([("check".to_string(), "feed_push".to_string())]);
    assert!(!windows.muted(&other, window_open));

    let status = |r: &synmon::metrics::registry::Registry| {
        let counters = synmon::rules::registry_source::CounterHistory::default();
        let source = synmon::rules::registry_source::RegistrySource {
            registry: r,
            remote: None,
            counters: &counters,
        };
        synmon::rules::slo::slo_status(&rules.slos, &source, end + chrono::Duration::minutes(1))
            .remove(0)
    };
    let spared = status(&with);
    assert_eq!(spared.error_ratio, Some(0.0), "19 judged runs, all passed");
    assert_eq!(spared.error_budget_remaining, 1.0);
    let spent = status(&without);
    assert_eq!(spent.error_ratio, Some(12.0 / 31.0));
    assert!(spent.error_budget_remaining < 0.0);
    // The maintenance runs still show up, under their own outcome.
    assert_eq!(
        with.count(
            synmon::metrics::catalog::CHECK_LATENCY.name,
            &[
                ("check", "align_category"),
                ("location", "eu"),
                ("target", "staging"),
                ("outcome", "maintenance"),
            ],
            synmon::metrics::Window::H24,
            end,
        ),
        12
    );

    // The week before (summer time) and after (winter time): 01:30 local is 23:30 / 00:30 UTC.
    let at = |s: &str| -> DateTime<Utc> { s.parse().unwrap() };
    let align = BTreeMap::from([("check".to_string(), "align_category".to_string())]);
    for (t, open) in [
        ("2026-10-17T23:29:59Z", false),
        ("2026-10-17T23:30:00Z", true),
        ("2026-10-18T01:29:59Z", true),
        ("2026-10-18T01:30:00Z", false),
        ("2026-10-31T23:30:00Z", false),
        ("2026-11-01T00:29:59Z", false),
        ("2026-11-01T00:30:00Z", true),
        ("2026-11-01T02:29:59Z", true),
        ("2026-11-01T02:30:00Z", false),
    ] {
        assert_eq!(windows.muted(&align, at(t)), open, "{t}");
    }
}

/// The watchdog from the real daemon process (`synmon run`): with `interval: 2s`, the dead man's
/// switch (a webhook) receives a firing `synmon_watchdog` every 2 s (the 1 s flush timer may add
/// up to a second); after kill -9 the pings stop.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watchdog_pings_the_dead_mans_switch_until_kill_9() {
    use crate::support::{Child, free_port, wait_for_api};
    synmon::tls::install();
    let dir = tempfile::tempdir().unwrap();
    let dms = FakeWebhook::start().await;
    let port = free_port();
    let cfg = crate::support::write_config(
        dir.path(),
        "http://127.0.0.1:9",
        PASSWORD,
        &format!(
            r#"server:
  listen: 127.0.0.1:{port}
store:
  url: sqlite://synmon.db
evaluation_interval: 1s
checks:
  journeys: []
receivers:
  - {{ name: deadmans-switch, type: webhook, url: "{}" }}
route:
  receiver: console
watchdog:
  receiver: deadmans-switch
  interval: 2s
"#,
            dms.url()
        ),
    );
    let mut child = Child::spawn(&cfg);
    wait_for_api(
        &format!("http://127.0.0.1:{port}/healthz"),
        Duration::from_secs(30),
        |v| v["status"] == "ok",
    )
    .await;
    // Five pings: the switch records when each arrived.
    dms.wait_for(5, Duration::from_secs(20)).await;
    let at = dms.arrivals();
    // What a dead man's switch relies on: never silent for longer than the interval plus one
    // flush tick (1 s) plus delivery time. Sends are decided on the flush ticks (the
    // notification log keeps the flush time), so only delivery jitter moves an arrival; 600 ms
    // of it is allowed for a loaded machine.
    for w in at.windows(2) {
        let gap = w[1] - w[0];
        assert!(
            gap <= Duration::from_millis(3600),
            "a ping at least every 2 s + one flush tick: {gap:?}"
        );
        // Not a ping per flush tick (1 s apart): each one waits for the interval, give or
        // take the delivery jitter of two requests.
        assert!(
            gap >= Duration::from_millis(1400),
            "one ping per interval, not per flush: {gap:?}"
        );
    }
    // Over four intervals the jitter of only the first and last ping counts.
    let span = at[4] - at[0];
    assert!(
        span >= Duration::from_millis(7400) && span <= Duration::from_millis(12_600),
        "five pings span four intervals of 2-3 s: {span:?}"
    );
    for b in dms.bodies() {
        assert_eq!(b["status"], "firing");
        assert_eq!(b["alerts"][0]["labels"]["alertname"], "synmon_watchdog");
        assert_eq!(b["alerts"].as_array().unwrap().len(), 1);
    }
    child.signal(nix::sys::signal::Signal::SIGKILL);
    let after_kill = dms.bodies().len();
    // Reaped: from here the process can send nothing, however slow the machine is; what the
    // waits below observe is only the fake handling a ping already sent before the kill.
    tokio::time::timeout(Duration::from_secs(10), child.0.wait())
        .await
        .expect("synmon exits on SIGKILL")
        .unwrap();
    // Three watchdog intervals of silence after the process is gone: the switch would now
    // alarm. (Waiting longer only makes the check stricter; load cannot make a dead process
    // send.)
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert!(
        dms.bodies().len() <= after_kill + 1,
        "at most the ping already in flight at the kill"
    );
    let settled = dms.bodies().len();
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(dms.bodies().len(), settled, "no pings after kill -9");
}

/// Silences persist the same way in PostgreSQL (migration 0004, both dialects).
#[tokio::test]
async fn silences_persist_in_postgres() {
    let pg = crate::support::TempPg::create().await;
    let store = synmon::store::Store::connect(&synmon::config::Secret::new(pg.url.clone()))
        .await
        .unwrap();
    let silences = Silences::load(store.clone()).await.unwrap();
    let s = silence(
        &[("check", "=~align_.*"), ("route", "page")],
        Some(t0() + chrono::Duration::minutes(5)),
        t0() + chrono::Duration::hours(1),
    )
    .into_silence("alice", t0())
    .unwrap();
    let id = silences.add(s).await.unwrap().id;
    let pending = Silences::load(store.clone()).await.unwrap();
    let got = pending.get(&id).unwrap();
    assert_eq!(got.matchers["check"], "=~align_.*");
    assert_eq!(got.starts_at, t0() + chrono::Duration::minutes(5));
    assert_eq!(
        got.state(t0()),
        synmon::mute::silence::SilenceState::Pending
    );
    // Expiring a pending silence: it never starts.
    silences
        .expire(&id, t0() + chrono::Duration::minutes(1))
        .await
        .unwrap();
    let after = Silences::load(store.clone()).await.unwrap();
    let got = after.get(&id).unwrap();
    assert_eq!(got.ends_at, t0() + chrono::Duration::minutes(1));
    assert_eq!(got.starts_at, t0() + chrono::Duration::minutes(1));
    assert_eq!(
        got.state(t0() + chrono::Duration::minutes(10)),
        synmon::mute::silence::SilenceState::Expired
    );
    store.close().await;
    pg.drop_db().await;
}

/// A run inside a maintenance window is stored with the window's name: the run JSON, the check's
/// run list, `/api/v1/checks`, the run page and the status page say so; after a restart with
/// the window removed from the config, the metrics replay still counts it as `maintenance`
/// (the stored mark wins over the current config).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_inside_a_window_are_stored_marked_shown_and_replayed_as_marked() {
    use synmon::clock::{Clock, SystemClock};
    use synmon::metrics::{Window, catalog};
    synmon::tls::install();
    let dir = tempfile::tempdir().unwrap();
    let sbx = crate::support::sqlite_sandbox(dir.path(), PASSWORD).await;
    let now = SystemClock.now();
    let checks = "store:\n  url: sqlite://synmon.db\nchecks:\n  journeys: []\n  http:\n    - { name: auth_health, url: /svc/auth/healthz }\n";
    let window = format!(
        "maintenance_windows:\n  - name: deploy-<42>\n    matchers: {{ check: auth_health }}\n    start: {}\n    end: {}\n",
        (now - chrono::Duration::hours(1)).to_rfc3339(),
        (now + chrono::Duration::hours(1)).to_rfc3339(),
    );
    let cfg = crate::support::write_config(
        dir.path(),
        &sbx.base_url(),
        PASSWORD,
        &format!("{checks}{window}"),
    );
    let d = crate::support::TestDaemon::spawn(synmon::settings::Config::load(&cfg).unwrap()).await;
    let run_id = eventually("a run of auth_health", RUN_WAIT, async || {
        d.last_run("auth_health").map(|r| r.run_id)
    })
    .await;
    let base = d.base_url();
    let c = reqwest::Client::new();
    let get = async |path: &str| {
        let r = c.get(format!("{base}{path}")).send().await.unwrap();
        assert_eq!(r.status(), 200, "{path}");
        r.text().await.unwrap()
    };
    let run: Value = eventually("the run stored", RUN_WAIT, async || {
        let r = c
            .get(format!("{base}/api/v1/runs/{run_id}"))
            .send()
            .await
            .unwrap();
        (r.status() == 200).then_some(r.json().await.unwrap())
    })
    .await;
    assert_eq!(run["maintenance"], "deploy-<42>", "{run:#}");
    assert_eq!(run["outcome"], "pass", "the real outcome is kept: {run:#}");
    // `/api/v1/runs/{id}` finds a run still in the store writer's queue; the list reads the
    // store, which the writer reaches up to 100 ms later (more on a loaded machine).
    let listed: Value = eventually("the run listed", RUN_WAIT, async || {
        let list: Value =
            serde_json::from_str(&get("/api/v1/checks/auth_health/runs").await).unwrap();
        list["runs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["run_id"] == run_id.as_str())
            .cloned()
    })
    .await;
    assert_eq!(listed["maintenance"], "deploy-<42>", "{listed:#}");
    let checks_api: Value = serde_json::from_str(&get("/api/v1/checks").await).unwrap();
    assert_eq!(
        checks_api["checks"][0]["last"]["maintenance"], "deploy-<42>",
        "{checks_api:#}"
    );
    let page = get(&format!("/runs/{run_id}")).await;
    assert!(
        page.contains(r#"<dd class="maintenance" data-maintenance="deploy-&lt;42&gt;">"#),
        "{page}"
    );
    let status = get("/status/fragment").await;
    assert!(
        status.contains(r#"data-maintenance="deploy-&lt;42&gt;""#),
        "{status}"
    );
    d.stop().await;

    // The window is gone from the config; the stored runs keep their mark, and the replay at
    // start counts them as maintenance (new runs, outside any window, count as they are).
    let cfg = crate::support::write_config(dir.path(), &sbx.base_url(), PASSWORD, checks);
    let d = crate::support::TestDaemon::spawn(synmon::settings::Config::load(&cfg).unwrap()).await;
    let stored = d.store().runs_for_check("auth_health", 1000).await.unwrap();
    let marked: Vec<_> = stored
        .iter()
        .filter(|r| r.maintenance.as_deref() == Some("deploy-<42>"))
        .collect();
    assert!(!marked.is_empty());
    let labels = [
        ("check", "auth_health"),
        ("location", marked[0].location.as_str()),
        ("target", marked[0].target.as_str()),
        ("outcome", "maintenance"),
    ];
    let replayed = d.registry().count(
        catalog::CHECK_LATENCY.name,
        &labels,
        Window::H24,
        SystemClock.now(),
    );
    assert_eq!(replayed, marked.len() as u64);
    d.stop().await;
    sbx.shutdown().await;
}

/// Two replicas on one PostgreSQL store: a silence created through replica A mutes replica B's
/// notifications from B's first flush after its next refresh (B re-reads at most every 5 s of
/// its clock), and expiring it on A lifts it on B the same way; exact notifications per second
/// on B's pipeline (the TestSilencing harness, manual clock). A replica whose store cannot be
/// read keeps the silences it knows.
#[tokio::test]
async fn silences_replicate_between_replicas_sharing_postgres() {
    use synmon::mute::silence::REFRESH_EVERY;
    assert_eq!(REFRESH_EVERY, chrono::Duration::seconds(5));
    synmon::tls::install();
    let pg = crate::support::TempPg::create().await;
    let url = synmon::config::Secret::new(pg.url.clone());
    let connect = async || synmon::store::Store::connect(&url).await.unwrap();
    let hook = FakeWebhook::start().await;
    let mut b = Harness::on_store(
        &am_route(&hook.url()),
        connect().await,
        tempfile::tempdir().unwrap(),
    )
    .await;
    let b_silences = Arc::new(Silences::load(b.store.clone()).await.unwrap());
    b.notifier.add_muter(b_silences.clone()).await;
    b.notifier.add_refresh(b_silences.clone());
    let a_store = connect().await;
    let a = Silences::load(a_store.clone()).await.unwrap();
    let secs = |s: i64| t0() + chrono::Duration::seconds(s);

    // B refreshes at 0 (the first sync), then at 5, 10, ...
    b.fire(&[alert("test1", &[]), alert("test2", &[])]).await;
    assert_eq!(b.run_until(1, &hook).await, [1]);
    let s = silence(&[("alertname", "test1")], None, secs(100))
        .into_silence("alice", secs(1))
        .unwrap();
    let id = a.add(s).await.unwrap().id;
    assert!(b_silences.get(&id).is_none(), "not before B's refresh");
    assert_eq!(b.run_until(7, &hook).await, [2, 3, 4, 5, 6, 7]);
    assert!(b_silences.get(&id).is_some(), "applied at B's refresh at 5");
    a.expire(&id, secs(7)).await.unwrap();
    assert_eq!(b.run_until(11, &hook).await, [8, 9, 10, 11]);
    let got: Vec<Vec<String>> = hook.bodies().iter().map(names).collect();
    let both = vec!["test1".to_string(), "test2".to_string()];
    let only2 = vec!["test2".to_string()];
    assert_eq!(
        got,
        [
            &both, &both, &both, &both, // 1-4: B has not read the silence yet
            &only2, &only2, &only2, &only2, &only2, // 5-9: muted from the refresh at 5
            &both, &both, // 10-11: the expiry read at 10
        ]
        .map(Clone::clone)
    );
    assert_eq!(
        b_silences.get(&id).unwrap().ends_at,
        secs(7),
        "B holds A's expiry"
    );

    // Clocks that disagree: B creates a silence at 30 by its clock, A (behind) expires it at
    // 28 by its own. The store keeps the write that landed last, A's, and B applies it although
    // its `updated_at` is older than the copy B holds.
    let s = silence(&[("alertname", "test4")], None, secs(300))
        .into_silence("bob", secs(30))
        .unwrap();
    let id4 = b_silences.add(s).await.unwrap().id;
    assert!(a.refresh_if_due(secs(30)).await);
    a.expire(&id4, secs(28)).await.unwrap();
    assert!(b_silences.refresh_if_due(secs(60)).await);
    assert_eq!(
        b_silences.get(&id4).unwrap().ends_at,
        secs(28),
        "B holds A's expiry despite A's slower clock"
    );

    // A replica whose store fails keeps what it knows.
    let s = silence(&[("alertname", "test3")], None, secs(200))
        .into_silence("alice", secs(20))
        .unwrap();
    let id3 = a.add(s).await.unwrap().id;
    let c_store = connect().await;
    let c = Silences::load(c_store.clone()).await.unwrap();
    assert!(c.get(&id3).is_some(), "loaded at start");
    assert!(c.refresh_if_due(secs(20)).await);
    assert!(!c.refresh_if_due(secs(24)).await, "not due within 5 s");
    c_store.close().await;
    a.expire(&id3, secs(25)).await.unwrap();
    for s in [25, 30, 35] {
        assert!(!c.refresh_if_due(secs(s)).await, "the store is closed");
    }
    let labels = BTreeMap::from([("alertname".to_string(), "test3".to_string())]);
    assert_eq!(c.silenced_by(&labels, secs(40)), vec![id3]);

    b.store.close().await;
    a_store.close().await;
    pg.drop_db().await;
}
