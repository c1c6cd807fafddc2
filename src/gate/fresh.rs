//! `synmon gate --runs N`: run every gated journey and API check N times now, with the same
//! runner and probes the daemon uses, and judge only those runs.
//!
//! Runs go one after another, never overlapping: a release is judged on the latency one user
//! sees, not on what the machine running the gate does under its own load.

use std::sync::Arc;

use chrono::Utc;

use super::GatedCheck;
use super::samples::{self, AlertsReading, Mode, Samples};
use crate::clock::Clock;
use crate::config::Target;
use crate::journey::{Driver, Runner, Vars};
use crate::outcome::Outcome;
use crate::probes::http::HttpProber;
use crate::run::{CheckKind, RunResult};
use crate::settings::Config;

/// The template variables an HTTP check renders from (as the daemon sets them).
fn vars(cfg: &Config, target: &Target) -> Vars {
    let mut v = Vars::default();
    v.set("tenant", &cfg.tenant);
    v.set("username", &cfg.credentials.username);
    v.set_secret("password", cfg.credentials.password.clone());
    v.set("base_url", target.base_url.as_str().trim_end_matches('/'));
    v.set("target", &target.name);
    v.set("location", &cfg.location);
    for (k, val) in &cfg.variables {
        v.set(k, val);
    }
    v
}

/// Runs each check `n` times against `target`; `progress` hears about every finished run.
pub async fn run_checks(
    cfg: Arc<Config>,
    target: &Target,
    checks: &[GatedCheck],
    n: u32,
    clock: Arc<dyn Clock>,
    progress: &mut dyn FnMut(&RunResult),
) -> Vec<RunResult> {
    let driver = Arc::new(Driver::from_config(&cfg));
    let runner = Runner::new(cfg.clone(), driver.clone(), clock.clone());
    let http = HttpProber::new(cfg.checks.http_keep_alive);
    let v = vars(&cfg, target);
    let base = target.base_url.as_str().to_string();
    let mut out = Vec::new();
    for c in checks {
        for _ in 0..n {
            let r = match c.kind {
                CheckKind::Journey => match cfg.journeys.iter().find(|j| j.name == c.name) {
                    Some(j) => runner.run(j, target).await,
                    None => missing(c, target, &cfg, clock.now()),
                },
                CheckKind::Http => match cfg.checks.http.iter().find(|h| h.name == c.name) {
                    Some(h) => {
                        let mut r = RunResult::begin(
                            &c.name,
                            CheckKind::Http,
                            &target.name,
                            &cfg.location,
                            clock.now(),
                        );
                        http.run(h, &base, &v, &mut r, h.schedule.timeout).await;
                        r
                    }
                    None => missing(c, target, &cfg, clock.now()),
                },
                _ => continue,
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
