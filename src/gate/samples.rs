//! What the gate judges: per-check samples, the feed-push success gauge and the firing page
//! alerts, from the local store, from fresh runs, or (the same document) from a daemon's API.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::outcome::Outcome;
use crate::run::{CheckKind, RunResult};
use crate::store::{GateRuns, RunPoint, Store, StoreError};

/// How the samples were taken.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "mode", rename_all = "snake_case")]
pub enum Mode {
    /// Stored runs of a rolling window (`--window`), e.g. `1h`.
    Window { window: String },
    /// `--runs N`: every check run N times now.
    Runs { runs: u32 },
}

/// One check's observations. Latencies are of passing runs only: a failed run's latency is
/// where it stopped, not what a user waited for; failures count against availability instead.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CheckSamples {
    pub kind: Option<CheckKind>,
    /// SLO latency (ms) of every passing run, unordered.
    pub pass_latencies_ms: Vec<f64>,
    pub fail: u64,
    /// Probe errors: never the target's fault, reported apart.
    pub error: u64,
    /// Runs recorded inside a maintenance window, whatever their outcome: reported apart,
    /// never judged (the SLO budgets exclude them too). Absent from older daemons' answers.
    #[serde(default)]
    pub maintenance_runs: u64,
}

impl CheckSamples {
    pub fn pass(&self) -> u64 {
        self.pass_latencies_ms.len() as u64
    }

    /// Runs that say something about the target (pass + fail).
    pub fn judged(&self) -> u64 {
        self.pass() + self.fail
    }

    fn add(&mut self, kind: CheckKind, outcome: Outcome, latency_ms: f64) {
        self.kind = Some(kind);
        match outcome {
            Outcome::Pass => self.pass_latencies_ms.push(latency_ms),
            Outcome::Fail => self.fail += 1,
            Outcome::Error => self.error += 1,
        }
    }
}

/// A gauge the gate judges, as it could be read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum GaugeReading {
    /// No source for it is configured: the criterion is skipped, not failed.
    NotConfigured,
    Value {
        value: f64,
    },
    /// Configured, but no value could be read (database down, stale): cannot judge.
    Unavailable {
        reason: String,
    },
}

/// A page-severity alert firing now.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FiringAlert {
    pub alert: String,
    pub labels: BTreeMap<String, String>,
    pub value: Option<f64>,
    pub firing_since: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum AlertsReading {
    /// Fresh runs have no alert history: not part of a `--runs` verdict.
    NotJudged,
    /// The page alerts firing now (empty: none).
    Firing {
        alerts: Vec<FiringAlert>,
    },
    Unavailable {
        reason: String,
    },
}

/// Everything the judge needs; also the body of the daemon's `GET /api/v1/gate`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Samples {
    #[serde(flatten)]
    pub mode: Mode,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub checks: BTreeMap<String, CheckSamples>,
    pub feed_push_success_rate: GaugeReading,
    pub page_alerts: AlertsReading,
}

/// Per-check samples from stored run points. Cancelled runs (stopped by shutdown) are dropped;
/// a slot that was retried counts once, by its last attempt, as alerting judges it: a first
/// attempt that failed and a retry that passed are one passing run. A run recorded inside a
/// maintenance window counts only as `maintenance_runs`.
pub fn from_points(points: &[RunPoint]) -> BTreeMap<String, CheckSamples> {
    // Retries are rare: remember only the slots that have them, with their last attempt.
    let mut last_attempt: HashMap<(&str, &str, DateTime<Utc>), u32> = HashMap::new();
    for p in points.iter().filter(|p| p.attempt > 1 && !p.cancelled) {
        let e = last_attempt
            .entry((&p.check, &p.location, p.scheduled_at))
            .or_insert(0);
        *e = (*e).max(p.attempt);
    }
    let mut by_check: HashMap<&str, CheckSamples> = HashMap::new();
    for p in points.iter().filter(|p| !p.cancelled) {
        if !last_attempt.is_empty()
            && let Some(&last) = last_attempt.get(&(&*p.check, &*p.location, p.scheduled_at))
            && p.attempt < last
        {
            continue;
        }
        let s = by_check.entry(&p.check).or_default();
        if p.maintenance {
            s.kind = Some(p.kind);
            s.maintenance_runs += 1;
        } else {
            s.add(p.kind, p.outcome, p.latency_ms);
        }
    }
    by_check
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
}

/// Per-check samples from what [`Store::gate_runs`] read: the passing latencies as they are
/// (a pass is never superseded), failures, probe errors and maintenance runs counted by
/// [`from_points`]'s rules over the few other runs.
pub fn from_gate_runs(g: GateRuns) -> BTreeMap<String, CheckSamples> {
    let mut out = from_points(&g.others);
    for s in out.values_mut() {
        // Retries that passed are in `passes` too.
        s.pass_latencies_ms.clear();
    }
    for (check, kind, latencies) in g.passes {
        let s = out.entry(check).or_default();
        s.kind = Some(kind);
        s.pass_latencies_ms = latencies;
    }
    out
}

/// Per-check samples from fresh runs (`--runs N`), by the same rules as [`from_points`].
pub fn from_runs(runs: &[RunResult]) -> BTreeMap<String, CheckSamples> {
    let points: Vec<RunPoint> = runs
        .iter()
        .map(|r| RunPoint {
            check: r.check.as_str().into(),
            kind: r.kind,
            location: r.location.as_str().into(),
            attempt: r.attempt,
            scheduled_at: r.scheduled_at,
            started_at: r.started_at,
            outcome: r.outcome,
            cancelled: r.cancelled,
            latency_ms: r.slo_latency_ms(),
            // Fresh runs are asked for now, on purpose: every one is judged.
            maintenance: false,
        })
        .collect();
    from_points(&points)
}

/// The page-severity alerts firing in an evaluator state document (as the daemon persists it).
pub fn page_alerts(state: &crate::rules::eval::State) -> Vec<FiringAlert> {
    state
        .alerts
        .values()
        .filter(|a| {
            a.phase == crate::rules::eval::Phase::Firing
                && a.labels.get("severity").map(String::as_str) == Some("page")
        })
        .map(|a| FiringAlert {
            alert: a.rule.clone(),
            labels: a.labels.clone(),
            value: a.value,
            firing_since: a.fired_at,
        })
        .collect()
}

/// The firing page alerts from the store's persisted evaluator state. No state at all means the
/// evaluator never ran against this store: nothing is firing.
pub async fn stored_page_alerts(store: &Store) -> AlertsReading {
    match store.load_alert_state(super::ALERT_STATE_ID).await {
        Ok(None) => AlertsReading::Firing { alerts: Vec::new() },
        Ok(Some(v)) => match serde_json::from_value::<crate::rules::eval::State>(v) {
            Ok(state) => AlertsReading::Firing {
                alerts: page_alerts(&state),
            },
            Err(e) => AlertsReading::Unavailable {
                reason: format!("the stored alert state is unreadable: {e}"),
            },
        },
        Err(e) => AlertsReading::Unavailable {
            reason: format!("cannot read the alert state: {e}"),
        },
    }
}

/// Reads the feed-push success rate now from the monitored database, through the SQL metric the
/// config defines for `feed_push_success_rate` (the daemon stores gauges only in memory; the
/// query itself covers its own window, 24 h in the example config).
pub async fn feed_push_from_database(cfg: &crate::settings::Config) -> GaugeReading {
    let Some(m) = cfg
        .checks
        .sql
        .iter()
        .find(|m| m.metric == super::FEED_PUSH_METRIC)
    else {
        return GaugeReading::NotConfigured;
    };
    let Some(url) = &cfg.database_url else {
        return GaugeReading::Unavailable {
            reason: format!(
                "SQL metric `{}` needs `database.url`, which is not set",
                m.name
            ),
        };
    };
    let src = match crate::checks::sql::SqlSource::new(url) {
        Ok(s) => s,
        Err(e) => {
            return GaugeReading::Unavailable {
                reason: e.to_string(),
            };
        }
    };
    match src.query(m, m.schedule.timeout).await {
        Ok(samples) => match samples.first() {
            Some(s) if s.value.is_finite() => GaugeReading::Value { value: s.value },
            _ => GaugeReading::Unavailable {
                reason: format!("`{}` returned no value", m.name),
            },
        },
        Err(e) => GaugeReading::Unavailable {
            reason: format!("`{}`: {e}", m.name),
        },
    }
}

/// Window mode from the local store: the runs of the last `window`, the feed-push gauge from the
/// monitored database and the firing page alerts from the stored alert state.
pub async fn from_store(
    store: &Store,
    cfg: &crate::settings::Config,
    window_text: &str,
    window: std::time::Duration,
    now: DateTime<Utc>,
) -> Result<Samples, StoreError> {
    let from = super::window_start(now, window);
    let runs = store.gate_runs(from, now).await?;
    Ok(Samples {
        mode: Mode::Window {
            window: window_text.to_string(),
        },
        from,
        to: now,
        checks: from_gate_runs(runs),
        feed_push_success_rate: feed_push_from_database(cfg).await,
        page_alerts: stored_page_alerts(store).await,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(check: &str, attempt: u32, slot: i64, outcome: Outcome, ms: f64) -> RunPoint {
        let t = DateTime::<Utc>::from_timestamp(1_800_000_000 + slot * 60, 0).unwrap();
        RunPoint {
            check: check.into(),
            kind: CheckKind::Journey,
            location: "local".into(),
            attempt,
            scheduled_at: t,
            started_at: t + chrono::Duration::seconds(i64::from(attempt) * 5),
            outcome,
            cancelled: false,
            latency_ms: ms,
            maintenance: false,
        }
    }

    #[test]
    fn a_retried_slot_counts_once_by_its_last_attempt() {
        let points = vec![
            point("a", 1, 0, Outcome::Fail, 900.0),
            point("a", 2, 0, Outcome::Pass, 120.0),
            point("a", 1, 1, Outcome::Pass, 110.0),
            point("a", 1, 2, Outcome::Error, 0.0),
            point("b", 1, 0, Outcome::Fail, 50.0),
        ];
        let s = from_points(&points);
        assert_eq!(s["a"].pass_latencies_ms, vec![120.0, 110.0]);
        assert_eq!((s["a"].fail, s["a"].error), (0, 1));
        assert_eq!((s["b"].pass(), s["b"].fail), (0, 1));
    }

    #[test]
    fn maintenance_runs_are_counted_apart_never_judged() {
        let mut in_window = vec![
            point("a", 1, 0, Outcome::Fail, 900.0),
            point("a", 2, 0, Outcome::Fail, 950.0),
            point("a", 1, 1, Outcome::Pass, 5000.0),
        ];
        for p in &mut in_window {
            p.maintenance = true;
        }
        in_window.push(point("a", 1, 2, Outcome::Pass, 110.0));
        let s = from_points(&in_window);
        assert_eq!(s["a"].pass_latencies_ms, vec![110.0]);
        assert_eq!((s["a"].fail, s["a"].error), (0, 0));
        // The retried slot counts once, by its last attempt, like any other.
        assert_eq!(s["a"].maintenance_runs, 2);
        assert_eq!(s["a"].judged(), 1);
    }

    #[test]
    fn cancelled_runs_are_not_samples() {
        let mut p = point("a", 1, 0, Outcome::Fail, 10.0);
        p.cancelled = true;
        assert!(from_points(&[p]).is_empty());
    }

    #[test]
    fn only_firing_page_alerts_block_a_release() {
        use crate::rules::eval::{Alert, Phase, State};
        let t = DateTime::<Utc>::from_timestamp(1_800_000_000, 0).unwrap();
        let alert = |rule: &str, severity: &str, phase: Phase| Alert {
            rule: rule.into(),
            fingerprint: rule.into(),
            labels: [("severity".to_string(), severity.to_string())]
                .into_iter()
                .collect(),
            phase,
            active_at: t,
            fired_at: Some(t),
            pending_ms: 0,
            last_eval: t,
            last_true_at: t,
            healthy_streak: 0,
            value: Some(1.0),
            annotations: BTreeMap::new(),
            flapping: false,
        };
        let mut state = State::default();
        for a in [
            alert("paging", "page", Phase::Firing),
            alert("pending_page", "page", Phase::Pending),
            alert("ticket", "ticket", Phase::Firing),
        ] {
            state.alerts.insert(a.fingerprint.clone(), a);
        }
        let firing = page_alerts(&state);
        assert_eq!(firing.len(), 1);
        assert_eq!(firing[0].alert, "paging");
    }
}
