//! `synmon run`: wires config -> scheduler -> runners -> recorder (store + metrics registry +
//! DogStatsD) and serves the HTTP API. Start, reload and stop live here; `cli/run.rs` only
//! parses flags and handles signals.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use tokio::sync::{Semaphore, mpsc};
use tokio::time::Instant;

use crate::clock::Clock;
use crate::config::{Config, ConfigErrors, Target};
use crate::journey::{Driver, Runner, Vars};
use crate::metrics::catalog;
use crate::metrics::registry::Registry;
use crate::metrics::statsd::StatsdExporter;
use crate::outcome::Outcome;
use crate::probes::http::HttpProber;
use crate::probes::net;
use crate::probes::sql::SqlSource;
use crate::rules;
use crate::rules::registry_source::{CounterHistory, RegistrySource};
use crate::run::{CheckKind, RunResult};
use crate::scheduler::{
    Attempt, BoxFuture, CheckSpec, Executor, Recorder, Scheduler, draw_offsets,
};
use crate::store::{Store, StoredRun};

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

/// The store key of the evaluator's state.
pub const ALERT_STATE_ID: &str = "evaluator";
const RECENT_TRANSITIONS: usize = 500;

impl Shared {
    pub fn config(&self) -> Arc<Config> {
        self.config.read().expect("config lock").clone()
    }
}

/// Every scheduled check of a config.
pub fn check_specs(cfg: &Config) -> Vec<CheckSpec> {
    let mut specs: Vec<CheckSpec> = cfg
        .checks
        .journeys
        .iter()
        .map(|(name, s)| CheckSpec {
            name: name.clone(),
            kind: CheckKind::Journey,
            schedule: s.clone(),
        })
        .collect();
    let c = &cfg.checks;
    specs.extend(
        c.http
            .iter()
            .map(|h| spec(&h.name, CheckKind::Http, &h.schedule)),
    );
    specs.extend(
        c.sql
            .iter()
            .map(|h| spec(&h.name, CheckKind::Sql, &h.schedule)),
    );
    specs.extend(
        c.tcp
            .iter()
            .map(|h| spec(&h.name, CheckKind::Tcp, &h.schedule)),
    );
    specs.extend(
        c.dns
            .iter()
            .map(|h| spec(&h.name, CheckKind::Dns, &h.schedule)),
    );
    specs
}

fn spec(name: &str, kind: CheckKind, s: &crate::config::checks::Schedule) -> CheckSpec {
    CheckSpec {
        name: name.to_string(),
        kind,
        schedule: s.clone(),
    }
}

/// Runs checks and records their results: the scheduler's executor and recorder.
pub struct Engine {
    config: Arc<Config>,
    target: Target,
    runner: Runner,
    sessions: Arc<Semaphore>,
    http: HttpProber,
    sql: Option<SqlSource>,
    shared: Arc<Shared>,
    statsd: Option<Arc<StatsdExporter>>,
    writes: mpsc::UnboundedSender<StoredRun>,
    /// Where each check's definition sits in its config list: a run finds it without scanning
    /// every check (1,000 checks a second would otherwise scan a million names a second).
    index: HashMap<(CheckKind, String), usize>,
}

/// Positions of every check definition, by kind and name.
fn index_checks(cfg: &Config) -> HashMap<(CheckKind, String), usize> {
    fn add<'a>(
        m: &mut HashMap<(CheckKind, String), usize>,
        kind: CheckKind,
        names: impl Iterator<Item = &'a String>,
    ) {
        for (i, n) in names.enumerate() {
            m.insert((kind, n.clone()), i);
        }
    }
    let mut m = HashMap::new();
    let c = &cfg.checks;
    add(
        &mut m,
        CheckKind::Journey,
        cfg.journeys.iter().map(|j| &j.name),
    );
    add(&mut m, CheckKind::Http, c.http.iter().map(|h| &h.name));
    add(&mut m, CheckKind::Sql, c.sql.iter().map(|h| &h.name));
    add(&mut m, CheckKind::Tcp, c.tcp.iter().map(|h| &h.name));
    add(&mut m, CheckKind::Dns, c.dns.iter().map(|h| &h.name));
    add(&mut m, CheckKind::Tls, c.tls.iter().map(|h| &h.name));
    m
}

impl Engine {
    /// The definition of `check` in `list` (the config list of its kind).
    fn def<'a, T>(&self, check: &CheckSpec, list: &'a [T]) -> Option<&'a T> {
        self.index
            .get(&(check.kind, check.name.clone()))
            .and_then(|&i| list.get(i))
    }

    fn vars(&self) -> Vars {
        let mut v = Vars::default();
        v.set("tenant", &self.config.tenant);
        v.set("username", &self.config.credentials.username);
        v.set_secret("password", self.config.credentials.password.clone());
        v.set(
            "base_url",
            self.target.base_url.as_str().trim_end_matches('/'),
        );
        v.set("target", &self.target.name);
        v.set("location", &self.config.location);
        for (k, val) in &self.config.variables {
            v.set(k, val);
        }
        v
    }

    fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.shared.clock.now()
    }

    async fn journey(&self, check: &CheckSpec) -> RunResult {
        let Some(j) = self.def(check, &self.config.journeys) else {
            let mut r = self.begin(check);
            r.outcome = Outcome::Error;
            r.error = Some(format!("journey `{}` is not loaded", check.name));
            return r;
        };
        // Waiting for a browser session is not the target's latency: measured apart.
        let waited = Instant::now();
        let _permit = self.sessions.acquire().await.expect("session pool open");
        let wait_ms = waited.elapsed().as_secs_f64() * 1000.0;
        let mut r = self.runner.run(j, &self.target).await;
        r.session_wait_ms = wait_ms;
        r
    }

    fn begin(&self, check: &CheckSpec) -> RunResult {
        RunResult::begin(
            &check.name,
            check.kind,
            &self.target.name,
            &self.config.location,
            self.now(),
        )
    }

    async fn http_check(&self, check: &CheckSpec, timeout: Duration) -> RunResult {
        let mut r = self.begin(check);
        let Some(h) = self.def(check, &self.config.checks.http) else {
            r.outcome = Outcome::Error;
            return r;
        };
        let base = self.target.base_url.as_str().to_string();
        // Leave the scheduler's timeout to catch a stuck probe; the request gets slightly less.
        let stats = self
            .http
            .run(h, &base, &self.vars(), &mut r, timeout.mul_f64(0.95))
            .await;
        let service = h.service.clone().unwrap_or_else(|| "-".into());
        let reg = &self.shared.registry;
        if stats.rate_limit_hits > 0 {
            let _ = reg.incr(
                catalog::RATE_LIMIT_HITS.name,
                &[("check", &h.name), ("service", &service)],
                stats.rate_limit_hits,
            );
        }
        if stats.server_errors > 0 {
            let _ = reg.incr(
                catalog::HTTP_ERRORS.name,
                &[("check", &h.name), ("service", &service), ("status", "5xx")],
                stats.server_errors,
            );
        }
        let now = self.now();
        for (g, v) in &stats.gauges {
            let res = match v {
                Some(v) => reg.set_gauge(g, &[], *v, now),
                None => reg.mark_all_stale(g),
            };
            if let Err(e) = res {
                tracing::warn!(check = %h.name, metric = %g, error = %e, "gauge not recorded");
            }
        }
        if let Some(m) = &h.metric
            && r.outcome == Outcome::Pass
        {
            let res = reg.record(
                m,
                &[("location", &self.config.location)],
                r.slo_latency_ms(),
                now,
            );
            if let Err(e) = res {
                tracing::warn!(check = %h.name, metric = %m, error = %e, "latency not recorded");
            }
        }
        r
    }

    async fn sql_metric(&self, check: &CheckSpec, timeout: Duration) -> RunResult {
        let mut r = self.begin(check);
        let (Some(m), Some(src)) = (self.def(check, &self.config.checks.sql), &self.sql) else {
            r.outcome = Outcome::Error;
            r.error = Some("no monitored database configured (`database.url`)".into());
            return r;
        };
        let reg = &self.shared.registry;
        match src.run(m, &mut r, timeout.mul_f64(0.95)).await {
            Some(samples) => {
                let now = self.now();
                for s in samples {
                    let labels: Vec<(&str, &str)> = s
                        .labels
                        .iter()
                        .map(|(k, v)| (k.as_str(), v.as_str()))
                        .collect();
                    if let Err(e) = reg.set_gauge(&m.metric, &labels, s.value, now) {
                        tracing::warn!(check = %m.name, error = %e, "gauge not recorded");
                    }
                }
            }
            // A failed source has no data: stale, never zero.
            None => {
                let _ = reg.mark_all_stale(&m.metric);
            }
        }
        r
    }
}

impl Executor for Engine {
    fn execute<'a>(&'a self, check: &'a CheckSpec, a: Attempt) -> BoxFuture<'a, RunResult> {
        let span = tracing::info_span!("attempt", check = %check.name, attempt = a.attempt);
        Box::pin(tracing::Instrument::instrument(
            async move {
                match check.kind {
                    CheckKind::Journey => self.journey(check).await,
                    CheckKind::Http => self.http_check(check, a.timeout).await,
                    CheckKind::Sql => self.sql_metric(check, a.timeout).await,
                    CheckKind::Tcp => {
                        let mut r = self.begin(check);
                        if let Some(t) = self.def(check, &self.config.checks.tcp) {
                            net::tcp(&mut r, &t.address, a.timeout.mul_f64(0.95)).await;
                        }
                        r
                    }
                    CheckKind::Dns => {
                        let mut r = self.begin(check);
                        if let Some(d) = self.def(check, &self.config.checks.dns) {
                            net::dns(&mut r, &d.host, a.timeout.mul_f64(0.95)).await;
                        }
                        r
                    }
                    CheckKind::Tls => {
                        let mut r = self.begin(check);
                        if let Some(t) = self.def(check, &self.config.checks.tls) {
                            let days = crate::probes::tls::tls(
                                &mut r,
                                &t.address,
                                t.server_name.as_deref(),
                                t.ca_file.as_deref(),
                                t.min_days,
                                a.timeout.mul_f64(0.95),
                                self.now(),
                            )
                            .await;
                            let labels = [
                                ("check", t.name.as_str()),
                                ("target", self.target.name.as_str()),
                            ];
                            let reg = &self.shared.registry;
                            let _ = match days {
                                Some(d) => reg.set_gauge(
                                    catalog::TLS_CERT_DAYS_LEFT.name,
                                    &labels,
                                    d,
                                    self.now(),
                                ),
                                None => reg.mark_stale(catalog::TLS_CERT_DAYS_LEFT.name, &labels),
                            };
                        }
                        r
                    }
                }
            },
            span,
        ))
    }
}

impl Recorder for Engine {
    fn record_run(&self, run: &RunResult) {
        // Runs the scheduler made up (timed out, cancelled) do not know the target or location.
        let mut owned;
        let run = if run.target.is_empty() || run.location.is_empty() {
            owned = run.clone();
            owned.target = self.target.name.clone();
            owned.location = self.config.location.clone();
            &owned
        } else {
            run
        };
        let now = self.now();
        // A run inside a maintenance window is recorded as `maintenance` in the metrics (SLO
        // budgets skip it) and stored with the window's name (the gate, the report and the
        // pages skip or show it, and a restart replays it as it was judged now).
        let window = self.shared.mute.maintenance.window_for_run(run);
        let recorded = self
            .shared
            .registry
            .record_run_marked(run, window.as_deref(), now);
        match (&window, recorded) {
            (_, Err(e)) => {
                tracing::warn!(check = %run.check, error = %e, "run not recorded in metrics")
            }
            (Some(w), Ok(())) => {
                tracing::info!(check = %run.check, window = %w, outcome = %run.outcome, "run inside a maintenance window: recorded as maintenance")
            }
            (None, Ok(())) => {}
        }
        if let Some(s) = &self.statsd
            && let Err(e) = s.emit_run(run)
        {
            tracing::debug!(error = %e, "DogStatsD send failed");
        }
        if !run.cancelled {
            // Both maps under the `last` lock's turn, so a reader never pairs a run with the
            // previous run's mark for long.
            let mut last = self.shared.last.write().expect("last lock");
            let mut marks = self
                .shared
                .last_maintenance
                .write()
                .expect("last_maintenance lock");
            match &window {
                Some(w) => marks.insert(run.check.clone(), w.clone()),
                None => marks.remove(&run.check),
            };
            last.insert(run.check.clone(), run.clone());
        }
        let _ = self.writes.send(StoredRun {
            run: run.clone(),
            maintenance: window,
        });
    }

    fn record_lateness(&self, check: &CheckSpec, lateness: Duration) {
        let _ = self.shared.registry.record(
            catalog::SCHEDULE_LATENESS.name,
            &[("check", &check.name), ("location", &self.config.location)],
            lateness.as_secs_f64() * 1000.0,
            self.now(),
        );
    }

    fn record_overrun(&self, check: &CheckSpec, missed: u64, run: &RunResult) {
        // A run the scheduler made up (timed out) has no location: the daemon's is the one.
        let metrics = crate::metrics::RunMetrics {
            location: &self.config.location,
            ..crate::metrics::RunMetrics::of(run)
        };
        let interval = check.schedule.interval.as_secs_f64() * 1000.0;
        let reg = &self.shared.registry;
        let now = self.now();
        let _ = metrics.try_for_each_overrun_point(missed, interval, |p| reg.record_point(&p, now));
    }
}

struct Running {
    scheduler: Scheduler,
    engine: Arc<Engine>,
    /// Sends gauges (SQL metrics, the SWIS p95) to DogStatsD every 10 s and flushes the buffer.
    statsd_task: Option<tokio::task::JoinHandle<()>>,
}

impl Running {
    async fn stop(self) {
        self.scheduler.stop().await;
        if let Some(t) = self.statsd_task {
            t.abort();
        }
        if let Some(s) = &self.engine.statsd {
            let _ = s.flush();
        }
    }
}

/// A running daemon.
pub struct Daemon {
    pub addr: SocketAddr,
    pub shared: Arc<Shared>,
    options: Options,
    running: tokio::sync::Mutex<Option<Running>>,
    writer: tokio::task::JoinHandle<()>,
    writes: mpsc::UnboundedSender<StoredRun>,
    server: tokio::task::JoinHandle<()>,
    server_stop: tokio::sync::watch::Sender<bool>,
    maintenance: tokio::task::JoinHandle<()>,
    evaluator: Option<tokio::task::JoinHandle<()>>,
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
        let store = Store::connect(&config.store_url).await?;
        let registry = Registry::new();
        // Percentiles survive a restart: replay the last day of runs into the windows (check
        // latency and outcome counts, from the run summaries: one query, not one per run). A
        // run's maintenance mark is the one stored with it, judged when it ran: windows edited
        // since do not rewrite history.
        let since = clock.now() - chrono::Duration::hours(24);
        match store.runs_since(since).await {
            Ok(runs) => {
                for r in &runs {
                    // A summary has no steps: its latency is the timed latency of a journey
                    // that timed any, else the total. Only the latency distributions are
                    // replayed; counters and gauges start from this process.
                    let latency_ms = if r.kind == CheckKind::Journey && r.timed_latency_ms > 0.0 {
                        r.timed_latency_ms
                    } else {
                        r.total_ms
                    };
                    let metrics = crate::metrics::RunMetrics {
                        check: &r.check,
                        location: &r.location,
                        target: &r.target,
                        outcome: r.outcome,
                        attempt: r.attempt,
                        latency_ms,
                        steps: &[],
                        cancelled: r.cancelled,
                        maintenance: r.maintenance.is_some(),
                    };
                    let _ = metrics.try_for_each_point(|p| match p.value {
                        crate::metrics::PointValue::Latency(_) => {
                            registry.record_point(&p, r.started_at)
                        }
                        _ => Ok(()),
                    });
                }
                tracing::info!(
                    runs = runs.len(),
                    "replayed the last 24 h of runs into the metrics"
                );
            }
            Err(e) => tracing::warn!(error = %e, "could not replay stored runs"),
        }
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
        for (file, rule, route) in
            crate::notify::config::unrouted(&config.rules, &config.notify.route)
        {
            tracing::warn!(%file, %rule, %route, "the rule's route matches no node of `route:`; its alerts go to the root receiver");
        }
        let notifier = Arc::new(
            crate::notify::pipeline::Notifier::new(
                &config.notify,
                store.clone(),
                clock.clone(),
                options.notify_backoff.unwrap_or_default(),
                &config.public_url(addr),
                Some(registry.clone()),
            )
            .await?,
        );
        let mute = Arc::new(crate::mute::Mute::new(store.clone(), &config.mute).await?);
        mute.attach(&notifier).await;
        let started_at = clock.now();
        let config = Arc::new(config);
        let driver = Arc::new(Driver::from_config(&config));
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
            alerting: tokio::sync::Mutex::new(Alerting::default()),
            evaluating: tokio::sync::Mutex::new(()),
            stopping: AtomicBool::new(false),
            notifier: notifier.clone(),
            addr,
            mute,
            started_at,
        });
        // Alerts survive restarts: a firing alert stays firing without paging again.
        match store.load_alert_state(ALERT_STATE_ID).await {
            Ok(Some(v)) => match serde_json::from_value::<rules::eval::State>(v) {
                Ok(state) => {
                    tracing::info!(alerts = state.alerts.len(), "restored alert state");
                    shared.alerting.lock().await.state = state;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "stored alert state unreadable; starting fresh")
                }
            },
            Ok(None) => {}
            Err(e) => tracing::warn!(error = %e, "could not load alert state"),
        }
        // Results are written by one task so a slow store never stalls the scheduler.
        let (writes, mut rx) = mpsc::unbounded_channel::<StoredRun>();
        let writer = tokio::spawn(async move {
            // Whatever queued up while the last write ran goes in one transaction.
            let mut batch = Vec::with_capacity(64);
            while rx.recv_many(&mut batch, 256).await > 0 {
                if let Err(e) = store.insert_runs(&batch).await {
                    tracing::error!(runs = batch.len(), error = %e, "runs not stored");
                }
                batch.clear();
            }
        });
        let (server_stop, stop_rx) = tokio::sync::watch::channel(false);
        let server = tokio::spawn(crate::http::serve(listener, shared.clone(), stop_rx));
        let maintenance = tokio::spawn(maintain(shared.clone()));
        if !options.manual_evaluation {
            notifier.start();
        }
        let evaluator = if options.manual_evaluation {
            None
        } else {
            Some(tokio::spawn(evaluate_loop(shared.clone())))
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
            maintenance,
            evaluator,
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
            runner: Runner::new(config.clone(), driver, self.shared.clock.clone()),
            sessions: Arc::new(Semaphore::new(config.webdriver.sessions as usize)),
            http: HttpProber::new(config.checks.http_keep_alive),
            sql,
            config: config.clone(),
            target: target.clone(),
            shared: self.shared.clone(),
            statsd,
            writes: self.writes.clone(),
            index: index_checks(&config),
        });
        let specs = check_specs(&config);
        let offsets = if self.options.no_offsets {
            vec![Duration::ZERO; specs.len()]
        } else {
            draw_offsets(&specs, self.options.offsets_seed)
        };
        for (s, o) in specs.iter().zip(&offsets) {
            tracing::info!(check = %s.name, kind = s.kind.as_str(), interval_ms = s.schedule.interval.as_millis() as u64, offset_ms = o.as_millis() as u64, "scheduled");
        }
        *self.shared.checks.write().expect("checks lock") = specs.clone();
        *self.shared.target.write().expect("target lock") = target;
        *self.shared.config.write().expect("config lock") = config;
        let scheduler = Scheduler::start(
            specs,
            offsets,
            engine.clone(),
            engine.clone(),
            self.shared.clock.clone(),
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
            std::mem::replace(&mut *d, Arc::new(Driver::from_config(&new)))
        };
        old_driver.shutdown().await;
        self.shared
            .notifier
            .reload(&new.notify, &new.public_url(self.addr))
            .await;
        self.shared.mute.reconfigure(&new.mute);
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
    pub async fn shutdown(self) {
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
            self.maintenance.abort();
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

/// What the CPU-bound part of an evaluation computes (see [`evaluate_rules`]).
#[derive(Debug)]
pub struct Evaluation {
    pub transitions: Vec<rules::eval::Transition>,
    /// The alert state after this evaluation.
    pub state: rules::eval::State,
    pub slos: Vec<rules::SloStatus>,
}

/// The CPU-bound part of one evaluation: every rule, then every SLO's status, over the registry
/// and the counter history, starting from `state`. Pure and synchronous: the daemon runs it on a
/// blocking thread, the bench calls it directly. `stop` is asked before each rule and SLO.
pub fn evaluate_rules(
    rules: &rules::RuleSet,
    registry: &Registry,
    counters: &CounterHistory,
    mut state: rules::eval::State,
    now: chrono::DateTime<chrono::Utc>,
    stop: &dyn Fn() -> bool,
) -> Result<Evaluation, rules::Stopped> {
    let source = RegistrySource { registry, counters };
    // The burn-rate rules and the SLO status read each burn rate once, and the same figure.
    let burns = rules::BurnRates::default();
    let transitions = rules::evaluate_with(rules, &source, &mut state, now, stop, &burns)?;
    let slos = rules::slo_status_with(&rules.slos, &source, now, stop, &burns)?;
    Ok(Evaluation {
        transitions,
        state,
        slos,
    })
}

/// One evaluation: sample counters, evaluate rules against the registry, log and keep the
/// transitions, persist the state when it changed, export the SLO gauges.
///
/// The rules and SLOs run on a blocking thread over a copy of the alert state (with 30 days of
/// data a debug build takes seconds): the runtime's workers stay free for `/healthz`, the API
/// and signals, and readers of the alert state never wait for the computation. When the daemon
/// stops meanwhile, the evaluation gives up and changes nothing (no transitions).
pub async fn evaluate(shared: &Arc<Shared>) -> Vec<rules::eval::Transition> {
    let _turn = shared.evaluating.lock().await;
    let cfg = shared.config();
    let now = shared.clock.now();
    let (state, counters) = {
        let mut a = shared.alerting.lock().await;
        Arc::make_mut(&mut a.counters).sample(&shared.registry, now);
        (a.state.clone(), a.counters.clone())
    };
    let work = {
        let shared = shared.clone();
        let cfg = cfg.clone();
        let span = tracing::info_span!(
            "evaluate",
            rules = cfg.rules.rules.len(),
            slos = cfg.rules.slos.len()
        );
        tokio::task::spawn_blocking(move || {
            let _span = span.enter();
            let stop = || shared.stopping.load(Ordering::Relaxed);
            evaluate_rules(&cfg.rules, &shared.registry, &counters, state, now, &stop)
        })
    };
    let ev = match work.await {
        Ok(Ok(ev)) => ev,
        Ok(Err(rules::Stopped)) => {
            tracing::info!("evaluation given up: synmon is stopping; the alert state is unchanged");
            return Vec::new();
        }
        Err(e) => {
            tracing::error!(error = %e, "evaluation failed; the alert state is unchanged");
            return Vec::new();
        }
    };
    for slo in &ev.slos {
        let reg = &shared.registry;
        let labels = [("slo", slo.name.as_str())];
        let _ = reg.set_gauge(
            catalog::SLO_BUDGET_REMAINING.name,
            &labels,
            slo.error_budget_remaining,
            now,
        );
        for b in &slo.burn_rates {
            let window = b.window.clone();
            let _ = reg.set_gauge(
                catalog::SLO_BURN_RATE.name,
                &[("slo", slo.name.as_str()), ("window", window.as_str())],
                b.burn_rate.unwrap_or(f64::NAN),
                now,
            );
        }
        let _ = reg.set_gauge(
            catalog::SLO_TIME_TO_EXHAUSTION.name,
            &labels,
            slo.time_to_exhaustion_secs
                .map(|s| s as f64)
                .unwrap_or(f64::NAN),
            now,
        );
    }
    let transitions = ev.transitions;
    for t in &transitions {
        let summary = t.annotations.get("summary").cloned().unwrap_or_default();
        let route = t.route.as_deref().unwrap_or("-");
        match t.to {
            rules::eval::Phase::Firing => {
                tracing::warn!(alert = %t.rule, fingerprint = %t.fingerprint, route, value = ?t.value, "FIRING: {summary}")
            }
            rules::eval::Phase::Resolved => {
                tracing::info!(alert = %t.rule, fingerprint = %t.fingerprint, route, "RESOLVED: {summary}")
            }
            _ => {
                tracing::info!(alert = %t.rule, fingerprint = %t.fingerprint, from = ?t.from, to = ?t.to, "alert state changed")
            }
        }
    }
    let (saved, mut firing) = {
        let mut a = shared.alerting.lock().await;
        let a = &mut *a;
        a.state = ev.state;
        a.evaluations += 1;
        a.slos = Some(Arc::new(SloFigures {
            at: now,
            slos: ev.slos,
        }));
        for t in &transitions {
            a.recent.push_back(t.clone());
            while a.recent.len() > RECENT_TRANSITIONS {
                a.recent.pop_front();
            }
        }
        let saved = serde_json::to_value(&a.state);
        let last = shared.last.read().expect("last lock");
        let firing = crate::notify::incoming::firing_alerts(
            a.state.alerts.values(),
            &cfg.rules,
            &last,
            &cfg.public_url(shared.addr),
        );
        (saved, firing)
    };
    match saved {
        Ok(v) => {
            if let Err(e) = shared.store.save_alert_state(ALERT_STATE_ID, &v, now).await {
                tracing::error!(error = %e, "alert state not saved");
            }
        }
        Err(e) => tracing::error!(error = %e, "alert state not serializable"),
    }
    if cfg.mute.watchdog.is_some() {
        firing.push(crate::mute::watchdog::alert(shared.started_at));
    }
    // The alert state is saved before any notification is queued: after a crash the restored
    // state and the notification log agree on what was already said.
    if let Err(e) = shared.notifier.sync(&firing).await {
        tracing::error!(error = %e, "notifications not queued; retrying at the next flush");
    }
    transitions
}

async fn evaluate_loop(shared: Arc<Shared>) {
    let mut interval = shared.config().rules.interval;
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        evaluate(&shared).await;
        let now_interval = shared.config().rules.interval;
        if now_interval != interval {
            interval = now_interval;
            tick = tokio::time::interval(interval);
            tick.tick().await;
        }
    }
}

/// Once a minute: freeze histogram slices; once an hour: prune runs past the retention.
async fn maintain(shared: Arc<Shared>) {
    let mut tick = tokio::time::interval(Duration::from_secs(60));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut n: u64 = 0;
    loop {
        tick.tick().await;
        let now = shared.clock.now();
        shared.registry.maintain(now);
        if n.is_multiple_of(60) {
            let retention = shared.config().retention;
            let cutoff = now - chrono::Duration::from_std(retention).unwrap_or_default();
            match shared.store.prune(cutoff).await {
                Ok(p) => {
                    for path in &p.artifact_paths {
                        let _ = std::fs::remove_file(path);
                    }
                    if p.runs > 0 {
                        tracing::info!(runs = p.runs, "pruned runs past the retention");
                    }
                }
                Err(e) => tracing::warn!(error = %e, "pruning failed"),
            }
            // Delivered and refused notifications follow the same retention; pending ones stay.
            match shared.store.prune_outbox(cutoff).await {
                Ok(0) => {}
                Ok(n) => {
                    tracing::info!(notifications = n, "pruned notifications past the retention")
                }
                Err(e) => tracing::warn!(error = %e, "pruning the outbox failed"),
            }
        }
        n += 1;
    }
}
