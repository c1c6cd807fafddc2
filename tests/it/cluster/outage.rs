//! PagerDuty down for a minute during an incident watched by two replicas: the page waits in
//! the outbox, is retried by the leader alone, and arrives once when PagerDuty is back.

use std::time::Duration;

use super::{Cluster, RULE, keys_for};

/// How long PagerDuty is unreachable.
const OUTAGE: Duration = Duration::from_secs(60);

/// PagerDuty refuses connections for 60 s from before the incident starts: nothing is
/// accepted meanwhile; once it is back the trigger arrives exactly once, and after the fault
/// clears the resolve exactly once, under the same key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pagerduty_down_for_a_minute_gets_each_notification_once() {
    let mut c = Cluster::new(&[("synmon-a-0", "a"), ("synmon-a-1", "a")], RULE).await;
    c.pd.set_down(true);
    let down = tokio::time::Instant::now();
    c.fail("a").await;
    c.start_all().await;
    c.leader(Duration::from_secs(30)).await;
    // Slack is up: the incident is notified there while PagerDuty is unreachable.
    c.slack
        .wait_for_ok("chat.postMessage", 1, Duration::from_secs(60))
        .await;
    // The outage is the scenario itself: it lasts its full length whatever the daemon does.
    tokio::time::sleep_until(down + OUTAGE).await;
    assert_eq!(c.pd.accepted(), 0, "nothing gets through while down");
    c.pd.set_down(false);
    let back = tokio::time::Instant::now();
    let counts = c.pd_action("trigger", 1, Duration::from_secs(90)).await;
    println!(
        "the page arrived {:.2} s after PagerDuty came back from a {} s outage",
        back.elapsed().as_secs_f64(),
        OUTAGE.as_secs()
    );
    let key = keys_for(&counts, "trigger")[0].0.clone();
    let leader = c.leader(Duration::from_secs(10)).await;
    c.evaluations(leader, 3, Duration::from_secs(30)).await;
    assert_eq!(c.pd.count_action("trigger"), 1, "{:#?}", c.pd.counts());

    c.heal("a").await;
    c.pd_action("resolve", 1, Duration::from_secs(90)).await;
    c.evaluations(leader, 3, Duration::from_secs(30)).await;
    assert_eq!(
        c.pd.counts().into_iter().collect::<Vec<_>>(),
        [
            ((key.clone(), "resolve".to_string()), 1),
            ((key, "trigger".to_string()), 1),
        ]
    );
    let actions: Vec<String> =
        c.pd.events()
            .iter()
            .map(|e| e["event_action"].as_str().unwrap_or("").to_string())
            .collect();
    assert_eq!(actions, ["trigger", "resolve"], "in order");
    c.finish().await;
}
