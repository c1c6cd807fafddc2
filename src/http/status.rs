//! The status page (`/`), its refresh fragment (`/status/fragment`) and one page per run
//! (`/runs/{id}`): what a newcomer sees first and what DevOps keep open on a screen.
//!
//! Server-rendered HTML with inline SVG charts; the only script is a small inline one that
//! swaps the fragment in every few seconds and announces state changes in an ARIA live region.
//! The checks are the same typed rows `/api/v1/checks` serializes ([`super::view`]), every
//! location's, grouped by location with this replica's first; the SLOs are the same figures
//! `/api/v1/slo` serves (the latest evaluation's), so the page and the API cannot disagree.
//! Every string that did not come from this file goes through [`esc`]: error messages and page
//! text come from the target.

use std::collections::BTreeMap;
use std::fmt::Write;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chrono::{DateTime, Utc};

use super::AppState;
use super::html::{data_num, esc, ms, pct, time};
use super::svg;
use super::view::{LastRun, Source};
use crate::metrics::catalog;
use crate::outcome::Outcome;
use crate::rules::eval::Phase;
use crate::rules::model::{Aggregate, Condition, Op, Sli};
use crate::run::{CheckKind, RunResult};

/// How often the page refreshes its content (ms).
const REFRESH_MS: u64 = 10_000;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(page))
        .route("/status/fragment", get(fragment))
        .route("/runs/{id}", get(run_page))
}

/// A check's state as the page names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckState {
    Passing,
    Failing,
    ProbeError,
    NoData,
}

impl CheckState {
    fn of(outcome: Option<Outcome>) -> Self {
        match outcome {
            Some(Outcome::Pass) => CheckState::Passing,
            Some(Outcome::Fail) => CheckState::Failing,
            Some(Outcome::Error) => CheckState::ProbeError,
            None => CheckState::NoData,
        }
    }

    pub fn text(self) -> &'static str {
        match self {
            CheckState::Passing => "passing",
            CheckState::Failing => "failing",
            CheckState::ProbeError => "probe error",
            CheckState::NoData => "no data",
        }
    }

    fn class(self) -> &'static str {
        match self {
            CheckState::Passing => "passing",
            CheckState::Failing => "failing",
            CheckState::ProbeError => "probe-error",
            CheckState::NoData => "no-data",
        }
    }
}

/// One row of the checks table: one check at one location.
struct CheckRow {
    name: String,
    location: String,
    /// This replica's own check, or another location's (or replica's) read from the store.
    source: Source,
    kind: String,
    state: CheckState,
    /// p95 of passing runs over 5 m, 1 h, 24 h (as `/api/v1/checks` serves it).
    p95: [Option<f64>; 3],
    target_ms: Option<f64>,
    /// Availability over 24 h, with its pass / fail / probe-error counts.
    availability: Option<f64>,
    counts: (u64, u64, u64),
    /// The last run as `/api/v1/checks` lists it (with its maintenance window, if any).
    last: Option<LastRun>,
    /// This replica's last run with its steps, for the journey charts; `None` for store rows.
    run: Option<RunResult>,
}

/// Everything one rendering needs, gathered under short locks.
struct View {
    now: DateTime<Utc>,
    target: String,
    location: String,
    /// This replica's location first, then the others by name; within one, the API's order.
    checks: Vec<CheckRow>,
    /// Why other locations' checks are missing (the store did not answer).
    store_error: Option<String>,
    firing: Vec<crate::rules::Alert>,
    /// Per firing alert: why notifications for it are muted (silenced, inhibited, maintenance),
    /// empty when they are not. A muted alert stays on the page.
    muted: Vec<String>,
    pending: usize,
    slos: Vec<SloRow>,
    /// The latest failed run, with the maintenance window it fell in (if any).
    latest_failure: Option<(RunResult, Option<String>)>,
    /// Per journey: p95 per hour over the last 24 h, oldest first.
    hourly: BTreeMap<String, Vec<Option<f64>>>,
    /// The flags still in the code, soonest expiry first (`synmon flags audit`'s rows at
    /// today's date); `None` when the config has no flag registry.
    flags: Option<Vec<crate::flags::AuditRow>>,
}

/// One SLO as of the evaluator's last pass (the figures `/api/v1/slo` serves and the gauges
/// carry): recomputing a 30-day budget per page view would cost what an evaluation costs.
struct SloRow {
    name: String,
    objective: f64,
    period: String,
    /// `None` before the first evaluation.
    remaining: Option<f64>,
    burns: Vec<(String, Option<f64>)>,
    exhaustion_secs: Option<f64>,
}

/// A row per configured SLO, with the latest evaluation's figures where it computed them.
fn slo_rows(
    cfg: &crate::settings::Config,
    latest: Option<&crate::view::SloFigures>,
) -> Vec<SloRow> {
    let finite = |v: Option<f64>| v.filter(|x| x.is_finite());
    cfg.rules
        .slos
        .iter()
        .map(|slo| {
            let status = latest.and_then(|f| f.slos.iter().find(|s| s.name == slo.name));
            let burns = slo
                .alert_windows()
                .into_iter()
                .map(|w| {
                    let w = crate::rules::slo::fmt_duration(w);
                    let v = status
                        .and_then(|s| s.burn_rates.iter().find(|b| b.window == w))
                        .and_then(|b| b.burn_rate);
                    (w, finite(v))
                })
                .collect();
            SloRow {
                name: slo.name.clone(),
                objective: slo.objective,
                period: crate::rules::slo::fmt_duration(slo.period),
                remaining: finite(status.map(|s| s.error_budget_remaining)),
                burns,
                exhaustion_secs: status
                    .and_then(|s| s.time_to_exhaustion_secs)
                    .map(|x| x as f64),
            }
        })
        .collect()
}

/// The latency target of a check's p95: the lowest threshold of a p95 rule on its latency, or
/// of a latency SLO, that matches it.
fn latency_target(
    cfg: &crate::settings::Config,
    check: &str,
    location: &str,
    target: &str,
) -> Option<f64> {
    let labels: crate::rules::Labels = [
        ("check", check),
        ("location", location),
        ("target", target),
        ("outcome", "pass"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let from_rules = cfg.rules.rules.iter().filter_map(|r| match &r.condition {
        Condition::Threshold(t)
            if t.metric.name == catalog::CHECK_LATENCY.name
                && t.aggregate == Aggregate::P95
                && matches!(t.op, Op::Gt | Op::Ge)
                && t.matchers.matches(&labels) =>
        {
            Some(t.threshold)
        }
        _ => None,
    });
    let from_slos = cfg.rules.slos.iter().filter_map(|s| match &s.sli {
        Sli::Latency {
            metric,
            matchers,
            threshold_ms,
        } if metric.name == catalog::CHECK_LATENCY.name && matchers.matches(&labels) => {
            Some(*threshold_ms)
        }
        _ => None,
    });
    from_rules.chain(from_slos).reduce(f64::min)
}

/// Nearest-rank p95 of `values` (sorted in place).
fn p95(values: &mut [f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let rank = ((values.len() as f64) * 0.95).ceil() as usize;
    Some(values[rank.clamp(1, values.len()) - 1])
}

/// Stored passing runs of the last 24 h, as p95 per hour (24 points, oldest first). Runs inside
/// maintenance windows are left out, as the p95 metrics leave them out.
fn hourly_p95(runs: &[crate::store::RunSummary], now: DateTime<Utc>) -> Vec<Option<f64>> {
    let mut buckets: Vec<Vec<f64>> = vec![Vec::new(); 24];
    for r in runs {
        if r.outcome != Outcome::Pass || r.cancelled || r.maintenance.is_some() {
            continue;
        }
        let age = now - r.started_at;
        if age < chrono::Duration::zero() || age >= chrono::Duration::hours(24) {
            continue;
        }
        let i = 23 - age.num_hours() as usize;
        let v = if r.timed_latency_ms > 0.0 {
            r.timed_latency_ms
        } else {
            r.total_ms
        };
        buckets[i].push(v);
    }
    buckets.iter_mut().map(|b| p95(b)).collect()
}

async fn gather(s: &AppState) -> View {
    let cfg = s.config();
    let now = s.now();
    let target = s.target_name();
    // The same rows as the API.
    let (api, last, marks) = super::view::gather_checks(s).await;
    let mut checks: Vec<CheckRow> = api
        .checks
        .into_iter()
        .map(|c| CheckRow {
            kind: c.kind.as_str().to_string(),
            state: CheckState::of(c.outcome),
            p95: [
                c.latency_ms.m5.p95,
                c.latency_ms.h1.p95,
                c.latency_ms.h24.p95,
            ],
            target_ms: latency_target(&cfg, &c.name, &c.location, &c.target),
            availability: c.uptime.h24.ratio,
            counts: (c.uptime.h24.pass, c.uptime.h24.fail, c.uptime.h24.error),
            run: match c.source {
                Source::Memory => last.get(&c.name).cloned(),
                Source::Store => None,
            },
            last: c.last,
            source: c.source,
            location: c.location,
            name: c.name,
        })
        .collect();
    // Stable: within a location, the API's order stays.
    checks.sort_by(|a, b| {
        (a.location != cfg.location, &a.location).cmp(&(b.location != cfg.location, &b.location))
    });
    let specs = s.checks();
    let mut hourly = BTreeMap::new();
    let mut latest_fail: Option<(DateTime<Utc>, String)> = None;
    let mut note_fail = |at: DateTime<Utc>, id: &str| {
        if latest_fail.as_ref().is_none_or(|(t, _)| at > *t) {
            latest_fail = Some((at, id.to_string()));
        }
    };
    for spec in specs.iter().filter(|c| c.kind == CheckKind::Journey) {
        // Enough rows for 24 h at the check's interval (bounded for very short intervals).
        let per_day = 86_400 / spec.schedule.interval.as_secs().max(1);
        let limit = (per_day + 16).min(20_000) as u32;
        match s.store().runs_for_check(&spec.name, limit).await {
            Ok(runs) => {
                if let Some(f) = runs.iter().find(|r| r.outcome == Outcome::Fail) {
                    note_fail(f.started_at, &f.run_id);
                }
                hourly.insert(spec.name.clone(), hourly_p95(&runs, now));
            }
            Err(e) => {
                tracing::warn!(check = %spec.name, error = %e, "status page: runs unreadable")
            }
        }
    }
    for r in last.values().filter(|r| r.outcome == Outcome::Fail) {
        note_fail(r.started_at, &r.run_id);
    }
    // Other locations' last runs are in the store, like this replica's older ones.
    for c in checks.iter().filter(|c| c.source == Source::Store) {
        if let Some(r) = c.last.as_ref().filter(|r| r.outcome == Outcome::Fail) {
            note_fail(r.started_at, &r.run_id);
        }
    }
    let latest_failure = match latest_fail {
        Some((_, id)) => match last.values().find(|r| r.run_id == id) {
            Some(r) => Some((r.clone(), marks.get(&r.check).cloned())),
            None => s
                .store()
                .stored_run(&id)
                .await
                .ok()
                .flatten()
                .map(|r| (r.run, r.maintenance)),
        },
        None => None,
    };
    let (firing, pending, slos) = {
        let a = s.alerting().await;
        let firing: Vec<_> = a
            .state
            .alerts
            .values()
            .filter(|al| al.phase == Phase::Firing)
            .cloned()
            .collect();
        let pending = a
            .state
            .alerts
            .values()
            .filter(|al| al.phase == Phase::Pending)
            .count();
        (firing, pending, a.slos.clone())
    };
    let muted = firing
        .iter()
        .map(|al| {
            let m = super::mute_of(s, &cfg, al, now);
            let mut why = Vec::new();
            if m.silenced {
                why.push(format!("silenced ({})", m.silenced_by.join(", ")));
            }
            if m.inhibited {
                why.push("inhibited".to_string());
            }
            if let Some(w) = m.maintenance {
                why.push(format!("in maintenance window {w}"));
            }
            why.join("; ")
        })
        .collect();
    let slos = slo_rows(&cfg, slos.as_deref());
    let flags = (!cfg.flags.registry.flags.is_empty())
        .then(|| crate::flags::audit::next_expiries(&cfg.flags.registry, now.date_naive()));
    View {
        now,
        target,
        location: cfg.location.clone(),
        checks,
        store_error: api.store_error,
        firing,
        muted,
        pending,
        slos,
        latest_failure,
        hourly,
        flags,
    }
}

/// `/artifacts/{run}/{file}` for an artifact recorded at `path`.
fn artifact_url(run_id: &str, path: &str) -> String {
    let file = std::path::Path::new(path)
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_default();
    format!("/artifacts/{run_id}/{file}")
}

fn state_badge(state: CheckState) -> String {
    format!(
        r#"<span class="state {}">{}</span>"#,
        state.class(),
        state.text()
    )
}

fn outcome_state(o: Outcome) -> CheckState {
    CheckState::of(Some(o))
}

/// The refreshable part of the page.
fn render_fragment(v: &View) -> String {
    let mut s = String::new();
    let count = |st: CheckState| v.checks.iter().filter(|c| c.state == st).count();
    let locations: std::collections::BTreeSet<&str> =
        v.checks.iter().map(|c| c.location.as_str()).collect();
    let _ = write!(
        s,
        r#"<p id="summary">{} checks{}: {} passing, {} failing, {} probe error, {} no data. {} alerts firing{}. Updated {}.</p>"#,
        v.checks.len(),
        if locations.len() > 1 {
            format!(" in {} locations", locations.len())
        } else {
            String::new()
        },
        count(CheckState::Passing),
        count(CheckState::Failing),
        count(CheckState::ProbeError),
        count(CheckState::NoData),
        v.firing.len(),
        if v.pending > 0 {
            format!(", {} pending", v.pending)
        } else {
            String::new()
        },
        esc(&time(&v.now)),
    );

    // Checks.
    s.push_str(r#"<section aria-labelledby="h-checks"><h2 id="h-checks">Checks</h2>"#);
    if let Some(e) = &v.store_error {
        let _ = write!(
            s,
            r#"<p id="store-error" class="err">Only this replica's checks are listed: the store did not answer ({}).</p>"#,
            esc(e)
        );
    }
    if v.checks.is_empty() {
        s.push_str("<p>No checks are configured.</p>");
    } else {
        s.push_str(
            r#"<div class="wrap" role="region" aria-labelledby="h-checks" tabindex="0"><table id="checks">"#,
        );
        if v.checks.iter().any(|c| c.source == Source::Store) {
            s.push_str(
                r#"<caption class="small">Grouped by location, this replica's first. Checks this replica does not run are read from the store's latest run; their p95 is kept only by the replica that runs them.</caption>"#,
            );
        }
        s.push_str(
            r#"<thead><tr><th scope="col">Check</th><th scope="col">Location</th><th scope="col">Kind</th><th scope="col">State</th><th scope="col">p95 5 m</th><th scope="col">p95 1 h</th><th scope="col">p95 24 h</th><th scope="col">Target</th><th scope="col">Availability 24 h</th><th scope="col">Last run</th></tr></thead><tbody>"#,
        );
        for c in &v.checks {
            let _ = write!(
                s,
                r#"<tr data-check="{}" data-location="{}" data-source="{}" data-state="{}""#,
                esc(&c.name),
                esc(&c.location),
                match c.source {
                    Source::Memory => "memory",
                    Source::Store => "store",
                },
                c.state.text()
            );
            for (k, p) in ["p95-5m", "p95-1h", "p95-24h"].iter().zip(c.p95) {
                data_num(&mut s, k, p);
            }
            data_num(&mut s, "availability", c.availability);
            s.push('>');
            let _ = write!(
                s,
                r#"<th scope="row">{}</th><td>{}</td><td>{}</td><td class="st">{}</td>"#,
                esc(&c.name),
                esc(&c.location),
                esc(&c.kind),
                state_badge(c.state)
            );
            for p in c.p95 {
                if c.source == Source::Store {
                    s.push_str(r#"<td class="num small">only on its replica</td>"#);
                    continue;
                }
                let over = matches!((p, c.target_ms), (Some(p), Some(t)) if p > t);
                let _ = write!(
                    s,
                    r#"<td class="num{}">{}{}</td>"#,
                    if over { " over" } else { "" },
                    ms(p),
                    if over { " (over target)" } else { "" }
                );
            }
            let _ = write!(
                s,
                r#"<td class="num">{}</td><td class="num">{} <span class="small">({} pass, {} fail, {} probe error)</span></td>"#,
                c.target_ms
                    .map(|t| format!("&lt; {t:.0} ms"))
                    .unwrap_or_else(|| "none".into()),
                pct(c.availability),
                c.counts.0,
                c.counts.1,
                c.counts.2
            );
            match &c.last {
                Some(r) => {
                    let _ = write!(
                        s,
                        r#"<td><a href="/runs/{id}">{when}</a>{maint}{err}</td>"#,
                        id = esc(&r.run_id),
                        when = esc(&time(&r.started_at)),
                        maint = maintenance_note(r.maintenance.as_deref()),
                        err = match (&r.failed_step, &r.error) {
                            // HTTP errors already start with the request's name.
                            (Some(step), Some(e)) if !e.starts_with(step.as_str()) => {
                                format!(r#"<div class="err">{}: {}</div>"#, esc(step), esc(e))
                            }
                            (_, Some(e)) => format!(r#"<div class="err">{}</div>"#, esc(e)),
                            _ => String::new(),
                        }
                    );
                }
                None => s.push_str("<td>none yet</td>"),
            }
            s.push_str("</tr>");
        }
        s.push_str("</tbody></table></div>");
    }
    s.push_str("</section>");

    // Firing alerts.
    s.push_str(r#"<section aria-labelledby="h-alerts"><h2 id="h-alerts">Firing alerts</h2>"#);
    if v.firing.is_empty() {
        s.push_str(r#"<p id="no-alerts">No alert is firing.</p>"#);
    } else {
        s.push_str(r#"<ul id="alerts">"#);
        for (i, a) in v.firing.iter().enumerate() {
            let summary = a.annotations.get("summary").cloned().unwrap_or_default();
            let muted = v.muted.get(i).filter(|m| !m.is_empty()).map(|m| {
                format!(
                    r#" <span class="muted" data-muted="true">notifications muted: {}</span>"#,
                    esc(m)
                )
            });
            let labels: Vec<String> = a
                .labels
                .iter()
                .filter(|(k, _)| k.as_str() != "alertname")
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            let _ = write!(
                s,
                r#"<li data-alert="{}"><strong>{}</strong> {} <span class="small">firing since {}{}; {}</span>{}"#,
                esc(&a.rule),
                esc(&a.rule),
                esc(&summary),
                esc(&a.fired_at.map(|t| time(&t)).unwrap_or_default()),
                a.value
                    .map(|x| format!(", value {x:.3}"))
                    .unwrap_or_default(),
                esc(&labels.join(", ")),
                muted.unwrap_or_default()
            );
            let mut links = Vec::new();
            if let Some(check) = a.labels.get("check")
                && let Some(r) = v
                    .checks
                    .iter()
                    // The alert's location when it has one; else the first row, this
                    // replica's own.
                    .find(|c| {
                        &c.name == check
                            && a.labels.get("location").is_none_or(|l| *l == c.location)
                    })
                    .and_then(|c| c.last.as_ref())
            {
                links.push(format!(
                    r#"<a href="/runs/{}">latest {} run</a>"#,
                    esc(&r.run_id),
                    esc(check)
                ));
            }
            if let Some(u) = a.annotations.get("runbook_url")
                && (u.starts_with("https://") || u.starts_with("http://"))
            {
                links.push(format!(r#"<a href="{}">runbook</a>"#, esc(u)));
            }
            if let Some(u) = a.annotations.get("dashboard_url")
                && (u.starts_with("https://") || u.starts_with("http://"))
            {
                links.push(format!(r#"<a href="{}">dashboard</a>"#, esc(u)));
            }
            links.push(r#"<a href="/api/v1/alerts">alert JSON</a>"#.into());
            let _ = write!(s, " {}</li>", links.join(" · "));
        }
        s.push_str("</ul>");
    }
    s.push_str("</section>");

    // Latest failure.
    s.push_str(r#"<section aria-labelledby="h-failure"><h2 id="h-failure">Latest failure</h2>"#);
    match &v.latest_failure {
        None => s.push_str("<p>No failed run is on record.</p>"),
        Some((r, maintenance)) => render_failure(&mut s, r, maintenance.as_deref()),
    }
    s.push_str("</section>");

    // Error budgets.
    s.push_str(r#"<section aria-labelledby="h-slo"><h2 id="h-slo">Error budgets</h2>"#);
    if v.slos.is_empty() {
        s.push_str("<p>No SLO is configured.</p>");
    } else {
        s.push_str(
            r#"<div class="wrap" role="region" aria-labelledby="h-slo" tabindex="0"><table id="slos"><thead><tr><th scope="col">SLO</th><th scope="col">Objective</th><th scope="col">Period</th><th scope="col">Error budget remaining</th><th scope="col">Burn rates</th><th scope="col">Budget spent in</th></tr></thead><tbody>"#,
        );
        for o in &v.slos {
            let burns: Vec<String> = o
                .burns
                .iter()
                .map(|(w, b)| {
                    format!(
                        "{w} {}",
                        b.map(|x| format!("{x:.2}×"))
                            .unwrap_or_else(|| "no data".into())
                    )
                })
                .collect();
            let low = o.remaining.is_some_and(|r| r < 0.25);
            let _ = write!(
                s,
                r#"<tr data-slo="{}"><th scope="row">{}</th><td>{} %</td><td>{}</td><td class="num{}">{}</td><td>{}</td><td>{}</td></tr>"#,
                esc(&o.name),
                esc(&o.name),
                o.objective,
                esc(&o.period),
                if low { " over" } else { "" },
                match o.remaining {
                    Some(r) => pct(Some(r)),
                    None => "not evaluated yet".into(),
                },
                esc(&burns.join(", ")),
                match o.exhaustion_secs {
                    Some(x) if x <= 0.0 => "spent".to_string(),
                    Some(x) =>
                        crate::rules::slo::fmt_duration(std::time::Duration::from_secs(x as u64)),
                    None => "not burning".to_string(),
                }
            );
        }
        s.push_str("</tbody></table></div>");
    }
    s.push_str("</section>");

    if let Some(rows) = &v.flags {
        render_flags(&mut s, rows, v.now.date_naive());
    }

    // Journey charts.
    // This replica's journeys: the charts come from its own runs.
    let journeys: Vec<&CheckRow> = v
        .checks
        .iter()
        .filter(|c| c.kind == "journey" && c.source == Source::Memory)
        .collect();
    if !journeys.is_empty() {
        s.push_str(r#"<section aria-labelledby="h-journeys"><h2 id="h-journeys">Journeys</h2>"#);
        for c in journeys {
            let _ = write!(
                s,
                r#"<article class="journey" data-journey="{n}"><h3>{n} {b}</h3>"#,
                n = esc(&c.name),
                b = state_badge(c.state)
            );
            let points = v.hourly.get(&c.name).cloned().unwrap_or_default();
            let with_data: Vec<f64> = points.iter().flatten().copied().collect();
            let label = format!(
                "{}: p95 per hour over the last 24 hours, {} hours with data{}{}",
                c.name,
                with_data.len(),
                with_data
                    .last()
                    .map(|x| format!(", latest {x:.0} ms"))
                    .unwrap_or_default(),
                c.target_ms
                    .map(|t| format!(", target {t:.0} ms"))
                    .unwrap_or_default()
            );
            let _ = write!(
                s,
                r#"<figure><figcaption>p95 over the last 24 h (per hour, passing runs)</figcaption>{}</figure>"#,
                svg::p95_chart(&label, &points, c.target_ms)
            );
            if let Some(r) = &c.run {
                let _ = write!(
                    s,
                    r#"<figure><figcaption>Steps of the <a href="/runs/{}">last run</a> ({}); dark blue: timed steps (they make the p95), grey blue: untimed, red: failed</figcaption>{}</figure>"#,
                    esc(&r.run_id),
                    esc(&time(&r.started_at)),
                    step_chart(r)
                );
            }
            s.push_str("</article>");
        }
        s.push_str("</section>");
    }
    s
}

/// The "Flags" panel: the flags still in the code, soonest expiry first, with what the flag
/// policy asks of each now (the rows of `synmon flags audit`).
fn render_flags(s: &mut String, rows: &[crate::flags::AuditRow], today: chrono::NaiveDate) {
    s.push_str(r#"<section aria-labelledby="h-flags"><h2 id="h-flags">Flags</h2>"#);
    if rows.is_empty() {
        s.push_str(r#"<p id="no-flags">Every flag of the registry is removed.</p>"#);
        s.push_str("</section>");
        return;
    }
    let _ = write!(
        s,
        r#"<div class="wrap" role="region" aria-labelledby="h-flags" tabindex="0"><table id="flags"><caption class="small">Feature flags not removed, soonest expiry first, as of {}; <code>synmon flags audit</code> prints the full audit.</caption><thead><tr><th scope="col">Flag</th><th scope="col">Owner</th><th scope="col">State</th><th scope="col">Expires</th><th scope="col">Days to expiry</th><th scope="col">Policy asks</th></tr></thead><tbody>"#,
        esc(&today.to_string())
    );
    for r in rows {
        let _ = write!(
            s,
            r#"<tr data-flag="{k}" data-action="{a}""#,
            k = esc(&r.flag),
            a = r.action.as_str()
        );
        if let Some(d) = r.days_to_expiry {
            let _ = write!(s, r#" data-days="{d}""#);
        }
        let _ = write!(
            s,
            r#"><th scope="row"><code>{k}</code></th><td>{o}</td><td>{st}</td><td class="num">{e}</td><td class="num{over}">{d}</td><td{due}>{a}</td></tr>"#,
            k = esc(&r.flag),
            o = esc(&r.owner),
            st = esc(r.state),
            e = esc(&r
                .expires
                .map(|e| e.to_string())
                .unwrap_or_else(|| "none".into())),
            over = if r.days_to_expiry.is_some_and(|d| d <= 0) {
                " over"
            } else {
                ""
            },
            d = r
                .days_to_expiry
                .map(|d| d.to_string())
                .unwrap_or_else(|| "none".into()),
            due = if r.due { r#" class="over""# } else { "" },
            a = if r.due {
                esc(&r.action.describe(r.days_to_expiry))
            } else {
                "nothing yet".to_string()
            },
        );
    }
    s.push_str("</tbody></table></div></section>");
}

fn step_chart(r: &RunResult) -> String {
    let bars: Vec<svg::Bar<'_>> = r
        .steps
        .iter()
        .map(|st| svg::Bar {
            name: &st.name,
            ms: st.latency_ms,
            outcome: st.outcome.as_str(),
            timed: st.timed,
        })
        .collect();
    let label = format!(
        "{}: step latencies of the run at {}: {}",
        r.check,
        time(&r.started_at),
        r.steps
            .iter()
            .map(|st| format!("{} {:.0} ms {}", st.name, st.latency_ms, st.outcome))
            .collect::<Vec<_>>()
            .join("; ")
    );
    svg::step_bars(&label, &bars)
}

/// The line a run inside a maintenance window carries wherever it is listed; empty otherwise.
fn maintenance_note(window: Option<&str>) -> String {
    match window {
        Some(w) => format!(
            r#"<div class="small maintenance" data-maintenance="{w}">inside maintenance window {w}: not counted against SLOs</div>"#,
            w = esc(w)
        ),
        None => String::new(),
    }
}

fn render_failure(s: &mut String, r: &RunResult, maintenance: Option<&str>) {
    let _ = write!(
        s,
        r#"<div id="latest-failure" data-check="{c}" data-run="{id}"><p><strong>{c}</strong> failed at {when} (<a href="/runs/{id}">run details</a>).</p>{maint}<dl><dt>Failing step</dt><dd class="failed-step">{step}</dd><dt>Error</dt><dd><pre class="error">{err}</pre></dd></dl>"#,
        c = esc(&r.check),
        id = esc(&r.run_id),
        when = esc(&time(&r.started_at)),
        step = esc(r.failed_step.as_deref().unwrap_or("(whole run)")),
        err = esc(r.error.as_deref().unwrap_or("(no message)")),
        maint = maintenance_note(maintenance),
    );
    if let Some(a) = r.artifacts.iter().find(|a| a.kind == "screenshot") {
        let url = artifact_url(&r.run_id, &a.path);
        let _ = write!(
            s,
            r#"<p><a href="{u}"><img class="shot" src="{u}" alt="Screenshot of {c} when step {st} failed" width="640"></a></p>"#,
            u = esc(&url),
            c = esc(&r.check),
            st = esc(r.failed_step.as_deref().unwrap_or("")),
        );
    }
    s.push_str("</div>");
}

const STYLE: &str = r#"
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;color:#1a1a1a;background:#fff;margin:0 auto;max-width:1240px;padding:0 16px 32px;line-height:1.45}
a{color:#0645ad}
a:focus-visible,[tabindex]:focus-visible{outline:3px solid #1a56db;outline-offset:2px}
.skip{position:absolute;left:-9999px}
.skip:focus{left:16px;top:8px;background:#fff;padding:4px 8px;z-index:1}
header p{margin:0}
table{border-collapse:collapse;width:100%}
th,td{text-align:left;padding:6px 8px;border-bottom:1px solid #c8c8c8;vertical-align:top}
thead th{background:#f0f0f0}
td.num{white-space:nowrap}
.state{display:inline-block;padding:0 8px;border-radius:10px;font-weight:600;border:2px solid currentColor;white-space:nowrap}
.passing{color:#0a6b2d}.failing{color:#b00020}.probe-error{color:#8a4b00}.no-data{color:#4d4d4d}
.over{color:#b00020;font-weight:600}
.err{color:#b00020;font-size:.9em;max-width:28em;overflow-wrap:anywhere}
.small{font-size:.9em;color:#4d4d4d}
pre{white-space:pre-wrap;overflow-wrap:anywhere;background:#f6f6f6;padding:8px;border:1px solid #c8c8c8;margin:0}
.wrap{overflow-x:auto}
.chart{max-width:100%;height:auto}
figure{margin:8px 0 16px}
figcaption{font-weight:600;margin-bottom:4px}
img.shot{max-width:100%;height:auto;border:1px solid #c8c8c8}
#live{min-height:1.45em;font-weight:600}
dt{font-weight:600}
"#;

/// Polls the fragment, swaps it in, keeps focus where it was and announces check state changes
/// through the live region. No full reload: scroll position and focus survive. A check is one
/// row per location: rows of this replica's location are announced by the check's name, the
/// others as "check at location".
const SCRIPT: &str = r#"
(function(){
  var content=document.getElementById('content'),live=document.getElementById('live');
  var every=Number(content.getAttribute('data-refresh-ms'))||10000;
  var here=content.getAttribute('data-location');
  function states(root){var m={};root.querySelectorAll('tr[data-check]').forEach(function(e){var l=e.getAttribute('data-location');m[e.getAttribute('data-check')+(l===here?'':' at '+l)]=e.getAttribute('data-state');});return m;}
  function tick(){
    fetch('/status/fragment',{credentials:'same-origin',cache:'no-store'}).then(function(r){
      if(!r.ok){throw new Error('HTTP '+r.status);}return r.text();
    }).then(function(html){
      var before=states(content);
      var focusId=document.activeElement&&content.contains(document.activeElement)?document.activeElement.id:null;
      var tpl=document.createElement('template');tpl.innerHTML=html;
      var after=states(tpl.content);
      content.replaceChildren(tpl.content);
      if(focusId){var f=document.getElementById(focusId);if(f){f.focus();}}
      var changes=[];
      Object.keys(after).forEach(function(k){if(before[k]!==undefined&&before[k]!==after[k]){changes.push(k+' is now '+after[k]+' (was '+before[k]+')');}});
      if(changes.length){live.textContent=changes.join('. ')+'.';}
      content.setAttribute('data-refreshed',String(Date.now()));
    }).catch(function(e){live.textContent='Refresh failed ('+e.message+'); retrying.';});
  }
  setInterval(tick,every);
})();
"#;

/// A full document around `body`, with a per-response nonce for its one style and script.
fn document(title: &str, body: &str, script: bool) -> Response {
    let nonce = uuid::Uuid::new_v4().simple().to_string();
    let mut s = String::with_capacity(body.len() + 4096);
    let _ = write!(
        s,
        r#"<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>{}</title><style nonce="{nonce}">{STYLE}</style></head><body>{body}"#,
        esc(title)
    );
    if script {
        let _ = write!(s, r#"<script nonce="{nonce}">{SCRIPT}</script>"#);
    }
    s.push_str("</body></html>");
    let csp = format!(
        "default-src 'none'; img-src 'self'; style-src 'nonce-{nonce}'; script-src 'nonce-{nonce}'; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    );
    html_response(StatusCode::OK, s, Some(csp))
}

fn html_response(code: StatusCode, body: String, csp: Option<String>) -> Response {
    let mut res = (
        code,
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        body,
    )
        .into_response();
    let csp = csp.unwrap_or_else(|| "default-src 'none'; frame-ancestors 'none'".into());
    if let Ok(v) = HeaderValue::from_str(&csp) {
        res.headers_mut().insert(header::CONTENT_SECURITY_POLICY, v);
    }
    res
}

async fn page(State(s): State<AppState>) -> Response {
    let v = gather(&s).await;
    let body = format!(
        r##"<a class="skip" href="#content">Skip to the checks</a><header><h1>synmon status</h1><p>Target <strong>{t}</strong>, location <strong>{l}</strong>. Refreshes every {secs} s. <a href="/api/v1/checks">JSON</a> · <a href="/metrics">metrics</a></p></header><div id="live" role="status" aria-live="polite" aria-atomic="true"></div><main id="content" tabindex="-1" data-location="{l}" data-refresh-ms="{REFRESH_MS}">{frag}</main>"##,
        t = esc(&v.target),
        l = esc(&v.location),
        secs = REFRESH_MS / 1000,
        frag = render_fragment(&v),
    );
    document(&format!("synmon status: {}", v.target), &body, true)
}

async fn fragment(State(s): State<AppState>) -> Response {
    let v = gather(&s).await;
    html_response(StatusCode::OK, render_fragment(&v), None)
}

async fn run_page(State(s): State<AppState>, Path(id): Path<String>) -> Response {
    let r = match s.run(&id).await {
        Ok(Some(r)) => r,
        Ok(None) => {
            let body = format!(
                r#"<main id="content"><h1>No such run</h1><p>No run <code>{}</code> is stored (runs older than the retention are pruned).</p><p><a href="/">Back to the status page</a></p></main>"#,
                esc(&id)
            );
            let mut res = document("synmon: no such run", &body, false);
            *res.status_mut() = StatusCode::NOT_FOUND;
            return res;
        }
        Err(e) => {
            return html_response(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("<p>The store did not answer: {}</p>", esc(&e.to_string())),
                None,
            );
        }
    };
    document(
        &format!("synmon: {} run at {}", r.run.check, time(&r.run.started_at)),
        &render_run(&r.run, r.maintenance.as_deref(), &s.config().tracing),
        false,
    )
}

fn render_run(
    r: &RunResult,
    maintenance: Option<&str>,
    tracing: &crate::trace::TracingConfig,
) -> String {
    let state = outcome_state(r.outcome);
    let mut s = String::new();
    let _ = write!(
        s,
        r##"<a class="skip" href="#steps">Skip to the steps</a><header><p><a href="/">← Status page</a></p><h1>{c} {b}</h1></header><main id="content" data-run="{id}" data-outcome="{o}"><dl><dt>Run</dt><dd>{id} (attempt {att})</dd><dt>Started</dt><dd>{when}</dd><dt>Target and location</dt><dd>{tg}, {loc}</dd><dt>Latency</dt><dd>{timed} timed steps, {total} in all (session wait {wait}, session start {create})</dd>"##,
        c = esc(&r.check),
        b = state_badge(state),
        id = esc(&r.run_id),
        o = r.outcome.as_str(),
        att = r.attempt,
        when = esc(&time(&r.started_at)),
        tg = esc(&r.target),
        loc = esc(&r.location),
        timed = ms(Some(r.timed_latency_ms)),
        total = ms(Some(r.total_ms)),
        wait = ms(Some(r.session_wait_ms)),
        create = ms(Some(r.session_create_ms)),
    );
    // The trace its requests carried: a link into the tracing UI when `tracing.ui_url` is set.
    if let Some(t) = &r.trace_id {
        let _ = match tracing.trace_url(t) {
            Some(u) => write!(
                s,
                r#"<dt>Trace</dt><dd class="trace" data-trace="{t}">trace: <a href="{u}" rel="noopener noreferrer">{t}</a></dd>"#,
                t = esc(t),
                u = esc(&u)
            ),
            None => write!(
                s,
                r#"<dt>Trace</dt><dd class="trace" data-trace="{t}">trace: <code>{t}</code></dd>"#,
                t = esc(t)
            ),
        };
    }
    if let Some(w) = maintenance {
        let _ = write!(
            s,
            r#"<dt>Maintenance</dt><dd class="maintenance" data-maintenance="{w}">inside maintenance window {w}: not counted against SLOs, the release gate or the report</dd>"#,
            w = esc(w)
        );
    }
    if let Some(step) = &r.failed_step {
        let _ = write!(
            s,
            r#"<dt>Failing step</dt><dd class="failed-step">{}</dd>"#,
            esc(step)
        );
    }
    if let Some(e) = &r.error {
        let _ = write!(
            s,
            r#"<dt>Error</dt><dd><pre class="error">{}</pre></dd>"#,
            esc(e)
        );
    }
    s.push_str("</dl>");
    let _ = write!(
        s,
        r#"<section aria-labelledby="steps"><h2 id="steps" tabindex="-1">Steps</h2><figure><figcaption>Latency per step</figcaption>{}</figure><div class="wrap" role="region" aria-labelledby="steps" tabindex="0"><table id="step-table"><thead><tr><th scope="col">#</th><th scope="col">Step</th><th scope="col">Action</th><th scope="col">Latency</th><th scope="col">Timed</th><th scope="col">Measured</th><th scope="col">Outcome</th><th scope="col">Error</th></tr></thead><tbody>"#,
        step_chart(r)
    );
    for (i, st) in r.steps.iter().enumerate() {
        let _ = write!(
            s,
            r#"<tr data-step="{n}" data-outcome="{o}"><td>{i}</td><th scope="row">{n}</th><td>{a}</td><td class="num">{lat}</td><td>{timed}</td><td>{how}</td><td>{b}</td><td class="err">{e}</td></tr>"#,
            i = i + 1,
            n = esc(&st.name),
            o = st.outcome.as_str(),
            a = esc(&st.action),
            lat = format_args!("{:.1} ms", st.latency_ms),
            timed = if st.timed { "yes" } else { "no" },
            how = match st.timing {
                crate::run::Timing::InPage => "in the page",
                crate::run::Timing::InPageNavigation => "in the pages, across a navigation",
                crate::run::Timing::Outside => "outside",
                crate::run::Timing::Client => "by synmon's client",
            },
            b = state_badge(outcome_state(st.outcome)),
            e = esc(st.error.as_deref().unwrap_or("")),
        );
    }
    s.push_str("</tbody></table></div></section>");
    if let Some(p) = &r.page {
        let _ = write!(
            s,
            r#"<section aria-labelledby="h-page"><h2 id="h-page">Last page</h2><dl><dt>URL</dt><dd>{}</dd><dt>Time to first byte</dt><dd>{}</dd><dt>DOM content loaded</dt><dd>{}</dd><dt>Load</dt><dd>{}</dd><dt>Largest contentful paint</dt><dd>{}</dd></dl></section>"#,
            esc(&p.url),
            ms(p.ttfb_ms),
            ms(p.dom_content_loaded_ms),
            ms(p.load_ms),
            ms(p.lcp_ms),
        );
    }
    s.push_str(r#"<section aria-labelledby="h-artifacts"><h2 id="h-artifacts">Artifacts</h2>"#);
    if r.artifacts.is_empty() {
        s.push_str("<p>None (evidence is saved when a run fails).</p>");
    } else {
        s.push_str(r#"<ul id="artifacts">"#);
        for a in &r.artifacts {
            let url = artifact_url(&r.run_id, &a.path);
            let what = match a.kind.as_str() {
                "screenshot" => "screenshot",
                "html" => "page HTML (served inert)",
                "console" => "browser console",
                "network" => "slow network requests",
                other => other,
            };
            let _ = write!(
                s,
                r#"<li data-kind="{k}"><a href="{u}">{w}</a></li>"#,
                k = esc(&a.kind),
                u = esc(&url),
                w = esc(what)
            );
        }
        s.push_str("</ul>");
        if let Some(a) = r.artifacts.iter().find(|a| a.kind == "screenshot") {
            let _ = write!(
                s,
                r#"<img class="shot" src="{}" alt="Screenshot of {} at the failing step {}" width="1280">"#,
                esc(&artifact_url(&r.run_id, &a.path)),
                esc(&r.check),
                esc(r.failed_step.as_deref().unwrap_or("")),
            );
        }
    }
    s.push_str("</section></main>");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_p95() {
        assert_eq!(p95(&mut []), None);
        assert_eq!(p95(&mut [5.0]), Some(5.0));
        let mut v: Vec<f64> = (1..=100).rev().map(f64::from).collect();
        assert_eq!(p95(&mut v), Some(95.0));
        let mut v: Vec<f64> = (1..=10).map(f64::from).collect();
        assert_eq!(p95(&mut v), Some(10.0));
    }

    #[test]
    fn a_run_page_escapes_what_the_target_said() {
        let mut r = RunResult::begin("api_x", CheckKind::Http, "staging", "eu", Utc::now());
        r.outcome = Outcome::Fail;
        r.error = Some("HTTP 500 <script>alert(1)</script>".into());
        r.failed_step = Some("<b>get</b>".into());
        let html = render_run(&r, Some("<w>"), &Default::default());
        assert!(!html.contains("<script>"), "{html}");
        assert!(html.contains("HTTP 500 &lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(html.contains("&lt;b&gt;get&lt;/b&gt;"));
        assert!(html.contains(r#"data-maintenance="&lt;w&gt;""#), "{html}");
    }

    #[test]
    fn a_run_page_shows_the_trace_as_text_or_as_a_link() {
        let mut r = RunResult::begin("api_x", CheckKind::Http, "staging", "eu", Utc::now());
        assert!(!render_run(&r, None, &Default::default()).contains("data-trace"));
        r.trace_id = Some("0af7651916cd43dd8448eb211c80319c".into());
        let plain = render_run(&r, None, &Default::default());
        assert!(
            plain.contains(r#"data-trace="0af7651916cd43dd8448eb211c80319c">trace: <code>0af7651916cd43dd8448eb211c80319c</code>"#),
            "{plain}"
        );
        let ui = crate::trace::TracingConfig {
            ui_url: Some("https://tempo.example/trace/{trace_id}?a=1&b=2".into()),
        };
        let linked = render_run(&r, None, &ui);
        assert!(
            linked.contains(r#"trace: <a href="https://tempo.example/trace/0af7651916cd43dd8448eb211c80319c?a=1&amp;b=2" rel="noopener noreferrer">0af7651916cd43dd8448eb211c80319c</a>"#),
            "{linked}"
        );
    }

    #[test]
    fn the_flags_panel_lists_rows_in_order_escaped_with_what_is_due() {
        let today = chrono::NaiveDate::from_ymd_opt(2026, 1, 1).unwrap();
        let row = |flag: &str, owner: &str, days: i64| {
            let action = crate::flags::Action::for_days(days);
            crate::flags::AuditRow {
                flag: flag.into(),
                state: "active",
                owner: owner.into(),
                created: today,
                expires: Some(today + chrono::Duration::days(days)),
                days_to_expiry: Some(days),
                action,
                due: action.is_due(),
            }
        };
        let mut html = String::new();
        render_flags(
            &mut html,
            &[row("FF_<A>", "t&m", -40), row("FF_B", "ux_team", 45)],
            today,
        );
        assert!(html.contains("<caption"), "{html}");
        assert!(!html.contains("<A>") && html.contains("FF_&lt;A&gt;") && html.contains("t&amp;m"));
        let a =
            html.find(r#"data-flag="FF_&lt;A&gt;" data-action="remove_from_code" data-days="-40""#);
        let b = html.find(r#"data-flag="FF_B" data-action="none" data-days="45""#);
        assert!(a.is_some() && b.is_some() && a < b, "{html}");
        assert!(
            html.contains("remove from code: expired 40 day(s) ago (&gt; 30)"),
            "{html}"
        );
        assert!(html.contains("nothing yet"), "{html}");
        let mut none = String::new();
        render_flags(&mut none, &[], today);
        assert!(none.contains(r#"id="no-flags""#), "{none}");
    }
}
