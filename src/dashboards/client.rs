//! The Datadog dashboards API (`/api/v1/dashboard`): list, get, create, update.
//!
//! Keys travel only in the `DD-API-KEY` and `DD-APPLICATION-KEY` headers, never in a URL, so a
//! transport error (which names the URL) cannot leak them. A 429 waits for `Retry-After` (or
//! Datadog's `X-RateLimit-Reset`), a 5xx or a lost connection backs off as the platform's
//! clients do (1 s x 2^attempt, capped at 32 s, with jitter), up to 5 attempts; the waiting goes through a [`Sleeper`] so tests
//! observe the waits instead of sitting through them.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use reqwest::{Method, StatusCode, Url};
use serde_json::Value;

use crate::config::Secret;
use crate::probes::backoff;

/// Where and as whom `synmon dashboards diff|push` talks to Datadog.
#[derive(Debug, Clone)]
pub struct DatadogConfig {
    pub api_key: Secret,
    pub app_key: Secret,
    pub api_url: reqwest::Url,
}

/// Datadog's US1 API, used when neither `datadog.site` nor `datadog.api_url` is set.
pub const DEFAULT_DATADOG_API: &str = "https://api.datadoghq.com";

/// Waits between attempts. Production sleeps on tokio's timer; tests record and return.
pub trait Sleeper: Send + Sync + std::fmt::Debug {
    fn sleep(&self, d: Duration) -> Pin<Box<dyn Future<Output = ()> + Send + '_>>;
}

#[derive(Debug, Default, Clone, Copy)]
pub struct TokioSleeper;

impl Sleeper for TokioSleeper {
    fn sleep(&self, d: Duration) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        Box::pin(tokio::time::sleep(d))
    }
}

/// The longest single wait a `Retry-After` may impose (a misbehaving proxy could say a day).
pub const MAX_WAIT: Duration = Duration::from_secs(120);

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error(
        "Datadog API keys are not set: fill `datadog.api_key` and `datadog.app_key` (e.g. from DD_API_KEY and DD_APP_KEY)"
    )]
    MissingKeys,
    #[error("{method} {path}: cannot reach {base}: {reason}")]
    Unreachable {
        method: Method,
        path: String,
        base: String,
        reason: String,
    },
    #[error("{method} {path}: Datadog answered {status}: {body}")]
    Refused {
        method: Method,
        path: String,
        status: StatusCode,
        body: String,
    },
    #[error("{method} {path}: still rate limited (429) after {attempts} attempts")]
    RateLimited {
        method: Method,
        path: String,
        attempts: u32,
    },
    #[error("{method} {path}: the answer is not the expected JSON: {reason}")]
    BadAnswer {
        method: Method,
        path: String,
        reason: String,
    },
}

impl ApiError {
    /// Datadog said no (a 4xx or 5xx answer, or rate limits that never lifted), as opposed to
    /// not being reachable or not being configured.
    pub fn is_refusal(&self) -> bool {
        matches!(
            self,
            ApiError::Refused { .. } | ApiError::RateLimited { .. } | ApiError::BadAnswer { .. }
        )
    }
}

/// A dashboard as listed: its id and title.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    pub id: String,
    pub title: String,
}

#[derive(Debug, Clone)]
pub struct DatadogClient {
    http: reqwest::Client,
    base: Url,
    api_key: Secret,
    app_key: Secret,
    sleeper: Arc<dyn Sleeper>,
}

/// The API host of a Datadog site (`datadoghq.eu` -> `https://api.datadoghq.eu`).
pub fn site_url(site: &str) -> String {
    format!("https://api.{}", site.trim_start_matches("api."))
}

impl DatadogClient {
    /// Refuses empty keys: a push without them would only collect 403s.
    pub fn new(
        base: Url,
        api_key: Secret,
        app_key: Secret,
        sleeper: Arc<dyn Sleeper>,
    ) -> Result<Self, ApiError> {
        if api_key.is_empty() || app_key.is_empty() {
            return Err(ApiError::MissingKeys);
        }
        crate::tls::install();
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .user_agent(concat!("synmon/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ApiError::Unreachable {
                method: Method::GET,
                path: String::new(),
                base: base.to_string(),
                reason: e.to_string(),
            })?;
        Ok(DatadogClient {
            http,
            base,
            api_key,
            app_key,
            sleeper,
        })
    }

    pub fn base(&self) -> &Url {
        &self.base
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&Value>,
    ) -> Result<Value, ApiError> {
        let mut url =
            self.base
                .join(path.trim_start_matches('/'))
                .map_err(|e| ApiError::Unreachable {
                    method: method.clone(),
                    path: path.to_string(),
                    base: self.base.to_string(),
                    reason: e.to_string(),
                })?;
        if !query.is_empty() {
            url.query_pairs_mut()
                .extend_pairs(query.iter().map(|(k, v)| (*k, v.as_str())));
        }
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut req = self
                .http
                .request(method.clone(), url.clone())
                .header("DD-API-KEY", self.api_key.expose())
                .header("DD-APPLICATION-KEY", self.app_key.expose())
                .header("Accept", "application/json");
            if let Some(b) = body {
                req = req.json(b);
            }
            let wait = match req.send().await {
                Err(e) => {
                    if attempt >= backoff::MAX_ATTEMPTS {
                        return Err(ApiError::Unreachable {
                            method,
                            path: path.to_string(),
                            base: self.base.to_string(),
                            reason: e.without_url().to_string(),
                        });
                    }
                    backoff::delay_random(attempt - 1)
                }
                Ok(resp) => {
                    let status = resp.status();
                    if status == StatusCode::TOO_MANY_REQUESTS {
                        if attempt >= backoff::MAX_ATTEMPTS {
                            return Err(ApiError::RateLimited {
                                method,
                                path: path.to_string(),
                                attempts: attempt,
                            });
                        }
                        rate_limit_wait(resp.headers())
                            .unwrap_or_else(|| backoff::delay_random(attempt - 1))
                    } else if status.is_server_error() && attempt < backoff::MAX_ATTEMPTS {
                        backoff::delay_random(attempt - 1)
                    } else if status.is_success() {
                        let text = resp.text().await.unwrap_or_default();
                        if text.trim().is_empty() {
                            return Ok(Value::Null);
                        }
                        return serde_json::from_str(&text).map_err(|e| ApiError::BadAnswer {
                            method,
                            path: path.to_string(),
                            reason: e.to_string(),
                        });
                    } else {
                        let mut body = resp.text().await.unwrap_or_default();
                        if body.len() > 500 {
                            let cut = body.floor_char_boundary(500);
                            body.truncate(cut);
                            body.push('…');
                        }
                        return Err(ApiError::Refused {
                            method,
                            path: path.to_string(),
                            status,
                            body,
                        });
                    }
                }
            };
            tracing::info!(method = %method, path, attempt, wait_ms = crate::config::duration::millis_u64(wait), "Datadog API: waiting before retrying");
            self.sleeper.sleep(wait.min(MAX_WAIT)).await;
        }
    }

    /// Every dashboard's id and title (paged).
    pub async fn list(&self) -> Result<Vec<Summary>, ApiError> {
        const PAGE: usize = 100;
        let mut out = Vec::new();
        loop {
            let v = self
                .call(
                    Method::GET,
                    "/api/v1/dashboard",
                    &[
                        ("count", PAGE.to_string()),
                        ("start", out.len().to_string()),
                    ],
                    None,
                )
                .await?;
            let Some(list) = v.get("dashboards").and_then(Value::as_array) else {
                return Err(ApiError::BadAnswer {
                    method: Method::GET,
                    path: "/api/v1/dashboard".into(),
                    reason: "no `dashboards` array".into(),
                });
            };
            let n = list.len();
            for d in list {
                if let (Some(id), Some(title)) = (
                    d.get("id").and_then(Value::as_str),
                    d.get("title").and_then(Value::as_str),
                ) {
                    out.push(Summary {
                        id: id.to_string(),
                        title: title.to_string(),
                    });
                }
            }
            if n < PAGE {
                return Ok(out);
            }
        }
    }

    /// One dashboard, or `None` when Datadog does not know the id.
    pub async fn get(&self, id: &str) -> Result<Option<Value>, ApiError> {
        match self
            .call(Method::GET, &format!("/api/v1/dashboard/{id}"), &[], None)
            .await
        {
            Ok(v) => Ok(Some(v)),
            Err(ApiError::Refused { status, .. }) if status == StatusCode::NOT_FOUND => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Create; returns the new id.
    pub async fn create(&self, body: &Value) -> Result<String, ApiError> {
        let v = self
            .call(Method::POST, "/api/v1/dashboard", &[], Some(body))
            .await?;
        v.get("id")
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| ApiError::BadAnswer {
                method: Method::POST,
                path: "/api/v1/dashboard".into(),
                reason: "no `id` in the answer".into(),
            })
    }

    pub async fn update(&self, id: &str, body: &Value) -> Result<(), ApiError> {
        self.call(
            Method::PUT,
            &format!("/api/v1/dashboard/{id}"),
            &[],
            Some(body),
        )
        .await
        .map(|_| ())
    }
}

/// How long a 429 asks us to wait: `Retry-After` seconds, else Datadog's `X-RateLimit-Reset`
/// (seconds until the window resets).
pub fn rate_limit_wait(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    backoff::retry_after(headers).or_else(|| {
        headers
            .get("x-ratelimit-reset")?
            .to_str()
            .ok()?
            .trim()
            .parse::<u64>()
            .ok()
            .map(Duration::from_secs)
    })
}
