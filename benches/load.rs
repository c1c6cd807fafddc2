//! Load harness for `synmon run`: 1,000 HTTP checks on a 1 s interval against a local target
//! for LOAD_SECS seconds (default 60), with and without connection reuse. Prints synmon's CPU
//! (share of one core, and per run), its peak RSS, and scheduling lateness percentiles read
//! back from its own `/metrics`. Runs are counted, not assumed: the per-run figure divides by
//! the growth of `synmon_check_runs_total` over the measured span, and the requests the target
//! answered in that span are printed beside it.
//!
//! Run: `cargo bench --bench load` (builds the release `synmon` binary first).

use std::time::Duration;

fn stat_cpu_ticks(pid: u32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = s.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    // Fields after the command: state is [0]; utime is field 14 -> [11], stime [12].
    f.get(11).and_then(|v| v.parse().ok()).unwrap_or(0)
        + f.get(12).and_then(|v| v.parse().ok()).unwrap_or(0)
}

fn status_kb(pid: u32, key: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with(key))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn ticks_per_sec() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100.0)
}

/// A local target answering `/ok`, and the number of requests it has answered.
async fn target() -> (
    std::net::SocketAddr,
    std::sync::Arc<std::sync::atomic::AtomicU64>,
) {
    use axum::routing::get;
    use std::sync::atomic::{AtomicU64, Ordering};
    let answered = std::sync::Arc::new(AtomicU64::new(0));
    let count = answered.clone();
    let app = axum::Router::new().route(
        "/ok",
        get(move || {
            count.fetch_add(1, Ordering::Relaxed);
            async { "ok" }
        }),
    );
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    (addr, answered)
}

fn config(
    dir: &std::path::Path,
    target: std::net::SocketAddr,
    port: u16,
    keep_alive: bool,
    checks: usize,
) -> std::path::PathBuf {
    let mut http = String::new();
    for i in 0..checks {
        http.push_str(&format!("    - {{ name: c{i:04}, url: /ok }}\n"));
    }
    std::fs::create_dir_all(dir.join("journeys")).unwrap();
    let text = format!(
        "targets:\n  local:\n    base_url: http://{target}\ntenant: bench\ncredentials:\n  username: bench\n  password: bench-password\nserver:\n  listen: 127.0.0.1:{port}\nstore:\n  url: sqlite://synmon.db\nchecks:\n  interval: 1s\n  max_offset: 1s\n  http_keep_alive: {keep_alive}\n  journeys: []\n  http:\n{http}"
    );
    let f = dir.join("synmon.yaml");
    std::fs::write(&f, text).unwrap();
    f
}

async fn metrics(port: u16) -> String {
    reqwest::get(format!("http://127.0.0.1:{port}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// Completed runs so far: the sum of every `synmon_check_runs_total` series (every outcome and
/// attempt; cancelled runs are not counted).
fn runs_total(metrics: &str) -> f64 {
    metrics
        .lines()
        .filter(|l| {
            l.starts_with("synmon_check_runs_total{") || l.starts_with("synmon_check_runs_total ")
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

fn lateness(text: &str) -> (f64, f64, usize) {
    let mut p99: Vec<f64> = text
        .lines()
        .filter(|l| {
            l.starts_with("synmon_schedule_lateness_seconds{") && l.contains("quantile=\"0.99\"")
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .filter(|v| v.is_finite())
        .map(|s| s * 1000.0)
        .collect();
    p99.sort_by(|a, b| a.total_cmp(b));
    let n = p99.len();
    if n == 0 {
        return (f64::NAN, f64::NAN, 0);
    }
    (p99[n / 2], p99[n - 1], n)
}

async fn one(keep_alive: bool, secs: u64, checks: usize) -> String {
    let dir = tempfile::tempdir().unwrap();
    let (addr, answered) = target().await;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let cfg = config(dir.path(), addr, port, keep_alive, checks);
    let bin = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/release/synmon");
    let mut child = tokio::process::Command::new(&bin)
        .args(["run", "--config"])
        .arg(&cfg)
        .env("RUST_LOG", "warn")
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("target/release/synmon (run `cargo build --release` first)");
    let pid = child.id().unwrap();
    // Warm-up: every check has started its schedule.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let runs0 = runs_total(&metrics(port).await);
    let requests0 = answered.load(std::sync::atomic::Ordering::Relaxed);
    let t0 = stat_cpu_ticks(pid);
    let w0 = tokio::time::Instant::now();
    tokio::time::sleep(Duration::from_secs(secs)).await;
    let cpu_s = (stat_cpu_ticks(pid) - t0) as f64 / ticks_per_sec();
    let wall = w0.elapsed().as_secs_f64();
    let requests = answered.load(std::sync::atomic::Ordering::Relaxed) - requests0;
    let text = metrics(port).await;
    // Counted, not assumed: a check whose run overran its slot, or a loaded scheduler, makes
    // fewer runs than checks x seconds. (The two /metrics reads add a little CPU to the span.)
    let runs = runs_total(&text) - runs0;
    assert!(runs > 0.0, "no run was counted in {wall:.0} s");
    let (lat_median, lat_max, series) = lateness(&text);
    let rss_mb = status_kb(pid, "VmHWM:") as f64 / 1024.0;
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGTERM,
    );
    let _ = child.wait().await;
    format!(
        "keep_alive={keep_alive}: {checks} checks at 1 s for {wall:.0} s: {runs:.0} runs counted ({:.0} runs/s; the target answered {requests} requests), CPU {:.1}% of one core ({:.0} us per run), peak RSS {rss_mb:.1} MiB, scheduling lateness p99 over 5 m: median {lat_median:.2} ms / worst {lat_max:.2} ms across {series} checks",
        runs / wall,
        100.0 * cpu_s / wall,
        1e6 * cpu_s / runs
    )
}

#[tokio::main]
async fn main() {
    let secs: u64 = std::env::var("LOAD_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    let checks: usize = std::env::var("LOAD_CHECKS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1000);
    synmon::tls::install();
    let status = std::process::Command::new("cargo")
        .args(["build", "--release", "-p", "synmon", "--bin", "synmon"])
        .status()
        .expect("cargo");
    assert!(status.success());
    println!(
        "load harness, {} cores",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    );
    for keep_alive in [true, false] {
        println!("{}", one(keep_alive, secs, checks).await);
    }
}
