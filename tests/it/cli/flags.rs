//! `synmon flags audit` at fixed dates against the shipped registry (flags/flag_registry.yaml
//! through synmon.example.yaml): which flags are due, and the exit codes.

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

fn audit(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_synmon"))
        .args(["flags", "audit"])
        .args(args)
        .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")))
        .env_remove("RUST_LOG")
        .output()
        .expect("run synmon")
}

fn json_at(date: &str) -> (Option<i32>, Value) {
    let out = audit(&["--config", "synmon.example.yaml", "--at", date, "--json"]);
    let v = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {out:?}"));
    (out.status.code(), v)
}

/// (flag, days to expiry, action) of every flag.
fn rows(v: &Value) -> Vec<(String, i64, String)> {
    v["flags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["flag"].as_str().unwrap().to_string(),
                f["days_to_expiry"].as_i64().unwrap(),
                f["action"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn row(flag: &str, days: i64, action: &str) -> (String, i64, String) {
    (flag.to_string(), days, action.to_string())
}

#[test]
fn audit_before_any_notice_is_clean_and_exits_0() {
    let (code, v) = json_at("2025-12-01");
    assert_eq!(code, Some(0), "{v}");
    assert_eq!(v["due"], 0);
    assert_eq!(
        rows(&v),
        [
            row("FF_GOOGLE_CONNECT_SUITE", 90, "none"),
            row("FF_FEED_ALIGNMENT_ENFORCE", 45, "none"),
            row("FF_CATEGORY_MANAGEMENT_PAGE", 62, "none"),
            row("FF_CATEGORY_QUICK_ACTIONS", 109, "none"),
        ]
    );
}

#[test]
fn audit_within_30_days_of_an_expiry_is_due_and_exits_1() {
    let (code, v) = json_at("2026-01-01");
    assert_eq!(code, Some(1), "{v}");
    assert_eq!(v["due"], 1);
    assert_eq!(
        rows(&v)[1],
        row("FF_FEED_ALIGNMENT_ENFORCE", 14, "renew_or_remove")
    );
}

#[test]
fn audit_after_expiries_asks_for_renewal_and_removal_from_code() {
    let (code, v) = json_at("2026-02-20");
    assert_eq!(code, Some(1), "{v}");
    assert_eq!(v["due"], 4);
    assert_eq!(
        rows(&v),
        [
            row("FF_GOOGLE_CONNECT_SUITE", 9, "renew_or_remove"),
            row("FF_FEED_ALIGNMENT_ENFORCE", -36, "remove_from_code"),
            row("FF_CATEGORY_MANAGEMENT_PAGE", -19, "expired"),
            row("FF_CATEGORY_QUICK_ACTIONS", 28, "renew_or_remove"),
        ]
    );
}

#[test]
fn audit_table_names_what_is_due() {
    let out = audit(&["--config", "synmon.example.yaml", "--at", "2026-01-01"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].starts_with("FLAG "), "{text}");
    assert!(
        lines[2].starts_with("FF_FEED_ALIGNMENT_ENFORCE")
            && lines[2].ends_with("renew or remove: expires in 14 day(s)"),
        "{text}"
    );
    assert_eq!(lines[5], "4 flag(s), 1 due at 2026-01-01");
}

#[test]
fn audit_of_a_bad_registry_exits_2_with_the_check_messages() {
    let out = audit(&[
        "--config",
        "tests/fixtures/bad/78-flag-without-owner/synmon.yaml",
        "--at",
        "2026-01-01",
    ]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(out.stdout.is_empty());
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim_end(),
        "tests/fixtures/bad/78-flag-without-owner/flag_registry.yaml:2:5: flags[0].owner: every flag needs an owner (a team or a person)"
    );
}
