//! The runner side: the checks of a config become scheduled specs, and the engine runs each
//! attempt (browser journeys, HTTP, SQL, TCP, DNS, TLS). What a run records lives in
//! `recorder.rs`; when it runs is the scheduler's business.

use std::collections::HashMap;
use std::sync::Arc;

use crate::checks::{CheckDef, Context, HttpProber, SessionPool, Sessions, SqlSource};

use crate::config::Target;
use crate::journey::{Runner, Vars};
use crate::metrics::statsd::StatsdExporter;
use crate::outcome::Outcome;
use crate::run::{CheckKind, RunResult};
use crate::scheduler::{Attempt, BoxFuture, CheckSpec, Executor, Scheduler};
use crate::settings::Config;
use crate::view::Shared;

/// Every scheduled check of a config.
pub fn check_specs(cfg: &Config) -> Vec<CheckSpec> {
    cfg.checks
        .defs()
        .iter()
        .map(|d| CheckSpec {
            name: d.name().to_string(),
            kind: d.kind(),
            schedule: d.schedule().clone(),
        })
        .collect()
}

/// Runs checks and records their results: the scheduler's executor and recorder.
pub struct Engine {
    pub(super) config: Arc<Config>,
    pub(super) target: Target,
    pub(super) runner: Runner,
    pub(super) sessions: SessionPool,
    pub(super) http: HttpProber,
    pub(super) sql: Option<SqlSource>,
    /// The template variables of the target, the same for every run of this config.
    pub(super) vars: Vars,
    pub(super) shared: Arc<Shared>,
    pub(super) statsd: Option<Arc<StatsdExporter>>,
    pub(super) writes: super::writer::RunQueue,
    /// Every scheduled check's definition by kind and name: a run finds it without scanning
    /// every check (1,000 checks a second would otherwise scan a million names a second).
    pub(super) index: HashMap<(CheckKind, String), CheckDef>,
    /// Every recorded run goes out as a trace (`exporters.otlp`); `None`: export is off.
    pub(super) traces: Option<Arc<crate::trace::Exporter>>,
}

/// Every scheduled check's definition, by kind and name.
pub(super) fn index_checks(cfg: &Config) -> HashMap<(CheckKind, String), CheckDef> {
    cfg.checks
        .defs()
        .into_iter()
        .map(|d| ((d.kind(), d.name().to_string()), d))
        .collect()
}

impl Engine {
    pub(super) fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.shared.clock.now()
    }

    /// What an attempt borrows from the engine to run; `retest_follows`: a failure of it is
    /// retested.
    fn context(&self, retest_follows: bool) -> Context<'_> {
        Context {
            location: &self.config.location,
            journeys: &self.config.journeys,
            target: &self.target,
            vars: &self.vars,
            clock: &*self.shared.clock,
            runner: &self.runner,
            sessions: Some(Sessions {
                pool: &self.sessions,
                retest_follows,
            }),
            http: &self.http,
            sql: self.sql.as_ref(),
            registry: Some(&self.shared.registry),
        }
    }
}

impl Executor for Engine {
    fn execute<'a>(&'a self, check: &'a CheckSpec, a: Attempt) -> BoxFuture<'a, RunResult> {
        let span = tracing::info_span!("attempt", check = %check.name, attempt = a.attempt);
        Box::pin(tracing::Instrument::instrument(
            async move {
                let cx = self.context(a.retest_follows);
                match self.index.get(&(check.kind, check.name.clone())) {
                    // Leave the scheduler's timeout to catch a stuck probe; the probe gets
                    // slightly less.
                    Some(def) => def.run(&cx, a.timeout.mul_f64(0.95)).await,
                    None => {
                        let mut r = cx.begin(&check.name, check.kind);
                        r.outcome = Outcome::Error;
                        r.error = Some(format!("check `{}` is not defined", check.name));
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
        if let Some(t) = &self.engine.traces {
            t.shutdown().await;
        }
    }
}
