//! Dashboards against synmon's metric catalog: every metric a query names must be one synmon
//! sends to DogStatsD, under its DogStatsD name, with an aggregation its type supports and tags
//! it carries. A dashboard charting a misspelled metric shows "no data" forever; this turns that
//! into an error with the file and JSON path.

use crate::metrics::catalog::{self, MetricDef, StatsdForm};

use super::LintError;
use super::model::{Dashboard, QueryRef};
use super::query::{self, Filter, Modifier};

/// What the DogStatsD exporter adds to every metric, from the config.
#[derive(Debug, Clone, Default)]
pub struct LintOptions {
    /// `exporters.dogstatsd.prefix`: metric names on Datadog start with `prefix.`.
    pub prefix: Option<String>,
    /// Global tag keys (`exporters.dogstatsd.tags`), valid on every metric.
    pub global_tags: Vec<String>,
}

/// Tags the Datadog agent adds on its own.
const AGENT_TAGS: &[&str] = &["host"];

fn form_name(def: &MetricDef) -> &'static str {
    match def.statsd {
        StatsdForm::Distribution => "a distribution",
        StatsdForm::Count => "a count",
        StatsdForm::Gauge | StatsdForm::QuantileGauge(_) => "a gauge",
    }
}

/// The catalog entry a DogStatsD metric name refers to.
pub fn resolve(metric: &str, opts: &LintOptions) -> Result<&'static MetricDef, String> {
    let bare = match &opts.prefix {
        Some(p) => match metric
            .strip_prefix(p.as_str())
            .and_then(|m| m.strip_prefix('.'))
        {
            Some(m) => m,
            None => {
                return Err(format!(
                    "metric {metric} lacks the DogStatsD prefix `{p}.` (exporters.dogstatsd.prefix)"
                ));
            }
        },
        None => metric,
    };
    let shown = |name: &str| match &opts.prefix {
        Some(p) => format!("{p}.{name}"),
        None => name.to_string(),
    };
    match catalog::CATALOG.iter().find(|d| d.name == bare) {
        Some(def) => Ok(def),
        None => {
            if let Some(def) = catalog::CATALOG.iter().find(|d| d.prom_name == bare) {
                return Err(format!(
                    "{metric} is the Prometheus name; DogStatsD sends {}",
                    shown(def.name)
                ));
            }
            let hint = query::did_you_mean(bare, catalog::CATALOG.iter().map(|d| d.name))
                .map(|s| format!(" (did you mean {}?)", shown(s)))
                .unwrap_or_default();
            Err(format!("unknown metric {metric}{hint}"))
        }
    }
}

/// Check one query; returns the messages (empty when it is fine).
pub fn check_query(q: &QueryRef, template_vars: &[String], opts: &LintOptions) -> Vec<String> {
    let parsed = match query::parse(&q.text) {
        Ok(p) => p,
        Err(e) => return vec![e],
    };
    let def = match resolve(&parsed.metric, opts) {
        Ok(d) => d,
        Err(e) => return vec![e],
    };
    let mut out = Vec::new();
    let is_dist = def.statsd == StatsdForm::Distribution;
    if (parsed.percentile().is_some() || parsed.aggregator == "histogram") && !is_dist {
        out.push(format!(
            "`{}:` needs a distribution; {} is {} on DogStatsD",
            parsed.aggregator,
            parsed.metric,
            form_name(def)
        ));
    }
    if q.histogram && parsed.aggregator != "histogram" {
        out.push(format!(
            "a distribution widget draws `histogram:{}`, not `{}:`",
            parsed.metric, parsed.aggregator
        ));
    }
    if parsed.aggregator == "histogram" && !q.histogram {
        out.push("`histogram:` is only for distribution widgets".to_string());
    }
    for m in &parsed.modifiers {
        if matches!(m, Modifier::AsCount | Modifier::AsRate) && def.statsd == StatsdForm::Gauge {
            out.push(format!(
                "`{m}` applies to counts and distributions; {} is a gauge",
                parsed.metric
            ));
        }
    }
    let known_tag = |t: &str| {
        def.labels.contains(&t)
            || opts.global_tags.iter().any(|g| g == t)
            || AGENT_TAGS.contains(&t)
    };
    let tag_error = |t: &str| {
        let mut candidates: Vec<&str> = def.labels.to_vec();
        candidates.extend(opts.global_tags.iter().map(String::as_str));
        let hint = query::did_you_mean(t, candidates.iter().copied())
            .map(|s| format!("did you mean {s}? "))
            .unwrap_or_default();
        let tags = if def.labels.is_empty() {
            "none".to_string()
        } else {
            def.labels.join(", ")
        };
        format!(
            "{} has no tag `{t}` ({hint}its tags: {tags})",
            parsed.metric
        )
    };
    for f in &parsed.filters {
        match f {
            Filter::Tag { key, .. } if !known_tag(key) => out.push(tag_error(key)),
            Filter::Variable(v) if !template_vars.iter().any(|t| t == v) => out.push(format!(
                "`${v}` is not a template variable of this dashboard"
            )),
            _ => {}
        }
    }
    for t in &parsed.by {
        if !known_tag(t) {
            out.push(tag_error(t));
        }
    }
    out
}

/// Every catalog problem of a schema-valid dashboard.
pub fn check(d: &Dashboard, opts: &LintOptions) -> Vec<LintError> {
    check_queries(&d.file, &d.queries, &d.template_variables, opts)
}

pub fn check_queries(
    file: &str,
    queries: &[QueryRef],
    vars: &[String],
    opts: &LintOptions,
) -> Vec<LintError> {
    let mut out = Vec::new();
    for q in queries {
        for message in check_query(q, vars, opts) {
            out.push(LintError {
                file: file.to_string(),
                pos: None,
                path: q.path.clone(),
                message,
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(text: &str) -> QueryRef {
        QueryRef {
            path: "$.q".into(),
            text: text.into(),
            widget_type: "timeseries".into(),
            histogram: false,
        }
    }

    fn msgs(text: &str) -> Vec<String> {
        check_query(&q(text), &["env".into()], &LintOptions::default())
    }

    #[test]
    fn catalog_metrics_with_compatible_aggregations_pass() {
        for ok in [
            "avg:feed_push_success_rate{*}",
            "p95:synmon.check.latency{check:align_category,$env} by {check,step}",
            "sum:synmon.check.runs{!outcome:error} by {check}.as_count()",
            "max:swis_preview_p95_ms{*} by {location,host}",
            "sum:feed_push_jobs_by_retries{*} by {retry_count}",
        ] {
            let m = msgs(ok);
            // `step` is not a check-latency tag: only that one complaint is expected.
            if ok.contains("step") {
                assert_eq!(
                    m,
                    vec![
                        "synmon.check.latency has no tag `step` (its tags: check, location, target, outcome)"
                    ]
                );
            } else {
                assert!(m.is_empty(), "{ok}: {m:?}");
            }
        }
    }

    #[test]
    fn misspelled_prometheus_and_incompatible_metrics_are_named() {
        assert_eq!(
            msgs("avg:feed_push_sucess_rate{*}"),
            vec!["unknown metric feed_push_sucess_rate (did you mean feed_push_success_rate?)"]
        );
        assert_eq!(
            msgs("avg:feed_push_success_ratio{*}"),
            vec![
                "feed_push_success_ratio is the Prometheus name; DogStatsD sends feed_push_success_rate"
            ]
        );
        assert_eq!(
            msgs("p95:swis_preview_p95_ms{*}"),
            vec!["`p95:` needs a distribution; swis_preview_p95_ms is a gauge on DogStatsD"]
        );
        assert_eq!(
            msgs("sum:feed_push_queue_depth{*}.as_count()"),
            vec![
                "`.as_count()` applies to counts and distributions; feed_push_queue_depth is a gauge"
            ]
        );
        assert_eq!(
            msgs("avg:feed_push_error_rate{tennant:a}"),
            vec![
                "feed_push_error_rate has no tag `tennant` (did you mean tenant? its tags: tenant)"
            ]
        );
        assert_eq!(
            msgs("avg:feed_push_error_rate{$region}"),
            vec!["`$region` is not a template variable of this dashboard"]
        );
    }

    #[test]
    fn a_prefix_is_required_and_stripped() {
        let opts = LintOptions {
            prefix: Some("rvp".into()),
            global_tags: vec!["env".into()],
        };
        assert!(check_query(&q("avg:rvp.feed_push_success_rate{env:demo}"), &[], &opts).is_empty());
        assert_eq!(
            check_query(&q("avg:feed_push_success_rate{*}"), &[], &opts),
            vec![
                "metric feed_push_success_rate lacks the DogStatsD prefix `rvp.` (exporters.dogstatsd.prefix)"
            ]
        );
    }
}
