//! From the evaluator's alerts to what the pipeline routes: labels for routing (`route` from the
//! rule), the condition against its threshold, and the evidence of the latest run of the check
//! the alert is about. Built at every evaluation, so a notification carries the newest evidence.

use std::collections::HashMap;

use crate::metrics::catalog::Unit;
use crate::rules::eval::{Alert, Phase};
use crate::rules::model::{Aggregate, Condition as RuleCondition, RuleSet};
use crate::rules::slo::fmt_duration;
use crate::run::RunResult;

use super::dispatch::IncomingAlert;
use super::message::{Condition, RunEvidence, StepTiming};

/// The firing alerts of `alerts`, ready to route. `last` holds the latest run per check;
/// `trace_ui` is `tracing.ui_url` (a run's trace id becomes a link into it).
pub fn firing_alerts<'a>(
    alerts: impl IntoIterator<Item = &'a Alert>,
    rules: &RuleSet,
    last: &HashMap<String, RunResult>,
    external_url: &str,
    trace_ui: Option<&str>,
) -> Vec<IncomingAlert> {
    let links = Links {
        external_url,
        trace_ui,
    };
    alerts
        .into_iter()
        .filter(|a| a.phase == Phase::Firing)
        .map(|a| {
            let rule = rules.rule(&a.rule);
            let mut labels = a.labels.clone();
            if let Some(r) = rule.and_then(|r| r.route.clone()) {
                labels.entry("route".into()).or_insert(r);
            }
            let run = a
                .labels
                .get("check")
                .and_then(|c| last.get(c))
                .map(|r| evidence_with(r, &links));
            let affected = match (&run, rule) {
                (None, Some(rule)) if !a.labels.contains_key("check") => {
                    affected_runs(rule, rules, last, &links)
                }
                _ => Vec::new(),
            };
            IncomingAlert {
                fingerprint: a.fingerprint.clone(),
                annotations: a.annotations.clone(),
                starts_at: a.fired_at.unwrap_or(a.active_at),
                condition: rule.and_then(|r| condition(&r.condition, a.value)),
                run,
                affected,
                labels,
            }
        })
        .collect()
}

/// At most this many affected checks are named in one alert (a page stays readable, and
/// PagerDuty's event size is bounded).
const MAX_AFFECTED: usize = 25;

/// The checks an alert without a `check` label is about (every check its rule's or SLO's
/// matchers select) whose latest run failed, sorted by check name. Probe errors are left out:
/// they are never the target's fault.
fn affected_runs(
    rule: &crate::rules::model::Rule,
    rules: &RuleSet,
    last: &HashMap<String, RunResult>,
    links: &Links<'_>,
) -> Vec<RunEvidence> {
    let matchers = match &rule.condition {
        RuleCondition::Threshold(t) => &t.matchers,
        RuleCondition::Burn { slo, .. } => match rules.slos.iter().find(|s| &s.name == slo) {
            Some(s) => s.sli.matchers(),
            None => return Vec::new(),
        },
    };
    let selects = |check: &str| {
        matchers
            .0
            .iter()
            .filter(|m| m.label == "check")
            .all(|m| m.matches(&[("check".to_string(), check.to_string())].into()))
    };
    let mut runs: Vec<&RunResult> = last
        .values()
        .filter(|r| r.outcome == crate::Outcome::Fail && selects(&r.check))
        .collect();
    runs.sort_by(|a, b| a.check.cmp(&b.check).then(a.location.cmp(&b.location)));
    runs.into_iter()
        .take(MAX_AFFECTED)
        .map(|r| evidence_with(r, links))
        .collect()
}

fn condition(c: &RuleCondition, value: Option<f64>) -> Option<Condition> {
    match c {
        RuleCondition::Threshold(t) => {
            let unit = match (t.aggregate, t.metric.unit) {
                (Aggregate::Ratio | Aggregate::Rate, _) => "",
                (_, Unit::Milliseconds) => "ms",
                (_, Unit::Seconds) => "s",
                (_, Unit::Percent) => "%",
                (_, Unit::Days) => "d",
                (_, Unit::Ratio | Unit::Count) => "",
            };
            Some(Condition {
                aggregate: format!("{:?}", t.aggregate).to_ascii_lowercase(),
                value,
                op: t.op.as_str().into(),
                threshold: t.threshold,
                unit: unit.into(),
                window: fmt_duration(t.window),
            })
        }
        RuleCondition::Burn { rows, .. } => rows.first().map(|r| Condition {
            aggregate: "burn rate".into(),
            value,
            op: ">".into(),
            threshold: r.factor,
            unit: "x".into(),
            window: fmt_duration(r.long),
        }),
    }
}

/// Where a notification's links point: the daemon's pages and the tracing UI.
struct Links<'a> {
    external_url: &'a str,
    trace_ui: Option<&'a str>,
}

/// The run as a notification shows it: failing step and error, step timings, links.
pub fn evidence(r: &RunResult, external_url: &str) -> RunEvidence {
    evidence_with(
        r,
        &Links {
            external_url,
            trace_ui: None,
        },
    )
}

fn evidence_with(r: &RunResult, links: &Links<'_>) -> RunEvidence {
    let base = links.external_url.trim_end_matches('/');
    let screenshot = r.artifacts.iter().find(|a| a.kind == "screenshot");
    let failing = r.outcome != crate::Outcome::Pass;
    RunEvidence {
        run_id: r.run_id.clone(),
        check: r.check.clone(),
        target: r.target.clone(),
        location: r.location.clone(),
        outcome: r.outcome.as_str().into(),
        started_at: r.started_at,
        total_ms: r.total_ms,
        failing_step: r.failed_step.clone().or_else(|| {
            r.steps
                .iter()
                .find(|s| s.outcome != crate::Outcome::Pass)
                .map(|s| s.name.clone())
        }),
        error: r.error.clone(),
        steps: r
            .steps
            .iter()
            .map(|s| StepTiming {
                name: s.name.clone(),
                latency_ms: s.latency_ms,
                outcome: s.outcome.as_str().into(),
            })
            .collect(),
        run_url: format!("{base}/runs/{}", r.run_id),
        screenshot_path: screenshot.map(|a| a.path.clone()),
        screenshot_url: screenshot.map(|a| {
            let file = std::path::Path::new(&a.path)
                .file_name()
                .map(|f| f.to_string_lossy().into_owned())
                .unwrap_or_default();
            format!("{base}/artifacts/{}/{file}", r.run_id)
        }),
        failing_locations: if failing {
            vec![r.location.clone()]
        } else {
            Vec::new()
        },
        trace_id: r.trace_id.clone(),
        trace_url: r
            .trace_id
            .as_deref()
            .and_then(|t| crate::trace::trace_url(links.trace_ui, t)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Outcome;
    use crate::metrics::registry::tests::run;

    fn rules(yaml: &str) -> RuleSet {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("rules.yaml");
        std::fs::write(&f, yaml).unwrap();
        let (set, errors) = crate::rules::load_files(&[f]);
        assert!(errors.is_empty(), "{errors:?}");
        set
    }

    fn alert(rule: &str, labels: &[(&str, &str)]) -> Alert {
        let at = chrono::DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        Alert {
            rule: rule.into(),
            fingerprint: format!("fp-{rule}"),
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .chain([("alertname".to_string(), rule.to_string())])
                .collect(),
            phase: Phase::Firing,
            active_at: at,
            fired_at: Some(at),
            pending_ms: 0,
            last_eval: at,
            last_true_at: at,
            healthy_streak: 0,
            value: Some(1.0),
            annotations: Default::default(),
            flapping: false,
        }
    }

    #[test]
    fn an_alert_about_several_checks_names_each_failing_one_and_only_those() {
        let set = rules(
            "rules:\n  - alert: journeys_down\n    metric: synmon.check.runs\n    match: { check: \"=~align_category|save_profile|feed_push\" }\n    aggregate: ratio\n    numerator: { outcome: fail }\n    denominator: { outcome: \"=~pass|fail\" }\n    op: \">\"\n    threshold: 0.5\n  - alert: one_check\n    metric: synmon.check.runs\n    by: [check]\n    aggregate: ratio\n    numerator: { outcome: fail }\n    denominator: { outcome: \"=~pass|fail\" }\n    op: \">\"\n    threshold: 0.5\n",
        );
        let mut last = HashMap::new();
        for (check, outcome) in [
            ("save_profile", Outcome::Fail),
            ("align_category", Outcome::Fail),
            ("feed_push", Outcome::Error),
            ("auth_health", Outcome::Fail),
        ] {
            let mut r = run(check, outcome, vec![]);
            r.failed_step = Some(format!("{check} step"));
            last.insert(check.to_string(), r);
        }
        let alerts = [
            alert("journeys_down", &[]),
            alert("one_check", &[("check", "auth_health")]),
        ];
        let out = firing_alerts(&alerts, &set, &last, "http://synmon.test", None);
        // The journeys' alert names the two failing journeys, sorted; the probe error of
        // feed_push is not the target's fault and auth_health is not a journey.
        let names: Vec<&str> = out[0].affected.iter().map(|r| r.check.as_str()).collect();
        assert_eq!(names, ["align_category", "save_profile"]);
        assert_eq!(
            out[0].affected[0].failing_step.as_deref(),
            Some("align_category step")
        );
        assert!(out[0].run.is_none());
        // An alert about one check carries that check's run, not a list.
        assert_eq!(out[1].run.as_ref().unwrap().check, "auth_health");
        assert!(out[1].affected.is_empty());
    }
}
