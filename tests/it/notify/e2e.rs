//! End to end: a sandbox fault makes the align-category journey fail in real Chromium, the rule
//! fires, PagerDuty gets a trigger and Slack a Block Kit message with the failing step and the
//! failure screenshot; once the fault clears and the failures leave the rule's window, PagerDuty
//! gets the resolve with the same `dedup_key` and the Slack message is updated.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use synmon::clock::SystemClock;
use synmon::daemon::Options;
use synmon::settings::Config;

use crate::fakes::pagerduty::{FakePagerDuty, TEST_ROUTING_KEY};
use crate::fakes::slack::FakeSlack;
use crate::support::*;

const PASSWORD: &str = "synthetic-demo";

const RULE: &str = r#"
rules:
  - alert: journey_failing
    metric: synmon.check.runs
    match: { check: align_category, outcome: fail }
    by: [check]
    aggregate: rate
    window: 1m
    op: ">"
    threshold: 0
    severity: page
    route: page
    annotations:
      summary: "{{ labels.check }} failed"
      runbook_url: https://runbooks.rvp.test/synmon/journey-failing
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_journey_pages_and_posts_with_its_screenshot_then_resolves() {
    let _b = BROWSER.lock().await;
    synmon::tls::install();
    let dir = tempfile::tempdir().unwrap();
    let sbx = sqlite_sandbox(dir.path(), PASSWORD).await;
    let pd = FakePagerDuty::start().await;
    let slack = FakeSlack::start().await;
    std::fs::create_dir_all(dir.path().join("alerts")).unwrap();
    std::fs::write(dir.path().join("alerts/journey.yaml"), RULE).unwrap();
    let cfg = write_config(
        dir.path(),
        &sbx.base_url(),
        PASSWORD,
        &format!(
            r##"store:
  url: sqlite://synmon.db
alerts: alerts
evaluation_interval: 1s
checks:
  interval: 20s
  timeout: 18s
  max_offset: 1s
  retry_on_failure: {{ count: 0 }}
  journeys:
    - name: align_category
receivers:
  - {{ name: pd, type: pagerduty, url: "{}", routing_key: "{TEST_ROUTING_KEY}" }}
  - {{ name: slack, type: slack, api_url: "{}", token: "{}", channel: "#critical" }}
route:
  receiver: console
  group_by: [alertname, check]
  group_wait: 0s
  group_interval: 1s
  routes:
    - {{ matchers: {{ route: page }}, receiver: pd, continue: true }}
    - {{ matchers: {{ route: page }}, receiver: slack }}
"##,
            pd.url(),
            slack.api_url(),
            slack.token()
        ),
    );
    set_faults(&sbx.base_url(), json!({"kind": "suppress_toast"})).await;
    let d = TestDaemon::spawn_with(
        Config::load(&cfg).unwrap(),
        Options {
            no_offsets: true,
            ..Options::default()
        },
        Arc::new(SystemClock),
    )
    .await;

    let events = pd.wait_for(1, Duration::from_secs(90)).await;
    let trigger = &events[0];
    assert_eq!(trigger["event_action"], "trigger");
    assert_eq!(trigger["payload"]["severity"], "critical");
    let details = trigger["payload"]["custom_details"].to_string();
    assert!(details.contains("save mapping"), "{trigger:#}");
    let links = trigger["links"].to_string();
    assert!(links.contains("/runs/"), "{trigger:#}");
    assert!(links.contains("runbooks.rvp.test"), "{trigger:#}");

    let calls = slack
        .wait_for_ok("files.completeUploadExternal", 1, Duration::from_secs(60))
        .await;
    let post = calls
        .iter()
        .find(|c| c.method == "chat.postMessage" && c.ok())
        .expect("a posted message");
    let body = post.body.to_string();
    assert!(body.contains("save mapping"), "{body}");
    assert!(body.contains("[data-test=toast]"), "{body}");
    let upload = &slack.uploads()[0];
    assert_eq!(
        &upload.bytes[..8],
        b"\x89PNG\r\n\x1a\n",
        "the failure screenshot"
    );
    assert_eq!(upload.bytes.len(), upload.length);
    let top = slack.top_level();
    assert_eq!(top.len(), 1);
    assert!(
        upload
            .shared_to
            .as_ref()
            .is_some_and(|(_, t)| t.as_deref() == Some(top[0].ts.as_str()))
    );

    // Recovery: passing runs; the failures leave the 1 m window; the alert resolves.
    clear_faults(&sbx.base_url()).await;
    let events = pd.wait_for(2, Duration::from_secs(150)).await;
    assert_eq!(events[1]["event_action"], "resolve");
    assert_eq!(events[1]["dedup_key"], trigger["dedup_key"]);
    slack
        .wait_until(Duration::from_secs(30), |c| {
            c.iter().any(|c| c.method == "chat.update" && c.ok())
        })
        .await;
    let top = slack.top_level();
    assert_eq!(
        top.len(),
        1,
        "the resolve edits the message, it does not post another"
    );
    assert!(top[0].text.contains("RESOLVED"), "{}", top[0].text);
    assert_eq!(pd.events().len(), 2, "{:#?}", pd.events());
    assert!(pd.rejected().is_empty(), "{:?}", pd.rejected());
    d.stop().await;
    sbx.shutdown().await;
}
