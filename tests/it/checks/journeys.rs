//! The three journeys in real Chromium through real chromedriver against the sandbox.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use synmon::Outcome;
use synmon::config::Target;
use synmon::journey::{Driver, Progress, RunResult, Runner, Timing};
use synmon::settings::Config;

use crate::support::*;

const PASSWORD: &str = "synthetic-demo";

fn describe(r: &RunResult) -> String {
    serde_json::to_string_pretty(r).unwrap()
}

/// The sandbox, a config pointing at it, and a runner with its own chromedriver.
struct Fixture {
    _dir: tempfile::TempDir,
    sbx: rvp_sandbox::Sandbox,
    cfg: Config,
    target: Target,
    runner: Runner,
    driver: Arc<Driver>,
}

impl Fixture {
    /// `database_url`: the sandbox's database; `None` is a SQLite file in the temp folder.
    async fn new(database_url: Option<&str>) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let sbx = match database_url {
            Some(url) => sandbox(url, PASSWORD).await,
            None => sqlite_sandbox(dir.path(), PASSWORD).await,
        };
        let cfg = Config::load(&write_config(dir.path(), &sbx.base_url(), PASSWORD, "")).unwrap();
        let target = cfg.target(None).unwrap().clone();
        let (runner, driver) = runner(cfg.clone());
        Fixture {
            _dir: dir,
            sbx,
            cfg,
            target,
            runner,
            driver,
        }
    }

    async fn shutdown(self) {
        self.driver.shutdown().await;
        self.sbx.shutdown().await;
    }
}

async fn three_journeys_pass(database_url: Option<&str>) {
    let f = Fixture::new(database_url).await;
    let (cfg, target, runner) = (&f.cfg, &f.target, &f.runner);
    for name in ["align_category", "save_profile", "feed_push"] {
        let j = cfg.journey(name).unwrap();
        // Twice: every journey must be repeatable forever in the synthetic tenant.
        for _ in 0..2 {
            let r = runner.run(&j, target).await;
            eprintln!(
                "DEBUG {name} reused={:?} create={:.1}",
                r.browser_reused, r.session_create_ms
            );
            for s in &r.steps {
                eprintln!(
                    "DEBUG   {:<28} {:>8.1} {:?} timed={}",
                    s.name, s.latency_ms, s.timing, s.timed
                );
            }
            assert_eq!(r.outcome, Outcome::Pass, "{name}: {}", describe(&r));
            assert!(r.timed_latency_ms > 0.0, "{name}: {}", describe(&r));
            let timed: Vec<_> = r.steps.iter().filter(|s| s.timed).collect();
            assert!(!timed.is_empty(), "{name} has timed steps");
            assert!(
                timed.iter().all(|s| s.timing == Timing::InPage),
                "{name}: timed steps are measured in the page: {}",
                describe(&r)
            );
            // Every browser step, the login's navigations included, has a page clock; only
            // the API step is timed by synmon's own client.
            for s in &r.steps {
                let want: &[Timing] = if s.action == "poll" {
                    &[Timing::Client]
                } else {
                    &[Timing::InPage, Timing::InPageNavigation]
                };
                assert!(
                    want.contains(&s.timing),
                    "{name}: step {:?} timed {:?}: {}",
                    s.name,
                    s.timing,
                    describe(&r)
                );
            }
            let submit = r.steps.iter().find(|s| s.name == "submit login").unwrap();
            assert_eq!(submit.timing, Timing::InPageNavigation, "{}", describe(&r));
            assert!(submit.navigation.is_some(), "{}", describe(&r));
            assert!(r.artifacts.is_empty(), "no evidence saved for a pass");
        }
    }
    f.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_journeys_pass_on_sqlite() {
    let _b = BROWSER.lock().await;
    three_journeys_pass(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_journeys_pass_on_postgres() {
    let _b = BROWSER.lock().await;
    let db = TempPg::create().await;
    three_journeys_pass(Some(&db.url)).await;
    db.drop_db().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn suppressed_toast_fails_at_the_wait_with_a_screenshot() {
    let _b = BROWSER.lock().await;
    let Fixture {
        _dir,
        sbx,
        cfg,
        target,
        runner,
        driver,
    } = Fixture::new(None).await;
    set_faults(&sbx.base_url(), json!({"kind": "suppress_toast"})).await;
    let r = runner
        .run(&cfg.journey("align_category").unwrap(), &target)
        .await;
    assert_eq!(r.outcome, Outcome::Fail, "{}", describe(&r));
    assert_eq!(r.failed_step.as_deref(), Some("save mapping"));
    let err = r.error.clone().unwrap();
    assert!(
        err.contains("[data-test=toast]") && err.contains("after 5000 ms"),
        "{err}"
    );
    let shot = r
        .artifacts
        .iter()
        .find(|a| a.kind == "screenshot")
        .expect("a screenshot");
    let png = std::fs::read(&shot.path).expect("screenshot on disk");
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    for kind in ["html", "console", "network"] {
        assert!(r.artifacts.iter().any(|a| a.kind == kind), "{kind} saved");
    }
    driver.shutdown().await;
    sbx.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn added_latency_on_the_save_route_shows_in_that_step() {
    let _b = BROWSER.lock().await;
    let Fixture {
        _dir,
        sbx,
        cfg,
        target,
        runner,
        driver,
    } = Fixture::new(None).await;
    let j = cfg.journey("save_profile").unwrap();
    let base = runner.run(&j, &target).await;
    assert_eq!(base.outcome, Outcome::Pass, "{}", describe(&base));
    set_faults(
        &sbx.base_url(),
        json!({"kind": "latency", "route": "/api/t/*/profile", "ms": 300}),
    )
    .await;
    let r = runner.run(&j, &target).await;
    assert_eq!(r.outcome, Outcome::Pass, "{}", describe(&r));
    let save = r.steps.iter().find(|s| s.name == "save profile").unwrap();
    let before = base
        .steps
        .iter()
        .find(|s| s.name == "save profile")
        .unwrap();
    assert_eq!(save.timing, Timing::InPage);
    assert!(save.latency_ms >= 300.0, "{}", describe(&r));
    eprintln!(
        "save profile: {:.1} ms with +300 ms fault (overhead {:.1} ms; {:.1} ms without the fault)",
        save.latency_ms,
        save.latency_ms - 300.0,
        before.latency_ms
    );
    driver.shutdown().await;
    sbx.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_chromedriver_is_a_probe_error_and_the_supervisor_restarts_it() {
    let _b = BROWSER.lock().await;
    let Fixture {
        _dir,
        sbx,
        cfg,
        target,
        runner,
        driver,
    } = Fixture::new(None).await;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let runner = Arc::new(runner.with_progress(tx));
    // The save hangs, so the journey is surely mid-flight when chromedriver dies.
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
    let pid = driver
        .local()
        .unwrap()
        .pid()
        .await
        .expect("chromedriver running");
    nix::sys::signal::killpg(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    let r = task.await.unwrap();
    assert_eq!(r.outcome, Outcome::Error, "{}", describe(&r));
    let starts = driver.local().unwrap().starts();

    clear_faults(&sbx.base_url()).await;
    let again = runner.run(&j, &target).await;
    assert_eq!(again.outcome, Outcome::Pass, "{}", describe(&again));
    assert_eq!(
        driver.local().unwrap().starts(),
        starts + 1,
        "restarted once"
    );
    driver.shutdown().await;
    sbx.shutdown().await;
}
