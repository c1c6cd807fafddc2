//! The webhook receiver: Alertmanager's webhook JSON (version 4), so tooling written for
//! Alertmanager (ticket bridges, chat relays, dead man's switches) consumes synmon unchanged.

use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::config::Secret;
use crate::config::env::resolve_secret;

use super::config::field;
use super::message::{Labels, Notification};
use super::receiver::{Delivered, Receiver, SendContext, SendError, http_client, network_error};
use crate::http_util::retry_after;

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawWebhook {
    pub name: String,
    #[schemars(with = "crate::config::schema::SecretText")]
    pub url: String,
    /// Sent as `Authorization: Bearer ...` (a secret: `${VAR}` or `file:`).
    #[serde(default)]
    #[schemars(with = "Option<crate::config::schema::SecretText>")]
    pub bearer_token: Option<String>,
    /// Send at most this many alerts per notification (0: all); the rest are counted in
    /// `truncatedAlerts`, as Alertmanager does.
    #[serde(default)]
    pub max_alerts: Option<usize>,
    #[serde(default)]
    #[schemars(with = "Option<crate::config::schema::Duration>")]
    pub timeout: Option<String>,
}

#[derive(Debug, Clone)]
pub struct WebhookConfig {
    pub name: String,
    /// A secret: webhook URLs often carry a token in their path or query.
    pub url: Secret,
    pub bearer_token: Option<Secret>,
    pub max_alerts: usize,
    pub timeout: Duration,
}

pub fn validate(raw: RawWebhook, dir: &Path, err: &mut dyn FnMut(&str, String)) -> WebhookConfig {
    let url = match resolve_secret(&raw.url, dir) {
        Ok(u) => match reqwest::Url::parse(&u) {
            Ok(p) if matches!(p.scheme(), "http" | "https") && p.host().is_some() => Secret::new(u),
            _ => {
                err("url", "must be an http(s) URL with a host".into());
                Secret::default()
            }
        },
        Err(e) => {
            err("url", e);
            Secret::default()
        }
    };
    let bearer_token = match raw.bearer_token.as_deref() {
        None | Some("") => None,
        Some(t) => match resolve_secret(t, dir) {
            Ok(t) if t.is_empty() => None,
            Ok(t) => Some(Secret::new(t)),
            Err(e) => {
                err("bearer_token", e);
                None
            }
        },
    };
    let timeout = field::timeout(raw.timeout.as_deref(), err);
    WebhookConfig {
        name: raw.name,
        url,
        bearer_token,
        max_alerts: raw.max_alerts.unwrap_or(0),
        timeout,
    }
}

/// Alertmanager's webhook body (`template.Data` + `version`, `groupKey`, `truncatedAlerts`).
#[derive(Debug, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct WebhookBody {
    pub version: String,
    pub group_key: String,
    pub truncated_alerts: usize,
    pub status: String,
    pub receiver: String,
    pub group_labels: Labels,
    pub common_labels: Labels,
    pub common_annotations: Labels,
    #[serde(rename = "externalURL")]
    pub external_url: String,
    pub alerts: Vec<WebhookAlert>,
}

#[derive(Debug, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct WebhookAlert {
    pub status: String,
    pub labels: Labels,
    pub annotations: Labels,
    /// RFC 3339.
    pub starts_at: String,
    /// RFC 3339; Alertmanager's zero time `0001-01-01T00:00:00Z` while firing.
    pub ends_at: String,
    #[serde(rename = "generatorURL")]
    pub generator_url: String,
    pub fingerprint: String,
}

/// The body for `n`. Pure: tested without a network.
pub fn body(n: &Notification, max_alerts: usize) -> WebhookBody {
    let keep = if max_alerts == 0 {
        n.alerts.len()
    } else {
        max_alerts.min(n.alerts.len())
    };
    let rfc =
        |t: chrono::DateTime<chrono::Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    WebhookBody {
        version: "4".into(),
        group_key: n.group_key.clone(),
        truncated_alerts: n.alerts.len() - keep,
        status: n.status.as_str().into(),
        receiver: n.receiver.clone(),
        group_labels: n.group_labels.clone(),
        common_labels: n.common_labels.clone(),
        common_annotations: n.common_annotations.clone(),
        external_url: n.external_url.clone(),
        alerts: n.alerts[..keep]
            .iter()
            .map(|a| WebhookAlert {
                status: a.status.as_str().into(),
                labels: a.labels.clone(),
                annotations: a.annotations.clone(),
                starts_at: rfc(a.starts_at),
                ends_at: a
                    .ends_at
                    .map(rfc)
                    .unwrap_or_else(|| "0001-01-01T00:00:00Z".into()),
                generator_url: a
                    .run
                    .as_ref()
                    .map(|r| r.run_url.clone())
                    .unwrap_or_else(|| n.external_url.clone()),
                fingerprint: a.fingerprint.clone(),
            })
            .collect(),
    }
}

pub struct Webhook {
    config: WebhookConfig,
    client: reqwest::Client,
}

impl Webhook {
    pub fn new(config: WebhookConfig) -> Result<Self, String> {
        let client = http_client(config.timeout)?;
        Ok(Webhook { config, client })
    }
}

#[async_trait::async_trait]
impl Receiver for Webhook {
    fn name(&self) -> &str {
        &self.config.name
    }

    fn kind(&self) -> &'static str {
        "webhook"
    }

    fn secrets(&self) -> Vec<Secret> {
        let mut v = vec![self.config.url.clone()];
        v.extend(self.config.bearer_token.clone());
        v
    }

    async fn send(&self, n: &Notification, _ctx: &SendContext) -> Result<Delivered, SendError> {
        let mut req = self
            .client
            .post(self.config.url.expose())
            .json(&body(n, self.config.max_alerts));
        if let Some(t) = &self.config.bearer_token {
            req = req.bearer_auth(t.expose());
        }
        let resp = req.send().await.map_err(|e| network_error(&e))?;
        let status = resp.status();
        if status.is_success() {
            return Ok(Delivered {
                response: status.to_string(),
                group_state: None,
            });
        }
        let after = retry_after(resp.headers());
        Err(
            SendError::from_status(status.as_u16(), format!("HTTP {status}"))
                .with_retry_after(after),
        )
    }
}
