//! synmon as a cluster: replicas of the real binary (`synmon run`) sharing one PostgreSQL store,
//! one leader evaluating and notifying, followers taking over when it dies, stops or loses the
//! store. Each test has its own database, sandboxes, fakes and ports, so they run in parallel.
//!
//! Timings are compressed: checks every second, evaluation every second, a 3 s lease renewed
//! every second, no group wait. The rule pages when more than half of a check's judged runs in
//! the last minute failed, so an incident fires at the first evaluation after a fault that was
//! set before the replicas started, and resolves about as many seconds after the fault clears
//! as it lasted (at most 30 s): quick both ways, and never flapping in between (the ratio only
//! grows while the fault lasts and only shrinks after).
//!
//! - `notify.rs`: two replicas, one incident, no failure: one trigger and one resolve at
//!   PagerDuty, one Slack post and one update; both replicas agree on the leader.
//! - `failover.rs`: the leader killed (SIGKILL) or stopped (SIGSTOP) during an incident.
//! - `outage.rs`: PagerDuty down for a minute during an incident.
//! - `locations.rs`: two locations and a rule that needs both failing.
//! - `store.rs`: the store's tables dropped under a running pair.
//! - `share.rs`: replicas of one location sharing its checks (kill -9, join).

mod failover;
mod locations;
mod notify;
mod outage;
mod share;
mod store;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde_json::{Value, json};

use crate::fakes::pagerduty::{FakePagerDuty, TEST_ROUTING_KEY};
use crate::fakes::slack::FakeSlack;
use crate::support::{Child, TempPg, get_json, wait_for_api, write_config};

const PASSWORD: &str = "synthetic-demo";

/// The check every replica runs, and the one the faults break.
pub const CHECK: &str = "auth_health";

/// Pages when more than half of `auth_health`'s judged runs in the last minute failed.
pub const RULE: &str = r#"
rules:
  - alert: auth_failing
    metric: synmon.check.runs
    match: { check: auth_health }
    by: [check]
    aggregate: ratio
    window: 1m
    numerator: { outcome: fail }
    denominator: { outcome: "=~pass|fail" }
    op: ">"
    threshold: 0.5
    severity: page
    route: page
    annotations:
      summary: "{{ labels.check }} is failing"
"#;

/// How long a replica may take to start answering its API.
const START: Duration = Duration::from_secs(60);

/// One replica: its config in its own folder (log beside it), its port, and the process while
/// it runs.
pub struct Replica {
    pub id: String,
    pub port: u16,
    pub cfg: PathBuf,
    pub child: Option<Child>,
}

impl Replica {
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// `GET /api/v1/cluster`; `None` while the replica does not answer.
    pub async fn cluster(&self) -> Option<Value> {
        get_json(&self.url("/api/v1/cluster")).await
    }

    /// `GET /api/v1/alerts`; `None` while the replica does not answer.
    pub async fn alerts(&self) -> Option<Value> {
        get_json(&self.url("/api/v1/alerts")).await
    }

    /// The HTTP status and JSON body of `/readyz`; `None` while the replica does not answer.
    pub async fn readyz(&self) -> Option<(u16, Value)> {
        let r = reqwest::get(self.url("/readyz")).await.ok()?;
        let status = r.status().as_u16();
        Some((status, r.json().await.unwrap_or(Value::Null)))
    }

    pub fn signal(&self, sig: nix::sys::signal::Signal) {
        self.child.as_ref().expect("running").signal(sig);
    }

    /// The last `lines` lines of the replica's log that contain `needle`.
    pub fn log_lines(&self, needle: &str, lines: usize) -> String {
        let text = std::fs::read_to_string(self.cfg.with_extension("log")).unwrap_or_default();
        let hits: Vec<&str> = text.lines().filter(|l| l.contains(needle)).collect();
        hits[hits.len().saturating_sub(lines)..].join("\n")
    }

    /// The last `lines` lines of the replica's log (`synmon run`'s stderr).
    pub fn log_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(self.cfg.with_extension("log")).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }
}

/// A cluster under test: one store, one sandbox per location, a fake PagerDuty and a fake
/// Slack, and the replicas' configs. Replica logs are printed when a test fails.
pub struct Cluster {
    /// Configs, logs and the sandboxes' databases; removed when the test ends.
    _dir: tempfile::TempDir,
    pub pg: Option<TempPg>,
    pub pd: FakePagerDuty,
    pub slack: FakeSlack,
    /// Per location, its sandbox.
    pub sandboxes: BTreeMap<String, rvp_sandbox::Sandbox>,
    pub replicas: Vec<Replica>,
}

impl Cluster {
    /// Replicas `(replica_id, location)` with `rule_yaml` in their `alerts` folder, not yet
    /// started; each location gets its own sandbox, every replica the same store and fakes.
    pub async fn new(replicas: &[(&str, &str)], rule_yaml: &str) -> Cluster {
        synmon::tls::install();
        let dir = tempfile::tempdir().unwrap();
        let pg = TempPg::create().await;
        let pd = FakePagerDuty::start().await;
        let slack = FakeSlack::start().await;
        let mut sandboxes = BTreeMap::new();
        for (_, loc) in replicas {
            if !sandboxes.contains_key(*loc) {
                let sdir = dir.path().join(format!("sandbox-{loc}"));
                std::fs::create_dir_all(&sdir).unwrap();
                let sbx = crate::support::sqlite_sandbox(&sdir, PASSWORD).await;
                sandboxes.insert(loc.to_string(), sbx);
            }
        }
        let mut out = Vec::new();
        for (id, loc) in replicas {
            let rdir = dir.path().join(id);
            std::fs::create_dir_all(rdir.join("alerts")).unwrap();
            std::fs::write(rdir.join("alerts/rules.yaml"), rule_yaml).unwrap();
            let port = crate::support::free_port();
            let cfg = write_config(
                &rdir,
                &sandboxes[*loc].base_url(),
                PASSWORD,
                &config(id, loc, port, &pg.url, &pd, &slack),
            );
            out.push(Replica {
                id: id.to_string(),
                port,
                cfg,
                child: None,
            });
        }
        Cluster {
            _dir: dir,
            pg: Some(pg),
            pd,
            slack,
            sandboxes,
            replicas: out,
        }
    }

    /// Starts replica `i` and waits until it answers `/healthz`.
    pub async fn start(&mut self, i: usize) {
        let r = &mut self.replicas[i];
        r.child = Some(Child::spawn(&r.cfg));
        wait_for_api(&r.url("/healthz"), START, |v| v["status"] == "ok").await;
    }

    /// Starts every replica, one after the other.
    pub async fn start_all(&mut self) {
        for i in 0..self.replicas.len() {
            self.start(i).await;
        }
    }

    /// The running replicas' indexes.
    pub fn running(&self) -> Vec<usize> {
        (0..self.replicas.len())
            .filter(|i| self.replicas[*i].child.is_some())
            .collect()
    }

    /// Waits until the running replicas agree: exactly one says it is the leader, every one
    /// names it as `leader` and lists every running replica. Returns its index.
    pub async fn leader(&self, within: Duration) -> usize {
        let running = self.running();
        let mut last = Vec::new();
        let deadline = tokio::time::Instant::now() + within;
        while tokio::time::Instant::now() < deadline {
            let mut views = Vec::new();
            for &i in &running {
                views.push(self.replicas[i].cluster().await.unwrap_or(Value::Null));
            }
            if let Some(i) = agreed_leader(&running, &self.replicas, &views) {
                return i;
            }
            last = views;
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("the replicas did not agree on one leader within {within:?}: {last:#?}");
    }

    /// Waits until replica `i` says it is the leader; returns how long that took.
    pub async fn becomes_leader(&self, i: usize, within: Duration) -> Duration {
        let started = tokio::time::Instant::now();
        let deadline = started + within;
        let mut last = Value::Null;
        while tokio::time::Instant::now() < deadline {
            if let Some(v) = self.replicas[i].cluster().await {
                if v["role"] == "leader" {
                    return started.elapsed();
                }
                last = v;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!(
            "{} did not become leader within {within:?}; last answer: {last:#}",
            self.replicas[i].id
        );
    }

    /// Waits until the leader `i` has evaluated `n` more times than now.
    pub async fn evaluations(&self, i: usize, n: u64, within: Duration) {
        let evals = |v: &Value| v["evaluations"].as_u64().unwrap_or(0);
        let now = self.replicas[i].alerts().await.map_or(0, |v| evals(&v));
        wait_for_api(&self.replicas[i].url("/api/v1/alerts"), within, |v| {
            evals(v) >= now + n
        })
        .await;
    }

    /// Breaks `auth_health` in `location`'s sandbox (it answers 500).
    pub async fn fail(&self, location: &str) {
        crate::support::set_faults(
            &self.sandboxes[location].base_url(),
            json!({"kind": "error", "route": "/svc/auth/healthz", "status": 500}),
        )
        .await;
    }

    /// Heals `location`'s sandbox.
    pub async fn heal(&self, location: &str) {
        crate::support::clear_faults(&self.sandboxes[location].base_url()).await;
    }

    /// Waits until PagerDuty has accepted `n` events with `action`; returns the counts.
    pub async fn pd_action(
        &self,
        action: &str,
        n: usize,
        within: Duration,
    ) -> BTreeMap<(String, String), usize> {
        crate::support::eventually(&format!("{n} PagerDuty {action}(s)"), within, async || {
            (self.pd.count_action(action) >= n).then(|| self.pd.counts())
        })
        .await
    }

    /// Every replica's membership lines (role changes, store health) and log tail, for a
    /// failure message.
    pub fn logs(&self) -> String {
        self.replicas
            .iter()
            .map(|r| {
                format!(
                    "--- {} ({}): membership ---\n{}\n--- {}: last lines ---\n{}",
                    r.id,
                    r.cfg.display(),
                    r.log_lines("synmon::cluster", 30),
                    r.id,
                    r.log_tail(40)
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Stops the replicas, drops the database and shuts the sandboxes down.
    pub async fn finish(mut self) {
        for r in &mut self.replicas {
            if let Some(mut c) = r.child.take() {
                // A stopped process must run again to handle SIGTERM; SIGKILL ends either.
                let _ = c.0.start_kill();
                let _ = tokio::time::timeout(Duration::from_secs(10), c.0.wait()).await;
            }
        }
        if let Some(pg) = self.pg.take() {
            pg.drop_db().await;
        }
        for (_, s) in std::mem::take(&mut self.sandboxes) {
            s.shutdown().await;
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "PagerDuty events: {:#?}\nSlack calls: {:?}\n{}",
                self.pd.counts(),
                self.slack.methods(),
                self.logs()
            );
        }
    }
}

/// The index of the leader all `views` (one per running replica) agree on, if they do.
fn agreed_leader(running: &[usize], replicas: &[Replica], views: &[Value]) -> Option<usize> {
    let leaders: Vec<usize> = running
        .iter()
        .zip(views)
        .filter(|(_, v)| v["role"] == "leader")
        .map(|(i, _)| *i)
        .collect();
    let [leader] = leaders[..] else {
        return None;
    };
    let id = &replicas[leader].id;
    let all_agree = views.iter().all(|v| {
        v["leader"] == id.as_str()
            && running.iter().all(|i| {
                v["replicas"]
                    .as_array()
                    .is_some_and(|rs| rs.iter().any(|r| r["id"] == replicas[*i].id.as_str()))
            })
    });
    all_agree.then_some(leader)
}

/// Polls `f` for `during` and panics if its value ever differs from the first one: the bounded
/// wait is the assertion ("nothing more is sent").
pub async fn unchanged<T: PartialEq + std::fmt::Debug>(
    what: &str,
    during: Duration,
    f: impl Fn() -> T,
) -> T {
    let first = f();
    let deadline = tokio::time::Instant::now() + during;
    while tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let now = f();
        assert_eq!(now, first, "{what} changed within {during:?}");
    }
    first
}

/// The dedup keys PagerDuty got `action` for, with how many times each.
pub fn keys_for(counts: &BTreeMap<(String, String), usize>, action: &str) -> Vec<(String, usize)> {
    counts
        .iter()
        .filter(|((_, a), _)| a == action)
        .map(|((k, _), n)| (k.clone(), *n))
        .collect()
}

/// A replica's config: its id and location, the shared store, the compressed timings, and the
/// page route to PagerDuty and to Slack's `#alerts`.
fn config(
    id: &str,
    location: &str,
    port: u16,
    store_url: &str,
    pd: &FakePagerDuty,
    slack: &FakeSlack,
) -> String {
    format!(
        r##"replica_id: {id}
location: {location}
server:
  listen: 127.0.0.1:{port}
store:
  url: "{store_url}"
cluster: {{ lease: 3s, renew_every: 1s }}
alerts: alerts
evaluation_interval: 1s
checks:
  interval: 1s
  max_offset: 1s
  retry_on_failure: {{ count: 0 }}
  journeys: []
  http:
    - {{ name: {CHECK}, url: /svc/auth/healthz, expect: {{ status: 200 }} }}
receivers:
  - {{ name: pd, type: pagerduty, url: "{}", routing_key: "{TEST_ROUTING_KEY}" }}
  - {{ name: slack, type: slack, api_url: "{}", token: "{}", channel: "#alerts", upload_screenshots: false }}
route:
  receiver: console
  group_by: [alertname, check]
  group_wait: 0s
  group_interval: 1s
  repeat_interval: 1h
  routes:
    - {{ matchers: {{ route: page }}, receiver: pd, continue: true }}
    - {{ matchers: {{ route: page }}, receiver: slack }}
"##,
        pd.url(),
        slack.api_url(),
        slack.token()
    )
}
