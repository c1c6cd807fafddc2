//! `synmon replay`: scenarios through the real rules, inhibition, grouping and routing on a
//! manual clock. A tiny config with one rule whose pages are known, a rule that pages once per
//! check, a scenario with mistakes, and the shipped day against the shipped alerts.

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

const CONFIG: &str = "targets:
  staging:
    base_url: http://127.0.0.1:9
tenant: synthetic
credentials:
  username: u@rvp.test
  password: synthetic-demo
location: eu
evaluation_interval: 10s
checks:
  interval: 30s
  http:
    - { name: api, url: /api }
    - { name: web, url: /web }
receivers:
  - { name: console, type: console }
  # No routing key on this machine: a replay still counts what PagerDuty would get.
  - { name: pd, type: pagerduty, routing_key: \"\" }
route:
  receiver: console
  group_by: [alertname]
  group_wait: 0s
  group_interval: 10s
  routes:
    - { matchers: { route: page }, receiver: pd }
";

/// One rule over every check's runs; `by` adds its grouping labels.
fn rule(by: &str) -> String {
    format!(
        "rules:
  - alert: target_down
    metric: synmon.check.runs
    {by}
    aggregate: ratio
    window: 1m
    numerator: {{ outcome: fail }}
    denominator: {{ outcome: \"=~pass|fail\" }}
    op: \">\"
    threshold: 0.2
    severity: page
    route: page
"
    )
}

const OUTAGE: &str = "start: 2026-01-05T00:00:00Z
duration: 30m
incidents:
  - { name: down, kind: outage, at: 10m, for: 5m }
";

/// A config folder with `rules` as its only alerts file, and `scenario` beside it.
fn setup(rules: &str, scenario: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("alerts")).unwrap();
    std::fs::create_dir_all(dir.path().join("journeys")).unwrap();
    std::fs::write(dir.path().join("alerts/rules.yaml"), rules).unwrap();
    std::fs::write(dir.path().join("synmon.yaml"), CONFIG).unwrap();
    std::fs::write(dir.path().join("s.yaml"), scenario).unwrap();
    dir
}

fn replay(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_synmon"))
        .arg("replay")
        .args(args)
        .current_dir(dir)
        .env_remove("RUST_LOG")
        .output()
        .expect("run synmon")
}

fn json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {out:?}"))
}

#[test]
fn one_outage_opens_one_incident_detected_and_resolved_within_bounds() {
    let dir = setup(&rule(""), OUTAGE);
    let out = replay(dir.path(), &["s.yaml", "--config", "synmon.yaml", "--json"]);
    let v = json(&out);
    assert_eq!(out.status.code(), Some(0), "{v:#}");
    let inc = &v["incidents"][0];
    assert_eq!(inc["name"], "down");
    assert_eq!(inc["kind"], "outage");
    assert_eq!(inc["pagerduty"], 1);
    assert_eq!(inc["alerts"], serde_json::json!(["target_down"]));
    // interval 30 s + `for` 0 s + evaluation 10 s (no retest configured).
    assert_eq!(inc["detect_bound_secs"], 40.0);
    let detect = inc["detect_secs"].as_f64().unwrap();
    assert!(detect > 0.0 && detect <= 40.0, "{inc:#}");
    let resolve = inc["resolve_secs"].as_f64().unwrap();
    assert!(
        resolve <= inc["resolve_bound_secs"].as_f64().unwrap(),
        "{inc:#}"
    );
    assert_eq!(inc["ok"], true);
    assert_eq!(v["totals"]["false_pages"], 0);
    assert_eq!(v["totals"]["never_resolved"], 0);
    assert_eq!(v["ok"], true);
    // The same replay twice gives the same pages: the noise is seeded, nothing reads the clock.
    let again = json(&replay(
        dir.path(),
        &["s.yaml", "--config", "synmon.yaml", "--json"],
    ));
    assert_eq!(again, v);
}

#[test]
fn a_rule_paging_once_per_check_fails_the_replay() {
    let dir = setup(&rule("by: [check]"), OUTAGE);
    // Each check's alert has its own group (`group_by: [alertname, check]`).
    let cfg = CONFIG.replace("group_by: [alertname]", "group_by: [alertname, check]");
    std::fs::write(dir.path().join("synmon.yaml"), cfg).unwrap();
    let out = replay(dir.path(), &["s.yaml", "--config", "synmon.yaml", "--json"]);
    let v = json(&out);
    assert_eq!(out.status.code(), Some(1), "{v:#}");
    let inc = &v["incidents"][0];
    assert_eq!(inc["pagerduty"], 2, "{inc:#}");
    assert_eq!(inc["ok"], false);
    assert_eq!(v["ok"], false);
    // The table says the same to a person.
    let out = replay(dir.path(), &["s.yaml", "--config", "synmon.yaml"]);
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        table.contains("2 PagerDuty incidents, expected 1"),
        "{table}"
    );
}

#[test]
fn a_bad_scenario_names_file_line_and_field_and_exits_2() {
    let dir = setup(
        &rule(""),
        "start: 2026-01-05T00:00:00Z
duration: 30m
incidents:
  - { name: down, kind: outage, at: 10m, for: 5m }
  - { name: slow, kind: latency, checks: [nope], at: 1m, for: 1m, latency_ms: 900 }
  - { name: x, kind: meltdown, at: 1m, for: 1m }
  - { name: back, kind: latency, checks: [nope], at: 1m, for: 1m, latency_ms: -1e17 }
",
    );
    let out = replay(dir.path(), &["s.yaml", "--config", "synmon.yaml"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("s.yaml:6:") && err.contains("incidents[2].kind: unknown kind `meltdown`"),
        "{err}"
    );
    // A latency that would end runs before they start is refused, not replayed (it
    // overflowed the clock and panicked).
    assert!(
        err.contains("s.yaml:7:")
            && err.contains("incidents[3].latency_ms: must be a number of milliseconds"),
        "{err}"
    );
    // A check the config does not have is found once the kinds are right.
    let text = std::fs::read_to_string(dir.path().join("s.yaml")).unwrap();
    let fixed: String = text.lines().take(5).map(|l| format!("{l}\n")).collect();
    std::fs::write(dir.path().join("s.yaml"), fixed).unwrap();
    let out = replay(dir.path(), &["s.yaml", "--config", "synmon.yaml"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("s.yaml:5:")
            && err.contains("incidents[1].checks[0]: `nope` is not a check this scenario runs"),
        "{err}"
    );
}

#[test]
fn the_shipped_day_replays_against_the_shipped_alerts_as_json() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = replay(
        root,
        &[
            "scenarios/day.yaml",
            "--config",
            "synmon.example.yaml",
            "--json",
        ],
    );
    let v = json(&out);
    let incidents = v["incidents"].as_array().unwrap();
    // The shipped alerts and routes meet every bound: one PagerDuty incident per incident that
    // pages, none for blips and probe crashes, nothing false, missed or left open.
    assert_eq!(out.status.code(), Some(0), "{v:#}");
    assert_eq!(v["ok"], true);
    for key in [
        "false_pages",
        "false_slack",
        "missed",
        "probe_caused",
        "never_resolved",
    ] {
        assert_eq!(v["totals"][key], 0, "{key}: {v:#}");
    }
    assert!(incidents.len() >= 20, "{}", incidents.len());
    for i in incidents {
        let want = i["expected"]["pagerduty"].as_u64();
        if let Some(w) = want {
            assert_eq!(i["pagerduty"].as_u64(), Some(w), "{i}");
        }
    }
    let kinds = |k: &str| incidents.iter().filter(|i| i["kind"] == k).count();
    for (kind, at_least) in [
        ("outage", 3),
        ("check_failure", 3),
        ("latency", 3),
        ("error_rate", 2),
        ("flapping", 3),
        ("location_blip", 2),
        ("probe_crash", 2),
    ] {
        assert!(kinds(kind) >= at_least, "{kind}: {}", kinds(kind));
    }
    for i in incidents {
        for key in [
            "name",
            "kind",
            "pagerduty",
            "slack",
            "detect_secs",
            "detect_bound_secs",
            "resolve_secs",
            "resolve_bound_secs",
            "ok",
        ] {
            assert!(i.get(key).is_some(), "{key} missing in {i}");
        }
    }
    assert!(v["totals"]["pagerduty"].as_u64().is_some());
    assert!(v["ok"].is_boolean());
}
