//! The registry model and its load-time policy: `flag_registry.yaml` -> [`Registry`], every
//! violation with file, line and field path.

use std::collections::BTreeMap;
use std::path::PathBuf;

use chrono::{DateTime, Months, NaiveDate, Utc};
use serde::Deserialize;
use yaml_serde::Value;

use crate::config::diag::Diagnostic;
use crate::config::span::{join_index, join_key};
use crate::config::yaml::YamlDoc;

/// The longest a flag may live: `expires` at most this many calendar months after `created`.
pub const MAX_MONTHS: u32 = 6;

/// A flag's lifecycle state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum State {
    /// Testing with select tenants.
    Pilot,
    /// Enabled in production.
    Active,
    /// Scheduled for removal.
    Deprecated,
    /// Cleaned up from the codebase.
    Removed,
}

impl State {
    pub const ALL: [State; 4] = [
        State::Pilot,
        State::Active,
        State::Deprecated,
        State::Removed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            State::Pilot => "pilot",
            State::Active => "active",
            State::Deprecated => "deprecated",
            State::Removed => "removed",
        }
    }

    fn parse(s: &str) -> Option<State> {
        State::ALL.into_iter().find(|st| st.as_str() == s)
    }
}

/// One flag of the registry, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flag {
    pub key: String,
    pub owner: String,
    pub created: NaiveDate,
    /// `None` only for `removed` flags.
    pub expires: Option<NaiveDate>,
    pub state: State,
    pub description: String,
    /// Where it is declared, `file:line`.
    pub origin: String,
}

impl Flag {
    /// Whole days from `at` to the expiry (negative: expired that many days ago); the flag
    /// expires at the start (00:00 UTC) of its `expires` day.
    pub fn days_to_expiry(&self, at: NaiveDate) -> Option<i64> {
        self.expires.map(|e| (e - at).num_days())
    }

    /// Time left until the expiry in days, fractional, at the instant `now` (negative once
    /// expired): what `synmon.flag.expiry_days` carries.
    pub fn days_left(&self, now: DateTime<Utc>) -> Option<f64> {
        self.expires.map(|e| {
            let at = e.and_time(chrono::NaiveTime::MIN).and_utc();
            (at - now).num_milliseconds() as f64 / 86_400_000.0
        })
    }
}

/// Every flag of every registry file, in file order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Registry {
    pub flags: Vec<Flag>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    flags: Vec<Value>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFlag {
    key: String,
    #[serde(default)]
    owner: Option<String>,
    created: String,
    #[serde(default)]
    expires: Option<String>,
    status: String,
    #[serde(default)]
    description: Option<String>,
}

/// Loads the registry files into one registry, checking the policy; keys are unique across
/// files. `today` is what "in the future" means for a `removed` flag's expiry.
pub fn load_files(files: &[PathBuf], today: NaiveDate) -> (Registry, Vec<Diagnostic>) {
    let mut reg = Registry::default();
    let mut errors = Vec::new();
    let mut seen: BTreeMap<String, String> = BTreeMap::new();
    for f in files {
        let mut file_errors = Vec::new();
        load_one(f, today, &mut reg, &mut seen, &mut file_errors);
        file_errors.sort_by_key(|d| d.pos.map(|p| (p.line, p.col)));
        errors.append(&mut file_errors);
    }
    (reg, errors)
}

fn load_one(
    f: &std::path::Path,
    today: NaiveDate,
    reg: &mut Registry,
    seen: &mut BTreeMap<String, String>,
    errors: &mut Vec<Diagnostic>,
) {
    let doc = match YamlDoc::read_expecting(f, "a flag registry: a YAML map with `flags:`") {
        Ok(d) => d,
        Err(d) => return errors.push(d),
    };
    let raw: RawFile = match doc.deserialize_at(&doc.value, "") {
        Ok(r) => r,
        Err(d) => return errors.push(d),
    };
    for (i, value) in raw.flags.iter().enumerate() {
        let base = join_index("flags", i);
        match doc.deserialize_at::<RawFlag>(value, &base) {
            Ok(r) => {
                if let Some(flag) = validate(&doc, &base, r, today, seen, errors) {
                    reg.flags.push(flag);
                }
            }
            Err(d) => errors.push(d),
        }
    }
}

fn validate(
    doc: &YamlDoc,
    base: &str,
    r: RawFlag,
    today: NaiveDate,
    seen: &mut BTreeMap<String, String>,
    errors: &mut Vec<Diagnostic>,
) -> Option<Flag> {
    let n = errors.len();
    let mut err = |field: &str, m: String| errors.push(doc.diag(&join_key(base, field), m));
    let origin = match doc.map.locate(base) {
        Some(p) => format!("{}:{}", doc.file, p.line),
        None => doc.file.clone(),
    };
    let key = r.key.trim().to_string();
    if key.is_empty() {
        err("key", "must not be empty".into());
    } else if let Some(first) = seen.get(&key) {
        err("key", format!("duplicate flag `{key}` (first at {first})"));
    } else {
        seen.insert(key.clone(), origin.clone());
    }
    let owner = r.owner.unwrap_or_default().trim().to_string();
    if owner.is_empty() {
        err(
            "owner",
            "every flag needs an owner (a team or a person)".into(),
        );
    }
    let state = State::parse(&r.status);
    if state.is_none() {
        err(
            "status",
            format!(
                "unknown status `{}` (pilot, active, deprecated, removed)",
                r.status
            ),
        );
    }
    let mut date = |field: &str, text: &str| match NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        Ok(d) => Some(d),
        Err(_) => {
            err(field, format!("`{text}` is not a date (YYYY-MM-DD)"));
            None
        }
    };
    let created = date("created", &r.created);
    let expires = r.expires.as_deref().map(|e| date("expires", e));
    let mut err = |field: &str, m: String| errors.push(doc.diag(&join_key(base, field), m));
    match (state, created, expires) {
        (Some(State::Removed), _, Some(Some(e))) if e > today => err(
            "expires",
            format!(
                "`removed` flag expires {e}, in the future: a removed flag's expiry is past or absent"
            ),
        ),
        (Some(s), _, None) if s != State::Removed => err(
            "expires",
            format!(
                "missing: a flag in state `{}` expires at most {MAX_MONTHS} months after `created`",
                s.as_str()
            ),
        ),
        (_, Some(c), Some(Some(e))) => {
            let latest = c
                .checked_add_months(Months::new(MAX_MONTHS))
                .unwrap_or(NaiveDate::MAX);
            if e < c {
                err("expires", format!("{e} is before `created` {c}"));
            } else if e > latest {
                err(
                    "expires",
                    format!(
                        "{e} is more than {MAX_MONTHS} months after `created` {c} (at most {latest})"
                    ),
                );
            }
        }
        _ => {}
    }
    if errors.len() > n {
        return None;
    }
    Some(Flag {
        key,
        owner,
        created: created?,
        expires: expires.flatten(),
        state: state?,
        description: r.description.unwrap_or_default(),
        origin,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    fn load(text: &str, today: &str) -> (Registry, Vec<String>) {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("synmon-flags-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("reg.yaml");
        std::fs::write(&f, text).unwrap();
        let (reg, errs) = load_files(&[f], d(today));
        std::fs::remove_dir_all(&dir).ok();
        let errs = errs
            .iter()
            .map(|e| {
                let s = e.to_string();
                s[s.find("reg.yaml").unwrap() + "reg.yaml".len()..].to_string()
            })
            .collect();
        (reg, errs)
    }

    #[test]
    fn six_calendar_months_is_the_limit() {
        let ok = "flags:\n  - {key: A, owner: t, created: 2025-09-10, expires: 2026-03-10, status: pilot}\n";
        let (reg, errs) = load(ok, "2025-10-01");
        assert!(errs.is_empty(), "{errs:?}");
        assert_eq!(reg.flags[0].expires, Some(d("2026-03-10")));
        let late = "flags:\n  - {key: A, owner: t, created: 2025-09-10, expires: 2026-03-11, status: pilot}\n";
        let (_, errs) = load(late, "2025-10-01");
        assert_eq!(
            errs,
            [
                ":2:45: flags[0].expires: 2026-03-11 is more than 6 months after `created` 2025-09-10 (at most 2026-03-10)"
            ]
        );
        // The end of a month clamps: 31 August + 6 months = 28 February.
        let clamp = "flags:\n  - {key: A, owner: t, created: 2025-08-31, expires: 2026-02-28, status: pilot}\n";
        assert!(load(clamp, "2025-10-01").1.is_empty());
    }

    #[test]
    fn an_expired_flag_loads() {
        let text = "flags:\n  - {key: A, owner: t, created: 2025-08-15, expires: 2026-01-15, status: active}\n";
        let (reg, errs) = load(text, "2026-12-05");
        assert!(errs.is_empty());
        assert_eq!(reg.flags[0].days_to_expiry(d("2026-01-01")), Some(14));
        assert_eq!(reg.flags[0].days_to_expiry(d("2026-02-20")), Some(-36));
    }

    #[test]
    fn days_left_is_fractional_from_midnight_utc() {
        let f = Flag {
            key: "A".into(),
            owner: "t".into(),
            created: d("2025-08-15"),
            expires: Some(d("2026-01-15")),
            state: State::Active,
            description: String::new(),
            origin: String::new(),
        };
        let now = d("2026-01-14").and_hms_opt(12, 0, 0).unwrap().and_utc();
        assert_eq!(f.days_left(now), Some(0.5));
    }

    #[test]
    fn a_removed_flag_needs_no_expiry() {
        let text = "flags:\n  - {key: A, owner: t, created: 2025-08-15, status: removed}\n";
        let (reg, errs) = load(text, "2026-12-05");
        assert!(errs.is_empty(), "{errs:?}");
        assert_eq!(reg.flags[0].expires, None);
    }
}
