//! The runner side: the checks of a config become scheduled specs, and the engine runs each
//! attempt (browser journeys, HTTP, SQL, TCP, DNS, TLS). What a run records lives in
//! `recorder.rs`; when it runs is the scheduler's business.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Semaphore, mpsc};
use tokio::time::Instant;

use crate::config::Target;
use crate::journey::{Runner, Vars};
use crate::metrics::catalog;
use crate::metrics::statsd::StatsdExporter;
use crate::outcome::Outcome;
use crate::probes::http::HttpProber;
use crate::probes::net;
use crate::probes::sql::SqlSource;
use crate::run::{CheckKind, RunResult};
use crate::scheduler::{Attempt, BoxFuture, CheckSpec, Executor, Scheduler};
use crate::settings::Config;
use crate::store::StoredRun;
use crate::view::Shared;

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
    pub(super) config: Arc<Config>,
    pub(super) target: Target,
    pub(super) runner: Runner,
    pub(super) sessions: Arc<Semaphore>,
    pub(super) http: HttpProber,
    pub(super) sql: Option<SqlSource>,
    pub(super) shared: Arc<Shared>,
    pub(super) statsd: Option<Arc<StatsdExporter>>,
    pub(super) writes: mpsc::UnboundedSender<StoredRun>,
    /// Where each check's definition sits in its config list: a run finds it without scanning
    /// every check (1,000 checks a second would otherwise scan a million names a second).
    pub(super) index: HashMap<(CheckKind, String), usize>,
}

/// Positions of every check definition, by kind and name.
pub(super) fn index_checks(cfg: &Config) -> HashMap<(CheckKind, String), usize> {
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

    pub(super) fn now(&self) -> chrono::DateTime<chrono::Utc> {
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

pub(super) struct Running {
    pub(super) scheduler: Scheduler,
    pub(super) engine: Arc<Engine>,
    /// Sends gauges (SQL metrics, the SWIS p95) to DogStatsD every 10 s and flushes the buffer.
    pub(super) statsd_task: Option<tokio::task::JoinHandle<()>>,
}

impl Running {
    pub(super) async fn stop(self) {
        self.scheduler.stop().await;
        if let Some(t) = self.statsd_task {
            t.abort();
        }
        if let Some(s) = &self.engine.statsd {
            let _ = s.flush();
        }
    }
}
