//! The bad-config corpus: every folder under `tests/fixtures/bad/` is a config with one kind of
//! mistake (or, where the name says so, several) and an `expected.txt` holding the exact error
//! lines `synmon check` prints for it, paths relative to the repo root. `tests/fixtures/good/`
//! is a valid config using the loader's features. The fixtures rely on environment variables
//! named `SYNMON_FIXTURE_UNSET_*` being unset; tests never set variables (they run in parallel).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use synmon::settings::Config;

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Every bad fixture folder, sorted by name.
fn bad_fixtures() -> Vec<PathBuf> {
    let dir = repo().join("tests/fixtures/bad");
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    dirs
}

fn expected_lines(dir: &Path) -> Vec<String> {
    let file = dir.join("expected.txt");
    std::fs::read_to_string(&file)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", file.display()))
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(str::to_string)
        .collect()
}

fn name_of(dir: &Path) -> String {
    dir.file_name().unwrap().to_string_lossy().into_owned()
}

/// The fixtures' "unset" variables must really be unset, or their expectations cannot hold.
fn assert_fixture_vars_unset() {
    let set: Vec<String> = std::env::vars()
        .map(|(k, _)| k)
        .filter(|k| k.starts_with("SYNMON_FIXTURE_UNSET_"))
        .collect();
    assert!(
        set.is_empty(),
        "the fixtures need these variables unset: {set:?}"
    );
}

fn synmon_check(config: &str) -> Output {
    Command::new(env!("CARGO_BIN_EXE_synmon"))
        .args(["check", "--config", config])
        .current_dir(repo())
        .env_remove("RUST_LOG")
        .output()
        .expect("run synmon")
}

fn lines(bytes: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(bytes)
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn every_bad_fixture_reports_exactly_its_expected_errors() {
    assert_fixture_vars_unset();
    assert_eq!(
        std::env::current_dir().unwrap().canonicalize().unwrap(),
        repo().canonicalize().unwrap(),
        "expected.txt paths are relative to the repo root; run the tests from there"
    );
    let fixtures = bad_fixtures();
    assert!(
        fixtures.len() >= 30,
        "the corpus should hold at least 30 bad fixtures, found {}",
        fixtures.len()
    );
    let mut failures = Vec::new();
    for dir in &fixtures {
        let name = name_of(dir);
        let expected = expected_lines(dir);
        assert!(!expected.is_empty(), "{name}: expected.txt is empty");
        let actual: Vec<String> = match Config::load(&dir.join("synmon.yaml")) {
            Ok(_) => vec!["(loaded without errors)".to_string()],
            Err(errors) => errors.0.iter().map(ToString::to_string).collect(),
        };
        if actual != expected {
            failures.push(format!(
                "fixture {name}:\n  expected:\n    {}\n  actual:\n    {}",
                expected.join("\n    "),
                actual.join("\n    ")
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} bad fixtures did not report their expected errors:\n\n{}",
        failures.len(),
        fixtures.len(),
        failures.join("\n\n")
    );
}

#[test]
fn the_good_fixture_loads() {
    assert_fixture_vars_unset();
    let cfg = Config::load(&repo().join("tests/fixtures/good/synmon.yaml"))
        .unwrap_or_else(|e| panic!("the good fixture must load:\n{e}"));
    // `${VAR:-default}` and `${VAR:-}`.
    assert_eq!(
        cfg.targets["staging"].base_url.as_str(),
        "http://127.0.0.1:3000/"
    );
    assert!(cfg.webdriver.remote_url.is_none());
    // The `file:` secret, without the trailing newline.
    assert_eq!(
        cfg.credentials.as_ref().unwrap().password.expose(),
        "synthetic-demo"
    );
    assert_eq!(cfg.variables["category"], "Hardware");
    let names: Vec<&str> = cfg.journeys.iter().map(|j| j.name.as_str()).collect();
    assert_eq!(names, ["feed_push"]);
    let steps: Vec<&str> = cfg.journeys[0]
        .steps
        .iter()
        .map(|s| s.action.kind())
        .collect();
    // `_login.yaml`'s four steps are included in place.
    assert_eq!(
        steps,
        [
            "goto",
            "fill",
            "fill",
            "click",
            "goto",
            "fill",
            "click",
            "capture",
            "poll",
            "assert_text"
        ]
    );
}

/// `synmon check` on the bad `fixture` exits 2, prints nothing on stdout, and on stderr its
/// expected lines and then their count.
fn assert_check_command_refuses(fixture: &str) {
    assert_fixture_vars_unset();
    let out = synmon_check(&format!("{fixture}/synmon.yaml"));
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(out.stdout.is_empty(), "nothing on stdout: {out:?}");
    let mut expected = expected_lines(&repo().join(fixture));
    expected.push(format!("{} error(s) in configuration", expected.len()));
    assert_eq!(lines(&out.stderr), expected);
}

#[test]
fn check_command_prints_errors_on_stderr_and_exits_2() {
    assert_check_command_refuses("tests/fixtures/bad/50-several-errors-one-file");
}

#[test]
fn check_command_reports_errors_in_several_files() {
    assert_check_command_refuses("tests/fixtures/bad/51-errors-in-two-files");
}

#[test]
fn check_command_accepts_the_good_fixture() {
    assert_fixture_vars_unset();
    let out = synmon_check("tests/fixtures/good/synmon.yaml");
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(
        lines(&out.stdout),
        ["tests/fixtures/good/synmon.yaml: ok (1 journeys: feed_push)"]
    );
    assert!(out.stderr.is_empty(), "nothing on stderr: {out:?}");
}

#[test]
fn check_command_accepts_the_example_config() {
    let out = synmon_check("synmon.example.yaml");
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let stdout = lines(&out.stdout);
    assert_eq!(stdout.len(), 1, "{out:?}");
    assert!(
        stdout[0].starts_with("synmon.example.yaml: ok ("),
        "{out:?}"
    );
}

fn synmon_alerts_test(files: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_synmon"))
        .args(["alerts", "test"])
        .args(files)
        .current_dir(repo())
        .env_remove("RUST_LOG")
        .output()
        .expect("run synmon")
}

#[test]
fn alerts_test_command_passes_the_seed_tests_and_exits_1_or_2_otherwise() {
    let seed = [
        "alerts/tests/business.yaml",
        "alerts/tests/journeys.yaml",
        "alerts/tests/technical.yaml",
    ];
    let out = synmon_alerts_test(&seed);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(
        lines(&out.stdout),
        [
            "alerts/tests/business.yaml: ok (6 tests)",
            "alerts/tests/journeys.yaml: ok (7 tests)",
            "alerts/tests/technical.yaml: ok (8 tests)",
        ]
    );
    let dir = tempfile::tempdir().unwrap();
    let failing = dir.path().join("failing.yaml");
    std::fs::write(
        &failing,
        format!(
            "rule_files: [{}]\ninput_series:\n  - metric: oauth_error_rate\n    values: \"50x10\"\nalert_rule_test:\n  - eval_time: 10m\n    alertname: oauth_error_rate_high\n    exp_alerts: []\n",
            repo().join("alerts/business.yaml").display()
        ),
    )
    .unwrap();
    let out = synmon_alerts_test(&[failing.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let bad = dir.path().join("bad.yaml");
    std::fs::write(&bad, "rule_files: [nope.yaml]\n").unwrap();
    let out = synmon_alerts_test(&[bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("rule_files[0]: no rule file"),
        "{out:?}"
    );
}

/// A rule whose `route:` no routing node matches is valid (its alerts reach the root receiver)
/// but `synmon check` warns about it, naming the file and the rule.
#[test]
fn check_warns_about_a_rule_route_that_matches_no_routing_node() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("alerts")).unwrap();
    std::fs::create_dir_all(dir.path().join("journeys")).unwrap();
    std::fs::write(
        dir.path().join("alerts/typo.yaml"),
        "rules:\n  - alert: approvals_low\n    metric: feed_approval_rate\n    aggregate: last\n    op: \"<\"\n    threshold: 95\n    severity: warning\n    route: slack-alrets\n",
    )
    .unwrap();
    let cfg = dir.path().join("synmon.yaml");
    std::fs::write(
        &cfg,
        "targets:\n  staging:\n    base_url: http://127.0.0.1:9\ntenant: synthetic\ncredentials:\n  username: u@rvp.test\n  password: synthetic-demo\nreceivers:\n  - { name: hook, type: webhook, url: \"http://127.0.0.1:9/hook\" }\nroute:\n  receiver: console\n  routes:\n    - { matchers: { route: slack-alerts }, receiver: hook }\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_synmon"))
        .args(["check", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("rule `approvals_low`: `route: slack-alrets` matches no node of `route:`; its alerts go to the root receiver `console`"),
        "{err}"
    );
    assert!(err.contains("typo.yaml"), "{err}");
}
