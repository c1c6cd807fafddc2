//! `alerts/*.yaml` -> validated [`RuleSet`], every error with file, line and field path.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use yaml_serde::Value;

use super::model::*;
use crate::config::diag::Diagnostic;
use crate::config::duration::{Bound, DAY, HOUR, MINUTE};
use crate::config::span::{join_index, join_key};
use crate::config::yaml::{YamlDoc, display_path};
use crate::metrics::catalog::{self, MetricDef, MetricKind};

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    #[schemars(with = "Vec<RawRule>")]
    rules: Vec<Value>,
    #[serde(default)]
    #[schemars(with = "Vec<RawSlo>")]
    slos: Vec<Value>,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct RawRule {
    alert: String,
    metric: String,
    #[serde(default, rename = "match")]
    matchers: BTreeMap<String, String>,
    #[serde(default)]
    by: Vec<String>,
    aggregate: String,
    #[serde(default)]
    #[schemars(with = "Option<crate::config::schema::Duration>")]
    window: Option<String>,
    #[serde(default)]
    numerator: Option<BTreeMap<String, String>>,
    #[serde(default)]
    denominator: Option<BTreeMap<String, String>>,
    op: String,
    #[schemars(with = "f64")]
    threshold: Value,
    #[serde(default, rename = "for")]
    #[schemars(with = "Option<crate::config::schema::Duration>")]
    pending_for: Option<String>,
    #[serde(default)]
    #[schemars(with = "Option<crate::config::schema::Duration>")]
    keep_firing_for: Option<String>,
    #[serde(default)]
    recover_after: Option<u32>,
    #[serde(default)]
    no_data: Option<RawNoData>,
    #[serde(default)]
    severity: Option<String>,
    #[serde(default)]
    route: Option<String>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    annotations: RawAnnotations,
    #[serde(default)]
    min_failing_locations: Option<u32>,
    #[serde(default)]
    flap: Option<RawFlap>,
    #[serde(default)]
    #[schemars(with = "Option<crate::config::schema::Duration>")]
    resolve_window: Option<String>,
    #[serde(default)]
    #[schemars(with = "Option<f64>")]
    min_coverage: Option<Value>,
    #[serde(default)]
    across: Option<RawAcross>,
    #[serde(default)]
    inhibits: Vec<RawInhibit>,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct RawAcross {
    label: String,
    #[serde(default)]
    #[schemars(with = "Option<f64>")]
    min_share: Option<Value>,
    #[serde(default)]
    min_count: Option<u32>,
    /// How each value is judged: across another label (`check` across `location`).
    #[serde(default)]
    across: Option<Box<RawAcross>>,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct RawInhibit {
    /// Matchers of the muted alerts' labels (`alertname: check_failing`).
    #[serde(default)]
    matchers: BTreeMap<String, String>,
    /// Labels source and target must agree on; default: the rule's `by` labels.
    #[serde(default)]
    equal: Option<Vec<String>>,
    /// How long the mute outlasts this alert's firing (default `0s`).
    #[serde(default)]
    #[schemars(with = "Option<crate::config::schema::Duration>")]
    hold: Option<String>,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct RawNoData {
    policy: RawPolicy,
    #[serde(default)]
    message: Option<String>,
}

#[derive(Debug, Deserialize, Clone, Copy, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
enum RawPolicy {
    Alert,
    Ok,
    KeepState,
}

#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct RawAnnotations {
    #[serde(default)]
    summary: Option<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    runbook_url: Option<String>,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct RawFlap {
    max_changes: u32,
    #[schemars(with = "crate::config::schema::Duration")]
    window: String,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct RawSlo {
    name: String,
    #[serde(default)]
    description: Option<String>,
    #[schemars(with = "f64")]
    objective: Value,
    #[serde(default)]
    #[schemars(with = "Option<crate::config::schema::Duration>")]
    period: Option<String>,
    sli: RawSli,
    #[serde(default)]
    routes: RawSloRoutes,
    #[serde(default)]
    #[schemars(with = "Option<crate::config::schema::Duration>")]
    resolve_window: Option<String>,
    #[serde(default)]
    #[schemars(with = "Option<f64>")]
    min_coverage: Option<Value>,
    #[serde(default)]
    inhibits: Vec<RawInhibit>,
    /// `for` and `keep_firing_for` of the generated burn-rate alerts.
    #[serde(default, rename = "for")]
    #[schemars(with = "Option<crate::config::schema::Duration>")]
    pending_for: Option<String>,
    /// Where the 6x row (6h and 30m) goes: `page` (the workbook's default) or `ticket`.
    #[serde(default)]
    slow_burn: Option<String>,
    #[serde(default)]
    #[schemars(with = "Option<crate::config::schema::Duration>")]
    keep_firing_for: Option<String>,
}

#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct RawSloRoutes {
    #[serde(default)]
    page: Option<String>,
    #[serde(default)]
    ticket: Option<String>,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[schemars(transform = crate::config::schema::ExactlyOneKey { besides: &[], alone: &[], alone_with: &[] })]
#[serde(deny_unknown_fields)]
struct RawSli {
    #[serde(default)]
    events: Option<RawEvents>,
    #[serde(default)]
    latency: Option<RawLatency>,
    #[serde(default)]
    time_slices: Option<RawSlices>,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct RawEvents {
    metric: String,
    #[serde(default, rename = "match")]
    matchers: BTreeMap<String, String>,
    good: BTreeMap<String, String>,
    total: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct RawLatency {
    metric: String,
    #[serde(default, rename = "match")]
    matchers: BTreeMap<String, String>,
    #[schemars(with = "f64")]
    threshold_ms: Value,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct RawSlices {
    metric: String,
    #[serde(default, rename = "match")]
    matchers: BTreeMap<String, String>,
    good: BTreeMap<String, String>,
    total: BTreeMap<String, String>,
    #[serde(default)]
    #[schemars(with = "Option<crate::config::schema::Duration>")]
    slice: Option<String>,
    #[serde(default)]
    min_good_ratio: Option<f64>,
}

/// A rule looks at most 30 days back: the default retention (35 d) keeps that much, and no
/// window, pending time or SLO period is longer. Under a minute the window holds too few runs.
const WINDOW: Bound = Bound::new("window", MINUTE, DAY.saturating_mul(30));
const FLAP_WINDOW: Bound = Bound::new("flap window", MINUTE, DAY.saturating_mul(30));
const PENDING_FOR: Bound = Bound::or_zero("pending time", DAY.saturating_mul(30));
const KEEP_FIRING_FOR: Bound = Bound::or_zero("keep-firing time", DAY.saturating_mul(30));
const PERIOD: Bound = Bound::new("SLO period", DAY, DAY.saturating_mul(30));
const SLICE: Bound = Bound::new("time slice", MINUTE, HOUR);
/// As short as a window may be: the registry reads whole minutes.
/// An inhibition outlasting its source by more than a day would hide the next day's incident.
const INHIBIT_HOLD: Bound = Bound::or_zero("inhibition hold", DAY);
const RESOLVE_WINDOW: Bound = Bound::new("resolve window", MINUTE, DAY.saturating_mul(30));
const DEFAULT_WINDOW: Duration = Duration::from_secs(300);
const DEFAULT_PERIOD: Duration = Duration::from_secs(30 * 86_400);

/// The JSON Schema of a rule file (`crate::schema`), from the raw types above.
pub fn alerts_file_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
    generator.root_schema_for::<RawFile>()
}

/// The rule files of a folder: every `*.yaml`/`*.yml` directly in it (sub-folders such as
/// `tests/` are not rule files), sorted by name.
pub fn rule_files(dir: &Path) -> Result<Vec<PathBuf>, Diagnostic> {
    let entries = std::fs::read_dir(dir).map_err(|e| Diagnostic {
        file: display_path(dir),
        pos: None,
        path: String::new(),
        message: format!("cannot read alerts folder: {e}"),
    })?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
        .collect();
    files.sort();
    Ok(files)
}

/// Loads every rule file of `dir`.
pub fn load_dir(dir: &Path) -> (RuleSet, Vec<Diagnostic>) {
    match rule_files(dir) {
        Ok(files) => load_files(&files),
        Err(d) => (RuleSet::default(), vec![d]),
    }
}

/// Loads the given rule files into one set; rule and SLO names are unique across them.
pub fn load_files(files: &[PathBuf]) -> (RuleSet, Vec<Diagnostic>) {
    let mut set = RuleSet::default();
    let mut errors = Vec::new();
    let mut names: BTreeMap<String, String> = BTreeMap::new();
    let mut refs = Vec::new();
    for f in files {
        let mut file_errors = Vec::new();
        load_one(f, &mut set, &mut names, &mut file_errors, &mut refs);
        // In the order of the file, not the order the checks happen to run in.
        file_errors.sort_by_key(|d| d.pos.map(|p| (p.line, p.col)));
        errors.append(&mut file_errors);
    }
    // Alerts named by `inhibits:` may be defined in any file: checked once all are read.
    for (name, diag) in refs {
        if !names.contains_key(&name) {
            errors.push(diag);
        }
    }
    (set, errors)
}

/// What a rule file holds, said when one is empty.
const RULES: &str = "alert rules: a YAML map with `rules:` and/or `slos:`";

fn load_one(
    f: &Path,
    set: &mut RuleSet,
    names: &mut BTreeMap<String, String>,
    errors: &mut Vec<Diagnostic>,
    refs: &mut Vec<AlertRef>,
) {
    {
        let doc = match YamlDoc::read_expecting(f, RULES) {
            Ok(d) => d,
            Err(d) => {
                errors.push(d);
                return;
            }
        };
        let raw: RawFile = match doc.deserialize_at(&doc.value, "") {
            Ok(r) => r,
            Err(d) => {
                errors.push(d);
                return;
            }
        };
        for (i, v) in raw.rules.iter().enumerate() {
            let p = join_index("rules", i);
            match doc.deserialize_at::<RawRule>(v, &p) {
                Ok(r) => {
                    let name_path = join_key(&p, "alert");
                    if let Some(rule) = rule_of(&doc, &p, r, errors, refs) {
                        unique(&doc, &name_path, &rule.name, names, errors);
                        set.rules.push(rule);
                    }
                }
                Err(d) => errors.push(d),
            }
        }
        for (i, v) in raw.slos.iter().enumerate() {
            let p = join_index("slos", i);
            match doc.deserialize_at::<RawSlo>(v, &p) {
                Ok(r) => {
                    if let Some(slo) = slo_of(&doc, &p, r, errors, refs) {
                        for rule in burn_rules(&slo) {
                            unique(&doc, &join_key(&p, "name"), &rule.name, names, errors);
                            set.rules.push(rule);
                        }
                        set.slos.push(slo);
                    }
                }
                Err(d) => errors.push(d),
            }
        }
    }
}

fn unique(
    doc: &YamlDoc,
    path: &str,
    name: &str,
    names: &mut BTreeMap<String, String>,
    errors: &mut Vec<Diagnostic>,
) {
    let here = doc.diag(path, "");
    let at = match here.pos {
        Some(p) => format!("{}:{}", here.file, p.line),
        None => here.file.clone(),
    };
    if let Some(first) = names.get(name) {
        errors.push(doc.diag(
            path,
            format!("alert `{name}` is already defined at {first}"),
        ));
    } else {
        names.insert(name.to_string(), at);
    }
}

fn valid_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn number(v: &Value) -> Result<f64, String> {
    match v {
        Value::Number(n) => n
            .as_f64()
            .filter(|f| f.is_finite())
            .ok_or_else(|| format!("`{n}` is not a finite number")),
        Value::String(s) => Err(format!("`{s}` is not a number")),
        other => Err(format!(
            "`{}` is not a number",
            yaml_serde::to_string(other).unwrap_or_default().trim_end()
        )),
    }
}

fn kind_name(k: MetricKind) -> &'static str {
    match k {
        MetricKind::Counter => "a counter",
        MetricKind::Gauge => "a gauge",
        MetricKind::Distribution => "a distribution",
    }
}

fn metric_of(
    doc: &YamlDoc,
    path: &str,
    name: &str,
    errors: &mut Vec<Diagnostic>,
) -> Option<&'static MetricDef> {
    let m = catalog::lookup(name);
    if m.is_none() {
        errors.push(doc.diag(
            path,
            format!("unknown metric `{name}` (not in the metric catalog)"),
        ));
    }
    m
}

/// An `across` (and its nested `across`), checked: a label of the metric, not one the rule
/// groups `by` nor one an outer level already judges across.
fn load_across(
    doc: &YamlDoc,
    key: &str,
    a: &RawAcross,
    metric: Option<&MetricDef>,
    taken: &[String],
    errors: &mut Vec<Diagnostic>,
) -> Across {
    let label_ok = match metric {
        Some(m) => check_label(doc, &join_key(key, "label"), m, &a.label, errors),
        None => false,
    };
    if label_ok && taken.contains(&a.label) {
        errors.push(doc.diag(
            &join_key(key, "label"),
            format!(
                "cannot judge across `{}` when grouping `by` it or judging across it already",
                a.label
            ),
        ));
    }
    let min_share = match &a.min_share {
        None => 0.0,
        Some(v) => fraction(v).unwrap_or_else(|e| {
            errors.push(doc.diag(&join_key(key, "min_share"), e));
            0.0
        }),
    };
    let min_count = a.min_count.unwrap_or(1);
    if min_count == 0 {
        errors.push(doc.diag(&join_key(key, "min_count"), "must be at least 1"));
    }
    let inner = a.across.as_ref().map(|i| {
        let mut taken = taken.to_vec();
        taken.push(a.label.clone());
        Box::new(load_across(
            doc,
            &join_key(key, "across"),
            i,
            metric,
            &taken,
            errors,
        ))
    });
    Across {
        label: a.label.clone(),
        min_share,
        min_count,
        written_as_quorum: false,
        inner,
    }
}

fn check_label(
    doc: &YamlDoc,
    path: &str,
    metric: &MetricDef,
    label: &str,
    errors: &mut Vec<Diagnostic>,
) -> bool {
    if metric.labels.contains(&label) {
        return true;
    }
    let known = if metric.labels.is_empty() {
        "it has no labels".to_string()
    } else {
        format!("labels: {}", metric.labels.join(", "))
    };
    errors.push(doc.diag(
        path,
        format!("unknown label `{label}` for `{}` ({known})", metric.name),
    ));
    false
}

fn matchers_of(
    doc: &YamlDoc,
    path: &str,
    metric: Option<&MetricDef>,
    raw: &BTreeMap<String, String>,
    errors: &mut Vec<Diagnostic>,
) -> Matchers {
    let mut out = Vec::new();
    for (label, value) in raw {
        let p = join_key(path, label);
        if let Some(m) = metric
            && !check_label(doc, &p, m, label, errors)
        {
            continue;
        }
        match Matcher::parse(label, value) {
            Ok(m) => out.push(m),
            Err(e) => errors.push(doc.diag(&p, e)),
        }
    }
    Matchers(out)
}

/// A template; `failing_ok`: the rule judges `across` a label, so `{{ failing }}` has a list.
fn template_of(
    doc: &YamlDoc,
    path: &str,
    raw: &str,
    group: &BTreeSet<String>,
    failing_ok: bool,
    errors: &mut Vec<Diagnostic>,
) -> Option<Template> {
    let mut parts = Vec::new();
    let mut rest = raw;
    while let Some(i) = rest.find("{{") {
        if i > 0 {
            parts.push(Part::Text(rest[..i].to_string()));
        }
        let after = &rest[i + 2..];
        let Some(j) = after.find("}}") else {
            errors.push(doc.diag(path, "`{{` without its closing `}}`"));
            return None;
        };
        let var = after[..j].trim();
        let part = match var {
            "value" => Part::Value,
            "threshold" => Part::Threshold,
            "window" => Part::Window,
            "metric" => Part::Metric,
            "failing" if failing_ok => Part::Failing,
            "failing" => {
                errors.push(doc.diag(
                    path,
                    "`{{ failing }}` lists the failing values of `across` (or `min_failing_locations`); this rule has neither",
                ));
                return None;
            }
            v => match v.strip_prefix("labels.") {
                Some(l) if group.contains(l) => Part::Label(l.to_string()),
                Some(l) => {
                    errors.push(doc.diag(
                        path,
                        format!(
                            "`{{{{ labels.{l} }}}}`: `{l}` is not a label of this alert (it has: {})",
                            group.iter().cloned().collect::<Vec<_>>().join(", ")
                        ),
                    ));
                    return None;
                }
                None => {
                    let failing = if failing_ok { "failing, " } else { "" };
                    errors.push(doc.diag(
                        path,
                        format!(
                            "unknown template variable `{v}` (known: value, threshold, window, metric, {failing}labels.NAME)"
                        ),
                    ));
                    return None;
                }
            },
        };
        parts.push(part);
        rest = &after[j + 2..];
    }
    if !rest.is_empty() {
        parts.push(Part::Text(rest.to_string()));
    }
    Some(Template { parts })
}

fn rule_of(
    doc: &YamlDoc,
    p: &str,
    r: RawRule,
    errors: &mut Vec<Diagnostic>,
    refs: &mut Vec<AlertRef>,
) -> Option<Rule> {
    let before = errors.len();
    let at = |k: &str| join_key(p, k);
    if !valid_name(&r.alert) {
        errors.push(doc.diag(
            &at("alert"),
            format!(
                "alert name `{}` must be letters, digits or `_`, not starting with a digit",
                r.alert
            ),
        ));
    }
    let metric = metric_of(doc, &at("metric"), &r.metric, errors);
    let aggregate = Aggregate::parse(&r.aggregate);
    if aggregate.is_none() {
        errors.push(doc.diag(
            &at("aggregate"),
            format!(
                "unknown aggregation `{}` (one of {})",
                r.aggregate,
                Aggregate::NAMES
            ),
        ));
    }
    if let (Some(m), Some(a)) = (metric, aggregate) {
        let ok = match a {
            Aggregate::P50 | Aggregate::P95 | Aggregate::P99 => m.kind == MetricKind::Distribution,
            Aggregate::Avg | Aggregate::Min | Aggregate::Max => m.kind != MetricKind::Counter,
            Aggregate::Rate => m.kind == MetricKind::Counter,
            Aggregate::Ratio => m.kind != MetricKind::Gauge,
            Aggregate::Last => m.kind == MetricKind::Gauge,
        };
        if !ok {
            let needs = match a {
                Aggregate::P50 | Aggregate::P95 | Aggregate::P99 => "a distribution",
                Aggregate::Avg | Aggregate::Min | Aggregate::Max => "a distribution or a gauge",
                Aggregate::Rate => "a counter",
                Aggregate::Ratio => "a counter or a distribution",
                Aggregate::Last => "a gauge",
            };
            errors.push(doc.diag(
                &at("aggregate"),
                format!(
                    "`{}` needs {needs}; `{}` is {}",
                    r.aggregate,
                    m.name,
                    kind_name(m.kind)
                ),
            ));
        }
    }
    let matchers = matchers_of(doc, &at("match"), metric, &r.matchers, errors);
    for (i, l) in r.by.iter().enumerate() {
        if let Some(m) = metric {
            check_label(doc, &join_index(&at("by"), i), m, l, errors);
        }
    }
    let is_ratio = aggregate == Some(Aggregate::Ratio);
    let numerator = match &r.numerator {
        Some(n) => matchers_of(doc, &at("numerator"), metric, n, errors),
        None => {
            if is_ratio {
                errors.push(doc.diag(
                    p,
                    "`aggregate: ratio` needs `numerator` (the matchers of the bad, or counted, events)",
                ));
            }
            Matchers::default()
        }
    };
    let denominator = match &r.denominator {
        Some(n) => matchers_of(doc, &at("denominator"), metric, n, errors),
        None => Matchers::default(),
    };
    if !is_ratio {
        for (key, present) in [
            ("numerator", r.numerator.is_some()),
            ("denominator", r.denominator.is_some()),
        ] {
            if present {
                errors.push(doc.diag(
                    &at(key),
                    "only `aggregate: ratio` takes `numerator` and `denominator`",
                ));
            }
        }
    }
    let window = match &r.window {
        Some(w) => WINDOW.parse(w).unwrap_or_else(|e| {
            errors.push(doc.diag(&at("window"), e));
            DEFAULT_WINDOW
        }),
        None => DEFAULT_WINDOW,
    };
    let op = Op::parse(&r.op).unwrap_or_else(|| {
        errors.push(doc.diag(
            &at("op"),
            format!(
                "`{}` is not a comparator (one of <, <=, >, >=, ==, !=)",
                r.op
            ),
        ));
        Op::Gt
    });
    let threshold = number(&r.threshold).unwrap_or_else(|e| {
        errors.push(doc.diag(&at("threshold"), e));
        0.0
    });
    let mut dur = |key: &str, raw: &Option<String>, bound: Bound| match raw {
        None => Duration::ZERO,
        Some(s) => bound.parse(s).unwrap_or_else(|e| {
            errors.push(doc.diag(&at(key), e));
            Duration::ZERO
        }),
    };
    let pending_for = dur("for", &r.pending_for, PENDING_FOR);
    let keep_firing_for = dur("keep_firing_for", &r.keep_firing_for, KEEP_FIRING_FOR);
    let recover_after = r.recover_after.unwrap_or(1);
    if recover_after == 0 {
        errors.push(doc.diag(
            &at("recover_after"),
            "must be at least 1 (healthy evaluations)",
        ));
    }
    let windowed = metric.is_some_and(|m| m.kind != MetricKind::Gauge);
    let gauge_note = |m: Option<&MetricDef>| {
        format!(
            "`{}` is a gauge: rules read its current value, there is no window to judge",
            m.map_or("", |m| m.name)
        )
    };
    let resolve_window = r.resolve_window.as_ref().and_then(|raw| {
        let key = at("resolve_window");
        if metric.is_some() && !windowed {
            errors.push(doc.diag(&key, gauge_note(metric)));
            return None;
        }
        match RESOLVE_WINDOW.parse(raw) {
            Ok(w) if w > window => {
                errors.push(doc.diag(
                    &key,
                    format!(
                        "{raw} is longer than `window` ({}): the resolve window is the shorter one",
                        super::slo::fmt_duration(window)
                    ),
                ));
                None
            }
            Ok(w) => Some(w),
            Err(e) => {
                errors.push(doc.diag(&key, e));
                None
            }
        }
    });
    let min_coverage = r.min_coverage.as_ref().and_then(|v| {
        let key = at("min_coverage");
        if metric.is_some() && !windowed {
            errors.push(doc.diag(&key, gauge_note(metric)));
            return None;
        }
        fraction(v).map_err(|e| errors.push(doc.diag(&key, e))).ok()
    });
    let mut across = None;
    if let Some(a) = &r.across {
        let key = at("across");
        if r.min_failing_locations.is_some() {
            errors.push(doc.diag(
                &key,
                "give either `across` or `min_failing_locations` (which is `across` over `location`)",
            ));
        }
        across = Some(load_across(doc, &key, a, metric, &r.by, errors));
    }
    if let Some(n) = r.min_failing_locations {
        if r.across.is_none() {
            across = Some(Across {
                label: "location".into(),
                min_share: 0.0,
                min_count: n,
                written_as_quorum: true,
                inner: None,
            });
        }
        if n == 0 {
            errors.push(doc.diag(&at("min_failing_locations"), "must be at least 1"));
        }
        if let Some(m) = metric {
            if !m.labels.contains(&"location") {
                errors.push(doc.diag(
                    &at("min_failing_locations"),
                    format!("`{}` has no `location` label to count", m.name),
                ));
            } else if r.by.iter().any(|b| b == "location") {
                errors.push(doc.diag(
                    &at("min_failing_locations"),
                    "cannot count locations when grouping `by: [location]`",
                ));
            }
        }
    }
    let flap = r.flap.as_ref().and_then(|f| {
        if f.max_changes == 0 {
            errors.push(doc.diag(&at("flap.max_changes"), "must be at least 1"));
        }
        match FLAP_WINDOW.parse(&f.window) {
            Ok(window) => Some(Flap {
                max_changes: f.max_changes,
                window,
            }),
            Err(e) => {
                errors.push(doc.diag(&at("flap.window"), e));
                None
            }
        }
    });
    for k in r.labels.keys() {
        if !valid_name(k) || k == "alertname" || k == "severity" || r.by.contains(k) {
            errors.push(doc.diag(
                &join_key(&at("labels"), k),
                format!("`{k}` cannot be a static label (a name like `team`; not alertname, severity or a `by` label)"),
            ));
        }
    }
    let mut group: BTreeSet<String> = r.by.iter().cloned().collect();
    group.extend(r.labels.keys().cloned());
    group.insert("alertname".into());
    group.insert("severity".into());
    let failing_ok = across.is_some();
    let summary = r.annotations.summary.as_deref().and_then(|s| {
        template_of(
            doc,
            &at("annotations.summary"),
            s,
            &group,
            failing_ok,
            errors,
        )
    });
    let description = r.annotations.description.as_deref().and_then(|s| {
        template_of(
            doc,
            &at("annotations.description"),
            s,
            &group,
            failing_ok,
            errors,
        )
    });
    let inhibits = inhibits_of(
        doc,
        &at("inhibits"),
        &r.alert,
        &r.inhibits,
        &group,
        &r.by,
        errors,
        refs,
    );
    if let Some(u) = &r.annotations.runbook_url
        && url::Url::parse(u).is_err()
    {
        errors.push(doc.diag(
            &at("annotations.runbook_url"),
            format!("`{u}` is not an absolute URL"),
        ));
    }
    let no_data = match &r.no_data {
        None => NoData::default(),
        Some(n) => NoData {
            policy: match n.policy {
                RawPolicy::Alert => NoDataPolicy::Alert,
                RawPolicy::Ok => NoDataPolicy::Ok,
                RawPolicy::KeepState => NoDataPolicy::KeepState,
            },
            message: n.message.clone(),
        },
    };
    if errors.len() > before {
        return None;
    }
    Some(Rule {
        name: r.alert,
        file: doc.file.clone(),
        condition: Condition::Threshold(Threshold {
            metric: metric?,
            matchers,
            aggregate: aggregate?,
            window,
            numerator,
            denominator,
            op,
            threshold,
            across,
            resolve_window,
            min_coverage,
        }),
        by: r.by,
        pending_for,
        keep_firing_for,
        recover_after,
        no_data,
        severity: r.severity.unwrap_or_else(|| "warning".into()),
        route: r.route,
        labels: r.labels,
        summary,
        description,
        runbook_url: r.annotations.runbook_url,
        flap,
        inhibits,
    })
}

/// A fraction written as a number from 0 to 1.
fn fraction(v: &Value) -> Result<f64, String> {
    let f = number(v)?;
    if (0.0..=1.0).contains(&f) {
        Ok(f)
    } else {
        Err(format!("{f} must be a fraction from 0 to 1 (0.5 is half)"))
    }
}

/// An alert name an `inhibits:` matcher refers to, checked once every file is loaded, and the
/// error to report if no rule has it.
type AlertRef = (String, Diagnostic);

/// `inhibits:` of the alert `alert` (whose labels are `labels`), compiled with the alert as
/// the source; `equal` defaults to `by`.
#[allow(clippy::too_many_arguments)]
fn inhibits_of(
    doc: &YamlDoc,
    p: &str,
    alert: &str,
    raw: &[RawInhibit],
    labels: &BTreeSet<String>,
    by: &[String],
    errors: &mut Vec<Diagnostic>,
    refs: &mut Vec<AlertRef>,
) -> Vec<InhibitRule> {
    let mut out = Vec::new();
    for (i, item) in raw.iter().enumerate() {
        let ip = join_index(p, i);
        let before = errors.len();
        if item.matchers.is_empty() {
            errors.push(doc.diag(
                &ip,
                "`matchers` must say which alerts this one mutes (e.g. `alertname: check_failing`)",
            ));
        }
        let mut target = Vec::new();
        for (label, value) in &item.matchers {
            let mp = join_key(&join_key(&ip, "matchers"), label);
            match Matcher::parse(label, value) {
                Ok(m) => {
                    if label == "alertname" && m.op == MatchOp::Eq {
                        if m.value == alert {
                            errors.push(doc.diag(&mp, "an alert cannot inhibit itself"));
                        } else {
                            refs.push((
                                m.value.clone(),
                                doc.diag(&mp, format!("no alert `{}` is defined", m.value)),
                            ));
                        }
                    }
                    target.push(m);
                }
                Err(e) => errors.push(doc.diag(&mp, e)),
            }
        }
        let equal = match &item.equal {
            None => by.to_vec(),
            Some(list) => {
                for (j, l) in list.iter().enumerate() {
                    if !labels.contains(l) {
                        errors.push(doc.diag(
                            &join_index(&join_key(&ip, "equal"), j),
                            format!(
                                "`{l}` is not a label of this alert (it has: {})",
                                labels.iter().cloned().collect::<Vec<_>>().join(", ")
                            ),
                        ));
                    }
                }
                list.clone()
            }
        };
        let hold = match &item.hold {
            None => Duration::ZERO,
            Some(raw) => INHIBIT_HOLD.parse(raw).unwrap_or_else(|e| {
                errors.push(doc.diag(&join_key(&ip, "hold"), e));
                Duration::ZERO
            }),
        };
        if errors.len() > before {
            continue;
        }
        let source = Matcher::parse("alertname", alert)
            .map(|m| Matchers(vec![m]))
            .unwrap_or_default();
        out.push(InhibitRule {
            source,
            target: Matchers(target),
            equal,
            hold,
        });
    }
    out
}

fn slo_of(
    doc: &YamlDoc,
    p: &str,
    r: RawSlo,
    errors: &mut Vec<Diagnostic>,
    refs: &mut Vec<AlertRef>,
) -> Option<Slo> {
    let before = errors.len();
    let at = |k: &str| join_key(p, k);
    if !valid_name(&r.name) {
        errors.push(doc.diag(
            &at("name"),
            format!("SLO name `{}` must be letters, digits or `_`", r.name),
        ));
    }
    let objective = match number(&r.objective) {
        Ok(o) if o > 0.0 && o < 100.0 => o,
        Ok(o) => {
            errors.push(doc.diag(
                &at("objective"),
                format!("{o} must be a percentage strictly between 0 and 100, e.g. 99.9"),
            ));
            99.9
        }
        Err(e) => {
            errors.push(doc.diag(&at("objective"), e));
            99.9
        }
    };
    let period = match &r.period {
        None => DEFAULT_PERIOD,
        Some(s) => match PERIOD.parse(s) {
            Ok(d) => d,
            Err(e) => {
                errors.push(doc.diag(&at("period"), e));
                DEFAULT_PERIOD
            }
        },
    };
    let sp = at("sli");
    let given = [
        r.sli.events.is_some(),
        r.sli.latency.is_some(),
        r.sli.time_slices.is_some(),
    ]
    .iter()
    .filter(|b| **b)
    .count();
    if given != 1 {
        errors.push(doc.diag(
            &sp,
            "give exactly one of `events`, `latency` or `time_slices`",
        ));
    }
    let kinds_ok = |m: &MetricDef,
                    kinds: &[MetricKind],
                    needs: &str,
                    errors: &mut Vec<Diagnostic>,
                    path: &str| {
        if !kinds.contains(&m.kind) {
            errors.push(doc.diag(
                path,
                format!(
                    "this SLI needs {needs}; `{}` is {}",
                    m.name,
                    kind_name(m.kind)
                ),
            ));
        }
    };
    // What `events` and `time_slices` share: a counter or a distribution at `{p}.metric`, and
    // the series of its `match`, `good` and `total` events.
    let counted = |p: &str,
                   metric: &str,
                   matchers: &BTreeMap<String, String>,
                   good: &BTreeMap<String, String>,
                   total: &BTreeMap<String, String>,
                   errors: &mut Vec<Diagnostic>| {
        let metric = metric_of(doc, &join_key(p, "metric"), metric, errors);
        if let Some(m) = metric {
            kinds_ok(
                m,
                &[MetricKind::Counter, MetricKind::Distribution],
                "a counter or a distribution",
                errors,
                &join_key(p, "metric"),
            );
        }
        let matchers = matchers_of(doc, &join_key(p, "match"), metric, matchers, errors);
        let good = matchers_of(doc, &join_key(p, "good"), metric, good, errors);
        let total = matchers_of(doc, &join_key(p, "total"), metric, total, errors);
        (metric, matchers, good, total)
    };
    let sli = if let Some(e) = r.sli.events {
        let p = join_key(&sp, "events");
        let (metric, matchers, good, total) =
            counted(&p, &e.metric, &e.matchers, &e.good, &e.total, errors);
        metric.map(|metric| Sli::Events {
            metric,
            matchers,
            good,
            total,
        })
    } else if let Some(l) = r.sli.latency {
        let p = join_key(&sp, "latency");
        let metric = metric_of(doc, &join_key(&p, "metric"), &l.metric, errors);
        if let Some(m) = metric {
            kinds_ok(
                m,
                &[MetricKind::Distribution],
                "a distribution",
                errors,
                &join_key(&p, "metric"),
            );
        }
        let matchers = matchers_of(doc, &join_key(&p, "match"), metric, &l.matchers, errors);
        let threshold_ms = match number(&l.threshold_ms) {
            Ok(t) if t > 0.0 => t,
            Ok(t) => {
                errors.push(doc.diag(
                    &join_key(&p, "threshold_ms"),
                    format!("{t} must be above 0"),
                ));
                1.0
            }
            Err(e) => {
                errors.push(doc.diag(&join_key(&p, "threshold_ms"), e));
                1.0
            }
        };
        metric.map(|metric| Sli::Latency {
            metric,
            matchers,
            threshold_ms,
        })
    } else if let Some(s) = r.sli.time_slices {
        let p = join_key(&sp, "time_slices");
        let (metric, matchers, good, total) =
            counted(&p, &s.metric, &s.matchers, &s.good, &s.total, errors);
        let slice = match &s.slice {
            None => Duration::from_secs(300),
            Some(x) => match SLICE.parse(x) {
                Ok(d) => d,
                Err(e) => {
                    errors.push(doc.diag(&join_key(&p, "slice"), e));
                    Duration::from_secs(300)
                }
            },
        };
        let min_good_ratio = s.min_good_ratio.unwrap_or(100.0);
        if !(min_good_ratio > 0.0 && min_good_ratio <= 100.0) {
            errors.push(doc.diag(
                &join_key(&p, "min_good_ratio"),
                format!("{min_good_ratio} must be a percentage in (0, 100]"),
            ));
        }
        metric.map(|metric| Sli::TimeSlices {
            metric,
            matchers,
            good,
            total,
            slice,
            min_good_ratio: min_good_ratio / 100.0,
        })
    } else {
        None
    };
    let fast = row(2.0, 3600, 300, period);
    let slow = row(5.0, 6 * 3600, 1800, period);
    let days = row(10.0, 3 * 86_400, 6 * 3600, period);
    let (page, ticket) = match r.slow_burn.as_deref() {
        None | Some("page") => (vec![fast, slow], vec![days]),
        Some("ticket") => (vec![fast], vec![slow, days]),
        Some(other) => {
            errors.push(doc.diag(
                &at("slow_burn"),
                format!("`{other}` is not `page` or `ticket`"),
            ));
            (vec![fast, slow], vec![days])
        }
    };
    let shortest = page
        .iter()
        .chain(&ticket)
        .map(|r| r.short)
        .min()
        .unwrap_or(Duration::from_secs(300));
    let resolve_window = r
        .resolve_window
        .as_ref()
        .and_then(|raw| match RESOLVE_WINDOW.parse(raw) {
            Ok(w) if w > shortest => {
                errors.push(doc.diag(
                    &at("resolve_window"),
                    format!(
                        "{raw} is longer than the shortest burn-rate short window ({}): the resolve window replaces it while the alert fires",
                        super::slo::fmt_duration(shortest)
                    ),
                ));
                None
            }
            Ok(w) => Some(w),
            Err(e) => {
                errors.push(doc.diag(&at("resolve_window"), e));
                None
            }
        });
    let min_coverage = r.min_coverage.as_ref().and_then(|v| {
        fraction(v)
            .map_err(|e| errors.push(doc.diag(&at("min_coverage"), e)))
            .ok()
    });
    let slo_duration =
        |key: &str, raw: &Option<String>, bound: Bound, errors: &mut Vec<Diagnostic>| {
            raw.as_ref().map_or(Duration::ZERO, |raw| {
                bound.parse(raw).unwrap_or_else(|e| {
                    errors.push(doc.diag(&at(key), e));
                    Duration::ZERO
                })
            })
        };
    let pending_for = slo_duration("for", &r.pending_for, PENDING_FOR, errors);
    let keep_firing_for = slo_duration(
        "keep_firing_for",
        &r.keep_firing_for,
        KEEP_FIRING_FOR,
        errors,
    );
    let page_alert = format!("{}_burn_rate_page", r.name);
    let page_labels: BTreeSet<String> = ["alertname", "severity", "slo"]
        .into_iter()
        .map(String::from)
        .collect();
    let inhibits = inhibits_of(
        doc,
        &at("inhibits"),
        &page_alert,
        &r.inhibits,
        &page_labels,
        &[],
        errors,
        refs,
    );
    if errors.len() > before {
        return None;
    }
    Some(Slo {
        name: r.name,
        file: doc.file.clone(),
        description: r.description,
        objective,
        period,
        sli: sli?,
        page,
        ticket,
        page_route: r.routes.page,
        ticket_route: r.routes.ticket,
        resolve_window,
        min_coverage,
        inhibits,
        pending_for,
        keep_firing_for,
    })
}

/// One SRE-workbook row: `share_pct` of the budget spent in `long_s` at the row's factor.
fn row(share_pct: f64, long_s: u64, short_s: u64, period: Duration) -> BurnWindow {
    BurnWindow {
        long: Duration::from_secs(long_s),
        short: Duration::from_secs(short_s),
        // factor = budget share x period / long window
        factor: burn_factor(share_pct, period, Duration::from_secs(long_s)),
    }
}

/// The SRE workbook's factor: the share of the budget spent in `long` at this burn rate.
/// 2 % of 30 d in 1 h: 0.02 x 720 = 14.4. Rounded to 1e-9 so 14.4 reads 14.4.
pub fn burn_factor(share_pct: f64, period: Duration, long: Duration) -> f64 {
    let f = share_pct / 100.0 * period.as_secs_f64() / long.as_secs_f64();
    (f * 1e9).round() / 1e9
}

/// The page and ticket alerts of an SLO.
pub fn burn_rules(slo: &Slo) -> Vec<Rule> {
    let mk =
        |severity: &str, rows: &[BurnWindow], route: &Option<String>, inhibits: &[InhibitRule]| {
            let mut labels = Labels::new();
            labels.insert("slo".into(), slo.name.clone());
            Rule {
                name: format!("{}_burn_rate_{severity}", slo.name),
                file: slo.file.clone(),
                condition: Condition::Burn {
                    slo: slo.name.clone(),
                    rows: rows.to_vec(),
                    resolves_early: severity == "page",
                },
                by: Vec::new(),
                pending_for: slo.pending_for,
                keep_firing_for: slo.keep_firing_for,
                recover_after: 1,
                no_data: NoData::default(),
                severity: severity.to_string(),
                route: route.clone(),
                labels,
                summary: Some(Template {
                    parts: vec![
                        Part::Text("SLO ".into()),
                        Part::Label("slo".into()),
                        Part::Text(" is burning its error budget at ".into()),
                        Part::Value,
                        Part::Text("x over ".into()),
                        Part::Window,
                        Part::Text(" (limit ".into()),
                        Part::Threshold,
                        Part::Text("x)".into()),
                    ],
                }),
                description: slo.description.as_ref().map(|d| Template {
                    parts: vec![Part::Text(d.clone())],
                }),
                runbook_url: None,
                flap: None,
                inhibits: inhibits.to_vec(),
            }
        };
    // Only the page mutes: a ticket burns over days, and muting pages that long hides them.
    vec![
        mk("page", &slo.page, &slo.page_route, &slo.inhibits),
        mk("ticket", &slo.ticket, &slo.ticket_route, &[]),
    ]
}
