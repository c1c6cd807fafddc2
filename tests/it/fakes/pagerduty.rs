//! A local stand-in for PagerDuty's Events API v2 (`POST /v2/enqueue`) that checks what the real
//! one checks, so a receiver that passes here is not refused in production: JSON content type,
//! a 32-character `routing_key`, `event_action` in trigger|acknowledge|resolve, a `dedup_key` for
//! acknowledge/resolve, and for a trigger a payload with `summary` (<= 1024 characters), a
//! non-empty `source` and `severity` in critical|error|warning|info; the whole body <= 512 KB.
//! A refused event gets 400 with PagerDuty's error JSON; an accepted one 202 and is recorded.
//! Failures, outages and held requests come from the shared `Controls`.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};

use super::controls::{self as fake_controls, Controls};

/// PagerDuty's documented limits.
pub const MAX_BODY_BYTES: usize = 512 * 1024;
pub const MAX_SUMMARY_CHARS: usize = 1024;
pub const ROUTING_KEY_LEN: usize = 32;

/// A routing key of the length PagerDuty requires, for tests.
pub const TEST_ROUTING_KEY: &str = "R0UT1NGKEYR0UT1NGKEYR0UT1NGKEY01";

#[derive(Default)]
struct Shared {
    events: Mutex<Vec<Value>>,
    rejected: Mutex<Vec<String>>,
    controls: Arc<Controls>,
}

/// A running fake; it serves until the test's runtime ends. Derefs to `Controls` for
/// `fail_next`, `set_down`, `hold`, `set_retry_after` and the counters.
pub struct FakePagerDuty {
    addr: std::net::SocketAddr,
    state: Arc<Shared>,
}

impl std::ops::Deref for FakePagerDuty {
    type Target = Controls;
    fn deref(&self) -> &Controls {
        &self.state.controls
    }
}

impl FakePagerDuty {
    /// Starts the fake on 127.0.0.1:0.
    pub async fn start() -> FakePagerDuty {
        let state = Arc::new(Shared::default());
        let app = Router::new()
            .route("/v2/enqueue", post(enqueue))
            // Read bodies past PagerDuty's limit so an oversized event gets PagerDuty's 400, not
            // axum's 413.
            .layer(DefaultBodyLimit::max(8 * MAX_BODY_BYTES))
            .with_state(state.clone());
        let addr = fake_controls::serve(app, state.controls.clone()).await;
        FakePagerDuty { addr, state }
    }

    /// The enqueue URL, as configured in a receiver's `url`.
    pub fn url(&self) -> String {
        format!("http://{}/v2/enqueue", self.addr)
    }

    /// `http://127.0.0.1:PORT`, without the path.
    pub fn origin(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The shared switches, for code generic over fakes (the compliance suite).
    pub fn controls(&self) -> Arc<Controls> {
        self.state.controls.clone()
    }

    /// Every accepted event, in arrival order.
    pub fn events(&self) -> Vec<Value> {
        self.state.events.lock().unwrap().clone()
    }

    /// How many accepted events each `(dedup_key, event_action)` got: what PagerDuty's incident
    /// log would show, so a test can say "one trigger and one resolve per incident". A trigger
    /// without a key counts under the empty key.
    pub fn counts(&self) -> BTreeMap<(String, String), usize> {
        let mut out = BTreeMap::new();
        for ev in self.events() {
            let s = |k: &str| ev.get(k).and_then(Value::as_str).unwrap_or("").to_string();
            *out.entry((s("dedup_key"), s("event_action"))).or_insert(0) += 1;
        }
        out
    }

    /// How many accepted events had `event_action` (over every key).
    pub fn count_action(&self, action: &str) -> usize {
        self.events()
            .iter()
            .filter(|e| e["event_action"] == action)
            .count()
    }

    /// The reasons of every refused (400) event, in arrival order.
    pub fn rejected(&self) -> Vec<String> {
        self.state.rejected.lock().unwrap().clone()
    }

    /// Returns the accepted events as soon as at least `n` arrived; panics after `timeout`.
    pub async fn wait_for(&self, n: usize, timeout: Duration) -> Vec<Value> {
        self.wait_for_accepted(n, timeout).await;
        self.events()
    }
}

async fn enqueue(State(st): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    if let Some(resp) = st.controls.gate().await {
        return resp;
    }
    match check(&headers, &body) {
        Ok(ev) => {
            let dedup_key = ev
                .get("dedup_key")
                .and_then(Value::as_str)
                .map(str::to_string)
                .unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string());
            st.events.lock().unwrap().push(ev);
            st.controls.accept();
            (
                StatusCode::ACCEPTED,
                axum::Json(json!({
                    "status": "success",
                    "message": "Event processed",
                    "dedup_key": dedup_key,
                })),
            )
                .into_response()
        }
        Err(errors) => {
            st.rejected.lock().unwrap().push(errors.join("; "));
            (
                StatusCode::BAD_REQUEST,
                axum::Json(json!({
                    "status": "invalid event",
                    "message": "Event object is invalid",
                    "errors": errors,
                })),
            )
                .into_response()
        }
    }
}

/// PagerDuty's validation, collecting every problem as the real API lists them in `errors`.
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
    if body.len() > MAX_BODY_BYTES {
        return Err(vec![format!(
            "Event size {} exceeds the {MAX_BODY_BYTES}-byte limit",
            body.len()
        )]);
    }
    let ev: Value = serde_json::from_slice(body).map_err(|e| vec![format!("Invalid JSON: {e}")])?;
    let mut errors = Vec::new();
    let s = |k: &str| ev.get(k).and_then(Value::as_str);
    match s("routing_key") {
        Some(k) if k.len() == ROUTING_KEY_LEN => {}
        // Never echo the key back: the test suite checks no secret leaks, including via us.
        Some(_) => errors.push("'routing_key' must be 32 characters".to_string()),
        None => errors.push("'routing_key' is missing or not a string".to_string()),
    }
    let action = s("event_action").unwrap_or("");
    if !matches!(action, "trigger" | "acknowledge" | "resolve") {
        errors.push("'event_action' must be one of trigger, acknowledge, resolve".into());
    }
    match ev.get("dedup_key") {
        None | Some(Value::Null) if action != "trigger" => {
            errors.push(format!("'dedup_key' is required for {action}"))
        }
        None | Some(Value::Null) => {}
        Some(Value::String(k)) if !k.is_empty() && k.len() <= 255 => {}
        Some(_) => errors.push("'dedup_key' must be a non-empty string of <= 255 chars".into()),
    }
    if action == "trigger" {
        match ev.get("payload") {
            Some(Value::Object(p)) => {
                let ps = |k: &str| p.get(k).and_then(Value::as_str);
                match ps("summary") {
                    Some(x) if !x.is_empty() && x.chars().count() <= MAX_SUMMARY_CHARS => {}
                    Some("") => errors.push("'payload.summary' is empty".into()),
                    Some(x) => errors.push(format!(
                        "'payload.summary' is {} characters, over {MAX_SUMMARY_CHARS}",
                        x.chars().count()
                    )),
                    None => errors.push("'payload.summary' is missing".into()),
                }
                if ps("source").is_none_or(str::is_empty) {
                    errors.push("'payload.source' is missing or empty".into());
                }
                if !matches!(
                    ps("severity"),
                    Some("critical" | "error" | "warning" | "info")
                ) {
                    errors.push(
                        "'payload.severity' must be one of critical, error, warning, info".into(),
                    );
                }
                if let Some(t) = p.get("timestamp")
                    && t.as_str()
                        .is_none_or(|t| chrono::DateTime::parse_from_rfc3339(t).is_err())
                {
                    errors.push("'payload.timestamp' must be an ISO 8601 timestamp".into());
                }
                if p.get("custom_details")
                    .is_some_and(|d| !d.is_object() && !d.is_string())
                {
                    errors.push("'payload.custom_details' must be an object".into());
                }
            }
            _ => errors.push("'payload' is required for trigger".into()),
        }
        for (i, l) in array(&ev, "links").iter().enumerate() {
            if l.get("href").and_then(Value::as_str).is_none() {
                errors.push(format!("'links[{i}].href' is required"));
            }
        }
        for (i, im) in array(&ev, "images").iter().enumerate() {
            if im.get("src").and_then(Value::as_str).is_none() {
                errors.push(format!("'images[{i}].src' is required"));
            }
        }
    }
    if errors.is_empty() {
        Ok(ev)
    } else {
        Err(errors)
    }
}

fn array<'a>(ev: &'a Value, key: &str) -> &'a [Value] {
    ev.get(key)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}
