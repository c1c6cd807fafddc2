//! A per-client sliding-window rate limiter for `/api/` (the platform's R5 headers), the same
//! shape as the sandbox's: every API response carries `X-RateLimit-Limit`,
//! `X-RateLimit-Remaining` and `X-RateLimit-Reset` (Unix seconds when a slot frees), and a
//! refused request gets 429 with `Retry-After`. Time comes from the injected clock, so tests
//! move it instead of waiting.
//!
//! A client is its peer IP address: tokens are only checked by the handlers that need them,
//! and a limiter keyed by an unverified token subject could be dodged by inventing subjects.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};

use crate::clock::Clock;

pub const WINDOW_SECS: i64 = 60;

/// The limiter's answer for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    pub limit: u32,
    pub remaining: u32,
    pub reset_unix: i64,
    pub retry_after_secs: u64,
}

#[derive(Debug)]
pub struct RateLimiter {
    limit: u32,
    clock: Arc<dyn Clock>,
    clients: Mutex<HashMap<String, VecDeque<DateTime<Utc>>>>,
}

impl RateLimiter {
    pub fn new(limit_per_minute: u32, clock: Arc<dyn Clock>) -> RateLimiter {
        RateLimiter {
            limit: limit_per_minute.max(1),
            clock,
            clients: Mutex::new(HashMap::new()),
        }
    }

    /// Counts one request for `client` if it is within the limit.
    pub fn check(&self, client: &str) -> Decision {
        let now = self.clock.now();
        let window = chrono::Duration::seconds(WINDOW_SECS);
        let mut map = self.clients.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() > 10_000 {
            map.retain(|_, q| q.back().is_some_and(|t| now - *t < window));
        }
        let q = map.entry(client.to_string()).or_default();
        while q.front().is_some_and(|t| now - *t >= window) {
            q.pop_front();
        }
        let allowed = (q.len() as u32) < self.limit;
        if allowed {
            q.push_back(now);
        }
        let until_free = q
            .front()
            .map(|t| window - (now - *t))
            .unwrap_or(window)
            .max(chrono::Duration::zero());
        let secs = until_free.num_seconds() + i64::from(until_free.subsec_nanos() > 0);
        Decision {
            allowed,
            limit: self.limit,
            remaining: self.limit.saturating_sub(q.len() as u32),
            reset_unix: now.timestamp() + secs,
            retry_after_secs: secs.max(1) as u64,
        }
    }
}

fn headers(resp: &mut Response, d: &Decision) {
    let h = resp.headers_mut();
    h.insert(
        HeaderName::from_static("x-ratelimit-limit"),
        HeaderValue::from(d.limit),
    );
    h.insert(
        HeaderName::from_static("x-ratelimit-remaining"),
        HeaderValue::from(d.remaining),
    );
    h.insert(
        HeaderName::from_static("x-ratelimit-reset"),
        HeaderValue::from(d.reset_unix),
    );
}

/// The middleware: limits and labels every `/api/` request; other paths pass untouched
/// (Prometheus scrapes and health probes must never be refused).
pub async fn layer(State(limiter): State<Arc<RateLimiter>>, req: Request, next: Next) -> Response {
    if !req.uri().path().starts_with("/api/") {
        return next.run(req).await;
    }
    let client = match req.extensions().get::<ConnectInfo<SocketAddr>>() {
        Some(ConnectInfo(a)) => format!("ip:{}", a.ip()),
        None => "ip:unknown".into(),
    };
    let d = limiter.check(&client);
    if !d.allowed {
        let mut resp = (
            StatusCode::TOO_MANY_REQUESTS,
            axum::Json(serde_json::json!({
                "error": format!("rate limit exceeded: {} requests per minute", d.limit),
            })),
        )
            .into_response();
        headers(&mut resp, &d);
        resp.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(d.retry_after_secs));
        return resp;
    }
    let mut resp = next.run(req).await;
    headers(&mut resp, &d);
    resp
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;

    #[test]
    fn sliding_window_on_the_injected_clock() {
        let t0 = DateTime::from_timestamp(1_000, 0).unwrap();
        let clock = ManualClock::new(t0);
        let rl = RateLimiter::new(3, Arc::new(clock.clone()));
        for left in [2, 1, 0] {
            let d = rl.check("a");
            assert!(d.allowed);
            assert_eq!(d.remaining, left);
            assert_eq!(d.reset_unix, 1060);
        }
        let d = rl.check("a");
        assert!(!d.allowed);
        assert_eq!(d.retry_after_secs, 60);
        assert!(rl.check("b").allowed, "clients are independent");
        clock.advance(chrono::Duration::seconds(30));
        let d = rl.check("a");
        assert!(!d.allowed);
        assert_eq!(d.retry_after_secs, 30);
        clock.advance(chrono::Duration::seconds(31));
        let d = rl.check("a");
        assert!(d.allowed);
        assert_eq!(d.remaining, 2);
    }
}
