//! The one mapping from a finished run to metric points: which catalog metrics a run feeds,
//! with which labels and values. The registry, the DogStatsD exporter, the replay of stored runs
//! at start and the overrun accounting all record what this module yields; none of them spells
//! out labels of their own.
//!
//! What it owns: the check latency a run reports (timed steps, or the total when no step is
//! timed), the per-step latencies, the runs counter by outcome and attempt, the probe-health
//! gauge, the `maintenance` outcome of a run inside a maintenance window, and the latency of
//! the slots an overrunning run made the check skip. What it never does: judge whether a run
//! fell in a maintenance window (`mute/` does; the mark is an input here), read a clock, or
//! record anything itself (the callers do, each in its own form).

use super::catalog::{self, MetricDef};
use crate::outcome::Outcome;
use crate::run::{RunResult, StepResult};

/// The outcome label a run inside a maintenance window is recorded with: dashboards still see
/// it happened, SLIs (which count `pass` and `fail`) do not count it.
pub const MAINTENANCE_OUTCOME: &str = "maintenance";

/// What a metric point adds to its series.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum PointValue {
    /// One latency sample (ms) into a distribution.
    Latency(f64),
    /// An increment of a counter.
    Count(u64),
    /// A gauge's new value, in the catalog's unit.
    Gauge(f64),
}

/// One metric point: a catalog metric, its labels in catalog order, and a value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point<'a> {
    pub def: &'static MetricDef,
    pub labels: &'a [(&'static str, &'a str)],
    pub value: PointValue,
}

/// What the mapping reads from a run: a view the live recorder builds from a [`RunResult`]
/// ([`RunMetrics::of`]) and the replay from a stored run summary (which has no steps).
#[derive(Debug, Clone, Copy)]
pub struct RunMetrics<'a> {
    pub check: &'a str,
    pub location: &'a str,
    pub target: &'a str,
    pub outcome: Outcome,
    pub attempt: u32,
    /// The check latency the run reports, ms (see [`RunResult::slo_latency_ms`]).
    pub latency_ms: f64,
    pub steps: &'a [StepResult],
    /// Cut short by shutdown: neither a latency nor an outcome, so it maps to no point.
    pub cancelled: bool,
    /// Inside a maintenance window (as the recorder judged it): every outcome label is
    /// [`MAINTENANCE_OUTCOME`] and the probe-health gauge is left alone.
    pub maintenance: bool,
}

impl<'a> RunMetrics<'a> {
    /// A run as the runner produced it, outside any maintenance window.
    pub fn of(run: &'a RunResult) -> Self {
        RunMetrics {
            check: &run.check,
            location: &run.location,
            target: &run.target,
            outcome: run.outcome,
            attempt: run.attempt,
            latency_ms: run.slo_latency_ms(),
            steps: &run.steps,
            cancelled: run.cancelled,
            maintenance: false,
        }
    }

    /// The same run, inside the maintenance window `window` names (`None`: outside any).
    pub fn marked(self, window: Option<&str>) -> Self {
        RunMetrics {
            maintenance: window.is_some(),
            ..self
        }
    }

    pub(crate) fn outcome_label(&self, outcome: Outcome) -> &'static str {
        if self.maintenance {
            MAINTENANCE_OUTCOME
        } else {
            outcome.as_str()
        }
    }

    /// Visits every point of the run, in this order: the check latency, each step's latency,
    /// the runs counter, and (outside maintenance) the probe-health gauge (1 when the run ended
    /// in `error`). Stops at the first error `f` returns. A cancelled run has no points.
    pub fn try_for_each_point<E>(
        &self,
        mut f: impl FnMut(Point<'_>) -> Result<(), E>,
    ) -> Result<(), E> {
        if self.cancelled {
            return Ok(());
        }
        let outcome = self.outcome_label(self.outcome);
        f(Point {
            def: &catalog::CHECK_LATENCY,
            labels: &[
                ("check", self.check),
                ("location", self.location),
                ("target", self.target),
                ("outcome", outcome),
            ],
            value: PointValue::Latency(self.latency_ms),
        })?;
        for step in self.steps {
            f(Point {
                def: &catalog::STEP_LATENCY,
                labels: &[
                    ("check", self.check),
                    ("step", &step.name),
                    ("location", self.location),
                    ("target", self.target),
                    ("outcome", self.outcome_label(step.outcome)),
                ],
                value: PointValue::Latency(step.latency_ms),
            })?;
        }
        let attempt = self.attempt.to_string();
        f(Point {
            def: &catalog::CHECK_RUNS,
            labels: &[
                ("check", self.check),
                ("location", self.location),
                ("outcome", outcome),
                ("attempt", &attempt),
            ],
            value: PointValue::Count(1),
        })?;
        if !self.maintenance {
            f(Point {
                def: &catalog::PROBE_UNHEALTHY,
                labels: &[("check", self.check), ("location", self.location)],
                value: PointValue::Gauge(if self.outcome == Outcome::Error {
                    1.0
                } else {
                    0.0
                }),
            })?;
        }
        Ok(())
    }

    /// The points of a run that overran its interval and made the check skip `missed` slots:
    /// the overruns counter, then for each skipped slot k the latency it would have seen
    /// waiting behind this run (latency - k x interval, while positive), so slow periods weigh
    /// as much as they lasted.
    pub fn try_for_each_overrun_point<E>(
        &self,
        missed: u64,
        interval_ms: f64,
        mut f: impl FnMut(Point<'_>) -> Result<(), E>,
    ) -> Result<(), E> {
        f(Point {
            def: &catalog::CHECK_OVERRUNS,
            labels: &[("check", self.check), ("location", self.location)],
            value: PointValue::Count(missed),
        })?;
        let outcome = self.outcome_label(self.outcome);
        let labels = [
            ("check", self.check),
            ("location", self.location),
            ("target", self.target),
            ("outcome", outcome),
        ];
        for k in 1..=missed {
            let v = self.latency_ms - k as f64 * interval_ms;
            if v <= 0.0 {
                break;
            }
            f(Point {
                def: &catalog::CHECK_LATENCY,
                labels: &labels,
                value: PointValue::Latency(v),
            })?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::registry::tests::{run, step};

    /// A point as (name, labels, value), for comparing.
    type Owned = (&'static str, Vec<(String, String)>, PointValue);

    fn points(m: &RunMetrics<'_>) -> Vec<Owned> {
        let mut out = Vec::new();
        m.try_for_each_point(|p| {
            out.push((
                p.def.name,
                p.labels
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
                p.value,
            ));
            Ok::<_, ()>(())
        })
        .unwrap();
        out
    }

    fn labels(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn a_run_maps_to_latencies_a_count_and_the_probe_gauge() {
        let mut r = run(
            "align",
            Outcome::Error,
            vec![
                step("login", 900.0, false, Outcome::Pass),
                step("save", 120.0, true, Outcome::Error),
            ],
        );
        r.attempt = 2;
        let got = points(&RunMetrics::of(&r));
        assert_eq!(
            got,
            vec![
                (
                    "synmon.check.latency",
                    labels(&[
                        ("check", "align"),
                        ("location", "eu"),
                        ("target", "staging"),
                        ("outcome", "error")
                    ]),
                    PointValue::Latency(120.0)
                ),
                (
                    "synmon.step.latency",
                    labels(&[
                        ("check", "align"),
                        ("step", "login"),
                        ("location", "eu"),
                        ("target", "staging"),
                        ("outcome", "pass")
                    ]),
                    PointValue::Latency(900.0)
                ),
                (
                    "synmon.step.latency",
                    labels(&[
                        ("check", "align"),
                        ("step", "save"),
                        ("location", "eu"),
                        ("target", "staging"),
                        ("outcome", "error")
                    ]),
                    PointValue::Latency(120.0)
                ),
                (
                    "synmon.check.runs",
                    labels(&[
                        ("check", "align"),
                        ("location", "eu"),
                        ("outcome", "error"),
                        ("attempt", "2")
                    ]),
                    PointValue::Count(1)
                ),
                (
                    "synmon.probe.unhealthy",
                    labels(&[("check", "align"), ("location", "eu")]),
                    PointValue::Gauge(1.0)
                ),
            ]
        );
    }

    #[test]
    fn maintenance_relabels_every_outcome_and_leaves_the_probe_gauge() {
        let r = run(
            "align",
            Outcome::Fail,
            vec![step("save", 120.0, true, Outcome::Fail)],
        );
        let got = points(&RunMetrics::of(&r).marked(Some("db")));
        assert_eq!(got.len(), 3, "{got:?}");
        for (_, l, _) in &got {
            let outcome = l.iter().find(|(k, _)| k == "outcome").unwrap();
            assert_eq!(outcome.1, MAINTENANCE_OUTCOME);
        }
        let unmarked = points(&RunMetrics::of(&r).marked(None));
        assert_eq!(unmarked, points(&RunMetrics::of(&r)));
    }

    #[test]
    fn cancelled_runs_map_to_nothing() {
        let mut r = run("a", Outcome::Pass, vec![]);
        r.cancelled = true;
        assert!(points(&RunMetrics::of(&r)).is_empty());
    }

    #[test]
    fn overruns_count_slots_and_weigh_the_skipped_latencies() {
        let mut r = run("a", Outcome::Pass, vec![]);
        r.total_ms = 2500.0;
        let mut got = Vec::new();
        RunMetrics::of(&r)
            .try_for_each_overrun_point(5, 1000.0, |p| {
                got.push((p.def.name, p.value));
                Ok::<_, ()>(())
            })
            .unwrap();
        assert_eq!(
            got,
            vec![
                ("synmon.check.overruns", PointValue::Count(5)),
                ("synmon.check.latency", PointValue::Latency(1500.0)),
                ("synmon.check.latency", PointValue::Latency(500.0)),
            ]
        );
    }
}
