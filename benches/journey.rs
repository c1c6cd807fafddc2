//! Journey runner benchmark (harness = false): prints figures for BENCHMARKS.md.
//!
//! `cargo bench --bench journey` (`JOURNEY_BENCH_SMOKE=1` for a quick smoke run; the knobs are
//! listed at [`Knobs`]).
//!
//! The sandbox and the toast page run in a helper process (this binary re-executed with
//! `--sandbox-child`, which calls `rvp_sandbox::start` like the `rvp-sandbox` binary does, on
//! port 0 with SQLite in a temp dir, and serves the toast page beside it), so the CPU time and
//! peak RSS read from /proc/self are synmon's alone.
//!
//! 1. Accuracy: one browser session driven through `synmon::journey::webdriver::Browser`; per
//!    iteration the align-category "save" interaction is done twice: once timed in the page the
//!    way synmon times it (`arm` + click + `await_armed`), once from outside (a tokio `Instant`
//!    around the click and a WebDriver-polled wait, every 5 ms). Both are compared with the
//!    page's own truth, `window.__rvpTruth` (`event.timeStamp` of the click, `performance.now()`
//!    right after the toast is inserted). Then the toast page's save, timed in the page, against
//!    that page's truth (a capture-phase click listener's `performance.now()`).
//! 2. The full `Runner::run` of `journeys/align_category.yaml`, N times after 2 warm-ups: timed
//!    latency, the `save mapping` step, session creation, synmon's own CPU per run, the CPU of
//!    chromedriver and all its Chromium processes, and the bench process's peak RSS (VmHWM).
//! 3. Browser cost: `Runner::run` of the toast page journey (goto, fill, click -> toast) against
//!    the Selenium peer (`benches/selenium/toast_peer.py`, ONE session for all its runs) on the
//!    same page, in alternating batches; total CPU per run of each side, each side in its own
//!    cgroup (see `accounting` for why), and the ratio.
//! 4. Soak: two runners at once (2 browsers, as `webdriver.sessions: 2`), the summed VmRSS of
//!    chromedriver and its descendants at rest after warm-up and after the soak runs.
//!
//! With pooled browsers a run hands its browser back and the next run's context is readied in
//! the background: every CPU window closes only once its group is quiet again
//! ([`accounting::settle`]), so each batch holds one such preparation per run. The toast page's
//! browser-side CPU (and the peer's) is also broken down by process kind
//! ([`accounting::Profile`]), with the renderers started per run; each run's
//! `RunResult::browser_reused` is counted.
//!
//! `JOURNEY_BENCH_ISOLATION=session|context|clear` (default `context`) is written to the config as
//! `webdriver.isolation`; a build whose config does not know that key loads without it and the
//! output says so. `JOURNEY_BENCH_EXTRA_ARGS` gives both sides more Chromium arguments (to try a
//! flag before it goes into synmon's defaults).
//!
//! Writes the JSON line also to `ops/reports/perf-YYYYMMDD.json`.

// A bench target is a crate root: its modules are found next to it unless told.
#[path = "journey/accounting.rs"]
mod accounting;
#[path = "journey/selenium.rs"]
mod selenium;
#[path = "journey/toast_page.rs"]
mod toast_page;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use accounting::{
    Cgroups, Meter, Profile, Scope, Snapshot, clk_tck, self_cpu_split, self_cpu_us, settle,
};
use serde_json::{Value, json};
use synmon::Outcome;
use synmon::clock::SystemClock;
use synmon::journey::webdriver::{ArmMode, Armed, Browser, Cond};
use synmon::journey::{Driver, Runner};
use synmon::settings::Config;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::time::Instant;

const PASSWORD: &str = "synthetic-demo";
const WARMUP: usize = 2;
const STEP_TIMEOUT: Duration = Duration::from_secs(5);
const TOAST: &str = "[data-test=toast]";
const TOAST_TEXT: &str = "Mapping updated";
/// The Selenium peer's and synmon's browser window.
const WINDOW: (u32, u32) = (1280, 800);

// Goals from issue 3.
const GOAL_CPU_MS_PER_RUN: f64 = 5.0;
const GOAL_RSS_MIB: f64 = 30.0;
const GOAL_ERR_MEDIAN_MS: f64 = 5.0;
const GOAL_ERR_P95_MS: f64 = 10.0;
// Goals of the browser-cost work.
const GOAL_RATIO_VS_SELENIUM: f64 = 0.5;
const GOAL_SESSION_MS: f64 = 50.0;
const GOAL_RSS_GROWTH_PCT: f64 = 10.0;

/// What the environment tunes.
#[derive(Debug, Clone)]
struct Knobs {
    /// `JOURNEY_BENCH_RUNS` (default 50; 3 in smoke mode): accuracy iterations, and runs of
    /// each runner part and of the Selenium peer.
    runs: usize,
    /// `JOURNEY_BENCH_SOAK_RUNS` (default 500; 6 in smoke mode): runs of the soak, over both
    /// runners together.
    soak_runs: usize,
    /// `JOURNEY_BENCH_ISOLATION`: `context` (default), `clear` or `session`.
    isolation: String,
    /// `JOURNEY_BENCH_SELENIUM=0` skips the peer.
    selenium: bool,
    /// `JOURNEY_BENCH_SELENIUM_POLL_MS`: the peer's WebDriverWait poll (default 500, Selenium's).
    selenium_poll_ms: u64,
    /// `JOURNEY_BENCH_CHROMEDRIVER` (default `/usr/bin/chromedriver` when present, else
    /// `chromedriver`): both sides use it.
    chromedriver: String,
    /// `JOURNEY_BENCH_BROWSER_BINARY`: both sides' Chromium (default: chromedriver's choice).
    browser_binary: Option<String>,
    /// `JOURNEY_BENCH_EXTRA_ARGS`: more Chromium arguments for both sides, separated by spaces
    /// (synmon's as `webdriver.extra_args`); none by default.
    extra_args: Vec<String>,
    /// `JOURNEY_BENCH_SPACED_MS` (default 1000; 0 skips): the pause before each of up to 10
    /// more toast-page runs, whose browser setup is reported apart. Back to back, a run's lease
    /// waits for the context its predecessor's browser is still being switched to; a schedule
    /// leaves time between runs of a journey.
    spaced_ms: u64,
    /// `JOURNEY_BENCH_REUSE_SESSION` (e.g. `10m`; default none): `align_category`'s login
    /// (`use: _login.yaml`) gets this `reuse_session`, so that its runs after the first log in
    /// by the captured cookies.
    reuse_session: Option<String>,
    /// `JOURNEY_BENCH_TRACE_REQUESTS=0`: synmon's side runs with `webdriver.trace_requests:
    /// false` (no interception of the tab's requests to the target; on by default, as in
    /// synmon).
    trace_requests: bool,
    /// `JOURNEY_BENCH_LOCAL_PROTOCOL`: synmon's `webdriver.local_protocol` (`devtools`, the
    /// default, or `bidi`).
    local_protocol: Option<String>,
    /// `JOURNEY_BENCH_SMOKE=1`: small default counts.
    smoke: bool,
}

impl Knobs {
    fn from_env() -> anyhow::Result<Self> {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        let num = |k: &str, default: usize| -> anyhow::Result<usize> {
            match var(k) {
                Some(v) => v
                    .parse()
                    .map_err(|_| anyhow::anyhow!("{k}={v}: not a whole number")),
                None => Ok(default),
            }
        };
        let smoke = var("JOURNEY_BENCH_SMOKE").is_some_and(|v| v != "0");
        let isolation = var("JOURNEY_BENCH_ISOLATION").unwrap_or_else(|| "context".into());
        anyhow::ensure!(
            ["context", "clear", "session"].contains(&isolation.as_str()),
            "JOURNEY_BENCH_ISOLATION={isolation}: expected `context`, `clear` or `session`"
        );
        let chromedriver = var("JOURNEY_BENCH_CHROMEDRIVER").unwrap_or_else(|| {
            if Path::new("/usr/bin/chromedriver").is_file() {
                "/usr/bin/chromedriver".into()
            } else {
                "chromedriver".into()
            }
        });
        Ok(Self {
            runs: num("JOURNEY_BENCH_RUNS", if smoke { 3 } else { 50 })?.max(1),
            soak_runs: num("JOURNEY_BENCH_SOAK_RUNS", if smoke { 6 } else { 500 })?.max(2),
            isolation,
            selenium: var("JOURNEY_BENCH_SELENIUM").is_none_or(|v| v != "0"),
            selenium_poll_ms: num("JOURNEY_BENCH_SELENIUM_POLL_MS", 500)? as u64,
            chromedriver,
            browser_binary: var("JOURNEY_BENCH_BROWSER_BINARY"),
            extra_args: var("JOURNEY_BENCH_EXTRA_ARGS")
                .map(|v| v.split_whitespace().map(str::to_string).collect())
                .unwrap_or_default(),
            spaced_ms: num("JOURNEY_BENCH_SPACED_MS", 1000)? as u64,
            reuse_session: var("JOURNEY_BENCH_REUSE_SESSION"),
            trace_requests: var("JOURNEY_BENCH_TRACE_REQUESTS").is_none_or(|v| v != "0"),
            local_protocol: var("JOURNEY_BENCH_LOCAL_PROTOCOL"),
            smoke,
        })
    }

    fn command(&self) -> String {
        let mut env = Vec::new();
        if self.smoke {
            env.push("JOURNEY_BENCH_SMOKE=1".to_string());
        }
        for (k, v) in [
            ("JOURNEY_BENCH_RUNS", self.runs.to_string()),
            ("JOURNEY_BENCH_SOAK_RUNS", self.soak_runs.to_string()),
            ("JOURNEY_BENCH_ISOLATION", self.isolation.clone()),
            ("JOURNEY_BENCH_EXTRA_ARGS", self.extra_args.join(" ")),
            ("JOURNEY_BENCH_SPACED_MS", self.spaced_ms.to_string()),
            (
                "JOURNEY_BENCH_REUSE_SESSION",
                self.reuse_session.clone().unwrap_or_default(),
            ),
            (
                "JOURNEY_BENCH_TRACE_REQUESTS",
                u8::from(self.trace_requests).to_string(),
            ),
            (
                "JOURNEY_BENCH_LOCAL_PROTOCOL",
                self.local_protocol.clone().unwrap_or_default(),
            ),
            // Read by the peer itself (`toast_peer.py`): its session asks for WebDriver BiDi,
            // so that chromedriver runs its BiDi mapper tab as it does for synmon.
            (
                "JOURNEY_BENCH_SELENIUM_BIDI",
                std::env::var("JOURNEY_BENCH_SELENIUM_BIDI").unwrap_or_default(),
            ),
        ] {
            if std::env::var(k).is_ok() {
                env.push(format!("{k}={v}"));
            }
        }
        env.push("cargo bench --bench journey".into());
        env.join(" ")
    }
}

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
// The sandbox and the toast page, in their own process.

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
    let (listener, toast_addr) = toast_page::bind().await?;
    let page = tokio::spawn(toast_page::serve(listener));
    println!("listening on {}", sbx.base_url());
    println!("toast page on http://{toast_addr}");
    // Runs until the parent closes our stdin (it exited, or it is done).
    let mut sink = Vec::new();
    let _ = tokio::io::stdin().read_to_end(&mut sink).await;
    page.abort();
    sbx.shutdown().await;
    Ok(())
}

struct SandboxProcess {
    child: tokio::process::Child,
    base_url: String,
    toast_url: String,
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
    let mut next = async |prefix: &str| -> anyhow::Result<String> {
        let line = tokio::time::timeout(Duration::from_secs(60), lines.next_line())
            .await
            .map_err(|_| anyhow::anyhow!("sandbox did not start within 60 s"))??
            .ok_or_else(|| anyhow::anyhow!("sandbox exited at start"))?;
        Ok(line
            .strip_prefix(prefix)
            .ok_or_else(|| anyhow::anyhow!("unexpected sandbox output: {line}"))?
            .to_string())
    };
    let base_url = next("listening on ").await?;
    let toast_url = next("toast page on ").await?;
    Ok(SandboxProcess {
        child,
        base_url,
        toast_url,
    })
}

// ---------------------------------------------------------------------------------------------
// Config, like tests/it/support/mod.rs::write_config, with the toast page as a second target
// and its journey beside copies of the repo's journeys.

fn journeys_dir(dir: &Path, reuse_session: Option<&str>) -> anyhow::Result<PathBuf> {
    let out = dir.join("journeys");
    std::fs::create_dir_all(&out)?;
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("journeys");
    for e in std::fs::read_dir(&repo)? {
        let e = e?;
        if e.file_type()?.is_file() {
            std::fs::copy(e.path(), out.join(e.file_name()))?;
        }
    }
    if let Some(age) = reuse_session {
        let file = out.join("align_category.yaml");
        let text = std::fs::read_to_string(&file)?;
        let login = "  - use: _login.yaml\n";
        anyhow::ensure!(text.contains(login), "align_category has no `{login}`");
        std::fs::write(
            &file,
            text.replacen(login, &format!("{login}    reuse_session: {age}\n"), 1),
        )?;
    }
    std::fs::write(
        out.join(format!("{}.yaml", toast_page::JOURNEY_NAME)),
        toast_page::JOURNEY_YAML,
    )?;
    Ok(out)
}

struct ConfigInput<'a> {
    base_url: &'a str,
    toast_url: &'a str,
    journeys: &'a Path,
    chromedriver: &'a str,
    browser_binary: Option<&'a str>,
    isolation: Option<&'a str>,
    extra_args: &'a [String],
    trace_requests: bool,
    local_protocol: Option<&'a str>,
}

fn write_config(dir: &Path, c: &ConfigInput<'_>) -> PathBuf {
    let file = dir.join("synmon.yaml");
    let mut webdriver = format!(
        "webdriver:\n  chromedriver: \"{}\"\n  window_size: {}x{}\n  sessions: 2\n",
        c.chromedriver, WINDOW.0, WINDOW.1
    );
    if let Some(b) = c.browser_binary {
        webdriver.push_str(&format!("  browser_binary: \"{b}\"\n"));
    }
    if let Some(i) = c.isolation {
        webdriver.push_str(&format!("  isolation: {i}\n"));
    }
    if !c.trace_requests {
        webdriver.push_str("  trace_requests: false\n");
    }
    if let Some(p) = c.local_protocol {
        webdriver.push_str(&format!("  local_protocol: {p}\n"));
    }
    if !c.extra_args.is_empty() {
        webdriver.push_str("  extra_args:\n");
        for a in c.extra_args {
            webdriver.push_str(&format!("    - \"{a}\"\n"));
        }
    }
    let text = format!(
        "targets:\n  staging:\n    base_url: \"{}\"\n  toast:\n    base_url: \"{}\"\ndefault_target: staging\ntenant: synthetic\ncredentials:\n  username: synthetic@rvp.test\n  password: \"{PASSWORD}\"\njourneys: \"{}\"\nartifacts: artifacts\n{webdriver}",
        c.base_url,
        c.toast_url,
        c.journeys.display()
    );
    std::fs::write(&file, text).expect("write synmon.yaml");
    file
}

/// The isolation mode as configured: (config, applied, note).
fn load_config(dir: &Path, c: &ConfigInput<'_>) -> anyhow::Result<(Config, bool, String)> {
    match Config::load(&write_config(dir, c)) {
        Ok(cfg) => Ok((cfg, true, "applied".into())),
        Err(e) if c.isolation.is_some() && e.to_string().contains("isolation") => {
            let without = ConfigInput {
                isolation: None,
                ..*c
            };
            let cfg = Config::load(&write_config(dir, &without))
                .map_err(|e| anyhow::anyhow!("config: {e}"))?;
            eprintln!(
                "journey bench: the config loader refused `webdriver.isolation`: {}",
                e.to_string().lines().next().unwrap_or("")
            );
            let note = "IGNORED: this build's config has no `webdriver.isolation` (every run makes a new WebDriver session)";
            Ok((cfg, false, note.into()))
        }
        Err(e) => Err(anyhow::anyhow!("config: {e}")),
    }
}

// ---------------------------------------------------------------------------------------------
// Machine.

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
    /// CPU spent during the save interaction only, per mode: (synmon µs, browser side µs).
    in_page_cpu: (u64, u64),
    outside_cpu: (u64, u64),
    /// The toast page's save, timed in the page, against its capture-phase truth.
    toast_measured: Vec<f64>,
    toast_truth: Vec<f64>,
    toast_err: Vec<f64>,
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

/// The toast page's save, timed in the page the way synmon times a step, and the page's truth.
async fn toast_in_page(b: &Browser, url: &str) -> anyhow::Result<(f64, f64)> {
    b.goto(url, STEP_TIMEOUT).await.map_err(s)?;
    b.fill(toast_page::INPUT, "synmon", false, STEP_TIMEOUT)
        .await
        .map_err(s)?;
    let cond = Cond {
        selector: toast_page::TOAST.to_string(),
        text: Some(toast_page::TOAST_OK.to_string()),
        visible: true,
        gone: false,
    };
    let pre = b.arm(&cond, ArmMode::FirstInput).await.map_err(s)?;
    anyhow::ensure!(!pre, "the toast was already there before the click");
    b.click(toast_page::BUTTON, STEP_TIMEOUT).await.map_err(s)?;
    let measured = match b.await_armed(STEP_TIMEOUT).await.map_err(s)? {
        Armed::InPage(ms) => ms,
        other => anyhow::bail!("in-page timing ended with {other:?}"),
    };
    let v = b.eval("return window.__truth || null;").await.map_err(s)?;
    match (v["click"].as_f64(), v["toast"].as_f64()) {
        (Some(c), Some(t)) => Ok((measured, t - c)),
        _ => Err(anyhow::anyhow!("the toast page recorded no truth: {v}")),
    }
}

async fn accuracy(ctx: &Ctx<'_>) -> anyhow::Result<Accuracy> {
    let (cfg, driver, base, n) = (ctx.cfg, ctx.driver, ctx.base_url, ctx.knobs.runs);
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
        &cfg.credentials
            .as_ref()
            .expect("bench config has credentials")
            .username,
        false,
        STEP_TIMEOUT,
    )
    .await
    .map_err(s)?;
    b.fill(
        "[data-test=login-password]",
        cfg.credentials
            .as_ref()
            .expect("bench config has credentials")
            .password
            .expose(),
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

    let tree = || ctx.meter.cpu_us(ctx.tck);
    let mut acc = Accuracy::default();
    for i in 0..WARMUP + n {
        let keep = i >= WARMUP;

        prepare_save(&b, base).await?;
        let (c0, t0) = (self_cpu_us(), tree());
        let measured = save_in_page(&b).await?;
        let (c1, t1) = (self_cpu_us(), tree());
        let truth_ms = truth(&b).await?;
        if keep {
            acc.in_page_measured.push(measured);
            acc.in_page_truth.push(truth_ms);
            acc.in_page_err.push(measured - truth_ms);
            acc.in_page_cpu.0 += c1 - c0;
            acc.in_page_cpu.1 += t1.saturating_sub(t0);
        }

        prepare_save(&b, base).await?;
        let (c0, t0) = (self_cpu_us(), tree());
        let (measured, polls) = save_outside(&b).await?;
        let (c1, t1) = (self_cpu_us(), tree());
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
    for i in 0..WARMUP + n {
        let (measured, truth_ms) = toast_in_page(&b, ctx.toast_url).await?;
        if i >= WARMUP {
            acc.toast_measured.push(measured);
            acc.toast_truth.push(truth_ms);
            acc.toast_err.push(measured - truth_ms);
        }
    }
    b.close().await;
    Ok(acc)
}

// ---------------------------------------------------------------------------------------------
// Parts 2 and 3: the full runner.

#[derive(Default)]
struct Runs {
    attempted: usize,
    timed: Vec<f64>,
    /// The journey's interaction step (`save mapping`, `save`).
    step: Vec<f64>,
    session: Vec<f64>,
    total: Vec<f64>,
    failures: Vec<String>,
    /// synmon's CPU over the runs, exact (see [`accounting::self_cpu_us`]).
    self_cpu_us: u64,
    /// Its user part, in ticks (the kernel splits user and system time only by tick samples).
    self_user_ticks: u64,
    /// chromedriver and every Chromium process (see [`Meter`]).
    browser_cpu_us: u64,
    wall_s: f64,
    /// Runs a pooled browser served (`RunResult::browser_reused`), and runs that started one.
    reused: usize,
    new_browser: usize,
    /// Runs that logged in by a captured session (`RunResult::session_reused`).
    session_reused: usize,
    /// Where the browser side's CPU went, by process kind.
    profile: Profile,
}

/// Per-run figures in ms.
struct RunCost {
    synmon_ms: f64,
    synmon_user_ms: f64,
    browser_ms: f64,
}

impl Runs {
    fn cost(&self, tck: f64) -> RunCost {
        let n = self.attempted.max(1) as f64;
        RunCost {
            synmon_ms: self.self_cpu_us as f64 / 1000.0 / n,
            synmon_user_ms: self.self_user_ticks as f64 * 1000.0 / tck / n,
            browser_ms: self.browser_cpu_us as f64 / 1000.0 / n,
        }
    }

    fn record(&mut self, r: &synmon::journey::RunResult, step: &str) {
        self.attempted += 1;
        match r.browser_reused {
            Some(true) => self.reused += 1,
            Some(false) => self.new_browser += 1,
            None => {}
        }
        self.session_reused += usize::from(r.session_reused == Some(true));
        self.session.push(r.session_create_ms);
        self.total.push(r.total_ms);
        if r.outcome != Outcome::Pass {
            self.failures.push(format!(
                "{}: {}",
                r.outcome,
                r.error.clone().unwrap_or_default()
            ));
            return;
        }
        self.timed.push(r.timed_latency_ms);
        if let Some(st) = r.steps.iter().find(|s| s.name == step) {
            self.step.push(st.latency_ms);
        }
    }

    fn json(&self, tck: f64) -> Value {
        let c = self.cost(tck);
        json!({
            "runs": self.attempted,
            "passed": self.timed.len(),
            "not_passed": self.failures,
            "wall_s": r2(self.wall_s),
            "timed_latency_ms": sjson(&summarize(&self.timed)),
            "step_ms": sjson(&summarize(&self.step)),
            "session_create_ms": sjson(&summarize(&self.session)),
            "browser_reused": self.reused,
            "session_reused": self.session_reused,
            "browser_started": self.new_browser,
            "run_total_ms": sjson(&summarize(&self.total)),
            "synmon_cpu_ms_per_run": r2(c.synmon_ms),
            "browser_cpu_ms_per_run": r2(c.browser_ms),
            "total_cpu_ms_per_run": r2(c.synmon_ms + c.browser_ms),
            "browser_cpu_profile": profile_json(&self.profile, self.attempted),
        })
    }
}

/// A profile as ms per run by process kind (`null` when nothing was profiled).
fn profile_json(p: &Profile, runs: usize) -> Value {
    if p.rows.is_empty() {
        return Value::Null;
    }
    let n = runs.max(1) as f64;
    let mut rows = serde_json::Map::new();
    for (k, us) in &p.rows {
        rows.insert(k.clone(), json!(r2(*us as f64 / 1000.0 / n)));
    }
    rows.insert("exited".into(), json!(r2(p.exited_us as f64 / 1000.0 / n)));
    json!({
        "cpu_ms_per_run": rows,
        "processes_started": p.started,
        "processes_ended": p.ended,
        "renderers_started_per_run": p.renderers_counted.then(|| r2(p.renderers_started as f64 / n)),
    })
}

/// The profile's rows, largest first, as `kind ms` per run.
fn profile_line(p: &Profile, runs: usize) -> String {
    let n = runs.max(1) as f64;
    let mut rows: Vec<(String, u64)> = p.rows.iter().map(|(k, v)| (k.clone(), *v)).collect();
    rows.push(("exited".into(), p.exited_us));
    rows.sort_by_key(|r| std::cmp::Reverse(r.1));
    let parts: Vec<String> = rows
        .iter()
        .filter(|(_, us)| *us > 0)
        .map(|(k, us)| format!("{k} {:.1}", *us as f64 / 1000.0 / n))
        .collect();
    let renderers = if p.renderers_counted {
        format!("{:.1}", p.renderers_started as f64 / n)
    } else {
        "n/a (no browser lived through a batch)".into()
    };
    format!(
        "{}; renderers started per run: {renderers}",
        parts.join(", ")
    )
}

/// A journey, the target it runs against, and the name of its interaction step.
struct Subject {
    journey: synmon::journey::Journey,
    target: synmon::config::Target,
    step: &'static str,
}

impl Subject {
    fn new(cfg: &Config, journey: &str, target: &str, step: &'static str) -> anyhow::Result<Self> {
        Ok(Self {
            journey: cfg.journey(journey).map_err(s)?,
            target: cfg.target(Some(target)).map_err(s)?.clone(),
            step,
        })
    }
}

async fn warm_up(runner: &Runner, sub: &Subject) -> anyhow::Result<()> {
    for _ in 0..WARMUP {
        let r = runner.run(&sub.journey, &sub.target).await;
        anyhow::ensure!(
            r.outcome == Outcome::Pass,
            "warm-up run of {} did not pass: {}",
            sub.journey.name,
            serde_json::to_string(&r)?
        );
    }
    Ok(())
}

/// `n` runs one after the other; the CPU counters are read right before the first and right
/// after the last.
async fn runner_batch(
    runner: &Runner,
    sub: &Subject,
    n: usize,
    meter: &Meter,
    tck: f64,
    into: &mut Runs,
) {
    let s0 = Snapshot::take(&meter.pids());
    let (c0, b0, w0) = (self_cpu_us(), meter.cpu_us(tck), Instant::now());
    let u0 = self_cpu_split().0;
    for _ in 0..n {
        let r = runner.run(&sub.journey, &sub.target).await;
        into.record(&r, sub.step);
    }
    into.wall_s += w0.elapsed().as_secs_f64();
    // The last run's browser is being readied for the next run: that work is this batch's.
    settle(|| meter.cpu_us(tck)).await;
    let browser_us = meter.cpu_us(tck).saturating_sub(b0);
    into.self_cpu_us += self_cpu_us() - c0;
    into.self_user_ticks += self_cpu_split().0 - u0;
    into.browser_cpu_us += browser_us;
    if meter.exact() {
        into.profile
            .add(&s0, &Snapshot::take(&meter.pids()), browser_us, tck);
    }
}

// ---------------------------------------------------------------------------------------------
// Part 3: the Selenium peer.

#[derive(Default)]
struct PeerFigures {
    runs: usize,
    wall: Vec<f64>,
    measured: Vec<f64>,
    truth: Vec<f64>,
    err: Vec<f64>,
    session_create_ms: f64,
    cpu_us: u64,
    user_us: u64,
    script_cpu_ms: f64,
    rss_kib: u64,
    profile: Profile,
}

impl PeerFigures {
    fn cpu_per_run(&self) -> f64 {
        self.cpu_us as f64 / 1000.0 / self.runs.max(1) as f64
    }
}

/// Rounds of alternating batches: synmon's toast journey, then the peer, so that a change of
/// machine load hits both sides alike.
fn rounds(n: usize) -> Vec<usize> {
    let k = n.clamp(1, 5);
    (0..k).map(|i| n / k + usize::from(i < n % k)).collect()
}

// ---------------------------------------------------------------------------------------------
// Part 4: soak with two runners at once.

#[derive(Default)]
struct Soak {
    runs: Runs,
    rss_after_warmup_kib: u64,
    rss_after_kib: u64,
    /// How many processes with memory (chromedriver included; not the exiting) each reading saw.
    procs_after_warmup: usize,
    procs_after: usize,
    /// Those processes by kind (`renderer 6, browser 2, ...`).
    kinds_after_warmup: String,
    kinds_after: String,
    /// Highest summed VmRSS seen by the 250 ms sampler during the first and the last tenth.
    peak_first_kib: u64,
    peak_last_kib: u64,
    samples: usize,
}

impl Soak {
    fn growth_pct(&self) -> f64 {
        (self.rss_after_kib as f64 / self.rss_after_warmup_kib.max(1) as f64 - 1.0) * 100.0
    }
}

/// `pids` counted by [`accounting::process_kind`], most first.
fn kinds(pids: &[u32]) -> String {
    let mut count: std::collections::BTreeMap<String, usize> = Default::default();
    for p in pids {
        *count.entry(accounting::process_kind(*p)).or_default() += 1;
    }
    let mut v: Vec<_> = count.into_iter().collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    v.iter()
        .map(|(k, n)| format!("{k} {n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

async fn soak(
    runner: &Runner,
    sub: &Subject,
    n: usize,
    meter: &Meter,
    tck: f64,
) -> anyhow::Result<Soak> {
    let (w1, w2) = tokio::join!(warm_up(runner, sub), warm_up(runner, sub));
    w1?;
    w2?;
    // At rest: both browsers readied for their next run.
    settle(|| meter.cpu_us(tck)).await;
    let mut out = Soak {
        rss_after_warmup_kib: meter.rss_kib(),
        procs_after_warmup: meter.live_pids().len(),
        kinds_after_warmup: kinds(&meter.live_pids()),
        ..Soak::default()
    };
    let done = AtomicUsize::new(0);
    let finished = std::sync::atomic::AtomicBool::new(false);
    let tenth = (n / 10).max(1);
    let (c0, b0, w0) = (self_cpu_us(), meter.cpu_us(tck), Instant::now());
    let u0 = self_cpu_split().0;
    let one_loop = async |share: usize| {
        let mut runs = Runs::default();
        for _ in 0..share {
            let r = runner.run(&sub.journey, &sub.target).await;
            runs.record(&r, sub.step);
            done.fetch_add(1, Ordering::Relaxed);
        }
        runs
    };
    let sampler = async {
        let mut tick = tokio::time::interval(Duration::from_millis(250));
        let (mut first, mut last, mut samples) = (0u64, 0u64, 0usize);
        while !finished.load(Ordering::Relaxed) {
            tick.tick().await;
            let k = done.load(Ordering::Relaxed);
            let rss = meter.rss_kib();
            samples += 1;
            if k < tenth {
                first = first.max(rss);
            } else if k >= n - tenth {
                last = last.max(rss);
            }
        }
        (first, last, samples)
    };
    let loops = async {
        let (a, b) = tokio::join!(one_loop(n / 2), one_loop(n - n / 2));
        finished.store(true, Ordering::Relaxed);
        (a, b)
    };
    let ((a, b), (first, last, samples)) = tokio::join!(loops, sampler);
    out.runs.wall_s = w0.elapsed().as_secs_f64();
    settle(|| meter.cpu_us(tck)).await;
    out.runs.self_cpu_us = self_cpu_us() - c0;
    out.runs.self_user_ticks = self_cpu_split().0 - u0;
    out.runs.browser_cpu_us = meter.cpu_us(tck).saturating_sub(b0);
    for part in [a, b] {
        out.runs.attempted += part.attempted;
        out.runs.timed.extend(part.timed);
        out.runs.step.extend(part.step);
        out.runs.session.extend(part.session);
        out.runs.total.extend(part.total);
        out.runs.failures.extend(part.failures);
        out.runs.reused += part.reused;
        out.runs.new_browser += part.new_browser;
    }
    out.rss_after_kib = meter.rss_kib();
    out.procs_after = meter.live_pids().len();
    out.kinds_after = kinds(&meter.live_pids());
    out.peak_first_kib = first;
    out.peak_last_kib = last;
    out.samples = samples;
    Ok(out)
}

// ---------------------------------------------------------------------------------------------

/// The browser program synmon's local sessions start under `cfg`.
fn browser_program(cfg: &Config) -> synmon::journey::program::Program {
    synmon::journey::program::Program::for_config(&cfg.webdriver)
}

/// What `bench` measures with, once set up.
struct Ctx<'a> {
    knobs: &'a Knobs,
    cfg: &'a Config,
    driver: &'a Driver,
    runner: &'a Runner,
    meter: &'a Meter,
    tck: f64,
    dir: &'a Path,
    base_url: &'a str,
    toast_url: &'a str,
}

struct Figures {
    acc: Accuracy,
    align: Runs,
    toast: Runs,
    peer: PeerFigures,
    /// Why the Selenium peer did not run, if it did not.
    peer_skipped: Option<String>,
    /// Browser setup of toast-page runs started after a pause (`Knobs::spaced_ms`).
    spaced: Vec<f64>,
    soak: Soak,
}

async fn start_peer(
    ctx: &Ctx<'_>,
    cgroups: &mut Option<Cgroups>,
) -> anyhow::Result<Result<selenium::Peer, String>> {
    if !ctx.knobs.selenium {
        return Ok(Err("JOURNEY_BENCH_SELENIUM=0".into()));
    }
    let Some(c) = cgroups.as_mut() else {
        return Ok(Err("no cgroup v2 to account for it".into()));
    };
    let python = match selenium::ensure_venv().await {
        Ok(p) => p,
        Err(e) => return Ok(Err(format!("no Selenium venv: {e}"))),
    };
    // The browser synmon's sessions run (the headless shell when installed), so that both
    // sides drive the same program.
    let browser = browser_program(ctx.cfg);
    let opts = selenium::PeerOptions {
        python: &python,
        url: ctx.toast_url,
        chromedriver: &ctx.knobs.chromedriver,
        browser_binary: browser.binary.as_deref(),
        poll_ms: ctx.knobs.selenium_poll_ms,
        window: WINDOW,
        extra_args: &ctx.knobs.extra_args,
    };
    eprintln!("journey bench: Selenium peer: starting its session...");
    Ok(Ok(selenium::Peer::start(
        c.scope("selenium")?,
        ctx.dir,
        &opts,
    )
    .await?))
}

async fn measure(ctx: &Ctx<'_>, cgroups: &mut Option<Cgroups>) -> anyhow::Result<Figures> {
    let (n, tck, meter) = (ctx.knobs.runs, ctx.tck, ctx.meter);
    eprintln!(
        "journey bench: accuracy ({WARMUP} warm-up + {n} iterations, 2 saves each; {n} toast-page saves)..."
    );
    let acc = accuracy(ctx).await?;

    let align = Subject::new(ctx.cfg, "align_category", "staging", "save mapping")?;
    let toast = Subject::new(ctx.cfg, toast_page::JOURNEY_NAME, "toast", toast_page::STEP)?;

    eprintln!("journey bench: Runner::run align_category ({WARMUP} warm-up + {n} runs)...");
    warm_up(ctx.runner, &align).await?;
    let mut align_runs = Runs::default();
    runner_batch(ctx.runner, &align, n, meter, tck, &mut align_runs).await;

    // The Selenium peer in its own scope, alternating with synmon's toast journey.
    let (mut peer_handle, peer_skipped) = match start_peer(ctx, cgroups).await? {
        Ok(p) => (Some(p), None),
        Err(why) => (None, Some(why)),
    };
    eprintln!(
        "journey bench: toast page: synmon vs the Selenium peer ({WARMUP} warm-up + {n} runs each)..."
    );
    warm_up(ctx.runner, &toast).await?;
    let mut toast_runs = Runs::default();
    let mut peer = PeerFigures::default();
    if let Some(p) = peer_handle.as_mut() {
        p.runs(WARMUP, false).await?;
        peer.session_create_ms = p.session_create_ms;
    }
    for k in rounds(n) {
        runner_batch(ctx.runner, &toast, k, meter, tck, &mut toast_runs).await;
        if let Some(p) = peer_handle.as_mut() {
            let b = p.runs(k, false).await?;
            peer.runs += k;
            peer.wall.extend(b.wall_ms);
            peer.measured.extend(b.measured_ms);
            peer.cpu_us += b.cpu.usage_us;
            peer.user_us += b.cpu.user_us;
            peer.script_cpu_ms += b.script_cpu_ms;
            peer.profile.add(&b.before, &b.after, b.cpu.usage_us, tck);
        }
    }
    if let Some(mut p) = peer_handle.take() {
        peer.rss_kib = accounting::rss_sum_kib(&p.pids());
        // Reading the page's truth costs a WebDriver command: only in runs outside the CPU figure.
        let b = p.runs(n.min(20), true).await?;
        for (m, t) in b.measured_ms.iter().zip(&b.truth_ms) {
            peer.truth.push(*t);
            peer.err.push(m - t);
        }
        p.quit().await;
    }

    let mut spaced = Vec::new();
    if ctx.knobs.spaced_ms > 0 {
        let k = n.min(10);
        eprintln!(
            "journey bench: toast page: {k} runs, each after a {} ms pause...",
            ctx.knobs.spaced_ms
        );
        for _ in 0..k {
            tokio::time::sleep(Duration::from_millis(ctx.knobs.spaced_ms)).await;
            let r = ctx.runner.run(&toast.journey, &toast.target).await;
            spaced.push(r.session_create_ms);
        }
    }

    let soak_n = ctx.knobs.soak_runs;
    eprintln!(
        "journey bench: soak: 2 runners at once, {WARMUP} warm-up each + {soak_n} toast-page runs..."
    );
    let soak = soak(ctx.runner, &toast, soak_n, meter, tck).await?;
    Ok(Figures {
        acc,
        align: align_runs,
        toast: toast_runs,
        peer,
        peer_skipped,
        spaced,
        soak,
    })
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

async fn bench() -> anyhow::Result<()> {
    synmon::tls::install();
    let knobs = Knobs::from_env()?;
    let n = knobs.runs;
    let load_before = loadavg();
    let tck = clk_tck();

    let dir = tempfile::tempdir()?;
    let mut sbx = spawn_sandbox(dir.path()).await?;
    let toast_url = format!("{}{}", sbx.toast_url, toast_page::PATH);

    // Accounting scopes: synmon's chromedriver tree, and the Selenium peer's whole tree.
    let (mut cgroups, cgroup_note) = match Cgroups::create() {
        Ok(c) => {
            let note = format!(
                "cgroup v2 at {} (every process that was ever in a scope, exited ones included)",
                c.root().display()
            );
            (Some(c), note)
        }
        Err(why) => (
            None,
            format!(
                "LIVE /proc WALK ONLY ({why}): exited Chromium processes are missing from the browser-side CPU; Selenium peer skipped"
            ),
        ),
    };
    let synmon_scope: Option<Scope> = match cgroups.as_mut() {
        Some(c) => Some(c.scope("synmon")?),
        None => None,
    };
    let chromedriver = match &synmon_scope {
        Some(scope) => scope
            .wrapper(
                &dir.path().join("chromedriver-synmon.sh"),
                &knobs.chromedriver,
            )?
            .display()
            .to_string(),
        None => knobs.chromedriver.clone(),
    };
    let journeys = journeys_dir(dir.path(), knobs.reuse_session.as_deref())?;
    let input = ConfigInput {
        base_url: &sbx.base_url,
        toast_url: &sbx.toast_url,
        journeys: &journeys,
        chromedriver: &chromedriver,
        browser_binary: knobs.browser_binary.as_deref(),
        isolation: Some(&knobs.isolation),
        extra_args: &knobs.extra_args,
        trace_requests: knobs.trace_requests,
        local_protocol: knobs.local_protocol.as_deref(),
    };
    let (cfg, isolation_applied, isolation_note) = load_config(dir.path(), &input)?;
    eprintln!(
        "journey bench: isolation {}: {isolation_note}",
        knobs.isolation
    );
    eprintln!("journey bench: CPU accounting: {cgroup_note}");
    let cfg = Arc::new(cfg);
    let driver = Arc::new(Driver::from_config(&cfg.webdriver));
    let runner = Runner::new(cfg.runner_settings(), driver.clone(), Arc::new(SystemClock));
    driver.endpoint().await.map_err(s)?;
    let local = driver.local().expect("local chromedriver");
    let meter = match &synmon_scope {
        Some(scope) => Meter::Cgroup(scope.clone()),
        None => Meter::LiveTree {
            root: local.pid().await,
        },
    };
    let starts_before = local.starts();

    let ctx = Ctx {
        knobs: &knobs,
        cfg: &cfg,
        driver: &driver,
        runner: &runner,
        meter: &meter,
        tck,
        dir: dir.path(),
        base_url: &sbx.base_url,
        toast_url: &toast_url,
    };
    let result = measure(&ctx, &mut cgroups).await;
    anyhow::ensure!(
        result.is_err() || local.starts() == starts_before,
        "chromedriver was restarted during the bench: its CPU and RSS figures would be wrong"
    );

    let rss_hwm_kib = accounting::status_kib("self", "VmHWM:");
    let rss_now_kib = accounting::status_kib("self", "VmRSS:");
    driver.shutdown().await;
    if let Some(c) = cgroups.take() {
        c.remove().await;
    }
    drop(sbx.child.stdin.take());
    let _ = tokio::time::timeout(Duration::from_secs(10), sbx.child.wait()).await;
    let Figures {
        acc,
        align: runs,
        toast: toast_runs,
        peer,
        peer_skipped,
        spaced,
        soak,
    } = result?;
    let load_after = loadavg();

    let ip_err = summarize(&acc.in_page_err);
    let out_err = summarize(&acc.outside_err);
    let toast_err = summarize(&acc.toast_err);
    let timed = summarize(&runs.timed);
    let save = summarize(&runs.step);
    let session = summarize(&runs.session);
    let total = summarize(&runs.total);
    let align_cost = runs.cost(tck);
    let cpu_per_run = align_cost.synmon_ms;
    let user_per_run = align_cost.synmon_user_ms;
    let tree_per_run = align_cost.browser_ms;
    let toast_cost = toast_runs.cost(tck);
    let toast_total = toast_cost.synmon_ms + toast_cost.browser_ms;
    let toast_session = summarize(&toast_runs.session);
    let peer_cpu = peer.cpu_per_run();
    let ratio = (peer_skipped.is_none() && peer_cpu > 0.0).then(|| toast_total / peer_cpu);
    let rss_mib = mib(rss_hwm_kib);
    let n_acc = acc.in_page_err.len().max(1) as f64;
    let date = chrono::Local::now();
    let exact = if meter.exact() {
        ""
    } else {
        " (LIVE PROCESSES ONLY)"
    };

    let mut out = String::new();
    let mut p = |l: String| {
        out.push_str(&l);
        out.push('\n');
    };
    p(format!(
        "journey bench — align_category + toast page, {} — {} cores, load {load_before} before / {load_after} after",
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
        "  CPU per save interaction: in-page synmon {:.2} ms + chromedriver/Chromium {:.2} ms; outside synmon {:.2} ms + chromedriver/Chromium {:.2} ms ({:.1} polls median){exact}",
        acc.in_page_cpu.0 as f64 / 1000.0 / n_acc,
        acc.in_page_cpu.1 as f64 / 1000.0 / n_acc,
        acc.outside_cpu.0 as f64 / 1000.0 / n_acc,
        acc.outside_cpu.1 as f64 / 1000.0 / n_acc,
        summarize(&acc.outside_polls).median,
    ));
    p(line(
        "toast page truth (capture click)",
        &summarize(&acc.toast_truth),
    ));
    p(line(
        "synmon in-page measured",
        &summarize(&acc.toast_measured),
    ));
    p(line("  error (measured - truth)", &toast_err));
    p(format!(
        "Runner::run x {n} (after {WARMUP} warm-ups): {} passed, {} not ({:.1} s wall) (ms)",
        runs.timed.len(),
        runs.failures.len(),
        runs.wall_s
    ));
    p(line("timed latency (journey SLO)", &timed));
    p(line("`save mapping` step", &save));
    p(line("browser setup (critical path)", &session));
    p(line("whole run (wall)", &total));
    p(format!(
        "  synmon CPU per run           {cpu_per_run:>8.2} ms   (goal <= {GOAL_CPU_MS_PER_RUN} ms: {}; user {user_per_run:.2} + system {:.2})",
        verdict(cpu_per_run <= GOAL_CPU_MS_PER_RUN),
        cpu_per_run - user_per_run
    ));
    p(format!(
        "  chromedriver + Chromium CPU  {tree_per_run:>8.2} ms per run{exact}"
    ));
    p(format!(
        "  peak RSS (VmHWM)             {rss_mib:>8.1} MiB (goal <= {GOAL_RSS_MIB} MB: {}); VmRSS at end {:.1} MiB",
        verdict(rss_mib <= GOAL_RSS_MIB),
        mib(rss_now_kib)
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
    p(format!(
        "browser cost — isolation `{}`: {isolation_note}",
        knobs.isolation
    ));
    p(format!(
        "  browser (both sides): {}",
        browser_program(&cfg)
            .binary
            .unwrap_or_else(|| "chromedriver's choice".into())
    ));
    if !knobs.extra_args.is_empty() {
        p(format!(
            "  extra Chromium arguments (both sides): {}",
            knobs.extra_args.join(" ")
        ));
    }
    p(format!("  CPU accounting: {cgroup_note}"));
    p(format!(
        "  {:<36} {:>9} {:>9} {:>9} {:>9} {:>9}",
        "CPU ms per run; wall/session median", "own", "browser", "total", "wall", "session"
    ));
    let row = |label: &str, own: f64, browser: f64, wall: f64, session: Option<f64>| {
        let session = session.map_or("-".to_string(), |v| format!("{v:.1}"));
        format!(
            "  {label:<36} {own:>9.2} {browser:>9.2} {:>9.2} {wall:>9.1} {session:>9}",
            own + browser
        )
    };
    p(row(
        &format!("synmon align_category (n={})", runs.attempted),
        align_cost.synmon_ms,
        align_cost.browser_ms,
        total.median,
        Some(session.median),
    ));
    p(row(
        &format!("synmon toast page (n={})", toast_runs.attempted),
        toast_cost.synmon_ms,
        toast_cost.browser_ms,
        summarize(&toast_runs.total).median,
        Some(toast_session.median),
    ));
    match &peer_skipped {
        None => {
            let script = peer.script_cpu_ms / peer.runs.max(1) as f64;
            p(row(
                &format!("Selenium toast page, 1 session (n={})", peer.runs),
                script,
                peer_cpu - script,
                summarize(&peer.wall).median,
                None,
            ));
            p(format!(
                "  Selenium: its one session took {:.1} ms to start (not per run); WebDriverWait poll {} ms; click -> toast seen {:.1} ms median, {:.1} ms above the page's truth (n={}); browser RSS {:.1} MiB",
                peer.session_create_ms,
                knobs.selenium_poll_ms,
                summarize(&peer.measured).median,
                summarize(&peer.err).median,
                peer.err.len(),
                mib(peer.rss_kib),
            ));
        }
        Some(why) => p(format!("  Selenium peer skipped: {why}")),
    }
    if let Some(r) = ratio {
        p(format!(
            "  synmon / Selenium total CPU per run (toast page): {r:.2}x (goal <= {GOAL_RATIO_VS_SELENIUM}x: {})",
            verdict(r <= GOAL_RATIO_VS_SELENIUM)
        ));
    }
    p(format!(
        "  browsers: align_category {} runs on a pooled browser, {} started one; toast page {} pooled, {} started; soak {} pooled, {} started",
        runs.reused,
        runs.new_browser,
        toast_runs.reused,
        toast_runs.new_browser,
        soak.runs.reused,
        soak.runs.new_browser,
    ));
    if meter.exact() {
        p(format!(
            "  synmon toast page, browser CPU ms per run by process: {}",
            profile_line(&toast_runs.profile, toast_runs.attempted)
        ));
        if peer_skipped.is_none() {
            p(format!(
                "  Selenium toast page, CPU ms per run by process: {}",
                profile_line(&peer.profile, peer.runs)
            ));
        }
    }
    p(format!(
        "  session setup on the run's critical path: median {:.1} ms toast page, {:.1} ms align_category (goal <= {GOAL_SESSION_MS} ms: {})",
        toast_session.median,
        session.median,
        verdict(toast_session.median <= GOAL_SESSION_MS && session.median <= GOAL_SESSION_MS)
    ));
    if !spaced.is_empty() {
        p(line(
            &format!("  setup after a {} ms pause", knobs.spaced_ms),
            &summarize(&spaced),
        ));
    }
    p(format!(
        "  synmon own CPU per run: {:.2} ms toast page, {:.2} ms align_category (goal <= {GOAL_CPU_MS_PER_RUN} ms: {})",
        toast_cost.synmon_ms,
        cpu_per_run,
        verdict(toast_cost.synmon_ms <= GOAL_CPU_MS_PER_RUN && cpu_per_run <= GOAL_CPU_MS_PER_RUN)
    ));
    for f in &toast_runs.failures {
        p(format!("  toast run not passed: {f}"));
    }
    let soak_cost = soak.runs.cost(tck);
    p(format!(
        "soak: 2 runners at once, {} toast-page runs ({} passed, {:.1} s wall): CPU per run {:.2} ms own (with the RSS sampler) + {:.2} ms browser{exact}",
        soak.runs.attempted,
        soak.runs.timed.len(),
        soak.runs.wall_s,
        soak_cost.synmon_ms,
        soak_cost.browser_ms,
    ));
    p(format!(
        "  browser RSS (chromedriver + descendants, VmRSS summed), at rest: {:.1} MiB after warm-up ({} processes), {:.1} MiB after {} runs ({} processes; {:+.1}%; goal <= +{GOAL_RSS_GROWTH_PCT}%: {}); peak during runs: {:.1} MiB first tenth, {:.1} MiB last tenth ({} samples)",
        mib(soak.rss_after_warmup_kib),
        soak.procs_after_warmup,
        mib(soak.rss_after_kib),
        soak.runs.attempted,
        soak.procs_after,
        soak.growth_pct(),
        verdict(soak.growth_pct() <= GOAL_RSS_GROWTH_PCT),
        mib(soak.peak_first_kib),
        mib(soak.peak_last_kib),
        soak.samples,
    ));
    p(format!(
        "  processes at rest: after warm-up {}; after the soak {}",
        soak.kinds_after_warmup, soak.kinds_after
    ));
    for f in &soak.runs.failures {
        p(format!("  soak run not passed: {f}"));
    }

    let report = json!({
        "bench": "journey",
        "journey": "align_category",
        "date": date.format("%Y-%m-%d").to_string(),
        "at": date.to_rfc3339(),
        "command": knobs.command(),
        "machine": {"nproc": nproc(), "loadavg_before": load_before, "loadavg_after": load_after},
        "runs": n,
        "warmup": WARMUP,
        "accuracy": {
            "iterations": acc.in_page_err.len(),
            "in_page": {
                "truth_ms": sjson(&summarize(&acc.in_page_truth)),
                "measured_ms": sjson(&summarize(&acc.in_page_measured)),
                "error_ms": sjson(&ip_err),
                "synmon_cpu_ms_per_interaction": r2((acc.in_page_cpu.0 as f64 / 1000.0) / n_acc),
                "browser_cpu_ms_per_interaction": r2(acc.in_page_cpu.1 as f64 / 1000.0 / n_acc),
            },
            "outside_poll_5ms": {
                "truth_ms": sjson(&summarize(&acc.outside_truth)),
                "measured_ms": sjson(&summarize(&acc.outside_measured)),
                "error_ms": sjson(&out_err),
                "polls": sjson(&summarize(&acc.outside_polls)),
                "synmon_cpu_ms_per_interaction": r2((acc.outside_cpu.0 as f64 / 1000.0) / n_acc),
                "browser_cpu_ms_per_interaction": r2(acc.outside_cpu.1 as f64 / 1000.0 / n_acc),
            },
            "toast_page_in_page": {
                "truth_ms": sjson(&summarize(&acc.toast_truth)),
                "measured_ms": sjson(&summarize(&acc.toast_measured)),
                "error_ms": sjson(&toast_err),
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
        "browser_cost": {
            "isolation": {"requested": knobs.isolation, "applied": isolation_applied, "note": isolation_note},
            "extra_chromium_args": knobs.extra_args,
            "browser_binary": browser_program(&cfg).binary,
            "reuse_session": knobs.reuse_session,
            "trace_requests": knobs.trace_requests,
            "local_protocol": cfg.webdriver.local_protocol,
            "cpu_accounting": if meter.exact() { "cgroup2" } else { "live_proc_walk" },
            "align_category": runs.json(tck),
            "toast_page": toast_runs.json(tck),
            "selenium_toast_page": match &peer_skipped {
                None => json!({
                    "runs": peer.runs,
                    "one_session_create_ms": r2(peer.session_create_ms),
                    "poll_ms": knobs.selenium_poll_ms,
                    "wall_ms": sjson(&summarize(&peer.wall)),
                    "click_to_toast_seen_ms": sjson(&summarize(&peer.measured)),
                    "truth_ms": sjson(&summarize(&peer.truth)),
                    "error_vs_truth_ms": sjson(&summarize(&peer.err)),
                    "script_cpu_ms_per_run": r2(peer.script_cpu_ms / peer.runs.max(1) as f64),
                    "total_cpu_ms_per_run": r2(peer_cpu),
                    "user_cpu_ms_per_run": r2(peer.user_us as f64 / 1000.0 / peer.runs.max(1) as f64),
                    "browser_rss_mib": r2(mib(peer.rss_kib)),
                    "cpu_profile": profile_json(&peer.profile, peer.runs),
                }),
                Some(why) => json!({"skipped": why}),
            },
            "ratio_synmon_over_selenium": ratio.map(r2),
            "toast_page_spaced": if spaced.is_empty() {
                Value::Null
            } else {
                json!({"pause_ms": knobs.spaced_ms, "session_create_ms": sjson(&summarize(&spaced))})
            },
            "soak": {
                "concurrent_runners": 2,
                "runs": soak.runs.json(tck),
                "browser_rss_after_warmup_mib": r2(mib(soak.rss_after_warmup_kib)),
                "browser_processes_after_warmup": soak.procs_after_warmup,
                "browser_processes_after": soak.procs_after,
                "browser_process_kinds_after_warmup": soak.kinds_after_warmup,
                "browser_process_kinds_after": soak.kinds_after,
                "browser_rss_after_mib": r2(mib(soak.rss_after_kib)),
                "browser_rss_growth_pct": r2(soak.growth_pct()),
                "browser_rss_peak_first_tenth_mib": r2(mib(soak.peak_first_kib)),
                "browser_rss_peak_last_tenth_mib": r2(mib(soak.peak_last_kib)),
            },
        },
        "goals": {
            "synmon_cpu_ms_per_run": {"goal": GOAL_CPU_MS_PER_RUN, "actual": r2(cpu_per_run), "met": cpu_per_run <= GOAL_CPU_MS_PER_RUN},
            "peak_rss_mib": {"goal": GOAL_RSS_MIB, "actual": r2(rss_mib), "met": rss_mib <= GOAL_RSS_MIB},
            "error_median_ms": {"goal": GOAL_ERR_MEDIAN_MS, "actual": r2(ip_err.median), "met": ip_err.median.abs() <= GOAL_ERR_MEDIAN_MS},
            "error_p95_ms": {"goal": GOAL_ERR_P95_MS, "actual": r2(ip_err.p95), "met": ip_err.p95.abs() <= GOAL_ERR_P95_MS},
            "cpu_ratio_vs_selenium": {"goal": GOAL_RATIO_VS_SELENIUM, "actual": ratio.map(r2), "met": ratio.map(|r| r <= GOAL_RATIO_VS_SELENIUM)},
            "session_create_ms_median": {"goal": GOAL_SESSION_MS, "actual": r2(toast_session.median.max(session.median)), "met": toast_session.median <= GOAL_SESSION_MS && session.median <= GOAL_SESSION_MS},
            "browser_rss_growth_pct": {"goal": GOAL_RSS_GROWTH_PCT, "actual": r2(soak.growth_pct()), "met": soak.growth_pct() <= GOAL_RSS_GROWTH_PCT},
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
