//! The verdict on a replay: each PagerDuty incident and Slack post attributed to the incident
//! of the scenario that caused it, detection and resolve times against their bounds, and the
//! totals an on-call engineer cares about (false pages, missed incidents, pages caused by a
//! broken probe, pages never resolved). Printed as a table, or as JSON with stable keys.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::rules::model::{Condition, Labels, Sli};
use crate::settings::Config;

use super::scenario::{Incident, Kind, Scenario};
use super::sim::{Delivered, affected_checks};

/// How long after an incident ends everything it opened must be resolved.
pub const RESOLVE_BOUND: Duration = Duration::from_secs(120);

#[derive(Debug, Clone, Serialize)]
pub struct Expected {
    pub pagerduty: Option<u32>,
    pub slack: Option<u32>,
}

/// One incident's row.
#[derive(Debug, Clone, Serialize)]
pub struct IncidentRow {
    pub name: String,
    pub kind: &'static str,
    pub at: String,
    #[serde(rename = "for")]
    pub length: String,
    pub expected: Expected,
    /// Distinct PagerDuty incidents opened for it.
    pub pagerduty: u32,
    /// Top-level Slack posts made for it.
    pub slack: u32,
    /// The alerts that paged or posted for it.
    pub alerts: Vec<String>,
    /// From the incident's start to its first page (or post, when it should not page).
    pub detect_secs: Option<f64>,
    pub detect_bound_secs: Option<f64>,
    /// How the detection bound was computed.
    pub detect_bound_from: String,
    /// From the incident's end to the resolve of the last thing it opened.
    pub resolve_secs: Option<f64>,
    pub resolve_bound_secs: Option<f64>,
    /// What the resolve bound is: 2 minutes, or a slow burn's own quiet time.
    pub resolve_bound_from: String,
    pub ok: bool,
    /// Why it is not ok, in words.
    pub problems: Vec<String>,
}

/// A PagerDuty incident or Slack post with no scenario incident to blame.
#[derive(Debug, Clone, Serialize)]
pub struct Stray {
    pub receiver: String,
    pub alerts: Vec<String>,
    pub opened_at: DateTime<Utc>,
    pub closed_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Totals {
    pub pagerduty: u32,
    pub slack: u32,
    pub console: u32,
    pub webhook: u32,
    /// PagerDuty incidents no incident of the scenario explains.
    pub false_pages: u32,
    /// Slack posts no incident of the scenario explains.
    pub false_slack: u32,
    /// Slack tickets (alerts of severity `ticket`): facts to report, apart from incidents.
    pub tickets: u32,
    /// Incidents that should have paged (or posted) and did not.
    pub missed: u32,
    /// PagerDuty incidents opened during a probe crash.
    pub probe_caused: u32,
    /// PagerDuty incidents still open at the end of the scenario.
    pub never_resolved: u32,
    pub runs: u64,
    pub evaluations: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub scenario: String,
    pub start: DateTime<Utc>,
    pub duration: String,
    pub incidents: Vec<IncidentRow>,
    pub unattributed: Vec<Stray>,
    /// Slack tickets posted (facts to report: an SLA breach, a budget burning slowly).
    pub tickets: Vec<Stray>,
    pub totals: Totals,
    pub ok: bool,
}

fn secs(d: chrono::Duration) -> f64 {
    d.num_milliseconds() as f64 / 1000.0
}

fn short(d: Duration) -> String {
    crate::config::duration::short(d)
}

/// What bounds the detection of an incident: the slowest affected check's interval, one
/// evaluation, the retest delay, and the `for` of the rule that first spoke.
struct Timing {
    interval: Duration,
    evaluation: Duration,
    retest: Duration,
}

fn timing(cfg: &Config, sc: &Scenario, inc: &Incident) -> Timing {
    let affected = affected_checks(cfg, sc, &inc.checks);
    Timing {
        interval: affected
            .iter()
            .map(|(_, s)| s.interval)
            .max()
            .unwrap_or_default(),
        evaluation: cfg.rules.interval,
        retest: affected
            .iter()
            .filter_map(|(_, s)| s.retry.map(|r| r.delay))
            .max()
            .unwrap_or_default(),
    }
}

/// The earliest time any SLO's page row can fire for a sustained error rate `rate` on the
/// incident's checks, from the burn-rate arithmetic: the SLI's error ratio over a window of
/// length W reaches `e * t / W` after t of errors, so a row (long L, short S, factor f) with
/// budget b fires once `e >= f * b` and t >= f * b * max(L, S) / e. Returns the time and the
/// page rule's name.
fn burn_detection(
    cfg: &Config,
    sc: &Scenario,
    inc: &Incident,
    rate: f64,
) -> Option<(Duration, String)> {
    let simulated = affected_checks(cfg, sc, &[]);
    let locations = if sc.locations.is_empty() {
        1
    } else {
        sc.locations.len()
    };
    let hit_locations = if inc.locations.is_empty() {
        locations
    } else {
        inc.locations.len()
    };
    let labels = |check: &str, outcome: &str| -> Labels {
        // A first attempt: SLIs that count one sample per slot match `attempt: "1"`.
        [("check", check), ("outcome", outcome), ("attempt", "1")]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    let mut best: Option<(Duration, String)> = None;
    for rule in &cfg.rules.rules {
        let Condition::Burn { slo, rows, .. } = &rule.condition else {
            continue;
        };
        if rule
            .route
            .as_deref()
            .is_none_or(|r| !routes_to_pagerduty(cfg, r))
        {
            continue;
        }
        let Some(slo) = cfg.rules.slos.iter().find(|s| &s.name == slo) else {
            continue;
        };
        let (matchers, total, slice) = match &slo.sli {
            Sli::Events {
                matchers, total, ..
            } => (matchers, total, None),
            Sli::TimeSlices {
                matchers,
                total,
                slice,
                ..
            } => (matchers, total, Some(*slice)),
            Sli::Latency { .. } => continue,
        };
        let judged = matchers.and(total);
        let counted: Vec<&(String, crate::checks::Schedule)> = simulated
            .iter()
            .filter(|(c, _)| judged.matches(&labels(c, "fail")))
            .collect();
        let hit: Vec<&&(String, crate::checks::Schedule)> = counted
            .iter()
            .filter(|(c, _)| inc.checks.is_empty() || inc.checks.contains(c))
            .collect();
        if hit.is_empty() {
            continue;
        }
        let per_sec = |s: &crate::checks::Schedule| 1.0 / s.interval.as_secs_f64().max(1.0);
        let error_ratio = match slice {
            // Every run of the affected checks fails with probability `rate`.
            None => {
                let all: f64 =
                    counted.iter().map(|(_, s)| per_sec(s)).sum::<f64>() * locations as f64;
                let bad: f64 =
                    hit.iter().map(|(_, s)| per_sec(s)).sum::<f64>() * hit_locations as f64;
                rate * bad / all
            }
            // A slice is bad when any of its runs fails.
            Some(slice) => {
                let runs: f64 = hit
                    .iter()
                    .map(|(_, s)| per_sec(s) * slice.as_secs_f64())
                    .sum::<f64>()
                    * hit_locations as f64;
                1.0 - (1.0 - rate).powf(runs)
            }
        };
        let budget = slo.budget_ratio();
        for row in rows {
            if error_ratio < row.factor * budget || error_ratio <= 0.0 {
                continue;
            }
            let w = row.long.max(row.short).as_secs_f64();
            let t =
                Duration::from_secs_f64(row.factor * budget * w / error_ratio) + rule.pending_for;
            if best.as_ref().is_none_or(|(b, _)| t < *b) {
                best = Some((t, rule.name.clone()));
            }
        }
    }
    best
}

/// Minute slices: a window of N minutes reads up to N + 1 minutes of runs.
const MINUTE_SLICE: Duration = Duration::from_secs(60);

/// How long the burn-rate alert `rule` needs without burning before it resolves: its SLO's
/// resolve window (or shortest short window) plus its `keep_firing_for`.
fn burn_quiet(cfg: &Config, rule: &str) -> Option<(Duration, String)> {
    let r = cfg.rules.rule(rule)?;
    let Condition::Burn {
        slo,
        rows,
        resolves_early,
    } = &r.condition
    else {
        return None;
    };
    let slo = cfg.rules.slos.iter().find(|s| &s.name == slo)?;
    let window = slo
        .resolve_window
        .filter(|_| *resolves_early)
        .or_else(|| rows.iter().map(|w| w.short).min())?;
    Some((
        window + r.keep_firing_for,
        format!(
            "`{rule}` quiet for its resolve window {} + keep_firing_for {}",
            short(window),
            short(r.keep_firing_for)
        ),
    ))
}

/// The severity of alerts that report a fact (a ticket) rather than an incident.
const TICKET_SEVERITY: &str = "ticket";

/// Whether alerts with `route: NAME` reach a PagerDuty receiver through the routing tree.
fn routes_to_pagerduty(cfg: &Config, route: &str) -> bool {
    let labels: Labels = [("route".to_string(), route.to_string())]
        .into_iter()
        .collect();
    cfg.notify.route.matches(&labels).iter().any(|r| {
        matches!(
            cfg.notify.receiver(&r.receiver),
            Some(crate::notify::config::ReceiverConfig::PagerDuty(_))
        )
    })
}

/// Something a receiver was told, for attribution.
struct Opened<'a> {
    at: DateTime<Utc>,
    closed: Option<DateTime<Utc>>,
    alerts: &'a BTreeSet<String>,
    receiver: &'a str,
}

/// The incident to blame for something opened at `t`: of those whose span (start to end plus
/// `grace`) holds `t`, the one that started last.
fn blame(spans: &[(DateTime<Utc>, DateTime<Utc>)], t: DateTime<Utc>) -> Option<usize> {
    spans
        .iter()
        .enumerate()
        .filter(|(_, (a, b))| *a <= t && t <= *b)
        .max_by_key(|(_, (a, _))| *a)
        .map(|(i, _)| i)
}

pub fn build(cfg: &Config, sc: &Scenario, d: &Delivered) -> Report {
    let start = sc.start;
    let grace_for = |inc: &Incident| {
        let t = timing(cfg, sc, inc);
        let rough = t.interval + t.evaluation + t.retest + Duration::from_secs(600);
        inc.detect_within.unwrap_or(rough).max(RESOLVE_BOUND)
    };
    let spans: Vec<(DateTime<Utc>, DateTime<Utc>)> = sc
        .incidents
        .iter()
        .map(|i| {
            let grace = chrono::Duration::from_std(grace_for(i)).unwrap_or_default();
            (i.starts(start), i.ends(start) + grace)
        })
        .collect();
    let pd: Vec<Opened> = d
        .pagerduty
        .iter()
        .map(|p| Opened {
            at: p.opened_at,
            closed: p.closed_at,
            alerts: &p.alertnames,
            receiver: &p.receiver,
        })
        .collect();
    // Tickets (every alert of the post has severity `ticket`: an SLA breached, a budget burning
    // at 1x or 6x) are facts to report, not incidents: counted apart, never blamed on an
    // incident's resolve time nor counted as false posts.
    let is_ticket = |names: &BTreeSet<String>| {
        !names.is_empty()
            && names.iter().all(|n| {
                cfg.rules
                    .rule(n)
                    .is_some_and(|r| r.severity == TICKET_SEVERITY)
            })
    };
    let tickets: Vec<Stray> = d
        .slack
        .iter()
        .filter(|p| is_ticket(&p.alertnames))
        .map(|p| Stray {
            receiver: p.receiver.clone(),
            alerts: p.alertnames.iter().cloned().collect(),
            opened_at: p.opened_at,
            closed_at: p.resolved_at,
        })
        .collect();
    let slack: Vec<Opened> = d
        .slack
        .iter()
        .filter(|p| !is_ticket(&p.alertnames))
        .map(|p| Opened {
            at: p.opened_at,
            closed: p.resolved_at,
            alerts: &p.alertnames,
            receiver: &p.receiver,
        })
        .collect();
    let mut totals = Totals {
        pagerduty: d.pagerduty.len() as u32,
        slack: slack.len() as u32,
        tickets: tickets.len() as u32,
        console: d.console,
        webhook: d.webhook,
        never_resolved: d.pagerduty.iter().filter(|p| p.closed_at.is_none()).count() as u32,
        runs: d.runs,
        evaluations: d.evaluations,
        ..Totals::default()
    };
    let mut unattributed = Vec::new();
    let mut pd_of: Vec<Vec<&Opened>> = vec![Vec::new(); sc.incidents.len()];
    let mut slack_of: Vec<Vec<&Opened>> = vec![Vec::new(); sc.incidents.len()];
    for (list, into, is_pd) in [(&pd, &mut pd_of, true), (&slack, &mut slack_of, false)] {
        for o in list {
            match blame(&spans, o.at) {
                Some(i) => into[i].push(o),
                None => {
                    if is_pd {
                        totals.false_pages += 1;
                    } else {
                        totals.false_slack += 1;
                    }
                    unattributed.push(Stray {
                        receiver: o.receiver.to_string(),
                        alerts: o.alerts.iter().cloned().collect(),
                        opened_at: o.at,
                        closed_at: o.closed,
                    });
                }
            }
        }
    }
    let mut rows = Vec::new();
    for (i, inc) in sc.incidents.iter().enumerate() {
        let pages = &pd_of[i];
        let posts = &slack_of[i];
        let begins = inc.starts(start);
        let ends = inc.ends(start);
        let mut problems = Vec::new();
        if matches!(inc.kind, Kind::ProbeCrash) {
            totals.probe_caused += pages.len() as u32;
        }
        // What counts as detection: the first page, or the first post when it should not page.
        let pages_expected = inc.expect_pagerduty.unwrap_or(0) > 0;
        let speakers: &Vec<&Opened> = if pages_expected || posts.is_empty() {
            pages
        } else {
            posts
        };
        let first = speakers.iter().min_by_key(|o| o.at);
        let detect_secs = first.map(|o| secs(o.at - begins));
        let t = timing(cfg, sc, inc);
        let should_speak = pages_expected || inc.expect_slack.unwrap_or(0) > 0;
        // A slow partial error rate cannot be told from a recovered target in 2 minutes (at 2 %
        // errors whole minutes pass without a failure): its page resolves once its SLO saw
        // `resolve_window` + `keep_firing_for` without burning. That is its bound.
        let mut resolve_limit = (RESOLVE_BOUND, "2 min after recovery".to_string());
        if let Kind::ErrorRate { rate } = inc.kind
            && let Some((_, rule)) = burn_detection(cfg, sc, inc, rate)
            && let Some((quiet, text)) = burn_quiet(cfg, &rule)
        {
            let b = quiet + MINUTE_SLICE + cfg.rules.interval;
            if b > RESOLVE_BOUND {
                resolve_limit = (b, format!("{text} + a minute slice + evaluation"));
            }
        }
        let (bound, from) = if let Some(b) = inc.detect_within {
            (Some(b), "expect.detect_within".to_string())
        } else if let Kind::ErrorRate { rate } = inc.kind {
            match burn_detection(cfg, sc, inc, rate) {
                Some((b, rule)) => (
                    Some(b + t.interval + t.evaluation + t.retest),
                    format!(
                        "burn rate of `{rule}` at {:.1}% errors + interval {} + evaluation {} + retest {}",
                        rate * 100.0,
                        short(t.interval),
                        short(t.evaluation),
                        short(t.retest)
                    ),
                ),
                None => (
                    None,
                    format!("no SLO page row fires at {:.1}% errors", rate * 100.0),
                ),
            }
        } else if should_speak {
            // Any alert of the first page may have opened it: the bound is the quickest one's.
            let rule_for = first
                .into_iter()
                .flat_map(|o| o.alerts.iter())
                .filter_map(|a| cfg.rules.rule(a))
                .map(|r| (r.pending_for, r.name.clone()))
                .min();
            let (pending, named) = match rule_for {
                Some((p, n)) => (p, format!("`for` {} of `{n}`", short(p))),
                None => (Duration::ZERO, "no rule spoke".to_string()),
            };
            (
                Some(pending + t.interval + t.evaluation + t.retest),
                format!(
                    "interval {} + {named} + evaluation {} + retest {}",
                    short(t.interval),
                    short(t.evaluation),
                    short(t.retest)
                ),
            )
        } else {
            (None, "not expected to page".to_string())
        };
        let counted = |got: usize, want: Option<u32>, what: &str, problems: &mut Vec<String>| {
            if let Some(w) = want
                && got as u32 != w
            {
                problems.push(format!("{got} {what}, expected {w}"));
            }
        };
        counted(
            pages.len(),
            inc.expect_pagerduty,
            "PagerDuty incidents",
            &mut problems,
        );
        counted(posts.len(), inc.expect_slack, "Slack posts", &mut problems);
        let missed = (pages_expected && pages.is_empty())
            || (inc.expect_slack.unwrap_or(0) > 0 && posts.is_empty());
        if missed {
            totals.missed += 1;
        }
        if should_speak
            && let (Some(d), Some(b)) = (detect_secs, bound)
            && d > b.as_secs_f64()
        {
            problems.push(format!(
                "detected after {d:.0} s, bound {:.0} s",
                b.as_secs_f64()
            ));
        }
        // Resolve: everything attributed must be closed; the last close counts.
        let opened: Vec<&&Opened> = pages.iter().chain(posts.iter()).collect();
        let (resolve_secs, resolve_bound) = if opened.is_empty() {
            (None, None)
        } else if opened.iter().any(|o| o.closed.is_none()) {
            problems.push("not resolved by the end of the scenario".into());
            (None, Some(resolve_limit.0.as_secs_f64()))
        } else {
            let last = opened.iter().filter_map(|o| o.closed).max().unwrap_or(ends);
            let r = secs(last - ends);
            if r > resolve_limit.0.as_secs_f64() {
                problems.push(format!(
                    "resolved {r:.0} s after recovery, bound {:.0} s ({})",
                    resolve_limit.0.as_secs_f64(),
                    resolve_limit.1
                ));
            }
            (Some(r), Some(resolve_limit.0.as_secs_f64()))
        };
        let alerts: BTreeSet<String> = opened
            .iter()
            .flat_map(|o| o.alerts.iter().cloned())
            .collect();
        rows.push(IncidentRow {
            name: inc.name.clone(),
            kind: inc.kind.as_str(),
            at: short(inc.at),
            length: short(inc.length),
            expected: Expected {
                pagerduty: inc.expect_pagerduty,
                slack: inc.expect_slack,
            },
            pagerduty: pages.len() as u32,
            slack: posts.len() as u32,
            alerts: alerts.into_iter().collect(),
            detect_secs,
            detect_bound_secs: bound.map(|b| b.as_secs_f64()),
            detect_bound_from: from,
            resolve_bound_from: resolve_limit.1,
            resolve_secs,
            resolve_bound_secs: resolve_bound,
            ok: problems.is_empty(),
            problems,
        });
    }
    let clean = totals.false_pages == 0
        && totals.false_slack == 0
        && totals.missed == 0
        && totals.probe_caused == 0
        && totals.never_resolved == 0;
    Report {
        scenario: sc.doc.file.clone(),
        start,
        duration: short(sc.duration),
        ok: clean && rows.iter().all(|r| r.ok),
        incidents: rows,
        unattributed,
        tickets,
        totals,
    }
}

fn opt(v: Option<f64>) -> String {
    v.map(|v| format!("{v:.0}")).unwrap_or_else(|| "-".into())
}

fn expect(v: Option<u32>) -> String {
    v.map(|v| v.to_string()).unwrap_or_else(|| "any".into())
}

/// The report as a table a person reads.
pub fn render(r: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "replay of {} from {} for {}: {} runs, {} evaluations",
        r.scenario,
        r.start.to_rfc3339(),
        r.duration,
        r.totals.runs,
        r.totals.evaluations
    );
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "{:<16} {:<13} {:>7} {:>4} {:>5} {:>12} {:>12}  {:<7} alerts",
        "incident", "kind", "expect", "PD", "slack", "detect/bound", "resolve/bnd", "verdict"
    );
    for i in &r.incidents {
        let _ = writeln!(
            out,
            "{:<16} {:<13} {:>7} {:>4} {:>5} {:>12} {:>12}  {:<7} {}",
            i.name,
            i.kind,
            format!(
                "{}/{}",
                expect(i.expected.pagerduty),
                expect(i.expected.slack)
            ),
            i.pagerduty,
            i.slack,
            format!("{}/{}", opt(i.detect_secs), opt(i.detect_bound_secs)),
            format!("{}/{}", opt(i.resolve_secs), opt(i.resolve_bound_secs)),
            if i.ok { "ok" } else { "FAIL" },
            i.alerts.join(", ")
        );
        for p in &i.problems {
            let _ = writeln!(out, "{:<16}   - {p}", "");
        }
    }
    if !r.unattributed.is_empty() {
        let _ = writeln!(out);
        let _ = writeln!(out, "not caused by any incident:");
        for s in &r.unattributed {
            let _ = writeln!(
                out,
                "  {} at {} ({}): {}",
                s.receiver,
                s.opened_at.to_rfc3339(),
                s.closed_at
                    .map(|c| format!("closed {}", c.to_rfc3339()))
                    .unwrap_or_else(|| "never closed".into()),
                s.alerts.join(", ")
            );
        }
    }
    if !r.tickets.is_empty() {
        let _ = writeln!(out);
        let _ = writeln!(out, "tickets (facts to report, not incidents):");
        for s in &r.tickets {
            let _ = writeln!(
                out,
                "  {} at {}: {}",
                s.receiver,
                s.opened_at.to_rfc3339(),
                s.alerts.join(", ")
            );
        }
    }
    let t = &r.totals;
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "totals: {} PagerDuty incidents, {} Slack posts, {} tickets, {} console, {} webhook; false pages {} (+{} Slack), missed {}, probe-caused {}, never resolved {}",
        t.pagerduty,
        t.slack,
        t.tickets,
        t.console,
        t.webhook,
        t.false_pages,
        t.false_slack,
        t.missed,
        t.probe_caused,
        t.never_resolved
    );
    let _ = writeln!(out, "verdict: {}", if r.ok { "ok" } else { "FAIL" });
    out
}
