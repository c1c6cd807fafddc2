//! The routing tree (Alertmanager's `dispatch/route.go`): `route:` as written, its validation
//! into [`Route`] nodes that inherit their parent's settings, the route keys that name a route
//! in group keys and the notification log, and the matching that sends an alert to its routes.
//! Pure: no I/O, no clock; the dispatcher (`dispatch.rs`) groups what it routes.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde::Deserialize;

use crate::config::duration::{Bound, DAY, HOUR};
use crate::rules::model::{MatchOp, Matcher, Matchers};

/// A node of the routing tree as written. Unset options inherit from the parent.
#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawRoute {
    /// A name for the route's alert groups that survives editing its matchers (or its
    /// parents'); unset, the key is derived from the matchers (see [`Route::key`]).
    #[serde(default)]
    pub key: Option<String>,
    #[serde(default)]
    pub receiver: Option<String>,
    /// Label matchers, written as in alert rules: `severity: page`, `check: "=~align_.*"`.
    #[serde(default)]
    pub matchers: BTreeMap<String, String>,
    #[serde(default)]
    pub group_by: Option<Vec<String>>,
    #[serde(default)]
    #[schemars(with = "Option<crate::config::schema::Duration>")]
    pub group_wait: Option<String>,
    #[serde(default)]
    #[schemars(with = "Option<crate::config::schema::Duration>")]
    pub group_interval: Option<String>,
    #[serde(default)]
    #[schemars(with = "Option<crate::config::schema::Duration>")]
    pub repeat_interval: Option<String>,
    #[serde(default)]
    pub send_resolved: Option<bool>,
    #[serde(default, rename = "continue")]
    pub continue_matching: bool,
    #[serde(default)]
    pub routes: Vec<RawRoute>,
}

/// `group_by: ['...']` groups by every label (one alert per group), as in Alertmanager.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupBy {
    Labels(Vec<String>),
    All,
}

/// A validated node of the routing tree.
#[derive(Debug, Clone)]
pub struct Route {
    /// The route's identity, part of every group key (so two routes that send to the same
    /// receiver keep separate groups) and stored in the notification log: the parent's key, `/`,
    /// and the route's own matchers in canonical form (`{}/{severity="page"}`), with `#2`, `#3`,
    /// ... only on later siblings whose matchers are the same; or the route's `key:`, which
    /// then anchors its children's keys. Derived from content, not position (Alertmanager's
    /// `Route.Key()`): inserting or removing another route, on reload or restart, leaves it
    /// alone, so its groups keep their notification log, PagerDuty `dedup_key` and Slack
    /// message instead of paging on-call again.
    pub key: String,
    pub receiver: String,
    pub matchers: Matchers,
    pub group_by: GroupBy,
    pub group_wait: Duration,
    pub group_interval: Duration,
    pub repeat_interval: Duration,
    pub send_resolved: bool,
    pub continue_matching: bool,
    pub routes: Vec<Route>,
}

/// The root route's key: its matchers, which are always empty.
pub const ROOT_KEY: &str = "{}";

/// `{alertname="x",check="y"}`, the readable half of a group key.
fn label_string(l: &BTreeMap<String, String>) -> String {
    let inner: Vec<String> = l.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
    format!("{{{}}}", inner.join(","))
}

/// A route's matchers in canonical form, the last segment of its derived key: sorted,
/// `{label="value",label=~"regex"}`, `{}` for none (Alertmanager's `Matchers.String()`).
/// Written out here, not with `Matcher`'s `Display`, because keys are persisted: only `\`,
/// `"` and line breaks are escaped, so the same matchers give the same key in every version.
pub fn matchers_key(m: &Matchers) -> String {
    let mut parts: Vec<String> =
        m.0.iter()
            .map(|m| {
                let op = match m.op {
                    MatchOp::Eq => "=",
                    MatchOp::Ne => "!=",
                    MatchOp::Re => "=~",
                    MatchOp::NotRe => "!~",
                };
                let mut v = String::with_capacity(m.value.len() + 2);
                for c in m.value.chars() {
                    match c {
                        '\\' => v.push_str("\\\\"),
                        '"' => v.push_str("\\\""),
                        '\n' => v.push_str("\\n"),
                        '\r' => v.push_str("\\r"),
                        c => v.push(c),
                    }
                }
                format!("{}{op}\"{v}\"", m.label)
            })
            .collect();
    parts.sort();
    format!("{{{}}}", parts.join(","))
}

/// Alertmanager's defaults, except `group_wait`: 30 s is long for a page; keep it explicit.
pub const DEFAULT_GROUP_WAIT: Duration = Duration::from_secs(30);
pub const DEFAULT_GROUP_INTERVAL: Duration = Duration::from_secs(300);
pub const DEFAULT_REPEAT_INTERVAL: Duration = Duration::from_secs(4 * 3600);

/// A group waits or batches at most an hour (a page held longer is a page missed); an
/// unchanged firing group is re-sent at least monthly. Below 1 s a changed group would be
/// re-sent on every evaluation.
const GROUP_WAIT: Bound = Bound::or_zero("group wait", HOUR);
const GROUP_INTERVAL: Bound = Bound::new("group interval", Duration::from_secs(1), HOUR);
const REPEAT_INTERVAL: Bound = Bound::new(
    "repeat interval",
    Duration::from_secs(1),
    DAY.saturating_mul(30),
);

impl Route {
    /// The routes an alert with `labels` goes to: depth first, the deepest matching nodes; the
    /// first matching child wins unless it says `continue: true`; a node none of whose children
    /// match takes the alert itself (Alertmanager's `Route.Match`).
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> Vec<&Route> {
        if !self.matchers.matches(labels) {
            return Vec::new();
        }
        let mut out = Vec::new();
        for child in &self.routes {
            let m = child.matches(labels);
            let matched = !m.is_empty();
            out.extend(m);
            if matched && !child.continue_matching {
                break;
            }
        }
        if out.is_empty() {
            out.push(self);
        }
        out
    }

    /// The group labels of an alert on this route.
    pub fn group_labels(&self, labels: &BTreeMap<String, String>) -> BTreeMap<String, String> {
        match &self.group_by {
            GroupBy::All => labels.clone(),
            GroupBy::Labels(names) => names
                .iter()
                .filter_map(|n| labels.get(n).map(|v| (n.clone(), v.clone())))
                .collect(),
        }
    }

    /// Every node, depth first.
    pub fn walk(&self) -> Vec<&Route> {
        let mut v = vec![self];
        for c in &self.routes {
            v.extend(c.walk());
        }
        v
    }

    /// The key of an alert group on this route: `{route key}:{receiver}{group labels}`, e.g.
    /// `{}/{severity="page"}:pagerduty{alertname="down"}`. The configured receiver is part of
    /// it, so a route whose receiver changes starts new groups and the old ones resolve.
    pub fn group_key(&self, group_labels: &BTreeMap<String, String>) -> String {
        format!(
            "{}:{}{}",
            self.key,
            self.receiver,
            label_string(group_labels)
        )
    }

    /// A tree with one node sending everything to `receiver` (no `route:` in the config).
    pub fn default_to(receiver: &str) -> Route {
        Route {
            key: ROOT_KEY.into(),
            receiver: receiver.into(),
            matchers: Matchers::default(),
            group_by: GroupBy::Labels(vec!["alertname".into()]),
            group_wait: DEFAULT_GROUP_WAIT,
            group_interval: DEFAULT_GROUP_INTERVAL,
            repeat_interval: DEFAULT_REPEAT_INTERVAL,
            send_resolved: true,
            continue_matching: false,
            routes: Vec::new(),
        }
    }
}

/// Rules whose `route:` no node of the tree matches (a typo, or a route not written yet): their
/// alerts would go to the root receiver. `(rule file, rule name, route name)`; empty when the
/// tree has no children (everything goes to the root on purpose).
pub fn unrouted(rules: &crate::rules::RuleSet, route: &Route) -> Vec<(String, String, String)> {
    if route.routes.is_empty() {
        return Vec::new();
    }
    let mut out = Vec::new();
    for r in &rules.rules {
        let Some(name) = &r.route else { continue };
        let mut labels = r.labels.clone();
        labels.insert("alertname".into(), r.name.clone());
        labels.insert("severity".into(), r.severity.clone());
        labels.insert("route".into(), name.clone());
        if route.matches(&labels).iter().all(|m| m.key == route.key) {
            out.push((r.file.clone(), r.name.clone(), name.clone()));
        }
    }
    out
}

/// Checks a route's `key:` (unique in the tree, and unlike any derived key, which contains `{`
/// and `/`) and records it in `keys` (key -> path of the route that set it).
fn explicit_key(
    key: &str,
    p: &str,
    keys: &mut BTreeMap<String, String>,
    err: &mut dyn FnMut(&str, String),
) -> Option<String> {
    let field = format!("{p}.key");
    if key.is_empty()
        || !key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        err(
            &field,
            format!("`{key}` must be letters, digits, `-`, `_` or `.`"),
        );
        return None;
    }
    if key == WATCHDOG_KEY {
        err(
            &field,
            format!("`{key}` is reserved for the watchdog's route"),
        );
        return None;
    }
    if let Some(first) = keys.get(key) {
        err(&field, format!("key `{key}` is already used by {first}"));
        return None;
    }
    keys.insert(key.to_string(), p.to_string());
    Some(key.to_string())
}

/// Gives the children of `node` (whose key is set), unless they have a `key:`, their derived
/// keys; then theirs, depth first.
fn assign_keys(node: &mut Route) {
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for child in &mut node.routes {
        if child.key.is_empty() {
            let base = format!("{}/{}", node.key, matchers_key(&child.matchers));
            let n = seen.entry(base.clone()).or_insert(0);
            *n += 1;
            child.key = if *n == 1 { base } else { format!("{base}#{n}") };
        }
        assign_keys(child);
    }
}

/// Validates one node and its children. Keys are left for `assign_keys`: `key` is the node's
/// `key:` when it has a valid one, empty otherwise.
fn validate_route(
    raw: RawRoute,
    p: &str,
    parent: &Route,
    receivers: &BTreeSet<String>,
    keys: &mut BTreeMap<String, String>,
    err: &mut dyn FnMut(&str, String),
) -> Route {
    let key = raw
        .key
        .as_deref()
        .and_then(|k| explicit_key(k, p, keys, err))
        .unwrap_or_default();
    let receiver = match raw.receiver {
        Some(r) if !receivers.contains(&r) => {
            err(
                &format!("{p}.receiver"),
                format!(
                    "unknown receiver `{r}` (defined: {})",
                    receivers.iter().cloned().collect::<Vec<_>>().join(", ")
                ),
            );
            r
        }
        Some(r) => r,
        None => parent.receiver.clone(),
    };
    let mut matchers = Vec::new();
    for (label, value) in &raw.matchers {
        match Matcher::parse(label, value) {
            Ok(m) => matchers.push(m),
            Err(e) => err(&format!("{p}.matchers.{label}"), e),
        }
    }
    let group_by = match raw.group_by {
        None => parent.group_by.clone(),
        Some(v) if v.iter().any(|l| l == "...") => {
            if v.len() > 1 {
                err(
                    &format!("{p}.group_by"),
                    "`...` groups by every label and stands alone".into(),
                );
            }
            GroupBy::All
        }
        Some(v) => {
            for (i, l) in v.iter().enumerate() {
                if l.is_empty() || !l.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                    err(
                        &format!("{p}.group_by[{i}]"),
                        format!("`{l}` is not a label name"),
                    );
                }
            }
            GroupBy::Labels(v)
        }
    };
    let mut dur = |field: &str, v: &Option<String>, inherited: Duration, bound: Bound| match v {
        None => inherited,
        Some(s) => match bound.parse(s) {
            Ok(d) => d,
            Err(e) => {
                err(&format!("{p}.{field}"), e);
                inherited
            }
        },
    };
    let group_wait = dur("group_wait", &raw.group_wait, parent.group_wait, GROUP_WAIT);
    let group_interval = dur(
        "group_interval",
        &raw.group_interval,
        parent.group_interval,
        GROUP_INTERVAL,
    );
    let repeat_interval = dur(
        "repeat_interval",
        &raw.repeat_interval,
        parent.repeat_interval,
        REPEAT_INTERVAL,
    );
    let mut node = Route {
        key,
        receiver,
        matchers: Matchers(matchers),
        group_by,
        group_wait,
        group_interval,
        repeat_interval,
        send_resolved: raw.send_resolved.unwrap_or(parent.send_resolved),
        continue_matching: raw.continue_matching,
        routes: Vec::new(),
    };
    let children: Vec<Route> = raw
        .routes
        .into_iter()
        .enumerate()
        .map(|(i, c)| validate_route(c, &format!("{p}.routes[{i}]"), &node, receivers, keys, err))
        .collect();
    node.routes = children;
    node
}

/// The key of the route the watchdog (of the mute stage) puts first in the tree: fixed, so its
/// group keeps its key whatever the configured tree looks like; a configured route cannot take it.
pub const WATCHDOG_KEY: &str = "watchdog";

/// Validates the configured tree: `route:` whose root has a receiver (`fallback` when it is
/// missing, which is an error) and no matchers; every node's key is set. `receivers`: the names
/// defined.
pub(super) fn validate(
    raw: RawRoute,
    fallback: &str,
    receivers: &BTreeSet<String>,
    err: &mut dyn FnMut(&str, String),
) -> Route {
    if raw.receiver.is_none() {
        err("route.receiver", "the root route needs a receiver".into());
    }
    if !raw.matchers.is_empty() {
        err(
            "route.matchers",
            "the root route takes every alert; put matchers on its `routes`".into(),
        );
    }
    let root = Route::default_to(fallback);
    let mut keys = BTreeMap::new();
    let mut route = validate_route(raw, "route", &root, receivers, &mut keys, err);
    if route.key.is_empty() {
        route.key = matchers_key(&route.matchers);
    }
    assign_keys(&mut route);
    route
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notify::config::tests::{labels, tree};
    use crate::notify::config::{CONSOLE, NotifyConfig};

    fn keys(c: &NotifyConfig) -> Vec<String> {
        c.route.walk().iter().map(|r| r.key.clone()).collect()
    }

    const TREE: &str = r#"
receivers:
  - { name: team-a, type: webhook, url: "http://127.0.0.1:9/a" }
  - { name: team-b, type: webhook, url: "http://127.0.0.1:9/b" }
  - { name: audit, type: webhook, url: "http://127.0.0.1:9/audit" }
route:
  receiver: console
  group_by: [alertname]
  group_wait: 5s
  routes:
    - matchers: { team: a }
      receiver: team-a
      group_wait: 1s
      routes:
        - matchers: { severity: page }
          group_by: [alertname, check]
    - matchers: { severity: "=~page|critical" }
      receiver: audit
      continue: true
    - matchers: { team: "=~a|b" }
      receiver: team-b
"#;

    #[test]
    fn first_match_wins_and_children_inherit() {
        let (c, errs) = tree(TREE);
        assert!(errs.is_empty(), "{errs:?}");
        let r = c
            .route
            .matches(&labels(&[("team", "a"), ("severity", "page")]));
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].key, r#"{}/{team="a"}/{severity="page"}"#);
        assert_eq!(r[0].receiver, "team-a", "receiver inherited");
        assert_eq!(
            r[0].group_wait,
            Duration::from_secs(1),
            "group_wait inherited"
        );
        assert_eq!(
            r[0].group_by,
            GroupBy::Labels(vec!["alertname".into(), "check".into()])
        );
        assert_eq!(r[0].repeat_interval, DEFAULT_REPEAT_INTERVAL);
        // team=a without page: the team-a node itself.
        let r = c.route.matches(&labels(&[("team", "a")]));
        assert_eq!(
            r.iter().map(|r| r.key.as_str()).collect::<Vec<_>>(),
            [r#"{}/{team="a"}"#]
        );
    }

    #[test]
    fn continue_lets_later_siblings_match() {
        let (c, _) = tree(TREE);
        let r = c
            .route
            .matches(&labels(&[("team", "b"), ("severity", "critical")]));
        let got: Vec<&str> = r.iter().map(|r| r.receiver.as_str()).collect();
        assert_eq!(got, ["audit", "team-b"]);
    }

    #[test]
    fn unmatched_alerts_stay_at_the_root() {
        let (c, _) = tree(TREE);
        let r = c.route.matches(&labels(&[("team", "z")]));
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].receiver, "console");
        assert_eq!(r[0].group_wait, Duration::from_secs(5));
    }

    /// The key format: parent key, `/`, the route's matchers sorted and quoted; the root is
    /// `{}`. Group keys put the configured receiver and the group labels after a `:`.
    #[test]
    fn route_keys_are_the_parent_key_and_the_canonical_matchers() {
        let (c, errs) = tree(TREE);
        assert!(errs.is_empty(), "{errs:?}");
        assert_eq!(
            keys(&c),
            [
                r#"{}"#,
                r#"{}/{team="a"}"#,
                r#"{}/{team="a"}/{severity="page"}"#,
                r#"{}/{severity=~"page|critical"}"#,
                r#"{}/{team=~"a|b"}"#,
            ]
        );
        let (c, errs) = tree(
            r#"
route:
  receiver: console
  routes:
    - matchers: { team: "=a", check: "!~feed_.*", note: 'say "hi" \ bye', alertname: "!=x" }
"#,
        );
        assert!(errs.is_empty(), "{errs:?}");
        let child = &c.route.routes[0];
        assert_eq!(
            child.key,
            r#"{}/{alertname!="x",check!~"feed_.*",note="say \"hi\" \\ bye",team="a"}"#
        );
        assert_eq!(
            child.group_key(&labels(&[("alertname", "down")])),
            r#"{}/{alertname!="x",check!~"feed_.*",note="say \"hi\" \\ bye",team="a"}:console{alertname="down"}"#
        );
        assert_eq!(Route::default_to(CONSOLE).key, "{}");
    }

    /// Siblings whose matchers are the same (one receiver each, with `continue`) get `#2`,
    /// `#3`; the first keeps the plain key, and the same matchers elsewhere are no clash.
    #[test]
    fn siblings_with_identical_matchers_get_distinct_keys() {
        let (c, errs) = tree(
            r#"
receivers:
  - { name: a, type: webhook, url: "http://127.0.0.1:9/a" }
  - { name: b, type: webhook, url: "http://127.0.0.1:9/b" }
route:
  receiver: console
  routes:
    - { matchers: { team: ops }, receiver: a, continue: true }
    - { matchers: { team: db }, receiver: a }
    - { matchers: { team: ops }, receiver: b, continue: true }
    - { matchers: { team: "=ops" }, receiver: console }
    - matchers: { severity: page }
      routes:
        - { matchers: { team: ops } }
"#,
        );
        assert!(errs.is_empty(), "{errs:?}");
        assert_eq!(
            keys(&c),
            [
                r#"{}"#,
                r#"{}/{team="ops"}"#,
                r#"{}/{team="db"}"#,
                r#"{}/{team="ops"}#2"#,
                r#"{}/{team="ops"}#3"#,
                r#"{}/{severity="page"}"#,
                r#"{}/{severity="page"}/{team="ops"}"#,
            ]
        );
        let unique: BTreeSet<String> = keys(&c).into_iter().collect();
        assert_eq!(unique.len(), 7);
    }

    /// The point of keys: a route inserted before others (or removed) changes no other key,
    /// where positions shift; and the same config gives the same keys every time it loads.
    #[test]
    fn inserting_a_route_keeps_the_other_keys_and_loading_twice_gives_the_same_keys() {
        let before = r#"
receivers:
  - { name: a, type: webhook, url: "http://127.0.0.1:9/a" }
route:
  receiver: console
  routes:
    - matchers: { team: ops }
      receiver: a
      routes:
        - { matchers: { severity: page } }
"#;
        let after = r#"
receivers:
  - { name: a, type: webhook, url: "http://127.0.0.1:9/a" }
route:
  receiver: console
  routes:
    - { matchers: { team: db }, receiver: a }
    - matchers: { team: ops }
      receiver: a
      routes:
        - { matchers: { check: login } }
        - { matchers: { severity: page } }
"#;
        let (b, errs) = tree(before);
        assert!(errs.is_empty(), "{errs:?}");
        let (a, errs) = tree(after);
        assert!(errs.is_empty(), "{errs:?}");
        let page = labels(&[("team", "ops"), ("severity", "page")]);
        let (kb, ka) = (&b.route.matches(&page)[0], &a.route.matches(&page)[0]);
        assert_eq!(kb.key, ka.key);
        assert_eq!(ka.key, r#"{}/{team="ops"}/{severity="page"}"#);
        assert_eq!(keys(&tree(after).0), keys(&a));
    }

    /// `key:` names a route whatever its matchers (and its parents') become; children derive
    /// theirs from it. It must be unique, not look like a derived key, and leave `watchdog` to
    /// the watchdog.
    #[test]
    fn an_explicit_key_anchors_the_route_and_its_children() {
        let (c, errs) = tree(
            r#"
route:
  receiver: console
  routes:
    - matchers: { team: "=~ops|sre" }
      key: oncall-page
      routes:
        - { matchers: { severity: page } }
    - { matchers: { team: ops }, key: oncall-page }
    - { matchers: { team: y }, key: watchdog }
    - { matchers: { team: z }, key: "a/b" }
"#,
        );
        assert_eq!(
            errs,
            [
                "route.routes[1].key: key `oncall-page` is already used by route.routes[0]",
                "route.routes[2].key: `watchdog` is reserved for the watchdog's route",
                "route.routes[3].key: `a/b` must be letters, digits, `-`, `_` or `.`",
            ]
        );
        assert_eq!(c.route.routes[0].key, "oncall-page");
        assert_eq!(
            c.route.routes[0].routes[0].key,
            r#"oncall-page/{severity="page"}"#
        );
    }

    #[test]
    fn group_labels_by_list_or_all() {
        let (c, _) = tree(TREE);
        let l = labels(&[
            ("alertname", "x"),
            ("check", "c"),
            ("team", "a"),
            ("severity", "page"),
        ]);
        let r = c.route.matches(&l)[0];
        assert_eq!(
            r.group_labels(&l),
            labels(&[("alertname", "x"), ("check", "c")])
        );
    }
}
