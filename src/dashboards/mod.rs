//! Dashboards as code: `dashboards/*.json` in Datadog's `/api/v1/dashboard` schema, linted
//! against the schema and synmon's metric catalog, pushed idempotently to Datadog, and
//! rendered as Grafana dashboards over `/metrics` for teams on Prometheus.
//!
//! One file per concern: [`model`] (schema), [`query`] (Datadog metric queries), [`lint`]
//! (catalog), [`client`] (Datadog API), [`diff`] (readable differences), [`grafana`] (render).

pub mod client;
pub mod diff;
pub mod grafana;
pub mod lint;
pub mod model;
pub mod query;
pub mod sync;

use std::fmt;
use std::path::{Path, PathBuf};

pub use client::{ApiError, DatadogClient, Sleeper, TokioSleeper};
pub use lint::LintOptions;
pub use model::Dashboard;

/// One problem in one dashboard file: `file[:line:col]: $.json.path: message`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct LintError {
    pub file: String,
    /// Line and column, for JSON syntax errors.
    pub pos: Option<(usize, usize)>,
    /// The JSON path (`$.widgets[0].definition.type`), empty for whole-file problems.
    pub path: String,
    pub message: String,
}

impl fmt::Display for LintError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.file)?;
        if let Some((l, c)) = self.pos {
            write!(f, ":{l}:{c}")?;
        }
        if !self.path.is_empty() {
            write!(f, ": {}", self.path)?;
        }
        write!(f, ": {}", self.message)
    }
}

/// The `*.json` files of a dashboards folder, sorted by name.
pub fn files(dir: &Path) -> Result<Vec<PathBuf>, LintError> {
    let shown = crate::config::yaml::display_path(dir);
    let entries = std::fs::read_dir(dir).map_err(|e| LintError {
        file: shown.clone(),
        pos: None,
        path: String::new(),
        message: format!("cannot read the dashboards folder: {e}"),
    })?;
    let mut out: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_file() && p.extension().is_some_and(|e| e == "json"))
        .collect();
    out.sort();
    Ok(out)
}

/// Load and lint every dashboard of `dir`: the valid ones, and every problem of the others
/// (a file with schema errors still has its metrics checked, so one run reports everything).
pub fn load_dir(dir: &Path, opts: &LintOptions) -> (Vec<Dashboard>, Vec<LintError>) {
    let mut dashboards = Vec::new();
    let mut errors = Vec::new();
    let paths = match files(dir) {
        Ok(p) => p,
        Err(e) => return (dashboards, vec![e]),
    };
    let mut titles: Vec<(String, String)> = Vec::new();
    for path in paths {
        let shown = crate::config::yaml::display_path(&path);
        use crate::config::file::{MAX_INPUT_BYTES, ReadError, read_text};
        let text = match read_text(&path, MAX_INPUT_BYTES) {
            Ok(t) => t,
            Err(e) => {
                let (pos, message) = match e {
                    ReadError::Io(e) => (None, format!("cannot read: {e}")),
                    ReadError::NotUtf8 { line, col, .. } => (
                        Some((line, col)),
                        "not UTF-8 text; synmon reads UTF-8 (save the file as UTF-8)".into(),
                    ),
                    e => (None, format!("the file {e}")),
                };
                errors.push(LintError {
                    file: shown,
                    pos,
                    path: String::new(),
                    message,
                });
                continue;
            }
        };
        match model::check(&shown, &text) {
            Ok(d) => {
                let errs = lint::check(&d, opts);
                if let Some((other, _)) = titles.iter().find(|(_, t)| *t == d.title) {
                    errors.push(LintError {
                        file: shown.clone(),
                        pos: None,
                        path: "$.title".into(),
                        message: format!(
                            "\"{}\" is also the title of {other}: push finds dashboards by title",
                            d.title
                        ),
                    });
                }
                titles.push((shown, d.title.clone()));
                if errs.is_empty() {
                    dashboards.push(d);
                } else {
                    errors.extend(errs);
                }
            }
            Err(mut schema) => {
                if schema.iter().all(|e| e.pos.is_none())
                    && let Ok(json) = serde_json::from_str::<serde_json::Value>(&text)
                {
                    let (queries, vars, _) = model::queries_of(&shown, &json);
                    schema.extend(lint::check_queries(&shown, &queries, &vars, opts));
                }
                errors.extend(schema);
            }
        }
    }
    (dashboards, errors)
}

/// Lint options from the config's `statsd:` section (the DogStatsD prefix and global tags).
pub fn lint_options(statsd: Option<&crate::metrics::statsd::StatsdConfig>) -> LintOptions {
    match statsd {
        Some(s) => LintOptions {
            prefix: s.prefix.clone(),
            global_tags: s.tags.keys().cloned().collect(),
        },
        None => LintOptions::default(),
    }
}
