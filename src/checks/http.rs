//! An HTTP (API) check: one request, or a login then the request, judged on status, JSON
//! fields, headers and latency. Besides the run it counts rate-limit hits and 5xx answers per
//! service, sets the gauges read from the response and feeds a catalogued latency metric.

mod probe;

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

pub use probe::{HttpProber, HttpStats};

use super::{Check, Context, RawRetry, Schedule, Validator};
use crate::config::Secret;
use crate::config::duration::{Bound, DAY};
use crate::metrics::catalog;
use crate::metrics::registry::Registry;
use crate::outcome::Outcome;
use crate::run::{CheckKind, RunResult};

/// A response slower than a check's longest timeout (a day) is never measured.
const MAX_LATENCY: Bound = Bound::positive("latency", DAY);

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawHttpCheck {
    pub name: String,
    pub url: String,
    #[serde(default)]
    pub method: Option<String>,
    /// The RVP service it probes (auth, inventory, ...), the `service` label of error counts.
    #[serde(default)]
    pub service: Option<String>,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    #[serde(default)]
    pub json: Option<serde_json::Value>,
    #[serde(default)]
    pub auth: Option<RawHttpAuth>,
    #[serde(default)]
    pub expect: Option<RawHttpCheckExpect>,
    /// A catalogued latency metric this check's latency also feeds (e.g. `swis_preview_p95_ms`).
    #[serde(default)]
    pub metric: Option<String>,
    /// Catalogued gauges read from the JSON response: metric name -> JSON pointer.
    #[serde(default)]
    pub gauges: BTreeMap<String, String>,
    #[serde(default)]
    #[schemars(with = "Option<crate::config::schema::Duration>")]
    pub interval: Option<String>,
    #[serde(default)]
    #[schemars(with = "Option<crate::config::schema::Duration>")]
    pub timeout: Option<String>,
    #[serde(default)]
    pub retry_on_failure: Option<RawRetry>,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawHttpAuth {
    /// A fixed bearer token (a secret: `${VAR}` or `file:`).
    #[serde(default)]
    #[schemars(with = "Option<crate::config::schema::SecretText>")]
    pub bearer: Option<String>,
    /// Log in first and use the token from the response (never a token that expires).
    #[serde(default)]
    pub login: Option<RawLogin>,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawLogin {
    pub url: String,
    /// JSON pointer of the token in the login response.
    #[serde(default)]
    pub token: Option<String>,
}

#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawHttpCheckExpect {
    #[serde(default)]
    pub status: Option<u16>,
    #[serde(default)]
    pub json: BTreeMap<String, serde_json::Value>,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    #[serde(default)]
    #[schemars(with = "Option<crate::config::schema::Duration>")]
    pub max_latency: Option<String>,
}

#[derive(Debug, Clone)]
pub struct HttpCheck {
    pub name: String,
    pub method: reqwest::Method,
    pub url: String,
    pub service: Option<String>,
    pub headers: BTreeMap<String, String>,
    pub json: Option<serde_json::Value>,
    pub bearer: Option<Secret>,
    pub login: Option<Login>,
    pub expect_status: Option<u16>,
    pub expect_json: BTreeMap<String, serde_json::Value>,
    pub expect_headers: BTreeMap<String, String>,
    pub max_latency: Option<Duration>,
    pub metric: Option<String>,
    pub gauges: BTreeMap<String, String>,
    pub schedule: Schedule,
}

#[derive(Debug, Clone)]
pub struct Login {
    pub url: String,
    pub token_pointer: String,
}

impl Check for HttpCheck {
    const KIND: CheckKind = CheckKind::Http;
    const KEY: &'static str = "http";
    type Raw = RawHttpCheck;

    check_accessors!(retry_on_failure);

    fn validate(h: &RawHttpCheck, p: &str, schedule: Schedule, v: &mut Validator<'_>) -> Self {
        let method = crate::config::parse_method(h.method.as_deref()).unwrap_or_else(|e| {
            v.error(&format!("{p}.method"), e);
            reqwest::Method::GET
        });
        if h.url.trim().is_empty() {
            v.error(&format!("{p}.url"), "must not be empty");
        }
        let expect = h.expect.as_ref();
        let mut bearer = None;
        let mut login = None;
        if let Some(a) = &h.auth {
            match (&a.bearer, &a.login) {
                (Some(b), None) => match crate::config::env::resolve_secret(b, v.dir) {
                    Ok(s) if !s.is_empty() => bearer = Some(Secret::new(s)),
                    Ok(_) => {}
                    Err(e) => v.error(&format!("{p}.auth.bearer"), e),
                },
                (None, Some(l)) => {
                    login = Some(Login {
                        url: l.url.clone(),
                        token_pointer: l.token.clone().unwrap_or_else(|| "/token".into()),
                    })
                }
                _ => v.error(
                    &format!("{p}.auth"),
                    "give exactly one of `bearer` or `login`",
                ),
            }
        }
        if let Some(m) = &h.metric {
            v.catalogued(&format!("{p}.metric"), m);
        }
        for (g, ptr) in &h.gauges {
            let gp = format!("{p}.gauges.{g}");
            v.catalogued(&gp, g);
            if !ptr.starts_with('/') {
                v.error(
                    &gp,
                    format!("`{ptr}` is not a JSON pointer (write it like `/value`)"),
                );
            }
        }
        let max_latency = expect.and_then(|e| {
            v.duration(
                &format!("{p}.expect.max_latency"),
                e.max_latency.as_deref(),
                MAX_LATENCY,
            )
        });
        HttpCheck {
            name: h.name.clone(),
            method,
            url: h.url.clone(),
            service: h.service.clone(),
            headers: h.headers.clone(),
            json: h.json.clone(),
            bearer,
            login,
            expect_status: expect.and_then(|e| e.status),
            expect_json: expect.map(|e| e.json.clone()).unwrap_or_default(),
            expect_headers: expect.map(|e| e.headers.clone()).unwrap_or_default(),
            max_latency,
            metric: h.metric.clone(),
            gauges: h.gauges.clone(),
            schedule,
        }
    }

    /// Each run is a new trace: its requests to the target carry `traceparent` (see `probe`).
    async fn run(&self, cx: &Context<'_>, timeout: Duration) -> RunResult {
        let mut r = cx.begin(&self.name, Self::KIND);
        let trace = crate::trace::RunTrace::new(&self.name, cx.location, cx.target);
        r.trace_id = Some(trace.trace_id_hex());
        let base = cx.target.base_url.as_str().to_string();
        let stats = cx
            .http
            .run_traced(self, &base, Some(&trace), cx.vars, &mut r, timeout)
            .await;
        if let Some(reg) = cx.registry {
            self.record(reg, cx, &stats, &r);
        }
        r
    }
}

impl HttpCheck {
    /// The metrics an HTTP check writes besides its run's.
    fn record(&self, reg: &Registry, cx: &Context<'_>, stats: &HttpStats, r: &RunResult) {
        let service = self.service.as_deref().unwrap_or("-");
        if stats.rate_limit_hits > 0 {
            let _ = reg.incr(
                catalog::RATE_LIMIT_HITS.name,
                &[("check", &self.name), ("service", service)],
                stats.rate_limit_hits,
            );
        }
        if stats.server_errors > 0 {
            let _ = reg.incr(
                catalog::HTTP_ERRORS.name,
                &[
                    ("check", &self.name),
                    ("service", service),
                    ("status", "5xx"),
                ],
                stats.server_errors,
            );
        }
        let now = cx.clock.now();
        for (g, v) in &stats.gauges {
            let res = match v {
                Some(v) => reg.set_gauge(g, &[], *v, now),
                None => reg.mark_all_stale(g),
            };
            if let Err(e) = res {
                tracing::warn!(check = %self.name, metric = %g, error = %e, "gauge not recorded");
            }
        }
        if let Some(m) = &self.metric
            && r.outcome == Outcome::Pass
        {
            let res = reg.record(m, &[("location", cx.location)], r.slo_latency_ms(), now);
            if let Err(e) = res {
                tracing::warn!(check = %self.name, metric = %m, error = %e, "latency not recorded");
            }
        }
    }
}
