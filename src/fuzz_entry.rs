//! One input in, one verdict out: the loaders and the silence API body as the property tests
//! (`tests/it/props/`) and the `cargo fuzz` targets (`fuzz/`) drive them.
//!
//! Both harnesses call these functions so that they test the same promise: whatever the bytes,
//! the entry point returns (no panic, no hang), and every rejection tells the user *where*:
//! a YAML [`Diagnostic`] carries a line and column inside the file it names, a JSON body error
//! carries serde_json's `line N column M`, and a silence the parser accepted but validation
//! refused names the field it refuses. Not part of synmon's API.
//!
//! Loaders take paths, so each call writes the input into a fresh temporary folder laid out like
//! a small real config (a valid journey, a shared step file, a rule file and a secret beside it):
//! the input then meets the same reads, includes and cross-file checks as in production.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::time::Duration;

use axum::Json;
use chrono::{DateTime, TimeZone, Utc};

use crate::config::Diagnostic;
use crate::journey::LoadContext;
use crate::mute::silence::NewSilence;

/// Diagnostics that describe a whole folder rather than a place in a text, so they cannot have a
/// position: the loader could not list the folder the config points at (it does not exist as a
/// folder, or may not be read). Every other diagnostic must have one.
pub const WHOLE_FILE_MESSAGES: &[&str] =
    &["cannot read journeys folder", "cannot read alerts folder"];

/// The fields of `POST /api/v1/silences`: a validation error names at least one of them.
pub const SILENCE_FIELDS: &[&str] = &["matchers", "starts_at", "ends_at", "comment", "created_by"];

/// What the entry point did with an input that kept the promise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Accepted,
    /// Rejected with this many errors, each with a position (or a listed whole-folder error).
    Rejected(usize),
}

/// An input that broke the promise: the entry point rejected it without saying where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Unplaced(pub String);

const JOURNEY: &str =
    "name: smoke\nsteps:\n  - use: _login.yaml\n  - goto: /t/{tenant}/categories\n";
const SHARED_STEPS: &str = "steps:\n  - goto: /login\n  - fill: { selector: \"[data-test=login-email]\", value: \"{username}\" }\n  - click: \"[data-test=login-submit]\"\n    until: { selector: \"[data-test=categories-page]\" }\n";
const RULES: &str = "rules:\n  - alert: check_failing\n    metric: synmon.check.runs\n    by: [check]\n    aggregate: ratio\n    window: 5m\n    numerator: { outcome: fail }\n    denominator: { outcome: \"=~pass|fail\" }\n    op: \">\"\n    threshold: 0.5\n";

/// A temporary config tree: `synmon.yaml`, `journeys/{smoke,_login}.yaml`, `alerts/rules.yaml`,
/// `secrets/password`; removed on drop.
struct Tree {
    dir: tempfile::TempDir,
}

impl Tree {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("create a temporary folder");
        let tree = Tree { dir };
        tree.write("synmon.yaml", b"targets:\n  staging:\n    base_url: http://127.0.0.1:3000\ntenant: synthetic\ncredentials:\n  username: synthetic@rvp.test\n  password: file:secrets/password\n");
        tree.write("journeys/smoke.yaml", JOURNEY.as_bytes());
        tree.write("journeys/_login.yaml", SHARED_STEPS.as_bytes());
        tree.write("alerts/rules.yaml", RULES.as_bytes());
        tree.write("secrets/password", b"synthetic-demo\n");
        tree
    }

    fn write(&self, rel: &str, bytes: &[u8]) -> PathBuf {
        let path = self.dir.path().join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("create a folder in the temporary tree");
        }
        std::fs::write(&path, bytes).expect("write into the temporary tree");
        path
    }
}

/// Checks loader diagnostics: each has a position (1-based, and inside the file when the file is
/// `input_file`, whose text is `input`) unless its message is a listed whole-folder one.
pub fn check_diagnostics(
    diags: &[Diagnostic],
    input_file: &Path,
    input: &[u8],
) -> Result<Verdict, Unplaced> {
    if diags.is_empty() {
        return Err(Unplaced("rejected without any diagnostic".into()));
    }
    let shown = crate::config::yaml::display_path(input_file);
    // A position just past the last line is where "end of file" errors point.
    let last_line = yaml_lines(input);
    for d in diags {
        match d.pos {
            None if WHOLE_FILE_MESSAGES.iter().any(|m| d.message.starts_with(m)) => {}
            None => return Err(Unplaced(format!("no position: {d}"))),
            Some(p) if p.line == 0 || p.col == 0 => {
                return Err(Unplaced(format!("position not 1-based: {d}")));
            }
            Some(p) if d.file == shown && p.line > last_line + 1 => {
                return Err(Unplaced(format!(
                    "line {} is past the end of the file ({last_line} lines): {d}",
                    p.line
                )));
            }
            Some(_) => {}
        }
    }
    Ok(Verdict::Rejected(diags.len()))
}

/// How many lines YAML sees in `input`: `\n`, `\r\n` and a lone `\r` each end one (editors
/// agree), so a file of `\r`-ended lines has positions past its last `\n`.
fn yaml_lines(input: &[u8]) -> usize {
    let mut lines = 1;
    let mut bytes = input.iter().peekable();
    while let Some(b) = bytes.next() {
        match b {
            b'\n' => lines += 1,
            b'\r' => {
                lines += 1;
                bytes.next_if_eq(&&b'\n');
            }
            _ => {}
        }
    }
    lines
}

/// `synmon.yaml` = `input`, loaded by [`crate::settings::Config::load_with_env`] with an empty
/// environment (so `${VAR}` results do not depend on the machine).
pub fn config(input: &[u8]) -> Result<Verdict, Unplaced> {
    let tree = Tree::new();
    let path = tree.write("synmon.yaml", input);
    let env: HashMap<String, String> = HashMap::new();
    match crate::settings::Config::load_with_env(&path, &env) {
        Ok(_) => Ok(Verdict::Accepted),
        Err(errors) => check_diagnostics(&errors.0, &path, input),
    }
}

/// `journeys/fuzzed.yaml` = `input`, loaded by [`crate::journey::load_file`] beside a shared step
/// file `_login.yaml` it may `use:`.
pub fn journey(input: &[u8]) -> Result<Verdict, Unplaced> {
    let tree = Tree::new();
    let path = tree.write("journeys/fuzzed.yaml", input);
    let ctx = LoadContext {
        variables: BTreeSet::from(["category".to_string()]),
        step_timeout: Duration::from_secs(5),
        navigation_timeout: Duration::from_secs(10),
        has_database: true,
        has_tenant: true,
        has_credentials: true,
    };
    match crate::journey::load_file(&path, &ctx) {
        Ok(_) => Ok(Verdict::Accepted),
        Err(errors) => check_diagnostics(&errors, &path, input),
    }
}

/// `alerts/fuzzed.yaml` = `input`, loaded by [`crate::rules::load::load_files`] together with a
/// valid rule file (so name clashes across files are exercised too).
pub fn rules(input: &[u8]) -> Result<Verdict, Unplaced> {
    let tree = Tree::new();
    let path = tree.write("alerts/fuzzed.yaml", input);
    let files = [tree.dir.path().join("alerts/rules.yaml"), path.clone()];
    let (_, errors) = crate::rules::load::load_files(&files);
    if errors.is_empty() {
        Ok(Verdict::Accepted)
    } else {
        check_diagnostics(&errors, &path, input)
    }
}

/// The instant the silence API is judged at: fixed, as the injected clock would be in a test.
pub fn api_now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 1, 12, 0, 0)
        .single()
        .expect("a valid instant")
}

/// A `POST /api/v1/silences` body through the handler's own steps: axum's `Json` parse (what the
/// extractor runs once the body is read), then [`NewSilence::into_silence`] at [`api_now`].
pub fn api_json(body: &[u8]) -> Result<Verdict, Unplaced> {
    let new = match Json::<NewSilence>::from_bytes(body) {
        Ok(Json(new)) => new,
        Err(rejection) => {
            let status = rejection.status();
            let text = rejection.body_text();
            if !status.is_client_error() {
                return Err(Unplaced(format!("answered {status}: {text}")));
            }
            return if has_line_and_column(&text) {
                Ok(Verdict::Rejected(1))
            } else {
                Err(Unplaced(format!(
                    "JSON error without line and column: {text}"
                )))
            };
        }
    };
    match new.into_silence("fuzz", api_now()) {
        Ok(_) => Ok(Verdict::Accepted),
        Err(msg) if SILENCE_FIELDS.iter().any(|f| msg.contains(f)) => Ok(Verdict::Rejected(1)),
        Err(msg) => Err(Unplaced(format!("validation error names no field: {msg}"))),
    }
}

/// serde_json appends `at line N column M` (1-based line) to every syntax and data error.
fn has_line_and_column(text: &str) -> bool {
    let Some(i) = text.rfind(" at line ") else {
        return false;
    };
    let mut words = text[i + " at line ".len()..].split(' ');
    let line = words.next().and_then(|w| w.parse::<u64>().ok());
    let column = (words.next() == Some("column"))
        .then(|| words.next().and_then(|w| w.parse::<u64>().ok()))
        .flatten();
    matches!((line, column), (Some(l), Some(_)) if l >= 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_and_column_are_read_from_serde_json_messages() {
        assert!(has_line_and_column("expected value at line 1 column 2"));
        assert!(has_line_and_column(
            "ends_at: premature end at line 3 column 10"
        ));
        assert!(!has_line_and_column("expected value at line 0 column 2"));
        assert!(!has_line_and_column("expected value"));
    }

    #[test]
    fn lines_end_at_lf_crlf_and_a_lone_cr() {
        assert_eq!(yaml_lines(b""), 1);
        assert_eq!(yaml_lines(b"a"), 1);
        assert_eq!(yaml_lines(b"a\nb\r\nc\rd"), 4);
        assert_eq!(yaml_lines(b"\r\r\n\n"), 4);
    }

    #[test]
    fn a_valid_tree_loads() {
        let tree = Tree::new();
        let path = tree.dir.path().join("synmon.yaml");
        let env: HashMap<String, String> = HashMap::new();
        let cfg = crate::settings::Config::load_with_env(&path, &env)
            .unwrap_or_else(|e| panic!("the companion tree must be valid:\n{e}"));
        assert_eq!(cfg.journeys.len(), 1);
        assert_eq!(cfg.rules.rules.len(), 1);
    }
}
