//! `synmon check`: the same loader as `run`, reporting instead of starting.

use std::path::Path;

use crate::config::Config;

pub fn run(config: &Path) -> i32 {
    match Config::load(config) {
        Ok(cfg) => {
            println!(
                "{}: ok ({} journeys: {})",
                config.display(),
                cfg.journeys.len(),
                cfg.journeys
                    .iter()
                    .map(|j| j.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            0
        }
        Err(errors) => {
            for e in &errors.0 {
                eprintln!("{e}");
            }
            eprintln!("{} error(s) in configuration", errors.0.len());
            2
        }
    }
}
