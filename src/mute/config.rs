//! `inhibit_rules:`, `maintenance_windows:`, `watchdog:` and `server.api_rate_limit` /
//! `server.auth` in `synmon.yaml`: raw shapes and their validation. Errors name the field path
//! (`inhibit_rules[0].equal[1]`); the config loader adds file and line.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use chrono::{NaiveTime, Weekday};
use serde::Deserialize;

use crate::config::Secret;
use crate::config::duration::{Bound, DAY, MINUTE};
use crate::notify::NotifyConfig;
use crate::rules::model::{Matcher, Matchers};

use super::auth::ApiAuth;
use super::inhibit::InhibitRule;
use super::maintenance::{MaintenanceWindow, Schedule};
use super::watchdog::WatchdogConfig;

/// A weekly window lasts from a minute to the whole week it repeats in.
const WEEKLY_DURATION: Bound = Bound::new("weekly window", MINUTE, DAY.saturating_mul(7));
/// The dead man's switch hears from synmon at least daily; under a second it is a flood.
const WATCHDOG_INTERVAL: Bound = Bound::new("watchdog interval", Duration::from_secs(1), DAY);

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawInhibitRule {
    /// Matchers written as in routes: `alertname: uptime_low`, `check: "=~align_.*"`.
    #[serde(default)]
    pub source_matchers: BTreeMap<String, String>,
    #[serde(default)]
    pub target_matchers: BTreeMap<String, String>,
    #[serde(default)]
    pub equal: Vec<String>,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawMaintenanceWindow {
    pub name: String,
    /// Labels of the alerts (and checks) it applies to; empty: everything.
    #[serde(default)]
    pub matchers: BTreeMap<String, String>,
    /// One-off: RFC 3339 instants (`2026-12-01T22:00:00Z`, `2026-12-01T23:00:00+01:00`).
    #[serde(default)]
    pub start: Option<String>,
    #[serde(default)]
    pub end: Option<String>,
    /// Recurring every week.
    #[serde(default)]
    pub weekly: Option<RawWeekly>,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawWeekly {
    /// `mon`, `tue`, ... (or full names).
    pub days: Vec<String>,
    /// Local start time, `HH:MM`.
    pub start: String,
    #[schemars(with = "crate::config::schema::Duration")]
    pub duration: String,
    /// An IANA time zone such as `Europe/Berlin`.
    pub time_zone: String,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawWatchdog {
    pub receiver: String,
    #[schemars(with = "crate::config::schema::Duration")]
    pub interval: String,
}

/// `server.auth`: how tokens for the mutating API are verified (one of the two).
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawApiAuth {
    /// A shared HS256 secret (`${SYNMON_JWT_SECRET}` or `file:...`).
    #[serde(default)]
    #[schemars(with = "Option<crate::config::schema::SecretText>")]
    pub hs256_secret: Option<String>,
    /// A PEM public key file (relative to the config file).
    #[serde(default)]
    pub public_key_file: Option<String>,
    /// The public key's algorithm (default RS256).
    #[serde(default)]
    pub algorithm: Option<String>,
}

/// The default per-client limit of the API, requests per minute.
pub const DEFAULT_API_RATE_LIMIT: u32 = 300;

/// Validated.
#[derive(Debug, Clone, Default)]
pub struct MuteConfig {
    pub inhibit_rules: Vec<InhibitRule>,
    pub maintenance_windows: Vec<MaintenanceWindow>,
    pub watchdog: Option<WatchdogConfig>,
    /// Requests per minute per client on `/api/`.
    pub api_rate_limit: u32,
    /// `None`: the mutating API answers 403.
    pub auth: Option<ApiAuth>,
    /// The HS256 secret (for the config's redactor).
    pub auth_secret: Option<Secret>,
}

fn matchers(
    p: &str,
    written: &BTreeMap<String, String>,
    err: &mut dyn FnMut(&str, String),
) -> Matchers {
    let mut out = Vec::new();
    for (label, value) in written {
        match Matcher::parse(label, value) {
            Ok(m) => out.push(m),
            Err(e) => err(&format!("{p}.{label}"), e),
        }
    }
    Matchers(out)
}

fn weekday(s: &str) -> Option<Weekday> {
    let s = s.to_ascii_lowercase();
    [
        ("mon", Weekday::Mon),
        ("tue", Weekday::Tue),
        ("wed", Weekday::Wed),
        ("thu", Weekday::Thu),
        ("fri", Weekday::Fri),
        ("sat", Weekday::Sat),
        ("sun", Weekday::Sun),
    ]
    .iter()
    .find(|(short, d)| s == *short || s == d.to_string().to_ascii_lowercase() || full(*d) == s)
    .map(|(_, d)| *d)
}

fn full(d: Weekday) -> &'static str {
    match d {
        Weekday::Mon => "monday",
        Weekday::Tue => "tuesday",
        Weekday::Wed => "wednesday",
        Weekday::Thu => "thursday",
        Weekday::Fri => "friday",
        Weekday::Sat => "saturday",
        Weekday::Sun => "sunday",
    }
}

fn instant(
    p: &str,
    v: &str,
    err: &mut dyn FnMut(&str, String),
) -> Option<chrono::DateTime<chrono::Utc>> {
    match chrono::DateTime::parse_from_rfc3339(v) {
        Ok(t) => Some(t.with_timezone(&chrono::Utc)),
        Err(e) => {
            err(
                p,
                format!("`{v}` is not an RFC 3339 time like 2026-12-01T22:00:00Z: {e}"),
            );
            None
        }
    }
}

#[allow(clippy::too_many_arguments)]
pub fn validate(
    inhibit: Vec<RawInhibitRule>,
    windows: Vec<RawMaintenanceWindow>,
    watchdog: Option<RawWatchdog>,
    rate_limit: Option<u32>,
    auth: Option<RawApiAuth>,
    notify: &mut NotifyConfig,
    dir: &Path,
    err: &mut dyn FnMut(&str, String),
) -> MuteConfig {
    let mut out = MuteConfig {
        api_rate_limit: rate_limit.unwrap_or(DEFAULT_API_RATE_LIMIT),
        ..MuteConfig::default()
    };
    if rate_limit == Some(0) {
        err(
            "server.api_rate_limit",
            "must be at least 1 request per minute".into(),
        );
        out.api_rate_limit = DEFAULT_API_RATE_LIMIT;
    }
    for (i, r) in inhibit.into_iter().enumerate() {
        let p = format!("inhibit_rules[{i}]");
        if r.source_matchers.is_empty() {
            err(
                &format!("{p}.source_matchers"),
                "name at least one label".into(),
            );
        }
        if r.target_matchers.is_empty() {
            err(
                &format!("{p}.target_matchers"),
                "name at least one label".into(),
            );
        }
        for (j, l) in r.equal.iter().enumerate() {
            if l.is_empty() || !l.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                err(
                    &format!("{p}.equal[{j}]"),
                    format!("`{l}` is not a label name"),
                );
            }
        }
        out.inhibit_rules.push(InhibitRule {
            source: matchers(&format!("{p}.source_matchers"), &r.source_matchers, err),
            target: matchers(&format!("{p}.target_matchers"), &r.target_matchers, err),
            equal: r.equal,
            hold: std::time::Duration::ZERO,
        });
    }
    let mut names = std::collections::BTreeSet::new();
    for (i, w) in windows.into_iter().enumerate() {
        let p = format!("maintenance_windows[{i}]");
        if w.name.trim().is_empty() {
            err(&format!("{p}.name"), "must not be empty".into());
        } else if !names.insert(w.name.clone()) {
            err(
                &format!("{p}.name"),
                format!("window `{}` is defined twice", w.name),
            );
        }
        let m = matchers(&format!("{p}.matchers"), &w.matchers, err);
        let schedule = match (&w.start, &w.end, w.weekly) {
            (Some(s), Some(e), None) => {
                let s = instant(&format!("{p}.start"), s, err);
                let e = instant(&format!("{p}.end"), e, err);
                match (s, e) {
                    (Some(s), Some(e)) if e > s => Some(Schedule::Once { start: s, end: e }),
                    (Some(_), Some(_)) => {
                        err(&format!("{p}.end"), "must be after `start`".into());
                        None
                    }
                    _ => None,
                }
            }
            (None, None, Some(wk)) => {
                let mut days = Vec::new();
                if wk.days.is_empty() {
                    err(&format!("{p}.weekly.days"), "name at least one day".into());
                }
                for (j, d) in wk.days.iter().enumerate() {
                    match weekday(d) {
                        Some(d) => days.push(d),
                        None => err(
                            &format!("{p}.weekly.days[{j}]"),
                            format!("`{d}` is not a day (mon, tue, wed, thu, fri, sat, sun)"),
                        ),
                    }
                }
                let start = NaiveTime::parse_from_str(&wk.start, "%H:%M").map_err(|_| {
                    err(
                        &format!("{p}.weekly.start"),
                        format!("`{}` is not a time like 22:30", wk.start),
                    )
                });
                let duration = match WEEKLY_DURATION.parse(&wk.duration) {
                    Ok(d) => chrono::Duration::from_std(d).ok(),
                    Err(e) => {
                        err(&format!("{p}.weekly.duration"), e);
                        None
                    }
                };
                let tz: Option<chrono_tz::Tz> = match wk.time_zone.parse() {
                    Ok(tz) => Some(tz),
                    Err(_) => {
                        err(
                            &format!("{p}.weekly.time_zone"),
                            format!(
                                "`{}` is not an IANA time zone like Europe/Berlin",
                                wk.time_zone
                            ),
                        );
                        None
                    }
                };
                match (start, duration, tz) {
                    (Ok(start), Some(duration), Some(tz)) => Some(Schedule::Weekly {
                        days,
                        start,
                        duration,
                        tz,
                    }),
                    _ => None,
                }
            }
            _ => {
                err(
                    &p,
                    "give either `start` and `end` (one-off) or `weekly` (recurring)".into(),
                );
                None
            }
        };
        if let Some(schedule) = schedule {
            out.maintenance_windows.push(MaintenanceWindow {
                name: w.name,
                matchers: m,
                schedule,
            });
        }
    }
    if let Some(wd) = watchdog {
        let interval = match WATCHDOG_INTERVAL.parse(&wd.interval) {
            Ok(d) => Some(d),
            Err(e) => {
                err("watchdog.interval", e);
                None
            }
        };
        if notify.receiver(&wd.receiver).is_none() {
            err(
                "watchdog.receiver",
                format!(
                    "unknown receiver `{}` (defined: {})",
                    wd.receiver,
                    notify
                        .receivers
                        .iter()
                        .map(|r| r.name())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            );
        } else if let Some(interval) = interval {
            let cfg = WatchdogConfig {
                receiver: wd.receiver,
                interval,
            };
            notify.route.routes.insert(0, super::watchdog::route(&cfg));
            out.watchdog = Some(cfg);
        }
    }
    if let Some(a) = auth {
        let secret = a.hs256_secret.as_deref().filter(|s| !s.is_empty());
        match (secret, &a.public_key_file) {
            (Some(_), Some(_)) => err(
                "server.auth",
                "set either `hs256_secret` or `public_key_file`, not both".into(),
            ),
            (Some(s), None) => match crate::config::env::resolve_secret(s, dir) {
                Ok(s) if s.len() < 32 => err(
                    "server.auth.hs256_secret",
                    "is shorter than 32 bytes (an HS256 key needs 256 bits)".into(),
                ),
                Ok(s) => {
                    out.auth = Some(ApiAuth::hs256(s.as_bytes()));
                    out.auth_secret = Some(Secret::new(s));
                }
                Err(e) => err("server.auth.hs256_secret", e),
            },
            (None, Some(f)) => {
                let path = dir.join(f);
                let alg = a.algorithm.as_deref().unwrap_or("RS256");
                use crate::config::file::{MAX_INPUT_BYTES, ReadError, read_bytes};
                match read_bytes(&path, MAX_INPUT_BYTES) {
                    Ok(pem) => match ApiAuth::public_key(&pem, alg) {
                        Ok(k) => out.auth = Some(k),
                        Err(e) => err("server.auth.public_key_file", e),
                    },
                    Err(ReadError::Io(e)) => err(
                        "server.auth.public_key_file",
                        format!("cannot read {}: {e}", path.display()),
                    ),
                    Err(e) => err("server.auth.public_key_file", format!("`{f}` {e}")),
                }
            }
            // An empty secret (an unset variable) leaves the mutating API disabled.
            (None, None) => {}
        }
    }
    out
}
