//! What the evaluator reads: series of one metric over a window ending at a given time.
//!
//! The evaluator never touches the registry directly; it asks a [`Source`]. The daemon implements
//! it over the metrics registry (and the store for long windows); tests and `synmon alerts test`
//! use [`MemorySource`], a table of timestamped samples.

use std::borrow::Cow;
use std::sync::OnceLock;
use std::time::Duration;

use chrono::{DateTime, Utc};
use hdrhistogram::Histogram;

use super::fasthash::FastMap;
use super::model::{Labels, MatchOp, Matcher, Matchers};
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

/// A distribution's samples in the window: an HDR histogram (the registry's), or the raw
/// samples of a small window (the memory source's), read with the resolution a histogram of
/// [`new_histogram`]'s precision would give them.
///
/// Why two shapes: a 3-significant-digit histogram is 16 KiB of counts however few samples it
/// holds, and a rule over a few samples per series (the memory source's typical window) spent
/// most of its time allocating and zeroing them. Every read below gives exactly what the
/// histogram holding the same samples gives (`dist_samples_read_like_the_histogram` checks
/// it on random samples).
#[derive(Debug, Clone)]
pub struct Dist {
    repr: Repr,
    /// Histogram units per millisecond: 1000 for the registry's microsecond histograms, 1 for
    /// the memory source's millisecond samples.
    pub units_per_ms: f64,
}

#[derive(Debug, Clone)]
enum Repr {
    /// Boxed: a histogram's fields are ~100 bytes, and every [`SeriesData`] of every answer is
    /// as large as its largest variant (most are counters, gauges or raw samples).
    Hist(Box<Histogram<u64>>),
    /// Sorted sample values, in units.
    Samples(Vec<u64>),
}

/// The resolution samples are read with: [`new_histogram`]'s (lowest 1, 3 significant
/// digits). Equivalent ranges depend on those two only, not on the highest trackable value.
fn resolution() -> &'static Histogram<u64> {
    static RESOLUTION: std::sync::LazyLock<Histogram<u64>> =
        std::sync::LazyLock::new(|| Histogram::new_with_bounds(1, 2, 3).expect("static bounds"));
    &RESOLUTION
}

/// Records `v`, growing an auto-resizing histogram to it (`saturating_record` alone would clamp
/// it to the highest value trackable so far) and saturating a fixed one.
fn record(h: &mut Histogram<u64>, v: u64) {
    if h.record(v).is_err() {
        h.saturating_record(v);
    }
}

impl Dist {
    /// A histogram's samples.
    pub fn from_histogram(hist: Histogram<u64>, units_per_ms: f64) -> Dist {
        Dist {
            repr: Repr::Hist(Box::new(hist)),
            units_per_ms,
        }
    }

    /// Raw samples in units, read as a [`new_histogram`] holding them would read.
    pub fn from_samples(mut samples: Vec<u64>, units_per_ms: f64) -> Dist {
        samples.sort_unstable();
        Dist {
            repr: Repr::Samples(samples),
            units_per_ms,
        }
    }

    /// The samples as a histogram (of [`new_histogram`]'s resolution for raw samples).
    pub fn to_histogram(&self) -> Histogram<u64> {
        match &self.repr {
            Repr::Hist(h) => (**h).clone(),
            Repr::Samples(s) => {
                let mut h = Histogram::new_with_bounds(1, 2, 3).expect("static bounds");
                h.auto(true);
                for v in s {
                    record(&mut h, *v);
                }
                h
            }
        }
    }

    pub fn count(&self) -> u64 {
        match &self.repr {
            Repr::Hist(h) => h.len(),
            Repr::Samples(s) => s.len() as u64,
        }
    }

    /// The value at quantile `q`, in units, as `Histogram::value_at_quantile` finds it: the
    /// `ceil(q * count)`-th sample (at least the first), at the top of its equivalent range
    /// (the bottom for `q == 0`).
    fn value_at_quantile(&self, q: f64) -> u64 {
        match &self.repr {
            Repr::Hist(h) => h.value_at_quantile(q),
            Repr::Samples(s) => {
                let q = if q > 1.0 { 1.0 } else { q };
                let rank = ((q * s.len() as f64).ceil() as u64).max(1);
                let Some(v) = s.get(rank as usize - 1) else {
                    return 0;
                };
                if q == 0.0 {
                    resolution().lowest_equivalent(*v)
                } else {
                    resolution().highest_equivalent(*v)
                }
            }
        }
    }

    /// Quantile in ms; `None` when empty.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        (self.count() > 0).then(|| self.value_at_quantile(q) as f64 / self.units_per_ms)
    }

    pub fn mean(&self) -> Option<f64> {
        let mean = match &self.repr {
            Repr::Hist(h) => h.mean(),
            // As `Histogram::mean` sums it: bucket by bucket, each bucket's median times its
            // share, in ascending order.
            Repr::Samples(s) => {
                let r = resolution();
                let n = s.len() as f64;
                let mut total = 0.0_f64;
                for bucket in s.chunk_by(|a, b| r.lowest_equivalent(*a) == r.lowest_equivalent(*b))
                {
                    total += r.median_equivalent(bucket[0]) as f64 * bucket.len() as f64 / n;
                }
                total
            }
        };
        (self.count() > 0).then(|| mean / self.units_per_ms)
    }

    pub fn min(&self) -> Option<f64> {
        let min = match &self.repr {
            Repr::Hist(h) => h.min(),
            // A zero sample makes the minimum 0; otherwise the bottom of the smallest one's range.
            Repr::Samples(s) => match s.first() {
                Some(0) | None => 0,
                Some(v) => resolution().lowest_equivalent(*v),
            },
        };
        (self.count() > 0).then(|| min as f64 / self.units_per_ms)
    }

    pub fn max(&self) -> Option<f64> {
        let max = match &self.repr {
            Repr::Hist(h) => h.max(),
            Repr::Samples(s) => s.last().map_or(0, |v| resolution().highest_equivalent(*v)),
        };
        (self.count() > 0).then(|| max as f64 / self.units_per_ms)
    }

    /// Samples at or under `ms` (a sample counts when the top of its equivalent range does).
    pub fn count_le(&self, ms: f64) -> u64 {
        if self.count() == 0 {
            return 0;
        }
        let limit = (ms * self.units_per_ms).floor();
        if limit < 0.0 {
            return 0;
        }
        match &self.repr {
            Repr::Hist(h) => h
                .iter_recorded()
                .filter(|v| (v.value_iterated_to() as f64) <= limit)
                .map(|v| v.count_at_value())
                .sum(),
            Repr::Samples(s) => s
                .iter()
                .filter(|v| (resolution().highest_equivalent(**v) as f64) <= limit)
                .count() as u64,
        }
    }

    /// Adds another distribution's samples (same units, from the same source).
    pub fn merge(&mut self, other: &Dist) {
        match (&mut self.repr, &other.repr) {
            // Both come from the same source, with the same bounds; a failure would be a bug
            // there.
            (Repr::Hist(a), Repr::Hist(b)) => {
                let _ = a.add(&**b);
            }
            (Repr::Hist(a), Repr::Samples(b)) => {
                for v in b {
                    record(a, *v);
                }
            }
            (Repr::Samples(a), Repr::Samples(b)) => {
                a.extend_from_slice(b);
                a.sort_unstable();
            }
            (Repr::Samples(a), Repr::Hist(b)) => {
                let mut h = b.clone();
                for v in a.iter() {
                    record(&mut h, *v);
                }
                self.repr = Repr::Hist(h);
            }
        }
    }
}

/// One series of a [`Source::series`] answer: its labels, borrowed from the source when it
/// keeps them as [`Labels`] (no copy per rule and evaluation), and its data over the window.
#[derive(Debug, Clone)]
pub struct SeriesData<'a> {
    pub labels: Cow<'a, Labels>,
    pub data: Data,
    /// The same labels as numbers, when the source interns them ([`Source::label_ids`]).
    pub ids: Option<LabelIds<'a>>,
}

impl<'a> SeriesData<'a> {
    /// A series without interned labels.
    pub fn new(labels: Cow<'a, Labels>, data: Data) -> SeriesData<'a> {
        SeriesData {
            labels,
            data,
            ids: None,
        }
    }
}

/// A series' labels as numbers, in the order of its [`Labels`] (name order): each label's name
/// id and its value's rank, as the source's [`Interner`] gives them.
///
/// Why: the evaluator groups series by label values and matches ratio subsets on them, per
/// series, rule and evaluation; as numbers those are integer compares instead of string
/// compares, and a regex is run once per distinct value instead of once per series.
#[derive(Debug, Clone, Copy)]
pub struct LabelIds<'a> {
    /// Each label's name id.
    pub names: &'a [u32],
    /// Each label's value rank: ranks order as the value strings do, equal ranks are equal
    /// strings, and 0 is always "" (what a missing label reads as).
    pub values: &'a [u32],
}

impl LabelIds<'_> {
    /// The rank of label `name`'s value; 0 ("") when the series has no such label.
    pub fn value(&self, name: u32) -> u32 {
        self.names
            .iter()
            .position(|n| *n == name)
            .map_or(0, |i| self.values[i])
    }
}

/// How a source numbers labels: what the evaluator asks to turn a rule's label names and
/// matcher values into the numbers of [`LabelIds`]. Valid for the source as it is while
/// borrowed (the numbers of one [`Source::series`] answer and of these calls agree).
pub trait Interner {
    /// The id of a label name; `None` when no series of the source has it.
    fn name_id(&self, name: &str) -> Option<u32>;
    /// The rank of a label value (`Some(0)` for ""); `None` when no series has it.
    fn value_rank(&self, value: &str) -> Option<u32>;
    /// The value of a rank that [`LabelIds`] or [`Interner::value_rank`] gave ("" for 0).
    fn value(&self, rank: u32) -> &str;
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
    ) -> Vec<SeriesData<'_>>;

    /// [`Source::series`] appended to `out`: the evaluator reads one answer per rule and
    /// evaluation, and reuses one vector for all of them instead of allocating (and growing)
    /// one each time.
    fn series_into<'s>(
        &'s self,
        metric: &'static MetricDef,
        matchers: &Matchers,
        window: Duration,
        end: DateTime<Utc>,
        out: &mut Vec<SeriesData<'s>>,
    ) {
        out.extend(self.series(metric, matchers, window, end));
    }

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

    /// The source's label numbering, when its answers carry [`LabelIds`] (every series of
    /// every answer then has them). `None` (the default): labels are read as strings.
    fn label_ids(&self) -> Option<&dyn Interner> {
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
/// marks stale), distributions as individual samples in ms (read as a histogram exact to the
/// ms up to 2,048 ms, 3 significant digits above, would read them).
///
/// Series are indexed by metric and by `label="value"`, so a rule's lookup reads only the
/// series its equality matchers allow, not the whole table. Label names and values are
/// interned ([`Interner`]): answers carry each series' labels as numbers too.
///
/// Reads go through a compact copy of the table built once after it last changed
/// ([`Layout`]): series in label order (an answer's order), each one's points and label
/// numbers in one array apiece, posting lists of those positions. A rule's read is then a
/// few slices of adjacent memory instead of a pointer chase per series (the bench's 133,000
/// series per evaluation each kept their points in a heap vector of their own).
#[derive(Debug, Default, Clone)]
pub struct MemorySource {
    series: Vec<Stored>,
    ids: FastMap<(String, Labels), usize>,
    /// Series of each metric.
    by_metric: FastMap<String, Vec<usize>>,
    /// Series of each metric with a given label value: metric -> label -> value -> series.
    postings: FastMap<String, FastMap<String, FastMap<String, Vec<usize>>>>,
    /// Label names, numbered in the order first seen.
    names: FastMap<String, u32>,
    /// Label values, numbered in the order first seen (ranks come from [`Ranked`]).
    values: FastMap<String, u32>,
    /// Every series' label name ids, in label order, one series after another
    /// ([`Stored::first`] says where each starts).
    label_names: Vec<u32>,
    /// The same labels' value ids.
    label_values: Vec<u32>,
    /// What reads use, built once after the table last changed; reset by every push.
    rank: OnceLock<Ranked>,
}

/// What is computed once after the table last changed: the order of values, and the table
/// laid out in label order for reads.
#[derive(Debug, Clone)]
struct Ranked {
    /// Each value id's rank in string order ("" is 0, whether any series has it or not).
    value_rank: Vec<u32>,
    /// Each rank's value: read from one small table rather than from the series' own
    /// strings, scattered over the heap.
    values: Vec<Box<str>>,
    /// The series in label order: a series' position is its index here.
    layout: Vec<Layout>,
    /// Every series' label name ids (in label order), one series after another by position.
    label_names: Vec<u32>,
    /// The same labels' value ranks.
    label_values: Vec<u32>,
    /// Every series' points (in time order), one series after another by position.
    points: Vec<Point>,
    /// Positions of each metric's series, ascending (so in label order).
    by_metric: FastMap<String, Vec<u32>>,
    /// Positions of each metric's series with a given label value, ascending: metric ->
    /// label -> value -> positions. Nested so that a lookup borrows the matcher's strings
    /// instead of building a key.
    postings: FastMap<String, FastMap<String, FastMap<String, Vec<u32>>>>,
}

/// Where one series (at its position in label order) is in [`Ranked`]'s arrays.
#[derive(Debug, Clone, Copy)]
struct Layout {
    /// Its index in [`MemorySource::series`].
    id: usize,
    /// Its labels: `label_names[labels..labels + n_labels]` (and `label_values`).
    labels: usize,
    n_labels: usize,
    /// Its points: `points[points..points + n_points]`.
    points: usize,
    n_points: usize,
}

#[derive(Debug, Clone)]
struct Stored {
    labels: Labels,
    /// In time order (equal times in the order pushed).
    points: Vec<Point>,
    /// Where the series' labels start in [`MemorySource::label_names`] (and `label_values`).
    first: usize,
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
                let postings = self.postings.entry(key.0.clone()).or_default();
                for (k, v) in &key.1 {
                    postings
                        .entry(k.clone())
                        .or_default()
                        .entry(v.clone())
                        .or_default()
                        .push(id);
                }
                self.by_metric.entry(key.0.clone()).or_default().push(id);
                let first = self.label_names.len();
                for (k, v) in &key.1 {
                    let n = self.names.len() as u32;
                    self.label_names
                        .push(*self.names.entry(k.clone()).or_insert(n));
                    let n = self.values.len() as u32;
                    self.label_values
                        .push(*self.values.entry(v.clone()).or_insert(n));
                }
                self.series.push(Stored {
                    labels: key.1.clone(),
                    points: Vec::new(),
                    first,
                });
                self.ids.insert(key, id);
                id
            }
        };
        // Reads use a copy of the points: any push makes it stale.
        self.rank = OnceLock::new();
        let points = &mut self.series[id].points;
        let in_order = points.last().is_none_or(|(t, _)| *t <= at);
        points.push((at, v));
        if !in_order {
            points.sort_by_key(|(t, _)| *t);
        }
    }

    /// The table as reads use it, built after it last changed.
    fn ranked(&self) -> &Ranked {
        self.rank.get_or_init(|| {
            // Label order (one metric's labels are unique; equal label sets of different
            // metrics keep the order they were added in).
            let mut order: Vec<usize> = (0..self.series.len()).collect();
            order.sort_by(|a, b| self.series[*a].labels.cmp(&self.series[*b].labels));
            let mut position = vec![0u32; order.len()];
            for (pos, id) in order.iter().enumerate() {
                position[*id] = u32::try_from(pos).expect("fewer than 2^32 series");
            }

            let mut values: Vec<(&str, u32)> = self
                .values
                .iter()
                .map(|(v, id)| (v.as_str(), *id))
                .collect();
            values.sort_unstable();
            // "" sorts first: rank 0 whether or not a series has it.
            let from = u32::from(values.first().is_none_or(|(v, _)| !v.is_empty()));
            let mut value_rank = vec![0u32; values.len()];
            let mut by_rank: Vec<Box<str>> = Vec::with_capacity(values.len() + 1);
            if from == 1 {
                by_rank.push("".into());
            }
            for (pos, (v, id)) in values.into_iter().enumerate() {
                value_rank[id as usize] = pos as u32 + from;
                by_rank.push(v.into());
            }

            let n_points = self.series.iter().map(|s| s.points.len()).sum();
            let mut layout = Vec::with_capacity(order.len());
            let mut points = Vec::with_capacity(n_points);
            let mut label_names = Vec::with_capacity(self.label_names.len());
            let mut label_values = Vec::with_capacity(self.label_values.len());
            for id in order {
                let s = &self.series[id];
                let span = s.first..s.first + s.labels.len();
                layout.push(Layout {
                    id,
                    labels: label_names.len(),
                    n_labels: s.labels.len(),
                    points: points.len(),
                    n_points: s.points.len(),
                });
                points.extend_from_slice(&s.points);
                label_names.extend_from_slice(&self.label_names[span.clone()]);
                label_values.extend(
                    self.label_values[span]
                        .iter()
                        .map(|id| value_rank[*id as usize]),
                );
            }

            // The posting lists as positions, ascending.
            let positions = |ids: &[usize]| {
                let mut out: Vec<u32> = ids.iter().map(|id| position[*id]).collect();
                out.sort_unstable();
                out
            };
            let by_metric = self
                .by_metric
                .iter()
                .map(|(metric, ids)| (metric.clone(), positions(ids)))
                .collect();
            let postings = self
                .postings
                .iter()
                .map(|(metric, labels)| {
                    let labels = labels
                        .iter()
                        .map(|(label, values)| {
                            let values = values
                                .iter()
                                .map(|(value, ids)| (value.clone(), positions(ids)))
                                .collect();
                            (label.clone(), values)
                        })
                        .collect();
                    (metric.clone(), labels)
                })
                .collect();
            Ranked {
                value_rank,
                values: by_rank,
                layout,
                label_names,
                label_values,
                points,
                by_metric,
                postings,
            }
        })
    }
}

impl Ranked {
    /// The positions of `metric`'s series that may match: the shortest posting list of an
    /// equality matcher on a non-empty value (`lists[0]`, ascending), each position of which
    /// is a candidate when it is in every other list of `lists` too; else every series of the
    /// metric. A series in every list satisfies those matchers, so only the others (`rest`)
    /// are left to check: a rule's `check="x", outcome="pass"` costs two hash lookups and a
    /// merge, not a string comparison per candidate and matcher.
    fn candidates<'s, 'm>(
        &'s self,
        metric: &str,
        matchers: &'m Matchers,
        rest: &mut Vec<&'m Matcher>,
        lists: &mut Vec<&'s [u32]>,
    ) {
        let postings = self.postings.get(metric);
        for m in &matchers.0 {
            if m.op != MatchOp::Eq || m.value.is_empty() {
                rest.push(m);
                continue;
            }
            let list = postings
                .and_then(|p| p.get(m.label.as_str()))
                .and_then(|p| p.get(m.value.as_str()))
                .map_or(&[][..], Vec::as_slice);
            lists.push(list);
        }
        if lists.is_empty() {
            lists.push(self.by_metric.get(metric).map_or(&[][..], Vec::as_slice));
        } else {
            lists.sort_unstable_by_key(|l| l.len());
        }
    }
}

impl Interner for MemorySource {
    fn name_id(&self, name: &str) -> Option<u32> {
        self.names.get(name).copied()
    }

    fn value_rank(&self, value: &str) -> Option<u32> {
        if value.is_empty() {
            return Some(0);
        }
        let id = self.values.get(value)?;
        Some(self.ranked().value_rank[*id as usize])
    }

    fn value(&self, rank: u32) -> &str {
        self.ranked().values.get(rank as usize).map_or("", |v| &**v)
    }
}

/// The full-range histogram's bound, in ms: larger samples saturate there.
const MAX_MS: f64 = 3_600_000_000.0;

pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("static histogram bounds")
}

/// A series' data over `(start, end]` from its points in time order.
fn window_data(
    kind: MetricKind,
    points: &[Point],
    start: DateTime<Utc>,
    end: DateTime<Utc>,
) -> Option<Data> {
    let from = points.partition_point(|(t, _)| *t <= start);
    let to = from + points[from..].partition_point(|(t, _)| *t <= end);
    let inside = &points[from..to];
    Some(match kind {
        MetricKind::Counter => {
            // No point at or before the start: the counter was 0 then.
            let mut prev = points[..from].iter().rev().find_map(|(_, v)| *v);
            let first_in_window = prev.is_none();
            let mut increase = 0.0;
            let mut seen = false;
            for (_, v) in inside {
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
                return None;
            }
            Data::Counter { increase }
        }
        MetricKind::Gauge => Data::Gauge {
            last: points[..to].last().and_then(|(_, v)| *v),
        },
        MetricKind::Distribution => Data::Distribution(Dist::from_samples(
            inside
                .iter()
                .filter_map(|(_, v)| v.map(|v| v.max(1.0).round().min(MAX_MS) as u64))
                .collect(),
            1.0,
        )),
    })
}

impl Source for MemorySource {
    fn series(
        &self,
        metric: &'static MetricDef,
        matchers: &Matchers,
        window: Duration,
        end: DateTime<Utc>,
    ) -> Vec<SeriesData<'_>> {
        let mut out = Vec::new();
        self.series_into(metric, matchers, window, end, &mut out);
        out
    }

    fn series_into<'s>(
        &'s self,
        metric: &'static MetricDef,
        matchers: &Matchers,
        window: Duration,
        end: DateTime<Utc>,
        out: &mut Vec<SeriesData<'s>>,
    ) {
        let start = end - chrono::Duration::from_std(window).unwrap_or(chrono::Duration::MAX);
        let ranked = self.ranked();
        let mut rest = Vec::new();
        let mut lists = Vec::new();
        ranked.candidates(metric.name, matchers, &mut rest, &mut lists);
        let Some((shortest, others)) = lists.split_first() else {
            return;
        };
        // Each other list is ascending, as the shortest is: a cursor per list that only
        // moves forward finds a position (or its absence) in what is left of the list.
        let mut cursors: Vec<&[u32]> = others.to_vec();
        out.reserve(shortest.len());
        'candidates: for pos in shortest.iter() {
            for list in cursors.iter_mut() {
                let skip = list.partition_point(|p| p < pos);
                *list = &list[skip..];
                if list.first() != Some(pos) {
                    continue 'candidates;
                }
            }
            let l = &ranked.layout[*pos as usize];
            let labels = &self.series[l.id].labels;
            if !rest.iter().all(|m| m.matches(labels)) {
                continue;
            }
            let points = &ranked.points[l.points..l.points + l.n_points];
            let Some(data) = window_data(metric.kind, points, start, end) else {
                continue;
            };
            let span = l.labels..l.labels + l.n_labels;
            out.push(SeriesData {
                labels: Cow::Borrowed(labels),
                data,
                ids: Some(LabelIds {
                    names: &ranked.label_names[span.clone()],
                    values: &ranked.label_values[span],
                }),
            });
        }
    }

    fn label_ids(&self) -> Option<&dyn Interner> {
        Some(self)
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
