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

/// The firing alerts of `alerts`, ready to route. `last` holds the latest run per check.
pub fn firing_alerts<'a>(
    alerts: impl IntoIterator<Item = &'a Alert>,
    rules: &RuleSet,
    last: &HashMap<String, RunResult>,
    external_url: &str,
) -> Vec<IncomingAlert> {
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
                .map(|r| evidence(r, external_url));
            IncomingAlert {
                fingerprint: a.fingerprint.clone(),
                annotations: a.annotations.clone(),
                starts_at: a.fired_at.unwrap_or(a.active_at),
                condition: rule.and_then(|r| condition(&r.condition, a.value)),
                run,
                labels,
            }
        })
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

/// The run as a notification shows it: failing step and error, step timings, links.
pub fn evidence(r: &RunResult, external_url: &str) -> RunEvidence {
    let base = external_url.trim_end_matches('/');
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
    }
}
