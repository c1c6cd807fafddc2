//! `synmon run`: the daemon. SIGTERM/SIGINT stop it gracefully (exit 0); SIGHUP reloads the
//! config, keeping the running one when the new file is invalid.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use tokio::signal::unix::{SignalKind, signal};

use crate::clock::SystemClock;
use crate::daemon::{Daemon, Options};

pub async fn run(
    config: &Path,
    listen: Option<SocketAddr>,
    target: Option<String>,
    base_url: Option<&str>,
) -> i32 {
    let cfg = match super::load_config(config) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let base_url = match base_url.map(reqwest::Url::parse) {
        None => None,
        Some(Ok(u)) if matches!(u.scheme(), "http" | "https") => Some(u),
        Some(_) => {
            eprintln!("--base-url: not an http(s) URL");
            return 2;
        }
    };
    let (Ok(mut term), Ok(mut int), Ok(mut hup)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
        signal(SignalKind::hangup()),
    ) else {
        eprintln!("cannot install signal handlers");
        return 2;
    };
    let options = Options {
        listen,
        target,
        base_url,
        ..Options::default()
    };
    let daemon = match Daemon::start(cfg, options, Arc::new(SystemClock)).await {
        Ok(d) => d,
        Err(e) => {
            eprintln!("synmon: {e}");
            return 2;
        }
    };
    eprintln!(
        "synmon: serving http://{} (status, /metrics, /api/v1/checks)",
        daemon.addr
    );
    loop {
        tokio::select! {
            _ = term.recv() => break,
            _ = int.recv() => break,
            _ = hup.recv() => {
                tracing::info!("SIGHUP: reloading the config");
                let _ = daemon.reload().await;
            }
        }
    }
    tracing::info!("stopping");
    daemon.shutdown().await;
    0
}
