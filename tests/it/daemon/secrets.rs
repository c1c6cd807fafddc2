//! Secrets never leak: the typed password appears in no log line, JSON result or artifact.

use serde_json::json;

use crate::support::*;

/// A journey that types the password and then fails on the login page, so the page HTML and
/// screenshot are saved while the password field is filled.
const FAIL_AFTER_TYPING: &str = r#"
name: fail_after_typing
steps:
  - goto: /login
  - fill: { selector: "[data-test=login-email]", value: "{username}" }
  - fill: { selector: "[data-test=login-password]", value: "{password}" }
  - wait_for: { selector: "[data-test=never-there]" }
    timeout: 300ms
"#;

async fn synmon_once(
    config: &std::path::Path,
    journey: &str,
    password: &str,
) -> (i32, String, String) {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_synmon"))
        .args(["once", journey, "--json", "--config"])
        .arg(config)
        .env("SYNMON_IT_PASSWORD", password)
        .env("RUST_LOG", "trace")
        .output()
        .await
        .expect("synmon runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn files_under(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    // A folder that cannot be read would hide its files from the leak check: fail instead.
    let rd = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("read {}: {e}", dir.display()));
    for e in rd {
        let p = e
            .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
            .path();
        if p.is_dir() {
            out.extend(files_under(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_password_appears_in_no_log_result_or_artifact() {
    let _b = BROWSER.lock().await;
    let password = format!("Pw-{}", uuid::Uuid::new_v4().simple());
    let dir = tempfile::tempdir().unwrap();
    let sbx = sqlite_sandbox(dir.path(), &password).await;
    // The config names the variable; the value only exists in the child's environment.
    let config = write_config(dir.path(), &sbx.base_url(), "${SYNMON_IT_PASSWORD}", "");
    let jdir = dir.path().join("extra");
    std::fs::create_dir_all(&jdir).unwrap();
    std::fs::write(jdir.join("fail_after_typing.yaml"), FAIL_AFTER_TYPING).unwrap();

    let mut transcript = String::new();
    // A pass (login + save profile), a target failure after login (suppressed toast), and a
    // failure on the login page with the password typed in.
    let (code, out, err) = synmon_once(&config, "save_profile", &password).await;
    assert_eq!(code, 0, "{out}\n{err}");
    transcript.push_str(&out);
    transcript.push_str(&err);
    set_faults(&sbx.base_url(), json!({"kind": "suppress_toast"})).await;
    let (code, out, err) = synmon_once(&config, "align_category", &password).await;
    assert_eq!(code, 1, "{out}\n{err}");
    transcript.push_str(&out);
    transcript.push_str(&err);
    let extra = jdir.join("fail_after_typing.yaml");
    let (code, out, err) = synmon_once(&config, extra.to_str().unwrap(), &password).await;
    assert_eq!(code, 1, "{out}\n{err}");
    transcript.push_str(&out);
    transcript.push_str(&err);
    let result: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert!(
        result["artifacts"].as_array().is_some_and(|a| a.len() >= 3),
        "{result}"
    );

    assert!(
        transcript.contains("journey passed"),
        "logs were captured at trace level"
    );
    assert!(
        !transcript.contains(&password),
        "password leaked into output or logs"
    );
    let artifacts = files_under(&dir.path().join("artifacts"));
    assert!(
        artifacts.len() >= 6,
        "artifacts of two failed runs: {artifacts:?}"
    );
    let mut saw_masked_field = false;
    for f in &artifacts {
        let bytes = std::fs::read(f).unwrap();
        let text = String::from_utf8_lossy(&bytes);
        assert!(
            !text.contains(&password),
            "password leaked into {}",
            f.display()
        );
        if f.extension().is_some_and(|e| e == "html")
            && text.contains("data-test=\"login-password\"")
        {
            saw_masked_field = text.contains("value=\"***\"");
        }
    }
    assert!(
        saw_masked_field,
        "the login page dump shows the password field masked"
    );
    sbx.shutdown().await;
}
