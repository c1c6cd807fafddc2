//! Silences: matchers, a start and an end, who and why. Created and expired through the API
//! (`src/http/silences.rs`), persisted in the store (migration 0004), and applied at every flush
//! of the pipeline as a mute stage: a silenced alert is left out of notifications but stays
//! visible in `/api/v1/alerts`, marked `silenced`.
//!
//! Every replica keeps the silences in memory (the mute stage answers synchronously, at each
//! flush) and writes through to the store, which it reads back whole at start. Several replicas
//! (one per location) may share one PostgreSQL store: before a flush, each re-reads what
//! changed in the store (at most every [`REFRESH_EVERY`] of its clock, see
//! [`Silences::refresh_if_due`]), so a silence created or expired through one replica takes
//! effect on the others at their next flush after that refresh. If the store cannot be read,
//! the last known silences stay in force.

use std::collections::BTreeMap;
use std::sync::RwLock;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::notify::NotifyConfig;
use crate::notify::dispatch::Muter;
use crate::notify::message::Labels;
use crate::notify::route::Route;
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

/// The written form (a value of the `matchers` map) of a matcher with `op` and `value`, such
/// that [`parse_matchers`] reads back exactly `op` and `value`: an equality whose value starts
/// with `=` or `!` is written with a leading `=` (`==~x` is the value `=~x`, not a regex);
/// any other equality is written as it is.
pub fn written(op: MatchOp, value: &str) -> String {
    match op {
        MatchOp::Eq if value.starts_with(['=', '!']) => format!("={value}"),
        MatchOp::Eq => value.to_string(),
        MatchOp::Ne => format!("!={value}"),
        MatchOp::Re => format!("=~{value}"),
        MatchOp::NotRe => format!("!~{value}"),
    }
}

/// A list of matchers (Alertmanager's form: a label may come back) as the map a silence keeps,
/// one matcher per label. A label named twice is refused: the map cannot hold both, and a
/// silence must never match differently than it was asked to.
pub fn matcher_map<'a>(
    list: impl IntoIterator<Item = (&'a str, MatchOp, &'a str)>,
) -> Result<BTreeMap<String, String>, String> {
    let mut out = BTreeMap::new();
    for (label, op, value) in list {
        if out.insert(label.to_string(), written(op, value)).is_some() {
            return Err(format!(
                "`{label}` has more than one matcher; a synmon silence takes one matcher per label (join them into one regex)"
            ));
        }
    }
    Ok(out)
}

/// Whether every matcher matches the empty string, so the silence would mute alerts that have
/// none of its labels: Alertmanager refuses such a silence ("at least one matcher must not
/// match the empty string"), and so does its API here.
pub fn matches_empty(m: &Matchers) -> bool {
    m.matches(&Labels::new())
}

/// How far ahead a silence may end: a longer one is a forgotten mute, not a plan (expire it
/// and create another when the plan changes).
pub const MAX_AHEAD: chrono::Duration = chrono::Duration::days(366);

/// The longest `comment`, in characters: the why of a silence, not a document.
pub const MAX_COMMENT_CHARS: usize = 1000;

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
        if self.ends_at > now + MAX_AHEAD {
            return Err(format!(
                "`ends_at` {} is more than 1 year ahead (at most {})",
                self.ends_at.to_rfc3339(),
                (now + MAX_AHEAD).to_rfc3339()
            ));
        }
        if self.comment.trim().is_empty() {
            return Err("`comment` must say why".into());
        }
        let chars = self.comment.chars().count();
        if chars > MAX_COMMENT_CHARS {
            return Err(format!(
                "`comment` is {chars} characters long; at most {MAX_COMMENT_CHARS}"
            ));
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

/// How often (at most) a replica re-reads the silences from the store: a silence made through
/// another replica takes effect here within this, at the next flush.
pub const REFRESH_EVERY: chrono::Duration = chrono::Duration::seconds(5);

/// How far before the newest change it has seen a refresh reads again. `updated_at` is the
/// writing replica's clock, and two writes may commit out of their time order: rows stamped a
/// little before the newest one seen can still be new here.
const REFRESH_OVERLAP: chrono::Duration = chrono::Duration::minutes(5);

/// How often a refresh reads every row instead of the recent ones, so a write stamped by a
/// clock more than [`REFRESH_OVERLAP`] behind still arrives, late.
const REFRESH_ALL_EVERY: chrono::Duration = chrono::Duration::hours(1);

/// Where the periodic re-read stands.
#[derive(Debug, Default)]
struct RefreshState {
    /// When the last refresh was attempted (the injected clock).
    last_at: Option<DateTime<Utc>>,
    /// When every row was last read (`None`: never since start; the next refresh does).
    last_all: Option<DateTime<Utc>>,
    /// The newest `updated_at` read from the store.
    newest: Option<DateTime<Utc>>,
    /// A failed refresh was logged and none has succeeded since (log once, not every tick).
    failing: bool,
}

/// Every silence, in memory and in the store.
#[derive(Debug)]
pub struct Silences {
    store: Store,
    list: RwLock<Vec<Silence>>,
    refresh: tokio::sync::Mutex<RefreshState>,
    /// Counts this replica's own writes (create, expire). A refresh during which it moved read
    /// the store before that write may have landed: it applies nothing, the next one does.
    local_writes: std::sync::atomic::AtomicU64,
}

/// A stored silence as the mute stage uses it; `None` (with a warning) when unreadable.
fn from_stored(s: StoredSilence) -> Option<Silence> {
    let matchers: BTreeMap<String, String> = match serde_json::from_str(&s.matchers) {
        Ok(m) => m,
        Err(e) => {
            tracing::warn!(silence = %s.id, error = %e, "stored silence unreadable; ignored");
            return None;
        }
    };
    let parsed = match parse_matchers(&matchers) {
        Ok(p) => p,
        Err(e) => {
            tracing::warn!(silence = %s.id, error = %e, "stored silence unreadable; ignored");
            return None;
        }
    };
    Some(Silence {
        id: s.id,
        matchers,
        parsed,
        starts_at: s.starts_at,
        ends_at: s.ends_at,
        created_by: s.created_by,
        comment: s.comment,
        created_at: s.created_at,
        updated_at: s.updated_at,
    })
}

/// Puts `s` in `list`: replaces the silence with its id, or appends it.
fn put(list: &mut Vec<Silence>, s: Silence) {
    match list.iter_mut().find(|x| x.id == s.id) {
        Some(slot) => *slot = s,
        None => list.push(s),
    }
}

impl Silences {
    /// Reads every stored silence (an unreadable one is skipped with a warning).
    pub async fn load(store: Store) -> Result<Silences, StoreError> {
        let rows = store.silences().await?;
        let newest = rows.iter().map(|s| s.updated_at).max();
        let list = rows.into_iter().filter_map(from_stored).collect();
        Ok(Silences {
            store,
            list: RwLock::new(list),
            refresh: tokio::sync::Mutex::new(RefreshState {
                newest,
                ..RefreshState::default()
            }),
            local_writes: std::sync::atomic::AtomicU64::new(0),
        })
    }

    /// Re-reads the silences other replicas created or expired, unless the last refresh was
    /// less than [`REFRESH_EVERY`] ago by `now` (the injected clock) or one is running. Reads
    /// only the rows written since shortly before the newest change seen (every row once an
    /// hour). A store error keeps the silences known so far (logged once until a refresh
    /// succeeds again). Returns whether the store was read.
    pub async fn refresh_if_due(&self, now: DateTime<Utc>) -> bool {
        let Ok(mut st) = self.refresh.try_lock() else {
            return false;
        };
        if st
            .last_at
            .is_some_and(|t| now >= t && now - t < REFRESH_EVERY)
        {
            return false;
        }
        st.last_at = Some(now);
        let all = st
            .last_all
            .is_none_or(|t| now < t || now - t >= REFRESH_ALL_EVERY);
        let since = if all {
            None
        } else {
            st.newest.map(|n| n - REFRESH_OVERLAP)
        };
        let writes_before = self.local_writes.load(std::sync::atomic::Ordering::SeqCst);
        let rows = match self.store.silences_updated_since(since).await {
            Ok(rows) => rows,
            Err(e) => {
                if !st.failing {
                    tracing::warn!(error = %e, "silences not refreshed from the store; the last known ones stay in force");
                    st.failing = true;
                }
                return false;
            }
        };
        if st.failing {
            tracing::info!("silences refreshed from the store again");
            st.failing = false;
        }
        // Checked and applied under the write lock, which local writes also hold while they
        // count themselves and update the list: nothing lands between the check and the apply.
        let mut list = self.list.write().expect("silences lock");
        if self.local_writes.load(std::sync::atomic::Ordering::SeqCst) != writes_before {
            // A create or expire here raced this read: apply nothing now (the row read may
            // predate it); the next refresh reads again from the same point.
            return true;
        }
        if all {
            st.last_all = Some(now);
        }
        st.newest = st.newest.max(rows.iter().map(|s| s.updated_at).max());
        // The store is the authority: any row that differs from what is held here is applied,
        // whatever its `updated_at` says (replicas' clocks may disagree, and the store keeps
        // the write that landed last). Unchanged rows (the overlap's re-reads) are not parsed
        // again.
        let fresh: Vec<StoredSilence> = rows
            .into_iter()
            .filter(|r| {
                list.iter()
                    .find(|s| s.id == r.id)
                    .is_none_or(|s| r != &s.stored())
            })
            .collect();
        for s in fresh.into_iter().filter_map(from_stored) {
            tracing::info!(silence = %s.id, ends_at = %s.ends_at, "silence changed by another replica: applied");
            put(&mut list, s);
        }
        true
    }

    /// Stores a validated silence; it applies from the next flush.
    pub async fn add(&self, s: Silence) -> Result<Silence, SilenceError> {
        self.store.upsert_silence(&s.stored()).await?;
        self.record_local(&s);
        tracing::info!(silence = %s.id, created_by = %s.created_by, matchers = ?s.matchers, starts_at = %s.starts_at, ends_at = %s.ends_at, "silence created");
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
        self.record_local(&s);
        tracing::info!(silence = %s.id, "silence expired");
        Ok(s)
    }

    /// Applies this replica's own write to the list and counts it, under the list's lock (see
    /// `local_writes`).
    fn record_local(&self, s: &Silence) {
        let mut list = self.list.write().expect("silences lock");
        self.local_writes
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        put(&mut list, s.clone());
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

impl crate::notify::pipeline::Refresh for Silences {
    fn refresh(&self, now: DateTime<Utc>) -> crate::scheduler::BoxFuture<'_, ()> {
        Box::pin(async move {
            self.refresh_if_due(now).await;
        })
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

    /// An end more than a year ahead and a comment over 1,000 characters are refused, each
    /// with its bound; exactly at the bounds they pass.
    #[test]
    fn ends_at_and_comment_are_bounded() {
        let year = MAX_AHEAD.num_seconds();
        let err = |n: NewSilence| n.into_silence("alice", t(100)).unwrap_err();
        assert!(
            new(&[("a", "x")], None, 100 + year)
                .into_silence("alice", t(100))
                .is_ok()
        );
        assert_eq!(
            err(new(&[("a", "x")], None, 101 + year)),
            "`ends_at` 2028-01-16T08:01:41+00:00 is more than 1 year ahead (at most 2028-01-16T08:01:40+00:00)"
        );
        let mut n = new(&[("a", "x")], None, 200);
        n.comment = "é".repeat(MAX_COMMENT_CHARS);
        assert!(
            n.into_silence("alice", t(100)).is_ok(),
            "characters, not bytes"
        );
        let mut n = new(&[("a", "x")], None, 200);
        n.comment = "x".repeat(1_000_000);
        assert_eq!(err(n), "`comment` is 1000000 characters long; at most 1000");
    }

    /// Every operator and awkward value survives `written` -> `parse_matchers` unchanged.
    #[test]
    fn written_matchers_read_back_as_given() {
        let cases = [
            (MatchOp::Eq, "page"),
            (MatchOp::Eq, ""),
            (MatchOp::Eq, "=~x"),
            (MatchOp::Eq, "!=x"),
            (MatchOp::Eq, "!~x"),
            (MatchOp::Eq, "=x"),
            (MatchOp::Eq, "~x"),
            (MatchOp::Ne, ""),
            (MatchOp::Ne, "=x"),
            (MatchOp::Re, "a|b.*"),
            (MatchOp::Re, ""),
            (MatchOp::NotRe, "feed_.*"),
        ];
        for (op, value) in cases {
            let map = matcher_map([("l", op, value)]).unwrap();
            let m = parse_matchers(&map).unwrap();
            assert_eq!((m.0[0].op, m.0[0].value.as_str()), (op, value), "{map:?}");
        }
        assert_eq!(
            matcher_map([("a", MatchOp::Re, "x.*"), ("a", MatchOp::Ne, "xy")]).unwrap_err(),
            "`a` has more than one matcher; a synmon silence takes one matcher per label (join them into one regex)"
        );
    }

    /// Matchers parsed from `(label, expression)` pairs.
    fn m(p: &[(&str, &str)]) -> Matchers {
        parse_matchers(
            &p.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
        .unwrap()
    }

    #[test]
    fn matchers_that_all_match_the_empty_string() {
        assert!(matches_empty(&m(&[("a", "=~.*")])));
        assert!(matches_empty(&m(&[("a", "!=x"), ("b", "")])));
        assert!(!matches_empty(&m(&[("a", "=~.*"), ("b", "x")])));
        assert!(!matches_empty(&m(&[("a", "=~.+")])));
    }

    #[test]
    fn compatibility_of_matchers() {
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
