//! Alertmanager's delivery acceptance scenarios (`test/with_api_v2/acceptance/send_test.go`),
//! ported to synmon's pipeline with a manual clock and exact notification counts: repeat,
//! batching/grouping, retry with one failing receiver, resolved and resolved-filter; plus
//! durability: a restart does not re-send within `repeat_interval` and still resolves, a
//! reload or restart that inserts a route before another keeps that route's groups (no page,
//! same `dedup_key`), and a receiver outage loses nothing and keeps each group's order.
//!
//! Everything is real but the clock: a SQLite store file, the webhook receiver speaking HTTP
//! to a local fake that checks Alertmanager's webhook JSON.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use serde_json::Value;
use synmon::clock::{Clock, ManualClock};
use synmon::notify::NotifyConfig;
use synmon::notify::config::{RawReceiver, RawRoute};
use synmon::notify::deliver::Backoff;
use synmon::notify::dispatch::IncomingAlert;
use synmon::notify::pipeline::Notifier;
use synmon::store::Store;

use crate::fakes::pagerduty::{FakePagerDuty, TEST_ROUTING_KEY};
use crate::fakes::webhook::FakeWebhook;

pub(crate) fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 27, 12, 0, 0).unwrap()
}

/// `receivers:` + `route:` YAML, validated as the config loader does.
fn notify_config(yaml: &str) -> NotifyConfig {
    #[derive(serde::Deserialize)]
    struct Doc {
        receivers: Vec<RawReceiver>,
        route: RawRoute,
    }
    let d: Doc = yaml_serde::from_str(yaml).expect("test YAML");
    let mut errs = Vec::new();
    let c = synmon::notify::config::validate(
        d.receivers,
        Some(d.route),
        Path::new("."),
        &mut |p, m| errs.push(format!("{p}: {m}")),
    );
    assert!(errs.is_empty(), "{errs:?}");
    c
}

pub(crate) struct Harness {
    pub(crate) clock: ManualClock,
    pub(crate) store: Store,
    cfg: NotifyConfig,
    pub(crate) notifier: Arc<Notifier>,
    _dir: tempfile::TempDir,
    /// Seconds since t0.
    pub(crate) s: i64,
}

const BACKOFF: Backoff = Backoff {
    initial: Duration::from_secs(1),
    max: Duration::from_secs(60),
    jitter: false,
};

impl Harness {
    pub(crate) async fn new(yaml: &str) -> Harness {
        synmon::tls::install();
        let dir = tempfile::tempdir().unwrap();
        let url = synmon::config::Secret::new(format!(
            "sqlite://{}",
            dir.path().join("synmon.db").display()
        ));
        let store = Store::connect(&url).await.unwrap();
        Harness::on_store(yaml, store, dir).await
    }

    /// The pipeline on a given store (e.g. a PostgreSQL database shared with other replicas).
    pub(crate) async fn on_store(yaml: &str, store: Store, dir: tempfile::TempDir) -> Harness {
        let clock = ManualClock::new(t0());
        let cfg = notify_config(yaml);
        let notifier = Notifier::new(
            &cfg,
            store.clone(),
            Arc::new(clock.clone()),
            BACKOFF,
            "http://synmon.test:3005",
            None,
        )
        .await
        .map(Arc::new)
        .unwrap();
        Harness {
            clock,
            store,
            cfg,
            notifier,
            _dir: dir,
            s: 0,
        }
    }

    /// The daemon restarting on the same store (same clock).
    async fn restart(&mut self) {
        self.notifier = Notifier::new(
            &self.cfg,
            self.store.clone(),
            Arc::new(self.clock.clone()),
            BACKOFF,
            "http://synmon.test:3005",
            None,
        )
        .await
        .map(Arc::new)
        .unwrap();
    }

    /// The daemon restarting on the same store with an edited config.
    async fn restart_with(&mut self, yaml: &str) {
        self.cfg = notify_config(yaml);
        self.restart().await;
    }

    /// A config reload (SIGHUP) of the running notifier.
    async fn reload(&mut self, yaml: &str) {
        self.cfg = notify_config(yaml);
        self.notifier
            .reload(&self.cfg, "http://synmon.test:3005")
            .await;
    }

    /// What the evaluator reports as firing now.
    pub(crate) async fn fire(&self, alerts: &[IncomingAlert]) {
        self.notifier.sync(alerts).await.unwrap();
        self.notifier.deliver_all().await.unwrap();
    }

    /// One second passes: due groups flush, due notifications are delivered.
    pub(crate) async fn tick(&mut self) {
        self.clock.advance(chrono::Duration::seconds(1));
        self.s += 1;
        self.notifier.flush().await.unwrap();
        self.notifier.deliver_all().await.unwrap();
    }

    /// Ticks until second `until`, returning the seconds at which `hook` accepted a body.
    pub(crate) async fn run_until(&mut self, until: i64, hook: &FakeWebhook) -> Vec<i64> {
        let mut at = Vec::new();
        while self.s < until {
            let before = hook.bodies().len();
            self.tick().await;
            for _ in before..hook.bodies().len() {
                at.push(self.s);
            }
        }
        at
    }
}

pub(crate) fn alert(name: &str, pairs: &[(&str, &str)]) -> IncomingAlert {
    let mut labels: BTreeMap<String, String> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    labels.insert("alertname".into(), name.into());
    let fingerprint = synmon::rules::eval::fingerprint(name, &labels);
    IncomingAlert {
        fingerprint,
        annotations: BTreeMap::from([("summary".into(), format!("{name} {pairs:?}"))]),
        labels,
        starts_at: t0(),
        condition: None,
        run: None,
        affected: Vec::new(),
    }
}

fn one_hook(url: &str, route: &str) -> String {
    format!(
        r#"
receivers:
  - {{ name: hook, type: webhook, url: "{url}" }}
route:
  receiver: hook
{route}
"#
    )
}

fn statuses(body: &Value) -> Vec<(String, String)> {
    body["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["labels"]["check"].as_str().unwrap_or("").to_string(),
                a["status"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// TestRepeat: a group that keeps firing is re-notified once per `repeat_interval`, checked
/// at each `group_interval`, and not more.
#[tokio::test]
async fn repeat() {
    let hook = FakeWebhook::start().await;
    let mut h = Harness::new(&one_hook(
        &hook.url(),
        "  group_by: [alertname]\n  group_wait: 1s\n  group_interval: 2s\n  repeat_interval: 5s",
    ))
    .await;
    h.fire(&[alert("latency_high", &[("check", "a")])]).await;
    let at = h.run_until(14, &hook).await;
    // First after group_wait (1 s); flushes at 3, 5, 7, ...; repeat once 5 s have passed.
    assert_eq!(at, [1, 7, 13]);
    for b in hook.bodies() {
        assert_eq!(b["status"], "firing");
        assert_eq!(statuses(&b), [("a".to_string(), "firing".to_string())]);
    }
}

/// TestBatching: alerts of one group arriving together go out as one notification; an alert
/// joining a group after its first flush waits for the next `group_interval`; other groups go
/// out separately.
#[tokio::test]
async fn batching_and_grouping() {
    let hook = FakeWebhook::start().await;
    let mut h = Harness::new(&one_hook(
        &hook.url(),
        "  group_by: [alertname]\n  group_wait: 2s\n  group_interval: 5s\n  repeat_interval: 1h",
    ))
    .await;
    let x1 = alert("x", &[("check", "c1")]);
    let x2 = alert("x", &[("check", "c2")]);
    let x3 = alert("x", &[("check", "c3")]);
    let y1 = alert("y", &[("check", "c1")]);
    h.fire(&[x1.clone(), x2.clone(), y1.clone()]).await;
    let at = h.run_until(3, &hook).await;
    assert_eq!(at, [2, 2], "one notification per group after group_wait");
    h.fire(&[x1, x2, x3, y1]).await;
    let at = h.run_until(20, &hook).await;
    assert_eq!(
        at,
        [7],
        "the grown group waits for its group_interval; y is unchanged"
    );
    let bodies = hook.bodies();
    let by_name = |b: &Value| b["groupLabels"]["alertname"].as_str().unwrap().to_string();
    let mut first: Vec<(String, usize)> = bodies[..2]
        .iter()
        .map(|b| (by_name(b), b["alerts"].as_array().unwrap().len()))
        .collect();
    first.sort();
    assert_eq!(first, [("x".to_string(), 2), ("y".to_string(), 1)]);
    assert_eq!(by_name(&bodies[2]), "x");
    let mut third = statuses(&bodies[2]);
    third.sort();
    assert_eq!(
        third,
        [("c1", "firing"), ("c2", "firing"), ("c3", "firing")]
            .map(|(a, b)| (a.to_string(), b.to_string()))
    );
    assert_eq!(bodies[2]["commonLabels"]["alertname"], "x");
    assert!(bodies[2]["commonLabels"].get("check").is_none());
}

/// TestRetry: one receiver failing is retried on its own backoff (1 s, 2 s) until it accepts;
/// the healthy receiver of the same alert gets exactly one notification, on time.
#[tokio::test]
async fn retry_with_one_failing_receiver() {
    let good = FakeWebhook::start().await;
    let bad = FakeWebhook::start().await;
    bad.fail_next(2, 500);
    let mut h = Harness::new(&format!(
        r#"
receivers:
  - {{ name: good, type: webhook, url: "{}" }}
  - {{ name: bad, type: webhook, url: "{}" }}
route:
  receiver: console
  group_by: [alertname]
  group_wait: 1s
  group_interval: 1m
  routes:
    - {{ matchers: {{ team: ops }}, receiver: good, continue: true }}
    - {{ matchers: {{ team: ops }}, receiver: bad }}
"#,
        good.url(),
        bad.url()
    ))
    .await;
    h.fire(&[alert("down", &[("team", "ops")])]).await;
    let mut good_at = Vec::new();
    let mut bad_at = Vec::new();
    while h.s < 10 {
        let (g, b) = (good.bodies().len(), bad.bodies().len());
        h.tick().await;
        good_at.extend((g..good.bodies().len()).map(|_| h.s));
        bad_at.extend((b..bad.bodies().len()).map(|_| h.s));
    }
    assert_eq!(
        good_at,
        [1],
        "the healthy receiver is neither delayed nor repeated"
    );
    // Attempts at 1 (500), 2 (500, after 1 s), 4 (accepted, after 2 s).
    assert_eq!(bad_at, [4]);
    assert_eq!(bad.requests(), 3);
    let rows = h.store.outbox_recent(10).await.unwrap();
    let bad_row = rows.iter().find(|r| r.receiver == "bad").unwrap();
    assert_eq!(bad_row.attempts, 3);
    assert_eq!(bad_row.status, synmon::store::OutboxStatus::Sent);
}

/// TestResolved: with `send_resolved`, a resolve follows at the next flush, with `endsAt`.
#[tokio::test]
async fn resolved() {
    let hook = FakeWebhook::start().await;
    let mut h = Harness::new(&one_hook(
        &hook.url(),
        "  group_by: [alertname]\n  group_wait: 1s\n  group_interval: 2s\n  repeat_interval: 1h\n  send_resolved: true",
    ))
    .await;
    let a = alert("down", &[("check", "a")]);
    h.fire(std::slice::from_ref(&a)).await;
    assert_eq!(h.run_until(2, &hook).await, [1]);
    h.fire(&[]).await; // resolved at s=2
    assert_eq!(h.run_until(10, &hook).await, [3]);
    let b = &hook.bodies()[1];
    assert_eq!(b["status"], "resolved");
    assert_eq!(statuses(b), [("a".to_string(), "resolved".to_string())]);
    assert_eq!(b["alerts"][0]["endsAt"], "2026-11-27T12:00:02.000Z");
}

/// TestResolvedFilter: without `send_resolved`, resolved alerts are never sent, a group whose
/// alerts all resolved goes quiet, and an alert firing again is notified again.
#[tokio::test]
async fn resolved_filter() {
    let hook = FakeWebhook::start().await;
    let mut h = Harness::new(&one_hook(
        &hook.url(),
        "  group_by: [alertname]\n  group_wait: 1s\n  group_interval: 2s\n  repeat_interval: 1h\n  send_resolved: false",
    ))
    .await;
    let a = alert("down", &[("check", "a")]);
    let b = alert("down", &[("check", "b")]);
    h.fire(&[a.clone(), b.clone()]).await;
    assert_eq!(h.run_until(2, &hook).await, [1]);
    h.fire(std::slice::from_ref(&a)).await; // b resolves at 2
    assert_eq!(h.run_until(4, &hook).await, Vec::<i64>::new());
    h.fire(&[]).await; // a resolves at 4
    assert_eq!(h.run_until(6, &hook).await, Vec::<i64>::new());
    let again = IncomingAlert {
        starts_at: t0() + chrono::Duration::seconds(6),
        ..a.clone()
    };
    h.fire(&[again]).await; // a fires again at 6: a new group, flushed after group_wait
    assert_eq!(h.run_until(12, &hook).await, [7]);
    let bodies = hook.bodies();
    assert_eq!(
        statuses(&bodies[0]),
        [("a", "firing"), ("b", "firing")].map(|(x, y)| (x.to_string(), y.to_string()))
    );
    assert_eq!(
        statuses(&bodies[1]),
        [("a".to_string(), "firing".to_string())]
    );
    for b in &bodies {
        assert_eq!(b["status"], "firing");
    }
}

/// The notification log is persisted: a restart does not re-send within `repeat_interval`,
/// re-sends after it, and resolves an alert that cleared while the daemon was down.
#[tokio::test]
async fn restart_keeps_the_notification_log() {
    let hook = FakeWebhook::start().await;
    let mut h = Harness::new(&one_hook(
        &hook.url(),
        "  group_by: [alertname]\n  group_wait: 1s\n  group_interval: 2s\n  repeat_interval: 10s",
    ))
    .await;
    let a = alert("down", &[("check", "a")]);
    h.fire(std::slice::from_ref(&a)).await;
    assert_eq!(h.run_until(3, &hook).await, [1]);
    h.restart().await;
    h.fire(std::slice::from_ref(&a)).await;
    assert_eq!(
        h.run_until(10, &hook).await,
        Vec::<i64>::new(),
        "no re-send within repeat_interval"
    );
    // The restored group flushes group_wait after the restart (4), then every 2 s: the first
    // flush at least 10 s after the notification at 1 is at 12.
    assert_eq!(h.run_until(13, &hook).await, [12], "repeat after 10 s");
    h.restart().await;
    h.fire(&[]).await; // cleared while restarting (13): resolved at the first flush, 14
    assert_eq!(h.run_until(20, &hook).await, [14]);
    assert_eq!(hook.bodies()[2]["status"], "resolved");
}

/// A page route to PagerDuty, and with `insert`, a route before it (what an edit that adds a
/// team's route at the top of the tree does).
fn paging_config(pd: &FakePagerDuty, hook: &FakeWebhook, insert: bool) -> String {
    let inserted = if insert {
        "    - { matchers: { team: db }, receiver: hook }\n"
    } else {
        ""
    };
    format!(
        r#"
receivers:
  - {{ name: pd, type: pagerduty, url: "{}", routing_key: "{TEST_ROUTING_KEY}" }}
  - {{ name: hook, type: webhook, url: "{}" }}
route:
  receiver: console
  group_by: [alertname]
  group_wait: 1s
  group_interval: 2s
  repeat_interval: 1h
  send_resolved: true
  routes:
{inserted}    - {{ matchers: {{ severity: page }}, receiver: pd }}
"#,
        pd.url(),
        hook.url()
    )
}

/// `(event_action, dedup_key)` of every event PagerDuty accepted.
fn pd_events(pd: &FakePagerDuty) -> Vec<(String, String)> {
    pd.events()
        .iter()
        .map(|e| {
            (
                e["event_action"].as_str().unwrap().to_string(),
                e["dedup_key"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// Pages, then edits the tree with `edit` (a reload or a restart) to insert a route before
/// the paging one, and checks the open incident is left alone: no new trigger while the alert
/// keeps firing within `repeat_interval` (while the inserted route does take its alerts), and
/// the resolve carries the trigger's `dedup_key`, so PagerDuty closes the incident it opened.
async fn inserting_a_route_keeps_the_incident(restart: bool) {
    let pd = FakePagerDuty::start().await;
    let hook = FakeWebhook::start().await;
    let mut h = Harness::new(&paging_config(&pd, &hook, false)).await;
    let page = alert("down", &[("severity", "page")]);
    h.fire(std::slice::from_ref(&page)).await;
    h.run_until(3, &hook).await;
    let first = pd_events(&pd);
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].0, "trigger");

    let edited = paging_config(&pd, &hook, true);
    if restart {
        h.restart_with(&edited).await;
    } else {
        h.reload(&edited).await;
    }
    let db = alert("db_slow", &[("team", "db")]);
    h.fire(&[page.clone(), db]).await;
    h.run_until(30, &hook).await;
    let bodies = hook.bodies();
    assert_eq!(bodies.len(), 1, "the inserted route is live");
    assert_eq!(bodies[0]["groupLabels"]["alertname"], "db_slow");
    assert_eq!(
        pd_events(&pd),
        first,
        "no second page within repeat_interval"
    );

    h.fire(&[]).await;
    h.run_until(40, &hook).await;
    let events = pd_events(&pd);
    assert_eq!(events.len(), 2, "{events:?}");
    assert_eq!(events[1].0, "resolve");
    assert_eq!(events[1].1, first[0].1, "the same dedup_key");
    assert!(pd.rejected().is_empty(), "{:?}", pd.rejected());
}

/// A reload (SIGHUP) that inserts a route before the paging one: see
/// `inserting_a_route_keeps_the_incident`.
#[tokio::test]
async fn reload_inserting_a_route_before_keeps_the_group_and_its_dedup_key() {
    inserting_a_route_keeps_the_incident(false).await;
}

/// A restart with a config that inserts a route before the paging one: the group is restored
/// from the log under the same key (see `inserting_a_route_keeps_the_incident`).
#[tokio::test]
async fn restart_with_a_route_inserted_before_keeps_the_group_and_its_dedup_key() {
    inserting_a_route_keeps_the_incident(true).await;
}

/// A restart with the paging route's matchers edited (its key changes): the incident opened
/// under the old key is resolved with its own `dedup_key` (restored on a route that still
/// delivers to the same receiver), and the alert pages under the new key, as after a reload.
/// Without that, the old incident would stay open forever.
#[tokio::test]
async fn restart_with_the_paging_routes_matchers_edited_closes_the_old_incident() {
    let pd = FakePagerDuty::start().await;
    let hook = FakeWebhook::start().await;
    let mut h = Harness::new(&paging_config(&pd, &hook, false)).await;
    let page = alert("down", &[("severity", "page"), ("team", "web")]);
    h.fire(std::slice::from_ref(&page)).await;
    h.run_until(3, &hook).await;
    let first = pd_events(&pd);
    assert_eq!(first.len(), 1);

    let edited = paging_config(&pd, &hook, false).replace(
        "matchers: {{ severity: page }}"
            .replace("{{", "{")
            .replace("}}", "}")
            .as_str(),
        "matchers: { severity: page, team: web }",
    );
    assert_ne!(edited, paging_config(&pd, &hook, false));
    h.restart_with(&edited).await;
    h.fire(std::slice::from_ref(&page)).await;
    h.run_until(30, &hook).await;
    let events = pd_events(&pd);
    assert_eq!(events.len(), 3, "{events:?}");
    let resolve = events
        .iter()
        .find(|e| e.0 == "resolve")
        .expect("the old incident is resolved");
    assert_eq!(resolve.1, first[0].1, "with the old dedup_key");
    let trigger = events[1..]
        .iter()
        .find(|e| e.0 == "trigger")
        .expect("a page under the new key");
    assert_ne!(trigger.1, first[0].1);
    assert!(pd.rejected().is_empty(), "{:?}", pd.rejected());
}

/// Group keys are the same on every start of the same config: the notification log written
/// by one process is the one the next one dedups against, and the keys name routes by
/// content (`{}/{severity="page"}`), not position.
#[tokio::test]
async fn group_keys_are_identical_across_restarts() {
    let pd = FakePagerDuty::start().await;
    let hook = FakeWebhook::start().await;
    let mut h = Harness::new(&paging_config(&pd, &hook, false)).await;
    h.fire(&[alert("down", &[("severity", "page")])]).await;
    h.run_until(2, &hook).await;
    let before = h.store.notification_log().await.unwrap();
    h.restart().await;
    h.fire(&[alert("down", &[("severity", "page")])]).await;
    h.run_until(6, &hook).await;
    let after = h.store.notification_log().await.unwrap();
    assert_eq!(
        before, after,
        "nothing new was logged: same key, deduplicated"
    );
    assert_eq!(before.len(), 1);
    assert_eq!(before[0].route_id, r#"{}/{severity="page"}"#);
    assert_eq!(
        before[0].group_key,
        r#"{}/{severity="page"}:pd{alertname="down"}"#
    );
    assert_eq!(pd.events().len(), 1);
}

/// A receiver outage loses nothing: notifications wait in the outbox, retried with backoff,
/// and arrive after it comes back in the order they were written, per alert group.
#[tokio::test]
async fn outage_keeps_order_per_group() {
    let hook = FakeWebhook::start().await;
    let mut h = Harness::new(&one_hook(
        &hook.url(),
        "  group_by: [alertname]\n  group_wait: 1s\n  group_interval: 2s\n  repeat_interval: 1h\n  send_resolved: true",
    ))
    .await;
    hook.set_down(true);
    let a = alert("down", &[("check", "a")]);
    h.fire(std::slice::from_ref(&a)).await;
    h.run_until(2, &hook).await; // firing queued at 1, first attempt fails
    h.fire(&[]).await;
    h.run_until(4, &hook).await; // resolve queued at 3, behind the firing one
    let b = alert("other", &[("check", "b")]);
    h.fire(std::slice::from_ref(&b)).await;
    h.run_until(30, &hook).await;
    assert!(hook.bodies().is_empty());
    let pending = h.store.outbox_recent(10).await.unwrap();
    assert_eq!(pending.len(), 3);
    assert!(
        pending
            .iter()
            .all(|r| r.status == synmon::store::OutboxStatus::Pending)
    );
    hook.set_down(false);
    h.run_until(200, &hook).await;
    let got: Vec<(String, String)> = hook
        .bodies()
        .iter()
        .map(|b| {
            (
                b["groupLabels"]["alertname"].as_str().unwrap().to_string(),
                b["status"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let down: Vec<&(String, String)> = got.iter().filter(|(n, _)| n == "down").collect();
    assert_eq!(
        down,
        [
            &("down".to_string(), "firing".to_string()),
            &("down".to_string(), "resolved".to_string())
        ]
    );
    assert_eq!(got.len(), 3, "{got:?}");
    let rows = h.store.outbox_recent(10).await.unwrap();
    assert!(
        rows.iter()
            .all(|r| r.status == synmon::store::OutboxStatus::Sent)
    );
    let _ = h.clock.now();
}

/// Pending notifications of a receiver that is gone after a restart (removed, renamed or
/// disabled) are delivered to the console, not left in the outbox forever.
#[tokio::test]
async fn pending_rows_of_a_removed_receiver_go_to_the_console() {
    let hook = FakeWebhook::start().await;
    let mut h = Harness::new(&one_hook(&hook.url(), "  group_wait: 0s")).await;
    h.store
        .enqueue_notifications(
            &[synmon::store::NewNotification {
                receiver: "gone".into(),
                group_key: "0/gone{}".into(),
                payload: serde_json::to_string(&synmon::cli::notify_test_notification(
                    "gone",
                    synmon::notify::Status::Firing,
                    t0(),
                    t0(),
                    "http://synmon.test",
                ))
                .unwrap(),
            }],
            &[],
            t0(),
            None,
        )
        .await
        .unwrap();
    h.restart().await;
    let rows = h.store.outbox_recent(10).await.unwrap();
    assert_eq!(rows[0].receiver, "console");
    let pass = h.notifier.deliver_all().await.unwrap();
    assert_eq!(pass.sent, 1);
    let rows = h.store.outbox_recent(10).await.unwrap();
    assert_eq!(rows[0].status, synmon::store::OutboxStatus::Sent);
}

/// Retention prunes delivered and refused notifications, never pending ones.
#[tokio::test]
async fn retention_prunes_finished_notifications_only() {
    let hook = FakeWebhook::start().await;
    let h = Harness::new(&one_hook(&hook.url(), "  group_wait: 0s")).await;
    let new = |key: &str| synmon::store::NewNotification {
        receiver: "nobody".into(),
        group_key: key.into(),
        payload: "{}".into(),
    };
    let ids = h
        .store
        .enqueue_notifications(&[new("a"), new("b"), new("c")], &[], t0(), None)
        .await
        .unwrap();
    h.store
        .outbox_sent(ids[0], 1, t0(), "ok", None)
        .await
        .unwrap();
    h.store
        .outbox_failed(ids[1], 1, t0(), "refused")
        .await
        .unwrap();
    assert_eq!(
        h.store
            .prune_outbox(t0() + chrono::Duration::seconds(1))
            .await
            .unwrap(),
        2
    );
    let left = h.store.outbox_recent(10).await.unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].id, ids[2]);
    assert_eq!(left[0].status, synmon::store::OutboxStatus::Pending);
}
