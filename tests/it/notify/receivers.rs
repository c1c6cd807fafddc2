//! The receiver compliance suite (Alertmanager `notify/test` style): every receiver, built
//! against its local fake with known secrets, must deliver a firing and a resolved notification,
//! classify failures the way the core's retry stage expects (429 with the server's Retry-After,
//! 5xx and network errors retryable; 400 permanent), and never let a secret reach an error, a
//! delivery response or a log line. A new receiver joins by adding one `#[tokio::test]` that
//! builds a `Subject` and calls `check_compliance`; its fake joins by implementing
//! [`FakeControls`]. PagerDuty-specific behaviour is tested against its fake below.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::TimeZone;
use synmon::config::Secret;
use synmon::notify::message::{Condition, Labels, RunEvidence, StepTiming};
use synmon::notify::pagerduty::{self, PagerDuty, PagerDutyConfig};
use synmon::notify::slack::{Slack, SlackConfig};
use synmon::notify::webhook::{Webhook, WebhookConfig};
use synmon::notify::{AlertInfo, FailureKind, Notification, Receiver, SendContext, Status};

use crate::fakes::controls::Controls;
use crate::fakes::pagerduty::{FakePagerDuty, TEST_ROUTING_KEY};
use crate::fakes::slack::{self as fake_slack, FakeSlack, Fault};
use crate::fakes::webhook::FakeWebhook;

const WAIT: Duration = Duration::from_secs(10);

/// Builds a receiver against an origin (`http://127.0.0.1:PORT`).
pub type BuildReceiver = Box<dyn Fn(&str) -> Arc<dyn Receiver>>;

/// A receiver under test, its fake, and what it must keep secret.
pub struct Subject {
    /// Names the receiver in assertion messages.
    pub label: &'static str,
    /// The fake's `http://127.0.0.1:PORT`.
    pub origin: String,
    /// Builds the receiver against an origin: the fake's, or a port nobody listens on. Each
    /// receiver appends its own path (and, for a webhook, the token in it).
    pub build: BuildReceiver,
    pub controls: Arc<dyn FakeControls>,
    /// Every secret value the receiver was configured with.
    pub secrets: Vec<String>,
    /// HTTP statuses the fake answers and the kind the receiver must report for each.
    pub classification: Vec<(u16, FailureKind)>,
    /// Refusals particular to the receiver's API (Slack's `ok:false` codes), answered through
    /// [`FakeControls::fail_next_refusal`], and the kind each must get. Empty for APIs that
    /// speak in HTTP statuses only.
    pub refusals: Vec<(&'static str, FailureKind)>,
}

/// The switches the compliance suite needs from a fake, whatever its own controls look like:
/// the shared [`Controls`] of the webhook and PagerDuty fakes, or [`FakeSlack`]'s.
pub trait FakeControls: Send + Sync {
    /// Answer HTTP `status` to the next `n` requests; a 429 carries `Retry-After`.
    fn fail_next(&self, n: usize, status: u16);
    /// Answer the API's own refusal `code` to the next `n` requests.
    fn fail_next_refusal(&self, _n: usize, code: &str) {
        panic!("this fake has no API-specific refusals (asked for `{code}`)");
    }
    /// Down: the client sees a connection error or a 503; `false` brings the fake back.
    fn set_down(&self, down: bool);
    /// Notifications the fake accepted so far.
    fn accepted(&self) -> usize;
    /// The `Retry-After` a 429 from `fail_next` carries.
    fn retry_after(&self) -> Duration;
}

impl FakeControls for Controls {
    fn fail_next(&self, n: usize, status: u16) {
        Controls::fail_next(self, n, status);
    }
    fn set_down(&self, down: bool) {
        Controls::set_down(self, down);
    }
    fn accepted(&self) -> usize {
        Controls::accepted(self)
    }
    fn retry_after(&self) -> Duration {
        Controls::retry_after(self)
    }
}

/// The `Retry-After` (seconds) the Slack fake sends with a 429 injected by the suite.
const SLACK_RETRY_AFTER_SECS: u64 = 7;

impl FakeControls for FakeSlack {
    fn fail_next(&self, n: usize, status: u16) {
        let fault = if status == 429 {
            Fault::RateLimited {
                retry_after: SLACK_RETRY_AFTER_SECS,
            }
        } else {
            Fault::Status(status)
        };
        FakeSlack::fail_next(self, n, fault);
    }
    fn fail_next_refusal(&self, n: usize, code: &str) {
        FakeSlack::fail_next(self, n, Fault::ApiError(code.into()));
    }
    fn set_down(&self, down: bool) {
        FakeSlack::set_down(self, down);
    }
    /// Messages posted or edited: with no stored group state every notification is one
    /// `chat.postMessage`.
    fn accepted(&self) -> usize {
        self.calls()
            .iter()
            .filter(|c| c.ok() && matches!(c.method.as_str(), "chat.postMessage" | "chat.update"))
            .count()
    }
    fn retry_after(&self) -> Duration {
        Duration::from_secs(SLACK_RETRY_AFTER_SECS)
    }
}

/// What PagerDuty, webhooks and most HTTP APIs mean by their statuses.
pub fn standard_classification() -> Vec<(u16, FailureKind)> {
    vec![
        (429, FailureKind::Retryable),
        (500, FailureKind::Retryable),
        (502, FailureKind::Retryable),
        (503, FailureKind::Retryable),
        (400, FailureKind::Permanent),
    ]
}

/// A log sink for the duration of a test: everything `tracing` emits on this thread, at every
/// level, ends up in the buffer.
#[derive(Clone, Default)]
pub struct LogBuffer(Arc<Mutex<Vec<u8>>>);

impl Write for LogBuffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl LogBuffer {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }

    /// Installs a TRACE-level subscriber writing here, for this thread, until the guard drops.
    /// Tests using it run on tokio's current-thread runtime, so every task they spawn logs here.
    pub fn install(&self) -> tracing::subscriber::DefaultGuard {
        let buf = self.clone();
        let sub = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .with_writer(move || buf.clone())
            .finish();
        tracing::subscriber::set_default(sub)
    }
}

fn t(s: i64) -> chrono::DateTime<chrono::Utc> {
    chrono::Utc.timestamp_opt(1_700_000_000 + s, 0).unwrap()
}

fn labels(kv: &[(&str, &str)]) -> Labels {
    kv.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// A realistic one-alert notification for `receiver`: a journey latency page with its run,
/// failing step, error, timings, screenshot and runbook.
pub fn notification(receiver: &str, status: Status) -> Notification {
    let alert = AlertInfo {
        fingerprint: "f00d".into(),
        status,
        labels: labels(&[
            ("alertname", "journey_latency_high"),
            ("severity", "page"),
            ("check", "align_category"),
            ("target", "rvp"),
        ]),
        annotations: labels(&[
            ("summary", "align_category p95 above 400 ms"),
            ("runbook_url", "https://runbooks.example/journey-latency"),
        ]),
        starts_at: t(0),
        ends_at: (status == Status::Resolved).then(|| t(600)),
        condition: Some(Condition {
            aggregate: "p95".into(),
            value: Some(612.0),
            op: ">".into(),
            threshold: 400.0,
            unit: "ms".into(),
            window: "5m".into(),
        }),
        affected: Vec::new(),
        run: Some(RunEvidence {
            run_id: "run-1".into(),
            check: "align_category".into(),
            target: "rvp".into(),
            location: "eu-west".into(),
            outcome: "fail".into(),
            started_at: t(-5),
            total_ms: 1890.0,
            failing_step: Some("open category".into()),
            error: Some("timed out waiting for #grid".into()),
            steps: vec![
                StepTiming {
                    name: "login".into(),
                    latency_ms: 230.0,
                    outcome: "pass".into(),
                },
                StepTiming {
                    name: "open category".into(),
                    latency_ms: 1660.0,
                    outcome: "fail".into(),
                },
            ],
            run_url: "http://synmon.test/runs/run-1".into(),
            screenshot_path: None,
            screenshot_url: Some("http://synmon.test/runs/run-1/screenshot.png".into()),
            failing_locations: vec!["eu-west".into()],
            trace_id: None,
            trace_url: None,
        }),
    };
    Notification {
        receiver: receiver.into(),
        group_key: "{}/{severity=~\"page\"}:{alertname=\"journey_latency_high\"}".into(),
        group_labels: labels(&[("alertname", "journey_latency_high")]),
        common_labels: alert.labels.clone(),
        common_annotations: alert.annotations.clone(),
        status,
        alerts: vec![alert],
        external_url: "http://synmon.test".into(),
        test: false,
        created_at: t(30),
    }
}

fn ctx() -> SendContext {
    SendContext {
        group_state: None,
        outbox_id: 1,
        attempt: 1,
    }
}

/// An origin nobody listens on: bound, then released.
async fn closed_origin() -> String {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    drop(l);
    format!("http://{addr}")
}

/// Runs the whole compliance check on `s`. Panics (with the receiver's label) on the first
/// violation.
pub async fn check_compliance(s: Subject) {
    let logs = LogBuffer::default();
    let guard = logs.install();
    tracing::info!(receiver = s.label, "compliance: start");
    let label = s.label;
    let r = (s.build)(&s.origin);
    let mut texts: Vec<String> = Vec::new();

    // (d) secrets() names every configured secret, so the core can scrub them.
    let held: Vec<Secret> = r.secrets();
    for secret in &s.secrets {
        assert!(
            held.iter().any(|h| h.expose().contains(secret.as_str())),
            "{label}: secrets() does not return a configured secret"
        );
    }

    // (a) a firing and then a resolved notification are delivered.
    let firing = notification(r.name(), Status::Firing);
    let resolved = notification(r.name(), Status::Resolved);
    for (i, n) in [&firing, &resolved].into_iter().enumerate() {
        let d = r
            .send(n, &ctx())
            .await
            .unwrap_or_else(|e| panic!("{label}: {:?} not delivered: {e}", n.status));
        assert!(!d.response.is_empty(), "{label}: empty Delivered.response");
        assert_eq!(s.controls.accepted(), i + 1, "{label}: fake did not accept");
        texts.push(d.response);
    }

    // (b) classification of what the server answers.
    for (status, kind) in &s.classification {
        let before = s.controls.accepted();
        s.controls.fail_next(1, *status);
        let e = r
            .send(&firing, &ctx())
            .await
            .expect_err(&format!("{label}: HTTP {status} must fail"));
        assert_eq!(e.kind, *kind, "{label}: HTTP {status} classified {e:?}");
        if *status == 429 {
            assert_eq!(
                e.retry_after,
                Some(s.controls.retry_after()),
                "{label}: 429 must carry the server's Retry-After"
            );
        }
        assert_eq!(s.controls.accepted(), before, "{label}: {status} accepted");
        texts.push(e.message.clone());
        texts.push(format!("{e:?} {e}"));
    }
    for (code, kind) in &s.refusals {
        let before = s.controls.accepted();
        s.controls.fail_next_refusal(1, code);
        let e = r
            .send(&firing, &ctx())
            .await
            .expect_err(&format!("{label}: `{code}` must fail"));
        assert_eq!(e.kind, *kind, "{label}: `{code}` classified {e:?}");
        assert!(e.message.contains(code), "{label}: `{code}` not named: {e}");
        assert_eq!(s.controls.accepted(), before, "{label}: `{code}` accepted");
        texts.push(e.message.clone());
        texts.push(format!("{e:?} {e}"));
    }
    // The injected failures are used up: the next attempt goes through.
    r.send(&firing, &ctx())
        .await
        .unwrap_or_else(|e| panic!("{label}: delivery after failures: {e}"));

    // Network failures: a port nobody listens on, and the fake down then back.
    let refused = (s.build)(&closed_origin().await);
    let e = refused
        .send(&firing, &ctx())
        .await
        .expect_err("connection refused must fail");
    assert_eq!(e.kind, FailureKind::Retryable, "{label}: refused: {e:?}");
    texts.push(format!("{e:?} {e}"));
    s.controls.set_down(true);
    let e = r
        .send(&firing, &ctx())
        .await
        .expect_err("a down server must fail");
    assert_eq!(e.kind, FailureKind::Retryable, "{label}: down: {e:?}");
    texts.push(format!("{e:?} {e}"));
    s.controls.set_down(false);
    let before = s.controls.accepted();
    r.send(&firing, &ctx())
        .await
        .unwrap_or_else(|e| panic!("{label}: delivery after the fake came back: {e}"));
    assert_eq!(s.controls.accepted(), before + 1);

    // (c) no secret in any error, response or log line.
    drop(guard);
    let log = logs.text();
    assert!(
        log.contains("compliance: start"),
        "{label}: the log capture did not work"
    );
    for secret in &s.secrets {
        for t in &texts {
            assert!(!t.contains(secret.as_str()), "{label}: a secret in `{t}`");
        }
        assert!(
            !log.contains(secret.as_str()),
            "{label}: a secret in the logs:\n{log}"
        );
    }
}

// ---- the receivers ------------------------------------------------------------------------

const WEBHOOK_BEARER: &str = "whk-bearer-5f1d2c3b4a";
const WEBHOOK_URL_TOKEN: &str = "urltok-9a8b7c6d5e";

fn pagerduty_at(origin: &str, source: Option<&str>) -> PagerDuty {
    synmon::tls::install();
    PagerDuty::new(PagerDutyConfig {
        name: "pagerduty".into(),
        url: format!("{origin}/v2/enqueue").parse().unwrap(),
        routing_key: Secret::new(TEST_ROUTING_KEY),
        source: source.map(str::to_string),
        timeout: Duration::from_secs(5),
    })
    .unwrap()
}

#[tokio::test]
async fn webhook_receiver_is_compliant() {
    let path = format!("/hook/{WEBHOOK_URL_TOKEN}");
    let fake = FakeWebhook::start_with(&path, Some(WEBHOOK_BEARER)).await;
    check_compliance(Subject {
        label: "webhook",
        origin: fake.origin(),
        build: Box::new(move |origin| {
            synmon::tls::install();
            Arc::new(
                Webhook::new(WebhookConfig {
                    name: "hook".into(),
                    url: Secret::new(format!("{origin}{path}")),
                    bearer_token: Some(Secret::new(WEBHOOK_BEARER)),
                    max_alerts: 0,
                    timeout: Duration::from_secs(5),
                })
                .unwrap(),
            )
        }),
        controls: fake.controls(),
        secrets: vec![WEBHOOK_BEARER.into(), WEBHOOK_URL_TOKEN.into()],
        classification: standard_classification(),
        refusals: vec![],
    })
    .await;
    // The fake checked every body against Alertmanager's contract.
    assert!(fake.rejected().is_empty(), "{:?}", fake.rejected());
    let bodies = fake.bodies();
    assert_eq!(bodies[0]["status"], "firing");
    assert_eq!(bodies[1]["status"], "resolved");
}

#[tokio::test]
async fn pagerduty_receiver_is_compliant() {
    let fake = FakePagerDuty::start().await;
    check_compliance(Subject {
        label: "pagerduty",
        origin: fake.origin(),
        build: Box::new(|origin| Arc::new(pagerduty_at(origin, None))),
        controls: fake.controls(),
        secrets: vec![TEST_ROUTING_KEY.into()],
        classification: standard_classification(),
        refusals: vec![],
    })
    .await;
    assert!(fake.rejected().is_empty(), "{:?}", fake.rejected());
}

#[tokio::test]
async fn slack_receiver_is_compliant() {
    let fake = Arc::new(FakeSlack::start().await);
    let controls: Arc<dyn FakeControls> = fake.clone();
    check_compliance(Subject {
        label: "slack",
        origin: format!("http://{}", fake.addr()),
        build: Box::new(|origin| {
            Arc::new(
                Slack::new(SlackConfig {
                    name: "slack-alerts".into(),
                    api_url: format!("{origin}/api").parse().unwrap(),
                    token: Secret::new(fake_slack::TOKEN),
                    channel: "#alerts".into(),
                    upload_screenshots: true,
                    timeout: Duration::from_secs(5),
                })
                .unwrap(),
            )
        }),
        controls,
        secrets: vec![fake_slack::TOKEN.into()],
        // HTTP statuses come from Slack's edge (5xx) and rate limiter (429); its Web API
        // itself refuses with `ok:false` codes (all of them: notify/slack.rs).
        classification: standard_classification(),
        refusals: vec![
            ("ratelimited", FailureKind::Retryable),
            ("channel_not_found", FailureKind::Permanent),
            ("invalid_auth", FailureKind::Permanent),
        ],
    })
    .await;
    // Every call reached the fake with the token and was a post (no update, no upload: the
    // suite sends without group state or screenshot file).
    let calls = fake.calls();
    assert!(calls.iter().all(|c| c.authorized), "{calls:?}");
    assert!(calls.iter().all(|c| c.method == "chat.postMessage"));
    assert_eq!(
        fake.top_level().len(),
        4,
        "firing, resolved, two recoveries"
    );
}

// ---- PagerDuty against its fake ----------------------------------------------------------

#[tokio::test]
async fn pagerduty_trigger_then_resolve_share_the_dedup_key() {
    let fake = FakePagerDuty::start().await;
    let pd = pagerduty_at(&fake.origin(), Some("synmon-eu"));
    let firing = notification("pagerduty", Status::Firing);
    let d = pd.send(&firing, &ctx()).await.unwrap();
    assert_eq!(d.response, "202 Accepted");
    pd.send(&notification("pagerduty", Status::Resolved), &ctx())
        .await
        .unwrap();
    let ev = fake.wait_for(2, WAIT).await;
    assert_eq!(ev.len(), 2);
    assert_eq!(ev[0]["event_action"], "trigger");
    assert_eq!(ev[1]["event_action"], "resolve");
    assert_eq!(ev[0]["dedup_key"], firing.dedup_key());
    assert_eq!(ev[1]["dedup_key"], ev[0]["dedup_key"]);
    assert_eq!(ev[0]["routing_key"], TEST_ROUTING_KEY);
    let p = &ev[0]["payload"];
    assert_eq!(p["source"], "synmon-eu");
    assert_eq!(p["severity"], "critical");
    assert_eq!(p["component"], "align_category");
    assert_eq!(p["group"], "rvp");
    assert_eq!(p["class"], "journey_latency_high");
    assert_eq!(
        p["custom_details"]["alerts"][0]["failing_step"],
        "open category"
    );
    assert_eq!(ev[0]["links"][0]["href"], "http://synmon.test/runs/run-1");
    assert_eq!(
        ev[0]["links"][1]["href"],
        "https://runbooks.example/journey-latency"
    );
    assert_eq!(
        ev[0]["images"][0]["src"],
        "http://synmon.test/runs/run-1/screenshot.png"
    );
    // A resolve is only the key, the dedup_key and the action.
    assert_eq!(ev[1].as_object().unwrap().len(), 3, "{}", ev[1]);
}

#[tokio::test]
async fn pagerduty_drops_custom_details_over_512_kb_and_is_accepted() {
    let fake = FakePagerDuty::start().await;
    let pd = pagerduty_at(&fake.origin(), None);
    let mut n = notification("pagerduty", Status::Firing);
    n.alerts[0].run.as_mut().unwrap().error = Some("stack frame\n".repeat(60_000));
    pd.send(&n, &ctx()).await.unwrap();
    let ev = fake.wait_for(1, WAIT).await;
    let details = &ev[0]["payload"]["custom_details"];
    assert!(details.get("alerts").is_none(), "{details}");
    assert!(
        details["dropped"]
            .as_str()
            .unwrap()
            .starts_with("custom_details dropped"),
        "{details}"
    );
    assert!(serde_json::to_vec(&ev[0]).unwrap().len() <= pagerduty::MAX_EVENT_BYTES);
}

#[tokio::test]
async fn pagerduty_summary_is_cut_at_1024_chars_and_accepted() {
    let fake = FakePagerDuty::start().await;
    let pd = pagerduty_at(&fake.origin(), None);
    let mut n = notification("pagerduty", Status::Firing);
    n.alerts[0]
        .annotations
        .insert("summary".into(), "ü".repeat(5000));
    pd.send(&n, &ctx()).await.unwrap();
    let ev = fake.wait_for(1, WAIT).await;
    let summary = ev[0]["payload"]["summary"].as_str().unwrap();
    assert_eq!(summary.chars().count(), 1024);
    assert!(summary.ends_with('…'));
    assert!(summary.starts_with("[FIRING:1] journey_latency_high"));
}

#[tokio::test]
async fn pagerduty_severity_mapping_table() {
    let fake = FakePagerDuty::start().await;
    let pd = pagerduty_at(&fake.origin(), None);
    let table = [
        ("page", "critical"),
        ("critical", "critical"),
        ("error", "error"),
        ("warning", "warning"),
        ("ticket", "warning"),
        ("info", "info"),
        ("someday", "warning"),
    ];
    for (rule, _) in table {
        let mut n = notification("pagerduty", Status::Firing);
        n.common_labels.insert("severity".into(), rule.into());
        pd.send(&n, &ctx()).await.unwrap();
    }
    let ev = fake.wait_for(table.len(), WAIT).await;
    for ((rule, want), e) in table.iter().zip(&ev) {
        assert_eq!(e["payload"]["severity"], *want, "rule severity {rule}");
    }
}

#[tokio::test]
async fn pagerduty_400_is_permanent_with_pagerdutys_reason_and_no_key() {
    let fake = FakePagerDuty::start().await;
    // 31 characters: PagerDuty refuses it.
    let short_key = &TEST_ROUTING_KEY[..31];
    let pd = PagerDuty::new(PagerDutyConfig {
        name: "pagerduty".into(),
        url: fake.url().parse().unwrap(),
        routing_key: Secret::new(short_key),
        source: None,
        timeout: Duration::from_secs(5),
    })
    .unwrap();
    let e = pd
        .send(&notification("pagerduty", Status::Firing), &ctx())
        .await
        .unwrap_err();
    assert_eq!(e.kind, FailureKind::Permanent);
    assert!(
        e.message.starts_with("HTTP 400 Bad Request"),
        "{}",
        e.message
    );
    assert!(e.message.contains("routing_key"), "{}", e.message);
    assert!(!e.message.contains(short_key));
    assert_eq!(fake.events().len(), 0);
}

#[tokio::test]
async fn pagerduty_waits_while_the_fake_holds_and_delivers_on_release() {
    let fake = FakePagerDuty::start().await;
    let pd = Arc::new(pagerduty_at(&fake.origin(), None));
    fake.hold(true);
    let send = tokio::spawn({
        let pd = pd.clone();
        async move {
            pd.send(&notification("pagerduty", Status::Firing), &ctx())
                .await
        }
    });
    fake.wait_for_held(1, WAIT).await;
    assert!(!send.is_finished());
    assert!(fake.events().is_empty());
    fake.hold(false);
    send.await.unwrap().unwrap();
    assert_eq!(fake.wait_for(1, WAIT).await.len(), 1);
    assert_eq!(fake.held(), 0);
}

// ---- the fakes check the protocol ---------------------------------------------------------

#[tokio::test]
async fn fake_pagerduty_refuses_what_pagerduty_refuses() {
    let fake = FakePagerDuty::start().await;
    synmon::tls::install();
    let c = reqwest::Client::new();
    let good = serde_json::json!({
        "routing_key": TEST_ROUTING_KEY,
        "event_action": "trigger",
        "payload": {"summary": "s", "source": "x", "severity": "info"},
    });
    let cases: Vec<(&str, serde_json::Value)> = vec![
        ("event_action", {
            let mut v = good.clone();
            v["event_action"] = "escalate".into();
            v
        }),
        (
            "dedup_key",
            serde_json::json!({
                "routing_key": TEST_ROUTING_KEY, "event_action": "resolve"
            }),
        ),
        ("payload.source", {
            let mut v = good.clone();
            v["payload"]["source"] = "".into();
            v
        }),
        ("payload.severity", {
            let mut v = good.clone();
            v["payload"]["severity"] = "page".into();
            v
        }),
        ("payload.summary", {
            let mut v = good.clone();
            v["payload"]["summary"] = "x".repeat(1025).into();
            v
        }),
        ("payload", {
            let mut v = good.clone();
            v.as_object_mut().unwrap().remove("payload");
            v
        }),
    ];
    for (what, body) in cases {
        let r = c.post(fake.url()).json(&body).send().await.unwrap();
        assert_eq!(r.status(), 400, "{what}");
        let j: serde_json::Value = r.json().await.unwrap();
        assert_eq!(j["status"], "invalid event");
        assert!(j["errors"].to_string().contains(what), "{what}: {j}");
    }
    // Not JSON content.
    let r = c
        .post(fake.url())
        .body(good.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    // Over 512 KB.
    let mut big = good.clone();
    big["payload"]["custom_details"] = serde_json::json!({"x": "y".repeat(600 * 1024)});
    let r = c.post(fake.url()).json(&big).send().await.unwrap();
    assert_eq!(r.status(), 400);
    assert!(fake.events().is_empty());
    // And accepts a valid one with PagerDuty's answer.
    let r = c.post(fake.url()).json(&good).send().await.unwrap();
    assert_eq!(r.status(), 202);
    let j: serde_json::Value = r.json().await.unwrap();
    assert_eq!(j["status"], "success");
    assert_eq!(j["message"], "Event processed");
    assert!(j["dedup_key"].is_string());
    assert_eq!(fake.events().len(), 1);
}

#[tokio::test]
async fn fake_webhook_checks_auth_path_and_alertmanager_fields() {
    let fake = FakeWebhook::start_with("/hook/tok", Some("bearer-1")).await;
    synmon::tls::install();
    let c = reqwest::Client::new();
    let body = serde_json::to_value(synmon::notify::webhook::body(
        &notification("hook", Status::Firing),
        0,
    ))
    .unwrap();
    let no_auth = c.post(fake.url()).json(&body).send().await.unwrap();
    assert_eq!(no_auth.status(), 401);
    let wrong_path = c
        .post(format!("{}/hook/other", fake.origin()))
        .bearer_auth("bearer-1")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(wrong_path.status(), 404);
    let mut old = body.clone();
    old["version"] = "3".into();
    old["alerts"][0]
        .as_object_mut()
        .unwrap()
        .remove("fingerprint");
    let r = c
        .post(fake.url())
        .bearer_auth("bearer-1")
        .json(&old)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let why = r.text().await.unwrap();
    assert!(
        why.contains("version") && why.contains("fingerprint"),
        "{why}"
    );
    let ok = c
        .post(fake.url())
        .bearer_auth("bearer-1")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    assert_eq!(fake.wait_for(1, WAIT).await, vec![body]);
}

#[tokio::test]
async fn fake_answers_injected_failures_then_recovers() {
    let fake = FakePagerDuty::start().await;
    let pd = pagerduty_at(&fake.origin(), None);
    let n = notification("pagerduty", Status::Firing);
    fake.set_retry_after(3);
    fake.fail_next(2, 429);
    fake.fail_next(1, 500);
    for want in [
        Some(Duration::from_secs(3)),
        Some(Duration::from_secs(3)),
        None,
    ] {
        let e = pd.send(&n, &ctx()).await.unwrap_err();
        assert_eq!(e.kind, FailureKind::Retryable);
        assert_eq!(e.retry_after, want);
    }
    pd.send(&n, &ctx()).await.unwrap();
    assert_eq!(fake.requests(), 4);
    assert_eq!(fake.accepted(), 1);
}

#[tokio::test]
async fn fake_webhook_goes_down_and_comes_back_on_the_same_url() {
    let fake = FakeWebhook::start().await;
    synmon::tls::install();
    let body = synmon::notify::webhook::body(&notification("hook", Status::Firing), 0);
    fake.set_down(true);
    // A fresh client has no pooled connection: the fake closes the new one unanswered.
    let r = reqwest::Client::new()
        .post(fake.url())
        .json(&body)
        .send()
        .await;
    assert!(r.is_err(), "a down fake answered: {r:?}");
    fake.set_down(false);
    let r = reqwest::Client::new()
        .post(fake.url())
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    fake.wait_for_requests(1, WAIT).await;
    // The closed connection never reached a handler.
    assert_eq!(fake.requests(), 1);
    assert_eq!(fake.bodies().len(), 1);
}

#[tokio::test]
async fn a_held_request_whose_client_went_away_is_never_recorded() {
    let fake = FakePagerDuty::start().await;
    synmon::tls::install();
    let pd = PagerDuty::new(PagerDutyConfig {
        name: "pagerduty".into(),
        url: fake.url().parse().unwrap(),
        routing_key: Secret::new(TEST_ROUTING_KEY),
        source: None,
        // The client gives up while the fake holds: what a killed sender looks like to it.
        timeout: Duration::from_millis(300),
    })
    .unwrap();
    fake.hold(true);
    let e = pd
        .send(&notification("pagerduty", Status::Firing), &ctx())
        .await
        .unwrap_err();
    assert_eq!(e.kind, FailureKind::Retryable);
    assert_eq!(e.message, "timed out");
    fake.wait_for_no_held(WAIT).await;
    fake.hold(false);
    assert!(fake.events().is_empty());
    assert_eq!(fake.requests(), 1);
}

#[tokio::test]
async fn pagerduty_scrubs_a_routing_key_echoed_by_the_server() {
    // Not PagerDuty's behaviour, but a proxy in between may quote the request in its error.
    async fn echo(axum::Json(ev): axum::Json<serde_json::Value>) -> axum::response::Response {
        use axum::response::IntoResponse;
        let key = ev["routing_key"].as_str().unwrap_or("").to_string();
        (
            axum::http::StatusCode::BAD_REQUEST,
            axum::Json(serde_json::json!({
                "status": "invalid event",
                "message": format!("unknown routing key {key}"),
                "errors": [key],
            })),
        )
            .into_response()
    }
    let app = axum::Router::new().route("/v2/enqueue", axum::routing::post(echo));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let origin = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    let e = pagerduty_at(&origin, None)
        .send(&notification("pagerduty", Status::Firing), &ctx())
        .await
        .unwrap_err();
    assert_eq!(e.kind, FailureKind::Permanent);
    assert!(!e.message.contains(TEST_ROUTING_KEY), "{}", e.message);
    assert!(
        e.message.contains("unknown routing key ***"),
        "{}",
        e.message
    );
}
