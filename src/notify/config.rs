//! `receivers:` and `route:` in `synmon.yaml`: the raw receiver shapes, and their validation,
//! with the routing tree's (`route.rs`), into the settings the pipeline runs with. Every error
//! names its field path (`receivers[1].channel`, `route.routes[0].group_wait`); the config
//! loader adds file and line.

use std::collections::BTreeSet;
use std::path::Path;

use serde::Deserialize;

use super::{console, pagerduty, slack, webhook};

/// The routing tree's types, where the config loader and `synmon check` have always found them.
pub use super::route::{RawRoute, Route, unrouted};

/// One item of `receivers:`, tagged by `type`.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum RawReceiver {
    Slack(slack::RawSlack),
    Pagerduty(pagerduty::RawPagerDuty),
    Webhook(webhook::RawWebhook),
    Console(console::RawConsole),
}

impl RawReceiver {
    fn name(&self) -> &str {
        match self {
            RawReceiver::Slack(r) => &r.name,
            RawReceiver::Pagerduty(r) => &r.name,
            RawReceiver::Webhook(r) => &r.name,
            RawReceiver::Console(r) => &r.name,
        }
    }
}

/// A validated receiver's settings.
#[derive(Debug, Clone)]
pub enum ReceiverConfig {
    Slack(slack::SlackConfig),
    PagerDuty(pagerduty::PagerDutyConfig),
    Webhook(webhook::WebhookConfig),
    Console(console::ConsoleConfig),
}

impl ReceiverConfig {
    pub fn name(&self) -> &str {
        match self {
            ReceiverConfig::Slack(c) => &c.name,
            ReceiverConfig::PagerDuty(c) => &c.name,
            ReceiverConfig::Webhook(c) => &c.name,
            ReceiverConfig::Console(c) => &c.name,
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            ReceiverConfig::Slack(_) => "slack",
            ReceiverConfig::PagerDuty(_) => "pagerduty",
            ReceiverConfig::Webhook(_) => "webhook",
            ReceiverConfig::Console(_) => "console",
        }
    }

    /// Why this receiver cannot send (its secret is empty), if so: it is then disabled with one
    /// warning and its routes fall back to the console.
    pub fn disabled_reason(&self) -> Option<String> {
        match self {
            ReceiverConfig::Slack(c) if c.token.is_empty() => {
                Some("its token is empty (set SLACK_BOT_TOKEN)".into())
            }
            ReceiverConfig::PagerDuty(c) if c.routing_key.is_empty() => {
                Some("its routing key is empty (set PAGERDUTY_ROUTING_KEY)".into())
            }
            _ => None,
        }
    }

    /// Every secret of the receiver (for the config's redactor).
    pub fn secrets(&self) -> Vec<crate::config::Secret> {
        match self {
            ReceiverConfig::Slack(c) => vec![c.token.clone()],
            ReceiverConfig::PagerDuty(c) => vec![c.routing_key.clone()],
            ReceiverConfig::Webhook(c) => {
                let mut v = vec![c.url.clone()];
                v.extend(c.bearer_token.iter().cloned());
                v
            }
            ReceiverConfig::Console(_) => Vec::new(),
        }
    }

    /// The receiver, ready to send.
    pub fn build(&self) -> Result<std::sync::Arc<dyn super::Receiver>, String> {
        Ok(match self {
            ReceiverConfig::Slack(c) => std::sync::Arc::new(slack::Slack::new(c.clone())?),
            ReceiverConfig::PagerDuty(c) => {
                std::sync::Arc::new(pagerduty::PagerDuty::new(c.clone())?)
            }
            ReceiverConfig::Webhook(c) => std::sync::Arc::new(webhook::Webhook::new(c.clone())?),
            ReceiverConfig::Console(c) => std::sync::Arc::new(console::Console::new(c.clone())),
        })
    }
}

/// Receivers and routing, validated.
#[derive(Debug, Clone)]
pub struct NotifyConfig {
    pub receivers: Vec<ReceiverConfig>,
    pub route: Route,
}

impl NotifyConfig {
    pub fn receiver(&self, name: &str) -> Option<&ReceiverConfig> {
        self.receivers.iter().find(|r| r.name() == name)
    }
}

/// Settings every HTTP receiver shares, validated the same way (`err(field, message)`).
pub(crate) mod field {
    use std::path::Path;
    use std::time::Duration;

    use crate::config::Secret;
    use crate::config::duration::{Bound, MINUTE};
    use crate::config::env::resolve_secret;

    /// An http(s) endpoint with a host; empty or absent: `default`.
    pub fn endpoint(
        raw: Option<String>,
        default: &str,
        field: &str,
        err: &mut dyn FnMut(&str, String),
    ) -> reqwest::Url {
        let raw = raw
            .filter(|u| !u.is_empty())
            .unwrap_or_else(|| default.to_string());
        match reqwest::Url::parse(&raw) {
            Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => u,
            _ => {
                err(field, format!("`{raw}` must be an http(s) URL with a host"));
                reqwest::Url::parse(default).expect("default URL")
            }
        }
    }

    /// A secret written as `${VAR}`, `file:PATH` or literally (empty is allowed: the receiver
    /// is then disabled).
    pub fn secret(raw: &str, dir: &Path, field: &str, err: &mut dyn FnMut(&str, String)) -> Secret {
        match resolve_secret(raw, dir) {
            Ok(t) => Secret::new(t),
            Err(e) => {
                err(field, e);
                Secret::default()
            }
        }
    }

    /// A request timeout (default 10 s, at most 5 min: a receiver that slow holds up every
    /// notification queued behind it).
    pub fn timeout(raw: Option<&str>, err: &mut dyn FnMut(&str, String)) -> Duration {
        const DEFAULT: Duration = Duration::from_secs(10);
        const BOUND: Bound = Bound::positive("receiver timeout", MINUTE.saturating_mul(5));
        match raw.map(|r| BOUND.parse(r)) {
            None => DEFAULT,
            Some(Ok(d)) => d,
            Some(Err(e)) => {
                err("timeout", e);
                DEFAULT
            }
        }
    }
}

/// The built-in receiver every config has: with no `receivers:` and `route:` at all, alerts go
/// to stderr, and a disabled receiver's routes fall back here.
pub const CONSOLE: &str = "console";

/// Validates `receivers:` and `route:`; `err(path, message)` collects problems.
pub fn validate(
    receivers: Vec<RawReceiver>,
    route: Option<RawRoute>,
    dir: &Path,
    err: &mut dyn FnMut(&str, String),
) -> NotifyConfig {
    let mut out = Vec::new();
    let mut names = BTreeSet::new();
    for (i, r) in receivers.into_iter().enumerate() {
        let p = format!("receivers[{i}]");
        let name = r.name().to_string();
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        {
            err(
                &format!("{p}.name"),
                format!("`{name}` must be letters, digits, `-`, `_` or `.`"),
            );
        } else if !names.insert(name.clone()) {
            err(
                &format!("{p}.name"),
                format!("receiver `{name}` is defined twice"),
            );
            continue;
        }
        let mut sub = |field: &str, m: String| err(&format!("{p}.{field}"), m);
        out.push(match r {
            RawReceiver::Slack(r) => ReceiverConfig::Slack(slack::validate(r, dir, &mut sub)),
            RawReceiver::Pagerduty(r) => {
                ReceiverConfig::PagerDuty(pagerduty::validate(r, dir, &mut sub))
            }
            RawReceiver::Webhook(r) => ReceiverConfig::Webhook(webhook::validate(r, dir, &mut sub)),
            RawReceiver::Console(r) => ReceiverConfig::Console(console::validate(r, &mut sub)),
        });
    }
    if !names.contains(CONSOLE) {
        out.push(ReceiverConfig::Console(console::ConsoleConfig::named(
            CONSOLE,
        )));
        names.insert(CONSOLE.to_string());
    }
    let route = match route {
        None => Route::default_to(CONSOLE),
        Some(raw) => super::route::validate(raw, CONSOLE, &names, err),
    };
    NotifyConfig {
        receivers: out,
        route,
    }
}

#[cfg(test)]
pub(super) mod tests {
    use std::collections::BTreeMap;

    use super::*;

    pub(crate) fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// Validates `receivers:` and `route:` written as YAML: the config and every error.
    pub(crate) fn tree(yaml: &str) -> (NotifyConfig, Vec<String>) {
        #[derive(Deserialize)]
        struct Doc {
            #[serde(default)]
            receivers: Vec<RawReceiver>,
            route: Option<RawRoute>,
        }
        let d: Doc = yaml_serde::from_str(yaml).unwrap();
        let mut errs = Vec::new();
        let c = validate(d.receivers, d.route, Path::new("."), &mut |p, m| {
            errs.push(format!("{p}: {m}"))
        });
        (c, errs)
    }

    #[test]
    fn errors_name_the_field() {
        let (_, errs) = tree(
            r#"
receivers:
  - { name: a, type: webhook, url: "http://127.0.0.1:9/a" }
  - { name: a, type: console }
route:
  receiver: nobody
  routes:
    - matchers: { check: "=~(" }
      group_wait: soon
      group_by: [alertname, "..."]
"#,
        );
        assert_eq!(
            errs,
            [
                "receivers[1].name: receiver `a` is defined twice",
                "route.receiver: unknown receiver `nobody` (defined: a, console)",
                "route.routes[0].matchers.check: `(` is not a regular expression: unclosed group",
                "route.routes[0].group_by: `...` groups by every label and stands alone",
                "route.routes[0].group_wait: `soon` is not a duration (expected number at 0); write it like `500ms`, `5s` or `2m`",
            ]
        );
    }
}
