//! The checks' status as one typed view, built once per request from the registry and the last
//! runs: `/api/v1/checks` serializes it and the status page renders it, so the two cannot
//! disagree and the page never reads the API's JSON back. Field order and names are the API's
//! JSON keys. Every replica lists every location's checks: its own from memory, the others from
//! the store (see [`CheckStatus`]).

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::AppState;
use crate::metrics::Window;
use crate::metrics::catalog;
use crate::outcome::Outcome;
use crate::run::{CheckKind, RunResult};
use crate::store::{LocationLatest, OutcomeCounts};

/// One check at one location: a row of `/api/v1/checks` and of the page's checks table.
///
/// A replica lists the checks it runs from its memory ([`Source::Memory`]: fresh, with latency
/// percentiles from its metrics registry), and every other (check, location) pair that ran in
/// the last 24 h from the store's latest run of that pair ([`Source::Store`]): the checks of
/// other locations, and those other replicas of its own location run. A store row says what
/// the store can say honestly: `kind`, `target`, `last`, `outcome`, `replica` and `uptime` (its
/// runs counted from the store, every attempt, maintenance runs left out). What lives only in
/// the memory of the replica that runs the check is null there: `interval_ms` (its schedule)
/// and every `latency_ms` percentile (its histograms).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CheckStatus {
    pub name: String,
    pub kind: CheckKind,
    /// The check's interval; null for store rows.
    pub interval_ms: Option<u64>,
    pub location: String,
    pub target: String,
    /// The last run (the last attempt's), `None` before the check ran.
    pub last: Option<LastRun>,
    /// The last run's outcome.
    pub outcome: Option<Outcome>,
    /// Latency percentiles of passing runs; every one null for store rows.
    pub latency_ms: PerWindow<Quantiles>,
    pub uptime: PerWindow<Uptime>,
    /// Where the row was read from.
    pub source: Source,
    /// The replica that runs the check (this one) or that stored its last run; null for runs
    /// stored before replicas were recorded, and outside a cluster.
    pub replica: Option<String>,
}

/// Where a [`CheckStatus`] row comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// A check this replica runs: its memory, fresh.
    Memory,
    /// Another location's check, or one another replica runs: the store's latest run.
    Store,
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

impl Uptime {
    fn of(pass: u64, fail: u64, error: u64) -> Self {
        Uptime {
            ratio: (pass + fail > 0).then(|| pass as f64 / (pass + fail) as f64),
            pass,
            fail,
            error,
        }
    }
}

/// The API's answer: every check at every location, and when it was computed.
#[derive(Debug, Clone, Serialize)]
pub struct Checks {
    /// This replica's checks in schedule order, then the store's rows by location and name.
    pub checks: Vec<CheckStatus>,
    pub generated_at: DateTime<Utc>,
    /// Why the store's rows are missing (the store did not answer); null when they are there.
    pub store_error: Option<String>,
}

/// Every check's status now, at every location. Also hands back this replica's last runs and
/// their maintenance marks as read under the same locks, for the page.
pub(crate) async fn gather_checks(
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
    let replica = s.store().replica().map(str::to_string);
    let mut checks: Vec<CheckStatus> = specs
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
                Uptime::of(count("pass"), count("fail"), count("error"))
            });
            let l = last.get(&c.name);
            CheckStatus {
                name: c.name.clone(),
                kind: c.kind,
                interval_ms: Some(crate::config::duration::millis_u64(c.schedule.interval)),
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
                source: Source::Memory,
                replica: replica.clone(),
            }
        })
        .collect();
    let store_error = match s.latest_per_location().await {
        Ok(pairs) => {
            let mut pairs = (*pairs).clone();
            let own: HashSet<&str> = specs.iter().map(|c| c.name.as_str()).collect();
            pairs.retain(|p| {
                !(p.run.location == cfg.location && own.contains(p.run.check.as_str()))
            });
            // The store orders text by its own collation; the API orders the same on both.
            pairs.sort_by(|a, b| {
                (&a.run.location, &a.run.check).cmp(&(&b.run.location, &b.run.check))
            });
            checks.extend(pairs.into_iter().map(from_store));
            None
        }
        Err(e) => {
            tracing::warn!(error = %e, "checks of other locations unreadable from the store");
            Some(e.to_string())
        }
    };
    (
        Checks {
            checks,
            generated_at: now,
            store_error,
        },
        last,
        marks,
    )
}

/// A row for a pair this replica does not run, from the store's latest run of it.
fn from_store(p: LocationLatest) -> CheckStatus {
    let uptime = |c: OutcomeCounts| Uptime::of(c.pass, c.fail, c.error);
    let unknown = Quantiles {
        p50: None,
        p95: None,
        p99: None,
    };
    let r = p.run;
    CheckStatus {
        kind: r.kind,
        interval_ms: None,
        location: r.location,
        target: r.target,
        outcome: Some(r.outcome),
        last: Some(LastRun {
            run_id: r.run_id,
            outcome: r.outcome,
            started_at: r.started_at,
            attempt: r.attempt,
            latency_ms: p.latency_ms,
            error: r.error,
            failed_step: r.failed_step,
            maintenance: r.maintenance,
        }),
        name: r.check,
        latency_ms: PerWindow::of(|_| unknown),
        uptime: PerWindow {
            m5: uptime(p.m5),
            h1: uptime(p.h1),
            h24: uptime(p.h24),
        },
        source: Source::Store,
        replica: p.replica,
    }
}
