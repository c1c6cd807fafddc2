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

/// `POST /login`s the sandbox received so far.
async fn logins(base_url: &str) -> usize {
    let seen: Vec<serde_json::Value> = reqwest::get(format!("{base_url}/__debug/traces"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    seen.iter()
        .filter(|r| r["method"] == "POST" && r["path"] == "/login")
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reused_login_skips_the_login_until_it_is_too_old_or_a_run_that_used_it_failed() {
    let _b = BROWSER.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let sbx = sqlite_sandbox(dir.path(), PASSWORD).await;
    let base = sbx.base_url();
    // The shipped align_category with its login reusable for 10 minutes.
    let journeys = dir.path().join("journeys");
    std::fs::create_dir(&journeys).unwrap();
    std::fs::copy(
        journeys_dir().join("_login.yaml"),
        journeys.join("_login.yaml"),
    )
    .unwrap();
    let shipped = std::fs::read_to_string(journeys_dir().join("align_category.yaml")).unwrap();
    let reusing = shipped.replace(
        "  - use: _login.yaml\n",
        "  - use: _login.yaml\n    reuse_session: 10m\n",
    );
    assert_ne!(reusing, shipped, "the journey's login is its first step");
    std::fs::write(journeys.join("align_category.yaml"), reusing).unwrap();
    let file = write_config(dir.path(), &base, PASSWORD, "");
    let text = std::fs::read_to_string(&file).unwrap().replace(
        &format!("journeys: \"{}\"", journeys_dir().display()),
        &format!("journeys: \"{}\"", journeys.display()),
    );
    std::fs::write(&file, text).unwrap();
    let cfg = Arc::new(Config::load(&file).unwrap_or_else(|e| panic!("{e}")));
    let target = cfg.target(None).unwrap().clone();
    let j = cfg.journey("align_category").unwrap();
    let login_steps = 5;
    assert_eq!(j.reuse_session.as_ref().map(|r| r.steps), Some(login_steps));
    let clock = synmon::clock::ManualClock::new(chrono::Utc::now());
    let driver = Arc::new(Driver::from_config(&cfg.webdriver));
    let runner = Runner::new(
        cfg.runner_settings(),
        driver.clone(),
        Arc::new(clock.clone()),
    );
    let names = |r: &RunResult| r.steps.iter().map(|s| s.name.clone()).collect::<Vec<_>>();

    // 1: no login captured yet: the run logs in, all 10 steps.
    let r1 = runner.run(&j, &target).await;
    assert_eq!(r1.outcome, Outcome::Pass, "{}", describe(&r1));
    assert_eq!(r1.session_reused, Some(false));
    assert_eq!(r1.steps.len(), j.steps.len());
    assert_eq!(logins(&base).await, 1);

    // 2: the login's cookies stand in for it: the run starts at the categories page, logged
    // in (the sandbox sends a visitor without a session back to /login, where the drawer's
    // button is missing), and the sandbox saw no second login.
    clock.advance(chrono::Duration::minutes(9));
    let r2 = runner.run(&j, &target).await;
    assert_eq!(r2.outcome, Outcome::Pass, "{}", describe(&r2));
    assert_eq!(r2.session_reused, Some(true));
    assert_eq!(names(&r2), names(&r1)[login_steps..].to_vec());
    assert!(r2.timed_latency_ms > 0.0);
    assert_eq!(logins(&base).await, 1);

    // 3: ten minutes after the login, it is done again.
    clock.advance(chrono::Duration::minutes(1));
    let r3 = runner.run(&j, &target).await;
    assert_eq!(r3.outcome, Outcome::Pass, "{}", describe(&r3));
    assert_eq!(r3.session_reused, Some(false));
    assert_eq!(logins(&base).await, 2);

    // 4: a run that reused the login and failed drops it; 5: the next run logs in.
    set_faults(&base, json!({"kind": "suppress_toast"})).await;
    let r4 = runner.run(&j, &target).await;
    assert_eq!(r4.outcome, Outcome::Fail, "{}", describe(&r4));
    assert_eq!(r4.session_reused, Some(true));
    clear_faults(&base).await;
    let r5 = runner.run(&j, &target).await;
    assert_eq!(r5.outcome, Outcome::Pass, "{}", describe(&r5));
    assert_eq!(r5.session_reused, Some(false));
    assert_eq!(logins(&base).await, 3);

    // The shipped journey, without `reuse_session`, logs in every run and says nothing.
    let shipped = cfg_shipped(dir.path(), &base);
    let plain = runner
        .run(&shipped.journey("align_category").unwrap(), &target)
        .await;
    assert_eq!(plain.outcome, Outcome::Pass, "{}", describe(&plain));
    assert_eq!(plain.session_reused, None);
    assert_eq!(logins(&base).await, 4);
    driver.shutdown().await;
    sbx.shutdown().await;
}

/// The config of `write_config`, with the shipped journeys.
fn cfg_shipped(dir: &std::path::Path, base: &str) -> Config {
    let sub = dir.join("shipped");
    std::fs::create_dir_all(&sub).unwrap();
    Config::load(&write_config(&sub, base, PASSWORD, "")).unwrap()
}

/// A failed run's `console.log` holds what its own pages logged, not what an earlier run on the
/// same browser logged: the session's browser log is not read (emptied) before every run, so
/// the entries are told apart by their timestamps. Three runs on one pooled browser: the first
/// reads the log before it starts (every tenth run does), the second logs and passes, the third
/// logs and fails, and only the third's line is in its evidence.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_runs_console_log_holds_its_own_lines_not_an_earlier_runs() {
    let _b = BROWSER.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let sbx = sqlite_sandbox(dir.path(), PASSWORD).await;
    let journeys = dir.path().join("journeys");
    std::fs::create_dir(&journeys).unwrap();
    let journey = |name: &str, then: &str| {
        format!(
            "name: {name}\nsteps:\n  - goto: /login\n  - script:\n      js: \"console.warn('{name} was here'); return 1\"\n{then}"
        )
    };
    std::fs::write(journeys.join("logs.yaml"), journey("logs", "")).unwrap();
    std::fs::write(
        journeys.join("logs_and_fails.yaml"),
        journey(
            "logs_and_fails",
            "  - wait_for: { selector: \"[data-test=never-there]\" }\n    timeout: 300ms\n",
        ),
    )
    .unwrap();
    let file = write_config(
        dir.path(),
        &sbx.base_url(),
        PASSWORD,
        "webdriver:\n  sessions: 1\n",
    );
    let text = std::fs::read_to_string(&file).unwrap().replace(
        &format!("journeys: \"{}\"", journeys_dir().display()),
        &format!("journeys: \"{}\"", journeys.display()),
    );
    std::fs::write(&file, text).unwrap();
    let cfg = Config::load(&file).unwrap_or_else(|e| panic!("{e}"));
    let target = cfg.target(None).unwrap().clone();
    let (runner, driver) = runner(cfg.clone());
    for name in ["logs", "logs"] {
        let r = runner.run(&cfg.journey(name).unwrap(), &target).await;
        assert_eq!(r.outcome, Outcome::Pass, "{}", describe(&r));
    }
    let r = runner
        .run(&cfg.journey("logs_and_fails").unwrap(), &target)
        .await;
    assert_eq!(r.outcome, Outcome::Fail, "{}", describe(&r));
    assert_eq!(r.browser_reused, Some(true), "the same browser as before");
    let console = r
        .artifacts
        .iter()
        .find(|a| a.kind == "console")
        .expect("a console log");
    let text = std::fs::read_to_string(&console.path).unwrap();
    assert!(text.contains("logs_and_fails was here"), "{text}");
    // ("logs_and_fails was here" does not hold this.)
    assert!(!text.contains("logs was here"), "{text}");
    driver.shutdown().await;
    sbx.shutdown().await;
}
