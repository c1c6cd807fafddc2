//! `synmon replay`: a scripted timeline of run outcomes and latencies (a scenario file) fed
//! through the daemon's own metrics registry, rule evaluation, inhibition, grouping and
//! notification pipeline on a manual clock, so a day of incidents replays in seconds and shows
//! the pages today's alerts would send.
//!
//! Three rooms: `scenario.rs` reads the file (every mistake with its line), `sim.rs` runs it
//! through the real pipeline, `report.rs` attributes what was paged to the incidents and judges
//! it against the bounds.

pub mod report;
pub mod scenario;
pub mod sim;

use std::path::Path;

use crate::config::Diagnostic;
use crate::settings::Config;

pub use report::{Report, build as build_report, render};
pub use scenario::{Incident, Kind, Scenario};

#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error("recording a replayed run: {0}")]
    Metrics(#[from] crate::metrics::registry::MetricsError),
    #[error("the evaluation was stopped")]
    Stopped,
}

/// Reads a scenario and checks it against the config: every check and location it names must
/// exist. All problems come back, each naming file, line and field.
pub fn load(path: &Path, cfg: &Config) -> Result<Scenario, Vec<Diagnostic>> {
    let sc = scenario::load(path)?;
    let mut errors = Vec::new();
    let defs = cfg.checks.defs();
    let known = |name: &str| defs.iter().any(|d| d.name() == name);
    let known_names = || {
        defs.iter()
            .map(|d| d.name().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    };
    for c in &sc.checks {
        if !known(&c.name) {
            errors.push(sc.diag(
                &format!("{}.name", c.path),
                format!(
                    "`{}` is not a check of {} (its checks: {})",
                    c.name,
                    cfg.file.display(),
                    known_names()
                ),
            ));
        }
    }
    let simulated = |name: &str| sc.checks.is_empty() || sc.checks.iter().any(|c| c.name == name);
    let locations: Vec<&str> = if sc.locations.is_empty() {
        vec![cfg.location.as_str()]
    } else {
        sc.locations.iter().map(String::as_str).collect()
    };
    for inc in &sc.incidents {
        for (j, c) in inc.checks.iter().enumerate() {
            if !known(c) || !simulated(c) {
                errors.push(sc.diag(
                    &format!("{}.checks[{j}]", inc.path),
                    format!("`{c}` is not a check this scenario runs"),
                ));
            }
        }
        for (j, l) in inc.locations.iter().enumerate() {
            if !locations.contains(&l.as_str()) {
                errors.push(sc.diag(
                    &format!("{}.locations[{j}]", inc.path),
                    format!(
                        "`{l}` is not a location of this scenario ({})",
                        locations.join(", ")
                    ),
                ));
            }
        }
    }
    if errors.is_empty() {
        Ok(sc)
    } else {
        Err(errors)
    }
}

/// Replays `sc` against the rules and routes of `cfg` and judges the result.
pub fn replay(cfg: &Config, sc: &Scenario) -> Result<Report, ReplayError> {
    let delivered = sim::run(cfg, sc)?;
    Ok(report::build(cfg, sc, &delivered))
}
