//! Routing and grouping: the alerts the evaluator reports are routed through the tree into
//! aggregation groups; a group is flushed `group_wait` after it appears and then every
//! `group_interval`; a flush passes the group through the mute slot and the dedup stage and
//! yields the notifications to write to the outbox (Alertmanager's dispatcher and
//! aggregation groups, with time passed in so tests drive it with a manual clock).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::store::LogEntry;

use super::config::NotifyConfig;
use super::dedup::{Sent, needs_update};
use super::message::{AlertInfo, Condition, Labels, Notification, RunEvidence, Status};
use super::route::Route;

/// An active (firing) alert as the evaluator reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct IncomingAlert {
    pub fingerprint: String,
    /// Includes `alertname`, `severity` and, when the rule names one, `route`.
    pub labels: Labels,
    pub annotations: Labels,
    pub starts_at: DateTime<Utc>,
    pub condition: Option<Condition>,
    pub run: Option<RunEvidence>,
    /// An alert about several checks: the failing latest run of each (see
    /// [`AlertInfo::affected`]).
    pub affected: Vec<RunEvidence>,
}

/// The mute slot of the pipeline: silences, inhibition and maintenance windows implement it (a
/// muted alert is left out of the notification but stays visible in the API).
pub trait Muter: Send + Sync {
    fn muted(&self, labels: &Labels, now: DateTime<Utc>) -> bool;

    /// Every firing alert the evaluator reported, at each `sync` (inhibition needs to know
    /// which source alerts fire; other mutes ignore it).
    fn observe(&self, _firing: &[IncomingAlert], _now: DateTime<Utc>) {}
}

struct Group {
    route: Route,
    receiver: String,
    labels: Labels,
    alerts: BTreeMap<String, AlertInfo>,
    next_flush: DateTime<Utc>,
}

/// One notification decided at a flush, with the log entry that records it. Written to the
/// store by the caller; `Dispatcher::committed` then updates the in-memory log.
#[derive(Debug, Clone)]
pub struct Planned {
    /// `None` when the log changes but nothing is sent (every alert resolved and the route
    /// does not send resolves).
    pub notification: Option<Notification>,
    pub log: LogEntry,
}

/// What one flush produced.
#[derive(Debug, Default)]
pub struct Flush {
    pub planned: Vec<Planned>,
    /// Resolved alerts flushed per group, removed from their groups once the plan is stored.
    flushed_resolved: Vec<(String, Vec<String>)>,
}

pub struct Dispatcher {
    route: Route,
    /// A receiver's effective name: itself, or the console when it is disabled.
    effective: HashMap<String, String>,
    groups: BTreeMap<String, Group>,
    /// The notification log, by (receiver, group key).
    log: HashMap<(String, String), Sent>,
    external_url: String,
    mutes: Vec<Arc<dyn Muter>>,
}

fn ms(d: std::time::Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

impl Dispatcher {
    /// `disabled`: receivers that cannot send (empty secret); their routes deliver to the console.
    pub fn new(cfg: &NotifyConfig, disabled: &BTreeSet<String>, external_url: &str) -> Self {
        let mut d = Dispatcher {
            route: cfg.route.clone(),
            effective: HashMap::new(),
            groups: BTreeMap::new(),
            log: HashMap::new(),
            external_url: external_url.trim_end_matches('/').to_string(),
            mutes: Vec::new(),
        };
        d.set_receivers(cfg, disabled);
        d
    }

    fn set_receivers(&mut self, cfg: &NotifyConfig, disabled: &BTreeSet<String>) {
        self.effective = cfg
            .receivers
            .iter()
            .map(|r| {
                let name = r.name().to_string();
                let eff = if disabled.contains(&name) {
                    super::config::CONSOLE.to_string()
                } else {
                    name.clone()
                };
                (name, eff)
            })
            .collect();
    }

    /// A reloaded config: new routes apply from the next `sync`; existing groups keep their
    /// alerts until then (alerts that now route elsewhere resolve in their old group).
    pub fn reconfigure(&mut self, cfg: &NotifyConfig, disabled: &BTreeSet<String>, url: &str) {
        self.route = cfg.route.clone();
        self.set_receivers(cfg, disabled);
        self.external_url = url.trim_end_matches('/').to_string();
    }

    /// Adds a mute stage (silences, inhibition, maintenance windows).
    pub fn add_muter(&mut self, m: Arc<dyn Muter>) {
        self.mutes.push(m);
    }

    fn receiver_for(&self, route: &Route) -> String {
        self.effective
            .get(&route.receiver)
            .cloned()
            .unwrap_or_else(|| route.receiver.clone())
    }

    /// Loads the persisted log, and rebuilds the groups that were firing when the daemon
    /// stopped, so an alert that resolved meanwhile still gets its resolve.
    /// Forgets every group and log entry (routes, receivers and mute stages stay): before a
    /// [`Dispatcher::restore`] from the store by a replica that takes over leadership, whose
    /// memory may be older than what the previous leader wrote.
    pub fn forget(&mut self) {
        self.groups.clear();
        self.log.clear();
    }

    pub fn restore(&mut self, entries: &[LogEntry], now: DateTime<Utc>) {
        for e in entries {
            self.log.insert(
                (e.receiver.clone(), e.group_key.clone()),
                Sent {
                    firing: e.firing.iter().cloned().collect(),
                    resolved: e.resolved.iter().cloned().collect(),
                    at: e.sent_at,
                },
            );
            if e.firing.is_empty() {
                continue;
            }
            let alerts: Vec<AlertInfo> = serde_json::from_str(&e.alerts).unwrap_or_default();
            let firing: BTreeSet<&String> = e.firing.iter().collect();
            let alerts: BTreeMap<String, AlertInfo> = alerts
                .into_iter()
                .filter(|a| firing.contains(&a.fingerprint))
                .map(|a| (a.fingerprint.clone(), a))
                .collect();
            let Some(first) = alerts.values().next() else {
                continue;
            };
            let walk = self.route.walk();
            let route = walk
                .iter()
                .copied()
                .find(|r| r.key == e.route_id)
                .cloned()
                .or_else(|| {
                    // The route's key changed while synmon was down (its matchers, or a
                    // parent's, were edited): keep the group under its old key on a route the
                    // alerts match now that delivers to the same receiver. At the next sync its
                    // alerts land in the new key's group and this one resolves, so the old
                    // incident or message is closed, as after a reload.
                    self.route
                        .matches(&first.labels)
                        .into_iter()
                        .find(|r| r.receiver == e.receiver)
                        .map(|r| Route {
                            key: e.route_id.clone(),
                            routes: Vec::new(),
                            ..r.clone()
                        })
                });
            let Some(route) = route else {
                continue;
            };
            // The receiver the route delivers to now (it may have been disabled meanwhile).
            let receiver = self.receiver_for(&route);
            self.groups.insert(
                e.group_key.clone(),
                Group {
                    next_flush: now + ms(route.group_wait),
                    receiver,
                    labels: e.group_labels.clone(),
                    route,
                    alerts,
                },
            );
        }
    }

    /// Replaces the set of firing alerts: each is routed into its groups (new groups flush after
    /// `group_wait`); an alert a group holds as firing that is no longer reported for it is
    /// resolved now.
    pub fn sync(&mut self, firing: &[IncomingAlert], now: DateTime<Utc>) {
        for m in &self.mutes {
            m.observe(firing, now);
        }
        let mut assigned: BTreeSet<(String, String)> = BTreeSet::new();
        for a in firing {
            let routes: Vec<Route> = self.route.matches(&a.labels).into_iter().cloned().collect();
            for route in routes {
                let labels = route.group_labels(&a.labels);
                let receiver = self.receiver_for(&route);
                let key = route.group_key(&labels);
                let group = self.groups.entry(key.clone()).or_insert_with(|| {
                    // Alertmanager: an alert older than group_wait flushes its new group at once.
                    let wait = if a.starts_at + ms(route.group_wait) <= now {
                        chrono::Duration::zero()
                    } else {
                        ms(route.group_wait)
                    };
                    Group {
                        next_flush: now + wait,
                        receiver: receiver.clone(),
                        labels,
                        route: route.clone(),
                        alerts: BTreeMap::new(),
                    }
                });
                group.receiver = receiver;
                group.route = route;
                group.alerts.insert(
                    a.fingerprint.clone(),
                    AlertInfo {
                        fingerprint: a.fingerprint.clone(),
                        status: Status::Firing,
                        labels: a.labels.clone(),
                        annotations: a.annotations.clone(),
                        starts_at: a.starts_at,
                        ends_at: None,
                        condition: a.condition.clone(),
                        run: a.run.clone(),
                        affected: a.affected.clone(),
                    },
                );
                assigned.insert((key, a.fingerprint.clone()));
            }
        }
        for (key, g) in &mut self.groups {
            for (fp, a) in &mut g.alerts {
                if a.status == Status::Firing && !assigned.contains(&(key.clone(), fp.clone())) {
                    a.status = Status::Resolved;
                    a.ends_at = Some(now);
                }
            }
        }
    }

    /// When the next group is due (the caller's timer).
    pub fn next_due(&self) -> Option<DateTime<Utc>> {
        self.groups.values().map(|g| g.next_flush).min()
    }

    /// Flushes every group that is due: mute, dedup, and plan the notifications.
    pub fn flush_due(&mut self, now: DateTime<Utc>) -> Flush {
        let mut out = Flush::default();
        let due: Vec<String> = self
            .groups
            .iter()
            .filter(|(_, g)| g.next_flush <= now)
            .map(|(k, _)| k.clone())
            .collect();
        for key in due {
            let Some(g) = self.groups.get_mut(&key) else {
                continue;
            };
            g.next_flush = now + ms(g.route.group_interval);
            let muted = |labels: &Labels| self.mutes.iter().any(|m| m.muted(labels, now));
            let firing: Vec<&AlertInfo> = g
                .alerts
                .values()
                .filter(|a| a.status == Status::Firing && !muted(&a.labels))
                .collect();
            // Every firing alert muted and the receiver was told about one of them: the
            // pipeline stops here for this group, as in Alertmanager. Going on would log
            // "nothing fires" and lose the resolve the receiver is owed once that alert
            // recovers. A muted alert the receiver never heard of owes nothing: the group's
            // other alerts resolve as usual (an incident's page resolves while an alert that
            // follows from it is still held muted).
            let sent = self.log.get(&(g.receiver.clone(), key.clone()));
            if firing.is_empty()
                && g.alerts.values().any(|a| {
                    a.status == Status::Firing
                        && sent.is_some_and(|s| s.firing.contains(&a.fingerprint))
                })
            {
                continue;
            }
            let resolved: Vec<&AlertInfo> = g
                .alerts
                .values()
                .filter(|a| a.status == Status::Resolved)
                .collect();
            out.flushed_resolved.push((
                key.clone(),
                resolved.iter().map(|a| a.fingerprint.clone()).collect(),
            ));
            let firing_set: BTreeSet<String> =
                firing.iter().map(|a| a.fingerprint.clone()).collect();
            let resolved_set: BTreeSet<String> =
                resolved.iter().map(|a| a.fingerprint.clone()).collect();
            if !needs_update(
                sent,
                &firing_set,
                &resolved_set,
                g.route.send_resolved,
                g.route.repeat_interval,
                now,
            ) {
                continue;
            }
            let mut alerts: Vec<AlertInfo> = firing.iter().map(|a| (*a).clone()).collect();
            if g.route.send_resolved {
                alerts.extend(resolved.iter().map(|a| (*a).clone()));
            }
            let notification = (!alerts.is_empty()).then(|| Notification {
                receiver: g.receiver.clone(),
                group_key: key.clone(),
                group_labels: g.labels.clone(),
                common_labels: common(alerts.iter().map(|a| &a.labels)),
                common_annotations: common(alerts.iter().map(|a| &a.annotations)),
                status: if firing.is_empty() {
                    Status::Resolved
                } else {
                    Status::Firing
                },
                alerts: alerts.clone(),
                external_url: self.external_url.clone(),
                test: false,
                created_at: now,
            });
            out.planned.push(Planned {
                notification,
                log: LogEntry {
                    receiver: g.receiver.clone(),
                    group_key: key.clone(),
                    route_id: g.route.key.clone(),
                    group_labels: g.labels.clone(),
                    firing: firing_set.into_iter().collect(),
                    resolved: if g.route.send_resolved {
                        resolved_set.into_iter().collect()
                    } else {
                        Vec::new()
                    },
                    alerts: serde_json::to_string(&alerts).unwrap_or_else(|_| "[]".into()),
                    sent_at: now,
                },
            });
        }
        out
    }

    /// The flush's plan is in the store: remember what was sent, and drop the resolved alerts
    /// that were flushed (and empty groups).
    pub fn committed(&mut self, flush: &Flush) {
        for p in &flush.planned {
            self.log.insert(
                (p.log.receiver.clone(), p.log.group_key.clone()),
                Sent {
                    firing: p.log.firing.iter().cloned().collect(),
                    resolved: p.log.resolved.iter().cloned().collect(),
                    at: p.log.sent_at,
                },
            );
        }
        for (key, fps) in &flush.flushed_resolved {
            if let Some(g) = self.groups.get_mut(key) {
                for fp in fps {
                    if g.alerts
                        .get(fp)
                        .is_some_and(|a| a.status == Status::Resolved)
                    {
                        g.alerts.remove(fp);
                    }
                }
                if g.alerts.is_empty() {
                    self.groups.remove(key);
                }
            }
        }
    }

    /// The plan could not be stored: flush the same groups again at the next tick.
    pub fn failed(&mut self, flush: &Flush, now: DateTime<Utc>) {
        for (key, _) in &flush.flushed_resolved {
            if let Some(g) = self.groups.get_mut(key) {
                g.next_flush = now;
            }
        }
    }

    /// Alerts per group, for the API: (group key, receiver, alerts).
    pub fn groups(&self) -> Vec<(String, String, Vec<AlertInfo>)> {
        self.groups
            .iter()
            .map(|(k, g)| {
                (
                    k.clone(),
                    g.receiver.clone(),
                    g.alerts.values().cloned().collect(),
                )
            })
            .collect()
    }
}

/// The label pairs every map shares.
fn common<'a>(mut maps: impl Iterator<Item = &'a Labels>) -> Labels {
    let Some(first) = maps.next() else {
        return Labels::new();
    };
    let mut out = first.clone();
    for m in maps {
        out.retain(|k, v| m.get(k) == Some(v));
    }
    out
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::notify::config::{RawReceiver, RawRoute, validate};

    fn cfg(yaml: &str) -> NotifyConfig {
        #[derive(serde::Deserialize)]
        struct Doc {
            receivers: Vec<RawReceiver>,
            route: RawRoute,
        }
        let d: Doc = yaml_serde::from_str(yaml).unwrap();
        validate(d.receivers, Some(d.route), Path::new("."), &mut |p, m| {
            panic!("{p}: {m}")
        })
    }

    fn at(s: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + s, 0).unwrap()
    }

    fn firing(name: &str) -> IncomingAlert {
        let labels: Labels = [
            ("alertname".to_string(), name.to_string()),
            ("route".to_string(), "page".to_string()),
        ]
        .into_iter()
        .collect();
        IncomingAlert {
            fingerprint: crate::rules::eval::fingerprint(name, &labels),
            labels,
            annotations: Labels::new(),
            starts_at: at(0),
            condition: None,
            run: None,
            affected: Vec::new(),
        }
    }

    /// A receiver without its secret is disabled and its routes deliver to the console: the
    /// alert is never dropped, and the group key still names the configured route.
    #[test]
    fn a_disabled_receiver_falls_back_to_the_console() {
        let c = cfg(r#"
receivers:
  - { name: pagerduty, type: pagerduty, routing_key: "" }
route:
  receiver: console
  group_wait: 0s
  routes:
    - { matchers: { route: page }, receiver: pagerduty }
"#);
        let (built, disabled) = crate::notify::pipeline::build_receivers(&c);
        assert!(disabled.contains("pagerduty"));
        assert!(!built.contains_key("pagerduty"));
        assert!(built.contains_key("console"));
        let mut d = Dispatcher::new(&c, &disabled, "http://x");
        d.sync(&[firing("down")], at(0));
        let f = d.flush_due(at(0));
        assert_eq!(f.planned.len(), 1);
        let n = f.planned[0].notification.as_ref().unwrap();
        assert_eq!(n.receiver, "console");
        assert_eq!(
            n.group_key,
            "{}/{route=\"page\"}:pagerduty{alertname=\"down\"}"
        );
    }

    /// A flush whose plan could not be stored is retried at the next tick, and the log is not
    /// updated until it is stored.
    #[test]
    fn a_failed_store_write_flushes_again() {
        let c = cfg(r#"
receivers:
  - { name: hook, type: webhook, url: "http://127.0.0.1:9/hook" }
route:
  receiver: hook
  group_wait: 0s
  group_interval: 1m
"#);
        let mut d = Dispatcher::new(&c, &BTreeSet::new(), "http://x");
        d.sync(&[firing("down")], at(0));
        let f = d.flush_due(at(0));
        assert_eq!(f.planned.len(), 1);
        d.failed(&f, at(1));
        let f = d.flush_due(at(1));
        assert_eq!(f.planned.len(), 1, "the same notification is planned again");
        d.committed(&f);
        assert!(
            d.flush_due(at(70)).planned.is_empty(),
            "now it is in the log"
        );
    }

    struct Switch(std::sync::atomic::AtomicBool);

    impl Muter for Switch {
        fn muted(&self, _: &Labels, _: DateTime<Utc>) -> bool {
            self.0.load(std::sync::atomic::Ordering::SeqCst)
        }
    }

    /// A group whose every firing alert is muted is skipped whole: the log keeps what the
    /// receiver was told, so the resolve it is owed still goes out after the mute ends.
    #[test]
    fn muting_a_whole_group_keeps_the_log_and_the_resolve() {
        let c = cfg(r#"
receivers:
  - { name: hook, type: webhook, url: "http://127.0.0.1:9/hook" }
route:
  receiver: hook
  group_wait: 0s
  group_interval: 10s
  send_resolved: true
"#);
        let mute = Arc::new(Switch(std::sync::atomic::AtomicBool::new(false)));
        let mut d = Dispatcher::new(&c, &BTreeSet::new(), "http://x");
        d.add_muter(mute.clone());
        d.sync(&[firing("down")], at(0));
        let f = d.flush_due(at(0));
        assert_eq!(f.planned.len(), 1);
        d.committed(&f);
        mute.0.store(true, std::sync::atomic::Ordering::SeqCst);
        let f = d.flush_due(at(10));
        assert!(
            f.planned.is_empty(),
            "muted: nothing planned, nothing logged"
        );
        d.committed(&f);
        d.sync(&[], at(15)); // recovers while muted
        mute.0.store(false, std::sync::atomic::Ordering::SeqCst);
        let f = d.flush_due(at(20));
        assert_eq!(f.planned.len(), 1);
        let n = f.planned[0].notification.as_ref().expect("the resolve");
        assert_eq!(n.status, Status::Resolved);
    }

    /// One group holds an incident's page and an alert that follows from it, muted since it
    /// fired and never sent: when the page resolves, the group resolves, instead of staying
    /// open (for the receiver: an incident held open) until the muted alert ends.
    #[test]
    fn a_muted_alert_never_sent_does_not_hold_its_group_open() {
        struct MuteNamed(&'static str);
        impl Muter for MuteNamed {
            fn muted(&self, labels: &Labels, _now: DateTime<Utc>) -> bool {
                labels.get("alertname").map(String::as_str) == Some(self.0)
            }
        }
        let c = cfg(r#"
receivers:
  - { name: hook, type: webhook, url: "http://127.0.0.1:9/hook" }
route:
  receiver: hook
  group_by: []
  group_wait: 0s
  group_interval: 10s
  send_resolved: true
"#);
        let mut d = Dispatcher::new(&c, &BTreeSet::new(), "http://x");
        d.add_muter(Arc::new(MuteNamed("burn")));
        d.sync(&[firing("down")], at(0));
        let f = d.flush_due(at(0));
        assert_eq!(f.planned.len(), 1);
        d.committed(&f);
        d.sync(&[firing("down"), firing("burn")], at(5));
        let f = d.flush_due(at(10));
        assert!(f.planned.is_empty(), "the muted alert adds nothing");
        d.committed(&f);
        // The page resolves; the muted alert still fires.
        d.sync(&[firing("burn")], at(15));
        let f = d.flush_due(at(20));
        assert_eq!(f.planned.len(), 1);
        let n = f.planned[0].notification.as_ref().expect("the resolve");
        assert_eq!(n.status, Status::Resolved);
        assert_eq!(n.alerts.len(), 1);
        assert_eq!(n.alerts[0].labels["alertname"], "down");
    }
}
