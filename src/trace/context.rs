//! A run's W3C trace context: its ids, the `traceparent` and `tracestate` values its requests
//! carry, and which origins may receive them.
//!
//! Ids: the trace id is random per run (stored with the run). Span ids are not stored: they are
//! derived from the trace id (the root span from index 0, step `i`'s span from `i + 1`), so the
//! requests a probe sends and the spans the exporter builds later name the same spans without
//! either one keeping a table of ids.
//!
//! Where the headers go: only to origins in the run's allow-list, the target's `base_url`
//! origin plus its `trace_origins`. A third-party origin (a CDN, a payment provider, anything a
//! journey's `http:` step calls that is not the target) never learns synmon's trace ids.
//!
//! The journey runner scopes a run's context to the run's task ([`scope`]); an `http:` step then
//! adds the headers with [`propagate`] without the context being threaded through every call.
//! Requests hang under the root span unless the runner names the current step
//! ([`enter_step`]). What this module never does: send anything, or read the clock.

use std::sync::atomic::{AtomicUsize, Ordering};

use opentelemetry::trace::{SpanId, TraceId};

use crate::config::Target;

/// The W3C header that carries the trace id and the parent span id.
pub const TRACEPARENT: &str = "traceparent";
/// The W3C header that carries vendor entries; synmon's is `synmon=`.
pub const TRACESTATE: &str = "tracestate";
/// synmon's key in `tracestate`.
pub const TRACESTATE_KEY: &str = "synmon";

/// A new random trace id, as its 32 lowercase hex digits (never all zeros: that is invalid).
pub fn new_trace_id() -> String {
    let id = loop {
        let v: u128 = rand::random();
        if v != 0 {
            break v;
        }
    };
    TraceId::from(id).to_string()
}

/// A trace id written as 32 hex digits, not all zeros (the W3C form), else `None`.
pub fn parse_trace_id(hex: &str) -> Option<TraceId> {
    if hex.len() != 32 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    TraceId::from_hex(hex)
        .ok()
        .filter(|t| *t != TraceId::INVALID)
}

/// Span `n` of a trace: 0 is the run's root span, `i + 1` is step `i`'s span. A bijection of
/// `n` for one trace (splitmix64's finalizer over the trace id mixed with `n`), so no two spans
/// of a run share an id.
fn derived_span_id(trace: TraceId, n: u64) -> SpanId {
    let t = u128::from_be_bytes(trace.to_bytes());
    let mut x =
        (t as u64) ^ ((t >> 64) as u64).rotate_left(29) ^ n.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^= x >> 31;
    SpanId::from(if x == 0 { 1 } else { x })
}

/// The root span of a run's trace.
pub fn root_span_id(trace: TraceId) -> SpanId {
    derived_span_id(trace, 0)
}

/// The span of step `index` (0-based, the order of the run's `steps`).
pub fn step_span_id(trace: TraceId, index: usize) -> SpanId {
    derived_span_id(trace, index as u64 + 1)
}

/// `00-<trace id>-<parent span id>-01`: version 00, sampled. Always sampled: the trace id is
/// shown on the run page and in alerts, so the target's own spans of a synthetic request are
/// worth keeping even when synmon does not export its side.
pub fn traceparent(trace: TraceId, parent: SpanId) -> String {
    format!("00-{trace}-{parent}-01")
}

/// synmon's `tracestate` value: `c:<check>;l:<location>`, each reduced to the characters a
/// list member allows everywhere (letters, digits, `_`, `-`, `.`; others become `_`) and the
/// whole kept within the spec's 256 characters.
pub fn tracestate_value(check: &str, location: &str) -> String {
    let clean = |s: &str| -> String {
        s.chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.') {
                    c
                } else {
                    '_'
                }
            })
            .collect()
    };
    let mut v = format!("c:{};l:{}", clean(check), clean(location));
    v.truncate(256);
    v
}

/// The two header values a request of a run carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceHeaders {
    pub traceparent: String,
    pub tracestate: String,
}

/// The trace context of one run: what its requests carry and where they may carry it.
#[derive(Debug)]
pub struct RunTrace {
    trace_id: TraceId,
    /// synmon's `tracestate` entry value (`c:...;l:...`).
    state: String,
    /// The origins that may receive the headers: the target's and its `trace_origins`.
    allowed: Vec<url::Origin>,
    /// The step whose span requests hang under; `usize::MAX`: the root span. Shared by the
    /// clones of one run's trace (the browser's request interception holds one).
    step: std::sync::Arc<AtomicUsize>,
}

impl Clone for RunTrace {
    fn clone(&self) -> RunTrace {
        RunTrace {
            trace_id: self.trace_id,
            state: self.state.clone(),
            allowed: self.allowed.clone(),
            step: self.step.clone(),
        }
    }
}

impl RunTrace {
    /// A new trace (a fresh trace id) for a run of `check` from `location` against `target`.
    pub fn new(check: &str, location: &str, target: &Target) -> RunTrace {
        let id = parse_trace_id(&new_trace_id()).expect("a fresh id is valid");
        RunTrace::with_id(id, check, location, target)
    }

    /// The trace of a run whose trace id is known (`trace_id` as 32 hex digits); `None` when
    /// the id is missing or malformed.
    pub fn of(
        trace_id: Option<&str>,
        check: &str,
        location: &str,
        target: &Target,
    ) -> Option<RunTrace> {
        trace_id
            .and_then(parse_trace_id)
            .map(|id| RunTrace::with_id(id, check, location, target))
    }

    fn with_id(trace_id: TraceId, check: &str, location: &str, target: &Target) -> RunTrace {
        let mut allowed = vec![target.base_url.origin()];
        for o in &target.trace_origins {
            if !allowed.contains(o) {
                allowed.push(o.clone());
            }
        }
        RunTrace {
            trace_id,
            state: tracestate_value(check, location),
            allowed,
            step: std::sync::Arc::new(AtomicUsize::new(usize::MAX)),
        }
    }

    pub fn trace_id(&self) -> TraceId {
        self.trace_id
    }

    /// The trace id as stored with the run (32 lowercase hex digits).
    pub fn trace_id_hex(&self) -> String {
        self.trace_id.to_string()
    }

    /// The run's root span.
    pub fn root_span_id(&self) -> SpanId {
        root_span_id(self.trace_id)
    }

    /// The span of step `index`, for requests made by that step (the browser's, later).
    pub fn step_span_id(&self, index: usize) -> SpanId {
        step_span_id(self.trace_id, index)
    }

    /// The `tracestate` header value (`synmon=c:...;l:...`).
    pub fn tracestate(&self) -> String {
        format!("{TRACESTATE_KEY}={}", self.state)
    }

    /// The header values of a request whose parent span is `parent`, whatever its origin: for
    /// callers that apply the allow-list themselves (the browser's request interception).
    pub fn headers(&self, parent: SpanId) -> TraceHeaders {
        TraceHeaders {
            traceparent: traceparent(self.trace_id, parent),
            tracestate: self.tracestate(),
        }
    }

    /// The header values of a request made by step `index`.
    pub fn step_headers(&self, index: usize) -> TraceHeaders {
        self.headers(self.step_span_id(index))
    }

    /// The origins whose requests carry the headers.
    pub fn allowed_origins(&self) -> &[url::Origin] {
        &self.allowed
    }

    /// Whether `url` may receive the headers: its origin (scheme, host, port) is the target's
    /// or one of the target's `trace_origins`. A URL that does not parse never does.
    pub fn allows(&self, url: &str) -> bool {
        url::Url::parse(url).is_ok_and(|u| self.allowed.contains(&u.origin()))
    }

    /// The header values for a request to `url` hanging under `parent`, when `url` is allowed.
    pub fn headers_for(&self, url: &str, parent: SpanId) -> Option<TraceHeaders> {
        self.allows(url).then(|| self.headers(parent))
    }

    /// Requests from now on hang under step `index`'s span.
    pub fn enter_step(&self, index: usize) {
        self.step.store(index, Ordering::Relaxed);
    }

    /// The span requests hang under now: the current step's, else the root.
    pub fn current_parent(&self) -> SpanId {
        match self.step.load(Ordering::Relaxed) {
            usize::MAX => self.root_span_id(),
            i => self.step_span_id(i),
        }
    }

    /// Adds the headers to `req` when `url` is allowed; leaves it as it is otherwise.
    pub fn apply(
        &self,
        req: reqwest::RequestBuilder,
        url: &str,
        parent: SpanId,
    ) -> reqwest::RequestBuilder {
        match self.headers_for(url, parent) {
            Some(h) => req
                .header(TRACEPARENT, h.traceparent)
                .header(TRACESTATE, h.tracestate),
            None => req,
        }
    }
}

tokio::task_local! {
    static CURRENT: RunTrace;
}

/// Runs `fut` with `trace` as the current run's trace context (see [`current`]).
pub async fn scope<F: std::future::Future>(trace: RunTrace, fut: F) -> F::Output {
    CURRENT.scope(trace, fut).await
}

/// The trace context of the run this task is running, if it has one.
pub fn current() -> Option<RunTrace> {
    CURRENT.try_with(Clone::clone).ok()
}

/// The current run's trace id (32 hex digits), if the task runs one.
pub fn current_trace_id() -> Option<String> {
    CURRENT.try_with(RunTrace::trace_id_hex).ok()
}

/// Requests of the current run hang under step `index`'s span from now on (the journey runner
/// calls this as each step starts); no effect outside a run.
pub fn enter_step(index: usize) {
    let _ = CURRENT.try_with(|t| t.enter_step(index));
}

/// Adds the current run's headers to a request to `url` when its origin is allowed; leaves the
/// request as it is outside a run or for any other origin.
pub fn propagate(req: reqwest::RequestBuilder, url: &str) -> reqwest::RequestBuilder {
    match CURRENT.try_with(|t| t.headers_for(url, t.current_parent())) {
        Ok(Some(h)) => req
            .header(TRACEPARENT, h.traceparent)
            .header(TRACESTATE, h.tracestate),
        _ => req,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(base: &str, extra: &[&str]) -> Target {
        Target {
            name: "staging".into(),
            base_url: base.parse().unwrap(),
            trace_origins: extra
                .iter()
                .map(|o| url::Url::parse(o).unwrap().origin())
                .collect(),
        }
    }

    #[test]
    fn ids_are_w3c_shaped_and_span_ids_are_distinct_per_step() {
        let id = new_trace_id();
        assert_eq!(id.len(), 32);
        assert!(
            id.bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        );
        let t = parse_trace_id(&id).unwrap();
        let mut spans: Vec<SpanId> = (0..1000).map(|i| step_span_id(t, i)).collect();
        spans.push(root_span_id(t));
        let n = spans.len();
        spans.sort_by_key(|s| s.to_string());
        spans.dedup();
        assert_eq!(spans.len(), n, "no two spans of a run share an id");
        assert!(spans.iter().all(|s| *s != SpanId::INVALID));
        // The same trace id gives the same span ids: the exporter finds what probes sent.
        assert_eq!(step_span_id(t, 3), step_span_id(t, 3));
    }

    #[test]
    fn malformed_trace_ids_are_refused() {
        for bad in [
            "",
            "abc",
            "00000000000000000000000000000000",
            "0af7651916cd43dd8448eb211c80319g",
            "0af7651916cd43dd8448eb211c80319c0",
        ] {
            assert_eq!(parse_trace_id(bad), None, "{bad:?}");
        }
        assert!(parse_trace_id("0af7651916cd43dd8448eb211c80319c").is_some());
    }

    #[test]
    fn traceparent_and_tracestate_follow_the_spec() {
        let t = parse_trace_id("0af7651916cd43dd8448eb211c80319c").unwrap();
        assert_eq!(
            traceparent(t, SpanId::from(0xb7ad_6b71_6920_3331)),
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
        );
        assert_eq!(
            tracestate_value("align category, eu=1", "eu-west"),
            "c:align_category__eu_1;l:eu-west"
        );
        assert!(tracestate_value(&"x".repeat(400), "l").len() <= 256);
    }

    #[test]
    fn only_allowed_origins_get_the_headers() {
        let tr = RunTrace::new(
            "api",
            "local",
            &target("http://127.0.0.1:3000/app/", &["https://api.rvp.test"]),
        );
        for (url, allowed) in [
            ("http://127.0.0.1:3000/api/x?y=1", true),
            ("http://127.0.0.1:3000", true),
            ("https://api.rvp.test/v1", true),
            ("https://api.rvp.test:443/v1", true),
            // Another port, scheme or host is another origin.
            ("http://127.0.0.1:3001/api", false),
            ("https://127.0.0.1:3000/api", false),
            ("http://api.rvp.test/v1", false),
            ("https://cdn.example.com/lib.js", false),
            ("not a url", false),
        ] {
            assert_eq!(tr.allows(url), allowed, "{url}");
        }
        let h = tr
            .headers_for("http://127.0.0.1:3000/x", tr.root_span_id())
            .unwrap();
        assert_eq!(
            h.traceparent,
            format!("00-{}-{}-01", tr.trace_id_hex(), tr.root_span_id())
        );
        assert_eq!(h.tracestate, "synmon=c:api;l:local");
    }

    #[tokio::test]
    async fn the_scoped_trace_is_the_current_one_and_steps_become_parents() {
        assert_eq!(current_trace_id(), None);
        let tr = RunTrace::new("j", "local", &target("http://127.0.0.1:3000", &[]));
        let id = tr.trace_id_hex();
        let (root, step2) = (tr.root_span_id(), tr.step_span_id(2));
        crate::tls::install();
        let client = reqwest::Client::new();
        let parents = scope(tr, async {
            assert_eq!(current_trace_id().as_deref(), Some(id.as_str()));
            let before = current().unwrap().current_parent();
            enter_step(2);
            let after = current().unwrap().current_parent();
            let req = propagate(
                client.get("http://127.0.0.1:3000/a"),
                "http://127.0.0.1:3000/a",
            )
            .build()
            .unwrap();
            let other = propagate(client.get("http://127.0.0.1:9/a"), "http://127.0.0.1:9/a")
                .build()
                .unwrap();
            assert!(other.headers().get(TRACEPARENT).is_none());
            assert!(other.headers().get(TRACESTATE).is_none());
            (
                before,
                after,
                req.headers()[TRACEPARENT].to_str().unwrap().to_string(),
            )
        })
        .await;
        assert_eq!(parents.0, root);
        assert_eq!(parents.1, step2);
        assert_eq!(parents.2, format!("00-{id}-{step2}-01"));
        assert!(current().is_none(), "the context ends with its scope");
    }
}
