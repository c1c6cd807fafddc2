//! Captured logins: the cookies a run's login steps left, which later runs may set in their
//! fresh browser context instead of logging in again (a journey's `reuse_session`).
//!
//! A login is most of what a browser journey costs (its page loads, form post and redirect, a
//! third of the WebDriver commands of the RVP journeys) and rarely what it measures. Like
//! Playwright's `storageState`, a login done once stands in for the next ones; unlike it, the
//! stand-in has an age limit (the login itself is still done, and so monitored, at least once
//! per `max_age`) and is dropped as soon as a run that used it fails, so that an expired or
//! revoked session costs one failed run at most, and the run after it logs in again.
//!
//! The cookies are secrets: they are kept in memory only, never logged, stored or exported,
//! and set only into synmon's own browser contexts. A replica that restarts logs in again.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::Value;

/// The logins captured by one runner, by [`key`].
#[derive(Default)]
pub struct Sessions {
    by_key: Mutex<HashMap<String, Captured>>,
}

struct Captured {
    cookies: Vec<Value>,
    at: DateTime<Utc>,
}

// By hand: the cookies are secrets and must never reach a log line through `{:?}`.
impl std::fmt::Debug for Sessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = self.by_key.lock().map(|m| m.len()).unwrap_or_default();
        f.debug_struct("Sessions").field("captured", &n).finish()
    }
}

/// Which login a session is: the login's file, the target (by its URL, which a reload may
/// change under the same name) and the user it logged in as.
pub fn key(login: &str, base_url: &str, user: Option<&str>) -> String {
    format!("{login}\n{base_url}\n{}", user.unwrap_or_default())
}

impl Sessions {
    /// The cookies captured for `key` less than `max_age` before `now`, none of which has
    /// expired by then (a cookie's `expiry`, in seconds since the epoch): a login whose cookie
    /// the browser would drop is not reused, rather than failing the run that would try.
    pub fn fresh(&self, key: &str, now: DateTime<Utc>, max_age: Duration) -> Option<Session> {
        let map = self.by_key.lock().expect("sessions lock");
        let c = map.get(key)?;
        let age = (now - c.at).to_std().unwrap_or_default();
        let expired = c
            .cookies
            .iter()
            .filter_map(|k| k["expiry"].as_f64())
            .any(|e| e <= now.timestamp() as f64);
        (age < max_age && !expired).then(|| Session {
            cookies: c.cookies.clone(),
            at: c.at,
        })
    }

    /// Keeps `cookies` as `key`'s session from `at`, replacing the one before.
    pub fn capture(&self, key: &str, cookies: Vec<Value>, at: DateTime<Utc>) {
        self.by_key
            .lock()
            .expect("sessions lock")
            .insert(key.to_string(), Captured { cookies, at });
    }

    /// Drops `key`'s session captured at `at` (not one another run captured since): the
    /// next run logs in.
    pub fn forget(&self, key: &str, at: DateTime<Utc>) {
        let mut map = self.by_key.lock().expect("sessions lock");
        if map.get(key).is_some_and(|c| c.at == at) {
            map.remove(key);
        }
    }
}

/// A captured login, as a run reuses it.
pub struct Session {
    pub cookies: Vec<Value>,
    /// When it was captured: what [`Sessions::forget`] drops.
    pub at: DateTime<Utc>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_session_stands_in_until_it_is_max_age_old_or_forgotten() {
        let s = Sessions::default();
        let t0 = DateTime::parse_from_rfc3339("2026-12-07T10:00:00Z")
            .unwrap()
            .to_utc();
        let k = key("/j/_login.yaml", "http://127.0.0.1:3000/", Some("qa"));
        let ten = Duration::from_secs(600);
        let cookies = |s: &Sessions, now| s.fresh(&k, now, ten).map(|x| x.cookies);
        assert_eq!(cookies(&s, t0), None);
        s.capture(&k, vec![json!({"name": "sid"})], t0);
        let at = |secs| t0 + chrono::Duration::seconds(secs);
        assert_eq!(cookies(&s, at(599)), Some(vec![json!({"name": "sid"})]));
        assert_eq!(cookies(&s, at(600)), None);
        // Another user's (or target's) login is another session.
        let other = key("/j/_login.yaml", "http://127.0.0.1:3000/", Some("ops"));
        assert!(s.fresh(&other, at(1), ten).is_none());
        // A run that used an older capture does not drop a newer one.
        s.forget(&k, at(-5));
        assert!(cookies(&s, at(1)).is_some());
        s.forget(&k, t0);
        assert_eq!(cookies(&s, at(1)), None);
    }

    #[test]
    fn a_session_with_an_expired_cookie_is_not_reused() {
        let s = Sessions::default();
        let t0 = DateTime::parse_from_rfc3339("2026-12-07T10:00:00Z")
            .unwrap()
            .to_utc();
        let expiry = t0.timestamp() + 60;
        s.capture(
            "k",
            vec![
                json!({"name": "sid", "expiry": expiry}),
                json!({"name": "pref"}),
            ],
            t0,
        );
        let hour = Duration::from_secs(3600);
        assert!(
            s.fresh("k", t0 + chrono::Duration::seconds(59), hour)
                .is_some()
        );
        assert!(
            s.fresh("k", t0 + chrono::Duration::seconds(60), hour)
                .is_none()
        );
    }

    #[test]
    fn its_debug_form_shows_no_cookie() {
        let s = Sessions::default();
        s.capture(
            "k",
            vec![json!({"name": "sid", "value": "s3cret"})],
            Utc::now(),
        );
        let shown = format!("{s:?}");
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(shown.contains("captured: 1"), "{shown}");
    }
}
