//! `synmon check`: the same loader as `run`, reporting instead of starting.

use std::path::Path;

use crate::settings::Config;

pub fn run(config: &Path) -> i32 {
    match Config::load(config) {
        Ok(cfg) => {
            if cfg.dashboards_dir.is_dir() {
                let opts = crate::dashboards::lint_options(cfg.statsd.as_ref());
                let (_, errors) = crate::dashboards::load_dir(&cfg.dashboards_dir, &opts);
                if !errors.is_empty() {
                    for e in &errors {
                        eprintln!("{e}");
                    }
                    eprintln!("{} error(s) in dashboards", errors.len());
                    return 2;
                }
            }
            // Not an error (the alert still reaches the root receiver), but almost always a typo.
            for (file, rule, route) in
                crate::notify::config::unrouted(&cfg.rules, &cfg.notify.route)
            {
                eprintln!(
                    "warning: {file}: rule `{rule}`: `route: {route}` matches no node of `route:`; its alerts go to the root receiver `{}`",
                    cfg.notify.route.receiver
                );
            }
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
