//! What the evaluator reads: series of one metric over a window ending at a given time.
//!
//! The evaluator never touches the registry directly; it asks a [`Source`]. The daemon implements
//! it over the metrics registry (and the store for long windows); tests and `synmon alerts test`
//! use [`MemorySource`], a table of timestamped samples.

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use hdrhistogram::Histogram;

use super::model::{Labels, MatchOp, Matchers};
use crate::metrics::catalog::{MetricDef, MetricKind};

/// The data of one series over `(end - window, end]`, in the shape its kind aggregates in.
#[derive(Debug, Clone)]
pub enum Data {
    /// How much the counter grew in the window (resets already accounted for).
    Counter { increase: f64 },
    /// The gauge's value at `end`; `None` when stale or never set (no data, never 0).
    Gauge { last: Option<f64> },
    /// Every sample recorded in the window.
    Distribution(Dist),
}

/// A distribution's samples in the window, as an HDR histogram.
#[derive(Debug, Clone)]
pub struct Dist {
    pub hist: Histogram<u64>,
    /// Histogram units per millisecond: 1000 for the registry's microsecond histograms.
    pub units_per_ms: f64,
}

impl Dist {
    pub fn count(&self) -> u64 {
        self.hist.len()
    }
    /// Quantile in ms; `None` when empty.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        (self.count() > 0).then(|| self.hist.value_at_quantile(q) as f64 / self.units_per_ms)
    }
    pub fn mean(&self) -> Option<f64> {
        (self.count() > 0).then(|| self.hist.mean() / self.units_per_ms)
    }
    pub fn min(&self) -> Option<f64> {
        (self.count() > 0).then(|| self.hist.min() as f64 / self.units_per_ms)
    }
    pub fn max(&self) -> Option<f64> {
        (self.count() > 0).then(|| self.hist.max() as f64 / self.units_per_ms)
    }
    /// Samples at or under `ms`.
    pub fn count_le(&self, ms: f64) -> u64 {
        if self.count() == 0 {
            return 0;
        }
        let limit = (ms * self.units_per_ms).floor();
        if limit < 0.0 {
            return 0;
        }
        self.hist
            .iter_recorded()
            .filter(|v| (v.value_iterated_to() as f64) <= limit)
            .map(|v| v.count_at_value())
            .sum()
    }
    /// Adds another distribution's samples (same units).
    pub fn merge(&mut self, other: &Dist) {
        // Both come from the same source, with the same bounds; a failure would be a bug there.
        let _ = self.hist.add(&other.hist);
    }
}

#[derive(Debug, Clone)]
pub struct SeriesData {
    pub labels: Labels,
    pub data: Data,
}

/// Read access to the metrics, for the pure evaluator.
pub trait Source {
    /// Every series of `metric` whose labels satisfy `matchers`, over the window
    /// `(end - window, end]`. Windows are arbitrary durations (5m, 30m, 1h, 6h, 3d, 30d).
    fn series(
        &self,
        metric: &'static MetricDef,
        matchers: &Matchers,
        window: Duration,
        end: DateTime<Utc>,
    ) -> Vec<SeriesData>;

    /// Events in the window ending at each of `ends`: the sum over the series [`series`]
    /// returns of counter increases and distribution counts (gauges count nothing). SLIs ask
    /// for thousands of ends at once (1-minute time slices over 30 days); a source may answer
    /// from counts alone, but must give exactly the numbers this default gives.
    ///
    /// [`series`]: Source::series
    fn event_counts(
        &self,
        metric: &'static MetricDef,
        matchers: &Matchers,
        window: Duration,
        ends: &[DateTime<Utc>],
    ) -> Vec<f64> {
        event_counts_of_series(self, metric, matchers, window, ends)
    }

    /// Samples of a distribution in the window at or under `threshold_ms` (as
    /// [`Dist::count_le`] counts them), and all its samples, summed over the series [`series`]
    /// returns: what a latency SLI judges. The same contract as [`event_counts`].
    ///
    /// [`series`]: Source::series
    /// [`event_counts`]: Source::event_counts
    fn latency_counts(
        &self,
        metric: &'static MetricDef,
        matchers: &Matchers,
        window: Duration,
        end: DateTime<Utc>,
        threshold_ms: f64,
    ) -> (u64, u64) {
        latency_counts_of_series(self, metric, matchers, window, end, threshold_ms)
    }

    /// Since when the source has data of `metric`'s series selected by `matchers`: a window
    /// reaching further back holds less than its length, and a rule with `min_coverage` judges
    /// it on that. `None`: as far back as any window reaches (the default, for sources that
    /// keep full history).
    fn data_since(&self, metric: &'static MetricDef, matchers: &Matchers) -> Option<DateTime<Utc>> {
        let _ = (metric, matchers);
        None
    }
}

/// [`Source::event_counts`] from [`Source::series`]: the reference every faster answer equals.
pub fn event_counts_of_series<S: Source + ?Sized>(
    source: &S,
    metric: &'static MetricDef,
    matchers: &Matchers,
    window: Duration,
    ends: &[DateTime<Utc>],
) -> Vec<f64> {
    ends.iter()
        .map(|end| {
            source
                .series(metric, matchers, window, *end)
                .iter()
                .map(|s| match &s.data {
                    Data::Counter { increase } => *increase,
                    Data::Distribution(d) => d.count() as f64,
                    Data::Gauge { .. } => 0.0,
                })
                .sum()
        })
        .collect()
}

/// [`Source::latency_counts`] from [`Source::series`]: the reference every faster answer equals.
pub fn latency_counts_of_series<S: Source + ?Sized>(
    source: &S,
    metric: &'static MetricDef,
    matchers: &Matchers,
    window: Duration,
    end: DateTime<Utc>,
    threshold_ms: f64,
) -> (u64, u64) {
    let (mut good, mut total) = (0u64, 0u64);
    for s in source.series(metric, matchers, window, end) {
        if let Data::Distribution(d) = &s.data {
            good += d.count_le(threshold_ms);
            total += d.count();
        }
    }
    (good, total)
}

/// One sample: when, and its value (`None`: a stale gauge).
type Point = (DateTime<Utc>, Option<f64>);

/// A table of timestamped samples: counters as cumulative values, gauges as set values (`None`
/// marks stale), distributions as individual samples in ms (kept in an exact 1-unit-per-ms
/// histogram up to 2,048 ms, 3 significant digits above).
///
/// Series are indexed by metric and by `label="value"`, so a rule's lookup reads only the
/// series its most selective equality matcher allows, not the whole table.
#[derive(Debug, Default, Clone)]
pub struct MemorySource {
    series: Vec<Stored>,
    ids: HashMap<(String, Labels), usize>,
    /// Series of each metric.
    by_metric: HashMap<String, Vec<usize>>,
    /// Series of each metric with a given label value: (metric, label, value).
    postings: HashMap<(String, String, String), Vec<usize>>,
}

#[derive(Debug, Clone)]
struct Stored {
    labels: Labels,
    points: Vec<Point>,
}

impl MemorySource {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds one sample; `metric` must be the catalog's DogStatsD name.
    pub fn push(&mut self, metric: &MetricDef, labels: &[(&str, &str)], at: DateTime<Utc>, v: f64) {
        self.push_opt(metric, labels, at, Some(v));
    }

    /// `None` marks a gauge stale from `at` on.
    pub fn push_opt(
        &mut self,
        metric: &MetricDef,
        labels: &[(&str, &str)],
        at: DateTime<Utc>,
        v: Option<f64>,
    ) {
        let labels: Labels = labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let key = (metric.name.to_string(), labels);
        let id = match self.ids.get(&key) {
            Some(id) => *id,
            None => {
                let id = self.series.len();
                for (k, v) in &key.1 {
                    self.postings
                        .entry((key.0.clone(), k.clone(), v.clone()))
                        .or_default()
                        .push(id);
                }
                self.by_metric.entry(key.0.clone()).or_default().push(id);
                self.series.push(Stored {
                    labels: key.1.clone(),
                    points: Vec::new(),
                });
                self.ids.insert(key, id);
                id
            }
        };
        let points = &mut self.series[id].points;
        let in_order = points.last().is_none_or(|(t, _)| *t <= at);
        points.push((at, v));
        if !in_order {
            points.sort_by_key(|(t, _)| *t);
        }
    }

    /// The series of `metric` that may match: the shortest posting list of an equality
    /// matcher on a non-empty value, else every series of the metric.
    fn candidates(&self, metric: &str, matchers: &Matchers) -> &[usize] {
        let mut best: Option<&[usize]> = None;
        for m in &matchers.0 {
            if m.op != MatchOp::Eq || m.value.is_empty() {
                continue;
            }
            let list = self
                .postings
                .get(&(metric.to_string(), m.label.clone(), m.value.clone()))
                .map_or(&[][..], Vec::as_slice);
            if best.is_none_or(|b| list.len() < b.len()) {
                best = Some(list);
            }
        }
        best.unwrap_or_else(|| self.by_metric.get(metric).map_or(&[][..], Vec::as_slice))
    }
}

/// The full-range histogram's bound, in ms: larger samples saturate there.
const MAX_MS: f64 = 3_600_000_000.0;

pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("static histogram bounds")
}

impl Source for MemorySource {
    fn series(
        &self,
        metric: &'static MetricDef,
        matchers: &Matchers,
        window: Duration,
        end: DateTime<Utc>,
    ) -> Vec<SeriesData> {
        let start = end - chrono::Duration::from_std(window).unwrap_or(chrono::Duration::MAX);
        let mut ids: Vec<usize> = self
            .candidates(metric.name, matchers)
            .iter()
            .copied()
            .filter(|id| matchers.matches(&self.series[*id].labels))
            .collect();
        // In label order, as a sorted table would list them.
        ids.sort_by(|a, b| self.series[*a].labels.cmp(&self.series[*b].labels));
        let mut out = Vec::new();
        for id in ids {
            let Stored { labels, points } = &self.series[id];
            let data = match metric.kind {
                MetricKind::Counter => {
                    // No point at or before the start: the counter was 0 then.
                    let mut prev = points
                        .iter()
                        .take_while(|(t, _)| *t <= start)
                        .filter_map(|(_, v)| *v)
                        .last();
                    let first_in_window = prev.is_none();
                    let mut increase = 0.0;
                    let mut seen = false;
                    for (_, v) in points.iter().filter(|(t, _)| *t > start && *t <= end) {
                        let Some(v) = *v else { continue };
                        seen = true;
                        increase += match prev {
                            Some(p) if v >= p => v - p,
                            // A reset: the counter restarted from 0.
                            _ => v,
                        };
                        prev = Some(v);
                    }
                    if !seen && first_in_window {
                        continue;
                    }
                    Data::Counter { increase }
                }
                MetricKind::Gauge => Data::Gauge {
                    last: points
                        .iter()
                        .take_while(|(t, _)| *t <= end)
                        .last()
                        .and_then(|(_, v)| *v),
                },
                MetricKind::Distribution => {
                    // Sized to its samples (it grows as they are recorded and merged): a
                    // full-range histogram is ~180 KiB to allocate and zero per series.
                    let mut hist = Histogram::new_with_bounds(1, 2, 3).expect("static bounds");
                    hist.auto(true);
                    for (_, v) in points.iter().filter(|(t, _)| *t > start && *t <= end) {
                        if let Some(v) = v {
                            hist.saturating_record(v.max(1.0).round().min(MAX_MS) as u64);
                        }
                    }
                    Data::Distribution(Dist {
                        hist,
                        units_per_ms: 1.0,
                    })
                }
            };
            out.push(SeriesData {
                labels: labels.clone(),
                data,
            });
        }
        out
    }

    /// The metric's earliest sample, over all its series.
    fn data_since(
        &self,
        metric: &'static MetricDef,
        _matchers: &Matchers,
    ) -> Option<DateTime<Utc>> {
        self.by_metric
            .get(metric.name)?
            .iter()
            .filter_map(|id| self.series[*id].points.first().map(|(t, _)| *t))
            .min()
    }
}
