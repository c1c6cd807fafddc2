//! The checks' status as one typed view, built once per request from the registry and the last
//! runs: `/api/v1/checks` serializes it and the status page renders it, so the two cannot
//! disagree and the page never reads the API's JSON back. Field order and names are the API's
//! JSON keys.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::AppState;
use crate::metrics::Window;
use crate::metrics::catalog;
use crate::outcome::Outcome;
use crate::run::{CheckKind, RunResult};

/// One check's status: a row of `/api/v1/checks` and of the page's checks table.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CheckStatus {
    pub name: String,
    pub kind: CheckKind,
    pub interval_ms: u64,
    pub location: String,
    pub target: String,
    /// The last run (the last attempt's), `None` before the check ran.
    pub last: Option<LastRun>,
    /// The last run's outcome.
    pub outcome: Option<Outcome>,
    /// Latency percentiles of passing runs.
    pub latency_ms: PerWindow<Quantiles>,
    pub uptime: PerWindow<Uptime>,
}

/// What the API says of a check's last run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LastRun {
    pub run_id: String,
    pub outcome: Outcome,
    pub started_at: DateTime<Utc>,
    pub attempt: u32,
    pub latency_ms: f64,
    pub error: Option<String>,
    pub failed_step: Option<String>,
    /// The maintenance window the run fell in, if any.
    pub maintenance: Option<String>,
}

/// One figure per window the API reports: 5 minutes, 1 hour, 24 hours.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct PerWindow<T> {
    #[serde(rename = "5m")]
    pub m5: T,
    #[serde(rename = "1h")]
    pub h1: T,
    #[serde(rename = "24h")]
    pub h24: T,
}

impl<T> PerWindow<T> {
    fn of(mut f: impl FnMut(Window) -> T) -> Self {
        PerWindow {
            m5: f(Window::M5),
            h1: f(Window::H1),
            h24: f(Window::H24),
        }
    }
}

/// Latency percentiles (ms) of passing runs over a window; `None` without data.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Quantiles {
    pub p50: Option<f64>,
    pub p95: Option<f64>,
    pub p99: Option<f64>,
}

/// Runs by outcome over a window, and the availability they make.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Uptime {
    /// pass / (pass + fail): probe errors say nothing about the target. `None` without either.
    pub ratio: Option<f64>,
    pub pass: u64,
    pub fail: u64,
    pub error: u64,
}

/// The API's answer: every check, and when it was computed.
#[derive(Debug, Clone, Serialize)]
pub struct Checks {
    pub checks: Vec<CheckStatus>,
    pub generated_at: DateTime<Utc>,
}

/// Every scheduled check's status now. Also hands back the last runs and their maintenance
/// marks as read under the same locks, for the page.
pub(crate) fn gather_checks(
    s: &AppState,
) -> (Checks, HashMap<String, RunResult>, HashMap<String, String>) {
    let now = s.now();
    let cfg = s.config();
    let target = s.target_name();
    let crate::view::LastRuns {
        runs: last,
        maintenance: marks,
    } = s.last_runs();
    let specs = s.checks();
    let checks = specs
        .iter()
        .map(|c| {
            let labels = |o: &'static str| {
                [
                    ("check", c.name.as_str()),
                    ("location", cfg.location.as_str()),
                    ("target", target.as_str()),
                    ("outcome", o),
                ]
            };
            let pass = labels("pass");
            let latency_ms = PerWindow::of(|w| {
                let q = |q: f64| {
                    s.registry()
                        .quantile(catalog::CHECK_LATENCY.name, &pass, w, q, now)
                };
                Quantiles {
                    p50: q(0.5),
                    p95: q(0.95),
                    p99: q(0.99),
                }
            });
            let uptime = PerWindow::of(|w| {
                let count = |o: &'static str| {
                    s.registry()
                        .count(catalog::CHECK_LATENCY.name, &labels(o), w, now)
                };
                let (pass, fail, error) = (count("pass"), count("fail"), count("error"));
                Uptime {
                    ratio: (pass + fail > 0).then(|| pass as f64 / (pass + fail) as f64),
                    pass,
                    fail,
                    error,
                }
            });
            let l = last.get(&c.name);
            CheckStatus {
                name: c.name.clone(),
                kind: c.kind,
                interval_ms: c.schedule.interval.as_millis() as u64,
                location: cfg.location.clone(),
                target: target.clone(),
                last: l.map(|r| LastRun {
                    run_id: r.run_id.clone(),
                    outcome: r.outcome,
                    started_at: r.started_at,
                    attempt: r.attempt,
                    latency_ms: r.slo_latency_ms(),
                    error: r.error.clone(),
                    failed_step: r.failed_step.clone(),
                    maintenance: marks.get(&c.name).cloned(),
                }),
                outcome: l.map(|r| r.outcome),
                latency_ms,
                uptime,
            }
        })
        .collect();
    (
        Checks {
            checks,
            generated_at: now,
        },
        last,
        marks,
    )
}
