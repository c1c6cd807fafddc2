//! A local browser's journey steps over synmon's own DevTools socket, around chromedriver
//! (`webdriver.local_steps: devtools`).
//!
//! Why: every WebDriver command costs chromedriver's own work besides the browser's (its
//! navigation tracking, its JavaScript wrappers and element atoms injected per command, its
//! DevTools round trips): measured at a third to a half of a run's whole CPU (BENCHMARKS.md,
//! "Steps over the DevTools socket"). The same steps in the page's session on the socket
//! synmon already holds for the run's context cost the browser little more than the page's
//! own work.
//!
//! What is spoken here is the subset of WebDriver the journeys' steps use, with WebDriver's
//! answers: Execute (Async) Script, Element Click / Send Keys / Clear, Navigate To, the
//! browser log, the URL, a screenshot, the page's cookies. The answers and errors have the
//! W3C shape (`CmdError::Standard`, element references as `{element-6066-...: id}`), so
//! `webdriver.rs`'s step logic (finding, arming, awaiting, retrying after a navigation) is the
//! same over either path. Input is real: the browser's own mouse and key events
//! (`Input.dispatch*Event`), pressed at the element's in-view centre after WebDriver's
//! checks, as chromedriver does. Frames, windows, uploads, hovers, selects and cookie steps
//! stay chromedriver's: a journey with one of them runs over WebDriver as a whole
//! ([`crate::journey::model::Action::direct_ok`]).

use std::sync::Arc;
use std::time::Duration;

use fantoccini::error::{CmdError, ErrorStatus, WebDriver};
use serde_json::{Value, json};

use super::bidi::{Bidi, BidiError};
use super::control::Pages;

/// The helper every call installs in the page once (`js/direct.js`).
const HELPER_JS: &str = include_str!("../js/direct.js");

/// How long an input event may take to be handled before the page is judged hung.
const INPUT_TIMEOUT: Duration = Duration::from_secs(10);

/// The page helper's element operations (`js/direct.js`).
#[derive(Debug, Clone, Copy)]
enum Op {
    /// Element Click's checks; the point to press.
    Point,
    /// Element Send Keys' focusing.
    Focus,
    /// Element Clear.
    Clear,
}

/// One run tab's steps over the browser's DevTools socket.
#[derive(Debug)]
pub(super) struct Direct {
    cdp: Arc<Bidi>,
    pages: Arc<Pages>,
    session: String,
    script_timeout: Duration,
    page_load: Duration,
}

/// WebDriver's error answer.
fn wd(status: ErrorStatus, message: impl Into<String>) -> CmdError {
    CmdError::Standard(WebDriver::new(status, message.into()))
}

/// A DevTools failure in WebDriver's words: a closed socket is the browser gone; an error
/// answer is the browser's (a destroyed execution context is a navigation, as chromedriver
/// reports it).
fn from_cdp(e: BidiError) -> CmdError {
    match e {
        BidiError::Closed => wd(
            ErrorStatus::UnknownError,
            "chrome not reachable: the browser's DevTools socket closed",
        ),
        BidiError::Timeout { method, after } => wd(
            ErrorStatus::UnknownError,
            format!(
                "chrome not reachable: {method} not answered within {} ms",
                after.as_millis()
            ),
        ),
        BidiError::Remote {
            method, message, ..
        } => wd(ErrorStatus::UnknownError, format!("{method}: {message}")),
        BidiError::Connect { detail, .. } => wd(
            ErrorStatus::UnknownError,
            format!("chrome not reachable: {detail}"),
        ),
    }
}

/// A thrown exception's `exceptionDetails` as a JavaScript error.
fn thrown(details: &Value) -> CmdError {
    let text = details["exception"]["description"]
        .as_str()
        .or(details["text"].as_str())
        .unwrap_or("exception");
    wd(ErrorStatus::JavascriptError, text)
}

/// The page helper's answer (`{ok}` or `{error, message}`) as WebDriver's.
fn helper_answer(result: Value) -> Result<Value, CmdError> {
    let mut v = match result {
        Value::Object(mut o) => match o.remove("result") {
            Some(Value::Object(r)) => r,
            _ => {
                return Err(o
                    .get("exceptionDetails")
                    .map(thrown)
                    .unwrap_or_else(|| wd(ErrorStatus::JavascriptError, "no result")));
            }
        },
        _ => return Err(wd(ErrorStatus::JavascriptError, "no result")),
    };
    if let Some(d) = v.get("exceptionDetails") {
        return Err(thrown(d));
    }
    let mut value = v.remove("value").unwrap_or(Value::Null);
    if let Some(ok) = value.get_mut("ok") {
        return Ok(ok.take());
    }
    let error = value["error"].as_str().unwrap_or("javascript error");
    let status: ErrorStatus = error.parse().unwrap_or(ErrorStatus::JavascriptError);
    Err(wd(
        status,
        value["message"].as_str().unwrap_or_default().to_string(),
    ))
}

/// A function declaration that runs `body` (a WebDriver script: a function body reading
/// `arguments`) through the page helper, as JSON text ready for the command's params.
fn declaration(body: &str, asynchronous: bool) -> String {
    let source = format!(
        "function () {{ return ({HELPER_JS}).run(function () {{\n{body}\n}}, arguments, {asynchronous}); }}"
    );
    Value::from(source).to_string()
}

/// [`declaration`] of a page script known at compile time, built and escaped once per process
/// (the scripts are tens of KiB; see `escaped` in `webdriver.rs`).
fn static_declaration(script: &'static str, asynchronous: bool) -> Arc<str> {
    type Cache = std::sync::Mutex<std::collections::HashMap<(usize, usize, bool), Arc<str>>>;
    static CACHE: std::sync::OnceLock<Cache> = std::sync::OnceLock::new();
    let key = (script.as_ptr() as usize, script.len(), asynchronous);
    let cache = CACHE.get_or_init(Default::default);
    if let Some(d) = cache.lock().expect("declaration cache").get(&key) {
        return d.clone();
    }
    let d: Arc<str> = declaration(script, asynchronous).into();
    cache
        .lock()
        .expect("declaration cache")
        .insert(key, d.clone());
    d
}

/// The key events of one character of WebDriver's Element Send Keys text: `(key, code,
/// virtual key code, text)`.
fn key_of(c: char) -> (String, String, u32, Option<String>) {
    let named = |key: &str, code: &str, vk: u32, text: Option<&str>| {
        (
            key.to_string(),
            code.to_string(),
            vk,
            text.map(str::to_string),
        )
    };
    match c {
        '\u{e007}' | '\u{e006}' => named("Enter", "Enter", 13, Some("\r")),
        '\u{e004}' => named("Tab", "Tab", 9, None),
        '\u{e00c}' => named("Escape", "Escape", 27, None),
        '\u{e003}' => named("Backspace", "Backspace", 8, None),
        '\u{e017}' => named("Delete", "Delete", 46, None),
        '\u{e00d}' | ' ' => named(" ", "Space", 32, Some(" ")),
        '\u{e013}' => named("ArrowUp", "ArrowUp", 38, None),
        '\u{e015}' => named("ArrowDown", "ArrowDown", 40, None),
        '\u{e012}' => named("ArrowLeft", "ArrowLeft", 37, None),
        '\u{e014}' => named("ArrowRight", "ArrowRight", 39, None),
        '\u{e011}' => named("Home", "Home", 36, None),
        '\u{e010}' => named("End", "End", 35, None),
        '\u{e00e}' => named("PageUp", "PageUp", 33, None),
        '\u{e00f}' => named("PageDown", "PageDown", 34, None),
        c if c.is_ascii_alphabetic() => (
            c.to_string(),
            format!("Key{}", c.to_ascii_uppercase()),
            c.to_ascii_uppercase() as u32,
            Some(c.to_string()),
        ),
        c if c.is_ascii_digit() => (
            c.to_string(),
            format!("Digit{c}"),
            c as u32,
            Some(c.to_string()),
        ),
        c => (c.to_string(), String::new(), 0, Some(c.to_string())),
    }
}

impl Direct {
    pub(super) fn new(
        cdp: Arc<Bidi>,
        pages: Arc<Pages>,
        session: String,
        script_timeout: Duration,
        page_load: Duration,
    ) -> Self {
        Self {
            cdp,
            pages,
            session,
            script_timeout,
            page_load,
        }
    }

    /// WebDriver's `POST /session/{id}/{path}` with the request body `body`, for the paths
    /// the journeys' steps send; any other is refused (`unsupported operation`).
    pub(super) async fn post(&self, path: &str, body: &str) -> Result<Value, CmdError> {
        match path {
            "execute/sync" | "execute/async" => {
                #[derive(serde::Deserialize)]
                struct Exec {
                    script: String,
                    args: Vec<Value>,
                }
                let e: Exec = serde_json::from_str(body)
                    .map_err(|e| CmdError::InvalidArgument(path.into(), e.to_string()))?;
                let decl = declaration(&e.script, path == "execute/async");
                self.call(&decl, &e.args).await
            }
            "url" => {
                let url = serde_json::from_str::<Value>(body)
                    .ok()
                    .and_then(|v| v["url"].as_str().map(str::to_string))
                    .ok_or_else(|| CmdError::InvalidArgument(path.into(), body.into()))?;
                self.navigate(&url).await.map(|()| Value::Null)
            }
            "se/log" => Ok(Value::Array(self.pages.take_log(&self.session))),
            _ => match path
                .strip_prefix("element/")
                .and_then(|rest| rest.split_once('/'))
            {
                Some((id, "click")) => self.click(id).await.map(|()| Value::Null),
                Some((id, "clear")) => self.helper(Op::Clear, id).await.map(|_| Value::Null),
                Some((id, "value")) => {
                    let text = serde_json::from_str::<Value>(body)
                        .ok()
                        .and_then(|v| v["text"].as_str().map(str::to_string))
                        .ok_or_else(|| CmdError::InvalidArgument(path.into(), body.into()))?;
                    self.type_into(id, &text).await.map(|()| Value::Null)
                }
                _ => Err(wd(
                    ErrorStatus::UnsupportedOperation,
                    format!("{path} is not sent over the DevTools socket"),
                )),
            },
        }
    }

    /// Execute (Async) Script of a page script known at compile time.
    pub(super) async fn script(
        &self,
        asynchronous: bool,
        script: &'static str,
        args: &[Value],
    ) -> Result<Value, CmdError> {
        let decl = static_declaration(script, asynchronous);
        self.call(&decl, args).await
    }

    /// Calls the function declaration `decl` (JSON text) with `args` in the main frame's
    /// document, within the session's script timeout.
    async fn call(&self, decl: &str, args: &[Value]) -> Result<Value, CmdError> {
        let deadline = tokio::time::Instant::now() + self.script_timeout;
        let args = Value::Array(args.iter().map(|a| json!({ "value": a })).collect());
        let mut stale = None;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let world = self.pages.world(&self.session, stale, left).await;
            let Some(world) = world else {
                // What chromedriver answers a script sent while the document is replaced.
                return Err(wd(
                    ErrorStatus::JavascriptError,
                    "javascript error: execution context was destroyed (no document to run in)",
                ));
            };
            let params = format!(
                "{{\"functionDeclaration\":{decl},\"executionContextId\":{world},\"arguments\":{args},\"returnByValue\":true,\"awaitPromise\":true}}"
            );
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            return match self
                .cdp
                .call_in_raw(Some(&self.session), "Runtime.callFunctionOn", &params, left)
                .await
            {
                Ok(v) => helper_answer(v),
                Err(BidiError::Timeout { .. }) => Err(wd(
                    ErrorStatus::ScriptTimeout,
                    format!(
                        "script timeout: result was not received in {} seconds",
                        self.script_timeout.as_secs_f64()
                    ),
                )),
                // The document went between its announcement and the call (a navigation
                // committed): the call goes to the document that replaced it.
                Err(BidiError::Remote { message, .. })
                    if message.contains("Cannot find context with specified id")
                        && stale != Some(world) =>
                {
                    stale = Some(world);
                    continue;
                }
                Err(e) => Err(from_cdp(e)),
            };
        }
    }

    /// One of the helper's element operations on element `id`.
    async fn helper(&self, op: Op, id: &str) -> Result<Value, CmdError> {
        let script = match op {
            Op::Point => "return window.__synmonDirect.point(arguments[0]);",
            Op::Focus => "return window.__synmonDirect.focus(arguments[0]);",
            Op::Clear => "return window.__synmonDirect.clear(arguments[0]);",
        };
        // The helper's own answer ({ok} or {error}) comes back wrapped in `run`'s.
        let v = self
            .call(&static_declaration(script, false), &[json!(id)])
            .await?;
        helper_answer(json!({ "result": { "value": v } }))
    }

    /// Element Click: WebDriver's checks in the page, then the browser's own mouse events at
    /// the element's in-view centre.
    async fn click(&self, id: &str) -> Result<(), CmdError> {
        let at = self.helper(Op::Point, id).await?;
        let (x, y) = (
            at["x"].as_f64().unwrap_or(0.0),
            at["y"].as_f64().unwrap_or(0.0),
        );
        let mouse = |kind: &str, buttons: u32| {
            json!({"type": kind, "x": x, "y": y, "button": if kind == "mouseMoved" { "none" } else { "left" },
                "buttons": buttons, "clickCount": if kind == "mouseMoved" { 0 } else { 1 }, "pointerType": "mouse"})
        };
        self.input(vec![
            ("Input.dispatchMouseEvent", mouse("mouseMoved", 0)),
            ("Input.dispatchMouseEvent", mouse("mousePressed", 1)),
            ("Input.dispatchMouseEvent", mouse("mouseReleased", 0)),
        ])
        .await
    }

    /// Element Send Keys: the element focused, then a key down and up per character.
    async fn type_into(&self, id: &str, text: &str) -> Result<(), CmdError> {
        self.helper(Op::Focus, id).await?;
        let mut events = Vec::with_capacity(text.chars().count() * 2);
        for c in text.chars() {
            let (key, code, vk, text) = key_of(c);
            let mut down = json!({"type": if text.is_some() { "keyDown" } else { "rawKeyDown" },
                "key": key, "code": code, "windowsVirtualKeyCode": vk});
            if let Some(t) = text {
                down["text"] = json!(t);
                down["unmodifiedText"] = json!(t);
            }
            events.push(("Input.dispatchKeyEvent", down));
            events.push((
                "Input.dispatchKeyEvent",
                json!({"type": "keyUp", "key": key, "code": code, "windowsVirtualKeyCode": vk}),
            ));
        }
        self.input(events).await
    }

    /// Input events in order; all but the last are not waited for one by one: the browser
    /// handles a session's commands in order, so the last one's answer comes after theirs.
    async fn input(&self, events: Vec<(&'static str, Value)>) -> Result<(), CmdError> {
        let n = events.len();
        for (i, (method, params)) in events.into_iter().enumerate() {
            if i + 1 < n {
                if !self.cdp.send_in(Some(&self.session), method, params) {
                    return Err(from_cdp(BidiError::Closed));
                }
            } else {
                self.cdp
                    .call_in(Some(&self.session), method, params, INPUT_TIMEOUT)
                    .await
                    .map_err(from_cdp)?;
            }
        }
        Ok(())
    }

    /// Navigate To: the page loads `url` and its `load` event has fired (WebDriver's `normal`
    /// page load strategy), within the session's page load timeout.
    async fn navigate(&self, url: &str) -> Result<(), CmdError> {
        let deadline = tokio::time::Instant::now() + self.page_load;
        let timed_out = || {
            wd(
                ErrorStatus::Timeout,
                format!(
                    "timeout: Timed out receiving message from renderer: {:.3}",
                    self.page_load.as_secs_f64()
                ),
            )
        };
        let nav = match self
            .cdp
            .call_in(
                Some(&self.session),
                "Page.navigate",
                json!({ "url": url }),
                self.page_load,
            )
            .await
        {
            Ok(v) => v,
            Err(BidiError::Timeout { .. }) => return Err(timed_out()),
            Err(e) => return Err(from_cdp(e)),
        };
        if let Some(err) = nav["errorText"].as_str().filter(|t| !t.is_empty()) {
            return Err(wd(
                ErrorStatus::UnknownError,
                format!("unknown error: {err}"),
            ));
        }
        // A navigation within the document (a fragment) loads nothing.
        let Some(loader) = nav["loaderId"].as_str() else {
            return Ok(());
        };
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        if self.pages.loaded(&self.session, loader, left).await {
            Ok(())
        } else if self.cdp.is_closed() {
            Err(from_cdp(BidiError::Closed))
        } else {
            Err(timed_out())
        }
    }

    /// The document's URL.
    pub(super) async fn current_url(&self) -> Result<String, CmdError> {
        let v = self
            .script(false, "return document.location.href;", &[])
            .await?;
        Ok(v.as_str().unwrap_or_default().to_string())
    }

    /// A PNG of the viewport.
    pub(super) async fn screenshot(&self) -> Result<Vec<u8>, CmdError> {
        use base64::Engine;
        let v = self
            .cdp
            .call_in(
                Some(&self.session),
                "Page.captureScreenshot",
                json!({"format": "png"}),
                self.page_load,
            )
            .await
            .map_err(from_cdp)?;
        base64::engine::general_purpose::STANDARD
            .decode(v["data"].as_str().unwrap_or_default())
            .map_err(|e| wd(ErrorStatus::UnknownError, format!("screenshot: {e}")))
    }

    /// The cookies the document's URL sees, as `(name, value)`.
    pub(super) async fn cookies(&self) -> Result<Vec<(String, String)>, CmdError> {
        let v = self
            .cdp
            .call_in(
                Some(&self.session),
                "Network.getCookies",
                json!({}),
                self.script_timeout,
            )
            .await
            .map_err(from_cdp)?;
        Ok(v["cookies"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|c| {
                (
                    c["name"].as_str().unwrap_or_default().to_string(),
                    c["value"].as_str().unwrap_or_default().to_string(),
                )
            })
            .collect())
    }
}

impl Drop for Direct {
    fn drop(&mut self) {
        self.pages.end_direct(&self.session);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_helpers_answers_become_webdrivers() {
        let ok = json!({"result": {"type": "object", "value": {"ok": {"a": 1}}}});
        assert_eq!(helper_answer(ok).unwrap(), json!({"a": 1}));
        let stale = json!({"result": {"type": "object", "value": {"error": "stale element reference", "message": "gone"}}});
        match helper_answer(stale) {
            Err(CmdError::Standard(w)) => {
                assert_eq!(w.error, ErrorStatus::StaleElementReference);
                assert_eq!(w.message, "gone");
            }
            other => panic!("{other:?}"),
        }
        let thrown = json!({"result": {"type": "object"}, "exceptionDetails": {"text": "Uncaught", "exception": {"description": "TypeError: x"}}});
        match helper_answer(thrown) {
            Err(CmdError::Standard(w)) => assert_eq!(w.error, ErrorStatus::JavascriptError),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn keys_have_their_code_and_text() {
        assert_eq!(
            key_of('a'),
            ("a".into(), "KeyA".into(), 65, Some("a".into()))
        );
        assert_eq!(
            key_of('\u{e007}'),
            ("Enter".into(), "Enter".into(), 13, Some("\r".into()))
        );
        assert_eq!(key_of('\u{e004}').3, None);
    }
}
