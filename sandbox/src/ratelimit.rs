//! A per-client sliding-window rate limiter (one minute window).

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

pub const WINDOW: Duration = Duration::from_secs(60);

/// The limiter's answer for one request, rendered as the `X-RateLimit-Limit`,
/// `-Remaining` and `-Reset` headers (and `Retry-After` when refused).
#[derive(Debug, Clone, Copy)]
pub struct Decision {
    pub allowed: bool,
    pub limit: u32,
    pub remaining: u32,
    /// Unix seconds when the window frees a slot again.
    pub reset_unix: i64,
    /// Seconds until a request would be allowed (only meaningful when refused).
    pub retry_after_secs: u64,
}

pub struct RateLimiter {
    limit: u32,
    clients: Mutex<HashMap<String, VecDeque<Instant>>>,
}

impl RateLimiter {
    pub fn new(limit_per_minute: u32) -> RateLimiter {
        RateLimiter {
            limit: limit_per_minute.max(1),
            clients: Mutex::new(HashMap::new()),
        }
    }

    pub fn limit(&self) -> u32 {
        self.limit
    }

    /// Counts one request for `client` if it is within the limit.
    pub fn check(&self, client: &str) -> Decision {
        self.check_at(client, Instant::now(), chrono::Utc::now().timestamp())
    }

    /// [`RateLimiter::check`] at a given monotonic and wall-clock time.
    pub fn check_at(&self, client: &str, now: Instant, now_unix: i64) -> Decision {
        let mut map = match self.clients.lock() {
            Ok(m) => m,
            Err(poisoned) => poisoned.into_inner(),
        };
        if map.len() > 10_000 {
            map.retain(|_, q| q.back().is_some_and(|t| now.duration_since(*t) < WINDOW));
        }
        let q = map.entry(client.to_string()).or_default();
        while q.front().is_some_and(|t| now.duration_since(*t) >= WINDOW) {
            q.pop_front();
        }
        let allowed = (q.len() as u32) < self.limit;
        if allowed {
            q.push_back(now);
        }
        let until_free = q
            .front()
            .map(|t| WINDOW.saturating_sub(now.duration_since(*t)))
            .unwrap_or(WINDOW);
        let secs = until_free.as_secs() + u64::from(until_free.subsec_nanos() > 0);
        Decision {
            allowed,
            limit: self.limit,
            remaining: self.limit.saturating_sub(q.len() as u32),
            reset_unix: now_unix + secs as i64,
            retry_after_secs: secs.max(1),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sliding_window() {
        let rl = RateLimiter::new(3);
        let t0 = Instant::now();
        for left in [2, 1, 0] {
            let d = rl.check_at("a", t0, 1000);
            assert!(d.allowed);
            assert_eq!(d.remaining, left);
            assert_eq!(d.reset_unix, 1060);
        }
        let d = rl.check_at("a", t0, 1000);
        assert!(!d.allowed);
        assert_eq!(d.retry_after_secs, 60);
        assert!(
            rl.check_at("b", t0, 1000).allowed,
            "clients are independent"
        );
        let d = rl.check_at("a", t0 + Duration::from_secs(30), 1030);
        assert!(!d.allowed);
        assert_eq!(d.retry_after_secs, 30);
        let d = rl.check_at("a", t0 + Duration::from_secs(61), 1061);
        assert!(d.allowed);
        assert_eq!(
            d.remaining, 2,
            "all three old requests expired, the new one counts"
        );
    }
}
