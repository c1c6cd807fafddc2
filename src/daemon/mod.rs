//! `synmon run`: the daemon's lifecycle (start, reload, stop). It wires config -> scheduler ->
//! runners -> recorder (store + metrics registry + DogStatsD), the evaluator and the notifier,
//! and serves the HTTP API, which reads the [`crate::view::Shared`] state it fills through a
//! read-only [`DaemonView`]; `cli/run.rs` only parses flags and handles signals.
//!
//! The files are the seams a cluster splits along:
//! - `runner.rs`: checks -> scheduled specs -> the engine that runs each attempt;
//! - `recorder.rs`: what a run leaves behind (metrics, last result, the store's writer queue);
//! - `evaluator.rs`: rules and SLOs -> alert state;
//! - `notifier.rs`: the notification pipeline and its mute slot, fed after each evaluation;
//! - `housekeeping.rs`: replay at start, slice freezing, retention;
//! - `writer.rs`: the store's writer and how far it has come.

mod cluster;
mod evaluator;
mod housekeeping;
mod notifier;
mod recorder;
mod runner;
mod writer;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use crate::checks::{HttpProber, SqlSource};
use crate::clock::Clock;
use crate::config::{ConfigErrors, Target};
use crate::journey::{Driver, Runner, Vars};
use crate::metrics::registry::Registry;
use crate::metrics::statsd::StatsdExporter;
use crate::rules;
use crate::scheduler::{Scheduler, draw_offsets};
use crate::settings::Config;
use crate::store::Store;
use crate::view::{Alerting, DaemonView, Shared};

pub use evaluator::{Evaluation, evaluate, evaluate_rules, set_slo_gauges};
pub use runner::{Engine, check_specs};

use runner::{Running, index_checks};

#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error(transparent)]
    Config(#[from] ConfigErrors),
    #[error("{0}")]
    Target(String),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("DogStatsD exporter: {0}")]
    Statsd(String),
    #[error(transparent)]
    Lock(#[from] crate::cluster::LockError),
}

/// Command-line overrides of the config.
#[derive(Debug, Clone, Default)]
pub struct Options {
    pub listen: Option<SocketAddr>,
    pub target: Option<String>,
    pub base_url: Option<reqwest::Url>,
    /// Seed for the start offsets (tests); random otherwise.
    pub offsets_seed: Option<u64>,
    /// Offsets of zero: every check runs at once (tests, the gate's fresh runs).
    pub no_offsets: bool,
    /// Rules are evaluated only through `Daemon::evaluate_now`, and notifications are flushed
    /// and delivered only through `Daemon::notify_now` (tests count both exactly).
    pub manual_evaluation: bool,
    /// Retry backoff of notification delivery (tests turn jitter off).
    pub notify_backoff: Option<crate::notify::deliver::Backoff>,
}

/// A running daemon.
pub struct Daemon {
    pub addr: SocketAddr,
    pub shared: Arc<Shared>,
    options: Options,
    running: tokio::sync::Mutex<Option<Running>>,
    writer: tokio::task::JoinHandle<()>,
    writes: writer::RunQueue,
    server: tokio::task::JoinHandle<()>,
    server_stop: tokio::sync::watch::Sender<bool>,
    /// The minute tick: histogram slices, retention (see `housekeeping`).
    housekeeping: tokio::task::JoinHandle<()>,
    evaluator: Option<tokio::task::JoinHandle<()>>,
    /// Heartbeats and the leader lease (see `crate::cluster`).
    membership: tokio::task::JoinHandle<()>,
    membership_stop: tokio::sync::watch::Sender<bool>,
    roles: Arc<cluster::DaemonRoles>,
    /// A SQLite store serves one daemon: held for the process's life.
    _sqlite_lock: Option<crate::cluster::SqliteLock>,
}

fn target_of(cfg: &Config, o: &Options) -> Result<Target, DaemonError> {
    let mut t = cfg
        .target(o.target.as_deref())
        .map_err(DaemonError::Target)?
        .clone();
    if let Some(u) = &o.base_url {
        t.base_url = u.clone();
    }
    Ok(t)
}

impl Daemon {
    /// Opens the store, rebuilds recent metrics from it, binds the HTTP server and starts
    /// scheduling.
    pub async fn start(
        config: Config,
        options: Options,
        clock: Arc<dyn Clock>,
    ) -> Result<Daemon, DaemonError> {
        crate::tls::install();
        let target = target_of(&config, &options)?;
        let store = Store::connect(&config.store_url)
            .await?
            .for_replica(&config.replica_id);
        let sqlite_lock = match store.sqlite_file() {
            Some(file) => match crate::cluster::SqliteLock::acquire(&file, &config.replica_id) {
                Ok(l) => Some(l),
                Err(e) => {
                    store.close().await;
                    return Err(e.into());
                }
            },
            None => None,
        };
        let registry = Registry::new();
        let counters =
            housekeeping::replay(&store, &registry, clock.as_ref(), &config.location).await;
        let membership = crate::cluster::Membership::new(
            &config.replica_id,
            &config.location,
            config.cluster,
            store.with_own_pool(2).await?,
            registry.clone(),
        );
        let leader_store = store.clone().fenced(membership.fence());
        let listen = options.listen.unwrap_or(config.listen);
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .map_err(|source| DaemonError::Bind {
                addr: listen,
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| DaemonError::Bind {
            addr: listen,
            source,
        })?;
        if !addr.ip().is_loopback() {
            if config.auth_token.is_none() {
                tracing::warn!(%addr, "listening beyond loopback without `server.auth_token`: the status page, run pages, artifacts and JSON API are open to anyone who can reach this address");
            } else {
                tracing::info!(%addr, "listening beyond loopback: pages, artifacts and the JSON API require `server.auth_token`; /healthz, /readyz and /metrics stay open");
            }
        }
        let (notifier, mute) = notifier::build(
            &config,
            &store,
            &leader_store,
            &clock,
            &options,
            addr,
            &registry,
        )
        .await?;
        let started_at = clock.now();
        let config = Arc::new(config);
        let driver = Arc::new(Driver::from_config(&config.webdriver));
        let shared = Arc::new(Shared {
            config: RwLock::new(config.clone()),
            target: RwLock::new(target),
            checks: RwLock::new(Vec::new()),
            store: store.clone(),
            registry,
            clock,
            driver: RwLock::new(driver),
            last: RwLock::new(HashMap::new()),
            last_maintenance: RwLock::new(HashMap::new()),
            alerting: tokio::sync::Mutex::new(Alerting {
                counters: Arc::new(counters),
                ..Alerting::default()
            }),
            evaluating: tokio::sync::Mutex::new(()),
            stopping: AtomicBool::new(false),
            notifier: notifier.clone(),
            addr,
            mute,
            started_at,
            cluster: membership.clone(),
            leader_store,
            feed: crate::cluster::feed::Feed::new(),
            locations: tokio::sync::Mutex::new(None),
            runs_written: Arc::default(),
        });
        // Nothing is sent on a lease that may have run out (a process paused past it wakes up
        // mid-delivery): the deliverer asks before each send and sends within what is left.
        {
            let m = membership.clone();
            notifier
                .deliverer()
                .set_lease_guard(Arc::new(move || m.lease_remaining()));
        }
        // One membership round before anything evaluates: the replica knows its role (a
        // leader has restored the alert state and the notification log from the store).
        let roles = Arc::new(cluster::DaemonRoles {
            shared: shared.clone(),
            manual: options.manual_evaluation,
        });
        membership.round(roles.as_ref()).await;
        membership.refresh_live().await;
        let (membership_stop, membership_rx) = tokio::sync::watch::channel(false);
        let membership_task = tokio::spawn(membership.clone().run(
            roles.clone() as Arc<dyn crate::cluster::Roles>,
            membership_rx,
        ));
        // Results are written by one task so a slow store never stalls the scheduler.
        let (writes, rx) = writer::RunQueue::new(shared.runs_written.clone());
        let writer = tokio::spawn(writer::write_runs(
            store.for_run_writer().await?,
            rx,
            shared.runs_written.clone(),
        ));
        let (server_stop, stop_rx) = tokio::sync::watch::channel(false);
        let server = tokio::spawn(crate::http::serve(
            listener,
            DaemonView::new(shared.clone()),
            stop_rx,
        ));
        let housekeeping = tokio::spawn(housekeeping::tick(shared.clone()));
        let evaluator = if options.manual_evaluation {
            None
        } else {
            Some(tokio::spawn(evaluator::evaluate_loop(shared.clone())))
        };
        let daemon = Daemon {
            addr,
            shared,
            options,
            running: tokio::sync::Mutex::new(None),
            writer,
            writes,
            server,
            server_stop,
            housekeeping,
            evaluator,
            membership: membership_task,
            membership_stop,
            roles,
            _sqlite_lock: sqlite_lock,
        };
        daemon.start_checks(config).await?;
        tracing::info!(%addr, "synmon is running");
        Ok(daemon)
    }

    async fn start_checks(&self, config: Arc<Config>) -> Result<(), DaemonError> {
        let target = target_of(&config, &self.options)?;
        let driver = self.shared.driver.read().expect("driver lock").clone();
        let statsd = match &config.statsd {
            Some(s) => {
                let tags: Vec<(&str, &str)> = s
                    .tags
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.as_str()))
                    .collect();
                Some(Arc::new(
                    StatsdExporter::new(s.address, s.prefix.as_deref(), &tags)
                        .map_err(|e| DaemonError::Statsd(e.to_string()))?,
                ))
            }
            None => None,
        };
        let sql = match &config.database_url {
            Some(u) => match SqlSource::new(u) {
                Ok(s) => Some(s),
                Err(e) => {
                    tracing::warn!(error = %e, "monitored database unavailable; SQL metrics will be stale");
                    None
                }
            },
            None => None,
        };
        let engine = Arc::new(Engine {
            runner: Runner::new(config.runner_settings(), driver, self.shared.clock.clone()),
            sessions: crate::checks::SessionPool::new(config.webdriver.sessions as usize),
            http: HttpProber::new(config.checks.http_keep_alive),
            sql,
            vars: Vars::for_target(&config.identity(), &target),
            config: config.clone(),
            target: target.clone(),
            shared: self.shared.clone(),
            statsd,
            writes: self.writes.clone(),
            index: index_checks(&config),
            traces: recorder::trace_exporter(&config, &self.shared.registry),
        });
        let specs = check_specs(&config);
        let share = self.shared.cluster.share();
        share.configure(&specs, config.webdriver.sessions);
        // Shared checks start on a grid every replica computes alike (phases from the names);
        // otherwise offsets are drawn, as a single replica always did.
        let offsets = if self.options.no_offsets {
            vec![Duration::ZERO; specs.len()]
        } else if share.is_enabled() {
            specs
                .iter()
                .map(|s| {
                    crate::cluster::share::phase(
                        &s.name,
                        s.schedule.max_offset,
                        s.schedule.interval,
                    )
                })
                .collect()
        } else {
            draw_offsets(&specs, self.options.offsets_seed)
        };
        for (s, o) in specs.iter().zip(&offsets) {
            tracing::info!(check = %s.name, kind = s.kind.as_str(), interval_ms = crate::config::duration::millis_u64(s.schedule.interval), offset_ms = crate::config::duration::millis_u64(*o), "scheduled");
        }
        let in_flight = Arc::new(crate::scheduler::InFlight::new(config.checks.max_in_flight));
        *self.shared.checks.write().expect("checks lock") = specs.clone();
        *self.shared.target.write().expect("target lock") = target;
        *self.shared.config.write().expect("config lock") = config;
        let gate = share
            .is_enabled()
            .then(|| share.clone() as Arc<dyn crate::scheduler::Gate>);
        let scheduler = Scheduler::start_with(
            specs,
            offsets,
            engine.clone(),
            engine.clone(),
            self.shared.clock.clone(),
            gate,
            in_flight,
        );
        let statsd_task = engine.statsd.clone().map(|s| {
            let shared = self.shared.clone();
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(Duration::from_secs(10));
                loop {
                    tick.tick().await;
                    if let Err(e) = s.emit_registry_gauges(&shared.registry, shared.clock.now()) {
                        tracing::debug!(error = %e, "DogStatsD gauges not sent");
                    }
                    let _ = s.flush();
                }
            })
        });
        *self.running.lock().await = Some(Running {
            scheduler,
            engine,
            statsd_task,
        });
        Ok(())
    }

    /// Reloads the config file. An invalid file changes nothing: the old config keeps running.
    pub async fn reload(&self) -> Result<(), DaemonError> {
        let path = self.shared.config().file.clone();
        let new = match Config::load(&path) {
            Ok(c) => c,
            Err(e) => {
                for d in &e.0 {
                    tracing::error!("{d}");
                }
                tracing::error!(file = %path.display(), "reload refused: the config has errors; the previous config keeps running");
                return Err(e.into());
            }
        };
        target_of(&new, &self.options)?;
        if let Some(r) = self.running.lock().await.take() {
            r.stop().await;
        }
        let old_driver = {
            let mut d = self.shared.driver.write().expect("driver lock");
            std::mem::replace(&mut *d, Arc::new(Driver::from_config(&new.webdriver)))
        };
        old_driver.shutdown().await;
        self.shared
            .notifier
            .reload(&new.notify, &new.public_url(self.addr))
            .await;
        self.shared.mute.reconfigure(&new.mute, &new.rules);
        self.start_checks(Arc::new(new)).await?;
        tracing::info!(file = %path.display(), "config reloaded");
        Ok(())
    }

    /// Evaluates every rule and SLO once, now; returns the transitions.
    pub async fn evaluate_now(&self) -> Vec<rules::eval::Transition> {
        evaluate(&self.shared).await
    }

    /// Flushes the notification groups that are due and makes one delivery pass over every
    /// receiver (tests with `manual_evaluation`; the workers do this on their own otherwise).
    pub async fn notify_now(
        &self,
    ) -> Result<crate::notify::deliver::Pass, crate::store::StoreError> {
        self.shared.notifier.flush().await?;
        self.shared.notifier.deliver_all().await
    }

    /// Stops gracefully: cancels in-flight runs (recorded as cancelled), quits browsers and
    /// chromedriver, flushes the store, stops the server. Bounded to 10 s.
    pub async fn shutdown(mut self) {
        // First, so an evaluation running on a blocking thread gives up instead of holding the
        // runtime's exit (which waits for blocking threads) for the rest of its work.
        self.shared.stopping.store(true, Ordering::Relaxed);
        let work = async {
            if let Some(r) = self.running.lock().await.take() {
                r.stop().await;
            }
            let driver = self.shared.driver.read().expect("driver lock").clone();
            driver.shutdown().await;
            drop(self.writes);
            let _ = self.writer.await;
            let _ = self.server_stop.send(true);
            let _ = self.server.await;
            self.housekeeping.abort();
            // Hand the lease over now rather than at its expiry: a follower leads at its next
            // round. Stepping down also stops delivery (an attempt in progress is recorded).
            let _ = self.membership_stop.send(true);
            let _ = (&mut self.membership).await;
            self.shared.cluster.leave(self.roles.as_ref()).await;
            self.shared.cluster.close().await;
            self.shared.notifier.stop().await;
            if let Some(e) = &self.evaluator {
                e.abort();
            }
            self.shared.store.close().await;
        };
        if tokio::time::timeout(Duration::from_secs(10), work)
            .await
            .is_err()
        {
            tracing::error!("shutdown took longer than 10 s; exiting anyway");
        }
        tracing::info!("synmon stopped");
    }
}
