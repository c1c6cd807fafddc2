//! The scenario file: a scripted timeline (start, length, locations, checks with their healthy
//! latency, healthy noise, and incidents), read with positions so that every mistake is
//! reported as `file:line:col: field: message`, all of them at once.
//!
//! What it owns: the file's shape and what each incident does to a run. What it never does:
//! run anything, or know the alert rules (the expectations it holds are the user's words).

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Deserialize;

use crate::config::Diagnostic;
use crate::config::duration::{Bound, DAY, HOUR};
use crate::config::yaml::YamlDoc;
use crate::metrics::catalog::{self, MetricKind};
use crate::outcome::Outcome;

/// A replay covers at most 31 days: longer scripts outgrow the counter history's detail (and
/// any alert window shipped); a week already runs in seconds.
/// The slowest latency a scenario may give a run: an hour, the histograms' ceiling.
const MAX_LATENCY_MS: f64 = 3_600_000.0;
const DURATION: Bound = Bound::positive("duration", DAY.saturating_mul(31));
const OFFSET: Bound = Bound::or_zero("offset", DAY.saturating_mul(31));
const LENGTH: Bound = Bound::positive("incident length", DAY.saturating_mul(31));
const PERIOD: Bound = Bound::new("period", Duration::from_secs(2), DAY);
const DETECT: Bound = Bound::positive("detection bound", DAY.saturating_mul(31));

/// A check's healthy latency when the scenario does not say.
pub const DEFAULT_LATENCY_MS: f64 = 100.0;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawScenario {
    start: String,
    duration: String,
    #[serde(default)]
    seed: u64,
    #[serde(default)]
    locations: Vec<String>,
    #[serde(default)]
    checks: Vec<RawCheck>,
    #[serde(default)]
    noise: Option<RawNoise>,
    #[serde(default)]
    gauges: BTreeMap<String, f64>,
    #[serde(default)]
    incidents: Vec<yaml_serde::Value>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCheck {
    name: String,
    #[serde(default)]
    latency_ms: Option<f64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNoise {
    #[serde(default)]
    fail_rate: f64,
    #[serde(default)]
    latency_jitter: f64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawIncident {
    name: String,
    kind: String,
    at: String,
    #[serde(rename = "for")]
    length: String,
    #[serde(default)]
    checks: Vec<String>,
    #[serde(default)]
    locations: Vec<String>,
    #[serde(default)]
    latency_ms: Option<f64>,
    #[serde(default)]
    rate: Option<f64>,
    #[serde(default)]
    period: Option<String>,
    #[serde(default)]
    metric: Option<String>,
    #[serde(default)]
    value: Option<f64>,
    #[serde(default)]
    expect: Option<RawExpect>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawExpect {
    #[serde(default)]
    pagerduty: Option<u32>,
    #[serde(default)]
    slack: Option<u32>,
    #[serde(default)]
    detect_within: Option<String>,
}

/// A validated scenario.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// The file as read, for positions in errors found later.
    pub doc: YamlDoc,
    pub start: DateTime<Utc>,
    pub duration: Duration,
    pub seed: u64,
    /// Empty: the config's location.
    pub locations: Vec<String>,
    /// Empty: every check of the config, at [`DEFAULT_LATENCY_MS`].
    pub checks: Vec<CheckBaseline>,
    pub noise: Noise,
    /// Healthy values of business gauges (`feed_approval_rate: 98`), set at every evaluation.
    pub gauges: BTreeMap<String, f64>,
    pub incidents: Vec<Incident>,
}

#[derive(Debug, Clone)]
pub struct CheckBaseline {
    pub name: String,
    pub latency_ms: f64,
    /// Where it is written, for errors found against the config.
    pub path: String,
}

/// Healthy noise between incidents.
#[derive(Debug, Clone, Copy, Default)]
pub struct Noise {
    /// Share of runs that fail at random (0..1).
    pub fail_rate: f64,
    /// Latency varies by up to this share of the baseline, either way (0..1).
    pub latency_jitter: f64,
}

/// What an incident does.
#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    /// Every check fails.
    Outage,
    /// The listed checks fail.
    CheckFailure,
    /// The listed checks pass, slowly.
    Latency { latency_ms: f64 },
    /// A share of runs fails.
    ErrorRate { rate: f64 },
    /// The listed checks fail for the first half of each period and pass for the second.
    Flapping { period: Duration },
    /// Every check fails from the listed locations only.
    LocationBlip,
    /// The probe breaks (outcome `error`): the target is fine.
    ProbeCrash,
    /// A business gauge reads `value`.
    Gauge { metric: String, value: f64 },
}

impl Kind {
    pub fn as_str(&self) -> &'static str {
        match self {
            Kind::Outage => "outage",
            Kind::CheckFailure => "check_failure",
            Kind::Latency { .. } => "latency",
            Kind::ErrorRate { .. } => "error_rate",
            Kind::Flapping { .. } => "flapping",
            Kind::LocationBlip => "location_blip",
            Kind::ProbeCrash => "probe_crash",
            Kind::Gauge { .. } => "gauge",
        }
    }

    const NAMES: &'static str =
        "outage, check_failure, latency, error_rate, flapping, location_blip, probe_crash, gauge";

    /// Pages and posts an incident of this kind should cause when `expect:` does not say:
    /// an outage of the target pages once; a slow journey or a business dip is a Slack post; a
    /// single location or a broken probe pages no one (`None`: not judged).
    pub fn default_expect(&self) -> (Option<u32>, Option<u32>) {
        match self {
            Kind::Outage | Kind::CheckFailure | Kind::Flapping { .. } | Kind::ErrorRate { .. } => {
                (Some(1), None)
            }
            Kind::Latency { .. } | Kind::Gauge { .. } => (Some(0), Some(1)),
            Kind::LocationBlip | Kind::ProbeCrash => (Some(0), None),
        }
    }
}

/// One incident of the timeline.
#[derive(Debug, Clone)]
pub struct Incident {
    pub name: String,
    pub kind: Kind,
    /// Offset from the scenario's start.
    pub at: Duration,
    pub length: Duration,
    /// Empty: every simulated check.
    pub checks: Vec<String>,
    /// Empty: every location.
    pub locations: Vec<String>,
    pub expect_pagerduty: Option<u32>,
    pub expect_slack: Option<u32>,
    pub detect_within: Option<Duration>,
    /// `incidents[3]`, for errors found against the config.
    pub path: String,
}

/// What an incident does to one run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Effect {
    Outcome(Outcome),
    Latency(f64),
    /// Fails with this probability.
    FailRate(f64),
}

impl Incident {
    pub fn starts(&self, start: DateTime<Utc>) -> DateTime<Utc> {
        start + chrono::Duration::from_std(self.at).unwrap_or_default()
    }

    pub fn ends(&self, start: DateTime<Utc>) -> DateTime<Utc> {
        self.starts(start) + chrono::Duration::from_std(self.length).unwrap_or_default()
    }

    fn covers(&self, check: &str, location: &str) -> bool {
        (self.checks.is_empty() || self.checks.iter().any(|c| c == check))
            && (self.locations.is_empty() || self.locations.iter().any(|l| l == location))
    }

    /// What this incident does to a run of `check` from `location` starting `since` after the
    /// incident began (`None`: the run is outside it or untouched by it).
    pub fn effect(&self, check: &str, location: &str, since: Duration) -> Option<Effect> {
        if since >= self.length || !self.covers(check, location) {
            return None;
        }
        Some(match &self.kind {
            Kind::Outage | Kind::CheckFailure | Kind::LocationBlip => {
                Effect::Outcome(Outcome::Fail)
            }
            Kind::ProbeCrash => Effect::Outcome(Outcome::Error),
            Kind::Latency { latency_ms } => Effect::Latency(*latency_ms),
            Kind::ErrorRate { rate } => Effect::FailRate(*rate),
            Kind::Flapping { period } => {
                let phase = since.as_nanos() % period.as_nanos().max(1);
                if phase < period.as_nanos() / 2 {
                    Effect::Outcome(Outcome::Fail)
                } else {
                    return None;
                }
            }
            Kind::Gauge { .. } => return None,
        })
    }
}

/// Reads and validates a scenario file. Every problem is returned, each with its position.
pub fn load(path: &Path) -> Result<Scenario, Vec<Diagnostic>> {
    let doc = YamlDoc::read_expecting(
        path,
        "a replay scenario: a YAML map with `start`, `duration` and `incidents`",
    )
    .map_err(|d| vec![d])?;
    parse(&doc)
}

fn parse(doc: &YamlDoc) -> Result<Scenario, Vec<Diagnostic>> {
    let raw: RawScenario = doc.deserialize_at(&doc.value, "").map_err(|d| vec![d])?;
    let mut errors = Vec::new();
    let mut err = |path: &str, msg: String| errors.push(doc.diag(path, msg));
    let start = DateTime::parse_from_rfc3339(raw.start.trim())
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_else(|e| {
            err(
                "start",
                format!(
                    "`{}` is not an RFC 3339 time (e.g. 2026-01-05T00:00:00Z): {e}",
                    raw.start
                ),
            );
            DateTime::<Utc>::UNIX_EPOCH
        });
    let duration = DURATION.parse(&raw.duration).unwrap_or_else(|e| {
        err("duration", e);
        HOUR
    });
    for (i, l) in raw.locations.iter().enumerate() {
        if l.trim().is_empty() {
            err(&format!("locations[{i}]"), "must not be empty".into());
        }
    }
    let checks = raw
        .checks
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let path = format!("checks[{i}]");
            let latency_ms = c.latency_ms.unwrap_or(DEFAULT_LATENCY_MS);
            if !(latency_ms.is_finite() && (0.0..=MAX_LATENCY_MS).contains(&latency_ms)) {
                err(
                    &format!("{path}.latency_ms"),
                    "must be a number of milliseconds, 0 or more".into(),
                );
            }
            CheckBaseline {
                name: c.name.clone(),
                latency_ms,
                path,
            }
        })
        .collect();
    let noise = raw
        .noise
        .map(|n| Noise {
            fail_rate: n.fail_rate,
            latency_jitter: n.latency_jitter,
        })
        .unwrap_or_default();
    for (field, v) in [
        ("noise.fail_rate", noise.fail_rate),
        ("noise.latency_jitter", noise.latency_jitter),
    ] {
        if !(0.0..=1.0).contains(&v) {
            err(field, format!("must be between 0 and 1 (a share), not {v}"));
        }
    }
    for name in raw.gauges.keys() {
        if let Err(m) = gauge_metric(name) {
            err(&format!("gauges.{name}"), m);
        }
    }
    let mut incidents: Vec<Incident> = Vec::new();
    for (i, value) in raw.incidents.iter().enumerate() {
        let path = format!("incidents[{i}]");
        let r: RawIncident = match doc.deserialize_at(value, &path) {
            Ok(r) => r,
            Err(d) => {
                errors.push(d);
                continue;
            }
        };
        let mut err =
            |field: &str, msg: String| errors.push(doc.diag(&format!("{path}.{field}"), msg));
        if incidents.iter().any(|x| x.name == r.name) {
            err(
                "name",
                format!("`{}` is already the name of an incident", r.name),
            );
        }
        let at = OFFSET.parse(&r.at).unwrap_or_else(|e| {
            err("at", e);
            Duration::ZERO
        });
        let length = LENGTH.parse(&r.length).unwrap_or_else(|e| {
            err("for", e);
            Duration::from_secs(60)
        });
        if at + length > duration {
            err(
                "for",
                format!(
                    "the incident ends at {}, after the scenario's end ({})",
                    crate::config::duration::short(at + length),
                    crate::config::duration::short(duration)
                ),
            );
        }
        let mut needs = |field: &str, present: bool, kind: &str| {
            if !present {
                err(
                    field,
                    format!("missing: a `{kind}` incident needs `{field}`"),
                );
            }
        };
        let kind = match r.kind.as_str() {
            "outage" => Kind::Outage,
            "check_failure" => {
                needs("checks", !r.checks.is_empty(), "check_failure");
                Kind::CheckFailure
            }
            "latency" => {
                needs("checks", !r.checks.is_empty(), "latency");
                needs("latency_ms", r.latency_ms.is_some(), "latency");
                let latency_ms = r.latency_ms.unwrap_or(0.0);
                // A negative or absurd latency would end runs before they start (and overflow
                // the clock): refused like a check's baseline latency.
                if !(latency_ms.is_finite() && (0.0..=MAX_LATENCY_MS).contains(&latency_ms)) {
                    err(
                        "latency_ms",
                        format!(
                            "must be a number of milliseconds from 0 to {MAX_LATENCY_MS}, not {latency_ms}"
                        ),
                    );
                }
                Kind::Latency { latency_ms }
            }
            "error_rate" => {
                needs("rate", r.rate.is_some(), "error_rate");
                let rate = r.rate.unwrap_or(0.0);
                if !(0.0..=1.0).contains(&rate) {
                    err(
                        "rate",
                        format!("must be between 0 and 1 (a share of runs), not {rate}"),
                    );
                }
                Kind::ErrorRate { rate }
            }
            "flapping" => {
                needs("period", r.period.is_some(), "flapping");
                let period = r
                    .period
                    .as_deref()
                    .map(|p| {
                        PERIOD.parse(p).unwrap_or_else(|e| {
                            err("period", e);
                            Duration::from_secs(60)
                        })
                    })
                    .unwrap_or(Duration::from_secs(60));
                Kind::Flapping { period }
            }
            "location_blip" => {
                needs("locations", !r.locations.is_empty(), "location_blip");
                Kind::LocationBlip
            }
            "probe_crash" => Kind::ProbeCrash,
            "gauge" => {
                needs("metric", r.metric.is_some(), "gauge");
                needs("value", r.value.is_some(), "gauge");
                let metric = r.metric.clone().unwrap_or_default();
                if r.metric.is_some() {
                    if let Err(m) = gauge_metric(&metric) {
                        err("metric", m);
                    } else if !raw.gauges.contains_key(&metric) {
                        err(
                            "metric",
                            format!(
                                "`{metric}` has no healthy value to return to: add it under `gauges:` (e.g. `gauges: {{ {metric}: 98 }}`)"
                            ),
                        );
                    }
                }
                Kind::Gauge {
                    metric,
                    value: r.value.unwrap_or(0.0),
                }
            }
            other => {
                err(
                    "kind",
                    format!("unknown kind `{other}`; expected one of {}", Kind::NAMES),
                );
                continue;
            }
        };
        let (mut pd, mut slack) = kind.default_expect();
        let mut detect_within = None;
        if let Some(e) = r.expect {
            pd = e.pagerduty.or(pd);
            slack = e.slack.or(slack);
            detect_within = e.detect_within.as_deref().and_then(|d| {
                DETECT
                    .parse(d)
                    .map_err(|m| err("expect.detect_within", m))
                    .ok()
            });
        }
        incidents.push(Incident {
            name: r.name,
            kind,
            at,
            length,
            checks: r.checks,
            locations: r.locations,
            expect_pagerduty: pd,
            expect_slack: slack,
            detect_within,
            path,
        });
    }
    if errors.is_empty() {
        Ok(Scenario {
            doc: doc.clone(),
            start,
            duration,
            seed: raw.seed,
            locations: raw.locations,
            checks,
            noise,
            gauges: raw.gauges,
            incidents,
        })
    } else {
        Err(errors)
    }
}

/// A gauge of the metric catalog with no labels (a business figure the platform computes).
fn gauge_metric(name: &str) -> Result<&'static catalog::MetricDef, String> {
    match catalog::lookup(name) {
        Some(d) if d.kind == MetricKind::Gauge && d.labels.is_empty() => Ok(d),
        Some(_) => Err(format!(
            "`{name}` is not a business gauge (a catalog gauge without labels)"
        )),
        None => Err(format!("`{name}` is not a metric of the catalog")),
    }
}

impl Scenario {
    /// A diagnostic about the field at `path` of the scenario file (for mistakes found against
    /// the config: a check or location it does not have).
    pub fn diag(&self, path: &str, message: impl Into<String>) -> Diagnostic {
        self.doc.diag(path, message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_text(text: &str) -> Result<Scenario, Vec<Diagnostic>> {
        parse(&YamlDoc::parse("s.yaml".into(), text).unwrap())
    }

    #[test]
    fn a_scenario_reads_with_per_kind_defaults() {
        let s = parse_text(
            "start: 2026-01-05T00:00:00Z\nduration: 2h\nseed: 3\ngauges: { feed_approval_rate: 98 }\nincidents:\n  - { name: o, kind: outage, at: 10m, for: 3m }\n  - { name: g, kind: gauge, metric: feed_approval_rate, value: 80, at: 1h, for: 20m, expect: { slack: 2 } }\n",
        )
        .unwrap();
        assert_eq!(s.incidents.len(), 2);
        assert_eq!(s.incidents[0].expect_pagerduty, Some(1));
        assert_eq!(s.incidents[1].expect_pagerduty, Some(0));
        assert_eq!(s.incidents[1].expect_slack, Some(2));
    }

    #[test]
    fn every_mistake_names_its_line_and_field() {
        let errs = parse_text(
            "start: 2026-01-05T00:00:00Z\nduration: 1h\nincidents:\n  - { name: a, kind: outage, at: 10m, for: 3m }\n  - { name: b, kind: latency, at: 5m, for: 2m }\n  - { name: c, kind: nope, at: 1m, for: 1m }\n",
        )
        .unwrap_err();
        let shown: Vec<String> = errs.iter().map(|d| d.to_string()).collect();
        assert!(
            shown
                .iter()
                .any(|e| e.starts_with("s.yaml:5:") && e.contains("incidents[1].checks: missing")),
            "{shown:?}"
        );
        assert!(
            shown.iter().any(|e| e.starts_with("s.yaml:6:")
                && e.contains("incidents[2].kind: unknown kind `nope`")),
            "{shown:?}"
        );
    }

    #[test]
    fn flapping_fails_the_first_half_of_each_period() {
        let s = parse_text(
            "start: 2026-01-05T00:00:00Z\nduration: 1h\nincidents:\n  - { name: f, kind: flapping, checks: [a], at: 0s, for: 20m, period: 4m }\n",
        )
        .unwrap();
        let i = &s.incidents[0];
        let at = |m: u64| i.effect("a", "eu", Duration::from_secs(m));
        assert_eq!(at(0), Some(Effect::Outcome(Outcome::Fail)));
        assert_eq!(at(119), Some(Effect::Outcome(Outcome::Fail)));
        assert_eq!(at(120), None);
        assert_eq!(at(240), Some(Effect::Outcome(Outcome::Fail)));
        assert_eq!(at(1200), None, "over");
        assert_eq!(i.effect("b", "eu", Duration::ZERO), None, "another check");
    }
}
