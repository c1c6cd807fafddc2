//! The Datadog `/api/v1/dashboard` schema, as far as synmon's dashboards use it: required
//! fields, enums and the shape of widgets, requests, queries, formulas, markers and conditional
//! formats, checked on the JSON tree so every error carries its JSON path
//! (`$.widgets[2].definition.requests[0].queries[0].query`).
//!
//! Why a hand-written check rather than typed serde structs: serde stops at the first error and
//! loses the path of later ones; a dashboard file should report every mistake at once, and the
//! file must round-trip to the API byte-for-byte in meaning, which a typed model would narrow.

use serde_json::{Map, Value};

use super::LintError;

/// Widget types synmon's dashboards use and lint understands.
pub const WIDGET_TYPES: &[&str] = &[
    "timeseries",
    "query_value",
    "toplist",
    "distribution",
    "heatmap",
    "note",
    "group",
];

const PALETTES: &[&str] = &[
    "blue",
    "custom_bg",
    "custom_image",
    "custom_text",
    "gray_on_white",
    "grey",
    "green",
    "orange",
    "red",
    "red_on_white",
    "white_on_gray",
    "white_on_green",
    "green_on_white",
    "white_on_red",
    "white_on_yellow",
    "yellow_on_white",
    "black_on_light_yellow",
    "black_on_light_green",
    "black_on_light_red",
];
const COMPARATORS: &[&str] = &[">", ">=", "<", "<="];
const QUERY_AGGREGATORS: &[&str] = &[
    "avg",
    "min",
    "max",
    "sum",
    "last",
    "area",
    "l2norm",
    "percentile",
];
const MARKER_DISPLAY: &[&str] = &[
    "error dashed",
    "error solid",
    "error bold",
    "warning dashed",
    "warning solid",
    "warning bold",
    "ok dashed",
    "ok solid",
    "ok bold",
    "info dashed",
    "info solid",
    "info bold",
];

/// One metric query of a dashboard, for the catalog lint and the Grafana renderer.
#[derive(Debug, Clone, PartialEq)]
pub struct QueryRef {
    /// JSON path of the query string.
    pub path: String,
    pub text: String,
    pub widget_type: String,
    /// The request draws a histogram (distribution widget): needs a distribution metric.
    pub histogram: bool,
}

/// A dashboard file that parsed as JSON, with what lint and render need from it.
#[derive(Debug, Clone)]
pub struct Dashboard {
    /// The file as shown in messages.
    pub file: String,
    pub json: Value,
    pub title: String,
    pub template_variables: Vec<String>,
    pub queries: Vec<QueryRef>,
}

struct Checker<'a> {
    file: &'a str,
    errors: Vec<LintError>,
    queries: Vec<QueryRef>,
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

impl Checker<'_> {
    fn err(&mut self, path: &str, message: impl Into<String>) {
        self.errors.push(LintError {
            file: self.file.to_string(),
            pos: None,
            path: path.to_string(),
            message: message.into(),
        });
    }

    fn object<'v>(&mut self, v: &'v Value, path: &str) -> Option<&'v Map<String, Value>> {
        match v {
            Value::Object(m) => Some(m),
            other => {
                self.err(
                    path,
                    format!("expected an object, found {}", kind_of(other)),
                );
                None
            }
        }
    }

    /// Unknown keys are typos until proven otherwise (`layout_typ`, `formula1`).
    fn keys(&mut self, m: &Map<String, Value>, path: &str, allowed: &[&str]) {
        for k in m.keys() {
            if !allowed.contains(&k.as_str()) {
                let hint = super::query::did_you_mean(k, allowed.iter().copied())
                    .map(|s| format!(" (did you mean {s}?)"))
                    .unwrap_or_default();
                self.err(&format!("{path}.{k}"), format!("unknown field{hint}"));
            }
        }
    }

    fn required<'v>(
        &mut self,
        m: &'v Map<String, Value>,
        path: &str,
        key: &str,
    ) -> Option<&'v Value> {
        let v = m.get(key);
        if v.is_none() {
            self.err(path, format!("missing required field `{key}`"));
        }
        v
    }

    fn string<'v>(&mut self, v: &'v Value, path: &str) -> Option<&'v str> {
        match v {
            Value::String(s) => Some(s),
            other => {
                self.err(path, format!("expected a string, found {}", kind_of(other)));
                None
            }
        }
    }

    fn array<'v>(&mut self, v: &'v Value, path: &str) -> Option<&'v Vec<Value>> {
        match v {
            Value::Array(a) => Some(a),
            other => {
                self.err(path, format!("expected an array, found {}", kind_of(other)));
                None
            }
        }
    }

    fn one_of(&mut self, v: &Value, path: &str, allowed: &[&str]) -> Option<String> {
        let s = self.string(v, path)?;
        if allowed.contains(&s) {
            Some(s.to_string())
        } else {
            self.err(path, format!("`{s}` is not one of {}", allowed.join(", ")));
            None
        }
    }

    fn opt_one_of(&mut self, m: &Map<String, Value>, path: &str, key: &str, allowed: &[&str]) {
        if let Some(v) = m.get(key) {
            self.one_of(v, &format!("{path}.{key}"), allowed);
        }
    }

    fn number(&mut self, v: &Value, path: &str) -> Option<f64> {
        match v {
            Value::Number(n) => n.as_f64(),
            other => {
                self.err(path, format!("expected a number, found {}", kind_of(other)));
                None
            }
        }
    }

    fn dashboard(&mut self, v: &Value) -> (String, Vec<String>) {
        let mut title = String::new();
        let mut vars = Vec::new();
        let Some(m) = self.object(v, "$") else {
            return (title, vars);
        };
        self.keys(
            m,
            "$",
            &[
                "id",
                "title",
                "description",
                "layout_type",
                "reflow_type",
                "widgets",
                "tags",
                "template_variables",
                "template_variable_presets",
                "notify_list",
            ],
        );
        if let Some(t) = self.required(m, "$", "title")
            && let Some(s) = self.string(t, "$.title")
        {
            if s.trim().is_empty() {
                self.err("$.title", "must not be empty");
            }
            title = s.to_string();
        }
        let layout = self
            .required(m, "$", "layout_type")
            .and_then(|v| self.one_of(v, "$.layout_type", &["ordered", "free"]));
        if m.contains_key("reflow_type") {
            self.opt_one_of(m, "$", "reflow_type", &["auto", "fixed"]);
            if layout.as_deref() == Some("free") {
                self.err("$.reflow_type", "only applies to `ordered` layouts");
            }
        }
        if let Some(tv) = m.get("template_variables")
            && let Some(list) = self.array(tv, "$.template_variables")
        {
            for (i, t) in list.iter().enumerate() {
                let p = format!("$.template_variables[{i}]");
                let Some(tm) = self.object(t, &p) else {
                    continue;
                };
                self.keys(
                    tm,
                    &p,
                    &["name", "prefix", "default", "defaults", "available_values"],
                );
                if let Some(n) = self.required(tm, &p, "name")
                    && let Some(n) = self.string(n, &format!("{p}.name"))
                {
                    vars.push(n.to_string());
                }
            }
        }
        if let Some(tags) = m.get("tags")
            && let Some(list) = self.array(tags, "$.tags")
        {
            for (i, t) in list.iter().enumerate() {
                self.string(t, &format!("$.tags[{i}]"));
            }
        }
        if let Some(w) = self.required(m, "$", "widgets") {
            self.widgets(w, "$.widgets", layout.as_deref() == Some("free"));
        }
        (title, vars)
    }

    fn widgets(&mut self, v: &Value, path: &str, free: bool) {
        let Some(list) = self.array(v, path) else {
            return;
        };
        for (i, w) in list.iter().enumerate() {
            let p = format!("{path}[{i}]");
            let Some(m) = self.object(w, &p) else {
                continue;
            };
            self.keys(m, &p, &["id", "definition", "layout"]);
            if let Some(l) = m.get("layout") {
                self.layout(l, &format!("{p}.layout"));
            } else if free {
                self.err(
                    &p,
                    "missing required field `layout` (the dashboard is `free`)",
                );
            }
            if let Some(d) = self.required(m, &p, "definition") {
                self.definition(d, &format!("{p}.definition"));
            }
        }
    }

    fn layout(&mut self, v: &Value, path: &str) {
        let Some(m) = self.object(v, path) else {
            return;
        };
        self.keys(m, path, &["x", "y", "width", "height", "is_column_break"]);
        for k in ["x", "y", "width", "height"] {
            if let Some(n) = self.required(m, path, k) {
                let p = format!("{path}.{k}");
                match n.as_u64() {
                    Some(n) if k == "width" || k == "height" => {
                        if n == 0 || n > 12 && k == "width" {
                            self.err(&p, format!("{n} is out of range (1-12 for width)"));
                        }
                    }
                    Some(_) => {}
                    None => self.err(&p, "expected a non-negative integer"),
                }
            }
        }
    }

    fn definition(&mut self, v: &Value, path: &str) {
        let Some(m) = self.object(v, path) else {
            return;
        };
        let Some(t) = self.required(m, path, "type") else {
            return;
        };
        let tp = format!("{path}.type");
        let Some(ty) = self.string(t, &tp) else {
            return;
        };
        let common = [
            "type",
            "title",
            "title_size",
            "title_align",
            "time",
            "custom_links",
        ];
        let extra: &[&str] = match ty {
            "timeseries" => &[
                "requests",
                "show_legend",
                "legend_layout",
                "legend_columns",
                "legend_size",
                "markers",
                "yaxis",
                "right_yaxis",
                "events",
            ],
            "query_value" => &[
                "requests",
                "autoscale",
                "custom_unit",
                "precision",
                "text_align",
                "timeseries_background",
            ],
            "toplist" => &["requests", "style"],
            "distribution" => &[
                "requests",
                "xaxis",
                "yaxis",
                "show_legend",
                "legend_size",
                "markers",
            ],
            "heatmap" => &["requests", "yaxis", "events", "show_legend", "legend_size"],
            "note" => &[
                "content",
                "background_color",
                "font_size",
                "text_align",
                "vertical_align",
                "show_tick",
                "tick_pos",
                "tick_edge",
                "has_padding",
            ],
            "group" => &[
                "layout_type",
                "widgets",
                "background_color",
                "show_title",
                "banner_img",
            ],
            other => {
                let hint = super::query::did_you_mean(other, WIDGET_TYPES.iter().copied())
                    .map(|s| format!("did you mean {s}? "))
                    .unwrap_or_default();
                self.err(
                    &tp,
                    format!(
                        "unknown widget type `{other}` ({hint}supported: {})",
                        WIDGET_TYPES.join(", ")
                    ),
                );
                return;
            }
        };
        let allowed: Vec<&str> = common.iter().chain(extra).copied().collect();
        self.keys(m, path, &allowed);
        match ty {
            "note" => {
                if let Some(c) = self.required(m, path, "content") {
                    self.string(c, &format!("{path}.content"));
                }
            }
            "group" => {
                if let Some(l) = self.required(m, path, "layout_type") {
                    self.one_of(l, &format!("{path}.layout_type"), &["ordered"]);
                }
                if let Some(w) = self.required(m, path, "widgets") {
                    self.widgets(w, &format!("{path}.widgets"), false);
                }
            }
            _ => {
                if let Some(markers) = m.get("markers") {
                    self.markers(markers, &format!("{path}.markers"));
                }
                let Some(r) = self.required(m, path, "requests") else {
                    return;
                };
                let rp = format!("{path}.requests");
                let Some(list) = self.array(r, &rp) else {
                    return;
                };
                if list.is_empty() {
                    self.err(&rp, "needs at least one request");
                }
                if ty == "query_value" && list.len() > 1 {
                    self.err(&rp, "a query_value widget takes exactly one request");
                }
                for (i, req) in list.iter().enumerate() {
                    self.request(req, &format!("{rp}[{i}]"), ty);
                }
            }
        }
    }

    fn markers(&mut self, v: &Value, path: &str) {
        let Some(list) = self.array(v, path) else {
            return;
        };
        for (i, mk) in list.iter().enumerate() {
            let p = format!("{path}[{i}]");
            let Some(m) = self.object(mk, &p) else {
                continue;
            };
            self.keys(m, &p, &["value", "display_type", "label", "time"]);
            if let Some(val) = self.required(m, &p, "value")
                && let Some(s) = self.string(val, &format!("{p}.value"))
                && marker_values(s).is_none()
            {
                self.err(
                    &format!("{p}.value"),
                    format!("`{s}` is not a marker such as `y = 400`, `y > 95` or `0 < y < 10`"),
                );
            }
            self.opt_one_of(m, &p, "display_type", MARKER_DISPLAY);
        }
    }

    fn request(&mut self, v: &Value, path: &str, widget: &str) {
        let Some(m) = self.object(v, path) else {
            return;
        };
        if widget == "distribution" {
            self.keys(m, path, &["query", "request_type", "style"]);
            if let Some(t) = self.required(m, path, "request_type") {
                self.one_of(t, &format!("{path}.request_type"), &["histogram"]);
            }
            if let Some(q) = self.required(m, path, "query") {
                self.query(q, &format!("{path}.query"), widget, true, None);
            }
            return;
        }
        let mut allowed = vec!["queries", "formulas", "response_format", "style"];
        match widget {
            "timeseries" => allowed.extend(["display_type", "on_right_yaxis", "metadata"]),
            "query_value" | "toplist" => allowed.push("conditional_formats"),
            _ => {}
        }
        self.keys(m, path, &allowed);
        let want_format = match widget {
            "query_value" | "toplist" => "scalar",
            _ => "timeseries",
        };
        if let Some(f) = self.required(m, path, "response_format")
            && let Some(f) = self.one_of(
                f,
                &format!("{path}.response_format"),
                &["timeseries", "scalar"],
            )
            && f != want_format
        {
            self.err(
                &format!("{path}.response_format"),
                format!("a {widget} widget needs `{want_format}`, not `{f}`"),
            );
        }
        if widget == "timeseries" {
            self.opt_one_of(m, path, "display_type", &["line", "area", "bars"]);
        }
        let mut names = Vec::new();
        if let Some(q) = self.required(m, path, "queries") {
            let qp = format!("{path}.queries");
            if let Some(list) = self.array(q, &qp) {
                if list.is_empty() {
                    self.err(&qp, "needs at least one query");
                }
                for (i, q) in list.iter().enumerate() {
                    let scalar = (want_format == "scalar").then_some(());
                    if let Some(n) = self.query(q, &format!("{qp}[{i}]"), widget, false, scalar) {
                        if names.contains(&n) {
                            self.err(
                                &format!("{qp}[{i}].name"),
                                format!("`{n}` names two queries of this request"),
                            );
                        }
                        names.push(n);
                    }
                }
            }
        }
        if let Some(f) = self.required(m, path, "formulas") {
            let fp = format!("{path}.formulas");
            if let Some(list) = self.array(f, &fp) {
                if list.is_empty() {
                    self.err(&fp, "needs at least one formula");
                }
                for (i, f) in list.iter().enumerate() {
                    self.formula(f, &format!("{fp}[{i}]"), &names);
                }
            }
        }
        if let Some(cf) = m.get("conditional_formats") {
            self.conditional_formats(cf, &format!("{path}.conditional_formats"));
        }
    }

    /// A metric query definition; returns its name.
    fn query(
        &mut self,
        v: &Value,
        path: &str,
        widget: &str,
        histogram: bool,
        scalar: Option<()>,
    ) -> Option<String> {
        let m = self.object(v, path)?;
        self.keys(m, path, &["data_source", "name", "query", "aggregator"]);
        if let Some(ds) = self.required(m, path, "data_source") {
            let p = format!("{path}.data_source");
            if let Some(s) = self.string(ds, &p)
                && s != "metrics"
            {
                self.err(
                    &p,
                    format!("data source `{s}` is not supported: synmon dashboards chart metrics"),
                );
            }
        }
        if let Some(a) = m.get("aggregator") {
            self.one_of(a, &format!("{path}.aggregator"), QUERY_AGGREGATORS);
        } else if scalar.is_some() {
            self.err(path, "missing required field `aggregator` (a scalar request reduces each series to one value)");
        }
        let name = self
            .required(m, path, "name")
            .and_then(|n| self.string(n, &format!("{path}.name")))
            .map(str::to_string);
        if let Some(n) = &name
            && !(n.starts_with(|c: char| c.is_ascii_lowercase())
                && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
        {
            self.err(
                &format!("{path}.name"),
                format!("`{n}` must be lowercase letters, digits and `_`"),
            );
        }
        if let Some(q) = self.required(m, path, "query") {
            let qp = format!("{path}.query");
            if let Some(text) = self.string(q, &qp) {
                self.queries.push(QueryRef {
                    path: qp,
                    text: text.to_string(),
                    widget_type: widget.to_string(),
                    histogram,
                });
            }
        }
        name
    }

    fn formula(&mut self, v: &Value, path: &str, names: &[String]) {
        let Some(m) = self.object(v, path) else {
            return;
        };
        self.keys(
            m,
            path,
            &[
                "formula",
                "alias",
                "limit",
                "conditional_formats",
                "cell_display_mode",
                "style",
                "number_format",
            ],
        );
        if let Some(f) = self.required(m, path, "formula")
            && let Some(text) = self.string(f, &format!("{path}.formula"))
        {
            for (ident, call) in super::query::formula_identifiers(text) {
                if !call && !names.contains(&ident) {
                    self.err(
                        &format!("{path}.formula"),
                        format!(
                            "`{ident}` is not a query of this request ({})",
                            names.join(", ")
                        ),
                    );
                }
            }
        }
        if let Some(l) = m.get("limit") {
            let p = format!("{path}.limit");
            if let Some(lm) = self.object(l, &p) {
                self.keys(lm, &p, &["count", "order"]);
                self.opt_one_of(lm, &p, "order", &["asc", "desc"]);
                if let Some(c) = lm.get("count")
                    && c.as_u64().is_none_or(|c| c == 0)
                {
                    self.err(&format!("{p}.count"), "expected a positive integer");
                }
            }
        }
        if let Some(cf) = m.get("conditional_formats") {
            self.conditional_formats(cf, &format!("{path}.conditional_formats"));
        }
    }

    fn conditional_formats(&mut self, v: &Value, path: &str) {
        let Some(list) = self.array(v, path) else {
            return;
        };
        for (i, c) in list.iter().enumerate() {
            let p = format!("{path}[{i}]");
            let Some(m) = self.object(c, &p) else {
                continue;
            };
            self.keys(
                m,
                &p,
                &[
                    "comparator",
                    "value",
                    "palette",
                    "custom_bg_color",
                    "custom_fg_color",
                    "image_url",
                    "hide_value",
                    "timeframe",
                    "metric",
                ],
            );
            if let Some(c) = self.required(m, &p, "comparator") {
                self.one_of(c, &format!("{p}.comparator"), COMPARATORS);
            }
            if let Some(v) = self.required(m, &p, "value") {
                self.number(v, &format!("{p}.value"));
            }
            if let Some(pal) = self.required(m, &p, "palette") {
                self.one_of(pal, &format!("{p}.palette"), PALETTES);
            }
        }
    }
}

/// The numbers of a marker value (`y = 400` -> [400], `0 < y < 10` -> [0, 10]).
pub fn marker_values(s: &str) -> Option<Vec<f64>> {
    let parts: Vec<&str> = s.split_whitespace().collect();
    let num = |t: &str| t.parse::<f64>().ok();
    let op = |t: &str| matches!(t, "=" | ">" | ">=" | "<" | "<=");
    match parts.as_slice() {
        ["y", o, n] if op(o) => Some(vec![num(n)?]),
        [a, o1, "y", o2, b] if op(o1) && op(o2) => Some(vec![num(a)?, num(b)?]),
        _ => None,
    }
}

/// Parse and check one file's text against the schema.
pub fn check(file: &str, text: &str) -> Result<Dashboard, Vec<LintError>> {
    let json: Value = serde_json::from_str(text).map_err(|e| {
        vec![LintError {
            file: file.to_string(),
            pos: Some((e.line(), e.column())),
            path: String::new(),
            message: format!("invalid JSON: {e}"),
        }]
    })?;
    let mut c = Checker {
        file,
        errors: Vec::new(),
        queries: Vec::new(),
    };
    let (title, template_variables) = c.dashboard(&json);
    if c.errors.is_empty() {
        Ok(Dashboard {
            file: file.to_string(),
            json,
            title,
            template_variables,
            queries: c.queries,
        })
    } else {
        Err(c.errors)
    }
}

/// Every query of a JSON dashboard, even one with schema errors (lint checks metrics of a file
/// whose layout is wrong too, so one run reports everything).
pub fn queries_of(file: &str, json: &Value) -> (Vec<QueryRef>, Vec<String>, Vec<LintError>) {
    let mut c = Checker {
        file,
        errors: Vec::new(),
        queries: Vec::new(),
    };
    let (_, vars) = c.dashboard(json);
    (c.queries, vars, c.errors)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn errors(v: Value) -> Vec<String> {
        match check("d.json", &v.to_string()) {
            Ok(_) => Vec::new(),
            Err(e) => e.iter().map(|e| e.to_string()).collect(),
        }
    }

    fn ts(query: &str) -> Value {
        json!({"type": "timeseries", "requests": [{
            "response_format": "timeseries",
            "queries": [{"data_source": "metrics", "name": "query1", "query": query}],
            "formulas": [{"formula": "query1"}]
        }]})
    }

    #[test]
    fn a_valid_dashboard_yields_its_queries() {
        let d = check(
            "d.json",
            &json!({"title": "T", "layout_type": "ordered", "widgets": [
                {"definition": ts("avg:feed_push_success_rate{*}")},
                {"definition": {"type": "group", "layout_type": "ordered", "widgets": [
                    {"definition": {"type": "distribution", "requests": [{"request_type": "histogram",
                        "query": {"data_source": "metrics", "name": "query1", "query": "histogram:synmon.check.latency{*}"}}]}}
                ]}}
            ]})
            .to_string(),
        )
        .unwrap();
        assert_eq!(d.title, "T");
        assert_eq!(d.queries.len(), 2);
        assert_eq!(
            d.queries[1].path,
            "$.widgets[1].definition.widgets[0].definition.requests[0].query.query"
        );
        assert!(d.queries[1].histogram);
    }

    #[test]
    fn required_fields_enums_and_references_are_checked() {
        let got = errors(json!({"title": "", "layout_type": "grid", "widgets": [
            {"definition": {"type": "query_value", "requests": [{
                "response_format": "timeseries",
                "queries": [{"data_source": "logs", "name": "q", "query": "avg:x{*}"}],
                "formulas": [{"formula": "q + query9"}],
                "conditional_formats": [{"comparator": "=>", "value": "95", "palette": "green"}]
            }]}},
            {"definition": {"type": "timeseries", "markers": [{"value": "400"}]}}
        ]}));
        assert_eq!(
            got,
            vec![
                "d.json: $.title: must not be empty",
                "d.json: $.layout_type: `grid` is not one of ordered, free",
                "d.json: $.widgets[0].definition.requests[0].response_format: a query_value widget needs `scalar`, not `timeseries`",
                "d.json: $.widgets[0].definition.requests[0].queries[0].data_source: data source `logs` is not supported: synmon dashboards chart metrics",
                "d.json: $.widgets[0].definition.requests[0].queries[0]: missing required field `aggregator` (a scalar request reduces each series to one value)",
                "d.json: $.widgets[0].definition.requests[0].formulas[0].formula: `query9` is not a query of this request (q)",
                "d.json: $.widgets[0].definition.requests[0].conditional_formats[0].comparator: `=>` is not one of >, >=, <, <=",
                "d.json: $.widgets[0].definition.requests[0].conditional_formats[0].value: expected a number, found a string",
                "d.json: $.widgets[1].definition.markers[0].value: `400` is not a marker such as `y = 400`, `y > 95` or `0 < y < 10`",
                "d.json: $.widgets[1].definition: missing required field `requests`",
            ]
        );
    }

    #[test]
    fn free_layouts_need_widget_layouts_and_unknown_keys_are_typos() {
        let got = errors(
            json!({"title": "T", "layout_type": "free", "widgts": [], "widgets": [
                {"definition": {"type": "note", "content": "hi", "colour": "red"}}
            ]}),
        );
        assert_eq!(
            got,
            vec![
                "d.json: $.widgts: unknown field (did you mean widgets?)",
                "d.json: $.widgets[0]: missing required field `layout` (the dashboard is `free`)",
                "d.json: $.widgets[0].definition.colour: unknown field",
            ]
        );
    }

    #[test]
    fn markers_parse() {
        assert_eq!(marker_values("y = 400"), Some(vec![400.0]));
        assert_eq!(marker_values("0 < y < 10"), Some(vec![0.0, 10.0]));
        assert_eq!(marker_values("y = high"), None);
    }
}
