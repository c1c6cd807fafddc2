//! Two replicas of one location, one incident, nothing failing in the cluster itself: only the
//! leader notifies, and both replicas answer for the cluster and for its alerts alike.

use std::time::Duration;

use serde_json::Value;

use super::{Cluster, RULE, keys_for};
use crate::support::wait_for_api;

/// What both replicas say about the cluster: the same leader (at an epoch of at least 1), each
/// listing both replicas in location `a` with a role and an RFC 3339 UTC `last_seen`.
fn check_view(v: &Value, me: &str, leader: &str) {
    assert_eq!(v["replica"], me, "{v:#}");
    assert_eq!(v["location"], "a", "{v:#}");
    assert_eq!(v["leader"], leader, "{v:#}");
    let role = if me == leader { "leader" } else { "follower" };
    assert_eq!(v["role"], role, "{v:#}");
    if me == leader {
        assert!(v["epoch"].as_i64().is_some_and(|e| e >= 1), "{v:#}");
    }
    let mut listed: Vec<(String, String)> = v["replicas"]
        .as_array()
        .unwrap_or_else(|| panic!("`replicas` is a list: {v:#}"))
        .iter()
        .map(|r| {
            assert_eq!(r["location"], "a", "{r:#}");
            let seen = r["last_seen"].as_str().unwrap_or("");
            let at = chrono::DateTime::parse_from_rfc3339(seen)
                .unwrap_or_else(|e| panic!("last_seen `{seen}` is RFC 3339: {e}"));
            assert_eq!(at.offset().local_minus_utc(), 0, "UTC: {seen}");
            (
                r["id"].as_str().unwrap_or("").to_string(),
                r["role"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    listed.sort();
    let role_of = |id: &str| if id == leader { "leader" } else { "follower" }.to_string();
    assert_eq!(
        listed,
        [
            ("synmon-a-0".to_string(), role_of("synmon-a-0")),
            ("synmon-a-1".to_string(), role_of("synmon-a-1")),
        ],
        "{v:#}"
    );
}

/// One fault seen by two replicas running the same checks: PagerDuty gets exactly one trigger
/// and one resolve for the incident's `dedup_key`, Slack one post and one update of it. Both
/// replicas agree on one leader, and the follower's `/api/v1/alerts` shows the leader's firing
/// alert.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_page_once_and_resolve_once() {
    let mut c = Cluster::new(&[("synmon-a-0", "a"), ("synmon-a-1", "a")], RULE).await;
    c.fail("a").await;
    c.start_all().await;
    let leader = c.leader(Duration::from_secs(30)).await;
    let follower = 1 - leader;
    let leader_id = c.replicas[leader].id.clone();
    for r in &c.replicas {
        let v = r.cluster().await.expect("the replica answers");
        check_view(&v, &r.id, &leader_id);
    }

    c.pd_action("trigger", 1, Duration::from_secs(60)).await;
    c.slack
        .wait_for_ok("chat.postMessage", 1, Duration::from_secs(30))
        .await;
    let firing = wait_for_api(
        &c.replicas[follower].url("/api/v1/alerts"),
        Duration::from_secs(30),
        |v| {
            v["alerts"].as_array().is_some_and(|a| {
                a.iter()
                    .any(|x| x["alert"] == "auth_failing" && x["state"] == "firing")
            })
        },
    )
    .await;
    println!("the follower's /api/v1/alerts: {firing}");
    // A few more evaluations with the incident on: still one leader, nothing sent again.
    c.evaluations(leader, 3, Duration::from_secs(30)).await;
    assert_eq!(c.leader(Duration::from_secs(10)).await, leader);

    c.heal("a").await;
    let healed = tokio::time::Instant::now();
    c.pd_action("resolve", 1, Duration::from_secs(90)).await;
    println!(
        "resolve at PagerDuty {:.1} s after the fault cleared",
        healed.elapsed().as_secs_f64()
    );
    c.slack
        .wait_for_ok("chat.update", 1, Duration::from_secs(30))
        .await;
    // Time for a second replica's duplicate to arrive, if there were one.
    c.evaluations(leader, 3, Duration::from_secs(30)).await;

    let counts = c.pd.counts();
    let triggers = keys_for(&counts, "trigger");
    assert_eq!(triggers.len(), 1, "one incident: {counts:#?}");
    let key = triggers[0].0.clone();
    assert_eq!(
        counts.into_iter().collect::<Vec<_>>(),
        [
            ((key.clone(), "resolve".to_string()), 1),
            ((key, "trigger".to_string()), 1),
        ],
        "exactly one trigger and one resolve"
    );
    assert!(c.pd.rejected().is_empty(), "{:?}", c.pd.rejected());
    // The resolve edits the post and replies in its thread; only the first post is top-level.
    let ok = |m: &str| {
        c.slack
            .calls_to(m)
            .iter()
            .filter(|x| x.ok() && x.body.get("thread_ts").is_none())
            .count()
    };
    assert_eq!(ok("chat.postMessage"), 1, "{:?}", c.slack.methods());
    assert_eq!(ok("chat.update"), 1, "{:?}", c.slack.methods());
    let top = c.slack.top_level();
    assert_eq!(top.len(), 1, "{top:#?}");
    assert!(top[0].text.contains("RESOLVED"), "{}", top[0].text);
    c.finish().await;
}
