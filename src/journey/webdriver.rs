//! The only file that speaks WebDriver (fantoccini). Everything the runner needs from a browser
//! is a method here, and every WebDriver failure is classified once, here, as the target's fault
//! (`fail`) or the probe's (`error`).

use std::sync::Arc;
use std::time::Duration;

use fantoccini::error::{CmdError, ErrorStatus, NewSessionError};
use fantoccini::wd::{
    Capabilities, TimeoutConfiguration, WebDriverCompatibleCommand, WindowHandle,
};
use fantoccini::{Client, ClientBuilder};
use serde::Serialize;
use serde_json::{Value, json};

use crate::outcome::Outcome;
use crate::trace::RunTrace;

pub mod actions;
pub mod bidi;
mod clear;
mod control;
mod direct;
pub mod emulation;
mod intercept;
mod wire;
use bidi::BidiError;
use control::{Control, RunContext};

/// The `webdriver:` section: which browser, how many sessions, how long to wait for it.
#[derive(Debug, Clone)]
pub struct WebDriverConfig {
    /// A remote WebDriver endpoint; `None` means a supervised local chromedriver.
    pub remote_url: Option<reqwest::Url>,
    pub chromedriver: String,
    pub browser_binary: Option<String>,
    pub headless: bool,
    /// Whether a local headless session runs on Chromium's headless shell when one is
    /// installed and `browser_binary` names no browser (`webdriver.headless_shell`, default
    /// true; see [`super::program`]).
    pub headless_shell: bool,
    pub window: (u32, u32),
    pub extra_args: Vec<String>,
    /// Size of the browser session pool.
    pub sessions: u32,
    pub startup_timeout: Duration,
    /// How one run is kept apart from the next.
    pub isolation: Isolation,
    /// A pooled browser is replaced after this many runs (memory a long-lived Chromium gathers).
    pub recycle_after: u32,
    /// Whether the run tab's requests to the target's origins carry the run's trace headers
    /// (`webdriver.trace_requests`, default true). The interception that adds them costs each
    /// such request a round trip to synmon (BENCHMARKS.md: 1.75-2.0 of synmon's 7.75-8.0 ms of
    /// CPU per `align_category` run), worth paying only where the target's traces are
    /// read; the run's `http:` steps carry the headers either way (free).
    pub trace_requests: bool,
    /// More capabilities for the new-session request (`webdriver.capabilities`, validated at
    /// load by [`check_capability`]): a Selenium Grid's `se:` options, `platformName`, ...
    pub capabilities: serde_json::Map<String, Value>,
    /// What a local browser's contexts go through (`webdriver.local_protocol`).
    pub local_protocol: LocalProtocol,
    /// How a local browser's journey steps are sent (`webdriver.local_steps`).
    pub local_steps: LocalSteps,
}

/// Capabilities synmon sets itself and a config may not override: the browser it drives, the
/// BiDi socket its pooling and in-page timing rely on, and the options its launch arguments,
/// timeouts and console capture live in (`extra_args`, `browser_binary`, ...).
const OWN_CAPABILITIES: [&str; 7] = [
    "browserName",
    "webSocketUrl",
    "goog:chromeOptions",
    "goog:loggingPrefs",
    "pageLoadStrategy",
    "timeouts",
    "unhandledPromptBehavior",
];

/// W3C capabilities a config may add as they are.
const STANDARD_CAPABILITIES: [&str; 5] = [
    "browserVersion",
    "platformName",
    "acceptInsecureCerts",
    "proxy",
    "strictFileInteractability",
];

/// Why `key` cannot go into the new-session request (`webdriver.capabilities`), or `None`.
/// Extension capabilities are `prefix:name` (W3C WebDriver §7.1), e.g. `se:name`.
pub fn check_capability(key: &str) -> Option<String> {
    if OWN_CAPABILITIES.contains(&key) {
        return Some(format!(
            "`{key}` is set by synmon (use `headless`, `extra_args`, `browser_binary`, `isolation` instead)"
        ));
    }
    if STANDARD_CAPABILITIES.contains(&key) {
        return None;
    }
    match key.split_once(':') {
        Some((prefix, name))
            if !prefix.is_empty()
                && !name.is_empty()
                && !name.contains(':')
                && prefix
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') =>
        {
            None
        }
        _ => Some(format!(
            "`{key}` is neither a W3C capability a config may set ({}) nor an extension capability `prefix:name` (e.g. `se:name`)",
            STANDARD_CAPABILITIES.join(", ")
        )),
    }
}

/// How runs are isolated from each other (`webdriver.isolation`).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize, Serialize, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Isolation {
    /// Browsers stay alive across runs; each run gets a fresh context (a local browser's
    /// DevTools browser context, a remote one's WebDriver BiDi user context)
    /// (cookies, storage, cache, service workers of its own, deleted after the run).
    #[default]
    Context,
    /// A new browser session per run: the strongest isolation, and the most expensive.
    Session,
    /// Browsers stay alive across runs and each keeps one tab, whose cookies, storage, cache,
    /// service workers and permissions are cleared through the browser's DevTools server after
    /// every run: the cheapest, for a local browser only (elsewhere it is `context`). See
    /// `webdriver/clear.rs` for what it does not reach.
    Clear,
}

/// What a local browser's run contexts, page channel and new-document watches go through
/// (`webdriver.local_protocol`). A remote end is always spoken to over WebDriver BiDi.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize, Serialize, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum LocalProtocol {
    /// The browser's own DevTools socket (the session asks for no BiDi): no BiDi mapper tab in
    /// the browser, a fifth less browser CPU per pooled run (see `webdriver/control.rs`).
    #[default]
    Devtools,
    /// WebDriver BiDi, as for a remote end.
    Bidi,
}

/// How a local browser's journey steps are sent (`webdriver.local_steps`).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize, Serialize, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum LocalSteps {
    /// In the run tab's session on the browser's DevTools socket, around chromedriver (see
    /// `webdriver/direct.rs`), when the context socket is DevTools and every step of the
    /// journey can go there.
    #[default]
    Devtools,
    /// As chromedriver's WebDriver commands.
    Webdriver,
}

impl Isolation {
    pub fn as_str(self) -> &'static str {
        match self {
            Isolation::Context => "context",
            Isolation::Session => "session",
            Isolation::Clear => "clear",
        }
    }
}

const ARM_NOW_JS: &str = concat!(
    include_str!("js/cond.js"),
    include_str!("js/arm.js"),
    include_str!("js/arm_now.js")
);
const READY_JS: &str = concat!(
    include_str!("js/cond.js"),
    include_str!("js/arm.js"),
    include_str!("js/find.js"),
    include_str!("js/ready.js")
);
const AWAIT_JS: &str = include_str!("js/await.js");
/// `await.js` that also finds and arms the next action's element (its `next` argument),
/// collects the run's evidence (`evidence_slow_ms`), follows the action into its new document
/// (`follow`) or checks the next step's `wait_for` (`wait`).
const AWAIT_NEXT_JS: &str = concat!(
    include_str!("js/cond.js"),
    include_str!("js/arm.js"),
    include_str!("js/find.js"),
    include_str!("js/evidence.js"),
    include_str!("js/nav_wait.js"),
    include_str!("js/await.js")
);
const WAIT_JS: &str = concat!(include_str!("js/cond.js"), include_str!("js/wait.js"));
const NAV_AWAIT_JS: &str = concat!(
    include_str!("js/nav_wait.js"),
    include_str!("js/nav_await.js")
);
const EVIDENCE_JS: &str = concat!(
    include_str!("js/evidence.js"),
    "__synmonEvidence(arguments[0], arguments[arguments.length - 1]);"
);
/// WebDriver's key for an element reference in a script's result.
const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";
/// How long to wait for an action's start to come through the channel (it was sent before the
/// navigation it caused began; this only absorbs the two sockets' ordering).
const START_GRACE: Duration = Duration::from_millis(250);

/// Page scripts wait in slices of at most this long: a script whose callback a navigation
/// swallowed is then noticed quickly, and the wait goes on in the new document.
pub const SCRIPT_SLICE: Duration = Duration::from_millis(1500);

/// The session's script timeout: one slice plus room for a loaded machine.
pub const SCRIPT_TIMEOUT: Duration = Duration::from_millis(4000);

/// A local browser's log is emptied once every this many runs (see [`Browser::forget_log`]).
const LOG_DRAIN_RUNS: u32 = 10;

/// Now, in milliseconds since the epoch: the system clock, which the local browser stamps its
/// log entries by (a runner's injected clock cannot stand in for it).
pub(super) fn epoch_ms() -> f64 {
    use crate::clock::Clock;
    crate::clock::SystemClock.now().timestamp_micros() as f64 / 1000.0
}

fn is_script_timeout(e: &CmdError) -> bool {
    matches!(e, CmdError::Standard(w) if w.error == ErrorStatus::ScriptTimeout)
}

/// A failed browser operation, already classified.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct StepError {
    pub outcome: Outcome,
    pub message: String,
}

impl StepError {
    pub fn fail(message: impl Into<String>) -> Self {
        Self {
            outcome: Outcome::Fail,
            message: message.into(),
        }
    }

    pub fn error(message: impl Into<String>) -> Self {
        Self {
            outcome: Outcome::Error,
            message: message.into(),
        }
    }
}

/// A condition as the page scripts see it (templates already rendered).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Cond {
    pub selector: String,
    pub text: Option<String>,
    pub visible: bool,
    pub gone: bool,
}

impl Cond {
    pub fn present(selector: &str) -> Self {
        Self {
            selector: selector.to_string(),
            text: None,
            visible: true,
            gone: false,
        }
    }
}

/// How an armed in-page measurement ended on the document it was armed in.
#[derive(Debug, Clone, PartialEq)]
pub enum Armed {
    /// Latency from the user's input event to the condition, measured inside the page.
    InPage(f64),
    /// The page navigated away: the action is followed into the new document.
    Lost,
    /// The condition did not hold in time.
    TimedOut,
}

/// How the user's input is matched to the condition in `arm` (the benchmark's entry point).
#[derive(Debug, Clone, Copy)]
pub enum ArmMode {
    /// From the `click` event.
    FirstInput,
    /// From the last `input` event (typing: the latency a user sees after they stop typing).
    LastInput,
}

/// The event an interaction is timed from, as the Event Timing API delimits interactions: a
/// click from its `click` event (not `pointerdown`: WebDriver's synthetic press and release
/// span several milliseconds that are the driver's, not the page's), a key press from
/// `keydown`, typing from the last `input` event, a select from `change`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartEvent {
    Click,
    KeyDown,
    LastInput,
    Change,
    /// A hover: the pointer entering the element (`mouseover`, which bubbles to the window).
    MouseOver,
}

impl StartEvent {
    fn js(self) -> &'static str {
        match self {
            StartEvent::Click => "click",
            StartEvent::KeyDown => "keydown",
            StartEvent::LastInput => "input",
            StartEvent::Change => "change",
            StartEvent::MouseOver => "mouseover",
        }
    }
}

/// What to arm before a user action.
#[derive(Debug, Clone, Copy)]
pub struct Arm<'a> {
    /// The awaited state (`until`); `None`: the action ends when the page has handled its
    /// start event.
    pub until: Option<&'a Cond>,
    pub start: StartEvent,
    /// The action may load a new document (a click, a key press, a submit): watch every new
    /// document of the run for `until` from its first moment.
    pub follow_navigation: bool,
}

/// The journey's next action, whose element the script that ends this step (the await of an
/// action, the navigation's timing after a `goto`) finds and arms in the same call when it is
/// already there (see `js/await.js`): one command less per step.
#[derive(Debug, Clone)]
pub struct Next {
    /// The element the next action targets (rendered as that action will render it).
    pub selector: String,
    /// What that action arms, as it will arm it.
    pub until: Option<Cond>,
    pub start: StartEvent,
    pub follow_navigation: bool,
}

impl Next {
    fn arm(&self) -> Arm<'_> {
        Arm {
            until: self.until.as_ref(),
            start: self.start,
            follow_navigation: self.follow_navigation,
        }
    }
}

/// What follows an action in its journey, for the script that awaits the action to do in the
/// same call (one command less each time).
#[derive(Debug, Clone, Copy)]
pub enum After<'a> {
    /// Nothing to do ahead (an action inside a `poll`, the benchmark's own calls).
    Nothing,
    /// The next step, an action: its element is found and armed ahead ([`Next`]).
    Action(&'a Next),
    /// The journey's last step: the run's evidence (see [`Browser::evidence`]) is collected
    /// once the condition held, with requests from `slow_ms` counted as slow.
    End { slow_ms: u64 },
    /// The next step, a `wait_for` of this condition: checked once this action's end is
    /// known; when it holds, that step is answered without a command (see
    /// [`Browser::wait_for`]).
    Wait(&'a Cond),
}

impl After<'_> {
    fn finds_element(&self) -> bool {
        matches!(self, After::Action(_))
    }
}

/// What the await of an action answered.
enum Awaited {
    /// On the document the action was armed in.
    Armed(Armed),
    /// The action had navigated, and the same call awaited its new document (`nav_await.js`'s
    /// answer, `{end, origin, nav}`, `{pending}` or `{timeout}`).
    NewDocument(Value),
}

/// A [`Next`] as a page script is asked to find it ahead.
struct AheadAsk<'a> {
    next: &'a Next,
    spec: Value,
    token: String,
}

impl AheadAsk<'_> {
    /// The `next` argument of the page scripts: `{selector, arm}`.
    fn arg(&self) -> Value {
        let mut arm = self.spec.clone();
        arm["token"] = json!(self.token);
        json!({"selector": self.next.selector, "arm": arm})
    }
}

/// The next action's element as the last await found it (and armed its action), kept until
/// that action takes it. An action that asks for anything else (another selector, another
/// arming) looks for its element itself, and this is dropped.
#[derive(Debug)]
struct Ahead {
    selector: String,
    /// What was armed, without its token: [`Browser::arm_spec`].
    arm: Option<Value>,
    token: String,
    found: Value,
}

/// The element an action targets, found (and the action armed) by [`Browser::ready`].
struct Found {
    el: fantoccini::elements::Element,
    handle: Option<ArmHandle>,
    /// An enabled, writable field with nothing in it: a fill needs no clear first.
    blank: bool,
    /// Found by the last step's script (see [`Next`]), not looked for now.
    ahead: bool,
}

/// How new documents are watched for an armed action's condition (see `js/nav_watch.js`).
#[derive(Debug)]
struct Watch {
    /// The key the new document's mark is kept by.
    key: String,
    /// The preload script installed for this action alone, removed after it; `None` when the
    /// run's own watch (see [`Browser::watch_documents`]) covers the condition.
    script: Option<String>,
}

/// An armed action, to be awaited with [`Browser::finish`].
#[derive(Debug)]
pub struct ArmHandle {
    token: String,
    /// How new documents are watched for the condition, if they are.
    watch: Option<Watch>,
    /// Whether the action awaits a condition (else it ends when the page handled it).
    until: bool,
    /// The condition already held before the action (the measurement then means little).
    pub pre: bool,
}

/// How a timed action ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Finished {
    /// On the same document, by the page's clock.
    InPage(f64),
    /// On the document the action navigated to: from the input event on the old document (or
    /// the navigation's start, for a `goto`) to the awaited state on the new one, both clocks
    /// epoch-anchored (`performance.timeOrigin`).
    Navigation(f64, Option<crate::run::NavTiming>),
    /// The action navigated and nothing watched the new document: the caller waits from
    /// outside.
    Unfollowed,
    /// The condition did not hold in time.
    TimedOut,
}

/// Whether a WebDriver failure is the target's fault or the probe's.
pub fn classify(e: &CmdError) -> Outcome {
    match e {
        CmdError::Standard(w) => {
            let msg = w.message.to_ascii_lowercase();
            // A page load the network refused (net::ERR_CONNECTION_REFUSED, and
            // net::ERR_INTERNET_DISCONNECTED of a journey with `network: {offline: true}`, whose
            // "disconnected" is not the browser's) is the target being unreachable.
            if w.error == ErrorStatus::UnknownError && msg.contains("net::err_") {
                return Outcome::Fail;
            }
            let probe_broke = [
                "session deleted",
                "chrome not reachable",
                "disconnected",
                "crashed",
                "out of memory",
                "cannot connect to chrome",
                "no such session",
                "invalid session id",
                // A Selenium Grid whose node (with its browser) is gone: the router cannot
                // reach the node holding the session.
                "unable to execute request for an existing session",
            ]
            .iter()
            .any(|m| msg.contains(m));
            if probe_broke {
                return Outcome::Error;
            }
            match w.error {
                ErrorStatus::NoSuchElement
                | ErrorStatus::StaleElementReference
                | ErrorStatus::ElementNotInteractable
                | ErrorStatus::ElementClickIntercepted
                | ErrorStatus::ElementNotSelectable
                | ErrorStatus::InvalidElementState
                | ErrorStatus::MoveTargetOutOfBounds
                | ErrorStatus::Timeout
                | ErrorStatus::ScriptTimeout
                | ErrorStatus::UnexpectedAlertOpen => Outcome::Fail,
                // A navigation the target refused (net::ERR_CONNECTION_REFUSED, ...) is the
                // target being unreachable.
                ErrorStatus::UnknownError if msg.contains("net::err_") => Outcome::Fail,
                _ => Outcome::Error,
            }
        }
        CmdError::WaitTimeout => Outcome::Fail,
        _ => Outcome::Error,
    }
}

fn describe(e: &CmdError) -> String {
    match e {
        CmdError::Standard(w) => {
            // chromedriver appends a multi-line session info block; the first line says it.
            let first = w.message.lines().next().unwrap_or("").trim();
            let name = w.error.to_string();
            if first.starts_with(&name) {
                first.to_string()
            } else {
                format!("{name}: {first}")
            }
        }
        CmdError::Lost(_) | CmdError::Failed(_) | CmdError::FailedC(_) => {
            format!("WebDriver unreachable: {e}")
        }
        other => other.to_string(),
    }
}

fn wd_err(what: &str, e: CmdError) -> StepError {
    StepError {
        outcome: classify(&e),
        message: format!("{what}: {}", describe(&e)),
    }
}

/// The element a command targeted is no longer there, or no longer shown.
fn is_gone(e: &CmdError) -> bool {
    matches!(e, CmdError::Standard(w) if matches!(
        w.error,
        ErrorStatus::StaleElementReference | ErrorStatus::ElementNotInteractable
    ))
}

fn is_navigation_interruption(e: &CmdError) -> bool {
    match e {
        CmdError::Standard(w) => {
            let m = w.message.to_ascii_lowercase();
            (w.error == ErrorStatus::JavascriptError || w.error == ErrorStatus::UnknownError)
                && (m.contains("document unloaded")
                    || m.contains("execution context was destroyed")
                    || m.contains("inspected target navigated or closed")
                    // Over the DevTools socket (`direct.rs`): the document's context went.
                    || m.contains("cannot find context with specified id")
                    || m.contains("promise was collected"))
        }
        _ => false,
    }
}

/// `endpoint` without the user name and password a Grid service's URL may carry (an access
/// key): the run's message is stored and notified.
fn without_credentials(endpoint: &url::Url) -> url::Url {
    let mut u = endpoint.clone();
    let _ = u.set_username("");
    let _ = u.set_password(None);
    u
}

/// Browser launch settings sent as capabilities, for `program` (see
/// [`super::program::Program::for_config`]).
pub fn capabilities(
    cfg: &WebDriverConfig,
    program: &super::program::Program,
    user_data_dir: Option<&std::path::Path>,
) -> Capabilities {
    let mut args: Vec<String> = vec![
        "--no-sandbox".into(),
        "--disable-gpu".into(),
        "--disable-dev-shm-usage".into(),
        "--disable-background-networking".into(),
        "--disable-component-update".into(),
        "--disable-sync".into(),
        "--disable-quic".into(),
        // Every new window (a run's user context opens one) preloads two omnibox popup pages,
        // each in a renderer of its own: most of a pooled run's browser CPU (BENCHMARKS.md,
        // "Browser cost"). A headless monitor never shows an omnibox.
        "--disable-features=WebUIOmniboxPopup,WebUIOmniboxAimPopup".into(),
        "--no-first-run".into(),
        "--no-default-browser-check".into(),
        format!("--window-size={},{}", cfg.window.0, cfg.window.1),
    ];
    if cfg.headless && !program.headless_shell {
        args.insert(0, "--headless=new".into());
    }
    if let Some(dir) = user_data_dir {
        args.push(format!("--user-data-dir={}", dir.display()));
    }
    args.extend(cfg.extra_args.iter().cloned());
    let mut chrome = json!({
        "args": args,
        // Without these the first command waits for the new-tab page: seconds of noise.
        "prefs": {"session.restore_on_startup": 4, "session.startup_urls": ["about:blank"]},
    });
    if let Some(bin) = &program.binary {
        chrome["binary"] = json!(bin);
    }
    let mut caps = Capabilities::new();
    let name = if program.headless_shell {
        "chrome-headless-shell"
    } else {
        "chrome"
    };
    caps.insert("browserName".into(), json!(name));
    caps.insert("goog:chromeOptions".into(), chrome);
    caps.insert("goog:loggingPrefs".into(), json!({"browser": "ALL"}));
    caps.insert("pageLoadStrategy".into(), json!("normal"));
    // Asks for the session's WebDriver BiDi socket: user contexts and preload scripts (timing
    // across navigations) live there. Not for a local browser (it has a profile directory of
    // ours) spoken to over its DevTools socket: chromedriver would start its BiDi mapper.
    if user_data_dir.is_none() || cfg.local_protocol == LocalProtocol::Bidi {
        caps.insert("webSocketUrl".into(), json!(true));
    }
    // The config's own (a Grid's `se:` options, ...): keys validated at load never name one of
    // the above.
    for (k, v) in &cfg.capabilities {
        caps.insert(k.clone(), v.clone());
    }
    caps
}

/// One browser session, and the isolated context the current run drives in it.
pub struct Browser {
    client: Client,
    /// Where contexts, the page channel and new-document watches go: the browser's DevTools
    /// socket (a local browser) or the session's BiDi socket (see `webdriver/control.rs`);
    /// `None`: a classic session.
    control: Option<Control>,
    /// The current run's user context and tab. The session's first window stays open on
    /// `about:blank` in the default user context, untouched: runs' tabs come and go.
    run: Option<RunContext>,
    /// The next run's context, being prepared in the background.
    spare: Option<tokio::task::JoinHandle<Result<RunContext, StepError>>>,
    /// Runs this session has served.
    runs: u32,
    /// Where this run's part of the session's browser log begins (epoch ms): see
    /// [`Browser::forget_log`].
    log_since: Option<f64>,
    /// Actions' epoch-anchored starts, by token, as the pages sent them on the channel.
    starts: Arc<Starts>,
    tokens: std::sync::atomic::AtomicU64,
    /// The browser's DevTools server (`host:port`), for a local browser: where the run tab's
    /// request interception connects.
    devtools: Option<String>,
    /// The current run's request interception (trace headers), while the run holds the tab.
    interceptor: Option<intercept::Interceptor>,
    /// The run tab is kept and cleared between runs (`isolation: clear`).
    clears: bool,
    /// New-document watchers (preload scripts) installed and not yet removed: an action that
    /// fails or times out after arming leaves its watcher, which a kept tab must not carry
    /// into the next run.
    watchers: std::sync::Mutex<Vec<String>>,
    /// The conditions the run's own new-document watch covers (their JSON), with the key each
    /// is marked by: see [`Browser::watch_documents`].
    run_watch: std::sync::Mutex<std::collections::HashMap<String, String>>,
    /// The next action's element, found by the last await (see [`Next`]).
    ahead: std::sync::Mutex<Option<Ahead>>,
    /// The condition of the journey's next `wait_for`, found holding by the last action's
    /// await (see [`After::Wait`]), until that step takes it.
    waited: std::sync::Mutex<Option<Cond>>,
    /// The run's evidence, collected by the await of its last action (see [`Self::evidence`]).
    evidence: std::sync::Mutex<Option<Value>>,
    /// When the last renewal ended (its commands answered, the run's tab there).
    renewed: Option<tokio::time::Instant>,
    /// The page channel is installed for every context of the session (else per context).
    channel_everywhere: bool,
    /// The hot path's commands on a connection of their own (a local chromedriver only; see
    /// `wire.rs`); `None`: through fantoccini.
    wire: Option<wire::Wire>,
    /// This run's steps over the browser's DevTools socket instead of chromedriver (see
    /// `webdriver/direct.rs`); `None`: over WebDriver.
    direct: Option<direct::Direct>,
    /// The session's timeouts (page load, script), for the steps sent around chromedriver.
    timeouts: (Duration, Duration),
    _profile: Profile,
}

/// A local browser's profile directory, deleted when the browser goes. Chromium leaves
/// thousands of files there: they are deleted on a blocking thread, not on the browser
/// thread the other runs share (see `browser_rt.rs`).
struct Profile(Option<tempfile::TempDir>);

impl Drop for Profile {
    fn drop(&mut self) {
        let Some(dir) = self.0.take() else { return };
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn_blocking(move || drop(dir));
        }
    }
}

/// The starts the page scripts sent (`script.message` on the `synmon` channel).
#[derive(Default)]
struct Starts {
    by_token: std::sync::Mutex<std::collections::HashMap<String, f64>>,
    arrived: tokio::sync::Notify,
}

impl Starts {
    /// Records a start the page sent (`{"token", "t0"}`, as text).
    fn record(&self, text: &str) {
        let Ok(v) = serde_json::from_str::<Value>(text) else {
            return;
        };
        if let (Some(token), Some(t0)) = (v["token"].as_str(), v["t0"].as_f64()) {
            self.by_token
                .lock()
                .expect("starts lock")
                .insert(token.to_string(), t0);
            self.arrived.notify_waiters();
        }
    }

    /// The start recorded for `token`, waiting up to `grace` for it to arrive.
    async fn take(&self, token: &str, grace: Duration) -> Option<f64> {
        let deadline = tokio::time::Instant::now() + grace;
        loop {
            let arrived = self.arrived.notified();
            if let Some(t0) = self.by_token.lock().expect("starts lock").remove(token) {
                return Some(t0);
            }
            if tokio::time::timeout_at(deadline, arrived).await.is_err() {
                return None;
            }
        }
    }

    fn clear(&self) {
        self.by_token.lock().expect("starts lock").clear();
    }
}

pub(super) fn bidi_err(what: &str, e: BidiError) -> StepError {
    StepError::error(format!("{what}: {e}"))
}

/// A POST to one of the session's endpoints (`path` under `session/{id}/`) with a JSON body, as
/// it is: what [`Browser::post`] sends through fantoccini where the wire does not reach.
#[derive(Debug)]
struct SessionPost {
    path: String,
    body: String,
}

impl WebDriverCompatibleCommand for SessionPost {
    fn endpoint(
        &self,
        base: &url::Url,
        session: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base.join(&format!(
            "session/{}/{}",
            session.unwrap_or_default(),
            self.path
        ))
    }

    fn method_and_body(&self, _: &url::Url) -> (http::Method, Option<String>) {
        (http::Method::POST, Some(self.body.clone()))
    }
}

impl Browser {
    /// Opens a session. Any failure here is the probe's (`error`), never the target's.
    pub async fn connect(
        endpoint: &url::Url,
        cfg: &WebDriverConfig,
        local: bool,
        page_load: Duration,
        script: Duration,
    ) -> Result<Self, StepError> {
        let profile = if local {
            Some(
                tempfile::Builder::new()
                    .prefix("synmon-chrome-")
                    .tempdir()
                    .map_err(|e| {
                        StepError::error(format!("cannot create browser profile dir: {e}"))
                    })?,
            )
        } else {
            None
        };
        // A remote end's browser is the remote machine's: only `browser_binary` is passed on.
        let mut program = super::program::Program::for_config(cfg);
        let client = loop {
            tracing::debug!(
                binary = program.binary.as_deref().unwrap_or("chromedriver's choice"),
                headless_shell = program.headless_shell,
                "starting a browser session"
            );
            let caps = capabilities(cfg, &program, profile.as_ref().map(|p| p.path()));
            let connector = hyper_util::client::legacy::connect::HttpConnector::new();
            let (detail, browser_refused) = match ClientBuilder::new(connector)
                .capabilities(caps)
                .connect(endpoint.as_str())
                .await
            {
                Ok(client) => break client,
                Err(NewSessionError::SessionNotCreated(w)) => {
                    (w.message.lines().next().unwrap_or("").to_string(), true)
                }
                // chromedriver not reached: no word on the browser.
                Err(other) => (other.to_string(), false),
            };
            // A shell synmon found by itself (not one the config names) that does not start
            // (another version than chromedriver's, a broken install) must not stop the
            // journeys: it is not tried again in this process, and the next program found
            // (another shell, else chromedriver's own choice) takes over.
            let next = match program.binary.as_deref() {
                Some(shell)
                    if browser_refused
                        && program.headless_shell
                        && cfg.browser_binary.is_none() =>
                {
                    tracing::warn!(
                        shell,
                        error = %detail,
                        "the headless shell did not start; trying another browser"
                    );
                    super::program::refuse(shell);
                    Some(super::program::Program::for_config(cfg))
                }
                _ => None,
            };
            match next {
                // Never the same program twice in a row: a refused shell is not found again.
                Some(next) if next != program => program = next,
                _ => {
                    return Err(StepError::error(format!(
                        "cannot create a browser session at {}: {detail}",
                        without_credentials(endpoint)
                    )));
                }
            }
        };
        let mut browser = Self {
            client,
            control: None,
            run: None,
            spare: None,
            runs: 0,
            log_since: None,
            starts: Arc::new(Starts::default()),
            tokens: Default::default(),
            devtools: None,
            interceptor: None,
            clears: false,
            watchers: Default::default(),
            run_watch: Default::default(),
            ahead: Default::default(),
            waited: Default::default(),
            evidence: Default::default(),
            renewed: None,
            wire: None,
            direct: None,
            timeouts: (page_load, script),
            channel_everywhere: false,
            _profile: Profile(profile),
        };
        if local && let Ok(Some(session)) = browser.client.session_id().await {
            browser.wire = wire::Wire::new(endpoint, &session);
        }
        if let Err(e) = browser
            .setup(
                page_load,
                script,
                local,
                cfg.local_protocol == LocalProtocol::Bidi,
            )
            .await
        {
            browser.close().await;
            return Err(e);
        }
        Ok(browser)
    }

    /// `local_bidi`: a local browser's contexts go through BiDi too
    /// (`webdriver.local_protocol: bidi`).
    async fn setup(
        &mut self,
        page_load: Duration,
        script: Duration,
        local: bool,
        local_bidi: bool,
    ) -> Result<(), StepError> {
        self.client
            .update_timeouts(TimeoutConfiguration::new(
                Some(script),
                Some(page_load),
                Some(Duration::ZERO),
            ))
            .await
            .map_err(|e| StepError::error(format!("setting session timeouts: {}", describe(&e))))?;
        if local {
            // A remote browser's DevTools address is the remote machine's loopback: not ours.
            self.devtools = self
                .client
                .capabilities()
                .and_then(|c| c.get("goog:chromeOptions"))
                .and_then(|o| o.get("debuggerAddress"))
                .and_then(Value::as_str)
                .map(str::to_string);
        }
        let starts = self.starts.clone();
        let on_message = move |text: &str| starts.record(text);
        if let Some(devtools) = self.devtools.clone().filter(|_| !local_bidi) {
            // A local browser: contexts, channel and watches over its own DevTools socket
            // (the session asked for no BiDi: no mapper tab in the browser). A browser whose
            // socket cannot be opened is driven as a classic session.
            match Control::open_devtools(&devtools, on_message).await {
                Ok(c) => self.control = Some(c),
                Err(e) => {
                    tracing::warn!(error = %e, "DevTools socket unavailable: classic session")
                }
            }
            return Ok(());
        }
        let ws = self
            .client
            .capabilities()
            .and_then(|c| c.get("webSocketUrl"))
            .and_then(Value::as_str)
            .map(str::to_string);
        if let Some(ws) = ws {
            // BiDi adds to the session; a remote end that advertises it but whose socket cannot
            // be reached (a grid node's address), or that refuses the subscription, is driven
            // as a classic session: a new one per run, navigations timed from outside.
            match Control::open_bidi(&ws, on_message).await {
                Ok(c) => {
                    // The page channel once for the session's every context, instead of a
                    // preload script added and removed per run's context (two BiDi round
                    // trips per run, and the browser's work for each).
                    self.channel_everywhere = c.install_channel_everywhere().await;
                    self.control = Some(c);
                }
                Err(e) => tracing::warn!(error = %e, "WebDriver BiDi unavailable: classic session"),
            }
        }
        Ok(())
    }

    /// Gives up contexts for this session (they failed): a classic session from now on.
    pub fn drop_contexts(&mut self) {
        self.control = None;
        self.run = None;
        if let Some(spare) = self.spare.take() {
            spare.abort();
        }
    }

    /// Whether runs can get a context of their own in this session (a local browser's DevTools
    /// socket, or a remote end that speaks WebDriver BiDi).
    pub fn has_contexts(&self) -> bool {
        self.control.is_some()
    }

    /// Runs served so far.
    pub fn runs(&self) -> u32 {
        self.runs
    }

    /// For a browser that serves one run only (`isolation: session`): the run drives the
    /// session's first tab, in the default context, with the page channel installed for the
    /// documents it loads. In a classic session, nothing to do.
    pub async fn adopt_first_tab(&mut self) -> Result<(), StepError> {
        let Some(control) = self.control.clone() else {
            return Ok(());
        };
        let context: String = self
            .client
            .window()
            .await
            .map_err(|e| wd_err("reading the session's window", e))?
            .into();
        self.run = Some(control.adopt(context, !self.channel_everywhere).await);
        Ok(())
    }

    /// Points the session at a fresh user context for the next run: the one prepared while
    /// the last run ran (or a new one, for a new browser), with one tab of its own. The run
    /// that follows sees no cookie, storage, cache entry or service worker of an earlier run:
    /// the last run's context is deleted, with everything it stored, and the one after next is
    /// prepared, both in the background, off the next run's critical path.
    pub async fn next_context(&mut self) -> Result<(), StepError> {
        let Some(control) = self.control.clone() else {
            return Err(StepError::error(
                "no context socket (WebDriver BiDi, or a local browser's DevTools): no contexts",
            ));
        };
        let ctx = match self.spare.take() {
            Some(prepared) => match prepared.await {
                Ok(r) => r?,
                Err(e) => return Err(StepError::error(format!("preparing a context: {e}"))),
            },
            None => control.create_context(!self.channel_everywhere).await?,
        };
        let handle = WindowHandle::try_from(ctx.context.clone())
            .map_err(|e| StepError::error(format!("the new tab's handle: {e}")))?;
        self.interceptor = None;
        self.direct = None;
        let old = self.run.replace(ctx);
        self.starts.clear();
        self.client
            .switch_to_window(handle)
            .await
            .map_err(|e| wd_err("switching to the run's tab", e))?;
        self.forget_log().await;
        if old.is_some() {
            self.runs += 1;
        }
        // The last run's new-document watchers (its own watch, and any an action that failed
        // left behind) are scoped to its user context, but the browser keeps them after the
        // context is deleted: removed here, off the next run's path.
        self.run_watch.lock().expect("run watch lock").clear();
        self.ahead.lock().expect("ahead lock").take();
        self.waited.lock().expect("waited lock").take();
        self.evidence.lock().expect("evidence lock").take();
        let leftover = std::mem::take(&mut *self.watchers.lock().expect("watchers lock"));
        if !leftover.is_empty() && control.watches_outlive_contexts() {
            let control = control.clone();
            tokio::spawn(async move {
                for script in leftover {
                    let _ = control.remove_watch(&script).await;
                }
            });
        }
        let channel = !self.channel_everywhere;
        self.spare = Some(tokio::spawn(async move {
            if let Some(old) = old
                && let Err(e) = control.delete_context(old).await
            {
                tracing::warn!(error = %e, "a run's user context was not deleted");
            }
            control.create_context(channel).await
        }));
        Ok(())
    }

    /// Sends this run's steps over the browser's DevTools socket (`on`, where the run has a
    /// tab there: a local browser spoken to over DevTools) or over WebDriver, until the tab
    /// is handed to the next run. Returns whether they go over DevTools.
    pub async fn steps_over_devtools(&mut self, on: bool) -> bool {
        self.direct = None;
        if !on {
            return false;
        }
        let (Some(control), Some(run)) = (&self.control, &self.run) else {
            return false;
        };
        let (page_load, script) = self.timeouts;
        self.direct = control.direct(run, script, page_load).await;
        self.direct.is_some()
    }

    /// From now until the tab is handed to the next run, the tab's requests to `trace`'s
    /// allowed origins carry its `traceparent` (under the step the run is in) and `tracestate`.
    /// Returns `false`, changing nothing, where the browser's DevTools server is out of reach
    /// (a remote WebDriver endpoint): see `intercept.rs` for why it goes around the driver.
    pub async fn trace_requests(&mut self, trace: RunTrace) -> Result<bool, StepError> {
        let Some(devtools) = self.devtools.clone() else {
            return Ok(false);
        };
        let target = match &self.run {
            Some(r) => r.context.clone(),
            // Without BiDi the classic window handle is the tab's DevTools target id too.
            None => self
                .client
                .window()
                .await
                .map_err(|e| wd_err("reading the session's window", e))?
                .into(),
        };
        self.interceptor = None;
        let failed = |e| StepError::error(format!("intercepting the tab's requests: {e}"));
        let shared = match (&self.control, &self.run) {
            (Some(control), Some(run)) => control
                .intercept(run, trace.clone(), self.clears)
                .await
                .map_err(failed)?,
            _ => None,
        };
        let interceptor = match shared {
            Some(i) => intercept::Interceptor::Control { _shared: i },
            None => intercept::start(&devtools, &target, trace)
                .await
                .map_err(failed)?,
        };
        self.interceptor = Some(interceptor);
        Ok(true)
    }

    /// Whether the run tab can be kept and cleared between runs (`isolation: clear`): the
    /// browser's DevTools server is within reach.
    pub fn can_clear(&self) -> bool {
        self.devtools.is_some()
    }

    /// For `isolation: clear`: the session's first tab serves every run of this browser.
    pub async fn adopt_tab_for_clearing(&mut self) -> Result<(), StepError> {
        self.adopt_first_tab().await?;
        // Without BiDi there is no run tab to keep (no liveness check, no page channel): such
        // a browser serves one run, as the fallback for `context` does.
        self.clears = self.run.is_some();
        Ok(())
    }

    /// Whether this browser can serve another run after this one (its context renewed or its
    /// tab cleared).
    pub fn renewable(&self) -> bool {
        self.clears || self.has_contexts()
    }

    /// Makes the browser ready for its next run, in whichever way it isolates runs.
    pub async fn renew(&mut self) -> Result<(), StepError> {
        self.renewed = None;
        if self.clears {
            self.clear_tab().await?;
        } else {
            self.next_context().await?;
        }
        self.renewed = Some(tokio::time::Instant::now());
        Ok(())
    }

    /// Whether this browser's renewal ended within `within` and its control socket is still open:
    /// the renewal's own last commands (switching to the run's tab, or clearing it through its
    /// DevTools socket) showed the browser and the run's tab answering a moment ago, so a lease
    /// made back to back needs no [`Browser::alive`] round trip of its own. That round trip
    /// would queue behind the teardown of the last run's context, which starts when the
    /// renewal ends (47-99 ms per lease measured for `align_category`, BENCHMARKS.md). What it
    /// gives up: a browser that dies within `within` of its renewal is not caught at the lease;
    /// its run ends in a probe error and the browser is replaced after it, as one dying mid-run is.
    pub fn just_renewed(&self, within: Duration) -> bool {
        self.renewed.is_some_and(|t| t.elapsed() <= within)
            && self.control.as_ref().is_none_or(|c| !c.is_closed())
    }

    /// Clears what the last run left (see `webdriver/clear.rs`): windows the pages opened are
    /// closed, the run tab is left on `about:blank`, cookies, cache, the storage of every
    /// origin the run's documents had, permissions and history are gone.
    async fn clear_tab(&mut self) -> Result<(), StepError> {
        self.interceptor = None;
        self.direct = None;
        let (Some(devtools), Some(run)) = (self.devtools.clone(), self.run.clone()) else {
            return Err(StepError::error("no run tab to clear"));
        };
        let tab = WindowHandle::try_from(run.context.clone())
            .map_err(|e| StepError::error(format!("the run tab's handle: {e}")))?;
        let windows = self
            .client
            .windows()
            .await
            .map_err(|e| wd_err("listing the session's windows", e))?;
        // Windows the pages opened go, and the storage of the origins they were on with them.
        let mut popup_origins = Vec::new();
        for w in windows.into_iter().filter(|w| *w != tab) {
            if self.client.switch_to_window(w).await.is_ok() {
                if let Ok(u) = self.client.current_url().await {
                    popup_origins.push(u.to_string());
                }
                let _ = self.client.close_window().await;
            }
        }
        // Always: it also leaves any frame the run had entered.
        self.client
            .switch_to_window(tab)
            .await
            .map_err(|e| wd_err("switching back to the run tab", e))?;
        self.run_watch.lock().expect("run watch lock").clear();
        self.ahead.lock().expect("ahead lock").take();
        self.waited.lock().expect("waited lock").take();
        self.evidence.lock().expect("evidence lock").take();
        let leftover: Vec<String> =
            std::mem::take(&mut *self.watchers.lock().expect("watchers lock"));
        if let Some(control) = &self.control {
            for script in leftover {
                control
                    .remove_watch(&script)
                    .await
                    .map_err(|e| bidi_err("removing a run's new-document watcher", e))?;
            }
        }
        let shared = match &self.control {
            Some(control) => control.clear_tab(&run, &popup_origins).await,
            None => None,
        };
        let cleared = match shared {
            Some(cleared) => cleared,
            None => clear::clear_tab(&devtools, &run.context, &popup_origins).await,
        };
        let origins =
            cleared.map_err(|e| StepError::error(format!("clearing the run tab: {e}")))?;
        tracing::debug!(origins = ?origins, "run tab cleared");
        self.starts.clear();
        self.forget_log().await;
        self.runs += 1;
        Ok(())
    }

    /// Whether the browser still answers: its control socket is open and the run's tab is
    /// there. One round trip; a crashed or hung browser fails it within `timeout`.
    pub async fn alive(&self, timeout: Duration) -> bool {
        let Some(control) = &self.control else {
            return true;
        };
        control.alive(self.run.as_ref(), timeout).await
    }

    /// Loads `url`. A document the server answered with a 5xx fails the step at once: the
    /// browser renders the error body like any page, and the next step would otherwise wait its
    /// whole timeout for an element that page never has, holding a browser session the other
    /// journeys and the retests are waiting for, exactly while the target is down.
    ///
    /// Returns the navigation's own timing, read in the page (the load's end, ms from the
    /// navigation's start, is the step's in-page latency when nothing else is awaited).
    pub async fn goto(
        &self,
        url: &str,
        timeout: Duration,
    ) -> Result<Option<crate::run::NavTiming>, StepError> {
        self.goto_then(url, timeout, None).await
    }

    /// [`Self::goto`], finding and arming `next`'s element ahead with the navigation's timing.
    pub async fn goto_then(
        &self,
        url: &str,
        timeout: Duration,
        next: Option<&Next>,
    ) -> Result<Option<crate::run::NavTiming>, StepError> {
        self.classic_goto(url, timeout).await?;
        self.navigation_of(url, next).await
    }

    async fn classic_goto(&self, url: &str, timeout: Duration) -> Result<(), StepError> {
        // fantoccini's `goto` first asks for the current URL to resolve a relative one against
        // it: a round trip per navigation that an absolute URL (every journey's) does not need.
        let loaded = match url::Url::parse(url) {
            Ok(u) => self
                .post("url", json!({ "url": u.as_str() }).to_string())
                .await
                .map(drop),
            Err(_) => self.client.goto(url).await,
        };
        loaded.map_err(|e| {
            if matches!(&e, CmdError::Standard(w) if w.error == ErrorStatus::Timeout) {
                StepError::fail(format!(
                    "page {url} did not load within {} ms",
                    timeout.as_millis()
                ))
            } else {
                wd_err(&format!("loading {url}"), e)
            }
        })
    }

    /// The navigation of the document now shown, failing the step on a 5xx.
    async fn navigation_of(
        &self,
        url: &str,
        next: Option<&Next>,
    ) -> Result<Option<crate::run::NavTiming>, StepError> {
        let ask = next.map(|n| self.ask_ahead(n));
        let (js, next_arg) = match &ask {
            Some(a) => (NAVIGATION_NEXT_JS, a.arg()),
            None => (NAVIGATION_JS, Value::Null),
        };
        // Navigation Timing of the document now shown (absent when the browser does not know
        // it: then the following steps judge the page).
        let mut v = match self.script(false, js, vec![next_arg]).await {
            // The element found ahead was replaced before it could go back as a reference.
            Err(e) if is_gone(&e) => self.script(false, NAVIGATION_JS, vec![Value::Null]).await,
            r => r,
        }
        .ok();
        if let (Some(a), Some(v)) = (ask, v.as_mut()) {
            self.keep_ahead(a, v["next"].take());
        }
        let nav = v.and_then(|v| nav_timing(&v).map(|n| (n, v["status"].as_u64())));
        match nav {
            Some((_, Some(s))) if s >= 500 => {
                Err(StepError::fail(format!("page {url} answered HTTP {s}")))
            }
            Some((n, _)) => Ok(Some(n)),
            None => Ok(None),
        }
    }

    /// Waits inside the page for `cond`, surviving navigations that replace the document.
    /// Returns how long it waited by the page's own clock, when one document saw the whole wait.
    pub async fn wait_for(&self, cond: &Cond, timeout: Duration) -> Result<Option<f64>, StepError> {
        // The last action's await found it holding as it ended (see [`After::Wait`]): it held
        // from this step's first moment.
        if self
            .waited
            .lock()
            .expect("waited lock")
            .take()
            .is_some_and(|c| c == *cond)
        {
            return Ok(Some(0.0));
        }
        let deadline = tokio::time::Instant::now() + timeout;
        let mut replaced = false;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let slice = left.min(SCRIPT_SLICE);
            let res = self
                .script(
                    true,
                    WAIT_JS,
                    vec![
                        json!(cond),
                        json!(crate::config::duration::millis_u64(slice)),
                    ],
                )
                .await;
            let more = deadline > tokio::time::Instant::now();
            match res {
                Ok(v) if v["ok"] == json!(true) => {
                    return Ok(if replaced { None } else { v["ms"].as_f64() });
                }
                Ok(_) if more => replaced = true,
                Ok(v) => return Err(StepError::fail(not_met(cond, timeout, &v))),
                // The document was replaced while waiting (the callback went with it): wait
                // again in the new one.
                Err(e) if (is_navigation_interruption(&e) || is_script_timeout(&e)) && more => {
                    replaced = true;
                }
                Err(e) if is_script_timeout(&e) => {
                    return Err(StepError::fail(format!(
                        "{}: not met after {} ms (the page stopped answering)",
                        cond.selector,
                        timeout.as_millis()
                    )));
                }
                Err(e) => return Err(wd_err(&format!("waiting for {}", cond.selector), e)),
            }
        }
    }

    /// POSTs `body` to the session's `path`: on the wire where there is one (a local
    /// chromedriver, see `wire.rs`), else through fantoccini's client. Returns the answer's
    /// `value`.
    async fn post(&self, path: &str, body: String) -> Result<Value, CmdError> {
        if let Some(d) = &self.direct {
            return d.post(path, &body).await;
        }
        match &self.wire {
            Some(w) => w.post(path, body).await,
            None => {
                self.client
                    .issue_cmd(SessionPost {
                        path: path.to_string(),
                        body,
                    })
                    .await
            }
        }
    }

    /// WebDriver's Execute Script (`asynchronous`: Execute Async Script) in the session's
    /// current browsing context.
    async fn script(
        &self,
        asynchronous: bool,
        script: &'static str,
        args: Vec<Value>,
    ) -> Result<Value, CmdError> {
        if let Some(d) = &self.direct {
            return d.script(asynchronous, script, &args).await;
        }
        let body = format!(
            "{{\"script\":{},\"args\":{}}}",
            escaped(script),
            serde_json::to_string(&args)?
        );
        self.execute(asynchronous, body).await
    }

    /// Execute Script (or Execute Async Script) with the request body `body`.
    async fn execute(&self, asynchronous: bool, body: String) -> Result<Value, CmdError> {
        let path = if asynchronous {
            "execute/async"
        } else {
            "execute/sync"
        };
        self.post(path, body).await
    }

    /// An element command (`click`: Element Click, scrolled into view, real pointer events;
    /// `value`: Element Send Keys; `clear`: Element Clear), whose answer is `null`.
    async fn on_element(
        &self,
        el: &fantoccini::elements::Element,
        command: &str,
        body: String,
    ) -> Result<(), CmdError> {
        match self
            .post(&format!("element/{}/{command}", el.element_id()), body)
            .await?
        {
            Value::Null => Ok(()),
            other => Err(CmdError::NotW3C(other)),
        }
    }

    /// Types `text` into `el` (focus, then key events).
    async fn type_into(
        &self,
        el: &fantoccini::elements::Element,
        text: &str,
    ) -> Result<(), CmdError> {
        self.on_element(el, "value", json!({ "text": text }).to_string())
            .await
    }

    fn token(&self) -> String {
        let n = self
            .tokens
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        format!("a{n}")
    }

    /// Arms in-page timing for the next user action, with no element to find first (the
    /// benchmark's entry point; journeys arm through the actions themselves). Returns whether
    /// the condition already held before the action.
    pub async fn arm(&self, cond: &Cond, mode: ArmMode) -> Result<bool, StepError> {
        let start = match mode {
            ArmMode::FirstInput => StartEvent::Click,
            ArmMode::LastInput => StartEvent::LastInput,
        };
        let token = self.token();
        let v = self
            .script(
                false,
                ARM_NOW_JS,
                vec![json!(cond), json!(start.js()), json!(token), json!(false)],
            )
            .await
            .map_err(|e| wd_err("arming in-page timing", e))?;
        Ok(v == json!(true))
    }

    /// Every cookie of the run's context (all sites), in WebDriver BiDi's shape
    /// (`storage.getCookies`): a login's session, to set in later runs' contexts
    /// ([`Self::set_cookies`]). `None` in a classic session.
    pub async fn cookies(&self) -> Result<Option<Vec<Value>>, StepError> {
        let (Some(control), Some(run)) = (self.control.as_ref(), self.run.as_ref()) else {
            return Ok(None);
        };
        control.cookies(run).await.map(Some)
    }

    /// Sets `cookies` (as [`Self::cookies`] read them) in the run's context, before its first
    /// page: the requests of the run then carry a login done by an earlier run. Errors in a
    /// classic session. The browser's own error message may quote a cookie, whose value is a
    /// secret: an error names the cookies by name only.
    pub async fn set_cookies(&self, cookies: &[Value]) -> Result<(), StepError> {
        let (Some(control), Some(run)) = (self.control.as_ref(), self.run.as_ref()) else {
            return Err(StepError::error("no context socket to set cookies through"));
        };
        control.set_cookies(run, cookies).await
    }

    /// Announces the conditions the run's actions that may navigate will await (a `goto`'s
    /// `until` too): one preload script watches every new document of the run's context for
    /// all of them, instead of one added before each such action and removed after it (two
    /// BiDi round trips per action, eight per `align_category` run). A condition not announced
    /// is still watched, by the action's own script. Without BiDi, nothing to do.
    pub async fn watch_documents(&self, conds: &[Cond]) {
        let mut keys = std::collections::HashMap::new();
        let mut watches = Vec::new();
        for c in conds {
            let Ok(k) = serde_json::to_string(c) else {
                continue;
            };
            if !keys.contains_key(&k) {
                let key = format!("w{}", keys.len());
                watches.push(json!({"key": key, "cond": c}));
                keys.insert(k, key);
            }
        }
        if watches.is_empty() {
            return;
        }
        if self.add_watch(&watches).await.is_some() {
            *self.run_watch.lock().expect("run watch lock") = keys;
        }
    }

    /// Adds a preload script watching the run's new documents for `watches` (`[{key, cond}]`);
    /// its id, kept until it is removed. `None` in a classic session, or where it failed.
    async fn add_watch(&self, watches: &[Value]) -> Option<String> {
        let (control, run) = (self.control.as_ref()?, self.run.as_ref()?);
        let f = format!(
            "() => {{ {}\nvar watches = {};\n{} }}",
            include_str!("js/cond.js"),
            Value::from(watches),
            include_str!("js/nav_watch.js")
        );
        match control.add_watch(run, &f).await {
            Ok(id) => {
                self.watchers
                    .lock()
                    .expect("watchers lock")
                    .push(id.clone());
                Some(id)
            }
            Err(e) => {
                tracing::debug!(error = %e, "new documents not watched: a navigation is timed from outside");
                None
            }
        }
    }

    /// How new documents are watched for `cond`, the condition of the action armed as `token`:
    /// by the run's own watch where it covers `cond`, else by a preload script for this action.
    /// `None` where the session cannot watch new documents (a classic session).
    async fn watch_for(&self, cond: &Cond, token: &str) -> Option<Watch> {
        if let Ok(k) = serde_json::to_string(cond)
            && let Some(key) = self.run_watch.lock().expect("run watch lock").get(&k)
        {
            return Some(Watch {
                key: key.clone(),
                script: None,
            });
        }
        let script = self
            .add_watch(&[json!({"key": token, "cond": cond})])
            .await?;
        Some(Watch {
            key: token.to_string(),
            script: Some(script),
        })
    }

    /// Removes an action's own preload script without waiting for the answer: it only costs the
    /// next documents a check that finds nothing to do. The run's watch stays for the run.
    fn unwatch(&self, watch: Option<Watch>) {
        let Some(script) = watch.and_then(|w| w.script) else {
            return;
        };
        self.watchers
            .lock()
            .expect("watchers lock")
            .retain(|w| *w != script);
        if let Some(control) = self.control.clone() {
            tokio::spawn(async move {
                let _ = control.remove_watch(&script).await;
            });
        }
    }

    /// Waits inside the page until the element `selector` is there and visible, arming `arm`
    /// in the same script, and returns the element: one command where there were three.
    async fn ready(
        &self,
        selector: &str,
        arm: Option<&Arm<'_>>,
        timeout: Duration,
    ) -> Result<Found, StepError> {
        let spec = arm.map(Self::arm_spec);
        // Found (and armed) already by the last action's await, when it asked for this.
        let ahead = self
            .ahead
            .lock()
            .expect("ahead lock")
            .take()
            .filter(|a| a.selector == selector && a.arm == spec);
        let (token, mut found_ahead) = match ahead {
            Some(a) => (a.token, Some(a.found)),
            None => (self.token(), None),
        };
        let was_ahead = found_ahead.is_some();
        let watch = async {
            match arm {
                Some(Arm {
                    until: Some(c),
                    follow_navigation: true,
                    ..
                }) => self.watch_for(c, &token).await,
                _ => None,
            }
        };
        let arm_js = Self::with_token(spec, &token);
        let find = async {
            if let Some(v) = found_ahead.take() {
                return Ok(v);
            }
            let deadline = tokio::time::Instant::now() + timeout;
            loop {
                let left = deadline.saturating_duration_since(tokio::time::Instant::now());
                let slice = left.min(SCRIPT_SLICE);
                let res = self
                    .script(
                        true,
                        READY_JS,
                        vec![
                            json!(selector),
                            arm_js.clone().unwrap_or(Value::Null),
                            json!(crate::config::duration::millis_u64(slice)),
                        ],
                    )
                    .await;
                let more = deadline > tokio::time::Instant::now();
                match res {
                    Ok(v) if v["ok"] == json!(true) => return Ok(v),
                    Ok(_) if more => continue,
                    Ok(v) => {
                        let what = if v["count"].as_u64().unwrap_or(0) == 0 {
                            "no element"
                        } else {
                            "no visible element"
                        };
                        return Err(StepError::fail(format!(
                            "{selector}: {what} after {} ms",
                            timeout.as_millis()
                        )));
                    }
                    // A navigation, a busy page, or the element found replaced before it could
                    // go back as a reference (a re-render): look again.
                    Err(e)
                        if (is_navigation_interruption(&e)
                            || is_script_timeout(&e)
                            || is_gone(&e))
                            && more =>
                    {
                        continue;
                    }
                    Err(e) => return Err(wd_err(selector, e)),
                }
            }
        };
        let (found, watch) = tokio::join!(find, watch);
        let v = match found {
            Ok(v) => v,
            Err(e) => {
                self.unwatch(watch);
                return Err(e);
            }
        };
        let Some(id) = v["el"][ELEMENT_KEY].as_str() else {
            self.unwatch(watch);
            return Err(StepError::error(format!(
                "{selector}: the page returned no element reference"
            )));
        };
        let el = fantoccini::elements::Element::from_element_id(
            self.client.clone(),
            fantoccini::elements::ElementRef::from(id.to_string()),
        );
        let handle = arm.map(|a| ArmHandle {
            token: token.clone(),
            watch,
            until: a.until.is_some(),
            pre: v["pre"] == json!(true),
        });
        Ok(Found {
            el,
            handle,
            blank: v["blank"] == json!(true),
            ahead: was_ahead,
        })
    }

    /// Finds `selector`'s element (arming `arm`) and runs `act` on it (`act` gets the element
    /// and whether it is a blank field). An element found ahead by the last step's script (see
    /// [`Next`]) may have been replaced or hidden by the page since (a re-render): the action
    /// then looks for it again, once, and waits for it as it would have without the lookahead.
    async fn act_on<F, Fut>(
        &self,
        selector: &str,
        arm: Option<&Arm<'_>>,
        timeout: Duration,
        act: F,
    ) -> Result<Option<ArmHandle>, StepError>
    where
        F: Fn(fantoccini::elements::Element, bool) -> Fut,
        Fut: std::future::Future<Output = Result<(), CmdError>>,
    {
        let found = self.ready(selector, arm, timeout).await?;
        match act(found.el.clone(), found.blank).await {
            Ok(()) => Ok(found.handle),
            Err(e) if found.ahead && is_gone(&e) => {
                tracing::debug!(selector, error = %describe(&e), "the element found ahead went: looked for again");
                if let Some(h) = found.handle {
                    self.unwatch(h.watch);
                }
                let again = self.ready(selector, arm, timeout).await?;
                act(again.el.clone(), again.blank)
                    .await
                    .map_err(|e| wd_err(selector, e))?;
                Ok(again.handle)
            }
            Err(e) => Err(wd_err(selector, e)),
        }
    }

    /// What an action arms, as the page scripts take it (its token added by [`Self::with_token`]).
    fn arm_spec(a: &Arm<'_>) -> Value {
        json!({"cond": a.until, "start": a.start.js(), "follow": a.follow_navigation})
    }

    fn with_token(spec: Option<Value>, token: &str) -> Option<Value> {
        spec.map(|mut s| {
            s["token"] = json!(token);
            s
        })
    }

    /// Asks a page script to find `next`'s element ahead (see [`Next`]).
    fn ask_ahead<'a>(&self, next: &'a Next) -> AheadAsk<'a> {
        AheadAsk {
            next,
            spec: Self::arm_spec(&next.arm()),
            token: self.token(),
        }
    }

    /// Keeps what a page script found ahead (`{ok, el, pre, blank}`, or null when the element
    /// was not there yet) for the next action's [`Self::ready`].
    fn keep_ahead(&self, ask: AheadAsk<'_>, found: Value) {
        if found["ok"] != json!(true) {
            return;
        }
        *self.ahead.lock().expect("ahead lock") = Some(Ahead {
            selector: ask.next.selector.clone(),
            arm: Some(ask.spec),
            token: ask.token,
            found,
        });
    }

    pub async fn click(&self, selector: &str, timeout: Duration) -> Result<(), StepError> {
        self.click_armed(selector, timeout, None).await.map(drop)
    }

    pub async fn fill(
        &self,
        selector: &str,
        value: &str,
        submit: bool,
        timeout: Duration,
    ) -> Result<(), StepError> {
        self.fill_armed(selector, value, submit, timeout, None)
            .await
            .map(drop)
    }

    pub async fn click_armed(
        &self,
        selector: &str,
        timeout: Duration,
        arm: Option<&Arm<'_>>,
    ) -> Result<Option<ArmHandle>, StepError> {
        self.act_on(selector, arm, timeout, |el, _| async move {
            self.on_element(&el, "click", "{}".into()).await
        })
        .await
    }

    pub async fn fill_armed(
        &self,
        selector: &str,
        value: &str,
        submit: bool,
        timeout: Duration,
        arm: Option<&Arm<'_>>,
    ) -> Result<Option<ArmHandle>, StepError> {
        let mut text = value.to_string();
        if submit {
            text.push('\u{e007}');
        }
        let text = &text;
        self.act_on(selector, arm, timeout, |el, blank| async move {
            // An empty field is typed into at once: chromedriver's clear of an empty field
            // fires no event, so it would only cost a round trip (one per `fill`, most of them).
            if !blank {
                self.on_element(&el, "clear", "{}".into()).await?;
            }
            self.type_into(&el, text).await
        })
        .await
    }

    pub async fn select_armed(
        &self,
        selector: &str,
        value: Option<&str>,
        label: Option<&str>,
        timeout: Duration,
        arm: Option<&Arm<'_>>,
    ) -> Result<Option<ArmHandle>, StepError> {
        if value.is_none() && label.is_none() {
            return Err(StepError::error("select needs a value or a label"));
        }
        self.act_on(selector, arm, timeout, |el, _| async move {
            match (value, label) {
                (Some(v), _) => el.select_by_value(v).await,
                (None, Some(l)) => el.select_by_label(l).await,
                (None, None) => unreachable!("checked above"),
            }
        })
        .await
    }

    pub async fn press_armed(
        &self,
        key: &str,
        selector: Option<&str>,
        timeout: Duration,
        arm: Option<&Arm<'_>>,
    ) -> Result<Option<ArmHandle>, StepError> {
        match selector {
            Some(s) => {
                self.act_on(s, arm, timeout, |el, _| async move {
                    self.type_into(&el, key).await
                })
                .await
            }
            None => {
                let h = match arm {
                    Some(a) => {
                        let token = self.token();
                        let watch = async {
                            match a.until {
                                Some(c) if a.follow_navigation => self.watch_for(c, &token).await,
                                _ => None,
                            }
                        };
                        let armed = self.script(
                            false,
                            ARM_NOW_JS,
                            vec![
                                json!(a.until),
                                json!(a.start.js()),
                                json!(token),
                                json!(a.follow_navigation),
                            ],
                        );
                        let (armed, watch) = tokio::join!(armed, watch);
                        let pre = armed.map_err(|e| wd_err("arming in-page timing", e))?;
                        Some(ArmHandle {
                            token,
                            watch,
                            until: a.until.is_some(),
                            pre: pre == json!(true),
                        })
                    }
                    None => None,
                };
                let el = self
                    .client
                    .active_element()
                    .await
                    .map_err(|e| wd_err("active element", e))?;
                self.type_into(&el, key)
                    .await
                    .map_err(|e| wd_err("press", e))?;
                Ok(h)
            }
        }
    }

    /// Loads `url` and times it to `until` on the new document, by the page's clock: from the
    /// navigation's start (`performance.timeOrigin`) to the instant `until` first held. `None`
    /// where the session cannot watch new documents (no BiDi): the caller waits from outside.
    pub async fn goto_until(
        &self,
        url: &str,
        until: &Cond,
        timeout: Duration,
    ) -> Result<Option<Finished>, StepError> {
        let token = self.token();
        let Some(watch) = self.watch_for(until, &token).await else {
            self.goto(url, timeout).await?;
            return Ok(None);
        };
        let started = tokio::time::Instant::now();
        let loaded = self.goto(url, timeout).await;
        let r = match loaded {
            Ok(_) => {
                self.await_next_document(
                    Some(&watch.key),
                    None,
                    timeout.saturating_sub(started.elapsed()),
                )
                .await
            }
            Err(e) => Err(e),
        };
        self.unwatch(Some(watch));
        r.map(Some)
    }

    /// Waits for the armed condition and returns how it ended.
    pub async fn await_armed(&self, timeout: Duration) -> Result<Armed, StepError> {
        match self.await_then(timeout, After::Nothing, None).await? {
            Awaited::Armed(a) => Ok(a),
            Awaited::NewDocument(_) => unreachable!("an await that follows nothing stays"),
        }
    }

    /// [`Self::await_armed`], doing what `after` asks in the same script when the condition
    /// held (an element found ahead is kept for that action's [`Self::ready`]). `follow`:
    /// what the action's new document is awaited by (`nav_await.js`'s token, or null for its
    /// load), when the action may navigate and its new document is watched: a script that
    /// finds itself on that document already awaits it there ([`Awaited::NewDocument`]).
    async fn await_then(
        &self,
        timeout: Duration,
        after: After<'_>,
        follow: Option<Option<&str>>,
    ) -> Result<Awaited, StepError> {
        let ask = match after {
            After::Action(n) => Some(self.ask_ahead(n)),
            _ => None,
        };
        let slow = match after {
            After::End { slow_ms } => json!(slow_ms),
            _ => Value::Null,
        };
        let wait = match after {
            After::Wait(c) => Some(c),
            _ => None,
        };
        let follow = follow.map(|key| json!({ "key": key }));
        let next_arg = ask.as_ref().map_or(Value::Null, AheadAsk::arg);
        let js = if ask.is_none() && slow.is_null() && wait.is_none() && follow.is_none() {
            AWAIT_JS
        } else {
            AWAIT_NEXT_JS
        };
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let slice = left.min(SCRIPT_SLICE);
            let last = slice >= left;
            let res = self
                .script(
                    true,
                    js,
                    vec![
                        json!(crate::config::duration::millis_u64(slice)),
                        json!(last),
                        next_arg.clone(),
                        slow.clone(),
                        follow.clone().unwrap_or(Value::Null),
                        json!(wait),
                    ],
                )
                .await;
            return match res {
                Ok(mut v) if v["navigated"] == json!(true) => {
                    self.keep_done_ahead(wait, &mut v);
                    Ok(Awaited::NewDocument(v))
                }
                Ok(v) if v["pending"] == json!(true) => continue,
                Ok(v) if v["lost"] == json!(true) => Ok(Awaited::Armed(Armed::Lost)),
                Ok(v) if v["timeout"] == json!(true) => Ok(Awaited::Armed(Armed::TimedOut)),
                Ok(mut v) => match (v["start"].as_f64(), v["end"].as_f64()) {
                    (Some(s), Some(e)) => {
                        if let Some(a) = ask {
                            self.keep_ahead(a, v["next"].take());
                        }
                        self.keep_done_ahead(wait, &mut v);
                        Ok(Awaited::Armed(Armed::InPage((e - s).max(0.0))))
                    }
                    _ => Err(StepError::error(format!("in-page timing returned {v}"))),
                },
                // The element found ahead was replaced before it could go back as a reference:
                // the answer is asked again without it (the next action looks for its own).
                Err(e) if after.finds_element() && is_gone(&e) => {
                    match self
                        .script(false, "return window.__synmonEnded || null;", vec![])
                        .await
                    {
                        Ok(v) => match (v["start"].as_f64(), v["end"].as_f64()) {
                            (Some(s), Some(e)) => {
                                Ok(Awaited::Armed(Armed::InPage((e - s).max(0.0))))
                            }
                            _ => Err(StepError::error(format!("in-page timing returned {v}"))),
                        },
                        Err(e) => Err(wd_err("awaiting the page", e)),
                    }
                }
                // A navigation took the page (and the script's callback) away.
                Err(e) if is_navigation_interruption(&e) => Ok(Awaited::Armed(Armed::Lost)),
                // The page did not answer in time (busy, or a navigation swallowed the
                // callback unreported): ask again while time is left; the next answer says
                // which (a new document has no armed state: `lost`).
                Err(e) if is_script_timeout(&e) && !last => continue,
                Err(e) if is_script_timeout(&e) => Ok(Awaited::Armed(Armed::TimedOut)),
                Err(e) => Err(wd_err("awaiting the page", e)),
            };
        }
    }

    /// Keeps what an await did ahead besides the next element: the next `wait_for`'s condition
    /// when it found it holding (see [`After::Wait`]), the run's evidence when it collected it.
    fn keep_done_ahead(&self, wait: Option<&Cond>, answer: &mut Value) {
        if let Some(c) = wait.filter(|_| answer["waited"] == json!(true)) {
            *self.waited.lock().expect("waited lock") = Some(c.clone());
        }
        if answer["evidence"].is_object() {
            *self.evidence.lock().expect("evidence lock") = Some(answer["evidence"].take());
        }
    }

    /// Waits for an armed action: its condition on the same document, or, when the action
    /// navigated, on the new one (see [`Finished`]).
    /// `after`: what follows this action in the journey, for the script that awaits it to do
    /// ahead (see [`After`]).
    pub async fn finish(
        &self,
        h: ArmHandle,
        timeout: Duration,
        after: After<'_>,
    ) -> Result<Finished, StepError> {
        let started = tokio::time::Instant::now();
        // How the new document is awaited if the action navigated: the watcher's mark of its
        // condition, or (no condition) the load's end; a condition nothing watches is awaited
        // from outside.
        let follow = match (&h.watch, h.until) {
            (Some(w), _) => Some(Some(w.key.as_str())),
            (None, false) => Some(None),
            (None, true) => None,
        };
        let r = match self.await_then(timeout, after, follow).await {
            Ok(Awaited::Armed(Armed::InPage(ms))) => Ok(Finished::InPage(ms)),
            Ok(Awaited::Armed(Armed::TimedOut)) => Ok(Finished::TimedOut),
            Ok(Awaited::NewDocument(v)) if v["timeout"] == json!(true) => Ok(Finished::TimedOut),
            Ok(Awaited::NewDocument(v)) if v["pending"] != json!(true) => {
                self.navigated(&v, Some(&h.token)).await
            }
            Ok(Awaited::Armed(Armed::Lost) | Awaited::NewDocument(_)) => {
                let left = timeout.saturating_sub(started.elapsed());
                match (&h.watch, h.until) {
                    (Some(w), _) => {
                        self.await_next_document(Some(&w.key), Some(&h.token), left)
                            .await
                    }
                    // No condition: the action ends when the new document has loaded.
                    (None, false) => self.await_next_document(None, Some(&h.token), left).await,
                    (None, true) => Ok(Finished::Unfollowed),
                }
            }
            Err(e) => Err(e),
        };
        self.unwatch(h.watch);
        r
    }

    /// Follows an action into the document it loaded. `watched`: the token whose condition
    /// the preload watcher marks (else the load's end is awaited); `start`: the token whose
    /// input event started the action (else the navigation's own start is the start).
    async fn await_next_document(
        &self,
        watched: Option<&str>,
        start: Option<&str>,
        timeout: Duration,
    ) -> Result<Finished, StepError> {
        let deadline = tokio::time::Instant::now() + timeout;
        let v = loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let slice = left.min(SCRIPT_SLICE);
            let last = slice >= left;
            let res = self
                .script(
                    true,
                    NAV_AWAIT_JS,
                    vec![
                        json!(watched),
                        json!(crate::config::duration::millis_u64(slice)),
                        json!(last),
                    ],
                )
                .await;
            match res {
                Ok(v) if v["pending"] == json!(true) => continue,
                Ok(v) if v["timeout"] == json!(true) => return Ok(Finished::TimedOut),
                Ok(v) => break v,
                Err(e)
                    if (is_navigation_interruption(&e) || is_script_timeout(&e))
                        && deadline > tokio::time::Instant::now() =>
                {
                    continue;
                }
                Err(e) if is_script_timeout(&e) => return Ok(Finished::TimedOut),
                Err(e) => return Err(wd_err("following the navigation", e)),
            }
        };
        self.navigated(&v, start).await
    }

    /// The navigation's measurement from `nav_await.js`'s answer `v` (`{end, origin, nav}`):
    /// from the input event of the action `start` names (sent by the old document as it went),
    /// else from the navigation's own start.
    async fn navigated(&self, v: &Value, start: Option<&str>) -> Result<Finished, StepError> {
        let (Some(end), Some(origin)) = (v["end"].as_f64(), v["origin"].as_f64()) else {
            return Err(StepError::error(format!("navigation timing returned {v}")));
        };
        let t0 = match start {
            Some(t) => self.starts.take(t, START_GRACE).await,
            None => None,
        };
        if start.is_some() && t0.is_none() {
            tracing::debug!(
                "the action's start did not come through: timed from the navigation's start"
            );
        }
        let from = t0.unwrap_or(origin);
        Ok(Finished::Navigation(
            (end - from).max(0.0),
            nav_timing(&v["nav"]),
        ))
    }

    pub async fn text_of(
        &self,
        selector: &str,
        timeout: Duration,
    ) -> Result<(String, Option<f64>), StepError> {
        let cond = Cond {
            visible: false,
            ..Cond::present(selector)
        };
        let waited = self
            .wait_for(&cond, timeout)
            .await
            .map_err(|e| match e.outcome {
                Outcome::Fail => StepError::fail(format!(
                    "{selector}: not found after {} ms",
                    timeout.as_millis()
                )),
                _ => e,
            })?;
        let v = self
            .script(false,
                "var e = document.querySelector(arguments[0]); return e ? (('value' in e && e.tagName !== 'LI' && e.tagName !== 'BUTTON') ? e.value : e.textContent) : null;",
                vec![json!(selector)],
            )
            .await
            .map_err(|e| wd_err(selector, e))?;
        Ok((v.as_str().unwrap_or_default().trim().to_string(), waited))
    }

    pub async fn attr_of(
        &self,
        selector: &str,
        attr: &str,
        timeout: Duration,
    ) -> Result<(Option<String>, Option<f64>), StepError> {
        let cond = Cond {
            visible: false,
            ..Cond::present(selector)
        };
        let waited = self.wait_for(&cond, timeout).await?;
        let v = self
            .script(false,
                "var e = document.querySelector(arguments[0]); return e ? e.getAttribute(arguments[1]) : null;",
                vec![json!(selector), json!(attr)],
            )
            .await
            .map_err(|e| wd_err(selector, e))?;
        Ok((v.as_str().map(str::to_string), waited))
    }

    pub async fn current_url(&self) -> Result<String, StepError> {
        if let Some(d) = &self.direct {
            return d
                .current_url()
                .await
                .map_err(|e| wd_err("reading the URL", e));
        }
        self.client
            .current_url()
            .await
            .map(|u| u.to_string())
            .map_err(|e| wd_err("reading the URL", e))
    }

    pub async fn screenshot(&self) -> Result<Vec<u8>, StepError> {
        if let Some(d) = &self.direct {
            return d.screenshot().await.map_err(|e| wd_err("screenshot", e));
        }
        self.client
            .screenshot()
            .await
            .map_err(|e| wd_err("screenshot", e))
    }

    /// The page's HTML with every password field's value removed.
    pub async fn html_masked(&self) -> Result<String, StepError> {
        let v = self
            .script(false,
                "document.querySelectorAll('input[type=password]').forEach(function (e) { e.setAttribute('value', '***'); }); return document.documentElement.outerHTML;",
                vec![],
            )
            .await
            .map_err(|e| wd_err("reading the page HTML", e))?;
        Ok(format!(
            "<!DOCTYPE html>\n{}",
            v.as_str().unwrap_or_default()
        ))
    }

    /// Leaves what earlier runs wrote to the session's browser log out of the next run's.
    ///
    /// The log is the session's, and reading it empties it: that read was a command before
    /// every run. A local browser shares synmon's clock, so the entries are told apart by
    /// their timestamps instead, and the log is emptied only every [`LOG_DRAIN_RUNS`] runs
    /// (chromedriver keeps what is not read: this bounds it). A remote browser's clock may
    /// differ from synmon's: its log is emptied before every run.
    async fn forget_log(&mut self) {
        if self.wire.is_some() {
            // Whole milliseconds, as the entries are stamped: a line of this run's is never
            // older than where its part begins.
            self.log_since = Some(epoch_ms().floor());
            if !self.runs.is_multiple_of(LOG_DRAIN_RUNS) {
                return;
            }
        }
        let _ = self.read_log().await;
    }

    /// The browser console of this run (chromedriver's log endpoint; empty where a remote does
    /// not have it): the entries logged since [`Browser::forget_log`].
    pub async fn console_log(&self) -> Vec<String> {
        let since = self.log_since.unwrap_or(f64::MIN);
        self.read_log()
            .await
            .iter()
            .filter(|e| e["timestamp"].as_f64().is_none_or(|t| t >= since))
            .map(|e| {
                format!(
                    "{} {}",
                    e["level"].as_str().unwrap_or("?"),
                    e["message"].as_str().unwrap_or("")
                )
            })
            .collect()
    }

    /// Reads (and so empties) the session's browser log.
    async fn read_log(&self) -> Vec<Value> {
        match self
            .post("se/log", r#"{"type":"browser"}"#.to_string())
            .await
        {
            Ok(Value::Array(entries)) => entries,
            _ => Vec::new(),
        }
    }

    /// Navigation timing, Web Vitals and failed/slow requests of the current page: as the await
    /// of the run's last action collected them when it asked (see [`After::End`]), else read now.
    pub async fn evidence(&self, slow_ms: u64) -> Option<Value> {
        if let Some(v) = self.evidence.lock().expect("evidence lock").take() {
            return Some(v);
        }
        self.script(true, EVIDENCE_JS, vec![json!(slow_ms)])
            .await
            .ok()
    }

    /// Runs `script` (a function body; `return` gives the result) in the page and returns its
    /// JSON result. For benchmarks and diagnostics that read what the page itself recorded.
    pub async fn eval(&self, script: &str) -> Result<Value, StepError> {
        let body = json!({"script": script, "args": []}).to_string();
        self.execute(false, body)
            .await
            .map_err(|e| wd_err("running a page script", e))
    }

    /// The session's cookies as `name=value` pairs, for HTTP steps that act as the same user.
    pub async fn cookie_header(&self) -> Result<String, StepError> {
        if let Some(d) = &self.direct {
            let cookies = d
                .cookies()
                .await
                .map_err(|e| wd_err("reading cookies", e))?;
            return Ok(cookies
                .iter()
                .map(|(n, v)| format!("{n}={v}"))
                .collect::<Vec<_>>()
                .join("; "));
        }
        let cookies = self
            .client
            .get_all_cookies()
            .await
            .map_err(|e| wd_err("reading cookies", e))?;
        Ok(cookies
            .iter()
            .map(|c| format!("{}={}", c.name(), c.value()))
            .collect::<Vec<_>>()
            .join("; "))
    }

    pub async fn close(self) {
        let _ = self.client.close().await;
    }
}

/// The current document's navigation: its HTTP status and its own timing (ms from its start).
const NAVIGATION_JS: &str = include_str!("js/navigation.js");
/// `navigation.js` that also finds and arms the next action's element (its `next` argument).
const NAVIGATION_NEXT_JS: &str = concat!(
    include_str!("js/cond.js"),
    include_str!("js/arm.js"),
    include_str!("js/find.js"),
    include_str!("js/navigation.js")
);

/// `script` as a JSON string, escaped once per process: the page scripts are several KiB each
/// and one goes with almost every command (escaping them was 5 % of a browser run's own CPU).
/// Keyed by where the text lies: a `'static` text is never freed, so its address and length
/// name it.
fn escaped(script: &'static str) -> std::sync::Arc<str> {
    type Cache = std::sync::Mutex<std::collections::HashMap<(usize, usize), std::sync::Arc<str>>>;
    static CACHE: std::sync::LazyLock<Cache> = std::sync::LazyLock::new(Default::default);
    let key = (script.as_ptr() as usize, script.len());
    let mut cache = CACHE.lock().expect("escaped scripts lock");
    cache
        .entry(key)
        .or_insert_with(|| Value::from(script).to_string().into())
        .clone()
}

/// A navigation's own timing as the page scripts return it.
fn nav_timing(v: &Value) -> Option<crate::run::NavTiming> {
    Some(crate::run::NavTiming {
        redirect_ms: v["redirect_ms"].as_f64()?,
        ttfb_ms: v["ttfb_ms"].as_f64()?,
        dom_content_loaded_ms: v["dom_content_loaded_ms"].as_f64()?,
        load_ms: v["load_ms"].as_f64()?,
    })
}

fn not_met(cond: &Cond, timeout: Duration, v: &Value) -> String {
    let ms = timeout.as_millis();
    let count = v["count"].as_u64().unwrap_or(0);
    let shown = v["shown"].as_u64().unwrap_or(0);
    let what = if cond.gone {
        format!("still present after {ms} ms")
    } else if count == 0 {
        format!("not present after {ms} ms")
    } else if cond.visible && shown == 0 {
        format!("not visible after {ms} ms")
    } else if let Some(t) = &cond.text {
        let texts: Vec<String> = v["texts"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|t| t.as_str().map(|s| format!("{s:?}")))
                    .collect()
            })
            .unwrap_or_default();
        format!(
            "text {t:?} not seen after {ms} ms (found: {})",
            texts.join(", ")
        )
    } else {
        format!("not met after {ms} ms")
    };
    format!("{}: {what}", cond.selector)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::journey::program::Program;

    /// A local headless config with the defaults and `capabilities`.
    pub(crate) fn config(capabilities: serde_json::Map<String, Value>) -> WebDriverConfig {
        WebDriverConfig {
            remote_url: None,
            chromedriver: "chromedriver".into(),
            browser_binary: None,
            headless: true,
            headless_shell: true,
            window: (1280, 800),
            extra_args: Vec::new(),
            sessions: 1,
            startup_timeout: Duration::from_secs(20),
            isolation: Isolation::Context,
            recycle_after: 100,
            trace_requests: true,
            capabilities,
            local_protocol: LocalProtocol::Devtools,
            local_steps: LocalSteps::Devtools,
        }
    }

    #[test]
    fn configured_capabilities_join_synmons_own() {
        let mut more = serde_json::Map::new();
        more.insert("se:name".into(), json!("synmon-eu1"));
        more.insert("platformName".into(), json!("linux"));
        let chromium = Program {
            binary: None,
            headless_shell: false,
        };
        let caps = capabilities(&config(more), &chromium, None);
        assert_eq!(caps["se:name"], json!("synmon-eu1"));
        assert_eq!(caps["platformName"], json!("linux"));
        assert_eq!(caps["browserName"], json!("chrome"));
        assert_eq!(caps["webSocketUrl"], json!(true));
        assert_eq!(
            caps["goog:chromeOptions"]["args"][0],
            json!("--headless=new")
        );
    }

    #[test]
    fn a_local_browser_asks_for_bidi_only_when_its_contexts_go_through_bidi() {
        let program = Program {
            binary: None,
            headless_shell: false,
        };
        let profile = std::path::Path::new("/tmp/profile");
        let devtools = capabilities(&config(Default::default()), &program, Some(profile));
        assert!(!devtools.contains_key("webSocketUrl"), "{devtools:?}");
        let mut cfg = config(Default::default());
        cfg.local_protocol = LocalProtocol::Bidi;
        let bidi = capabilities(&cfg, &program, Some(profile));
        assert_eq!(bidi["webSocketUrl"], json!(true));
    }

    #[test]
    fn a_headless_shell_is_asked_for_by_its_own_browser_name_without_the_headless_switch() {
        let shell = Program {
            binary: Some("/usr/lib/chromium/chromium-headless-shell".into()),
            headless_shell: true,
        };
        let caps = capabilities(&config(Default::default()), &shell, None);
        assert_eq!(caps["browserName"], json!("chrome-headless-shell"));
        let chrome = &caps["goog:chromeOptions"];
        assert_eq!(
            chrome["binary"],
            json!("/usr/lib/chromium/chromium-headless-shell")
        );
        let args = chrome["args"].as_array().unwrap();
        assert!(
            !args
                .iter()
                .any(|a| a.as_str().unwrap().starts_with("--headless")),
            "{args:?}"
        );
    }

    #[test]
    fn a_config_may_add_extension_and_some_standard_capabilities_only() {
        for ok in [
            "se:name",
            "se:recordVideo",
            "sauce:options",
            "platformName",
            "browserVersion",
        ] {
            assert_eq!(check_capability(ok), None, "{ok}");
        }
        for own in OWN_CAPABILITIES {
            assert!(
                check_capability(own).unwrap().contains("set by synmon"),
                "{own}"
            );
        }
        for bad in ["colour", ":name", "se:", "se:a:b", "s e:name"] {
            assert!(check_capability(bad).is_some(), "{bad}");
        }
    }

    #[test]
    fn a_page_script_is_escaped_once_and_kept_as_its_json_string() {
        const A: &str = "var s = \"x\";\n// a \\ b\treturn s;";
        const B: &str = "return 1;";
        let a = escaped(A);
        assert_eq!(serde_json::from_str::<String>(&a).unwrap(), A);
        assert_eq!(*a, *Value::from(A).to_string());
        assert!(std::sync::Arc::ptr_eq(&a, &escaped(A)), "escaped once");
        assert_eq!(serde_json::from_str::<String>(&escaped(B)).unwrap(), B);
        // A script that begins another (same address, shorter) is its own entry.
        let prefix: &'static str = &AWAIT_NEXT_JS[..10];
        assert_eq!(
            serde_json::from_str::<String>(&escaped(prefix)).unwrap(),
            prefix
        );
        assert_eq!(
            serde_json::from_str::<String>(&escaped(AWAIT_NEXT_JS)).unwrap(),
            AWAIT_NEXT_JS
        );
    }

    #[test]
    fn a_session_error_never_shows_the_endpoints_credentials() {
        let u = url::Url::parse("https://user:access-key@grid.example:4444/wd/hub").unwrap();
        assert_eq!(
            without_credentials(&u).as_str(),
            "https://grid.example:4444/wd/hub"
        );
    }
}
