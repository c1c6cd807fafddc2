//! Trace context and OTLP export, end to end: the daemon runs an HTTP check and a journey with
//! two `http:` steps (one to the target, one to a third-party origin) against the sandbox,
//! exporting to a local OTLP/HTTP receiver that decodes what it gets with
//! `opentelemetry-proto`. One trace per run arrives with the expected spans and attributes; the
//! sandbox saw each run's trace id on that run's requests; the third party saw no trace header.
//! The exporter's bounded queue is checked on its own: exporting never waits, a full queue
//! drops (counted), a refusing collector is counted as failed, and shutdown posts what queued.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::routing::{get, post};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use opentelemetry_proto::tonic::trace::v1::Span;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use prost::Message;
use synmon::Outcome;
use synmon::run::{CheckKind, RunResult};
use synmon::settings::Config;
use synmon::trace::export::{ExportStats, QUEUE_RUNS};
use synmon::trace::{Exporter, OtlpConfig};

use crate::support::*;

const PASSWORD: &str = "synthetic-demo";
const COLLECTOR_TOKEN: &str = "otlp-collector-token-1234";

/// What a local server received: each request's headers, and the OTLP bodies decoded.
#[derive(Default)]
struct Received {
    headers: Vec<(String, HeaderMap)>,
    exports: Vec<ExportTraceServiceRequest>,
}

type Log = Arc<Mutex<Received>>;

async fn serve(app: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

/// `POST /v1/traces` as an OTLP/HTTP collector answers it: protobuf in, protobuf out; a body
/// that is not an `ExportTraceServiceRequest` is a 400.
async fn otlp_receiver(
    State(log): State<Log>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, [(header::HeaderName, &'static str); 1], Vec<u8>) {
    let proto = [(header::CONTENT_TYPE, "application/x-protobuf")];
    if headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        != Some("application/x-protobuf")
    {
        return (StatusCode::UNSUPPORTED_MEDIA_TYPE, proto, Vec::new());
    }
    let Ok(req) = ExportTraceServiceRequest::decode(body) else {
        return (StatusCode::BAD_REQUEST, proto, Vec::new());
    };
    let mut log = log.lock().unwrap();
    log.headers.push(("/v1/traces".into(), headers));
    log.exports.push(req);
    (
        StatusCode::OK,
        proto,
        ExportTraceServiceResponse::default().encode_to_vec(),
    )
}

/// A third-party origin a journey calls: records what it was sent.
async fn third_party(State(log): State<Log>, headers: HeaderMap) -> axum::Json<serde_json::Value> {
    log.lock()
        .unwrap()
        .headers
        .push(("/lib.json".into(), headers));
    axum::Json(serde_json::json!({"ok": true}))
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn attrs(s: &Span) -> BTreeMap<String, String> {
    s.attributes
        .iter()
        .map(|kv| {
            let v = match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
                Some(AnyValue::StringValue(s)) => s.clone(),
                Some(AnyValue::IntValue(i)) => i.to_string(),
                Some(AnyValue::BoolValue(b)) => b.to_string(),
                Some(AnyValue::DoubleValue(d)) => d.to_string(),
                other => format!("{other:?}"),
            };
            (kv.key.clone(), v)
        })
        .collect()
}

/// The spans of one trace, root first.
fn trace_of(log: &Received, trace_id: &str) -> Vec<Span> {
    let mut spans: Vec<Span> = log
        .exports
        .iter()
        .flat_map(|e| &e.resource_spans)
        .flat_map(|r| &r.scope_spans)
        .flat_map(|s| &s.spans)
        .filter(|s| hex(&s.trace_id) == trace_id)
        .cloned()
        .collect();
    spans.sort_by_key(|s| (!s.parent_span_id.is_empty(), s.start_time_unix_nano));
    spans
}

#[derive(serde::Deserialize)]
struct Seen {
    path: String,
    traceparent: Option<String>,
    tracestate: Option<String>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_run_is_one_trace_and_its_requests_carry_it_to_the_target_only() {
    let dir = tempfile::tempdir().unwrap();
    let sbx = sqlite_sandbox(dir.path(), PASSWORD).await;
    let collector: Log = Log::default();
    let otlp = serve(
        Router::new()
            .route("/v1/traces", post(otlp_receiver))
            .with_state(collector.clone()),
    )
    .await;
    let elsewhere: Log = Log::default();
    let cdn = serve(
        Router::new()
            .route("/lib.json", get(third_party))
            .with_state(elsewhere.clone()),
    )
    .await;
    let journeys = dir.path().join("journeys");
    std::fs::create_dir(&journeys).unwrap();
    std::fs::write(
        journeys.join("traced.yaml"),
        format!(
            "name: traced\nsteps:\n  - http: {{ url: /svc/auth/healthz }}\n    name: target api\n  - http: {{ url: 'http://{cdn}/lib.json' }}\n    name: third party\n"
        ),
    )
    .unwrap();
    let file = dir.path().join("synmon.yaml");
    std::fs::write(
        &file,
        format!(
            "targets:\n  staging:\n    base_url: \"{base}\"\ntenant: synthetic\ncredentials:\n  username: synthetic@rvp.test\n  password: \"{PASSWORD}\"\n\
             location: eu-test\nartifacts: artifacts\nstore: {{ url: 'sqlite://synmon.db' }}\n\
             checks:\n  interval: 1h\n  journeys: [ {{ name: traced }} ]\n  http:\n    - {{ name: inventory_health, url: /svc/inventory/healthz }}\n\
             exporters:\n  otlp:\n    endpoint: \"http://{otlp}\"\n    headers: {{ x-collector-token: \"{COLLECTOR_TOKEN}\" }}\n\
             tracing:\n  ui_url: \"https://tempo.example/trace/{{trace_id}}\"\n",
            base = sbx.base_url()
        ),
    )
    .unwrap();
    let cfg = Config::load(&file).unwrap();
    let d = TestDaemon::spawn(cfg).await;
    let http = d
        .next_run("inventory_health", None, Duration::from_secs(20))
        .await;
    let journey = d.next_run("traced", None, Duration::from_secs(20)).await;
    for r in [&http, &journey] {
        assert_eq!(r.outcome, Outcome::Pass, "{r:#?}");
    }
    // The run page, once the store's writer has the run.
    let url = format!("{}/runs/{}", d.base_url(), http.run_id);
    let page = eventually("the HTTP run's page", Duration::from_secs(10), async || {
        let r = reqwest::get(&url).await.ok()?;
        if r.status() == StatusCode::OK {
            r.text().await.ok()
        } else {
            None
        }
    })
    .await;
    // The collector's header is a secret: the config's redactor scrubs it from free text.
    assert_eq!(
        d.config()
            .redactor()
            .redact(&format!("refused: {COLLECTOR_TOKEN}")),
        "refused: ***"
    );
    // Stopping flushes the export queue: every run is at the collector afterwards.
    let store_dir = dir.path().join("synmon.db");
    d.stop().await;

    let http_trace = http.trace_id.clone().expect("an HTTP run has a trace id");
    let journey_trace = journey
        .trace_id
        .clone()
        .expect("a journey run has a trace id");
    assert_ne!(http_trace, journey_trace, "one trace per run");
    for t in [&http_trace, &journey_trace] {
        assert_eq!(t.len(), 32);
        assert!(t.bytes().all(|b| b.is_ascii_hexdigit()));
    }

    // The run page shows the trace, linked into the tracing UI.
    assert!(
        page.contains(&format!(
            r#"trace: <a href="https://tempo.example/trace/{http_trace}" rel="noopener noreferrer">{http_trace}</a>"#
        )),
        "{page}"
    );
    // The store kept it.
    let store = synmon::store::Store::connect(&synmon::config::Secret::new(format!(
        "sqlite://{}",
        store_dir.display()
    )))
    .await
    .unwrap();
    let stored = store.run(&journey.run_id).await.unwrap().unwrap();
    assert_eq!(stored.trace_id.as_deref(), Some(journey_trace.as_str()));
    store.close().await;

    // The sandbox saw each run's trace id on that run's requests.
    let seen: Vec<Seen> = reqwest::get(format!("{}/__debug/traces", sbx.base_url()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let on = |path: &str| -> Vec<&Seen> { seen.iter().filter(|s| s.path == path).collect() };
    let [check_req] = on("/svc/inventory/healthz")[..] else {
        panic!(
            "one request of the HTTP check: {:?}",
            seen.iter().map(|s| &s.path).collect::<Vec<_>>()
        );
    };
    let [step_req] = on("/svc/auth/healthz")[..] else {
        panic!("one request of the journey's http step");
    };

    let log = std::mem::take(&mut *collector.lock().unwrap());
    // The collector got the configured header on every post.
    assert!(!log.headers.is_empty());
    for (_, h) in &log.headers {
        assert_eq!(h["x-collector-token"], COLLECTOR_TOKEN);
    }
    let resource = &log.exports[0].resource_spans[0].resource.as_ref().unwrap();
    assert!(resource.attributes.iter().any(|kv| kv.key == "service.name"
        && matches!(kv.value.as_ref().and_then(|v| v.value.as_ref()), Some(AnyValue::StringValue(s)) if s == "synmon")));

    // The HTTP check: a root span and one client span for its request; the request named that
    // client span as its parent.
    let spans = trace_of(&log, &http_trace);
    assert_eq!(spans.len(), 2, "{spans:#?}");
    let (root, req) = (&spans[0], &spans[1]);
    assert!(root.parent_span_id.is_empty());
    assert_eq!(root.name, "http inventory_health");
    let a = attrs(root);
    for (k, v) in [
        ("synmon.check", "inventory_health"),
        ("synmon.check.kind", "http"),
        ("synmon.location", "eu-test"),
        ("synmon.target", "staging"),
        ("synmon.outcome", "pass"),
        ("synmon.attempt", "1"),
        ("synmon.run_id", http.run_id.as_str()),
    ] {
        assert_eq!(a.get(k).map(String::as_str), Some(v), "{k} in {a:?}");
    }
    assert_eq!(
        root.start_time_unix_nano,
        u64::try_from(http.started_at.timestamp_nanos_opt().unwrap()).unwrap()
    );
    assert!(root.end_time_unix_nano >= root.start_time_unix_nano);
    assert_eq!(req.parent_span_id, root.span_id);
    assert_eq!(req.kind, SpanKind::Client as i32);
    assert_eq!(req.name, "GET /svc/inventory/healthz");
    let ra = attrs(req);
    assert_eq!(ra["synmon.step.timing"], "outside");
    assert_eq!(ra["synmon.step.outcome"], "pass");
    assert_eq!(
        check_req.traceparent.as_deref(),
        Some(format!("00-{http_trace}-{}-01", hex(&req.span_id)).as_str())
    );
    assert_eq!(
        check_req.tracestate.as_deref(),
        Some("synmon=c:inventory_health;l:eu-test")
    );

    // The journey: a root span and one span per step; its http step's request carried the
    // trace, under its step's span.
    let spans = trace_of(&log, &journey_trace);
    assert_eq!(spans.len(), 3, "{spans:#?}");
    assert_eq!(spans[0].name, "journey traced");
    assert_eq!(attrs(&spans[0])["synmon.check.kind"], "journey");
    let names: Vec<&str> = spans[1..].iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["target api", "third party"]);
    assert!(
        spans[1..]
            .iter()
            .all(|s| s.parent_span_id == spans[0].span_id)
    );
    assert_eq!(
        step_req.traceparent.as_deref(),
        Some(format!("00-{journey_trace}-{}-01", hex(&spans[1].span_id)).as_str()),
        "the `target api` step's request hangs under that step's span"
    );
    assert_eq!(
        step_req.tracestate.as_deref(),
        Some("synmon=c:traced;l:eu-test")
    );

    // The third-party origin got neither header.
    let other = std::mem::take(&mut *elsewhere.lock().unwrap());
    assert_eq!(other.headers.len(), 1, "the journey called it once");
    let h = &other.headers[0].1;
    assert!(h.get("traceparent").is_none(), "{h:?}");
    assert!(h.get("tracestate").is_none(), "{h:?}");
    sbx.shutdown().await;
}

fn otlp_config(addr: SocketAddr) -> OtlpConfig {
    OtlpConfig {
        endpoint: format!("http://{addr}/v1/traces").parse().unwrap(),
        headers: Vec::new(),
    }
}

fn traced_run(i: usize) -> RunResult {
    let mut r = RunResult::begin(
        &format!("c{i}"),
        CheckKind::Tcp,
        "staging",
        "local",
        "2026-11-26T00:00:00Z".parse().unwrap(),
    );
    r.trace_id = Some(synmon::trace::new_trace_id());
    r
}

/// On one thread the export task cannot run while the test enqueues: the queue fills exactly,
/// and what does not fit is dropped at once instead of waiting.
#[tokio::test(flavor = "current_thread")]
async fn a_full_queue_drops_at_once_and_shutdown_posts_what_queued() {
    let posts: Log = Log::default();
    // A collector that refuses every post (400: not retried).
    let addr = serve(
        Router::new()
            .route(
                "/v1/traces",
                post(|State(log): State<Log>, headers: HeaderMap| async move {
                    log.lock()
                        .unwrap()
                        .headers
                        .push(("/v1/traces".into(), headers));
                    StatusCode::BAD_REQUEST
                }),
            )
            .with_state(posts.clone()),
    )
    .await;
    let registry = synmon::metrics::Registry::new();
    let exporter = Exporter::start(
        &otlp_config(addr),
        &synmon::trace::export::resource("r1", "local"),
        synmon::config::Redactor::default(),
        Some(registry.clone()),
    )
    .unwrap();
    for i in 0..QUEUE_RUNS + 10 {
        exporter.export(&traced_run(i));
    }
    assert_eq!(
        exporter.stats(),
        ExportStats {
            exported: 0,
            dropped: 10,
            failed: 0
        }
    );
    exporter.shutdown().await;
    assert_eq!(
        exporter.stats(),
        ExportStats {
            exported: 0,
            dropped: 10,
            failed: QUEUE_RUNS as u64,
        },
        "every queued run was posted (and refused) before shutdown returned"
    );
    assert!(posts.lock().unwrap().headers.len() >= QUEUE_RUNS / 256);
    // After shutdown a run is dropped, not queued for nobody.
    exporter.export(&traced_run(0));
    assert_eq!(exporter.stats().dropped, 11);
    // The same counts on /metrics.
    let text = synmon::metrics::prometheus::render(&registry, chrono::Utc::now());
    for line in [
        "synmon_trace_exports_total{result=\"exported\"} 0",
        "synmon_trace_exports_total{result=\"dropped\"} 11",
        format!("synmon_trace_exports_total{{result=\"failed\"}} {QUEUE_RUNS}").as_str(),
    ] {
        assert!(text.lines().any(|l| l == line), "{line} missing in\n{text}");
    }
}
