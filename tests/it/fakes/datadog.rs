//! A local stand-in for Datadog's dashboards API (`/api/v1/dashboard`) that checks the
//! documented protocol: `DD-API-KEY` and `DD-APPLICATION-KEY` on every request (403 otherwise),
//! the dashboard's required fields on create and update (400 otherwise), and answers like
//! Datadog: it assigns ids, adds author/timestamps/URL and widget ids, lists `{dashboards:[]}`.
//! It can be told to answer 429 with `Retry-After` for the next requests.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};

pub const API_KEY: &str = "fake-dd-api-key-7f3a9c";
pub const APP_KEY: &str = "fake-dd-app-key-41be02";

/// One request the fake saw: method, path, status answered.
#[derive(Debug, Clone, PartialEq)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub status: u16,
}

#[derive(Debug, Default)]
pub struct FakeState {
    pub dashboards: BTreeMap<String, Value>,
    pub seen: Vec<Seen>,
    /// `Retry-After` seconds for each of the next requests (429s).
    pub throttle: VecDeque<u64>,
    next: u64,
}

pub struct FakeDatadog {
    pub url: String,
    pub state: Arc<Mutex<FakeState>>,
    task: tokio::task::JoinHandle<()>,
}

impl FakeDatadog {
    pub async fn start() -> FakeDatadog {
        let state = Arc::new(Mutex::new(FakeState::default()));
        let app = Router::new()
            .route("/api/v1/dashboard", get(list).post(create))
            .route("/api/v1/dashboard/{id}", get(fetch).put(update))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        FakeDatadog {
            url: format!("http://{addr}"),
            state,
            task,
        }
    }

    pub fn count(&self) -> usize {
        self.state.lock().unwrap().dashboards.len()
    }

    pub fn seen(&self, method: &str) -> usize {
        let s = self.state.lock().unwrap();
        s.seen.iter().filter(|r| r.method == method).count()
    }

    pub fn throttle(&self, retry_after: &[u64]) {
        self.state.lock().unwrap().throttle.extend(retry_after);
    }

    pub fn by_title(&self, title: &str) -> Vec<Value> {
        let s = self.state.lock().unwrap();
        s.dashboards
            .values()
            .filter(|d| d["title"] == title)
            .cloned()
            .collect()
    }
}

impl Drop for FakeDatadog {
    fn drop(&mut self) {
        self.task.abort();
    }
}

type Shared = Arc<Mutex<FakeState>>;

fn answer(status: StatusCode, body: Value) -> Response {
    (
        status,
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

/// Rate limit and authentication, as Datadog applies them before anything else.
fn gate(state: &Shared, headers: &HeaderMap, method: &Method, path: &str) -> Option<Response> {
    let mut s = state.lock().unwrap();
    let key = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let status = if key("DD-API-KEY") != Some(API_KEY) || key("DD-APPLICATION-KEY") != Some(APP_KEY)
    {
        StatusCode::FORBIDDEN
    } else if !s.throttle.is_empty() {
        StatusCode::TOO_MANY_REQUESTS
    } else {
        StatusCode::OK
    };
    s.seen.push(Seen {
        method: method.to_string(),
        path: path.to_string(),
        status: status.as_u16(),
    });
    if status == StatusCode::FORBIDDEN {
        return Some(answer(status, json!({"errors": ["Forbidden"]})));
    }
    if status == StatusCode::TOO_MANY_REQUESTS {
        let secs = s.throttle.pop_front().expect("checked above");
        let mut r = answer(
            status,
            json!({"errors": ["Rate limit of 100 requests in 60 seconds reached"]}),
        );
        let h = r.headers_mut();
        h.insert("retry-after", secs.into());
        h.insert("x-ratelimit-limit", 100.into());
        h.insert("x-ratelimit-period", 60.into());
        h.insert("x-ratelimit-remaining", 0.into());
        h.insert("x-ratelimit-reset", secs.into());
        return Some(r);
    }
    None
}

/// The documented required fields of a dashboard body.
fn invalid(body: &Value) -> Option<String> {
    let title = body["title"].as_str().unwrap_or_default();
    if title.is_empty() {
        return Some("Invalid dashboard: 'title' is required".into());
    }
    if !matches!(body["layout_type"].as_str(), Some("ordered" | "free")) {
        return Some("Invalid dashboard: 'layout_type' must be 'ordered' or 'free'".into());
    }
    let Some(widgets) = body["widgets"].as_array() else {
        return Some("Invalid dashboard: 'widgets' is required".into());
    };
    for (i, w) in widgets.iter().enumerate() {
        if w["definition"]["type"].as_str().is_none() {
            return Some(format!("Invalid widget {i}: 'definition.type' is required"));
        }
    }
    None
}

/// What Datadog stores and returns: the body plus its own fields, ids on every widget.
fn stored(id: &str, body: &Value, next: &mut u64) -> Value {
    let mut v = body.clone();
    fn widget_ids(v: &mut Value, next: &mut u64) {
        if let Some(ws) = v.get_mut("widgets").and_then(Value::as_array_mut) {
            for w in ws {
                *next += 1;
                w["id"] = json!(1_000 + *next);
                widget_ids(&mut w["definition"], next);
            }
        }
    }
    widget_ids(&mut v, next);
    v["id"] = json!(id);
    v["url"] = json!(format!("/dashboard/{id}/x"));
    v["author_handle"] = json!("synmon@rvp.test");
    v["created_at"] = json!("2026-11-27T10:00:00.000000+00:00");
    v["modified_at"] = json!("2026-11-27T10:00:00.000000+00:00");
    v["is_read_only"] = json!(false);
    v["notify_list"] = json!([]);
    if v.get("template_variables").is_none() {
        v["template_variables"] = json!([]);
    }
    if v.get("description").is_none() {
        v["description"] = Value::Null;
    }
    v
}

async fn list(
    State(state): State<Shared>,
    headers: HeaderMap,
    Query(q): Query<BTreeMap<String, String>>,
) -> Response {
    if let Some(r) = gate(&state, &headers, &Method::GET, "/api/v1/dashboard") {
        return r;
    }
    let s = state.lock().unwrap();
    let start: usize = q.get("start").and_then(|v| v.parse().ok()).unwrap_or(0);
    let count: usize = q.get("count").and_then(|v| v.parse().ok()).unwrap_or(100);
    let page: Vec<Value> = s
        .dashboards
        .values()
        .skip(start)
        .take(count)
        .map(|d| json!({"id": d["id"], "title": d["title"], "layout_type": d["layout_type"]}))
        .collect();
    answer(StatusCode::OK, json!({"dashboards": page}))
}

async fn create(State(state): State<Shared>, headers: HeaderMap, body: String) -> Response {
    if let Some(r) = gate(&state, &headers, &Method::POST, "/api/v1/dashboard") {
        return r;
    }
    let Ok(body) = serde_json::from_str::<Value>(&body) else {
        return answer(StatusCode::BAD_REQUEST, json!({"errors": ["not JSON"]}));
    };
    if let Some(e) = invalid(&body) {
        return answer(StatusCode::BAD_REQUEST, json!({"errors": [e]}));
    }
    let mut s = state.lock().unwrap();
    s.next += 1;
    let id = format!("abc-{:03}-xyz", s.next);
    let mut next = s.next * 100;
    let v = stored(&id, &body, &mut next);
    s.dashboards.insert(id, v.clone());
    answer(StatusCode::OK, v)
}

async fn fetch(
    State(state): State<Shared>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    if let Some(r) = gate(
        &state,
        &headers,
        &Method::GET,
        &format!("/api/v1/dashboard/{id}"),
    ) {
        return r;
    }
    match state.lock().unwrap().dashboards.get(&id) {
        Some(v) => answer(StatusCode::OK, v.clone()),
        None => answer(
            StatusCode::NOT_FOUND,
            json!({"errors": ["Dashboard not found"]}),
        ),
    }
}

async fn update(
    State(state): State<Shared>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: String,
) -> Response {
    if let Some(r) = gate(
        &state,
        &headers,
        &Method::PUT,
        &format!("/api/v1/dashboard/{id}"),
    ) {
        return r;
    }
    let Ok(body) = serde_json::from_str::<Value>(&body) else {
        return answer(StatusCode::BAD_REQUEST, json!({"errors": ["not JSON"]}));
    };
    if let Some(e) = invalid(&body) {
        return answer(StatusCode::BAD_REQUEST, json!({"errors": [e]}));
    }
    let mut s = state.lock().unwrap();
    if !s.dashboards.contains_key(&id) {
        return answer(
            StatusCode::NOT_FOUND,
            json!({"errors": ["Dashboard not found"]}),
        );
    }
    let mut next = 50_000 + s.seen.len() as u64 * 100;
    let v = stored(&id, &body, &mut next);
    s.dashboards.insert(id, v.clone());
    answer(StatusCode::OK, v)
}
