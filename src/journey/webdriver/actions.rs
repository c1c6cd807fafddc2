//! The journey actions beyond click/fill/select/press: hover, upload, frames, windows, cookies,
//! storage, page scripts, element state and the page's requests. A child module of
//! `webdriver.rs` so it stays the only place speaking WebDriver (it sees `Browser`'s fields and
//! the shared helpers), in a file of its own so the session and context code stays apart.

use std::path::Path;
use std::time::Duration;

use fantoccini::actions::{InputSource, MouseActions, PointerAction};
use fantoccini::wd::WindowHandle;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{
    Arm, ArmHandle, Browser, SCRIPT_SLICE, StepError, is_navigation_interruption,
    is_script_timeout, wd_err,
};

const SCRIPT_RUN_JS: &str = concat!(
    include_str!("../js/script_wait.js"),
    include_str!("../js/script_run.js")
);
const SCRIPT_AWAIT_JS: &str = concat!(
    include_str!("../js/script_wait.js"),
    include_str!("../js/script_await.js")
);
const ELEMENT_STATE_JS: &str = concat!(
    include_str!("../js/cond.js"),
    include_str!("../js/element_state.js")
);
const CHANGED_JS: &str = include_str!("../js/changed.js");
const REQUESTS_JS: &str = include_str!("../js/requests.js");

/// How often the run's windows are listed while a popup is awaited.
const WINDOW_POLL: Duration = Duration::from_millis(50);

/// Where `frame` goes (templates rendered).
#[derive(Debug, Clone, Copy)]
pub enum FrameSel<'a> {
    /// The frame element this selector finds in the current frame.
    Element(&'a str),
    Parent,
    Top,
}

/// Which window `switch_to` picks (templates rendered).
#[derive(Debug, Clone, Copy)]
pub enum WindowSel<'a> {
    New,
    Index(u64),
    Title(&'a str),
}

/// A cookie to set (templates rendered).
#[derive(Debug, Clone)]
pub struct CookieSpec {
    pub name: String,
    pub value: String,
    pub path: Option<String>,
    pub domain: Option<String>,
    pub secure: bool,
    pub http_only: bool,
}

/// What `assert` reads about the elements a selector finds (`element_state.js`).
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct ElementState {
    pub count: u64,
    pub attr: Option<String>,
    /// Of the first element; `None` when there is none.
    pub enabled: Option<bool>,
    pub checked: Option<bool>,
    /// Whether any of them is shown.
    pub visible: bool,
}

/// A request of the current document, from its performance timeline.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct SeenRequest {
    pub url: String,
    /// 0 where the browser does not expose it.
    pub status: u16,
}

/// A page script's result: its JSON value and how long it ran by the page's clock.
#[derive(Debug, Clone, PartialEq)]
pub struct ScriptResult {
    pub value: Value,
    pub ms: f64,
}

impl Browser {
    /// Moves the pointer onto the element (a hover), armed like a click: timed from the
    /// page's `mouseover`.
    pub async fn hover_armed(
        &self,
        selector: &str,
        timeout: Duration,
        arm: Option<&Arm<'_>>,
    ) -> Result<Option<ArmHandle>, StepError> {
        self.act_on(selector, arm, timeout, |el, _| async move {
            let mouse =
                MouseActions::new("synmon-mouse".into()).then(PointerAction::MoveToElement {
                    element: el,
                    duration: None,
                    x: 0.0,
                    y: 0.0,
                });
            self.client.perform_actions(mouse).await?;
            // The pointer stays where it is for later steps; pressed buttons or keys do not.
            let _ = self.client.release_actions().await;
            Ok(())
        })
        .await
    }

    /// Chooses `file` in the file input `selector` (the browser reads it from this machine's
    /// disk: a remote WebDriver would need the file on its own), armed from `change`.
    pub async fn upload_armed(
        &self,
        selector: &str,
        file: &Path,
        timeout: Duration,
        arm: Option<&Arm<'_>>,
    ) -> Result<Option<ArmHandle>, StepError> {
        let file = file.to_string_lossy();
        let file = &file;
        self.act_on(selector, arm, timeout, |el, _| async move {
            el.send_keys(file).await
        })
        .await
    }

    /// Makes the following commands run inside a frame, its parent, or the top document.
    pub async fn frame(&self, to: FrameSel<'_>, timeout: Duration) -> Result<(), StepError> {
        match to {
            FrameSel::Element(selector) => {
                let super::Found { el, .. } = self.ready(selector, None, timeout).await?;
                el.enter_frame().await.map_err(|e| wd_err(selector, e))
            }
            FrameSel::Parent => self
                .client
                .enter_parent_frame()
                .await
                .map_err(|e| wd_err("the parent frame", e)),
            FrameSel::Top => {
                // Switching to the current window selects its top-level document.
                let w = self
                    .client
                    .window()
                    .await
                    .map_err(|e| wd_err("reading the window", e))?;
                self.client
                    .switch_to_window(w)
                    .await
                    .map_err(|e| wd_err("the top document", e))
            }
        }
    }

    /// The run's windows (tabs and popups), in the order they were opened: with a control
    /// socket, the tabs of the run's context (the session's other windows, and the next run's
    /// prepared tab, are not the run's); else every window of the session.
    async fn run_windows(&self) -> Result<Vec<String>, StepError> {
        if let (Some(control), Some(run)) = (&self.control, &self.run) {
            return control.windows(run).await;
        }
        self.client
            .windows()
            .await
            .map(|ws| ws.into_iter().map(String::from).collect())
            .map_err(|e| wd_err("listing the windows", e))
    }

    async fn switch_to(&self, handle: &str) -> Result<(), StepError> {
        let h = WindowHandle::try_from(handle.to_string())
            .map_err(|e| StepError::error(format!("a window handle: {e}")))?;
        self.client
            .switch_to_window(h)
            .await
            .map_err(|e| wd_err("switching windows", e))
    }

    /// Switches to another of the run's windows, waiting up to `timeout` for it to exist (a
    /// popup opens a moment after the click that asked for it).
    pub async fn switch_window(
        &self,
        to: WindowSel<'_>,
        timeout: Duration,
    ) -> Result<(), StepError> {
        let deadline = tokio::time::Instant::now() + timeout;
        let current: String = self
            .client
            .window()
            .await
            .map_err(|e| wd_err("reading the window", e))?
            .into();
        let mut titles: Vec<String> = Vec::new();
        loop {
            let windows = self.run_windows().await?;
            match to {
                WindowSel::New => {
                    if let Some(w) = windows.iter().rev().find(|w| **w != current) {
                        return self.switch_to(w).await;
                    }
                }
                WindowSel::Index(i) => {
                    if let Some(w) = windows.get(i as usize) {
                        return self.switch_to(w).await;
                    }
                }
                WindowSel::Title(want) => {
                    titles.clear();
                    for w in &windows {
                        self.switch_to(w).await?;
                        let t = self
                            .client
                            .title()
                            .await
                            .map_err(|e| wd_err("reading a window's title", e))?;
                        if t.contains(want) {
                            return Ok(());
                        }
                        titles.push(format!("{t:?}"));
                    }
                    self.switch_to(&current).await?;
                }
            }
            if tokio::time::Instant::now() + WINDOW_POLL >= deadline {
                let ms = timeout.as_millis();
                return Err(StepError::fail(match to {
                    WindowSel::New => format!("no new window opened within {ms} ms"),
                    WindowSel::Index(i) => format!(
                        "no window {i} after {ms} ms (the run has {}; 0 is its first tab)",
                        windows.len()
                    ),
                    WindowSel::Title(t) => format!(
                        "no window titled {t:?} after {ms} ms (titles: {})",
                        titles.join(", ")
                    ),
                }));
            }
            tokio::time::sleep(WINDOW_POLL).await;
        }
    }

    /// Sets a cookie for the current document's site (WebDriver adds cookies to the page
    /// that is open: `goto` the site first). Without `domain` the cookie is the page host's
    /// own (host-only), as the server would have set it.
    pub async fn set_cookie(&self, c: CookieSpec) -> Result<(), StepError> {
        let mut cookie = json!({
            "name": c.name,
            "value": c.value,
            "path": c.path.as_deref().unwrap_or("/"),
            "secure": c.secure,
            "httpOnly": c.http_only,
        });
        if let Some(d) = &c.domain {
            cookie["domain"] = json!(d);
        }
        // Add Cookie with the cookie as written: fantoccini's own sends an empty domain when
        // none is given, which chromedriver refuses, and a domain it fills in makes a domain
        // cookie, which the browser refuses for an IP address.
        self.post("cookie", json!({ "cookie": cookie }).to_string())
            .await
            .map(drop)
            .map_err(|e| wd_err(&format!("setting cookie `{}`", c.name), e))
    }

    /// Deletes every cookie the current document's site can see.
    pub async fn clear_cookies(&self) -> Result<(), StepError> {
        self.client
            .delete_all_cookies()
            .await
            .map_err(|e| wd_err("deleting cookies", e))
    }

    /// Sets `key` in the current document's localStorage (or sessionStorage).
    pub async fn set_storage(
        &self,
        key: &str,
        value: &str,
        session: bool,
    ) -> Result<(), StepError> {
        self.script(false,
                "(arguments[2] ? window.sessionStorage : window.localStorage).setItem(arguments[0], arguments[1]);",
                vec![json!(key), json!(value), json!(session)],
            )
            .await
            .map(drop)
            .map_err(|e| wd_err(&format!("setting storage `{key}`"), e))
    }

    /// Runs a journey's page script and returns its JSON result. An exception in it is the
    /// target's failure (`fail`), with the JS message and the line in the step's `js`.
    pub async fn run_script(
        &self,
        js: &str,
        args: &[Value],
        is_async: bool,
        timeout: Duration,
    ) -> Result<ScriptResult, StepError> {
        let deadline = tokio::time::Instant::now() + timeout;
        let slice =
            |left: Duration| json!(crate::config::duration::millis_u64(left.min(SCRIPT_SLICE)));
        let left = timeout;
        let mut res = self
            .script(
                true,
                SCRIPT_RUN_JS,
                vec![json!(js), json!(args), json!(is_async), slice(left)],
            )
            .await;
        loop {
            let more = deadline > tokio::time::Instant::now();
            match res {
                Ok(v) if v["done"] == json!(true) => {
                    if let Some(e) = v["error"].as_object() {
                        let msg = e
                            .get("message")
                            .and_then(Value::as_str)
                            .unwrap_or("an exception");
                        let at = e
                            .get("line")
                            .and_then(Value::as_u64)
                            .map(|l| format!(" (line {l} of `js`)"))
                            .unwrap_or_default();
                        return Err(StepError::fail(format!("the script threw {msg}{at}")));
                    }
                    return Ok(ScriptResult {
                        value: v["value"].clone(),
                        ms: v["ms"].as_f64().unwrap_or(0.0),
                    });
                }
                Ok(v) if v["lost"] == json!(true) => {
                    return Err(StepError::fail(
                        "the page navigated away before the script finished",
                    ));
                }
                Ok(_) if more => {}
                Err(e) if is_script_timeout(&e) && more => {}
                Ok(_) => {
                    return Err(StepError::fail(format!(
                        "the script did not finish within {} ms{}",
                        timeout.as_millis(),
                        if is_async {
                            " (an `async: true` script ends by calling `done(value)`)"
                        } else {
                            ""
                        }
                    )));
                }
                Err(e) if is_navigation_interruption(&e) => {
                    return Err(StepError::fail(
                        "the page navigated away before the script finished",
                    ));
                }
                Err(e) => return Err(wd_err("running the script", e)),
            }
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            res = self.script(true, SCRIPT_AWAIT_JS, vec![slice(left)]).await;
        }
    }

    /// The state of the elements `selector` finds (and attribute `attr` of the first).
    pub async fn element_state(
        &self,
        selector: &str,
        attr: Option<&str>,
    ) -> Result<ElementState, StepError> {
        let v = self
            .script(false, ELEMENT_STATE_JS, vec![json!(selector), json!(attr)])
            .await
            .map_err(|e| wd_err(selector, e))?;
        serde_json::from_value(v.clone())
            .map_err(|e| StepError::error(format!("{selector}: the page answered {v}: {e}")))
    }

    /// Returns at the page's next change, or after `wait` at most: an assertion that does not
    /// hold yet looks again then, without polling the page on a timer.
    pub async fn next_change(&self, wait: Duration) -> Result<(), StepError> {
        let ms = crate::config::duration::millis_u64(wait.min(SCRIPT_SLICE));
        match self.script(true, CHANGED_JS, vec![json!(ms)]).await {
            Ok(_) => Ok(()),
            Err(e) if is_navigation_interruption(&e) || is_script_timeout(&e) => Ok(()),
            Err(e) => Err(wd_err("watching the page", e)),
        }
    }

    /// The current document's requests, once there are more than `known` or after `wait`.
    pub async fn requests(
        &self,
        known: usize,
        wait: Duration,
    ) -> Result<Vec<SeenRequest>, StepError> {
        let ms = crate::config::duration::millis_u64(wait.min(SCRIPT_SLICE));
        match self
            .script(true, REQUESTS_JS, vec![json!(known), json!(ms)])
            .await
        {
            Ok(v) => serde_json::from_value(v.clone()).map_err(|e| {
                StepError::error(format!("the performance timeline answered {v}: {e}"))
            }),
            Err(e) if is_navigation_interruption(&e) || is_script_timeout(&e) => Ok(Vec::new()),
            Err(e) => Err(wd_err("reading the performance timeline", e)),
        }
    }
}
