//! Journey runner benchmark (issue 3; harness = false): prints figures for BENCHMARKS.md.
//!
//! `cargo bench --bench journey`
//!
//! The sandbox runs in a separate process (this binary re-executed with `--sandbox-child`, which
//! calls `rvp_sandbox::start` like the `rvp-sandbox` binary does, on port 0 with SQLite in a temp
//! dir), so the CPU time and peak RSS read from /proc/self are synmon's alone.
//!
//! 1. Accuracy: one browser session driven through `synmon::journey::webdriver::Browser`; per
//!    iteration the align-category "save" interaction is done twice: once timed in the page the
//!    way synmon times it (`arm` + click + `await_armed`), once from outside (a tokio `Instant`
//!    around the click and a WebDriver-polled wait, every 5 ms). Both are compared with the
//!    page's own truth, `window.__rvpTruth` (`event.timeStamp` of the click, `performance.now()`
//!    right after the toast is inserted).
//! 2. The full `Runner::run` of `journeys/align_category.yaml`, 50 times after 2 warm-ups: timed
//!    latency, the `save mapping` step, session creation, synmon's own CPU per run, the CPU of
//!    chromedriver and its Chromium processes, and the bench process's peak RSS (VmHWM).
//!
//! Writes the JSON line also to `ops/reports/perf-YYYYMMDD.json`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use synmon::Outcome;
use synmon::clock::SystemClock;
use synmon::journey::webdriver::{ArmMode, Armed, Browser, Cond};
use synmon::journey::{Driver, Runner};
use synmon::settings::Config;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::time::Instant;

const PASSWORD: &str = "synthetic-demo";
/// Iterations (override with `JOURNEY_BENCH_RUNS` for a quick smoke run).
fn runs_n() -> usize {
    std::env::var("JOURNEY_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50)
}
const WARMUP: usize = 2;
const STEP_TIMEOUT: Duration = Duration::from_secs(5);
const TOAST: &str = "[data-test=toast]";
const TOAST_TEXT: &str = "Mapping updated";

// Goals from issue 3.
const GOAL_CPU_MS_PER_RUN: f64 = 5.0;
const GOAL_RSS_MIB: f64 = 30.0;
const GOAL_ERR_MEDIAN_MS: f64 = 5.0;
const GOAL_ERR_P95_MS: f64 = 10.0;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--sandbox-child") {
        let dir = PathBuf::from(args.get(i + 1).expect("--sandbox-child DIR"));
        return tokio::runtime::Runtime::new()?.block_on(sandbox_child(&dir));
    }
    // The same runtime as the `synmon` binary (`#[tokio::main]`: multi-threaded).
    tokio::runtime::Runtime::new()?.block_on(bench())
}

// ---------------------------------------------------------------------------------------------
// The sandbox, in its own process.

async fn sandbox_child(dir: &Path) -> anyhow::Result<()> {
    let sbx = rvp_sandbox::start(rvp_sandbox::SandboxConfig {
        listen: "127.0.0.1:0".parse()?,
        database_url: format!("sqlite://{}", dir.join("rvp.db").display()),
        synthetic_password: PASSWORD.to_string(),
        // 300+ API calls in a few minutes from one user: not what this bench is about.
        rate_limit_per_minute: 1_000_000,
        ..rvp_sandbox::SandboxConfig::default()
    })
    .await?;
    println!("listening on {}", sbx.base_url());
    // Runs until the parent closes our stdin (it exited, or it is done).
    let mut sink = Vec::new();
    let _ = tokio::io::stdin().read_to_end(&mut sink).await;
    sbx.shutdown().await;
    Ok(())
}

struct SandboxProcess {
    child: tokio::process::Child,
    base_url: String,
}

async fn spawn_sandbox(dir: &Path) -> anyhow::Result<SandboxProcess> {
    let mut child = tokio::process::Command::new(std::env::current_exe()?)
        .arg("--sandbox-child")
        .arg(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()?;
    let mut lines = BufReader::new(child.stdout.take().expect("piped")).lines();
    let line = tokio::time::timeout(Duration::from_secs(60), lines.next_line())
        .await
        .map_err(|_| anyhow::anyhow!("sandbox did not start within 60 s"))??
        .ok_or_else(|| anyhow::anyhow!("sandbox exited at start"))?;
    let base_url = line
        .strip_prefix("listening on ")
        .ok_or_else(|| anyhow::anyhow!("unexpected sandbox output: {line}"))?
        .to_string();
    Ok(SandboxProcess { child, base_url })
}

// ---------------------------------------------------------------------------------------------
// Config, like tests/it/support/mod.rs::write_config.

fn journeys_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("journeys")
}

fn write_config(dir: &Path, base_url: &str, password: &str, extra: &str) -> PathBuf {
    let file = dir.join("synmon.yaml");
    let text = format!(
        "targets:\n  staging:\n    base_url: \"{base_url}\"\ntenant: synthetic\ncredentials:\n  username: synthetic@rvp.test\n  password: \"{password}\"\njourneys: \"{}\"\nartifacts: artifacts\n{extra}",
        journeys_dir().display()
    );
    std::fs::write(&file, text).expect("write synmon.yaml");
    file
}

// ---------------------------------------------------------------------------------------------
// /proc readers.

/// Clock ticks per second for /proc/*/stat times.
fn clk_tck() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

/// The fields after `comm` of /proc/<pid>/stat (index 0 is field 3, `state`).
fn stat_fields(pid: &str) -> Option<Vec<u64>> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &s[s.rfind(')')? + 2..];
    Some(
        rest.split_whitespace()
            .map(|f| f.parse().unwrap_or(0))
            .collect(),
    )
}

/// utime + stime of this process (all its threads), in ticks.
fn self_cpu_ticks() -> u64 {
    let (u, s) = self_cpu_split();
    u + s
}

/// (utime, stime) of this process, in ticks.
fn self_cpu_split() -> (u64, u64) {
    stat_fields("self")
        .map(|f| (f[11], f[12]))
        .unwrap_or((0, 0))
}

/// utime + stime + cutime + cstime summed over `root` and its live descendants, in ticks.
/// Children reaped inside the tree are in their parent's cutime/cstime.
fn tree_cpu_ticks(root: u32) -> u64 {
    let mut children: HashMap<u64, Vec<(u64, u64)>> = HashMap::new();
    let mut own: HashMap<u64, u64> = HashMap::new();
    if let Ok(rd) = std::fs::read_dir("/proc") {
        for e in rd.flatten() {
            let name = e.file_name();
            let Some(pid) = name.to_str().and_then(|n| n.parse::<u64>().ok()) else {
                continue;
            };
            if let Some(f) = stat_fields(&pid.to_string()) {
                let cpu = f[11] + f[12] + f[13] + f[14];
                children.entry(f[1]).or_default().push((pid, cpu));
                own.insert(pid, cpu);
            }
        }
    }
    let mut total = own.get(&(root as u64)).copied().unwrap_or(0);
    let mut stack = vec![root as u64];
    while let Some(p) = stack.pop() {
        for &(c, cpu) in children.get(&p).map(Vec::as_slice).unwrap_or(&[]) {
            total += cpu;
            stack.push(c);
        }
    }
    total
}

fn status_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

fn nproc() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0)
}

// ---------------------------------------------------------------------------------------------
// Statistics.

#[derive(Debug, Clone, Copy)]
struct Summary {
    n: usize,
    min: f64,
    median: f64,
    p95: f64,
    max: f64,
    mean: f64,
}

/// Nearest-rank percentiles.
fn summarize(xs: &[f64]) -> Summary {
    let mut v = xs.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    if n == 0 {
        return Summary {
            n,
            min: f64::NAN,
            median: f64::NAN,
            p95: f64::NAN,
            max: f64::NAN,
            mean: f64::NAN,
        };
    }
    let rank = |p: f64| v[((p * n as f64).ceil() as usize).clamp(1, n) - 1];
    let median = if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    };
    Summary {
        n,
        min: v[0],
        median,
        p95: rank(0.95),
        max: v[n - 1],
        mean: v.iter().sum::<f64>() / n as f64,
    }
}

fn r2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

fn sjson(s: &Summary) -> Value {
    json!({"n": s.n, "min": r2(s.min), "median": r2(s.median), "p95": r2(s.p95), "max": r2(s.max), "mean": r2(s.mean)})
}

fn line(label: &str, s: &Summary) -> String {
    format!(
        "  {label:<34} median {:>8.2}  p95 {:>8.2}  min {:>8.2}  max {:>8.2}  (n={})",
        s.median, s.p95, s.min, s.max, s.n
    )
}

fn verdict(ok: bool) -> &'static str {
    if ok { "met" } else { "MISSED" }
}

// ---------------------------------------------------------------------------------------------
// Part 1: in-page vs outside timing against the page's truth.

#[derive(Default)]
struct Accuracy {
    in_page_measured: Vec<f64>,
    in_page_truth: Vec<f64>,
    in_page_err: Vec<f64>,
    outside_measured: Vec<f64>,
    outside_truth: Vec<f64>,
    outside_err: Vec<f64>,
    outside_polls: Vec<f64>,
    /// CPU ticks spent during the save interaction only, per mode: (synmon, chromedriver tree).
    in_page_cpu: (u64, u64),
    outside_cpu: (u64, u64),
}

fn s(msg: impl std::fmt::Display) -> anyhow::Error {
    anyhow::anyhow!("{msg}")
}

/// Opens the drawer on the first category, searches, picks the first result: ready to save.
async fn prepare_save(b: &Browser, base: &str) -> anyhow::Result<()> {
    b.goto(&format!("{base}/t/synthetic/categories"), STEP_TIMEOUT)
        .await
        .map_err(s)?;
    b.click("[data-test=align-category]", STEP_TIMEOUT)
        .await
        .map_err(s)?;
    b.wait_for(&Cond::present("[data-test=taxonomy-search]"), STEP_TIMEOUT)
        .await
        .map_err(s)?;
    b.fill(
        "[data-test=taxonomy-search]",
        "Hardware",
        false,
        STEP_TIMEOUT,
    )
    .await
    .map_err(s)?;
    b.wait_for(&Cond::present("[data-test=taxonomy-result]"), STEP_TIMEOUT)
        .await
        .map_err(s)?;
    b.click("[data-test=taxonomy-result]", STEP_TIMEOUT)
        .await
        .map_err(s)?;
    Ok(())
}

/// The page's own latency of the last save: toast inserted - click event.
async fn truth(b: &Browser) -> anyhow::Result<f64> {
    let v = b
        .eval("return window.__rvpTruth || null;")
        .await
        .map_err(s)?;
    match (v["action"].as_f64(), v["toast"].as_f64()) {
        (Some(a), Some(t)) => Ok(t - a),
        _ => Err(anyhow::anyhow!("the page recorded no truth: {v}")),
    }
}

fn toast_cond() -> Cond {
    Cond {
        selector: TOAST.to_string(),
        text: Some(TOAST_TEXT.to_string()),
        visible: true,
        gone: false,
    }
}

async fn save_in_page(b: &Browser) -> anyhow::Result<f64> {
    let pre = b.arm(&toast_cond(), ArmMode::FirstInput).await.map_err(s)?;
    anyhow::ensure!(!pre, "the toast was already there before the click");
    b.click("[data-test=align-save]", STEP_TIMEOUT)
        .await
        .map_err(s)?;
    match b.await_armed(STEP_TIMEOUT).await.map_err(s)? {
        Armed::InPage(ms) => Ok(ms),
        other => Err(anyhow::anyhow!("in-page timing ended with {other:?}")),
    }
}

/// From outside: Instant around the click and a wait that asks the page over WebDriver every
/// 5 ms whether the toast is there (what a WebDriver client's `wait` does at best).
async fn save_outside(b: &Browser) -> anyhow::Result<(f64, u32)> {
    let probe = format!(
        "var els = document.querySelectorAll('{TOAST}'); for (var i = 0; i < els.length; i++) {{ if (els[i].getClientRects().length && (els[i].textContent || '').indexOf('{TOAST_TEXT}') >= 0) return true; }} return false;"
    );
    let t0 = Instant::now();
    b.click("[data-test=align-save]", STEP_TIMEOUT)
        .await
        .map_err(s)?;
    let mut polls = 0u32;
    loop {
        polls += 1;
        if b.eval(&probe).await.map_err(s)? == json!(true) {
            break;
        }
        anyhow::ensure!(t0.elapsed() < STEP_TIMEOUT, "toast not seen from outside");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    Ok((t0.elapsed().as_secs_f64() * 1000.0, polls))
}

async fn accuracy(cfg: &Config, driver: &Driver, base: &str) -> anyhow::Result<Accuracy> {
    let ep = driver.endpoint().await.map_err(s)?;
    let b = Browser::connect(
        &ep,
        &cfg.webdriver,
        driver.local().is_some(),
        cfg.navigation_timeout,
        STEP_TIMEOUT + Duration::from_secs(10),
    )
    .await
    .map_err(s)?;
    b.goto(&format!("{base}/login"), STEP_TIMEOUT)
        .await
        .map_err(s)?;
    b.fill(
        "[data-test=login-email]",
        &cfg.credentials.username,
        false,
        STEP_TIMEOUT,
    )
    .await
    .map_err(s)?;
    b.fill(
        "[data-test=login-password]",
        cfg.credentials.password.expose(),
        false,
        STEP_TIMEOUT,
    )
    .await
    .map_err(s)?;
    b.click("[data-test=login-submit]", STEP_TIMEOUT)
        .await
        .map_err(s)?;
    b.wait_for(&Cond::present("[data-test=categories-page]"), STEP_TIMEOUT)
        .await
        .map_err(s)?;

    let pid = driver.local().expect("local chromedriver").pid().await;
    let tree = || pid.map(tree_cpu_ticks).unwrap_or(0);
    let mut acc = Accuracy::default();
    for i in 0..WARMUP + runs_n() {
        let keep = i >= WARMUP;

        prepare_save(&b, base).await?;
        let (c0, t0) = (self_cpu_ticks(), tree());
        let measured = save_in_page(&b).await?;
        let (c1, t1) = (self_cpu_ticks(), tree());
        let truth_ms = truth(&b).await?;
        if keep {
            acc.in_page_measured.push(measured);
            acc.in_page_truth.push(truth_ms);
            acc.in_page_err.push(measured - truth_ms);
            acc.in_page_cpu.0 += c1 - c0;
            acc.in_page_cpu.1 += t1.saturating_sub(t0);
        }

        prepare_save(&b, base).await?;
        let (c0, t0) = (self_cpu_ticks(), tree());
        let (measured, polls) = save_outside(&b).await?;
        let (c1, t1) = (self_cpu_ticks(), tree());
        let truth_ms = truth(&b).await?;
        if keep {
            acc.outside_measured.push(measured);
            acc.outside_truth.push(truth_ms);
            acc.outside_err.push(measured - truth_ms);
            acc.outside_polls.push(polls as f64);
            acc.outside_cpu.0 += c1 - c0;
            acc.outside_cpu.1 += t1.saturating_sub(t0);
        }
    }
    b.close().await;
    Ok(acc)
}

// ---------------------------------------------------------------------------------------------
// Part 2: the full runner.

#[derive(Default)]
struct Runs {
    timed: Vec<f64>,
    save: Vec<f64>,
    session: Vec<f64>,
    total: Vec<f64>,
    failures: Vec<String>,
    self_cpu_ticks: u64,
    self_user_ticks: u64,
    tree_cpu_ticks: u64,
    wall_s: f64,
}

async fn full_runs(cfg: &Config, runner: &Runner, driver: &Driver) -> anyhow::Result<Runs> {
    let target = cfg.target(None).map_err(s)?.clone();
    let journey = cfg.journey("align_category").map_err(s)?;
    let mut runs = Runs::default();
    for _ in 0..WARMUP {
        let r = runner.run(&journey, &target).await;
        anyhow::ensure!(
            r.outcome == Outcome::Pass,
            "warm-up run did not pass: {}",
            serde_json::to_string(&r)?
        );
    }
    let pid = driver.local().expect("local chromedriver").pid().await;
    let tree = || pid.map(tree_cpu_ticks).unwrap_or(0);
    let (c0, t0, w0) = (self_cpu_ticks(), tree(), Instant::now());
    let u0 = self_cpu_split().0;
    for _ in 0..runs_n() {
        let r = runner.run(&journey, &target).await;
        if r.outcome != Outcome::Pass {
            runs.failures.push(format!(
                "{}: {}",
                r.outcome,
                r.error.clone().unwrap_or_default()
            ));
            continue;
        }
        runs.timed.push(r.timed_latency_ms);
        runs.session.push(r.session_create_ms);
        runs.total.push(r.total_ms);
        if let Some(st) = r.steps.iter().find(|s| s.name == "save mapping") {
            runs.save.push(st.latency_ms);
        }
    }
    runs.wall_s = w0.elapsed().as_secs_f64();
    runs.self_cpu_ticks = self_cpu_ticks() - c0;
    runs.self_user_ticks = self_cpu_split().0 - u0;
    runs.tree_cpu_ticks = tree().saturating_sub(t0);
    anyhow::ensure!(
        pid == driver.local().expect("local").pid().await,
        "chromedriver was restarted during the runs: its CPU figure would be wrong"
    );
    Ok(runs)
}

// ---------------------------------------------------------------------------------------------

async fn bench() -> anyhow::Result<()> {
    synmon::tls::install();
    let load_before = loadavg();
    let tck = clk_tck();
    let ticks_ms = |t: u64| t as f64 * 1000.0 / tck;

    let dir = tempfile::tempdir()?;
    let mut sbx = spawn_sandbox(dir.path()).await?;
    let cfg = Config::load(&write_config(dir.path(), &sbx.base_url, PASSWORD, ""))
        .map_err(|e| anyhow::anyhow!("config: {e}"))?;
    let cfg = Arc::new(cfg);
    let driver = Arc::new(Driver::from_config(&cfg.webdriver));
    let runner = Runner::new(cfg.runner_settings(), driver.clone(), Arc::new(SystemClock));

    let n = runs_n();
    eprintln!("journey bench: accuracy ({WARMUP} warm-up + {n} iterations, 2 saves each)...");
    let acc = accuracy(&cfg, &driver, &sbx.base_url).await;
    eprintln!("journey bench: Runner::run ({WARMUP} warm-up + {n} runs)...");
    let runs = match &acc {
        Ok(_) => full_runs(&cfg, &runner, &driver).await,
        Err(_) => Err(anyhow::anyhow!("skipped")),
    };
    let rss_hwm_kib = status_kib("VmHWM:");
    let rss_now_kib = status_kib("VmRSS:");
    driver.shutdown().await;
    drop(sbx.child.stdin.take());
    let _ = tokio::time::timeout(Duration::from_secs(10), sbx.child.wait()).await;
    let acc = acc?;
    let runs = runs?;
    let load_after = loadavg();

    let ip_err = summarize(&acc.in_page_err);
    let out_err = summarize(&acc.outside_err);
    let timed = summarize(&runs.timed);
    let save = summarize(&runs.save);
    let session = summarize(&runs.session);
    let total = summarize(&runs.total);
    let ok = runs.timed.len().max(1) as f64;
    let cpu_per_run = ticks_ms(runs.self_cpu_ticks) / ok;
    let user_per_run = ticks_ms(runs.self_user_ticks) / ok;
    let tree_per_run = ticks_ms(runs.tree_cpu_ticks) / ok;
    let rss_mib = rss_hwm_kib as f64 / 1024.0;
    let n_acc = acc.in_page_err.len().max(1) as f64;
    let date = chrono::Local::now();

    let mut out = String::new();
    let mut p = |l: String| {
        out.push_str(&l);
        out.push('\n');
    };
    p(format!(
        "journey bench — align_category, {} — {} cores, load {load_before} before / {load_after} after",
        date.format("%Y-%m-%d %H:%M"),
        nproc()
    ));
    p(format!(
        "accuracy: the save click -> \"{TOAST_TEXT}\" toast, {} iterations (ms)",
        acc.in_page_err.len()
    ));
    p(line(
        "page truth (in-page runs)",
        &summarize(&acc.in_page_truth),
    ));
    p(line(
        "synmon in-page measured",
        &summarize(&acc.in_page_measured),
    ));
    p(line("  error (measured - truth)", &ip_err));
    p(line(
        "page truth (outside runs)",
        &summarize(&acc.outside_truth),
    ));
    p(line(
        "outside measured (5 ms WD poll)",
        &summarize(&acc.outside_measured),
    ));
    p(line("  error (measured - truth)", &out_err));
    p(format!(
        "  CPU per save interaction: in-page synmon {:.2} ms + chromedriver/Chromium {:.2} ms; outside synmon {:.2} ms + chromedriver/Chromium {:.2} ms ({:.1} polls median)",
        ticks_ms(acc.in_page_cpu.0) / n_acc,
        ticks_ms(acc.in_page_cpu.1) / n_acc,
        ticks_ms(acc.outside_cpu.0) / n_acc,
        ticks_ms(acc.outside_cpu.1) / n_acc,
        summarize(&acc.outside_polls).median,
    ));
    p(format!(
        "Runner::run x {n} (after {WARMUP} warm-ups): {} passed, {} not ({:.1} s wall) (ms)",
        runs.timed.len(),
        runs.failures.len(),
        runs.wall_s
    ));
    p(line("timed latency (journey SLO)", &timed));
    p(line("`save mapping` step", &save));
    p(line("session creation", &session));
    p(line("whole run (wall)", &total));
    p(format!(
        "  synmon CPU per run           {cpu_per_run:>8.2} ms   (goal <= {GOAL_CPU_MS_PER_RUN} ms: {}; user {user_per_run:.2} + system {:.2})",
        verdict(cpu_per_run <= GOAL_CPU_MS_PER_RUN),
        cpu_per_run - user_per_run
    ));
    p(format!(
        "  chromedriver + Chromium CPU  {tree_per_run:>8.2} ms per run"
    ));
    p(format!(
        "  peak RSS (VmHWM)             {rss_mib:>8.1} MiB (goal <= {GOAL_RSS_MIB} MB: {}); VmRSS at end {:.1} MiB",
        verdict(rss_mib <= GOAL_RSS_MIB),
        rss_now_kib as f64 / 1024.0
    ));
    p(format!(
        "  in-page error                median {:.2} ms (goal <= {GOAL_ERR_MEDIAN_MS}: {}), p95 {:.2} ms (goal <= {GOAL_ERR_P95_MS}: {})",
        ip_err.median,
        verdict(ip_err.median.abs() <= GOAL_ERR_MEDIAN_MS),
        ip_err.p95,
        verdict(ip_err.p95.abs() <= GOAL_ERR_P95_MS && ip_err.min.abs() <= GOAL_ERR_P95_MS)
    ));
    for f in &runs.failures {
        p(format!("  run not passed: {f}"));
    }

    let report = json!({
        "bench": "journey",
        "journey": "align_category",
        "date": date.format("%Y-%m-%d").to_string(),
        "at": date.to_rfc3339(),
        "command": "cargo bench --bench journey",
        "machine": {"nproc": nproc(), "loadavg_before": load_before, "loadavg_after": load_after},
        "runs": n,
        "warmup": WARMUP,
        "accuracy": {
            "iterations": acc.in_page_err.len(),
            "in_page": {
                "truth_ms": sjson(&summarize(&acc.in_page_truth)),
                "measured_ms": sjson(&summarize(&acc.in_page_measured)),
                "error_ms": sjson(&ip_err),
                "synmon_cpu_ms_per_interaction": r2(ticks_ms(acc.in_page_cpu.0) / n_acc),
                "browser_cpu_ms_per_interaction": r2(ticks_ms(acc.in_page_cpu.1) / n_acc),
            },
            "outside_poll_5ms": {
                "truth_ms": sjson(&summarize(&acc.outside_truth)),
                "measured_ms": sjson(&summarize(&acc.outside_measured)),
                "error_ms": sjson(&out_err),
                "polls": sjson(&summarize(&acc.outside_polls)),
                "synmon_cpu_ms_per_interaction": r2(ticks_ms(acc.outside_cpu.0) / n_acc),
                "browser_cpu_ms_per_interaction": r2(ticks_ms(acc.outside_cpu.1) / n_acc),
            },
        },
        "runner": {
            "passed": runs.timed.len(),
            "not_passed": runs.failures,
            "wall_s": r2(runs.wall_s),
            "timed_latency_ms": sjson(&timed),
            "save_mapping_ms": sjson(&save),
            "session_create_ms": sjson(&session),
            "run_total_ms": sjson(&total),
            "synmon_cpu_ms_per_run": r2(cpu_per_run),
            "synmon_user_cpu_ms_per_run": r2(user_per_run),
            "synmon_system_cpu_ms_per_run": r2(cpu_per_run - user_per_run),
            "chromedriver_chromium_cpu_ms_per_run": r2(tree_per_run),
            "peak_rss_mib": r2(rss_mib),
        },
        "goals": {
            "synmon_cpu_ms_per_run": {"goal": GOAL_CPU_MS_PER_RUN, "actual": r2(cpu_per_run), "met": cpu_per_run <= GOAL_CPU_MS_PER_RUN},
            "peak_rss_mib": {"goal": GOAL_RSS_MIB, "actual": r2(rss_mib), "met": rss_mib <= GOAL_RSS_MIB},
            "error_median_ms": {"goal": GOAL_ERR_MEDIAN_MS, "actual": r2(ip_err.median), "met": ip_err.median.abs() <= GOAL_ERR_MEDIAN_MS},
            "error_p95_ms": {"goal": GOAL_ERR_P95_MS, "actual": r2(ip_err.p95), "met": ip_err.p95.abs() <= GOAL_ERR_P95_MS},
        },
    });
    let json_line = serde_json::to_string(&report)?;
    print!("{out}");
    println!("{json_line}");
    let reports = Path::new(env!("CARGO_MANIFEST_DIR")).join("ops/reports");
    std::fs::create_dir_all(&reports)?;
    let file = reports.join(format!("perf-{}.json", date.format("%Y%m%d")));
    // One file per day for every perf bench: this bench owns its `journey` key and keeps the rest.
    let mut doc = std::fs::read_to_string(&file)
        .ok()
        .and_then(|t| serde_json::from_str::<Value>(&t).ok())
        .filter(Value::is_object)
        .unwrap_or_else(|| json!({}));
    doc["journey"] = report;
    std::fs::write(&file, format!("{}\n", serde_json::to_string_pretty(&doc)?))?;
    eprintln!("journey bench: wrote {}", file.display());
    Ok(())
}
