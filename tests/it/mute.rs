//! Issue 7: control of the noise without losing the signal.
//! - Alertmanager's control acceptance scenarios (`test/with_api_v2/acceptance/inhibit_test.go`,
//!   `silence_test.go`) on the notification harness of `notify_pipeline` (manual clock, real
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

use super::fake_webhook::FakeWebhook;
use super::notify_pipeline::{Harness, alert, t0};

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
