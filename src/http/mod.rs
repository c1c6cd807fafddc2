//! The daemon's HTTP server (default 127.0.0.1:3005): health, readiness, Prometheus `/metrics`,
//! the JSON API, run artifacts and the status page. It only reads: nothing here changes what
//! the daemon does.

pub mod auth;
pub mod html;
pub mod status;
pub mod svg;
pub mod view;

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::view::DaemonView;

mod am_v2;
mod ratelimit;
mod server;
mod silences;

type AppState = DaemonView;

pub fn router(shared: AppState) -> Router {
    let limiter = Arc::new(ratelimit::RateLimiter::new(
        shared.config().mute.api_rate_limit,
        shared.clock(),
    ));
    // The writes' JWT check runs before their extractors, so before any body is read.
    let admin = axum::middleware::from_fn_with_state(shared.clone(), silences::require_admin);
    Router::new()
        // Silences: the API's only writes (JWT-guarded), and a per-client limit on all of /api/.
        .route(
            "/api/v1/silences",
            post(silences::create)
                .route_layer(admin.clone())
                .get(silences::list),
        )
        .route(
            "/api/v1/silences/{id}",
            delete(silences::expire).route_layer(admin),
        )
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/api/v1/checks", get(checks))
        .route("/api/v1/checks/{name}/runs", get(check_runs))
        .route("/api/v1/runs/{id}", get(run))
        .route("/api/v1/alerts", get(alerts))
        .route("/api/v1/slo", get(slo))
        .route("/api/v1/notifications", get(notifications))
        .route("/api/v1/cluster", get(cluster))
        .route("/api/v1/gate", get(crate::gate::api::gate_samples))
        .route("/artifacts/{run_id}/{file}", get(artifact))
        // The status page and run pages; `server.auth_token` guards every read but the probes.
        .merge(status::routes())
        .layer(axum::middleware::from_fn_with_state(
            shared.clone(),
            auth::require,
        ))
        // Alertmanager's API v2 (amtool, Grafana): its own check, which also takes an admin JWT.
        .merge(am_v2::routes(shared.clone()))
        // Outermost: every API answer, refusals included, carries the rate-limit headers; the
        // limiter keys a request by its verified principal, else its address.
        .layer(axum::middleware::from_fn_with_state(
            (limiter, shared.clone()),
            ratelimit::layer,
        ))
        .with_state(shared)
}

/// Serves until `stop` turns true, within the `server.*` limits read at start (see
/// [`server`]).
pub async fn serve(
    listener: tokio::net::TcpListener,
    shared: AppState,
    stop: tokio::sync::watch::Receiver<bool>,
) {
    let limits = shared.config().server_limits;
    let app = router(shared.clone());
    server::serve(listener, app, probes(shared), limits, stop).await;
}

/// What a connection beyond `server.max_connections` is answered: the probes, and 503 for the
/// rest (no rate limit and no authentication: the probes are open anyway).
pub fn probes(shared: AppState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .fallback(|| async {
            error(
                StatusCode::SERVICE_UNAVAILABLE,
                "the server is at its connection limit (`server.max_connections`); only /healthz and /readyz are answered",
            )
        })
        .with_state(shared)
}

fn error(status: StatusCode, msg: impl Into<String>) -> Response {
    (status, Json(json!({"error": msg.into()}))).into_response()
}

async fn healthz() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

/// Ready when the config is loaded, the store answers and a WebDriver endpoint is reachable.
async fn readyz(State(s): State<AppState>) -> Response {
    // Reachable is not enough: a heartbeat, a write, must go through (a database whose tables
    // were dropped answers pings while refusing every write).
    let store = s
        .cluster()
        .check_writable()
        .await
        .map_err(|e| format!("the store refuses writes: {e}"));
    let needs_browser = s
        .checks()
        .iter()
        .any(|c| c.kind == crate::run::CheckKind::Journey);
    let webdriver = if needs_browser {
        let driver = s.driver();
        driver.endpoint().await.map(|_| ()).map_err(|e| e.message)
    } else {
        Ok(())
    };
    let ok = store.is_ok() && webdriver.is_ok();
    let body = json!({
        "status": if ok { "ready" } else { "not ready" },
        "config": s.config().file.display().to_string(),
        "store": store.err().unwrap_or_else(|| "ok".into()),
        "webdriver": webdriver.err().unwrap_or_else(|| "ok".into()),
    });
    let code = if ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, Json(body)).into_response()
}

/// This replica's role, the leader and epoch, and every live replica with its location, role
/// and last heartbeat (from the store).
async fn cluster(State(s): State<AppState>) -> Response {
    match s.cluster().status().await {
        Ok(st) => Json(serde_json::to_value(&st).expect("plain data serializes")).into_response(),
        Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
    }
}

async fn metrics(State(s): State<AppState>) -> Response {
    let text = crate::metrics::prometheus::render(s.registry(), s.now());
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
        .into_response()
}

/// Every check at every location with its last outcome, latency percentiles of passing runs
/// and availability (see [`view::CheckStatus`]).
async fn checks(State(s): State<AppState>) -> Json<Value> {
    let (checks, _, _) = view::gather_checks(&s).await;
    // Through a `Value`, so keys come out as every other `json!` answer of the API orders them.
    Json(serde_json::to_value(&checks).expect("plain data serializes"))
}

#[derive(Deserialize)]
struct Limit {
    limit: Option<u32>,
}

async fn check_runs(
    State(s): State<AppState>,
    Path(name): Path<String>,
    Query(q): Query<Limit>,
) -> Response {
    let limit = q.limit.unwrap_or(50).clamp(1, 1000);
    match s.store().runs_for_check(&name, limit).await {
        Ok(runs) => Json(json!({"check": name, "runs": runs})).into_response(),
        Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
    }
}

/// One run (stored, or recorded and still in the writer's queue) with its steps, artifacts (with
/// their URLs) and `maintenance`: the window it fell in when it was recorded, or null.
async fn run(State(s): State<AppState>, Path(id): Path<String>) -> Response {
    match s.run(&id).await {
        Ok(Some(stored)) => {
            let r = &stored.run;
            let artifacts: Vec<Value> = r
                .artifacts
                .iter()
                .map(|a| {
                    let file = std::path::Path::new(&a.path)
                        .file_name()
                        .map(|f| f.to_string_lossy().into_owned())
                        .unwrap_or_default();
                    json!({"kind": a.kind, "path": a.path, "url": format!("/artifacts/{}/{file}", r.run_id)})
                })
                .collect();
            let mut v = serde_json::to_value(&stored).unwrap_or(Value::Null);
            v["artifacts"] = Value::Array(artifacts);
            Json(v).into_response()
        }
        Ok(None) => error(StatusCode::NOT_FOUND, format!("no run {id}")),
        Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
    }
}

/// A run's evidence file. Page HTML is served inert (a sandboxing CSP): it came from the target.
async fn artifact(
    State(s): State<AppState>,
    Path((run_id, file)): Path<(String, String)>,
) -> Response {
    let safe = |p: &str| {
        !p.is_empty()
            && p.chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
            && !p.starts_with('.')
    };
    if !safe(&run_id) || !safe(&file) {
        return error(StatusCode::BAD_REQUEST, "bad artifact path");
    }
    let path = s.config().artifacts_dir.join(&run_id).join(&file);
    match tokio::fs::read(&path).await {
        Ok(bytes) => {
            let ctype = match path.extension().and_then(|e| e.to_str()) {
                Some("png") => "image/png",
                Some("html") => "text/html; charset=utf-8",
                Some("json") => "application/json",
                _ => "text/plain; charset=utf-8",
            };
            (
                [
                    (header::CONTENT_TYPE, ctype),
                    (
                        header::CONTENT_SECURITY_POLICY,
                        "sandbox; default-src 'none'; img-src 'self' data:",
                    ),
                    (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
                ],
                bytes,
            )
                .into_response()
        }
        Err(_) => error(StatusCode::NOT_FOUND, "no such artifact"),
    }
}

/// How the pipeline mutes `al` now, judged on the labels it routes on (the rule's `route`
/// included): silenced, inhibited, in a maintenance window.
pub(crate) fn mute_of(
    s: &DaemonView,
    cfg: &crate::settings::Config,
    al: &crate::rules::Alert,
    now: chrono::DateTime<chrono::Utc>,
) -> crate::mute::MuteState {
    let mut labels = al.labels.clone();
    if let Some(r) = cfg.rules.rule(&al.rule).and_then(|r| r.route.clone()) {
        labels.entry("route".into()).or_insert(r);
    }
    s.mute().state(&labels, now)
}

/// Active alerts (pending and firing) with their value and since when, and the latest
/// transitions (until notifications land, this is where state changes are visible).
async fn alerts(State(s): State<AppState>) -> Json<Value> {
    let a = s.alerting().await;
    let cfg = s.config();
    let now = s.now();
    let active: Vec<Value> = a
        .state
        .alerts
        .values()
        .filter(|al| {
            matches!(
                al.phase,
                crate::rules::eval::Phase::Pending | crate::rules::eval::Phase::Firing
            )
        })
        .map(|al| {
            let mute = mute_of(&s, &cfg, al, now);
            json!({
                "silenced": mute.silenced,
                "silenced_by": mute.silenced_by,
                "inhibited": mute.inhibited,
                "maintenance": mute.maintenance,
                "alert": al.rule,
                "fingerprint": al.fingerprint,
                "state": al.phase,
                "labels": al.labels,
                "value": al.value,
                "since": al.active_at,
                "firing_since": al.fired_at,
                "annotations": al.annotations,
                "flapping": al.flapping,
            })
        })
        .collect();
    let recent: Vec<Value> = a
        .recent
        .iter()
        .rev()
        .take(100)
        .map(|t| serde_json::to_value(t).unwrap_or(Value::Null))
        .collect();
    Json(json!({"alerts": active, "recent_transitions": recent, "evaluations": a.evaluations}))
}

/// The notification pipeline: outbox rows per receiver and status, the latest deliveries (with
/// the receiver's answer or last error, secrets scrubbed), and the alert groups being watched.
async fn notifications(State(s): State<AppState>) -> Response {
    let counts = match s.store().outbox_counts().await {
        Ok(c) => c,
        Err(e) => return error(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
    };
    let recent = match s.store().outbox_recent(100).await {
        Ok(r) => r,
        Err(e) => return error(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
    };
    let mut by_receiver = serde_json::Map::new();
    for (receiver, status, n) in counts {
        let e = by_receiver
            .entry(receiver)
            .or_insert_with(|| json!({"pending": 0, "sent": 0, "failed": 0}));
        e[serde_json::to_value(status)
            .ok()
            .and_then(|v| v.as_str().map(String::from))
            .unwrap_or_default()] = json!(n);
    }
    let groups: Vec<Value> = s
        .notifier()
        .groups()
        .await
        .into_iter()
        .map(|(key, receiver, alerts)| {
            json!({
                "group_key": key,
                "receiver": receiver,
                "alerts": alerts.iter().map(|a| json!({
                    "fingerprint": a.fingerprint,
                    "status": a.status,
                    "labels": a.labels,
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    Json(json!({"receivers": by_receiver, "outbox": recent, "groups": groups})).into_response()
}

/// Every SLO's error budget, burn rates per window and time to exhaustion, as the latest
/// evaluation computed them (the figures the status page shows and the gauges carry);
/// `generated_at` is that evaluation's time.
///
/// Before the first evaluation (or with evaluation only on demand) they are computed here, on a
/// blocking thread like an evaluation: 30-day windows are not a runtime worker's job.
async fn slo(State(s): State<AppState>) -> Response {
    let (latest, counters) = {
        let a = s.alerting().await;
        (a.slos.clone(), a.counters.clone())
    };
    if let Some(f) = latest {
        return Json(json!({"slos": f.slos, "generated_at": f.at})).into_response();
    }
    let cfg = s.config();
    let now = s.now();
    let registry = s.registry().clone();
    let status = tokio::task::spawn_blocking(move || {
        let source = crate::rules::registry_source::RegistrySource {
            registry: &registry,
            remote: None,
            counters: &counters,
        };
        crate::rules::slo::slo_status(&cfg.rules.slos, &source, now)
    })
    .await;
    match status {
        Ok(status) => Json(json!({"slos": status, "generated_at": now})).into_response(),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}
