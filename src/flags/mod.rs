//! Feature flags as code: the flag registry (`flag_registry.yaml`), its
//! governance policy checked on load, and the quarterly audit.
//!
//! Owns the `flags:` config section ([`RawFlagsConfig`] -> [`FlagsConfig`]), the registry model
//! ([`Flag`], [`State`]), the load-time policy (owner present, `expires` at most 6 calendar
//! months after `created`, known states, unique keys, valid dates, no `removed` flag expiring in
//! the future) and what the policy asks at a given date ([`audit`]). An expired flag is not a
//! load error: it is an audit item, and the daemon alerts on it through
//! `synmon.flag.expiry_days` (set by the daemon's evaluator from [`Flag::days_left`]).
//!
//! Pure: no clock, no metrics; callers pass the date.

pub mod audit;
mod registry;

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::config::yaml::display_path;
pub use audit::{Action, AuditRow, audit};
pub use registry::{Flag, Registry, State, load_files};

/// `flags:` as written in `synmon.yaml`.
#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawFlagsConfig {
    /// Registry files, relative to the config's folder.
    #[serde(default)]
    pub files: Vec<String>,
}

/// The validated `flags:` section: the registry files and the flags they hold.
#[derive(Debug, Clone, Default)]
pub struct FlagsConfig {
    pub files: Vec<PathBuf>,
    pub registry: Registry,
}

/// Validates the section (files exist; `path` prefixes the messages: `flags.files[0]`); the
/// files themselves are read by [`load_files`].
pub fn validate(
    raw: Option<RawFlagsConfig>,
    dir: &Path,
    err: &mut dyn FnMut(&str, String),
) -> FlagsConfig {
    let raw = raw.unwrap_or_default();
    let mut files = Vec::new();
    for (i, f) in raw.files.iter().enumerate() {
        let p = dir.join(f);
        if p.is_file() {
            files.push(p);
        } else if p.is_dir() {
            err(
                &format!("flags.files[{i}]"),
                format!("{} is a folder, not a registry file", display_path(&p)),
            );
        } else {
            err(
                &format!("flags.files[{i}]"),
                format!("file {} does not exist", display_path(&p)),
            );
        }
    }
    FlagsConfig {
        files,
        registry: Registry::default(),
    }
}
