//! The evaluator's view of the daemon's metrics registry.
//!
//! Distributions and gauges come straight from the registry's windowed histograms. Counters
//! keep no history there, so their increases come from samples this module takes at every
//! evaluation ([`CounterHistory`]); the run counter `synmon.check.runs` is the exception: every
//! run is also one value of `synmon.check.latency`, whose windowed counts give exact increases
//! for any window from the first evaluation on (its `attempt` label is not available there).
//!
//! On the leader of a cluster the source reads two registries: its own (what this replica
//! measured, the one `/metrics` exports) and the remote one the feed fills with the other
//! replicas' runs (`daemon/feed.rs`). Every read covers both: a series with the same labels in
//! both (two replicas running one location) is one more member of its group, so counts add up
//! and distributions merge, exactly as two series of one registry would.

use std::borrow::Cow;
use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::model::{Labels, Matchers};
use super::source::{Data, Dist, SeriesData, Source, latency_counts_of_series};
use crate::metrics::catalog::{self, CATALOG, MetricDef, MetricKind};
use crate::metrics::registry::{Registry, WindowData};
use crate::metrics::window::Window;

const RECENT: chrono::TimeDelta = chrono::TimeDelta::hours(1);
const KEEP: chrono::TimeDelta = chrono::TimeDelta::days(31);

/// A counter series: its metric name and label values.
type CounterKey = (&'static str, Vec<(&'static str, String)>);

/// Counter values sampled at each evaluation: per minute for the last hour, hourly beyond.
#[derive(Debug, Default, Clone)]
pub struct CounterHistory {
    series: BTreeMap<CounterKey, Samples>,
    /// The first sampling: counters have no history before it (they start from this process,
    /// or from this leadership), so no counter window reaches further back.
    started: Option<DateTime<Utc>>,
    /// The latest sampling.
    last: Option<DateTime<Utc>>,
    /// Run counts rebuilt from the store at start ([`CounterHistory::seed_runs`]): the history
    /// before this process, kept apart from the live series (whose registry counters restart
    /// from zero) and summed with them.
    seeded: BTreeMap<CounterKey, Samples>,
}

#[derive(Debug, Default, Clone)]
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

    /// Growth over `(end - window, end]`: the latest value at or before `end` minus the value
    /// sampled nearest the start (or the oldest known, when history is shorter than the
    /// window). Nearest, not "at or before": an hour back, the sample at or before the start is
    /// an hourly one up to an hour older, and a 1-hour window read over 2 hours dilutes a burn
    /// rate by half.
    fn increase(&self, window: Duration, end: DateTime<Utc>) -> f64 {
        let start = end - chrono::Duration::from_std(window).unwrap_or_default();
        let all = || self.hourly.iter().chain(self.recent.iter());
        let Some(&(last_at, last)) = all().rev().find(|(t, _)| *t <= end) else {
            return 0.0;
        };
        let before = all().rev().find(|(t, _)| *t <= start);
        // Never the last sample itself: with samples further apart than the window, it may be
        // the nearest to the start, and the window would read no growth at all.
        let after = all().find(|(t, _)| *t > start && *t < last_at);
        let base = match (before, after) {
            (Some(b), Some(a)) if a.0 - start < start - b.0 => a.1,
            (Some(b), _) => b.1,
            (None, _) => all().next().map_or(0, |(_, v)| *v),
        };
        // A counter only goes down on a restart of the process: count from zero then.
        if last >= base {
            (last - base) as f64
        } else {
            last as f64
        }
    }
}

impl CounterHistory {
    /// Every series, live and seeded.
    fn all_series(&self) -> impl Iterator<Item = (&CounterKey, &Samples)> {
        self.series.iter().chain(self.seeded.iter())
    }

    /// Rebuilds `synmon.check.runs` (per check, location, outcome and attempt) from stored runs
    /// `(started_at, check, location, outcome, attempt)` since `since`, as if it had been
    /// sampled after each: what a restart would otherwise lose for rules that count first
    /// attempts (the latency windows the other run counts come from are replayed separately).
    /// Call before the first sampling.
    pub fn seed_runs<'a>(
        &mut self,
        runs: impl IntoIterator<Item = (DateTime<Utc>, &'a str, &'a str, &'a str, u32)>,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
    ) {
        let mut runs: Vec<_> = runs.into_iter().collect();
        runs.sort_by_key(|r| r.0);
        let mut totals: BTreeMap<CounterKey, u64> = BTreeMap::new();
        for (at, check, location, outcome, attempt) in runs {
            let key: CounterKey = (
                catalog::CHECK_RUNS.name,
                vec![
                    ("check", check.to_string()),
                    ("location", location.to_string()),
                    ("outcome", outcome.to_string()),
                    ("attempt", attempt.to_string()),
                ],
            );
            let n = totals.entry(key.clone()).or_default();
            let samples = self.seeded.entry(key).or_insert_with(|| {
                let mut s = Samples::default();
                s.push(since, 0);
                s
            });
            *n += 1;
            samples.push(at, *n);
        }
        for (key, n) in totals {
            if let Some(s) = self.seeded.get_mut(&key) {
                s.push(until, n);
            }
        }
        self.started = Some(self.started.map_or(since, |s| s.min(since)));
        self.last.get_or_insert(until);
    }

    /// Samples every counter of the registry (called once per evaluation).
    pub fn sample(&mut self, registry: &Registry, now: DateTime<Utc>) {
        self.sample_all(&[registry], now);
    }

    /// Samples every counter of several registries (called once per evaluation), one sample
    /// per series: the sum of its value in each registry. A counter's history is one sequence
    /// of values, so the registries are added before sampling, never sampled apart. A registry
    /// replaced by an empty one (the feed's, when this replica becomes leader) makes the sum
    /// drop, which the history reads as a restart: counted from zero.
    pub fn sample_all(&mut self, registries: &[&Registry], now: DateTime<Utc>) {
        let mut sums: BTreeMap<CounterKey, u64> = BTreeMap::new();
        for def in CATALOG.iter().filter(|d| d.kind == MetricKind::Counter) {
            for registry in registries {
                for (labels, data) in registry.window_series(def.name, Window::M1, now) {
                    if let WindowData::Counter(v) = data {
                        *sums.entry((def.name, labels)).or_default() += v;
                    }
                }
            }
        }
        for (key, v) in sums {
            let samples = self.series.entry(key).or_insert_with(|| {
                // A series the registry creates at its first increment was 0 at the previous
                // sampling: without that sample, a check's first failure would count nothing.
                let mut s = Samples::default();
                if let Some(prev) = self.last {
                    s.push(prev, 0);
                }
                s
            });
            samples.push(now, v);
        }
        self.started.get_or_insert(now);
        self.last = Some(now);
    }
}

/// The registry plus counter history, as a rule [`Source`].
pub struct RegistrySource<'a> {
    pub registry: &'a Registry,
    /// On the leader: the other replicas' runs (see the module doc); `None` elsewhere.
    pub remote: Option<&'a Registry>,
    /// Sampled from both registries ([`CounterHistory::sample_all`]).
    pub counters: &'a CounterHistory,
}

impl<'a> RegistrySource<'a> {
    /// The registries every read covers: the own one, then the remote one if any.
    fn registries(&self) -> impl Iterator<Item = &'a Registry> + use<'a> {
        std::iter::once(self.registry).chain(self.remote)
    }
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
    ) -> Vec<SeriesData<'_>> {
        let w = Window::from_duration(window);
        if derived_runs(metric, matchers) {
            // Runs per (check, location, outcome) from the latency distribution's counts (no
            // histogram is built: only how many values each window holds).
            let mut runs: BTreeMap<Labels, u64> = BTreeMap::new();
            for registry in self.registries() {
                registry.for_each_distribution(catalog::CHECK_LATENCY.name, |labels, h| {
                    *runs.entry(run_labels(labels)).or_default() += h.count(w, end);
                });
            }
            return runs
                .into_iter()
                .filter(|(l, _)| matchers.matches(l))
                .map(|(labels, n)| {
                    SeriesData::new(Cow::Owned(labels), Data::Counter { increase: n as f64 })
                })
                .collect();
        }
        match metric.kind {
            MetricKind::Counter => self
                .counters
                .all_series()
                .filter(|((name, _), _)| *name == metric.name)
                .map(|((_, l), s)| (to_labels(l), s))
                .filter(|(l, _)| matchers.matches(l))
                .map(|(labels, s)| {
                    SeriesData::new(
                        Cow::Owned(labels),
                        Data::Counter {
                            increase: s.increase(window, end),
                        },
                    )
                })
                .collect(),
            _ => self
                .registries()
                .flat_map(|r| r.window_series(metric.name, w, end))
                .map(|(l, d)| (to_labels(&l), d))
                .filter(|(l, _)| matchers.matches(l))
                .filter_map(|(labels, d)| {
                    let data = match d {
                        WindowData::Gauge(v) => Data::Gauge { last: v },
                        WindowData::Distribution(hist) => {
                            Data::Distribution(Dist::from_histogram(hist, 1000.0))
                        }
                        WindowData::Counter(_) => return None,
                    };
                    Some(SeriesData::new(Cow::Owned(labels), data))
                })
                .collect(),
        }
    }

    fn event_counts(
        &self,
        metric: &'static MetricDef,
        matchers: &Matchers,
        window: Duration,
        ends: &[DateTime<Utc>],
    ) -> Vec<f64> {
        let w = Window::from_duration(window);
        let mut sums = vec![0u64; ends.len()];
        let mut add_counts = |name: &str, labels: fn(&[(&'static str, &str)]) -> Labels| {
            for registry in self.registries() {
                registry.for_each_distribution(name, |l, h| {
                    if matchers.matches(&labels(l)) {
                        h.add_counts(w, ends, &mut sums);
                    }
                });
            }
        };
        // Every count is a whole number far below 2^53: summed as integers, then converted,
        // they equal the default's sum of floats exactly.
        match metric.kind {
            _ if derived_runs(metric, matchers) => {
                add_counts(catalog::CHECK_LATENCY.name, run_labels)
            }
            MetricKind::Distribution => add_counts(metric.name, to_labels_borrowed),
            MetricKind::Gauge => {}
            MetricKind::Counter => {
                let counters: Vec<&Samples> = self
                    .counters
                    .all_series()
                    .filter(|((name, l), _)| {
                        *name == metric.name && matchers.matches(&to_labels(l))
                    })
                    .map(|(_, s)| s)
                    .collect();
                return ends
                    .iter()
                    .map(|end| counters.iter().map(|s| s.increase(window, *end)).sum())
                    .collect();
            }
        }
        sums.into_iter().map(|n| n as f64).collect()
    }

    fn latency_counts(
        &self,
        metric: &'static MetricDef,
        matchers: &Matchers,
        window: Duration,
        end: DateTime<Utc>,
        threshold_ms: f64,
    ) -> (u64, u64) {
        if metric.kind != MetricKind::Distribution {
            // Runs and other kinds hold no distribution: nothing to judge (as the default).
            return latency_counts_of_series(self, metric, matchers, window, end, threshold_ms);
        }
        let w = Window::from_duration(window);
        // `Dist::count_le` over the merged µs histogram: buckets whose highest value is at or
        // under the floored limit; none for a negative (or NaN) limit.
        let limit = (threshold_ms * 1000.0).floor();
        let (mut good, mut total) = (0u64, 0u64);
        for registry in self.registries() {
            registry.for_each_distribution(metric.name, |l, h| {
                if matchers.matches(&to_labels_borrowed(l)) {
                    let (g, t) = if limit >= 0.0 {
                        h.count_le(w, end, limit as u64)
                    } else {
                        (0, h.count(w, end))
                    };
                    good += g;
                    total += t;
                }
            });
        }
        (good, total)
    }

    /// Distributions (and the run counter, read from the latency distribution): the earliest
    /// minute any series of either registry recorded, which includes the history replayed from
    /// the store at start. Other counters: the first sampling of the counter history. Gauges
    /// are read at their current value: `None`.
    fn data_since(&self, metric: &'static MetricDef, matchers: &Matchers) -> Option<DateTime<Utc>> {
        let name = match metric.kind {
            _ if derived_runs(metric, matchers) => catalog::CHECK_LATENCY.name,
            MetricKind::Distribution => metric.name,
            MetricKind::Counter => return self.counters.started,
            MetricKind::Gauge => return None,
        };
        let mut first: Option<DateTime<Utc>> = None;
        for registry in self.registries() {
            registry.for_each_distribution(name, |_, h| {
                if let Some(t) = h.first_at() {
                    first = Some(first.map_or(t, |f| f.min(t)));
                }
            });
        }
        first
    }
}

/// Whether `synmon.check.runs` is read from the latency distribution's counts (whose history
/// the store keeps and replays at start) rather than from the counter history. The latency
/// series have no `attempt` label, so matchers that name it (first attempts only: one sample per
/// scheduled slot) read the run counter itself, whose history starts when this process first
/// sampled it.
fn derived_runs(metric: &MetricDef, matchers: &Matchers) -> bool {
    metric.name == catalog::CHECK_RUNS.name && !matchers.0.iter().any(|m| m.label == "attempt")
}

/// A latency series' labels as a `synmon.check.runs` series has them (no `target`).
fn run_labels(l: &[(&'static str, &str)]) -> Labels {
    l.iter()
        .filter(|(k, _)| *k != "target")
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn to_labels_borrowed(l: &[(&'static str, &str)]) -> Labels {
    l.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
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
    fn a_window_shorter_than_the_sampling_gap_still_reads_the_last_growth() {
        let mut s = Samples::default();
        // Sampled every 5 minutes, +10 each time.
        for (i, m) in (0..=30).step_by(5).enumerate() {
            s.push(at(m), 10 * i as u64);
        }
        for w in [60, 120, 180, 300] {
            assert_eq!(s.increase(Duration::from_secs(w), at(30)), 10.0, "{w} s");
        }
        // The nearest sample to the start is the base: 22 minutes back is minute 8, nearer the
        // sample at 10 (20) than the one at 5 (10): 60 - 20.
        assert_eq!(s.increase(Duration::from_secs(22 * 60), at(30)), 40.0);
    }

    #[test]
    fn run_counts_seeded_from_the_store_survive_a_restart_and_add_to_live_ones() {
        // Before the restart (minutes 0-29): a run a minute, the ones at 20-24 failing and
        // retested (failing again).
        let mut stored = Vec::new();
        for m in 0..30 {
            let failing = (20..25).contains(&m);
            stored.push((at(m), "a", "l", if failing { "fail" } else { "pass" }, 1));
            if failing {
                stored.push((at(m) + chrono::Duration::seconds(5), "a", "l", "fail", 2));
            }
        }
        let mut hist = CounterHistory::default();
        hist.seed_runs(stored, at(0), at(30));
        // After it: the registry counts from zero; one more failed first attempt.
        let reg = Registry::new();
        hist.sample(&reg, at(31));
        let labels = [
            ("check", "a"),
            ("location", "l"),
            ("outcome", "fail"),
            ("attempt", "1"),
        ];
        reg.incr(catalog::CHECK_RUNS.name, &labels, 1).unwrap();
        hist.sample(&reg, at(32));
        let src = RegistrySource {
            registry: &reg,
            remote: None,
            counters: &hist,
        };
        let first = |o: &str| {
            Matchers(vec![
                crate::rules::model::Matcher::parse("attempt", "1").unwrap(),
                crate::rules::model::Matcher::parse("outcome", o).unwrap(),
            ])
        };
        let hour = Duration::from_secs(3600);
        let count = |m: &Matchers| src.event_counts(&catalog::CHECK_RUNS, m, hour, &[at(32)])[0];
        assert_eq!(count(&first("fail")), 6.0, "5 stored + 1 live");
        assert_eq!(count(&first("pass")), 25.0);
        // The last 5 minutes hold only the live failure; the last 10 two stored ones too.
        let over = |secs| {
            src.event_counts(
                &catalog::CHECK_RUNS,
                &first("fail"),
                Duration::from_secs(secs),
                &[at(32)],
            )[0]
        };
        assert_eq!(over(300), 1.0);
        assert_eq!(over(600), 3.0);
        // Coverage reaches back to the seeded history, not to the restart.
        assert_eq!(
            src.data_since(&catalog::CHECK_RUNS, &first("fail")),
            Some(at(0))
        );
    }

    #[test]
    fn first_attempts_come_from_the_run_counter() {
        let reg = Registry::new();
        let mut hist = CounterHistory::default();
        hist.sample(&reg, at(0));
        // A slot that failed and whose retest failed too, and a slot that passed.
        for (outcome, attempt) in [("fail", "1"), ("fail", "2"), ("pass", "1")] {
            let labels = [
                ("check", "a"),
                ("location", "l"),
                ("outcome", outcome),
                ("attempt", attempt),
            ];
            reg.incr(catalog::CHECK_RUNS.name, &labels, 1).unwrap();
            reg.record(
                catalog::CHECK_LATENCY.name,
                &[
                    ("check", "a"),
                    ("location", "l"),
                    ("target", "t"),
                    ("outcome", outcome),
                ],
                100.0,
                at(1),
            )
            .unwrap();
        }
        hist.sample(&reg, at(2));
        let src = RegistrySource {
            registry: &reg,
            remote: None,
            counters: &hist,
        };
        let first = Matchers(vec![
            crate::rules::model::Matcher::parse("attempt", "1").unwrap(),
        ]);
        let w = Duration::from_secs(300);
        let fails = |m: &Matchers| -> f64 {
            src.series(&catalog::CHECK_RUNS, m, w, at(2))
                .iter()
                .filter(|s| s.labels["outcome"] == "fail")
                .map(|s| match s.data {
                    Data::Counter { increase } => increase,
                    _ => 0.0,
                })
                .sum()
        };
        // All attempts (the latency counts) weigh the failure twice; first attempts once.
        assert_eq!(fails(&Matchers::default()), 2.0);
        assert_eq!(fails(&first), 1.0);
        assert_eq!(
            src.event_counts(&catalog::CHECK_RUNS, &first, w, &[at(2)]),
            [2.0]
        );
        // Their history is the counter history's.
        assert_eq!(src.data_since(&catalog::CHECK_RUNS, &first), Some(at(0)));
        assert_eq!(
            src.data_since(&catalog::CHECK_RUNS, &Matchers::default()),
            Some(at(1))
        );
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
            remote: None,
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

    #[test]
    fn data_since_is_the_earliest_recorded_minute_or_the_first_counter_sample() {
        let labels = |check| {
            [
                ("check", check),
                ("location", "l"),
                ("target", "t"),
                ("outcome", "pass"),
            ]
        };
        let (own, remote) = (Registry::new(), Registry::new());
        let mut hist = CounterHistory::default();
        fn src<'a>(
            own: &'a Registry,
            remote: &'a Registry,
            counters: &'a CounterHistory,
        ) -> RegistrySource<'a> {
            RegistrySource {
                registry: own,
                remote: Some(remote),
                counters,
            }
        }
        assert_eq!(
            src(&own, &remote, &hist).data_since(&catalog::CHECK_RUNS, &Matchers::default()),
            None
        );
        own.record(catalog::CHECK_LATENCY.name, &labels("a"), 10.0, at(30))
            .unwrap();
        // A run replayed from the store (an earlier minute) and another replica's older run.
        own.record(catalog::CHECK_LATENCY.name, &labels("a"), 10.0, at(20))
            .unwrap();
        remote
            .record(catalog::CHECK_LATENCY.name, &labels("b"), 10.0, at(12))
            .unwrap();
        let s = src(&own, &remote, &hist);
        assert_eq!(
            s.data_since(&catalog::CHECK_LATENCY, &Matchers::default()),
            Some(at(12))
        );
        assert_eq!(
            s.data_since(&catalog::CHECK_RUNS, &Matchers::default()),
            Some(at(12))
        );
        assert_eq!(
            s.data_since(&catalog::FEED_PUSH_QUEUE_DEPTH, &Matchers::default()),
            None
        );
        assert_eq!(
            s.data_since(&catalog::HTTP_ERRORS, &Matchers::default()),
            None
        );
        hist.sample_all(&[&own, &remote], at(40));
        hist.sample_all(&[&own, &remote], at(41));
        assert_eq!(
            src(&own, &remote, &hist).data_since(&catalog::HTTP_ERRORS, &Matchers::default()),
            Some(at(40))
        );
    }

    /// Two replicas of one location: the same labels in the own and the remote registry.
    #[test]
    fn own_and_remote_registries_are_members_of_one_group() {
        let labels = [
            ("check", "a"),
            ("location", "eu"),
            ("target", "t"),
            ("outcome", "pass"),
        ];
        let (own, remote) = (Registry::new(), Registry::new());
        // 100 fast runs here, 100 slow ones on the other replica.
        for _ in 0..100 {
            own.record(catalog::CHECK_LATENCY.name, &labels, 100.0, at(0))
                .unwrap();
            remote
                .record(catalog::CHECK_LATENCY.name, &labels, 1000.0, at(0))
                .unwrap();
        }
        let hist = CounterHistory::default();
        let src = RegistrySource {
            registry: &own,
            remote: Some(&remote),
            counters: &hist,
        };
        let all = Matchers::default();
        let window = Duration::from_secs(300);

        let runs = src.series(&catalog::CHECK_RUNS, &all, window, at(1));
        assert_eq!(runs.len(), 1, "one group: {runs:?}");
        assert!(matches!(runs[0].data, Data::Counter { increase } if increase == 200.0));
        assert_eq!(
            src.event_counts(&catalog::CHECK_RUNS, &all, window, &[at(1)]),
            [200.0]
        );
        assert_eq!(
            src.latency_counts(&catalog::CHECK_LATENCY, &all, window, at(1), 500.0),
            (100, 200)
        );

        // Two members whose merged distribution has the slow half at its p95.
        let members = src.series(&catalog::CHECK_LATENCY, &all, window, at(1));
        assert_eq!(members.len(), 2);
        let mut merged: Option<Dist> = None;
        for m in &members {
            let Data::Distribution(d) = &m.data else {
                panic!("a latency is a distribution: {m:?}")
            };
            match &mut merged {
                None => merged = Some(d.clone()),
                Some(acc) => acc.merge(d),
            }
        }
        let merged = merged.unwrap();
        assert_eq!(merged.count(), 200);
        let p95 = merged.quantile(0.95).unwrap();
        let p25 = merged.quantile(0.25).unwrap();
        assert!((1000.0..1005.0).contains(&p95), "{p95}");
        assert!((100.0..101.0).contains(&p25), "{p25}");

        // Without the remote registry only this replica's runs count.
        let alone = RegistrySource {
            remote: None,
            ..src
        };
        assert_eq!(
            alone.event_counts(&catalog::CHECK_RUNS, &all, window, &[at(1)]),
            [100.0]
        );
    }

    #[test]
    fn sample_all_sums_a_counter_across_registries() {
        let labels = [("check", "a"), ("location", "eu")];
        let (own, remote) = (Registry::new(), Registry::new());
        let mut hist = CounterHistory::default();
        own.incr(catalog::CHECK_OVERRUNS.name, &labels, 2).unwrap();
        remote
            .incr(catalog::CHECK_OVERRUNS.name, &labels, 3)
            .unwrap();
        hist.sample_all(&[&own, &remote], at(0));
        own.incr(catalog::CHECK_OVERRUNS.name, &labels, 1).unwrap();
        remote
            .incr(catalog::CHECK_OVERRUNS.name, &labels, 4)
            .unwrap();
        hist.sample_all(&[&own, &remote], at(1));
        let key = (
            catalog::CHECK_OVERRUNS.name,
            labels.iter().map(|(k, v)| (*k, v.to_string())).collect(),
        );
        let samples = &hist.series[&key];
        let values: Vec<u64> = samples.recent.iter().map(|(_, v)| *v).collect();
        assert_eq!(values, [5, 10], "one sample per evaluation, of the sum");
        let src = RegistrySource {
            registry: &own,
            remote: Some(&remote),
            counters: &hist,
        };
        let out = src.series(
            &catalog::CHECK_OVERRUNS,
            &Matchers::default(),
            Duration::from_secs(60),
            at(1),
        );
        assert_eq!(out.len(), 1);
        assert!(matches!(out[0].data, Data::Counter { increase } if increase == 5.0));

        // `sample` is the one-registry case.
        let mut one = CounterHistory::default();
        one.sample(&own, at(0));
        assert_eq!(one.series[&key].recent.back().map(|(_, v)| *v), Some(3));
    }

    /// The count-only paths (`series` for runs, `event_counts`, `latency_counts`) give exactly
    /// what merged histograms give, on random data across every tier (minutes, hours, days),
    /// with late values, busy minutes (a live histogram) and several series per group.
    #[test]
    fn count_paths_equal_merged_histograms_on_random_data() {
        use crate::rules::source::{event_counts_of_series, latency_counts_of_series};
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let reg = Registry::new();
        let mut counters = CounterHistory::default();
        let checks = ["align_category", "save_profile", "auth_health"];
        let minutes = 31 * 24 * 60;
        let mut counter_value = 0u64;
        for m in 0..minutes {
            // Every 7th minute is quiet; every 1000th and the last are busy for one series
            // (over the raw buffer's capacity: a live histogram).
            let busy = m % 1000 == 3 || m == minutes - 1;
            let n = match m {
                _ if busy => 300,
                _ if m % 7 == 0 => 0,
                _ => rng.random_range(1..4),
            };
            for _ in 0..n {
                let (check, outcome, target) = if busy {
                    ("save_profile", "pass", "staging")
                } else {
                    (
                        checks[rng.random_range(0..checks.len())],
                        ["pass", "pass", "pass", "fail", "error"][rng.random_range(0..5)],
                        ["staging", "production"][rng.random_range(0..2)],
                    )
                };
                let ms = if rng.random_bool(0.05) {
                    rng.random_range(0.0..5_000.0)
                } else {
                    rng.random_range(50.0..450.0)
                };
                // Now and then a run finishing out of order lands in an earlier minute.
                let late = if rng.random_bool(0.02) { 3 } else { 0 };
                let at = at(m - late) + chrono::Duration::seconds(rng.random_range(0..60));
                let labels = [
                    ("check", check),
                    ("location", "eu"),
                    ("target", target),
                    ("outcome", outcome),
                ];
                reg.record(catalog::CHECK_LATENCY.name, &labels, ms, at)
                    .unwrap();
            }
            if m >= minutes - 3 * 60 {
                counter_value += rng.random_range(0..3);
                let labels = [
                    ("check", "auth_health"),
                    ("service", "auth"),
                    ("status", "5xx"),
                ];
                let have = reg.counter(catalog::HTTP_ERRORS.name, &labels);
                reg.incr(catalog::HTTP_ERRORS.name, &labels, counter_value - have)
                    .unwrap();
                counters.sample(&reg, at(m));
            }
        }
        let src = RegistrySource {
            registry: &reg,
            remote: None,
            counters: &counters,
        };
        let m = |pairs: &[(&str, &str)]| {
            Matchers(
                pairs
                    .iter()
                    .map(|(l, v)| crate::rules::Matcher::parse(l, v).unwrap())
                    .collect(),
            )
        };
        let matcher_sets = [
            Matchers::default(),
            m(&[
                ("check", "=~align_category|save_profile"),
                ("outcome", "pass"),
            ]),
            m(&[("outcome", "=~pass|fail")]),
            m(&[("target", "staging")]),
        ];
        let windows = [
            60,
            300,
            1800,
            3600,
            6 * 3600,
            86_400,
            3 * 86_400,
            30 * 86_400,
        ];
        let last = at(minutes - 1);
        let ends = [
            last + chrono::Duration::seconds(59),
            last,
            last - chrono::Duration::minutes(61),
        ];
        for &secs in &windows {
            let window = Duration::from_secs(secs);
            let w = Window::from_duration(window);
            for &end in &ends {
                // Runs per group, as merged histograms counted them before.
                let mut merged: BTreeMap<Labels, u64> = BTreeMap::new();
                for (labels, data) in reg.window_series(catalog::CHECK_LATENCY.name, w, end) {
                    if let WindowData::Distribution(h) = data {
                        let l: Labels = labels
                            .iter()
                            .filter(|(k, _)| *k != "target")
                            .map(|(k, v)| (k.to_string(), v.clone()))
                            .collect();
                        *merged.entry(l).or_default() += h.len();
                    }
                }
                let runs: BTreeMap<Labels, u64> = src
                    .series(&catalog::CHECK_RUNS, &Matchers::default(), window, end)
                    .into_iter()
                    .map(|s| match s.data {
                        Data::Counter { increase } => (s.labels.into_owned(), increase as u64),
                        other => panic!("runs are counters: {other:?}"),
                    })
                    .collect();
                assert_eq!(runs, merged, "runs over {secs} s to {end}");
                for ms in &matcher_sets {
                    for metric in [
                        &catalog::CHECK_RUNS,
                        &catalog::CHECK_LATENCY,
                        &catalog::HTTP_ERRORS,
                    ] {
                        assert_eq!(
                            src.event_counts(metric, ms, window, &[end]),
                            event_counts_of_series(&src, metric, ms, window, &[end]),
                            "{} {ms} over {secs} s to {end}",
                            metric.name
                        );
                    }
                    for threshold in [-1.0, 0.0, 100.0, 249.9, 400.0, 1_000.5, 1e12] {
                        assert_eq!(
                            src.latency_counts(&catalog::CHECK_LATENCY, ms, window, end, threshold),
                            latency_counts_of_series(
                                &src,
                                &catalog::CHECK_LATENCY,
                                ms,
                                window,
                                end,
                                threshold
                            ),
                            "latency <= {threshold} ms, {ms} over {secs} s to {end}"
                        );
                    }
                }
            }
        }
        // Time slices: many 1-minute windows at once, as the uptime SLO asks for them (10 hours
        // of them: across the minute slices' hour into the hourly roll-ups).
        let slices: Vec<DateTime<Utc>> = (0..600)
            .map(|k| ends[0] - chrono::Duration::minutes(k))
            .collect();
        let minute = Duration::from_secs(60);
        for ms in &matcher_sets[1..3] {
            let fast = src.event_counts(&catalog::CHECK_RUNS, ms, minute, &slices);
            assert!(fast.iter().any(|n| *n > 0.0));
            assert_eq!(
                fast,
                event_counts_of_series(&src, &catalog::CHECK_RUNS, ms, minute, &slices)
            );
        }
    }
}
