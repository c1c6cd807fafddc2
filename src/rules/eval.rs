//! The pure evaluator: rules + metrics at `now` + previous state -> transitions.
//!
//! States as in Prometheus: inactive -> pending (condition true, waiting `for`) -> firing ->
//! resolved. A pending alert whose condition clears is dropped without a transition.
//! `keep_firing_for` holds a firing alert after its condition clears (and restarts whenever the
//! condition returns); `recover_after` asks for that many consecutive healthy evaluations
//! before resolving; flap damping holds a flapping alert firing until it is stable.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::fasthash::{FastMap, FastSet};
use super::model::*;
use super::slo::{BurnRates, fmt_duration};
use super::source::{Data, Dist, Interner, SeriesData, Source};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    Inactive,
    Pending,
    Firing,
    Resolved,
}

/// One active (pending or firing) alert.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    pub rule: String,
    pub fingerprint: String,
    pub labels: Labels,
    pub phase: Phase,
    /// When the condition first held (pending started).
    pub active_at: DateTime<Utc>,
    pub fired_at: Option<DateTime<Utc>>,
    /// Pending time accrued over evaluations (downtime does not count), ms.
    pub pending_ms: u64,
    pub last_eval: DateTime<Utc>,
    /// The last evaluation at which the condition held (for `keep_firing_for`).
    pub last_true_at: DateTime<Utc>,
    pub healthy_streak: u32,
    pub value: Option<f64>,
    pub annotations: BTreeMap<String, String>,
    pub flapping: bool,
}

/// Everything the evaluator remembers; persist it between evaluations and restarts.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct State {
    /// Active alerts by fingerprint.
    pub alerts: BTreeMap<String, Alert>,
    /// Recent state changes (firing, resolved) per fingerprint, for flap damping.
    pub changes: BTreeMap<String, Vec<DateTime<Utc>>>,
    /// Alerts of rules with a resolve window that resolved, by fingerprint: until the long
    /// window has forgotten the failure they resolved from, they are judged over the resolve
    /// window, so the same evidence does not fire them again.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub resolved: BTreeMap<String, Resolved>,
}

/// When an alert of a rule with a resolve window resolved.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Resolved {
    pub rule: String,
    pub labels: Labels,
    pub at: DateTime<Utc>,
}

/// A state change worth telling someone about.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Transition {
    pub fingerprint: String,
    pub rule: String,
    pub from: Phase,
    pub to: Phase,
    pub at: DateTime<Utc>,
    pub active_at: DateTime<Utc>,
    pub value: Option<f64>,
    pub labels: Labels,
    pub annotations: BTreeMap<String, String>,
    pub severity: String,
    pub route: Option<String>,
}

/// FNV-1a 64 over the alert name and its sorted labels, as 16 hex digits: stable across
/// processes, versions and platforms.
pub fn fingerprint(rule: &str, labels: &Labels) -> String {
    Fingerprint::of(rule, labels.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .as_str()
        .to_string()
}

/// A [`fingerprint`] on the stack: the evaluator computes one per group and evaluation, and
/// most groups have no alert to look up with it.
pub(super) struct Fingerprint {
    hex: [u8; 16],
    /// The number the hex digits spell.
    hash: u64,
}

/// FNV-1a 64 as [`Fingerprint`] applies it: each part followed by a 0xff byte.
#[derive(Clone, Copy)]
struct Fnv(u64);

impl Fnv {
    fn new() -> Fnv {
        Fnv(0xcbf2_9ce4_8422_2325)
    }

    fn eat(&mut self, part: &str) {
        let mut h = self.0;
        for b in part.as_bytes().iter().chain(&[0xff]) {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
        self.0 = h;
    }

    /// The hash continued over `labels` (sorted by name), as a fingerprint.
    fn finish<'a>(mut self, labels: impl Iterator<Item = (&'a str, &'a str)>) -> Fingerprint {
        for (k, v) in labels {
            self.eat(k);
            self.eat(v);
        }
        let h = self.0;
        Fingerprint {
            hex: hex16(h).0,
            hash: h,
        }
    }
}

impl Fingerprint {
    /// Over the alert name and its labels, which `labels` yields sorted by name.
    pub(super) fn of<'a>(
        rule: &str,
        labels: impl Iterator<Item = (&'a str, &'a str)>,
    ) -> Fingerprint {
        let mut h = Fnv::new();
        h.eat(rule);
        h.finish(labels)
    }

    pub(super) fn as_str(&self) -> &str {
        std::str::from_utf8(&self.hex).expect("hex digits")
    }

    /// The number the hex digits spell, for [`KnownFingerprints`].
    pub(super) fn hash(&self) -> u64 {
        self.hash
    }
}

/// A superset of the fingerprints of `state.alerts`, as numbers: what the evaluator asks
/// before looking a group's fingerprint up in the alerts' `BTreeMap` (a dozen 16-byte string
/// comparisons), since most groups of most evaluations have no alert. A key that is a
/// fingerprint is in the set (every computed fingerprint is 16 lowercase hex digits, and the
/// set holds every such key of the state, plus every fingerprint an evaluation handed to
/// `step`, which is the only place alerts are added); a number in the set may have no alert
/// (removed since), which the map lookup then tells.
pub(super) struct KnownFingerprints(FastSet<u64>);

impl KnownFingerprints {
    pub(super) fn of(state: &State) -> KnownFingerprints {
        KnownFingerprints(
            state
                .alerts
                .keys()
                .filter(|k| k.len() == 16)
                .filter_map(|k| u64::from_str_radix(k, 16).ok())
                .collect(),
        )
    }

    /// Whether `state` holds an alert of `fp` (the set first: most groups have none).
    #[cfg(test)]
    pub(super) fn holds(&self, fp: &Fingerprint, state: &State) -> bool {
        self.find(fp, state).is_some()
    }

    /// The alert of `fp` in `state` (the set asked first: most groups have none).
    pub(super) fn find<'s>(&self, fp: &Fingerprint, state: &'s State) -> Option<&'s Alert> {
        if self.0.contains(&fp.hash()) {
            state.alerts.get(fp.as_str())
        } else {
            None
        }
    }

    /// Called with every fingerprint handed to `step`.
    pub(super) fn add(&mut self, fp: &Fingerprint) {
        self.0.insert(fp.hash());
    }
}

/// The key of an alert in [`State::alerts`], kept across an evaluation without copying it:
/// a fingerprint (16 lowercase hex digits) as its number, any other key as itself.
pub(super) enum AlertKey {
    Fingerprint(u64),
    Other(String),
}

impl AlertKey {
    pub(super) fn of(key: &str) -> AlertKey {
        let lower_hex = |b: &u8| b.is_ascii_digit() || (b'a'..=b'f').contains(b);
        match u64::from_str_radix(key, 16) {
            Ok(n) if key.len() == 16 && key.bytes().all(|b| lower_hex(&b)) => {
                AlertKey::Fingerprint(n)
            }
            _ => AlertKey::Other(key.to_string()),
        }
    }

    pub(super) fn find<'a>(&self, alerts: &'a BTreeMap<String, Alert>) -> Option<&'a Alert> {
        match self {
            AlertKey::Fingerprint(n) => alerts.get(hex16(*n).as_str()),
            AlertKey::Other(k) => alerts.get(k),
        }
    }
}

/// A number as the 16 lowercase hex digits of a fingerprint.
fn hex16(h: u64) -> Hex16 {
    let mut hex = [0u8; 16];
    for (i, d) in hex.iter_mut().enumerate() {
        *d = b"0123456789abcdef"[(h >> (60 - 4 * i)) as usize & 0xf];
    }
    Hex16(hex)
}

/// [`hex16`]'s digits.
struct Hex16([u8; 16]);

impl Hex16 {
    fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).expect("hex digits")
    }
}

/// A group's key as read from the series (borrowed) or from an alert's labels (a vanished
/// group).
enum Key<'k> {
    Read(&'k [&'k str]),
    Vanished(Vec<&'k str>),
}

impl<'k> std::ops::Deref for Key<'k> {
    type Target = [&'k str];
    fn deref(&self) -> &[&'k str] {
        match self {
            Key::Read(k) => k,
            Key::Vanished(k) => k,
        }
    }
}

/// Numbers as people write them: `400`, `0.02`, `14.4`.
pub fn fmt_num(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        return format!("{}", v as i64);
    }
    let s = format!("{v:.4}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// One group's verdict at this evaluation.
struct Obs<'k> {
    /// The group's value of each of the rule's `by` labels, in name order ([`ByLabels`]).
    key: Key<'k>,
    /// `None`: no data.
    value: Option<f64>,
    failing: bool,
    threshold: f64,
    window: Duration,
    notes: BTreeMap<String, String>,
}

/// One matcher of a ratio's subsets, on the source's numbers
/// ([`LabelIds`](super::source::LabelIds)).
struct IdMatcher<'r> {
    m: &'r Matcher,
    /// The label's name id; `None`: no series has it (every series reads "").
    name: Option<u32>,
    /// `=` and `!=`: the value's rank; `None`: no series has the value.
    rank: Option<u32>,
    /// Regex verdicts by value rank, for the first [`MEMO`] distinct values.
    memo: Vec<(u32, bool)>,
}

/// How many distinct values a regex matcher remembers its verdict for.
const MEMO: usize = 16;

/// Regex verdicts of one evaluation, shared by its rules: whether the anchored regex of a
/// matcher's pattern matches the value of a rank, by (pattern, rank). Rules repeat the same
/// few patterns (`outcome: "=~pass|fail"` in every ratio rule), each over the same few values:
/// a regex per pattern and value instead of per rule and value. A matcher's regex is the one
/// [`Matcher::parse`] builds from its pattern (the only way one is made), so equal patterns
/// give equal verdicts; `!~` reads the verdict negated.
pub(super) type Verdicts<'r> = FastMap<(&'r str, u32), bool>;

impl<'r> IdMatcher<'r> {
    fn matches(&mut self, s: &SeriesData, verdicts: &mut Verdicts<'r>) -> bool {
        let Some(ids) = &s.ids else {
            return self.m.matches(&s.labels);
        };
        let v = self.name.map_or(0, |n| ids.value(n));
        match self.m.op {
            MatchOp::Eq => self.rank == Some(v),
            MatchOp::Ne => self.rank != Some(v),
            MatchOp::Re | MatchOp::NotRe => {
                if let Some((_, hit)) = self.memo.iter().find(|(r, _)| *r == v) {
                    return *hit;
                }
                // Equal ranks are equal strings: the verdict holds for every series with it.
                let negated = self.m.op == MatchOp::NotRe;
                let hit = match verdicts.get(&(self.m.value.as_str(), v)) {
                    Some(is_match) => *is_match != negated,
                    None => {
                        let hit = self.m.matches(&s.labels);
                        verdicts.insert((self.m.value.as_str(), v), hit != negated);
                        hit
                    }
                };
                if self.memo.len() < MEMO {
                    self.memo.push((v, hit));
                }
                hit
            }
        }
    }
}

/// A ratio rule's numerator and denominator compiled against the source's numbering, once per
/// rule and evaluation: equality matchers compare ranks, a regex runs once per distinct value
/// (instead of a label scan and a string compare or regex per series and matcher), and once
/// per pattern and value over the rules sharing `verdicts`.
pub(super) struct RatioMatch<'r> {
    numerator: Vec<IdMatcher<'r>>,
    denominator: Vec<IdMatcher<'r>>,
    verdicts: Verdicts<'r>,
}

impl<'r> RatioMatch<'r> {
    /// With verdicts of its own.
    #[cfg(test)]
    pub(super) fn new(th: &'r Threshold, interner: &dyn Interner) -> RatioMatch<'r> {
        Self::with_verdicts(th, interner, Verdicts::default())
    }

    /// Reading and adding to `verdicts` (of the same source, as it is while borrowed), which
    /// [`RatioMatch::into_verdicts`] hands back for the next rule.
    pub(super) fn with_verdicts(
        th: &'r Threshold,
        interner: &dyn Interner,
        verdicts: Verdicts<'r>,
    ) -> RatioMatch<'r> {
        let compile = |ms: &'r Matchers| {
            ms.0.iter()
                .map(|m| IdMatcher {
                    m,
                    name: interner.name_id(&m.label),
                    rank: match m.op {
                        MatchOp::Eq | MatchOp::Ne => interner.value_rank(&m.value),
                        MatchOp::Re | MatchOp::NotRe => None,
                    },
                    memo: Vec::new(),
                })
                .collect()
        };
        RatioMatch {
            numerator: compile(&th.numerator),
            denominator: compile(&th.denominator),
            verdicts,
        }
    }

    pub(super) fn into_verdicts(self) -> Verdicts<'r> {
        self.verdicts
    }
}

/// The rule's aggregate over `series`; `span` is the time the data covers (a rate is per
/// second of it).
#[cfg(test)]
pub(super) fn aggregate(th: &Threshold, series: &[&SeriesData], span: Duration) -> Option<f64> {
    aggregate_in(th, series, span, &mut None)
}

/// The rule's aggregate over `series` (see `aggregate`), with the ratio's subsets matched by
/// `ratio` when compiled: the same verdicts as the matchers on the label strings.
pub(super) fn aggregate_in(
    th: &Threshold,
    series: &[&SeriesData],
    span: Duration,
    ratio: &mut Option<RatioMatch>,
) -> Option<f64> {
    // A single member's distribution is read where it is, not copied.
    let dist = || {
        let mut acc: Option<Cow<Dist>> = None;
        for s in series {
            if let Data::Distribution(d) = &s.data {
                match &mut acc {
                    None => acc = Some(Cow::Borrowed(d)),
                    Some(a) => a.to_mut().merge(d),
                }
            }
        }
        acc
    };
    let count_of = |d: &Data| match d {
        Data::Counter { increase } => *increase,
        Data::Distribution(d) => d.count() as f64,
        Data::Gauge { .. } => 0.0,
    };
    let gauges = || {
        series.iter().filter_map(|s| match s.data {
            Data::Gauge { last } => last,
            _ => None,
        })
    };
    match th.aggregate {
        a @ (Aggregate::P50 | Aggregate::P95 | Aggregate::P99) => {
            dist()?.quantile(a.quantile().unwrap_or(0.5))
        }
        Aggregate::Avg => match dist() {
            Some(d) => d.mean(),
            None => {
                let v: Vec<f64> = gauges().collect();
                (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
            }
        },
        Aggregate::Min => dist()
            .and_then(|d| d.min())
            .or_else(|| gauges().reduce(f64::min)),
        Aggregate::Max => dist()
            .and_then(|d| d.max())
            .or_else(|| gauges().reduce(f64::max)),
        Aggregate::Last => gauges().reduce(|a, b| th.op.worse(a, b)),
        Aggregate::Rate => {
            if series.is_empty() {
                return None;
            }
            Some(
                series.iter().map(|s| count_of(&s.data)).sum::<f64>() / span.as_secs_f64().max(1.0),
            )
        }
        Aggregate::Ratio => {
            // One pass, each series' denominator matched once: the same two sums, added in
            // the same order, as summing the denominator's series and then the numerator's.
            // Starting from the neutral element `Sum` starts from (-0.0 in current Rust), so
            // an empty numerator reads as the same zero it did.
            let zero: f64 = std::iter::empty::<f64>().sum();
            let (mut d, mut n) = (zero, zero);
            for s in series {
                let den = match ratio.as_mut() {
                    Some(r) => r
                        .denominator
                        .iter_mut()
                        .all(|m| m.matches(s, &mut r.verdicts)),
                    None => th.denominator.matches(&s.labels),
                };
                if !den {
                    continue;
                }
                let x = count_of(&s.data);
                d += x;
                // The numerator counts what both match (`denominator.and(numerator)`).
                let in_numerator = match ratio.as_mut() {
                    Some(r) => r
                        .numerator
                        .iter_mut()
                        .all(|m| m.matches(s, &mut r.verdicts)),
                    None => th.numerator.matches(&s.labels),
                };
                if in_numerator {
                    n += x;
                }
            }
            (d > 0.0).then(|| n / d)
        }
    }
}

/// A rule's group labels (`by`) in name order, each once: the order in which a map from group
/// labels to members sorts the groups, so a group is known by its values alone (its key).
pub(super) struct ByLabels<'r>(pub(super) Vec<&'r str>);

impl<'r> ByLabels<'r> {
    pub(super) fn of(rule: &'r Rule) -> ByLabels<'r> {
        let mut names: Vec<&str> = rule.by.iter().map(String::as_str).collect();
        names.sort_unstable();
        names.dedup();
        ByLabels(names)
    }

    /// The key of the group `labels` belongs to; a missing label reads as "".
    pub(super) fn key<'a>(&self, labels: &'a Labels) -> Vec<&'a str> {
        self.0.iter().map(|n| label_value(labels, n)).collect()
    }

    /// The group's labels, as `by` names them.
    pub(super) fn labels(&self, key: &[&str]) -> Labels {
        self.0
            .iter()
            .zip(key)
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect()
    }
}

/// A rule's `by` labels as the source numbers them ([`Interner::name_id`]; `None` for a name
/// no series has: every series reads it as ""), with the numbering to read values back.
pub(super) struct ByIds<'i> {
    names: Vec<Option<u32>>,
    interner: &'i dyn Interner,
}

impl<'i> ByIds<'i> {
    pub(super) fn of(by: &ByLabels, interner: &'i dyn Interner) -> ByIds<'i> {
        ByIds {
            names: by.0.iter().map(|n| interner.name_id(n)).collect(),
            interner,
        }
    }
}

/// `v`'s allocation, emptied, as a vector of another element type of the same size and
/// alignment (a borrow of another lifetime, a plain word standing in for one): the standard
/// library collects a vector's own `into_iter` into the allocation it came from. (Were that
/// ever not so, this would allocate a new vector: slower, never wrong.)
fn recycle<T, U>(mut v: Vec<T>) -> Vec<U> {
    v.clear();
    v.into_iter()
        .map(|_| -> U { unreachable!("the vector was emptied") })
        .collect()
}

/// The vectors [`Groups`] are built in, handed from one rule to the next (empty between two):
/// grouping a rule's series took five vectors, allocated and freed per rule and evaluation
/// (50,000 per evaluation of 10,000 rules). Borrowing ones are kept as words of the same size.
#[derive(Default)]
pub(super) struct GroupBuffers {
    raw_ids: Vec<u32>,
    /// `&str`s.
    raw_strs: Vec<(usize, usize)>,
    order: Vec<usize>,
    bounds: Vec<(usize, usize)>,
    /// `&str`s.
    keys: Vec<(usize, usize)>,
    /// `&SeriesData`s.
    members: Vec<usize>,
}

/// Series grouped by a rule's `by` labels without copying a label: groups in key order (as a
/// map keyed by the group's labels orders them), each group's members in the source's order.
pub(super) struct Groups<'d, 's> {
    width: usize,
    /// Each group's key, `width` values apiece, in group order.
    keys: Vec<&'d str>,
    members: Vec<&'d SeriesData<'s>>,
    /// Each group's members: `members[start..end]`.
    bounds: Vec<(usize, usize)>,
    /// The buffers built in, handed back by [`Groups::recycle`].
    raw_ids: Vec<u32>,
    raw_strs: Vec<(usize, usize)>,
    order: Vec<usize>,
}

impl<'d, 's> Groups<'d, 's> {
    /// Groups by the label strings; by their numbers when `ids` is given and every series has
    /// them ([`Source::label_ids`]): the same groups, in the same order (ranks order as the
    /// strings do), with integer compares.
    #[cfg(test)]
    pub(super) fn new(
        by: &ByLabels,
        ids: Option<&ByIds<'d>>,
        series: &'d [SeriesData<'s>],
    ) -> Groups<'d, 's> {
        Self::new_in(by, ids, series, &mut GroupBuffers::default())
    }

    /// [`Groups::new`] built in `buffers`' vectors (left empty; [`Groups::recycle`] gives them
    /// back).
    pub(super) fn new_in(
        by: &ByLabels,
        ids: Option<&ByIds<'d>>,
        series: &'d [SeriesData<'s>],
        buffers: &mut GroupBuffers,
    ) -> Groups<'d, 's> {
        match ids {
            Some(ids) if series.iter().all(|s| s.ids.is_some()) => {
                Self::by_ids(by, ids, series, buffers)
            }
            _ => Self::by_strings(by, series, buffers),
        }
    }

    /// Hands the vectors back, emptied, for the next rule's groups.
    pub(super) fn recycle(self, buffers: &mut GroupBuffers) {
        buffers.raw_ids = recycle(self.raw_ids);
        buffers.raw_strs = recycle(self.raw_strs);
        buffers.order = recycle(self.order);
        buffers.bounds = recycle(self.bounds);
        buffers.keys = recycle(self.keys);
        buffers.members = recycle(self.members);
    }

    fn by_strings(
        by: &ByLabels,
        series: &'d [SeriesData<'s>],
        buffers: &mut GroupBuffers,
    ) -> Groups<'d, 's> {
        let width = by.0.len();
        let mut raw: Vec<&'d str> = recycle(std::mem::take(&mut buffers.raw_strs));
        raw.reserve(series.len() * width);
        for s in series {
            for n in &by.0 {
                raw.push(label_value(&s.labels, n));
            }
        }
        let key = |i: usize| &raw[i * width..(i + 1) * width];
        let mut order = recycle(std::mem::take(&mut buffers.order));
        order.extend(0..series.len());
        // Stable: members keep the source's order within their group.
        order.sort_by(|a, b| key(*a).cmp(key(*b)));
        let mut groups = Self::from_order(
            width,
            order,
            |a, b| key(a) == key(b),
            series,
            |i| {
                let labels: &'d Labels = &series[i].labels;
                by.0.iter().map(move |n| label_value(labels, n))
            },
            buffers,
        );
        groups.raw_strs = recycle(raw);
        groups
    }

    fn by_ids(
        by: &ByLabels,
        ids: &ByIds<'d>,
        series: &'d [SeriesData<'s>],
        buffers: &mut GroupBuffers,
    ) -> Groups<'d, 's> {
        let width = by.0.len();
        let mut raw = recycle(std::mem::take(&mut buffers.raw_ids));
        raw.reserve(series.len() * width);
        for s in series {
            let labels = s.ids.expect("checked by the caller");
            for n in &ids.names {
                raw.push(n.map_or(0, |n| labels.value(n)));
            }
        }
        let key = |i: usize| &raw[i * width..(i + 1) * width];
        let mut order = recycle(std::mem::take(&mut buffers.order));
        order.extend(0..series.len());
        // Stable: members keep the source's order within their group. One label (the usual
        // `by`) compares as a number rather than as a slice.
        if width == 1 {
            order.sort_by_key(|i| raw[*i]);
        } else {
            order.sort_by(|a, b| key(*a).cmp(key(*b)));
        }
        let interner = ids.interner;
        let mut groups = Self::from_order(
            width,
            order,
            |a, b| key(a) == key(b),
            series,
            |i| key(i).iter().map(move |r| interner.value(*r)),
            buffers,
        );
        groups.raw_ids = recycle(raw);
        groups
    }

    /// Groups from the members in group order (`same`: two series in one group), each
    /// group's key (`key_of` a member) read from its first member.
    fn from_order<K: Iterator<Item = &'d str>>(
        width: usize,
        order: Vec<usize>,
        same: impl Fn(usize, usize) -> bool,
        series: &'d [SeriesData<'s>],
        key_of: impl Fn(usize) -> K,
        buffers: &mut GroupBuffers,
    ) -> Groups<'d, 's> {
        let mut bounds = recycle(std::mem::take(&mut buffers.bounds));
        let mut keys = recycle(std::mem::take(&mut buffers.keys));
        for (pos, i) in order.iter().enumerate() {
            if pos == 0 || !same(order[pos - 1], *i) {
                bounds.push((pos, pos));
                keys.extend(key_of(*i));
            }
            if let Some(last) = bounds.last_mut() {
                last.1 = pos + 1;
            }
        }
        let mut members = recycle(std::mem::take(&mut buffers.members));
        members.extend(order.iter().map(|i| &series[*i]));
        Groups {
            width,
            keys,
            members,
            bounds,
            raw_ids: Vec::new(),
            raw_strs: Vec::new(),
            order,
        }
    }

    pub(super) fn len(&self) -> usize {
        self.bounds.len()
    }

    pub(super) fn key(&self, group: usize) -> &[&'d str] {
        let start = group * self.width;
        &self.keys[start..start + self.width]
    }

    pub(super) fn members(&self, group: usize) -> &[&'d SeriesData<'s>] {
        let (start, end) = self.bounds[group];
        &self.members[start..end]
    }

    pub(super) fn find(&self, key: &[&str]) -> Option<usize> {
        let n = self.bounds.len();
        // Groups are in key order: a binary search over their keys.
        let (mut lo, mut hi) = (0, n);
        while lo < hi {
            let mid = (lo + hi) / 2;
            match self.key(mid).cmp(key) {
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => hi = mid,
                std::cmp::Ordering::Equal => return Some(mid),
            }
        }
        None
    }
}

/// How much of a window the source has data for, under a rule's `min_coverage`.
#[derive(Debug, Clone, Copy)]
struct Span {
    /// The window asked for.
    window: Duration,
    /// The part of it with data (`window` when fully covered or not asked).
    covered: Duration,
    min_coverage: Option<f64>,
}

impl Span {
    fn of(
        source: &dyn Source,
        metric: &'static crate::metrics::catalog::MetricDef,
        matchers: &Matchers,
        window: Duration,
        min_coverage: Option<f64>,
        now: DateTime<Utc>,
    ) -> Span {
        let covered = match min_coverage.and_then(|_| source.data_since(metric, matchers)) {
            Some(first) => since(now, first).min(window),
            None => window,
        };
        Span {
            window,
            covered,
            min_coverage,
        }
    }

    fn coverage(&self) -> f64 {
        if self.window.is_zero() {
            return 1.0;
        }
        (self.covered.as_secs_f64() / self.window.as_secs_f64()).min(1.0)
    }

    /// Too little data to judge the window at all.
    fn too_short(&self) -> bool {
        self.min_coverage.is_some_and(|m| self.coverage() < m)
    }

    fn partial(&self) -> bool {
        self.covered < self.window
    }

    /// "12m of 1h, min_coverage 0.5": why the window is not judged.
    fn refusal(&self) -> String {
        format!(
            "no data ({} of {}, min_coverage {})",
            fmt_duration(whole(self.covered)),
            fmt_duration(self.window),
            fmt_num(self.min_coverage.unwrap_or(0.0))
        )
    }

    /// "over the 12m of data since start (window 1h)": what a partly covered value is over.
    fn caveat(&self) -> String {
        format!(
            "over the {} of data since start (window {})",
            fmt_duration(whole(self.covered)),
            fmt_duration(self.window)
        )
    }

    /// The span a value is over, as `{{ window }}` shows it.
    fn shown(&self) -> Duration {
        if self.partial() {
            whole(self.covered)
        } else {
            self.window
        }
    }
}

/// A span as people read it: whole minutes from a minute on, whole seconds below.
fn whole(d: Duration) -> Duration {
    let s = d.as_secs();
    Duration::from_secs(if s >= 60 { s - s % 60 } else { s })
}

/// "checks", "locations", "statuses": the values of a label, counted.
pub(crate) fn plural(label: &str) -> String {
    if label.ends_with('s') {
        format!("{label}es")
    } else {
        format!("{label}s")
    }
}

/// One group's value and verdict over `members`, with `across` when the rule has it.
fn judge(
    th: &Threshold,
    members: &[&SeriesData],
    span: Duration,
    notes: &mut BTreeMap<String, String>,
    ratio: &mut Option<RatioMatch>,
) -> (Option<f64>, bool) {
    match &th.across {
        None => leaf(th, members, span, ratio),
        Some(across) => judge_across(th, across, members, span, Some(notes), ratio),
    }
}

/// One aggregate over `members` against the threshold.
fn leaf(
    th: &Threshold,
    members: &[&SeriesData],
    span: Duration,
    ratio: &mut Option<RatioMatch>,
) -> (Option<f64>, bool) {
    let v = aggregate_in(th, members, span, ratio);
    (v, v.is_some_and(|v| th.op.holds(v, th.threshold)))
}

/// Judges each value of `across.label` apart (by its inner `across`, or one aggregate) and
/// fails on the share of failing values; writes the verdict's note at the outermost level.
fn judge_across(
    th: &Threshold,
    across: &Across,
    members: &[&SeriesData],
    span: Duration,
    notes: Option<&mut BTreeMap<String, String>>,
    ratio: &mut Option<RatioMatch>,
) -> (Option<f64>, bool) {
    let mut by_value: BTreeMap<&str, Vec<&SeriesData>> = BTreeMap::new();
    for s in members {
        let v = label_value(&s.labels, &across.label);
        by_value.entry(v).or_default().push(s);
    }
    let mut failing_values = Vec::new();
    let (mut worst_failing, mut worst_all): (Option<f64>, Option<f64>) = (None, None);
    let mut with_data = 0u32;
    for (value, ms) in &by_value {
        let (v, fails) = match &across.inner {
            None => leaf(th, ms, span, ratio),
            Some(inner) => judge_across(th, inner, ms, span, None, ratio),
        };
        if let Some(v) = v {
            with_data += 1;
            worst_all = Some(worst_all.map_or(v, |w| th.op.worse(w, v)));
            if fails {
                failing_values.push(*value);
                worst_failing = Some(worst_failing.map_or(v, |w| th.op.worse(w, v)));
            }
        }
    }
    let n = failing_values.len() as u32;
    let share = if with_data == 0 {
        0.0
    } else {
        f64::from(n) / f64::from(with_data)
    };
    let failing = n >= across.min_count && n > 0 && share >= across.min_share;
    if let Some(notes) = notes {
        if across.written_as_quorum {
            notes.insert(
                "failing_locations".into(),
                format!("{n} of {with_data} ({})", failing_values.join(", ")),
            );
        } else {
            notes.insert(
                "failing".into(),
                format!(
                    "{n} of {with_data} {}: {}",
                    plural(&across.label),
                    failing_values.join(", ")
                ),
            );
        }
    }
    (if failing { worst_failing } else { worst_all }, failing)
}

/// What a threshold rule read at `now`: its window's series, and the resolve window's when
/// some group is judged over that.
struct ThresholdRead<'s> {
    long: Vec<SeriesData<'s>>,
    long_span: Span,
    short: Option<(Vec<SeriesData<'s>>, Span)>,
}

/// With `resolve_window`, the groups whose alert fires or resolved within the memory are judged
/// over it: one more read, only when there are such groups (`judged_short`). The window's
/// series are read into `long` (cleared first; the evaluator's vector reused across rules).
fn read_threshold<'s>(
    th: &Threshold,
    source: &'s dyn Source,
    now: DateTime<Utc>,
    judged_short: bool,
    mut long: Vec<SeriesData<'s>>,
) -> ThresholdRead<'s> {
    long.clear();
    source.series_into(th.metric, &th.matchers, th.window, now, &mut long);
    let long_span = Span::of(
        source,
        th.metric,
        &th.matchers,
        th.window,
        th.min_coverage,
        now,
    );
    let short = match th.resolve_window {
        Some(w) if judged_short => Some((
            source.series(th.metric, &th.matchers, w, now),
            Span::of(source, th.metric, &th.matchers, w, th.min_coverage, now),
        )),
        _ => None,
    };
    ThresholdRead {
        long,
        long_span,
        short,
    }
}

/// The groups whose alert fires (`firing`) or resolved within the rule's memory (`recent`),
/// by key.
type KeySet<'a> = BTreeSet<Vec<&'a str>>;

/// Every group of a threshold rule at `now`, in key order. `short`: the resolve window's
/// groups, when read (see [`read_threshold`]).
#[allow(clippy::too_many_arguments)]
fn observe_threshold<'d>(
    th: &Threshold,
    groups: &'d Groups<'d, '_>,
    long: Span,
    short: Option<(&'d Groups<'d, '_>, Span)>,
    firing: &KeySet,
    recent: &KeySet,
    ratio: &mut Option<RatioMatch>,
    mut out: Vec<Obs<'d>>,
) -> Vec<Obs<'d>> {
    out.reserve(groups.len());
    for g in 0..groups.len() {
        let key = groups.key(g);
        let members = groups.members(g);
        let o = match &short {
            // A firing group without data in the resolve window (no run since) stays judged
            // over the whole window: silence is not a recovery.
            Some((sg, span)) if firing.contains(key) => sg
                .find(key)
                .map(|i| observe_group(th, key, sg.members(i), *span, ratio))
                .filter(|o| o.value.is_some())
                .unwrap_or_else(|| observe_group(th, key, members, long, ratio)),
            // A group that resolved meanwhile fires again on new evidence only.
            Some((sg, span)) if recent.contains(key) => observe_group(
                th,
                key,
                sg.find(key).map_or(&[][..], |i| sg.members(i)),
                *span,
                ratio,
            ),
            _ => observe_group(th, key, members, long, ratio),
        };
        out.push(o);
    }
    out
}

/// One group of a threshold rule over `span`'s window.
fn observe_group<'k>(
    th: &Threshold,
    key: &'k [&'k str],
    members: &[&SeriesData],
    span: Span,
    ratio: &mut Option<RatioMatch>,
) -> Obs<'k> {
    let mut notes = BTreeMap::new();
    if th.resolve_window.is_some() {
        notes.insert("window".into(), fmt_duration(span.shown()));
    }
    let mut obs = Obs {
        key: Key::Read(key),
        value: None,
        failing: false,
        threshold: th.threshold,
        window: span.shown(),
        notes: BTreeMap::new(),
    };
    if span.too_short() {
        notes.insert("coverage".into(), span.refusal());
    } else {
        if span.min_coverage.is_some() && span.partial() {
            notes.insert("coverage".into(), span.caveat());
        }
        (obs.value, obs.failing) = judge(th, members, span.covered, &mut notes, ratio);
    }
    obs.notes = notes;
    obs
}

/// An SLO's burn rate over `window` and how it reads in the notes: `None` (with the reason)
/// when the window has no events or too little history under `min_coverage`.
fn burn_over(
    slo: &Slo,
    source: &dyn Source,
    window: Duration,
    now: DateTime<Utc>,
    burns: &BurnRates,
) -> (Option<f64>, String, Span) {
    let span = Span::of(
        source,
        slo.sli.metric(),
        slo.sli.matchers(),
        window,
        slo.min_coverage,
        now,
    );
    if span.too_short() {
        return (None, span.refusal(), span);
    }
    let v = burns.get(slo, source, window, now);
    (v, v.map_or("no data".into(), fmt_num), span)
}

fn observe_burn(
    rows: &[BurnWindow],
    slo: Option<&Slo>,
    source: &dyn Source,
    now: DateTime<Utc>,
    burns: &BurnRates,
    firing: bool,
) -> Vec<Obs<'static>> {
    let Some(slo) = slo else { return Vec::new() };
    let mut value = None;
    let mut failing = false;
    let mut threshold = rows.first().map_or(1.0, |r| r.factor);
    let mut window = rows.first().map_or(Duration::from_secs(3600), |r| r.long);
    let mut notes = BTreeMap::new();
    let mut caveat = None;
    for row in rows {
        // While the alert fires, the short window that says "still burning" is the SLO's
        // resolve window: the page ends soon after the burning does.
        let short_window = match slo.resolve_window {
            Some(w) if firing => w,
            _ => row.short,
        };
        let (long, long_note, long_span) = burn_over(slo, source, row.long, now, burns);
        let (short, short_note, _) = burn_over(slo, source, short_window, now, burns);
        notes.insert(format!("burn_rate_{}", fmt_duration(row.long)), long_note);
        notes.insert(
            format!("burn_rate_{}", fmt_duration(short_window)),
            short_note,
        );
        let holds = matches!((long, short), (Some(l), Some(s)) if l > row.factor && s > row.factor);
        if holds && !failing {
            failing = true;
            value = long;
            threshold = row.factor;
            window = long_span.shown();
            caveat =
                (slo.min_coverage.is_some() && long_span.partial()).then(|| long_span.caveat());
        } else if !failing && let Some(l) = long {
            value = Some(value.map_or(l, |v: f64| v.max(l)));
        }
    }
    if let Some(c) = caveat {
        notes.insert("coverage".into(), c);
    }
    // One group without labels.
    vec![Obs {
        key: Key::Read(&[]),
        value,
        failing,
        threshold,
        window,
        notes,
    }]
}

/// A template rendered at the end of `s`, as [`fmt_num`] and [`fmt_duration`] write numbers
/// and windows (without a string of their own for each).
pub(super) fn render_into(
    t: &Template,
    rule: &Rule,
    labels: &Labels,
    o: (Option<f64>, f64, Duration),
    notes: &BTreeMap<String, String>,
    s: &mut String,
) {
    let (value, threshold, window) = o;
    for p in &t.parts {
        match p {
            Part::Text(x) => s.push_str(x),
            Part::Value => match value {
                Some(v) => push_num(s, v),
                None => s.push_str("no data"),
            },
            Part::Threshold => push_num(s, threshold),
            Part::Window => push_duration(s, window),
            Part::Metric => s.push_str(match &rule.condition {
                Condition::Threshold(th) => th.metric.name,
                Condition::Burn { .. } => "burn rate",
            }),
            Part::Label(l) => s.push_str(labels.get(l).map(String::as_str).unwrap_or("")),
            Part::Failing => s.push_str(
                notes
                    .get("failing")
                    .or_else(|| notes.get("failing_locations"))
                    .map_or("", String::as_str),
            ),
        }
    }
}

/// [`fmt_num`] written at the end of `s`.
pub(super) fn push_num(s: &mut String, v: f64) {
    use std::fmt::Write;
    if v.fract() == 0.0 && v.abs() < 1e15 {
        let _ = write!(s, "{}", v as i64);
        return;
    }
    let start = s.len();
    let _ = write!(s, "{v:.4}");
    let kept = s[start..].trim_end_matches('0').trim_end_matches('.').len();
    s.truncate(start + kept);
}

/// [`fmt_duration`] written at the end of `s`.
pub(super) fn push_duration(s: &mut String, d: Duration) {
    use std::fmt::Write;
    let start = s.len();
    let _ = write!(s, "{}", humantime::format_duration(d));
    if s[start..].contains(' ') {
        let joined: String = s[start..].chars().filter(|c| *c != ' ').collect();
        s.truncate(start);
        s.push_str(&joined);
    }
}

fn since(now: DateTime<Utc>, then: DateTime<Utc>) -> Duration {
    (now - then).to_std().unwrap_or(Duration::ZERO)
}

/// The labels every alert of `rule` has besides its group's, sorted by name: the rule's own,
/// then its name and severity, which win over them.
pub(super) fn fixed_labels(rule: &Rule) -> Vec<(&str, &str)> {
    let mut fixed: Vec<(&str, &str)> = rule
        .labels
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .filter(|(k, _)| *k != "alertname" && *k != "severity")
        .chain([
            ("alertname", rule.name.as_str()),
            ("severity", rule.severity.as_str()),
        ])
        .collect();
    fixed.sort_unstable_by_key(|(k, _)| *k);
    fixed
}

/// An alert's labels in name order without building them: the group's (`names` with `key`'s
/// values) and `fixed` (sorted), `fixed` winning a name both have, as the labels map that
/// extends the group's with the rule's would hold them.
pub(super) fn merged_labels<'a>(
    names: &'a [&'a str],
    key: &'a [&'a str],
    fixed: &'a [(&'a str, &'a str)],
) -> impl Iterator<Item = (&'a str, &'a str)> + 'a {
    let mut group = names.iter().copied().zip(key.iter().copied()).peekable();
    let mut fixed = fixed.iter().copied().peekable();
    std::iter::from_fn(move || match (group.peek(), fixed.peek()) {
        (Some(g), Some(f)) if g.0 < f.0 => group.next(),
        (Some(g), Some(f)) if g.0 == f.0 => {
            group.next();
            fixed.next()
        }
        (Some(_), None) => group.next(),
        _ => fixed.next(),
    })
}

/// The fingerprints of one rule's alerts, the part every group shares hashed once: the rule
/// name and the fixed labels sorting before every group label (`alertname` before `location`,
/// say) come first in [`merged_labels`] whatever the group's values, so the hash of that
/// prefix is the same for every group. Half the bytes of a typical fingerprint, and one is
/// computed per group and evaluation.
pub(super) struct RuleFingerprints<'r> {
    prefix: Fnv,
    names: &'r [&'r str],
    /// The fixed labels after the prefix.
    rest: &'r [(&'r str, &'r str)],
}

impl<'r> RuleFingerprints<'r> {
    pub(super) fn new(
        rule: &str,
        names: &'r [&'r str],
        fixed: &'r [(&'r str, &'r str)],
    ) -> RuleFingerprints<'r> {
        // `names` is sorted: a fixed label before the first is before all of them.
        let lead = fixed
            .iter()
            .take_while(|(k, _)| names.first().is_none_or(|n| k < n))
            .count();
        let mut prefix = Fnv::new();
        prefix.eat(rule);
        for (k, v) in &fixed[..lead] {
            prefix.eat(k);
            prefix.eat(v);
        }
        RuleFingerprints {
            prefix,
            names,
            rest: &fixed[lead..],
        }
    }

    /// The fingerprint of the group with these values of `names`: the one
    /// `Fingerprint::of(rule, merged_labels(names, key, fixed))` gives.
    pub(super) fn of(&self, key: &[&str]) -> Fingerprint {
        self.prefix
            .finish(merged_labels(self.names, key, self.rest))
    }
}

/// Evaluates every rule at `now`, updating `state`, and returns the transitions in rule order.
pub fn evaluate(
    rules: &RuleSet,
    source: &dyn Source,
    state: &mut State,
    now: DateTime<Utc>,
) -> Vec<Transition> {
    evaluate_until(rules, source, state, now, &|| false).unwrap_or_default()
}

/// [`evaluate`] that asks `stop` before each rule and gives up with [`Stopped`] when it says
/// so: an evaluation over 30 days of data can take a while, and a stopping daemon should not
/// wait for it.
pub fn evaluate_until(
    rules: &RuleSet,
    source: &dyn Source,
    state: &mut State,
    now: DateTime<Utc>,
    stop: &dyn Fn() -> bool,
) -> Result<Vec<Transition>, Stopped> {
    evaluate_with(rules, source, state, now, stop, &BurnRates::default())
}

/// [`evaluate_until`] reading burn rates through `burns`, which the caller shares with the SLO
/// status of the same evaluation ([`super::slo::slo_status_with`]) so that each burn rate is
/// computed once and both read the same figure. `burns` must be fresh for this `source` and
/// `now`.
pub fn evaluate_with(
    rules: &RuleSet,
    source: &dyn Source,
    state: &mut State,
    now: DateTime<Utc>,
    stop: &dyn Fn() -> bool,
    burns: &BurnRates,
) -> Result<Vec<Transition>, Stopped> {
    let mut out = Vec::new();
    // The first rule of each name, and whether each rule is the first of its name.
    let mut first: FastMap<&str, usize> =
        FastMap::with_capacity_and_hasher(rules.rules.len(), Default::default());
    let mut first_of_name = Vec::with_capacity(rules.rules.len());
    for (i, rule) in rules.rules.iter().enumerate() {
        let mut new = false;
        first.entry(rule.name.as_str()).or_insert_with(|| {
            new = true;
            i
        });
        first_of_name.push(new);
    }
    // The active alerts of each rule (by the index of the first rule of its name), read once:
    // scanning every alert for every rule is quadratic (10,000 rules x thousands of alerts).
    // A rule only changes its own alerts, so the alerts these keys find at the rule's turn
    // are those a scan would find then, unless two rules share a name (then we scan). Keys
    // only, in rule order (each rule's in the order of the map), read as the rules come: the
    // alerts themselves are read at the rule's turn (no copy of each alert's labels per
    // evaluation).
    let mut active: Vec<(usize, AlertKey)> = state
        .alerts
        .iter()
        .filter_map(|(key, a)| Some((*first.get(a.rule.as_str())?, AlertKey::of(key))))
        .collect();
    // Stable: a rule's keys stay in the map's order.
    active.sort_by_key(|(i, _)| *i);
    let mut active = active.as_slice();
    let mut resolved: FastMap<String, Vec<(Labels, DateTime<Utc>)>> = FastMap::default();
    for r in state.resolved.values() {
        resolved
            .entry(r.rule.clone())
            .or_default()
            .push((r.labels.clone(), r.at));
    }
    let mut known = KnownFingerprints::of(state);
    let interner = source.label_ids();
    // The vector each threshold rule reads its series into, handed back after the rule; the
    // same for its groups and observations.
    let mut spare: Vec<SeriesData> = Vec::new();
    let mut group_buffers = GroupBuffers::default();
    let mut spare_obs: Vec<Obs<'static>> = Vec::new();
    let mut verdicts = Verdicts::default();
    // A summary rendered to compare with a held alert's.
    let mut summary = String::new();
    for (index, rule) in rules.rules.iter().enumerate() {
        if stop() {
            return Err(Stopped);
        }
        // This rule's keys: the ones before it belong to rules before it.
        let skip = active.partition_point(|(i, _)| *i < index);
        let take = active[skip..].partition_point(|(i, _)| *i == index);
        let keys = &active[skip..skip + take];
        active = &active[skip + take..];
        // Borrowed from `state` until the rule's alerts are stepped (below).
        let active_alerts: Vec<(&Labels, Phase)> = if first_of_name[index] {
            keys.iter()
                .filter_map(|(_, k)| k.find(&state.alerts))
                .map(|a| (&a.labels, a.phase))
                .collect()
        } else {
            state
                .alerts
                .values()
                .filter(|a| a.rule == rule.name)
                .map(|a| (&a.labels, a.phase))
                .collect()
        };
        let by = ByLabels::of(rule);
        // The groups whose alert fires, for rules that judge those over a resolve window.
        let slo = match &rule.condition {
            Condition::Burn { slo, .. } => rules.slos.iter().find(|s| &s.name == slo),
            Condition::Threshold(_) => None,
        };
        // How long after a resolve the long window may still hold the answered failure.
        let memory = match &rule.condition {
            Condition::Threshold(th) => th.resolve_window.map(|_| th.window),
            Condition::Burn {
                rows,
                resolves_early,
                ..
            } => slo
                .and_then(|s| s.resolve_window)
                .filter(|_| *resolves_early)
                .map(|_| rows.iter().map(|r| r.short).max().unwrap_or_default()),
        };
        let (firing, recent): (KeySet, KeySet) = match memory {
            None => Default::default(),
            Some(memory) => (
                active_alerts
                    .iter()
                    .filter(|(_, p)| *p == Phase::Firing)
                    .map(|(l, _)| by.key(l))
                    .collect(),
                resolved
                    .get(&rule.name)
                    .into_iter()
                    .flatten()
                    .filter(|(_, at)| since(now, *at) < memory)
                    .map(|(l, _)| by.key(l))
                    .collect(),
            ),
        };
        let judged_short = !firing.is_empty() || !recent.is_empty();
        let read = match &rule.condition {
            Condition::Threshold(th) => Some(read_threshold(
                th,
                source,
                now,
                judged_short,
                std::mem::take(&mut spare),
            )),
            Condition::Burn { .. } => None,
        };
        let by_ids = interner.map(|i| ByIds::of(&by, i));
        let groups = read.as_ref().map(|r| {
            (
                Groups::new_in(&by, by_ids.as_ref(), &r.long, &mut group_buffers),
                r.short.as_ref().map(|(s, span)| {
                    (
                        Groups::new_in(&by, by_ids.as_ref(), s, &mut GroupBuffers::default()),
                        *span,
                    )
                }),
            )
        });
        let mut ratio = match (&rule.condition, interner) {
            (Condition::Threshold(th), Some(i)) if th.aggregate == Aggregate::Ratio => Some(
                RatioMatch::with_verdicts(th, i, std::mem::take(&mut verdicts)),
            ),
            _ => None,
        };
        // Vanished groups' keys, owned: the alerts they are read from may change below.
        let mut vanished: Vec<Vec<String>> = Vec::new();
        let mut obs = match (&rule.condition, &read, &groups) {
            (Condition::Threshold(th), Some(read), Some((long, short))) => observe_threshold(
                th,
                long,
                read.long_span,
                short.as_ref().map(|(g, span)| (g, *span)),
                &firing,
                &recent,
                &mut ratio,
                recycle(std::mem::take(&mut spare_obs)),
            ),
            (Condition::Burn { rows, .. }, _, _) => {
                observe_burn(rows, slo, source, now, burns, judged_short)
            }
            (Condition::Threshold(_), _, _) => unreachable!("a threshold rule's series are read"),
        };
        let (threshold, window) = match &rule.condition {
            Condition::Threshold(th) => (th.threshold, th.window),
            Condition::Burn { rows, .. } => (
                rows.first().map_or(1.0, |r| r.factor),
                rows.first().map_or(Duration::from_secs(3600), |r| r.long),
            ),
        };
        // No series at all: the rule's single group has no data.
        if obs.is_empty() && rule.by.is_empty() {
            obs.push(Obs {
                key: Key::Read(&[]),
                value: None,
                failing: false,
                threshold,
                window,
                notes: BTreeMap::new(),
            });
        }
        if let Some(r) = ratio {
            verdicts = r.into_verdicts();
        }
        // Active groups that vanished: no data for them.
        if !active_alerts.is_empty() {
            let observed: BTreeSet<&[&str]> = obs.iter().map(|o| &*o.key).collect();
            vanished = active_alerts
                .iter()
                .map(|(labels, _)| by.key(labels))
                .filter(|k| !observed.contains(k.as_slice()))
                .map(|k| k.into_iter().map(str::to_string).collect())
                .collect();
        }
        // A rule (the first of its name) without alerts of its own looks for none: its
        // healthy groups are passed over without a fingerprint each (most groups of most
        // evaluations; the hash is most of their cost). An alert of another rule under the
        // same fingerprint (a 64-bit collision, or a key edited by hand) would be found by a
        // lookup and stepped as this rule's, its labels rewritten: not looked for here.
        let healthy_looked_up = !first_of_name[index] || !active_alerts.is_empty();
        drop(active_alerts);
        if !vanished.is_empty() {
            obs.extend(vanished.iter().map(|k| Obs {
                key: Key::Vanished(k.iter().map(String::as_str).collect()),
                value: None,
                failing: false,
                threshold,
                window,
                notes: BTreeMap::new(),
            }));
        }
        let fixed = fixed_labels(rule);
        // Hashed when a group first needs a fingerprint.
        let mut fingerprints = None;
        for o in obs.drain(..) {
            let mut notes = o.notes;
            let cond = match o.value {
                Some(_) => o.failing,
                None => match rule.no_data.policy {
                    NoDataPolicy::Alert => {
                        notes.insert(
                            "no_data".into(),
                            rule.no_data
                                .message
                                .clone()
                                .unwrap_or_else(|| "no data".into()),
                        );
                        true
                    }
                    NoDataPolicy::Ok => false,
                    NoDataPolicy::KeepState => continue,
                },
            };
            if !cond && !healthy_looked_up {
                continue;
            }
            let fp = fingerprints
                .get_or_insert_with(|| RuleFingerprints::new(&rule.name, &by.0, &fixed))
                .of(&o.key);
            // Healthy with no alert: nothing changes (what `step` would decide), so nothing
            // is rendered. Most groups of most evaluations end here.
            // The group's alert, looked up once for what follows up to `step`.
            let held = known.find(&fp, state);
            if !cond && held.is_none() {
                continue;
            }
            known.add(&fp);
            let fp = fp.as_str();
            // An alert that already holds exactly these labels keeps its map: none is built
            // and dropped per firing group and evaluation (most of the alerts' work).
            let kept = held.is_some_and(|a| {
                a.labels
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.as_str()))
                    .eq(merged_labels(&by.0, &o.key, &fixed))
            });
            let built = (!kept).then(|| {
                let mut labels = by.labels(&o.key);
                labels.extend(rule.labels.clone());
                labels.insert("alertname".into(), rule.name.clone());
                labels.insert("severity".into(), rule.severity.clone());
                labels
            });
            let labels = match (&built, held) {
                (Some(l), _) => l,
                (None, Some(a)) => &a.labels,
                (None, None) => unreachable!("kept: an alert holds the labels"),
            };
            let shown = (o.value, o.threshold, o.window);
            // A held alert whose annotations are what they would be built as (its summary
            // alone, rendered the same): kept, not built and swapped per firing group and
            // evaluation. (A flapping alert's get a note added in `step`: built.)
            let unchanged = match (&rule.summary, held) {
                (Some(t), Some(a))
                    if notes.is_empty()
                        && rule.description.is_none()
                        && rule.runbook_url.is_none()
                        && !a.flapping
                        && a.annotations.len() == 1 =>
                {
                    summary.clear();
                    render_into(t, rule, labels, shown, &notes, &mut summary);
                    a.annotations.get("summary") == Some(&summary)
                }
                _ => false,
            };
            let annotations = (!unchanged).then(|| {
                let mut annotations = notes;
                let no_data_msg = annotations.get("no_data").cloned();
                if let Some(t) = &rule.summary {
                    let mut s = String::new();
                    render_into(t, rule, labels, shown, &annotations, &mut s);
                    annotations.insert("summary".into(), no_data_msg.clone().unwrap_or(s));
                } else if let Some(m) = &no_data_msg {
                    annotations.insert("summary".into(), m.clone());
                }
                if let Some(t) = &rule.description {
                    let mut s = String::new();
                    render_into(t, rule, labels, shown, &annotations, &mut s);
                    annotations.insert("description".into(), s);
                }
                if let Some(u) = &rule.runbook_url {
                    annotations.insert("runbook_url".into(), u.clone());
                }
                annotations
            });
            if let Some(t) = step(
                rules,
                rule,
                state,
                fp,
                built,
                cond,
                o.value,
                annotations,
                now,
            ) {
                if memory.is_some() && t.to == Phase::Resolved {
                    state.resolved.insert(
                        fp.to_string(),
                        Resolved {
                            rule: rule.name.clone(),
                            labels: t.labels.clone(),
                            at: now,
                        },
                    );
                }
                out.push(t);
            }
        }
        spare_obs = recycle(obs);
        if let Some((long, _)) = groups {
            long.recycle(&mut group_buffers);
        }
        if let Some(read) = read {
            spare = read.long;
        }
    }
    // Alerts of rules that no longer exist resolve rather than linger.
    let gone: Vec<String> = state
        .alerts
        .values()
        .filter(|a| !first.contains_key(a.rule.as_str()))
        .map(|a| a.fingerprint.clone())
        .collect();
    for fp in gone {
        if let Some(a) = state.alerts.remove(&fp)
            && a.phase == Phase::Firing
        {
            out.push(Transition {
                fingerprint: fp,
                rule: a.rule.clone(),
                from: Phase::Firing,
                to: Phase::Resolved,
                at: now,
                active_at: a.active_at,
                value: a.value,
                labels: a.labels.clone(),
                annotations: a.annotations.clone(),
                severity: a.labels.get("severity").cloned().unwrap_or_default(),
                route: None,
            });
        }
    }
    // Forget resolves and flap history older than any window.
    state
        .resolved
        .retain(|_, r| since(now, r.at) <= Duration::from_secs(30 * 86_400));
    state.changes.retain(|_, v| {
        v.retain(|t| since(now, *t) <= Duration::from_secs(30 * 86_400));
        !v.is_empty()
    });
    Ok(out)
}

/// Recent state changes per fingerprint ([`State::changes`]).
type Changes = BTreeMap<String, Vec<DateTime<Utc>>>;

/// Records a state change; true when the alert now counts as flapping.
fn record_change(rule: &Rule, changes: &mut Changes, fp: &str, now: DateTime<Utc>) -> bool {
    let Some(flap) = rule.flap else { return false };
    let v = changes.entry(fp.to_string()).or_default();
    v.push(now);
    v.retain(|t| since(now, *t) <= flap.window);
    v.len() as u32 > flap.max_changes
}

fn flap_note(rule: &Rule, changes: &Changes, fp: &str) -> String {
    let n = changes.get(fp).map_or(0, Vec::len);
    let w = rule.flap.map_or(Duration::ZERO, |f| f.window);
    format!(
        "{n} state changes in {}; held firing until healthy for {}",
        fmt_duration(w),
        fmt_duration(w)
    )
}

/// One group's alert at `now`: created, advanced or dropped in place in `state` (no copy of
/// an alert that stays, which is most of them at most evaluations). `labels`: the group's
/// alert labels, `None` when the alert of `fp` already holds exactly them; `annotations`
/// likewise (`None` only for an alert that exists and is not flapping).
#[allow(clippy::too_many_arguments)]
fn step(
    rules: &RuleSet,
    rule: &Rule,
    state: &mut State,
    fp: &str,
    labels: Option<Labels>,
    cond: bool,
    value: Option<f64>,
    mut annotations: Option<BTreeMap<String, String>>,
    now: DateTime<Utc>,
) -> Option<Transition> {
    let transition = |a: &Alert, from: Phase, to: Phase| Transition {
        fingerprint: a.fingerprint.clone(),
        rule: rule.name.clone(),
        from,
        to,
        at: now,
        active_at: a.active_at,
        value: a.value,
        labels: a.labels.clone(),
        annotations: a.annotations.clone(),
        severity: rule.severity.clone(),
        route: rule.route.clone(),
    };
    let State {
        alerts, changes, ..
    } = state;
    let Some(a) = alerts.get_mut(fp) else {
        if !cond {
            return None;
        }
        let mut a = Alert {
            rule: rule.name.clone(),
            fingerprint: fp.to_string(),
            labels: labels.expect("built when no alert holds them"),
            phase: Phase::Pending,
            active_at: now,
            fired_at: None,
            pending_ms: 0,
            last_eval: now,
            last_true_at: now,
            healthy_streak: 0,
            value,
            annotations: annotations.expect("built when no alert holds them"),
            flapping: false,
        };
        if rule.pending_for.is_zero() {
            a.phase = Phase::Firing;
            a.fired_at = Some(now);
            if record_change(rule, changes, fp, now) {
                a.flapping = true;
                a.annotations
                    .insert("flapping".into(), flap_note(rule, changes, fp));
            }
        }
        let t = transition(&a, Phase::Inactive, a.phase);
        alerts.insert(fp.to_string(), a);
        return Some(t);
    };
    match a.phase {
        // A pending alert that clears is dropped silently.
        Phase::Pending if !cond => {
            alerts.remove(fp);
            return None;
        }
        Phase::Inactive | Phase::Resolved => {
            alerts.remove(fp);
            return None;
        }
        Phase::Pending | Phase::Firing => {}
    }
    let elapsed = since(now, a.last_eval).min(rules.interval);
    a.last_eval = now;
    if let Some(labels) = labels {
        a.labels = labels;
    }
    if a.flapping
        && let Some(annotations) = &mut annotations
    {
        annotations.insert("flapping".into(), flap_note(rule, changes, fp));
    }
    if a.phase == Phase::Pending {
        a.pending_ms = a
            .pending_ms
            .saturating_add(crate::config::duration::millis_u64(elapsed));
        a.value = value;
        if let Some(annotations) = annotations {
            a.annotations = annotations;
        }
        a.last_true_at = now;
        if a.pending_ms < crate::config::duration::millis_u64(rule.pending_for) {
            return None;
        }
        a.phase = Phase::Firing;
        a.fired_at = Some(now);
        if record_change(rule, changes, fp, now) {
            a.flapping = true;
            a.annotations
                .insert("flapping".into(), flap_note(rule, changes, fp));
        }
        return Some(transition(a, Phase::Pending, Phase::Firing));
    }
    // Firing.
    if cond {
        a.last_true_at = now;
        a.healthy_streak = 0;
        a.value = value;
        if let Some(annotations) = annotations {
            a.annotations = annotations;
        }
        return None;
    }
    a.healthy_streak += 1;
    let quiet = since(now, a.last_true_at);
    let mut held = quiet < rule.keep_firing_for || a.healthy_streak < rule.recover_after;
    if let Some(flap) = rule.flap {
        if !a.flapping && !held {
            // Would this resolve be one change too many?
            let recent = changes.get(fp).map_or(0, |v| {
                v.iter().filter(|t| since(now, **t) <= flap.window).count()
            });
            if recent as u32 + 1 > flap.max_changes {
                a.flapping = true;
                a.annotations
                    .insert("flapping".into(), flap_note(rule, changes, fp));
            }
        }
        if a.flapping && quiet < flap.window {
            held = true;
        }
    }
    if held {
        return None;
    }
    let mut a = alerts.remove(fp).expect("the alert just read");
    record_change(rule, changes, fp, now);
    a.value = value;
    Some(transition(&a, Phase::Firing, Phase::Resolved))
}
