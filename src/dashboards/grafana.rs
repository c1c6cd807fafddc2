//! The same dashboards for Prometheus users: each Datadog dashboard becomes a Grafana dashboard
//! whose queries are PromQL over the names synmon serves on `/metrics`.
//!
//! The catalog gives both names of every metric, so a Datadog query translates mechanically:
//! `p95:synmon.check.latency{check:x} by {check}` reads the summary's `quantile="0.95"` series
//! (the worst across series, `max`, since quantiles do not average), counters become
//! `increase()`/`rate()`, gauges keep their space aggregation. Values on `/metrics` are in base
//! units (seconds, 0..1 ratios), so targets taken from markers and conditional formats are
//! converted with the catalog's scale: `feed_push_success_rate >= 95` becomes a threshold at
//! 0.95 on a `percentunit` panel. Tags that only DogStatsD carries (global tags, `host`,
//! template variables) have no Prometheus label and are dropped from the selector.

use serde_json::{Map, Value, json};

use crate::metrics::catalog::{MetricDef, MetricKind, StatsdForm, Unit};
use crate::metrics::prometheus::SUMMARY_QUANTILES;

use super::lint::{self, LintOptions};
use super::model::{Dashboard, marker_values};
use super::query::{self, Filter, FormulaToken, MetricQuery, Modifier};

/// The Grafana dashboard schema version written.
pub const SCHEMA_VERSION: u64 = 39;

#[derive(Debug, thiserror::Error)]
#[error("{file}: {path}: {message}")]
pub struct RenderError {
    pub file: String,
    pub path: String,
    pub message: String,
}

/// A Grafana dashboard for `d`, named `uid` (derived from the file name by the caller).
pub fn render(d: &Dashboard, uid: &str, opts: &LintOptions) -> Result<Value, RenderError> {
    let mut r = Renderer {
        file: &d.file,
        opts,
        panels: Vec::new(),
        next_id: 1,
        x: 0,
        y: 0,
    };
    let widgets = d.json["widgets"].as_array().cloned().unwrap_or_default();
    r.widgets(&widgets, "$.widgets")?;
    let description = d.json["description"].as_str().unwrap_or_default();
    Ok(json!({
        "uid": uid,
        "title": d.title,
        "description": description,
        "tags": ["synmon"],
        "schemaVersion": SCHEMA_VERSION,
        "version": 1,
        "editable": true,
        "graphTooltip": 1,
        "time": {"from": "now-6h", "to": "now"},
        "refresh": "1m",
        "timezone": "browser",
        "templating": {"list": [{
            "name": "datasource",
            "label": "Prometheus",
            "type": "datasource",
            "query": "prometheus",
            "current": {},
            "hide": 0
        }]},
        "annotations": {"list": []},
        "panels": r.panels,
    }))
}

/// A Grafana uid from a file stem (Grafana allows 40 characters).
pub fn uid_for(stem: &str) -> String {
    let mut uid: String = format!("synmon-{stem}")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect();
    uid.truncate(40);
    uid
}

struct Renderer<'a> {
    file: &'a str,
    opts: &'a LintOptions,
    panels: Vec<Value>,
    next_id: u64,
    x: u64,
    y: u64,
}

/// One translated query: its PromQL and the metric it reads.
struct Translated {
    expr: String,
    def: &'static MetricDef,
}

const PANEL_W: u64 = 12;
const PANEL_H: u64 = 8;

fn datasource() -> Value {
    json!({"type": "prometheus", "uid": "${datasource}"})
}

fn unit_of(def: &MetricDef) -> &'static str {
    match def.unit {
        Unit::Milliseconds | Unit::Seconds | Unit::Days => "s",
        Unit::Percent | Unit::Ratio => "percentunit",
        Unit::Count => "short",
    }
}

fn color_of(palette_or_display: &str) -> &'static str {
    let p = palette_or_display;
    if p.contains("green") || p.starts_with("ok") {
        "green"
    } else if p.contains("red") || p.starts_with("error") {
        "red"
    } else if p.contains("yellow") || p.contains("orange") || p.starts_with("warning") {
        "orange"
    } else {
        "blue"
    }
}

fn regex_escape(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        match c {
            '*' => out.push_str(".*"),
            '.' | '+' | '?' | '(' | ')' | '[' | ']' | '{' | '}' | '|' | '^' | '$' | '\\' => {
                out.push_str("\\\\");
                out.push(c);
            }
            '"' => out.push_str("\\\""),
            c => out.push(c),
        }
    }
    out
}

fn label_escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

/// `name{a="b",c!="d"}`, with extra matchers appended.
fn selector(name: &str, q: &MetricQuery, def: &MetricDef, extra: &[String]) -> String {
    let mut m: Vec<String> = Vec::new();
    for f in &q.filters {
        if let Filter::Tag {
            negated,
            key,
            value,
        } = f
            && def.labels.contains(&key.as_str())
        {
            let op = match (negated, value.contains('*')) {
                (false, false) => "=",
                (true, false) => "!=",
                (false, true) => "=~",
                (true, true) => "!~",
            };
            let v = if value.contains('*') {
                regex_escape(value)
            } else {
                label_escape(value)
            };
            m.push(format!("{key}{op}\"{v}\""));
        }
    }
    m.extend(extra.iter().cloned());
    if m.is_empty() {
        name.to_string()
    } else {
        format!("{name}{{{}}}", m.join(","))
    }
}

fn by_clause(q: &MetricQuery, def: &MetricDef) -> String {
    let by: Vec<&str> =
        q.by.iter()
            .map(String::as_str)
            .filter(|t| def.labels.contains(t))
            .collect();
    if by.is_empty() {
        String::new()
    } else {
        format!(" by ({})", by.join(", "))
    }
}

fn quantile_label(q: f64) -> Option<&'static str> {
    SUMMARY_QUANTILES
        .iter()
        .find(|(v, _)| (v - q).abs() < 1e-9)
        .map(|(_, l)| *l)
}

/// One Datadog metric query as PromQL.
pub fn translate(q: &MetricQuery, def: &MetricDef) -> Result<String, String> {
    let by = by_clause(q, def);
    let range = "[$__rate_interval]";
    let agg = q.aggregator.as_str();
    match (def.kind, def.statsd) {
        (MetricKind::Distribution, StatsdForm::QuantileGauge(qv)) => {
            let label = quantile_label(qv).ok_or("no such quantile on /metrics")?;
            let outer = if query::PLAIN_AGGREGATORS.contains(&agg) && agg != "count" {
                agg
            } else {
                "max"
            };
            let sel = selector(def.prom_name, q, def, &[format!("quantile=\"{label}\"")]);
            Ok(format!("{outer}{by} ({sel})"))
        }
        (MetricKind::Distribution, _) => {
            if let Some(p) = q.percentile() {
                let label = quantile_label(p).ok_or_else(|| {
                    format!("`{agg}` is not on /metrics (summaries carry p50, p95 and p99)")
                })?;
                let sel = selector(def.prom_name, q, def, &[format!("quantile=\"{label}\"")]);
                return Ok(format!("max{by} ({sel})"));
            }
            let sum = selector(&format!("{}_sum", def.prom_name), q, def, &[]);
            let count = selector(&format!("{}_count", def.prom_name), q, def, &[]);
            match agg {
                "avg" => Ok(format!(
                    "sum{by} (rate({sum}{range})) / sum{by} (rate({count}{range}))"
                )),
                "count" => Ok(format!("sum{by} (increase({count}{range}))")),
                other => Err(format!(
                    "`{other}:` of a distribution has no PromQL rendering (use avg, count or p50/p95/p99)"
                )),
            }
        }
        (MetricKind::Counter, _) => {
            let f = if q.modifiers.contains(&Modifier::AsRate) {
                "rate"
            } else {
                "increase"
            };
            let outer = if agg == "count" { "count" } else { agg };
            let sel = selector(def.prom_name, q, def, &[]);
            Ok(format!("{outer}{by} ({f}({sel}{range}))"))
        }
        (MetricKind::Gauge, _) => {
            let sel = selector(def.prom_name, q, def, &[]);
            Ok(format!("{agg}{by} ({sel})"))
        }
    }
}

/// A formula over named queries as PromQL: query names become their translations.
fn formula_expr(
    formula: &str,
    queries: &[(String, Translated)],
) -> Result<(String, Option<&'static MetricDef>), String> {
    let idents = query::formula_identifiers(formula);
    if let Some((f, _)) = idents.iter().find(|(_, call)| *call) {
        return Err(format!("formula function `{f}` has no PromQL rendering"));
    }
    let trimmed = formula.trim();
    if let Some((_, t)) = queries.iter().find(|(n, _)| n == trimmed) {
        return Ok((t.expr.clone(), Some(t.def)));
    }
    let mut out = String::new();
    for token in query::formula_tokens(formula) {
        match token {
            FormulaToken::Ident { name, .. } => {
                let t = queries
                    .iter()
                    .find(|(n, _)| *n == name)
                    .ok_or_else(|| format!("`{name}` is not a query of this request"))?;
                out.push('(');
                out.push_str(&t.1.expr);
                out.push(')');
            }
            FormulaToken::Number(n) => out.push_str(&n),
            FormulaToken::Other(c) => out.push(c),
        }
    }
    // A combination of queries is unitless on both sides: no scaling, no metric unit.
    Ok((out, None))
}

impl Renderer<'_> {
    fn err(&self, path: &str, message: impl Into<String>) -> RenderError {
        RenderError {
            file: self.file.to_string(),
            path: path.to_string(),
            message: message.into(),
        }
    }

    fn place(&mut self, full_width: bool) -> Value {
        if (full_width || self.x + PANEL_W > 24) && self.x > 0 {
            self.y += PANEL_H;
            self.x = 0;
        }
        if full_width {
            let p = json!({"x": 0, "y": self.y, "w": 24, "h": 1});
            self.y += 1;
            p
        } else {
            let p = json!({"x": self.x, "y": self.y, "w": PANEL_W, "h": PANEL_H});
            self.x += PANEL_W;
            p
        }
    }

    fn id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id - 1
    }

    fn widgets(&mut self, widgets: &[Value], path: &str) -> Result<(), RenderError> {
        for (i, w) in widgets.iter().enumerate() {
            self.widget(&w["definition"], &format!("{path}[{i}].definition"))?;
        }
        Ok(())
    }

    fn query_translation(
        &self,
        q: &Value,
        path: &str,
    ) -> Result<(String, Translated, MetricQuery), RenderError> {
        let text = q["query"].as_str().unwrap_or_default();
        let qpath = format!("{path}.query");
        let parsed = query::parse(text).map_err(|e| self.err(&qpath, e))?;
        let def = lint::resolve(&parsed.metric, self.opts).map_err(|e| self.err(&qpath, e))?;
        let expr = translate(&parsed, def).map_err(|e| self.err(&qpath, e))?;
        let name = q["name"].as_str().unwrap_or("query1").to_string();
        Ok((name, Translated { expr, def }, parsed))
    }

    fn widget(&mut self, def: &Value, path: &str) -> Result<(), RenderError> {
        let ty = def["type"].as_str().unwrap_or_default();
        let title = def["title"].as_str().unwrap_or_default().to_string();
        match ty {
            "group" => {
                let pos = self.place(true);
                let id = self.id();
                self.panels.push(json!({
                    "id": id, "type": "row", "title": title, "collapsed": false,
                    "gridPos": pos, "panels": []
                }));
                let children = def["widgets"].as_array().cloned().unwrap_or_default();
                self.widgets(&children, &format!("{path}.widgets"))
            }
            "note" => {
                let pos = self.place(false);
                let id = self.id();
                self.panels.push(json!({
                    "id": id, "type": "text", "title": title, "gridPos": pos,
                    "options": {"mode": "markdown", "content": def["content"].as_str().unwrap_or_default()}
                }));
                Ok(())
            }
            _ => self.data_panel(def, ty, title, path),
        }
    }

    fn data_panel(
        &mut self,
        def: &Value,
        ty: &str,
        title: String,
        path: &str,
    ) -> Result<(), RenderError> {
        let mut targets = Vec::new();
        let mut unit_def: Option<&'static MetricDef> = None;
        let mut scaled = true;
        let mut formats: Vec<Value> = Vec::new();
        let requests = def["requests"].as_array().cloned().unwrap_or_default();
        for (ri, req) in requests.iter().enumerate() {
            let rpath = format!("{path}.requests[{ri}]");
            if ty == "distribution" {
                // A histogram of every sample: Prometheus has the summary's quantiles.
                let qpath = format!("{rpath}.query.query");
                let text = req["query"]["query"].as_str().unwrap_or_default();
                let parsed = query::parse(text).map_err(|e| self.err(&qpath, e))?;
                let mdef =
                    lint::resolve(&parsed.metric, self.opts).map_err(|e| self.err(&qpath, e))?;
                unit_def = Some(mdef);
                for (q, _) in SUMMARY_QUANTILES {
                    let p = MetricQuery {
                        aggregator: format!("p{}", (q * 100.0).round()),
                        ..parsed.clone()
                    };
                    let expr = translate(&p, mdef).map_err(|e| self.err(&qpath, e))?;
                    targets.push(json!({
                        "refId": ref_id(targets.len()),
                        "expr": expr,
                        "legendFormat": format!("p{} {}", (q * 100.0).round(), legend(&parsed)).trim().to_string(),
                        "datasource": datasource(),
                    }));
                }
                continue;
            }
            let mut named = Vec::new();
            let mut parsed_by_name = Vec::new();
            for (qi, q) in req["queries"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .iter()
                .enumerate()
            {
                let (name, t, parsed) =
                    self.query_translation(q, &format!("{rpath}.queries[{qi}]"))?;
                parsed_by_name.push((name.clone(), parsed));
                named.push((name, t));
            }
            if let Some(cf) = req["conditional_formats"].as_array() {
                formats.extend(cf.iter().cloned());
            }
            for (fi, f) in req["formulas"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .iter()
                .enumerate()
            {
                let formula = f["formula"].as_str().unwrap_or_default();
                let (expr, d) = formula_expr(formula, &named)
                    .map_err(|e| self.err(&format!("{rpath}.formulas[{fi}].formula"), e))?;
                match d {
                    Some(d) => {
                        if unit_def.is_none() {
                            unit_def = Some(d);
                        }
                    }
                    None => scaled = false,
                }
                let legend_text = match f["alias"].as_str() {
                    Some(a) => {
                        let by = parsed_by_name
                            .first()
                            .map(|(_, p)| legend(p))
                            .unwrap_or_default();
                        format!("{a} {by}").trim().to_string()
                    }
                    None => parsed_by_name
                        .first()
                        .map(|(_, p)| legend(p))
                        .unwrap_or_default(),
                };
                let mut target = json!({
                    "refId": ref_id(targets.len()),
                    "expr": expr,
                    "legendFormat": legend_text,
                    "datasource": datasource(),
                });
                if ty != "timeseries" && ty != "heatmap" {
                    target["instant"] = json!(true);
                }
                targets.push(target);
                if let Some(cf) = f["conditional_formats"].as_array() {
                    formats.extend(cf.iter().cloned());
                }
            }
        }
        let scale = |v: f64| match (scaled, unit_def) {
            (true, Some(d)) => d.to_prom(v),
            _ => v,
        };
        let unit = match (scaled, unit_def) {
            (true, Some(d)) => unit_of(d),
            _ => "short",
        };
        let mut thresholds = thresholds_from_formats(&formats, scale);
        let markers = def["markers"].as_array().cloned().unwrap_or_default();
        if thresholds.is_none() && !markers.is_empty() {
            thresholds = thresholds_from_markers(&markers, scale);
        }
        let mut defaults = Map::new();
        defaults.insert("unit".into(), json!(unit));
        let mut custom = Map::new();
        if let Some(t) = thresholds {
            defaults.insert("thresholds".into(), t);
            if matches!(ty, "timeseries" | "distribution") {
                custom.insert("thresholdsStyle".into(), json!({"mode": "dashed"}));
            }
        }
        let (panel_type, options) = match ty {
            "timeseries" | "distribution" => {
                let draw = def["requests"][0]["display_type"]
                    .as_str()
                    .unwrap_or("line");
                custom.insert(
                    "drawStyle".into(),
                    json!(if draw == "bars" { "bars" } else { "line" }),
                );
                if draw == "area" {
                    custom.insert("fillOpacity".into(), json!(20));
                }
                (
                    "timeseries",
                    json!({"legend": {"displayMode": "list", "placement": "bottom", "showLegend": true}, "tooltip": {"mode": "multi"}}),
                )
            }
            "query_value" => (
                "stat",
                json!({"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": false}, "colorMode": "background", "graphMode": "area", "textMode": "auto"}),
            ),
            "toplist" => (
                "bargauge",
                json!({"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": false}, "orientation": "horizontal", "displayMode": "basic", "showUnfilled": true}),
            ),
            "heatmap" => (
                "heatmap",
                json!({"calculate": true, "yAxis": {"unit": unit}, "color": {"scheme": "Oranges", "mode": "scheme"}}),
            ),
            other => {
                return Err(self.err(
                    &format!("{path}.type"),
                    format!("`{other}` has no Grafana rendering"),
                ));
            }
        };
        if !custom.is_empty() {
            defaults.insert("custom".into(), Value::Object(custom));
        }
        if ty == "toplist" {
            // Top lists sort and limit in Datadog; Grafana shows every series, sorted.
            let limit = requests
                .iter()
                .filter_map(|r| r["formulas"][0]["limit"]["count"].as_u64())
                .next();
            if let Some(n) = limit {
                for t in &mut targets {
                    let e = t["expr"].as_str().unwrap_or_default().to_string();
                    t["expr"] = json!(format!("topk({n}, {e})"));
                }
            }
        }
        let pos = self.place(false);
        let id = self.id();
        self.panels.push(json!({
            "id": id,
            "type": panel_type,
            "title": title,
            "gridPos": pos,
            "datasource": datasource(),
            "targets": targets,
            "fieldConfig": {"defaults": Value::Object(defaults), "overrides": []},
            "options": options,
        }));
        Ok(())
    }
}

fn ref_id(i: usize) -> String {
    let mut s = String::new();
    let mut n = i;
    loop {
        s.insert(0, (b'A' + (n % 26) as u8) as char);
        if n < 26 {
            break;
        }
        n = n / 26 - 1;
    }
    s
}

/// `{{check}} {{location}}` for a grouped query.
fn legend(q: &MetricQuery) -> String {
    q.by.iter()
        .map(|t| format!("{{{{{t}}}}}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Datadog colours values by conditions; Grafana by ascending steps. `>= 95 green, < 95 red`
/// becomes a red base with a green step at 95 (scaled to the Prometheus unit).
fn thresholds_from_formats(formats: &[Value], scale: impl Fn(f64) -> f64) -> Option<Value> {
    if formats.is_empty() {
        return None;
    }
    let mut upper: Vec<(f64, &'static str)> = Vec::new();
    let mut lower: Vec<(f64, &'static str)> = Vec::new();
    for f in formats {
        let (Some(cmp), Some(v), Some(p)) = (
            f["comparator"].as_str(),
            f["value"].as_f64(),
            f["palette"].as_str(),
        ) else {
            continue;
        };
        if cmp.starts_with('>') {
            upper.push((scale(v), color_of(p)));
        } else {
            lower.push((scale(v), color_of(p)));
        }
    }
    upper.sort_by(|a, b| a.0.total_cmp(&b.0));
    lower.sort_by(|a, b| a.0.total_cmp(&b.0));
    let base = lower.first().map(|l| l.1).unwrap_or("text");
    let mut steps = vec![json!({"color": base, "value": null})];
    for (v, c) in upper {
        steps.push(json!({"color": c, "value": v}));
    }
    // `<= 300 green, > 300 red` has no upper step from a `>`: the lower bound's value is where
    // the colour changes.
    if steps.len() == 1
        && let Some((v, _)) = lower.first()
    {
        let other = if base == "green" { "red" } else { "green" };
        steps.push(json!({"color": other, "value": v}));
    }
    Some(json!({"mode": "absolute", "steps": steps}))
}

fn thresholds_from_markers(markers: &[Value], scale: impl Fn(f64) -> f64) -> Option<Value> {
    let mut steps = vec![json!({"color": "green", "value": null})];
    let mut points: Vec<(f64, &'static str)> = Vec::new();
    for m in markers {
        let Some(vals) = m["value"].as_str().and_then(marker_values) else {
            continue;
        };
        let color = color_of(m["display_type"].as_str().unwrap_or("error"));
        for v in vals {
            points.push((scale(v), color));
        }
    }
    if points.is_empty() {
        return None;
    }
    points.sort_by(|a, b| a.0.total_cmp(&b.0));
    for (v, c) in points {
        steps.push(json!({"color": c, "value": v}));
    }
    Some(json!({"mode": "absolute", "steps": steps}))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::catalog;

    fn tr(q: &str) -> String {
        let p = query::parse(q).unwrap();
        let d = lint::resolve(&p.metric, &LintOptions::default()).unwrap();
        translate(&p, d).unwrap()
    }

    #[test]
    fn queries_translate_to_promql_over_metrics_names() {
        assert_eq!(
            tr(
                "p95:synmon.check.latency{check:align_category,!outcome:error,env:prod} by {check,host}"
            ),
            "max by (check) (synmon_check_latency_seconds{check=\"align_category\",outcome!=\"error\",quantile=\"0.95\"})"
        );
        assert_eq!(
            tr("sum:synmon.check.runs{outcome:pass} by {check}.as_count()"),
            "sum by (check) (increase(synmon_check_runs_total{outcome=\"pass\"}[$__rate_interval]))"
        );
        assert_eq!(
            tr("avg:feed_push_success_rate{*}"),
            "avg (feed_push_success_ratio)"
        );
        assert_eq!(
            tr("max:swis_preview_p95_ms{*} by {location}"),
            "max by (location) (swis_preview_latency_seconds{quantile=\"0.95\"})"
        );
        assert_eq!(
            tr("avg:synmon.step.latency{check:feed*}"),
            "sum (rate(synmon_step_latency_seconds_sum{check=~\"feed.*\"}[$__rate_interval])) / sum (rate(synmon_step_latency_seconds_count{check=~\"feed.*\"}[$__rate_interval]))"
        );
        let p = query::parse("p90:synmon.check.latency{*}").unwrap();
        assert!(
            translate(&p, &catalog::CHECK_LATENCY)
                .unwrap_err()
                .contains("not on /metrics")
        );
    }

    #[test]
    fn targets_are_scaled_to_prometheus_units() {
        let f = [
            json!({"comparator": ">=", "value": 95, "palette": "white_on_green"}),
            json!({"comparator": "<", "value": 95, "palette": "white_on_red"}),
        ];
        let t =
            thresholds_from_formats(&f, |v| catalog::FEED_PUSH_SUCCESS_RATE.to_prom(v)).unwrap();
        assert_eq!(
            t,
            json!({"mode": "absolute", "steps": [{"color": "red", "value": null}, {"color": "green", "value": 0.95}]})
        );
        let m = [json!({"value": "y = 400", "display_type": "error dashed"})];
        let t = thresholds_from_markers(&m, |v| catalog::CHECK_LATENCY.to_prom(v)).unwrap();
        assert_eq!(t["steps"][1], json!({"color": "red", "value": 0.4}));
        assert_eq!(ref_id(0), "A");
        assert_eq!(ref_id(27), "AB");
    }
}
