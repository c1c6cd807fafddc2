//! The evaluator's fast paths give exactly what the straightforward reading gives, on random
//! data: distributions kept as raw samples read as the histogram holding them; the memory
//! source's indexed, ranked, borrowed answers equal a scan of every series; groups keyed by
//! their values are the groups a map from group labels finds; a fingerprint hashed from the
//! parts of an alert's labels is the one of the labels map.
//!
//! Session 10's fast paths (issue 19): posting lists intersected for every equality matcher
//! (the memory-source property, with matcher sets of up to three equalities); a rule's
//! fingerprint prefix hashed once and the fingerprint's number (the groups property); known
//! fingerprints asked before the alerts' map; the ratio summed in one pass; a label read by
//! a length-first scan.
//!
//! Session 11's (issue 19): labels interned by the memory source, answers carrying them as
//! numbers (name ids, value ranks); groups keyed and sorted by ranks, and a ratio's subsets
//! matched on ranks with a regex verdict per distinct value (the interned-labels property).
//!
//! Session 12's (issue 19): the memory source read through a compact copy rebuilt after every
//! push (series in label order, points and label numbers in one array apiece, posting lists of
//! positions; the reads-after-every-push property); groups built in the vectors of the rule
//! before (the reused-buffers property); regex verdicts shared by an evaluation's ratio rules
//! (the shared-verdicts property); alerts found by keys kept as numbers (the alert-keys
//! property); numbers and windows written into the summary being rendered instead of strings
//! of their own (the rendering property; a held alert then keeps its annotations when they
//! are what they would be built as). And all of it at once: evaluations over the memory
//! source equal, transition for transition, those over the same answers without label
//! numbers (the evaluator's string paths). A rule without alerts of its own passing its
//! healthy groups over without a fingerprint each (the own-alerts property).
//!
//! (The registry source's count paths have theirs in `registry_source.rs`:
//! `count_paths_equal_merged_histograms_on_random_data`.)

use std::collections::BTreeMap;

use chrono::{DateTime, TimeZone, Utc};
use hdrhistogram::Histogram;
use proptest::prelude::*;
use proptest::test_runner::{Config, FileFailurePersistence};

use super::eval::{
    AlertKey, ByIds, ByLabels, Fingerprint, GroupBuffers, Groups, KnownFingerprints, RatioMatch,
    RuleFingerprints, State, Verdicts, aggregate, aggregate_in, fingerprint, fixed_labels,
    merged_labels,
};
use super::model::{Aggregate, Condition, Labels, Matcher, Matchers, NoData, Op, Rule, Threshold};
use super::source::{Data, Dist, MemorySource, SeriesData, Source};
use crate::metrics::catalog::{CHECK_LATENCY, HTTP_ERRORS, MetricDef, MetricKind, PROBE_UNHEALTHY};

fn config() -> Config {
    Config {
        cases: std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(256),
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(
            "proptest-regressions/rules-equivalence.txt",
        ))),
        ..Config::default()
    }
}

/// A histogram as the memory source built one per series before samples were kept raw (sized
/// to its samples, 3 significant digits), growing with what it records as its doc promised:
/// it recorded with `saturating_record`, which does not grow, so every sample from 2,048 ms
/// on read as 2 ms (`memory_source_reads_samples_from_2048_ms_on_at_3_significant_digits`).
fn histogram_of(samples: &[u64]) -> Histogram<u64> {
    let mut h = Histogram::new_with_bounds(1, 2, 3).expect("static bounds");
    h.auto(true);
    for v in samples {
        h.record(*v).expect("auto-resized");
    }
    h
}

/// Sample values across the histogram's exact range (up to 2,047), its 3-digit ranges above,
/// a zero now and then, and the memory source's largest (3.6e9 ms).
fn sample() -> impl Strategy<Value = u64> {
    prop_oneof![
        1 => Just(0u64),
        6 => 1u64..2_048,
        4 => 2_048u64..1_000_000,
        1 => 1_000_000u64..=3_600_000_000,
    ]
}

/// What a rule reads of a distribution, for comparing two of them.
fn reads(d: &Dist, limits: &[f64]) -> Vec<Option<u64>> {
    let bits = |v: Option<f64>| v.map(f64::to_bits);
    let mut out = vec![Some(d.count())];
    for q in [0.0, 0.001, 0.25, 0.5, 0.95, 0.99, 0.999, 1.0, 1.5] {
        out.push(bits(d.quantile(q)));
    }
    out.extend([bits(d.mean()), bits(d.min()), bits(d.max())]);
    out.extend(limits.iter().map(|l| Some(d.count_le(*l))));
    out
}

proptest! {
    #![proptest_config(config())]

    /// Raw samples, merged part by part as a group's members are, read exactly as the merged
    /// histogram of the same parts (the evaluator's reads before); and a histogram merged with
    /// raw samples reads as the histogram of both.
    #[test]
    fn dist_samples_read_like_the_histogram(
        parts in prop::collection::vec(prop::collection::vec(sample(), 0..40), 1..5),
        units in prop_oneof![Just(1.0), Just(1000.0)],
        extra_limits in prop::collection::vec(-2.0f64..5_000_000.0, 0..6),
    ) {
        let mut fast: Option<Dist> = None;
        let mut slow: Option<Histogram<u64>> = None;
        for p in &parts {
            let d = Dist::from_samples(p.clone(), units);
            prop_assert_eq!(d.to_histogram(), histogram_of(p));
            match &mut fast {
                None => fast = Some(d),
                Some(f) => f.merge(&d),
            }
            match &mut slow {
                None => slow = Some(histogram_of(p)),
                Some(s) => s.add(histogram_of(p)).unwrap(),
            }
        }
        let (fast, slow) = (fast.unwrap(), Dist::from_histogram(slow.unwrap(), units));
        let mut limits: Vec<f64> = vec![-1.0, 0.0, 0.5, 1.0, 2_047.0, 2_048.0, 2_049.0];
        limits.extend(extra_limits);
        // Each sample's own value and its neighbours, in ms.
        for v in parts.iter().flatten().take(20) {
            for d in [-1.0, 0.0, 1.0] {
                limits.push((*v as f64 + d) / units);
            }
        }
        prop_assert_eq!(reads(&fast, &limits), reads(&slow, &limits));
        prop_assert_eq!(fast.to_histogram(), slow.to_histogram());

        // A histogram (the registry's kind) merged with raw samples, either way round.
        let all: Vec<u64> = parts.iter().flatten().copied().collect();
        let whole = Dist::from_histogram(histogram_of(&all), units);
        let (first, rest) = parts.split_first().unwrap();
        let mut hist_first = Dist::from_histogram(histogram_of(first), units);
        let mut samples_first = Dist::from_samples(first.clone(), units);
        for p in rest {
            hist_first.merge(&Dist::from_samples(p.clone(), units));
            samples_first.merge(&Dist::from_histogram(histogram_of(p), units));
        }
        prop_assert_eq!(reads(&hist_first, &limits), reads(&whole, &limits));
        prop_assert_eq!(reads(&samples_first, &limits), reads(&whole, &limits));
    }
}

fn t(minute: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap() + chrono::Duration::minutes(minute)
}

const METRICS: [&MetricDef; 3] = [&HTTP_ERRORS, &PROBE_UNHEALTHY, &CHECK_LATENCY];

/// Label sets of the random tables: a label now and then absent.
fn label_sets() -> Vec<Vec<(&'static str, &'static str)>> {
    let mut out = Vec::new();
    for check in ["a", "b", "c"] {
        for location in [None, Some("eu"), Some("us")] {
            for outcome in ["pass", "fail"] {
                let mut l = vec![("check", check), ("outcome", outcome)];
                if let Some(loc) = location {
                    l.push(("location", loc));
                }
                out.push(l);
            }
        }
    }
    out
}

/// The test's own copy of what was pushed: each series' points by metric and labels.
type Table = BTreeMap<(usize, Labels), Vec<(DateTime<Utc>, Option<f64>)>>;

/// `MemorySource::series` as it read before its index, rank and raw samples: every series of
/// the metric scanned, sorted by labels, one histogram per distribution.
fn scan_series(
    table: &Table,
    metric: usize,
    matchers: &Matchers,
    window: std::time::Duration,
    end: DateTime<Utc>,
) -> Vec<(Labels, Data)> {
    let start = end - chrono::Duration::from_std(window).unwrap();
    let mut out = Vec::new();
    // The map iterates one metric's series in label order.
    for ((m, labels), points) in table {
        if *m != metric || !matchers.matches(labels) {
            continue;
        }
        let data = match METRICS[metric].kind {
            MetricKind::Counter => {
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
                let samples: Vec<u64> = points
                    .iter()
                    .filter(|(t, _)| *t > start && *t <= end)
                    .filter_map(|(_, v)| v.map(|v| v.max(1.0).round().min(3_600_000_000.0) as u64))
                    .collect();
                Data::Distribution(Dist::from_histogram(histogram_of(&samples), 1.0))
            }
        };
        out.push((labels.clone(), data));
    }
    out
}

fn same_data(a: &Data, b: &Data) -> bool {
    match (a, b) {
        (Data::Counter { increase: x }, Data::Counter { increase: y }) => {
            x.to_bits() == y.to_bits()
        }
        (Data::Gauge { last: x }, Data::Gauge { last: y }) => {
            x.map(f64::to_bits) == y.map(f64::to_bits)
        }
        (Data::Distribution(x), Data::Distribution(y)) => x.to_histogram() == y.to_histogram(),
        _ => false,
    }
}

/// The memory source answers each query (metric, matcher set, window minutes, end minute) as a
/// scan of `table` does: the same series, in order, with the same data.
fn answers_like_a_scan(
    src: &MemorySource,
    table: &Table,
    matcher_sets: &[Matchers],
    queries: &[(usize, usize, u64, i64)],
) -> Result<(), TestCaseError> {
    for &(metric, m, window_min, end) in queries {
        let window = std::time::Duration::from_secs(window_min * 60 + 30);
        let fast: Vec<SeriesData> = src.series(METRICS[metric], &matcher_sets[m], window, t(end));
        let slow = scan_series(table, metric, &matcher_sets[m], window, t(end));
        prop_assert_eq!(fast.len(), slow.len());
        for (f, (labels, data)) in fast.iter().zip(&slow) {
            prop_assert_eq!(&*f.labels, labels);
            prop_assert!(same_data(&f.data, data), "{:?} vs {:?}", f.data, data);
        }
    }
    Ok(())
}

/// `pairs` as a rule's matchers (`label: value`, the value with its operator prefix).
fn parse_matchers(pairs: &[(&str, &str)]) -> Matchers {
    Matchers(
        pairs
            .iter()
            .map(|(l, v)| Matcher::parse(l, v).unwrap())
            .collect(),
    )
}

/// Matchers a rule may write, one or two at a time.
fn matcher_sets() -> Vec<Matchers> {
    let m = parse_matchers;
    vec![
        Matchers::default(),
        m(&[("check", "a")]),
        m(&[("check", "a"), ("outcome", "fail")]),
        m(&[("check", "!=b")]),
        m(&[("check", "=~a|c"), ("location", "eu")]),
        m(&[("location", "")]),
        m(&[("location", "!~u.*")]),
        m(&[("check", "z")]),
        m(&[("outcome", "pass"), ("check", "b")]),
        // Posting lists intersected: three equalities, one naming no series, one on "".
        m(&[("outcome", "fail"), ("check", "c"), ("location", "us")]),
        m(&[("check", "a"), ("location", "nowhere")]),
        m(&[("check", "b"), ("location", ""), ("outcome", "!=pass")]),
        m(&[("zone", "x"), ("check", "a")]),
    ]
}

/// A rule grouped `by` these labels, with these labels of its own.
fn a_rule(by: Vec<String>, labels: Labels) -> Rule {
    Rule {
        name: "slow".into(),
        file: "rules.yaml".into(),
        condition: Condition::Threshold(Threshold {
            metric: &CHECK_LATENCY,
            matchers: Matchers::default(),
            aggregate: Aggregate::P95,
            window: std::time::Duration::from_secs(300),
            numerator: Matchers::default(),
            denominator: Matchers::default(),
            op: Op::Gt,
            threshold: 400.0,
            across: None,
            resolve_window: None,
            min_coverage: None,
        }),
        by,
        pending_for: std::time::Duration::ZERO,
        keep_firing_for: std::time::Duration::ZERO,
        recover_after: 1,
        no_data: NoData::default(),
        severity: "page".into(),
        route: None,
        labels,
        summary: None,
        description: None,
        runbook_url: None,
        flap: None,
        inhibits: Vec::new(),
    }
}

proptest! {
    #![proptest_config(config())]

    /// The memory source's answers (posting lists, ranks, partition points, raw samples, borrowed
    /// labels) equal a scan of every series, for counters with resets and stale points, gauges
    /// going stale, distributions, out-of-order pushes and windows of any length.
    #[test]
    fn memory_source_answers_like_a_scan_of_every_series(
        pushes in prop::collection::vec(
            (0usize..3, 0usize..18, -40i64..=0, prop::option::weighted(0.9, 0.0f64..3_000.0)),
            0..120,
        ),
        queries in prop::collection::vec((0usize..3, 0usize..13, 0u64..45, -5i64..=0), 1..12),
    ) {
        let sets = label_sets();
        let mut src = MemorySource::new();
        let mut table = Table::new();
        for (metric, set, minute, v) in &pushes {
            let labels = &sets[*set];
            src.push_opt(METRICS[*metric], labels, t(*minute), *v);
            let key: Labels = labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
            table.entry((*metric, key)).or_default().push((t(*minute), *v));
        }
        for points in table.values_mut() {
            // Stable: equal times keep the order they were pushed in.
            points.sort_by_key(|(t, _)| *t);
        }
        answers_like_a_scan(&src, &table, &matcher_sets(), &queries)?;
    }

    /// Groups keyed by their `by` values (no label copied) are the groups, in the order and with
    /// the members, of a map from group labels (as `by` picks them, "" when missing) to series;
    /// and an alert's fingerprint hashed from its parts is the one of its labels map (the
    /// group's, then the rule's own, then `alertname` and `severity` winning).
    #[test]
    fn groups_and_fingerprints_as_label_maps_give_them(
        members in prop::collection::vec(0usize..18, 0..30),
        by in prop::collection::vec(prop::sample::select(vec!["check", "location", "outcome", "zone", "alertname"]), 0..4),
        rule_labels in prop::collection::btree_map(
            prop::sample::select(vec!["check", "team", "severity", "alertname", "zone"]),
            prop::sample::select(vec!["x", "", "eu"]),
            0..3,
        ),
    ) {
        let sets = label_sets();
        let series: Vec<SeriesData> = members
            .iter()
            .map(|i| SeriesData {
                labels: std::borrow::Cow::Owned(
                    sets[*i].iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
                ),
                data: Data::Gauge { last: Some(*i as f64) },
                ids: None,
            })
            .collect();
        let rule = a_rule(
            by.iter().map(|s| s.to_string()).collect(),
            rule_labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        );

        let names = ByLabels::of(&rule);
        let groups = Groups::new(&names, None, &series);
        let mut by_map: BTreeMap<Labels, Vec<usize>> = BTreeMap::new();
        for (i, s) in series.iter().enumerate() {
            let g: Labels = rule
                .by
                .iter()
                .map(|k| (k.clone(), s.labels.get(k).cloned().unwrap_or_default()))
                .collect();
            by_map.entry(g).or_default().push(i);
        }
        prop_assert_eq!(groups.len(), by_map.len());
        let fixed = fixed_labels(&rule);
        for (g, (group, idx)) in by_map.iter().enumerate() {
            prop_assert_eq!(&names.labels(groups.key(g)), group);
            prop_assert_eq!(groups.find(groups.key(g)), Some(g));
            let got: Vec<*const SeriesData> =
                groups.members(g).iter().map(|s| *s as *const SeriesData).collect();
            let want: Vec<*const SeriesData> =
                idx.iter().map(|i| &series[*i] as *const SeriesData).collect();
            prop_assert_eq!(got, want);
            prop_assert_eq!(names.key(&series[idx[0]].labels), groups.key(g).to_vec());

            let mut labels = group.clone();
            labels.extend(rule.labels.clone());
            labels.insert("alertname".into(), rule.name.clone());
            labels.insert("severity".into(), rule.severity.clone());
            let parts = Fingerprint::of(&rule.name, merged_labels(&names.0, groups.key(g), &fixed));
            prop_assert_eq!(parts.as_str(), fingerprint(&rule.name, &labels));
            // The rule's shared prefix hashed once gives the same fingerprint, whose number is
            // the one its hex digits spell.
            let prefixed = RuleFingerprints::new(&rule.name, &names.0, &fixed).of(groups.key(g));
            prop_assert_eq!(prefixed.as_str(), parts.as_str());
            prop_assert_eq!(Some(prefixed.hash()), u64::from_str_radix(parts.as_str(), 16).ok());
        }
        if !names.0.is_empty() {
            prop_assert_eq!(groups.find(&["no such value"; 4][..names.0.len()]), None);
        }
    }
}

/// The memory source read every sample from 2,048 ms on as 2 ms (a histogram sized to its first
/// samples and `saturating_record`, which clamps instead of growing it): a `synmon alerts test`
/// of a p95 over 2 s never fired. Samples now read at 3 significant digits, as its doc said.
#[test]
fn memory_source_reads_samples_from_2048_ms_on_at_3_significant_digits() {
    let mut src = MemorySource::new();
    for (i, ms) in [100.0, 2_048.0, 3_000.0, 45_000.0].iter().enumerate() {
        src.push(&CHECK_LATENCY, &[("check", "a")], t(i as i64), *ms);
    }
    let series = src.series(
        &CHECK_LATENCY,
        &Matchers::default(),
        std::time::Duration::from_secs(3600),
        t(10),
    );
    let Data::Distribution(d) = &series[0].data else {
        panic!("a distribution: {series:?}")
    };
    assert_eq!(d.max(), Some(45_023.0));
    assert_eq!(d.quantile(0.75), Some(3_001.0));
    assert_eq!(d.quantile(0.5), Some(2_049.0));
    assert_eq!(d.count_le(2_000.0), 1);
}

/// What the ratio aggregate summed before it took one pass: the denominator's series, then
/// the series both match, each with `Iterator::sum`.
fn ratio_by_two_sums(th: &Threshold, series: &[&SeriesData]) -> Option<f64> {
    let counts = |m: &dyn Fn(&Labels) -> bool| -> f64 {
        series
            .iter()
            .filter(|s| m(&s.labels))
            .map(|s| match &s.data {
                Data::Counter { increase } => *increase,
                Data::Distribution(d) => d.count() as f64,
                Data::Gauge { .. } => 0.0,
            })
            .sum()
    };
    let d = counts(&|l| th.denominator.matches(l));
    (d > 0.0).then(|| counts(&|l| th.denominator.matches(l) && th.numerator.matches(l)) / d)
}

proptest! {
    #![proptest_config(config())]

    /// The ratio in one pass equals, to the bit (the sign of a zero included), the two sums
    /// it replaced, for any numerator and denominator matchers over counters of any increase.
    #[test]
    fn ratio_in_one_pass_equals_the_two_sums(
        members in prop::collection::vec(
            (0usize..18, prop_oneof![Just(0.0f64), Just(-0.0f64), 0.0f64..1e6]),
            0..30,
        ),
        numerator in 0usize..13,
        denominator in 0usize..13,
    ) {
        let sets = label_sets();
        let series: Vec<SeriesData> = members
            .iter()
            .map(|(i, inc)| SeriesData {
                labels: std::borrow::Cow::Owned(
                    sets[*i].iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
                ),
                data: Data::Counter { increase: *inc },
                ids: None,
            })
            .collect();
        let refs: Vec<&SeriesData> = series.iter().collect();
        let sets = matcher_sets();
        let mut rule = a_rule(Vec::new(), Labels::new());
        let Condition::Threshold(th) = &mut rule.condition else { unreachable!() };
        th.aggregate = Aggregate::Ratio;
        th.numerator = sets[numerator].clone();
        th.denominator = sets[denominator].clone();
        let fast = aggregate(th, &refs, std::time::Duration::from_secs(300));
        prop_assert_eq!(fast.map(f64::to_bits), ratio_by_two_sums(th, &refs).map(f64::to_bits));
    }

    /// The set of known fingerprints answers as the alerts' map: for keys that are
    /// fingerprints, keys that merely parse as hex (upper case) and keys that do not.
    #[test]
    fn known_fingerprints_answer_as_the_alerts_map(
        held in prop::collection::vec((0usize..40, 0usize..3), 0..20),
        asked in prop::collection::vec(0usize..40, 1..20),
    ) {
        let fp = |i: usize| Fingerprint::of("rule", [("check", format!("c{i}").as_str())].into_iter());
        let mut state = State::default();
        for (i, how) in &held {
            let key = match how {
                0 => fp(*i).as_str().to_string(),
                1 => fp(*i).as_str().to_uppercase(),
                _ => format!("not-hex-{i}"),
            };
            let alert: super::eval::Alert = serde_json::from_value(serde_json::json!({
                "rule": "rule", "fingerprint": key, "labels": {}, "phase": "firing",
                "active_at": "2026-01-01T00:00:00Z", "fired_at": null, "pending_ms": 0,
                "last_eval": "2026-01-01T00:00:00Z", "last_true_at": "2026-01-01T00:00:00Z",
                "healthy_streak": 0, "value": null, "annotations": {}, "flapping": false,
            })).unwrap();
            state.alerts.insert(key, alert);
        }
        let known = KnownFingerprints::of(&state);
        for i in asked {
            let f = fp(i);
            prop_assert_eq!(known.holds(&f, &state), state.alerts.contains_key(f.as_str()));
        }
    }
}

proptest! {
    #![proptest_config(config())]

    /// A label read by scanning reads what the map's own search finds, for maps under and
    /// over the scan's size limit, names of equal length and names missing.
    #[test]
    fn label_value_reads_as_the_map_finds(
        labels in prop::collection::btree_map("[a-d]{1,3}", "[a-z]{0,3}", 0..24),
        asked in prop::collection::vec("[a-d]{0,3}", 1..10),
    ) {
        for name in asked {
            prop_assert_eq!(
                super::model::label_value(&labels, &name),
                labels.get(&name).map_or("", String::as_str)
            );
        }
    }
}

/// Label sets with more variety than [`label_sets`] for the interned-labels property: values
/// that sort differently from the order they are first pushed in, "" as an explicit value, a
/// value that is also a label name, labels now and then missing.
fn varied_label_sets() -> Vec<Vec<(&'static str, &'static str)>> {
    let mut out = Vec::new();
    for check in ["b", "a", "", "outcome"] {
        for location in [None, Some("us"), Some("eu"), Some("")] {
            for outcome in ["pass", "fail", "error"] {
                let mut l = vec![("check", check), ("outcome", outcome)];
                if let Some(loc) = location {
                    l.push(("location", loc));
                }
                out.push(l);
            }
        }
    }
    out
}

/// A memory source holding `synmon.http.errors` pushes (label set of [`varied_label_sets`],
/// minute, value).
fn http_errors_source(pushes: &[(usize, i64, f64)]) -> MemorySource {
    let sets = varied_label_sets();
    let mut src = MemorySource::new();
    for (set, minute, v) in pushes {
        src.push(&HTTP_ERRORS, &sets[*set], t(*minute), *v);
    }
    src
}

/// Matcher sets for the ratio's subsets, including values and names no series has.
fn subset_sets() -> Vec<Matchers> {
    let m = parse_matchers;
    vec![
        Matchers::default(),
        m(&[("outcome", "fail")]),
        m(&[("outcome", "=~pass|fail")]),
        m(&[("outcome", "!~pass")]),
        m(&[("outcome", "!=error")]),
        m(&[("location", "")]),
        m(&[("location", "!=")]),
        m(&[("location", "=~")]),
        m(&[("location", "=~e.*"), ("check", "!=a")]),
        m(&[("zone", "")]),
        m(&[("zone", "x")]),
        m(&[("zone", "!~x")]),
        m(&[("check", "nowhere")]),
        m(&[("check", "!=nowhere"), ("outcome", "=~.*a.*")]),
        m(&[("check", "=~outcome|")]),
    ]
}

proptest! {
    #![proptest_config(config())]

    /// Labels read as numbers give what the strings give: for a memory source's answers (which
    /// carry interned labels), the groups keyed by value ranks are the groups keyed by value
    /// strings (same order, keys and members), and a ratio with its subsets matched on ranks
    /// (regex verdicts remembered per value) equals, to the bit, the ratio matched on strings,
    /// for any `by` (names no series has included) and any numerator and denominator.
    #[test]
    fn interned_labels_group_and_match_as_strings(
        pushes in prop::collection::vec(
            (0usize..48, 0i64..4, 0.0f64..1_000.0),
            0..100,
        ),
        by in prop::collection::vec(
            prop::sample::select(vec!["check", "location", "outcome", "zone"]),
            0..3,
        ),
        numerator in 0usize..15,
        denominator in 0usize..15,
        matchers in 0usize..13,
    ) {
        let src = http_errors_source(&pushes);
        let window = std::time::Duration::from_secs(3 * 60);
        let series = src.series(&HTTP_ERRORS, &matcher_sets()[matchers], window, t(4));
        prop_assert!(series.iter().all(|s| s.ids.is_some()));
        let interner = src.label_ids().expect("the memory source interns labels");

        let mut rule = a_rule(by.iter().map(|s| s.to_string()).collect(), Labels::new());
        let Condition::Threshold(th) = &mut rule.condition else { unreachable!() };
        th.aggregate = Aggregate::Ratio;
        th.numerator = subset_sets()[numerator].clone();
        th.denominator = subset_sets()[denominator].clone();
        let th = th.clone();
        let names = ByLabels::of(&rule);
        let ids = ByIds::of(&names, interner);
        let fast = Groups::new(&names, Some(&ids), &series);
        let plain = Groups::new(&names, None, &series);
        prop_assert_eq!(fast.len(), plain.len());
        let mut ratio = Some(RatioMatch::new(&th, interner));
        for g in 0..fast.len() {
            prop_assert_eq!(fast.key(g), plain.key(g));
            prop_assert_eq!(fast.find(plain.key(g)), Some(g));
            let got: Vec<*const SeriesData> =
                fast.members(g).iter().map(|s| *s as *const SeriesData).collect();
            let want: Vec<*const SeriesData> =
                plain.members(g).iter().map(|s| *s as *const SeriesData).collect();
            prop_assert_eq!(got, want);
            // One compiled ratio across the rule's groups, as the evaluator keeps it.
            let span = std::time::Duration::from_secs(180);
            let members = fast.members(g);
            prop_assert_eq!(
                aggregate_in(&th, members, span, &mut ratio).map(f64::to_bits),
                aggregate(&th, members, span).map(f64::to_bits)
            );
        }
    }
}

/// The pushes of [`memory_source_answers_like_a_scan_of_every_series`] applied to the source
/// and to the test's table (kept in time order, equal times in push order).
fn push_all(
    src: &mut MemorySource,
    table: &mut Table,
    pushes: &[(usize, usize, i64, Option<f64>)],
) {
    let sets = label_sets();
    for (metric, set, minute, v) in pushes {
        let labels = &sets[*set];
        src.push_opt(METRICS[*metric], labels, t(*minute), *v);
        let key: Labels = labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let points = table.entry((*metric, key)).or_default();
        points.push((t(*minute), *v));
        // Stable: equal times keep the order they were pushed in.
        points.sort_by_key(|(t, _)| *t);
    }
}

/// Shared patterns for [`ratios_sharing_regex_verdicts_equal_the_string_ratios`]: the same
/// pattern as `=~` and `!~`, and patterns [`subset_sets`] has.
fn shared_subset_sets() -> Vec<Matchers> {
    let m = parse_matchers;
    let mut out = subset_sets();
    out.extend([
        m(&[("outcome", "=~pass")]),
        m(&[("outcome", "!~pass|fail")]),
        m(&[("location", "!~e.*")]),
        m(&[("check", "=~nowhere|a"), ("outcome", "!~pass")]),
    ]);
    out
}

proptest! {
    #![proptest_config(config())]

    /// The memory source reads through a compact copy of its table rebuilt after every push:
    /// answers read between rounds of pushes (to new series and to series already read, in and
    /// out of time order) equal a scan of the table as it is then.
    #[test]
    fn memory_source_reads_after_every_push_like_a_scan(
        rounds in prop::collection::vec(
            (
                prop::collection::vec(
                    (0usize..3, 0usize..18, -40i64..=0, prop::option::weighted(0.9, 0.0f64..3_000.0)),
                    0..30,
                ),
                prop::collection::vec((0usize..3, 0usize..13, 0u64..45, -5i64..=0), 1..5),
            ),
            1..5,
        ),
    ) {
        let mut src = MemorySource::new();
        let mut table = Table::new();
        let matcher_sets = matcher_sets();
        for (pushes, queries) in &rounds {
            push_all(&mut src, &mut table, pushes);
            answers_like_a_scan(&src, &table, &matcher_sets, queries)?;
        }
    }

    /// Groups built in the vectors the groups of the rules before left (as the evaluator
    /// hands them from rule to rule, each rule's series a new answer) are the groups built
    /// afresh, by value ranks and by strings: same order, keys and members.
    #[test]
    fn groups_in_reused_buffers_are_fresh_groups(
        pushes in prop::collection::vec((0usize..48, 0i64..4, 0.0f64..1_000.0), 0..100),
        rules in prop::collection::vec(
            (
                prop::collection::vec(
                    prop::sample::select(vec!["check", "location", "outcome", "zone"]),
                    0..3,
                ),
                0usize..13,
            ),
            1..6,
        ),
    ) {
        let src = http_errors_source(&pushes);
        let interner = src.label_ids().expect("the memory source interns labels");
        let window = std::time::Duration::from_secs(3 * 60);
        let mut buffers = GroupBuffers::default();
        for (by, matchers) in &rules {
            let series = src.series(&HTTP_ERRORS, &matcher_sets()[*matchers], window, t(4));
            let rule = a_rule(by.iter().map(|s| s.to_string()).collect(), Labels::new());
            let names = ByLabels::of(&rule);
            let ids = ByIds::of(&names, interner);
            for by_ids in [Some(&ids), None] {
                let reused = Groups::new_in(&names, by_ids, &series, &mut buffers);
                let fresh = Groups::new(&names, by_ids, &series);
                prop_assert_eq!(reused.len(), fresh.len());
                for g in 0..fresh.len() {
                    prop_assert_eq!(reused.key(g), fresh.key(g));
                    let got: Vec<*const SeriesData> =
                        reused.members(g).iter().map(|s| *s as *const SeriesData).collect();
                    let want: Vec<*const SeriesData> =
                        fresh.members(g).iter().map(|s| *s as *const SeriesData).collect();
                    prop_assert_eq!(got, want);
                }
                reused.recycle(&mut buffers);
            }
        }
    }

    /// Ratio rules sharing one evaluation's regex verdicts (by pattern and value rank, `!~`
    /// reading them negated) give, to the bit, the ratios matched on strings, whatever rules
    /// came before them with the same or other patterns.
    #[test]
    fn ratios_sharing_regex_verdicts_equal_the_string_ratios(
        pushes in prop::collection::vec((0usize..48, 0i64..4, 0.0f64..1_000.0), 0..100),
        by in prop::collection::vec(
            prop::sample::select(vec!["check", "location", "outcome", "zone"]),
            0..3,
        ),
        rules in prop::collection::vec((0usize..19, 0usize..19, 0usize..13), 1..8),
    ) {
        let src = http_errors_source(&pushes);
        let interner = src.label_ids().expect("the memory source interns labels");
        let window = std::time::Duration::from_secs(3 * 60);
        let subsets = shared_subset_sets();
        // The rules outlive the verdicts, as a rule set outlives an evaluation.
        let thresholds: Vec<(Threshold, usize)> = rules
            .iter()
            .map(|(numerator, denominator, matchers)| {
                let mut rule = a_rule(Vec::new(), Labels::new());
                let Condition::Threshold(th) = &mut rule.condition else { unreachable!() };
                th.aggregate = Aggregate::Ratio;
                th.numerator = subsets[*numerator].clone();
                th.denominator = subsets[*denominator].clone();
                (th.clone(), *matchers)
            })
            .collect();
        let rule = a_rule(by.iter().map(|s| s.to_string()).collect(), Labels::new());
        let names = ByLabels::of(&rule);
        let ids = ByIds::of(&names, interner);
        let mut verdicts = Verdicts::default();
        for (th, matchers) in &thresholds {
            let series = src.series(&HTTP_ERRORS, &matcher_sets()[*matchers], window, t(4));
            let groups = Groups::new(&names, Some(&ids), &series);
            let mut ratio = Some(RatioMatch::with_verdicts(th, interner, verdicts));
            let span = std::time::Duration::from_secs(180);
            for g in 0..groups.len() {
                let members = groups.members(g);
                prop_assert_eq!(
                    aggregate_in(th, members, span, &mut ratio).map(f64::to_bits),
                    aggregate(th, members, span).map(f64::to_bits)
                );
            }
            verdicts = ratio.expect("compiled").into_verdicts();
        }
    }

    /// An alert's key kept as a number (16 lowercase hex digits) or as itself finds the alert
    /// its string finds: for fingerprints and for keys that merely parse as hex (upper case,
    /// other lengths, a sign) or do not.
    #[test]
    fn alert_keys_find_what_their_string_finds(
        held in prop::collection::vec((0usize..40, 0usize..5), 0..20),
        asked in prop::collection::vec((0usize..40, 0usize..5), 1..20),
    ) {
        let fp = |i: usize| Fingerprint::of("rule", [("check", format!("c{i}").as_str())].into_iter());
        let key = |i: usize, how: usize| {
            let f = fp(i).as_str().to_string();
            match how {
                0 => f,
                1 => f.to_uppercase(),
                2 => f[1..].to_string(),
                3 => format!("+{}", &f[1..]),
                _ => format!("not-hex-{i}"),
            }
        };
        let mut state = State::default();
        for (i, how) in &held {
            let k = key(*i, *how);
            let alert: super::eval::Alert = serde_json::from_value(serde_json::json!({
                "rule": "rule", "fingerprint": k, "labels": {}, "phase": "firing",
                "active_at": "2026-01-01T00:00:00Z", "fired_at": null, "pending_ms": 0,
                "last_eval": "2026-01-01T00:00:00Z", "last_true_at": "2026-01-01T00:00:00Z",
                "healthy_streak": 0, "value": null, "annotations": {}, "flapping": false,
            })).unwrap();
            state.alerts.insert(k, alert);
        }
        for k in state.alerts.keys() {
            let found = AlertKey::of(k).find(&state.alerts).map(|a| a as *const _);
            prop_assert_eq!(found, state.alerts.get(k).map(|a| a as *const _));
        }
        for (i, how) in asked {
            let k = key(i, how);
            let found = AlertKey::of(&k).find(&state.alerts).map(|a| a as *const _);
            prop_assert_eq!(found, state.alerts.get(&k).map(|a| a as *const _));
        }
    }
}

proptest! {
    #![proptest_config(config())]

    /// Numbers and windows written at the end of a summary read as `fmt_num` and
    /// `fmt_duration` write them: integers, fractions trimmed of zeros, huge, tiny, negative
    /// and non-finite numbers; windows from nothing to years, sub-second parts included.
    #[test]
    fn numbers_and_windows_render_as_their_strings(
        values in prop::collection::vec(
            prop_oneof![
                any::<f64>(),
                -1e6f64..1e6,
                (-1_000i64..1_000).prop_map(|v| v as f64),
                (-1_000i64..1_000).prop_map(|v| v as f64 / 8.0),
                Just(1e15), Just(-1e15), Just(0.00004), Just(-0.0), Just(f64::NAN),
                Just(f64::INFINITY),
            ],
            1..10,
        ),
        windows in prop::collection::vec((0u64..40_000_000, 0u32..1_000_000_000), 1..10),
        prefix in "[a-z ]{0,4}",
    ) {
        for v in values {
            let mut s = prefix.clone();
            super::eval::push_num(&mut s, v);
            prop_assert_eq!(s, format!("{prefix}{}", super::eval::fmt_num(v)));
        }
        for (secs, nanos) in windows {
            let d = std::time::Duration::new(secs, nanos);
            let mut s = prefix.clone();
            super::eval::push_duration(&mut s, d);
            prop_assert_eq!(s, format!("{prefix}{}", super::slo::fmt_duration(d)));
        }
    }
}

/// The memory source's answers without their label numbers: the evaluator groups and matches
/// them as strings.
struct Plain<'a>(&'a MemorySource);

impl Source for Plain<'_> {
    fn series(
        &self,
        metric: &'static MetricDef,
        matchers: &Matchers,
        window: std::time::Duration,
        end: DateTime<Utc>,
    ) -> Vec<SeriesData<'_>> {
        let mut out = self.0.series(metric, matchers, window, end);
        for s in &mut out {
            s.ids = None;
        }
        out
    }

    fn data_since(&self, metric: &'static MetricDef, matchers: &Matchers) -> Option<DateTime<Utc>> {
        self.0.data_since(metric, matchers)
    }
}

/// A rule of the evaluation property: `kind` picks the metric and aggregate (a p95 or max of
/// latencies, a rate or ratio of errors, the last or min of a gauge).
fn varied_rule(
    i: usize,
    kind: usize,
    by: &[&str],
    matchers: &Matchers,
    subsets: (&Matchers, &Matchers),
    threshold: f64,
    pending: u64,
) -> Rule {
    use super::model::{Part, Template};
    let (metric, aggregate): (&'static MetricDef, Aggregate) = match kind {
        0 => (&CHECK_LATENCY, Aggregate::P95),
        1 => (&CHECK_LATENCY, Aggregate::Max),
        2 => (&HTTP_ERRORS, Aggregate::Rate),
        3 => (&HTTP_ERRORS, Aggregate::Ratio),
        4 => (&PROBE_UNHEALTHY, Aggregate::Last),
        _ => (&PROBE_UNHEALTHY, Aggregate::Min),
    };
    let mut rule = a_rule(by.iter().map(|s| s.to_string()).collect(), Labels::new());
    rule.name = format!("rule_{}", i % 4);
    rule.pending_for = std::time::Duration::from_secs(pending);
    rule.summary = Some(Template {
        parts: vec![
            Part::Label("location".into()),
            Part::Text(": ".into()),
            Part::Value,
            Part::Text(" over ".into()),
            Part::Window,
        ],
    });
    let Condition::Threshold(th) = &mut rule.condition else {
        unreachable!()
    };
    th.metric = metric;
    th.aggregate = aggregate;
    th.matchers = matchers.clone();
    th.numerator = subsets.0.clone();
    th.denominator = subsets.1.clone();
    th.threshold = threshold;
    th.window = std::time::Duration::from_secs(10 * 60);
    rule
}

proptest! {
    #![proptest_config(config())]

    /// Evaluations over the memory source (compact reads, groups by ranks, ratios on ranks
    /// with shared regex verdicts, alerts kept in place) give the transitions and the state
    /// that evaluations over the same answers read as strings give, evaluation after
    /// evaluation, for rules of every kind (some sharing a name) over series that come, go
    /// and cross their thresholds.
    #[test]
    fn evaluations_over_numbers_equal_evaluations_over_strings(
        pushes in prop::collection::vec(
            (0usize..3, 0usize..48, -30i64..=12, 0.0f64..1_000.0),
            0..150,
        ),
        rules in prop::collection::vec(
            (
                0usize..6,
                prop::collection::vec(
                    prop::sample::select(vec!["check", "location", "outcome", "zone"]),
                    0..3,
                ),
                0usize..13,
                (0usize..19, 0usize..19),
                prop_oneof![Just(0.0f64), Just(0.5), 1.0f64..600.0],
                prop_oneof![Just(0u64), Just(120)],
            ),
            1..8,
        ),
    ) {
        let sets = varied_label_sets();
        let mut src = MemorySource::new();
        for (metric, set, minute, v) in &pushes {
            src.push(METRICS[*metric], &sets[*set], t(*minute), *v);
        }
        let (matcher_sets, subsets) = (matcher_sets(), shared_subset_sets());
        let mut set = super::model::RuleSet::default();
        for (i, (kind, by, m, (num, den), threshold, pending)) in rules.iter().enumerate() {
            set.rules.push(varied_rule(
                i,
                *kind,
                by,
                &matcher_sets[*m],
                (&subsets[*num], &subsets[*den]),
                *threshold,
                *pending,
            ));
        }
        let (mut fast, mut plain) = (State::default(), State::default());
        for minute in 0..12 {
            let now = t(minute);
            let a = super::eval::evaluate(&set, &src, &mut fast, now);
            let b = super::eval::evaluate(&set, &Plain(&src), &mut plain, now);
            prop_assert_eq!(serde_json::to_string(&a).unwrap(), serde_json::to_string(&b).unwrap());
            prop_assert_eq!(&fast, &plain);
        }
    }
}

proptest! {
    #![proptest_config(config())]

    /// A rule without alerts of its own passes its healthy groups over without looking for
    /// their alerts: in a state whose alerts are keyed by their fingerprints (as the evaluator
    /// keys them), a group's fingerprint finds only an alert of the group's own rule, so the
    /// lookup skipped would have found nothing.
    #[test]
    fn a_groups_fingerprint_finds_only_its_own_rules_alert(
        held in prop::collection::vec((0usize..6, 0usize..18), 0..30),
        asked in prop::collection::vec((0usize..6, 0usize..18), 1..30),
        by in prop::collection::vec(
            prop::sample::select(vec!["check", "location", "outcome", "zone"]),
            0..3,
        ),
    ) {
        let sets = label_sets();
        let labels_of = |set: usize| -> Labels {
            sets[set].iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
        };
        let rule_of = |r: usize| {
            let mut rule = a_rule(by.iter().map(|s| s.to_string()).collect(), Labels::new());
            rule.name = format!("rule_{r}");
            rule
        };
        let mut state = State::default();
        for (r, set) in &held {
            let rule = rule_of(*r);
            let names = ByLabels::of(&rule);
            let series = labels_of(*set);
            let mut labels = names.labels(&names.key(&series));
            labels.insert("alertname".into(), rule.name.clone());
            labels.insert("severity".into(), rule.severity.clone());
            let fp = fingerprint(&rule.name, &labels);
            let alert: super::eval::Alert = serde_json::from_value(serde_json::json!({
                "rule": rule.name, "fingerprint": fp, "labels": labels, "phase": "firing",
                "active_at": "2026-01-01T00:00:00Z", "fired_at": null, "pending_ms": 0,
                "last_eval": "2026-01-01T00:00:00Z", "last_true_at": "2026-01-01T00:00:00Z",
                "healthy_streak": 0, "value": null, "annotations": {}, "flapping": false,
            })).unwrap();
            state.alerts.insert(fp, alert);
        }
        let known = KnownFingerprints::of(&state);
        for (r, set) in asked {
            let rule = rule_of(r);
            let names = ByLabels::of(&rule);
            let fixed = fixed_labels(&rule);
            let series = labels_of(set);
            let key = names.key(&series);
            let fp = RuleFingerprints::new(&rule.name, &names.0, &fixed).of(&key);
            if let Some(a) = known.find(&fp, &state) {
                prop_assert_eq!(&a.rule, &rule.name);
            }
            let own = held.iter().any(|(h, s)| {
                *h == r && names.key(&labels_of(*s)) == key
            });
            prop_assert_eq!(known.find(&fp, &state).is_some(), own);
        }
    }
}
