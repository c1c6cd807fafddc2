//! Every recorded run exported as one trace over OTLP/HTTP (protobuf): a root span for the run
//! and a child span per step, with the run's own timestamps and the ids its requests carried
//! (see `context`).
//!
//! The run is turned into spans by a pure function ([`run_spans`]); the [`Exporter`] queues them
//! (bounded) for one background task that posts whatever queued up as one batch through
//! `opentelemetry-otlp`'s exporter over synmon's own reqwest client (ring-only rustls). A run is
//! never delayed by export: a full queue drops the run's spans (counted, logged once per
//! episode), a failed post is counted and logged, and the run goes on being recorded as usual.
//! Shutdown posts what is queued, within [`SHUTDOWN_WAIT`].

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use opentelemetry::trace::{SpanContext, SpanId, SpanKind, Status, TraceFlags};
use opentelemetry::{InstrumentationScope, KeyValue};
use opentelemetry_otlp::{WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{SpanData, SpanEvents, SpanExporter, SpanLinks};
use tokio::sync::{mpsc, oneshot};

use super::config::OtlpConfig;
use super::context::{parse_trace_id, root_span_id, step_span_id, tracestate_value};
use crate::config::Redactor;
use crate::metrics::catalog::TRACE_EXPORTS;
use crate::metrics::registry::Registry;
use crate::outcome::Outcome;
use crate::run::{RunResult, Timing};

/// Runs waiting to be posted. At one run a second this is over half an hour of a collector
/// that does not answer; beyond it runs are dropped rather than held in memory.
pub const QUEUE_RUNS: usize = 2_048;

/// Runs posted in one request at most (a few hundred KB of protobuf).
const BATCH_RUNS: usize = 256;

/// How long one post (with the exporter's own retries) may take.
pub const EXPORT_TIMEOUT: Duration = Duration::from_secs(5);

/// How long shutdown waits for the queued runs to be posted (the daemon stops within 10 s).
pub const SHUTDOWN_WAIT: Duration = Duration::from_secs(5);

/// What the exporter did so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExportStats {
    /// Runs the collector accepted.
    pub exported: u64,
    /// Runs dropped because the queue was full or the exporter had stopped.
    pub dropped: u64,
    /// Runs in posts that failed (collector down, refused, timed out).
    pub failed: u64,
}

#[derive(Debug, Default)]
struct Counters {
    exported: AtomicU64,
    dropped: AtomicU64,
    failed: AtomicU64,
    /// Dropping now: logged once when it starts, once when it ends.
    dropping: AtomicBool,
    /// Where `synmon_trace_exports_total` is counted, besides the fields above.
    registry: Option<Registry>,
}

impl Counters {
    fn add(&self, result: &str, runs: u64) {
        let field = match result {
            "exported" => &self.exported,
            "dropped" => &self.dropped,
            _ => &self.failed,
        };
        field.fetch_add(runs, Ordering::Relaxed);
        if let Some(r) = &self.registry
            && let Err(e) = r.incr(TRACE_EXPORTS.name, &[("result", result)], runs)
        {
            tracing::debug!(error = %e, "trace export count not recorded");
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("OTLP exporter: {0}")]
    Build(String),
}

enum Msg {
    Run(Vec<SpanData>),
    /// Post everything queued before this, answer, and stop.
    Stop(oneshot::Sender<()>),
}

/// The OTLP trace exporter of a running daemon: cheap to call from the recorder, never blocks.
pub struct Exporter {
    tx: mpsc::Sender<Msg>,
    counters: Arc<Counters>,
    task: Mutex<Option<tokio::task::JoinHandle<()>>>,
    scope: InstrumentationScope,
}

impl std::fmt::Debug for Exporter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Exporter")
            .field("stats", &self.stats())
            .finish()
    }
}

/// The instrumentation scope every exported span names: synmon and its version.
pub fn instrumentation_scope() -> InstrumentationScope {
    InstrumentationScope::builder("synmon")
        .with_version(env!("CARGO_PKG_VERSION"))
        .build()
}

/// The resource every exported span belongs to: service `synmon`, this replica and location.
pub fn resource(replica: &str, location: &str) -> Resource {
    Resource::builder_empty()
        .with_service_name("synmon")
        .with_attributes([
            KeyValue::new("service.version", env!("CARGO_PKG_VERSION")),
            KeyValue::new("service.instance.id", replica.to_string()),
            KeyValue::new("synmon.location", location.to_string()),
        ])
        .build()
}

impl Exporter {
    /// Starts the export task (inside a Tokio runtime) posting to `cfg.endpoint`. `redactor`
    /// scrubs every secret of the config (the header values among them) from export errors;
    /// `registry`, when given, counts `synmon_trace_exports_total` (its three series from 0).
    pub fn start(
        cfg: &OtlpConfig,
        resource: &Resource,
        redactor: Redactor,
        registry: Option<Registry>,
    ) -> Result<Exporter, ExportError> {
        crate::tls::install();
        let client = reqwest::Client::builder()
            .user_agent(concat!("synmon/", env!("CARGO_PKG_VERSION")))
            .timeout(EXPORT_TIMEOUT)
            .build()
            .map_err(|e| ExportError::Build(e.to_string()))?;
        let headers: HashMap<String, String> = cfg
            .headers
            .iter()
            .map(|(k, v)| (k.clone(), v.expose().to_string()))
            .collect();
        let mut otlp = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_http_client(client)
            .with_endpoint(cfg.endpoint.as_str())
            .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
            .with_timeout(EXPORT_TIMEOUT)
            .with_headers(headers)
            .build()
            .map_err(|e| ExportError::Build(redactor.redact(&e.to_string())))?;
        otlp.set_resource(resource);
        let (tx, rx) = mpsc::channel(QUEUE_RUNS);
        let counters = Arc::new(Counters {
            registry,
            ..Counters::default()
        });
        for result in ["exported", "dropped", "failed"] {
            counters.add(result, 0);
        }
        let task = tokio::spawn(post_batches(otlp, rx, counters.clone(), redactor));
        tracing::info!(endpoint = %cfg.endpoint, "exporting runs as traces over OTLP/HTTP");
        Ok(Exporter {
            tx,
            counters,
            task: Mutex::new(Some(task)),
            scope: instrumentation_scope(),
        })
    }

    /// Queues `run` for export; returns at once. A run without a valid trace id is skipped; a
    /// full queue (or a stopped exporter) drops it, counted.
    pub fn export(&self, run: &RunResult) {
        let Some(spans) = run_spans(run, &self.scope) else {
            tracing::debug!(check = %run.check, run_id = %run.run_id, "run without a trace id: not exported");
            return;
        };
        match self.tx.try_send(Msg::Run(spans)) {
            Ok(()) => {
                if self.counters.dropping.swap(false, Ordering::Relaxed) {
                    tracing::info!(
                        dropped = self.counters.dropped.load(Ordering::Relaxed),
                        "trace export queue has room again"
                    );
                }
            }
            Err(_) => {
                self.counters.add("dropped", 1);
                if !self.counters.dropping.swap(true, Ordering::Relaxed) {
                    tracing::warn!(
                        queue = QUEUE_RUNS,
                        "trace export queue full (or stopped): runs are dropped from export until it drains; the runs themselves are recorded as usual"
                    );
                }
            }
        }
    }

    /// What was exported, dropped and failed so far.
    pub fn stats(&self) -> ExportStats {
        ExportStats {
            exported: self.counters.exported.load(Ordering::Relaxed),
            dropped: self.counters.dropped.load(Ordering::Relaxed),
            failed: self.counters.failed.load(Ordering::Relaxed),
        }
    }

    /// Posts what is queued and stops, within [`SHUTDOWN_WAIT`]; runs exported later are
    /// dropped. Calling it twice is harmless.
    pub async fn shutdown(&self) {
        let Some(task) = self.task.lock().expect("exporter task lock").take() else {
            return;
        };
        let (ack, done) = oneshot::channel();
        let flushed = tokio::time::timeout(SHUTDOWN_WAIT, async {
            if self.tx.send(Msg::Stop(ack)).await.is_ok() {
                let _ = done.await;
            }
        })
        .await;
        if flushed.is_err() {
            tracing::warn!(
                wait_ms = crate::config::duration::millis_u64(SHUTDOWN_WAIT),
                "trace export did not finish in time at shutdown; the rest is dropped"
            );
            task.abort();
        }
        let s = self.stats();
        tracing::info!(
            exported = s.exported,
            dropped = s.dropped,
            failed = s.failed,
            "trace export stopped"
        );
    }
}

/// The export task: whatever queued up while the last post ran goes in the next one.
async fn post_batches(
    otlp: opentelemetry_otlp::SpanExporter,
    mut rx: mpsc::Receiver<Msg>,
    counters: Arc<Counters>,
    redactor: Redactor,
) {
    let mut msgs = Vec::with_capacity(BATCH_RUNS);
    let mut failing = false;
    loop {
        if rx.recv_many(&mut msgs, BATCH_RUNS).await == 0 {
            break;
        }
        let mut stop = None;
        let mut runs = 0u64;
        let mut batch = Vec::new();
        for m in msgs.drain(..) {
            match m {
                Msg::Run(spans) => {
                    runs += 1;
                    batch.extend(spans);
                }
                Msg::Stop(ack) => stop = Some(ack),
            }
        }
        if !batch.is_empty() {
            match otlp.export(batch).await {
                Ok(()) => {
                    counters.add("exported", runs);
                    if failing {
                        tracing::info!("the OTLP collector takes traces again");
                        failing = false;
                    }
                }
                Err(e) => {
                    counters.add("failed", runs);
                    let error = redactor.redact(&e.to_string());
                    if failing {
                        tracing::debug!(runs, %error, "trace export failed again");
                    } else {
                        tracing::warn!(runs, %error, "trace export failed: these runs are not in the tracing backend (they are stored as usual)");
                        failing = true;
                    }
                }
            }
        }
        if let Some(ack) = stop {
            let _ = ack.send(());
            break;
        }
    }
    let _ = otlp.shutdown();
}

/// Milliseconds as a duration; negative, NaN or absurd values count as zero.
fn millis(ms: f64) -> Duration {
    Duration::try_from_secs_f64(ms / 1000.0).unwrap_or_default()
}

fn status(outcome: Outcome, error: Option<&str>) -> Status {
    match outcome {
        Outcome::Pass => Status::Ok,
        o => Status::error(error.map_or_else(|| o.as_str().to_string(), str::to_string)),
    }
}

/// The `synmon.step.timing` attribute: how a step's latency was measured.
fn timing(t: Timing) -> &'static str {
    match t {
        Timing::InPage => "in_page",
        Timing::InPageNavigation => "in_page_navigation",
        Timing::Outside => "outside",
        Timing::Client => "client",
    }
}

/// `run` as spans: the root (the run) first, then one span per step in run order. `None` when
/// the run has no valid trace id.
///
/// Times: the root starts at `started_at` and lasts `total_ms`. Steps carry no start times of
/// their own: they are laid end to end from the run's start (after the browser session's
/// creation, for journeys), each as long as its measured latency. The ids are the ones the
/// run's requests carried: the root's and step `i`'s from [`super::context`].
pub fn run_spans(run: &RunResult, scope: &InstrumentationScope) -> Option<Vec<SpanData>> {
    let trace_id = parse_trace_id(run.trace_id.as_deref()?)?;
    let trace_state = opentelemetry::trace::TraceState::from_key_value([(
        super::context::TRACESTATE_KEY,
        tracestate_value(&run.check, &run.location).as_str(),
    )])
    .unwrap_or_default();
    let ctx = |span: SpanId| {
        SpanContext::new(
            trace_id,
            span,
            TraceFlags::SAMPLED,
            false,
            trace_state.clone(),
        )
    };
    let start = SystemTime::from(run.started_at);
    let root_id = root_span_id(trace_id);
    let mut attributes = vec![
        KeyValue::new("synmon.check", run.check.clone()),
        KeyValue::new("synmon.check.kind", run.kind.as_str()),
        KeyValue::new("synmon.location", run.location.clone()),
        KeyValue::new("synmon.target", run.target.clone()),
        KeyValue::new("synmon.outcome", run.outcome.as_str()),
        KeyValue::new("synmon.attempt", i64::from(run.attempt)),
        KeyValue::new("synmon.run_id", run.run_id.clone()),
        KeyValue::new("synmon.latency_ms", run.slo_latency_ms()),
    ];
    if run.cancelled {
        attributes.push(KeyValue::new("synmon.cancelled", true));
    }
    if run.session_wait_ms > 0.0 {
        attributes.push(KeyValue::new("synmon.session_wait_ms", run.session_wait_ms));
    }
    if run.session_create_ms > 0.0 {
        attributes.push(KeyValue::new(
            "synmon.session_create_ms",
            run.session_create_ms,
        ));
    }
    if let Some(s) = &run.failed_step {
        attributes.push(KeyValue::new("synmon.failed_step", s.clone()));
    }
    if let Some(e) = &run.error {
        attributes.push(KeyValue::new("synmon.error", e.clone()));
    }
    let mut spans = Vec::with_capacity(run.steps.len() + 1);
    spans.push(SpanData {
        span_context: ctx(root_id),
        parent_span_id: SpanId::INVALID,
        parent_span_is_remote: false,
        span_kind: SpanKind::Internal,
        name: Cow::Owned(format!("{} {}", run.kind.as_str(), run.check)),
        start_time: start,
        end_time: start + millis(run.total_ms),
        attributes,
        dropped_attributes_count: 0,
        events: SpanEvents::default(),
        links: SpanLinks::default(),
        status: status(run.outcome, run.error.as_deref()),
        instrumentation_scope: scope.clone(),
    });
    let mut at = start + millis(run.session_create_ms);
    for (i, s) in run.steps.iter().enumerate() {
        let end = at + millis(s.latency_ms);
        let mut attributes = vec![
            KeyValue::new("synmon.step.index", i as i64),
            KeyValue::new("synmon.step.action", s.action.clone()),
            KeyValue::new("synmon.step.latency_ms", s.latency_ms),
            KeyValue::new("synmon.step.timing", timing(s.timing)),
            KeyValue::new("synmon.step.timed", s.timed),
            KeyValue::new("synmon.step.outcome", s.outcome.as_str()),
        ];
        if let Some(e) = &s.error {
            attributes.push(KeyValue::new("synmon.step.error", e.clone()));
        }
        spans.push(SpanData {
            span_context: ctx(step_span_id(trace_id, i)),
            parent_span_id: root_id,
            parent_span_is_remote: false,
            // An `http` step is the request itself: the target's server span is its child.
            span_kind: if s.action == "http" {
                SpanKind::Client
            } else {
                SpanKind::Internal
            },
            name: Cow::Owned(s.name.clone()),
            start_time: at,
            end_time: end,
            attributes,
            dropped_attributes_count: 0,
            events: SpanEvents::default(),
            links: SpanLinks::default(),
            status: status(s.outcome, s.error.as_deref()),
            instrumentation_scope: scope.clone(),
        });
        at = end;
    }
    Some(spans)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run::{CheckKind, StepResult};

    fn step(name: &str, action: &str, ms: f64, outcome: Outcome) -> StepResult {
        StepResult {
            name: name.into(),
            action: action.into(),
            latency_ms: ms,
            timed: true,
            timing: Timing::Outside,
            outcome,
            error: (outcome != Outcome::Pass).then(|| "HTTP 503".to_string()),
            navigation: None,
        }
    }

    fn since(later: SystemTime, earlier: SystemTime) -> Duration {
        later.duration_since(earlier).unwrap()
    }

    fn attr<'a>(s: &'a SpanData, key: &str) -> Option<&'a opentelemetry::Value> {
        s.attributes
            .iter()
            .find(|kv| kv.key.as_str() == key)
            .map(|kv| &kv.value)
    }

    #[test]
    fn a_run_is_a_root_span_with_a_child_per_step_end_to_end() {
        let started = "2026-11-26T10:00:00Z".parse().unwrap();
        let mut r = RunResult::begin("login", CheckKind::Journey, "staging", "eu", started);
        r.trace_id = Some("0af7651916cd43dd8448eb211c80319c".into());
        r.attempt = 2;
        r.session_create_ms = 300.0;
        r.total_ms = 1000.0;
        r.outcome = Outcome::Fail;
        r.error = Some("open: HTTP 503".into());
        r.steps = vec![
            step("goto", "goto", 100.0, Outcome::Pass),
            step("api", "http", 250.0, Outcome::Fail),
        ];
        let spans = run_spans(&r, &instrumentation_scope()).unwrap();
        assert_eq!(spans.len(), 3);
        let (root, goto, api) = (&spans[0], &spans[1], &spans[2]);
        let t = parse_trace_id("0af7651916cd43dd8448eb211c80319c").unwrap();
        assert!(spans.iter().all(|s| s.span_context.trace_id() == t));
        assert_eq!(root.span_context.span_id(), root_span_id(t));
        assert_eq!(root.parent_span_id, SpanId::INVALID);
        assert_eq!(root.name, "journey login");
        assert_eq!(root.start_time, SystemTime::from(started));
        assert_eq!(
            since(root.end_time, root.start_time),
            Duration::from_secs(1)
        );
        assert_eq!(attr(root, "synmon.attempt"), Some(&2i64.into()));
        assert_eq!(attr(root, "synmon.outcome"), Some(&"fail".into()));
        assert_eq!(root.status, Status::error("open: HTTP 503".to_string()));
        assert_eq!(goto.parent_span_id, root_span_id(t));
        assert_eq!(goto.span_context.span_id(), step_span_id(t, 0));
        assert_eq!(
            since(goto.start_time, root.start_time),
            Duration::from_millis(300)
        );
        assert_eq!(api.start_time, goto.end_time);
        assert_eq!(
            since(api.end_time, api.start_time),
            Duration::from_millis(250)
        );
        assert_eq!(api.span_kind, SpanKind::Client);
        assert_eq!(goto.span_kind, SpanKind::Internal);
        assert_eq!(attr(api, "synmon.step.timing"), Some(&"outside".into()));
        assert_eq!(attr(api, "synmon.step.error"), Some(&"HTTP 503".into()));
        assert_eq!(goto.status, Status::Ok);
        assert_eq!(
            root.span_context.trace_state().get("synmon"),
            Some("c:login;l:eu")
        );
    }

    #[test]
    fn a_run_without_a_valid_trace_id_is_not_exported() {
        let started = "2026-11-26T10:00:00Z".parse().unwrap();
        let mut r = RunResult::begin("x", CheckKind::Tcp, "staging", "eu", started);
        assert!(run_spans(&r, &instrumentation_scope()).is_none());
        r.trace_id = Some("nope".into());
        assert!(run_spans(&r, &instrumentation_scope()).is_none());
    }
}
