//! `synmon report --since 7d --out DIR`: the offline HTML report for pilot reviews (R8),
//! written to `DIR/index.html`. Exit 0 written, 2 config/store/file errors.

use std::path::PathBuf;

use anyhow::Context as _;

use crate::clock::{Clock, SystemClock};
use crate::gate::{self, Samples, Targets};

#[derive(Debug, clap::Args)]
pub struct ReportArgs {
    /// How far back the report goes (e.g. `24h`, `7d`, `30d`; at most `400d`).
    #[arg(long, default_value = "7d", value_parser = |s: &str| gate::api::WINDOW.check_arg(s))]
    pub since: String,
    /// The folder to write `index.html` into (created if missing).
    #[arg(long)]
    pub out: PathBuf,
    #[arg(long, default_value = "synmon.yaml")]
    pub config: PathBuf,
}

pub async fn run(a: ReportArgs) -> i32 {
    let cfg = match super::load_config(&a.config) {
        Ok(c) => c,
        Err(code) => return code,
    };
    match write(&a, &cfg, &SystemClock).await {
        Ok(file) => {
            println!("{}", file.display());
            0
        }
        Err(e) => {
            eprintln!("synmon report: {e:#}");
            2
        }
    }
}

/// Builds the report from the config's store and writes it; returns the file.
pub async fn write(
    a: &ReportArgs,
    cfg: &crate::settings::Config,
    clock: &dyn Clock,
) -> anyhow::Result<PathBuf> {
    let since = gate::api::WINDOW
        .parse(&a.since)
        .map_err(|e| anyhow::anyhow!("--since: {e}"))?;
    let to = clock.now();
    let from = gate::window_start(to, since);
    let store = crate::store::Store::connect(&cfg.store_url).await?;
    let points = store.run_points_since(from).await;
    let alerts = gate::samples::stored_page_alerts(&store).await;
    store.close().await;
    let points: Vec<_> = points?.into_iter().filter(|p| p.started_at <= to).collect();
    let targets = Targets::default();
    let checks = gate::gated_checks(cfg, &targets);
    let samples = Samples {
        mode: gate::Mode::Window {
            window: a.since.clone(),
        },
        from,
        to,
        checks: gate::samples::from_points(&points),
        feed_push_success_rate: gate::samples::feed_push_from_database(cfg).await,
        page_alerts: alerts,
    };
    let verdicts = gate::judge(&samples, &checks, &targets);
    // The flags as of the report's end, as `synmon flags audit --at` lists them.
    let flags = (!cfg.flags.registry.flags.is_empty())
        .then(|| crate::flags::audit::next_expiries(&cfg.flags.registry, to.date_naive()));
    let html = gate::report::render(
        &points,
        &checks,
        targets.availability_pct,
        &verdicts,
        flags.as_deref(),
        from,
        to,
    );
    std::fs::create_dir_all(&a.out).with_context(|| format!("creating {}", a.out.display()))?;
    let file = a.out.join("index.html");
    std::fs::write(&file, html).with_context(|| format!("writing {}", file.display()))?;
    Ok(file)
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use crate::cli::Cli;

    #[test]
    fn since_past_400_days_is_a_usage_error_naming_the_bound() {
        let e = Cli::try_parse_from(["synmon", "report", "--since", "401d", "--out", "x"])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("`401d` is longer than the longest allowed window (400d)"),
            "{e}"
        );
    }
}
