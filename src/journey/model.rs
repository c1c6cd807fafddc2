//! A validated journey: what the runner executes. Built only by `journey::load`.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::template::Template;

#[derive(Debug, Clone)]
pub struct Journey {
    pub name: String,
    /// The file it was loaded from, as shown to users.
    pub file: String,
    pub description: Option<String>,
    /// `viewport`, `device`, `network`: applied to the run's own tab, undone when it ends.
    pub emulation: Option<crate::run::Emulation>,
    pub steps: Vec<Step>,
    /// Its first steps log in, and a run may skip them with a captured session.
    pub reuse_session: Option<SessionReuse>,
}

/// A journey whose first step is `use: <login> + reuse_session: <age>`: the steps that file
/// brings log in. A run that does them all leaves the cookies of its context as the login's
/// session; a later run of any journey with the same login (same file, target and user) may
/// set those cookies in its fresh context and skip the steps, while the session is younger
/// than `max_age`, none of its cookies has expired and no run that reused it has failed.
/// Logging in is what most browser journeys spend most of their commands, requests and page
/// loads on, and what few of them measure; the login is still done (and so monitored) at least
/// once every `max_age`.
#[derive(Debug, Clone)]
pub struct SessionReuse {
    /// How many of the journey's first steps log in.
    pub steps: usize,
    pub max_age: Duration,
    /// The login's file (canonical path): journeys that include the same one share its session.
    pub login: String,
}

impl Journey {
    /// Whether any step needs a browser (pure API/SQL journeys run without one).
    pub fn needs_browser(&self) -> bool {
        self.steps.iter().any(|s| s.action.needs_browser())
    }
}

#[derive(Debug, Clone)]
pub struct Step {
    pub name: String,
    pub action: Action,
    /// Counted in the journey's SLO latency (the sum of its timed steps).
    pub timed: bool,
    pub timeout: Duration,
    /// For a user action: the state whose arrival ends the interaction, timed inside the page.
    pub until: Option<WaitCond>,
    /// `file:line` of the step, for messages.
    pub origin: String,
}

#[derive(Debug, Clone)]
pub enum Action {
    Goto {
        url: Template,
    },
    Click {
        selector: Template,
    },
    Fill {
        selector: Template,
        value: Template,
        submit: bool,
    },
    Select {
        selector: Template,
        by: SelectBy,
    },
    Press {
        key: String,
        selector: Option<Template>,
    },
    WaitFor(WaitCond),
    AssertText {
        selector: Template,
        expect: TextMatch,
    },
    AssertUrl {
        expect: TextMatch,
    },
    Screenshot {
        name: String,
    },
    Http(HttpStep),
    Sql(SqlStep),
    Poll {
        step: Box<Step>,
        every: Duration,
    },
    Capture {
        name: String,
        selector: Template,
        attribute: Option<String>,
    },
    Script(ScriptStep),
    Hover {
        selector: Template,
    },
    Upload {
        selector: Template,
        /// Absolute, resolved against the journey file's folder at load.
        file: std::path::PathBuf,
    },
    Frame(FrameTarget),
    SwitchTo(WindowTarget),
    SetCookie {
        name: Template,
        value: Template,
        path: Option<Template>,
        domain: Option<Template>,
        secure: bool,
        http_only: bool,
    },
    SetStorage {
        key: Template,
        value: Template,
        session: bool,
    },
    ClearCookies,
    Assert {
        selector: Template,
        check: ElementCheck,
    },
    WaitForRequest {
        url: Pattern,
        status: Option<u16>,
    },
}

impl Action {
    /// Whether the step sets a template variable (a capture) that later steps may use.
    pub fn sets_variables(&self) -> bool {
        match self {
            Action::Capture { .. } => true,
            Action::Script(s) => s.capture.is_some(),
            Action::Http(h) => !h.capture.is_empty(),
            Action::Sql(q) => !q.capture.is_empty(),
            Action::Poll { step, .. } => step.action.sets_variables(),
            _ => false,
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Action::Goto { .. } => "goto",
            Action::Click { .. } => "click",
            Action::Fill { .. } => "fill",
            Action::Select { .. } => "select",
            Action::Press { .. } => "press",
            Action::WaitFor(_) => "wait_for",
            Action::AssertText { .. } => "assert_text",
            Action::AssertUrl { .. } => "assert_url",
            Action::Screenshot { .. } => "screenshot",
            Action::Http(_) => "http",
            Action::Sql(_) => "sql",
            Action::Poll { .. } => "poll",
            Action::Capture { .. } => "capture",
            Action::Script(_) => "script",
            Action::Hover { .. } => "hover",
            Action::Upload { .. } => "upload",
            Action::Frame(_) => "frame",
            Action::SwitchTo(_) => "switch_to",
            Action::SetCookie { .. } => "set_cookie",
            Action::SetStorage { .. } => "set_storage",
            Action::ClearCookies => "clear_cookies",
            Action::Assert { .. } => "assert",
            Action::WaitForRequest { .. } => "wait_for_request",
        }
    }

    pub fn needs_browser(&self) -> bool {
        match self {
            Action::Http(_) | Action::Sql(_) => false,
            Action::Poll { step, .. } => step.action.needs_browser(),
            _ => true,
        }
    }

    /// Actions a user performs, which may carry `until:`.
    /// The event a user action is timed from (`None`: not a user action).
    pub fn start_event(&self) -> Option<crate::journey::webdriver::StartEvent> {
        use crate::journey::webdriver::StartEvent;
        match self {
            Action::Click { .. } => Some(StartEvent::Click),
            Action::Fill { .. } => Some(StartEvent::LastInput),
            Action::Press { .. } => Some(StartEvent::KeyDown),
            Action::Select { .. } => Some(StartEvent::Change),
            Action::Hover { .. } => Some(StartEvent::MouseOver),
            Action::Upload { .. } => Some(StartEvent::Change),
            _ => None,
        }
    }

    /// Whether the action can load a new document: a click, a key press, a submitting fill.
    /// The element the action finds before it acts (and arms its timing on), for the actions
    /// that find one the same way (`Browser::ready`).
    pub fn element(&self) -> Option<&Template> {
        match self {
            Action::Click { selector }
            | Action::Fill { selector, .. }
            | Action::Select { selector, .. }
            | Action::Hover { selector }
            | Action::Upload { selector, .. } => Some(selector),
            Action::Press { selector, .. } => selector.as_ref(),
            _ => None,
        }
    }

    pub fn may_navigate(&self) -> bool {
        match self {
            Action::Click { .. } | Action::Press { .. } => true,
            Action::Fill { submit, .. } => *submit,
            _ => false,
        }
    }

    /// Whether the step can be sent over a local browser's DevTools socket around chromedriver
    /// (`webdriver.local_steps: devtools`, see `webdriver/direct.rs`): it uses only page
    /// scripts, clicks, keys, navigations and the page's URL, screenshot and cookies. The
    /// others need chromedriver's frames, windows, actions, files or cookie commands.
    pub fn direct_ok(&self) -> bool {
        match self {
            Action::Goto { .. }
            | Action::Click { .. }
            | Action::Fill { .. }
            | Action::WaitFor(_)
            | Action::AssertText { .. }
            | Action::AssertUrl { .. }
            | Action::Screenshot { .. }
            | Action::Http(_)
            | Action::Sql(_)
            | Action::Capture { .. }
            | Action::Script(_)
            | Action::SetStorage { .. }
            | Action::Assert { .. }
            | Action::WaitForRequest { .. } => true,
            Action::Press { selector, .. } => selector.is_some(),
            Action::Poll { step, .. } => step.action.direct_ok(),
            Action::Select { .. }
            | Action::Hover { .. }
            | Action::Upload { .. }
            | Action::Frame(_)
            | Action::SwitchTo(_)
            | Action::SetCookie { .. }
            | Action::ClearCookies => false,
        }
    }

    pub fn is_user_action(&self) -> bool {
        matches!(
            self,
            Action::Click { .. }
                | Action::Fill { .. }
                | Action::Press { .. }
                | Action::Select { .. }
                | Action::Hover { .. }
                | Action::Upload { .. }
        )
    }
}

#[derive(Debug, Clone)]
pub enum SelectBy {
    Value(Template),
    Label(Template),
}

#[derive(Debug, Clone)]
pub enum TextMatch {
    Contains(Template),
    Equals(Template),
    Matches(Pattern),
}

impl TextMatch {
    /// How the expectation reads in a failure message: `contains "x"`, `matches /x/`.
    pub fn describe(&self) -> String {
        match self {
            TextMatch::Contains(t) => format!("contains {:?}", t.raw()),
            TextMatch::Equals(t) => format!("equals {:?}", t.raw()),
            TextMatch::Matches(p) => format!("matches regex {:?}", p.source()),
        }
    }
}

/// A regular expression from a journey (`matches`, `url_matches`), compiled at load with
/// `regex-automata` (the engine the alert rules use) so a bad one is a load error. It is
/// searched for, not anchored: write `^...$` to match a whole value.
#[derive(Debug, Clone)]
pub struct Pattern {
    source: String,
    regex: regex_automata::meta::Regex,
}

/// Bounds the parser's nesting (stacked repetitions recurse): journeys need a handful.
const PATTERN_NEST_LIMIT: u32 = 64;

impl Pattern {
    pub fn new(source: &str) -> Result<Self, String> {
        let regex = regex_automata::meta::Regex::builder()
            .syntax(regex_automata::util::syntax::Config::new().nest_limit(PATTERN_NEST_LIMIT))
            .build(source)
            .map_err(|e| {
                let full = std::error::Error::source(&e)
                    .map(|s| s.to_string())
                    .unwrap_or_else(|| e.to_string());
                let reason = full
                    .lines()
                    .rev()
                    .find_map(|l| l.trim().strip_prefix("error: "))
                    .unwrap_or(full.trim())
                    .to_string();
                format!("`{source}` is not a regular expression: {reason}")
            })?;
        Ok(Self {
            source: source.to_string(),
            regex,
        })
    }

    pub fn is_match(&self, text: &str) -> bool {
        self.regex.is_match(text)
    }

    pub fn source(&self) -> &str {
        &self.source
    }
}

#[derive(Debug, Clone)]
pub struct ScriptStep {
    /// A function body; `args` and (for `async`) `done` are its parameters.
    pub js: String,
    /// Strings inside are templates, rendered at run time.
    pub args: Vec<serde_json::Value>,
    pub is_async: bool,
    pub capture: Option<String>,
    pub expect: Option<JsonExpect>,
}

/// An expectation on a JSON value, at `pointer` ("" is the whole value).
#[derive(Debug, Clone)]
pub struct JsonExpect {
    pub pointer: String,
    pub check: JsonCheck,
}

#[derive(Debug, Clone)]
pub enum JsonCheck {
    /// Strings inside are templates.
    Equals(serde_json::Value),
    /// On the value's text: a string as it is, anything else as JSON.
    Matches(Pattern),
}

#[derive(Debug, Clone)]
pub enum FrameTarget {
    /// The `<iframe>`/`<frame>` element this selector finds in the current frame.
    Element(Template),
    Parent,
    Top,
}

#[derive(Debug, Clone)]
pub enum WindowTarget {
    /// The newest window the run has, once there is one besides the current (a popup).
    New,
    /// The run's windows in the order they were opened; 0 is the run's first tab.
    Index(u64),
    /// The first of the run's windows whose title contains this.
    Title(Template),
}

/// What `assert` checks on the element(s) `selector` finds.
#[derive(Debug, Clone)]
pub enum ElementCheck {
    /// How many elements the selector finds.
    Count(u64),
    /// An attribute of the first one: present (`None`), or its value matching.
    Attribute {
        name: String,
        expect: Option<TextMatch>,
    },
    Enabled(bool),
    Checked(bool),
    Visible(bool),
}

impl std::fmt::Display for ElementCheck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ElementCheck::Count(n) => write!(f, "count {n}"),
            ElementCheck::Attribute { name, expect: None } => {
                write!(f, "attribute `{name}` present")
            }
            ElementCheck::Attribute {
                name,
                expect: Some(m),
            } => write!(f, "attribute `{name}` {}", m.describe()),
            ElementCheck::Enabled(b) => write!(f, "enabled {b}"),
            ElementCheck::Checked(b) => write!(f, "checked {b}"),
            ElementCheck::Visible(b) => write!(f, "visible {b}"),
        }
    }
}

#[derive(Debug, Clone)]
pub struct WaitCond {
    pub selector: Template,
    /// The element's text must contain this.
    pub text: Option<Template>,
    /// Wait for the element to be displayed (default), or only present in the DOM.
    pub visible: bool,
    /// Wait for the element to disappear instead.
    pub gone: bool,
}

impl std::fmt::Display for WaitCond {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.selector)?;
        if let Some(t) = &self.text {
            write!(f, " with text {:?}", t.raw())?;
        }
        Ok(())
    }
}

#[derive(Debug, Clone)]
pub struct HttpStep {
    pub method: reqwest::Method,
    pub url: Template,
    pub headers: BTreeMap<String, Template>,
    pub json: Option<serde_json::Value>,
    pub browser_cookies: bool,
    pub expect_status: Option<u16>,
    pub expect_json: BTreeMap<String, serde_json::Value>,
    pub capture: BTreeMap<String, String>,
}

#[derive(Debug, Clone)]
pub struct SqlStep {
    pub query: String,
    pub params: Vec<Template>,
    pub expect_value: Option<Template>,
    pub min_rows: Option<u64>,
    pub capture: BTreeMap<String, String>,
}
