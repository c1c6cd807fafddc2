//! Evaluator, SLO and loader tests, all with explicit times (no clock, no sleeps).

use std::path::{Path, PathBuf};

use chrono::{DateTime, TimeZone, Utc};

use super::eval::fmt_num;
use super::model::*;
use super::slo::{budget_remaining, burn_rate, error_ratio};
use super::*;
use crate::metrics::catalog::{CHECK_LATENCY, CHECK_RUNS, FEED_PUSH_QUEUE_DEPTH, PROBE_UNHEALTHY};

fn t(minute: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap() + chrono::Duration::minutes(minute)
}

fn rules(yaml: &str) -> RuleSet {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("rules.yaml");
    std::fs::write(&f, yaml).unwrap();
    let (set, errors) = load_files(&[f]);
    assert!(errors.is_empty(), "{errors:?}");
    set
}

/// A queue-depth rule (gauge, no labels) with extra settings.
fn gauge_rule(extra: &str) -> RuleSet {
    rules(&format!(
        "rules:\n  - alert: deep\n    metric: feed_push_queue_depth\n    aggregate: last\n    op: \">\"\n    threshold: 10\n{extra}"
    ))
}

/// Short names for what an evaluation returned.
fn kinds(ts: &[Transition]) -> String {
    ts.iter()
        .map(|t| {
            let p = |p: Phase| match p {
                Phase::Inactive => "I",
                Phase::Pending => "P",
                Phase::Firing => "F",
                Phase::Resolved => "R",
            };
            format!("{}{}", p(t.from), p(t.to))
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// Feeds one gauge value per minute (`None`: stale) and evaluates after each.
fn run_gauge(set: &RuleSet, values: &[Option<f64>]) -> Vec<String> {
    let mut src = MemorySource::new();
    let mut state = State::default();
    let mut out = Vec::new();
    for (i, v) in values.iter().enumerate() {
        src.push_opt(&FEED_PUSH_QUEUE_DEPTH, &[], t(i as i64), *v);
        let ts = evaluate(set, &src, &mut state, t(i as i64));
        out.push(kinds(&ts));
    }
    out
}

const H: Option<f64> = Some(20.0); // over the threshold
const L: Option<f64> = Some(5.0); // healthy
const N: Option<f64> = None; // stale: no data

#[test]
fn state_machine_table() {
    // (name, extra rule settings, values per minute, transitions per minute)
    type Case<'a> = (&'a str, &'a str, &'a [Option<f64>], &'a [&'a str]);
    let cases: &[Case] = &[
        (
            "for 0 fires at once and resolves",
            "",
            &[H, H, L],
            &["IF", "", "FR"],
        ),
        (
            "pending for 2m then firing",
            "    for: 2m\n",
            &[H, H, H, L],
            &["IP", "", "PF", "FR"],
        ),
        (
            "a pending alert that clears is dropped silently",
            "    for: 2m\n",
            &[H, L, H, H, H],
            &["IP", "", "IP", "", "PF"],
        ),
        (
            "keep_firing_for holds a firing alert",
            "    keep_firing_for: 2m\n",
            &[H, L, L, L],
            &["IF", "", "FR", ""],
        ),
        (
            "keep_firing_for restarts when the condition returns",
            "    keep_firing_for: 2m\n",
            &[H, L, H, L, L],
            &["IF", "", "", "", "FR"],
        ),
        (
            "recover_after needs consecutive healthy evaluations",
            "    recover_after: 3\n",
            &[H, L, L, H, L, L, L],
            &["IF", "", "", "", "", "", "FR"],
        ),
        (
            "no data, policy alert",
            "    no_data: { policy: alert, message: queue depth unknown }\n",
            &[N, N, L],
            &["IF", "", "FR"],
        ),
        (
            "no data, policy ok resolves",
            "    no_data: { policy: ok }\n",
            &[H, N],
            &["IF", "FR"],
        ),
        (
            "no data, policy keep_state changes nothing",
            "    no_data: { policy: keep_state }\n",
            &[H, N, N, L],
            &["IF", "", "", "FR"],
        ),
        (
            "no data with keep_state does not start an alert",
            "    no_data: { policy: keep_state }\n",
            &[N, N],
            &["", ""],
        ),
    ];
    for (name, extra, values, expected) in cases {
        let got = run_gauge(&gauge_rule(extra), values);
        assert_eq!(got, *expected, "case: {name}");
    }
}

#[test]
fn no_data_alert_carries_its_message() {
    let set = gauge_rule(
        "    no_data: { policy: alert, message: queue depth unknown }\n    annotations: { summary: \"depth {{ value }}\" }\n",
    );
    let src = MemorySource::new();
    let mut state = State::default();
    let ts = evaluate(&set, &src, &mut state, t(0));
    assert_eq!(ts.len(), 1);
    assert_eq!(ts[0].annotations["summary"], "queue depth unknown");
    assert_eq!(ts[0].annotations["no_data"], "queue depth unknown");
    assert_eq!(ts[0].value, None);
}

#[test]
fn annotations_are_rendered_with_value_threshold_and_labels() {
    let set = rules(
        "rules:
  - alert: probe
    metric: synmon.probe.unhealthy
    by: [check, location]
    aggregate: last
    op: \">=\"
    threshold: 1
    route: slack-alerts
    annotations:
      summary: \"{{ labels.check }}@{{ labels.location }}: {{ value }} >= {{ threshold }}\"
      runbook_url: https://runbooks.rvp.test/probe
",
    );
    let mut src = MemorySource::new();
    src.push(
        &PROBE_UNHEALTHY,
        &[("check", "align_category"), ("location", "eu")],
        t(0),
        1.0,
    );
    src.push(
        &PROBE_UNHEALTHY,
        &[("check", "feed_push"), ("location", "eu")],
        t(0),
        0.0,
    );
    let mut state = State::default();
    let ts = evaluate(&set, &src, &mut state, t(0));
    assert_eq!(kinds(&ts), "IF");
    assert_eq!(ts[0].annotations["summary"], "align_category@eu: 1 >= 1");
    assert_eq!(
        ts[0].annotations["runbook_url"],
        "https://runbooks.rvp.test/probe"
    );
    assert_eq!(ts[0].route.as_deref(), Some("slack-alerts"));
    assert_eq!(ts[0].labels["check"], "align_category");
    assert_eq!(ts[0].active_at, t(0));
}

#[test]
fn downtime_does_not_count_toward_for_and_active_at_survives_a_restart() {
    let set = gauge_rule("    for: 5m\n");
    let mut src = MemorySource::new();
    let mut state = State::default();
    for m in 0..=2 {
        src.push(&FEED_PUSH_QUEUE_DEPTH, &[], t(m), 20.0);
    }
    assert_eq!(kinds(&evaluate(&set, &src, &mut state, t(0))), "IP");
    assert_eq!(kinds(&evaluate(&set, &src, &mut state, t(1))), "");
    // Persist and restore, as the daemon does through the store.
    let json = serde_json::to_string(&state).unwrap();
    let mut state: State = serde_json::from_str(&json).unwrap();
    // 30 minutes down: only one interval counts; 2 of 5 minutes accrued.
    src.push(&FEED_PUSH_QUEUE_DEPTH, &[], t(31), 20.0);
    assert_eq!(kinds(&evaluate(&set, &src, &mut state, t(31))), "");
    let a = state.alerts.values().next().unwrap();
    assert_eq!(
        (a.phase, a.active_at, a.pending_ms),
        (Phase::Pending, t(0), 120_000)
    );
    for m in 32..=33 {
        src.push(&FEED_PUSH_QUEUE_DEPTH, &[], t(m), 20.0);
        assert_eq!(kinds(&evaluate(&set, &src, &mut state, t(m))), "");
    }
    src.push(&FEED_PUSH_QUEUE_DEPTH, &[], t(34), 20.0);
    let ts = evaluate(&set, &src, &mut state, t(34));
    assert_eq!(kinds(&ts), "PF");
    assert_eq!(ts[0].active_at, t(0));
}

#[test]
fn a_firing_alert_stays_firing_after_a_restart_without_a_new_transition() {
    let set = gauge_rule("");
    let mut src = MemorySource::new();
    let mut state = State::default();
    src.push(&FEED_PUSH_QUEUE_DEPTH, &[], t(0), 20.0);
    assert_eq!(kinds(&evaluate(&set, &src, &mut state, t(0))), "IF");
    let mut restored: State =
        serde_json::from_str(&serde_json::to_string(&state).unwrap()).unwrap();
    assert_eq!(restored, state);
    src.push(&FEED_PUSH_QUEUE_DEPTH, &[], t(10), 20.0);
    assert_eq!(kinds(&evaluate(&set, &src, &mut restored, t(10))), "");
    // And the resolve is not lost either.
    src.push(&FEED_PUSH_QUEUE_DEPTH, &[], t(11), 1.0);
    assert_eq!(kinds(&evaluate(&set, &src, &mut restored, t(11))), "FR");
}

#[test]
fn flapping_alert_is_held_firing_until_stable() {
    // At most 3 changes (firing/resolved) per hour; the 4th would resolve: held instead.
    let set = gauge_rule("    flap: { max_changes: 3, window: 1h }\n");
    let values = [H, L, H, L, H, L, L];
    let got = run_gauge(&set, &values);
    assert_eq!(got, ["IF", "FR", "IF", "", "", "", ""]);
    let mut src = MemorySource::new();
    let mut state = State::default();
    for (i, v) in values.iter().enumerate() {
        src.push_opt(&FEED_PUSH_QUEUE_DEPTH, &[], t(i as i64), *v);
        evaluate(&set, &src, &mut state, t(i as i64));
    }
    let a = state.alerts.values().next().unwrap();
    assert!(a.flapping);
    assert_eq!(
        a.annotations["flapping"],
        "3 state changes in 1h; held firing until healthy for 1h"
    );
    // Last true at minute 4; healthy for a whole hour at minute 64: resolved then, not before.
    for m in 7..64 {
        src.push(&FEED_PUSH_QUEUE_DEPTH, &[], t(m), 5.0);
        assert_eq!(
            kinds(&evaluate(&set, &src, &mut state, t(m))),
            "",
            "minute {m}"
        );
    }
    src.push(&FEED_PUSH_QUEUE_DEPTH, &[], t(64), 5.0);
    assert_eq!(kinds(&evaluate(&set, &src, &mut state, t(64))), "FR");
}

fn latency_quorum() -> RuleSet {
    rules(
        "rules:
  - alert: slow
    metric: synmon.check.latency
    by: [check]
    aggregate: p50
    window: 5m
    op: \">\"
    threshold: 400
    min_failing_locations: 2
",
    )
}

#[test]
fn quorum_needs_n_failing_locations() {
    let set = latency_quorum();
    type Case<'a> = (&'a str, &'a [(&'a str, f64)], &'a str);
    let cases: &[Case] = &[
        (
            "one of three failing",
            &[("eu", 900.0), ("us", 100.0), ("ap", 100.0)],
            "",
        ),
        (
            "two of three failing",
            &[("eu", 900.0), ("us", 500.0), ("ap", 100.0)],
            "IF",
        ),
        (
            "all failing",
            &[("eu", 900.0), ("us", 500.0), ("ap", 450.0)],
            "IF",
        ),
    ];
    for (name, locs, expected) in cases {
        let mut src = MemorySource::new();
        for (loc, ms) in *locs {
            let labels = [
                ("check", "align_category"),
                ("location", loc),
                ("outcome", "pass"),
                ("target", "staging"),
            ];
            src.push(&CHECK_LATENCY, &labels, t(0), *ms);
        }
        let mut state = State::default();
        let ts = evaluate(&set, &src, &mut state, t(0));
        assert_eq!(kinds(&ts), *expected, "case: {name}");
        if !ts.is_empty() {
            // The value is the worst failing location's.
            assert_eq!(ts[0].value, Some(900.0), "case: {name}");
            assert!(
                ts[0].annotations["failing_locations"].contains("eu, us"),
                "case: {name}"
            );
        }
    }
}

fn runs(src: &mut MemorySource, check: &str, outcome: &str, at: DateTime<Utc>, total: f64) {
    src.push(
        &CHECK_RUNS,
        &[
            ("attempt", "1"),
            ("check", check),
            ("location", "eu"),
            ("outcome", outcome),
        ],
        at,
        total,
    );
}

#[test]
fn error_rate_ratio_excludes_probe_errors() {
    let set = rules(
        "rules:
  - alert: errors
    metric: synmon.check.runs
    by: [check]
    aggregate: ratio
    window: 5m
    numerator: { outcome: fail }
    denominator: { outcome: \"=~pass|fail\" }
    op: \">\"
    threshold: 0.05
",
    );
    let mut src = MemorySource::new();
    // In the 5 minutes up to minute 10: 90 passes, 10 fails, 500 probe errors.
    for (outcome, before, after) in [
        ("pass", 100.0, 190.0),
        ("fail", 3.0, 13.0),
        ("error", 0.0, 500.0),
    ] {
        runs(&mut src, "align_category", outcome, t(5), before);
        runs(&mut src, "align_category", outcome, t(10), after);
    }
    let mut state = State::default();
    let ts = evaluate(&set, &src, &mut state, t(10));
    assert_eq!(kinds(&ts), "IF");
    assert_eq!(ts[0].value, Some(0.1));
}

#[test]
fn fingerprints_are_stable() {
    let mut a = Labels::new();
    a.insert("check".into(), "align_category".into());
    a.insert("alertname".into(), "slow".into());
    let mut b = Labels::new();
    b.insert("alertname".into(), "slow".into());
    b.insert("check".into(), "align_category".into());
    assert_eq!(fingerprint("slow", &a), fingerprint("slow", &b));
    // Pinned: a change here re-pages every active alert after an upgrade.
    assert_eq!(fingerprint("slow", &a), "ada477520483f5a5");
    assert_eq!(fingerprint("", &Labels::new()), "af64724c8602eb6e");
    assert_ne!(fingerprint("slow", &a), fingerprint("slow2", &a));
}

fn availability() -> RuleSet {
    rules(
        "slos:
  - name: avail
    objective: 99.9
    sli:
      events:
        metric: synmon.check.runs
        good: { outcome: pass }
        total: { outcome: \"=~pass|fail\" }
    routes: { page: pagerduty, ticket: slack-alerts }
",
    )
}

#[test]
fn workbook_factors_follow_from_budget_share_and_period() {
    let set = availability();
    let slo = &set.slos[0];
    let f = |rows: &[BurnWindow]| {
        rows.iter()
            .map(|r| (r.factor, r.long.as_secs() / 60, r.short.as_secs() / 60))
            .collect::<Vec<_>>()
    };
    assert_eq!(f(&slo.page), [(14.4, 60, 5), (6.0, 360, 30)]);
    assert_eq!(f(&slo.ticket), [(1.0, 4320, 360)]);
    let names: Vec<&str> = set.rules.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["avail_burn_rate_page", "avail_burn_rate_ticket"]);
}

/// 100 judged runs a minute; `bad` of them fail from minute `from` on (points at every minute).
fn traffic(src: &mut MemorySource, minutes: std::ops::RangeInclusive<i64>, from: i64, bad: f64) {
    let (mut pass, mut fail) = (0.0, 0.0);
    for m in minutes {
        let b = if m >= from { bad } else { 0.0 };
        pass += 100.0 - b;
        fail += b;
        runs(src, "align_category", "pass", t(m), pass);
        runs(src, "align_category", "fail", t(m), fail);
    }
}

#[test]
fn burn_rate_page_fires_at_the_workbook_detection_time() {
    // 99.9 % over 30 d: budget 0.001. A constant 2 % error ratio burns at 0.02 / 0.001 = 20.
    // Healthy traffic (100 runs/min) until minute 0, then 2 of every 100 runs fail.
    // At the evaluation k minutes later, the 1 h window holds k bad minutes of 60:
    //   ratio_1h = 0.02 * k / 60 > 0.0144 (= 14.4 x 0.001)  <=>  k > 43.2  => k = 44.
    // The 5 m window: 0.02 * min(k, 5) / 5 > 0.0144  <=>  k >= 4, long satisfied by then.
    // The 6 h / 30 m row needs 0.02 * k / 360 > 0.006 <=> k > 108: later. So: minute 44.
    // (Workbook detection time for burn 20: 1h x 14.4 / 20 = 43.2 min.)
    let set = availability();
    let mut src = MemorySource::new();
    traffic(&mut src, -180..=120, 1, 2.0);
    let mut state = State::default();
    let mut first = None;
    for k in 0..=120 {
        let ts = evaluate(&set, &src, &mut state, t(k));
        if first.is_none() && ts.iter().any(|t| t.rule == "avail_burn_rate_page") {
            first = Some((k, ts));
        }
    }
    let (k, ts) = first.expect("the page fires");
    assert_eq!(k, 44);
    let page = ts
        .iter()
        .find(|t| t.rule == "avail_burn_rate_page")
        .unwrap();
    assert_eq!(kinds(std::slice::from_ref(page)), "IF");
    // burn_1h = (0.02 * 44 / 60) / 0.001 = 14.666...
    assert_eq!(fmt_num(page.value.unwrap()), "14.6667");
    assert_eq!(
        page.annotations["summary"],
        "SLO avail is burning its error budget at 14.6667x over 1h (limit 14.4x)"
    );
    assert_eq!(page.route.as_deref(), Some("pagerduty"));
}

#[test]
fn burn_rate_from_an_empty_history_fires_at_the_first_evaluation_with_data() {
    // No history at all: every window holds only the new traffic, whose ratio is 0.02 from
    // the first minute (burn 20 > 14.4 on both 1h and 5m), so the page fires at minute 1.
    let set = availability();
    let mut src = MemorySource::new();
    traffic(&mut src, 1..=10, 1, 2.0);
    let mut state = State::default();
    assert_eq!(kinds(&evaluate(&set, &src, &mut state, t(0))), "");
    let ts = evaluate(&set, &src, &mut state, t(1));
    assert_eq!(
        ts.iter().map(|t| t.rule.as_str()).collect::<Vec<_>>(),
        ["avail_burn_rate_page", "avail_burn_rate_ticket"]
    );
    assert_eq!(fmt_num(ts[0].value.unwrap()), "20");
}

#[test]
fn budget_remaining_and_time_to_exhaustion_by_hand() {
    let set = availability();
    let slo = &set.slos[0];
    // 30 days, 100 runs/min = 4,320,000 runs; budget 0.1 % = 4,320 failures.
    // 1,080 failures in the last hour (18 per minute for 60 minutes):
    //   ratio over 30d = 1080 / 4,320,000 = 0.00025; remaining = 1 - 0.00025/0.001 = 0.75.
    //   burn_1h = (18/100) / 0.001 = 180; exhaustion = 0.75 x 30d / 180 = 3h (10,800 s).
    let mut src = MemorySource::new();
    let start = -30 * 24 * 60 + 1;
    traffic(&mut src, start..=0, -59, 18.0);
    let ratio = error_ratio(&slo.sli, &src, slo.period, t(0)).unwrap();
    assert!((ratio - 0.00025).abs() < 1e-12, "{ratio}");
    assert!((budget_remaining(slo, Some(ratio)) - 0.75).abs() < 1e-9);
    assert!(
        (burn_rate(slo, &src, std::time::Duration::from_secs(3600), t(0)).unwrap() - 180.0).abs()
            < 1e-9
    );
    let st = &slo_status(&set.slos, &src, t(0))[0];
    assert!((st.error_budget_remaining - 0.75).abs() < 1e-9);
    assert_eq!(st.time_to_exhaustion_secs, Some(10_800));
    assert_eq!(st.period, "30days");
    let windows: Vec<&str> = st.burn_rates.iter().map(|b| b.window.as_str()).collect();
    assert_eq!(windows, ["5m", "30m", "1h", "6h", "3days"]);
    // Overspent: 6,480 failures (1.5x the budget) leave -0.5, exhausted now.
    assert!((budget_remaining(slo, Some(0.0015)) + 0.5).abs() < 1e-9);
}

#[test]
fn latency_and_time_slice_slis() {
    let set = rules(
        "slos:
  - name: fast
    objective: 95
    sli:
      latency: { metric: synmon.check.latency, threshold_ms: 400 }
  - name: up
    objective: 99.9
    sli:
      time_slices: { metric: synmon.check.runs, good: { outcome: pass }, total: { outcome: \"=~pass|fail\" }, slice: 1m }
",
    );
    let mut src = MemorySource::new();
    let l = [
        ("check", "a"),
        ("location", "eu"),
        ("outcome", "pass"),
        ("target", "s"),
    ];
    for (i, ms) in [100.0, 200.0, 399.0, 400.0, 401.0, 900.0, 150.0, 250.0]
        .iter()
        .enumerate()
    {
        src.push(
            &CHECK_LATENCY,
            &l,
            t(0) + chrono::Duration::seconds(i as i64),
            *ms,
        );
    }
    let w = std::time::Duration::from_secs(300);
    // 2 of 8 samples over 400 ms (401, 900).
    assert_eq!(error_ratio(&set.slos[0].sli, &src, w, t(1)), Some(0.25));
    // 5 one-minute slices with runs; the one ending at minute 3 has a failure: 1 bad of 5.
    for (m, fail) in [(1, 0.0), (2, 0.0), (3, 1.0), (4, 1.0), (5, 1.0)] {
        runs(&mut src, "align_category", "pass", t(m), 100.0 * m as f64);
        runs(&mut src, "align_category", "fail", t(m), fail);
    }
    assert_eq!(error_ratio(&set.slos[1].sli, &src, w, t(5)), Some(0.2));
}

#[test]
fn matchers_follow_prometheus_semantics() {
    let l: Labels = [("check".to_string(), "align_category".to_string())].into();
    let m = |v: &str| Matcher::parse("check", v).unwrap().matches(&l);
    assert!(m("align_category"));
    assert!(!m("!=align_category"));
    assert!(m("=~align_.*"));
    assert!(!m("=~align")); // anchored
    assert!(m("!~feed_.*"));
    assert!(Matcher::parse("x", "").unwrap().matches(&Labels::new())); // absent = ""
}

#[test]
fn value_lists_expand_like_promtool() {
    use super::unittest::expand_values;
    assert_eq!(
        expand_values("1 2 _").unwrap(),
        [Some(1.0), Some(2.0), None]
    );
    assert_eq!(
        expand_values("1+1x3").unwrap(),
        [Some(1.0), Some(2.0), Some(3.0), Some(4.0)]
    );
    assert_eq!(
        expand_values("5-1x2").unwrap(),
        [Some(5.0), Some(4.0), Some(3.0)]
    );
    assert_eq!(
        expand_values("7x2 _x1").unwrap(),
        [Some(7.0), Some(7.0), Some(7.0), None, None]
    );
    assert!(expand_values("1+x").is_err());
}

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn the_seed_alerts_load_and_route_as_promised() {
    let (set, errors) = load_dir(&repo().join("alerts"));
    assert!(errors.is_empty(), "{errors:?}");
    let route = |n: &str| {
        set.rule(n)
            .and_then(|r| r.route.clone())
            .unwrap_or_default()
    };
    assert_eq!(route("feed_approval_rate_low"), "slack-alerts");
    assert_eq!(route("category_mapping_coverage_low"), "slack-alerts");
    assert_eq!(route("oauth_error_rate_high"), "slack-critical");
    assert_eq!(route("check_error_rate_high"), "pagerduty");
    assert_eq!(route("api_latency_p95_high"), "slack-alerts");
    assert_eq!(route("feed_push_queue_depth_high"), "slack-alerts");
    // The SLA's 30-day breach is a ticket to report, not a page held open for a month.
    assert_eq!(route("uptime_below_sla"), "slack-alerts");
    assert_eq!(route("target_down"), "pagerduty");
    assert_eq!(route("check_failing"), "pagerduty");
    assert_eq!(route("journey_latency_p95_high"), "slack-alerts");
    assert_eq!(route("swis_preview_p95_high"), "slack-alerts");
    assert_eq!(route("feed_push_success_low"), "slack-alerts");
    // A broken probe is never paged as a target outage.
    assert_ne!(route("synmon_probe_unhealthy"), "pagerduty");
    assert_eq!(set.slos.len(), 3);
}

#[test]
fn the_seed_alert_tests_pass() {
    let dir = repo().join("alerts/tests");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    assert!(!files.is_empty());
    for f in files {
        let r = unittest::run_file(&f).unwrap_or_else(|e| panic!("{}: {e:?}", f.display()));
        assert!(r.tests > 0, "{}", f.display());
        assert!(r.failures.is_empty(), "{}", r.failures.join("\n"));
    }
}

#[test]
fn a_stopped_evaluation_says_so_and_a_running_one_finishes() {
    let mut set = gauge_rule("");
    set.rules.push(set.rules[0].clone());
    set.slos = availability().slos;
    let mut src = MemorySource::new();
    src.push(&FEED_PUSH_QUEUE_DEPTH, &[], t(0), 20.0);
    // Asked before every rule: stopping after the first rule gives up at the second.
    let asked = std::cell::Cell::new(0);
    let stop_second = || {
        asked.set(asked.get() + 1);
        asked.get() > 1
    };
    let mut state = State::default();
    assert_eq!(
        evaluate_until(&set, &src, &mut state, t(0), &stop_second),
        Err(Stopped)
    );
    assert_eq!(asked.get(), 2);
    assert_eq!(
        slo_status_until(&set.slos, &src, t(0), &|| true),
        Err(Stopped)
    );
    // Never stopped: the same as `evaluate`.
    let mut a = State::default();
    let mut b = State::default();
    assert_eq!(
        evaluate_until(&set, &src, &mut a, t(0), &|| false),
        Ok(evaluate(&set, &src, &mut b, t(0)))
    );
    assert_eq!(a, b);
    assert_eq!(
        slo_status_until(&set.slos, &src, t(0), &|| false),
        Ok(slo_status(&set.slos, &src, t(0)))
    );
}

// ---- resolve_window -------------------------------------------------------------------------

/// Cumulative pass and fail runs of one check, 10 runs a minute, failing in `bad` minutes.
fn outage(src: &mut MemorySource, minutes: std::ops::RangeInclusive<i64>, bad: &[i64]) {
    let (mut pass, mut fail) = (0.0, 0.0);
    for m in minutes {
        if bad.contains(&m) {
            fail += 10.0;
        } else {
            pass += 10.0;
        }
        runs(src, "align_category", "pass", t(m), pass);
        runs(src, "align_category", "fail", t(m), fail);
    }
}

fn error_rate_rule(extra: &str) -> RuleSet {
    rules(&format!(
        "rules:
  - alert: errors
    metric: synmon.check.runs
    by: [check]
    aggregate: ratio
    window: 5m
    numerator: {{ outcome: fail }}
    denominator: {{ outcome: \"=~pass|fail\" }}
    op: \">\"
    threshold: 0.5
    annotations: {{ summary: \"{{{{ labels.check }}}}: {{{{ value }}}} over {{{{ window }}}}\" }}
{extra}"
    ))
}

/// The minute of every transition over minutes 0..=15, as `minute:kind`.
fn timeline(set: &RuleSet, src: &MemorySource) -> Vec<String> {
    let mut state = State::default();
    (0..=15)
        .flat_map(|m| {
            evaluate(set, src, &mut state, t(m))
                .iter()
                .map(|tr| format!("{m}:{}", kinds(std::slice::from_ref(tr))))
                .collect::<Vec<_>>()
        })
        .collect()
}

#[test]
fn resolve_window_resolves_a_firing_alert_on_the_shorter_window() {
    let mut src = MemorySource::new();
    // Down for minutes 1-4, healthy from minute 5 on; 3 bad minutes of 5 fire it (minute 3).
    outage(&mut src, -10..=15, &[1, 2, 3, 4]);
    // Over 5 minutes the failures outweigh the passes until minute 7: resolved then.
    assert_eq!(timeline(&error_rate_rule(""), &src), ["3:IF", "7:FR"]);
    // Judged over the last minute once firing: the first healthy minute resolves it.
    let set = error_rate_rule("    resolve_window: 1m\n");
    assert_eq!(timeline(&set, &src), ["3:IF", "5:FR"]);
    // While firing, the value and `{{ window }}` are the resolve window's.
    let mut state = State::default();
    evaluate(&set, &src, &mut state, t(3));
    let fired = &state.alerts.values().next().unwrap().annotations;
    assert_eq!(fired["summary"], "align_category: 0.6 over 5m");
    evaluate(&set, &src, &mut state, t(4));
    let a = state.alerts.values().next().unwrap();
    assert_eq!(a.annotations["summary"], "align_category: 1 over 1m");
    assert_eq!(a.annotations["window"], "1m");
}

#[test]
fn resolve_window_never_fires_an_alert_on_the_shorter_window() {
    // One bad minute after four good ones: 1 of 5 over 5m (healthy), 1 of 1 over 1m.
    let mut src = MemorySource::new();
    outage(&mut src, -10..=6, &[5]);
    let set = error_rate_rule("    resolve_window: 1m\n");
    let mut state = State::default();
    assert_eq!(kinds(&evaluate(&set, &src, &mut state, t(5))), "");
}

#[test]
fn resolve_window_keeps_judging_the_whole_window_without_runs_in_the_short_one() {
    let mut src = MemorySource::new();
    // Failing until minute 3, then no runs at all: silence is not a recovery.
    outage(&mut src, -10..=3, &[1, 2, 3]);
    let set = error_rate_rule("    resolve_window: 1m\n");
    let got = timeline(&set, &src);
    // Resolved only when the 5m window holds no run any more (minute 8: no data).
    assert_eq!(got, ["3:IF", "8:FR"]);
}

/// The availability SLO with extra SLO keys.
fn availability_with(extra: &str) -> RuleSet {
    rules(&format!(
        "slos:
  - name: avail
    objective: 99.9
    sli:
      events:
        metric: synmon.check.runs
        good: {{ outcome: pass }}
        total: {{ outcome: \"=~pass|fail\" }}
    routes: {{ page: pagerduty, ticket: slack-alerts }}
{extra}"
    ))
}

/// 100 runs a minute from minute -180, every one failing in minutes 1-3.
fn full_outage() -> MemorySource {
    let mut src = MemorySource::new();
    let (mut pass, mut fail) = (0.0, 0.0);
    for m in -180..=60 {
        if (1..=3).contains(&m) {
            fail += 100.0;
        } else {
            pass += 100.0;
        }
        runs(&mut src, "align_category", "pass", t(m), pass);
        runs(&mut src, "align_category", "fail", t(m), fail);
    }
    src
}

/// The minutes the page fired and resolved at, over minutes 0..=60.
fn page_timeline(set: &RuleSet, src: &MemorySource) -> Vec<String> {
    let mut state = State::default();
    let mut out = Vec::new();
    for m in 0..=60 {
        for tr in evaluate(set, src, &mut state, t(m)) {
            if tr.rule == "avail_burn_rate_page" {
                out.push(format!("{m}:{}", kinds(std::slice::from_ref(&tr))));
            }
        }
    }
    out
}

#[test]
fn slo_resolve_window_ends_the_page_soon_after_the_burning_stops() {
    let src = full_outage();
    // Without it the 6h/30m row holds until the 30m window forgets the outage.
    assert_eq!(
        page_timeline(&availability_with(""), &src),
        ["1:IF", "33:FR"]
    );
    // With it, one healthy minute in the short window ends every row.
    let set = availability_with("    resolve_window: 1m\n");
    assert_eq!(page_timeline(&set, &src), ["1:IF", "4:FR"]);
    // While firing, the notes show the burn over the resolve window.
    let mut state = State::default();
    evaluate(&set, &src, &mut state, t(1));
    evaluate(&set, &src, &mut state, t(2));
    let page = state
        .alerts
        .values()
        .find(|a| a.rule == "avail_burn_rate_page")
        .unwrap();
    assert_eq!(page.annotations["burn_rate_1m"], "1000");
    assert!(!page.annotations.contains_key("burn_rate_5m"));
}

#[test]
fn slo_for_and_keep_firing_for_shape_both_burn_rate_alerts() {
    let src = full_outage();
    // The page waits 2 minutes of burning, then outlasts it by 3 minutes (last burning at
    // minute 3, resolved at 6).
    let set = availability_with("    resolve_window: 1m\n    for: 2m\n    keep_firing_for: 3m\n");
    assert_eq!(page_timeline(&set, &src), ["1:IP", "3:PF", "6:FR"]);
    let page = set.rule("avail_burn_rate_page").unwrap();
    let ticket = set.rule("avail_burn_rate_ticket").unwrap();
    for r in [page, ticket] {
        assert_eq!(r.pending_for, std::time::Duration::from_secs(120));
        assert_eq!(r.keep_firing_for, std::time::Duration::from_secs(180));
    }
}

#[test]
fn slow_burn_ticket_moves_the_6x_row_from_the_page_to_the_ticket() {
    let rows = |set: &RuleSet, alert: &str| -> Vec<f64> {
        match &set.rule(alert).unwrap().condition {
            Condition::Burn { rows, .. } => rows.iter().map(|r| r.factor).collect(),
            _ => unreachable!(),
        }
    };
    let set = availability_with("");
    assert_eq!(rows(&set, "avail_burn_rate_page"), [14.4, 6.0]);
    assert_eq!(rows(&set, "avail_burn_rate_ticket"), [1.0]);
    let set = availability_with("    slow_burn: ticket\n");
    assert_eq!(rows(&set, "avail_burn_rate_page"), [14.4]);
    assert_eq!(rows(&set, "avail_burn_rate_ticket"), [6.0, 1.0]);
}

// ---- min_coverage ---------------------------------------------------------------------------

#[test]
fn min_coverage_refuses_a_young_window_and_says_what_a_partial_one_is_over() {
    let set = rules(
        "rules:
  - alert: errors
    metric: synmon.check.runs
    by: [check]
    aggregate: ratio
    window: 1h
    numerator: { outcome: fail }
    denominator: { outcome: \"=~pass|fail\" }
    op: \">\"
    threshold: 0.5
    min_coverage: 0.5
    no_data: { policy: alert }
    annotations: { summary: \"{{ value }} over {{ window }}\" }
",
    );
    // Data from minute 0 on, every run failing.
    let mut src = MemorySource::new();
    outage(&mut src, 0..=40, &(0..=40).collect::<Vec<_>>());
    let mut state = State::default();
    let ts = evaluate(&set, &src, &mut state, t(12));
    assert_eq!(kinds(&ts), "IF", "no data, policy alert");
    assert_eq!(
        ts[0].annotations["coverage"],
        "no data (12m of 1h, min_coverage 0.5)"
    );
    assert_eq!(ts[0].value, None);
    // Half an hour of data: judged, and the alert says over what.
    let mut state = State::default();
    let ts = evaluate(&set, &src, &mut state, t(30));
    assert_eq!(kinds(&ts), "IF");
    assert_eq!(ts[0].value, Some(1.0));
    assert_eq!(
        ts[0].annotations["coverage"],
        "over the 30m of data since start (window 1h)"
    );
    assert_eq!(ts[0].annotations["summary"], "1 over 30m");
}

#[test]
fn min_coverage_holds_back_a_burn_rate_page_on_young_history() {
    // 2 % of runs fail from the first minute of data (burn 20 > 14.4): without min_coverage
    // the page fires at minute 1 over one minute of data ("burning at 20x over 1h").
    let set = availability_with("    min_coverage: 0.5\n");
    let mut src = MemorySource::new();
    traffic(&mut src, 1..=60, 1, 2.0);
    let mut state = State::default();
    let mut fired = None;
    for k in 0..=60 {
        let ts = evaluate(&set, &src, &mut state, t(k));
        if let Some(p) = ts.into_iter().find(|t| t.rule == "avail_burn_rate_page") {
            fired = Some((k, p));
            break;
        }
    }
    let (k, page) = fired.expect("the page fires once half the hour is covered");
    // Data since minute 1: 30 of 60 minutes covered at minute 31.
    assert_eq!(k, 31);
    assert_eq!(
        page.annotations["coverage"],
        "over the 30m of data since start (window 1h)"
    );
    assert_eq!(
        page.annotations["summary"],
        "SLO avail is burning its error budget at 20x over 30m (limit 14.4x)"
    );
    assert_eq!(
        page.annotations["burn_rate_6h"],
        "no data (30m of 6h, min_coverage 0.5)"
    );
}

#[test]
fn memory_source_has_data_since_its_earliest_sample() {
    use crate::rules::source::Source as _;
    let mut src = MemorySource::new();
    assert_eq!(src.data_since(&CHECK_RUNS, &Matchers::default()), None);
    runs(&mut src, "b", "pass", t(7), 1.0);
    runs(&mut src, "a", "pass", t(3), 1.0);
    assert_eq!(
        src.data_since(&CHECK_RUNS, &Matchers::default()),
        Some(t(3))
    );
    assert_eq!(src.data_since(&CHECK_LATENCY, &Matchers::default()), None);
}

// ---- across ---------------------------------------------------------------------------------

/// A target whose checks each ran once a minute for 5 minutes, failing as `failing` says.
fn checks_of_target(src: &mut MemorySource, checks: &[(&str, bool)]) {
    for (check, fails) in checks {
        for m in 1..=5 {
            let outcome = if *fails { "fail" } else { "pass" };
            let labels = [
                ("check", *check),
                ("location", "eu"),
                ("outcome", outcome),
                ("target", "staging"),
            ];
            src.push(&CHECK_LATENCY, &labels, t(m), 100.0);
        }
    }
}

fn target_down(across: &str) -> RuleSet {
    rules(&format!(
        "rules:
  - alert: target_down
    metric: synmon.check.latency
    by: [target]
    aggregate: ratio
    window: 5m
    numerator: {{ outcome: fail }}
    denominator: {{ outcome: \"=~pass|fail\" }}
    op: \">\"
    threshold: 0.5
    across: {across}
    annotations: {{ summary: \"{{{{ labels.target }}}}: {{{{ failing }}}} failing\" }}
"
    ))
}

#[test]
fn across_fails_a_group_when_enough_of_its_values_fail() {
    type Case<'a> = (&'a str, &'a str, &'a [(&'a str, bool)], &'a str);
    let cases: &[Case] = &[
        (
            "three of four checks fail",
            "{ label: check, min_share: 0.5 }",
            &[("a", true), ("b", true), ("c", true), ("d", false)],
            "IF",
        ),
        (
            "half is enough",
            "{ label: check, min_share: 0.5 }",
            &[("a", true), ("b", true), ("c", false), ("d", false)],
            "IF",
        ),
        (
            "one of four is specific to that check",
            "{ label: check, min_share: 0.5 }",
            &[("a", true), ("b", false), ("c", false), ("d", false)],
            "",
        ),
        (
            "the share holds but not the count",
            "{ label: check, min_share: 0.5, min_count: 2 }",
            &[("a", true)],
            "",
        ),
        (
            "no value fails",
            "{ label: check }",
            &[("a", false), ("b", false)],
            "",
        ),
    ];
    for (name, across, checks, expected) in cases {
        let mut src = MemorySource::new();
        checks_of_target(&mut src, checks);
        let mut state = State::default();
        let ts = evaluate(&target_down(across), &src, &mut state, t(5));
        assert_eq!(kinds(&ts), *expected, "case: {name}");
    }
    let mut src = MemorySource::new();
    checks_of_target(
        &mut src,
        &[("inventory", true), ("auth", true), ("profile", false)],
    );
    let mut state = State::default();
    let ts = evaluate(
        &target_down("{ label: check, min_share: 0.5 }"),
        &src,
        &mut state,
        t(5),
    );
    assert_eq!(
        ts[0].annotations["failing"],
        "2 of 3 checks: auth, inventory"
    );
    assert_eq!(
        ts[0].annotations["summary"],
        "staging: 2 of 3 checks: auth, inventory failing"
    );
    assert_eq!(ts[0].labels["target"], "staging");
    assert_eq!(ts[0].value, Some(1.0));
}

#[test]
fn nested_across_counts_a_check_as_failing_only_where_most_locations_see_it() {
    // (check, location, fails): one location's trouble is not the check's.
    let feed = |src: &mut MemorySource, rows: &[(&str, &str, bool)]| {
        for (check, location, fails) in rows {
            for m in 1..=5 {
                let outcome = if *fails { "fail" } else { "pass" };
                let labels = [
                    ("check", *check),
                    ("location", *location),
                    ("outcome", outcome),
                    ("target", "staging"),
                ];
                src.push(&CHECK_LATENCY, &labels, t(m), 100.0);
            }
        }
    };
    let set = target_down(
        "{ label: check, min_share: 0.5, across: { label: location, min_share: 0.6 } }",
    );
    // Every check fails in eu only, where retests double its failed runs: pooled, each
    // check's runs failed 10 of 15 times and a flat `across` calls the target down; judged
    // per location, it is one location's blip and no alert.
    let mut src = MemorySource::new();
    feed(
        &mut src,
        &[
            ("a", "eu", true),
            ("a", "eu", true),
            ("a", "us", false),
            ("b", "eu", true),
            ("b", "eu", true),
            ("b", "us", false),
        ],
    );
    let mut state = State::default();
    assert_eq!(kinds(&evaluate(&set, &src, &mut state, t(5))), "");
    let flat = target_down("{ label: check, min_share: 0.5 }");
    let mut state = State::default();
    assert_eq!(kinds(&evaluate(&flat, &src, &mut state, t(5))), "IF");
    // b and c fail in both locations, a in eu only: two of three checks are down.
    let mut src = MemorySource::new();
    feed(
        &mut src,
        &[
            ("a", "eu", true),
            ("a", "us", false),
            ("b", "eu", true),
            ("b", "us", true),
            ("c", "eu", true),
            ("c", "us", true),
        ],
    );
    let mut state = State::default();
    let ts = evaluate(&set, &src, &mut state, t(5));
    assert_eq!(kinds(&ts), "IF");
    assert_eq!(ts[0].annotations["failing"], "2 of 3 checks: b, c");
}

// ---- inhibits -------------------------------------------------------------------------------

#[test]
fn inhibits_compile_to_inhibit_rules_that_mute_the_named_alerts() {
    let set = rules(
        "rules:
  - alert: target_down
    metric: synmon.check.latency
    by: [target]
    aggregate: ratio
    numerator: { outcome: fail }
    op: \">\"
    threshold: 0.5
    across: { label: check, min_share: 0.5 }
    inhibits:
      - matchers: { alertname: check_failing }
      - matchers: { alertname: \"=~.*_latency_high\" }
        equal: []
  - alert: check_failing
    metric: synmon.check.latency
    by: [check, target]
    aggregate: ratio
    numerator: { outcome: fail }
    op: \">\"
    threshold: 0.05
slos:
  - name: avail
    objective: 99.9
    sli: { events: { metric: synmon.check.runs, good: { outcome: pass }, total: {} } }
    inhibits:
      - matchers: { severity: warning }
",
    );
    let compiled: Vec<(String, String, Vec<String>)> = set
        .inhibit_rules()
        .iter()
        .map(|r| (r.source.to_string(), r.target.to_string(), r.equal.clone()))
        .collect();
    assert_eq!(
        compiled,
        [
            (
                "{alertname=\"target_down\"}".to_string(),
                "{alertname=\"check_failing\"}".to_string(),
                vec!["target".to_string()]
            ),
            (
                "{alertname=\"target_down\"}".to_string(),
                "{alertname=~\".*_latency_high\"}".to_string(),
                vec![]
            ),
            (
                "{alertname=\"avail_burn_rate_page\"}".to_string(),
                "{severity=\"warning\"}".to_string(),
                vec![]
            ),
        ]
    );
}

// ---- loader errors of the new keys ----------------------------------------------------------

#[test]
fn new_keys_are_validated_with_line_and_field() {
    let rule = |extra: &str| {
        format!(
            "rules:
  - alert: errors
    metric: synmon.check.runs
    by: [check]
    aggregate: ratio
    window: 5m
    numerator: {{ outcome: fail }}
    op: \">\"
    threshold: 0.5
{extra}"
        )
    };
    let gauge = "rules:
  - alert: deep
    metric: feed_push_queue_depth
    aggregate: last
    op: \">\"
    threshold: 10
";
    type Case = (&'static str, String, &'static str);
    let cases: Vec<Case> = vec![
        (
            "resolve window longer than the window",
            rule("    resolve_window: 10m\n"),
            "10:5: rules[0].resolve_window: 10m is longer than `window` (5m): the resolve window is the shorter one",
        ),
        (
            "resolve window under a minute",
            rule("    resolve_window: 30s\n"),
            "10:5: rules[0].resolve_window:",
        ),
        (
            "resolve window on a gauge",
            format!("{gauge}    resolve_window: 1m\n"),
            "7:5: rules[0].resolve_window: `feed_push_queue_depth` is a gauge: rules read its current value, there is no window to judge",
        ),
        (
            "coverage above 1",
            rule("    min_coverage: 1.5\n"),
            "10:5: rules[0].min_coverage: 1.5 must be a fraction from 0 to 1 (0.5 is half)",
        ),
        (
            "coverage not a number",
            rule("    min_coverage: half\n"),
            "10:5: rules[0].min_coverage: `half` is not a number",
        ),
        (
            "across an unknown label",
            rule("    across: { label: target }\n"),
            "10:15: rules[0].across.label: unknown label `target` for `synmon.check.runs`",
        ),
        (
            "across a by label",
            rule("    across: { label: check }\n"),
            "10:15: rules[0].across.label: cannot judge across `check` when grouping `by` it",
        ),
        (
            "across with a zero count and a share above 1",
            rule("    across: { label: location, min_share: 2, min_count: 0 }\n"),
            "10:46: rules[0].across.min_count: must be at least 1",
        ),
        (
            "across beside min_failing_locations",
            rule("    across: { label: location }\n    min_failing_locations: 2\n"),
            "10:5: rules[0].across: give either `across` or `min_failing_locations`",
        ),
        (
            "failing without across",
            rule("    annotations: { summary: \"{{ failing }}\" }\n"),
            "rules[0].annotations.summary: `{{ failing }}` lists the failing values of `across`",
        ),
        (
            "inhibits an unknown alert",
            rule("    inhibits:\n      - matchers: { alertname: check_faling }\n"),
            "11:21: rules[0].inhibits[0].matchers.alertname: no alert `check_faling` is defined",
        ),
        (
            "inhibits itself",
            rule("    inhibits:\n      - matchers: { alertname: errors }\n"),
            "rules[0].inhibits[0].matchers.alertname: an alert cannot inhibit itself",
        ),
        (
            "inhibits without matchers",
            rule("    inhibits:\n      - equal: [check]\n"),
            "11:9: rules[0].inhibits[0]: `matchers` must say which alerts this one mutes",
        ),
        (
            "inhibits equal on a label the alert lacks",
            rule("    inhibits:\n      - matchers: { severity: warning }\n        equal: [target]\n"),
            "12:17: rules[0].inhibits[0].equal[0]: `target` is not a label of this alert (it has: alertname, check, severity)",
        ),
        (
            "SLO resolve window longer than 5m",
            "slos:\n  - name: s\n    objective: 99\n    sli: { events: { metric: synmon.check.runs, good: {}, total: {} } }\n    resolve_window: 10m\n".to_string(),
            "5:5: slos[0].resolve_window: 10m is longer than the shortest burn-rate short window (5m)",
        ),
        (
            "SLO coverage below 0",
            "slos:\n  - name: s\n    objective: 99\n    sli: { events: { metric: synmon.check.runs, good: {}, total: {} } }\n    min_coverage: -0.1\n".to_string(),
            "5:5: slos[0].min_coverage: -0.1 must be a fraction from 0 to 1",
        ),
    ];
    for (name, yaml, expected) in cases {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("rules.yaml");
        std::fs::write(&f, &yaml).unwrap();
        let (_, errors) = load_files(&[f]);
        let text: Vec<String> = errors.iter().map(|d| d.to_string()).collect();
        assert!(
            text.iter().any(|e| e.contains(expected)),
            "case: {name}: expected `{expected}` in {text:#?}"
        );
    }
}
