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
    pub steps: Vec<Step>,
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
        contains: Template,
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
}

impl Action {
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
            _ => None,
        }
    }

    /// Whether the action can load a new document: a click, a key press, a submitting fill.
    pub fn may_navigate(&self) -> bool {
        match self {
            Action::Click { .. } | Action::Press { .. } => true,
            Action::Fill { submit, .. } => *submit,
            _ => false,
        }
    }

    pub fn is_user_action(&self) -> bool {
        matches!(
            self,
            Action::Click { .. }
                | Action::Fill { .. }
                | Action::Press { .. }
                | Action::Select { .. }
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
