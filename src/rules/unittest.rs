//! Rule unit tests in the spirit of `promtool test rules`: input series given per evaluation
//! step, and the alerts expected to be firing at given times.
//!
//! ```yaml
//! rule_files: [../business.yaml]      # relative to the test file
//! interval: 1m                        # one value per interval, evaluations at the same rate
//! input_series:
//!   - metric: feed_approval_rate
//!     labels: {}
//!     values: "97 96 94x5"            # 94 repeated 6 times; `1+1x3` = 1 2 3 4; `_` = none
//! alert_rule_test:
//!   - eval_time: 5m
//!     alertname: feed_approval_low
//!     exp_alerts:
//!       - labels: {severity: warning}
//!         annotations: {summary: "Feed approval rate is 94% (< 95%)"}
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use serde::Deserialize;

use super::eval::{Phase, State, evaluate};
use super::load::load_files;
use super::source::MemorySource;
use crate::config::diag::Diagnostic;
use crate::config::duration::{Bound, DAY};
use crate::config::span::{join_index, join_key};
use crate::config::yaml::YamlDoc;
use crate::metrics::catalog;

/// One sample per `interval` (at most a day, like a check's) and alerts asked about up to
/// 400 days in (the longest retention), so the series' timestamps stay within chrono's range.
const INTERVAL: Bound = Bound::positive("series interval", DAY);
const EVAL_TIME: Bound = Bound::or_zero("evaluation time", DAY.saturating_mul(400));

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct RawTestFile {
    rule_files: Vec<String>,
    #[serde(default)]
    #[schemars(with = "Option<crate::config::schema::Duration>")]
    interval: Option<String>,
    #[serde(default)]
    input_series: Vec<RawSeries>,
    #[serde(default)]
    alert_rule_test: Vec<RawAlertTest>,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct RawSeries {
    metric: String,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    values: String,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct RawAlertTest {
    #[schemars(with = "crate::config::schema::Duration")]
    eval_time: String,
    alertname: String,
    #[serde(default)]
    exp_alerts: Vec<RawExpAlert>,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct RawExpAlert {
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
}

/// The JSON Schema of a rule unit-test file (`crate::schema`), from the raw types above.
pub fn test_file_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
    generator.root_schema_for::<RawTestFile>()
}

/// Expands `1 2 3`, `1+1x3` (1 2 3 4), `5-1x2` (5 4 3), `7x2` (7 7 7) and `_` (no value).
pub fn expand_values(raw: &str) -> Result<Vec<Option<f64>>, String> {
    let mut out = Vec::new();
    for tok in raw.split_whitespace() {
        if tok == "_" || tok == "stale" {
            out.push(None);
            continue;
        }
        if let Some((head, n)) = tok.split_once('x') {
            let n: usize = n
                .parse()
                .map_err(|_| format!("`{tok}`: the count after `x` must be a whole number"))?;
            if head == "_" {
                out.extend(std::iter::repeat_n(None, n + 1));
                continue;
            }
            // `a+b`, `a-b` (a may be negative), or just `a`.
            let split = head
                .char_indices()
                .skip(1)
                .find(|(_, c)| *c == '+' || *c == '-')
                .map(|(i, _)| i);
            let (start, delta) = match split {
                Some(i) => {
                    let a: f64 = head[..i]
                        .parse()
                        .map_err(|_| format!("`{tok}` is not a value"))?;
                    let b: f64 = head[i + 1..]
                        .parse()
                        .map_err(|_| format!("`{tok}` is not a value"))?;
                    (a, if &head[i..=i] == "-" { -b } else { b })
                }
                None => (
                    head.parse()
                        .map_err(|_| format!("`{tok}` is not a value"))?,
                    0.0,
                ),
            };
            for k in 0..=n {
                out.push(Some(start + delta * k as f64));
            }
        } else {
            out.push(Some(
                tok.parse().map_err(|_| format!("`{tok}` is not a value"))?,
            ));
        }
    }
    Ok(out)
}

/// What running one test file found.
#[derive(Debug, Default)]
pub struct FileResult {
    pub tests: usize,
    pub failures: Vec<String>,
}

fn epoch() -> DateTime<Utc> {
    Utc.timestamp_opt(0, 0).single().expect("epoch")
}

/// Runs one test file: `Err` when the file (or a rule file it names) is invalid.
pub fn run_file(path: &Path) -> Result<FileResult, Vec<Diagnostic>> {
    let doc = YamlDoc::read(path).map_err(|d| vec![d])?;
    let raw: RawTestFile = doc.deserialize_at(&doc.value, "").map_err(|d| vec![d])?;
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut errors = Vec::new();
    let files: Vec<PathBuf> = raw.rule_files.iter().map(|f| dir.join(f)).collect();
    for (i, f) in files.iter().enumerate() {
        if !f.is_file() {
            errors.push(doc.diag(
                &join_index("rule_files", i),
                format!("no rule file {}", f.display()),
            ));
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let (mut rules, rerrs) = load_files(&files);
    if !rerrs.is_empty() {
        return Err(rerrs);
    }
    let interval = match &raw.interval {
        None => Duration::from_secs(60),
        Some(s) => INTERVAL
            .parse(s)
            .map_err(|e| vec![doc.diag("interval", e)])?,
    };
    rules.interval = interval;
    let step = chrono::Duration::from_std(interval).unwrap_or(chrono::Duration::minutes(1));
    let mut source = MemorySource::new();
    for (i, s) in raw.input_series.iter().enumerate() {
        let p = join_index("input_series", i);
        let Some(def) = catalog::lookup(&s.metric) else {
            errors.push(doc.diag(
                &join_key(&p, "metric"),
                format!("unknown metric `{}`", s.metric),
            ));
            continue;
        };
        let labels: Vec<(&str, &str)> = s
            .labels
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        match expand_values(&s.values) {
            Ok(values) => {
                for (k, v) in values.into_iter().enumerate() {
                    let at = epoch() + step * k as i32;
                    match (def.kind, v) {
                        (crate::metrics::catalog::MetricKind::Gauge, v) => {
                            source.push_opt(def, &labels, at, v)
                        }
                        (_, Some(v)) => source.push(def, &labels, at, v),
                        (_, None) => {}
                    }
                }
            }
            Err(e) => errors.push(doc.diag(&join_key(&p, "values"), e)),
        }
    }
    let mut tests = Vec::new();
    for (i, t) in raw.alert_rule_test.iter().enumerate() {
        let p = join_index("alert_rule_test", i);
        match EVAL_TIME.parse(&t.eval_time) {
            Ok(d) => {
                if rules.rule(&t.alertname).is_none() {
                    errors.push(doc.diag(
                        &join_key(&p, "alertname"),
                        format!("no rule `{}` in the rule files", t.alertname),
                    ));
                }
                tests.push((d, t));
            }
            Err(e) => errors.push(doc.diag(&join_key(&p, "eval_time"), e)),
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let last = tests
        .iter()
        .map(|(d, _)| *d)
        .max()
        .unwrap_or(Duration::ZERO);
    let steps = (last.as_millis() / interval.as_millis().max(1)) as i32;
    let mut state = State::default();
    let mut snapshots = Vec::new();
    for k in 0..=steps {
        let now = epoch() + step * k;
        evaluate(&rules, &source, &mut state, now);
        snapshots.push((now, state.clone()));
    }
    let mut result = FileResult {
        tests: tests.len(),
        failures: Vec::new(),
    };
    for (d, t) in tests {
        let at = epoch() + chrono::Duration::from_std(d).unwrap_or_default();
        // The state after the last evaluation at or before eval_time.
        let state = snapshots
            .iter()
            .rev()
            .find(|(now, _)| *now <= at)
            .map(|(_, s)| s.clone())
            .unwrap_or_default();
        let mut got: Vec<(BTreeMap<String, String>, BTreeMap<String, String>)> = state
            .alerts
            .values()
            .filter(|a| a.rule == t.alertname && a.phase == Phase::Firing)
            .map(|a| {
                let mut l = a.labels.clone();
                l.remove("alertname");
                (l, a.annotations.clone())
            })
            .collect();
        got.sort();
        let mut matched = vec![false; got.len()];
        let mut ok = got.len() == t.exp_alerts.len();
        for e in &t.exp_alerts {
            let hit = got.iter().enumerate().position(|(j, (l, a))| {
                !matched[j] && *l == e.labels && (e.annotations.is_empty() || *a == e.annotations)
            });
            match hit {
                Some(j) => matched[j] = true,
                None => ok = false,
            }
        }
        if !ok {
            let show = |v: Vec<String>| {
                if v.is_empty() {
                    "(none)".to_string()
                } else {
                    v.join("\n      ")
                }
            };
            result.failures.push(format!(
                "{}: alertname {} at {}:\n    expected firing:\n      {}\n    got firing:\n      {}",
                doc.file,
                t.alertname,
                t.eval_time,
                show(t.exp_alerts.iter().map(|e| format!("labels={:?} annotations={:?}", e.labels, e.annotations)).collect()),
                show(got.iter().map(|(l, a)| format!("labels={l:?} annotations={a:?}")).collect()),
            ));
        }
    }
    Ok(result)
}

/// Runs test files: 0 all passed, 1 a test failed, 2 a file was invalid. Reports on stdout
/// (results) and stderr (invalid files).
pub fn run_files(paths: &[PathBuf]) -> i32 {
    let mut code = 0;
    for p in paths {
        match run_file(p) {
            Ok(r) if r.failures.is_empty() => println!("{}: ok ({} tests)", p.display(), r.tests),
            Ok(r) => {
                println!(
                    "{}: FAILED ({} of {} tests)",
                    p.display(),
                    r.failures.len(),
                    r.tests
                );
                for f in &r.failures {
                    println!("  {f}");
                }
                code = code.max(1);
            }
            Err(errs) => {
                for e in &errs {
                    eprintln!("{e}");
                }
                code = 2;
            }
        }
    }
    code
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A test file beside a copy of the seed's business rules, as `synmon alerts test` reads it.
    fn write_test_file(dir: &Path, interval: &str, eval_time: &str) -> PathBuf {
        let rules = Path::new(env!("CARGO_MANIFEST_DIR")).join("alerts/business.yaml");
        std::fs::copy(rules, dir.join("business.yaml")).expect("copy the rule file");
        let file = dir.join("t.yaml");
        std::fs::write(
            &file,
            format!(
                "rule_files: [business.yaml]\ninterval: {interval}\ninput_series:\n  - metric: feed_approval_rate\n    values: \"97 94x12\"\nalert_rule_test:\n  - eval_time: {eval_time}\n    alertname: feed_approval_rate_low\n    exp_alerts: []\n"
            ),
        )
        .expect("write the test file");
        file
    }

    fn messages(r: Result<FileResult, Vec<Diagnostic>>) -> Vec<String> {
        match r {
            Ok(_) => vec![],
            Err(d) => d.iter().map(|d| d.message.clone()).collect(),
        }
    }

    #[test]
    fn a_series_interval_past_a_day_is_refused_with_its_bound() {
        let dir = tempfile::tempdir().unwrap();
        let file = write_test_file(dir.path(), "99999999999999d", "1m");
        assert_eq!(
            messages(run_file(&file)),
            ["`99999999999999d` is longer than the longest allowed series interval (1d)"]
        );
    }

    #[test]
    fn an_eval_time_past_400_days_is_refused_and_zero_is_accepted() {
        let dir = tempfile::tempdir().unwrap();
        let file = write_test_file(dir.path(), "1m", "401d");
        assert_eq!(
            messages(run_file(&file)),
            ["`401d` is longer than the longest allowed evaluation time (400d)"]
        );
        let file = write_test_file(dir.path(), "1m", "0s");
        assert_eq!(messages(run_file(&file)), Vec::<String>::new());
    }
}
