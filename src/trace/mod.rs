//! W3C trace context on every request a check makes, and every run exported as a trace.
//!
//! - `context`: a run's trace id, the span ids derived from it, the `traceparent` and
//!   `tracestate` values, the origins allowed to receive them, and the run-scoped context the
//!   journey runner's requests read;
//! - `export`: a run as OTLP spans (root + one per step) and the bounded, batching exporter
//!   the recorder hands every run to;
//! - `config`: `exporters.otlp`, `tracing` and targets' `trace_origins`.
//!
//! It depends on the run model and the config's ground floor only; probes, the recorder, the
//! pages and the notifications call into it.

pub mod config;
pub mod context;
pub mod export;

pub use config::{OtlpConfig, RawOtlp, RawTracing, TracingConfig, trace_url};
pub use context::{
    RunTrace, TRACEPARENT, TRACESTATE, TraceHeaders, current, current_trace_id, enter_step,
    new_trace_id, propagate, scope,
};
pub use export::{ExportStats, Exporter};
