//! Datadog metric queries as dashboards write them:
//! `p95:synmon.check.latency{check:align_category,!outcome:error} by {check}.as_count()`.
//!
//! Only the subset synmon's dashboards need is accepted (one metric per query; functions belong
//! in the request's formulas). Parsing it ourselves, rather than treating the query as an
//! opaque string, is what lets lint name a misspelled metric or tag, and lets the Grafana
//! renderer translate the same query to PromQL.

use std::fmt;

/// A parsed metric query.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricQuery {
    /// The space aggregation: `avg`, `sum`, `min`, `max`, `count`, `pNN` or `histogram`.
    pub aggregator: String,
    pub metric: String,
    /// Empty means `{*}`.
    pub filters: Vec<Filter>,
    pub by: Vec<String>,
    pub modifiers: Vec<Modifier>,
}

/// One term of the `{...}` scope.
#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    /// `key:value` or `!key:value`; the value may end in `*` (a prefix match).
    Tag {
        negated: bool,
        key: String,
        value: String,
    },
    /// `$env`: a dashboard template variable.
    Variable(String),
}

#[derive(Debug, Clone, PartialEq)]
pub enum Modifier {
    AsCount,
    AsRate,
    Rollup(String),
    Fill(String),
}

impl fmt::Display for Modifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Modifier::AsCount => f.write_str(".as_count()"),
            Modifier::AsRate => f.write_str(".as_rate()"),
            Modifier::Rollup(a) => write!(f, ".rollup({a})"),
            Modifier::Fill(a) => write!(f, ".fill({a})"),
        }
    }
}

/// Space aggregators Datadog accepts on any metric.
pub const PLAIN_AGGREGATORS: &[&str] = &["avg", "sum", "min", "max", "count"];

impl MetricQuery {
    /// The quantile of a `pNN` aggregator (`p95` -> 0.95, `p99.9` -> 0.999).
    pub fn percentile(&self) -> Option<f64> {
        percentile(&self.aggregator)
    }
}

/// `p50` -> 0.5; anything else -> None.
pub fn percentile(agg: &str) -> Option<f64> {
    let n: f64 = agg.strip_prefix('p')?.parse().ok()?;
    (n > 0.0 && n < 100.0).then_some(n / 100.0)
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '.'
}

/// Parse one query; the error is a sentence fit for a lint message.
pub fn parse(text: &str) -> Result<MetricQuery, String> {
    let s = text.trim();
    let Some((aggregator, rest)) = s.split_once(':') else {
        return Err(format!(
            "`{s}` has no space aggregation (write it as `avg:metric{{*}}`)"
        ));
    };
    let aggregator = aggregator.trim().to_string();
    if !(PLAIN_AGGREGATORS.contains(&aggregator.as_str())
        || aggregator == "histogram"
        || percentile(&aggregator).is_some())
    {
        return Err(format!(
            "unknown aggregation `{aggregator}` (avg, sum, min, max, count, p50..p99, histogram)"
        ));
    }
    let name_end = rest.find(|c: char| !is_name_char(c)).unwrap_or(rest.len());
    let metric = rest[..name_end].to_string();
    if metric.is_empty() || !metric.starts_with(|c: char| c.is_ascii_alphabetic()) {
        return Err(format!(
            "`{s}` does not name a metric after `{aggregator}:`"
        ));
    }
    let mut rest = &rest[name_end..];
    let Some(after_brace) = rest.strip_prefix('{') else {
        return Err(format!(
            "`{metric}` needs a scope in braces, e.g. `{metric}{{*}}`"
        ));
    };
    let Some(close) = after_brace.find('}') else {
        return Err(format!("unclosed `{{` after `{metric}`"));
    };
    let filters = parse_filters(&after_brace[..close])?;
    rest = &after_brace[close + 1..];
    let mut by = Vec::new();
    let trimmed = rest.trim_start();
    if let Some(b) = trimmed.strip_prefix("by") {
        let b = b.trim_start();
        let Some(inner) = b.strip_prefix('{') else {
            return Err("`by` needs tags in braces, e.g. `by {check}`".into());
        };
        let Some(close) = inner.find('}') else {
            return Err("unclosed `{` after `by`".into());
        };
        for tag in inner[..close].split(',') {
            let tag = tag.trim();
            if tag.is_empty() || !tag.chars().all(|c| is_name_char(c) || c == '-') {
                return Err(format!(
                    "`by {{{}}}` is not a list of tags",
                    &inner[..close]
                ));
            }
            by.push(tag.to_string());
        }
        rest = &inner[close + 1..];
    }
    let mut modifiers = Vec::new();
    let mut rest = rest.trim();
    while !rest.is_empty() {
        let Some(m) = rest.strip_prefix('.') else {
            return Err(format!("unexpected `{rest}` after the scope"));
        };
        let Some(open) = m.find('(') else {
            return Err(format!("unexpected `.{m}`"));
        };
        let Some(close) = m.find(')') else {
            return Err(format!("unclosed `(` in `.{m}`"));
        };
        let args = m[open + 1..close].trim().to_string();
        modifiers.push(match &m[..open] {
            "as_count" if args.is_empty() => Modifier::AsCount,
            "as_rate" if args.is_empty() => Modifier::AsRate,
            "rollup" => Modifier::Rollup(args),
            "fill" => Modifier::Fill(args),
            other => {
                return Err(format!(
                    "unknown modifier `.{other}()` (as_count, as_rate, rollup, fill)"
                ));
            }
        });
        rest = m[close + 1..].trim();
    }
    Ok(MetricQuery {
        aggregator,
        metric,
        filters,
        by,
        modifiers,
    })
}

fn parse_filters(scope: &str) -> Result<Vec<Filter>, String> {
    let scope = scope.trim();
    if scope == "*" {
        return Ok(Vec::new());
    }
    if scope.is_empty() {
        return Err("empty scope `{}` (write `{*}` for every series)".into());
    }
    let mut out = Vec::new();
    for term in scope.split(',') {
        let term = term.trim();
        if let Some(var) = term.strip_prefix('$') {
            if var.is_empty() {
                return Err("`$` without a template variable name".into());
            }
            out.push(Filter::Variable(var.to_string()));
            continue;
        }
        let (negated, term) = match term.strip_prefix('!') {
            Some(t) => (true, t),
            None => (false, term),
        };
        let Some((key, value)) = term.split_once(':') else {
            return Err(format!("scope term `{term}` is not `tag:value`"));
        };
        if key.is_empty() || value.is_empty() {
            return Err(format!("scope term `{term}` is not `tag:value`"));
        }
        out.push(Filter::Tag {
            negated,
            key: key.to_string(),
            value: value.to_string(),
        });
    }
    Ok(out)
}

/// One piece of a formula, as [`formula_tokens`] splits it.
#[derive(Debug, Clone, PartialEq)]
pub enum FormulaToken {
    /// A query name, or a function when `is_call` (followed by `(`, spaces allowed).
    Ident { name: String, is_call: bool },
    /// A number, whole: `1e3` is one number, not `1` and the identifier `e3`.
    Number(String),
    /// Any other character (operators, parentheses, spaces).
    Other(char),
}

/// A formula split into identifiers, numbers and single other characters, in order.
pub fn formula_tokens(formula: &str) -> Vec<FormulaToken> {
    let mut out = Vec::new();
    let chars: Vec<char> = formula.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_ascii_alphabetic() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            let mut j = i;
            while j < chars.len() && chars[j] == ' ' {
                j += 1;
            }
            out.push(FormulaToken::Ident {
                name: chars[start..i].iter().collect(),
                is_call: j < chars.len() && chars[j] == '(',
            });
        } else if c.is_ascii_digit() {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '.') {
                i += 1;
            }
            out.push(FormulaToken::Number(chars[start..i].iter().collect()));
        } else {
            out.push(FormulaToken::Other(c));
            i += 1;
        }
    }
    out
}

/// Identifiers a formula uses (query names and functions), in order.
pub fn formula_identifiers(formula: &str) -> Vec<(String, bool)> {
    formula_tokens(formula)
        .into_iter()
        .filter_map(|t| match t {
            FormulaToken::Ident { name, is_call } => Some((name, is_call)),
            FormulaToken::Number(_) | FormulaToken::Other(_) => None,
        })
        .collect()
}

/// Levenshtein distance, for "did you mean".
pub fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// The closest candidate, if it is close enough to be a plausible typo.
pub fn did_you_mean<'a>(word: &str, candidates: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    let limit = (word.chars().count() / 4).max(2);
    candidates
        .map(|c| (edit_distance(word, c), c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_aggregator_metric_scope_by_and_modifiers() {
        let q = parse("sum:synmon.check.runs{check:align*,!outcome:error,$env} by {check,location}.as_count()")
            .unwrap();
        assert_eq!(q.aggregator, "sum");
        assert_eq!(q.metric, "synmon.check.runs");
        assert_eq!(
            q.filters,
            vec![
                Filter::Tag {
                    negated: false,
                    key: "check".into(),
                    value: "align*".into()
                },
                Filter::Tag {
                    negated: true,
                    key: "outcome".into(),
                    value: "error".into()
                },
                Filter::Variable("env".into()),
            ]
        );
        assert_eq!(q.by, vec!["check", "location"]);
        assert_eq!(q.modifiers, vec![Modifier::AsCount]);
        let p = parse("p95:synmon.check.latency{*}").unwrap();
        assert_eq!(p.percentile(), Some(0.95));
        assert!(p.filters.is_empty());
    }

    #[test]
    fn rejects_what_it_cannot_lint() {
        for (q, want) in [
            ("synmon.check.runs{*}", "no space aggregation"),
            ("median:x{*}", "unknown aggregation `median`"),
            ("avg:x", "needs a scope"),
            ("avg:x{}", "empty scope"),
            ("avg:x{check}", "is not `tag:value`"),
            ("avg:x{*}.top(5)", "unknown modifier `.top()`"),
            ("avg:x{*} by check", "`by` needs tags in braces"),
        ] {
            let e = parse(q).unwrap_err();
            assert!(e.contains(want), "{q}: {e}");
        }
    }

    #[test]
    fn formula_identifiers_skip_numbers() {
        assert_eq!(
            formula_identifiers("100 * query1 / (query1 + abs(query2)) + 1e3"),
            vec![
                ("query1".to_string(), false),
                ("query1".to_string(), false),
                ("abs".to_string(), true),
                ("query2".to_string(), false),
            ]
        );
    }

    #[test]
    fn did_you_mean_finds_a_typo_only() {
        let names = ["feed_push_success_rate", "feed_approval_rate"];
        assert_eq!(
            did_you_mean("feed_push_sucess_rate", names.iter().copied()),
            Some("feed_push_success_rate")
        );
        assert_eq!(did_you_mean("cpu_usage", names.iter().copied()), None);
    }
}
