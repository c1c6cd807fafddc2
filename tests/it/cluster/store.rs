//! The store's tables dropped under a running pair during an incident: the replicas say they
//! are not ready while they cannot write, re-create the schema without a restart, and the
//! incident still resolves exactly once.

use std::time::Duration;

use sqlx::Connection;

use super::{Cluster, RULE, keys_for};

/// `DROP SCHEMA public CASCADE` while the alert fires: `/readyz` answers 503 with the store's
/// error on a replica, then 200 again without a restart (migrations re-applied); the pair
/// agrees on a leader again, and when the fault clears PagerDuty gets the resolve exactly once
/// (the trigger at most twice, under one key).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_tables_make_replicas_unready_until_they_migrate_again() {
    let mut c = Cluster::new(&[("synmon-a-0", "a"), ("synmon-a-1", "a")], RULE).await;
    c.fail("a").await;
    c.start_all().await;
    c.leader(Duration::from_secs(30)).await;
    let counts = c.pd_action("trigger", 1, Duration::from_secs(60)).await;
    let key = keys_for(&counts, "trigger")[0].0.clone();
    for r in &c.replicas {
        let (status, body) = r.readyz().await.expect("the replica answers");
        assert_eq!(status, 200, "{}: {body}", r.id);
    }

    let url = c.pg.as_ref().unwrap().url.clone();
    let mut db = sqlx::PgConnection::connect(&url).await.unwrap();
    sqlx::raw_sql("DROP SCHEMA public CASCADE; CREATE SCHEMA public;")
        .execute(&mut db)
        .await
        .unwrap();
    db.close().await.unwrap();
    let dropped = tokio::time::Instant::now();

    // The window in which writes fail may be short: ask both replicas often.
    let unready = crate::support::eventually(
        "a replica's /readyz answering 503",
        Duration::from_secs(30),
        async || {
            for (i, r) in c.replicas.iter().enumerate() {
                if let Some((503, body)) = r.readyz().await {
                    return Some((i, body));
                }
            }
            None
        },
    )
    .await;
    let (i, body) = unready;
    println!(
        "{} unready {:.2} s after the drop: {body}",
        c.replicas[i].id,
        dropped.elapsed().as_secs_f64()
    );
    assert!(
        body["store"].as_str().is_some_and(|s| s != "ok"),
        "the store's error: {body}"
    );
    crate::support::eventually(
        "every /readyz answering 200 again",
        Duration::from_secs(60),
        async || {
            for r in &c.replicas {
                if r.readyz().await.map(|(s, _)| s) != Some(200) {
                    return None;
                }
            }
            Some(())
        },
    )
    .await;
    println!(
        "both replicas ready again {:.2} s after the drop",
        dropped.elapsed().as_secs_f64()
    );
    let leader = c.leader(Duration::from_secs(30)).await;

    c.heal("a").await;
    c.pd_action("resolve", 1, Duration::from_secs(90)).await;
    c.evaluations(leader, 3, Duration::from_secs(30)).await;
    let counts = c.pd.counts();
    let triggers = keys_for(&counts, "trigger");
    assert_eq!(triggers.len(), 1, "no new incident: {counts:#?}");
    assert_eq!(triggers[0].0, key);
    assert!(triggers[0].1 <= 2, "at most one resend: {counts:#?}");
    assert_eq!(
        keys_for(&counts, "resolve"),
        [(key, 1)],
        "one resolve: {counts:#?}"
    );
    assert!(c.pd.rejected().is_empty(), "{:?}", c.pd.rejected());
    c.finish().await;
}
