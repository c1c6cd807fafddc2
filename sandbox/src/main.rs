//! `rvp-sandbox`: runs the RVP stand-in until SIGTERM or Ctrl-C.

use std::net::SocketAddr;

use clap::Parser;
use rvp_sandbox::{SandboxConfig, db::mask_url};

#[derive(Parser, Debug)]
#[command(
    name = "rvp-sandbox",
    version,
    about = "A small stand-in for the retail visibility platform (RVP)"
)]
struct Cli {
    /// Address to listen on.
    #[arg(long, env = "RVP_SANDBOX_LISTEN", default_value = "127.0.0.1:3000")]
    listen: SocketAddr,
    /// sqlite://PATH (created if missing) or postgres://USER@HOST:PORT/DB.
    #[arg(
        long,
        env = "RVP_SANDBOX_DATABASE_URL",
        default_value = "sqlite://rvp-sandbox.db"
    )]
    database_url: String,
    /// Bearer token for /__sandbox/faults; the fault API is off without it.
    #[arg(long, env = "RVP_SANDBOX_ADMIN_TOKEN")]
    admin_token: Option<String>,
    /// Divide feed-job retry delays by this factor.
    #[arg(long, env = "RVP_SANDBOX_TIME_SCALE", default_value_t = 1.0)]
    time_scale: f64,
    /// Password of synthetic@rvp.test.
    #[arg(
        long,
        env = "RVP_SANDBOX_SYNTHETIC_PASSWORD",
        default_value = "synthetic-demo"
    )]
    synthetic_password: String,
    /// API requests per minute per client.
    #[arg(
        long,
        env = "RVP_SANDBOX_RATE_LIMIT_PER_MINUTE",
        default_value_t = 1000
    )]
    rate_limit_per_minute: u32,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,sqlx=warn".into()),
        )
        .init();
    let cli = Cli::parse();
    let config = SandboxConfig {
        listen: cli.listen,
        database_url: cli.database_url,
        admin_token: cli.admin_token.filter(|t| !t.is_empty()),
        time_scale: cli.time_scale,
        synthetic_password: cli.synthetic_password,
        rate_limit_per_minute: cli.rate_limit_per_minute,
    };
    let db_shown = mask_url(&config.database_url);
    let sandbox = match rvp_sandbox::start(config).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("rvp-sandbox: {e:#}");
            return std::process::ExitCode::from(2);
        }
    };
    println!("rvp-sandbox listening on {}", sandbox.base_url());
    println!("database: {db_shown}");
    wait_for_signal().await;
    tracing::info!("shutting down");
    sandbox.shutdown().await;
    std::process::ExitCode::SUCCESS
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
