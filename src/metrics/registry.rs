//! The metrics registry: every series (metric + label values) synmon records, shared by the
//! runners (writers), the exporters and the alert rules (readers).
//!
//! Design: one family per catalog entry, each a `RwLock<BTreeMap<label key, Arc<Series>>>`.
//! Recording takes the family's read lock only to find the series (the write lock only the first
//! time a label set is seen), then works on that series alone: an atomic for counters, a small
//! mutex for a histogram or gauge. Tasks recording different checks never wait for each other,
//! and a `/metrics` render holds no family lock while it formats. The BTreeMap keeps exports and
//! snapshots in a stable order without sorting.
//!
//! Recording a name that is not in the catalog, with labels other than the catalog's, or with
//! the wrong kind returns a [`MetricsError`] instead of panicking: some names come from config
//! (SQL metric sources), where `synmon check` should report them, and a daemon should not crash
//! on one bad series. Reads (`quantile`, `gauge`, `counter`, `count`) of unknown series return
//! no data.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock, Weak};

use chrono::{DateTime, Utc};

use super::catalog::{self, CATALOG, MetricDef, MetricKind};
use super::runs::{Point, PointValue, RunMetrics};
use super::window::{Accumulator, Window, WindowedHistogram};
use crate::run::RunResult;

/// A metric could not be recorded as asked.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum MetricsError {
    #[error("metric `{0}` is not in the catalog")]
    UnknownMetric(String),
    #[error("metric `{metric}` takes labels {expected:?}, got {got:?}")]
    LabelMismatch {
        metric: &'static str,
        expected: &'static [&'static str],
        got: Vec<String>,
    },
    #[error("metric `{metric}` is a {actual:?}, it cannot be used as a {wanted:?}")]
    WrongKind {
        metric: &'static str,
        actual: MetricKind,
        wanted: MetricKind,
    },
}

/// Separates label values in a series key (a control character no label value carries).
const KEY_SEP: char = '\u{1f}';

/// Escape a label value for the Prometheus text format: backslash, double quote and line feed.
/// Here rather than in the renderer because each series escapes its labels once, when it is
/// created (see [`Series::prom_labels`]).
pub fn escape_label_value(out: &mut String, value: &str) {
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// Quantiles every [`Snapshot`] carries per window.
pub const SNAPSHOT_QUANTILES: [f64; 4] = [0.5, 0.9, 0.95, 0.99];

#[derive(Debug, Clone, Copy)]
struct GaugeValue {
    /// `None` once marked stale: no data, never a zero.
    value: Option<f64>,
    updated_at: Option<DateTime<Utc>>,
}

#[derive(Debug)]
enum State {
    /// Boxed: a windowed histogram is ~290 bytes and a counter or gauge ~40, and about half of
    /// a check's series are counters and gauges.
    Distribution(Box<Mutex<Dist>>),
    Counter(AtomicU64),
    Gauge(Mutex<GaugeValue>),
}

/// A distribution series' values: its own histogram, or its check's.
///
/// Why a step series may follow its check's: when a run's one timed step carries the run's
/// whole latency (every HTTP, SQL, TCP, DNS and TLS check, and a journey with one timed step),
/// the step's latency series receives the same value at the same instant as the check's, run
/// after run. Kept twice, that was a third of the histograms of 1,000 HTTP checks (check,
/// step, lateness; BENCHMARKS.md, "Peak RSS, session 15"). Such a step series is created
/// *following* the check series: it records nothing and every read of it reads the check's
/// histogram. The first value that one of the two gets without the other (a run whose check
/// latency is not that step's, an overrun's skipped slots, another step taking over the
/// check's latency) ends it: the step series takes a copy of the check's histogram as it was,
/// which is exactly what it would have held, and records on its own from then on.
///
/// A step series that starts following also takes the check's history as its own: after a
/// restart, the check series holds the runs replayed from the store (which keeps no per-step
/// latencies for replay), and the step series now answers with them too instead of starting
/// empty.
#[derive(Debug)]
enum Dist {
    Own {
        /// Boxed: a follower holds only its pointer to the check series.
        hist: Box<WindowedHistogram>,
        /// Step series following this one (see [`Dist`]); dead ones are dropped as met.
        followers: Vec<Weak<Series>>,
    },
    Follows(Arc<Series>),
}

impl Series {
    fn dist(&self) -> Option<&Mutex<Dist>> {
        match &self.state {
            State::Distribution(d) => Some(d),
            _ => None,
        }
    }

    /// Runs `f` on the series' histogram (its check's, while it follows one); `None` for
    /// counters and gauges.
    ///
    /// Locks: a follower's check series first, then the follower, as writers take them.
    pub(crate) fn with_histogram<R>(&self, f: impl FnOnce(&WindowedHistogram) -> R) -> Option<R> {
        let d = self.dist()?;
        let of = match &*lock(d) {
            Dist::Own { hist, .. } => return Some(f(hist)),
            Dist::Follows(of) => Arc::clone(of),
        };
        let of_guard = lock(of.dist().expect("a followed series is a distribution"));
        let guard = lock(d);
        match (&*guard, &*of_guard) {
            (Dist::Own { hist, .. }, _) => Some(f(hist)),
            (Dist::Follows(_), Dist::Own { hist, .. }) => Some(f(hist)),
            (Dist::Follows(_), Dist::Follows(_)) => unreachable!("a check series follows none"),
        }
    }

    /// Records through `f` into this series' own histogram: a follower stops following first
    /// (see [`Dist`]), and a followed series ends its followers. Gauges and counters: nothing.
    fn record_own(&self, f: impl FnOnce(&mut WindowedHistogram)) {
        let Some(d) = self.dist() else { return };
        self.stop_following();
        let mut guard = lock(d);
        if let Dist::Own { hist, followers } = &mut *guard {
            end_followers(hist, followers, None);
            f(hist);
        }
    }

    /// Whether this series follows `of`.
    fn follows(&self, of: &Arc<Series>) -> bool {
        self.dist()
            .is_some_and(|d| matches!(&*lock(d), Dist::Follows(f) if Arc::ptr_eq(f, of)))
    }

    /// Records through `f` into this check series, for itself and for `follower` (the step
    /// series carrying the same value): other followers end first. A follower that ended
    /// meanwhile (another thread recorded into one of the two) gets the value itself.
    fn record_with_follower(&self, follower: &Series, f: impl Fn(&mut WindowedHistogram)) {
        let Some(d) = self.dist() else { return };
        let mut guard = lock(d);
        if let Dist::Own { hist, followers } = &mut *guard {
            end_followers(hist, followers, Some(follower));
            f(hist);
            if let Some(fd) = follower.dist()
                && let Dist::Own { hist, .. } = &mut *lock(fd)
            {
                f(hist);
            }
        }
    }

    /// A follower takes a copy of its check's histogram and records on its own from now on.
    fn stop_following(&self) {
        let Some(d) = self.dist() else { return };
        let of = match &*lock(d) {
            Dist::Own { .. } => return,
            Dist::Follows(of) => Arc::clone(of),
        };
        let mut of_guard = lock(of.dist().expect("a followed series is a distribution"));
        let mut guard = lock(d);
        if let (Dist::Follows(_), Dist::Own { hist, followers }) = (&*guard, &mut *of_guard) {
            followers.retain(|w| !std::ptr::eq(w.as_ptr(), self));
            *guard = Dist::Own {
                hist: hist.clone(),
                followers: Vec::new(),
            };
        }
    }
}

/// Ends every follower of a check series but `keep` (which gets the value being recorded): each
/// takes a copy of `hist` before the value goes in. Called with the check series locked.
fn end_followers(
    hist: &WindowedHistogram,
    followers: &mut Vec<Weak<Series>>,
    keep: Option<&Series>,
) {
    followers.retain(|w| {
        let Some(f) = w.upgrade() else { return false };
        if keep.is_some_and(|k| std::ptr::eq(k, &*f)) {
            return true;
        }
        if let Some(d) = f.dist() {
            let mut guard = lock(d);
            if matches!(&*guard, Dist::Follows(_)) {
                *guard = Dist::Own {
                    hist: Box::new(hist.clone()),
                    followers: Vec::new(),
                };
            }
        }
        false
    });
}

/// One series: label values in catalog order, and its state.
#[derive(Debug)]
pub(crate) struct Series {
    pub(crate) labels: Box<[Box<str>]>,
    /// `name="value",...` escaped for the Prometheus text format, built once so a scrape only
    /// copies it.
    pub(crate) prom_labels: Box<str>,
    state: State,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding a series lock cannot leave a histogram half-written in a way that
    // matters more than losing the metrics: keep serving.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// What an exporter reads from one series (a distribution: through
/// [`Series::with_histogram`]).
pub(crate) enum SeriesRead {
    Distribution,
    Counter(u64),
    Gauge(Option<f64>),
}

impl Series {
    pub(crate) fn read(&self) -> SeriesRead {
        match &self.state {
            State::Distribution(_) => SeriesRead::Distribution,
            State::Counter(c) => SeriesRead::Counter(c.load(Ordering::Relaxed)),
            State::Gauge(g) => SeriesRead::Gauge(lock(g).value),
        }
    }
}

#[derive(Debug)]
struct Family {
    def: &'static MetricDef,
    series: RwLock<BTreeMap<Box<str>, Arc<Series>>>,
}

#[derive(Debug)]
struct Inner {
    families: Vec<Family>,
    by_name: HashMap<&'static str, usize>,
}

/// The registry; cheap to clone (an `Arc`), safe to share between tasks.
#[derive(Debug, Clone)]
pub struct Registry {
    inner: Arc<Inner>,
}

impl Default for Registry {
    fn default() -> Self {
        Self::new()
    }
}

impl Registry {
    /// An empty registry covering every metric of the catalog.
    pub fn new() -> Self {
        let families = CATALOG
            .iter()
            .map(|def| Family {
                def,
                series: RwLock::new(BTreeMap::new()),
            })
            .collect();
        let mut by_name = HashMap::new();
        for (i, def) in CATALOG.iter().enumerate() {
            by_name.insert(def.name, i);
            by_name.insert(def.prom_name, i);
        }
        Registry {
            inner: Arc::new(Inner { families, by_name }),
        }
    }

    fn family(&self, name: &str) -> Result<&Family, MetricsError> {
        self.inner
            .by_name
            .get(name)
            .map(|&i| &self.inner.families[i])
            .ok_or_else(|| MetricsError::UnknownMetric(name.to_string()))
    }

    fn family_of_kind(&self, name: &str, wanted: MetricKind) -> Result<&Family, MetricsError> {
        let family = self.family(name)?;
        if family.def.kind != wanted {
            return Err(MetricsError::WrongKind {
                metric: family.def.name,
                actual: family.def.kind,
                wanted,
            });
        }
        Ok(family)
    }

    /// The series key: label values in catalog order, checked against the catalog.
    fn key(def: &'static MetricDef, labels: &[(&str, &str)]) -> Result<String, MetricsError> {
        let mismatch = || MetricsError::LabelMismatch {
            metric: def.name,
            expected: def.labels,
            got: labels.iter().map(|(k, _)| (*k).to_string()).collect(),
        };
        if labels.len() != def.labels.len() {
            return Err(mismatch());
        }
        let mut key = String::with_capacity(labels.iter().map(|(_, v)| v.len() + 1).sum());
        for (i, name) in def.labels.iter().enumerate() {
            // Callers usually pass labels in catalog order: try that position first.
            let value = match labels.get(i) {
                Some((k, v)) if k == name => v,
                _ => match labels.iter().find(|(k, _)| k == name) {
                    Some((_, v)) => v,
                    None => return Err(mismatch()),
                },
            };
            if i > 0 {
                key.push(KEY_SEP);
            }
            key.push_str(value);
        }
        Ok(key)
    }

    fn series(
        &self,
        family: &Family,
        labels: &[(&str, &str)],
    ) -> Result<Arc<Series>, MetricsError> {
        self.series_or_follower(family, labels, None)
    }

    /// The series of `labels`; created, when it does not exist yet, following `follows` (a
    /// check's latency series; see [`Dist`]) if that is given.
    fn series_or_follower(
        &self,
        family: &Family,
        labels: &[(&str, &str)],
        follows: Option<&Arc<Series>>,
    ) -> Result<Arc<Series>, MetricsError> {
        let key = Self::key(family.def, labels)?;
        if let Some(s) = family
            .series
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(key.as_str())
        {
            return Ok(Arc::clone(s));
        }
        let mut map = family.series.write().unwrap_or_else(|e| e.into_inner());
        let mut created = false;
        let series = map.entry(key.into_boxed_str()).or_insert_with_key(|key| {
            created = true;
            let labels: Box<[Box<str>]> = if family.def.labels.is_empty() {
                Box::default()
            } else {
                key.split(KEY_SEP).map(Box::from).collect()
            };
            let state = match family.def.kind {
                MetricKind::Distribution => {
                    State::Distribution(Box::new(Mutex::new(match follows {
                        Some(of) => Dist::Follows(Arc::clone(of)),
                        None => Dist::Own {
                            hist: Box::new(WindowedHistogram::new()),
                            followers: Vec::new(),
                        },
                    })))
                }
                MetricKind::Counter => State::Counter(AtomicU64::new(0)),
                MetricKind::Gauge => State::Gauge(Mutex::new(GaugeValue {
                    value: None,
                    updated_at: None,
                })),
            };
            let mut prom_labels = String::new();
            for (i, (name, value)) in family.def.labels.iter().zip(labels.iter()).enumerate() {
                if i > 0 {
                    prom_labels.push(',');
                }
                prom_labels.push_str(name);
                prom_labels.push_str("=\"");
                escape_label_value(&mut prom_labels, value);
                prom_labels.push('"');
            }
            Arc::new(Series {
                labels,
                prom_labels: prom_labels.into_boxed_str(),
                state,
            })
        });
        // The check series learns of its follower before anyone can record into either: both
        // go through the family's write lock, still held.
        if created
            && let Some(of) = follows
            && let Some(d) = of.dist()
            && let Dist::Own { followers, .. } = &mut *lock(d)
        {
            followers.push(Arc::downgrade(series));
        }
        Ok(Arc::clone(series))
    }

    /// An existing series, without creating it.
    fn existing(&self, name: &str, labels: &[(&str, &str)]) -> Option<Arc<Series>> {
        let family = self.family(name).ok()?;
        let key = Self::key(family.def, labels).ok()?;
        family
            .series
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(key.as_str())
            .cloned()
    }

    /// Record a latency (ms) into a distribution.
    pub fn record(
        &self,
        name: &str,
        labels: &[(&str, &str)],
        value_ms: f64,
        at: DateTime<Utc>,
    ) -> Result<(), MetricsError> {
        let family = self.family_of_kind(name, MetricKind::Distribution)?;
        self.series(family, labels)?
            .record_own(|h| h.record(value_ms, at));
        Ok(())
    }

    /// Record a latency with coordinated-omission correction (see
    /// [`WindowedHistogram::record_correct`]).
    pub fn record_correct(
        &self,
        name: &str,
        labels: &[(&str, &str)],
        value_ms: f64,
        expected_interval_ms: f64,
        at: DateTime<Utc>,
    ) -> Result<(), MetricsError> {
        let family = self.family_of_kind(name, MetricKind::Distribution)?;
        self.series(family, labels)?
            .record_own(|h| h.record_correct(value_ms, expected_interval_ms, at));
        Ok(())
    }

    /// Add to a counter.
    pub fn incr(&self, name: &str, labels: &[(&str, &str)], by: u64) -> Result<(), MetricsError> {
        let family = self.family_of_kind(name, MetricKind::Counter)?;
        let series = self.series(family, labels)?;
        if let State::Counter(c) = &series.state {
            c.fetch_add(by, Ordering::Relaxed);
        }
        Ok(())
    }

    /// Set a gauge (in the catalog's unit, e.g. percent). A NaN value marks it stale.
    pub fn set_gauge(
        &self,
        name: &str,
        labels: &[(&str, &str)],
        value: f64,
        at: DateTime<Utc>,
    ) -> Result<(), MetricsError> {
        let family = self.family_of_kind(name, MetricKind::Gauge)?;
        let series = self.series(family, labels)?;
        if let State::Gauge(g) = &series.state {
            let mut g = lock(g);
            g.value = (!value.is_nan()).then_some(value);
            g.updated_at = Some(at);
        }
        Ok(())
    }

    /// Mark a gauge as having no value (its source failed). A stale gauge is not exported (not
    /// as 0, not at all) and reads as no data until it is set again.
    pub fn mark_stale(&self, name: &str, labels: &[(&str, &str)]) -> Result<(), MetricsError> {
        let family = self.family_of_kind(name, MetricKind::Gauge)?;
        Self::key(family.def, labels)?;
        if let Some(series) = self.existing(name, labels)
            && let State::Gauge(g) = &series.state
        {
            lock(g).value = None;
        }
        Ok(())
    }

    /// Mark every series of a gauge stale: a SQL source that failed does not know which label
    /// values (tenants, retry counts) its query would have returned.
    pub fn mark_all_stale(&self, name: &str) -> Result<(), MetricsError> {
        let family = self.family_of_kind(name, MetricKind::Gauge)?;
        for series in family
            .series
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .values()
        {
            if let State::Gauge(g) = &series.state {
                lock(g).value = None;
            }
        }
        Ok(())
    }

    /// A distribution's quantile over a window, ms; `None` without data (or unknown series).
    pub fn quantile(
        &self,
        name: &str,
        labels: &[(&str, &str)],
        window: Window,
        q: f64,
        now: DateTime<Utc>,
    ) -> Option<f64> {
        self.existing(name, labels)?
            .with_histogram(|h| h.quantile(window, q, now))
            .flatten()
    }

    /// A distribution's number of values in a window (0 for unknown series).
    pub fn count(
        &self,
        name: &str,
        labels: &[(&str, &str)],
        window: Window,
        now: DateTime<Utc>,
    ) -> u64 {
        self.existing(name, labels)
            .and_then(|s| s.with_histogram(|h| h.count(window, now)))
            .unwrap_or(0)
    }

    /// A gauge's value; `None` when stale, never set, or unknown.
    pub fn gauge(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        match &self.existing(name, labels)?.state {
            State::Gauge(g) => lock(g).value,
            _ => None,
        }
    }

    /// A counter's value (0 for unknown series).
    pub fn counter(&self, name: &str, labels: &[(&str, &str)]) -> u64 {
        match self.existing(name, labels).as_deref() {
            Some(Series {
                state: State::Counter(c),
                ..
            }) => c.load(Ordering::Relaxed),
            _ => 0,
        }
    }

    /// Record one metric point (see [`super::runs`]).
    pub fn record_point(&self, p: &Point<'_>, at: DateTime<Utc>) -> Result<(), MetricsError> {
        match p.value {
            PointValue::Latency(ms) => self.record(p.def.name, p.labels, ms, at),
            PointValue::Count(by) => self.incr(p.def.name, p.labels, by),
            PointValue::Gauge(v) => self.set_gauge(p.def.name, p.labels, v, at),
        }
    }

    /// Record one run outside any maintenance window: every point [`RunMetrics`] maps it to
    /// (the check's latency, every step's latency, the runs counter by outcome and attempt, and
    /// the probe-health gauge). A cancelled run was cut short by shutdown: nothing is recorded.
    pub fn record_run(&self, run: &RunResult, at: DateTime<Utc>) -> Result<(), MetricsError> {
        self.record_run_marked(run, None, at)
    }

    /// Record one run as the recorder judged it: inside the maintenance window `window` names
    /// as `maintenance` (SLIs leave it out), otherwise as [`record_run`](Self::record_run).
    pub fn record_run_marked(
        &self,
        run: &RunResult,
        window: Option<&str>,
        at: DateTime<Utc>,
    ) -> Result<(), MetricsError> {
        let metrics = RunMetrics::of(run).marked(window);
        // The check latency goes in last, so that the step carrying it can follow it (see
        // [`Dist`]): the step series is created following the check's, or is found following.
        let check_outcome = metrics.outcome_label(metrics.outcome);
        let mut check: Option<(Arc<Series>, f64)> = None;
        let mut follower: Option<Arc<Series>> = None;
        // Only the first step carrying the check's value may follow it.
        let mut carried = false;
        metrics.try_for_each_point(|p| {
            let PointValue::Latency(ms) = p.value else {
                return self.record_point(&p, at);
            };
            if p.def.name == catalog::CHECK_LATENCY.name {
                let family = self.family_of_kind(p.def.name, MetricKind::Distribution)?;
                check = Some((self.series(family, p.labels)?, ms));
                return Ok(());
            }
            let carries_check = |(_, check_ms): &(Arc<Series>, f64)| {
                check_ms.to_bits() == ms.to_bits() && p.labels.contains(&("outcome", check_outcome))
            };
            match &check {
                Some(c)
                    if p.def.name == catalog::STEP_LATENCY.name && !carried && carries_check(c) =>
                {
                    carried = true;
                    let family = self.family_of_kind(p.def.name, MetricKind::Distribution)?;
                    let step = self.series_or_follower(family, p.labels, Some(&c.0))?;
                    if step.follows(&c.0) {
                        follower = Some(step);
                    } else {
                        step.record_own(|h| h.record(ms, at));
                    }
                    Ok(())
                }
                _ => self.record_point(&p, at),
            }
        })?;
        if let Some((of, ms)) = check {
            match follower {
                Some(step) => of.record_with_follower(&step, |h| h.record(ms, at)),
                None => of.record_own(|h| h.record(ms, at)),
            }
        }
        Ok(())
    }

    /// Freeze live minutes and age slices of every distribution; call once a minute so quiet
    /// series release their live buffers.
    pub fn maintain(&self, now: DateTime<Utc>) {
        for family in &self.inner.families {
            if family.def.kind != MetricKind::Distribution {
                continue;
            }
            for series in self.series_of(family) {
                // A follower's histogram is its check's, advanced as that series.
                if let Some(d) = series.dist()
                    && let Dist::Own { hist, .. } = &mut *lock(d)
                {
                    hist.advance(now);
                }
            }
        }
    }

    /// Memory held by the distribution series: for capacity checks and the benchmark.
    pub fn histogram_memory(&self) -> HistogramMemory {
        let mut m = HistogramMemory::default();
        for family in &self.inner.families {
            for series in self.series_of(family) {
                if let Some(d) = series.dist() {
                    m.series += 1;
                    match &*lock(d) {
                        Dist::Own { hist, .. } => {
                            m.encoded_bytes += hist.encoded_bytes();
                            m.heap_bytes += hist.heap_bytes();
                        }
                        Dist::Follows(_) => m.following += 1,
                    }
                }
            }
        }
        m
    }

    fn series_of(&self, family: &Family) -> Vec<Arc<Series>> {
        family
            .series
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect()
    }

    /// Every family in catalog order with its series (cloned handles: no lock is held after).
    pub(crate) fn families(&self) -> impl Iterator<Item = (&'static MetricDef, Vec<Arc<Series>>)> {
        self.inner
            .families
            .iter()
            .map(|f| (f.def, self.series_of(f)))
    }

    /// Every series with its current values and, for distributions, count and quantiles over
    /// every window: what alert rules evaluate.
    pub fn snapshot(&self, now: DateTime<Utc>) -> Snapshot {
        self.snapshot_windows(now, &Window::ALL)
    }

    /// Every series of the distribution `name`, visited with its labels ((name, value) in catalog
    /// order) and its windowed histogram, locked for the visit only. For readers that need
    /// counts over many windows ([`WindowedHistogram::count`], [`WindowedHistogram::count_le`])
    /// rather than a merged histogram per window: building one zeroes 26 KB of buckets.
    /// Unknown names and other kinds visit nothing.
    pub fn for_each_distribution(
        &self,
        name: &str,
        mut f: impl FnMut(&[(&'static str, &str)], &WindowedHistogram),
    ) {
        let Ok(family) = self.family(name) else {
            return;
        };
        let def = family.def;
        for s in self.series_of(family) {
            let labels: Vec<(&'static str, &str)> = def
                .labels
                .iter()
                .zip(s.labels.iter())
                .map(|(k, v)| (*k, &**v))
                .collect();
            s.with_histogram(|h| f(&labels, h));
        }
    }

    /// Every series of `name` with its data over one window ending at `end`: counters' current
    /// value, gauges' value (`None` when stale), distributions' merged histogram (µs).
    pub fn window_series(
        &self,
        name: &str,
        window: Window,
        end: DateTime<Utc>,
    ) -> Vec<(Vec<(&'static str, String)>, WindowData)> {
        let Ok(family) = self.family(name) else {
            return Vec::new();
        };
        let def = family.def;
        let members: Vec<Arc<Series>> = family
            .series
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect();
        // One accumulator for every series (it clears only the buckets it touched).
        let mut acc = Accumulator::new();
        members
            .iter()
            .map(|s| {
                let labels = def
                    .labels
                    .iter()
                    .zip(s.labels.iter())
                    .map(|(k, v)| (*k, v.to_string()))
                    .collect();
                let data = match &s.state {
                    State::Counter(c) => WindowData::Counter(c.load(Ordering::Relaxed)),
                    State::Gauge(g) => WindowData::Gauge(lock(g).value),
                    State::Distribution(_) => {
                        acc.clear();
                        s.with_histogram(|h| h.accumulate(window, end, &mut acc));
                        WindowData::Distribution(acc.to_histogram())
                    }
                };
                (labels, data)
            })
            .collect()
    }

    /// Like [`snapshot`](Self::snapshot) for a chosen set of windows (the 30-day window reads
    /// the most data).
    pub fn snapshot_windows(&self, now: DateTime<Utc>, windows: &[Window]) -> Snapshot {
        let mut acc = Accumulator::new();
        let mut series = Vec::new();
        for (def, members) in self.families() {
            for s in members {
                let labels = def
                    .labels
                    .iter()
                    .zip(s.labels.iter())
                    .map(|(k, v)| (*k, v.to_string()))
                    .collect();
                let value = match &s.state {
                    State::Counter(c) => SeriesValue::Counter(c.load(Ordering::Relaxed)),
                    State::Gauge(g) => {
                        let g = lock(g);
                        SeriesValue::Gauge {
                            value: g.value,
                            updated_at: g.updated_at,
                        }
                    }
                    State::Distribution(_) => s
                        .with_histogram(|h| {
                            let windows = windows
                                .iter()
                                .map(|&window| {
                                    acc.clear();
                                    h.accumulate(window, now, &mut acc);
                                    WindowStats {
                                        window,
                                        count: acc.total(),
                                        quantiles_ms: acc.quantiles_ms(&SNAPSHOT_QUANTILES),
                                    }
                                })
                                .collect();
                            SeriesValue::Distribution(DistributionSnapshot {
                                total_count: h.total_count(),
                                total_sum_ms: h.total_sum_ms(),
                                windows,
                            })
                        })
                        .expect("a distribution"),
                };
                series.push(SeriesSnapshot { def, labels, value });
            }
        }
        Snapshot { at: now, series }
    }
}

/// See [`Registry::histogram_memory`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HistogramMemory {
    pub series: usize,
    /// Of `series`, step series following their check's (they hold no histogram of their own).
    pub following: usize,
    /// Bytes of encoded (frozen) minute, hour and day slices.
    pub encoded_bytes: usize,
    /// Heap bytes held, approximately: slices, their bookkeeping, live buffers and histograms.
    pub heap_bytes: usize,
}

/// One series' data over a window (see [`Registry::window_series`]).
#[derive(Debug, Clone)]
pub enum WindowData {
    /// The counter's value now (counters keep no history).
    Counter(u64),
    Gauge(Option<f64>),
    /// Values in the window, in microseconds.
    Distribution(hdrhistogram::Histogram<u64>),
}

/// All series at one instant.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub at: DateTime<Utc>,
    /// In catalog order, then by label values.
    pub series: Vec<SeriesSnapshot>,
}

impl Snapshot {
    /// The series of one metric (by either name).
    pub fn metric<'a>(&'a self, name: &str) -> impl Iterator<Item = &'a SeriesSnapshot> + 'a {
        let def = catalog::lookup(name);
        self.series
            .iter()
            .filter(move |s| def.is_some_and(|d| d.name == s.def.name))
    }

    /// One series by metric name and labels (any order).
    pub fn find(&self, name: &str, labels: &[(&str, &str)]) -> Option<&SeriesSnapshot> {
        self.metric(name).find(|s| {
            s.labels.len() == labels.len() && labels.iter().all(|(k, v)| s.label(k) == Some(v))
        })
    }
}

#[derive(Debug, Clone)]
pub struct SeriesSnapshot {
    pub def: &'static MetricDef,
    /// (label name, value) in catalog order.
    pub labels: Vec<(&'static str, String)>,
    pub value: SeriesValue,
}

impl SeriesSnapshot {
    pub fn label(&self, name: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Debug, Clone)]
pub enum SeriesValue {
    Counter(u64),
    /// `value: None` is a stale gauge: no data, which rules must not read as 0.
    Gauge {
        value: Option<f64>,
        updated_at: Option<DateTime<Utc>>,
    },
    Distribution(DistributionSnapshot),
}

#[derive(Debug, Clone)]
pub struct DistributionSnapshot {
    /// Since process start.
    pub total_count: u64,
    pub total_sum_ms: f64,
    pub windows: Vec<WindowStats>,
}

impl DistributionSnapshot {
    pub fn window(&self, window: Window) -> Option<&WindowStats> {
        self.windows.iter().find(|w| w.window == window)
    }
}

#[derive(Debug, Clone)]
pub struct WindowStats {
    pub window: Window,
    pub count: u64,
    /// Values at [`SNAPSHOT_QUANTILES`], ms; `None` when the window is empty.
    pub quantiles_ms: Vec<Option<f64>>,
}

impl WindowStats {
    /// The value at one of [`SNAPSHOT_QUANTILES`]; `None` for other quantiles or no data.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        SNAPSHOT_QUANTILES
            .iter()
            .position(|&x| x == q)
            .and_then(|i| self.quantiles_ms[i])
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::outcome::Outcome;
    use crate::run::{CheckKind, StepResult, Timing};
    use chrono::TimeZone;

    pub(crate) fn t(minute: i64, second: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(1_700_000_040 + minute * 60 + second, 0)
            .unwrap()
    }

    pub(crate) fn step(name: &str, ms: f64, timed: bool, outcome: Outcome) -> StepResult {
        StepResult {
            name: name.into(),
            action: "click".into(),
            latency_ms: ms,
            timed,
            timing: Timing::InPage,
            navigation: None,
            outcome,
            error: None,
        }
    }

    pub(crate) fn run(check: &str, outcome: Outcome, steps: Vec<StepResult>) -> RunResult {
        let timed: f64 = steps.iter().filter(|s| s.timed).map(|s| s.latency_ms).sum();
        let total: f64 = steps.iter().map(|s| s.latency_ms).sum();
        RunResult {
            run_id: "r1".into(),
            check: check.into(),
            kind: CheckKind::Journey,
            attempt: 1,
            scheduled_at: t(0, 0),
            cancelled: false,
            target: "staging".into(),
            location: "eu".into(),
            outcome,
            started_at: t(0, 0),
            timed_latency_ms: timed,
            total_ms: total,
            session_wait_ms: 0.0,
            session_create_ms: 0.0,
            browser_reused: None,
            session_reused: None,
            emulation: None,
            steps,
            error: None,
            failed_step: None,
            artifacts: vec![],
            page: None,
            trace_id: None,
        }
    }

    #[test]
    fn unknown_names_labels_and_kinds_are_typed_errors() {
        let r = Registry::new();
        assert_eq!(
            r.incr("no_such_metric", &[], 1),
            Err(MetricsError::UnknownMetric("no_such_metric".into()))
        );
        let err = r
            .incr(catalog::CHECK_OVERRUNS.name, &[("check", "a")], 1)
            .unwrap_err();
        assert!(matches!(err, MetricsError::LabelMismatch { .. }), "{err}");
        let err = r
            .incr(
                catalog::CHECK_OVERRUNS.name,
                &[("check", "a"), ("region", "b")],
                1,
            )
            .unwrap_err();
        assert!(matches!(err, MetricsError::LabelMismatch { .. }));
        let err = r
            .set_gauge(catalog::CHECK_RUNS.name, &[], 1.0, t(0, 0))
            .unwrap_err();
        assert!(matches!(err, MetricsError::WrongKind { .. }));
        assert_eq!(
            err.to_string(),
            "metric `synmon.check.runs` is a Counter, it cannot be used as a Gauge"
        );
    }

    #[test]
    fn labels_in_any_order_hit_the_same_series_and_prom_names_work() {
        let r = Registry::new();
        r.incr(
            "synmon_check_overruns_total",
            &[("check", "a"), ("location", "eu")],
            2,
        )
        .unwrap();
        r.incr(
            catalog::CHECK_OVERRUNS.name,
            &[("location", "eu"), ("check", "a")],
            3,
        )
        .unwrap();
        assert_eq!(
            r.counter(
                catalog::CHECK_OVERRUNS.name,
                &[("check", "a"), ("location", "eu")]
            ),
            5
        );
    }

    #[test]
    fn record_run_uses_timed_latency_counts_outcomes_and_skips_cancelled() {
        let r = Registry::new();
        let journey = run(
            "align",
            Outcome::Pass,
            vec![
                step("login", 900.0, false, Outcome::Pass),
                step("save", 120.0, true, Outcome::Pass),
                step("toast", 80.0, true, Outcome::Pass),
            ],
        );
        r.record_run(&journey, t(0, 1)).unwrap();
        let check = [
            ("check", "align"),
            ("location", "eu"),
            ("target", "staging"),
            ("outcome", "pass"),
        ];
        let q = r.quantile(
            catalog::CHECK_LATENCY.name,
            &check,
            Window::M1,
            0.5,
            t(0, 2),
        );
        assert_eq!(q, Some(200.703)); // 200 ms in HDR's bucket, not 1100 ms
        let login = [
            ("check", "align"),
            ("step", "login"),
            ("location", "eu"),
            ("target", "staging"),
            ("outcome", "pass"),
        ];
        assert_eq!(
            r.count(catalog::STEP_LATENCY.name, &login, Window::M1, t(0, 2)),
            1
        );

        // An HTTP check without timed steps: its total.
        let http = run(
            "api",
            Outcome::Error,
            vec![step("get", 42.0, false, Outcome::Error)],
        );
        r.record_run(&http, t(0, 1)).unwrap();
        let api = [
            ("check", "api"),
            ("location", "eu"),
            ("target", "staging"),
            ("outcome", "error"),
        ];
        assert_eq!(
            r.quantile(catalog::CHECK_LATENCY.name, &api, Window::M1, 1.0, t(0, 2)),
            Some(42.239)
        );
        assert_eq!(
            r.gauge(
                catalog::PROBE_UNHEALTHY.name,
                &[("check", "api"), ("location", "eu")]
            ),
            Some(1.0)
        );

        let mut retry = journey.clone();
        retry.attempt = 2;
        retry.outcome = Outcome::Fail;
        r.record_run(&retry, t(0, 3)).unwrap();
        let mut cancelled = journey.clone();
        cancelled.cancelled = true;
        r.record_run(&cancelled, t(0, 4)).unwrap();

        let runs = |outcome, attempt| {
            r.counter(
                catalog::CHECK_RUNS.name,
                &[
                    ("check", "align"),
                    ("location", "eu"),
                    ("outcome", outcome),
                    ("attempt", attempt),
                ],
            )
        };
        assert_eq!(runs("pass", "1"), 1);
        assert_eq!(runs("fail", "2"), 1);
        assert_eq!(
            r.count(catalog::CHECK_LATENCY.name, &check, Window::H1, t(0, 5)),
            1
        );
    }

    #[test]
    fn stale_gauges_read_as_no_data() {
        let r = Registry::new();
        let name = catalog::FEED_PUSH_SUCCESS_RATE.name;
        r.set_gauge(name, &[], 97.5, t(0, 0)).unwrap();
        assert_eq!(r.gauge(name, &[]), Some(97.5));
        r.mark_stale(name, &[]).unwrap();
        assert_eq!(r.gauge(name, &[]), None);
        let snap = r.snapshot(t(0, 1));
        assert!(matches!(
            snap.find(name, &[]).unwrap().value,
            SeriesValue::Gauge {
                value: None,
                updated_at: Some(_)
            }
        ));
        r.set_gauge(name, &[], 96.0, t(1, 0)).unwrap();
        assert_eq!(r.gauge(name, &[]), Some(96.0));

        let by_tenant = catalog::FEED_PUSH_ERROR_RATE.name;
        r.set_gauge(by_tenant, &[("tenant", "t1")], 1.0, t(0, 0))
            .unwrap();
        r.set_gauge(by_tenant, &[("tenant", "t2")], 2.0, t(0, 0))
            .unwrap();
        r.mark_all_stale(by_tenant).unwrap();
        assert_eq!(r.gauge(by_tenant, &[("tenant", "t1")]), None);
        assert_eq!(r.gauge(by_tenant, &[("tenant", "t2")]), None);
    }

    #[test]
    fn snapshot_lists_every_series_with_window_stats() {
        let r = Registry::new();
        let labels = [("check", "a"), ("location", "eu")];
        for ms in 1..=100 {
            r.record(
                catalog::SCHEDULE_LATENESS.name,
                &labels,
                f64::from(ms),
                t(0, 0),
            )
            .unwrap();
        }
        r.incr(catalog::CHECK_OVERRUNS.name, &labels, 1).unwrap();
        let snap = r.snapshot(t(3, 0));
        assert_eq!(snap.series.len(), 2);
        let s = snap
            .find("synmon_schedule_lateness_seconds", &labels)
            .unwrap();
        let SeriesValue::Distribution(d) = &s.value else {
            panic!("not a distribution")
        };
        assert_eq!(d.total_count, 100);
        assert_eq!(d.total_sum_ms, 5050.0);
        assert_eq!(d.window(Window::M1).unwrap().count, 0);
        assert_eq!(d.window(Window::M1).unwrap().quantile(0.95), None);
        let m5 = d.window(Window::M5).unwrap();
        assert_eq!(m5.count, 100);
        assert_eq!(m5.quantile(0.95), Some(95.231));
    }

    #[test]
    fn concurrent_recording_from_many_threads() {
        let r = Registry::new();
        std::thread::scope(|scope| {
            for i in 0..4 {
                let r = r.clone();
                scope.spawn(move || {
                    let check = format!("c{}", i % 2);
                    for n in 0..1000 {
                        r.record(
                            catalog::SCHEDULE_LATENESS.name,
                            &[("check", &check), ("location", "eu")],
                            f64::from(n % 50),
                            t(0, 0),
                        )
                        .unwrap();
                    }
                });
            }
        });
        for c in ["c0", "c1"] {
            assert_eq!(
                r.count(
                    catalog::SCHEDULE_LATENESS.name,
                    &[("check", c), ("location", "eu")],
                    Window::M1,
                    t(0, 0)
                ),
                2000
            );
        }
    }

    fn single(check: &str, name: &str, ms: f64, outcome: Outcome) -> RunResult {
        run(check, outcome, vec![step(name, ms, true, outcome)])
    }

    fn step_labels<'a>(
        check: &'a str,
        name: &'a str,
        outcome: &'a str,
    ) -> [(&'static str, &'a str); 5] {
        [
            ("check", check),
            ("step", name),
            ("location", "eu"),
            ("target", "staging"),
            ("outcome", outcome),
        ]
    }

    fn check_labels<'a>(check: &'a str, outcome: &'a str) -> [(&'static str, &'a str); 4] {
        [
            ("check", check),
            ("location", "eu"),
            ("target", "staging"),
            ("outcome", outcome),
        ]
    }

    #[test]
    fn the_step_carrying_a_runs_latency_follows_the_check_series_until_they_differ() {
        let r = Registry::new();
        for i in 0..100 {
            r.record_run(
                &single("api", "GET /health", 1.0 + f64::from(i), Outcome::Pass),
                t(0, i64::from(i % 60)),
            )
            .unwrap();
        }
        let m = r.histogram_memory();
        assert_eq!((m.series, m.following), (2, 1), "the step series follows");
        let step = step_labels("api", "GET /health", "pass");
        let check = check_labels("api", "pass");
        let now = t(1, 30);
        for q in [0.0, 0.5, 0.99, 1.0] {
            assert_eq!(
                r.quantile(catalog::STEP_LATENCY.name, &step, Window::M5, q, now),
                r.quantile(catalog::CHECK_LATENCY.name, &check, Window::M5, q, now)
            );
        }
        assert_eq!(
            r.count(catalog::STEP_LATENCY.name, &step, Window::M5, now),
            100
        );

        // An overrun's skipped slot goes to the check series only: the step series takes a
        // copy of what it held and goes on alone.
        r.record(catalog::CHECK_LATENCY.name, &check, 5_000.0, t(1, 0))
            .unwrap();
        assert_eq!(r.histogram_memory().following, 0);
        assert_eq!(
            r.count(catalog::STEP_LATENCY.name, &step, Window::M5, now),
            100
        );
        assert_eq!(
            r.count(catalog::CHECK_LATENCY.name, &check, Window::M5, now),
            101
        );
        r.record_run(&single("api", "GET /health", 7.0, Outcome::Pass), t(1, 1))
            .unwrap();
        assert_eq!(
            r.count(catalog::STEP_LATENCY.name, &step, Window::M5, now),
            101
        );
        assert_eq!(
            r.count(catalog::CHECK_LATENCY.name, &check, Window::M5, now),
            102
        );
    }

    #[test]
    fn a_step_series_that_starts_following_takes_the_checks_replayed_history() {
        let r = Registry::new();
        let check = check_labels("api", "pass");
        // What a start replays from the store: check latencies, no steps.
        for i in 0..30 {
            r.record(catalog::CHECK_LATENCY.name, &check, 40.0, t(0, i))
                .unwrap();
        }
        r.record_run(&single("api", "GET /health", 2.0, Outcome::Pass), t(0, 40))
            .unwrap();
        let step = step_labels("api", "GET /health", "pass");
        assert_eq!(r.histogram_memory().following, 1);
        assert_eq!(
            r.count(catalog::STEP_LATENCY.name, &step, Window::M5, t(1, 0)),
            31
        );
    }

    #[test]
    fn a_step_not_carrying_the_runs_latency_or_outcome_never_follows() {
        let r = Registry::new();
        // Two timed steps: the check latency is their sum, neither step's.
        let journey = run(
            "align",
            Outcome::Pass,
            vec![
                step("open", 10.0, true, Outcome::Pass),
                step("save", 20.0, true, Outcome::Pass),
            ],
        );
        r.record_run(&journey, t(0, 1)).unwrap();
        // One step, but the run failed after it passed (its outcome label differs).
        let mut failed = single("api", "GET /health", 3.0, Outcome::Pass);
        failed.outcome = Outcome::Fail;
        r.record_run(&failed, t(0, 2)).unwrap();
        let m = r.histogram_memory();
        assert_eq!((m.series, m.following), (5, 0));
        assert_eq!(
            r.count(
                catalog::STEP_LATENCY.name,
                &step_labels("api", "GET /health", "pass"),
                Window::M1,
                t(0, 3)
            ),
            1
        );
    }

    /// Random runs, overruns and replayed values into a registry whose step series follow
    /// their checks, and into plain histograms fed every point as a registry without followers
    /// would (a step series created by a run whose check latency it carries starts as a copy of
    /// the check's): every window of every series answers alike, to the bit.
    #[test]
    fn followers_answer_exactly_like_series_recorded_apart() {
        use crate::metrics::window::tests::Lcg;
        type Key = (&'static str, Vec<(&'static str, String)>);
        fn key(def: &'static MetricDef, labels: &[(&str, &str)]) -> Key {
            (
                def.name,
                labels
                    .iter()
                    .map(|(k, v)| (catalog_label(def, k), v.to_string()))
                    .collect(),
            )
        }
        fn catalog_label(def: &'static MetricDef, k: &str) -> &'static str {
            def.labels
                .iter()
                .find(|l| **l == k)
                .expect("a catalog label")
        }
        for seed in 1..=8u64 {
            let mut rng = Lcg(seed);
            let r = Registry::new();
            let mut plain: BTreeMap<Key, WindowedHistogram> = BTreeMap::new();
            let mut second = 0i64;
            let (mut most_following, mut ended) = (0, false);
            let mut previous = 0;
            for _ in 0..3_000 {
                let following = r.histogram_memory().following;
                ended |= following < previous;
                most_following = most_following.max(following);
                previous = following;
                second += rng.below(90) as i64;
                let at = t(0, second);
                let check = ["a", "b", "c"][rng.below(3) as usize];
                let ms = |rng: &mut Lcg| (1 + rng.below(5_000)) as f64 / 7.0;
                let outcome = [Outcome::Pass, Outcome::Pass, Outcome::Fail][rng.below(3) as usize];
                let kind = rng.below(10);
                if kind == 0 {
                    // An overrun's skipped slot, or a replayed run: the check latency alone.
                    let v = ms(&mut rng);
                    let labels = check_labels(check, outcome.as_str());
                    r.record(catalog::CHECK_LATENCY.name, &labels, v, at)
                        .unwrap();
                    plain
                        .entry(key(&catalog::CHECK_LATENCY, &labels))
                        .or_default()
                        .record(v, at);
                    continue;
                }
                let steps = match kind {
                    1 | 2 => vec![
                        step("open", ms(&mut rng), true, outcome),
                        step("save", ms(&mut rng), true, outcome),
                    ],
                    3 => vec![
                        step("login", ms(&mut rng), false, Outcome::Pass),
                        step("GET /x", ms(&mut rng), true, outcome),
                    ],
                    4 => vec![step("GET /y", ms(&mut rng), true, Outcome::Pass)],
                    _ => vec![step("GET /x", ms(&mut rng), true, outcome)],
                };
                let run = run(check, outcome, steps);
                r.record_run(&run, at).unwrap();
                // The reference: every point into its own histogram.
                let metrics = RunMetrics::of(&run);
                let mut points: Vec<(Key, f64)> = Vec::new();
                metrics
                    .try_for_each_point(|p| {
                        if let PointValue::Latency(v) = p.value {
                            points.push((key(p.def, p.labels), v));
                        }
                        Ok::<(), ()>(())
                    })
                    .unwrap();
                let (check_key, check_ms) = points[0].clone();
                let before = plain.get(&check_key).cloned().unwrap_or_default();
                let mut adopted = false;
                for (k, v) in &points[1..] {
                    let carries =
                        v.to_bits() == check_ms.to_bits() && k.1.last() == check_key.1.last();
                    if !adopted && carries && !plain.contains_key(k) {
                        plain.insert(k.clone(), before.clone());
                    }
                    adopted |= carries;
                    plain.entry(k.clone()).or_default().record(*v, at);
                }
                plain.entry(check_key).or_default().record(check_ms, at);
                if rng.below(50) == 0 {
                    r.maintain(at);
                    for h in plain.values_mut() {
                        h.advance(at);
                    }
                }
            }
            let mut compared = 0;
            for def in [&catalog::CHECK_LATENCY, &catalog::STEP_LATENCY] {
                r.for_each_distribution(def.name, |labels, h| {
                    let p = &plain[&key(def, labels)];
                    for minutes_after in [0i64, 3, 59, 200] {
                        let now = t(0, second) + chrono::Duration::minutes(minutes_after);
                        for w in [Window::M1, Window::M5, Window::H1, Window::H24, Window::D30] {
                            assert_eq!(
                                h.count(w, now),
                                p.count(w, now),
                                "seed {seed} {labels:?} {w:?}"
                            );
                            assert_eq!(h.count_le(w, now, 300_000), p.count_le(w, now, 300_000));
                            for q in [0.5, 0.95, 0.99] {
                                assert_eq!(h.quantile(w, q, now), p.quantile(w, q, now));
                            }
                        }
                    }
                    assert_eq!(h.total_count(), p.total_count());
                    assert_eq!(h.total_sum_ms().to_bits(), p.total_sum_ms().to_bits());
                    assert_eq!(h.first_at(), p.first_at());
                    compared += 1;
                });
            }
            assert_eq!(compared, plain.len(), "seed {seed}: the same series");
            assert!(
                most_following > 0 && ended,
                "seed {seed}: followers began and ended"
            );
        }
    }
}
