//! HTTP API checks: one request (after a login when configured), assertions on status, JSON,
//! headers and latency; 429s honour `Retry-After` within the check's timeout. Every 429 is
//! counted as a rate-limit hit.
//!
//! A 5xx answer or an unreachable target ends the attempt at once: the scheduler's
//! `retry_on_failure` is the one retry layer. Backing off inside the attempt as well (the
//! platform's client policy, 1 + 2 + 4 + 8 s) made every failing attempt last ~17 s, so
//! during an outage attempt, retest delay and retest overran the interval and every other
//! slot was skipped: the target was sampled half as often exactly while it was failing, and
//! each sample sent five requests to a target already in trouble. A rate limit is different:
//! the target is up and says when to come back, so waiting for it is part of the attempt.
//!
//! Every request of a traced run carries `traceparent` and `tracestate` when its URL's origin
//! is the target's (or one of its `trace_origins`): its parent span is the step the request
//! becomes (the index it will have in the run's steps), so the target's server span hangs
//! under synmon's client span. A URL elsewhere (an absolute `url:` to a third party) gets none.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use serde_json::Value;
use tokio::time::Instant;

use super::HttpCheck;
use crate::config::{Redactor, Secret, Target};
use crate::outcome::Outcome;
use crate::probes::backoff;
use crate::run::{RunResult, StepResult, Timing};
use crate::template::render_json;
use crate::template::{Template, Vars};
use crate::trace::RunTrace;

/// What one HTTP check attempt saw besides its result (fed to counters by the recorder).
#[derive(Debug, Default, Clone, PartialEq)]
pub struct HttpStats {
    pub rate_limit_hits: u64,
    /// Responses >= 500 seen.
    pub server_errors: u64,
    /// Gauges read from the response (`None`: missing or not a number, so stale).
    pub gauges: Vec<(String, Option<f64>)>,
}

pub struct HttpProber {
    client: reqwest::Client,
    /// Tokens from login requests, per check: reused until the target says 401.
    tokens: Mutex<HashMap<String, Secret>>,
}

impl HttpProber {
    /// `reuse_connections: false` opens a new connection per request (like blackbox_exporter).
    pub fn new(reuse_connections: bool) -> Self {
        crate::tls::install();
        let mut b =
            reqwest::Client::builder().user_agent(concat!("synmon/", env!("CARGO_PKG_VERSION")));
        if !reuse_connections {
            b = b.pool_max_idle_per_host(0);
        }
        Self {
            client: b.build().expect("HTTP client"),
            tokens: Mutex::new(HashMap::new()),
        }
    }

    /// Runs one attempt of `check` against `base_url`; `vars` carry tenant and credentials.
    /// When `run` has a trace id, requests to `base_url`'s origin carry it.
    pub async fn run(
        &self,
        check: &HttpCheck,
        base_url: &str,
        vars: &Vars,
        run: &mut RunResult,
        timeout: Duration,
    ) -> HttpStats {
        let trace = reqwest::Url::parse(base_url).ok().and_then(|u| {
            let target = Target {
                name: run.target.clone(),
                base_url: u,
                trace_origins: Vec::new(),
            };
            RunTrace::of(run.trace_id.as_deref(), &check.name, &run.location, &target)
        });
        self.run_traced(check, base_url, trace.as_ref(), vars, run, timeout)
            .await
    }

    /// [`HttpProber::run`] with the run's trace context: requests to an origin it allows carry
    /// its headers (`None`: no request does).
    pub async fn run_traced(
        &self,
        check: &HttpCheck,
        base_url: &str,
        trace: Option<&RunTrace>,
        vars: &Vars,
        run: &mut RunResult,
        timeout: Duration,
    ) -> HttpStats {
        let deadline = Instant::now() + timeout;
        let mut stats = HttpStats::default();
        let mut redactor = Redactor::default();
        for s in vars.secrets() {
            redactor.add(s);
        }
        let res = self
            .attempt(
                check,
                base_url,
                vars,
                run,
                Sending {
                    deadline,
                    trace,
                    stats: &mut stats,
                },
                &redactor,
            )
            .await;
        if let Err(e) = res {
            run.outcome = e.0;
            run.error = Some(redactor.redact(&e.1));
            run.failed_step = run.steps.last().map(|s| s.name.clone());
        }
        run.total_ms = run.steps.iter().map(|s| s.latency_ms).sum();
        run.timed_latency_ms = run
            .steps
            .iter()
            .filter(|s| s.timed)
            .map(|s| s.latency_ms)
            .sum();
        stats
    }

    async fn attempt(
        &self,
        check: &HttpCheck,
        base_url: &str,
        vars: &Vars,
        run: &mut RunResult,
        mut sending: Sending<'_>,
        redactor: &Redactor,
    ) -> Result<(), (Outcome, String)> {
        let render = |s: &str| -> Result<String, (Outcome, String)> {
            Template::parse(s)
                .and_then(|t| t.render(vars))
                .map_err(|e| (Outcome::Error, e))
        };
        let url = absolute(base_url, &render(&check.url)?);
        let mut relogged = false;
        loop {
            let token = match (&check.bearer, &check.login) {
                (Some(b), _) => Some(b.clone()),
                (None, Some(login)) => {
                    let cached = self
                        .tokens
                        .lock()
                        .expect("tokens")
                        .get(&check.name)
                        .cloned();
                    match cached {
                        Some(t) => Some(t),
                        None => {
                            let t = self
                                .login(
                                    check,
                                    base_url,
                                    &render(&login.url)?,
                                    &login.token_pointer,
                                    vars,
                                    run,
                                    &mut sending,
                                )
                                .await?;
                            self.tokens
                                .lock()
                                .expect("tokens")
                                .insert(check.name.clone(), t.clone());
                            Some(t)
                        }
                    }
                }
                (None, None) => None,
            };
            let mut req = self.client.request(check.method.clone(), &url);
            for (k, v) in &check.headers {
                req = req.header(k, render(v)?);
            }
            if let Some(t) = &token {
                req = req.bearer_auth(t.expose());
            }
            if let Some(body) = &check.json {
                req = req.json(&render_json(body, vars).map_err(|e| (Outcome::Error, e))?);
            }
            let name = format!("{} {}", check.method, path_of(&url));
            let (status, headers, body, took) = send(req, &url, &name, &mut sending, run).await?;
            if status == 401 && check.login.is_some() && !relogged {
                // The cached token expired: log in again once.
                self.tokens.lock().expect("tokens").remove(&check.name);
                relogged = true;
                continue;
            }
            let fail = |m: String| Err((Outcome::Fail, format!("{name}: {m}")));
            let ok_status = match check.expect_status {
                Some(s) => s == status,
                None => (200..300).contains(&status),
            };
            let result = if !ok_status {
                let snippet: String = redactor.redact(&body).chars().take(200).collect();
                fail(format!(
                    "HTTP {status}{} {snippet}",
                    check
                        .expect_status
                        .map(|s| format!(" (expected {s})"))
                        .unwrap_or_default()
                ))
            } else if let Some(err) = {
                sending.stats.gauges = read_gauges(check, &body);
                check_body(check, &headers, &body, vars)
            } {
                fail(err)
            } else if let Some(max) = check.max_latency
                && took > max
            {
                fail(format!(
                    "took {} ms, more than the {} ms allowed",
                    took.as_millis(),
                    max.as_millis()
                ))
            } else {
                Ok(())
            };
            let step_outcome = if result.is_ok() {
                Outcome::Pass
            } else {
                Outcome::Fail
            };
            run.steps.push(StepResult {
                name,
                action: "http".into(),
                latency_ms: took.as_secs_f64() * 1000.0,
                timed: true,
                timing: Timing::Outside,
                navigation: None,
                outcome: step_outcome,
                error: result.as_ref().err().map(|e| redactor.redact(&e.1)),
            });
            return result;
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn login(
        &self,
        check: &HttpCheck,
        base_url: &str,
        login_url: &str,
        pointer: &str,
        vars: &Vars,
        run: &mut RunResult,
        sending: &mut Sending<'_>,
    ) -> Result<Secret, (Outcome, String)> {
        let url = absolute(base_url, login_url);
        let body = serde_json::json!({
            "email": vars.get("username").unwrap_or_default(),
            "password": vars.get("password").unwrap_or_default(),
        });
        let req = self.client.post(&url).json(&body);
        let name = format!("login {}", path_of(&url));
        let (status, _, text, took) = send(req, &url, &name, sending, run).await?;
        let token = if (200..300).contains(&status) {
            serde_json::from_str::<Value>(&text).ok().and_then(|v| {
                v.pointer(pointer)
                    .and_then(Value::as_str)
                    .map(str::to_string)
            })
        } else {
            None
        };
        let error = match (&token, status) {
            (Some(_), _) => None,
            (None, s) if (200..300).contains(&s) => {
                Some(format!("{name}: no token at {pointer} in the response"))
            }
            (None, s) => Some(format!("{name}: HTTP {s}")),
        };
        run.steps.push(StepResult {
            name: name.clone(),
            action: "http".into(),
            latency_ms: took.as_secs_f64() * 1000.0,
            timed: false,
            timing: Timing::Outside,
            navigation: None,
            outcome: if error.is_none() {
                Outcome::Pass
            } else {
                Outcome::Fail
            },
            error: error.clone(),
        });
        let _ = check;
        match (token, error) {
            (Some(t), _) => Ok(Secret::new(t)),
            (None, e) => Err((Outcome::Fail, e.unwrap_or_default())),
        }
    }
}

/// What every request of one attempt shares: its deadline, the run's trace context and the
/// attempt's counts.
struct Sending<'a> {
    deadline: Instant,
    trace: Option<&'a RunTrace>,
    stats: &'a mut HttpStats,
}

/// Sends once, and again only after a 429: its `Retry-After` (else the platform's backoff) is
/// waited, at most 5 tries in all and never past the deadline. A 5xx answer is returned as it
/// is and a connection error fails the attempt: the scheduler retests (see the module doc).
/// Each try carries the trace headers (when `url` is allowed) with the step it becomes as the
/// parent span. Returns the last response.
async fn send(
    req: reqwest::RequestBuilder,
    url: &str,
    name: &str,
    sending: &mut Sending<'_>,
    run: &mut RunResult,
) -> Result<(u16, reqwest::header::HeaderMap, String, Duration), (Outcome, String)> {
    let deadline = sending.deadline;
    let stats = &mut *sending.stats;
    let mut attempt = 0u32;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err((
                Outcome::Fail,
                format!("{name}: no response before the check's timeout"),
            ));
        }
        let r = req
            .try_clone()
            .ok_or_else(|| (Outcome::Error, "request body cannot be retried".to_string()))?
            .timeout(left);
        // This try becomes the next step (a 429 pushes its own "(retried)" step first).
        let r = match sending.trace {
            Some(t) => t.apply(r, url, t.step_span_id(run.steps.len())),
            None => r,
        };
        let t = Instant::now();
        let sent = r.send().await;
        let (status, headers, body) = match sent {
            Ok(resp) => {
                let status = resp.status().as_u16();
                let headers = resp.headers().clone();
                match resp.text().await {
                    Ok(b) => (status, headers, b),
                    Err(e) => {
                        return Err((Outcome::Fail, format!("{name}: reading the body: {e}")));
                    }
                }
            }
            Err(e) if e.is_timeout() => {
                return Err((
                    Outcome::Fail,
                    format!("{name}: no response within {} ms", left.as_millis()),
                ));
            }
            Err(e) => {
                // Connection refused or reset: the target is unreachable.
                return Err((Outcome::Fail, format!("{name}: {}", without_url(&e))));
            }
        };
        let took = t.elapsed();
        if status >= 500 {
            stats.server_errors += 1;
        }
        let retry_wait = (status == 429).then(|| {
            stats.rate_limit_hits += 1;
            backoff::retry_after(&headers).unwrap_or_else(|| backoff::delay_random(attempt))
        });
        attempt += 1;
        match retry_wait {
            Some(wait) if attempt < backoff::MAX_ATTEMPTS && Instant::now() + wait < deadline => {
                tracing::debug!(
                    status,
                    wait_ms = crate::config::duration::millis_u64(wait),
                    "rate limited: retrying after the wait it asked for"
                );
                run.steps.push(StepResult {
                    name: format!("{name} (retried)"),
                    action: "http".into(),
                    latency_ms: took.as_secs_f64() * 1000.0,
                    timed: false,
                    timing: Timing::Outside,
                    navigation: None,
                    outcome: Outcome::Fail,
                    error: Some(format!(
                        "HTTP {status}; retrying in {} ms",
                        wait.as_millis()
                    )),
                });
                tokio::time::sleep(wait).await;
            }
            _ => return Ok((status, headers, body, took)),
        }
    }
}

/// The configured gauges from a JSON body (numbers, or numeric strings).
fn read_gauges(check: &HttpCheck, body: &str) -> Vec<(String, Option<f64>)> {
    if check.gauges.is_empty() {
        return Vec::new();
    }
    let json: Option<Value> = serde_json::from_str(body).ok();
    check
        .gauges
        .iter()
        .map(|(name, ptr)| {
            let v = json.as_ref().and_then(|j| j.pointer(ptr)).and_then(|v| {
                v.as_f64()
                    .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
            });
            (name.clone(), v)
        })
        .collect()
}

fn check_body(
    check: &HttpCheck,
    headers: &reqwest::header::HeaderMap,
    body: &str,
    vars: &Vars,
) -> Option<String> {
    for (h, want) in &check.expect_headers {
        let got = headers.get(h.as_str()).and_then(|v| v.to_str().ok());
        if got != Some(want.as_str()) && !(want == "*" && got.is_some()) {
            return Some(format!("header {h} is {got:?}, expected {want:?}"));
        }
    }
    if check.expect_json.is_empty() {
        return None;
    }
    let json: Value = match serde_json::from_str(body) {
        Ok(v) => v,
        Err(e) => return Some(format!("response is not JSON: {e}")),
    };
    for (ptr, want) in &check.expect_json {
        let want = match render_json(want, vars) {
            Ok(w) => w,
            Err(e) => return Some(e),
        };
        let got = json.pointer(ptr).cloned().unwrap_or(Value::Null);
        if got != want {
            return Some(format!("{ptr} is {got}, expected {want}"));
        }
    }
    None
}

fn absolute(base: &str, url: &str) -> String {
    if url.starts_with("http://") || url.starts_with("https://") {
        url.to_string()
    } else {
        format!(
            "{}/{}",
            base.trim_end_matches('/'),
            url.trim_start_matches('/')
        )
    }
}

fn path_of(url: &str) -> String {
    reqwest::Url::parse(url)
        .map(|u| u.path().to_string())
        .unwrap_or_else(|_| url.to_string())
}

/// reqwest errors quote the URL, which may carry credentials in its query; keep the cause.
fn without_url(e: &reqwest::Error) -> String {
    let mut src: Option<&dyn std::error::Error> = std::error::Error::source(e);
    let mut last = None;
    while let Some(s) = src {
        last = Some(s.to_string());
        src = s.source();
    }
    last.unwrap_or_else(|| "request failed".into())
}
