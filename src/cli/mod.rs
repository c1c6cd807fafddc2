//! The command line: parsing and dispatch. Each subcommand lives in its own file; errors become
//! exit codes here and nowhere else.

mod alerts;
mod check;
mod gate;
mod once;
mod report;
mod run;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "synmon",
    version,
    about = "Synthetic monitoring and SLO alerting"
)]
pub struct Cli {
    /// Log format on stderr: `text` (readable) or `json` (for log shipping).
    #[arg(long, global = true, default_value = "text", value_parser = ["text", "json"])]
    pub log_format: String,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Load and validate the config, journeys, alerts and dashboards (exit 0 valid, 2 invalid).
    Check {
        #[arg(long, default_value = "synmon.yaml")]
        config: PathBuf,
    },
    /// The daemon: run every check on its schedule and serve the API (default 127.0.0.1:3005).
    Run {
        #[arg(long, default_value = "synmon.yaml")]
        config: PathBuf,
        /// Listen address for the HTTP server (overrides `server.listen`).
        #[arg(long)]
        listen: Option<std::net::SocketAddr>,
        /// The target environment; default: the config's.
        #[arg(long)]
        target: Option<String>,
        /// Monitor this base URL instead of the target's.
        #[arg(long)]
        base_url: Option<String>,
    },
    /// Run one journey now and print its steps (exit 0 pass, 1 fail, 2 probe error or config).
    Once {
        /// A journey name (align_category, save_profile, feed_push) or the path of a journey file.
        journey: String,
        #[arg(long, default_value = "synmon.yaml")]
        config: PathBuf,
        /// The target environment (staging, pilot, production); default: the config's.
        #[arg(long)]
        target: Option<String>,
        /// Run against this base URL instead of the target's.
        #[arg(long)]
        base_url: Option<String>,
        /// Print one JSON object instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Alert rules as code: `synmon alerts test FILE...` runs rule unit tests; `synmon alerts
    /// export --format prometheus|datadog` writes them for another alerting system.
    Alerts {
        #[command(subcommand)]
        command: AlertsCommand,
    },
    /// The release gate: judge the SLA over a stored window (`--window 1h`, optionally from a
    /// daemon with `--source URL`) or over fresh runs (`--runs N`). Exit 0 pass, 1 SLA breached,
    /// 2 cannot judge.
    Gate(gate::GateArgs),
    /// An offline HTML report (p95 per journey, availability, error budget) for pilot reviews.
    Report(report::ReportArgs),
}

#[derive(Debug, Subcommand)]
pub enum AlertsCommand {
    /// Run rule unit tests (exit 0 all pass, 1 a test failed, 2 an invalid file).
    Test {
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Write the rules and SLOs as Prometheus rule groups or Datadog monitors (exit 0, or 2 on
    /// config errors).
    Export {
        #[arg(long, value_parser = ["prometheus", "datadog"])]
        format: String,
        #[arg(long, default_value = "synmon.yaml")]
        config: PathBuf,
        /// Write here instead of stdout.
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

/// Loads the config as every subcommand does: errors go to stderr, one per line, and the
/// caller exits 2.
pub(crate) fn load_config(path: &std::path::Path) -> Result<crate::config::Config, i32> {
    crate::config::Config::load(path).map_err(|errors| {
        for e in &errors.0 {
            eprintln!("{e}");
        }
        2
    })
}

/// Sends logs to stderr (stdout carries only command output), filtered by `RUST_LOG`.
pub fn init_tracing(default: &str, json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    let _ = if json {
        builder.json().with_current_span(true).try_init()
    } else {
        builder.try_init()
    };
}

/// Runs the parsed command and returns the process exit code.
pub async fn run(cli: Cli) -> i32 {
    crate::tls::install();
    match cli.command {
        Command::Check { config } => check::run(&config),
        Command::Run {
            config,
            listen,
            target,
            base_url,
        } => run::run(&config, listen, target, base_url.as_deref()).await,
        Command::Once {
            journey,
            config,
            target,
            base_url,
            json,
        } => {
            once::run(
                &config,
                &journey,
                target.as_deref(),
                base_url.as_deref(),
                json,
            )
            .await
        }
        Command::Alerts {
            command: AlertsCommand::Test { files },
        } => alerts::test(&files),
        Command::Alerts {
            command:
                AlertsCommand::Export {
                    format,
                    config,
                    out,
                },
        } => alerts::export(&format, &config, out.as_deref()),
        Command::Gate(args) => gate::run(args).await,
        Command::Report(args) => report::run(args).await,
    }
}
