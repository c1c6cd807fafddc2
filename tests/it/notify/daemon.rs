//! Notification reliability against the real daemon process (`synmon run`), the real sandbox
//! and protocol-checking fakes of PagerDuty and Slack:
//! - kill -9 while a notification is in flight: after the restart it is delivered, once, and
//!   its resolve carries the same `dedup_key`;
//! - Slack down for a while: everything queued arrives after it is back, in order per group;
//! - a restart does not re-send a firing alert within `repeat_interval`;
//! - kill -9 after Slack posted but before the daemon heard back: after the restart that post is
//!   found (by its metadata) and edited, not posted again.

use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};

use crate::fakes::pagerduty::{FakePagerDuty, TEST_ROUTING_KEY};
use crate::fakes::slack::{FakeSlack, Fault};
use crate::support::*;
use crate::support::{Child, free_port, wait_for_api};

const PASSWORD: &str = "synthetic-demo";

/// Pages as soon as a run of an API check fails (it resolves once the failures have left the
/// 1 m window).
pub(crate) const RULE: &str = r#"
rules:
  - alert: health_failing
    metric: synmon.check.runs
    match: { outcome: fail }
    by: [check]
    aggregate: rate
    window: 1m
    op: ">"
    threshold: 0
    severity: page
    route: page
    annotations:
      summary: "{{ labels.check }} is failing"
      runbook_url: https://runbooks.rvp.test/health
"#;

/// A config checking two service health endpoints every second, evaluating every second, and
/// routing pages to `receiver` with no group wait.
fn config(
    dir: &Path,
    sandbox: &str,
    port: u16,
    receiver_yaml: &str,
    group_by: &str,
) -> std::path::PathBuf {
    std::fs::create_dir_all(dir.join("alerts")).unwrap();
    std::fs::write(dir.join("alerts/health.yaml"), RULE).unwrap();
    write_config(
        dir,
        sandbox,
        PASSWORD,
        &format!(
            r#"server:
  listen: 127.0.0.1:{port}
store:
  url: sqlite://synmon.db
alerts: alerts
evaluation_interval: 1s
checks:
  interval: 1s
  max_offset: 1s
  retry_on_failure: {{ count: 0 }}
  journeys: []
  http:
    - {{ name: auth_health, url: /svc/auth/healthz, expect: {{ status: 200 }} }}
    - {{ name: inventory_health, url: /svc/inventory/healthz, expect: {{ status: 200 }} }}
receivers:
  - {receiver_yaml}
route:
  receiver: console
  group_by: [{group_by}]
  group_wait: 0s
  group_interval: 1s
  repeat_interval: 1h
  routes:
    - {{ matchers: {{ route: page }}, receiver: oncall }}
"#
        ),
    )
}

async fn fail(sandbox: &str, service: &str) {
    set_faults(
        sandbox,
        json!({"kind": "error", "route": format!("/svc/{service}/healthz"), "status": 500}),
    )
    .await;
}

/// The outbox rows the daemon reports.
async fn outbox(port: u16) -> Vec<Value> {
    crate::support::get_json(&format!("http://127.0.0.1:{port}/api/v1/notifications"))
        .await
        .and_then(|v| v["outbox"].as_array().cloned())
        .unwrap_or_default()
}

/// A sandbox, a fake receiver and a config routing pages to it (`oncall`), not yet started.
struct Setup<F> {
    dir: tempfile::TempDir,
    sbx: rvp_sandbox::Sandbox,
    fake: F,
    port: u16,
    cfg: std::path::PathBuf,
}

impl<F> Setup<F> {
    /// `receiver` writes the `oncall` receiver's YAML for the started fake.
    async fn new(fake: F, receiver: impl FnOnce(&F) -> String, group_by: &str) -> Setup<F> {
        synmon::tls::install();
        let dir = tempfile::tempdir().unwrap();
        let sbx = sqlite_sandbox(dir.path(), PASSWORD).await;
        let port = free_port();
        let cfg = config(
            dir.path(),
            &sbx.base_url(),
            port,
            &receiver(&fake),
            group_by,
        );
        Setup {
            dir,
            sbx,
            fake,
            port,
            cfg,
        }
    }
}

/// Pages to a fake PagerDuty, one group per alert and check.
async fn paged() -> Setup<FakePagerDuty> {
    Setup::new(
        FakePagerDuty::start().await,
        |pd| {
            format!(
                "{{ name: oncall, type: pagerduty, url: \"{}\", routing_key: \"{TEST_ROUTING_KEY}\" }}",
                pd.url()
            )
        },
        "alertname, check",
    )
    .await
}

/// Posts pages to `#alerts` of a fake Slack, one group per alert name (no screenshots: these
/// checks are API checks).
async fn slack_paged() -> Setup<FakeSlack> {
    Setup::new(
        FakeSlack::start().await,
        |slack| {
            format!(
                "{{ name: oncall, type: slack, api_url: \"{}\", token: \"{}\", channel: \"#alerts\", upload_screenshots: false }}",
                slack.api_url(),
                slack.token()
            )
        },
        "alertname",
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_while_a_page_is_in_flight_delivers_it_after_the_restart() {
    let Setup {
        dir: _dir,
        sbx,
        fake: pd,
        port,
        cfg,
    } = paged().await;
    let first = Child::spawn(&cfg);
    wait_healthy(port).await;
    pd.hold(true);
    fail(&sbx.base_url(), "auth").await;
    // The trigger reaches PagerDuty, which does not answer: kill -9 now.
    pd.wait_for_held(1, Duration::from_secs(30)).await;
    first.signal(nix::sys::signal::Signal::SIGKILL);
    drop(first);
    pd.wait_for_no_held(Duration::from_secs(10)).await;
    assert!(
        pd.events().is_empty(),
        "nothing was accepted before the kill"
    );
    pd.hold(false);

    let second = Child::spawn(&cfg);
    wait_healthy(port).await;
    let events = pd.wait_for(1, Duration::from_secs(30)).await;
    assert_eq!(events[0]["event_action"], "trigger");
    let dedup_key = events[0]["dedup_key"].as_str().unwrap().to_string();
    // The row written before the kill is the one delivered: one row, sent.
    let rows = wait_for_api(
        &format!("http://127.0.0.1:{port}/api/v1/notifications"),
        Duration::from_secs(10),
        |v| {
            v["outbox"]
                .as_array()
                .is_some_and(|a| a.iter().any(|r| r["status"] == "sent"))
        },
    )
    .await;
    let rows = rows["outbox"].as_array().unwrap().clone();
    assert_eq!(rows.len(), 1, "{rows:#?}");
    // Still failing for a few more evaluations: no second trigger.
    wait_for_api(
        &format!("http://127.0.0.1:{port}/api/v1/alerts"),
        Duration::from_secs(30),
        |v| v["evaluations"].as_u64().unwrap_or(0) >= 4,
    )
    .await;
    assert_eq!(pd.events().len(), 1, "{:#?}", pd.events());

    // The key is derived from the receiver and the alert group, so the request killed in
    // flight carried this same key: PagerDuty would have deduplicated a double delivery.
    assert_eq!(
        dedup_key,
        synmon::notify::message::dedup_key(
            "oncall",
            r#"{}/{route="page"}:oncall{alertname="health_failing",check="auth_health"}"#
        )
    );
    assert!(pd.rejected().is_empty(), "{:?}", pd.rejected());
    second.signal(nix::sys::signal::Signal::SIGTERM);
    sbx.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slack_down_for_a_while_gets_everything_in_order_per_group_when_back() {
    let Setup {
        dir: _dir,
        sbx,
        fake: slack,
        port,
        cfg,
    } = slack_paged().await;
    let daemon = Child::spawn(&cfg);
    wait_healthy(port).await;
    slack.set_down(true);
    // One group (by alertname): the auth failure is notified and refused...
    fail(&sbx.base_url(), "auth").await;
    let notifications = format!("http://127.0.0.1:{port}/api/v1/notifications");
    wait_for_api(&notifications, Duration::from_secs(30), |v| {
        v["outbox"]
            .as_array()
            .is_some_and(|a| a.len() == 1 && a[0]["attempts"].as_u64().unwrap_or(0) >= 1)
    })
    .await;
    // ...then inventory fails too: the grown group queues a second notification behind it.
    fail(&sbx.base_url(), "inventory").await;
    wait_for_api(&notifications, Duration::from_secs(30), |v| {
        v["outbox"].as_array().is_some_and(|a| a.len() == 2)
    })
    .await;
    assert!(slack.messages().is_empty());
    slack.set_down(false);
    let delivered = |c: &crate::fakes::slack::Call| {
        c.ok() && matches!(c.method.as_str(), "chat.postMessage" | "chat.update")
    };
    let calls = slack
        .wait_until(Duration::from_secs(60), |c| {
            c.iter().filter(|c| delivered(c)).count() >= 3
        })
        .await;
    // In order: the first notification is posted (auth only), then the second updates that
    // same message (auth and inventory) and replies in its thread.
    let ok: Vec<&crate::fakes::slack::Call> = calls.iter().filter(|c| delivered(c)).collect();
    assert_eq!(ok[0].method, "chat.postMessage", "{ok:#?}");
    assert!(ok[0].body.to_string().contains("auth_health"));
    assert!(!ok[0].body.to_string().contains("inventory_health"));
    let top = slack.top_level();
    assert_eq!(top.len(), 1, "{top:#?}");
    assert_eq!(top[0].edits, 1);
    let update = ok
        .iter()
        .find(|c| c.method == "chat.update")
        .expect("an update");
    assert!(
        update.body.to_string().contains("inventory_health"),
        "{update:#?}"
    );
    assert!(update.body.to_string().contains("auth_health"));
    let rows = outbox(port).await;
    assert!(rows.iter().all(|r| r["status"] == "sent"), "{rows:#?}");
    daemon.signal(nix::sys::signal::Signal::SIGTERM);
    sbx.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_after_slack_posted_edits_that_post_after_the_restart_instead_of_posting_again() {
    let Setup {
        dir: _dir,
        sbx,
        fake: slack,
        port,
        cfg,
    } = slack_paged().await;
    // Slack posts the first message and never answers: the daemon is killed while it waits.
    slack.fail_next_for("chat.postMessage", 1, Fault::ApplyThenHang);
    let first = Child::spawn(&cfg);
    wait_healthy(port).await;
    fail(&sbx.base_url(), "auth").await;
    slack
        .wait_until(Duration::from_secs(30), |c| {
            c.iter().any(|c| c.method == "chat.postMessage")
        })
        .await;
    first.signal(nix::sys::signal::Signal::SIGKILL);
    drop(first);
    let posted = slack.top_level();
    assert_eq!(posted.len(), 1, "Slack posted before the kill");

    let second = Child::spawn(&cfg);
    wait_healthy(port).await;
    let calls = slack
        .wait_until(Duration::from_secs(30), |c| {
            c.iter().any(|c| c.method == "chat.update" && c.ok())
        })
        .await;
    let methods: Vec<&str> = calls.iter().map(|c| c.method.as_str()).collect();
    assert_eq!(
        methods,
        [
            "chat.postMessage",
            "conversations.list",
            "conversations.history",
            "chat.update"
        ]
    );
    let top = slack.top_level();
    assert_eq!(top.len(), 1, "one message in the channel: {top:#?}");
    assert_eq!(top[0].ts, posted[0].ts);
    assert_eq!(top[0].edits, 1);
    // The row the first process wrote is the one delivered, on its second attempt.
    let rows = wait_for_api(
        &format!("http://127.0.0.1:{port}/api/v1/notifications"),
        Duration::from_secs(10),
        |v| {
            v["outbox"]
                .as_array()
                .is_some_and(|a| a.iter().all(|r| r["status"] == "sent"))
        },
    )
    .await;
    let rows = rows["outbox"].as_array().unwrap();
    assert_eq!(rows.len(), 1, "{rows:#?}");
    assert_eq!(rows[0]["attempts"], 2);
    assert_eq!(
        posted[0].metadata["event_payload"]["outbox_id"],
        rows[0]["id"].to_string()
    );
    second.signal(nix::sys::signal::Signal::SIGTERM);
    sbx.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_does_not_resend_within_the_repeat_interval() {
    let Setup {
        dir: _dir,
        sbx,
        fake: pd,
        port,
        cfg,
    } = paged().await;
    fail(&sbx.base_url(), "auth").await;
    let first = Child::spawn(&cfg);
    wait_healthy(port).await;
    pd.wait_for(1, Duration::from_secs(30)).await;
    first.signal(nix::sys::signal::Signal::SIGTERM);
    let mut first = first;
    let status = tokio::time::timeout(Duration::from_secs(15), first.0.wait())
        .await
        .expect("stops on SIGTERM")
        .unwrap();
    assert!(status.success(), "{status:?}");

    let second = Child::spawn(&cfg);
    wait_healthy(port).await;
    // Several evaluations with the alert still firing (and groups flushed every second).
    wait_for_api(
        &format!("http://127.0.0.1:{port}/api/v1/alerts"),
        Duration::from_secs(30),
        |v| {
            v["evaluations"].as_u64().unwrap_or(0) >= 5
                && v["alerts"]
                    .as_array()
                    .is_some_and(|a| a.iter().any(|x| x["state"] == "firing"))
        },
    )
    .await;
    assert_eq!(pd.events().len(), 1, "{:#?}", pd.events());
    second.signal(nix::sys::signal::Signal::SIGTERM);
    sbx.shutdown().await;
}
