//! synmon against a real Selenium Grid 4 (hub + 2 nodes, each node one Chromium slot driven by
//! Debian's chromedriver), with the real sandbox. One Grid for the whole module: its three JVMs
//! take ~10-15 s to start here, so the claims below are phases of one test, each phase leaving
//! the Grid's slots free for the next.
//!
//! Slow test: ~40-60 s in all (Grid start-up, eight journey runs through it, one run held in
//! the Grid's queue for 2 s).

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use synmon::Outcome;
use synmon::journey::{Progress, RunResult, Timing};
use synmon::settings::Config;

use crate::support::grid::Grid;
use crate::support::*;

const PASSWORD: &str = "synthetic-demo";

fn describe(r: &RunResult) -> String {
    serde_json::to_string_pretty(r).unwrap()
}

/// The `webdriver:` section pointing at the Grid, with more keys.
fn webdriver(grid: &Grid, more: &str) -> String {
    format!("webdriver:\n  url: \"{}\"\n  sessions: 1\n{more}", grid.url)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn journeys_run_through_a_selenium_grid_and_its_failures_are_probe_errors() {
    let _b = BROWSER.lock().await;
    let grid = Grid::start(2).await;
    let dir = tempfile::tempdir().unwrap();
    let sbx = sqlite_sandbox(dir.path(), PASSWORD).await;

    two_replicas_pass_the_three_journeys(&grid, &sbx).await;
    let grid = a_killed_node_is_an_error_and_the_next_run_passes_on_the_other(grid, &sbx).await;
    the_wait_in_the_grids_queue_is_not_the_targets_latency(&grid, &sbx).await;
    a_session_the_grid_cannot_create_is_an_error_naming_its_answer(&grid, &sbx).await;
    a_hub_that_does_not_answer_is_an_error(grid, &sbx).await;

    sbx.shutdown().await;
}

/// 1. Two synmon daemons (replicas of one location, each with its own store) run the three
///    journeys through the Grid: every run passes, its timed steps measured in the page
///    (WebDriver BiDi through the Grid's router), and each daemon keeps its browser between
///    runs (a user context per run).
async fn two_replicas_pass_the_three_journeys(grid: &Grid, sbx: &rvp_sandbox::Sandbox) {
    let checks = "checks:\n  interval: 1h\n  journeys:\n    - name: align_category\n    - name: save_profile\n    - name: feed_push\n";
    let mut daemons = Vec::new();
    let mut dirs = Vec::new();
    for replica in ["r1", "r2"] {
        let d = tempfile::tempdir().unwrap();
        let extra = format!(
            "location: grid-test\nstore:\n  url: sqlite://synmon.db\n{}{checks}",
            webdriver(
                grid,
                &format!("  capabilities:\n    \"se:name\": \"synmon-{replica}\"\n")
            )
        );
        let cfg = Config::load(&write_config(d.path(), &sbx.base_url(), PASSWORD, &extra))
            .expect("config loads");
        daemons.push(TestDaemon::spawn(cfg).await);
        dirs.push(d);
    }
    for (i, d) in daemons.iter().enumerate() {
        for check in ["align_category", "save_profile", "feed_push"] {
            let r = d.next_run(check, None, Duration::from_secs(90)).await;
            assert_eq!(
                r.outcome,
                Outcome::Pass,
                "replica {i}, {check}: {}\n{}",
                describe(&r),
                grid.logs()
            );
            let timed: Vec<_> = r.steps.iter().filter(|s| s.timed).collect();
            assert!(!timed.is_empty(), "{check} has timed steps");
            assert!(
                timed.iter().all(|s| s.timing == Timing::InPage),
                "replica {i}, {check}: timed in the page through the Grid: {}",
                describe(&r)
            );
        }
    }
    // Each replica's pooled browser is a session on the Grid, one per node slot, carrying the
    // `se:name` the replica's config passed through.
    let sessions = grid.sessions().await;
    assert_eq!(
        sessions.len(),
        2,
        "one kept browser per replica: {sessions:?}"
    );
    let mut names: Vec<_> = sessions.iter().map(|s| s.2["se:name"].clone()).collect();
    names.sort_by_key(|n| n.to_string());
    assert_eq!(
        names,
        vec![json!("synmon-r1"), json!("synmon-r2")],
        "{sessions:?}"
    );
    for d in daemons {
        d.stop().await;
    }
    eventually(
        "the replicas' sessions closed",
        Duration::from_secs(15),
        async || grid.sessions().await.is_empty().then_some(()),
    )
    .await;
}

/// 2. A node killed (with its chromedriver and Chromium) while a journey waits in its page is
///    the probe's `error`, not the target's `fail`; the next run passes on the other node.
async fn a_killed_node_is_an_error_and_the_next_run_passes_on_the_other(
    mut grid: Grid,
    sbx: &rvp_sandbox::Sandbox,
) -> Grid {
    let d = tempfile::tempdir().unwrap();
    let cfg = Config::load(&write_config(
        d.path(),
        &sbx.base_url(),
        PASSWORD,
        &webdriver(&grid, ""),
    ))
    .unwrap();
    let target = cfg.target(None).unwrap().clone();
    let (runner, driver) = runner(cfg.clone());
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let runner = Arc::new(runner.with_progress(tx));
    // The save hangs, so the journey is surely mid-flight when the node dies.
    set_faults(
        &sbx.base_url(),
        json!({"kind": "hang", "route": "/api/t/*/categories/*/mapping"}),
    )
    .await;
    let j = cfg.journey("align_category").unwrap();
    let task = {
        let (runner, j, target) = (runner.clone(), j.clone(), target.clone());
        tokio::spawn(async move { runner.run(&j, &target).await })
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some(Progress::StepStarted { step, .. })) if step == "save mapping" => break,
            Ok(Some(_)) => continue,
            other => panic!("journey never reached the save step within 60 s: {other:?}"),
        }
    }
    let sessions = grid.sessions().await;
    let [(node, _, _)] = sessions[..] else {
        panic!("one session on the Grid: {sessions:?}");
    };
    grid.kill_node(node);
    let r = task.await.unwrap();
    assert_eq!(r.outcome, Outcome::Error, "{}", describe(&r));
    eprintln!("killed node: {:?} after {:.0} ms", r.error, r.total_ms);
    assert_eq!(
        r.failed_step.as_deref(),
        Some("save mapping"),
        "{}",
        describe(&r)
    );

    clear_faults(&sbx.base_url()).await;
    let again = runner.run(&j, &target).await;
    assert_eq!(
        again.outcome,
        Outcome::Pass,
        "{}\n{}",
        describe(&again),
        grid.logs()
    );
    // The browser that served it is kept, on the surviving node.
    let sessions = grid.sessions().await;
    assert_eq!(
        sessions.iter().map(|s| s.0).collect::<Vec<_>>(),
        vec![1 - node],
        "{sessions:?}"
    );
    driver.shutdown().await;
    grid
}

/// 3. A run whose session request waits in the Grid's queue (its one live node's slot held by
///    another client) passes once the slot frees, and that wait is its `session_create_ms`,
///    in no step's latency and not in the journey's SLO latency.
async fn the_wait_in_the_grids_queue_is_not_the_targets_latency(
    grid: &Grid,
    sbx: &rvp_sandbox::Sandbox,
) {
    const HOLD: Duration = Duration::from_millis(2500);
    let held = grid.hold_slot().await;
    let d = tempfile::tempdir().unwrap();
    let cfg = Config::load(&write_config(
        d.path(),
        &sbx.base_url(),
        PASSWORD,
        &webdriver(grid, ""),
    ))
    .unwrap();
    let target = cfg.target(None).unwrap().clone();
    let (runner, driver) = runner(cfg.clone());
    let j = cfg.journey("align_category").unwrap();
    let task = tokio::spawn(async move { runner.run(&j, &target).await });
    eventually(
        "the run's session request queued in the Grid",
        Duration::from_secs(20),
        async || (grid.queued().await == 1).then_some(()),
    )
    .await;
    // The scenario: the slot stays taken this long after the run asked for it.
    tokio::time::sleep(HOLD).await;
    grid.release(&held).await;
    let r = task.await.unwrap();
    assert_eq!(r.outcome, Outcome::Pass, "{}", describe(&r));
    eprintln!(
        "queued run: session_create_ms {:.0}, timed latency {:.0} ms, total {:.0} ms",
        r.session_create_ms, r.timed_latency_ms, r.total_ms
    );
    let hold_ms = HOLD.as_secs_f64() * 1000.0;
    assert!(r.session_create_ms >= hold_ms, "{}", describe(&r));
    assert!(r.timed_latency_ms < hold_ms, "{}", describe(&r));
    assert!(r.slo_latency_ms() < hold_ms, "{}", describe(&r));
    for s in &r.steps {
        assert!(s.latency_ms < hold_ms, "step {}: {}", s.name, describe(&r));
    }
    driver.shutdown().await;
}

/// 5. A hub that is gone is an `error` at once too.
async fn a_hub_that_does_not_answer_is_an_error(mut grid: Grid, sbx: &rvp_sandbox::Sandbox) {
    let d = tempfile::tempdir().unwrap();
    let cfg = Config::load(&write_config(
        d.path(),
        &sbx.base_url(),
        PASSWORD,
        &webdriver(&grid, ""),
    ))
    .unwrap();
    let target = cfg.target(None).unwrap().clone();
    let (runner, driver) = runner(cfg.clone());
    grid.kill_hub();
    let r = runner
        .run(&cfg.journey("align_category").unwrap(), &target)
        .await;
    assert_eq!(r.outcome, Outcome::Error, "{}", describe(&r));
    assert_eq!(r.failed_step.as_deref(), Some("browser session"));
    assert!(
        r.error
            .as_deref()
            .is_some_and(|e| e.starts_with("cannot create a browser session at http://127.0.0.1:")),
        "{}",
        describe(&r)
    );
    eprintln!("hub gone: {:?}", r.error);
    driver.shutdown().await;
}

/// 4. A session request the Grid refuses (no node offers the asked platform) is an `error`
///    at once, with the Grid's answer in the message.
async fn a_session_the_grid_cannot_create_is_an_error_naming_its_answer(
    grid: &Grid,
    sbx: &rvp_sandbox::Sandbox,
) {
    let d = tempfile::tempdir().unwrap();
    let cfg = Config::load(&write_config(
        d.path(),
        &sbx.base_url(),
        PASSWORD,
        &webdriver(grid, "  capabilities:\n    platformName: windows\n"),
    ))
    .unwrap();
    let target = cfg.target(None).unwrap().clone();
    let (runner, driver) = runner(cfg.clone());
    let started = tokio::time::Instant::now();
    let r = runner
        .run(&cfg.journey("align_category").unwrap(), &target)
        .await;
    assert_eq!(r.outcome, Outcome::Error, "{}", describe(&r));
    assert_eq!(r.failed_step.as_deref(), Some("browser session"));
    let err = r.error.clone().unwrap();
    assert!(
        err.contains("No nodes support the capabilities in the request"),
        "{err}"
    );
    eprintln!("refused: {err} after {:?}", started.elapsed());
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "refused at once, not after the queue's timeout: {:?}",
        started.elapsed()
    );
    driver.shutdown().await;
}
