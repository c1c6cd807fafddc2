//! Validated alert rules and SLOs: what `alerts/*.yaml` means once it has been checked against
//! the metric catalog.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use regex_automata::meta::Regex;

use crate::metrics::catalog::MetricDef;

/// Label names and values of one series or alert, sorted by name.
pub type Labels = BTreeMap<String, String>;

/// Everything loaded from the alerts folder.
#[derive(Debug, Clone)]
pub struct RuleSet {
    /// Threshold rules, then the burn-rate alerts generated from the SLOs, in file order.
    pub rules: Vec<Rule>,
    pub slos: Vec<Slo>,
    /// How often `evaluate` is called; pending time accrues at most this much per evaluation,
    /// so daemon downtime never counts toward `for`.
    pub interval: Duration,
}

impl Default for RuleSet {
    fn default() -> Self {
        RuleSet {
            rules: Vec::new(),
            slos: Vec::new(),
            interval: DEFAULT_INTERVAL,
        }
    }
}

pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(60);

impl RuleSet {
    pub fn rule(&self, name: &str) -> Option<&Rule> {
        self.rules.iter().find(|r| r.name == name)
    }

    /// The inhibitions the rules declare (`inhibits:`), in rule order: what the daemon's
    /// inhibitor applies besides the config's `inhibit_rules`, and what any other consumer of
    /// the rules (an export, a replay) must apply too, so they all mute the same alerts.
    pub fn inhibit_rules(&self) -> Vec<InhibitRule> {
        self.rules
            .iter()
            .flat_map(|r| r.inhibits.iter().cloned())
            .collect()
    }
}

/// One inhibition (Alertmanager's `inhibit_rules` item): while an alert matching `source`
/// fires, alerts matching `target` that agree with it on the `equal` labels are muted. Lives
/// beside the rules because rules declare them too (`inhibits:`); the mute stage applies them.
#[derive(Debug, Clone)]
pub struct InhibitRule {
    pub source: Matchers,
    pub target: Matchers,
    /// Labels whose values must be equal in source and target (a missing label is the empty
    /// string on both sides, as in Alertmanager).
    pub equal: Vec<String>,
    /// How long the mute outlasts the source: an alert that follows from an incident (an SLO
    /// still burning on the outage's minutes) would otherwise page on its own the moment the
    /// incident's alert resolves. Zero: only while the source fires, as in Alertmanager.
    pub hold: Duration,
}

/// One label matcher: `check: align_category`, `outcome: "!=error"`, `check: "=~align_.*"`,
/// `check: "!~feed_.*"`. Regexes are anchored at both ends, as in Prometheus.
#[derive(Debug, Clone)]
pub struct Matcher {
    pub label: String,
    pub op: MatchOp,
    pub value: String,
    pub regex: Option<Regex>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatchOp {
    Eq,
    Ne,
    Re,
    NotRe,
}

/// How deeply a matcher's regex may nest groups and repetitions.
const MATCHER_NEST_LIMIT: u32 = 64;

impl Matcher {
    /// Parses the written form of a matcher value; `Err` explains a bad regex.
    pub fn parse(label: &str, raw: &str) -> Result<Matcher, String> {
        let (op, value) = if let Some(v) = raw.strip_prefix("!=") {
            (MatchOp::Ne, v)
        } else if let Some(v) = raw.strip_prefix("=~") {
            (MatchOp::Re, v)
        } else if let Some(v) = raw.strip_prefix("!~") {
            (MatchOp::NotRe, v)
        } else {
            (MatchOp::Eq, raw.strip_prefix('=').unwrap_or(raw))
        };
        let regex = match op {
            MatchOp::Re | MatchOp::NotRe => {
                // A nest limit well below the parser's default (250): a few hundred stacked
                // repetitions (`a++++...`) recurse deep enough to overflow a 2 MiB thread stack
                // in a debug build before that default refuses them; matchers need a handful.
                Some(
                    Regex::builder()
                        .syntax(
                            regex_automata::util::syntax::Config::new()
                                .nest_limit(MATCHER_NEST_LIMIT),
                        )
                        .build(&format!("^(?:{value})$"))
                        .map_err(|e| {
                            format!(
                                "`{value}` is not a regular expression: {}",
                                regex_reason(&e)
                            )
                        })?,
                )
            }
            _ => None,
        };
        Ok(Matcher {
            label: label.to_string(),
            op,
            value: value.to_string(),
            regex,
        })
    }

    /// A missing label matches as the empty string (Prometheus semantics).
    pub fn matches(&self, labels: &Labels) -> bool {
        let v = label_value(labels, &self.label);
        match self.op {
            MatchOp::Eq => v == self.value,
            MatchOp::Ne => v != self.value,
            MatchOp::Re => self.regex.as_ref().is_some_and(|r| r.is_match(v)),
            MatchOp::NotRe => !self.regex.as_ref().is_some_and(|r| r.is_match(v)),
        }
    }
}

/// The value of label `name`, "" when missing (Prometheus semantics), as `labels.get(name)`
/// finds it but, for the handful of labels a series has, by a scan comparing lengths first:
/// `get` compares every key it passes by content (`memcmp`), while label names mostly differ
/// in length. The evaluator reads a label per series, rule and evaluation, and a map search
/// was the top entry of its profile.
pub(crate) fn label_value<'a>(labels: &'a Labels, name: &str) -> &'a str {
    /// Up to this many labels, a scan; a bigger map is searched as a map.
    const SCAN: usize = 16;
    if labels.len() > SCAN {
        return labels.get(name).map_or("", String::as_str);
    }
    labels
        .iter()
        .find(|(k, _)| k.as_str() == name)
        .map_or("", |(_, v)| v.as_str())
}

/// The one-line reason of a regex syntax error (its full text draws a caret diagram).
fn regex_reason(e: &regex_automata::meta::BuildError) -> String {
    let full = match std::error::Error::source(e) {
        Some(s) => s.to_string(),
        None => e.to_string(),
    };
    full.lines()
        .rev()
        .find_map(|l| l.trim().strip_prefix("error: "))
        .unwrap_or(full.trim())
        .to_string()
}

impl fmt::Display for Matcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let op = match self.op {
            MatchOp::Eq => "=",
            MatchOp::Ne => "!=",
            MatchOp::Re => "=~",
            MatchOp::NotRe => "!~",
        };
        write!(f, "{}{op}\"{}\"", self.label, self.value)
    }
}

/// A conjunction of matchers.
#[derive(Debug, Clone, Default)]
pub struct Matchers(pub Vec<Matcher>);

impl Matchers {
    pub fn matches(&self, labels: &Labels) -> bool {
        self.0.iter().all(|m| m.matches(labels))
    }

    /// Both sets at once (a rule's `match` plus a ratio's numerator, say).
    pub fn and(&self, other: &Matchers) -> Matchers {
        Matchers(self.0.iter().chain(&other.0).cloned().collect())
    }
}

impl fmt::Display for Matchers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{{")?;
        for (i, m) in self.0.iter().enumerate() {
            if i > 0 {
                write!(f, ", ")?;
            }
            write!(f, "{m}")?;
        }
        write!(f, "}}")
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Aggregate {
    P50,
    P95,
    P99,
    Avg,
    Min,
    Max,
    /// Counter increase per second over the window.
    Rate,
    /// Numerator / denominator increase over the window (counters or distribution counts).
    Ratio,
    /// A gauge's current value.
    Last,
}

impl Aggregate {
    pub const NAMES: &'static str = "p50, p95, p99, avg, min, max, rate, ratio, last";

    pub fn parse(s: &str) -> Option<Aggregate> {
        Some(match s {
            "p50" => Aggregate::P50,
            "p95" => Aggregate::P95,
            "p99" => Aggregate::P99,
            "avg" => Aggregate::Avg,
            "min" => Aggregate::Min,
            "max" => Aggregate::Max,
            "rate" => Aggregate::Rate,
            "ratio" => Aggregate::Ratio,
            "last" => Aggregate::Last,
            _ => return None,
        })
    }

    pub fn quantile(self) -> Option<f64> {
        match self {
            Aggregate::P50 => Some(0.5),
            Aggregate::P95 => Some(0.95),
            Aggregate::P99 => Some(0.99),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Lt,
    Le,
    Gt,
    Ge,
    Eq,
    Ne,
}

impl Op {
    pub fn parse(s: &str) -> Option<Op> {
        Some(match s {
            "<" => Op::Lt,
            "<=" => Op::Le,
            ">" => Op::Gt,
            ">=" => Op::Ge,
            "==" => Op::Eq,
            "!=" => Op::Ne,
            _ => return None,
        })
    }

    pub fn holds(self, value: f64, threshold: f64) -> bool {
        match self {
            Op::Lt => value < threshold,
            Op::Le => value <= threshold,
            Op::Gt => value > threshold,
            Op::Ge => value >= threshold,
            Op::Eq => value == threshold,
            Op::Ne => value != threshold,
        }
    }

    /// Which of two values is worse for this comparator (for "the worst location").
    pub fn worse(self, a: f64, b: f64) -> f64 {
        match self {
            Op::Lt | Op::Le => a.min(b),
            _ => a.max(b),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Gt => ">",
            Op::Ge => ">=",
            Op::Eq => "==",
            Op::Ne => "!=",
        }
    }
}

/// What to do when a rule (or one of its groups) has no data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum NoDataPolicy {
    /// Treat as firing, with the no-data message as summary.
    Alert,
    /// Treat as healthy (Prometheus: an absent series resolves).
    #[default]
    Ok,
    /// Leave the alert exactly as it is.
    KeepState,
}

#[derive(Debug, Clone, Default)]
pub struct NoData {
    pub policy: NoDataPolicy,
    pub message: Option<String>,
}

/// Flap damping: more than `max_changes` state changes (firing/resolved) within `window` marks
/// the alert flapping; it is then held firing until its condition has been healthy for `window`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Flap {
    pub max_changes: u32,
    pub window: Duration,
}

/// A `{{ ... }}` template, checked at load time.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    pub parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Part {
    Text(String),
    Value,
    Threshold,
    Window,
    Metric,
    Label(String),
    /// The `across` verdict: "9 of 9 checks: auth_health, ...".
    Failing,
}

/// A threshold over one aggregation of one metric.
#[derive(Debug, Clone)]
pub struct Threshold {
    pub metric: &'static MetricDef,
    pub matchers: Matchers,
    pub aggregate: Aggregate,
    pub window: Duration,
    /// `ratio`: subsets of the matched series.
    pub numerator: Matchers,
    pub denominator: Matchers,
    pub op: Op,
    pub threshold: f64,
    /// Judge each value of a label apart and fail the group on a share of failing values
    /// (`across:`, or `min_failing_locations:` over `location`).
    pub across: Option<Across>,
    /// While a group's alert fires, its condition is judged over this shorter window, so a
    /// recovered target resolves without waiting for `window` to forget the failure.
    pub resolve_window: Option<Duration>,
    /// The share of `window` the source must have data for before the window is judged;
    /// `None`: judged on whatever it holds, without saying so.
    pub min_coverage: Option<f64>,
}

impl Threshold {
    /// The location quorum, when the rule was written with `min_failing_locations: N`.
    pub fn min_failing_locations(&self) -> Option<u32> {
        self.across
            .as_ref()
            .filter(|a| a.written_as_quorum)
            .map(|a| a.min_count)
    }
}

/// Within a group, the condition is judged for each value of `label` apart; the group fails
/// when the failing values are at least `min_share` of the values with data and at least
/// `min_count` of them. One alert then says "most checks of this target fail", which a
/// per-check alert cannot.
#[derive(Debug, Clone, PartialEq)]
pub struct Across {
    pub label: String,
    pub min_share: f64,
    pub min_count: u32,
    /// Written as `min_failing_locations: N` (label `location`, no share): reported in the
    /// `failing_locations` annotation, as that key always has been.
    pub written_as_quorum: bool,
    /// How one value of `label` is judged: by this inner `across` over its series (a check
    /// counts as failing when it fails in most locations) instead of one aggregate over all of
    /// them, so one location's trouble does not count as the check's.
    pub inner: Option<Box<Across>>,
}

/// One SRE-workbook row: both windows' burn rates must exceed `factor`.
#[derive(Debug, Clone, PartialEq)]
pub struct BurnWindow {
    pub long: Duration,
    pub short: Duration,
    pub factor: f64,
}

#[derive(Debug, Clone)]
pub enum Condition {
    Threshold(Threshold),
    /// Generated from an SLO: fires when any row holds (rows are OR-ed).
    Burn {
        slo: String,
        rows: Vec<BurnWindow>,
        /// Whether the SLO's `resolve_window` applies: to the page, which should end soon
        /// after the burning does; a ticket reports a burn over days and ends on its own rows.
        resolves_early: bool,
    },
}

#[derive(Debug, Clone)]
pub struct Rule {
    /// The alert name (`alertname` label).
    pub name: String,
    pub file: String,
    pub condition: Condition,
    /// Group labels: one alert per distinct combination.
    pub by: Vec<String>,
    pub pending_for: Duration,
    pub keep_firing_for: Duration,
    /// Consecutive healthy evaluations before a firing alert resolves (at least 1).
    pub recover_after: u32,
    pub no_data: NoData,
    pub severity: String,
    /// A route name, resolved by the notification layer.
    pub route: Option<String>,
    pub labels: Labels,
    pub summary: Option<Template>,
    pub description: Option<Template>,
    pub runbook_url: Option<String>,
    pub flap: Option<Flap>,
    /// What this rule's firing alerts mute (`inhibits:`), compiled with this rule's alert name
    /// as the source.
    pub inhibits: Vec<InhibitRule>,
}

#[derive(Debug, Clone)]
pub enum Sli {
    /// good / total events of one metric (counter increases or distribution counts).
    Events {
        metric: &'static MetricDef,
        matchers: Matchers,
        good: Matchers,
        total: Matchers,
    },
    /// Samples of a distribution at or under `threshold_ms` / all samples.
    Latency {
        metric: &'static MetricDef,
        matchers: Matchers,
        threshold_ms: f64,
    },
    /// Good slices / slices with data; a slice is good when its good/total ratio is at least
    /// `min_good_ratio` (uptime: a minute is up when all its runs passed).
    TimeSlices {
        metric: &'static MetricDef,
        matchers: Matchers,
        good: Matchers,
        total: Matchers,
        slice: Duration,
        min_good_ratio: f64,
    },
}

impl Sli {
    /// The matchers that select the SLI's series (before good/total split them).
    pub fn matchers(&self) -> &Matchers {
        match self {
            Sli::Events { matchers, .. }
            | Sli::Latency { matchers, .. }
            | Sli::TimeSlices { matchers, .. } => matchers,
        }
    }

    pub fn metric(&self) -> &'static MetricDef {
        match self {
            Sli::Events { metric, .. }
            | Sli::Latency { metric, .. }
            | Sli::TimeSlices { metric, .. } => metric,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Slo {
    pub name: String,
    pub file: String,
    pub description: Option<String>,
    /// Percent, e.g. 99.9.
    pub objective: f64,
    pub period: Duration,
    pub sli: Sli,
    /// Workbook rows for the page alert and the ticket alert.
    pub page: Vec<BurnWindow>,
    pub ticket: Vec<BurnWindow>,
    pub page_route: Option<String>,
    pub ticket_route: Option<String>,
    /// While a burn-rate alert fires, each row's short window is replaced by this one, so the
    /// page resolves within about this long once the burning stops.
    pub resolve_window: Option<Duration>,
    /// The share of a burn window the source must have data for before it is judged.
    pub min_coverage: Option<f64>,
    /// What the page alert mutes while it fires (`inhibits:` on the SLO).
    pub inhibits: Vec<InhibitRule>,
    /// `for` and `keep_firing_for` of both burn-rate alerts: few synthetic runs per minute make
    /// a short window's burn rate jumpy, and a page that resolves on one lucky minute of a
    /// 3 % error rate pages again at the next failure.
    pub pending_for: Duration,
    pub keep_firing_for: Duration,
}

/// An evaluation given up part-way because its caller asked it to stop (the daemon is shutting
/// down). The state it was updating is half-done: the caller discards it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the evaluation was stopped before it finished")]
pub struct Stopped;

impl Slo {
    /// The allowed error ratio, `1 - objective`.
    pub fn budget_ratio(&self) -> f64 {
        (100.0 - self.objective) / 100.0
    }

    /// Every window the SLO's burn-rate alerts read (each row's long and short window),
    /// shortest first, each once: the windows its burn rates are computed, exported and shown
    /// over.
    pub fn alert_windows(&self) -> Vec<Duration> {
        let mut w: Vec<Duration> = self
            .page
            .iter()
            .chain(&self.ticket)
            .flat_map(|r| [r.long, r.short])
            .collect();
        w.sort();
        w.dedup();
        w
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deeply_stacked_repetitions_are_refused_not_recursed_into() {
        // 200 stacked `+` overflowed a debug build's 2 MiB stack under the parser's default
        // nest limit; now the parser refuses them at once.
        let raw = format!("=~a{}", "+".repeat(200));
        let err = Matcher::parse("check", &raw).unwrap_err();
        assert!(err.contains("is not a regular expression"), "{err}");
        assert!(err.contains("nest"), "{err}");
        // A matcher of ordinary depth still compiles.
        assert!(Matcher::parse("check", "=~(feed|push)_(a|b)+").is_ok());
    }
}
