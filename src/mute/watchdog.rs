//! The watchdog: an always-firing `synmon_watchdog` alert routed to a dead man's switch, so
//! on-call learns when synmon itself has stopped (the switch alarms when the pings stop).
//!
//! The alert joins the firing alerts at every evaluation, so it proves the evaluator and the
//! whole notification pipeline alive, not just the process. Its route is put first in the
//! routing tree (key [`WATCHDOG_KEY`], which configured routes cannot take): no group wait, and
//! a group interval and repeat interval of `watchdog.interval`, so the receiver is pinged once
//! per interval.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::notify::dispatch::IncomingAlert;
use crate::notify::route::{GroupBy, Route, WATCHDOG_KEY};
use crate::rules::model::{Matcher, Matchers};

pub const ALERTNAME: &str = "synmon_watchdog";

#[derive(Debug, Clone)]
pub struct WatchdogConfig {
    pub receiver: String,
    pub interval: Duration,
}

/// The watchdog's route, inserted as the first child of the root.
pub fn route(cfg: &WatchdogConfig) -> Route {
    Route {
        key: WATCHDOG_KEY.into(),
        receiver: cfg.receiver.clone(),
        matchers: Matchers(vec![
            Matcher::parse("alertname", ALERTNAME).expect("a plain matcher"),
        ]),
        group_by: GroupBy::Labels(vec!["alertname".into()]),
        group_wait: Duration::ZERO,
        group_interval: cfg.interval,
        repeat_interval: cfg.interval,
        send_resolved: false,
        continue_matching: false,
        routes: Vec::new(),
    }
}

/// The always-firing alert. `since`: when the daemon started (its `startsAt`).
pub fn alert(since: DateTime<Utc>) -> IncomingAlert {
    let labels: BTreeMap<String, String> = BTreeMap::from([
        ("alertname".to_string(), ALERTNAME.to_string()),
        ("severity".to_string(), "none".to_string()),
    ]);
    IncomingAlert {
        fingerprint: crate::rules::eval::fingerprint(ALERTNAME, &labels),
        annotations: BTreeMap::from([(
            "summary".to_string(),
            "synmon is alive: this alert always fires; alarm when its pings stop".to_string(),
        )]),
        labels,
        starts_at: since,
        condition: None,
        run: None,
        affected: Vec::new(),
    }
}
