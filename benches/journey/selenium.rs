//! The Selenium peer: `benches/selenium/toast_peer.py` in a venv of its own, driving the toast
//! page with ONE session for all its runs, inside its own accounting scope (the script, the
//! chromedriver it starts and every Chromium process under it).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

use super::accounting::{CpuUsage, Scope, Snapshot, settle};

fn selenium_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/selenium")
}

/// `JOURNEY_BENCH_VENV`, else `$XDG_CACHE_HOME` or `~/.cache`, `/synmon-bench/selenium-venv`:
/// outside the repo and kept between runs (the install takes ~10 s).
fn venv_dir() -> PathBuf {
    if let Some(v) = std::env::var_os("JOURNEY_BENCH_VENV") {
        return PathBuf::from(v);
    }
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir);
    cache.join("synmon-bench/selenium-venv")
}

async fn run(cmd: &mut Command, what: &str) -> anyhow::Result<()> {
    let out = cmd.stdin(Stdio::null()).output().await?;
    anyhow::ensure!(
        out.status.success(),
        "{what} failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
            .lines()
            .last()
            .unwrap_or("")
    );
    Ok(())
}

/// The venv's python, created and filled from `requirements.txt` when missing or stale.
pub async fn ensure_venv() -> anyhow::Result<PathBuf> {
    let dir = venv_dir();
    let python = dir.join("bin/python");
    let req_file = selenium_dir().join("requirements.txt");
    let wanted = std::fs::read_to_string(&req_file)?;
    let stamp = dir.join(".synmon-requirements");
    if python.is_file() && std::fs::read_to_string(&stamp).ok().as_deref() == Some(&wanted) {
        return Ok(python);
    }
    eprintln!(
        "journey bench: installing the Selenium peer into {}",
        dir.display()
    );
    if !python.is_file() {
        run(
            Command::new("python3").arg("-m").arg("venv").arg(&dir),
            "python3 -m venv",
        )
        .await?;
    }
    run(
        Command::new(&python)
            .args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "-r",
            ])
            .arg(&req_file),
        "pip install -r benches/selenium/requirements.txt",
    )
    .await?;
    std::fs::write(&stamp, wanted)?;
    Ok(python)
}

/// One batch of runs as the peer reports it.
pub struct Batch {
    pub wall_ms: Vec<f64>,
    pub measured_ms: Vec<f64>,
    pub truth_ms: Vec<f64>,
    /// The script's own CPU (Python's `process_time`).
    pub script_cpu_ms: f64,
    /// The whole scope: script + chromedriver + every Chromium process.
    pub cpu: CpuUsage,
    /// The scope's processes when the batch began and ended (for the cost profile).
    pub before: Snapshot,
    pub after: Snapshot,
}

pub struct Peer {
    child: Child,
    stdin: ChildStdin,
    lines: Lines<BufReader<ChildStdout>>,
    scope: Scope,
    pub session_create_ms: f64,
}

pub struct PeerOptions<'a> {
    pub python: &'a Path,
    pub url: &'a str,
    pub chromedriver: &'a str,
    pub browser_binary: Option<&'a str>,
    pub poll_ms: u64,
    pub window: (u32, u32),
    /// More Chromium arguments (the same as synmon's `webdriver.extra_args`).
    pub extra_args: &'a [String],
}

impl Peer {
    /// Starts the script inside `scope` (through a wrapper in `dir`) and waits for its session.
    pub async fn start(scope: Scope, dir: &Path, o: &PeerOptions<'_>) -> anyhow::Result<Self> {
        let wrapper = scope.wrapper(&dir.join("selenium-peer.sh"), &o.python.to_string_lossy())?;
        let mut cmd = Command::new(wrapper);
        cmd.arg(selenium_dir().join("toast_peer.py"))
            .arg("--url")
            .arg(o.url)
            .arg("--chromedriver")
            .arg(o.chromedriver)
            .arg("--poll-ms")
            .arg(o.poll_ms.to_string())
            .arg("--window")
            .arg(format!("{},{}", o.window.0, o.window.1));
        if let Some(b) = o.browser_binary {
            cmd.arg("--browser-binary").arg(b);
        }
        for a in o.extra_args {
            // `=`: an argument starting with `--` would otherwise be taken for an option.
            cmd.arg(format!("--extra-arg={a}"));
        }
        let mut child = cmd
            // Selenium Manager must not look for drivers on the network: the paths are given.
            .env("SE_OFFLINE", "true")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()?;
        let stdin = child.stdin.take().expect("piped");
        let lines = BufReader::new(child.stdout.take().expect("piped")).lines();
        let mut peer = Self {
            child,
            stdin,
            lines,
            scope,
            session_create_ms: f64::NAN,
        };
        let ready = peer.read(Duration::from_secs(60)).await?;
        anyhow::ensure!(ready["ready"] == Value::Bool(true), "peer said {ready}");
        peer.session_create_ms = ready["session_create_ms"].as_f64().unwrap_or(f64::NAN);
        Ok(peer)
    }

    async fn read(&mut self, timeout: Duration) -> anyhow::Result<Value> {
        let line = tokio::time::timeout(timeout, self.lines.next_line())
            .await
            .map_err(|_| anyhow::anyhow!("the Selenium peer did not answer within {timeout:?}"))??
            .ok_or_else(|| anyhow::anyhow!("the Selenium peer exited (its stderr is above)"))?;
        Ok(serde_json::from_str(&line)?)
    }

    /// `n` runs; the scope's CPU counter is read right before the command and once the scope
    /// is quiet after the answer, so only the runs are in it.
    pub async fn runs(&mut self, n: usize, truth: bool) -> anyhow::Result<Batch> {
        let mode = if truth { "truth" } else { "plain" };
        let before = Snapshot::take(&self.scope.pids());
        let c0 = self.scope.usage();
        self.stdin
            .write_all(format!("runs {n} {mode}\n").as_bytes())
            .await?;
        self.stdin.flush().await?;
        let v = self
            .read(Duration::from_secs(30) + Duration::from_secs(10) * n as u32)
            .await?;
        // Closed like synmon's batches (see `settle`), so that both windows end alike.
        settle(|| self.scope.usage().usage_us).await;
        let cpu = self.scope.usage() - c0;
        let after = Snapshot::take(&self.scope.pids());
        let runs = v["runs"]
            .as_array()
            .ok_or_else(|| anyhow::anyhow!("the Selenium peer said {v}"))?;
        let col = |k: &str| -> Vec<f64> { runs.iter().filter_map(|r| r[k].as_f64()).collect() };
        Ok(Batch {
            wall_ms: col("wall_ms"),
            measured_ms: col("measured_ms"),
            truth_ms: col("truth_ms"),
            script_cpu_ms: v["process_cpu_ms"].as_f64().unwrap_or(f64::NAN),
            cpu,
            before,
            after,
        })
    }

    /// Browser RSS now: the script's chromedriver and Chromium processes (VmRSS summed).
    pub fn pids(&self) -> Vec<u32> {
        let me = self.child.id();
        self.scope
            .pids()
            .into_iter()
            .filter(|p| Some(*p) != me)
            .collect()
    }

    /// Quits the session and waits for the script (bounded); kills it otherwise.
    pub async fn quit(mut self) {
        let _ = self.stdin.write_all(b"quit\n").await;
        let _ = self.stdin.flush().await;
        if tokio::time::timeout(Duration::from_secs(15), self.child.wait())
            .await
            .is_err()
        {
            let _ = self.child.kill().await;
        }
        self.scope.kill_all();
    }
}
