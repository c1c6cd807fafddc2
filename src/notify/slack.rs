//! The Slack receiver (slack-morphism). STUB: the Block Kit builder, chat.postMessage /
//! chat.update / threaded resolve and the screenshot upload are being written.

use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

use crate::config::Secret;
use crate::config::duration::parse_duration;
use crate::config::env::resolve_secret;

use super::message::Notification;
use super::receiver::{Delivered, Receiver, SendContext, SendError};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSlack {
    pub name: String,
    /// Slack's Web API base (`https://slack.com/api`); tests point it at a local fake.
    #[serde(default)]
    pub api_url: Option<String>,
    /// A bot token (`xoxb-...`), a secret. Empty: the receiver is disabled.
    pub token: String,
    /// `#alerts`, or a channel id (`C0123ABC`).
    pub channel: String,
    /// Upload the failure screenshot into the message's thread (default true).
    #[serde(default)]
    pub upload_screenshots: Option<bool>,
    #[serde(default)]
    pub timeout: Option<String>,
}

#[derive(Debug, Clone)]
pub struct SlackConfig {
    pub name: String,
    pub api_url: reqwest::Url,
    pub token: Secret,
    pub channel: String,
    pub upload_screenshots: bool,
    pub timeout: Duration,
}

pub const DEFAULT_API_URL: &str = "https://slack.com/api";

pub fn validate(raw: RawSlack, dir: &Path, err: &mut dyn FnMut(&str, String)) -> SlackConfig {
    let api_raw = raw
        .api_url
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| DEFAULT_API_URL.to_string());
    let api_url = match reqwest::Url::parse(&api_raw) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => u,
        _ => {
            err(
                "api_url",
                format!("`{api_raw}` must be an http(s) URL with a host"),
            );
            reqwest::Url::parse(DEFAULT_API_URL).expect("default URL")
        }
    };
    let token = match resolve_secret(&raw.token, dir) {
        Ok(t) => Secret::new(t),
        Err(e) => {
            err("token", e);
            Secret::default()
        }
    };
    if raw.channel.trim().is_empty() {
        err("channel", "must not be empty (e.g. `#alerts`)".into());
    }
    let timeout = match raw.timeout.as_deref().map(parse_duration) {
        None => Duration::from_secs(10),
        Some(Ok(d)) => d,
        Some(Err(e)) => {
            err("timeout", e);
            Duration::from_secs(10)
        }
    };
    SlackConfig {
        name: raw.name,
        api_url,
        token,
        channel: raw.channel,
        upload_screenshots: raw.upload_screenshots.unwrap_or(true),
        timeout,
    }
}

pub struct Slack {
    config: SlackConfig,
}

impl Slack {
    pub fn new(config: SlackConfig) -> Result<Self, String> {
        Ok(Slack { config })
    }
}

#[async_trait::async_trait]
impl Receiver for Slack {
    fn name(&self) -> &str {
        &self.config.name
    }

    fn kind(&self) -> &'static str {
        "slack"
    }

    fn pacing(&self) -> Option<(String, Duration)> {
        Some((
            format!("slack:{}", self.config.channel),
            Duration::from_secs(1),
        ))
    }

    fn secrets(&self) -> Vec<Secret> {
        vec![self.config.token.clone()]
    }

    async fn send(&self, _n: &Notification, _ctx: &SendContext) -> Result<Delivered, SendError> {
        Err(SendError::permanent(
            "the Slack receiver is not implemented yet",
        ))
    }
}
