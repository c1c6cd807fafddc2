//! What a pooled browser needs besides classic WebDriver, over one of two sockets: a run's
//! isolated context and its tab, the page channel (an action's start sent from the page), the
//! new-document watches (timing across navigations), the login's cookies, the liveness check.
//!
//! - **WebDriver BiDi** (the session's `webSocketUrl`): the standard, and the only way in to a
//!   remote end (a grid node's DevTools server is that machine's loopback). User contexts,
//!   preload scripts with a channel, `storage.*` cookies.
//! - **The browser's own DevTools socket** (Chrome DevTools Protocol, a local browser only,
//!   `webdriver.local_protocol: devtools`, the default): the same things in CDP's words
//!   (`Target.createBrowserContext`, `Runtime.addBinding`,
//!   `Page.addScriptToEvaluateOnNewDocument`, `Storage.*Cookies`). Why not BiDi there too:
//!   chromedriver serves BiDi through a mapper, a hidden tab of the browser running
//!   JavaScript that follows every target and translates every command, event and answer;
//!   measured at 55-75 ms of browser CPU per pooled run (BENCHMARKS.md, "The headless shell"),
//!   a fifth of the toast page's whole run. A session that asks for no BiDi has no mapper.
//!
//! Over DevTools the same socket also carries what would otherwise take a socket of its own
//! per run: the run's request interception (trace headers, [`Control::intercept`]) and the
//! clearing of a kept tab ([`Control::clear_tab`]), both in the page's own session.
//!
//! Either way [`Control`] answers in the same terms: contexts and tabs by id (the tab's id is
//! chromedriver's window handle in both protocols), cookies in BiDi's shape (a login captured
//! by one browser is set in another whichever socket either speaks).

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};

use super::bidi::{Bidi, BidiError, Events};
use super::{StepError, bidi_err, intercept};
use crate::trace::RunTrace;

/// How long a housekeeping command (contexts, tabs, scripts) may take before the browser is
/// judged unhealthy.
pub(super) const TIMEOUT: Duration = Duration::from_secs(5);

/// The run context's preload script (BiDi): gives every document of the context the channel
/// that `arm.js` sends an action's start through.
const CHANNEL_JS: &str =
    "(send) => { Object.defineProperty(window, '__synmonSend', { value: send }); }";
/// The BiDi channel the page scripts talk on.
const CHANNEL: &str = "synmon";
/// The DevTools binding that is the page channel there: `window.__synmonSend(text)`.
const BINDING: &str = "__synmonSend";

/// The socket a browser's contexts, channel and watches go through.
#[derive(Clone, Debug)]
pub(super) enum Control {
    Bidi(Arc<Bidi>),
    DevTools(Arc<Bidi>, Arc<Pages>),
}

/// A local browser's pages as its DevTools socket attached them. The socket asks to be
/// attached to every page as it is created (`Target.setAutoAttach`): a run's tab and every
/// window its pages open get the page channel and their context's new-document watches, sent
/// from the socket's own task as the attachment is announced (before the answer to the
/// command that created a run's tab), and only then told to go on
/// (`Runtime.runIfWaitingForDebugger`): a window a page opens waits for that whatever the
/// socket asked. The socket does not ask for pages to wait (`waitForDebuggerOnStart`): that
/// also pauses the service workers of the browser's default context, never released (a page
/// awaiting `navigator.serviceWorker.ready` hangs; found by the isolation tests).
#[derive(Debug, Default)]
pub(super) struct Pages {
    inner: std::sync::Mutex<PagesInner>,
    attached: tokio::sync::Notify,
    /// A page's main world was announced.
    worlds: tokio::sync::Notify,
    /// A page's document fired `load`.
    loads: tokio::sync::Notify,
}

#[derive(Debug, Default)]
struct PagesInner {
    /// Attached pages in the order they were attached (opened, but for the pages that existed
    /// when the socket was opened).
    pages: Vec<Page>,
    /// The new-document watches of each browser context, given to each page attached in it.
    watches: std::collections::HashMap<String, Vec<Watch>>,
    next_watch: u64,
    /// The request interception of each browser context whose run traces its requests: its
    /// pages pause the requests to the run's allowed origins, answered in the socket's task.
    traced: std::collections::HashMap<String, Traced>,
    /// Who waits for a page (its session) to have its main frame on `about:blank`.
    blank: Waiters,
    /// The navigations (loader ids) of each page whose document fired `load`, latest last
    /// (see [`Pages::loaded`]).
    loaded: std::collections::HashMap<String, std::collections::VecDeque<String>>,
    /// The navigation (loader id) each page's main frame committed last: the document a
    /// `Page.loadEventFired` of that page is about (events come in the order they happened).
    committed: std::collections::HashMap<String, String>,
    /// The execution context of each page's main frame document (its main world): where the
    /// steps sent over this socket run their scripts (`direct.rs`).
    worlds: std::collections::HashMap<String, i64>,
    /// The pages whose steps go over this socket, with their console (WebDriver's browser log
    /// of the page), oldest first, bounded by [`LOG_LIMIT`].
    direct: std::collections::HashMap<String, std::collections::VecDeque<Value>>,
}

/// Who waits for an event of a page, by the page's session.
type Waiters = Vec<(String, tokio::sync::oneshot::Sender<()>)>;

/// Adds a waiter for `session` to `waiters` (forgetting those no one awaits any more): resolves
/// when [`wake`]d, `false` if the socket's task went away first.
fn waiter(waiters: &mut Waiters, session: &str) -> impl std::future::Future<Output = bool> + use<> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    waiters.retain(|(_, tx)| !tx.is_closed());
    waiters.push((session.to_string(), tx));
    async move { rx.await.is_ok() }
}

/// Wakes (and removes) the waiters for `session`.
fn wake(waiters: &mut Waiters, session: &str) {
    let (now, later) = std::mem::take(waiters)
        .into_iter()
        .partition(|(s, _)| s == session);
    *waiters = later;
    for (_, tx) in now {
        let _ = tx.send(());
    }
}

/// Console entries kept per page between two reads.
const LOG_LIMIT: usize = 200;

/// A console message (`Runtime.consoleAPICalled`) or an uncaught exception
/// (`Runtime.exceptionThrown`) as an entry of WebDriver's browser log.
fn log_entry(event: &Value) -> Option<Value> {
    let p = &event["params"];
    let (level, message) = match event["method"].as_str()? {
        "Runtime.consoleAPICalled" => {
            let level = match p["type"].as_str() {
                Some("error" | "assert") => "SEVERE",
                Some("warning") => "WARNING",
                Some("debug") => "DEBUG",
                _ => "INFO",
            };
            let text: Vec<String> = p["args"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|a| match &a["value"] {
                    Value::String(s) => s.clone(),
                    Value::Null => a["description"]
                        .as_str()
                        .or(a["type"].as_str())
                        .unwrap_or_default()
                        .to_string(),
                    v => v.to_string(),
                })
                .collect();
            (level, text.join(" "))
        }
        "Runtime.exceptionThrown" => {
            let d = &p["exceptionDetails"];
            let text = d["exception"]["description"]
                .as_str()
                .or(d["text"].as_str())
                .unwrap_or("exception");
            ("SEVERE", text.to_string())
        }
        "Page.javascriptDialogOpening" => (
            "WARNING",
            format!(
                "a {} dialog was {}: {}",
                p["type"].as_str().unwrap_or("javascript"),
                if accepts_dialog(p) {
                    "accepted"
                } else {
                    "dismissed"
                },
                p["message"].as_str().unwrap_or_default()
            ),
        ),
        _ => return None,
    };
    Some(json!({"level": level, "message": message, "timestamp": super::epoch_ms().floor()}))
}

/// How a dialog the page opens is answered: dismissed, as WebDriver's
/// `unhandledPromptBehavior: dismiss` does, except a `beforeunload` prompt, which WebDriver
/// always accepts ("User Prompts": dismissing it would cancel the navigation that raised it, and a
/// step's `goto` away from a page with unsaved input would fail where chromedriver goes on).
fn accepts_dialog(p: &Value) -> bool {
    p["type"] == "beforeunload"
}

/// A run's request interception on the control socket (see [`Control::intercept`]).
#[derive(Debug)]
struct Traced {
    id: u64,
    trace: RunTrace,
    /// `Fetch.enable`'s params: the patterns of the run's allowed origins.
    enable: Value,
}

impl PagesInner {
    fn page(&self, target: &str) -> Option<Page> {
        self.pages.iter().find(|p| p.target == target).cloned()
    }

    /// The sessions of the attached pages of the browser context `context`.
    fn sessions_in(&self, context: &str) -> Vec<String> {
        self.pages
            .iter()
            .filter(|p| p.context == context)
            .map(|p| p.session.clone())
            .collect()
    }
}

#[derive(Debug, Clone)]
struct Page {
    target: String,
    context: String,
    session: String,
}

#[derive(Debug, Clone)]
struct Watch {
    id: String,
    source: String,
    /// Where it was installed with a known identifier: (session, identifier). The pages
    /// attached after it was added have it too, under identifiers no one reads (their answers
    /// are dropped): such a page is a window the run's page opened, gone with the context.
    installed: Vec<(String, String)>,
}

impl Pages {
    /// Follows the socket's attachments; gives the commands that set up a page just attached.
    fn follow(&self, event: &Value) -> Vec<super::bidi::Reply> {
        let p = &event["params"];
        match event["method"].as_str() {
            Some("Target.attachedToTarget") => {
                let info = &p["targetInfo"];
                let (Some(session), Some(target), Some(context)) = (
                    p["sessionId"].as_str(),
                    info["targetId"].as_str(),
                    info["browserContextId"].as_str(),
                ) else {
                    return Vec::new();
                };
                let mut inner = self.inner.lock().expect("pages lock");
                inner.pages.push(Page {
                    target: target.to_string(),
                    context: context.to_string(),
                    session: session.to_string(),
                });
                let on = |method, params| (Some(session.to_string()), method, params);
                // Runtime first: a binding added to an enabled Runtime reaches the document that
                // exists already too. New-document scripts run only where Page is enabled. The
                // events both domains then send are dropped unread (`Events::Only`).
                let mut out = vec![
                    on("Runtime.enable", json!({})),
                    on("Runtime.addBinding", json!({"name": BINDING})),
                    on("Page.enable", json!({})),
                ];
                for w in inner.watches.get(context).into_iter().flatten() {
                    out.push(on(
                        "Page.addScriptToEvaluateOnNewDocument",
                        json!({"source": w.source}),
                    ));
                }
                // A window the run's page opens carries the run's trace context too.
                if let Some(t) = inner.traced.get(context) {
                    out.push(on("Fetch.enable", t.enable.clone()));
                }
                // Always: a window a page opens waits for it (it is announced with
                // `waitingForDebugger: false`, and yet does not start without it: found with a
                // popup the journey then switched to); a page that is not waiting ignores it.
                out.push(on("Runtime.runIfWaitingForDebugger", json!({})));
                drop(inner);
                self.attached.notify_waiters();
                out
            }
            Some("Fetch.requestPaused") => {
                // Every pause is answered at once, also one no run traces any more (the
                // interception ended while the request was on its way): none waits.
                let Some(session) = event["sessionId"].as_str() else {
                    return Vec::new();
                };
                let inner = self.inner.lock().expect("pages lock");
                let params = inner
                    .pages
                    .iter()
                    .find(|pg| pg.session == session)
                    .and_then(|pg| inner.traced.get(&pg.context))
                    .map_or_else(
                        || json!({"requestId": p["requestId"]}),
                        |t| intercept::continue_params(p, &t.trace),
                    );
                vec![(Some(session.to_string()), "Fetch.continueRequest", params)]
            }
            Some("Page.frameNavigated") => {
                let frame = &p["frame"];
                if frame.get("parentId").is_none()
                    && let Some(session) = event["sessionId"].as_str()
                {
                    let mut inner = self.inner.lock().expect("pages lock");
                    if let Some(loader) = frame["loaderId"].as_str() {
                        inner
                            .committed
                            .insert(session.to_string(), loader.to_string());
                    }
                    if super::clear::left_for_blank(frame) {
                        wake(&mut inner.blank, session);
                    }
                }
                Vec::new()
            }
            Some("Target.detachedFromTarget") => {
                let gone = &p["sessionId"];
                let mut inner = self.inner.lock().expect("pages lock");
                inner.pages.retain(|pg| gone != pg.session.as_str());
                if let Some(s) = gone.as_str() {
                    inner.worlds.remove(s);
                    inner.loaded.remove(s);
                    inner.committed.remove(s);
                }
                Vec::new()
            }
            Some("Runtime.executionContextCreated") => {
                let (Some(session), Some(id)) =
                    (event["sessionId"].as_str(), p["context"]["id"].as_i64())
                else {
                    return Vec::new();
                };
                let aux = &p["context"]["auxData"];
                let mut inner = self.inner.lock().expect("pages lock");
                let main = inner
                    .pages
                    .iter()
                    .any(|pg| pg.session == session && aux["frameId"] == pg.target.as_str());
                if main && aux["isDefault"] == json!(true) {
                    inner.worlds.insert(session.to_string(), id);
                    drop(inner);
                    self.worlds.notify_waiters();
                }
                Vec::new()
            }
            Some("Runtime.executionContextDestroyed") => {
                if let Some(session) = event["sessionId"].as_str() {
                    let mut inner = self.inner.lock().expect("pages lock");
                    if inner
                        .worlds
                        .get(session)
                        .is_some_and(|id| p["executionContextId"].as_i64() == Some(*id))
                    {
                        inner.worlds.remove(session);
                    }
                }
                Vec::new()
            }
            Some("Runtime.executionContextsCleared") => {
                if let Some(session) = event["sessionId"].as_str() {
                    self.inner
                        .lock()
                        .expect("pages lock")
                        .worlds
                        .remove(session);
                }
                Vec::new()
            }
            Some("Page.loadEventFired") => {
                let Some(session) = event["sessionId"].as_str() else {
                    return Vec::new();
                };
                let mut inner = self.inner.lock().expect("pages lock");
                let Some(loader) = inner.committed.get(session).cloned() else {
                    return Vec::new();
                };
                let seen = inner.loaded.entry(session.to_string()).or_default();
                if seen.len() == 8 {
                    seen.pop_front();
                }
                seen.push_back(loader);
                drop(inner);
                self.loads.notify_waiters();
                Vec::new()
            }
            Some(
                m @ ("Runtime.consoleAPICalled"
                | "Runtime.exceptionThrown"
                | "Page.javascriptDialogOpening"),
            ) => {
                let Some(session) = event["sessionId"].as_str() else {
                    return Vec::new();
                };
                let mut inner = self.inner.lock().expect("pages lock");
                let Some(log) = inner.direct.get_mut(session) else {
                    // chromedriver's page: chromedriver logs it and handles its dialogs.
                    return Vec::new();
                };
                if let Some(entry) = log_entry(event) {
                    if log.len() == LOG_LIMIT {
                        log.pop_front();
                    }
                    log.push_back(entry);
                }
                // A dialog holds the page until answered: answered at once, as WebDriver's
                // `unhandledPromptBehavior: dismiss` does (noted in the log above).
                if m == "Page.javascriptDialogOpening" {
                    return vec![(
                        Some(session.to_string()),
                        "Page.handleJavaScriptDialog",
                        json!({"accept": accepts_dialog(p)}),
                    )];
                }
                Vec::new()
            }
            _ => Vec::new(),
        }
    }

    /// Resolves once the page of `session` has its main frame on `about:blank` (from the
    /// next navigation there on): `false` if the socket's task went away first.
    fn blank(&self, session: &str) -> impl std::future::Future<Output = bool> + use<> {
        waiter(&mut self.inner.lock().expect("pages lock").blank, session)
    }

    /// Whether the page's navigation `loader` (`Page.navigate`'s `loaderId`) reaches its
    /// document's `load` event within `timeout`. By the navigation's id, not the next `load`
    /// of the page: the document a navigation replaces may fire its own `load` after the
    /// navigation was asked for (a step that ended before its page had loaded).
    pub(super) async fn loaded(&self, session: &str, loader: &str, timeout: Duration) -> bool {
        self.until(&self.loads, timeout, |inner| {
            let seen = inner.loaded.get(session)?;
            seen.iter().any(|l| l == loader).then_some(())
        })
        .await
        .is_some()
    }

    /// The execution context of the page's main frame document, waiting up to `timeout` for
    /// one (between a navigation's commit and the new document's announcement there is none).
    /// `stale`: a context found gone, not to be given again.
    pub(super) async fn world(
        &self,
        session: &str,
        stale: Option<i64>,
        timeout: Duration,
    ) -> Option<i64> {
        self.until(&self.worlds, timeout, |inner| {
            inner
                .worlds
                .get(session)
                .copied()
                .filter(|id| Some(*id) != stale)
        })
        .await
    }

    /// What `found` reads off the registry, once it reads something: looked up again each
    /// time `changed` is notified, until `timeout`. (The notification is registered before each
    /// lookup, so a change between the two is not missed.)
    async fn until<T>(
        &self,
        changed: &tokio::sync::Notify,
        timeout: Duration,
        found: impl Fn(&PagesInner) -> Option<T>,
    ) -> Option<T> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = changed.notified();
            if let Some(t) = found(&self.inner.lock().expect("pages lock")) {
                return Some(t);
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return None;
            }
        }
    }

    /// From now on the page's console is kept for its steps (see `direct.rs`) and its dialogs
    /// are dismissed here.
    pub(super) fn begin_direct(&self, session: &str) {
        self.inner
            .lock()
            .expect("pages lock")
            .direct
            .insert(session.to_string(), Default::default());
    }

    pub(super) fn end_direct(&self, session: &str) {
        self.inner
            .lock()
            .expect("pages lock")
            .direct
            .remove(session);
    }

    /// The page's console entries since the last read (WebDriver's browser log: reading empties it).
    pub(super) fn take_log(&self, session: &str) -> Vec<Value> {
        self.inner
            .lock()
            .expect("pages lock")
            .direct
            .get_mut(session)
            .map(|log| log.drain(..).collect())
            .unwrap_or_default()
    }

    /// The page `target` once it is attached (its attachment may be announced after the
    /// answer that created it), waiting up to `timeout`.
    async fn attached(&self, target: &str, timeout: Duration) -> Result<Page, BidiError> {
        self.until(&self.attached, timeout, |inner| inner.page(target))
            .await
            .ok_or_else(|| BidiError::Timeout {
                method: "Target.attachedToTarget".into(),
                after: timeout,
            })
    }

    /// The pages in the context `tab` is in, in the order they were opened.
    fn beside(&self, tab: &str) -> Vec<String> {
        let inner = self.inner.lock().expect("pages lock");
        let Some(page) = inner.pages.iter().find(|p| p.target == tab) else {
            return vec![tab.to_string()];
        };
        inner
            .pages
            .iter()
            .filter(|p| p.context == page.context)
            .map(|p| p.target.clone())
            .collect()
    }

    /// Registers `source` as a watch of the context `tab` is in (pages attached from now on get
    /// it); returns its id and the sessions of that context's pages attached so far.
    fn add_watch(&self, tab: &str, source: String) -> Option<(String, Vec<String>)> {
        let mut inner = self.inner.lock().expect("pages lock");
        let context = inner
            .pages
            .iter()
            .find(|p| p.target == tab)?
            .context
            .clone();
        let sessions = inner.sessions_in(&context);
        inner.next_watch += 1;
        let id = format!("w{}", inner.next_watch);
        inner.watches.entry(context).or_default().push(Watch {
            id: id.clone(),
            source,
            installed: Vec::new(),
        });
        Some((id, sessions))
    }

    fn installed(&self, id: &str, session: String, identifier: String) {
        let mut inner = self.inner.lock().expect("pages lock");
        if let Some(w) = inner.watches.values_mut().flatten().find(|w| w.id == id) {
            w.installed.push((session, identifier));
        }
    }

    /// Forgets the watch `id`; gives where it was installed with a known identifier.
    fn remove_watch(&self, id: &str) -> Vec<(String, String)> {
        let mut inner = self.inner.lock().expect("pages lock");
        let mut out = Vec::new();
        for list in inner.watches.values_mut() {
            if let Some(i) = list.iter().position(|w| w.id == id) {
                out = list.remove(i).installed;
            }
        }
        inner.watches.retain(|_, l| !l.is_empty());
        out
    }

    /// Forgets the watches of the browser context `context` (deleted with it).
    fn forget_context(&self, context: &str) {
        self.inner
            .lock()
            .expect("pages lock")
            .watches
            .remove(context);
    }

    /// Registers `trace` as the interception of the context `page` is in, in place of any
    /// other (pages attached from now on get it); returns its id and the sessions of that
    /// context's pages attached so far.
    fn trace(&self, page: &Page, trace: RunTrace, enable: Value) -> (u64, Vec<String>) {
        let mut inner = self.inner.lock().expect("pages lock");
        inner.next_watch += 1;
        let id = inner.next_watch;
        let sessions = inner.sessions_in(&page.context);
        inner
            .traced
            .insert(page.context.clone(), Traced { id, trace, enable });
        (id, sessions)
    }

    /// Ends the interception `id`; gives the sessions of its context's pages (none if another
    /// interception took its place meanwhile).
    fn untrace(&self, id: u64) -> Vec<String> {
        let mut inner = self.inner.lock().expect("pages lock");
        let Some(context) = inner
            .traced
            .iter()
            .find(|(_, t)| t.id == id)
            .map(|(c, _)| c.clone())
        else {
            return Vec::new();
        };
        inner.traced.remove(&context);
        inner.sessions_in(&context)
    }
}

/// A run's request interception on a local browser's DevTools socket: the requests of its
/// context's pages to the run's allowed origins carry its trace context (see `intercept.rs`
/// for what is added and why around the driver). Ends when dropped: from then on a paused
/// request goes on as it was, and where the tab outlives the run (`isolation: clear`) its
/// pages stop pausing (`Fetch.disable`, sent before any later command on the socket).
#[derive(Debug)]
pub(super) struct Interception {
    socket: Arc<Bidi>,
    pages: Arc<Pages>,
    id: u64,
    keeps_tab: bool,
}

impl Drop for Interception {
    fn drop(&mut self) {
        let sessions = self.pages.untrace(self.id);
        // A context deleted after the run takes its pages' interception with it: no round trip.
        if self.keeps_tab {
            for s in sessions {
                self.socket.send_in(Some(&s), "Fetch.disable", json!({}));
            }
        }
    }
}

/// A run's isolated context and the tab it drives.
#[derive(Debug, Clone)]
pub(super) struct RunContext {
    /// The user context (BiDi) or browser context (CDP); `None`: the browser's default one.
    pub user_context: Option<String>,
    /// The tab: BiDi's browsing context id, CDP's target id, chromedriver's window handle.
    pub context: String,
    /// The preload script that gives the context's documents their channel (BiDi, where the
    /// session-wide one is missing).
    pub channel_script: Option<String>,
}

/// A page channel message (an action's start) as the page sent it: its text.
pub(super) fn channel_message(event: &Value) -> Option<&str> {
    let p = &event["params"];
    match event["method"].as_str()? {
        "script.message" if p["channel"] == CHANNEL => p["data"]["value"].as_str(),
        "Runtime.bindingCalled" if p["name"] == BINDING => p["payload"].as_str(),
        _ => None,
    }
}

impl Control {
    /// Opens the session's BiDi socket (`webSocketUrl`); channel messages go to `on_message`.
    pub async fn open_bidi(
        ws: &str,
        on_message: impl Fn(&str) + Send + 'static,
    ) -> Result<Self, BidiError> {
        let bidi = tokio::time::timeout(TIMEOUT, Bidi::connect(ws, Some(listener(on_message))))
            .await
            .map_err(|_| timeout("connect"))??;
        bidi.call(
            "session.subscribe",
            json!({"events": ["script.message"]}),
            TIMEOUT,
        )
        .await?;
        Ok(Control::Bidi(Arc::new(bidi)))
    }

    /// Opens the browser-wide DevTools socket of the local browser whose DevTools server is at
    /// `devtools` (`host:port`); channel messages go to `on_message`.
    pub async fn open_devtools(
        devtools: &str,
        on_message: impl Fn(&str) + Send + 'static,
    ) -> Result<Self, BidiError> {
        let pages = Arc::new(Pages::default());
        let follow = pages.clone();
        let events = Events::Only(
            &[
                "Runtime.bindingCalled",
                "Fetch.requestPaused",
                "Page.frameNavigated",
                "Target.attachedToTarget",
                "Target.detachedFromTarget",
                "Runtime.executionContextCreated",
                "Runtime.executionContextDestroyed",
                "Runtime.executionContextsCleared",
                "Page.loadEventFired",
                "Runtime.consoleAPICalled",
                "Runtime.exceptionThrown",
                "Page.javascriptDialogOpening",
            ],
            Box::new(move |event: &Value| match channel_message(event) {
                Some(text) => {
                    on_message(text);
                    Vec::new()
                }
                None => follow.follow(event),
            }),
        );
        let connect = async {
            let socket = Bidi::connect(&browser_socket(devtools).await?, Some(events)).await?;
            // The pages that exist now are attached at once, then each as it is created; see
            // `Pages` for why none is paused.
            socket
                .call(
                    "Target.setAutoAttach",
                    json!({"autoAttach": true, "waitForDebuggerOnStart": false, "flatten": true,
                        "filter": [{"type": "page"}]}),
                    TIMEOUT,
                )
                .await?;
            Ok(socket)
        };
        let socket = tokio::time::timeout(TIMEOUT, connect)
            .await
            .map_err(|_| timeout("connect"))??;
        Ok(Control::DevTools(Arc::new(socket), pages))
    }

    fn socket(&self) -> &Bidi {
        match self {
            Control::Bidi(s) | Control::DevTools(s, _) => s,
        }
    }

    /// Whether the socket closed (the browser or its driver went away).
    pub fn is_closed(&self) -> bool {
        self.socket().is_closed()
    }

    /// Gives every document of every context the page channel, once for the session (BiDi:
    /// one preload script instead of one per context). `false` where each context gets its
    /// own (CDP: a binding lives in one tab's session).
    pub async fn install_channel_everywhere(&self) -> bool {
        let Control::Bidi(bidi) = self else {
            return false;
        };
        match install_channel(bidi, None).await {
            Ok(id) => id.is_some(),
            Err(e) => {
                tracing::debug!(error = %e, "no session-wide page channel: one per context");
                false
            }
        }
    }

    /// A new isolated context and one tab in it, opened in the background (the run's tab keeps
    /// the focus until the session switches to this one), with the page channel (`channel`:
    /// where the session-wide one does not reach it).
    pub async fn create_context(&self, channel: bool) -> Result<RunContext, StepError> {
        match self {
            Control::Bidi(bidi) => create_user_context(bidi, channel).await,
            Control::DevTools(cdp, pages) => {
                let bc = cdp
                    .call(
                        "Target.createBrowserContext",
                        json!({"disposeOnDetach": false}),
                        TIMEOUT,
                    )
                    .await
                    .map_err(|e| bidi_err("creating a browser context", e))?;
                let user_context = bc["browserContextId"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string();
                let tab = async {
                    let t = cdp
                        .call(
                            "Target.createTarget",
                            json!({"url": "about:blank", "browserContextId": user_context, "background": true}),
                            TIMEOUT,
                        )
                        .await?;
                    let target = t["targetId"].as_str().unwrap_or_default().to_string();
                    // Set up (channel, watches) by the socket's task as it is attached.
                    pages.attached(&target, TIMEOUT).await?;
                    Ok::<_, BidiError>(target)
                };
                match tab.await {
                    Ok(context) => Ok(RunContext {
                        user_context: Some(user_context),
                        context,
                        channel_script: None,
                    }),
                    Err(e) => {
                        let _ = cdp
                            .call(
                                "Target.disposeBrowserContext",
                                json!({"browserContextId": user_context}),
                                TIMEOUT,
                            )
                            .await;
                        Err(bidi_err("opening a tab in the browser context", e))
                    }
                }
            }
        }
    }

    /// The existing tab `context` (the session's first), in the browser's default context,
    /// with the page channel (`channel`: where the session-wide one does not reach it).
    pub async fn adopt(&self, context: String, channel: bool) -> RunContext {
        let mut run = RunContext {
            user_context: None,
            context,
            channel_script: None,
        };
        let installed = match self {
            Control::Bidi(_) if !channel => Ok(()),
            Control::Bidi(bidi) => install_channel(bidi, Some(("contexts", &run.context)))
                .await
                .map(|id| run.channel_script = id),
            // Attached (and so set up) when the socket was opened.
            Control::DevTools(_, pages) => pages.attached(&run.context, TIMEOUT).await.map(drop),
        };
        if let Err(e) = installed {
            tracing::debug!(error = %e, "no page channel: navigations are followed from the navigation's start");
        }
        run
    }

    /// Deletes a run's context, with everything the run stored and its tabs (WebDriver BiDi
    /// and CDP both close a context's tabs with it, so the run's tab is not closed first: that
    /// was a round trip per run for nothing).
    pub async fn delete_context(&self, run: RunContext) -> Result<(), StepError> {
        let Some(user_context) = run.user_context else {
            return Ok(());
        };
        match self {
            Control::Bidi(bidi) => {
                bidi.call(
                    "browser.removeUserContext",
                    json!({"userContext": user_context}),
                    TIMEOUT,
                )
                .await
                .map_err(|e| bidi_err("removing the run's user context", e))?;
                if let Some(script) = run.channel_script {
                    remove_preload_script(bidi, &script)
                        .await
                        .map_err(|e| bidi_err("removing the context's preload script", e))?;
                }
            }
            Control::DevTools(cdp, pages) => {
                pages.forget_context(&user_context);
                cdp.call(
                    "Target.disposeBrowserContext",
                    json!({"browserContextId": user_context}),
                    TIMEOUT,
                )
                .await
                .map_err(|e| bidi_err("removing the run's browser context", e))?;
            }
        }
        Ok(())
    }

    /// Runs `function` (a JavaScript function of no arguments, as text) in every new document
    /// of `run`'s context (its tab and the windows its pages open) before the page's own
    /// scripts; returns the script's id.
    pub async fn add_watch(&self, run: &RunContext, function: &str) -> Result<String, BidiError> {
        let id = match self {
            Control::Bidi(bidi) => {
                // The default user context's id is `default`.
                let uc = run.user_context.as_deref().unwrap_or("default");
                let params = json!({"functionDeclaration": function, "userContexts": [uc]});
                bidi.call("script.addPreloadScript", params, TIMEOUT)
                    .await?["script"]
                    .clone()
            }
            Control::DevTools(cdp, pages) => {
                let source = format!("({function})();");
                let Some((id, sessions)) = pages.add_watch(&run.context, source.clone()) else {
                    return Err(BidiError::Remote {
                        method: "Page.addScriptToEvaluateOnNewDocument".into(),
                        error: "the run's tab is not attached".into(),
                        message: run.context.clone(),
                    });
                };
                for session in sessions {
                    let v = cdp
                        .call_in(
                            Some(&session),
                            "Page.addScriptToEvaluateOnNewDocument",
                            json!({"source": source}),
                            TIMEOUT,
                        )
                        .await?;
                    if let Some(identifier) = v["identifier"].as_str() {
                        pages.installed(&id, session, identifier.to_string());
                    }
                }
                json!(id)
            }
        };
        id.as_str().map(str::to_string).ok_or(BidiError::Remote {
            method: "adding a new-document script".into(),
            error: "no script id in the answer".into(),
            message: String::new(),
        })
    }

    /// Removes a script [`Self::add_watch`] added. A DevTools script goes with its tab, and
    /// from a page that closed meanwhile (a window the run's page opened) there is nothing to
    /// remove: only a closed socket is an error there.
    pub async fn remove_watch(&self, script: &str) -> Result<(), BidiError> {
        match self {
            Control::Bidi(bidi) => remove_preload_script(bidi, script).await.map(drop),
            Control::DevTools(cdp, pages) => {
                for (session, identifier) in pages.remove_watch(script) {
                    let r = cdp
                        .call_in(
                            Some(&session),
                            "Page.removeScriptToEvaluateOnNewDocument",
                            json!({"identifier": identifier}),
                            TIMEOUT,
                        )
                        .await;
                    if let Err(BidiError::Closed) = r {
                        return Err(BidiError::Closed);
                    }
                }
                Ok(())
            }
        }
    }

    /// Adds `trace`'s headers to the requests that `run`'s pages (its tab and the windows they
    /// open) make to its allowed origins, until the [`Interception`] is dropped (`keeps_tab`:
    /// the tab serves later runs, so its pages stop pausing then). Over the browser's DevTools
    /// socket, in each page's own session: no socket of its own per run. `None` over BiDi,
    /// which cannot (see `intercept.rs`).
    pub async fn intercept(
        &self,
        run: &RunContext,
        trace: RunTrace,
        keeps_tab: bool,
    ) -> Result<Option<Interception>, BidiError> {
        let Control::DevTools(cdp, pages) = self else {
            return Ok(None);
        };
        let page = pages.attached(&run.context, TIMEOUT).await?;
        let enable = json!({"patterns": intercept::patterns(&trace)});
        let (id, sessions) = pages.trace(&page, trace, enable.clone());
        // Dropped on an error: a page that did enable answers its pauses plain from then on.
        let interception = Interception {
            socket: cdp.clone(),
            pages: pages.clone(),
            id,
            keeps_tab,
        };
        let enabled = sessions
            .iter()
            .map(|s| cdp.call_in(Some(s), "Fetch.enable", enable.clone(), TIMEOUT));
        for r in futures_util::future::join_all(enabled).await {
            r?;
        }
        Ok(Some(interception))
    }

    /// Clears what a run left in its kept tab (`isolation: clear`, see `clear.rs`) in the tab's
    /// session on the browser's DevTools socket; returns the origins cleared. `None` over BiDi:
    /// the tab then needs a DevTools socket of its own.
    pub async fn clear_tab(
        &self,
        run: &RunContext,
        more_urls: &[String],
    ) -> Option<Result<Vec<String>, BidiError>> {
        let Control::DevTools(cdp, pages) = self else {
            return None;
        };
        let cleared = async {
            let page = pages.attached(&run.context, TIMEOUT).await?;
            let tab = super::clear::Tab {
                cdp,
                session: Some(&page.session),
            };
            // Page is enabled on every attached page (the new-document watches need it).
            super::clear::clear(tab, more_urls, true, || pages.blank(&page.session)).await
        };
        Some(cleared.await)
    }

    /// The run tab's steps over this socket (`webdriver.local_steps: devtools`, see
    /// `direct.rs`); `None` over BiDi, or when the tab is not attached.
    pub async fn direct(
        &self,
        run: &RunContext,
        script_timeout: Duration,
        page_load: Duration,
    ) -> Option<super::direct::Direct> {
        let Control::DevTools(cdp, pages) = self else {
            return None;
        };
        let page = pages.attached(&run.context, TIMEOUT).await.ok()?;
        pages.begin_direct(&page.session);
        Some(super::direct::Direct::new(
            cdp.clone(),
            pages.clone(),
            page.session,
            script_timeout,
            page_load,
        ))
    }

    /// Whether a script [`Self::add_watch`] added outlives its context's deletion (BiDi's do).
    pub fn watches_outlive_contexts(&self) -> bool {
        matches!(self, Control::Bidi(_))
    }

    /// `run`'s windows (its tab and the popups its pages opened), in the order they were
    /// opened, the run's tab first: the tabs of its context (the session's other windows, and
    /// the next run's prepared tab, are not the run's).
    pub async fn windows(&self, run: &RunContext) -> Result<Vec<String>, StepError> {
        let mut out = match self {
            Control::Bidi(bidi) => {
                let tree = bidi
                    .call("browsingContext.getTree", json!({"maxDepth": 0}), TIMEOUT)
                    .await
                    .map_err(|e| bidi_err("listing the run's windows", e))?;
                let uc = run.user_context.as_deref().unwrap_or("default");
                tree["contexts"]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .filter(|c| c["userContext"] == uc)
                            .filter_map(|c| c["context"].as_str().map(str::to_string))
                            .collect()
                    })
                    .unwrap_or_default()
            }
            Control::DevTools(_, pages) => pages.beside(&run.context),
        };
        // The run's own tab first, whatever order the browser lists them in.
        if let Some(i) = out.iter().position(|c| *c == run.context) {
            let first = out.remove(i);
            out.insert(0, first);
        }
        Ok(out)
    }

    /// Whether the browser still answers and `run`'s tab is there: one round trip.
    pub async fn alive(&self, run: Option<&RunContext>, timeout: Duration) -> bool {
        match self {
            Control::Bidi(bidi) => {
                let params = match run {
                    Some(r) => json!({"root": r.context, "maxDepth": 0}),
                    None => json!({"maxDepth": 0}),
                };
                bidi.call("browsingContext.getTree", params, timeout)
                    .await
                    .is_ok()
            }
            Control::DevTools(cdp, _) => {
                let r = match run {
                    Some(r) => {
                        cdp.call(
                            "Target.getTargetInfo",
                            json!({"targetId": r.context}),
                            timeout,
                        )
                        .await
                    }
                    None => cdp.call("Browser.getVersion", json!({}), timeout).await,
                };
                r.is_ok()
            }
        }
    }

    /// Every cookie of `run`'s context (all sites), in WebDriver BiDi's shape
    /// (`storage.getCookies`).
    pub async fn cookies(&self, run: &RunContext) -> Result<Vec<Value>, StepError> {
        let what = "reading the login's cookies";
        match self {
            Control::Bidi(bidi) => {
                let v = bidi
                    .call(
                        "storage.getCookies",
                        json!({"partition": partition(run)}),
                        TIMEOUT,
                    )
                    .await
                    .map_err(|e| bidi_err(what, e))?;
                Ok(v["cookies"].as_array().cloned().unwrap_or_default())
            }
            Control::DevTools(cdp, _) => {
                let mut params = json!({});
                if let Some(bc) = &run.user_context {
                    params["browserContextId"] = json!(bc);
                }
                let v = cdp
                    .call("Storage.getCookies", params, TIMEOUT)
                    .await
                    .map_err(|e| bidi_err(what, e))?;
                Ok(v["cookies"]
                    .as_array()
                    .map(|a| a.iter().map(bidi_cookie).collect())
                    .unwrap_or_default())
            }
        }
    }

    /// Sets `cookies` (BiDi's shape, as [`Self::cookies`] read them) in `run`'s context.
    pub async fn set_cookies(&self, run: &RunContext, cookies: &[Value]) -> Result<(), StepError> {
        let what = "setting the login's cookies";
        match self {
            Control::Bidi(bidi) => {
                let partition = partition(run);
                // All at once: one round trip's wait for the lot, not one per cookie.
                let calls = cookies.iter().map(|c| {
                    bidi.call(
                        "storage.setCookie",
                        json!({"cookie": partial_cookie(c), "partition": partition}),
                        TIMEOUT,
                    )
                });
                for (r, c) in futures_util::future::join_all(calls)
                    .await
                    .into_iter()
                    .zip(cookies)
                {
                    let name = c["name"].as_str().unwrap_or("?");
                    r.map_err(|e| bidi_err(what, refused(e, format!("cookie `{name}` refused"))))?;
                }
                Ok(())
            }
            Control::DevTools(cdp, _) => {
                let mut params =
                    json!({"cookies": cookies.iter().map(cdp_cookie).collect::<Vec<_>>()});
                if let Some(bc) = &run.user_context {
                    params["browserContextId"] = json!(bc);
                }
                cdp.call("Storage.setCookies", params, TIMEOUT)
                    .await
                    .map(drop)
                    .map_err(|e| {
                        let names: Vec<&str> =
                            cookies.iter().filter_map(|c| c["name"].as_str()).collect();
                        bidi_err(what, refused(e, format!("cookies {names:?} refused")))
                    })
            }
        }
    }
}

/// The browser-wide DevTools socket's URL, from the DevTools server at `devtools`.
async fn browser_socket(devtools: &str) -> Result<String, BidiError> {
    let version = format!("http://{devtools}/json/version");
    let failed = |detail: String| BidiError::Connect {
        url: version.clone(),
        detail,
    };
    crate::tls::install();
    let client = reqwest::Client::builder()
        .no_proxy()
        .build()
        .map_err(|e| failed(e.to_string()))?;
    let v = client
        .get(&version)
        .send()
        .await
        .and_then(reqwest::Response::error_for_status)
        .map_err(|e| failed(e.to_string()))?
        .json::<Value>()
        .await
        .map_err(|e| failed(e.to_string()))?;
    v["webSocketDebuggerUrl"]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| failed("no webSocketDebuggerUrl".into()))
}

/// Channel messages (their text) to `on_message`, every other event dropped where it arrives.
fn listener(on_message: impl Fn(&str) + Send + 'static) -> Events {
    Events::Answer(Box::new(move |event: &Value| {
        if let Some(text) = channel_message(event) {
            on_message(text);
        }
        Vec::new()
    }))
}

fn timeout(method: &str) -> BidiError {
    BidiError::Timeout {
        method: method.into(),
        after: TIMEOUT,
    }
}

/// Gives every new document of `scope` (`userContexts` or `contexts`: `id`; `None`: of every
/// context of the session) the page channel; returns the preload script's id.
async fn install_channel(
    bidi: &Bidi,
    scope: Option<(&str, &str)>,
) -> Result<Option<String>, BidiError> {
    let mut params = json!({
        "functionDeclaration": CHANNEL_JS,
        "arguments": [{"type": "channel", "value": {"channel": CHANNEL}}],
    });
    if let Some((scope, id)) = scope {
        params[scope] = json!([id]);
    }
    let v = bidi
        .call("script.addPreloadScript", params, TIMEOUT)
        .await?;
    Ok(v["script"].as_str().map(str::to_string))
}

/// A new BiDi user context with the page channel installed (unless the session's own reaches
/// every context: `channel` false) and one tab.
async fn create_user_context(bidi: &Bidi, channel: bool) -> Result<RunContext, StepError> {
    let uc = bidi
        .call("browser.createUserContext", json!({}), TIMEOUT)
        .await
        .map_err(|e| bidi_err("creating a user context", e))?;
    let user_context = uc["userContext"].as_str().unwrap_or_default().to_string();
    // Before the tab exists, so that its every document has the channel.
    let channel_script = if channel {
        install_channel(bidi, Some(("userContexts", &user_context)))
            .await
            .map_err(|e| tracing::debug!(error = %e, "no page channel: navigations are followed from the navigation's start"))
            .ok()
            .flatten()
    } else {
        None
    };
    let tab = bidi
        .call(
            "browsingContext.create",
            json!({"type": "tab", "userContext": user_context, "background": true}),
            TIMEOUT,
        )
        .await;
    match tab {
        Ok(t) => Ok(RunContext {
            user_context: Some(user_context),
            context: t["context"].as_str().unwrap_or_default().to_string(),
            channel_script,
        }),
        Err(e) => {
            let _ = bidi
                .call(
                    "browser.removeUserContext",
                    json!({"userContext": user_context}),
                    TIMEOUT,
                )
                .await;
            Err(bidi_err("opening a tab in the user context", e))
        }
    }
}

/// Removes the preload script `script` (the browser keeps one until it is removed, also after
/// the user context it was scoped to is deleted).
async fn remove_preload_script(bidi: &Bidi, script: &str) -> Result<Value, BidiError> {
    bidi.call(
        "script.removePreloadScript",
        json!({"script": script}),
        TIMEOUT,
    )
    .await
}

/// An error setting cookies, with `message` (naming the cookies) in place of the browser's
/// own: that may quote a cookie, whose value is a secret. Kept: the error's code.
fn refused(e: BidiError, message: String) -> BidiError {
    match e {
        BidiError::Remote { method, error, .. } => BidiError::Remote {
            method,
            error,
            message,
        },
        other => other,
    }
}

/// The BiDi storage partition of `run`'s context (none named: the default user context).
fn partition(run: &RunContext) -> Value {
    let mut partition = json!({"type": "storageKey"});
    if let Some(uc) = &run.user_context {
        partition["userContext"] = json!(uc);
    }
    partition
}

/// A cookie as `storage.getCookies` returns it, as `storage.setCookie` takes it: the same
/// fields but `size`, which is the browser's to compute.
fn partial_cookie(c: &Value) -> Value {
    let mut c = c.clone();
    if let Some(o) = c.as_object_mut() {
        o.remove("size");
    }
    c
}

/// A CDP cookie (`Network.Cookie`) in WebDriver BiDi's shape (`network.Cookie`).
fn bidi_cookie(c: &Value) -> Value {
    let mut b = json!({
        "name": c["name"],
        "value": {"type": "string", "value": c["value"]},
        "domain": c["domain"],
        "path": c["path"],
        "size": c["size"],
        "httpOnly": c["httpOnly"],
        "secure": c["secure"],
        "sameSite": c["sameSite"].as_str().map_or("none".to_string(), str::to_lowercase),
    });
    // CDP: `expires` in seconds, -1 with `session: true` for a session cookie; BiDi: `expiry`
    // in seconds, absent for a session cookie.
    if c["session"] != true
        && let Some(exp) = c["expires"].as_f64().filter(|e| *e >= 0.0)
    {
        b["expiry"] = json!(exp as u64);
    }
    b
}

/// A cookie in WebDriver BiDi's shape as CDP's `Storage.setCookies` takes it
/// (`Network.CookieParam`).
fn cdp_cookie(b: &Value) -> Value {
    let same_site = match b["sameSite"].as_str() {
        Some("strict") => "Strict",
        Some("lax") => "Lax",
        _ => "None",
    };
    let mut c = json!({
        "name": b["name"],
        "value": b["value"]["value"],
        "domain": b["domain"],
        "path": b["path"],
        "httpOnly": b["httpOnly"],
        "secure": b["secure"],
        "sameSite": same_site,
    });
    if let Some(exp) = b["expiry"].as_u64() {
        c["expires"] = json!(exp);
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cdp_cookie_goes_through_bidis_shape_and_back_unchanged() {
        let session = json!({"name": "sid", "value": "s3cret", "domain": "127.0.0.1", "path": "/",
            "expires": -1, "size": 9, "httpOnly": true, "secure": false, "session": true,
            "sameSite": "Lax", "priority": "Medium", "sourceScheme": "NonSecure", "sourcePort": 8080});
        let b = bidi_cookie(&session);
        assert_eq!(
            b,
            json!({"name": "sid", "value": {"type": "string", "value": "s3cret"},
                "domain": "127.0.0.1", "path": "/", "size": 9, "httpOnly": true,
                "secure": false, "sameSite": "lax"})
        );
        assert_eq!(
            cdp_cookie(&b),
            json!({"name": "sid", "value": "s3cret", "domain": "127.0.0.1", "path": "/",
                "httpOnly": true, "secure": false, "sameSite": "Lax"})
        );
        let kept = json!({"name": "k", "value": "v", "domain": ".example", "path": "/a",
            "expires": 1_900_000_000.5, "size": 2, "httpOnly": false, "secure": true,
            "session": false});
        let b = bidi_cookie(&kept);
        assert_eq!(b["expiry"], json!(1_900_000_000u64));
        assert_eq!(b["sameSite"], json!("none"));
        assert_eq!(cdp_cookie(&b)["expires"], json!(1_900_000_000u64));
    }

    fn attached(target: &str, context: &str, session: &str, waiting: bool) -> Value {
        json!({"method": "Target.attachedToTarget", "params": {"sessionId": session,
            "targetInfo": {"targetId": target, "browserContextId": context, "type": "page"},
            "waitingForDebugger": waiting}})
    }

    /// A navigation's `load` is its own document's: the `load` of the document it replaces,
    /// fired after the navigation was asked for but before it committed, does not count.
    #[tokio::test]
    async fn a_navigation_is_loaded_when_its_own_document_fires_load() {
        let pages = Pages::default();
        pages.follow(&attached("run", "A", "s", false));
        let navigated = |loader: &str| {
            json!({"method": "Page.frameNavigated", "sessionId": "s",
                "params": {"frame": {"id": "run", "loaderId": loader, "url": "http://x/"}}})
        };
        let load = json!({"method": "Page.loadEventFired", "sessionId": "s",
            "params": {"timestamp": 1.0}});
        let loaded = |loader: &'static str| pages.loaded("s", loader, Duration::ZERO);
        pages.follow(&navigated("old"));
        // `Page.navigate` answered loader `new`; the old document's `load` comes first.
        pages.follow(&load);
        assert!(loaded("old").await);
        assert!(!loaded("new").await);
        // A child frame's navigation is not the page's.
        pages.follow(&json!({"method": "Page.frameNavigated", "sessionId": "s",
            "params": {"frame": {"id": "f", "parentId": "run", "loaderId": "new", "url": "http://y/"}}}));
        pages.follow(&load);
        assert!(!loaded("new").await);
        pages.follow(&navigated("new"));
        assert!(!loaded("new").await, "committed, not loaded yet");
        pages.follow(&load);
        assert!(loaded("new").await);
    }

    #[test]
    fn pages_are_listed_per_context_in_the_order_they_were_opened() {
        let pages = Pages::default();
        for (t, c) in [
            ("first", "D"),
            ("run", "A"),
            ("spare", "B"),
            ("p1", "A"),
            ("p2", "A"),
        ] {
            pages.follow(&attached(t, c, &format!("s-{t}"), true));
        }
        pages.follow(&json!({"method": "Target.detachedFromTarget",
            "params": {"sessionId": "s-p1", "targetId": "p1"}}));
        assert_eq!(pages.beside("run"), vec!["run", "p2"]);
        assert_eq!(pages.beside("first"), vec!["first"]);
        assert_eq!(pages.beside("unknown"), vec!["unknown"]);
    }

    #[test]
    fn a_page_attached_gets_the_channel_and_its_contexts_watches_before_it_goes_on() {
        let pages = Pages::default();
        let methods = |replies: &[super::super::bidi::Reply]| -> Vec<(String, &'static str)> {
            replies
                .iter()
                .map(|(s, m, _)| (s.clone().unwrap_or_default(), *m))
                .collect()
        };
        // The session's first tab, there before the socket: set up, told to go on.
        let first = pages.follow(&attached("first", "D", "s0", false));
        assert_eq!(
            methods(&first),
            vec![
                ("s0".into(), "Runtime.enable"),
                ("s0".into(), "Runtime.addBinding"),
                ("s0".into(), "Page.enable"),
                ("s0".into(), "Runtime.runIfWaitingForDebugger"),
            ]
        );
        assert_eq!(first[1].2, json!({"name": "__synmonSend"}));
        // The run's tab, then a watch of its context, then a window its page opened: that
        // window gets the watch, and goes on only after it.
        pages.follow(&attached("run", "A", "s1", true));
        let (id, sessions) = pages.add_watch("run", "(w)();".into()).unwrap();
        assert_eq!(sessions, vec!["s1"]);
        pages.installed(&id, "s1".into(), "7".into());
        let popup = pages.follow(&attached("popup", "A", "s2", true));
        assert_eq!(
            methods(&popup),
            vec![
                ("s2".into(), "Runtime.enable"),
                ("s2".into(), "Runtime.addBinding"),
                ("s2".into(), "Page.enable"),
                ("s2".into(), "Page.addScriptToEvaluateOnNewDocument"),
                ("s2".into(), "Runtime.runIfWaitingForDebugger"),
            ]
        );
        assert_eq!(popup[3].2, json!({"source": "(w)();"}));
        // Another context's page does not get it.
        let other = pages.follow(&attached("spare", "B", "s3", true));
        assert_eq!(other.len(), 4, "{:?}", methods(&other));
        // Removed: from where it was installed with a known identifier; no later page gets it.
        assert_eq!(
            pages.remove_watch(&id),
            vec![("s1".to_string(), "7".to_string())]
        );
        assert_eq!(pages.follow(&attached("p2", "A", "s4", true)).len(), 4);
        // A deleted context's watches are forgotten with it.
        let (_, _) = pages.add_watch("run", "(x)();".into()).unwrap();
        pages.forget_context("A");
        assert_eq!(pages.follow(&attached("p3", "A", "s5", true)).len(), 4);
    }

    #[test]
    fn a_traced_contexts_pages_pause_for_the_runs_origins_and_every_pause_is_answered() {
        let target = crate::config::Target {
            name: "staging".into(),
            base_url: "http://127.0.0.1:8080/".parse().unwrap(),
            trace_origins: Vec::new(),
        };
        let trace = RunTrace::new("align_category", "eu", &target);
        let pages = Pages::default();
        pages.follow(&attached("run", "A", "s1", false));
        pages.follow(&attached("spare", "B", "s2", false));
        let page = pages.inner.lock().unwrap().page("run").unwrap();
        let enable = json!({"patterns": intercept::patterns(&trace)});
        let (id, sessions) = pages.trace(&page, trace.clone(), enable.clone());
        assert_eq!(sessions, vec!["s1"]);
        let paused = |session: &str, url: &str| {
            json!({"method": "Fetch.requestPaused", "sessionId": session, "params": {
                "requestId": "r1", "request": {"url": url, "headers": {"Accept": "*/*"}}}})
        };
        // The run's page: its request to the target gets the run's headers, in its session.
        let answer = pages.follow(&paused("s1", "http://127.0.0.1:8080/login"));
        assert_eq!(answer.len(), 1);
        assert_eq!(answer[0].0.as_deref(), Some("s1"));
        assert_eq!(answer[0].1, "Fetch.continueRequest");
        let headers = answer[0].2["headers"].as_array().unwrap();
        let h = trace.headers_for("http://127.0.0.1:8080/login", trace.current_parent());
        assert!(headers.contains(&json!({"name": "traceparent", "value": h.unwrap().traceparent})));
        // A window the page opens pauses too, set up before it goes on.
        let popup = pages.follow(&attached("popup", "A", "s3", true));
        let methods: Vec<&str> = popup.iter().map(|r| r.1).collect();
        assert_eq!(
            methods[methods.len() - 2..],
            ["Fetch.enable", "Runtime.runIfWaitingForDebugger"]
        );
        assert_eq!(popup[methods.len() - 2].2, enable);
        // Another context's pages are not the run's: they get neither.
        assert_eq!(pages.follow(&attached("other", "B", "s4", false)).len(), 4);
        let plain = json!({"requestId": "r1"});
        assert_eq!(
            pages.follow(&paused("s2", "http://127.0.0.1:8080/login"))[0].2,
            plain
        );
        // Ended: a pause still on its way is answered, plain; the sessions to stop are given.
        assert_eq!(pages.untrace(id), vec!["s1", "s3"]);
        assert_eq!(
            pages.follow(&paused("s1", "http://127.0.0.1:8080/login"))[0].2,
            plain
        );
        assert_eq!(pages.untrace(id), Vec::<String>::new());
    }

    #[test]
    fn channel_messages_are_read_from_either_protocol_and_nothing_else() {
        let bidi = json!({"type": "event", "method": "script.message",
            "params": {"channel": "synmon", "data": {"type": "string", "value": "{\"token\":\"a\"}"}}});
        assert_eq!(channel_message(&bidi), Some("{\"token\":\"a\"}"));
        let cdp = json!({"method": "Runtime.bindingCalled", "sessionId": "S",
            "params": {"name": "__synmonSend", "payload": "{\"token\":\"b\"}", "executionContextId": 3}});
        assert_eq!(channel_message(&cdp), Some("{\"token\":\"b\"}"));
        let other_binding = json!({"method": "Runtime.bindingCalled",
            "params": {"name": "pageOwn", "payload": "x"}});
        assert_eq!(channel_message(&other_binding), None);
        let other_channel = json!({"type": "event", "method": "script.message",
            "params": {"channel": "page", "data": {"type": "string", "value": "x"}}});
        assert_eq!(channel_message(&other_channel), None);
        let console = json!({"method": "Runtime.consoleAPICalled", "params": {}});
        assert_eq!(channel_message(&console), None);
    }
}
