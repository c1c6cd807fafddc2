//! The leader lost during an incident: killed outright (SIGKILL), or stopped (SIGSTOP) past its
//! lease while a page waits in the outbox and then resumed. The follower takes over within a
//! few leases, the incident is neither paged twice nor left unresolved, and a resumed former
//! leader sends nothing.

use std::time::Duration;

use nix::sys::signal::Signal;

use super::{Cluster, RULE, keys_for, unchanged};
use crate::support::wait_for_api;

/// How fast a follower must replace a dead leader with a 3 s lease renewed every second.
const TAKEOVER: Duration = Duration::from_secs(15);

fn firing(v: &serde_json::Value) -> bool {
    v["alerts"].as_array().is_some_and(|a| {
        a.iter()
            .any(|x| x["alert"] == "auth_failing" && x["state"] == "firing")
    })
}

/// kill -9 of the leader after it paged: the follower leads within 15 s, knows the alert is
/// firing, sends no second trigger (at most one resend under the same `dedup_key`, which
/// PagerDuty folds into the open incident), and sends the resolve exactly once after the fault
/// clears.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_of_the_leader_hands_the_incident_over_without_a_second_page() {
    let mut c = Cluster::new(&[("synmon-a-0", "a"), ("synmon-a-1", "a")], RULE).await;
    c.fail("a").await;
    c.start_all().await;
    let leader = c.leader(Duration::from_secs(30)).await;
    let other = 1 - leader;
    let counts = c.pd_action("trigger", 1, Duration::from_secs(60)).await;
    let key = keys_for(&counts, "trigger")[0].0.clone();
    c.slack
        .wait_for_ok("chat.postMessage", 1, Duration::from_secs(30))
        .await;

    c.replicas[leader].signal(Signal::SIGKILL);
    let took = c.becomes_leader(other, Duration::from_secs(60)).await;
    println!(
        "failover after SIGKILL: {} became leader {:.2} s after the kill",
        c.replicas[other].id,
        took.as_secs_f64()
    );
    let mut dead = c.replicas[leader].child.take().unwrap();
    tokio::time::timeout(Duration::from_secs(10), dead.0.wait())
        .await
        .expect("synmon exits on SIGKILL")
        .unwrap();
    assert!(took <= TAKEOVER, "takeover took {took:?}");
    wait_for_api(
        &c.replicas[other].url("/api/v1/alerts"),
        Duration::from_secs(15),
        firing,
    )
    .await;
    c.evaluations(other, 5, Duration::from_secs(30)).await;
    let counts = c.pd.counts();
    let triggers = keys_for(&counts, "trigger");
    assert_eq!(triggers.len(), 1, "no new incident: {counts:#?}");
    assert_eq!(triggers[0].0, key);
    assert!(triggers[0].1 <= 2, "at most one resend: {counts:#?}");
    println!(
        "triggers for the incident after the failover: {}",
        triggers[0].1
    );

    c.heal("a").await;
    c.pd_action("resolve", 1, Duration::from_secs(90)).await;
    c.evaluations(other, 3, Duration::from_secs(30)).await;
    let counts = c.pd.counts();
    assert_eq!(
        keys_for(&counts, "resolve"),
        [(key.clone(), 1)],
        "one resolve, for the incident's key: {counts:#?}"
    );
    assert_eq!(keys_for(&counts, "trigger").len(), 1, "{counts:#?}");
    assert!(c.pd.rejected().is_empty(), "{:?}", c.pd.rejected());
    let top = c.slack.top_level();
    assert_eq!(top.len(), 1, "one Slack message for the incident: {top:#?}");
    c.finish().await;
}

/// SIGSTOP of the leader while its page waits in the outbox (PagerDuty answers 500), past its
/// lease: the other replica takes over and delivers the page once PagerDuty is back. The old
/// leader, resumed (SIGCONT), knows it follows and sends nothing: PagerDuty sees no request for
/// 5 s, and the resolve later arrives once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_stopped_past_its_lease_sends_nothing_when_it_resumes() {
    let mut c = Cluster::new(&[("synmon-a-0", "a"), ("synmon-a-1", "a")], RULE).await;
    c.pd.fail_next(100_000, 500);
    c.fail("a").await;
    c.start_all().await;
    let leader = c.leader(Duration::from_secs(30)).await;
    let other = 1 - leader;
    // The page was tried and refused at least twice: it waits in the outbox for a retry.
    c.pd.wait_for_requests(2, Duration::from_secs(60)).await;
    assert_eq!(c.pd.accepted(), 0);

    c.replicas[leader].signal(Signal::SIGSTOP);
    let took = c.becomes_leader(other, Duration::from_secs(60)).await;
    println!(
        "failover after SIGSTOP: {} became leader {:.2} s after the stop",
        c.replicas[other].id,
        took.as_secs_f64()
    );
    assert!(took <= TAKEOVER, "takeover took {took:?}");

    c.pd.clear_failures();
    let back = tokio::time::Instant::now();
    let counts = c.pd_action("trigger", 1, Duration::from_secs(90)).await;
    println!(
        "the pending page delivered {:.2} s after PagerDuty came back",
        back.elapsed().as_secs_f64()
    );
    let key = keys_for(&counts, "trigger")[0].0.clone();

    c.replicas[leader].signal(Signal::SIGCONT);
    let resumed = tokio::time::Instant::now();
    let old_id = c.replicas[leader].id.clone();
    let new_id = c.replicas[other].id.clone();
    wait_for_api(
        &c.replicas[leader].url("/api/v1/cluster"),
        Duration::from_secs(15),
        |v| v["role"] == "follower" && v["leader"] == new_id.as_str(),
    )
    .await;
    println!(
        "{old_id} says it follows {new_id} {:.2} s after SIGCONT",
        resumed.elapsed().as_secs_f64()
    );
    let requests = unchanged(
        "PagerDuty's request count after the old leader resumed",
        Duration::from_secs(5),
        || c.pd.requests(),
    )
    .await;
    println!("PagerDuty requests in all: {requests}");
    assert_eq!(
        c.pd.counts().into_iter().collect::<Vec<_>>(),
        [((key.clone(), "trigger".to_string()), 1)],
        "the page delivered once"
    );

    c.heal("a").await;
    c.pd_action("resolve", 1, Duration::from_secs(90)).await;
    c.evaluations(other, 3, Duration::from_secs(30)).await;
    let counts = c.pd.counts();
    assert_eq!(
        counts.into_iter().collect::<Vec<_>>(),
        [
            ((key.clone(), "resolve".to_string()), 1),
            ((key, "trigger".to_string()), 1),
        ]
    );
    assert!(c.pd.rejected().is_empty(), "{:?}", c.pd.rejected());
    c.finish().await;
}
