//! What the daemon publishes for its readers: the HTTP server (API, status page, silences) and
//! the gate's sample endpoint read the live state through this type, defined below both of them
//! and below the daemon that fills it, so data flows one way (daemon -> view <- http, gate).

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

/// What the HTTP server and the reload path share.
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
}

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
#[derive(Debug, Clone, PartialEq)]
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
