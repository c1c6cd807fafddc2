//! SLO arithmetic: error ratios per window, burn rates, error budget, time to exhaustion.

use std::cell::RefCell;
use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize};

use super::model::{Matchers, Sli, Slo, Stopped};
use super::source::Source;
use crate::metrics::catalog::MetricDef;

/// good and total events of one metric over windows ending at each of `ends`.
fn good_total(
    source: &dyn Source,
    metric: &'static MetricDef,
    good: &Matchers,
    total: &Matchers,
    window: Duration,
    ends: &[DateTime<Utc>],
) -> Vec<(f64, f64)> {
    let g = source.event_counts(metric, &total.and(good), window, ends);
    let t = source.event_counts(metric, total, window, ends);
    g.into_iter().zip(t).collect()
}

/// The SLI's error ratio (bad / total) over `window` ending at `now`; `None` without events.
pub fn error_ratio(
    sli: &Sli,
    source: &dyn Source,
    window: Duration,
    now: DateTime<Utc>,
) -> Option<f64> {
    match sli {
        Sli::Events {
            metric,
            matchers,
            good,
            total,
        } => {
            let (g, t) = good_total(
                source,
                metric,
                &matchers.and(good),
                &matchers.and(total),
                window,
                &[now],
            )[0];
            (t > 0.0).then(|| (t - g) / t)
        }
        Sli::Latency {
            metric,
            matchers,
            threshold_ms,
        } => {
            let (good, total) = source.latency_counts(metric, matchers, window, now, *threshold_ms);
            (total > 0).then(|| (total - good) as f64 / total as f64)
        }
        Sli::TimeSlices {
            metric,
            matchers,
            good,
            total,
            slice,
            min_good_ratio,
        } => {
            let n = (window.as_secs() / slice.as_secs().max(1)).max(1);
            let step = chrono::Duration::from_std(*slice).unwrap_or(chrono::Duration::zero());
            let (mut good_slices, mut slices) = (0u64, 0u64);
            let (g_m, t_m) = (matchers.and(total).and(good), matchers.and(total));
            let ends: Vec<DateTime<Utc>> = (0..n).map(|k| now - step * k as i32).collect();
            for (g, t) in good_total(source, metric, &g_m, &t_m, *slice, &ends) {
                if t > 0.0 {
                    slices += 1;
                    if g / t >= *min_good_ratio {
                        good_slices += 1;
                    }
                }
            }
            (slices > 0).then(|| (slices - good_slices) as f64 / slices as f64)
        }
    }
}

/// Burn rate over a window: error ratio / (1 - objective). 1.0 spends the budget exactly over
/// the period.
pub fn burn_rate(
    slo: &Slo,
    source: &dyn Source,
    window: Duration,
    now: DateTime<Utc>,
) -> Option<f64> {
    error_ratio(&slo.sli, source, window, now).map(|r| r / slo.budget_ratio())
}

/// The burn rates of one evaluation (one source, one instant), each (SLO, window) computed
/// once: the burn-rate rules and the SLO status read the same figures. Fresh per evaluation;
/// not shared between threads.
#[derive(Debug, Default)]
pub struct BurnRates {
    memo: RefCell<HashMap<(String, Duration), Option<f64>>>,
}

impl BurnRates {
    /// [`burn_rate`], computed the first time this SLO and window are asked for.
    pub fn get(
        &self,
        slo: &Slo,
        source: &dyn Source,
        window: Duration,
        now: DateTime<Utc>,
    ) -> Option<f64> {
        let key = (slo.name.clone(), window);
        if let Some(v) = self.memo.borrow().get(&key) {
            return *v;
        }
        let v = burn_rate(slo, source, window, now);
        self.memo.borrow_mut().insert(key, v);
        v
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BurnRateStatus {
    /// `5m`, `1h`, ...
    pub window: String,
    pub burn_rate: Option<f64>,
}

/// JSON has no NaN: `serde_json` writes it as null, which reads back as NaN.
fn nan_if_null<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
}

/// One SLO's state, as the API shows it (and as followers read it back from the store).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SloStatus {
    pub name: String,
    pub objective: f64,
    pub period: String,
    /// Error ratio over the whole period; `None` without events.
    pub error_ratio: Option<f64>,
    /// Share of the period's budget left: 1 untouched, 0 spent, negative overspent.
    #[serde(deserialize_with = "nan_if_null")]
    pub error_budget_remaining: f64,
    /// Every window the SLO's alerts read, shortest first.
    pub burn_rates: Vec<BurnRateStatus>,
    /// At the 1 h burn rate, how long until the budget is spent; `Some(0)` when already
    /// spent, `None` when not burning.
    pub time_to_exhaustion_secs: Option<u64>,
}

pub fn fmt_duration(d: Duration) -> String {
    humantime::format_duration(d).to_string().replace(' ', "")
}

/// Budget remaining after an error ratio over the period: `1 - ratio / (1 - objective)`.
pub fn budget_remaining(slo: &Slo, ratio: Option<f64>) -> f64 {
    1.0 - ratio.unwrap_or(0.0) / slo.budget_ratio()
}

pub fn slo_status(slos: &[Slo], source: &dyn Source, now: DateTime<Utc>) -> Vec<SloStatus> {
    slo_status_until(slos, source, now, &|| false).unwrap_or_default()
}

/// [`slo_status`] that asks `stop` before each SLO and gives up with [`Stopped`] when it says so.
pub fn slo_status_until(
    slos: &[Slo],
    source: &dyn Source,
    now: DateTime<Utc>,
    stop: &dyn Fn() -> bool,
) -> Result<Vec<SloStatus>, Stopped> {
    slo_status_with(slos, source, now, stop, &BurnRates::default())
}

/// [`slo_status_until`] reading burn rates through `burns`, shared with the rules of the same
/// evaluation (see `rules::evaluate_with`).
pub fn slo_status_with(
    slos: &[Slo],
    source: &dyn Source,
    now: DateTime<Utc>,
    stop: &dyn Fn() -> bool,
    burns: &BurnRates,
) -> Result<Vec<SloStatus>, Stopped> {
    slos.iter()
        .map(|slo| {
            if stop() {
                return Err(Stopped);
            }
            let ratio = error_ratio(&slo.sli, source, slo.period, now);
            let remaining = budget_remaining(slo, ratio);
            let burn_rates: Vec<BurnRateStatus> = slo
                .alert_windows()
                .iter()
                .map(|w| BurnRateStatus {
                    window: fmt_duration(*w),
                    burn_rate: burns.get(slo, source, *w, now),
                })
                .collect();
            let hour = burns
                .get(slo, source, Duration::from_secs(3600), now)
                .unwrap_or(0.0);
            let time_to_exhaustion_secs = if remaining <= 0.0 {
                Some(0)
            } else if hour > 0.0 {
                // The budget is `period`'s worth at burn 1; at burn b it lasts period / b.
                Some((remaining * slo.period.as_secs_f64() / hour).round() as u64)
            } else {
                None
            };
            Ok(SloStatus {
                name: slo.name.clone(),
                objective: slo.objective,
                period: fmt_duration(slo.period),
                error_ratio: ratio,
                error_budget_remaining: remaining,
                burn_rates,
                time_to_exhaustion_secs,
            })
        })
        .collect()
}
