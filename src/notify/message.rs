//! What a receiver is asked to deliver: one notification for one alert group, with everything a
//! person on call needs to act without opening a dashboard (failing step, error, value against
//! threshold, screenshot, links). Built once by the pipeline and stored in the outbox as JSON, so
//! every retry, and a retry after a restart, sends exactly the same content.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Label names and values, sorted by name (as alert labels are).
pub type Labels = BTreeMap<String, String>;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Firing,
    Resolved,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Firing => "firing",
            Status::Resolved => "resolved",
        }
    }
}

/// One notification for one alert group and one receiver.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notification {
    /// The receiver's name in the config.
    pub receiver: String,
    /// Identifies the alert group across evaluations, reloads and restarts: the route's key
    /// (made of matchers, not position), the receiver and the group's label values
    /// (`{}/{severity="page"}:pagerduty{alertname="down"}`). Deterministic, so PagerDuty's
    /// `dedup_key` and Slack's stored message reference survive a restart or a reload that
    /// adds other routes.
    pub group_key: String,
    /// The `group_by` labels and their values.
    pub group_labels: Labels,
    /// Labels every alert in the group shares.
    pub common_labels: Labels,
    pub common_annotations: Labels,
    /// Firing when at least one alert of the group fires.
    pub status: Status,
    /// Firing alerts first, then resolved ones, each sorted by fingerprint.
    pub alerts: Vec<AlertInfo>,
    /// The daemon's public base URL (links to runs, artifacts, the status page).
    pub external_url: String,
    /// A `synmon notify test` notification: receivers label it clearly as a test.
    #[serde(default)]
    pub test: bool,
    pub created_at: DateTime<Utc>,
}

/// One alert of the group, with the evidence of the check behind it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertInfo {
    pub fingerprint: String,
    pub status: Status,
    /// Includes `alertname`, `severity` and, when the rule names one, `route`.
    pub labels: Labels,
    /// `summary`, `description`, `runbook_url`, and notes such as `no_data`.
    pub annotations: Labels,
    pub starts_at: DateTime<Utc>,
    /// Set once resolved.
    pub ends_at: Option<DateTime<Utc>>,
    /// The measured value and what it was judged against: `p95 612 ms > 400 ms over 5m`.
    pub condition: Option<Condition>,
    /// The latest run of the check the alert is about (when its labels name a check).
    pub run: Option<RunEvidence>,
    /// For an alert about several checks at once (a whole target down, an SLO burning): the
    /// latest run of each of its checks that is failing now, so the one page names them all
    /// with their failing steps, errors and screenshots.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub affected: Vec<RunEvidence>,
}

/// The rule's condition at the time of the notification.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Condition {
    /// `p95`, `ratio`, `last`, `burn rate`, ...
    pub aggregate: String,
    pub value: Option<f64>,
    /// `>`, `<`, `>=`, `<=`.
    pub op: String,
    pub threshold: f64,
    /// Unit of value and threshold (`ms`, `%`, or empty).
    pub unit: String,
    /// `5m`, `1h`, `30d`.
    pub window: String,
}

impl Condition {
    /// `p95 612 ms > 400 ms over 5m`; `no data over 5m` when there was no value.
    pub fn describe(&self) -> String {
        let unit = |v: f64| {
            let n = crate::rules::eval::fmt_num(v);
            match self.unit.as_str() {
                "" => n,
                "%" => format!("{n}%"),
                u => format!("{n} {u}"),
            }
        };
        match self.value {
            Some(v) => format!(
                "{} {} {} {} over {}",
                self.aggregate,
                unit(v),
                self.op,
                unit(self.threshold),
                self.window
            ),
            None => format!("no data over {}", self.window),
        }
    }
}

/// The latest failing (or, on resolve, latest) run of the alert's check.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunEvidence {
    pub run_id: String,
    pub check: String,
    pub target: String,
    pub location: String,
    /// `pass`, `fail`, `error`.
    pub outcome: String,
    pub started_at: DateTime<Utc>,
    pub total_ms: f64,
    /// The first step that did not pass, and its error (secrets already redacted).
    pub failing_step: Option<String>,
    pub error: Option<String>,
    /// Each step's name and latency, in run order.
    pub steps: Vec<StepTiming>,
    /// Link to the run on the daemon (`{external_url}/runs/{id}`).
    pub run_url: String,
    /// The failure screenshot on the daemon's disk (PNG), when the run kept one.
    pub screenshot_path: Option<String>,
    pub screenshot_url: Option<String>,
    /// Locations where the check is failing now.
    #[serde(default)]
    pub failing_locations: Vec<String>,
    /// The run's trace id (its requests carried it; see `crate::trace`), when it has one.
    #[serde(default)]
    pub trace_id: Option<String>,
    /// The trace's page in the tracing UI (`tracing.ui_url`), when one is configured.
    #[serde(default)]
    pub trace_url: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepTiming {
    pub name: String,
    pub latency_ms: f64,
    pub outcome: String,
}

/// See [`Notification::dedup_key`].
pub fn dedup_key(receiver: &str, group_key: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in receiver
        .as_bytes()
        .iter()
        .chain(&[0xff])
        .chain(group_key.as_bytes())
    {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("synmon-{h:016x}")
}

impl Notification {
    /// A stable identifier of the alert group for systems that deduplicate on a key (PagerDuty's
    /// `dedup_key`): FNV-1a of the receiver and the group key, so it is the same on every
    /// replica, version and restart.
    pub fn dedup_key(&self) -> String {
        dedup_key(&self.receiver, &self.group_key)
    }

    pub fn firing(&self) -> impl Iterator<Item = &AlertInfo> {
        self.alerts.iter().filter(|a| a.status == Status::Firing)
    }

    pub fn resolved(&self) -> impl Iterator<Item = &AlertInfo> {
        self.alerts.iter().filter(|a| a.status == Status::Resolved)
    }

    /// The group's alert name (`alertname` shared by all alerts, else the first alert's).
    pub fn alertname(&self) -> &str {
        self.common_labels
            .get("alertname")
            .or_else(|| self.alerts.first().and_then(|a| a.labels.get("alertname")))
            .map(String::as_str)
            .unwrap_or("alert")
    }

    /// The group's severity as the rules wrote it (`page`, `critical`, `warning`, `ticket`, ...).
    pub fn severity(&self) -> &str {
        self.common_labels
            .get("severity")
            .or_else(|| self.alerts.first().and_then(|a| a.labels.get("severity")))
            .map(String::as_str)
            .unwrap_or("warning")
    }

    /// One line a person can read: `[FIRING:2] check_error_rate_high (check=align_category)`.
    pub fn title(&self) -> String {
        let n = match self.status {
            Status::Firing => self.firing().count(),
            Status::Resolved => self.alerts.len(),
        };
        let mut t = format!(
            "{}[{}:{n}] {}",
            if self.test { "[TEST] " } else { "" },
            self.status.as_str().to_ascii_uppercase(),
            self.alertname()
        );
        let extra: Vec<String> = self
            .group_labels
            .iter()
            .filter(|(k, _)| k.as_str() != "alertname")
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        if !extra.is_empty() {
            t.push_str(&format!(" ({})", extra.join(", ")));
        }
        t
    }
}
