//! The command line: parsing and dispatch. Each subcommand lives in its own file; errors become
//! exit codes here and nowhere else.

mod alerts;
mod check;
mod dashboards;
pub mod demo;
mod flags;
mod gate;
mod notify;
mod once;
mod replay;
mod report;
mod run;
mod schema;

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
    /// Notifications: `synmon notify test --receiver NAME [--resolve]` sends a labelled test
    /// alert to one receiver now (exit 0 delivered, 1 refused, 2 config error).
    Notify {
        #[command(subcommand)]
        command: NotifyCommand,
    },
    /// Alert rules as code: `synmon alerts test FILE...` runs rule unit tests; `synmon alerts
    /// export --format prometheus|datadog` writes them for another alerting system.
    Alerts {
        #[command(subcommand)]
        command: AlertsCommand,
    },
    /// Dashboards as code (dashboards/*.json, Datadog /api/v1/dashboard schema): lint, diff
    /// and push to Datadog, render for Grafana.
    Dashboards {
        #[command(subcommand)]
        command: DashboardsCommand,
    },
    /// The release gate: judge the SLA over a stored window (`--window 1h`, optionally from a
    /// daemon with `--source URL`) or over fresh runs (`--runs N`). Exit 0 pass, 1 SLA breached,
    /// 2 cannot judge.
    Gate(gate::GateArgs),
    /// The feature-flag registry: `synmon flags audit [--at DATE] [--json]` prints the quarterly
    /// audit (exit 0 clean, 1 something due, 2 a bad file).
    Flags {
        #[command(subcommand)]
        command: FlagsCommand,
    },
    /// An offline HTML report (p95 per journey, availability, error budget) for pilot reviews.
    Report(report::ReportArgs),
    /// Replay a scenario (a scripted timeline of outages, latency spikes, flapping, probe
    /// crashes...) through the real rules, inhibition, grouping and routing on a manual clock,
    /// in seconds; print the pages per incident (exit 0 every incident within its bounds, 1
    /// otherwise, 2 a bad scenario or config).
    Replay {
        scenario: PathBuf,
        #[arg(long, default_value = "synmon.yaml")]
        config: PathBuf,
        /// Print one JSON object instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// The one-command demo: starts `rvp-sandbox` (beside this executable or on PATH), a
    /// supervised chromedriver and the daemon with the example config; `--faults` makes an
    /// alert fire and resolve (exit 0 on SIGTERM/SIGINT, 1 the sandbox died, 2 cannot start).
    Demo(demo::Args),
    /// The JSON Schema of synmon.yaml (`config`), journey files (`journey`), alert rule files
    /// (`alerts`) or alert unit-test files (`alert-tests`), for editors; `--write DIR` writes
    /// all four (exit 0, 2 cannot write).
    Schema(schema::Args),
}

#[derive(Debug, Subcommand)]
pub enum DashboardsCommand {
    /// Check every dashboard against the schema and the metric catalog (exit 0 clean, 1 lint
    /// errors, 2 configuration errors).
    Lint {
        #[arg(long, default_value = "synmon.yaml")]
        config: PathBuf,
    },
    /// Print what push would change on Datadog (exit 0 in sync, 1 differences or lint errors,
    /// 2 cannot compare: configuration, API keys, Datadog unreachable or refusing).
    Diff {
        #[arg(long, default_value = "synmon.yaml")]
        config: PathBuf,
    },
    /// Create or update each dashboard on Datadog, found by its `id` or title; prints the diff
    /// first (exit 0 in sync, 1 lint errors or Datadog refused a dashboard, 2 configuration, API
    /// keys, or Datadog unreachable).
    Push {
        #[arg(long, default_value = "synmon.yaml")]
        config: PathBuf,
        /// Print the diff and what would happen; send nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Write the dashboards as Grafana JSON over synmon's /metrics names (exit 0 written, 1
    /// lint errors or a query with no PromQL rendering, 2 configuration or output errors).
    Render {
        #[arg(long, default_value = "synmon.yaml")]
        config: PathBuf,
        /// Output folder for Grafana dashboards (one JSON file per dashboard).
        #[arg(long, value_name = "OUT_DIR", required = true)]
        grafana: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
pub enum FlagsCommand {
    /// Every flag with its state, owner, days to expiry and what the policy asks now: renew or
    /// remove (expires within 30 days, or expired), remove from code (expired > 30 days).
    Audit(flags::AuditArgs),
}

#[derive(Debug, Subcommand)]
pub enum NotifyCommand {
    /// Send a test alert (and with --resolve, its resolve) to one receiver through its real
    /// payload builder, the outbox and the retry policy; print what the receiver answered.
    Test {
        #[arg(long)]
        receiver: String,
        #[arg(long, default_value = "synmon.yaml")]
        config: PathBuf,
        /// Also send the resolve of the test alert, with the same key.
        #[arg(long)]
        resolve: bool,
    },
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

/// The labelled test notification `synmon notify test` sends (also for tests).
pub use notify::test_notification as notify_test_notification;

/// Loads the config as every subcommand does: errors go to stderr, one per line, and the
/// caller exits 2.
pub(crate) fn load_config(path: &std::path::Path) -> Result<crate::settings::Config, i32> {
    crate::settings::Config::load(path).map_err(|errors| {
        for e in &errors.0 {
            eprintln!("{e}");
        }
        2
    })
}

/// Sends logs to stderr (stdout carries only command output), filtered by `RUST_LOG`.
pub fn init_tracing(default: &str, json: bool) {
    let mut filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    // The WebSocket libraries print whole frames at trace level, and a browser's frames carry
    // page data: a login form's body, typed password included, comes in the DevTools event
    // that pauses the request to add its trace headers. Whatever `RUST_LOG` says, they log
    // nothing below info.
    for quiet in ["tungstenite=info", "tokio_tungstenite=info"] {
        filter = filter.add_directive(quiet.parse().expect("a valid directive"));
    }
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
        Command::Notify {
            command:
                NotifyCommand::Test {
                    receiver,
                    config,
                    resolve,
                },
        } => notify::test(&config, &receiver, resolve).await,
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
        Command::Dashboards { command } => match command {
            DashboardsCommand::Lint { config } => dashboards::lint(&config),
            DashboardsCommand::Diff { config } => dashboards::sync(&config, false, false).await,
            DashboardsCommand::Push { config, dry_run } => {
                dashboards::sync(&config, true, dry_run).await
            }
            DashboardsCommand::Render { config, grafana } => dashboards::render(&config, &grafana),
        },
        Command::Flags {
            command: FlagsCommand::Audit(args),
        } => flags::audit(args),
        Command::Gate(args) => gate::run(args).await,
        Command::Report(args) => report::run(args).await,
        Command::Demo(args) => demo::run(args).await,
        Command::Replay {
            scenario,
            config,
            json,
        } => replay::run(&scenario, &config, json),
        Command::Schema(args) => schema::run(args),
    }
}
