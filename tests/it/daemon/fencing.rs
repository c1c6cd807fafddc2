//! The store as the cluster's coordination service, on real PostgreSQL: the leader lease is
//! taken only when free or expired (by the store's clock), its epoch grows at every takeover
//! (also across a dropped and re-created schema), a former leader's writes are refused, and a
//! newer leader takes over the rows the former one had claimed at once. And one SQLite store
//! serves one daemon.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use synmon::config::Secret;
use synmon::store::{Fence, NewNotification, Store};

use crate::support::{TempPg, eventually, write_config};

fn note(group: &str) -> NewNotification {
    NewNotification {
        receiver: "pagerduty".into(),
        group_key: group.into(),
        payload: "{}".into(),
    }
}

/// Waits until the store's clock says the lease has expired.
async fn until_expired(store: &Store) {
    eventually("the lease to expire", Duration::from_secs(10), async || {
        let l = store.current_lease().await.unwrap().expect("a lease row");
        l.remaining.is_zero().then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_former_leader_can_neither_queue_claim_nor_mark_once_another_holds_the_lease() {
    let pg = TempPg::create().await;
    let base = Store::connect(&Secret::new(pg.url.clone())).await.unwrap();
    let (fa, fb) = (Fence::new("a"), Fence::new("b"));
    let a = base.clone().fenced(fa.clone());
    let b = base.clone().fenced(fb.clone());
    let short = Duration::from_millis(300);
    let long = Duration::from_secs(60);
    let now = Utc::now();

    let la = base
        .acquire_lease("a", long, 1, false)
        .await
        .unwrap()
        .expect("a free lease is taken");
    assert_eq!(la.epoch, 1);
    assert!(
        base.acquire_lease("b", short, 1, false)
            .await
            .unwrap()
            .is_none(),
        "a lease held and unexpired is not taken"
    );
    fa.set(la.epoch);

    // The leader queues and claims; a replica that does not lead is refused.
    let ids = a
        .enqueue_notifications(&[note("g1")], &[], now, None)
        .await
        .unwrap();
    let claimed = a
        .outbox_claim("pagerduty", now, 10, Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(claimed.iter().map(|r| r.id).collect::<Vec<_>>(), ids);
    let refused = b
        .enqueue_notifications(&[note("g2")], &[], now, None)
        .await
        .unwrap_err();
    assert!(refused.is_fenced(), "{refused}");

    // `a` stops renewing (paused) and its lease ends (given up here, as if it had expired:
    // expiry by the store's clock is the next test's) and `b` takes over with a higher epoch.
    base.release_lease("a", la.epoch).await.unwrap();
    let lb = base
        .acquire_lease("b", Duration::from_secs(30), 1, false)
        .await
        .unwrap()
        .expect("an expired lease is taken");
    assert_eq!(lb.epoch, 2);
    fb.set(lb.epoch);
    assert!(
        base.renew_lease("a", 1, long).await.unwrap().is_none(),
        "the former leader cannot renew"
    );

    // Everything the former leader might still try is refused by the store, although its own
    // fence still says epoch 1.
    let id = ids[0];
    assert!(
        a.enqueue_notifications(&[note("g3")], &[], now, None)
            .await
            .unwrap_err()
            .is_fenced()
    );
    assert!(
        a.outbox_claim("pagerduty", now, 10, Duration::from_secs(60))
            .await
            .unwrap_err()
            .is_fenced()
    );
    assert!(
        a.outbox_attempt_started(id, 1)
            .await
            .unwrap_err()
            .is_fenced()
    );
    assert!(
        a.outbox_sent(id, 1, now, "202", None)
            .await
            .unwrap_err()
            .is_fenced()
    );
    assert!(
        a.save_alert_state("evaluator", &serde_json::json!({}), now)
            .await
            .unwrap_err()
            .is_fenced()
    );

    // The new leader takes the row the former one claimed (its 60 s claim notwithstanding),
    // sends it and marks it.
    let taken = b
        .outbox_claim("pagerduty", now, 10, Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(taken.iter().map(|r| r.id).collect::<Vec<_>>(), ids);
    assert!(b.outbox_attempt_started(id, 1).await.unwrap());
    b.outbox_sent(id, 1, now, "202", None).await.unwrap();
    let row = base.outbox_row(id).await.unwrap().unwrap();
    assert_eq!(row.status, synmon::store::OutboxStatus::Sent);
    // Delivered: nobody's to send again.
    assert!(!b.outbox_attempt_started(id, 2).await.unwrap());

    base.close().await;
    pg.drop_db().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lease_expires_by_the_store_clock_and_is_then_taken_with_a_higher_epoch() {
    let pg = TempPg::create().await;
    let base = Store::connect(&Secret::new(pg.url.clone())).await.unwrap();
    let short = Duration::from_millis(300);
    let la = base.acquire_lease("a", short, 1, false).await.unwrap();
    assert_eq!(la.map(|l| l.epoch), Some(1));
    until_expired(&base).await;
    assert!(
        base.renew_lease("a", 1, short).await.unwrap().is_none(),
        "an expired lease is not renewed"
    );
    let lb = base
        .acquire_lease("b", Duration::from_secs(30), 1, false)
        .await
        .unwrap();
    assert_eq!(lb.map(|l| (l.holder, l.epoch)), Some(("b".to_string(), 2)));
    base.close().await;
    pg.drop_db().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_epoch_keeps_growing_across_a_dropped_schema() {
    let pg = TempPg::create().await;
    let base = Store::connect(&Secret::new(pg.url.clone())).await.unwrap();
    let lease = Duration::from_secs(30);
    let first = base.acquire_lease("a", lease, 1, false).await.unwrap();
    assert_eq!(first.map(|l| l.epoch), Some(1));

    let admin = sqlx::PgPool::connect(&pg.url).await.unwrap();
    sqlx::query("DROP SCHEMA public CASCADE")
        .execute(&admin)
        .await
        .unwrap();
    sqlx::query("CREATE SCHEMA public")
        .execute(&admin)
        .await
        .unwrap();
    admin.close().await;
    let err = base.heartbeat("a", "eu", "leader", 1).await.unwrap_err();
    assert!(err.is_missing_table(), "{err}");

    base.migrate().await.unwrap();
    base.heartbeat("a", "eu", "leader", 1).await.unwrap();
    // A replica that knew epoch 1 asks for at least 2: a former leader's fence (epoch 1) can
    // never match the new row.
    let again = base.acquire_lease("b", lease, 2, false).await.unwrap();
    assert_eq!(again.map(|l| l.epoch), Some(2));

    base.close().await;
    pg.drop_db().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_daemon_on_one_sqlite_store_is_refused_until_the_first_stops() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(
        dir.path(),
        "http://127.0.0.1:9",
        "synthetic-demo",
        "store:\n  url: sqlite://synmon.db\nreplica_id: first\n",
    );
    let config = synmon::settings::Config::load(&cfg).unwrap();
    let first = crate::support::TestDaemon::spawn(config.clone()).await;
    let second = synmon::daemon::Daemon::start(
        config.clone(),
        crate::support::TestDaemon::options(),
        Arc::new(synmon::clock::SystemClock),
    )
    .await;
    let Err(e) = second else {
        panic!("a second daemon started on the same SQLite store");
    };
    let msg = e.to_string();
    assert!(
        msg.contains("in use by another synmon daemon (replica first)")
            && msg.contains("PostgreSQL"),
        "{msg}"
    );
    first.stop().await;
    let again = crate::support::TestDaemon::spawn(config).await;
    again.stop().await;
}
