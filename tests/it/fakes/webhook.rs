//! A local webhook endpoint that checks Alertmanager's webhook JSON (version "4" and every field
//! consumers rely on), an optional bearer token, and a path that may carry a token, and records
//! the bodies it accepted. Failures, outages and held requests come from the shared `Controls`.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{OriginalUri, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::Value;

use super::controls::{self as fake_controls, Controls};

struct Shared {
    path: String,
    bearer: Option<String>,
    bodies: Mutex<Vec<Value>>,
    arrivals: Mutex<Vec<std::time::Instant>>,
    rejected: Mutex<Vec<String>>,
    controls: Arc<Controls>,
}

/// A running fake; it serves until the test's runtime ends. Derefs to `Controls` for
/// `fail_next`, `set_down`, `hold`, `set_retry_after` and the counters.
pub struct FakeWebhook {
    addr: std::net::SocketAddr,
    state: Arc<Shared>,
}

impl std::ops::Deref for FakeWebhook {
    type Target = Controls;
    fn deref(&self) -> &Controls {
        &self.state.controls
    }
}

impl FakeWebhook {
    /// Starts the fake on 127.0.0.1:0, accepting `POST /hook` without authentication.
    pub async fn start() -> FakeWebhook {
        Self::start_with("/hook", None).await
    }

    /// Starts the fake accepting only `POST {path}` (which may hold a token), and, when
    /// `bearer` is set, only with `Authorization: Bearer {bearer}` (401 otherwise).
    pub async fn start_with(path: &str, bearer: Option<&str>) -> FakeWebhook {
        let state = Arc::new(Shared {
            path: path.to_string(),
            bearer: bearer.map(str::to_string),
            bodies: Mutex::default(),
            arrivals: Mutex::default(),
            rejected: Mutex::default(),
            controls: Arc::default(),
        });
        let app = Router::new()
            .fallback(post(receive))
            .with_state(state.clone());
        let addr = fake_controls::serve(app, state.controls.clone()).await;
        FakeWebhook { addr, state }
    }

    /// The full URL to configure, path included.
    pub fn url(&self) -> String {
        format!("http://{}{}", self.addr, self.state.path)
    }

    /// `http://127.0.0.1:PORT`, without the path.
    pub fn origin(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The shared switches, for code generic over fakes (the compliance suite).
    pub fn controls(&self) -> Arc<Controls> {
        self.state.controls.clone()
    }

    /// Every accepted body, in arrival order.
    pub fn bodies(&self) -> Vec<Value> {
        self.state.bodies.lock().unwrap().clone()
    }

    /// When each accepted body arrived (taken by the server as it accepted it), in arrival order.
    pub fn arrivals(&self) -> Vec<std::time::Instant> {
        self.state.arrivals.lock().unwrap().clone()
    }

    /// Why each refused request was refused, in arrival order.
    pub fn rejected(&self) -> Vec<String> {
        self.state.rejected.lock().unwrap().clone()
    }

    /// Returns the accepted bodies as soon as at least `n` arrived; panics after `timeout`.
    pub async fn wait_for(&self, n: usize, timeout: Duration) -> Vec<Value> {
        self.wait_for_accepted(n, timeout).await;
        self.bodies()
    }
}

async fn receive(
    State(st): State<Arc<Shared>>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Some(resp) = st.controls.gate().await {
        return resp;
    }
    let refuse = |status: StatusCode, why: String| {
        st.rejected.lock().unwrap().push(why.clone());
        (status, why).into_response()
    };
    if uri.path() != st.path {
        return refuse(StatusCode::NOT_FOUND, "unknown path".into());
    }
    if let Some(token) = &st.bearer {
        let auth = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if auth != format!("Bearer {token}") {
            return refuse(
                StatusCode::UNAUTHORIZED,
                "missing or wrong bearer token".into(),
            );
        }
    }
    match check(&headers, &body) {
        Ok(v) => {
            st.bodies.lock().unwrap().push(v);
            st.arrivals.lock().unwrap().push(std::time::Instant::now());
            st.controls.accept();
            StatusCode::OK.into_response()
        }
        Err(errors) => refuse(StatusCode::BAD_REQUEST, errors.join("; ")),
    }
}

/// Alertmanager's webhook contract (`notify/webhook`, `template.Data`), every problem listed.
fn check(headers: &HeaderMap, body: &[u8]) -> Result<Value, Vec<String>> {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !ct.starts_with("application/json") {
        return Err(vec![format!(
            "Content-Type must be application/json, got '{ct}'"
        )]);
    }
    let v: Value = serde_json::from_slice(body).map_err(|e| vec![format!("invalid JSON: {e}")])?;
    let mut errors = Vec::new();
    if v.get("version").and_then(Value::as_str) != Some("4") {
        errors.push("version must be \"4\"".to_string());
    }
    for k in ["groupKey", "receiver", "externalURL"] {
        if v.get(k).and_then(Value::as_str).is_none() {
            errors.push(format!("{k} must be a string"));
        }
    }
    if !matches!(
        v.get("status").and_then(Value::as_str),
        Some("firing" | "resolved")
    ) {
        errors.push("status must be firing or resolved".into());
    }
    for k in ["groupLabels", "commonLabels", "commonAnnotations"] {
        if !v.get(k).is_some_and(string_map) {
            errors.push(format!("{k} must be an object of strings"));
        }
    }
    if v.get("truncatedAlerts").and_then(Value::as_u64).is_none() {
        errors.push("truncatedAlerts must be a number".into());
    }
    match v.get("alerts").and_then(Value::as_array) {
        Some(alerts) if !alerts.is_empty() => {
            for (i, a) in alerts.iter().enumerate() {
                if !matches!(
                    a.get("status").and_then(Value::as_str),
                    Some("firing" | "resolved")
                ) {
                    errors.push(format!("alerts[{i}].status must be firing or resolved"));
                }
                for k in ["labels", "annotations"] {
                    if !a.get(k).is_some_and(string_map) {
                        errors.push(format!("alerts[{i}].{k} must be an object of strings"));
                    }
                }
                for k in ["startsAt", "endsAt"] {
                    if a.get(k)
                        .and_then(Value::as_str)
                        .is_none_or(|t| chrono::DateTime::parse_from_rfc3339(t).is_err())
                    {
                        errors.push(format!("alerts[{i}].{k} must be an RFC 3339 time"));
                    }
                }
                for k in ["generatorURL", "fingerprint"] {
                    if a.get(k).and_then(Value::as_str).is_none() {
                        errors.push(format!("alerts[{i}].{k} must be a string"));
                    }
                }
            }
        }
        _ => errors.push("alerts must be a non-empty array".into()),
    }
    if errors.is_empty() {
        Ok(v)
    } else {
        Err(errors)
    }
}

fn string_map(v: &Value) -> bool {
    v.as_object()
        .is_some_and(|m| m.values().all(Value::is_string))
}
