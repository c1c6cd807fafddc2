//! `synmon alerts`: work with the alert rules as code.

use std::path::{Path, PathBuf};

use crate::rules::{export, unittest};
use crate::settings::Config;

/// `synmon alerts test FILE...`: exit 0 all pass, 1 a test failed, 2 an invalid file.
pub fn test(files: &[PathBuf]) -> i32 {
    if files.is_empty() {
        eprintln!("give at least one test file");
        return 2;
    }
    unittest::run_files(files)
}

/// `synmon alerts export --format prometheus|datadog [--config FILE] [--out FILE]`: exit 0, or 2
/// when the configuration (rules included) is invalid or the output cannot be written.
pub fn export(format: &str, config: &Path, out: Option<&Path>) -> i32 {
    let cfg = match Config::load(config) {
        Ok(cfg) => cfg,
        Err(errors) => {
            for e in &errors.0 {
                eprintln!("{e}");
            }
            eprintln!("{} error(s) in configuration", errors.0.len());
            return 2;
        }
    };
    let text = match format {
        "prometheus" => export::prometheus(&cfg.rules),
        "datadog" => {
            let mut s = serde_json::to_string_pretty(&export::datadog(&cfg.rules))
                .unwrap_or_else(|_| "[]".into());
            s.push('\n');
            s
        }
        other => {
            eprintln!("unknown format `{other}` (prometheus, datadog)");
            return 2;
        }
    };
    match out {
        None => {
            print!("{text}");
            0
        }
        Some(path) => match std::fs::write(path, text) {
            Ok(()) => 0,
            Err(e) => {
                eprintln!("cannot write {}: {e}", path.display());
                2
            }
        },
    }
}
