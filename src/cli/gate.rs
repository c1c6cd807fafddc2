//! `synmon gate`: the release gate. Exit 0 pass, 1 SLA breached, 2 cannot judge (config,
//! connectivity, too few samples, too many probe errors).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;

use crate::clock::{Clock, SystemClock};
use crate::gate::{self, Samples, Targets};

#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("mode").required(true).args(["window", "runs"])))]
pub struct GateArgs {
    /// Judge the stored runs of this rolling window (e.g. `1h`, `30d`; at most `400d`) and the
    /// alerts firing now.
    #[arg(long, value_parser = |s: &str| gate::api::WINDOW.check_arg(s))]
    pub window: Option<String>,
    /// Run every journey and API check N times now and judge only those runs.
    #[arg(long)]
    pub runs: Option<u32>,
    #[arg(long, default_value = "synmon.yaml")]
    pub config: PathBuf,
    /// Ask a running daemon's API (e.g. http://host:3005) instead of reading the store.
    #[arg(long, requires = "window")]
    pub source: Option<String>,
    /// The daemon's `server.auth_token`, when it sets one (read from the environment so it
    /// never shows in a process list or a CI log).
    #[arg(
        long,
        env = "SYNMON_SOURCE_TOKEN",
        hide_env_values = true,
        requires = "source"
    )]
    pub source_token: Option<String>,
    /// The target environment for `--runs` (staging, pilot, production); default: the config's.
    #[arg(long)]
    pub target: Option<String>,
    /// Run against this base URL instead of the target's (`--runs`).
    #[arg(long)]
    pub base_url: Option<String>,
    /// Also write the verdicts as JSON here.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Also write JUnit XML here (one testcase per check and criterion).
    #[arg(long)]
    pub junit: Option<PathBuf>,
    /// Window mode: fewer judged runs of a check than this cannot be judged (exit 2).
    #[arg(long, default_value_t = 20)]
    pub min_samples: u64,
    /// More probe errors than this percentage of a check's runs cannot be judged (exit 2).
    #[arg(long, default_value_t = 10.0)]
    pub max_probe_errors: f64,
    /// Where the day's `perf-YYYYMMDD.json` goes (the platform keeps reports in ops/reports).
    #[arg(long, default_value = "ops/reports")]
    pub reports_dir: PathBuf,
}

pub async fn run(a: GateArgs) -> i32 {
    let cfg = match super::load_config(&a.config) {
        Ok(c) => c,
        Err(code) => return code,
    };
    match judge(a, cfg, Arc::new(SystemClock)).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("synmon gate: cannot judge: {e:#}");
            2
        }
    }
}

async fn judge(
    a: GateArgs,
    cfg: crate::settings::Config,
    clock: Arc<dyn Clock>,
) -> anyhow::Result<i32> {
    let targets = Targets {
        min_samples: a.min_samples,
        max_probe_error_pct: a.max_probe_errors,
        ..Targets::default()
    };
    let checks = gate::gated_checks(&cfg, &targets);
    let samples = match (&a.window, a.runs) {
        (Some(w), _) => {
            let window = gate::api::WINDOW
                .parse(w)
                .map_err(|e| anyhow::anyhow!("--window: {e}"))?;
            match &a.source {
                Some(url) => from_source(url, w, a.source_token.as_deref()).await?,
                None => {
                    let store = crate::store::Store::connect(&cfg.store_url).await?;
                    let s = gate::samples::from_store(&store, &cfg, w, window, clock.now()).await;
                    store.close().await;
                    s?
                }
            }
        }
        (None, Some(n)) => {
            anyhow::ensure!(n > 0, "--runs must be at least 1");
            let mut target = cfg
                .target(a.target.as_deref())
                .map_err(|e| anyhow::anyhow!(e))?
                .clone();
            if let Some(u) = &a.base_url {
                target.base_url = reqwest::Url::parse(u)
                    .ok()
                    .filter(|u| matches!(u.scheme(), "http" | "https"))
                    .with_context(|| format!("--base-url: `{u}` is not an http(s) URL"))?;
            }
            let cfg = Arc::new(cfg.clone());
            let from = clock.now();
            let runs = gate::fresh::run_checks(
                cfg.clone(),
                &target,
                &checks,
                n,
                clock.clone(),
                &mut |r| {
                    tracing::info!(check = %r.check, outcome = %r.outcome, latency_ms = r.slo_latency_ms(), error = r.error.as_deref().unwrap_or(""), "gate run");
                },
            )
            .await;
            gate::fresh::samples(&cfg, &runs, n, from, clock.now()).await
        }
        (None, None) => anyhow::bail!("give --window D or --runs N"),
    };
    let v = gate::judge(&samples, &checks, &targets);
    print!("{}", gate::output::table(&v));
    if let Some(p) = &a.json {
        std::fs::write(p, gate::output::json(&v))
            .with_context(|| format!("writing {}", p.display()))?;
    }
    if let Some(p) = &a.junit {
        std::fs::write(p, gate::output::junit(&v))
            .with_context(|| format!("writing {}", p.display()))?;
    }
    match gate::output::write_perf_report(&a.reports_dir, &v) {
        Ok(f) => eprintln!("synmon gate: wrote {}", f.display()),
        Err(e) => anyhow::bail!("writing the report into {}: {e}", a.reports_dir.display()),
    }
    Ok(v.exit_code)
}

/// The samples a running daemon serves on `GET /api/v1/gate`.
async fn from_source(base: &str, window: &str, token: Option<&str>) -> anyhow::Result<Samples> {
    let mut url = reqwest::Url::parse(base)
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https"))
        .with_context(|| format!("--source: `{base}` is not an http(s) URL"))?;
    url.set_path("/api/v1/gate");
    url.query_pairs_mut().clear().append_pair("window", window);
    let mut req = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()?
        .get(url.clone());
    if let Some(t) = token.filter(|t| !t.is_empty()) {
        req = req.bearer_auth(t);
    }
    let resp = req.send().await.with_context(|| format!("asking {url}"))?;
    let status = resp.status();
    anyhow::ensure!(
        status.is_success(),
        "{url} answered {status}: {}",
        resp.text().await.unwrap_or_default()
    );
    resp.json::<Samples>()
        .await
        .with_context(|| format!("{url} did not answer gate samples"))
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use crate::cli::{Cli, Command};

    #[test]
    fn a_window_past_400_days_is_a_usage_error_naming_the_bound() {
        let e = Cli::try_parse_from(["synmon", "gate", "--window", "99999999999999d"])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("`99999999999999d` is longer than the longest allowed window (400d)"),
            "{e}"
        );
    }

    #[test]
    fn a_window_within_the_bound_keeps_its_text() {
        let cli = Cli::try_parse_from(["synmon", "gate", "--window", "400d"]).unwrap();
        let Command::Gate(a) = cli.command else {
            panic!("not the gate command")
        };
        assert_eq!(a.window.as_deref(), Some("400d"));
    }
}
