//! A supervised local chromedriver: started on demand on a free port, health-checked before
//! every session, restarted when it has died. Its browser processes live in its process group,
//! so stopping it never leaves Chromium behind.

use std::process::Stdio;
use std::time::Duration;

use tokio::process::{Child, Command};
use tokio::sync::Mutex;

use super::webdriver::StepError;

const INSTALL_HINT: &str = "install it with `apt-get install chromium chromium-driver`, \
or point `webdriver.url` at a remote WebDriver (chromedriver or Selenium Grid)";

/// Ports tried before chromedriver's start counts as failed. A port is free when drawn, but
/// another process (another synmon's chromedriver, an outgoing connection) may take it before
/// chromedriver binds it: chromedriver then exits at once. Anything else that makes it exit at
/// start fails every attempt alike, at the cost of a few milliseconds each.
const START_ATTEMPTS: u32 = 3;

struct Running {
    child: Child,
    url: url::Url,
}

pub struct Chromedriver {
    binary: String,
    startup_timeout: Duration,
    http: reqwest::Client,
    state: Mutex<Option<Running>>,
    restarts: std::sync::atomic::AtomicU32,
}

impl Chromedriver {
    pub fn new(binary: &str, startup_timeout: Duration) -> Self {
        crate::tls::install();
        Self {
            binary: binary.to_string(),
            startup_timeout,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(2))
                .build()
                .expect("HTTP client"),
            state: Mutex::new(None),
            restarts: Default::default(),
        }
    }

    /// How many times it was (re)started.
    pub fn starts(&self) -> u32 {
        self.restarts.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The PID of the running chromedriver, if any.
    pub async fn pid(&self) -> Option<u32> {
        self.state.lock().await.as_ref().and_then(|r| r.child.id())
    }

    /// A healthy endpoint: starts chromedriver, or restarts it when it died or stopped answering.
    pub async fn endpoint(&self) -> Result<url::Url, StepError> {
        let mut state = self.state.lock().await;
        if let Some(running) = state.as_mut() {
            let alive = matches!(running.child.try_wait(), Ok(None));
            if alive && self.ready(&running.url).await {
                return Ok(running.url.clone());
            }
            tracing::warn!(binary = %self.binary, "chromedriver died or stopped answering; restarting it");
            kill_group(&mut running.child).await;
            *state = None;
        }
        let running = self.start().await?;
        let url = running.url.clone();
        *state = Some(running);
        Ok(url)
    }

    async fn ready(&self, url: &url::Url) -> bool {
        let Ok(status) = url.join("status") else {
            return false;
        };
        match self.http.get(status).send().await {
            Ok(r) => r
                .json::<serde_json::Value>()
                .await
                .map(|v| v["value"]["ready"] == serde_json::json!(true))
                .unwrap_or(false),
            Err(_) => false,
        }
    }

    async fn start(&self) -> Result<Running, StepError> {
        let mut attempt = 1;
        loop {
            match self.start_once().await {
                Err(Start::Exited(status)) if attempt < START_ATTEMPTS => {
                    tracing::warn!(binary = %self.binary, %status, attempt, "chromedriver exited at start (its port may have been taken); trying another port");
                    attempt += 1;
                }
                Err(Start::Exited(status)) => {
                    return Err(StepError::error(format!(
                        "chromedriver `{}` exited at start ({status}), {START_ATTEMPTS} times; \
                         {INSTALL_HINT}",
                        self.binary
                    )));
                }
                Err(Start::Failed(e)) => return Err(e),
                Ok(running) => return Ok(running),
            }
        }
    }

    /// One start on a port of its own; ready only while the child still runs (a chromedriver
    /// of another process may answer on a port ours could not bind).
    async fn start_once(&self) -> Result<Running, Start> {
        let port = free_port()
            .map_err(|e| StepError::error(format!("no free port for chromedriver: {e}")))
            .map_err(Start::Failed)?;
        let mut child = Command::new(&self.binary)
            .arg(format!("--port={port}"))
            .arg("--allowed-ips=")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| {
                if e.kind() == std::io::ErrorKind::NotFound {
                    StepError::error(format!(
                        "chromedriver not found (`{}`): {INSTALL_HINT}",
                        self.binary
                    ))
                } else {
                    StepError::error(format!("cannot start chromedriver `{}`: {e}", self.binary))
                }
            })
            .map_err(Start::Failed)?;
        let url: url::Url = format!("http://127.0.0.1:{port}/")
            .parse()
            .expect("static URL");
        let deadline = tokio::time::Instant::now() + self.startup_timeout;
        loop {
            let ready = self.ready(&url).await;
            if let Ok(Some(status)) = child.try_wait() {
                return Err(Start::Exited(status));
            }
            if ready {
                self.restarts
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                tracing::info!(port, pid = child.id(), "chromedriver ready");
                return Ok(Running { child, url });
            }
            if tokio::time::Instant::now() >= deadline {
                kill_group(&mut child).await;
                return Err(Start::Failed(StepError::error(format!(
                    "chromedriver did not become ready within {} ms",
                    self.startup_timeout.as_millis()
                ))));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Stops chromedriver and every browser it started.
    pub async fn shutdown(&self) {
        if let Some(mut running) = self.state.lock().await.take() {
            kill_group(&mut running.child).await;
        }
    }
}

/// A supervisor dropped without `shutdown` (a panic, a test that fails early) still takes its
/// browsers with it: pooled browsers outlive runs, and an orphaned Chromium can spin.
impl Drop for Chromedriver {
    fn drop(&mut self) {
        if let Some(running) = self.state.get_mut().take()
            && let Some(pid) = running.child.id()
        {
            let pgid = nix::unistd::Pid::from_raw(pid as i32);
            let _ = nix::sys::signal::killpg(pgid, nix::sys::signal::Signal::SIGKILL);
        }
    }
}

/// Why one start of chromedriver did not give a ready one.
enum Start {
    /// It exited before it was ready: worth another port.
    Exited(std::process::ExitStatus),
    Failed(StepError),
}

fn free_port() -> std::io::Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?.port())
}

async fn kill_group(child: &mut Child) {
    if let Some(pid) = child.id() {
        let pgid = nix::unistd::Pid::from_raw(pid as i32);
        let _ = nix::sys::signal::killpg(pgid, nix::sys::signal::Signal::SIGKILL);
    }
    let _ = child.kill().await;
    let _ = child.wait().await;
}
