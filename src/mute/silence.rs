//! Silences: matchers, a start and an end, who and why. Created and expired through the API
//! (`src/http/silences.rs`), persisted in the store (migration 0004), and applied at every flush
//! of the pipeline as a mute stage: a silenced alert is left out of notifications but stays
//! visible in `/api/v1/alerts`, marked `silenced`.
//!
//! Every replica keeps the silences in memory (the mute stage answers synchronously, at each
//! flush) and writes through to the store, which it reads back whole at start.

use std::collections::BTreeMap;
use std::sync::RwLock;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::notify::config::{NotifyConfig, Route};
use crate::notify::dispatch::Muter;
use crate::notify::message::Labels;
use crate::rules::model::{MatchOp, Matcher, Matchers};
use crate::store::{Store, StoreError, StoredSilence};

#[derive(Debug, thiserror::Error)]
pub enum SilenceError {
    #[error("{0}")]
    Invalid(String),
    #[error("no silence {0}")]
    NotFound(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A silence's state at a given moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SilenceState {
    Pending,
    Active,
    Expired,
}

#[derive(Debug, Clone, Serialize)]
pub struct Silence {
    pub id: String,
    /// As written: label -> value, `=~regex`, `!=value` or `!~regex` (the syntax of routes).
    pub matchers: BTreeMap<String, String>,
    #[serde(skip)]
    pub parsed: Matchers,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub created_by: String,
    pub comment: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Silence {
    pub fn state(&self, now: DateTime<Utc>) -> SilenceState {
        if now >= self.ends_at {
            SilenceState::Expired
        } else if now < self.starts_at {
            SilenceState::Pending
        } else {
            SilenceState::Active
        }
    }

    /// Whether the silence mutes an alert with `labels` at `now`.
    pub fn mutes(&self, labels: &Labels, now: DateTime<Utc>) -> bool {
        self.state(now) == SilenceState::Active && self.parsed.matches(labels)
    }

    fn stored(&self) -> StoredSilence {
        StoredSilence {
            id: self.id.clone(),
            matchers: serde_json::to_string(&self.matchers).unwrap_or_else(|_| "{}".into()),
            starts_at: self.starts_at,
            ends_at: self.ends_at,
            created_by: self.created_by.clone(),
            comment: self.comment.clone(),
            created_at: self.created_at,
            updated_at: self.updated_at,
        }
    }

    /// The silence with its state at `now`, as the API shows it.
    pub fn to_json(&self, now: DateTime<Utc>) -> serde_json::Value {
        let mut v = serde_json::to_value(self).unwrap_or_default();
        v["status"] = serde_json::to_value(self.state(now)).unwrap_or_default();
        v
    }
}

/// The body of `POST /api/v1/silences`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewSilence {
    pub matchers: BTreeMap<String, String>,
    /// Default: now.
    #[serde(default)]
    pub starts_at: Option<DateTime<Utc>>,
    pub ends_at: DateTime<Utc>,
    pub comment: String,
    /// Must be the token's subject when given (the author is whoever signed in).
    #[serde(default)]
    pub created_by: Option<String>,
}

fn label_name_ok(l: &str) -> bool {
    let mut c = l.chars();
    c.next()
        .is_some_and(|f| f.is_ascii_alphabetic() || f == '_')
        && c.all(|x| x.is_ascii_alphanumeric() || x == '_')
}

/// Parses written matchers; errors name the label.
pub fn parse_matchers(written: &BTreeMap<String, String>) -> Result<Matchers, String> {
    if written.is_empty() {
        return Err("`matchers` must name at least one label".into());
    }
    let mut out = Vec::new();
    for (label, value) in written {
        if !label_name_ok(label) {
            return Err(format!("matchers.{label}: `{label}` is not a label name"));
        }
        out.push(Matcher::parse(label, value).map_err(|e| format!("matchers.{label}: {e}"))?);
    }
    Ok(Matchers(out))
}

impl NewSilence {
    /// Validates the request into a silence with a fresh id.
    pub fn into_silence(self, author: &str, now: DateTime<Utc>) -> Result<Silence, String> {
        let parsed = parse_matchers(&self.matchers)?;
        let starts_at = self.starts_at.unwrap_or(now);
        if self.ends_at <= starts_at {
            return Err("`ends_at` must be after `starts_at`".into());
        }
        if self.ends_at <= now {
            return Err("`ends_at` is in the past".into());
        }
        if self.comment.trim().is_empty() {
            return Err("`comment` must say why".into());
        }
        if let Some(by) = &self.created_by
            && by != author
        {
            return Err(format!(
                "`created_by` must be the token's subject `{author}` (or left out)"
            ));
        }
        Ok(Silence {
            id: uuid::Uuid::new_v4().to_string(),
            matchers: self.matchers,
            parsed,
            // A silence starting in the past starts now: it never rewrites history.
            starts_at: starts_at.max(now),
            ends_at: self.ends_at,
            created_by: author.to_string(),
            comment: self.comment,
            created_at: now,
            updated_at: now,
        })
    }
}

/// Every silence, in memory and in the store.
#[derive(Debug)]
pub struct Silences {
    store: Store,
    list: RwLock<Vec<Silence>>,
}

impl Silences {
    /// Reads every stored silence (an unreadable one is skipped with a warning).
    pub async fn load(store: Store) -> Result<Silences, StoreError> {
        let mut list = Vec::new();
        for s in store.silences().await? {
            let matchers: BTreeMap<String, String> = match serde_json::from_str(&s.matchers) {
                Ok(m) => m,
                Err(e) => {
                    tracing::warn!(silence = %s.id, error = %e, "stored silence unreadable; ignored");
                    continue;
                }
            };
            let parsed = match parse_matchers(&matchers) {
                Ok(p) => p,
                Err(e) => {
                    tracing::warn!(silence = %s.id, error = %e, "stored silence unreadable; ignored");
                    continue;
                }
            };
            list.push(Silence {
                id: s.id,
                matchers,
                parsed,
                starts_at: s.starts_at,
                ends_at: s.ends_at,
                created_by: s.created_by,
                comment: s.comment,
                created_at: s.created_at,
                updated_at: s.updated_at,
            });
        }
        Ok(Silences {
            store,
            list: RwLock::new(list),
        })
    }

    /// Stores a validated silence; it applies from the next flush.
    pub async fn add(&self, s: Silence) -> Result<Silence, SilenceError> {
        self.store.upsert_silence(&s.stored()).await?;
        tracing::info!(silence = %s.id, created_by = %s.created_by, matchers = ?s.matchers, starts_at = %s.starts_at, ends_at = %s.ends_at, "silence created");
        self.list.write().expect("silences lock").push(s.clone());
        Ok(s)
    }

    /// Expires a silence now (a pending one never starts). Expiring an expired silence changes
    /// nothing.
    pub async fn expire(&self, id: &str, now: DateTime<Utc>) -> Result<Silence, SilenceError> {
        let Some(mut s) = self.get(id) else {
            return Err(SilenceError::NotFound(id.to_string()));
        };
        if s.state(now) == SilenceState::Expired {
            return Ok(s);
        }
        s.starts_at = s.starts_at.min(now);
        s.ends_at = now;
        s.updated_at = now;
        self.store.upsert_silence(&s.stored()).await?;
        tracing::info!(silence = %s.id, "silence expired");
        let mut list = self.list.write().expect("silences lock");
        if let Some(slot) = list.iter_mut().find(|x| x.id == s.id) {
            *slot = s.clone();
        }
        Ok(s)
    }

    pub fn get(&self, id: &str) -> Option<Silence> {
        self.list
            .read()
            .expect("silences lock")
            .iter()
            .find(|s| s.id == id)
            .cloned()
    }

    /// Every silence, newest first.
    pub fn all(&self) -> Vec<Silence> {
        let mut v = self.list.read().expect("silences lock").clone();
        v.reverse();
        v
    }

    /// The ids of the active silences muting `labels`.
    pub fn silenced_by(&self, labels: &Labels, now: DateTime<Utc>) -> Vec<String> {
        self.list
            .read()
            .expect("silences lock")
            .iter()
            .filter(|s| s.mutes(labels, now))
            .map(|s| s.id.clone())
            .collect()
    }
}

impl Muter for Silences {
    fn muted(&self, labels: &Labels, now: DateTime<Utc>) -> bool {
        self.list
            .read()
            .expect("silences lock")
            .iter()
            .any(|s| s.mutes(labels, now))
    }
}

/// Whether some alert could satisfy both `a` and `b` on the labels they share, as far as
/// equality tells: an `=` on one side must satisfy the other side's matcher. Regex against
/// regex (or negations) is assumed to overlap: when in doubt, a silence counts as muting.
fn compatible(a: &Matchers, b: &Matchers) -> bool {
    let eq_ok = |x: &Matchers, y: &Matchers| {
        x.0.iter().filter(|m| m.op == MatchOp::Eq).all(|m| {
            let l: Labels = BTreeMap::from([(m.label.clone(), m.value.clone())]);
            y.0.iter()
                .filter(|n| n.label == m.label)
                .all(|n| n.matches(&l))
        })
    };
    eq_ok(a, b) && eq_ok(b, a)
}

/// The routes that could take an alert `silence` matches: every node of the tree whose own and
/// ancestors' matchers do not contradict the silence's. A silence muting a PagerDuty route needs
/// a step-up token.
pub fn routes_muted<'a>(silence: &Matchers, cfg: &'a NotifyConfig) -> Vec<&'a Route> {
    fn walk<'a>(r: &'a Route, path: &Matchers, silence: &Matchers, out: &mut Vec<&'a Route>) {
        let path = path.and(&r.matchers);
        if !compatible(&path, silence) {
            return;
        }
        out.push(r);
        for c in &r.routes {
            walk(c, &path, silence, out);
        }
    }
    let mut out = Vec::new();
    walk(&cfg.route, &Matchers::default(), silence, &mut out);
    out
}

/// Whether a silence with these matchers could mute a route whose receiver is PagerDuty.
pub fn mutes_pagerduty(silence: &Matchers, cfg: &NotifyConfig) -> bool {
    routes_muted(silence, cfg).iter().any(|r| {
        cfg.receiver(&r.receiver)
            .is_some_and(|rc| rc.kind() == "pagerduty")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + s, 0).unwrap()
    }

    fn new(m: &[(&str, &str)], start: Option<i64>, end: i64) -> NewSilence {
        NewSilence {
            matchers: m
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            starts_at: start.map(t),
            ends_at: t(end),
            comment: "maintenance".into(),
            created_by: None,
        }
    }

    #[test]
    fn states_and_matching() {
        let s = new(&[("alertname", "=~lat.*"), ("check", "a")], Some(10), 20)
            .into_silence("alice", t(0))
            .unwrap();
        let l: Labels = [("alertname", "latency_high"), ("check", "a")]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        assert_eq!(s.state(t(9)), SilenceState::Pending);
        assert!(!s.mutes(&l, t(9)));
        assert!(s.mutes(&l, t(10)));
        assert!(s.mutes(&l, t(19)));
        assert_eq!(s.state(t(20)), SilenceState::Expired);
        assert!(!s.mutes(&l, t(20)), "the end is exclusive");
        assert_eq!(s.created_by, "alice");
    }

    #[test]
    fn validation_names_the_problem() {
        let err = |n: NewSilence| n.into_silence("alice", t(100)).unwrap_err();
        assert_eq!(
            err(new(&[], None, 200)),
            "`matchers` must name at least one label"
        );
        assert_eq!(
            err(new(&[("a", "x")], None, 50)),
            "`ends_at` must be after `starts_at`"
        );
        assert_eq!(
            err(new(&[("a", "x")], Some(10), 50)),
            "`ends_at` is in the past"
        );
        assert_eq!(
            err(new(&[("check", "=~(")], None, 200)),
            "matchers.check: `(` is not a regular expression: unclosed group"
        );
        assert_eq!(
            err(new(&[("bad-label", "x")], None, 200)),
            "matchers.bad-label: `bad-label` is not a label name"
        );
        let mut n = new(&[("a", "x")], None, 200);
        n.created_by = Some("mallory".into());
        assert_eq!(
            err(n),
            "`created_by` must be the token's subject `alice` (or left out)"
        );
    }

    #[test]
    fn compatibility_of_matchers() {
        let m = |p: &[(&str, &str)]| {
            parse_matchers(
                &p.iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            )
            .unwrap()
        };
        assert!(compatible(
            &m(&[("route", "page")]),
            &m(&[("route", "page"), ("check", "a")])
        ));
        assert!(!compatible(
            &m(&[("route", "page")]),
            &m(&[("route", "slack")])
        ));
        assert!(!compatible(
            &m(&[("route", "=~slack.*")]),
            &m(&[("route", "page")])
        ));
        assert!(compatible(
            &m(&[("route", "=~p.*")]),
            &m(&[("route", "page")])
        ));
        assert!(
            compatible(&m(&[("route", "=~p.*")]), &m(&[("route", "!=x")])),
            "unknown: assume overlap"
        );
        assert!(compatible(&m(&[("team", "a")]), &m(&[("route", "page")])));
    }
}
