//! The store's tables dropped under a running pair during an incident: the replicas re-create
//! the schema without a restart and the incident still resolves exactly once; while the schema
//! cannot be re-created they say they are not ready, and they recover once it can.

use std::time::Duration;

use sqlx::Connection;

use super::{Cluster, RULE, keys_for};

/// Drops every table and re-creates an empty `public` schema in one transaction.
///
/// `DROP SCHEMA … CASCADE` takes its tables' locks one by one while the replicas write: a
/// replica's transaction holding one table and waiting for another makes a deadlock, and
/// PostgreSQL may pick the drop as the victim (after `deadlock_timeout`, 1 s; seen in CI). The
/// victim's transaction is rolled back whole, so the drop is simply tried again, as an operator
/// would.
async fn drop_tables(db: &mut sqlx::PgConnection, then: &str) {
    // One simple query, one transaction: no replica sees the schema between the statements.
    let sql = format!("DROP SCHEMA public CASCADE; CREATE SCHEMA public; {then}");
    for attempt in 1.. {
        match sqlx::raw_sql(sqlx::AssertSqlSafe(sql.clone()))
            .execute(&mut *db)
            .await
        {
            Ok(_) => return,
            Err(sqlx::Error::Database(e))
                if e.code().as_deref() == Some("40P01") && attempt < 5 =>
            {
                println!("the drop was a deadlock's victim (attempt {attempt}): trying again");
            }
            Err(e) => panic!("dropping the tables: {e}"),
        }
    }
}

/// Waits until every replica's `/readyz` answers 200; returns how long that took.
async fn all_ready(c: &Cluster, within: Duration) -> Duration {
    let started = tokio::time::Instant::now();
    crate::support::eventually("every /readyz answering 200", within, async || {
        for r in &c.replicas {
            if r.readyz().await.map(|(s, _)| s) != Some(200) {
                return None;
            }
        }
        Some(())
    })
    .await;
    started.elapsed()
}

/// Whether the store's tables exist again (the replicas re-applied the migrations).
async fn schema_back(db: &mut sqlx::PgConnection) -> bool {
    let (runs, migrations): (Option<String>, Option<String>) = sqlx::query_as(
        "SELECT to_regclass('public.runs')::text, to_regclass('public._sqlx_migrations')::text",
    )
    .fetch_one(db)
    .await
    .unwrap();
    runs.is_some() && migrations.is_some()
}

/// `DROP SCHEMA public CASCADE; CREATE SCHEMA public;` while the alert fires: the replicas
/// re-apply the migrations without a restart (every `/readyz` answers 200 and the tables are
/// back), agree on a leader again, and when the fault clears PagerDuty gets the resolve exactly
/// once (the trigger at most twice, under one key).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_tables_are_re_created_and_the_incident_resolves_once() {
    let mut c = Cluster::new(&[("synmon-a-0", "a"), ("synmon-a-1", "a")], RULE).await;
    c.fail("a").await;
    c.start_all().await;
    c.leader(Duration::from_secs(30)).await;
    let counts = c.pd_action("trigger", 1, Duration::from_secs(60)).await;
    let key = keys_for(&counts, "trigger")[0].0.clone();
    all_ready(&c, Duration::from_secs(10)).await;
    // Firing on both: the follower has mirrored the leader's state before the store loses it.
    for r in &c.replicas {
        crate::support::wait_for_api(&r.url("/api/v1/alerts"), Duration::from_secs(15), |v| {
            v["alerts"].as_array().is_some_and(|a| {
                a.iter()
                    .any(|x| x["alert"] == "auth_failing" && x["state"] == "firing")
            })
        })
        .await;
    }

    let url = c.pg.as_ref().unwrap().url.clone();
    let mut db = sqlx::PgConnection::connect(&url).await.unwrap();
    drop_tables(&mut db, "").await;
    let dropped = tokio::time::Instant::now();
    let mut db2 = sqlx::PgConnection::connect(&url).await.unwrap();
    crate::support::eventually(
        "the store's tables re-created",
        Duration::from_secs(30),
        async || schema_back(&mut db2).await.then_some(()),
    )
    .await;
    println!(
        "tables re-created {:.2} s after the drop",
        dropped.elapsed().as_secs_f64()
    );
    all_ready(&c, Duration::from_secs(30)).await;
    println!(
        "both replicas ready {:.2} s after the drop",
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
    // The replica that leads after the drop knows what was sent (its own memory, or the copy
    // it mirrored as a follower): no resend, and the resolve updates the Slack message.
    assert_eq!(triggers[0].1, 1, "no resend: {counts:#?}");
    assert_eq!(
        keys_for(&counts, "resolve"),
        [(key, 1)],
        "one resolve: {counts:#?}"
    );
    assert_eq!(
        c.slack.top_level().len(),
        1,
        "one Slack message for the problem, updated when it resolved"
    );
    assert!(c.pd.rejected().is_empty(), "{:?}", c.pd.rejected());
    println!(
        "PagerDuty triggers for the incident: {}; Slack top-level posts: {}",
        triggers[0].1,
        c.slack.top_level().len()
    );
    db.close().await.unwrap();
    db2.close().await.unwrap();
    c.finish().await;
}

/// The tables dropped and a stray `_sqlx_migrations` (of the wrong shape) left in the new
/// schema, so the migrations cannot be re-applied: `/readyz` answers 503 with the store's
/// error on a replica while writes fail. Once the stray table is gone, every replica answers
/// 200 again without a restart (migrations re-applied) and the pair agrees on a leader.
///
/// The stray table is what makes "while writes fail" last: a replica re-applies the migrations
/// in the very heartbeat that finds the tables gone, so after a bare drop `/readyz` has nothing
/// to show.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_that_cannot_be_migrated_makes_replicas_unready_until_it_can() {
    let mut c = Cluster::new(&[("synmon-a-0", "a"), ("synmon-a-1", "a")], RULE).await;
    c.start_all().await;
    c.leader(Duration::from_secs(30)).await;
    all_ready(&c, Duration::from_secs(10)).await;

    let url = c.pg.as_ref().unwrap().url.clone();
    let mut db = sqlx::PgConnection::connect(&url).await.unwrap();
    drop_tables(
        &mut db,
        "CREATE TABLE public._sqlx_migrations (restored_by_hand boolean);",
    )
    .await;
    let dropped = tokio::time::Instant::now();
    let (i, body) = crate::support::eventually(
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
    println!(
        "{} unready {:.2} s after the drop: {body}",
        c.replicas[i].id,
        dropped.elapsed().as_secs_f64()
    );
    assert!(
        body["store"].as_str().is_some_and(|s| s != "ok"),
        "the store's error: {body}"
    );

    sqlx::raw_sql("DROP TABLE public._sqlx_migrations")
        .execute(&mut db)
        .await
        .unwrap();
    let unblocked = tokio::time::Instant::now();
    let mut db2 = sqlx::PgConnection::connect(&url).await.unwrap();
    crate::support::eventually(
        "the store's tables re-created once they can be",
        Duration::from_secs(30),
        async || schema_back(&mut db2).await.then_some(()),
    )
    .await;
    all_ready(&c, Duration::from_secs(30)).await;
    println!(
        "both replicas ready again {:.2} s after the schema could be re-applied",
        unblocked.elapsed().as_secs_f64()
    );
    c.leader(Duration::from_secs(30)).await;
    db.close().await.unwrap();
    db2.close().await.unwrap();
    c.finish().await;
}
