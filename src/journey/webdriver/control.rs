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
//! Either way [`Control`] answers in the same terms: contexts and tabs by id (the tab's id is
//! chromedriver's window handle in both protocols), cookies in BiDi's shape (a login captured
//! by one browser is set in another whichever socket either speaks).

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};

use super::bidi::{Bidi, BidiError, Events};
use super::{StepError, bidi_err};

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
    DevTools(Arc<Bidi>, Arc<Tabs>),
}

/// The browser's tabs in the order they were opened, with the context each is in (CDP lists
/// targets in no stated order; BiDi's tree keeps the order, which `switch_window` relies on).
#[derive(Debug, Default)]
pub(super) struct Tabs(std::sync::Mutex<Vec<(String, String)>>);

impl Tabs {
    /// Follows `Target.targetCreated` / `targetDestroyed` of pages.
    fn follow(&self, event: &Value) {
        let info = &event["params"]["targetInfo"];
        let mut tabs = self.0.lock().expect("tabs lock");
        match event["method"].as_str() {
            Some("Target.targetCreated") if info["type"] == "page" => {
                if let (Some(t), Some(c)) =
                    (info["targetId"].as_str(), info["browserContextId"].as_str())
                {
                    tabs.push((t.to_string(), c.to_string()));
                }
            }
            Some("Target.targetDestroyed") => {
                let gone = &event["params"]["targetId"];
                tabs.retain(|(t, _)| gone != t.as_str());
            }
            _ => {}
        }
    }

    /// The tabs in the context `tab` is in, in the order they were opened.
    fn beside(&self, tab: &str) -> Vec<String> {
        let tabs = self.0.lock().expect("tabs lock");
        let Some((_, context)) = tabs.iter().find(|(t, _)| t == tab) else {
            return vec![tab.to_string()];
        };
        tabs.iter()
            .filter(|(_, c)| c == context)
            .map(|(t, _)| t.clone())
            .collect()
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
    /// The DevTools session attached to the tab (CDP): where its channel and watches live.
    pub session: Option<String>,
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
        let tabs = Arc::new(Tabs::default());
        let follow = tabs.clone();
        let events = Events::Only(
            &[
                "Runtime.bindingCalled",
                "Target.targetCreated",
                "Target.targetDestroyed",
            ],
            Box::new(move |event: &Value| {
                match channel_message(event) {
                    Some(text) => on_message(text),
                    None => follow.follow(event),
                }
                None
            }),
        );
        let connect =
            async {
                let version = format!("http://{devtools}/json/version");
                crate::tls::install();
                let client = reqwest::Client::builder().no_proxy().build().map_err(|e| {
                    BidiError::Connect {
                        url: version.clone(),
                        detail: e.to_string(),
                    }
                })?;
                let ws = client
                    .get(&version)
                    .send()
                    .await
                    .and_then(reqwest::Response::error_for_status)
                    .map_err(|e| BidiError::Connect {
                        url: version.clone(),
                        detail: e.to_string(),
                    })?
                    .json::<Value>()
                    .await
                    .map_err(|e| BidiError::Connect {
                        url: version.clone(),
                        detail: e.to_string(),
                    })?;
                let Some(ws) = ws["webSocketDebuggerUrl"].as_str() else {
                    return Err(BidiError::Connect {
                        url: version,
                        detail: "no webSocketDebuggerUrl".into(),
                    });
                };
                let socket = Bidi::connect(ws, Some(events)).await?;
                // The tabs that exist now are reported at once, then each as it is opened.
                socket
                    .call(
                        "Target.setDiscoverTargets",
                        json!({"discover": true, "filter": [{"type": "page"}]}),
                        TIMEOUT,
                    )
                    .await?;
                Ok(socket)
            };
        let socket = tokio::time::timeout(TIMEOUT, connect)
            .await
            .map_err(|_| timeout("connect"))??;
        Ok(Control::DevTools(Arc::new(socket), tabs))
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
            Control::DevTools(cdp, _) => {
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
                    let session = attach_with_channel(cdp, &target).await?;
                    Ok::<_, BidiError>((target, session))
                };
                match tab.await {
                    Ok((context, session)) => Ok(RunContext {
                        user_context: Some(user_context),
                        context,
                        channel_script: None,
                        session: Some(session),
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
            session: None,
        };
        let installed = match self {
            Control::Bidi(_) if !channel => Ok(()),
            Control::Bidi(bidi) => install_channel(bidi, Some(("contexts", &run.context)))
                .await
                .map(|id| run.channel_script = id),
            Control::DevTools(cdp, _) => attach_with_channel(cdp, &run.context)
                .await
                .map(|s| run.session = Some(s)),
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
            Control::DevTools(cdp, _) => {
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
    /// of `run`'s context before the page's own scripts; returns the script's id.
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
            Control::DevTools(cdp, _) => cdp
                .call_in(
                    run.session.as_deref(),
                    "Page.addScriptToEvaluateOnNewDocument",
                    json!({"source": format!("({function})();")}),
                    TIMEOUT,
                )
                .await?["identifier"]
                .clone(),
        };
        id.as_str().map(str::to_string).ok_or(BidiError::Remote {
            method: "adding a new-document script".into(),
            error: "no script id in the answer".into(),
            message: String::new(),
        })
    }

    /// Removes a script [`Self::add_watch`] added for `run`. Where the run's context is gone
    /// already, a DevTools script went with its tab: nothing to do (a BiDi one stays until
    /// removed).
    pub async fn remove_watch(
        &self,
        run: Option<&RunContext>,
        script: &str,
    ) -> Result<(), BidiError> {
        match self {
            Control::Bidi(bidi) => remove_preload_script(bidi, script).await.map(drop),
            Control::DevTools(cdp, _) => {
                let Some(session) = run.and_then(|r| r.session.as_deref()) else {
                    return Ok(());
                };
                cdp.call_in(
                    Some(session),
                    "Page.removeScriptToEvaluateOnNewDocument",
                    json!({"identifier": script}),
                    TIMEOUT,
                )
                .await
                .map(drop)
            }
        }
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
            Control::DevTools(_, tabs) => tabs.beside(&run.context),
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
                let mut partition = json!({"type": "storageKey"});
                if let Some(uc) = &run.user_context {
                    partition["userContext"] = json!(uc);
                }
                let v = bidi
                    .call(
                        "storage.getCookies",
                        json!({"partition": partition}),
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
                let mut partition = json!({"type": "storageKey"});
                if let Some(uc) = &run.user_context {
                    partition["userContext"] = json!(uc);
                }
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
                    r.map_err(|e| bidi_err(what, without_cookie_value(e, c)))?;
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
                        let e = match e {
                            BidiError::Remote { method, error, .. } => BidiError::Remote {
                                method,
                                error,
                                message: format!("cookies {names:?} refused"),
                            },
                            other => other,
                        };
                        bidi_err(what, e)
                    })
            }
        }
    }
}

/// Channel messages (their text) to `on_message`, every other event dropped where it arrives.
fn listener(on_message: impl Fn(&str) + Send + 'static) -> Events {
    Events::Answer(Box::new(move |event: &Value| {
        if let Some(text) = channel_message(event) {
            on_message(text);
        }
        None
    }))
}

fn timeout(method: &str) -> BidiError {
    BidiError::Timeout {
        method: method.into(),
        after: TIMEOUT,
    }
}

/// Attaches a DevTools session to the tab `target` and gives its documents the page channel
/// (a binding, which the Runtime domain must be enabled for) and its watches (which need Page);
/// returns the session's id.
async fn attach_with_channel(cdp: &Bidi, target: &str) -> Result<String, BidiError> {
    let a = cdp
        .call(
            "Target.attachToTarget",
            json!({"targetId": target, "flatten": true}),
            TIMEOUT,
        )
        .await?;
    let session = a["sessionId"].as_str().unwrap_or_default().to_string();
    let s = Some(session.as_str());
    // Sent together: the binding is installed in every context Runtime reports, and the
    // scripts for new documents run only where Page is enabled. The events both domains then
    // send are dropped unread (`Events::Only`).
    let (binding, runtime, page) = tokio::join!(
        cdp.call_in(s, "Runtime.addBinding", json!({"name": BINDING}), TIMEOUT),
        cdp.call_in(s, "Runtime.enable", json!({}), TIMEOUT),
        cdp.call_in(s, "Page.enable", json!({}), TIMEOUT),
    );
    binding?;
    runtime?;
    page?;
    Ok(session)
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
            session: None,
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

/// An error setting cookie `c`, without the browser's own message: it may quote the cookie,
/// whose value is a secret. Named by its code and the cookie's name only.
fn without_cookie_value(e: BidiError, c: &Value) -> BidiError {
    match e {
        BidiError::Remote { method, error, .. } => BidiError::Remote {
            method,
            error,
            message: format!("cookie `{}` refused", c["name"].as_str().unwrap_or("?")),
        },
        other => other,
    }
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

    #[test]
    fn tabs_are_listed_per_context_in_the_order_they_were_opened() {
        let tabs = Tabs::default();
        let created = |t: &str, c: &str| {
            json!({"method": "Target.targetCreated",
                "params": {"targetInfo": {"targetId": t, "browserContextId": c, "type": "page"}}})
        };
        for (t, c) in [
            ("first", "D"),
            ("run", "A"),
            ("spare", "B"),
            ("p1", "A"),
            ("p2", "A"),
        ] {
            tabs.follow(&created(t, c));
        }
        tabs.follow(&json!({"method": "Target.targetCreated",
            "params": {"targetInfo": {"targetId": "w", "browserContextId": "A", "type": "service_worker"}}}));
        tabs.follow(&json!({"method": "Target.targetDestroyed", "params": {"targetId": "p1"}}));
        tabs.follow(&json!({"method": "Target.targetInfoChanged",
            "params": {"targetInfo": {"targetId": "x", "browserContextId": "A", "type": "page"}}}));
        assert_eq!(tabs.beside("run"), vec!["run", "p2"]);
        assert_eq!(tabs.beside("first"), vec!["first"]);
        assert_eq!(tabs.beside("unknown"), vec!["unknown"]);
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
