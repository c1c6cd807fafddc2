//! A small WebDriver BiDi client: commands and their answers over the session's WebSocket
//! (`webSocketUrl` in the new-session response), events to one optional listener or answered
//! at once.
//!
//! fantoccini speaks classic WebDriver only; BiDi adds what classic lacks and synmon needs to
//! keep a browser across runs: user contexts (`browser.createUserContext`, the standard form of
//! Playwright's browser contexts: cookies, storage, cache and service workers of their own, gone
//! with the context), preload scripts, network interception. Only `webdriver.rs` uses it, so the
//! browser is still spoken to from one module.
//!
//! The same framing (`id`/`method`/`params` out; `id` + `result` or error, or an event, in)
//! is the Chrome DevTools Protocol's, so one client serves both: BiDi answers an error with
//! `type: "error"`, CDP with `error: {code, message}`; BiDi events carry `type: "event"`, CDP's
//! only a `method`. The run tab's request interception (trace headers) speaks CDP with it.
//!
//! One task owns the socket: it writes commands from a channel and routes each answer to the
//! caller waiting on its `id`. When the socket closes (the browser or driver died), every
//! waiting and later call fails at once with [`BidiError::Closed`], which the pool reads as
//! "this browser is gone".

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot};
use tokio_tungstenite::tungstenite::Message;

/// How a BiDi command failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum BidiError {
    #[error("cannot open the WebDriver BiDi socket {url}: {detail}")]
    Connect { url: String, detail: String },
    #[error("the WebDriver BiDi socket is closed")]
    Closed,
    #[error("{method}: no answer within {} ms", .after.as_millis())]
    Timeout { method: String, after: Duration },
    /// The remote end's error answer (`error`, `message` of the BiDi error response).
    #[error("{method}: {error}: {message}")]
    Remote {
        method: String,
        error: String,
        message: String,
    },
}

type Pending = Arc<Mutex<HashMap<u64, oneshot::Sender<Result<Value, (String, String)>>>>>;

/// A command sent in answer to an event: the DevTools session it is for (`None`: the socket's
/// own), its method and params.
pub type Reply = (Option<String>, &'static str, Value);

/// What gives the commands that answer an event, in the order they are to be sent (none: the
/// event needs no answer).
pub type Answerer = Box<dyn FnMut(&Value) -> Vec<Reply> + Send>;

/// Where a socket's events go.
pub enum Events {
    /// To a listener.
    Channel(mpsc::UnboundedSender<Value>),
    /// Answered in the socket's own task: the command the function gives for an event is
    /// written at once (its own answer is dropped). For events that hold the browser until
    /// answered (a paused request): no other task has to run first.
    Answer(Answerer),
    /// As `Answer`, for the events of these methods only: the others are dropped unread (a
    /// DevTools session sends every event of the domains it enabled, most of them of no use).
    Only(&'static [&'static str], Answerer),
}

/// The method of a CDP event as it arrives (`{"method":"X",...`), read without parsing the
/// message; `None` for anything else (an answer, a BiDi message, another layout).
fn cdp_event_method(text: &str) -> Option<&str> {
    let rest = text.strip_prefix(r#"{"method":""#)?;
    rest.get(..rest.find('"')?)
}

/// The id of a CDP answer as it arrives (`{"id":N,...`), read without parsing the message;
/// `None` for anything else.
fn cdp_answer_id(text: &str) -> Option<u64> {
    let rest = text.strip_prefix(r#"{"id":"#)?;
    let end = rest.find(|c: char| !c.is_ascii_digit())?;
    rest[..end].parse().ok()
}

/// A BiDi connection. Cheap to share behind an `Arc`; dropping the last handle closes the socket.
pub struct Bidi {
    out: mpsc::UnboundedSender<Message>,
    pending: Pending,
    next_id: Arc<AtomicU64>,
    closed: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for Bidi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bidi")
            .field("closed", &self.is_closed())
            .finish_non_exhaustive()
    }
}

/// The socket's read buffer (see [`Bidi::connect`]).
const READ_BUFFER: usize = 16 * 1024;

impl Bidi {
    /// Connects to `url` (the session's `webSocketUrl`). `events` receives every event the
    /// session is subscribed to (`{"method": ..., "params": ...}`), or answers it.
    pub async fn connect(url: &str, mut events: Option<Events>) -> Result<Self, BidiError> {
        // tungstenite zero-fills its read buffer up to `read_buffer_size` before every read,
        // also the one that finds nothing more to read after each message: 128 KiB by default,
        // ~2 % of a browser run's own CPU (BENCHMARKS.md). Our messages are a few KiB; a larger
        // one still arrives whole (the buffer grows to fit a frame).
        let config = tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default()
            .read_buffer_size(READ_BUFFER);
        let (ws, _) = tokio_tungstenite::connect_async_with_config(url, Some(config), true)
            .await
            .map_err(|e| BidiError::Connect {
                url: url.to_string(),
                detail: e.to_string(),
            })?;
        let (mut sink, mut stream) = ws.split();
        let (out, mut rx) = mpsc::unbounded_channel::<Message>();
        let pending: Pending = Arc::new(Mutex::new(HashMap::new()));
        let closed = Arc::new(AtomicBool::new(false));
        let next_id = Arc::new(AtomicU64::new(1));
        let (p, c, ids) = (pending.clone(), closed.clone(), next_id.clone());
        let task = tokio::spawn(async move {
            loop {
                tokio::select! {
                    msg = rx.recv() => match msg {
                        Some(m) => {
                            // Everything queued goes out in one write: a step's input events
                            // (a key down and up per character) are sent together.
                            let mut failed = sink.feed(m).await.is_err();
                            while !failed && let Ok(m) = rx.try_recv() {
                                failed = sink.feed(m).await.is_err();
                            }
                            if failed || sink.flush().await.is_err() { break }
                        }
                        None => { let _ = sink.close().await; break }
                    },
                    msg = stream.next() => match msg {
                        Some(Ok(Message::Text(t))) => {
                            let mut failed = false;
                            for (session, method, params) in route(&p, events.as_mut(), t.as_str()) {
                                let id = ids.fetch_add(1, Ordering::Relaxed);
                                failed = sink.send(command(id, session.as_deref(), method, params)).await.is_err();
                                if failed {
                                    break;
                                }
                            }
                            if failed {
                                break;
                            }
                        }
                        Some(Ok(Message::Close(_))) | Some(Err(_)) | None => break,
                        Some(Ok(_)) => {}
                    },
                }
            }
            c.store(true, Ordering::SeqCst);
            // Waiting callers learn at once that no answer will come.
            p.lock().expect("bidi pending lock").clear();
        });
        Ok(Self {
            out,
            pending,
            next_id,
            closed,
            task,
        })
    }

    /// Connects, within `timeout`, to the Chrome DevTools Protocol socket of the tab
    /// `target_id` of a browser whose DevTools server is at `devtools` (`host:port`); the
    /// tab's events go to `events`.
    pub async fn connect_tab(
        devtools: &str,
        target_id: &str,
        events: Events,
        timeout: Duration,
    ) -> Result<Self, BidiError> {
        let url = format!("ws://{devtools}/devtools/page/{target_id}");
        tokio::time::timeout(timeout, Bidi::connect(&url, Some(events)))
            .await
            .map_err(|_| BidiError::Timeout {
                method: "connect".into(),
                after: timeout,
            })?
    }

    /// Whether the socket has closed (the browser or its driver went away).
    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::SeqCst)
    }

    /// Sends `method` with `params` and waits up to `timeout` for its result.
    pub async fn call(
        &self,
        method: &str,
        params: Value,
        timeout: Duration,
    ) -> Result<Value, BidiError> {
        self.call_in(None, method, params, timeout).await
    }

    /// Sends `method` in the DevTools session `session` without waiting for its answer (dropped
    /// when it comes): for a command whose failure changes nothing, sent in order with the
    /// commands after it. `false`: the socket is closed.
    pub fn send_in(&self, session: Option<&str>, method: &str, params: Value) -> bool {
        if self.is_closed() {
            return false;
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        self.out.send(command(id, session, method, params)).is_ok()
    }

    /// [`Self::call`] in the DevTools session `session` (a target attached with `flatten`,
    /// spoken to over the browser's socket); `None`: the socket's own.
    pub async fn call_in(
        &self,
        session: Option<&str>,
        method: &str,
        params: Value,
        timeout: Duration,
    ) -> Result<Value, BidiError> {
        self.call_with(method, timeout, |id| command(id, session, method, params))
            .await
    }

    /// [`Self::call_in`] with `params` already as JSON text: a page script's source (tens of
    /// KiB, escaped once per process by the caller) goes out without being copied into a
    /// `Value` and escaped again on every call.
    pub async fn call_in_raw(
        &self,
        session: Option<&str>,
        method: &str,
        params: &str,
        timeout: Duration,
    ) -> Result<Value, BidiError> {
        self.call_with(method, timeout, |id| {
            let session = session.map_or_else(String::new, |s| {
                format!(",\"sessionId\":{}", Value::from(s))
            });
            Message::text(format!(
                "{{\"id\":{id},\"method\":\"{method}\",\"params\":{params}{session}}}"
            ))
        })
        .await
    }

    async fn call_with(
        &self,
        method: &str,
        timeout: Duration,
        message: impl FnOnce(u64) -> Message,
    ) -> Result<Value, BidiError> {
        if self.is_closed() {
            return Err(BidiError::Closed);
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        self.pending
            .lock()
            .expect("bidi pending lock")
            .insert(id, tx);
        if self.out.send(message(id)).is_err() {
            self.pending.lock().expect("bidi pending lock").remove(&id);
            return Err(BidiError::Closed);
        }
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(Ok(v))) => Ok(v),
            Ok(Ok(Err((error, message)))) => Err(BidiError::Remote {
                method: method.to_string(),
                error,
                message,
            }),
            Ok(Err(_)) => Err(BidiError::Closed),
            Err(_) => {
                self.pending.lock().expect("bidi pending lock").remove(&id);
                Err(BidiError::Timeout {
                    method: method.to_string(),
                    after: timeout,
                })
            }
        }
    }
}

impl Drop for Bidi {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The message of command `id`: `method` with `params`, in the DevTools session `session`
/// (`None`: the socket's own).
fn command(id: u64, session: Option<&str>, method: &str, params: Value) -> Message {
    let mut m = json!({"id": id, "method": method, "params": params});
    if let Some(s) = session {
        m["sessionId"] = json!(s);
    }
    Message::text(m.to_string())
}

/// Hands an incoming message to the caller waiting for its id, or to the event listener; an
/// event the listener answers at once gives its answer back, to be sent.
fn route(pending: &Pending, events: Option<&mut Events>, text: &str) -> Vec<Reply> {
    if let Some(Events::Only(methods, _)) = &events
        && let Some(m) = cdp_event_method(text)
        && !methods.contains(&m)
    {
        return Vec::new();
    }
    // The answer to a command sent without waiting (`send_in`): dropped unread.
    if let Some(id) = cdp_answer_id(text)
        && !pending.lock().expect("bidi pending lock").contains_key(&id)
    {
        return Vec::new();
    }
    let Ok(v) = serde_json::from_str::<Value>(text) else {
        tracing::debug!("unparseable BiDi message ignored");
        return Vec::new();
    };
    match v.get("id").and_then(Value::as_u64) {
        Some(id) => {
            let Some(tx) = pending.lock().expect("bidi pending lock").remove(&id) else {
                return Vec::new();
            };
            let answer = if v["type"] == "error" {
                Err((
                    v["error"].as_str().unwrap_or("unknown error").to_string(),
                    v["message"].as_str().unwrap_or_default().to_string(),
                ))
            } else if let Some(e) = v.get("error").filter(|e| e.is_object()) {
                // CDP's error shape.
                Err((
                    format!("cdp error {}", e["code"]),
                    e["message"].as_str().unwrap_or_default().to_string(),
                ))
            } else {
                Ok(v.get("result").cloned().unwrap_or(Value::Null))
            };
            let _ = tx.send(answer);
            Vec::new()
        }
        None if v["type"] == "event" || v.get("method").is_some() => match events {
            Some(Events::Channel(tx)) => {
                let _ = tx.send(v);
                Vec::new()
            }
            Some(Events::Answer(answer)) | Some(Events::Only(_, answer)) => answer(&v),
            None => Vec::new(),
        },
        None => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_no_one_waits_for_is_dropped_unread() {
        assert_eq!(cdp_answer_id(r#"{"id":42,"result":{}}"#), Some(42));
        assert_eq!(cdp_answer_id(r#"{"method":"X","params":{}}"#), None);
        let pending: Pending = Arc::new(Mutex::new(HashMap::new()));
        let (tx, mut rx) = oneshot::channel();
        pending.lock().unwrap().insert(7, tx);
        // Not waited for: nothing happens (and the awaited one is untouched).
        assert!(route(&pending, None, r#"{"id":8,"result":{"a":1}}"#).is_empty());
        assert!(rx.try_recv().is_err());
        route(&pending, None, r#"{"id":7,"result":{"a":1}}"#);
        assert_eq!(rx.try_recv().unwrap().unwrap(), json!({"a": 1}));
    }

    #[test]
    fn only_the_named_events_are_read() {
        let pending: Pending = Arc::new(Mutex::new(HashMap::new()));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let s = seen.clone();
        let mut events = Events::Only(
            &["Runtime.bindingCalled"],
            Box::new(move |e: &Value| {
                s.lock()
                    .unwrap()
                    .push(e["method"].as_str().unwrap().to_string());
                Vec::new()
            }),
        );
        for m in [
            r#"{"method":"Page.frameNavigated","params":{},"sessionId":"S"}"#,
            r#"{"method":"Runtime.bindingCalled","params":{"name":"x"},"sessionId":"S"}"#,
            r#"{"method":"Runtime.consoleAPICalled","params":{}}"#,
        ] {
            assert_eq!(route(&pending, Some(&mut events), m), vec![]);
        }
        assert_eq!(*seen.lock().unwrap(), vec!["Runtime.bindingCalled"]);
        // An answer is read whatever it carries.
        let (tx, mut rx) = oneshot::channel();
        pending.lock().unwrap().insert(3, tx);
        route(
            &pending,
            Some(&mut events),
            r#"{"id":3,"result":{"method":"x"}}"#,
        );
        assert_eq!(rx.try_recv().unwrap().unwrap(), json!({"method": "x"}));
    }

    #[test]
    fn an_answered_event_gives_its_command_back_and_answers_go_to_their_callers() {
        let pending: Pending = Arc::new(Mutex::new(HashMap::new()));
        let (tx, mut rx) = oneshot::channel();
        pending.lock().unwrap().insert(7, tx);
        let mut events = Events::Answer(Box::new(|e: &Value| {
            (e["method"] == "Fetch.requestPaused")
                .then(|| {
                    (
                        Some("S1".to_string()),
                        "Fetch.continueRequest",
                        json!({"requestId": e["params"]["requestId"]}),
                    )
                })
                .into_iter()
                .collect()
        }));
        let paused = r#"{"method":"Fetch.requestPaused","params":{"requestId":"r1"}}"#;
        let reply = route(&pending, Some(&mut events), paused);
        assert_eq!(
            reply,
            vec![(
                Some("S1".to_string()),
                "Fetch.continueRequest",
                json!({"requestId": "r1"})
            )]
        );
        let other = r#"{"method":"Network.dataReceived","params":{}}"#;
        assert_eq!(route(&pending, Some(&mut events), other), vec![]);
        // An answer is the waiting caller's, never the event function's.
        assert_eq!(
            route(&pending, Some(&mut events), r#"{"id":7,"result":{"ok":1}}"#),
            vec![]
        );
        assert_eq!(rx.try_recv().unwrap().unwrap(), json!({"ok": 1}));
        // The answer to a command sent in reply (no caller waits for it) is dropped.
        assert_eq!(
            route(&pending, Some(&mut events), r#"{"id":8,"result":{}}"#),
            vec![]
        );
    }
}
