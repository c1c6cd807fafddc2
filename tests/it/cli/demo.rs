//! `synmon demo` as a newcomer runs it: the real binary starts the real `rvp-sandbox` binary, a
//! supervised chromedriver with real Chromium, and the daemon with `synmon.example.yaml`; every
//! journey completes a run; SIGTERM stops it all with exit 0 and leaves no process behind.
//! "The demo is up" is the status page answering at `/`; then `/api/v1/checks` lists a
//! completed run of each journey, and the page names each journey with its last run.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;

use crate::support::BROWSER;
use crate::support::{free_port, get_json, wait_for_api};

const JOURNEYS: [&str; 3] = ["align_category", "save_profile", "feed_push"];

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// `rvp-sandbox` where a workspace build puts it: beside the synmon binary under test
/// (`CARGO_BIN_EXE_*` only names this package's binaries).
fn sandbox_bin() -> PathBuf {
    let p = Path::new(env!("CARGO_BIN_EXE_synmon"))
        .parent()
        .unwrap()
        .join("rvp-sandbox");
    assert!(
        p.exists(),
        "{} is missing: run `cargo build --workspace` (scripts/test.sh runs `cargo test \
         --workspace`, which builds it)",
        p.display()
    );
    p
}

/// Variables of a developer's shell that would point the example config elsewhere.
const CONFIG_VARS: &[&str] = &[
    "SYNMON_STORE_URL",
    "RVP_DATABASE_URL",
    "SYNMON_WEBDRIVER_URL",
    "SYNMON_LISTEN",
    "SYNMON_DOGSTATSD_ADDR",
    "RVP_STAGING_URL",
    "RVP_SYNTHETIC_PASSWORD",
    "RVP_SANDBOX_ADMIN_TOKEN",
    "SLACK_BOT_TOKEN",
    "PAGERDUTY_ROUTING_KEY",
    "RUST_LOG",
];

fn demo_command(args: &[&str]) -> tokio::process::Command {
    let mut c = tokio::process::Command::new(env!("CARGO_BIN_EXE_synmon"));
    c.arg("demo").args(args).current_dir(repo());
    for v in CONFIG_VARS {
        c.env_remove(v);
    }
    c
}

/// One process as /proc shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Proc {
    pid: u32,
    ppid: u32,
    /// Clock ticks after boot: tells a process from a later one reusing its pid.
    start: u64,
    state: char,
    cmdline: String,
}

fn read_proc(pid: u32) -> Option<Proc> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // `pid (comm) state ppid ...`: comm may hold spaces and parentheses.
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split(' ').collect();
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|b| String::from_utf8_lossy(&b).replace('\0', " "))
        .unwrap_or_default();
    Some(Proc {
        pid,
        ppid: f.get(1)?.parse().ok()?,
        start: f.get(19)?.parse().ok()?,
        state: f.first()?.chars().next()?,
        cmdline,
    })
}

fn all_procs() -> Vec<Proc> {
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(read_proc)
        .collect()
}

/// Every process whose parent chain leads to `root`.
fn descendants(root: u32) -> Vec<Proc> {
    let procs = all_procs();
    let parent: BTreeMap<u32, u32> = procs.iter().map(|p| (p.pid, p.ppid)).collect();
    procs
        .into_iter()
        .filter(|p| {
            let mut at = p.ppid;
            for _ in 0..64 {
                if at == root {
                    return true;
                }
                match parent.get(&at) {
                    Some(&up) if up != at => at = up,
                    _ => return false,
                }
            }
            false
        })
        .collect()
}

/// Whether the very process `p` (same pid, same start) still runs; zombies do not count.
fn still_running(p: &Proc) -> bool {
    read_proc(p.pid).is_some_and(|now| now.start == p.start && now.state != 'Z')
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn synmon_demo_runs_every_journey_then_stops_on_sigterm_leaving_no_process() {
    let _b = BROWSER.lock().await;
    synmon::tls::install();
    sandbox_bin();
    let dir = tempfile::tempdir().unwrap();
    // Chromium profiles are made under TMPDIR: a folder of this test's own marks them.
    let tmp = dir.path().join("tmp");
    std::fs::create_dir(&tmp).unwrap();
    let (port, sandbox_port) = (free_port(), free_port());
    let out = dir.path().join("demo.out");
    let err = dir.path().join("demo.err");
    let mut child = demo_command(&[
        "--config",
        "synmon.example.yaml",
        "--listen",
        &format!("127.0.0.1:{port}"),
        "--sandbox-port",
        &sandbox_port.to_string(),
        "--data-dir",
        dir.path().to_str().unwrap(),
    ])
    .env("TMPDIR", &tmp)
    .stdin(Stdio::null())
    .stdout(std::fs::File::create(&out).unwrap())
    .stderr(std::fs::File::create(&err).unwrap())
    .kill_on_drop(true)
    .spawn()
    .expect("synmon demo starts");
    let demo_pid = child.id().unwrap();
    let base = format!("http://127.0.0.1:{port}");

    // Up: the status page answers.
    tokio::time::timeout(Duration::from_secs(60), async {
        loop {
            if let Ok(r) = reqwest::get(format!("{base}/")).await
                && r.status().is_success()
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
    .await
    .expect("the status page answers within 60 s");

    // A completed run of each journey (start offsets are drawn below 25 s, runs take seconds).
    let v = wait_for_api(
        &format!("{base}/api/v1/checks"),
        Duration::from_secs(180),
        |v| {
            JOURNEYS.iter().all(|j| {
                v["checks"].as_array().is_some_and(|a| {
                    a.iter()
                        .any(|c| c["name"] == *j && c["last"]["run_id"].is_string())
                })
            })
        },
    )
    .await;
    let page = reqwest::get(format!("{base}/"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for j in JOURNEYS {
        assert!(page.contains(j), "the status page names {j}");
    }
    assert!(page.contains("href=\"/runs/"), "the status page links runs");
    for j in JOURNEYS {
        let c = v["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == j)
            .unwrap();
        assert_eq!(c["outcome"], "pass", "{j} against the demo sandbox: {c:#}");
        let run_id = c["last"]["run_id"].as_str().unwrap();
        let run: Value = get_json(&format!("{base}/api/v1/runs/{run_id}"))
            .await
            .expect("the run through the API");
        assert!(
            run["steps"].as_array().is_some_and(|s| s.len() >= 3),
            "{j}: {run:#}"
        );
    }

    // It said what it started and where.
    let printed = std::fs::read_to_string(&out).unwrap();
    for want in [
        format!("rvp-sandbox   http://127.0.0.1:{sandbox_port}/"),
        "chromedriver  http://127.0.0.1:".to_string(),
        format!("synmon        http://127.0.0.1:{port}/"),
        "align_category, feed_push, save_profile".to_string(),
    ] {
        assert!(printed.contains(&want), "`{want}` not in:\n{printed}");
    }

    // What it started, by parent chain: the sandbox, chromedriver, Chromium.
    let started = descendants(demo_pid);
    let has = |s: &str| started.iter().any(|p| p.cmdline.contains(s));
    assert!(has("rvp-sandbox"), "no sandbox among {started:#?}");
    assert!(has("chromedriver"), "no chromedriver among {started:#?}");

    // SIGTERM: exit 0. Rule evaluations run on a blocking thread and give up when the daemon
    // stops, so nothing holds the runtime: a debug build stopped in 0.4-1.3 s on a 2-core
    // machine at load 9-12 (BENCHMARKS.md, "Rule evaluation"); 20 s leaves room for a slow
    // browser quitting, within shutdown's own 10 s bound plus the sandbox's.
    let t0 = tokio::time::Instant::now();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(demo_pid as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let status = tokio::time::timeout(Duration::from_secs(20), child.wait())
        .await
        .expect("the demo stops after SIGTERM")
        .unwrap();
    eprintln!("synmon demo stopped {:?} after SIGTERM", t0.elapsed());
    assert!(
        status.success(),
        "exit status {status:?}; stderr:\n{}",
        std::fs::read_to_string(&err).unwrap_or_default()
    );
    assert!(printed.len() < std::fs::read_to_string(&out).unwrap().len());
    assert!(
        std::fs::read_to_string(&out)
            .unwrap()
            .contains("synmon demo: stopped")
    );

    // Nothing it started is left: not the sandbox, not chromedriver, no Chromium. Killed
    // processes are reaped by init an instant later: give that a moment, not the demo.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    let marker = tmp.to_str().unwrap().to_string();
    loop {
        let left: Vec<Proc> = started
            .iter()
            .filter(|p| still_running(p))
            .cloned()
            .collect();
        let marked: Vec<Proc> = all_procs()
            .into_iter()
            .filter(|p| p.cmdline.contains(&marker) && p.state != 'Z')
            .collect();
        if left.is_empty() && marked.is_empty() {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "left behind: {left:#?}\nwith this demo's browser profile: {marked:#?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        reqwest::get(format!("{base}/healthz")).await.is_err(),
        "daemon stopped"
    );
    assert!(
        reqwest::get(format!("http://127.0.0.1:{sandbox_port}/healthz"))
            .await
            .is_err(),
        "sandbox stopped"
    );
}

#[tokio::test]
async fn synmon_demo_without_the_sandbox_binary_says_how_to_build_it() {
    // A copy of synmon alone in a folder, with an empty PATH: no rvp-sandbox anywhere.
    let dir = tempfile::tempdir().unwrap();
    let exe = dir.path().join("synmon");
    if std::fs::hard_link(env!("CARGO_BIN_EXE_synmon"), &exe).is_err() {
        std::fs::copy(env!("CARGO_BIN_EXE_synmon"), &exe).unwrap();
    }
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let mut c = tokio::process::Command::new(&exe);
    c.args(["demo", "--config", "synmon.example.yaml"])
        .current_dir(repo())
        .env("PATH", &empty);
    for v in CONFIG_VARS {
        c.env_remove(v);
    }
    let o = c.output().await.unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("`rvp-sandbox` not found beside")
            && stderr.contains("nor on PATH")
            && stderr.contains("cargo build --workspace"),
        "{stderr}"
    );
}

#[tokio::test]
async fn synmon_demo_without_chromedriver_names_the_install_command() {
    // A chromedriver path that does not exist: installing packages cannot help, so even as
    // root on Debian the demo refuses with the command, and starts nothing.
    let dir = tempfile::tempdir().unwrap();
    let example = std::fs::read_to_string(repo().join("synmon.example.yaml")).unwrap();
    let cfg = example.replace(
        "  chromedriver: chromedriver\n",
        "  chromedriver: /nonexistent/chromedriver\n",
    );
    assert_ne!(cfg, example, "the example config names chromedriver");
    // Beside the repo's journeys, alerts, dashboards and flags, as the example expects.
    let conf = tempfile::tempdir().unwrap();
    for d in ["journeys", "alerts", "dashboards", "flags"] {
        std::os::unix::fs::symlink(repo().join(d), conf.path().join(d)).unwrap();
    }
    let file = conf.path().join("synmon.yaml");
    std::fs::write(&file, cfg).unwrap();
    let sandbox_port = free_port();
    let o = demo_command(&[
        "--config",
        file.to_str().unwrap(),
        "--sandbox-port",
        &sandbox_port.to_string(),
        "--data-dir",
        dir.path().to_str().unwrap(),
    ])
    .output()
    .await
    .unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("missing: /nonexistent/chromedriver")
            && stderr.contains("apt-get install -y chromium chromium-driver"),
        "{stderr}"
    );
    assert!(
        !dir.path().join("rvp-sandbox.db").exists(),
        "the sandbox was not started"
    );
}

#[test]
fn every_demo_fault_is_a_fault_the_sandbox_accepts_on_the_route_it_names() {
    use rvp_sandbox::faults::{Fault, glob_match};
    use synmon::cli::demo::Faults;
    // The paths the journeys and checks of the example config use.
    let mapping = "/api/t/synthetic/categories/0b8f8a3e-4c4e-4d8e-9a57-0d1c3c2b5e11/mapping";
    for (faults, path) in [
        (Faults::Latency, Some(mapping)),
        (Faults::Errors, Some("/svc/inventory/healthz")),
        (Faults::Outage, None),
    ] {
        let body = faults.body();
        let items = body.as_array().expect("a list of faults");
        assert!(!items.is_empty());
        for item in items {
            let f = Fault::parse(item).unwrap_or_else(|e| panic!("{faults:?}: {e}"));
            match (f.route(), path) {
                (Some(glob), Some(path)) => {
                    assert!(glob_match(glob, path), "{faults:?}: `{glob}` misses {path}")
                }
                (None, None) => assert_eq!(f, Fault::DbDown),
                other => panic!("{faults:?}: unexpected {other:?}"),
            }
        }
    }
}
