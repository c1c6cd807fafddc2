//! `synmon notify test` as on-call runs it: the real binary, a real store file, the fakes.
//! Exit 0 delivered, 1 refused, 2 config error.

use std::path::Path;

use crate::fakes::pagerduty::{FakePagerDuty, TEST_ROUTING_KEY};

fn config(dir: &Path, pd_url: &str, routing_key: &str) -> std::path::PathBuf {
    let f = dir.join("synmon.yaml");
    std::fs::create_dir_all(dir.join("journeys")).unwrap();
    std::fs::write(
        &f,
        format!(
            r#"targets:
  staging:
    base_url: "http://127.0.0.1:9"
tenant: synthetic
credentials:
  username: synthetic@rvp.test
  password: synthetic-demo
store:
  url: sqlite://synmon.db
receivers:
  - {{ name: pagerduty, type: pagerduty, url: "{pd_url}", routing_key: "{routing_key}" }}
  - {{ name: off, type: pagerduty, url: "{pd_url}", routing_key: "" }}
route:
  receiver: console
"#
        ),
    )
    .unwrap();
    f
}

async fn notify_test(cfg: &Path, receiver: &str, resolve: bool) -> (i32, String, String) {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_synmon"));
    cmd.args(["notify", "test", "--receiver", receiver, "--config"])
        .arg(cfg);
    if resolve {
        cmd.arg("--resolve");
    }
    let out = cmd.output().await.unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn notify_test_delivers_a_labelled_trigger_and_its_resolve_with_one_key() {
    let pd = FakePagerDuty::start().await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), &pd.url(), TEST_ROUTING_KEY);
    let (code, out, err) = notify_test(&cfg, "pagerduty", true).await;
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("test alert delivered to `pagerduty`"), "{out}");
    assert!(out.contains("its resolve delivered"), "{out}");
    let events = pd.events();
    assert_eq!(events.len(), 2, "{events:#?}");
    assert_eq!(events[0]["event_action"], "trigger");
    assert!(
        events[0]["payload"]["summary"]
            .as_str()
            .unwrap()
            .contains("TEST"),
        "{:#}",
        events[0]
    );
    assert_eq!(events[1]["event_action"], "resolve");
    assert_eq!(events[0]["dedup_key"], events[1]["dedup_key"]);
    assert!(!out.contains(TEST_ROUTING_KEY) && !err.contains(TEST_ROUTING_KEY));
}

#[tokio::test]
async fn notify_test_retries_a_503_then_delivers() {
    let pd = FakePagerDuty::start().await;
    pd.fail_next(1, 503);
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), &pd.url(), TEST_ROUTING_KEY);
    let (code, out, err) = notify_test(&cfg, "pagerduty", false).await;
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("attempt 1 failed: HTTP 503"), "{out}");
    assert!(out.contains("after 2 attempt(s)"), "{out}");
    assert_eq!(pd.events().len(), 1);
}

#[tokio::test]
async fn notify_test_reports_a_refusal_with_exit_1_and_config_errors_with_exit_2() {
    let pd = FakePagerDuty::start().await;
    let dir = tempfile::tempdir().unwrap();
    // PagerDuty refuses a routing key that is not 32 characters: 400, permanent.
    let cfg = config(dir.path(), &pd.url(), "short-key-refused-by-pagerduty");
    let (code, out, err) = notify_test(&cfg, "pagerduty", false).await;
    assert_eq!(code, 1, "{out}\n{err}");
    assert!(out.contains("refused by `pagerduty`"), "{out}");
    assert!(!out.contains("short-key-refused") && !err.contains("short-key-refused"));
    let (code, _, err) = notify_test(&cfg, "nobody", false).await;
    assert_eq!(code, 2);
    assert!(err.contains("unknown receiver `nobody`"), "{err}");
    let (code, _, err) = notify_test(&cfg, "off", false).await;
    assert_eq!(code, 2);
    assert!(err.contains("receiver `off` is disabled"), "{err}");
    assert!(pd.events().is_empty());
}
