//! `synmon alerts export`: the loaded rules and SLOs as Prometheus rule groups or Datadog
//! monitors.
//!
//! Prometheus reads synmon's `/metrics` names in base units, so thresholds are converted with
//! the catalog's `prom_scale` (ms -> s, percent -> ratio, days -> s). Latency distributions are
//! exported as summaries whose quantiles cover the last 5 minutes, so a percentile rule over
//! another window reads the 5-minute quantile (the rule says so in a comment). Datadog reads the
//! DogStatsD names in the recorded units, so its thresholds are the rule's own.
//!
//! What neither system can express (`recover_after`, flap damping, `no_data: keep_state` on
//! Prometheus) is written as a YAML comment or a note in the monitor message, never dropped
//! silently.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::time::Duration;

use serde_json::{Value, json};

use super::model::*;
use crate::metrics::catalog::{MetricDef, MetricKind, StatsdForm};
use crate::metrics::prometheus::SUMMARY_WINDOW;

/// The window synmon's summary quantiles cover.
fn summary_window() -> Duration {
    Duration::from_secs(SUMMARY_WINDOW.minutes() as u64 * 60)
}

// ---- shared helpers -------------------------------------------------------------------------

/// A number without float noise: `0.001`, not `0.0009999999999999432`.
pub fn num(v: f64) -> String {
    let r = (v * 1e12).round() / 1e12;
    if r.fract() == 0.0 && r.abs() < 1e15 {
        format!("{}", r as i64)
    } else {
        format!("{r}")
    }
}

/// A Prometheus duration in its largest exact unit: `5m`, `1h`, `3d`, `90s`.
pub fn prom_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms == 0 {
        return "0s".into();
    }
    for (unit, n) in [
        ("w", 7 * 86_400_000),
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1000),
    ] {
        // Weeks read badly for SLO periods: 30d stays 30d, 7d stays 7d.
        if unit == "w" {
            continue;
        }
        if ms.is_multiple_of(n) {
            return format!("{}{unit}", ms / n);
        }
    }
    format!("{ms}ms")
}

/// A YAML double-quoted scalar (JSON string escapes are valid YAML).
fn yq(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into())
}

/// A PromQL string literal.
fn pq(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

fn sanitize(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect()
}

fn file_stem(file: &str) -> String {
    let name = file.rsplit(['/', '\\']).next().unwrap_or(file);
    name.strip_suffix(".yaml")
        .or_else(|| name.strip_suffix(".yml"))
        .unwrap_or(name)
        .to_string()
}

/// Whether a rule's value is a measurement in the metric's recorded unit (so the threshold
/// scales to Prometheus units), rather than a count per second or a 0..1 ratio.
fn value_in_metric_unit(a: Aggregate) -> bool {
    !matches!(a, Aggregate::Rate | Aggregate::Ratio)
}

// ---- Prometheus -----------------------------------------------------------------------------

/// A PromQL selector: `name{a="x", b=~"y"}`.
pub fn prom_selector(name: &str, sets: &[&Matchers], extra: &[(&str, &str)]) -> String {
    let mut parts: Vec<String> = Vec::new();
    for set in sets {
        for m in &set.0 {
            let op = match m.op {
                MatchOp::Eq => "=",
                MatchOp::Ne => "!=",
                MatchOp::Re => "=~",
                MatchOp::NotRe => "!~",
            };
            parts.push(format!("{}{op}{}", m.label, pq(&m.value)));
        }
    }
    for (k, v) in extra {
        parts.push(format!("{k}={}", pq(v)));
    }
    if parts.is_empty() {
        name.to_string()
    } else {
        format!("{name}{{{}}}", parts.join(", "))
    }
}

fn by_clause(by: &[String]) -> String {
    if by.is_empty() {
        String::new()
    } else {
        format!(" by ({})", by.join(", "))
    }
}

/// `sum by (check) (increase(x[5m]))`.
fn sum_increase(sel: &str, window: Duration, by: &[String]) -> String {
    format!(
        "sum{} (increase({sel}[{}]))",
        by_clause(by),
        prom_duration(window)
    )
}

/// The series counting a metric's events: a counter itself, a summary's `_count`.
fn count_series(m: &MetricDef) -> String {
    match m.kind {
        MetricKind::Distribution => format!("{}_count", m.prom_name),
        _ => m.prom_name.to_string(),
    }
}

/// The aggregation that keeps the worst value for the comparator (`<`: the lowest).
fn worst_agg(op: Op) -> &'static str {
    match op {
        Op::Lt | Op::Le => "min",
        _ => "max",
    }
}

/// A threshold rule's PromQL and the comments that explain approximations.
pub fn prom_expr(rule: &Rule, th: &Threshold) -> (String, Vec<String>) {
    let m = th.metric;
    let by = &rule.by;
    let mut notes = synmon_only(th);
    let w = prom_duration(th.window);
    let threshold = if value_in_metric_unit(th.aggregate) {
        m.to_prom(th.threshold)
    } else {
        th.threshold
    };
    if value_in_metric_unit(th.aggregate) && m.prom_scale != 1.0 {
        notes.push(format!(
            "threshold {} {} = {} in Prometheus units",
            num(th.threshold),
            unit_name(m),
            num(threshold)
        ));
    }
    // Every label the metric has is a group label: the bare series are the groups.
    let whole = m.labels.iter().all(|l| by.iter().any(|b| b == l));
    let agg = |f: &str, inner: String| -> String {
        if whole && th.across.is_none() {
            inner
        } else {
            format!("{f}{} ({inner})", by_clause(by))
        }
    };
    let value = match th.aggregate {
        a @ (Aggregate::P50 | Aggregate::P95 | Aggregate::P99)
            if m.kind == MetricKind::Distribution =>
        {
            let q = num(a.quantile().unwrap_or(0.5));
            if th.window != summary_window() {
                notes.push(format!(
                    "synmon exports summaries over {}; this rule's window is {w}, so the 5m quantile is used",
                    prom_duration(summary_window())
                ));
            }
            let sel = prom_selector(m.prom_name, &[&th.matchers], &[("quantile", &q)]);
            if !m.labels.iter().all(|l| by.iter().any(|b| b == l)) {
                notes.push(format!(
                    "summary quantiles cannot be merged: the {} per-series quantile stands for the group",
                    if worst_agg(th.op) == "max" { "highest" } else { "lowest" }
                ));
            }
            return finish_quorum(rule, th, sel, threshold, notes, |inner| {
                agg(worst_agg(th.op), inner)
            });
        }
        Aggregate::Avg if m.kind == MetricKind::Distribution => {
            let sum = prom_selector(&format!("{}_sum", m.prom_name), &[&th.matchers], &[]);
            let cnt = prom_selector(&format!("{}_count", m.prom_name), &[&th.matchers], &[]);
            format!(
                "{} / {}",
                sum_increase(&sum, th.window, by),
                sum_increase(&cnt, th.window, by)
            )
        }
        Aggregate::Min | Aggregate::Max if m.kind == MetricKind::Distribution => {
            let (q, f) = if th.aggregate == Aggregate::Max {
                ("0.99", "max")
            } else {
                ("0.5", "min")
            };
            notes.push(format!(
                "summaries carry no {f}imum: approximated by the 5m quantile {q}"
            ));
            let sel = prom_selector(m.prom_name, &[&th.matchers], &[("quantile", q)]);
            agg(f, sel)
        }
        Aggregate::Avg => agg("avg", prom_selector(m.prom_name, &[&th.matchers], &[])),
        Aggregate::Min => agg("min", prom_selector(m.prom_name, &[&th.matchers], &[])),
        Aggregate::Max => agg("max", prom_selector(m.prom_name, &[&th.matchers], &[])),
        Aggregate::Last | Aggregate::P50 | Aggregate::P95 | Aggregate::P99 => {
            // A gauge (or a quantile gauge): its current value, the worst of the group.
            let sel = prom_selector(m.prom_name, &[&th.matchers], &[]);
            return finish_quorum(rule, th, sel, threshold, notes, |inner| {
                agg(worst_agg(th.op), inner)
            });
        }
        Aggregate::Rate => {
            let sel = prom_selector(&count_series(m), &[&th.matchers], &[]);
            format!("sum{} (rate({sel}[{w}]))", by_clause(by))
        }
        Aggregate::Ratio => {
            let num_sel = prom_selector(
                &count_series(m),
                &[&th.matchers, &th.denominator, &th.numerator],
                &[],
            );
            let den_sel = prom_selector(&count_series(m), &[&th.matchers, &th.denominator], &[]);
            format!(
                "{} / {}",
                sum_increase(&num_sel, th.window, by),
                sum_increase(&den_sel, th.window, by)
            )
        }
    };
    (
        format!("{value} {} {}", th.op.as_str(), num(threshold)),
        notes,
    )
}

/// `{{ failing }}` where the list is not known: "several checks".
fn failing_text(rule: &Rule) -> String {
    match &rule.condition {
        Condition::Threshold(Threshold {
            across: Some(a), ..
        }) => format!("several {}", super::eval::plural(&a.label)),
        _ => "several".into(),
    }
}

/// A rule's `inhibits:` as a monitor note: Datadog has no inhibition.
fn inhibit_notes(rule: &Rule) -> Vec<String> {
    rule.inhibits
        .iter()
        .map(|i| {
            format!(
                "synmon mutes {} while this fires (equal: {}); Datadog has no inhibition, use a downtime or a composite monitor",
                i.target,
                if i.equal.is_empty() { "-".into() } else { i.equal.join(", ") }
            )
        })
        .collect()
}

/// The rules' `inhibits:` in Alertmanager's `inhibit_rules` syntax, as comments: a rule file
/// cannot hold them, alertmanager.yml can.
fn alertmanager_inhibits(set: &RuleSet) -> String {
    let rules = set.inhibit_rules();
    if rules.is_empty() {
        return String::new();
    }
    let list = |m: &Matchers| {
        m.0.iter()
            .map(|m| format!("'{m}'"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut out = String::from(
        "# The rules' `inhibits:`, for alertmanager.yml (a rule file cannot hold them):\n# inhibit_rules:\n",
    );
    for r in &rules {
        let _ = writeln!(out, "#   - source_matchers: [{}]", list(&r.source));
        let _ = writeln!(out, "#     target_matchers: [{}]", list(&r.target));
        let equal: Vec<String> = r.equal.iter().map(|e| yq(e)).collect();
        let _ = writeln!(out, "#     equal: [{}]", equal.join(", "));
    }
    out
}

/// What a threshold rule does that neither Prometheus nor Datadog can say, one note each.
fn synmon_only(th: &Threshold) -> Vec<String> {
    let mut notes = Vec::new();
    if let Some(a) = th.across.as_ref().filter(|a| !a.written_as_quorum) {
        notes.push(format!(
            "synmon judges each `{}` apart and fires when at least {} of them (and {} % of those with data) fail; this expression judges the group as a whole",
            a.label,
            a.min_count,
            num(a.min_share * 100.0)
        ));
    }
    if let Some(w) = th.resolve_window {
        notes.push(format!(
            "synmon judges a firing alert over resolve_window {} (it resolves sooner); here the alert resolves over the full window",
            prom_duration(w)
        ));
    }
    if let Some(c) = th.min_coverage {
        notes.push(format!(
            "synmon skips a window with less than {} % of it covered by data (min_coverage)",
            num(c * 100.0)
        ));
    }
    notes
}

/// Per-series values reduced to the group, with the location quorum when the rule has one:
/// at least N locations of a group must fail.
fn finish_quorum(
    rule: &Rule,
    th: &Threshold,
    sel: String,
    threshold: f64,
    mut notes: Vec<String>,
    agg: impl Fn(String) -> String,
) -> (String, Vec<String>) {
    let op = th.op.as_str();
    let t = num(threshold);
    match th.min_failing_locations() {
        Some(n) if n > 1 => {
            let mut loc_by = rule.by.clone();
            if !loc_by.iter().any(|l| l == "location") {
                loc_by.push("location".into());
            }
            let per_loc = format!("{}{} ({sel})", worst_agg(th.op), by_clause(&loc_by));
            notes.push(format!("fires when at least {n} locations fail"));
            (
                format!(
                    "{f}{b} ({per_loc} {op} {t}) and on ({on}) count{b} ({per_loc} {op} {t}) >= {n}",
                    f = worst_agg(th.op),
                    b = by_clause(&rule.by),
                    on = rule.by.join(", "),
                ),
                notes,
            )
        }
        _ => (format!("{} {op} {t}", agg(sel)), notes),
    }
}

fn unit_name(m: &MetricDef) -> &'static str {
    use crate::metrics::catalog::Unit;
    match m.unit {
        Unit::Milliseconds => "ms",
        Unit::Seconds => "s",
        Unit::Ratio => "(ratio)",
        Unit::Percent => "%",
        Unit::Count => "",
        Unit::Days => "days",
    }
}

/// A rule template in Prometheus' template language.
fn prom_template(t: &Template, rule: &Rule, window: &str) -> String {
    use crate::metrics::catalog::Unit;
    // `$value` is in Prometheus units: humanize it back to what the text around it says.
    let (pipe, unit_text): (&str, &[&str]) = match &rule.condition {
        Condition::Threshold(th) if value_in_metric_unit(th.aggregate) => match th.metric.unit {
            Unit::Percent => (" | humanizePercentage", &["%"]),
            Unit::Milliseconds | Unit::Days => {
                (" | humanizeDuration", &[" ms", "ms", " days", " d"])
            }
            _ => ("", &[]),
        },
        _ => ("", &[]),
    };
    let mut s = String::new();
    let mut after_value = false;
    for p in &t.parts {
        let was_after_value = std::mem::take(&mut after_value);
        match p {
            Part::Text(x) => {
                let mut x = x.as_str();
                if was_after_value && let Some(u) = unit_text.iter().find(|u| x.starts_with(**u)) {
                    x = &x[u.len()..];
                }
                s.push_str(x)
            }
            Part::Value => {
                let _ = write!(s, "{{{{ $value{pipe} }}}}");
                after_value = true;
            }
            Part::Threshold => s.push_str(&match &rule.condition {
                Condition::Threshold(th) => num(th.threshold),
                Condition::Burn { rows, .. } => rows
                    .iter()
                    .map(|r| num(r.factor))
                    .collect::<Vec<_>>()
                    .join("/"),
            }),
            Part::Window => s.push_str(window),
            Part::Metric => s.push_str(match &rule.condition {
                Condition::Threshold(th) => th.metric.prom_name,
                Condition::Burn { .. } => "burn rate",
            }),
            Part::Label(l) => {
                let _ = write!(s, "{{{{ $labels.{l} }}}}");
            }
            // Prometheus alerts carry no list of the values that fail.
            Part::Failing => s.push_str(&failing_text(rule)),
        }
    }
    s
}

fn write_alert(out: &mut String, rule: &Rule, expr: &str, notes: &[String], window: &str) {
    for n in notes {
        let _ = writeln!(out, "      # {n}");
    }
    if rule.recover_after > 1 {
        let _ = writeln!(
            out,
            "      # recover_after: {} (Prometheus resolves on the first healthy evaluation)",
            rule.recover_after
        );
    }
    if let Some(f) = rule.flap {
        let _ = writeln!(
            out,
            "      # flap damping ({} changes in {}) has no Prometheus equivalent",
            f.max_changes,
            prom_duration(f.window)
        );
    }
    match rule.no_data.policy {
        NoDataPolicy::Ok => {}
        NoDataPolicy::KeepState => {
            let _ = writeln!(
                out,
                "      # no_data: keep_state (Prometheus resolves an alert whose series vanish)"
            );
        }
        NoDataPolicy::Alert => {
            let _ = writeln!(
                out,
                "      # no_data: alert (add an absent() rule; Prometheus resolves on no data)"
            );
        }
    }
    let _ = writeln!(out, "      - alert: {}", rule.name);
    let _ = writeln!(out, "        expr: {}", yq(expr));
    if !rule.pending_for.is_zero() {
        let _ = writeln!(out, "        for: {}", prom_duration(rule.pending_for));
    }
    if !rule.keep_firing_for.is_zero() {
        let _ = writeln!(out, "        # keep_firing_for needs Prometheus >= 2.42");
        let _ = writeln!(
            out,
            "        keep_firing_for: {}",
            prom_duration(rule.keep_firing_for)
        );
    }
    let _ = writeln!(out, "        labels:");
    let _ = writeln!(out, "          severity: {}", yq(&rule.severity));
    if let Some(r) = &rule.route {
        let _ = writeln!(out, "          route: {}", yq(r));
    }
    for (k, v) in &rule.labels {
        if k != "severity" && k != "route" {
            let _ = writeln!(out, "          {k}: {}", yq(v));
        }
    }
    let mut ann = Vec::new();
    if let Some(t) = &rule.summary {
        ann.push(("summary", prom_template(t, rule, window)));
    }
    if let Some(t) = &rule.description {
        ann.push(("description", prom_template(t, rule, window)));
    }
    if let Some(u) = &rule.runbook_url {
        ann.push(("runbook_url", u.clone()));
    }
    if !ann.is_empty() {
        let _ = writeln!(out, "        annotations:");
        for (k, v) in ann {
            let _ = writeln!(out, "          {k}: {}", yq(&v));
        }
    }
}

/// The SLI's error ratio (bad / total) over `window`, in PromQL.
pub fn prom_sli_error(sli: &Sli, window: Duration) -> String {
    let w = prom_duration(window);
    match sli {
        Sli::Events {
            metric,
            matchers,
            good,
            total,
        } => {
            let name = count_series(metric);
            let good = prom_selector(&name, &[matchers, total, good], &[]);
            let total = prom_selector(&name, &[matchers, total], &[]);
            format!("1 - (sum(increase({good}[{w}])) / sum(increase({total}[{w}])))")
        }
        Sli::Latency {
            metric,
            matchers,
            threshold_ms,
        } => {
            // Summaries have no buckets: the 5m share of slow samples is bounded below by the
            // quantiles over the threshold (p99 > t: >= 1 %, p95: >= 5 %, p50: >= 50 %).
            let t = num(metric.to_prom(*threshold_ms));
            let q = |q: &str| {
                format!(
                    "(max({}) > bool {t})",
                    prom_selector(metric.prom_name, &[matchers], &[("quantile", q)])
                )
            };
            let five = format!(
                "0.01 * {} + 0.04 * {} + 0.45 * {}",
                q("0.99"),
                q("0.95"),
                q("0.5")
            );
            if window == summary_window() {
                five
            } else {
                format!("avg_over_time(({five})[{w}:1m])")
            }
        }
        Sli::TimeSlices {
            metric,
            matchers,
            good,
            total,
            slice,
            min_good_ratio,
        } => {
            let name = count_series(metric);
            let s = prom_duration(*slice);
            let good = prom_selector(&name, &[matchers, total, good], &[]);
            let total = prom_selector(&name, &[matchers, total], &[]);
            format!(
                "1 - avg_over_time((sum(increase({good}[{s}])) / sum(increase({total}[{s}])) >= bool {} and sum(increase({total}[{s}])) > 0)[{w}:{s}])",
                num(*min_good_ratio)
            )
        }
    }
}

fn ratio_record(window: Duration) -> String {
    format!("slo:sli_error:ratio_rate{}", prom_duration(window))
}

/// The burn-rate alert expression: any row whose long and short windows both burn faster
/// than its factor (`$value` is the long window's burn rate).
pub fn prom_burn_expr(slo: &Slo, rows: &[BurnWindow]) -> String {
    let budget = num(slo.budget_ratio());
    let sel = |w: Duration| format!("{}{{slo={}}}", ratio_record(w), pq(&slo.name));
    rows.iter()
        .map(|r| {
            let f = num(r.factor);
            format!(
                "({} / {budget} > {f} and {} / {budget} > {f})",
                sel(r.long),
                sel(r.short)
            )
        })
        .collect::<Vec<_>>()
        .join(" or ")
}

/// Prometheus rule groups for the whole set.
pub fn prometheus(set: &RuleSet) -> String {
    let mut out = String::new();
    out.push_str(
        "# Generated by `synmon alerts export --format prometheus`; edit alerts/*.yaml instead.\n",
    );
    out.push_str("# Thresholds are in Prometheus base units (seconds, 0..1 ratios); `{{ $value }}` is too.\n");
    out.push_str("groups:\n");
    let mut files: Vec<&str> = Vec::new();
    for r in &set.rules {
        if matches!(r.condition, Condition::Threshold(_)) && !files.contains(&r.file.as_str()) {
            files.push(&r.file);
        }
    }
    let interval = prom_duration(set.interval);
    for file in files {
        let _ = writeln!(out, "  # {file}");
        let _ = writeln!(
            out,
            "  - name: {}",
            yq(&format!("synmon-{}", file_stem(file)))
        );
        let _ = writeln!(out, "    interval: {interval}");
        let _ = writeln!(out, "    rules:");
        for rule in set.rules.iter().filter(|r| r.file == file) {
            if let Condition::Threshold(th) = &rule.condition {
                let (expr, notes) = prom_expr(rule, th);
                write_alert(&mut out, rule, &expr, &notes, &prom_duration(th.window));
            }
        }
    }
    for slo in &set.slos {
        let _ = writeln!(
            out,
            "  # SLO {}: {}% over {} ({})",
            slo.name,
            num(slo.objective),
            prom_duration(slo.period),
            slo.file
        );
        if matches!(slo.sli, Sli::Latency { .. }) {
            out.push_str("  # The latency SLI is estimated from 5m summary quantiles (synmon exports no buckets).\n");
        }
        let _ = writeln!(out, "  - name: {}", yq(&format!("synmon-slo-{}", slo.name)));
        let _ = writeln!(out, "    interval: {interval}");
        let _ = writeln!(out, "    rules:");
        let mut windows = slo.alert_windows();
        windows.push(slo.period);
        let windows: BTreeSet<Duration> = windows.into_iter().collect();
        for w in &windows {
            let _ = writeln!(out, "      - record: {}", ratio_record(*w));
            let _ = writeln!(out, "        expr: {}", yq(&prom_sli_error(&slo.sli, *w)));
            let _ = writeln!(out, "        labels:");
            let _ = writeln!(out, "          slo: {}", yq(&slo.name));
        }
        let _ = writeln!(out, "      - record: slo:objective:ratio");
        let _ = writeln!(
            out,
            "        expr: {}",
            yq(&format!("vector({})", num(slo.objective / 100.0)))
        );
        let _ = writeln!(out, "        labels:");
        let _ = writeln!(out, "          slo: {}", yq(&slo.name));
        let _ = writeln!(out, "      - record: slo:error_budget:remaining");
        let _ = writeln!(
            out,
            "        expr: {}",
            yq(&format!(
                "1 - {}{{slo={}}} / {}",
                ratio_record(slo.period),
                pq(&slo.name),
                num(slo.budget_ratio())
            ))
        );
        let _ = writeln!(out, "        labels:");
        let _ = writeln!(out, "          slo: {}", yq(&slo.name));
        for rule in &set.rules {
            if let Condition::Burn {
                slo: name, rows, ..
            } = &rule.condition
                && name == &slo.name
            {
                let window = rows
                    .iter()
                    .map(|r| prom_duration(r.long))
                    .collect::<Vec<_>>()
                    .join("/");
                let mut notes = vec![format!(
                    "burn rate rows (long & short > factor): {}",
                    rows.iter()
                        .map(|r| format!(
                            "{} & {} > {}",
                            prom_duration(r.long),
                            prom_duration(r.short),
                            num(r.factor)
                        ))
                        .collect::<Vec<_>>()
                        .join(", ")
                )];
                if let Some(w) = slo.resolve_window {
                    notes.push(format!(
                        "synmon replaces each short window by resolve_window {} while the alert fires",
                        prom_duration(w)
                    ));
                }
                if let Some(c) = slo.min_coverage {
                    notes.push(format!(
                        "synmon skips a burn window with less than {} % of it covered by data (min_coverage)",
                        num(c * 100.0)
                    ));
                }
                write_alert(&mut out, rule, &prom_burn_expr(slo, rows), &notes, &window);
            }
        }
    }
    out.push_str(&alertmanager_inhibits(set));
    out
}

// ---- Datadog --------------------------------------------------------------------------------

/// A Datadog duration for `last_…`: `5m`, `1h`, `3d`.
fn dd_window(d: Duration) -> String {
    let s = d.as_secs().max(60);
    if s.is_multiple_of(86_400) {
        format!("{}d", s / 86_400)
    } else if s.is_multiple_of(3600) {
        format!("{}h", s / 3600)
    } else {
        format!("{}m", s.div_ceil(60))
    }
}

/// A Datadog tag value pattern for a regex made of literal alternatives (`a|b`) or `.*`
/// wildcards; `None` when the regex needs more than that.
fn dd_alternatives(re: &str) -> Option<Vec<String>> {
    re.split('|')
        .map(|alt| {
            let w = alt.replace(".*", "*");
            w.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '*' | '/' | ':'))
                .then_some(w)
                .filter(|w| !w.is_empty())
        })
        .collect()
}

/// A Datadog tag filter: `{*}`, `{outcome:pass}`, `{check IN (a,b) AND outcome:pass}`.
/// Matchers Datadog cannot express are returned as notes.
pub fn dd_filter(sets: &[&Matchers]) -> (String, Vec<String>) {
    let mut terms = Vec::new();
    let mut notes = Vec::new();
    let mut boolean = false;
    for set in sets {
        for m in &set.0 {
            match m.op {
                MatchOp::Eq => terms.push(format!("{}:{}", m.label, m.value)),
                MatchOp::Ne => terms.push(format!("!{}:{}", m.label, m.value)),
                MatchOp::Re | MatchOp::NotRe => match dd_alternatives(&m.value) {
                    Some(alts) if alts.len() == 1 => terms.push(format!(
                        "{}{}:{}",
                        if m.op == MatchOp::NotRe { "!" } else { "" },
                        m.label,
                        alts[0]
                    )),
                    Some(alts) => {
                        boolean = true;
                        terms.push(format!(
                            "{} {} ({})",
                            m.label,
                            if m.op == MatchOp::NotRe {
                                "NOT IN"
                            } else {
                                "IN"
                            },
                            alts.join(",")
                        ));
                    }
                    None => notes.push(format!(
                        "Datadog has no regex tag filter: `{m}` is not applied"
                    )),
                },
            }
        }
    }
    let filter = if terms.is_empty() {
        "*".to_string()
    } else if boolean {
        terms.join(" AND ")
    } else {
        terms.join(",")
    };
    (format!("{{{filter}}}"), notes)
}

fn dd_by(by: &[String]) -> String {
    if by.is_empty() {
        String::new()
    } else {
        format!(" by {{{}}}", by.join(","))
    }
}

/// A threshold rule's monitor query, its type, and notes on approximations.
pub fn dd_query(rule: &Rule, th: &Threshold) -> (String, &'static str, Vec<String>) {
    let m = th.metric;
    let by = dd_by(&rule.by);
    let (filter, mut notes) = dd_filter(&[&th.matchers]);
    let w = dd_window(th.window);
    let cmp = format!("{} {}", th.op.as_str(), num(th.threshold));
    let worst = worst_agg(th.op);
    // Held for the whole `for`: the best value over it must still fail.
    let best = if worst == "max" { "min" } else { "max" };
    let pending = dd_window(rule.pending_for.max(Duration::from_secs(60)));
    if th.min_failing_locations().is_some_and(|n| n > 1) {
        notes.push("the location quorum is not expressed; every location is judged".into());
    }
    notes.extend(synmon_only(th));
    let (query, kind) = match (th.aggregate, m.kind) {
        (a @ (Aggregate::P50 | Aggregate::P95 | Aggregate::P99), MetricKind::Distribution) => {
            let p = format!("p{}", num(a.quantile().unwrap_or(0.5) * 100.0));
            match m.statsd {
                StatsdForm::QuantileGauge(q) => {
                    if a.quantile() != Some(q) {
                        notes.push(format!(
                            "DogStatsD carries only the p{} of {}",
                            num(q * 100.0),
                            m.name
                        ));
                    }
                    (
                        format!("avg(last_{w}):{worst}:{}{filter}{by} {cmp}", m.name),
                        "metric alert",
                    )
                }
                _ => (
                    format!("avg(last_{w}):{p}:{}{filter}{by} {cmp}", m.name),
                    "metric alert",
                ),
            }
        }
        (Aggregate::Ratio, _) => {
            let (nf, n1) = dd_filter(&[&th.matchers, &th.denominator, &th.numerator]);
            let (df, n2) = dd_filter(&[&th.matchers, &th.denominator]);
            notes.extend(n1);
            notes.extend(n2);
            // Counters and distribution counts alike: events in the window.
            let suffix = ".as_count()";
            (
                format!(
                    "sum(last_{w}):sum:{n}{nf}{by}{suffix} / sum:{n}{df}{by}{suffix} {cmp}",
                    n = m.name
                ),
                "query alert",
            )
        }
        (Aggregate::Rate, _) => (
            format!("avg(last_{w}):sum:{}{filter}{by}.as_rate() {cmp}", m.name),
            "query alert",
        ),
        (Aggregate::Avg, _) => (
            format!("avg(last_{w}):avg:{}{filter}{by} {cmp}", m.name),
            "metric alert",
        ),
        (Aggregate::Min, _) => (
            format!("min(last_{w}):min:{}{filter}{by} {cmp}", m.name),
            "metric alert",
        ),
        (Aggregate::Max, _) => (
            format!("max(last_{w}):max:{}{filter}{by} {cmp}", m.name),
            "metric alert",
        ),
        // `last` (and a quantile of a gauge): the worst series, failing for all of `for`.
        _ => (
            format!(
                "{best}(last_{pending}):{worst}:{}{filter}{by} {cmp}",
                m.name
            ),
            "metric alert",
        ),
    };
    (query, kind, notes)
}

fn dd_template(t: &Template, rule: &Rule, window: &str) -> String {
    let mut s = String::new();
    for p in &t.parts {
        match p {
            Part::Text(x) => s.push_str(x),
            Part::Value => s.push_str("{{value}}"),
            Part::Threshold => s.push_str("{{threshold}}"),
            Part::Window => s.push_str(window),
            Part::Metric => s.push_str(match &rule.condition {
                Condition::Threshold(th) => th.metric.name,
                Condition::Burn { .. } => "burn rate",
            }),
            Part::Label(l) => {
                let _ = write!(s, "{{{{{l}.name}}}}");
            }
            Part::Failing => s.push_str(&failing_text(rule)),
        }
    }
    s
}

/// Route names become notification handles: `slack-alerts` -> `@slack-alerts`.
fn dd_handle(route: &str) -> String {
    format!("@{route}")
}

fn dd_message(rule: &Rule, window: &str, notes: &[String]) -> String {
    let mut lines = Vec::new();
    if let Some(t) = &rule.summary {
        lines.push(dd_template(t, rule, window));
    }
    if let Some(t) = &rule.description {
        lines.push(dd_template(t, rule, window));
    }
    if let Some(u) = &rule.runbook_url {
        lines.push(format!("Runbook: {u}"));
    }
    if rule.no_data.policy == NoDataPolicy::Alert {
        lines.push(format!(
            "{{{{#is_no_data}}}}{}{{{{/is_no_data}}}}",
            rule.no_data.message.as_deref().unwrap_or("No data")
        ));
    }
    for n in notes {
        lines.push(format!("Note: {n}."));
    }
    if let Some(r) = &rule.route {
        lines.push(dd_handle(r));
    }
    lines.join("\n")
}

fn dd_tags(rule: &Rule) -> Vec<String> {
    let mut tags = vec![
        "managed-by:synmon".to_string(),
        format!("alert:{}", rule.name),
        format!("severity:{}", rule.severity),
        format!("rule-file:{}", file_stem(&rule.file)),
    ];
    if let Some(r) = &rule.route {
        tags.push(format!("route:{r}"));
    }
    for (k, v) in &rule.labels {
        tags.push(format!("{k}:{v}"));
    }
    tags
}

/// Re-notify paging alerts every 30 minutes, others every 2 hours.
fn renotify_minutes(rule: &Rule) -> u64 {
    match rule.severity.as_str() {
        "page" | "critical" => 30,
        _ => 120,
    }
}

fn dd_options(rule: &Rule, critical: f64, windowed: bool, no_data_window: Duration) -> Value {
    let mut o = json!({
        "thresholds": { "critical": critical },
        "renotify_interval": renotify_minutes(rule),
        // Counts over a window are only meaningful once the window is full; gauges and
        // distributions of sparse synthetic runs are judged on what is there.
        "require_full_window": windowed,
        "notify_no_data": rule.no_data.policy == NoDataPolicy::Alert,
        // DogStatsD data arrives live; nothing is backfilled.
        "evaluation_delay": 0,
        "include_tags": true,
    });
    if rule.no_data.policy == NoDataPolicy::Alert {
        o["no_data_timeframe"] = json!((no_data_window.as_secs() / 60 * 2).max(10));
    }
    if rule.no_data.policy == NoDataPolicy::Ok {
        o["on_missing_data"] = json!("resolve");
    }
    o
}

/// Datadog monitors for the whole set, as a JSON array.
pub fn datadog(set: &RuleSet) -> Value {
    let mut monitors = Vec::new();
    for rule in &set.rules {
        match &rule.condition {
            Condition::Threshold(th) => {
                let (query, kind, notes) = dd_query(rule, th);
                let windowed = matches!(th.aggregate, Aggregate::Ratio | Aggregate::Rate);
                let mut notes = notes;
                notes.extend(inhibit_notes(rule));
                if rule.recover_after > 1 {
                    notes.push(format!(
                        "synmon resolves after {} healthy evaluations",
                        rule.recover_after
                    ));
                }
                monitors.push(json!({
                    "name": format!("[synmon] {}", rule.name),
                    "type": kind,
                    "query": query,
                    "message": dd_message(rule, &dd_window(th.window), &notes),
                    "tags": dd_tags(rule),
                    "priority": if matches!(rule.severity.as_str(), "page" | "critical") { 1 } else { 3 },
                    "options": dd_options(rule, th.threshold, windowed, th.window.max(rule.pending_for)),
                }));
            }
            Condition::Burn { slo, rows, .. } => {
                let Some(s) = set.slos.iter().find(|x| &x.name == slo) else {
                    continue;
                };
                for row in rows {
                    let window = dd_window(row.long);
                    let mut notes = vec![format!(
                        "replace ${{SLO_ID_{}}} with the id of the Datadog SLO `{}` ({}% over {})",
                        sanitize(slo),
                        slo,
                        num(s.objective),
                        dd_window(s.period)
                    )];
                    notes.extend(inhibit_notes(rule));
                    let query = format!(
                        "burn_rate(\"${{SLO_ID_{}}}\").over(\"{}\").long_window(\"{}\").short_window(\"{}\") > {}",
                        sanitize(slo),
                        dd_window(s.period),
                        dd_window(row.long),
                        dd_window(row.short),
                        num(row.factor)
                    );
                    let mut tags = dd_tags(rule);
                    tags.push(format!("slo:{slo}"));
                    monitors.push(json!({
                        "name": format!("[synmon] {} ({} & {})", rule.name, dd_window(row.long), dd_window(row.short)),
                        "type": "slo alert",
                        "query": query,
                        "message": dd_message(rule, &window, &notes),
                        "tags": tags,
                        "priority": if rule.severity == "page" { 1 } else { 3 },
                        "options": dd_options(rule, row.factor, true, row.long),
                    }));
                }
            }
        }
    }
    Value::Array(monitors)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::load_dir;
    use std::path::Path;

    fn shipped() -> RuleSet {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("alerts");
        let (set, errors) = load_dir(&dir);
        assert!(errors.is_empty(), "{errors:?}");
        set
    }

    fn threshold_expr(set: &RuleSet, name: &str) -> (String, Vec<String>) {
        let rule = set.rule(name).unwrap();
        let Condition::Threshold(th) = &rule.condition else {
            panic!("{name} is not a threshold rule")
        };
        prom_expr(rule, th)
    }

    #[test]
    fn durations_and_numbers() {
        assert_eq!(prom_duration(Duration::from_secs(300)), "5m");
        assert_eq!(prom_duration(Duration::from_secs(3 * 86_400)), "3d");
        assert_eq!(prom_duration(Duration::from_secs(30 * 86_400)), "30d");
        assert_eq!(prom_duration(Duration::from_secs(90)), "90s");
        assert_eq!(num((100.0 - 99.9) / 100.0), "0.001");
        assert_eq!(num(14.4), "14.4");
    }

    #[test]
    fn percent_gauge_becomes_a_ratio() {
        let set = shipped();
        let (expr, notes) = threshold_expr(&set, "feed_approval_rate_low");
        assert_eq!(expr, "feed_approval_ratio < 0.95");
        assert!(notes[0].contains("95 % = 0.95"), "{notes:?}");
    }

    #[test]
    fn percentile_in_seconds_by_group() {
        let set = shipped();
        let (expr, _) = threshold_expr(&set, "api_latency_p95_high");
        assert_eq!(
            expr,
            "max by (check) (synmon_check_latency_seconds{check!~\"align_category|save_profile|feed_push\", quantile=\"0.95\"}) > 1"
        );
        let (expr, _) = threshold_expr(&set, "journey_latency_p95_high");
        assert_eq!(
            expr,
            "max by (check) (synmon_check_latency_seconds{check=~\"align_category|save_profile|feed_push\", outcome=\"pass\", quantile=\"0.95\"}) > 0.4"
        );
    }

    #[test]
    fn ratio_over_counters() {
        let set = shipped();
        let (expr, _) = threshold_expr(&set, "check_error_rate_high");
        assert_eq!(
            expr,
            "sum by (target) (increase(synmon_check_latency_seconds_count{outcome=~\"pass|fail\", outcome=\"fail\"}[10m])) / sum by (target) (increase(synmon_check_latency_seconds_count{outcome=~\"pass|fail\"}[10m])) > 0.05"
        );
        let (expr, _) = threshold_expr(&set, "uptime_below_sla");
        assert!(expr.contains("[30d]"), "{expr}");
        assert!(expr.ends_with(" < 0.999"), "{expr}");
    }

    #[test]
    fn last_over_fully_grouped_gauge_is_the_gauge() {
        let set = shipped();
        let (expr, _) = threshold_expr(&set, "synmon_probe_unhealthy");
        assert_eq!(expr, "synmon_probe_unhealthy >= 1");
    }

    #[test]
    fn burn_rate_rows_and_records() {
        let set = shipped();
        let slo = set
            .slos
            .iter()
            .find(|s| s.name == "journey_availability")
            .unwrap();
        assert_eq!(
            prom_burn_expr(slo, &slo.page),
            "(slo:sli_error:ratio_rate1h{slo=\"journey_availability\"} / 0.001 > 14.4 and slo:sli_error:ratio_rate5m{slo=\"journey_availability\"} / 0.001 > 14.4)"
        );
        assert_eq!(
            prom_sli_error(&slo.sli, Duration::from_secs(300)),
            "1 - (sum(increase(synmon_check_runs_total{attempt=\"1\", check=~\"align_category|save_profile|feed_push\", outcome=~\"pass|fail\", outcome=\"pass\"}[5m])) / sum(increase(synmon_check_runs_total{attempt=\"1\", check=~\"align_category|save_profile|feed_push\", outcome=~\"pass|fail\"}[5m])))"
        );
        let out = prometheus(&set);
        for w in ["5m", "30m", "1h", "6h", "3d", "30d"] {
            assert!(
                out.contains(&format!("record: slo:sli_error:ratio_rate{w}\n")),
                "{w}"
            );
        }
        assert!(out.contains("{{ $labels.check }}"));
        assert!(out.contains(
            "\"Feed approval rate is {{ $value | humanizePercentage }} (target >= 95%)\""
        ));
        assert!(out.contains("p95 {{ $value | humanizeDuration }} over 5m"));
        assert!(out.contains("{{ $value }}"));
        assert!(!out.contains("{{ value }}"));
    }

    #[test]
    fn datadog_queries() {
        let set = shipped();
        let rule = set.rule("feed_approval_rate_low").unwrap();
        let Condition::Threshold(th) = &rule.condition else {
            unreachable!()
        };
        assert_eq!(
            dd_query(rule, th).0,
            "max(last_10m):min:feed_approval_rate{*} < 95"
        );
        let rule = set.rule("journey_latency_p95_high").unwrap();
        let Condition::Threshold(th) = &rule.condition else {
            unreachable!()
        };
        assert_eq!(
            dd_query(rule, th).0,
            "avg(last_5m):p95:synmon.check.latency{check IN (align_category,save_profile,feed_push) AND outcome:pass} by {check} > 400"
        );
    }

    #[test]
    fn datadog_monitors_have_the_required_keys() {
        let set = shipped();
        let text = serde_json::to_string_pretty(&datadog(&set)).unwrap();
        let parsed: Value = serde_json::from_str(&text).unwrap();
        let monitors = parsed.as_array().unwrap();
        let thresholds = set
            .rules
            .iter()
            .filter(|r| matches!(r.condition, Condition::Threshold(_)))
            .count();
        // Three rows per SLO: two page rows and one ticket row.
        assert_eq!(monitors.len(), thresholds + 3 * set.slos.len());
        for m in monitors {
            for k in ["name", "type", "query", "message", "tags", "options"] {
                assert!(m.get(k).is_some(), "{k} missing in {m}");
            }
            let o = &m["options"];
            assert!(o["thresholds"]["critical"].is_number(), "{m}");
            for k in [
                "renotify_interval",
                "require_full_window",
                "notify_no_data",
                "evaluation_delay",
            ] {
                assert!(o.get(k).is_some(), "{k} missing in {m}");
            }
            let t = m["type"].as_str().unwrap();
            assert!(
                ["metric alert", "query alert", "slo alert"].contains(&t),
                "{t}"
            );
        }
        let page = monitors
            .iter()
            .find(|m| {
                m["name"]
                    .as_str()
                    .unwrap()
                    .contains("check_error_rate_high")
            })
            .unwrap();
        assert!(page["message"].as_str().unwrap().ends_with("@pagerduty"));
    }

    #[test]
    fn new_keys_are_exported_as_notes_and_alertmanager_inhibit_rules() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("rules.yaml");
        std::fs::write(
            &f,
            "rules:
  - alert: target_down
    metric: synmon.check.latency
    by: [target]
    aggregate: ratio
    numerator: { outcome: fail }
    op: \">\"
    threshold: 0.5
    resolve_window: 1m
    min_coverage: 0.5
    across: { label: check, min_share: 0.5 }
    annotations: { summary: \"{{ labels.target }}: {{ failing }} failing\" }
    inhibits:
      - matchers: { alertname: check_failing }
  - alert: check_failing
    metric: synmon.check.latency
    by: [check, target]
    aggregate: ratio
    numerator: { outcome: fail }
    op: \">\"
    threshold: 0.05
",
        )
        .unwrap();
        let (set, errors) = crate::rules::load_files(&[f]);
        assert!(errors.is_empty(), "{errors:?}");
        let out = prometheus(&set);
        assert!(out.contains("# synmon judges each `check` apart"), "{out}");
        assert!(out.contains("resolve_window 1m"), "{out}");
        assert!(out.contains("(min_coverage)"), "{out}");
        assert!(
            out.contains("\"{{ $labels.target }}: several checks failing\""),
            "{out}"
        );
        assert!(
            out.ends_with(
                "# inhibit_rules:\n#   - source_matchers: ['alertname=\"target_down\"']\n#     target_matchers: ['alertname=\"check_failing\"']\n#     equal: [\"target\"]\n"
            ),
            "{out}"
        );
        let monitors = datadog(&set);
        let message = monitors[0]["message"].as_str().unwrap();
        assert!(
            message.contains(
                "synmon mutes {alertname=\"check_failing\"} while this fires (equal: target)"
            ),
            "{message}"
        );
    }

    /// The shipped rules, exported, pass `promtool check rules`. promtool is part of the test
    /// toolchain (`scripts/test.sh` installs it): without it this test fails, it does not skip.
    #[test]
    fn promtool_accepts_the_shipped_rules() {
        let set = shipped();
        let text = prometheus(&set);
        let has_promtool = std::process::Command::new("promtool")
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success());
        assert!(
            has_promtool,
            "promtool not found: install Debian's `prometheus` package (apt-get install -y prometheus), as scripts/test.sh does"
        );
        let mut file = tempfile::Builder::new().suffix(".yaml").tempfile().unwrap();
        std::io::Write::write_all(&mut file, text.as_bytes()).unwrap();
        let out = std::process::Command::new("promtool")
            .arg("check")
            .arg("rules")
            .arg(file.path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "promtool rejected the export:\n{}\n{}\n{text}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
