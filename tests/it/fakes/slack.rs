//! A fake Slack Web API on 127.0.0.1:0 that CHECKS the protocol the Slack receiver speaks, so a
//! test failing here means real Slack would have refused the same request.
//!
//! Checked: `Authorization: Bearer <token>` (missing: `not_authed`, wrong: `invalid_auth`), the
//! Content-Type of POSTs, the required fields of `chat.postMessage` / `chat.update` (channel,
//! `text` or `blocks`, `ts`), the `thread_ts` form and that it names a message, Block Kit limits
//! (<= 50 blocks, section text <= 3,000, header <= 150), and the external upload flow
//! (`files.getUploadURLExternal` with `filename` + `length`, a POST of exactly `length` bytes to
//! the returned `upload_url`, `files.completeUploadExternal` naming the uploaded file id).
//! The retired `files.upload` answers `method_deprecated`. Message metadata is checked
//! (`event_type` + `event_payload`) and kept; `conversations.history` (by channel id only,
//! metadata only with `include_all_metadata=true`, newest first) and `conversations.list` read
//! the channel back.
//!
//! Every request is recorded in order ([`FakeSlack::calls`]), refused ones included. Tests can
//! make the next N calls answer 429 + `Retry-After`, a 5xx, or `ok:false` with an error, or
//! never answer ([`FakeSlack::fail_next`]), or take the whole API down and bring it back
//! ([`FakeSlack::set_down`]). The channel's messages, with edits and thread replies applied, are
//! in [`FakeSlack::messages`].
//!
//! ```ignore
//! let slack = FakeSlack::start().await;
//! // point the receiver at slack.api_url() with slack.token()
//! slack.fail_next(1, Fault::RateLimited { retry_after: 3 });
//! assert_eq!(slack.calls_to("chat.postMessage").len(), 2);
//! ```

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// The bot token the fake accepts unless started with [`FakeSlack::start_with_token`].
pub const TOKEN: &str = "xoxb-fake-1234567890-0987654321-TOKENSECRETdoNotLog";

/// Slack's Block Kit limits, as the fake enforces them.
pub const MAX_BLOCKS: usize = 50;
pub const MAX_SECTION_TEXT: usize = 3000;
pub const MAX_HEADER_TEXT: usize = 150;
/// Slack truncates `text` beyond 40,000 characters and refuses it beyond (`msg_too_long`).
pub const MAX_TEXT: usize = 40_000;

/// One request the fake received, in arrival order.
#[derive(Debug, Clone)]
pub struct Call {
    /// The Web API method (`chat.postMessage`, `files.getUploadURLExternal`, ...), or `upload`
    /// for the POST of a file's bytes to its `upload_url`.
    pub method: String,
    /// `GET` or `POST`.
    pub http_method: String,
    /// The request's Content-Type (empty when absent).
    pub content_type: String,
    /// Whether `Authorization: Bearer <token>` was present and right.
    pub authorized: bool,
    /// The request's parameters: the JSON body, or the form/query fields as a JSON object
    /// (`blocks` and `files` decoded from their JSON strings). For `upload`:
    /// `{"file_id": .., "bytes": <length received>}`.
    pub body: Value,
    /// The HTTP status the fake answered.
    pub status: u16,
    /// The JSON the fake answered (`{"ok":false,"error":..}` for refusals); `Null` for a
    /// non-JSON answer (down, upload).
    pub response: Value,
}

impl Call {
    /// `true` when Slack would have accepted it (200 and `ok:true`, or a completed upload POST).
    pub fn ok(&self) -> bool {
        self.status == 200 && (self.method == "upload" || self.response["ok"] == true)
    }

    /// The `ok:false` error code, if the call was refused with one.
    pub fn error(&self) -> Option<&str> {
        self.response["error"].as_str()
    }
}

/// What the fake does to the next calls (see [`FakeSlack::fail_next`]).
#[derive(Debug, Clone, PartialEq)]
pub enum Fault {
    /// HTTP 429 with `Retry-After: <secs>` and `{"ok":false,"error":"ratelimited"}`.
    RateLimited { retry_after: u64 },
    /// HTTP 200 with `{"ok":false,"error":"ratelimited"}` (no Retry-After header).
    RateLimitedOkFalse,
    /// This HTTP status with a short non-JSON body (as Slack's edge answers 5xx).
    Status(u16),
    /// HTTP 200 with `{"ok":false,"error":<code>}`.
    ApiError(String),
    /// Never answers (the request is recorded with status 0): for client timeouts, without
    /// any sleep in the test.
    Hang,
    /// Carries the call out (a message is posted) and then never answers: Slack did it, the
    /// client never learns (a timeout, or a crash of the sender while it waited).
    ApplyThenHang,
}

/// A message in a channel, with edits and thread replies applied.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    pub channel: String,
    pub ts: String,
    /// Set for a reply in a thread: the parent's `ts`.
    pub thread_ts: Option<String>,
    pub text: String,
    /// The Block Kit blocks (`Null` when only `text` was sent).
    pub blocks: Value,
    /// How many times `chat.update` changed it.
    pub edits: u32,
    /// Ids of files shared into this message's thread (by `files.completeUploadExternal`).
    pub files: Vec<String>,
    /// The message metadata (`event_type` + `event_payload`) it was posted with, if any.
    pub metadata: Value,
}

/// A file whose bytes arrived through the external upload flow.
#[derive(Debug, Clone, PartialEq)]
pub struct Upload {
    pub file_id: String,
    pub filename: String,
    pub length: usize,
    /// The bytes POSTed to the `upload_url` (empty until then).
    pub bytes: Vec<u8>,
    /// Set by `files.completeUploadExternal`: the channel and thread it was shared to.
    pub shared_to: Option<(String, Option<String>)>,
}

#[derive(Default)]
struct Inner {
    calls: Vec<Call>,
    faults: VecDeque<(Option<String>, Fault)>,
    down: bool,
    /// `#name` -> `Cxxxx`.
    channels: BTreeMap<String, String>,
    messages: Vec<Message>,
    uploads: Vec<Upload>,
    seq: u64,
}

struct Shared {
    token: String,
    addr: SocketAddr,
    inner: Mutex<Inner>,
    changed: tokio::sync::Notify,
}

/// The fake server. Dropping it stops it.
pub struct FakeSlack {
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FakeSlack {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FakeSlack {
    /// Starts the fake on 127.0.0.1:0, accepting [`TOKEN`].
    pub async fn start() -> FakeSlack {
        Self::start_with_token(TOKEN).await
    }

    pub async fn start_with_token(token: &str) -> FakeSlack {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind fake Slack");
        let addr = listener.local_addr().expect("local addr");
        let shared = Arc::new(Shared {
            token: token.to_string(),
            addr,
            inner: Mutex::new(Inner::default()),
            changed: tokio::sync::Notify::new(),
        });
        let app = Router::new().fallback(handle).with_state(shared.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FakeSlack { shared, task }
    }

    /// The Web API base to configure as the receiver's `api_url` (`http://127.0.0.1:N/api`).
    pub fn api_url(&self) -> String {
        format!("http://{}/api", self.shared.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.shared.addr
    }

    /// The token the fake accepts.
    pub fn token(&self) -> &str {
        &self.shared.token
    }

    /// Every request so far, in arrival order, refused ones included.
    pub fn calls(&self) -> Vec<Call> {
        self.lock().calls.clone()
    }

    /// The calls to one method (`chat.postMessage`, `chat.update`, `upload`, ...), in order.
    pub fn calls_to(&self, method: &str) -> Vec<Call> {
        self.lock()
            .calls
            .iter()
            .filter(|c| c.method == method)
            .cloned()
            .collect()
    }

    /// The method names of every call, in order: a compact thing to assert on.
    pub fn methods(&self) -> Vec<String> {
        self.lock().calls.iter().map(|c| c.method.clone()).collect()
    }

    /// Messages in every channel (top-level and thread replies), in posting order, with edits
    /// applied.
    pub fn messages(&self) -> Vec<Message> {
        self.lock().messages.clone()
    }

    /// Top-level messages only (no thread replies).
    pub fn top_level(&self) -> Vec<Message> {
        self.messages()
            .into_iter()
            .filter(|m| m.thread_ts.is_none())
            .collect()
    }

    /// The replies in the thread of the message `ts`, in order.
    pub fn thread(&self, ts: &str) -> Vec<Message> {
        self.messages()
            .into_iter()
            .filter(|m| m.thread_ts.as_deref() == Some(ts))
            .collect()
    }

    pub fn uploads(&self) -> Vec<Upload> {
        self.lock().uploads.clone()
    }

    /// Puts a top-level message from another app into `#name` (with any metadata, even a
    /// payload with numbers and nested objects, as Slack allows); returns its `ts`.
    pub fn add_foreign_message(&self, name: &str, text: &str, metadata: Value) -> String {
        let mut g = self.lock();
        let channel = channel_id(&mut g, name);
        g.seq += 1;
        let ts = format!("1700000000.{:06}", g.seq);
        g.messages.push(Message {
            channel,
            ts: ts.clone(),
            thread_ts: None,
            text: text.to_string(),
            blocks: Value::Null,
            edits: 0,
            files: Vec::new(),
            metadata,
        });
        ts
    }

    /// The channel id the fake gave `#name` (created on first use).
    pub fn channel_id(&self, name: &str) -> String {
        channel_id(&mut self.lock(), name)
    }

    /// The next `n` API calls (any method) answer with `fault`; faults queue up in order.
    pub fn fail_next(&self, n: usize, fault: Fault) {
        let mut g = self.lock();
        for _ in 0..n {
            g.faults.push_back((None, fault.clone()));
        }
    }

    /// The next `n` calls to `method` answer with `fault` (other methods are not affected).
    pub fn fail_next_for(&self, method: &str, n: usize, fault: Fault) {
        let mut g = self.lock();
        for _ in 0..n {
            g.faults
                .push_back((Some(method.to_string()), fault.clone()));
        }
    }

    /// Down: every request (API and uploads) answers 503 with a non-JSON body and closes the
    /// connection, as Slack's edge does during an outage; up again: normal service. Calls made
    /// while down are recorded with status 503.
    pub fn set_down(&self, down: bool) {
        self.lock().down = down;
    }

    /// Waits (without sleeping: woken by each request) until `pred` holds over the calls so
    /// far, or panics after `timeout`. For tests driving the daemon, which sends on its own time.
    pub async fn wait_until(&self, timeout: Duration, pred: impl Fn(&[Call]) -> bool) -> Vec<Call> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.shared.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            {
                let g = self.lock();
                if pred(&g.calls) {
                    return g.calls.clone();
                }
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                let methods = self.methods();
                panic!("fake Slack: condition not met within {timeout:?}; calls: {methods:?}");
            }
        }
    }

    /// Waits until `method` has been accepted `n` times (see [`FakeSlack::wait_until`]).
    pub async fn wait_for_ok(&self, method: &str, n: usize, timeout: Duration) -> Vec<Call> {
        self.wait_until(timeout, |calls| {
            calls
                .iter()
                .filter(|c| c.method == method && c.ok())
                .count()
                >= n
        })
        .await
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.shared.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn channel_id(g: &mut Inner, name: &str) -> String {
    let n = g.channels.len();
    g.channels
        .entry(name.to_string())
        .or_insert_with(|| format!("C{:08}", n + 1))
        .clone()
}

/// `#name` -> its id; an id the fake gave out -> itself; anything else: unknown.
fn resolve_channel(g: &mut Inner, channel: &str, create_names: bool) -> Option<String> {
    if let Some(name) = channel.strip_prefix('#') {
        return if create_names {
            Some(channel_id(g, &format!("#{name}")))
        } else {
            None
        };
    }
    g.channels
        .values()
        .any(|id| id == channel)
        .then(|| channel.to_string())
}

fn slack_error(code: &str) -> (StatusCode, Value) {
    (StatusCode::OK, json!({"ok": false, "error": code}))
}

fn is_ts(s: &str) -> bool {
    match s.split_once('.') {
        Some((a, b)) => {
            !a.is_empty()
                && !b.is_empty()
                && a.bytes().all(|c| c.is_ascii_digit())
                && b.bytes().all(|c| c.is_ascii_digit())
        }
        None => false,
    }
}

/// Form or query fields as a JSON object; `blocks`, `files` and `attachments` are JSON strings
/// in form encoding and are decoded.
fn form_to_json(raw: &[u8]) -> Value {
    let mut map = serde_json::Map::new();
    for (k, v) in url::form_urlencoded::parse(raw) {
        let v = if matches!(k.as_ref(), "blocks" | "files" | "attachments" | "metadata") {
            serde_json::from_str(&v).unwrap_or(Value::String(v.into_owned()))
        } else {
            Value::String(v.into_owned())
        };
        map.insert(k.into_owned(), v);
    }
    Value::Object(map)
}

fn str_field<'a>(body: &'a Value, key: &str) -> Option<&'a str> {
    body.get(key)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

async fn handle(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    bytes: Bytes,
) -> Response {
    let path = uri.path().to_string();
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let authorized = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .is_some_and(|t| t == shared.token);
    let has_auth = headers.contains_key(header::AUTHORIZATION);

    let (api_method, is_upload) = if let Some(m) = path.strip_prefix("/api/") {
        (m.to_string(), false)
    } else if let Some(id) = path.strip_prefix("/upload/v1/") {
        (id.to_string(), true)
    } else {
        (path.clone(), false)
    };

    // Parameters: JSON body, form body, or the query string.
    let ct = content_type.to_ascii_lowercase();
    let mut body = if is_upload {
        json!({"file_id": api_method, "bytes": bytes.len()})
    } else if ct.starts_with("application/json") {
        serde_json::from_slice(&bytes).unwrap_or(Value::Null)
    } else if ct.starts_with("application/x-www-form-urlencoded") {
        form_to_json(&bytes)
    } else {
        Value::Object(Default::default())
    };
    if !is_upload
        && let (Some(q), Value::Object(map)) = (uri.query(), &mut body)
        && let Value::Object(qm) = form_to_json(q.as_bytes())
    {
        for (k, v) in qm {
            map.entry(k).or_insert(v);
        }
    }

    let call_method = if is_upload {
        "upload".to_string()
    } else {
        api_method.clone()
    };
    let mut extra_headers: Vec<(header::HeaderName, String)> = Vec::new();
    let mut hang = false;
    // The lock is released before any await (the handler must stay Send).
    let (status, answer) = {
        let mut g = shared.inner.lock().unwrap_or_else(|p| p.into_inner());
        let (status, answer): (StatusCode, Option<Value>) = if g.down {
            extra_headers.push((header::CONNECTION, "close".into()));
            (StatusCode::SERVICE_UNAVAILABLE, None)
        } else if let Some(i) = g
            .faults
            .iter()
            .position(|(m, _)| m.as_deref().is_none_or(|m| m == call_method))
        {
            let (_, fault) = g.faults.remove(i).expect("index from position");
            match fault {
                Fault::RateLimited { retry_after } => {
                    extra_headers.push((header::RETRY_AFTER, retry_after.to_string()));
                    (
                        StatusCode::TOO_MANY_REQUESTS,
                        Some(json!({"ok": false, "error": "ratelimited"})),
                    )
                }
                Fault::RateLimitedOkFalse => {
                    let (s, v) = slack_error("ratelimited");
                    (s, Some(v))
                }
                Fault::Status(code) => (
                    StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
                    None,
                ),
                Fault::ApiError(code) => {
                    let (s, v) = slack_error(&code);
                    (s, Some(v))
                }
                Fault::Hang => {
                    hang = true;
                    (StatusCode::OK, None)
                }
                Fault::ApplyThenHang => {
                    hang = true;
                    let (s, v) = api(&mut g, &shared, &api_method, &body);
                    (s, Some(v))
                }
            }
        } else if is_upload {
            upload(&mut g, &api_method, &method, &bytes)
        } else if !has_auth {
            let (s, v) = slack_error("not_authed");
            (s, Some(v))
        } else if !authorized {
            let (s, v) = slack_error("invalid_auth");
            (s, Some(v))
        } else if method == Method::POST
            && !(ct.starts_with("application/json")
                || ct.starts_with("application/x-www-form-urlencoded")
                || ct.starts_with("multipart/form-data"))
        {
            let (s, v) = slack_error("invalid_form_data");
            (s, Some(v))
        } else if body.is_null() {
            let (s, v) = slack_error("invalid_json");
            (s, Some(v))
        } else {
            let (s, v) = api(&mut g, &shared, &api_method, &body);
            (s, Some(v))
        };

        g.calls.push(Call {
            method: call_method,
            http_method: method.to_string(),
            content_type,
            authorized,
            body,
            status: if hang { 0 } else { status.as_u16() },
            response: answer.clone().unwrap_or(Value::Null),
        });
        (status, answer)
    };
    shared.changed.notify_waiters();
    if hang {
        std::future::pending::<()>().await;
    }

    let mut resp = match answer {
        Some(v) => (
            status,
            [(header::CONTENT_TYPE, "application/json; charset=utf-8")],
            v.to_string(),
        )
            .into_response(),
        None if is_upload && status == StatusCode::OK => (
            status,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            format!("OK - {}", bytes.len()),
        )
            .into_response(),
        None => (
            status,
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            format!("<html><body>{status}</body></html>"),
        )
            .into_response(),
    };
    for (k, v) in extra_headers {
        resp.headers_mut()
            .insert(k, v.parse().expect("header value"));
    }
    resp
}

/// The POST of a file's bytes to its `upload_url`: exactly the announced `length`.
fn upload(
    g: &mut Inner,
    file_id: &str,
    method: &Method,
    bytes: &[u8],
) -> (StatusCode, Option<Value>) {
    if method != Method::POST {
        return (StatusCode::METHOD_NOT_ALLOWED, None);
    }
    match g.uploads.iter_mut().find(|u| u.file_id == file_id) {
        Some(u) if u.bytes.is_empty() && bytes.len() == u.length => {
            u.bytes = bytes.to_vec();
            (StatusCode::OK, None)
        }
        Some(_) => (StatusCode::BAD_REQUEST, None),
        None => (StatusCode::NOT_FOUND, None),
    }
}

/// Checks a message's content: `text` or `blocks`, and Block Kit limits.
fn check_content(body: &Value) -> Result<(String, Value), &'static str> {
    let text = body.get("text").and_then(Value::as_str).unwrap_or("");
    let blocks = body.get("blocks").cloned().unwrap_or(Value::Null);
    if text.is_empty() && blocks.as_array().is_none_or(|b| b.is_empty()) {
        return Err("no_text");
    }
    if text.chars().count() > MAX_TEXT {
        return Err("msg_too_long");
    }
    if !blocks.is_null() {
        let Some(list) = blocks.as_array() else {
            return Err("invalid_blocks_format");
        };
        if list.len() > MAX_BLOCKS {
            return Err("invalid_blocks");
        }
        for b in list {
            let len = |v: &Value| v.as_str().map(|s| s.chars().count());
            match b["type"].as_str() {
                Some("section") => {
                    let t = &b["text"];
                    if !matches!(t["type"].as_str(), Some("mrkdwn" | "plain_text"))
                        && b.get("fields").is_none()
                    {
                        return Err("invalid_blocks");
                    }
                    if len(&t["text"]).unwrap_or(0) > MAX_SECTION_TEXT {
                        return Err("invalid_blocks");
                    }
                }
                Some("header") => {
                    let t = &b["text"];
                    if t["type"] != "plain_text" {
                        return Err("invalid_blocks");
                    }
                    match len(&t["text"]) {
                        Some(n) if n > 0 && n <= MAX_HEADER_TEXT => {}
                        _ => return Err("invalid_blocks"),
                    }
                }
                Some("context") => {
                    let els = b["elements"].as_array();
                    if els.is_none_or(|e| e.is_empty() || e.len() > 10) {
                        return Err("invalid_blocks");
                    }
                }
                Some("divider" | "image" | "actions" | "rich_text" | "markdown") => {}
                _ => return Err("invalid_blocks"),
            }
        }
    }
    Ok((text.to_string(), blocks))
}

/// Checks `metadata` when present: an object with a non-empty `event_type` of lowercase letters,
/// digits and underscores, and an `event_payload` object (Slack refuses anything else).
fn check_metadata(body: &Value) -> Result<Value, &'static str> {
    let m = match body.get("metadata") {
        None | Some(Value::Null) => return Ok(Value::Null),
        Some(m) => m,
    };
    let event_type = m.get("event_type").and_then(Value::as_str).unwrap_or("");
    if event_type.is_empty()
        || !event_type
            .bytes()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'_')
    {
        return Err("invalid_metadata_format");
    }
    if !m.get("event_payload").is_some_and(Value::is_object) {
        return Err("invalid_metadata_schema");
    }
    Ok(m.clone())
}

fn api(g: &mut Inner, shared: &Shared, method: &str, body: &Value) -> (StatusCode, Value) {
    match method {
        "chat.postMessage" => {
            let Some(channel) = str_field(body, "channel") else {
                return slack_error("channel_not_found");
            };
            let Some(channel) = resolve_channel(g, channel, true) else {
                return slack_error("channel_not_found");
            };
            let (text, blocks) = match check_content(body) {
                Ok(c) => c,
                Err(e) => return slack_error(e),
            };
            let thread_ts = match body.get("thread_ts") {
                None | Some(Value::Null) => None,
                Some(Value::String(t)) if is_ts(t) => {
                    if !g
                        .messages
                        .iter()
                        .any(|m| m.channel == channel && &m.ts == t && m.thread_ts.is_none())
                    {
                        return slack_error("thread_not_found");
                    }
                    Some(t.clone())
                }
                Some(_) => return slack_error("invalid_thread_ts"),
            };
            let metadata = match check_metadata(body) {
                Ok(m) => m,
                Err(e) => return slack_error(e),
            };
            g.seq += 1;
            let ts = format!("1700000000.{:06}", g.seq);
            g.messages.push(Message {
                channel: channel.clone(),
                ts: ts.clone(),
                thread_ts: thread_ts.clone(),
                text: text.clone(),
                blocks: blocks.clone(),
                edits: 0,
                files: Vec::new(),
                metadata,
            });
            let mut message =
                json!({"type": "message", "ts": ts, "text": text, "bot_id": "B0FAKE"});
            if let Some(t) = thread_ts {
                message["thread_ts"] = json!(t);
            }
            (
                StatusCode::OK,
                json!({"ok": true, "channel": channel, "ts": ts, "message": message}),
            )
        }
        "chat.update" => {
            // chat.update needs the channel id, not its name.
            let Some(channel) =
                str_field(body, "channel").and_then(|c| resolve_channel(g, c, false))
            else {
                return slack_error("channel_not_found");
            };
            let Some(ts) = str_field(body, "ts").map(str::to_string) else {
                return slack_error("message_not_found");
            };
            if !is_ts(&ts) {
                return slack_error("invalid_ts");
            }
            let (text, blocks) = match check_content(body) {
                Ok(c) => c,
                Err(e) => return slack_error(e),
            };
            let metadata = match check_metadata(body) {
                Ok(m) => m,
                Err(e) => return slack_error(e),
            };
            let Some(m) = g
                .messages
                .iter_mut()
                .find(|m| m.channel == channel && m.ts == ts)
            else {
                return slack_error("message_not_found");
            };
            // Without `metadata` an edit keeps the message's metadata.
            if !metadata.is_null() {
                m.metadata = metadata;
            }
            m.text = text.clone();
            m.blocks = blocks;
            m.edits += 1;
            (
                StatusCode::OK,
                json!({"ok": true, "channel": channel, "ts": ts, "text": text,
                       "message": {"text": text, "bot_id": "B0FAKE"}}),
            )
        }
        "files.getUploadURLExternal" => {
            let filename = str_field(body, "filename");
            let length = match body.get("length") {
                Some(Value::String(s)) => s.parse::<usize>().ok(),
                Some(Value::Number(n)) => n.as_u64().map(|n| n as usize),
                _ => None,
            };
            let (Some(filename), Some(length)) = (filename, length) else {
                return slack_error("invalid_arguments");
            };
            if length == 0 {
                return slack_error("invalid_arguments");
            }
            g.seq += 1;
            let file_id = format!("F{:08}", g.seq);
            g.uploads.push(Upload {
                file_id: file_id.clone(),
                filename: filename.to_string(),
                length,
                bytes: Vec::new(),
                shared_to: None,
            });
            (
                StatusCode::OK,
                json!({"ok": true, "file_id": file_id,
                       "upload_url": format!("http://{}/upload/v1/{file_id}", shared.addr)}),
            )
        }
        "files.completeUploadExternal" => {
            let files: Vec<Value> = match body.get("files") {
                Some(Value::Array(a)) if !a.is_empty() => a.clone(),
                _ => return slack_error("invalid_arguments"),
            };
            let channel = match str_field(body, "channel_id") {
                Some(c) => match resolve_channel(g, c, false) {
                    Some(c) => Some(c),
                    None => return slack_error("channel_not_found"),
                },
                None => None,
            };
            let thread_ts = str_field(body, "thread_ts").map(str::to_string);
            if let Some(t) = &thread_ts {
                let Some(c) = &channel else {
                    return slack_error("invalid_arguments");
                };
                if !is_ts(t)
                    || !g
                        .messages
                        .iter()
                        .any(|m| &m.channel == c && &m.ts == t && m.thread_ts.is_none())
                {
                    return slack_error("invalid_thread_ts");
                }
            }
            let mut out = Vec::new();
            for f in &files {
                let Some(id) = f.get("id").and_then(Value::as_str) else {
                    return slack_error("invalid_arguments");
                };
                match g.uploads.iter().find(|u| u.file_id == id) {
                    Some(u) if u.bytes.len() == u.length && u.shared_to.is_none() => {}
                    Some(_) => return slack_error("file_upload_incomplete"),
                    None => return slack_error("file_not_found"),
                }
                out.push(
                    json!({"id": id, "title": f.get("title").cloned().unwrap_or(Value::Null)}),
                );
            }
            for f in &out {
                let id = f["id"].as_str().expect("checked").to_string();
                if let Some(u) = g.uploads.iter_mut().find(|u| u.file_id == id) {
                    u.shared_to = channel.clone().map(|c| (c, thread_ts.clone()));
                }
                if let (Some(c), Some(t)) = (&channel, &thread_ts)
                    && let Some(m) = g
                        .messages
                        .iter_mut()
                        .find(|m| &m.channel == c && &m.ts == t)
                {
                    m.files.push(id);
                }
            }
            (StatusCode::OK, json!({"ok": true, "files": out}))
        }
        "conversations.history" => {
            // History is read by channel id; a `#name` is `channel_not_found`.
            let Some(channel) =
                str_field(body, "channel").and_then(|c| resolve_channel(g, c, false))
            else {
                return slack_error("channel_not_found");
            };
            let limit = match body.get("limit") {
                None => 100,
                Some(Value::String(l)) => match l.parse::<usize>() {
                    Ok(n) if (1..=999).contains(&n) => n,
                    _ => return slack_error("invalid_limit"),
                },
                Some(_) => return slack_error("invalid_limit"),
            };
            let with_metadata = str_field(body, "include_all_metadata") == Some("true");
            let top: Vec<&Message> = g
                .messages
                .iter()
                .rev()
                .filter(|m| m.channel == channel && m.thread_ts.is_none())
                .collect();
            let messages: Vec<Value> = top
                .iter()
                .take(limit)
                .map(|m| {
                    let mut v = json!({"type": "message", "ts": m.ts, "text": m.text,
                                       "bot_id": "B0FAKE"});
                    if !m.blocks.is_null() {
                        v["blocks"] = m.blocks.clone();
                    }
                    if with_metadata && !m.metadata.is_null() {
                        v["metadata"] = m.metadata.clone();
                    }
                    v
                })
                .collect();
            (
                StatusCode::OK,
                json!({"ok": true, "messages": messages, "has_more": top.len() > limit,
                       "response_metadata": {"next_cursor": ""}}),
            )
        }
        "conversations.list" => {
            let channels: Vec<Value> = g
                .channels
                .iter()
                .map(|(name, id)| {
                    json!({"id": id, "name": name.trim_start_matches('#'), "created": 1_700_000_000,
                           "is_channel": true, "is_archived": false})
                })
                .collect();
            (
                StatusCode::OK,
                json!({"ok": true, "channels": channels, "response_metadata": {"next_cursor": ""}}),
            )
        }
        "files.upload" => slack_error("method_deprecated"),
        "auth.test" => (
            StatusCode::OK,
            json!({"ok": true, "team": "fake", "user": "synmon", "team_id": "T0FAKE"}),
        ),
        _ => slack_error("unknown_method"),
    }
}

/// A real PNG image (`w` x `h`, RGB, a red/white stripe pattern), encoded here with stored
/// deflate blocks so tests need no image crate. Checksums are computed, so any PNG decoder
/// accepts it.
pub fn png(w: u32, h: u32) -> Vec<u8> {
    fn crc32(data: &[u8]) -> u32 {
        let mut c = 0xffff_ffffu32;
        for &b in data {
            c ^= u32::from(b);
            for _ in 0..8 {
                c = if c & 1 != 0 {
                    0xedb8_8320 ^ (c >> 1)
                } else {
                    c >> 1
                };
            }
        }
        !c
    }
    fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
        out.extend_from_slice(&(data.len() as u32).to_be_bytes());
        let mut body = kind.to_vec();
        body.extend_from_slice(data);
        out.extend_from_slice(&body);
        out.extend_from_slice(&crc32(&body).to_be_bytes());
    }
    let mut raw = Vec::new();
    for y in 0..h {
        raw.push(0); // filter: none
        for x in 0..w {
            let red = (x / 4 + y / 4) % 2 == 0;
            raw.extend_from_slice(if red {
                &[220, 30, 30]
            } else {
                &[255, 255, 255]
            });
        }
    }
    // zlib: header, stored blocks of <= 65535 bytes, adler32.
    let mut z = vec![0x78, 0x01];
    let blocks: Vec<&[u8]> = raw.chunks(65_535).collect();
    for (i, b) in blocks.iter().enumerate() {
        z.push(u8::from(i + 1 == blocks.len()));
        let len = b.len() as u16;
        z.extend_from_slice(&len.to_le_bytes());
        z.extend_from_slice(&(!len).to_le_bytes());
        z.extend_from_slice(b);
    }
    let (mut a, mut b) = (1u32, 0u32);
    for &byte in &raw {
        a = (a + u32::from(byte)) % 65_521;
        b = (b + a) % 65_521;
    }
    z.extend_from_slice(&((b << 16) | a).to_be_bytes());

    let mut out = vec![0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a];
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&w.to_be_bytes());
    ihdr.extend_from_slice(&h.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]); // 8-bit RGB, no interlace
    chunk(&mut out, b"IHDR", &ihdr);
    chunk(&mut out, b"IDAT", &z);
    chunk(&mut out, b"IEND", &[]);
    out
}
