//! Two locations, one replica each, each probing its own sandbox, and a rule that pages only
//! when both fail: the leader judges every location's runs, not only its own.

use std::time::Duration;

use super::{Cluster, keys_for, unchanged};
use crate::support::wait_for_api;

/// `auth_failing` needs two failing locations and pages; `auth_failing_somewhere` needs one
/// and only logs (to the console): it shows the leader saw a location fail when the first does
/// not page.
const RULES: &str = r#"
rules:
  - alert: auth_failing
    metric: synmon.check.runs
    match: { check: auth_health }
    by: [check]
    aggregate: ratio
    window: 1m
    numerator: { outcome: fail }
    denominator: { outcome: "=~pass|fail" }
    op: ">"
    threshold: 0.5
    min_failing_locations: 2
    severity: page
    route: page
    annotations:
      summary: "{{ labels.check }} is failing in several locations"
  - alert: auth_failing_somewhere
    metric: synmon.check.runs
    match: { check: auth_health }
    by: [check]
    aggregate: ratio
    window: 1m
    numerator: { outcome: fail }
    denominator: { outcome: "=~pass|fail" }
    op: ">"
    threshold: 0.5
    min_failing_locations: 1
    severity: warning
    route: log
"#;

/// How long both locations stay broken after the page: longer than the rule's 1 m window, so
/// every run in it is a failure.
const BOTH_BROKEN: Duration = Duration::from_secs(65);

fn firing(v: &serde_json::Value, alert: &str) -> bool {
    v["alerts"].as_array().is_some_and(|a| {
        a.iter()
            .any(|x| x["alert"] == alert && x["state"] == "firing")
    })
}

/// A fault in `a` only: no page (the one-location rule fires, so the leader saw it). Faults in
/// `a` and `b`: exactly one trigger, and no resolve while both stay broken past the window.
/// `b` healed: exactly one resolve.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_two_location_rule_pages_once_only_when_both_fail() {
    let mut c = Cluster::new(&[("synmon-a-0", "a"), ("synmon-b-0", "b")], RULES).await;
    c.start_all().await;
    let leader = c.leader(Duration::from_secs(30)).await;
    let alerts = c.replicas[leader].url("/api/v1/alerts");

    c.fail("a").await;
    wait_for_api(&alerts, Duration::from_secs(60), |v| {
        firing(v, "auth_failing_somewhere")
    })
    .await;
    c.evaluations(leader, 5, Duration::from_secs(30)).await;
    assert_eq!(c.pd.requests(), 0, "one failing location pages nobody");
    assert!(c.slack.top_level().is_empty(), "{:?}", c.slack.methods());

    c.fail("b").await;
    let broke = tokio::time::Instant::now();
    // The leader judges `b`'s runs, which another replica measured and stored.
    let v = wait_for_api(&alerts, Duration::from_secs(60), |v| {
        v["alerts"].as_array().is_some_and(|a| {
            a.iter().any(|x| {
                x["alert"] == "auth_failing_somewhere"
                    && x["annotations"]["failing_locations"]
                        .as_str()
                        .is_some_and(|f| f.starts_with("2 of 2"))
            })
        })
    })
    .await;
    println!("the leader sees both locations fail: {v}");
    let counts = c.pd_action("trigger", 1, Duration::from_secs(90)).await;
    println!(
        "page {:.1} s after the second location failed",
        broke.elapsed().as_secs_f64()
    );
    let key = keys_for(&counts, "trigger")[0].0.clone();
    let v = wait_for_api(&alerts, Duration::from_secs(10), |v| {
        firing(v, "auth_failing")
    })
    .await;
    println!("the leader's alerts: {v}");
    let counts = unchanged(
        "PagerDuty's events while both locations fail",
        BOTH_BROKEN,
        || c.pd.counts(),
    )
    .await;
    assert_eq!(
        counts.into_iter().collect::<Vec<_>>(),
        [((key.clone(), "trigger".to_string()), 1)]
    );

    c.heal("b").await;
    let healed = tokio::time::Instant::now();
    c.pd_action("resolve", 1, Duration::from_secs(90)).await;
    println!(
        "resolve {:.1} s after `b` healed",
        healed.elapsed().as_secs_f64()
    );
    let leader = c.leader(Duration::from_secs(10)).await;
    c.evaluations(leader, 3, Duration::from_secs(30)).await;
    assert_eq!(
        c.pd.counts().into_iter().collect::<Vec<_>>(),
        [
            ((key.clone(), "resolve".to_string()), 1),
            ((key, "trigger".to_string()), 1),
        ]
    );
    assert!(c.pd.rejected().is_empty(), "{:?}", c.pd.rejected());
    c.finish().await;
}
