//! The console receiver: one line per notification on stderr. The demo's default, and where the
//! routes of a receiver without its secret fall back to, so an alert is never silently dropped.

use std::io::Write;

use serde::Deserialize;

use super::message::{Notification, Status};
use super::receiver::{Delivered, Receiver, SendContext, SendError};

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawConsole {
    pub name: String,
}

#[derive(Debug, Clone)]
pub struct ConsoleConfig {
    pub name: String,
}

impl ConsoleConfig {
    pub fn named(name: &str) -> Self {
        ConsoleConfig {
            name: name.to_string(),
        }
    }
}

pub fn validate(raw: RawConsole, _err: &mut dyn FnMut(&str, String)) -> ConsoleConfig {
    ConsoleConfig { name: raw.name }
}

pub struct Console {
    config: ConsoleConfig,
}

impl Console {
    pub fn new(config: ConsoleConfig) -> Self {
        Console { config }
    }
}

/// The line printed for `n`: title, then per alert its summary, value against threshold and
/// failing step. Pure, so it is tested without capturing stderr.
pub fn render(n: &Notification) -> String {
    let mut line = format!("[synmon] {} severity={}", n.title(), n.severity());
    for a in &n.alerts {
        line.push_str(" | ");
        if n.status == Status::Firing && a.status == Status::Resolved {
            line.push_str("(resolved) ");
        }
        match a.annotations.get("summary") {
            Some(s) => line.push_str(s),
            None => line.push_str(&a.fingerprint),
        }
        if let Some(c) = &a.condition {
            line.push_str(&format!(" [{}]", c.describe()));
        }
        if let Some(r) = &a.run
            && let Some(step) = &r.failing_step
        {
            line.push_str(&format!(" step `{step}`"));
            if let Some(e) = &r.error {
                line.push_str(&format!(": {e}"));
            }
            line.push_str(&format!(" ({})", r.run_url));
            if let Some(t) = &r.trace_id {
                line.push_str(&format!(" trace: {}", r.trace_url.as_deref().unwrap_or(t)));
            }
        }
    }
    // One notification, one line: a multi-line error must not break log parsers.
    line.replace(['\n', '\r'], " ")
}

#[async_trait::async_trait]
impl Receiver for Console {
    fn name(&self) -> &str {
        &self.config.name
    }

    fn kind(&self) -> &'static str {
        "console"
    }

    async fn send(&self, n: &Notification, _ctx: &SendContext) -> Result<Delivered, SendError> {
        let line = render(n);
        let mut err = std::io::stderr().lock();
        writeln!(err, "{line}").map_err(|e| SendError::retryable(format!("stderr: {e}")))?;
        Ok(Delivered {
            response: "printed".into(),
            group_state: None,
        })
    }
}
