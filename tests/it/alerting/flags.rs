//! The feature-flag lifecycle alerts end to end on the injected clock: the shipped
//! registry (flags/flag_registry.yaml) and rules (alerts/flags.yaml), the example's inhibition,
//! routes by `owner` to one fake webhook per team. Each stage notifies once per flag and nothing
//! more follows within the route's `repeat_interval`.

use std::path::Path;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use synmon::clock::ManualClock;
use synmon::settings::Config;

use crate::fakes::webhook::FakeWebhook;
use crate::support::*;

const FLAG: &str = "FF_FEED_ALIGNMENT_ENFORCE";

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

/// The alert names of `flag` in each notification `hook` received that mentions it.
fn notifications(hook: &FakeWebhook, flag: &str) -> Vec<Vec<String>> {
    hook.bodies()
        .iter()
        .filter_map(|b| {
            let names: Vec<String> = b["alerts"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|a| a["labels"]["flag"] == flag && a["status"] == "firing")
                .map(|a| a["labels"]["alertname"].as_str().unwrap_or("").to_string())
                .collect();
            (!names.is_empty()).then_some(names)
        })
        .collect()
}

async fn daemon(
    dir: &Path,
    clock: &ManualClock,
    api: &FakeWebhook,
    ux: &FakeWebhook,
) -> TestDaemon {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    std::fs::create_dir_all(dir.join("alerts")).unwrap();
    std::fs::create_dir_all(dir.join("flags")).unwrap();
    std::fs::copy(
        repo.join("alerts/flags.yaml"),
        dir.join("alerts/flags.yaml"),
    )
    .unwrap();
    std::fs::copy(
        repo.join("flags/flag_registry.yaml"),
        dir.join("flags/flag_registry.yaml"),
    )
    .unwrap();
    let cfg = write_config(
        dir,
        "http://127.0.0.1:9",
        "synthetic-demo",
        &format!(
            r#"store:
  url: sqlite://synmon.db
alerts: alerts
checks:
  journeys: []
flags:
  files: [flags/flag_registry.yaml]
receivers:
  - {{ name: api, type: webhook, url: "{}" }}
  - {{ name: ux, type: webhook, url: "{}" }}
route:
  receiver: console
  group_by: [alertname, flag]
  group_wait: 0s
  group_interval: 1s
  repeat_interval: 4h
  routes:
    - {{ matchers: {{ owner: api_team }}, receiver: api }}
    - {{ matchers: {{ owner: "=~ux_team|integrations_team" }}, receiver: ux }}
inhibit_rules:
  - source_matchers: {{ alertname: flag_expired }}
    target_matchers: {{ alertname: flag_expiring_soon }}
    equal: [flag]
  - source_matchers: {{ alertname: flag_cleanup_overdue }}
    target_matchers: {{ alertname: flag_expired }}
    equal: [flag]
"#,
            api.url(),
            ux.url()
        ),
    );
    TestDaemon::spawn_with(
        Config::load(&cfg).unwrap(),
        TestDaemon::options(),
        Arc::new(clock.clone()),
    )
    .await
}

/// Moves the clock to `t`, evaluates and delivers.
async fn step(d: &TestDaemon, clock: &ManualClock, t: DateTime<Utc>) {
    let now = synmon::clock::Clock::now(clock);
    clock.advance(t - now);
    d.evaluate_now().await;
    d.notify_now().await.unwrap();
}

/// Four evaluations over the next 3 hours (inside the 4 h `repeat_interval`).
async fn within_repeat_interval(d: &TestDaemon, clock: &ManualClock, from: DateTime<Utc>) {
    for h in 1..=3 {
        step(d, clock, from + chrono::Duration::hours(h)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flag_notifies_its_owner_once_per_lifecycle_stage() {
    synmon::tls::install();
    let dir = tempfile::tempdir().unwrap();
    let (api, ux) = (FakeWebhook::start().await, FakeWebhook::start().await);
    // FF_FEED_ALIGNMENT_ENFORCE (api_team) expires 2026-01-15T00:00Z.
    let t0 = at("2025-12-15T12:00:00Z"); // 30.5 days left
    let clock = ManualClock::new(t0);
    let d = daemon(dir.path(), &clock, &api, &ux).await;

    step(&d, &clock, t0).await;
    let metrics = reqwest::get(format!("{}/metrics", d.base_url()))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let line = metrics
        .lines()
        .find(|l| l.starts_with("synmon_flag_expiry_remaining_seconds{") && l.contains(FLAG))
        .unwrap_or_else(|| panic!("no flag expiry for {FLAG} in:\n{metrics}"));
    assert!(
        line.contains(r#"owner="api_team""#) && line.contains(r#"state="active""#),
        "{line}"
    );
    assert!(line.ends_with(" 2635200"), "30.5 days in seconds: {line}");
    assert!(
        notifications(&api, FLAG).is_empty(),
        "30.5 days left: nothing yet"
    );

    // Crossing 30 days before the expiry: the owner hears once.
    let t1 = at("2025-12-16T12:00:00Z");
    step(&d, &clock, t1).await;
    within_repeat_interval(&d, &clock, t1).await;
    assert_eq!(notifications(&api, FLAG), [["flag_expiring_soon"]]);

    // Crossing the expiry: one more (the notice is inhibited from now on).
    let t2 = at("2026-01-15T12:00:00Z");
    step(&d, &clock, t2).await;
    within_repeat_interval(&d, &clock, t2).await;
    assert_eq!(
        notifications(&api, FLAG),
        [["flag_expiring_soon"], ["flag_expired"]]
    );

    // Crossing expiry + 30 days: the cleanup alert, once.
    let t3 = at("2026-02-15T12:00:00Z");
    step(&d, &clock, t3).await;
    within_repeat_interval(&d, &clock, t3).await;
    assert_eq!(
        notifications(&api, FLAG),
        [
            vec!["flag_expiring_soon"],
            vec!["flag_expired"],
            vec!["flag_cleanup_overdue"]
        ]
    );
    // Routed by owner: nothing of api_team's flag went to the ux team, and the ux team heard
    // about its own FF_CATEGORY_MANAGEMENT_PAGE (expires 2026-02-01) twice by now.
    assert!(notifications(&ux, FLAG).is_empty());
    assert_eq!(
        notifications(&ux, "FF_CATEGORY_MANAGEMENT_PAGE"),
        [["flag_expiring_soon"], ["flag_expired"]]
    );
    d.stop().await;
}
