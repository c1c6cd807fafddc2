//! The real `synmon` binary as a child process: `synmon run` on a config, signals, and the
//! JSON API polled until a condition holds.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;

/// A port for a child process (which cannot report a port 0 binding back to the test), free
/// at the time of asking and never handed out twice by this test process.
///
/// Ports come from just below the kernel's ephemeral range
/// (`/proc/sys/net/ipv4/ip_local_port_range`), not from a port 0 binding: a port 0 port is
/// free again the moment its listener closes, and until the child binds it the kernel may give
/// it to any outgoing connection or another test's port 0 listener (CI saw "Address already in
/// use" that way). Below the range only explicit binds take ports, and the counter keeps this
/// process's own picks apart; the pid spreads concurrent test processes over the range.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    const SPAN: u32 = 10_000;
    let low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<u32>().ok())
        .unwrap_or(32768);
    if low < SPAN + 1024 {
        // A range reaching down to the privileged ports leaves no room below it.
        return std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
    }
    // Reduced first: a pid above 542,354 (pid_max may be 4,194,304) times 7919 overflows u32.
    let start = std::process::id() % SPAN * 7919 % SPAN;
    for _ in 0..SPAN {
        let offset = (start + NEXT.fetch_add(1, Ordering::Relaxed)) % SPAN;
        let port = (low - SPAN + offset) as u16;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port in {}..{low}", low - SPAN);
}

/// `synmon run --config <config>`, stderr in `<config>.log`, killed when dropped.
pub struct Child(pub tokio::process::Child);

impl Child {
    pub fn spawn(config: &Path) -> Child {
        Child(
            tokio::process::Command::new(env!("CARGO_BIN_EXE_synmon"))
                .args(["run", "--config"])
                .arg(config)
                .stdout(Stdio::null())
                .stderr(Stdio::from(
                    std::fs::File::create(config.with_extension("log")).unwrap(),
                ))
                .kill_on_drop(true)
                .spawn()
                .expect("synmon run starts"),
        )
    }

    /// Sends `sig` (SIGHUP to reload, SIGTERM to stop, SIGKILL to kill).
    pub fn signal(&self, sig: nix::sys::signal::Signal) {
        let pid = nix::unistd::Pid::from_raw(self.0.id().unwrap() as i32);
        nix::sys::signal::kill(pid, sig).unwrap();
    }
}

/// GET `url` as JSON; `None` while the daemon is not answering.
pub async fn get_json(url: &str) -> Option<Value> {
    let r = reqwest::get(url).await.ok()?;
    r.json().await.ok()
}

/// Waits until the daemon on `port` answers `/healthz` (30 s at most), or panics.
pub async fn wait_healthy(port: u16) {
    wait_for_api(
        &format!("http://127.0.0.1:{port}/healthz"),
        Duration::from_secs(30),
        |v| v["status"] == "ok",
    )
    .await;
}

/// Polls the API until `pred` holds (real I/O: the daemon runs real checks), or panics.
pub async fn wait_for_api(url: &str, within: Duration, pred: impl Fn(&Value) -> bool) -> Value {
    let deadline = tokio::time::Instant::now() + within;
    let mut last = Value::Null;
    while tokio::time::Instant::now() < deadline {
        if let Some(v) = get_json(url).await {
            if pred(&v) {
                return v;
            }
            last = v;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    panic!("condition not met within {within:?}; last answer: {last:#}");
}
