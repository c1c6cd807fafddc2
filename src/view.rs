//! What the daemon publishes for its readers. The daemon fills [`Shared`]; the HTTP server (API,
//! status page, silences) and the gate's sample endpoint read it through [`DaemonView`], a small
//! read-only view defined below all three, so data flows one way (daemon -> view <- http, gate).
//! The one thing readers may change is silences, through [`DaemonView::mute`].

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, RwLock};

use crate::clock::Clock;
use crate::config::Target;
use crate::journey::Driver;
use crate::metrics::registry::Registry;
use crate::rules;
use crate::rules::registry_source::CounterHistory;
use crate::run::RunResult;
use crate::scheduler::CheckSpec;
use crate::settings::Config;
use crate::store::Store;

/// The daemon's live state: written by the runner side (last runs), the evaluator (alert state)
/// and the lifecycle (config, checks, driver on reload); read through [`DaemonView`].
pub struct Shared {
    pub config: RwLock<Arc<Config>>,
    pub target: RwLock<Target>,
    pub checks: RwLock<Vec<CheckSpec>>,
    pub store: Store,
    pub registry: Registry,
    pub clock: Arc<dyn Clock>,
    pub driver: RwLock<Arc<Driver>>,
    /// Last result per check (the last attempt's outcome is what alerting judges).
    pub last: RwLock<HashMap<String, RunResult>>,
    /// The maintenance window each check's last run (in `last`) fell in, for checks whose last
    /// run was inside one: what the store records beside the run, before it is written.
    pub last_maintenance: RwLock<HashMap<String, String>>,
    /// Alert state, counter history and recent transitions. Held only to read or swap them:
    /// an evaluation computes on copies, off the async runtime (see [`evaluate`]).
    pub alerting: tokio::sync::Mutex<Alerting>,
    /// One evaluation at a time (the loop, `evaluate_now`): each takes the state, computes and
    /// puts the result back.
    pub evaluating: tokio::sync::Mutex<()>,
    /// Set by [`Daemon::shutdown`]: an evaluation in progress gives up at its next rule or SLO.
    pub stopping: AtomicBool,
    /// Routing, grouping, dedup, the outbox and its delivery workers.
    pub notifier: Arc<crate::notify::pipeline::Notifier>,
    /// The address the HTTP server listens on (for links when no `external_url` is set).
    pub addr: SocketAddr,
    /// Silences, inhibition and maintenance windows (the pipeline's mute slot; the API reads
    /// and writes silences here).
    pub mute: Arc<crate::mute::Mute>,
    /// When the daemon started (the watchdog alert's `startsAt`).
    pub started_at: chrono::DateTime<chrono::Utc>,
    /// This replica's place in the cluster: its role, the lease, the store's health.
    pub cluster: Arc<crate::cluster::Membership>,
    /// The latest run per check and location from the store, and when it was read: one query
    /// serves every reader for [`LOCATIONS_TTL`] (it reads a day of runs).
    pub locations:
        tokio::sync::Mutex<Option<(std::time::Instant, Arc<Vec<crate::store::LocationLatest>>)>>,
    /// The other replicas' runs, read from the store by the leader for evaluation.
    pub feed: crate::cluster::feed::Feed,
    /// The store handle the leader writes alert state through: fenced, so a former leader's
    /// writes are refused (the notifier holds its own fenced handle).
    pub leader_store: Store,
    /// How far the store's writer has come: a page waits for the runs that caused it.
    pub runs_written: Arc<crate::store::WriteProgress>,
}

/// How long one read of every location's latest runs serves the API and the status page (which
/// refreshes every 10 s): at thousands of checks the query reads a day of runs.
pub const LOCATIONS_TTL: std::time::Duration = std::time::Duration::from_secs(10);

/// What the rule evaluator keeps between evaluations.
#[derive(Default)]
pub struct Alerting {
    pub state: rules::eval::State,
    /// Shared with the evaluation in progress (and `/api/v1/slo`) without copying; sampling
    /// copies it only while one of those still reads the previous samples.
    pub counters: Arc<CounterHistory>,
    /// The latest transitions, newest last (the API shows them; notifications are built from
    /// the alert state itself).
    pub recent: std::collections::VecDeque<rules::eval::Transition>,
    pub evaluations: u64,
    /// Every SLO's status as the latest evaluation computed it (the figures it exports as
    /// gauges): what `/api/v1/slo` and the status page show. `None` before the first one.
    pub slos: Option<Arc<SloFigures>>,
}

/// The SLO figures of one evaluation.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SloFigures {
    /// When the evaluation computed them.
    pub at: chrono::DateTime<chrono::Utc>,
    /// In config order.
    pub slos: Vec<rules::SloStatus>,
}

impl Shared {
    pub fn config(&self) -> Arc<Config> {
        self.config.read().expect("config lock").clone()
    }
}

/// The read-only view of a running daemon that the HTTP server and the gate are given: snapshots
/// and read guards, never the locks themselves. Cheap to clone (one `Arc`).
#[derive(Clone)]
pub struct DaemonView {
    shared: Arc<Shared>,
}

/// The alert state as the latest evaluation left it, held for reading (the evaluator waits
/// while it is held: keep it short).
pub struct AlertingRead<'a>(tokio::sync::MutexGuard<'a, Alerting>);

impl std::ops::Deref for AlertingRead<'_> {
    type Target = Alerting;
    fn deref(&self) -> &Alerting {
        &self.0
    }
}

/// Each check's last run and, for runs inside a maintenance window, the window's name.
pub struct LastRuns {
    pub runs: HashMap<String, RunResult>,
    pub maintenance: HashMap<String, String>,
}

impl DaemonView {
    pub fn new(shared: Arc<Shared>) -> DaemonView {
        DaemonView { shared }
    }

    /// The config in force (replaced whole on reload).
    pub fn config(&self) -> Arc<Config> {
        self.shared.config()
    }

    /// Now, by the daemon's clock (a manual clock in tests).
    pub fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.shared.clock.now()
    }

    pub fn clock(&self) -> Arc<dyn Clock> {
        self.shared.clock.clone()
    }

    /// The name of the target checks run against.
    pub fn target_name(&self) -> String {
        self.shared.target.read().expect("target lock").name.clone()
    }

    /// The scheduled checks, in schedule order.
    pub fn checks(&self) -> Vec<CheckSpec> {
        self.shared.checks.read().expect("checks lock").clone()
    }

    /// Each check's last run with its maintenance mark, read under one turn of the lock so a
    /// run is never paired with the previous run's mark.
    pub fn last_runs(&self) -> LastRuns {
        let runs = self.shared.last.read().expect("last lock");
        let maintenance = self
            .shared
            .last_maintenance
            .read()
            .expect("last_maintenance lock")
            .clone();
        LastRuns {
            runs: runs.clone(),
            maintenance,
        }
    }

    /// One run by id: the stored one, else a check's last run that the store's writer has not
    /// committed yet (runs are written in batches a little after they are recorded, and the
    /// checks view links the last run as soon as it is recorded: the link must not 404).
    pub async fn run(&self, run_id: &str) -> crate::store::Result<Option<crate::store::StoredRun>> {
        if let Some(stored) = self.shared.store.stored_run(run_id).await? {
            return Ok(Some(stored));
        }
        let last = self.last_runs();
        Ok(last
            .runs
            .values()
            .find(|r| r.run_id == run_id)
            .map(|r| crate::store::StoredRun {
                run: r.clone(),
                maintenance: last.maintenance.get(&r.check).cloned(),
            }))
    }

    /// Stored runs, alert state and the outbox (queries).
    pub fn store(&self) -> &Store {
        &self.shared.store
    }

    /// Live metrics: windowed histograms, counters, gauges.
    pub fn registry(&self) -> &Registry {
        &self.shared.registry
    }

    /// Where browser sessions come from (readiness asks it for an endpoint).
    pub fn driver(&self) -> Arc<Driver> {
        self.shared.driver.read().expect("driver lock").clone()
    }

    /// The alert state, transitions and SLO figures of the latest evaluation.
    pub async fn alerting(&self) -> AlertingRead<'_> {
        AlertingRead(self.shared.alerting.lock().await)
    }

    /// The notification pipeline (the API lists the alert groups it watches).
    pub fn notifier(&self) -> &crate::notify::pipeline::Notifier {
        &self.shared.notifier
    }

    /// Silences (which the API creates and expires), inhibition and maintenance windows.
    pub fn mute(&self) -> &crate::mute::Mute {
        &self.shared.mute
    }

    /// Every location's latest run per check, from the store, read at most once per
    /// [`LOCATIONS_TTL`] whoever asks (concurrent readers wait for the same read).
    pub async fn latest_per_location(
        &self,
    ) -> Result<Arc<Vec<crate::store::LocationLatest>>, crate::store::StoreError> {
        let mut cached = self.shared.locations.lock().await;
        if let Some((at, v)) = &*cached
            && at.elapsed() < LOCATIONS_TTL
        {
            return Ok(v.clone());
        }
        let fresh = Arc::new(self.shared.store.latest_per_location(self.now()).await?);
        *cached = Some((std::time::Instant::now(), fresh.clone()));
        Ok(fresh)
    }

    /// When the daemon started (the watchdog alert's start, `uptime` in `/api/v2/status`).
    pub fn started_at(&self) -> chrono::DateTime<chrono::Utc> {
        self.shared.started_at
    }

    /// The daemon's public base URL: `external_url`, else `http://` + the listening address.
    pub fn public_url(&self) -> String {
        self.config().public_url(self.shared.addr)
    }

    /// This replica's membership in the cluster (role, lease, store health).
    pub fn cluster(&self) -> &crate::cluster::Membership {
        &self.shared.cluster
    }
}
