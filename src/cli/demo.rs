//! `synmon demo`: the one-command tour. It starts the `rvp-sandbox` program (a separate binary,
//! found beside this executable or on PATH: synmon's library never links the sandbox), runs the
//! daemon in this process with the example config against it, starts the daemon's supervised
//! chromedriver up front (so a missing or broken browser shows at once, not at the first
//! journey), and with `--faults` breaks the sandbox on purpose for a while so a newcomer sees an
//! alert fire on the console and then resolve.
//!
//! SIGTERM and SIGINT stop everything in order: the daemon first (it quits the browsers and
//! kills chromedriver's process group, so no Chromium is left behind), then the sandbox (which
//! runs in its own process group, so a terminal's Ctrl-C does not kill it while the daemon is
//! still probing it and paging about the outage it caused). Exit 0.
//!
//! Exit codes: 0 stopped by a signal; 1 the sandbox died while the demo ran; 2 could not start
//! (invalid config, no sandbox binary, no browser, a busy port).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::ValueEnum;
use tokio::process::{Child, Command};
use tokio::signal::unix::{SignalKind, signal};

use crate::clock::SystemClock;
use crate::config::Secret;
use crate::config::duration::{Bound, DAY};
use crate::daemon::{Daemon, Options};
use crate::journey::program::{is_executable, which};
use crate::settings::Config;

/// The sandbox program's name (the `rvp-sandbox` package's binary).
pub const SANDBOX_BIN: &str = "rvp-sandbox";

/// The one install command for the browser, said wherever it is missing.
pub const INSTALL_COMMAND: &str =
    "apt-get install -y chromium chromium-driver chromium-headless-shell";

/// Faults stay on at most a day: a demo is watched, not left running broken.
const FAULT_FOR: Bound = Bound::positive("fault duration", DAY);

/// Admin token of the sandbox's fault API when `RVP_SANDBOX_ADMIN_TOKEN` is not set (the demo
/// sandbox listens on loopback only; it guards test-double switches, not customer data).
const DEFAULT_ADMIN_TOKEN: &str = "demo-admin";

/// What `--faults` breaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Faults {
    /// 800 ms on the category mapping route: `align_category` p95 > 400 ms
    /// (`journey_latency_p95_high`).
    Latency,
    /// 503 from the inventory service's health route: `inventory_health` fails
    /// (`check_failing`).
    Errors,
    /// The sandbox's database goes down: every journey and API check fails.
    Outage,
}

impl Faults {
    /// The sandbox fault objects (see sandbox/src/faults.rs).
    pub fn body(self) -> serde_json::Value {
        match self {
            Faults::Latency => serde_json::json!([
                {"kind": "latency", "route": "/api/t/*/categories/*/mapping", "ms": 800}
            ]),
            Faults::Errors => serde_json::json!([
                {"kind": "error", "route": "/svc/inventory/healthz", "rate": 1.0, "status": 503}
            ]),
            Faults::Outage => serde_json::json!([{"kind": "db_down"}]),
        }
    }

    fn explain(self) -> &'static str {
        match self {
            Faults::Latency => {
                "800 ms added to the category mapping save: expect `journey_latency_p95_high` \
                 for align_category (p95 > 400 ms) to go pending, then fire on the console within minutes"
            }
            Faults::Errors => {
                "/svc/inventory/healthz answers 503: expect `check_failing` for \
                 inventory_health on the console within a minute (its run and retest failed)"
            }
            Faults::Outage => {
                "the sandbox's database is down: every journey and API check fails; expect \
                 one `target_down` naming the failing checks within a minute"
            }
        }
    }
}

/// The demo's command-line arguments.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    #[arg(long, default_value = "synmon.example.yaml")]
    pub config: PathBuf,
    /// Break the sandbox for `--fault-for`: latency (category mapping save), errors (a
    /// service health route answers 503) or outage (the sandbox's database goes down).
    #[arg(long, value_enum)]
    pub faults: Option<Faults>,
    /// How long the faults stay on before they are cleared (the alert then resolves; at most
    /// `1d`).
    #[arg(long, default_value = "5m", value_parser = |s: &str| FAULT_FOR.parse(s))]
    pub fault_for: Duration,
    /// Listen address of the daemon (overrides `server.listen`, default 127.0.0.1:3005).
    #[arg(long)]
    pub listen: Option<SocketAddr>,
    /// Port of the sandbox on 127.0.0.1.
    #[arg(long, default_value_t = 3000)]
    pub sandbox_port: u16,
    /// Folder for the sandbox's database and log, and (when given) synmon's SQLite store
    /// and artifacts; default: the config's folder.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
}

pub async fn run(args: Args) -> i32 {
    // Handlers first: a signal during start-up is kept and stops the demo once it is up.
    let (Ok(mut term), Ok(mut int), Ok(mut hup)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
        signal(SignalKind::hangup()),
    ) else {
        eprintln!("synmon demo: cannot install signal handlers");
        return 2;
    };
    let mut cfg = match super::load_config(&args.config) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let sandbox_bin = match find_sandbox() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("synmon demo: {e}");
            return 2;
        }
    };
    if let Err(e) = ensure_browser(&cfg).await {
        eprintln!("synmon demo: {e:#}");
        return 2;
    }
    // The sandbox's synthetic user logs in with the config's password.
    let Some(credentials) = cfg.credentials.clone() else {
        eprintln!(
            "synmon demo: {} sets no `credentials:`; the demo's sandbox needs the synthetic user's login",
            cfg.file.display()
        );
        return 2;
    };
    let data_dir = args.data_dir.clone().unwrap_or_else(|| cfg.dir.clone());
    if let Err(e) = std::fs::create_dir_all(&data_dir) {
        eprintln!("synmon demo: cannot create {}: {e}", data_dir.display());
        return 2;
    }
    let data_dir = data_dir.canonicalize().unwrap_or(data_dir);
    let admin_token = std::env::var("RVP_SANDBOX_ADMIN_TOKEN")
        .ok()
        .filter(|t| !t.is_empty())
        .unwrap_or_else(|| DEFAULT_ADMIN_TOKEN.to_string());
    let sandbox = match Sandbox::start(
        &sandbox_bin,
        args.sandbox_port,
        &data_dir,
        &credentials.password,
        &admin_token,
    )
    .await
    {
        Ok(s) => s,
        Err(e) => {
            eprintln!("synmon demo: {e:#}");
            return 2;
        }
    };

    // The daemon monitors this sandbox and reads its database; with --data-dir its own store
    // and artifacts go there too (the tests keep the repo clean that way).
    cfg.database_url = Some(Secret::new(sandbox.db_url.clone()));
    if args.data_dir.is_some() {
        if cfg.store_url.expose().starts_with("sqlite:") {
            cfg.store_url =
                Secret::new(format!("sqlite://{}", data_dir.join("synmon.db").display()));
        }
        cfg.artifacts_dir = data_dir.join("artifacts");
    }
    let summary = Summary::of(&cfg);
    let options = Options {
        listen: args.listen,
        base_url: Some(sandbox.url.clone()),
        ..Options::default()
    };
    let daemon = match Daemon::start(cfg, options, Arc::new(SystemClock)).await {
        Ok(d) => d,
        Err(e) => {
            eprintln!("synmon demo: {e}");
            sandbox.stop().await;
            return 2;
        }
    };
    let chromedriver = match start_chromedriver(&daemon).await {
        Ok(c) => c,
        Err(e) => {
            eprintln!("synmon demo: {e:#}");
            daemon.shutdown().await;
            sandbox.stop().await;
            return 2;
        }
    };
    summary.print(&sandbox, chromedriver.as_deref(), daemon.addr, &args);

    let faults = args.faults.map(|f| {
        tokio::spawn(provoke(
            sandbox.url.clone(),
            admin_token.clone(),
            f,
            args.fault_for,
        ))
    });

    let mut sandbox = sandbox;
    let code = loop {
        tokio::select! {
            _ = term.recv() => break 0,
            _ = int.recv() => break 0,
            _ = hup.recv() => {
                tracing::info!("SIGHUP: reloading the config");
                let _ = daemon.reload().await;
            }
            status = sandbox.child.wait() => {
                eprintln!(
                    "synmon demo: rvp-sandbox exited on its own ({}); see {}",
                    status.map(|s| s.to_string()).unwrap_or_else(|e| e.to_string()),
                    sandbox.log.display()
                );
                break 1;
            }
        }
    };
    println!("synmon demo: stopping");
    if let Some(f) = faults {
        f.abort();
    }
    daemon.shutdown().await;
    sandbox.stop().await;
    println!("synmon demo: stopped");
    code
}

/// Starts the daemon's supervised chromedriver now; returns a line describing it (`None` when
/// the config uses a remote WebDriver).
async fn start_chromedriver(daemon: &Daemon) -> anyhow::Result<Option<String>> {
    let driver = daemon.shared.driver.read().expect("driver lock").clone();
    let Some(local) = driver.local() else {
        return Ok(None);
    };
    let url = local
        .endpoint()
        .await
        .map_err(|e| anyhow::anyhow!("chromedriver: {e}"))?;
    let pid = local
        .pid()
        .await
        .map(|p| p.to_string())
        .unwrap_or_else(|| "?".into());
    Ok(Some(format!("{url} (pid {pid})")))
}

/// Turns the faults on, waits, turns them off: the alert fires, then resolves.
async fn provoke(base: reqwest::Url, token: String, faults: Faults, fault_for: Duration) {
    let Ok(endpoint) = base.join("__sandbox/faults") else {
        return;
    };
    let http = reqwest::Client::new();
    match http
        .post(endpoint.clone())
        .bearer_auth(&token)
        .json(&faults.body())
        .send()
        .await
    {
        Ok(r) if r.status().is_success() => println!(
            "synmon demo: faults ON for {}: {}",
            humantime::format_duration(fault_for),
            faults.explain()
        ),
        Ok(r) => {
            eprintln!(
                "synmon demo: the sandbox refused the faults: {}",
                r.status()
            );
            return;
        }
        Err(e) => {
            eprintln!("synmon demo: cannot reach the sandbox's fault API: {e}");
            return;
        }
    }
    tokio::time::sleep(fault_for).await;
    match http.delete(endpoint).bearer_auth(&token).send().await {
        Ok(r) if r.status().is_success() => println!(
            "synmon demo: faults OFF: the alert resolves once its 5 m window holds healthy \
             runs again and its keep_firing_for has passed (about 10 minutes); the console \
             prints the resolve"
        ),
        Ok(r) => eprintln!(
            "synmon demo: the sandbox refused to clear faults: {}",
            r.status()
        ),
        Err(e) => eprintln!("synmon demo: cannot reach the sandbox's fault API: {e}"),
    }
}

/// The sandbox as a child process.
struct Sandbox {
    child: Child,
    url: reqwest::Url,
    db_url: String,
    log: PathBuf,
}

impl Sandbox {
    async fn start(
        bin: &Path,
        port: u16,
        data_dir: &Path,
        password: &Secret,
        admin_token: &str,
    ) -> anyhow::Result<Sandbox> {
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        // A clear message beats the sandbox's bind error in a log file.
        drop(std::net::TcpListener::bind(addr).with_context(|| {
            format!("{addr} is busy (another sandbox or demo?): stop it or pass --sandbox-port")
        })?);
        let db_url = format!("sqlite://{}", data_dir.join("rvp-sandbox.db").display());
        let log = data_dir.join("rvp-sandbox.log");
        let out = std::fs::File::create(&log)
            .with_context(|| format!("cannot write {}", log.display()))?;
        let err = out.try_clone()?;
        let child = Command::new(bin)
            .arg("--listen")
            .arg(addr.to_string())
            .arg("--database-url")
            .arg(&db_url)
            // Through the environment, not argv: other users can read a command line.
            .env("RVP_SANDBOX_ADMIN_TOKEN", admin_token)
            .env("RVP_SANDBOX_SYNTHETIC_PASSWORD", password.expose())
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .process_group(0)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("cannot start {}", bin.display()))?;
        let url: reqwest::Url = format!("http://{addr}/").parse().expect("static URL");
        let mut sandbox = Sandbox {
            child,
            url,
            db_url,
            log,
        };
        if let Err(e) = sandbox.wait_ready().await {
            sandbox.stop().await;
            return Err(e);
        }
        Ok(sandbox)
    }

    async fn wait_ready(&mut self) -> anyhow::Result<()> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(1))
            .build()?;
        let health = self.url.join("healthz")?;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                bail!(
                    "rvp-sandbox exited at start ({status}):\n{}",
                    tail(&self.log, 10)
                );
            }
            if let Ok(r) = http.get(health.clone()).send().await
                && r.status().is_success()
            {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                bail!(
                    "rvp-sandbox did not answer {health} within 30 s; see {}",
                    self.log.display()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// SIGTERM, then SIGKILL after 10 s.
    async fn stop(mut self) {
        if let Ok(None) = self.child.try_wait()
            && let Some(pid) = self.child.id()
        {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid as i32),
                nix::sys::signal::Signal::SIGTERM,
            );
            if tokio::time::timeout(Duration::from_secs(10), self.child.wait())
                .await
                .is_err()
            {
                eprintln!("synmon demo: rvp-sandbox ignored SIGTERM for 10 s; killing it");
                let _ = self.child.kill().await;
            }
        }
        let _ = self.child.wait().await;
    }
}

fn tail(file: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(file).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// The sandbox binary: beside this executable first (a workspace build puts both in
/// target/<profile>/), then on PATH.
pub fn find_sandbox() -> Result<PathBuf, String> {
    let exe_dir = std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(Path::to_path_buf));
    if let Some(dir) = &exe_dir {
        let beside = dir.join(SANDBOX_BIN);
        if is_executable(&beside) {
            return Ok(beside);
        }
    }
    if let Some(p) = which(SANDBOX_BIN) {
        return Ok(p);
    }
    Err(format!(
        "`{SANDBOX_BIN}` not found beside {} nor on PATH: build it with `cargo build --workspace` \
         (or `cargo build -p rvp-sandbox`), or put it on PATH",
        exe_dir
            .map(|d| d.display().to_string())
            .unwrap_or_else(|| "this executable".into())
    ))
}

/// Browsers chromedriver finds on its own.
const BROWSERS: &[&str] = &[
    "chromium",
    "chromium-browser",
    "google-chrome",
    "google-chrome-stable",
];

/// What the journeys need and is not there: the chromedriver program and a Chromium.
fn missing_browser(cfg: &Config) -> Vec<String> {
    if cfg.webdriver.remote_url.is_some() {
        return Vec::new();
    }
    let mut missing = Vec::new();
    if which(&cfg.webdriver.chromedriver).is_none() {
        missing.push(cfg.webdriver.chromedriver.clone());
    }
    match &crate::journey::program::Program::for_config(&cfg.webdriver).binary {
        Some(b) if which(b).is_none() => missing.push(b.clone()),
        Some(_) => {}
        None if BROWSERS.iter().all(|b| which(b).is_none()) => missing.push("chromium".into()),
        None => {}
    }
    missing
}

/// Checks for Chromium and chromedriver; installs them from Debian's packages when this runs as
/// root on Debian and the config names the standard programs, else says the one command.
async fn ensure_browser(cfg: &Config) -> anyhow::Result<()> {
    let missing = missing_browser(cfg);
    if missing.is_empty() {
        return Ok(());
    }
    let standard = missing
        .iter()
        .all(|m| m == "chromedriver" || BROWSERS.contains(&m.as_str()));
    let debian = Path::new("/etc/debian_version").exists() && which("apt-get").is_some();
    if !(standard && debian && is_root()) {
        bail!(
            "the journeys need Chromium and chromedriver; missing: {}. Install them with \
             `{INSTALL_COMMAND}` (as root, or with sudo), or set `webdriver.url` to a remote \
             WebDriver",
            missing.join(", ")
        );
    }
    println!(
        "synmon demo: {} missing; running as root on Debian, so installing them now: \
         {INSTALL_COMMAND}",
        missing.join(", ")
    );
    let install = install_args();
    for args in [&["update", "-qq"][..], &install[..]] {
        let status = Command::new("apt-get")
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .stdin(Stdio::null())
            .status()
            .await
            .context("cannot run apt-get")?;
        if !status.success() {
            bail!("`apt-get {}` failed ({status})", args.join(" "));
        }
    }
    let still = missing_browser(cfg);
    if !still.is_empty() {
        bail!("still missing after the install: {}", still.join(", "));
    }
    Ok(())
}

/// `apt-get`'s arguments for the install: the packages [`INSTALL_COMMAND`] names (after its
/// `-y`), so that what is said and what is done cannot drift apart.
fn install_args() -> Vec<&'static str> {
    let packages = INSTALL_COMMAND
        .split_whitespace()
        .skip_while(|w| *w != "-y")
        .skip(1);
    ["install", "-y", "-qq"]
        .into_iter()
        .chain(packages)
        .collect()
}

/// Whether this process runs as root: /proc/self belongs to the effective user (Linux), which
/// saves a dependency on libc for one call.
fn is_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// What is printed once everything runs.
struct Summary {
    config: PathBuf,
    journeys: Vec<String>,
    api_checks: usize,
    sql_metrics: usize,
    interval: Duration,
    store: String,
}

impl Summary {
    fn of(cfg: &Config) -> Summary {
        let store = match cfg.store_url.expose().strip_prefix("sqlite://") {
            Some(path) => format!("SQLite {path}"),
            // Other store URLs may carry a password: name the kind only.
            None => "PostgreSQL (store.url)".into(),
        };
        Summary {
            config: cfg.file.clone(),
            journeys: cfg.checks.journeys.keys().cloned().collect(),
            api_checks: cfg.checks.http.len()
                + cfg.checks.tcp.len()
                + cfg.checks.dns.len()
                + cfg.checks.tls.len(),
            sql_metrics: cfg.checks.sql.len(),
            interval: cfg.checks.defaults.interval,
            store,
        }
    }

    fn print(&self, sandbox: &Sandbox, chromedriver: Option<&str>, addr: SocketAddr, args: &Args) {
        let pid = sandbox
            .child
            .id()
            .map(|p| p.to_string())
            .unwrap_or_else(|| "?".into());
        let every = humantime::format_duration(self.interval);
        println!("synmon demo: running (Ctrl-C or SIGTERM stops everything)");
        println!(
            "  rvp-sandbox   {} (pid {pid}; {}; log {})",
            sandbox.url,
            sandbox.db_url,
            sandbox.log.display()
        );
        println!(
            "                faults: POST {}__sandbox/faults with `Authorization: Bearer \
             $RVP_SANDBOX_ADMIN_TOKEN` (default {DEFAULT_ADMIN_TOKEN})",
            sandbox.url
        );
        match chromedriver {
            Some(c) => println!(
                "  chromedriver  {c}, supervised: restarted if it dies, stopped with the demo"
            ),
            None => println!("  chromedriver  remote WebDriver from `webdriver.url`"),
        }
        println!(
            "  synmon        http://{addr}/ : /api/v1/checks, /api/v1/alerts, /api/v1/slo, \
             /metrics, /healthz ({}; store {})",
            self.config.display(),
            self.store
        );
        println!(
            "  checks        journeys {} + {} API checks + {} SQL metrics, every {every}",
            self.journeys.join(", "),
            self.api_checks,
            self.sql_metrics
        );
        println!(
            "  alerts        printed on the console (stderr); Slack/PagerDuty routes fall back \
             to it while their secrets are empty"
        );
        if args.faults.is_none() {
            println!(
                "  try           synmon demo --faults latency|errors|outage (an alert fires, \
                 then resolves)"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use crate::cli::{Cli, Command};

    #[test]
    fn the_install_runs_the_packages_the_install_command_names() {
        assert_eq!(
            super::install_args(),
            [
                "install",
                "-y",
                "-qq",
                "chromium",
                "chromium-driver",
                "chromium-headless-shell"
            ]
        );
    }

    #[test]
    fn fault_for_past_a_day_is_a_usage_error_naming_the_bound() {
        let e = Cli::try_parse_from(["synmon", "demo", "--fault-for", "2d"])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("`2d` is longer than the longest allowed fault duration (1d)"),
            "{e}"
        );
        let cli = Cli::try_parse_from(["synmon", "demo", "--fault-for", "90s"]).unwrap();
        let Command::Demo(a) = cli.command else {
            panic!("not the demo command")
        };
        assert_eq!(a.fault_for, std::time::Duration::from_secs(90));
    }
}
