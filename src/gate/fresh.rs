//! `synmon gate --runs N`: run every gated journey and API check N times now, with the same
//! runner and probes the daemon uses, and judge only those runs.
//!
//! Runs go one after another, never overlapping: a release is judged on the latency one user
//! sees, not on what the machine running the gate does under its own load.

use std::sync::Arc;

use chrono::Utc;

use super::GatedCheck;
use super::samples::{self, AlertsReading, Mode, Samples};
use crate::checks::{Context, HttpProber};
use crate::clock::Clock;
use crate::config::Target;
use crate::journey::{Driver, Runner, Vars};
use crate::outcome::Outcome;
use crate::run::{CheckKind, RunResult};
use crate::settings::Config;

/// Runs each check `n` times against `target`; `progress` hears about every finished run.
/// Only journeys and HTTP checks are judged; fresh runs write no metrics.
pub async fn run_checks(
    cfg: Arc<Config>,
    target: &Target,
    checks: &[GatedCheck],
    n: u32,
    clock: Arc<dyn Clock>,
    progress: &mut dyn FnMut(&RunResult),
) -> Vec<RunResult> {
    let driver = Arc::new(Driver::from_config(&cfg.webdriver));
    let runner = Runner::new(cfg.runner_settings(), driver.clone(), clock.clone());
    let http = HttpProber::new(cfg.checks.http_keep_alive);
    let vars = Vars::for_target(&cfg.identity(), target);
    let cx = Context::standalone(
        &cfg.location,
        &cfg.journeys,
        target,
        &vars,
        &*clock,
        &runner,
        &http,
    );
    let mut out = Vec::new();
    for c in checks {
        if !matches!(c.kind, CheckKind::Journey | CheckKind::Http) {
            continue;
        }
        let def = cfg.find_check(c.kind, &c.name);
        for _ in 0..n {
            let r = match &def {
                Some(d) => d.run(&cx, d.schedule().timeout).await,
                None => missing(c, target, &cfg, clock.now()),
            };
            progress(&r);
            out.push(r);
        }
    }
    driver.shutdown().await;
    out
}

fn missing(c: &GatedCheck, target: &Target, cfg: &Config, now: chrono::DateTime<Utc>) -> RunResult {
    let mut r = RunResult::begin(&c.name, c.kind, &target.name, &cfg.location, now);
    r.outcome = Outcome::Error;
    r.error = Some(format!("check `{}` is not defined", c.name));
    r
}

/// The samples of fresh runs: the runs themselves, plus the feed-push success rate read now from
/// the monitored database. Fresh runs have no alert history.
pub async fn samples(
    cfg: &Config,
    runs: &[RunResult],
    n: u32,
    from: chrono::DateTime<Utc>,
    to: chrono::DateTime<Utc>,
) -> Samples {
    Samples {
        mode: Mode::Runs { runs: n },
        from,
        to,
        checks: samples::from_runs(runs),
        feed_push_success_rate: samples::feed_push_from_database(cfg).await,
        page_alerts: AlertsReading::NotJudged,
    }
}
