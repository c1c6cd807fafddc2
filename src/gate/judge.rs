//! The verdict: samples + targets -> one verdict per check and criterion, and the exit code.
//! Pure (no I/O, no clock), so every rule below is a table-driven unit test.
//!
//! Rules:
//! - each journey's p95 of passing runs < its target (400 ms), each API check's p95 < 500 ms;
//! - availability = pass / (pass + fail) >= 99.9 %, per check and over all judged checks; probe
//!   errors are excluded and reported apart, but more than `max_probe_error_pct` of a check's
//!   runs in error means the probe, not the target, was watched: cannot judge;
//! - in window mode, fewer than `min_samples` judged runs of a check: cannot judge, never a pass;
//! - in runs mode the user chose N: with N < 20, p95 is the worst run and availability is
//!   "all N passed";
//! - feed push success >= 95 %; no page-severity alert firing.
//!
//! The overall verdict: any breach -> 1 (a breach measured is a fact, whatever else could not be
//! judged); otherwise anything that could not be judged -> 2; otherwise 0.

use serde::{Deserialize, Serialize};

use super::GatedCheck;
use super::samples::{AlertsReading, CheckSamples, GaugeReading, Mode, Samples};
use crate::run::CheckKind;

/// Below this many runs, a p95 is the worst run (runs mode) — a 95th percentile of 5 numbers
/// is not a statistic.
pub const P95_MIN_RUNS: u64 = 20;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Targets {
    /// Default journey p95 target, when no latency SLO covers the journey.
    pub journey_p95_ms: f64,
    pub api_p95_ms: f64,
    pub availability_pct: f64,
    pub feed_push_success_pct: f64,
    /// Window mode: fewer judged runs of a check than this -> cannot judge.
    pub min_samples: u64,
    /// More probe errors than this share of a check's runs -> cannot judge.
    pub max_probe_error_pct: f64,
}

impl Default for Targets {
    fn default() -> Self {
        Targets {
            journey_p95_ms: 400.0,
            api_p95_ms: 500.0,
            availability_pct: 99.9,
            feed_push_success_pct: 95.0,
            min_samples: 20,
            max_probe_error_pct: 10.0,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Not applicable here (not configured, or not part of this mode).
    Skipped,
    Pass,
    CannotJudge,
    Breach,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Skipped => "skipped",
            Verdict::Pass => "pass",
            Verdict::CannotJudge => "cannot judge",
            Verdict::Breach => "BREACH",
        }
    }

    /// The process exit code of the gate for this overall verdict.
    pub fn exit_code(self) -> i32 {
        match self {
            Verdict::Skipped | Verdict::Pass => 0,
            Verdict::Breach => 1,
            Verdict::CannotJudge => 2,
        }
    }
}

/// One criterion of one check (one JUnit testcase).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Criterion {
    /// The check name, or `overall`, `feed_push_jobs`, `alerts`.
    pub check: String,
    /// `samples`, `probe_errors`, `p95`, `availability`, `success_rate`, `page_alerts`.
    pub criterion: String,
    pub verdict: Verdict,
    pub value: Option<f64>,
    pub target: Option<f64>,
    /// How value is compared with target: `<`, `>=`, `<=`.
    pub op: String,
    /// The sentence a person reads (with the numbers).
    pub message: String,
}

/// One check's row in the table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckVerdict {
    pub check: String,
    pub kind: Option<CheckKind>,
    /// Runs that judge the target (pass + fail).
    pub samples: u64,
    pub pass: u64,
    pub fail: u64,
    pub probe_errors: u64,
    pub p95_ms: Option<f64>,
    pub p95_target_ms: f64,
    pub availability_pct: Option<f64>,
    pub availability_target_pct: f64,
    pub verdict: Verdict,
    /// Runs inside maintenance windows: not among the samples, not judged.
    #[serde(default)]
    pub maintenance_runs: u64,
}

/// The whole judgement: what the table, JSON, JUnit and the perf report are written from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Verdicts {
    pub verdict: Verdict,
    pub exit_code: i32,
    #[serde(flatten)]
    pub mode: Mode,
    pub from: chrono::DateTime<chrono::Utc>,
    pub to: chrono::DateTime<chrono::Utc>,
    pub targets: Targets,
    pub checks: Vec<CheckVerdict>,
    pub criteria: Vec<Criterion>,
    pub notes: Vec<String>,
    /// Runs inside maintenance windows over every gated check (see each check's count).
    #[serde(default)]
    pub maintenance_runs: u64,
}

/// Nearest-rank percentile of unsorted values (`q` in 0..=1); `None` for no values.
pub fn percentile(values: &[f64], q: f64) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mut v = values.to_vec();
    let rank = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len());
    let (_, x, _) = v.select_nth_unstable_by(rank - 1, f64::total_cmp);
    Some(*x)
}

fn fmt(v: f64) -> String {
    crate::rules::eval::fmt_num((v * 100.0).round() / 100.0)
}

/// Judges `samples` for `checks` against `targets`.
pub fn judge(samples: &Samples, checks: &[GatedCheck], targets: &Targets) -> Verdicts {
    let runs_mode = match samples.mode {
        Mode::Runs { runs } => Some(runs),
        Mode::Window { .. } => None,
    };
    let small_runs = runs_mode.filter(|&n| u64::from(n) < P95_MIN_RUNS);
    let mut criteria = Vec::new();
    let mut rows = Vec::new();
    let mut notes = Vec::new();
    if let Some(n) = small_runs {
        notes.push(format!(
            "{n} runs per check is fewer than {P95_MIN_RUNS}: p95 is judged as the worst run and \
             availability as \"all {n} passed\""
        ));
    }
    let empty = CheckSamples::default();
    let (mut total_pass, mut total_judged) = (0u64, 0u64);
    for c in checks {
        let s = samples.checks.get(&c.name).unwrap_or(&empty);
        let mut cr = |criterion: &str,
                      verdict: Verdict,
                      value: Option<f64>,
                      target: Option<f64>,
                      op: &str,
                      message: String| {
            criteria.push(Criterion {
                check: c.name.clone(),
                criterion: criterion.into(),
                verdict,
                value,
                target,
                op: op.into(),
                message,
            });
            verdict
        };
        let judged = s.judged();
        let all = judged + s.error;
        let mut worst = Verdict::Pass;

        // Probe errors: apart from the target's record, but too many hide the target.
        let error_pct = (all > 0).then(|| s.error as f64 * 100.0 / all as f64);
        let probe_ok = error_pct.is_none_or(|p| p <= targets.max_probe_error_pct);
        worst = worst.max(cr(
            "probe_errors",
            if probe_ok {
                Verdict::Pass
            } else {
                Verdict::CannotJudge
            },
            error_pct,
            Some(targets.max_probe_error_pct),
            "<=",
            format!(
                "{} probe errors in {all} runs ({}%, limit {}%){}",
                s.error,
                fmt(error_pct.unwrap_or(0.0)),
                fmt(targets.max_probe_error_pct),
                if probe_ok {
                    ""
                } else {
                    ": the probe broke, the target cannot be judged"
                }
            ),
        ));

        // Enough samples (window mode); runs mode takes the N the user chose, but not zero.
        let min = if runs_mode.is_some() {
            1
        } else {
            targets.min_samples
        };
        let enough = judged >= min;
        worst = worst.max(cr(
            "samples",
            if enough {
                Verdict::Pass
            } else {
                Verdict::CannotJudge
            },
            Some(judged as f64),
            Some(min as f64),
            ">=",
            if enough {
                format!("{judged} judged runs (minimum {min})")
            } else {
                format!("only {judged} judged runs, fewer than the minimum {min}: cannot judge")
            },
        ));
        let judgeable = enough && probe_ok;
        let not_judged = if probe_ok {
            "not judged: too few samples"
        } else {
            "not judged: too many probe errors"
        };

        // p95 of passing runs.
        let p95 = if small_runs.is_some() {
            s.pass_latencies_ms.iter().copied().reduce(f64::max)
        } else {
            percentile(&s.pass_latencies_ms, 0.95)
        };
        let label = if small_runs.is_some() {
            "worst run"
        } else {
            "p95"
        };
        let p95_verdict = match p95 {
            _ if !judgeable => Verdict::CannotJudge,
            None => Verdict::CannotJudge,
            Some(v) if v < c.p95_target_ms => Verdict::Pass,
            Some(_) => Verdict::Breach,
        };
        worst = worst.max(cr(
            "p95",
            p95_verdict,
            p95,
            Some(c.p95_target_ms),
            "<",
            match (p95_verdict, p95) {
                (Verdict::CannotJudge, None) if judgeable => {
                    "no passing run to take a latency from".to_string()
                }
                (Verdict::CannotJudge, _) => not_judged.to_string(),
                (v, Some(p)) => format!(
                    "{label} {} ms {} target {} ms",
                    fmt(p),
                    if v == Verdict::Pass { "<" } else { ">=" },
                    fmt(c.p95_target_ms)
                ),
                (_, None) => unreachable!("a verdict on p95 needs a value"),
            },
        ));

        // Availability.
        let avail = (judged > 0).then(|| s.pass() as f64 * 100.0 / judged as f64);
        let avail_verdict = match avail {
            _ if !judgeable => Verdict::CannotJudge,
            None => Verdict::CannotJudge,
            Some(a) if a >= targets.availability_pct => Verdict::Pass,
            Some(_) => Verdict::Breach,
        };
        worst = worst.max(cr(
            "availability",
            avail_verdict,
            avail,
            Some(targets.availability_pct),
            ">=",
            match (avail_verdict, small_runs) {
                (Verdict::CannotJudge, _) if !judgeable => not_judged.to_string(),
                (Verdict::CannotJudge, _) => "no run judged the target".into(),
                (Verdict::Pass, Some(_)) => format!("all {judged} passed"),
                (_, Some(_)) => format!("{} of {judged} runs failed", s.fail),
                (v, None) => format!(
                    "{}% ({} of {judged} runs passed) {} target {}%",
                    fmt(avail.unwrap_or(0.0)),
                    s.pass(),
                    if v == Verdict::Pass { ">=" } else { "<" },
                    fmt(targets.availability_pct)
                ),
            },
        ));

        if judgeable {
            total_pass += s.pass();
            total_judged += judged;
        }
        rows.push(CheckVerdict {
            check: c.name.clone(),
            kind: Some(c.kind),
            samples: judged,
            pass: s.pass(),
            fail: s.fail,
            probe_errors: s.error,
            p95_ms: p95,
            p95_target_ms: c.p95_target_ms,
            availability_pct: avail,
            availability_target_pct: targets.availability_pct,
            verdict: worst,
            maintenance_runs: s.maintenance_runs,
        });
    }

    // Overall availability, over every check that could be judged.
    let overall = (total_judged > 0).then(|| total_pass as f64 * 100.0 / total_judged as f64);
    let overall_verdict = match overall {
        None => Verdict::CannotJudge,
        Some(a) if a >= targets.availability_pct => Verdict::Pass,
        Some(_) => Verdict::Breach,
    };
    criteria.push(Criterion {
        check: "overall".into(),
        criterion: "availability".into(),
        verdict: overall_verdict,
        value: overall,
        target: Some(targets.availability_pct),
        op: ">=".into(),
        message: match overall {
            None => "no check could be judged".into(),
            Some(a) => format!(
                "{}% ({total_pass} of {total_judged} runs passed) {} target {}%",
                fmt(a),
                if overall_verdict == Verdict::Pass {
                    ">="
                } else {
                    "<"
                },
                fmt(targets.availability_pct)
            ),
        },
    });

    // Feed push success.
    let (fv, value, message) = match &samples.feed_push_success_rate {
        GaugeReading::NotConfigured => (
            Verdict::Skipped,
            None,
            format!("no SQL metric `{}` is configured", super::FEED_PUSH_METRIC),
        ),
        GaugeReading::Unavailable { reason } => (
            Verdict::CannotJudge,
            None,
            format!("cannot read {}: {reason}", super::FEED_PUSH_METRIC),
        ),
        GaugeReading::Value { value } => {
            let ok = *value >= targets.feed_push_success_pct;
            (
                if ok { Verdict::Pass } else { Verdict::Breach },
                Some(*value),
                format!(
                    "{}% {} target {}%",
                    fmt(*value),
                    if ok { ">=" } else { "<" },
                    fmt(targets.feed_push_success_pct)
                ),
            )
        }
    };
    criteria.push(Criterion {
        check: "feed_push_jobs".into(),
        criterion: "success_rate".into(),
        verdict: fv,
        value,
        target: Some(targets.feed_push_success_pct),
        op: ">=".into(),
        message,
    });

    // Page alerts firing now.
    let (av, count, message) = match &samples.page_alerts {
        AlertsReading::NotJudged => (
            Verdict::Skipped,
            None,
            "fresh runs have no alert history (window mode judges firing alerts)".to_string(),
        ),
        AlertsReading::Unavailable { reason } => (Verdict::CannotJudge, None, reason.clone()),
        AlertsReading::Firing { alerts } if alerts.is_empty() => (
            Verdict::Pass,
            Some(0.0),
            "no page-severity alert is firing".into(),
        ),
        AlertsReading::Firing { alerts } => (
            Verdict::Breach,
            Some(alerts.len() as f64),
            format!(
                "page-severity alerts firing: {}",
                alerts
                    .iter()
                    .map(|a| a.alert.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ),
    };
    criteria.push(Criterion {
        check: "alerts".into(),
        criterion: "page_alerts".into(),
        verdict: av,
        value: count,
        target: Some(0.0),
        op: "<=".into(),
        message,
    });

    let maintenance_runs: u64 = rows.iter().map(|r| r.maintenance_runs).sum();
    if maintenance_runs > 0 {
        let per_check: Vec<String> = rows
            .iter()
            .filter(|r| r.maintenance_runs > 0)
            .map(|r| format!("{} {}", r.check, r.maintenance_runs))
            .collect();
        notes.push(format!(
            "{maintenance_runs} runs inside maintenance windows are not judged ({})",
            per_check.join(", ")
        ));
    }
    let verdict = criteria
        .iter()
        .map(|c| c.verdict)
        .max()
        .unwrap_or(Verdict::CannotJudge)
        .max(Verdict::Pass);
    Verdicts {
        verdict,
        exit_code: verdict.exit_code(),
        mode: samples.mode.clone(),
        from: samples.from,
        to: samples.to,
        targets: targets.clone(),
        checks: rows,
        criteria,
        notes,
        maintenance_runs,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::gate::samples::FiringAlert;

    fn window() -> Mode {
        Mode::Window {
            window: "1h".into(),
        }
    }

    fn samples(mode: Mode, checks: &[(&str, CheckSamples)]) -> Samples {
        let t = chrono::DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        Samples {
            mode,
            from: t,
            to: t,
            checks: checks
                .iter()
                .map(|(n, s)| (n.to_string(), s.clone()))
                .collect(),
            feed_push_success_rate: GaugeReading::Value { value: 97.0 },
            page_alerts: AlertsReading::Firing { alerts: Vec::new() },
        }
    }

    /// `n` passing runs at `ms` each, then `fail` failures and `error` probe errors.
    fn runs(n: usize, ms: f64, fail: u64, error: u64) -> CheckSamples {
        CheckSamples {
            kind: Some(CheckKind::Journey),
            pass_latencies_ms: vec![ms; n],
            fail,
            error,
            maintenance_runs: 0,
        }
    }

    fn journey(name: &str) -> GatedCheck {
        GatedCheck {
            name: name.into(),
            kind: CheckKind::Journey,
            p95_target_ms: 400.0,
        }
    }

    fn verdict_of<'a>(v: &'a Verdicts, check: &str, criterion: &str) -> &'a Criterion {
        v.criteria
            .iter()
            .find(|c| c.check == check && c.criterion == criterion)
            .unwrap_or_else(|| panic!("no {check}/{criterion} in {v:#?}"))
    }

    #[test]
    fn percentile_is_nearest_rank() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 0.95), Some(95.0));
        assert_eq!(percentile(&v, 1.0), Some(100.0));
        assert_eq!(percentile(&[7.0], 0.95), Some(7.0));
        assert_eq!(percentile(&[], 0.95), None);
        // 20 values: the 19th.
        let v: Vec<f64> = (1..=20).map(f64::from).collect();
        assert_eq!(percentile(&v, 0.95), Some(19.0));
    }

    #[test]
    fn maintenance_runs_are_reported_not_judged() {
        let mut a = runs(100, 120.0, 0, 0);
        a.maintenance_runs = 7;
        let v = judge(
            &samples(window(), &[("a", a), ("b", runs(100, 120.0, 0, 0))]),
            &[journey("a"), journey("b")],
            &Targets::default(),
        );
        assert_eq!(v.verdict, Verdict::Pass);
        assert_eq!(v.maintenance_runs, 7);
        assert_eq!(
            (v.checks[0].samples, v.checks[0].maintenance_runs),
            (100, 7)
        );
        assert_eq!(v.checks[1].maintenance_runs, 0);
        assert!(
            v.notes
                .iter()
                .any(|n| n == "7 runs inside maintenance windows are not judged (a 7)"),
            "{:?}",
            v.notes
        );
    }

    #[test]
    fn window_verdicts_table() {
        // (name, samples, expected overall verdict, expected p95, expected availability)
        let mut slow = runs(1000, 120.0, 0, 0);
        slow.pass_latencies_ms.extend(vec![450.0; 60]); // > 5% slow: p95 450
        let cases: Vec<(&str, CheckSamples, Verdict, Verdict, Verdict)> = vec![
            (
                "healthy",
                runs(1000, 120.0, 0, 3),
                Verdict::Pass,
                Verdict::Pass,
                Verdict::Pass,
            ),
            (
                "slow p95",
                slow,
                Verdict::Breach,
                Verdict::Breach,
                Verdict::Pass,
            ),
            (
                "p95 exactly at target breaches (< 400)",
                runs(1000, 400.0, 0, 0),
                Verdict::Breach,
                Verdict::Breach,
                Verdict::Pass,
            ),
            (
                "two failures in 1000 breach 99.9%",
                runs(998, 120.0, 2, 0),
                Verdict::Breach,
                Verdict::Pass,
                Verdict::Breach,
            ),
            (
                "one failure in 1000 is exactly 99.9%",
                runs(999, 120.0, 1, 0),
                Verdict::Pass,
                Verdict::Pass,
                Verdict::Pass,
            ),
            (
                "19 samples cannot be judged",
                runs(19, 120.0, 0, 0),
                Verdict::CannotJudge,
                Verdict::CannotJudge,
                Verdict::CannotJudge,
            ),
            (
                "19 samples cannot be judged even when all are slow",
                runs(19, 900.0, 0, 0),
                Verdict::CannotJudge,
                Verdict::CannotJudge,
                Verdict::CannotJudge,
            ),
            (
                "probe errors do not count against availability",
                runs(100, 120.0, 0, 10),
                Verdict::Pass,
                Verdict::Pass,
                Verdict::Pass,
            ),
            (
                "too many probe errors cannot be judged",
                runs(100, 120.0, 0, 50),
                Verdict::CannotJudge,
                Verdict::CannotJudge,
                Verdict::CannotJudge,
            ),
            (
                "no runs at all cannot be judged",
                CheckSamples::default(),
                Verdict::CannotJudge,
                Verdict::CannotJudge,
                Verdict::CannotJudge,
            ),
        ];
        for (name, s, overall, p95, avail) in cases {
            let v = judge(
                &samples(window(), &[("j", s)]),
                &[journey("j")],
                &Targets::default(),
            );
            assert_eq!(v.verdict, overall, "{name}: {v:#?}");
            assert_eq!(v.exit_code, overall.exit_code(), "{name}");
            assert_eq!(verdict_of(&v, "j", "p95").verdict, p95, "{name}");
            assert_eq!(verdict_of(&v, "j", "availability").verdict, avail, "{name}");
            assert_eq!(v.checks[0].verdict, overall, "{name}");
        }
    }

    #[test]
    fn a_missing_check_cannot_be_judged_and_a_breach_outranks_it() {
        let v = judge(
            &samples(window(), &[("a", runs(100, 900.0, 0, 0))]),
            &[journey("a"), journey("b")],
            &Targets::default(),
        );
        assert_eq!(verdict_of(&v, "b", "samples").verdict, Verdict::CannotJudge);
        assert_eq!(v.verdict, Verdict::Breach);
        assert_eq!(v.exit_code, 1);
    }

    #[test]
    fn overall_availability_pools_the_judged_checks() {
        // Each check alone passes at exactly 99.9%; pooled too. A third check at 99% breaches
        // itself and the pool.
        let v = judge(
            &samples(
                window(),
                &[("a", runs(999, 100.0, 1, 0)), ("b", runs(999, 100.0, 1, 0))],
            ),
            &[journey("a"), journey("b")],
            &Targets::default(),
        );
        let o = verdict_of(&v, "overall", "availability");
        assert_eq!(o.verdict, Verdict::Pass);
        assert_eq!(o.value, Some(99.9));
        let v = judge(
            &samples(
                window(),
                &[
                    ("a", runs(999, 100.0, 1, 0)),
                    ("c", runs(990, 100.0, 10, 0)),
                ],
            ),
            &[journey("a"), journey("c")],
            &Targets::default(),
        );
        assert_eq!(
            verdict_of(&v, "overall", "availability").verdict,
            Verdict::Breach
        );
    }

    #[test]
    fn runs_mode_with_few_runs_judges_the_worst_run_and_all_passed() {
        let mut s = runs(4, 120.0, 0, 0);
        s.pass_latencies_ms.push(380.0);
        let v = judge(
            &samples(Mode::Runs { runs: 5 }, &[("j", s.clone())]),
            &[journey("j")],
            &Targets::default(),
        );
        assert_eq!(v.verdict, Verdict::Pass, "{v:#?}");
        assert_eq!(verdict_of(&v, "j", "p95").value, Some(380.0));
        assert_eq!(verdict_of(&v, "j", "availability").message, "all 5 passed");
        assert!(v.notes[0].contains("fewer than 20"), "{:?}", v.notes);

        // One slow run is the worst run: breach.
        s.pass_latencies_ms[0] = 410.0;
        let v = judge(
            &samples(Mode::Runs { runs: 5 }, &[("j", s)]),
            &[journey("j")],
            &Targets::default(),
        );
        assert_eq!(verdict_of(&v, "j", "p95").verdict, Verdict::Breach);
        assert_eq!(v.exit_code, 1);

        // One failed run of 5: not all passed.
        let v = judge(
            &samples(Mode::Runs { runs: 5 }, &[("j", runs(4, 120.0, 1, 0))]),
            &[journey("j")],
            &Targets::default(),
        );
        let a = verdict_of(&v, "j", "availability");
        assert_eq!(
            (a.verdict, a.message.as_str()),
            (Verdict::Breach, "1 of 5 runs failed")
        );
    }

    #[test]
    fn runs_mode_does_not_ask_for_20_samples() {
        let v = judge(
            &samples(Mode::Runs { runs: 3 }, &[("j", runs(3, 100.0, 0, 0))]),
            &[journey("j")],
            &Targets::default(),
        );
        assert_eq!(v.verdict, Verdict::Pass, "{v:#?}");
        // ...but runs that all ended in probe errors judge nothing.
        let v = judge(
            &samples(Mode::Runs { runs: 3 }, &[("j", runs(0, 0.0, 0, 3))]),
            &[journey("j")],
            &Targets::default(),
        );
        assert_eq!(v.exit_code, 2);
    }

    #[test]
    fn feed_push_and_page_alerts_table() {
        let firing = AlertsReading::Firing {
            alerts: vec![FiringAlert {
                alert: "uptime_burn_rate_page".into(),
                labels: BTreeMap::new(),
                value: Some(20.0),
                firing_since: None,
            }],
        };
        let cases: Vec<(&str, GaugeReading, AlertsReading, i32)> = vec![
            (
                "both fine",
                GaugeReading::Value { value: 95.0 },
                AlertsReading::Firing { alerts: vec![] },
                0,
            ),
            (
                "feed push below 95",
                GaugeReading::Value { value: 94.9 },
                AlertsReading::Firing { alerts: vec![] },
                1,
            ),
            (
                "feed push not configured is skipped",
                GaugeReading::NotConfigured,
                AlertsReading::NotJudged,
                0,
            ),
            (
                "feed push unreadable",
                GaugeReading::Unavailable {
                    reason: "down".into(),
                },
                AlertsReading::Firing { alerts: vec![] },
                2,
            ),
            (
                "a page alert firing",
                GaugeReading::Value { value: 99.0 },
                firing,
                1,
            ),
            (
                "alert state unreadable",
                GaugeReading::Value { value: 99.0 },
                AlertsReading::Unavailable { reason: "x".into() },
                2,
            ),
        ];
        for (name, feed, alerts, code) in cases {
            let mut s = samples(window(), &[("j", runs(100, 100.0, 0, 0))]);
            s.feed_push_success_rate = feed;
            s.page_alerts = alerts;
            let v = judge(&s, &[journey("j")], &Targets::default());
            assert_eq!(v.exit_code, code, "{name}: {v:#?}");
        }
    }
}
