//! `GET /api/v2/alerts` and `GET /api/v2/alerts/groups`: the alerts firing now, as the
//! notification pipeline sees them.
//!
//! The list is what the evaluator hands the pipeline (`notify::incoming::firing_alerts`, plus
//! the watchdog when configured): its labels are the routing labels (the rule's `route`
//! included), which are also what silences and inhibition match. Pending alerts are left out,
//! as Prometheus never sends them to Alertmanager. `status.state` is `suppressed` when a
//! silence, an inhibition or a maintenance window mutes the alert (the last has no
//! Alertmanager field: both lists are then empty), else `active`; synmon has no
//! `unprocessed` alerts (an alert is judged when it is listed).

use std::collections::{BTreeMap, HashMap};

use axum::Json;
use axum::extract::{RawQuery, State};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use regex_automata::meta::Regex;
use serde::Serialize;

use super::{AppState, Receiver, filter, flag, query_pairs, refuse};
use crate::notify::dispatch::IncomingAlert;
use crate::notify::message::Labels;
use crate::rules::model::Matcher;
use crate::view::DaemonView;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
enum AlertState {
    Active,
    Suppressed,
}

#[derive(Clone, Serialize)]
#[serde(rename_all = "camelCase")]
struct AlertStatus {
    state: AlertState,
    silenced_by: Vec<String>,
    /// Fingerprints of the alerts inhibiting this one.
    inhibited_by: Vec<String>,
}

#[derive(Clone, Serialize)]
#[serde(rename_all = "camelCase")]
struct GettableAlert {
    labels: Labels,
    annotations: Labels,
    receivers: Vec<Receiver>,
    fingerprint: String,
    starts_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    ends_at: DateTime<Utc>,
    #[serde(rename = "generatorURL")]
    generator_url: String,
    status: AlertStatus,
}

#[derive(Serialize)]
struct AlertGroup {
    labels: Labels,
    receiver: Receiver,
    alerts: Vec<GettableAlert>,
}

/// How many evaluation intervals an alert's `endsAt` lies past its last evaluation: when it
/// would count as resolved if no evaluation saw it again (Prometheus sends the same bound).
const ENDS_AFTER_EVALUATIONS: u32 = 4;

/// Every firing alert (and the watchdog) with its mute state and receivers, by fingerprint.
async fn current(s: &DaemonView) -> Vec<GettableAlert> {
    let cfg = s.config();
    let now = s.now();
    let url = s.public_url();
    let last = s.last_runs().runs;
    let (mut firing, updated): (Vec<IncomingAlert>, HashMap<String, DateTime<Utc>>) = {
        let a = s.alerting().await;
        (
            crate::notify::incoming::firing_alerts(
                a.state.alerts.values(),
                &cfg.rules,
                &last,
                &url,
                cfg.tracing.ui_url.as_deref(),
            ),
            a.state
                .alerts
                .values()
                .map(|al| (al.fingerprint.clone(), al.last_eval))
                .collect(),
        )
    };
    if cfg.mute.watchdog.is_some() {
        firing.push(crate::mute::watchdog::alert(s.started_at()));
    }
    let ends_after = cfg.evaluation_interval * ENDS_AFTER_EVALUATIONS;
    let ends_after = chrono::Duration::from_std(ends_after).unwrap_or(chrono::Duration::zero());
    let mut out: Vec<GettableAlert> = firing
        .iter()
        .map(|a| {
            let mute = s.mute().state(&a.labels, now);
            let inhibited_by: Vec<String> = mute
                .inhibited_by
                .iter()
                .map(|src| {
                    firing
                        .iter()
                        .find(|f| &f.labels == src)
                        .map(|f| f.fingerprint.clone())
                        // A source no longer firing (its rule's `hold`): its labels' fingerprint.
                        .unwrap_or_else(|| {
                            let name = src.get("alertname").map(String::as_str).unwrap_or("");
                            crate::rules::eval::fingerprint(name, src)
                        })
                })
                .collect();
            let suppressed = mute.silenced || mute.inhibited || mute.maintenance.is_some();
            let mut receivers: Vec<String> = Vec::new();
            for r in cfg.notify.route.matches(&a.labels) {
                if !receivers.contains(&r.receiver) {
                    receivers.push(r.receiver.clone());
                }
            }
            let updated_at = updated.get(&a.fingerprint).copied().unwrap_or(now);
            GettableAlert {
                labels: a.labels.clone(),
                annotations: a.annotations.clone(),
                receivers: receivers
                    .into_iter()
                    .map(|name| Receiver { name })
                    .collect(),
                fingerprint: a.fingerprint.clone(),
                starts_at: a.starts_at,
                updated_at,
                ends_at: updated_at + ends_after,
                generator_url: a
                    .run
                    .as_ref()
                    .map(|r| r.run_url.clone())
                    .unwrap_or_else(|| format!("{url}/")),
                status: AlertStatus {
                    state: if suppressed {
                        AlertState::Suppressed
                    } else {
                        AlertState::Active
                    },
                    silenced_by: mute.silenced_by,
                    inhibited_by,
                },
            }
        })
        .collect();
    out.sort_by(|a, b| a.fingerprint.cmp(&b.fingerprint));
    out
}

/// The query parameters both endpoints take (Alertmanager's defaults: every flag true).
struct AlertFilter {
    active: bool,
    silenced: bool,
    inhibited: bool,
    matchers: Vec<Matcher>,
    /// Anchored, as Alertmanager compiles it.
    receiver: Option<Regex>,
}

impl AlertFilter {
    fn from_query(q: Option<&str>) -> Result<AlertFilter, String> {
        let pairs = query_pairs(q);
        // `unprocessed` is read for its syntax: synmon never lists an unprocessed alert.
        flag(&pairs, "unprocessed", true)?;
        let mut matchers = Vec::new();
        for (_, v) in pairs.iter().filter(|(k, _)| k == "filter") {
            matchers.extend(filter::parse(v)?);
        }
        let receiver = match pairs.iter().rev().find(|(k, _)| k == "receiver") {
            Some((_, r)) if !r.is_empty() => Some(
                Regex::new(&format!("^(?:{r})$"))
                    .map_err(|_| format!("`receiver`: `{r}` is not a regular expression"))?,
            ),
            _ => None,
        };
        Ok(AlertFilter {
            active: flag(&pairs, "active", true)?,
            silenced: flag(&pairs, "silenced", true)?,
            inhibited: flag(&pairs, "inhibited", true)?,
            matchers,
            receiver,
        })
    }

    /// Alertmanager's rules: `active=false` drops active alerts, `silenced=false` those any
    /// silence mutes, `inhibited=false` those any alert inhibits; every matcher must match.
    fn keeps(&self, a: &GettableAlert) -> bool {
        (self.active || a.status.state != AlertState::Active)
            && (self.silenced || a.status.silenced_by.is_empty())
            && (self.inhibited || a.status.inhibited_by.is_empty())
            && self.matchers.iter().all(|m| m.matches(&a.labels))
    }

    fn receiver_ok(&self, name: &str) -> bool {
        self.receiver.as_ref().is_none_or(|r| r.is_match(name))
    }
}

/// `GET /api/v2/alerts`.
pub(super) async fn list(State(s): State<AppState>, RawQuery(q): RawQuery) -> Response {
    let f = match AlertFilter::from_query(q.as_deref()) {
        Ok(f) => f,
        Err(why) => return refuse(why),
    };
    let alerts: Vec<GettableAlert> = current(&s)
        .await
        .into_iter()
        .filter(|a| f.keeps(a) && a.receivers.iter().any(|r| f.receiver_ok(&r.name)))
        .collect();
    Json(alerts).into_response()
}

/// `GET /api/v2/alerts/groups`: the alerts by route and group labels, as the pipeline groups
/// them (one group per route an alert goes to, keyed like the pipeline's group keys).
pub(super) async fn groups(State(s): State<AppState>, RawQuery(q): RawQuery) -> Response {
    let f = match AlertFilter::from_query(q.as_deref()) {
        Ok(f) => f,
        Err(why) => return refuse(why),
    };
    let cfg = s.config();
    let mut groups: BTreeMap<String, AlertGroup> = BTreeMap::new();
    for a in current(&s).await.into_iter().filter(|a| f.keeps(a)) {
        let routes = cfg.notify.route.matches(&a.labels);
        let mut keys = Vec::new();
        for r in routes.into_iter().filter(|r| f.receiver_ok(&r.receiver)) {
            let labels = r.group_labels(&a.labels);
            let key = r.group_key(&labels);
            groups.entry(key.clone()).or_insert_with(|| AlertGroup {
                labels,
                receiver: Receiver {
                    name: r.receiver.clone(),
                },
                alerts: Vec::new(),
            });
            keys.push(key);
        }
        // An alert in several groups (`continue: true`) is listed in each.
        for k in keys {
            groups
                .get_mut(&k)
                .expect("inserted above")
                .alerts
                .push(a.clone());
        }
    }
    Json(groups.into_values().collect::<Vec<_>>()).into_response()
}
