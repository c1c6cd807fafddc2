//! The store on both databases: every test is written once as `async fn(url)` and run against a
//! fresh SQLite file and a fresh PostgreSQL database (created with a random name, dropped after).

use std::future::Future;
use std::time::Instant;

use chrono::{DateTime, Duration, TimeZone, Utc};
use synmon::Outcome;
use synmon::config::Secret;
use synmon::run::{Artifact, CheckKind, PageMetrics, RunResult, StepResult, Timing};
use synmon::store::{Pruned, RunSummary, Store, StoredRun};

use crate::support::{TempPg, postgres_admin_url};

/// Generates `sqlite::NAME` and `postgres::NAME` tests from `async fn NAME(url: Secret)`.
macro_rules! on_both {
    ($($name:ident $(#[$attr:meta])*),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                $(#[$attr])*
                async fn $name() {
                    super::on_sqlite(super::$name).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                $(#[$attr])*
                async fn $name() {
                    super::on_postgres(super::$name).await
                }
            )*
        }
    };
}

on_both!(
    round_trip,
    timestamps_keep_microseconds,
    runs_for_check_newest_first_with_limit,
    runs_since_oldest_first,
    full_runs_since_pages_through_whole_runs,
    last_run_per_check_picks_latest,
    prune_deletes_old_runs_and_reports_artifacts,
    insert_runs_is_all_or_nothing,
    maintenance_mark_is_stored_with_the_run,
    migrations_are_idempotent,
    ping_and_close,
    runs_stored_since_feeds_other_replicas_runs_once,
    the_run_writers_handle_stores_what_the_store_reads,
    insert_rate #[ignore = "benchmark: prints the insert rate"],
);

async fn on_sqlite<F, Fut>(test: F)
where
    F: FnOnce(Secret) -> Fut,
    Fut: Future<Output = ()>,
{
    synmon::tls::install();
    let dir = tempfile::tempdir().unwrap();
    test(Secret::new(format!(
        "sqlite://{}",
        dir.path().join("store.db").display()
    )))
    .await;
}

async fn on_postgres<F, Fut>(test: F)
where
    F: FnOnce(Secret) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    synmon::tls::install();
    let pg = TempPg::create().await;
    // Spawned so a failing test still drops its database before the panic propagates.
    let outcome = tokio::spawn(test(Secret::new(pg.url.clone()))).await;
    pg.drop_db().await;
    if let Err(e) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }
}

fn at(secs: i64, micros: u32) -> DateTime<Utc> {
    Utc.timestamp_opt(1_793_000_000 + secs, micros * 1000)
        .unwrap()
}

fn step(name: &str, latency_ms: f64, outcome: Outcome, error: Option<&str>) -> StepResult {
    StepResult {
        name: name.to_string(),
        action: format!("click #{name}"),
        latency_ms,
        timed: name != "login",
        timing: if name == "login" {
            Timing::Outside
        } else {
            Timing::InPage
        },
        outcome,
        error: error.map(str::to_string),
        navigation: None,
    }
}

/// A run of `check` started at `started_at`, with `steps` steps.
fn run(id: &str, check: &str, started_at: DateTime<Utc>, steps: usize) -> RunResult {
    RunResult {
        run_id: id.to_string(),
        check: check.to_string(),
        kind: CheckKind::Journey,
        attempt: 1,
        scheduled_at: started_at - Duration::microseconds(1_250),
        cancelled: false,
        target: "staging".to_string(),
        location: "eu-west".to_string(),
        outcome: Outcome::Pass,
        started_at,
        timed_latency_ms: 301.25,
        total_ms: 1234.5,
        session_wait_ms: 0.0,
        session_create_ms: 312.0,
        browser_reused: None,
        session_reused: None,
        emulation: None,
        steps: (0..steps)
            .map(|i| {
                step(
                    &format!("step-{i}"),
                    10.0 + i as f64 / 7.0,
                    Outcome::Pass,
                    None,
                )
            })
            .collect(),
        error: None,
        failed_step: None,
        artifacts: Vec::new(),
        page: None,
        trace_id: None,
    }
}

/// Runs compared through their JSON form: every field, f64s bit for bit, times to the ns.
fn json<T: serde::Serialize>(v: &T) -> serde_json::Value {
    serde_json::to_value(v).unwrap()
}

fn ids(runs: &[RunSummary]) -> Vec<&str> {
    runs.iter().map(|r| r.run_id.as_str()).collect()
}

async fn round_trip(url: Secret) {
    let store = Store::connect(&url).await.unwrap();
    let full = RunResult {
        run_id: "3f0c6f0e-5b7e-4a37-9a57-6a1f0c1d2e3f".to_string(),
        check: "align-category".to_string(),
        kind: CheckKind::Journey,
        attempt: 2,
        scheduled_at: at(0, 0),
        cancelled: false,
        target: "staging".to_string(),
        location: "eu-west".to_string(),
        outcome: Outcome::Fail,
        started_at: at(0, 123_456),
        timed_latency_ms: 0.1 + 0.2,
        total_ms: 1.0 / 3.0,
        session_wait_ms: 12_345.678_901_234_567,
        session_create_ms: 5e-324,
        browser_reused: None,
        session_reused: None,
        emulation: None,
        steps: vec![
            step("login", 88.125, Outcome::Pass, None),
            step("open-drawer", 0.1 + 0.7, Outcome::Pass, None),
            step(
                "save",
                400.000_000_000_1,
                Outcome::Fail,
                Some("toast \"Saved\" not shown within 5s — ünïcode"),
            ),
        ],
        error: Some("toast \"Saved\" not shown within 5s — ünïcode".to_string()),
        failed_step: Some("save".to_string()),
        artifacts: vec![
            Artifact {
                kind: "screenshot".to_string(),
                path: "artifacts/align-category/3f0c/save.png".to_string(),
            },
            Artifact {
                kind: "html".to_string(),
                path: "artifacts/align-category/3f0c/save.html".to_string(),
            },
            Artifact {
                kind: "console".to_string(),
                path: "artifacts/align-category/3f0c/console.log".to_string(),
            },
        ],
        page: Some(PageMetrics {
            url: "http://127.0.0.1:3000/t/synthetic/categories?q=a&b=c".to_string(),
            ttfb_ms: Some(12.3),
            dom_content_loaded_ms: None,
            load_ms: Some(0.1 + 0.2),
            lcp_ms: Some(1e-7),
            cls: Some(0.0),
        }),
        trace_id: Some("4bf92f3577b34da6a3ce929d0e0e4736".to_string()),
    };
    let bare = RunResult {
        kind: CheckKind::Http,
        cancelled: true,
        outcome: Outcome::Error,
        error: Some("cancelled by shutdown".to_string()),
        ..run("bare", "inventory-api", at(5, 999_999), 0)
    };
    store.insert_run(&full).await.unwrap();
    store.insert_run(&bare).await.unwrap();

    let back = store.run(&full.run_id).await.unwrap().expect("stored");
    assert_eq!(json(&back), json(&full));
    assert_eq!(back.steps[1].latency_ms.to_bits(), (0.1f64 + 0.7).to_bits());
    assert_eq!(back.session_create_ms.to_bits(), 5e-324f64.to_bits());
    let back = store.run("bare").await.unwrap().expect("stored");
    assert_eq!(json(&back), json(&bare));
    assert!(store.run("no-such-run").await.unwrap().is_none());

    // A duplicate id is refused and the stored run stays as it was (one transaction).
    let dup = RunResult {
        steps: vec![step("other", 1.0, Outcome::Pass, None)],
        ..full.clone()
    };
    assert!(store.insert_run(&dup).await.is_err());
    let back = store.run(&full.run_id).await.unwrap().unwrap();
    assert_eq!(json(&back), json(&full));

    let summary = &store.runs_for_check("align-category", 10).await.unwrap()[0];
    assert_eq!(
        summary,
        &RunSummary {
            run_id: full.run_id.clone(),
            check: full.check.clone(),
            kind: full.kind,
            attempt: 2,
            scheduled_at: full.scheduled_at,
            started_at: full.started_at,
            target: full.target.clone(),
            location: full.location.clone(),
            outcome: Outcome::Fail,
            cancelled: false,
            timed_latency_ms: full.timed_latency_ms,
            total_ms: full.total_ms,
            error: full.error.clone(),
            failed_step: full.failed_step.clone(),
            maintenance: None,
        }
    );
    store.close().await;
}

async fn timestamps_keep_microseconds(url: Secret) {
    let store = Store::connect(&url).await.unwrap();
    let ns = Utc.timestamp_opt(1_793_000_000, 123_456_789).unwrap();
    store.insert_run(&run("ns", "c", ns, 1)).await.unwrap();
    let back = store.run("ns").await.unwrap().unwrap();
    assert_eq!(
        back.started_at,
        Utc.timestamp_opt(1_793_000_000, 123_456_000).unwrap()
    );
    // A cutoff inside the same microsecond still finds the run (both sides truncated).
    assert_eq!(ids(&store.runs_since(ns).await.unwrap()), ["ns"]);
    store.close().await;
}

async fn runs_for_check_newest_first_with_limit(url: Secret) {
    let store = Store::connect(&url).await.unwrap();
    // Inserted out of order, interleaved with another check; one tie on started_at.
    for (id, check, t) in [
        ("a3", "a", at(30, 1)),
        ("b1", "b", at(10, 0)),
        ("a1", "a", at(10, 0)),
        ("a5", "a", at(50, 0)),
        ("a2", "a", at(20, 0)),
        ("a4x", "a", at(40, 0)),
        ("a4y", "a", at(40, 0)),
        ("b2", "b", at(60, 0)),
    ] {
        store.insert_run(&run(id, check, t, 2)).await.unwrap();
    }
    let all = store.runs_for_check("a", 100).await.unwrap();
    assert_eq!(ids(&all), ["a5", "a4y", "a4x", "a3", "a2", "a1"]);
    assert!(all.iter().all(|r| r.check == "a"));
    assert_eq!(
        ids(&store.runs_for_check("a", 2).await.unwrap()),
        ["a5", "a4y"]
    );
    assert!(store.runs_for_check("a", 0).await.unwrap().is_empty());
    assert!(store.runs_for_check("zzz", 10).await.unwrap().is_empty());
    store.close().await;
}

async fn runs_since_oldest_first(url: Secret) {
    let store = Store::connect(&url).await.unwrap();
    for (id, t) in [
        ("r3", at(30, 0)),
        ("r1", at(10, 0)),
        ("r4", at(40, 0)),
        ("r2", at(20, 0)),
    ] {
        store.insert_run(&run(id, "c", t, 1)).await.unwrap();
    }
    assert_eq!(
        ids(&store.runs_since(at(20, 0)).await.unwrap()),
        ["r2", "r3", "r4"]
    );
    assert_eq!(
        ids(&store.runs_since(at(20, 1)).await.unwrap()),
        ["r3", "r4"]
    );
    assert_eq!(ids(&store.runs_since(at(0, 0)).await.unwrap()).len(), 4);
    assert!(store.runs_since(at(41, 0)).await.unwrap().is_empty());
    store.close().await;
}

async fn full_runs_since_pages_through_whole_runs(url: Secret) {
    let store = Store::connect(&url).await.unwrap();
    let mut inserted = Vec::new();
    // Five runs, two of them starting in the same microsecond, one before `since`.
    for (id, t, steps) in [
        ("p4", at(40, 0), 0),
        ("p2b", at(20, 0), 2),
        ("p0", at(0, 0), 1),
        ("p2a", at(20, 0), 3),
        ("p3", at(30, 0), 1),
        ("p5", at(50, 0), 4),
    ] {
        let r = RunResult {
            artifacts: vec![Artifact {
                kind: "screenshot".to_string(),
                path: format!("{id}.png"),
            }],
            page: Some(PageMetrics {
                url: format!("http://x/{id}"),
                ..PageMetrics::default()
            }),
            ..run(id, "c", t, steps)
        };
        store.insert_run(&r).await.unwrap();
        inserted.push(r);
    }
    let mut pages = Vec::new();
    let mut last: Option<RunResult> = None;
    loop {
        // Each page holds at least one run, so more pages than runs means paging never ends.
        assert!(
            pages.len() <= inserted.len(),
            "paging does not end: {pages:?}"
        );
        let page = store
            .full_runs_since(at(10, 0), last.as_ref(), 2)
            .await
            .unwrap();
        if page.is_empty() {
            break;
        }
        pages.push(page.iter().map(|r| r.run_id.clone()).collect::<Vec<_>>());
        for r in &page {
            let expected = inserted.iter().find(|i| i.run_id == r.run_id).unwrap();
            assert_eq!(json(r), json(expected));
        }
        last = page.last().cloned();
    }
    assert_eq!(pages, [vec!["p2a", "p2b"], vec!["p3", "p4"], vec!["p5"]]);
    store.close().await;
}

async fn last_run_per_check_picks_latest(url: Secret) {
    let store = Store::connect(&url).await.unwrap();
    assert!(store.last_run_per_check().await.unwrap().is_empty());
    let retry = RunResult {
        attempt: 2,
        outcome: Outcome::Fail,
        ..run("save-2b", "save-profile", at(21, 500_000), 1)
    };
    for r in [
        run("save-1", "save-profile", at(10, 0), 1),
        retry,
        run("save-2", "save-profile", at(20, 0), 1),
        run("align-1", "align-category", at(5, 0), 1),
        run("feed-1", "feed-push", at(30, 0), 1),
        run("feed-0", "feed-push", at(1, 0), 1),
    ] {
        store.insert_run(&r).await.unwrap();
    }
    let last = store.last_run_per_check().await.unwrap();
    assert_eq!(ids(&last), ["align-1", "feed-1", "save-2b"]);
    assert_eq!(last[2].attempt, 2);
    assert_eq!(last[2].outcome, Outcome::Fail);
    store.close().await;
}

async fn prune_deletes_old_runs_and_reports_artifacts(url: Secret) {
    let store = Store::connect(&url).await.unwrap();
    let with_artifacts = |id: &str, t| RunResult {
        artifacts: vec![
            Artifact {
                kind: "screenshot".to_string(),
                path: format!("artifacts/{id}/shot.png"),
            },
            Artifact {
                kind: "html".to_string(),
                path: format!("artifacts/{id}/page.html"),
            },
        ],
        ..run(id, "c", t, 3)
    };
    store
        .insert_run(&with_artifacts("old1", at(10, 0)))
        .await
        .unwrap();
    store
        .insert_run(&run("old2", "d", at(20, 0), 2))
        .await
        .unwrap();
    store
        .insert_run(&with_artifacts("edge", at(30, 0)))
        .await
        .unwrap();
    store
        .insert_run(&with_artifacts("new", at(40, 0)))
        .await
        .unwrap();

    // The cutoff is injected; a run started exactly at the cutoff is kept.
    let pruned = store.prune(at(30, 0)).await.unwrap();
    assert_eq!(
        pruned,
        Pruned {
            runs: 2,
            steps: 5,
            artifacts: 2,
            artifact_paths: vec![
                "artifacts/old1/shot.png".to_string(),
                "artifacts/old1/page.html".to_string(),
            ],
        }
    );
    assert_eq!(pruned.rows(), 9);
    assert!(store.run("old1").await.unwrap().is_none());
    assert!(store.run("old2").await.unwrap().is_none());
    assert_eq!(store.run("edge").await.unwrap().unwrap().steps.len(), 3);
    assert_eq!(
        ids(&store.runs_since(at(0, 0)).await.unwrap()),
        ["edge", "new"]
    );
    assert_eq!(ids(&store.last_run_per_check().await.unwrap()), ["new"]);
    assert_eq!(store.prune(at(30, 0)).await.unwrap(), Pruned::default());

    // The ids are free again: nothing of the pruned runs is left behind.
    store
        .insert_run(&with_artifacts("old1", at(10, 0)))
        .await
        .unwrap();
    let back = store.run("old1").await.unwrap().unwrap();
    assert_eq!((back.steps.len(), back.artifacts.len()), (3, 2));
    store.close().await;
}

/// The maintenance window a run fell in is stored with it (migration 0005) and read back by
/// every reader: the whole run, summaries, gate points and the gate's narrow read, which leaves
/// marked runs out of the passes and hands them over with the others.
async fn maintenance_mark_is_stored_with_the_run(url: Secret) {
    let store = Store::connect(&url).await.unwrap();
    let failed = RunResult {
        outcome: Outcome::Fail,
        error: Some("502 during the deploy".into()),
        ..run("in-fail", "c", at(10, 0), 2)
    };
    let batch = vec![
        StoredRun {
            run: failed,
            maintenance: Some("db-upgrade".into()),
        },
        StoredRun {
            run: run("in-pass", "c", at(20, 0), 1),
            maintenance: Some("db-upgrade".into()),
        },
        StoredRun::unmarked(run("out-pass", "c", at(30, 0), 1)),
    ];
    store.insert_runs(&batch).await.unwrap();
    // A bare RunResult is stored unmarked.
    store
        .insert_run(&run("bare", "c", at(40, 0), 1))
        .await
        .unwrap();

    let back = store.stored_run("in-fail").await.unwrap().unwrap();
    assert_eq!(back.maintenance.as_deref(), Some("db-upgrade"));
    assert_eq!(json(&back.run), json(&batch[0].run));
    // One flat JSON object: the run's keys and `maintenance` beside them.
    let v = json(&back);
    assert_eq!(v["maintenance"], "db-upgrade");
    assert_eq!(v["run_id"], "in-fail");
    assert_eq!(
        json(&store.stored_run("out-pass").await.unwrap().unwrap())["maintenance"],
        serde_json::Value::Null
    );
    assert!(
        store
            .stored_run("bare")
            .await
            .unwrap()
            .unwrap()
            .maintenance
            .is_none()
    );

    let marks = |runs: &[RunSummary]| -> Vec<(String, Option<String>)> {
        runs.iter()
            .map(|r| (r.run_id.clone(), r.maintenance.clone()))
            .collect()
    };
    let expected = vec![
        ("bare".to_string(), None),
        ("out-pass".to_string(), None),
        ("in-pass".to_string(), Some("db-upgrade".to_string())),
        ("in-fail".to_string(), Some("db-upgrade".to_string())),
    ];
    assert_eq!(
        marks(&store.runs_for_check("c", 10).await.unwrap()),
        expected
    );
    let mut oldest_first = expected.clone();
    oldest_first.reverse();
    assert_eq!(
        marks(&store.runs_since(at(0, 0)).await.unwrap()),
        oldest_first
    );

    let points = store.run_points_since(at(0, 0)).await.unwrap();
    assert_eq!(
        points.iter().map(|p| p.maintenance).collect::<Vec<_>>(),
        [true, true, false, false]
    );
    let g = store.gate_runs(at(0, 0), at(100, 0)).await.unwrap();
    assert_eq!(g.passes.len(), 1);
    assert_eq!(
        g.passes[0].2.len(),
        2,
        "only the unmarked passes: {:?}",
        g.passes
    );
    assert_eq!(
        g.others
            .iter()
            .map(|p| (p.outcome, p.maintenance))
            .collect::<Vec<_>>(),
        [(Outcome::Fail, true), (Outcome::Pass, true)]
    );
    store.close().await;
}

async fn insert_runs_is_all_or_nothing(url: Secret) {
    let store = Store::connect(&url).await.unwrap();
    // More step rows than one statement carries, so the batch is split into several inserts.
    let batch: Vec<RunResult> = (0..130)
        .map(|i| RunResult {
            artifacts: vec![Artifact {
                kind: "screenshot".to_string(),
                path: format!("artifacts/{i}.png"),
            }],
            ..run(&format!("b{i:03}"), "batch", at(i, 0), 10)
        })
        .collect();
    store.insert_runs(&batch).await.unwrap();
    store.insert_runs::<RunResult>(&[]).await.unwrap();
    let listed = store.runs_for_check("batch", 1000).await.unwrap();
    assert_eq!(listed.len(), 130);
    assert_eq!(listed[0].run_id, "b129");
    let back = store.run("b077").await.unwrap().unwrap();
    assert_eq!(json(&back), json(&batch[77]));

    // One duplicate in a batch: nothing of the batch is recorded.
    let bad = vec![
        run("fresh-1", "other", at(1, 0), 2),
        run("b005", "other", at(2, 0), 2),
    ];
    assert!(store.insert_runs(&bad).await.is_err());
    assert!(store.run("fresh-1").await.unwrap().is_none());
    assert!(store.runs_for_check("other", 10).await.unwrap().is_empty());
    store.close().await;
}

async fn migrations_are_idempotent(url: Secret) {
    let store = Store::connect(&url).await.unwrap();
    store
        .insert_run(&run("kept", "c", at(0, 0), 2))
        .await
        .unwrap();
    // A second store on the same database while the first is open, then a restart.
    let again = Store::connect(&url).await.unwrap();
    assert_eq!(ids(&again.runs_since(at(0, 0)).await.unwrap()), ["kept"]);
    again.close().await;
    store.close().await;
    let restarted = Store::connect(&url).await.unwrap();
    assert_eq!(restarted.run("kept").await.unwrap().unwrap().steps.len(), 2);
    restarted.close().await;
}

/// The daemon's run writer writes through `Store::for_run_writer`: what it stores, while the
/// shared pool writes too, every other handle reads at once. On a SQLite file the handle is a
/// connection of its own (it outlives the shared pool's close); on PostgreSQL it is the pool.
async fn the_run_writers_handle_stores_what_the_store_reads(url: Secret) {
    let store = Store::connect(&url).await.unwrap();
    let writer = store.for_run_writer().await.unwrap();
    let batch: Vec<RunResult> = (0..40)
        .map(|i| run(&format!("w{i:02}"), "written", at(i, 0), 2))
        .collect();
    let (by_writer, by_pool) = tokio::join!(
        writer.record_runs(&batch[..20]),
        store.insert_runs(&batch[20..])
    );
    by_writer.unwrap();
    by_pool.unwrap();
    assert_eq!(
        store.runs_for_check("written", 100).await.unwrap().len(),
        40
    );
    let back = store.run("w07").await.unwrap().unwrap();
    assert_eq!(json(&back), json(&batch[7]));
    store.close().await;
    if url.expose().starts_with("sqlite:") {
        writer.ping().await.expect("a connection of its own");
        writer
            .record_runs(&[run("after", "written", at(50, 0), 1)])
            .await
            .unwrap();
        writer.close().await;
        let reopened = Store::connect(&url).await.unwrap();
        assert!(reopened.run("after").await.unwrap().is_some());
        reopened.close().await;
    } else {
        assert!(writer.ping().await.is_err(), "PostgreSQL: the same pool");
    }
}

#[tokio::test]
async fn in_memory_the_run_writer_shares_the_one_connection() {
    let store = Store::connect(&Secret::new("sqlite::memory:"))
        .await
        .unwrap();
    let writer = store.for_run_writer().await.unwrap();
    writer
        .record_runs(&[run("m1", "memory", at(1, 0), 1)])
        .await
        .unwrap();
    assert!(
        store.run("m1").await.unwrap().is_some(),
        "the same database"
    );
    store.close().await;
}

async fn ping_and_close(url: Secret) {
    let store = Store::connect(&url).await.unwrap();
    store.ping().await.unwrap();
    let clone = store.clone();
    store.close().await;
    assert!(clone.ping().await.is_err(), "a closed store is not ready");
}

/// `cargo test -p synmon --test it store:: -- --ignored --nocapture --test-threads=1`
async fn insert_rate(url: Secret) {
    let store = Store::connect(&url).await.unwrap();
    let dialect = store.dialect();
    let n: i64 = 2_000;
    let runs = |prefix: &str| -> Vec<RunResult> {
        (0..n)
            .map(|i| {
                let mut r = run(
                    &format!("{prefix}-{i}"),
                    &format!("check-{}", i % 20),
                    at(i, 0),
                    10,
                );
                r.artifacts = vec![Artifact {
                    kind: "screenshot".to_string(),
                    path: format!("artifacts/{prefix}/{i}.png"),
                }];
                r
            })
            .collect()
    };
    let rate = |elapsed: std::time::Duration| n as f64 / elapsed.as_secs_f64();

    // One transaction per run, one writer.
    let batch = runs("seq");
    let started = Instant::now();
    for r in &batch {
        store.insert_run(r).await.unwrap();
    }
    let sequential = rate(started.elapsed());

    // One transaction per run, four writers at once (several checks finishing together).
    let started = Instant::now();
    let mut tasks = Vec::new();
    for (w, part) in runs("par").chunks(n as usize / 4).enumerate() {
        let (store, part) = (store.clone(), part.to_vec());
        tasks.push(tokio::spawn(async move {
            for r in &part {
                store.insert_run(r).await.unwrap();
            }
            w
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let parallel = rate(started.elapsed());

    // Batches of 50 runs per transaction, as a recorder draining a queue would.
    let batch = runs("batch");
    let started = Instant::now();
    for chunk in batch.chunks(50) {
        store.insert_runs(chunk).await.unwrap();
    }
    let batched = rate(started.elapsed());

    println!(
        "store insert rate ({dialect}, {n} runs of 10 steps + 1 artifact each): \
         {sequential:.0} runs/s one per transaction, {parallel:.0} runs/s with 4 writers, \
         {batched:.0} runs/s in batches of 50"
    );
    assert_eq!(
        store.runs_since(at(0, 0)).await.unwrap().len(),
        3 * n as usize
    );
    store.close().await;
}

#[tokio::test]
async fn postgres_bad_credentials_error_hides_password() {
    synmon::tls::install();
    let password = "S3cret/hunter2!pw";
    let encoded = "S3cret%2Fhunter2!pw";
    let mut cases = Vec::new();
    // The machine's PostgreSQL trusts 127.0.0.1, so a wrong password alone would be accepted:
    // a role that does not exist is refused by the server whatever the auth method.
    let mut url = url::Url::parse(&postgres_admin_url()).unwrap();
    url.set_username("synmon_no_such_role").unwrap();
    url.set_password(Some(password)).unwrap();
    cases.push(url.clone());
    // Nobody listening.
    url.set_port(Some(1)).unwrap();
    cases.push(url);
    for url in cases {
        assert!(url.as_str().contains(encoded), "{url}");
        let err = Store::connect(&Secret::new(url.to_string()))
            .await
            .expect_err("connect must fail");
        let mut shown = format!("{err} | {err:?}");
        let mut source = std::error::Error::source(&err);
        while let Some(s) = source {
            shown.push_str(&format!(" | {s} | {s:?}"));
            source = s.source();
        }
        assert!(!shown.contains(password), "{shown}");
        assert!(!shown.contains(encoded), "{shown}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("synmon_no_such_role:***@"), "{shown}");
        assert!(
            !shown.contains("timed out"),
            "the cause is reported: {shown}"
        );
    }
}

#[tokio::test]
async fn unsupported_url_is_refused_without_its_password() {
    let err = Store::connect(&Secret::new("mysql://root:hunter2-pw@db/synmon"))
        .await
        .expect_err("not supported");
    let shown = format!("{err} {err:?}");
    assert!(!shown.contains("hunter2"), "{shown}");
    assert!(shown.contains("mysql://root:***@db/synmon"), "{shown}");
}

#[tokio::test]
async fn sqlite_creates_missing_folders_in_wal_mode() {
    use sqlx::Connection;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("nested/deeper/synmon.db");
    let store = Store::connect(&Secret::new(format!("sqlite://{}", file.display())))
        .await
        .unwrap();
    assert_eq!(store.dialect(), "sqlite");
    assert!(file.exists());
    let mut c = sqlx::SqliteConnection::connect(&format!("sqlite://{}", file.display()))
        .await
        .unwrap();
    let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(&mut c)
        .await
        .unwrap();
    assert_eq!(mode, "wal");
    c.close().await.unwrap();
    store.close().await;
}

#[tokio::test]
async fn sqlite_error_names_the_file() {
    let err = Store::connect(&Secret::new("sqlite:///proc/no/such/dir/synmon.db"))
        .await
        .expect_err("cannot create under /proc");
    assert!(
        err.to_string().contains("/proc/no/such/dir/synmon.db"),
        "{err}"
    );
}

#[tokio::test]
async fn sqlite_in_memory_works_across_calls() {
    let store = Store::connect(&Secret::new("sqlite::memory:"))
        .await
        .unwrap();
    store.insert_run(&run("m", "c", at(0, 0), 3)).await.unwrap();
    assert_eq!(store.run("m").await.unwrap().unwrap().steps.len(), 3);
    store.close().await;
}

/// The leader's read of the other replicas' runs (`daemon/feed.rs` does this): replica a-0 reads
/// what b-0 stored, twice, with a run stored in between; each read starts an overlap before the
/// newest run it had (a PostgreSQL row may become visible late), and dropping the run ids it
/// already has leaves every run of b-0 exactly once, with its steps. Its own runs and runs
/// stored before the cluster schema (no replica) are never read.
async fn runs_stored_since_feeds_other_replicas_runs_once(url: Secret) {
    const OVERLAP_US: i64 = 30_000_000;
    let store = Store::connect(&url).await.unwrap();
    let a = store.clone().for_replica("a-0");
    let b = store.clone().for_replica("b-0");
    assert_eq!(b.replica(), Some("b-0"));
    store
        .insert_run(&run("legacy", "c", at(0, 0), 1))
        .await
        .unwrap();
    a.insert_run(&run("a1", "c", at(1, 0), 2)).await.unwrap();
    let (b1, b2) = (run("b1", "c", at(2, 0), 3), run("b2", "c", at(3, 0), 0));
    b.insert_runs(&[b1.clone(), b2.clone()]).await.unwrap();

    let mut seen = std::collections::HashSet::new();
    let mut fed: Vec<synmon::store::FedRun> = Vec::new();
    let first = store.runs_stored_since(0, "a-0", 100).await.unwrap();
    for r in first {
        if seen.insert(r.run_id.clone()) {
            fed.push(r);
        }
    }
    let newest = fed.iter().map(|r| r.stored_us).max().unwrap();

    let b3 = run("b3", "d", at(4, 0), 2);
    b.insert_run(&b3).await.unwrap();
    let second = store
        .runs_stored_since(newest - OVERLAP_US, "a-0", 100)
        .await
        .unwrap();
    assert_eq!(
        second.iter().map(|r| r.run_id.as_str()).collect::<Vec<_>>(),
        ["b1", "b2", "b3"],
        "the overlap reads the first runs again, in stored order"
    );
    for r in second {
        if seen.insert(r.run_id.clone()) {
            fed.push(r);
        }
    }
    assert_eq!(
        fed.iter().map(|r| r.run_id.as_str()).collect::<Vec<_>>(),
        ["b1", "b2", "b3"]
    );
    for (got, want) in fed.iter().zip([&b1, &b2, &b3]) {
        assert_eq!(got.replica, "b-0");
        assert_eq!(json(&got.steps), json(&want.steps), "{}", want.run_id);
        assert_eq!(got.check, want.check);
        assert_eq!(got.location, want.location);
        assert_eq!(got.target, want.target);
        assert_eq!(got.started_at, want.started_at);
        assert_eq!(got.total_ms, want.total_ms);
        assert_eq!(got.slo_latency_ms(), want.slo_latency_ms());
        assert_eq!(
            got.ended_at(),
            want.started_at + Duration::microseconds(1_234_500)
        );
    }
    assert!(fed[0].stored_us <= fed[2].stored_us);
    let last = fed[2].stored_us;
    assert!(
        store
            .runs_stored_since(last, "a-0", 100)
            .await
            .unwrap()
            .is_empty(),
        "nothing after the newest"
    );

    // A page cut by its limit still carries its runs' steps, whole.
    let one = store.runs_stored_since(0, "a-0", 1).await.unwrap();
    assert_eq!(one.len(), 1);
    assert_eq!(one[0].steps.len(), 3);
    // b-0 reads only a-0's run.
    let theirs = store.runs_stored_since(0, "b-0", 100).await.unwrap();
    assert_eq!(theirs.len(), 1);
    assert_eq!(theirs[0].run_id, "a1");
    assert_eq!(theirs[0].steps.len(), 2);
    store.close().await;
}
