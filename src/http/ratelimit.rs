//! A per-client sliding-window rate limiter for `/api/` (the platform's R5 headers), the same
//! shape as the sandbox's: every API response carries `X-RateLimit-Limit`,
//! `X-RateLimit-Remaining` and `X-RateLimit-Reset` (Unix seconds when a slot frees), and a
//! refused request gets 429 with `Retry-After`. Time comes from the injected clock, so tests
//! move it instead of waiting.
//!
//! A client is its authenticated principal when it has one, its peer IP address otherwise
//! ([`client_key`]). Principals and addresses are separate budgets, so anonymous requests from
//! a shared address (a NAT, a proxy) never spend an authenticated client's. A principal keys
//! the limiter only once *verified* (the `server.auth_token` compared, a JWT's signature and
//! claims checked): a limiter keyed by an unverified subject could be dodged by inventing
//! subjects. Both checks are cheap next to the request they guard.

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};

use crate::clock::Clock;
use crate::config::Secret;
use crate::mute::auth::ApiAuth;
use crate::view::DaemonView;

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

/// Whom a request counts against: `principal:token` for the `server.auth_token` (Bearer or
/// Basic), `principal:jwt:<sub>` for an accepted JWT, `ip:<address>` otherwise (a wrong or
/// expired credential included).
pub fn client_key(
    headers: &HeaderMap,
    peer: Option<IpAddr>,
    auth_token: Option<&Secret>,
    jwt: Option<&ApiAuth>,
    now: DateTime<Utc>,
) -> String {
    if let Some(token) = auth_token
        && super::auth::authorize(headers, Some(token)).is_ok()
    {
        return "principal:token".into();
    }
    if let Some(jwt) = jwt {
        let authorization = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        if authorization.is_some()
            && let Ok(p) = jwt.verify(authorization, now)
        {
            return format!("principal:jwt:{}", p.subject);
        }
    }
    match peer {
        Some(ip) => format!("ip:{ip}"),
        None => "ip:unknown".into(),
    }
}

/// The middleware: limits and labels every `/api/` request; other paths pass untouched
/// (Prometheus scrapes and health probes must never be refused).
pub async fn layer(
    State((limiter, view)): State<(Arc<RateLimiter>, DaemonView)>,
    req: Request,
    next: Next,
) -> Response {
    if !req.uri().path().starts_with("/api/") {
        return next.run(req).await;
    }
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(a)| a.ip());
    let cfg = view.config();
    let client = client_key(
        req.headers(),
        peer,
        cfg.auth_token.as_ref(),
        cfg.mute.auth.as_ref(),
        view.now(),
    );
    let d = limiter.check(&client);
    if !d.allowed {
        tracing::debug!(%client, "API request over the rate limit");
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

    /// One address, two kinds of client: an anonymous flood spends the address's budget and
    /// gets refused; the `server.auth_token` holder and a JWT subject behind the same address
    /// keep theirs. A token with an invented subject (bad signature) or an expired one counts
    /// as the address. A minute later on the injected clock the address may ask again.
    #[test]
    fn keyed_by_verified_principal_else_by_address() {
        use jsonwebtoken::{EncodingKey, Header, encode};
        let t0 = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        let clock = ManualClock::new(t0);
        let rl = RateLimiter::new(5, Arc::new(clock.clone()));
        let token = Secret::new("0123456789abcdef-token");
        let secret = b"0123456789abcdef0123456789abcdef";
        let jwt = ApiAuth::hs256(secret);
        let sign = |sub: &str, exp: i64, key: &[u8]| {
            let claims = serde_json::json!({"sub": sub, "aud": "admin", "exp": exp});
            encode(&Header::default(), &claims, &EncodingKey::from_secret(key)).unwrap()
        };
        let ip: IpAddr = "10.0.0.7".parse().unwrap();
        let key = |bearer: Option<String>| {
            let mut h = HeaderMap::new();
            if let Some(b) = bearer {
                h.insert(
                    header::AUTHORIZATION,
                    format!("Bearer {b}").parse().unwrap(),
                );
            }
            client_key(&h, Some(ip), Some(&token), Some(&jwt), clock.now())
        };
        let n = t0.timestamp();
        assert_eq!(key(None), "ip:10.0.0.7");
        assert_eq!(
            key(Some("0123456789abcdef-token".into())),
            "principal:token"
        );
        assert_eq!(
            key(Some(sign("alice", n + 600, secret))),
            "principal:jwt:alice"
        );
        assert_eq!(
            key(Some(sign(
                "mallory",
                n + 600,
                b"invented-invented-invented-12345"
            ))),
            "ip:10.0.0.7",
            "an unverified subject is not a principal"
        );
        assert_eq!(key(Some(sign("alice", n - 1, secret))), "ip:10.0.0.7");
        assert_eq!(key(Some("wrong-token-0123456789".into())), "ip:10.0.0.7");

        let anonymous: Vec<bool> = (0..50).map(|_| rl.check(&key(None)).allowed).collect();
        assert_eq!(anonymous.iter().filter(|a| **a).count(), 5);
        for _ in 0..5 {
            assert!(
                rl.check(&key(Some("0123456789abcdef-token".into())))
                    .allowed
            );
            assert!(rl.check(&key(Some(sign("alice", n + 600, secret)))).allowed);
        }
        let forged = sign("eve", n + 600, b"invented-invented-invented-12345");
        assert!(
            !rl.check(&key(Some(forged))).allowed,
            "a forged subject shares the exhausted address budget"
        );
        clock.advance(chrono::Duration::seconds(60));
        assert!(rl.check(&key(None)).allowed);
    }
}
