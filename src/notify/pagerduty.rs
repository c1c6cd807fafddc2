//! The PagerDuty receiver (Events API v2). STUB: the event builder and send are being written.

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
pub struct RawPagerDuty {
    pub name: String,
    /// The Events API v2 enqueue URL (`https://events.pagerduty.com/v2/enqueue`).
    #[serde(default)]
    pub url: Option<String>,
    /// The integration's routing key, a secret. Empty: the receiver is disabled.
    pub routing_key: String,
    /// `payload.source` (default `synmon/<location>`).
    #[serde(default)]
    pub source: Option<String>,
    #[serde(default)]
    pub timeout: Option<String>,
}

#[derive(Debug, Clone)]
pub struct PagerDutyConfig {
    pub name: String,
    pub url: reqwest::Url,
    pub routing_key: Secret,
    pub source: Option<String>,
    pub timeout: Duration,
}

pub const DEFAULT_URL: &str = "https://events.pagerduty.com/v2/enqueue";

pub fn validate(
    raw: RawPagerDuty,
    dir: &Path,
    err: &mut dyn FnMut(&str, String),
) -> PagerDutyConfig {
    let url_raw = raw
        .url
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| DEFAULT_URL.to_string());
    let url = match reqwest::Url::parse(&url_raw) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => u,
        _ => {
            err(
                "url",
                format!("`{url_raw}` must be an http(s) URL with a host"),
            );
            reqwest::Url::parse(DEFAULT_URL).expect("default URL")
        }
    };
    let routing_key = match resolve_secret(&raw.routing_key, dir) {
        Ok(t) => Secret::new(t),
        Err(e) => {
            err("routing_key", e);
            Secret::default()
        }
    };
    let timeout = match raw.timeout.as_deref().map(parse_duration) {
        None => Duration::from_secs(10),
        Some(Ok(d)) => d,
        Some(Err(e)) => {
            err("timeout", e);
            Duration::from_secs(10)
        }
    };
    PagerDutyConfig {
        name: raw.name,
        url,
        routing_key,
        source: raw.source.filter(|s| !s.is_empty()),
        timeout,
    }
}

pub struct PagerDuty {
    config: PagerDutyConfig,
}

impl PagerDuty {
    pub fn new(config: PagerDutyConfig) -> Result<Self, String> {
        Ok(PagerDuty { config })
    }
}

#[async_trait::async_trait]
impl Receiver for PagerDuty {
    fn name(&self) -> &str {
        &self.config.name
    }

    fn kind(&self) -> &'static str {
        "pagerduty"
    }

    fn secrets(&self) -> Vec<Secret> {
        vec![self.config.routing_key.clone()]
    }

    async fn send(&self, _n: &Notification, _ctx: &SendContext) -> Result<Delivered, SendError> {
        Err(SendError::permanent(
            "the PagerDuty receiver is not implemented yet",
        ))
    }
}
