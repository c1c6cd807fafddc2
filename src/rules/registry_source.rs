//! The evaluator's view of the daemon's metrics registry.
//!
//! Distributions and gauges come straight from the registry's windowed histograms. Counters
//! keep no history there, so their increases come from samples this module takes at every
//! evaluation ([`CounterHistory`]); the run counter `synmon.check.runs` is the exception: every
//! run is also one value of `synmon.check.latency`, whose windowed counts give exact increases
//! for any window from the first evaluation on (its `attempt` label is not available there).

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::model::{Labels, Matchers};
use super::source::{Data, Dist, SeriesData, Source};
use crate::metrics::catalog::{self, CATALOG, MetricDef, MetricKind};
use crate::metrics::registry::{Registry, WindowData};
use crate::metrics::window::Window;

const RECENT: chrono::TimeDelta = chrono::TimeDelta::hours(1);
const KEEP: chrono::TimeDelta = chrono::TimeDelta::days(31);

/// A counter series: its metric name and label values.
type CounterKey = (&'static str, Vec<(&'static str, String)>);

/// Counter values sampled at each evaluation: per minute for the last hour, hourly beyond.
#[derive(Debug, Default)]
pub struct CounterHistory {
    series: BTreeMap<CounterKey, Samples>,
}

#[derive(Debug, Default)]
struct Samples {
    recent: VecDeque<(DateTime<Utc>, u64)>,
    hourly: VecDeque<(DateTime<Utc>, u64)>,
}

impl Samples {
    fn push(&mut self, at: DateTime<Utc>, v: u64) {
        self.recent.push_back((at, v));
        while let Some(&(t, old)) = self.recent.front() {
            if at - t <= RECENT {
                break;
            }
            self.recent.pop_front();
            let new_hour = self
                .hourly
                .back()
                .is_none_or(|(h, _)| h.timestamp() / 3600 != t.timestamp() / 3600);
            if new_hour {
                self.hourly.push_back((t, old));
            }
        }
        while self.hourly.front().is_some_and(|(t, _)| at - *t > KEEP) {
            self.hourly.pop_front();
        }
    }

    /// Growth over `(end - window, end]`: the latest value at or before `end` minus the latest
    /// at or before the start (or the oldest known, when history is shorter than the window).
    fn increase(&self, window: Duration, end: DateTime<Utc>) -> f64 {
        let start = end - chrono::Duration::from_std(window).unwrap_or_default();
        let all = || self.hourly.iter().chain(self.recent.iter());
        let Some(&(_, last)) = all().rev().find(|(t, _)| *t <= end) else {
            return 0.0;
        };
        let base = all()
            .rev()
            .find(|(t, _)| *t <= start)
            .or_else(|| all().next())
            .map(|(_, v)| *v)
            .unwrap_or(0);
        // A counter only goes down on a restart of the process: count from zero then.
        if last >= base {
            (last - base) as f64
        } else {
            last as f64
        }
    }
}

impl CounterHistory {
    /// Samples every counter of the registry (called once per evaluation).
    pub fn sample(&mut self, registry: &Registry, now: DateTime<Utc>) {
        for def in CATALOG.iter().filter(|d| d.kind == MetricKind::Counter) {
            for (labels, data) in registry.window_series(def.name, Window::M1, now) {
                if let WindowData::Counter(v) = data {
                    self.series
                        .entry((def.name, labels))
                        .or_default()
                        .push(now, v);
                }
            }
        }
    }
}

/// The registry plus counter history, as a rule [`Source`].
pub struct RegistrySource<'a> {
    pub registry: &'a Registry,
    pub counters: &'a CounterHistory,
}

fn to_labels(l: &[(&'static str, String)]) -> Labels {
    l.iter().map(|(k, v)| (k.to_string(), v.clone())).collect()
}

impl Source for RegistrySource<'_> {
    fn series(
        &self,
        metric: &'static MetricDef,
        matchers: &Matchers,
        window: Duration,
        end: DateTime<Utc>,
    ) -> Vec<SeriesData> {
        let w = Window::from_duration(window);
        if metric.name == catalog::CHECK_RUNS.name {
            // Runs per (check, location, outcome) from the latency distribution's counts.
            let mut runs: BTreeMap<Labels, u64> = BTreeMap::new();
            for (labels, data) in self
                .registry
                .window_series(catalog::CHECK_LATENCY.name, w, end)
            {
                if let WindowData::Distribution(h) = data {
                    let l: Labels = labels
                        .iter()
                        .filter(|(k, _)| *k != "target")
                        .map(|(k, v)| (k.to_string(), v.clone()))
                        .collect();
                    *runs.entry(l).or_default() += h.len();
                }
            }
            return runs
                .into_iter()
                .filter(|(l, _)| matchers.matches(l))
                .map(|(labels, n)| SeriesData {
                    labels,
                    data: Data::Counter { increase: n as f64 },
                })
                .collect();
        }
        match metric.kind {
            MetricKind::Counter => self
                .counters
                .series
                .iter()
                .filter(|((name, _), _)| *name == metric.name)
                .map(|((_, l), s)| (to_labels(l), s))
                .filter(|(l, _)| matchers.matches(l))
                .map(|(labels, s)| SeriesData {
                    labels,
                    data: Data::Counter {
                        increase: s.increase(window, end),
                    },
                })
                .collect(),
            _ => self
                .registry
                .window_series(metric.name, w, end)
                .into_iter()
                .map(|(l, d)| (to_labels(&l), d))
                .filter(|(l, _)| matchers.matches(l))
                .filter_map(|(labels, d)| {
                    let data = match d {
                        WindowData::Gauge(v) => Data::Gauge { last: v },
                        WindowData::Distribution(hist) => Data::Distribution(Dist {
                            hist,
                            units_per_ms: 1000.0,
                        }),
                        WindowData::Counter(_) => return None,
                    };
                    Some(SeriesData { labels, data })
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(m: i64) -> DateTime<Utc> {
        "2026-11-26T00:00:00Z".parse::<DateTime<Utc>>().unwrap() + chrono::Duration::minutes(m)
    }

    #[test]
    fn counter_increase_over_windows_with_hourly_downsampling() {
        let mut s = Samples::default();
        // +10 per minute for 3 hours.
        for m in 0..=180 {
            s.push(at(m), 10 * m as u64);
        }
        assert_eq!(s.increase(Duration::from_secs(300), at(180)), 50.0);
        assert_eq!(s.increase(Duration::from_secs(3600), at(180)), 600.0);
        // Older than an hour: hourly samples, so the start rounds to the hour's first sample.
        assert_eq!(s.increase(Duration::from_secs(2 * 3600), at(180)), 1200.0);
        assert!(
            s.recent.len() <= 62 && s.hourly.len() <= 3,
            "{} {}",
            s.recent.len(),
            s.hourly.len()
        );
        // Longer than the history: from the oldest sample.
        assert_eq!(s.increase(Duration::from_secs(86_400), at(180)), 1800.0);
    }

    #[test]
    fn runs_come_from_latency_counts() {
        let reg = Registry::new();
        for (o, n) in [("pass", 8), ("fail", 2)] {
            for _ in 0..n {
                reg.record(
                    catalog::CHECK_LATENCY.name,
                    &[
                        ("check", "a"),
                        ("location", "l"),
                        ("target", "t"),
                        ("outcome", o),
                    ],
                    100.0,
                    at(0),
                )
                .unwrap();
            }
        }
        let hist = CounterHistory::default();
        let src = RegistrySource {
            registry: &reg,
            counters: &hist,
        };
        let out = src.series(
            &catalog::CHECK_RUNS,
            &Matchers::default(),
            Duration::from_secs(300),
            at(1),
        );
        let fail = out.iter().find(|s| s.labels["outcome"] == "fail").unwrap();
        assert!(matches!(fail.data, Data::Counter { increase } if increase == 2.0));
        assert!(!fail.labels.contains_key("target"));
        let later = src.series(
            &catalog::CHECK_RUNS,
            &Matchers::default(),
            Duration::from_secs(300),
            at(30),
        );
        assert!(
            later
                .iter()
                .all(|s| matches!(s.data, Data::Counter { increase } if increase == 0.0))
        );
    }
}
