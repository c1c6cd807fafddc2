//! Prometheus text exposition (format 0.0.4) of the registry, served at `/metrics`.
//!
//! Counters keep their `_total` names; gauges are exported in base units (percent becomes a
//! 0..1 ratio, days become seconds); latency distributions are summaries: quantiles 0.5, 0.95
//! and 0.99 over the 5-minute window (NaN when the window is empty, as the Prometheus client
//! libraries do), with `_sum` and `_count` since process start so `rate()` works. Summaries
//! rather than bucketed histograms: the HDR histogram already gives exact-to-1% quantiles per
//! series, and a 1,000-check scrape stays small. Stale gauges are left out entirely: an absent
//! series is "no data" to Prometheus, a 0 would be a lie. Every family's HELP and TYPE are
//! written only when it has at least one sample, which keeps `promtool check metrics` quiet.

use std::fmt::Write as _;

use chrono::{DateTime, Utc};

use super::catalog::MetricDef;
pub use super::registry::escape_label_value;
use super::registry::{Registry, SeriesRead};
use super::window::{Accumulator, Window};

/// The `Content-Type` of the response.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Quantiles of every summary.
pub const SUMMARY_QUANTILES: [(f64, &str); 3] = [(0.5, "0.5"), (0.95, "0.95"), (0.99, "0.99")];

/// [`SUMMARY_QUANTILES`] alone (ascending), for one scan per series.
const SUMMARY_QS: [f64; 3] = [
    SUMMARY_QUANTILES[0].0,
    SUMMARY_QUANTILES[1].0,
    SUMMARY_QUANTILES[2].0,
];

/// The window summaries' quantiles cover.
pub const SUMMARY_WINDOW: Window = Window::M5;

/// Render every series of the registry.
pub fn render(registry: &Registry, now: DateTime<Utc>) -> String {
    let mut out = String::new();
    render_into(registry, now, &mut out);
    out
}

/// Bytes reserved per distribution series (five samples of name, labels and value; a 1,000-check
/// scrape averages ~600) and per counter or gauge series.
const DISTRIBUTION_BYTES: usize = 640;
const SCALAR_BYTES: usize = 160;

/// Render into a caller's buffer (reused between scrapes).
///
/// The buffer is sized for the whole scrape before writing: a 1,000-check scrape is ~4 MiB, and
/// growing it by doubling from empty copies it over and over on every scrape.
pub fn render_into(registry: &Registry, now: DateTime<Utc>, out: &mut String) {
    let mut acc = Accumulator::new();
    let families: Vec<_> = registry.families().collect();
    let estimate: usize = families
        .iter()
        .map(|(def, series)| {
            let per = match def.kind {
                super::catalog::MetricKind::Distribution => DISTRIBUTION_BYTES,
                _ => SCALAR_BYTES,
            };
            per * series.len()
        })
        .sum();
    out.reserve(estimate);
    for (def, series) in families {
        if series.is_empty() {
            continue;
        }
        let family_start = out.len();
        write_header(out, def);
        let body_start = out.len();
        for s in &series {
            let labels = &*s.prom_labels;
            match s.read() {
                SeriesRead::Counter(v) => {
                    write_sample(out, def.prom_name, "", labels, None);
                    if def.prom_scale == 1.0 {
                        write_u64(out, v);
                        out.push('\n');
                    } else {
                        write_float(out, def.to_prom(v as f64));
                        out.push('\n');
                    }
                }
                SeriesRead::Gauge(Some(v)) => {
                    write_sample(out, def.prom_name, "", labels, None);
                    write_float(out, def.to_prom(v));
                    out.push('\n');
                }
                SeriesRead::Gauge(None) => {} // stale: not exported
                SeriesRead::Distribution => {
                    s.with_histogram(|h| {
                        acc.clear();
                        h.accumulate(SUMMARY_WINDOW, now, &mut acc);
                        let mut values = [None; SUMMARY_QUANTILES.len()];
                        acc.quantiles_us(&SUMMARY_QS, &mut values);
                        for ((_, q_label), value) in SUMMARY_QUANTILES.iter().zip(values) {
                            write_sample(out, def.prom_name, "", labels, Some(q_label));
                            match value {
                                Some(us) if def.prom_scale == 0.001 => {
                                    write_micros_as_units(out, us)
                                }
                                Some(us) => write_float(out, def.to_prom(us as f64 / 1000.0)),
                                None => out.push_str("NaN"),
                            }
                            out.push('\n');
                        }
                        write_sample(out, def.prom_name, "_sum", labels, None);
                        write_float(out, def.to_prom(h.total_sum_ms()));
                        out.push('\n');
                        write_sample(out, def.prom_name, "_count", labels, None);
                        write_u64(out, h.total_count());
                        out.push('\n');
                    });
                }
            }
        }
        if out.len() == body_start {
            out.truncate(family_start);
        }
    }
}

fn write_header(out: &mut String, def: &MetricDef) {
    out.push_str("# HELP ");
    out.push_str(def.prom_name);
    out.push(' ');
    for c in def.help.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out.push_str("\n# TYPE ");
    out.push_str(def.prom_name);
    out.push(' ');
    out.push_str(def.kind.prom_type());
    out.push('\n');
}

/// `name{labels,quantile="q"} ` (the value follows).
fn write_sample(out: &mut String, name: &str, suffix: &str, labels: &str, quantile: Option<&str>) {
    out.push_str(name);
    out.push_str(suffix);
    if !labels.is_empty() || quantile.is_some() {
        out.push('{');
        out.push_str(labels);
        if let Some(q) = quantile {
            if !labels.is_empty() {
                out.push(',');
            }
            out.push_str("quantile=\"");
            out.push_str(q);
            out.push('"');
        }
        out.push('}');
    }
    out.push(' ');
}

fn write_float(out: &mut String, v: f64) {
    if v.is_nan() {
        out.push_str("NaN");
    } else if v == f64::INFINITY {
        out.push_str("+Inf");
    } else if v == f64::NEG_INFINITY {
        out.push_str("-Inf");
    } else {
        let _ = write!(out, "{v}");
    }
}

fn write_u64(out: &mut String, mut v: u64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    out.push_str(std::str::from_utf8(&buf[i..]).expect("ASCII digits"));
}

/// Microseconds written as seconds (or milliseconds as thousandths) with integer arithmetic:
/// exact, the same text as `f64` display of `us / 1e6` (`0.405503`, `0.28`, `3`), and several
/// times faster than float formatting on a 1,000-check scrape.
fn write_micros_as_units(out: &mut String, us: u64) {
    write_u64(out, us / 1_000_000);
    let mut frac = us % 1_000_000;
    if frac == 0 {
        return;
    }
    let mut digits = 6;
    while frac.is_multiple_of(10) {
        frac /= 10;
        digits -= 1;
    }
    out.push('.');
    let mut buf = [b'0'; 6];
    for slot in buf[..digits].iter_mut().rev() {
        *slot = b'0' + (frac % 10) as u8;
        frac /= 10;
    }
    out.push_str(std::str::from_utf8(&buf[..digits]).expect("ASCII digits"));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::catalog::{self, MetricKind};
    use crate::metrics::registry::tests::{run, step, t};
    use crate::outcome::Outcome;
    use std::collections::HashMap;

    /// One parsed sample line.
    #[derive(Debug, Clone, PartialEq)]
    struct Sample {
        name: String,
        labels: Vec<(String, String)>,
        value: f64,
    }

    /// A small parser of the text format: comments (`# HELP`/`# TYPE`, returned as a map of
    /// family -> type) and samples with escaped label values.
    fn parse(text: &str) -> (HashMap<String, String>, Vec<Sample>) {
        let mut types = HashMap::new();
        let mut samples = Vec::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, kind) = rest.split_once(' ').expect("TYPE line");
                assert!(
                    types.insert(name.to_string(), kind.to_string()).is_none(),
                    "TYPE {name} twice"
                );
                continue;
            }
            if line.starts_with('#') {
                continue;
            }
            assert!(!line.is_empty(), "empty line");
            let (name, rest) = match line.find(['{', ' ']) {
                Some(i) => line.split_at(i),
                None => panic!("bad line {line}"),
            };
            let mut labels = Vec::new();
            let mut rest = rest;
            if let Some(mut body) = rest.strip_prefix('{') {
                loop {
                    if let Some(after) = body.strip_prefix('}') {
                        rest = after;
                        break;
                    }
                    body = body.strip_prefix(',').unwrap_or(body);
                    let (key, after) = body.split_once("=\"").expect("label");
                    let mut value = String::new();
                    let mut chars = after.char_indices();
                    let end = loop {
                        match chars.next().expect("unterminated label value") {
                            (i, '"') => break i,
                            (_, '\\') => match chars.next().expect("escape").1 {
                                'n' => value.push('\n'),
                                c => value.push(c),
                            },
                            (_, c) => value.push(c),
                        }
                    };
                    labels.push((key.to_string(), value));
                    body = &after[end + 1..];
                }
            }
            let value = rest
                .trim()
                .parse::<f64>()
                .unwrap_or_else(|_| match rest.trim() {
                    "+Inf" => f64::INFINITY,
                    "-Inf" => f64::NEG_INFINITY,
                    other => panic!("bad value {other:?}"),
                });
            samples.push(Sample {
                name: name.to_string(),
                labels,
                value,
            });
        }
        (types, samples)
    }

    fn find<'a>(samples: &'a [Sample], name: &str, labels: &[(&str, &str)]) -> Option<&'a Sample> {
        samples.iter().find(|s| {
            s.name == name
                && s.labels.len() == labels.len()
                && labels
                    .iter()
                    .all(|(k, v)| s.labels.iter().any(|(sk, sv)| sk == k && sv == v))
        })
    }

    /// A registry exercising every kind, odd label values, and stale gauges.
    fn fixture() -> Registry {
        let r = Registry::new();
        let mut journey = run(
            "align \"category\"",
            Outcome::Pass,
            vec![
                step("login", 900.0, false, Outcome::Pass),
                step("save\\draft", 150.0, true, Outcome::Pass),
                step("toast\nlive", 250.0, true, Outcome::Pass),
            ],
        );
        for i in 0..10 {
            journey.steps[2].latency_ms = 250.0 + f64::from(i);
            journey.timed_latency_ms = 400.0 + f64::from(i);
            r.record_run(&journey, t(0, i64::from(i))).unwrap();
        }
        let mut failed = run(
            "profile",
            Outcome::Fail,
            vec![step("save", 5000.0, true, Outcome::Fail)],
        );
        failed.attempt = 2;
        r.record_run(&failed, t(0, 30)).unwrap();
        r.record(
            catalog::SWIS_PREVIEW.name,
            &[("location", "eu")],
            280.0,
            t(0, 5),
        )
        .unwrap();
        r.record(
            catalog::SCHEDULE_LATENESS.name,
            &[("check", "old"), ("location", "eu")],
            3.0,
            t(-30, 0),
        )
        .unwrap();
        r.incr(
            catalog::RATE_LIMIT_HITS.name,
            &[("check", "api"), ("service", "auth")],
            3,
        )
        .unwrap();
        r.set_gauge(catalog::FEED_PUSH_SUCCESS_RATE.name, &[], 97.5, t(0, 0))
            .unwrap();
        r.set_gauge(catalog::FEED_APPROVAL_RATE.name, &[], 91.0, t(0, 0))
            .unwrap();
        r.mark_stale(catalog::FEED_APPROVAL_RATE.name, &[]).unwrap();
        r.set_gauge(
            catalog::FEED_PUSH_ERROR_RATE.name,
            &[("tenant", "t1")],
            2.0,
            t(0, 0),
        )
        .unwrap();
        r.set_gauge(
            catalog::FEED_PUSH_ERROR_RATE.name,
            &[("tenant", "t2")],
            4.0,
            t(0, 0),
        )
        .unwrap();
        r.mark_stale(catalog::FEED_PUSH_ERROR_RATE.name, &[("tenant", "t2")])
            .unwrap();
        r.set_gauge(catalog::OAUTH_ERROR_RATE.name, &[], 12.0, t(0, 0))
            .unwrap();
        r.mark_all_stale(catalog::OAUTH_ERROR_RATE.name).unwrap();
        r.set_gauge(
            catalog::TLS_CERT_DAYS_LEFT.name,
            &[("check", "tls"), ("target", "rvp.example")],
            20.5,
            t(0, 0),
        )
        .unwrap();
        r.set_gauge(
            catalog::FLAG_EXPIRY_DAYS_LEFT.name,
            &[("flag", "FF_A"), ("owner", "api_team"), ("state", "active")],
            -1.5,
            t(0, 0),
        )
        .unwrap();
        r.set_gauge(catalog::TAXONOMY_VERSION_AGE.name, &[], 12.0, t(0, 0))
            .unwrap();
        r.set_gauge(catalog::FEED_PUSH_QUEUE_DEPTH.name, &[], 17.0, t(0, 0))
            .unwrap();
        r
    }

    #[test]
    fn rendered_output_parses_back_with_the_right_values() {
        let text = render(&fixture(), t(1, 0));
        let (types, samples) = parse(&text);
        assert_eq!(types["synmon_check_latency_seconds"], "summary");
        assert_eq!(types["synmon_check_runs_total"], "counter");
        assert_eq!(types["feed_push_success_ratio"], "gauge");

        let align = [
            ("check", "align \"category\""),
            ("location", "eu"),
            ("target", "staging"),
            ("outcome", "pass"),
        ];
        let with_q = |q: &'static str| {
            let mut l = align.to_vec();
            l.push(("quantile", q));
            l
        };
        // Timed latencies 400..=409 ms: p50 is the 5th value's bucket, p99 the 10th's.
        let p50 = find(&samples, "synmon_check_latency_seconds", &with_q("0.5")).unwrap();
        assert_eq!(p50.value, 0.405503);
        let p99 = find(&samples, "synmon_check_latency_seconds", &with_q("0.99")).unwrap();
        assert_eq!(p99.value, 0.409599);
        let count = find(&samples, "synmon_check_latency_seconds_count", &align).unwrap();
        assert_eq!(count.value, 10.0);
        let sum = find(&samples, "synmon_check_latency_seconds_sum", &align).unwrap();
        assert!((sum.value - 4.045).abs() < 1e-9, "{}", sum.value);

        // Escaped label values come back intact.
        let toast = [
            ("check", "align \"category\""),
            ("step", "toast\nlive"),
            ("location", "eu"),
            ("target", "staging"),
            ("outcome", "pass"),
        ];
        assert_eq!(
            find(&samples, "synmon_step_latency_seconds_count", &toast)
                .unwrap()
                .value,
            10.0
        );
        assert!(text.contains(r#"step="save\\draft""#));
        assert!(text.contains(r#"check="align \"category\"""#));
        assert!(text.contains(r#"step="toast\nlive""#));

        let runs = [
            ("check", "profile"),
            ("location", "eu"),
            ("outcome", "fail"),
            ("attempt", "2"),
        ];
        assert_eq!(
            find(&samples, "synmon_check_runs_total", &runs)
                .unwrap()
                .value,
            1.0
        );
        assert_eq!(
            find(
                &samples,
                "rate_limit_hits_total",
                &[("check", "api"), ("service", "auth")]
            )
            .unwrap()
            .value,
            3.0
        );
        assert_eq!(
            find(&samples, "feed_push_success_ratio", &[])
                .unwrap()
                .value,
            0.975
        );
        assert_eq!(
            find(&samples, "feed_push_error_ratio", &[("tenant", "t1")])
                .unwrap()
                .value,
            0.02
        );
        assert_eq!(
            find(&samples, "feed_push_queue_depth", &[]).unwrap().value,
            17.0
        );
        assert_eq!(
            find(
                &samples,
                "synmon_tls_certificate_expiry_remaining_seconds",
                &[("check", "tls"), ("target", "rvp.example")]
            )
            .unwrap()
            .value,
            20.5 * 86_400.0
        );
        assert_eq!(
            find(
                &samples,
                "synmon_flag_expiry_remaining_seconds",
                &[("flag", "FF_A"), ("owner", "api_team"), ("state", "active")]
            )
            .unwrap()
            .value,
            -1.5 * 86_400.0
        );
        assert_eq!(
            find(&samples, "taxonomy_version_active_age_seconds", &[])
                .unwrap()
                .value,
            1_036_800.0
        );
        assert_eq!(
            find(
                &samples,
                "swis_preview_latency_seconds",
                &[("location", "eu"), ("quantile", "0.95")]
            )
            .unwrap()
            .value,
            0.280575
        );
        // Probe health from the runs: the failed run is a target failure, not a probe error.
        assert_eq!(
            find(
                &samples,
                "synmon_probe_unhealthy",
                &[("check", "profile"), ("location", "eu")]
            )
            .unwrap()
            .value,
            0.0
        );
        // Old data: the 5-minute quantiles are NaN, the cumulative count stays.
        let old = [("check", "old"), ("location", "eu")];
        let mut old_q = old.to_vec();
        old_q.push(("quantile", "0.5"));
        assert!(
            find(&samples, "synmon_schedule_lateness_seconds", &old_q)
                .unwrap()
                .value
                .is_nan()
        );
        assert_eq!(
            find(&samples, "synmon_schedule_lateness_seconds_count", &old)
                .unwrap()
                .value,
            1.0
        );
    }

    #[test]
    fn stale_gauges_vanish_from_metrics() {
        let text = render(&fixture(), t(1, 0));
        let (types, samples) = parse(&text);
        // A stale series is absent, not 0; a family with only stale series has no HELP/TYPE.
        assert!(find(&samples, "feed_approval_ratio", &[]).is_none());
        assert!(!types.contains_key("feed_approval_ratio"));
        assert!(!text.contains("feed_approval_ratio"));
        assert!(!text.contains("oauth_error_ratio"));
        assert!(find(&samples, "feed_push_error_ratio", &[("tenant", "t2")]).is_none());
        assert!(find(&samples, "feed_push_error_ratio", &[("tenant", "t1")]).is_some());
    }

    #[test]
    fn label_values_are_escaped() {
        let mut out = String::new();
        escape_label_value(&mut out, "a\\b\"c\nd é");
        assert_eq!(out, r#"a\\b\"c\nd é"#);
    }

    #[test]
    fn integer_formatting_matches_float_display() {
        for us in [
            0u64,
            1,
            10,
            999_999,
            1_000_000,
            405_503,
            280_000,
            3_607_101_439,
            12_000_001,
        ] {
            let mut out = String::new();
            write_micros_as_units(&mut out, us);
            assert_eq!(out, format!("{}", us as f64 / 1e6), "{us}");
        }
        let mut out = String::new();
        write_u64(&mut out, u64::MAX);
        assert_eq!(out, u64::MAX.to_string());
    }

    #[test]
    fn empty_registry_renders_nothing() {
        assert_eq!(render(&Registry::new(), t(0, 0)), "");
    }

    /// `promtool check metrics` (Debian's `prometheus` package) must accept the output with no
    /// lint problem. promtool is part of the test toolchain (`scripts/test.sh` installs it):
    /// without it this test fails, it does not skip.
    #[test]
    fn promtool_check_metrics_accepts_the_output() {
        use std::io::Write as _;
        use std::process::{Command, Stdio};
        // The fixture plus one series of every catalog metric, so every name gets linted.
        let r = fixture();
        for def in catalog::CATALOG {
            let labels: Vec<(&str, &str)> = def.labels.iter().map(|l| (*l, "x")).collect();
            match def.kind {
                MetricKind::Counter => r.incr(def.name, &labels, 1).unwrap(),
                MetricKind::Gauge => r.set_gauge(def.name, &labels, 1.5, t(0, 0)).unwrap(),
                MetricKind::Distribution => r.record(def.name, &labels, 12.5, t(0, 0)).unwrap(),
            }
        }
        let text = render(&r, t(1, 0));
        for def in catalog::CATALOG {
            assert!(
                text.contains(&format!("# TYPE {} ", def.prom_name)),
                "{}",
                def.prom_name
            );
        }
        let child = Command::new("promtool")
            .args(["check", "metrics"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn();
        let mut child = match child {
            Ok(c) => c,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => panic!(
                "promtool not found: install Debian's `prometheus` package (apt-get install -y prometheus), as scripts/test.sh does"
            ),
            Err(e) => panic!("running promtool: {e}"),
        };
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(text.as_bytes())
            .expect("write to promtool");
        let out = child.wait_with_output().expect("promtool");
        let report = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            out.status.success() && report.trim().is_empty(),
            "promtool: {:?}\n{report}\n--- output ---\n{text}",
            out.status
        );
        println!("promtool check metrics: ok ({} bytes)", text.len());
    }
}
