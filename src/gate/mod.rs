//! The release gate (`synmon gate`) and the offline report (`synmon report`).
//!
//! A pipeline asks one question before promoting a build: does the service meet its SLA? The
//! gate answers with an exit code (0 pass, 1 SLA breached, 2 cannot judge) plus a table, JSON
//! and JUnit XML. Data flows one way, like the rest of synmon:
//!
//! ```text
//! samples (stored runs, a daemon's API, or fresh runs)  ->  judge (pure)  ->  output
//! ```
//!
//! - [`samples`]: what was observed — per check, the passing latencies and the pass/fail/error
//!   counts (retried slots counted once, by their last attempt), the feed-push success gauge
//!   and the page alerts firing now. The same [`Samples`] document is what a daemon serves on
//!   `GET /api/v1/gate`, so `--source` judges exactly what a local store would.
//! - [`judge`]: samples + targets -> verdicts; no I/O, table-tested.
//! - [`output`]: the human table, `--json`, `--junit`, and the day's `perf-YYYYMMDD.json`.
//! - [`report`]: the self-contained HTML report with inline SVG charts.
//! - [`fresh`]: `--runs N`: every journey and API check run N times now.

pub mod api;
pub mod fresh;
pub mod judge;
pub mod output;
pub mod report;
pub mod samples;

pub use judge::{CheckVerdict, Criterion, Targets, Verdict, Verdicts, judge};
pub use samples::{AlertsReading, CheckSamples, FiringAlert, GaugeReading, Mode, Samples};

use crate::run::CheckKind;
use crate::settings::Config;

/// The store key of the daemon's alert evaluator state (one definition, the daemon's).
pub use crate::store::ALERT_STATE_ID;

/// The metric the feed-push criterion judges (`feed_push_success_rate`, percent).
pub const FEED_PUSH_METRIC: &str = crate::metrics::catalog::FEED_PUSH_SUCCESS_RATE.name;

/// `now - window`, or the earliest time there is for a window longer than history.
pub fn window_start(
    now: chrono::DateTime<chrono::Utc>,
    window: std::time::Duration,
) -> chrono::DateTime<chrono::Utc> {
    chrono::Duration::from_std(window)
        .ok()
        .and_then(|w| now.checked_sub_signed(w))
        .unwrap_or(chrono::DateTime::<chrono::Utc>::MIN_UTC)
}

/// A check the gate judges, with its latency target.
#[derive(Debug, Clone, PartialEq)]
pub struct GatedCheck {
    pub name: String,
    pub kind: CheckKind,
    /// p95 must stay below this (ms).
    pub p95_target_ms: f64,
}

/// The checks the config schedules that the gate judges: every journey (p95 target from the
/// latency SLO that covers it, else the default) and every HTTP (API) check. SQL metric
/// sources and TCP/DNS/TLS probes are not part of the SLA the gate judges.
pub fn gated_checks(cfg: &Config, targets: &Targets) -> Vec<GatedCheck> {
    cfg.checks
        .defs()
        .into_iter()
        .filter_map(|d| match d.kind() {
            CheckKind::Journey => Some(GatedCheck {
                p95_target_ms: journey_latency_target(cfg, d.name())
                    .unwrap_or(targets.journey_p95_ms),
                name: d.name().to_string(),
                kind: d.kind(),
            }),
            CheckKind::Http => Some(GatedCheck {
                name: d.name().to_string(),
                kind: d.kind(),
                p95_target_ms: targets.api_p95_ms,
            }),
            _ => None,
        })
        .collect()
}

/// The threshold of the first latency SLO over `synmon.check.latency` whose matchers cover this
/// journey's passing runs (`alerts/slo.yaml`: `journey_latency`, 400 ms): journeys declare their
/// SLO latency there, and the gate judges the same number the burn-rate alerts do.
fn journey_latency_target(cfg: &Config, journey: &str) -> Option<f64> {
    let labels: crate::rules::model::Labels = [
        ("check".to_string(), journey.to_string()),
        ("outcome".to_string(), "pass".to_string()),
    ]
    .into_iter()
    .collect();
    cfg.rules.slos.iter().find_map(|slo| match &slo.sli {
        crate::rules::model::Sli::Latency {
            metric,
            matchers,
            threshold_ms,
        } if metric.name == crate::metrics::catalog::CHECK_LATENCY.name
            && matchers.0.iter().all(|m| {
                // Matchers on labels the gate does not know (location, target) do not narrow
                // the SLO away from this journey.
                !labels.contains_key(m.label.as_str()) || m.matches(&labels)
            }) =>
        {
            Some(*threshold_ms)
        }
        _ => None,
    })
}
