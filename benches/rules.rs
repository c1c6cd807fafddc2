//! Rule evaluation benchmark (harness = false): prints figures for BENCHMARKS.md.
//!
//! `cargo bench --bench rules`
//!
//! 10,000 threshold rules (a third each: p95 of a latency distribution, a failure ratio of a
//! counter, the last value of a gauge; all grouped `by: [location]`) over 100,000 series in a
//! [`MemorySource`], evaluated 20 times: median and p95 time per evaluation (goal <= 50 ms),
//! VmRSS before/after and the size of the evaluator's [`State`].
//!
//! Series: 2,000 checks x 5 locations of `synmon.check.latency` (outcomes pass/fail: 20,000),
//! `synmon.check.runs` (outcomes pass/fail/error x attempts 1/2: 60,000),
//! `synmon.probe.unhealthy` (10,000) and `synmon.http.errors` (10,000, read by no rule).
//!
//! Second figure: the shipped example rules (`synmon.example.yaml` + `alerts/`, including the
//! 30-day SLOs) over a metrics [`Registry`] holding 30 days of runs of the example's checks
//! (1 run a minute each, at its one location), evaluated the way the daemon does it (counters
//! sampled, rules, then SLO status): what one evaluation costs the daemon.
//!
//! `RULES_BENCH=example` runs only the second figure (e.g. in a debug build:
//! `RULES_BENCH=example cargo test --bench rules`); `RULES_BENCH=synthetic` only the first.
//! `RULES_BENCH_EVALUATIONS=N` evaluates the synthetic rules N times instead of 20 (longer for
//! a profiler).
//!
//! Each figure ends with a digest (FNV-1a over the JSON of every transition and of the final
//! state): two builds that print the same digest judged every alert the same way, which is
//! how a faster evaluator is checked against the one before it on the same data.

use std::hint::black_box;
use std::io::Write;
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeZone, Utc};
use synmon::metrics::catalog::{self, MetricDef};
use synmon::metrics::registry::Registry;
use synmon::outcome::Outcome;
use synmon::rules::model::{
    Aggregate, Condition, Matcher, Matchers, NoData, Op, Part, Template, Threshold,
};
use synmon::rules::registry_source::{CounterHistory, RegistrySource};
use synmon::rules::{
    BurnRates, Labels, MemorySource, Rule, RuleSet, State, evaluate, evaluate_with,
};
use synmon::run::{CheckKind, RunResult};
use synmon::settings::Config;

const CHECKS: usize = 2_000;
const LOCATIONS: [&str; 5] = ["eu-west", "eu-central", "us-east", "us-west", "ap-south"];
const RULES: usize = 10_000;
const EVALUATIONS: usize = 20;

fn t(seconds: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(1_699_920_000 + seconds, 0).unwrap()
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// FNV-1a 64 over everything written to it: the figures' digest.
struct Digest(u64);
impl Default for Digest {
    fn default() -> Self {
        Digest(0xcbf2_9ce4_8422_2325)
    }
}
impl Write for Digest {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        for b in buf {
            self.0 ^= u64::from(*b);
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
impl Digest {
    fn add(&mut self, v: &impl serde::Serialize) {
        serde_json::to_writer(&mut *self, v).expect("serializes");
    }
}

fn metric(name: &str) -> &'static MetricDef {
    catalog::lookup(name).expect("catalogued metric")
}

fn matchers(pairs: &[(&str, &str)]) -> Matchers {
    Matchers(
        pairs
            .iter()
            .map(|(l, v)| Matcher::parse(l, v).expect("valid matcher"))
            .collect(),
    )
}

/// 100,000 series; every tenth check is slow, failing and has a broken probe.
fn source(now: DateTime<Utc>) -> (MemorySource, usize) {
    let mut src = MemorySource::new();
    let mut n = 0;
    let latency = metric("synmon.check.latency");
    let runs = metric("synmon.check.runs");
    let unhealthy = metric("synmon.probe.unhealthy");
    let errors = metric("synmon.http.errors");
    for c in 0..CHECKS {
        let check = format!("check_{c:04}");
        let bad = c % 10 == 0;
        for (li, loc) in LOCATIONS.iter().enumerate() {
            for outcome in ["pass", "fail"] {
                let labels = [
                    ("check", check.as_str()),
                    ("location", *loc),
                    ("target", "production"),
                    ("outcome", outcome),
                ];
                for k in 0..5i64 {
                    let base = if bad { 600.0 } else { 120.0 };
                    let v = base + ((c + li) as f64 * 7.0 + k as f64 * 31.0) % 200.0;
                    src.push(
                        latency,
                        &labels,
                        now - chrono::Duration::seconds(30 + 50 * k),
                        v,
                    );
                }
                n += 1;
            }
            for outcome in ["pass", "fail", "error"] {
                for attempt in ["1", "2"] {
                    let labels = [
                        ("check", check.as_str()),
                        ("location", *loc),
                        ("outcome", outcome),
                        ("attempt", attempt),
                    ];
                    let grow = match (outcome, bad) {
                        ("pass", _) => 10.0,
                        ("fail", true) => 5.0,
                        ("fail", false) => 0.0,
                        _ => 1.0,
                    };
                    src.push(runs, &labels, now - chrono::Duration::minutes(10), 100.0);
                    src.push(
                        runs,
                        &labels,
                        now - chrono::Duration::minutes(1),
                        100.0 + grow,
                    );
                    n += 1;
                }
            }
            let labels = [("check", check.as_str()), ("location", *loc)];
            let v = if bad && li == 0 { 1.0 } else { 0.0 };
            src.push(unhealthy, &labels, now - chrono::Duration::minutes(1), v);
            n += 1;
            let labels = [
                ("check", check.as_str()),
                ("service", *loc),
                ("status", "500"),
            ];
            src.push(errors, &labels, now - chrono::Duration::minutes(10), 1.0);
            src.push(errors, &labels, now - chrono::Duration::minutes(1), 2.0);
            n += 1;
        }
    }
    (src, n)
}

fn rules() -> RuleSet {
    let latency = metric("synmon.check.latency");
    let runs = metric("synmon.check.runs");
    let unhealthy = metric("synmon.probe.unhealthy");
    let mut set = RuleSet::default();
    for i in 0..RULES {
        let check = format!("check_{:04}", (i / 3) % CHECKS);
        let (th, name) = match i % 3 {
            0 => (
                Threshold {
                    metric: latency,
                    matchers: matchers(&[("check", &check), ("outcome", "pass")]),
                    aggregate: Aggregate::P95,
                    window: Duration::from_secs(300),
                    numerator: Matchers::default(),
                    denominator: Matchers::default(),
                    op: Op::Gt,
                    threshold: 400.0,
                    across: None,
                    resolve_window: None,
                    min_coverage: None,
                },
                "latency_p95",
            ),
            1 => (
                Threshold {
                    metric: runs,
                    matchers: matchers(&[("check", &check)]),
                    aggregate: Aggregate::Ratio,
                    window: Duration::from_secs(300),
                    numerator: matchers(&[("outcome", "fail")]),
                    denominator: matchers(&[("outcome", "=~pass|fail")]),
                    op: Op::Gt,
                    threshold: 0.05,
                    across: None,
                    resolve_window: None,
                    min_coverage: None,
                },
                "error_ratio",
            ),
            _ => (
                Threshold {
                    metric: unhealthy,
                    matchers: matchers(&[("check", &check)]),
                    aggregate: Aggregate::Last,
                    window: Duration::from_secs(300),
                    numerator: Matchers::default(),
                    denominator: Matchers::default(),
                    op: Op::Ge,
                    threshold: 1.0,
                    across: None,
                    resolve_window: None,
                    min_coverage: None,
                },
                "probe_unhealthy",
            ),
        };
        set.rules.push(Rule {
            name: format!("{name}_{i:05}"),
            file: "bench.yaml".into(),
            condition: Condition::Threshold(th),
            by: vec!["location".into()],
            pending_for: Duration::from_secs(if i % 2 == 0 { 0 } else { 120 }),
            keep_firing_for: Duration::ZERO,
            recover_after: 1,
            no_data: NoData::default(),
            severity: "warning".into(),
            route: Some("slack-alerts".into()),
            labels: Labels::new(),
            summary: Some(Template {
                parts: vec![
                    Part::Label("location".into()),
                    Part::Text(": ".into()),
                    Part::Value,
                    Part::Text(" over ".into()),
                    Part::Window,
                ],
            }),
            description: None,
            runbook_url: None,
            flap: None,
            inhibits: Vec::new(),
        });
    }
    set
}

fn main() {
    let which = std::env::var("RULES_BENCH").unwrap_or_default();
    if which != "example" {
        synthetic();
    }
    if which != "synthetic" {
        example();
    }
}

fn synthetic() {
    let now = t(0);
    let rss0 = rss_kib();
    let (src, n_series) = source(now);
    let rss_source = rss_kib();
    let set = rules();
    let rss_rules = rss_kib();
    let mut state = State::default();
    let evaluations = std::env::var("RULES_BENCH_EVALUATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(EVALUATIONS);
    let mut times = Vec::with_capacity(evaluations);
    let mut transitions = 0;
    let mut digest = Digest::default();
    for k in 0..evaluations {
        let at = now + chrono::Duration::seconds(k as i64);
        let start = Instant::now();
        let out = evaluate(&set, &src, &mut state, black_box(at));
        times.push(start.elapsed());
        transitions += out.len();
        digest.add(&out);
    }
    digest.add(&state);
    let rss_eval = rss_kib();
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let median = times[times.len() / 2];
    let p95 = times[(times.len() * 95).div_ceil(100) - 1];
    let state_json = serde_json::to_vec(&state).expect("state serializes").len();
    println!(
        "rules: {} rules over {n_series} series, {evaluations} evaluations",
        set.rules.len()
    );
    println!(
        "  evaluate: median {:.1} ms, p95 {:.1} ms, min {:.1} ms, max {:.1} ms (goal <= 50 ms) -> {}",
        ms(median),
        ms(p95),
        ms(times[0]),
        ms(times[times.len() - 1]),
        if ms(median) <= 50.0 { "met" } else { "MISSED" }
    );
    println!(
        "  state: {} active alerts, {} transitions in total, {:.1} KiB as JSON; digest {:016x}",
        state.alerts.len(),
        transitions,
        state_json as f64 / 1024.0,
        digest.0
    );
    println!(
        "  VmRSS: {rss0} KiB at start, +{} KiB for the source, +{} KiB for the rules, +{} KiB after evaluating ({} KiB)",
        rss_source.saturating_sub(rss0),
        rss_rules.saturating_sub(rss_source),
        rss_eval.saturating_sub(rss_rules),
        rss_eval
    );
}

/// Days of runs the example registry holds (the longest window the example rules read).
const EXAMPLE_DAYS: i64 = 30;
const EXAMPLE_EVALUATIONS: usize = 5;

/// A tiny deterministic generator (the bench needs no `rand`).
struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }
}

/// 30 days of runs of every check of the example config, 1 a minute each, as `synmon run`
/// records them: ~0.1% failures (retried once, passing), ~0.1% probe errors, latencies
/// 90-250 ms with a 2% slow tail. Returns the registry and the number of runs recorded.
fn example_registry(cfg: &Config, end: DateTime<Utc>) -> (Registry, u64) {
    let reg = Registry::new();
    let mut checks: Vec<(String, CheckKind)> = cfg
        .journeys
        .iter()
        .map(|j| (j.name.clone(), CheckKind::Journey))
        .collect();
    checks.extend(
        cfg.checks
            .http
            .iter()
            .map(|h| (h.name.clone(), CheckKind::Http)),
    );
    checks.extend(
        cfg.checks
            .sql
            .iter()
            .map(|h| (h.name.clone(), CheckKind::Sql)),
    );
    let mut rng = Lcg(42);
    let mut n = 0u64;
    let minutes = EXAMPLE_DAYS * 24 * 60;
    for m in 0..minutes {
        let minute = end - chrono::Duration::minutes(minutes - m);
        for (i, (name, kind)) in checks.iter().enumerate() {
            let at = minute + chrono::Duration::seconds(i as i64 % 60);
            let mut run = RunResult::begin(name, *kind, "staging", &cfg.location, at);
            let r = rng.next() % 1000;
            run.outcome = match r {
                0 => Outcome::Fail,
                1 => Outcome::Error,
                _ => Outcome::Pass,
            };
            let slow = rng.next().is_multiple_of(50);
            run.total_ms = 90.0 + (rng.next() % 160) as f64 + if slow { 600.0 } else { 0.0 };
            reg.record_run(&run, at).expect("catalogued metrics");
            n += 1;
            if run.outcome == Outcome::Fail {
                run.attempt = 2;
                run.outcome = Outcome::Pass;
                let later = at + chrono::Duration::seconds(5);
                reg.record_run(&run, later).expect("catalogued metrics");
                n += 1;
            }
        }
    }
    (reg, n)
}

fn example() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let cfg = Config::load(&root.join("synmon.example.yaml")).expect("example config loads");
    let end = t(0);
    let rss0 = rss_kib();
    let fill = Instant::now();
    let (reg, runs) = example_registry(&cfg, end);
    let fill = fill.elapsed();
    let rss_filled = rss_kib();
    let mut counters = CounterHistory::default();
    let mut state = State::default();
    let mut times = Vec::new();
    let (mut rules_ms, mut slo_ms, mut unshared_ms) = (Vec::new(), Vec::new(), Vec::new());
    let mut digest = Digest::default();
    for k in 0..EXAMPLE_EVALUATIONS {
        let now = end + chrono::Duration::seconds(30 * k as i64);
        let start = Instant::now();
        counters.sample(&reg, now);
        let source = RegistrySource {
            registry: &reg,
            remote: None,
            counters: &counters,
        };
        // As the daemon's `evaluate_rules`: the rules and the SLO status read each burn rate
        // once, through one `BurnRates`.
        let burns = BurnRates::default();
        let out = evaluate_with(
            &cfg.rules,
            &source,
            &mut state,
            black_box(now),
            &|| false,
            &burns,
        )
        .expect("not stopped");
        let after_rules = Instant::now();
        let slos = synmon::rules::slo_status_with(&cfg.rules.slos, &source, now, &|| false, &burns)
            .expect("not stopped");
        let done = Instant::now();
        // The SLO status alone, computing its burn rates again (as the bench measured it
        // before the burn rates were shared).
        let again = Instant::now();
        let unshared = synmon::rules::slo_status(&cfg.rules.slos, &source, now);
        unshared_ms.push(again.elapsed());
        assert_eq!(
            serde_json::to_string(&unshared).unwrap(),
            serde_json::to_string(&slos).unwrap(),
            "shared burn rates read as computed ones"
        );
        digest.add(&out);
        digest.add(&slos);
        black_box((out, slos));
        times.push(done - start);
        rules_ms.push(after_rules - start);
        slo_ms.push(done - after_rules);
    }
    digest.add(&state);
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let median = |v: &mut Vec<Duration>| {
        v.sort();
        v[v.len() / 2]
    };
    println!(
        "example rules: {} rules + {} SLOs over {EXAMPLE_DAYS} days of runs ({runs} runs of {} series, filled in {:.1} s, +{} KiB VmRSS)",
        cfg.rules.rules.len(),
        cfg.rules.slos.len(),
        reg.snapshot(end).series.len(),
        fill.as_secs_f64(),
        rss_filled.saturating_sub(rss0),
    );
    let (min, max) = (
        times.iter().min().copied().unwrap_or_default(),
        times.iter().max().copied().unwrap_or_default(),
    );
    println!(
        "  one evaluation ({} {} build): median {:.1} ms (rules {:.1} ms, SLO status {:.1} ms with the rules' burn rates; {:.1} ms computing its own), min {:.1} ms, max {:.1} ms, {EXAMPLE_EVALUATIONS} evaluations",
        if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        },
        std::env::consts::ARCH,
        ms(median(&mut times)),
        ms(median(&mut rules_ms)),
        ms(median(&mut slo_ms)),
        ms(median(&mut unshared_ms)),
        ms(min),
        ms(max),
    );
    println!(
        "  state: {} active alerts; VmRSS {} KiB after evaluating; digest {:016x}",
        state.alerts.len(),
        rss_kib(),
        digest.0
    );
}
