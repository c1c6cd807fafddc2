//! The PagerDuty receiver (Events API v2). A pure builder turns a notification into an event
//! (tested without a network); `send` makes one POST to `/v2/enqueue` and classifies the answer
//! the way PagerDuty documents it: 202 accepted, 400 never accepted, 429/5xx/network try again.
//! The `dedup_key` is derived from the alert group, so a resend after a crash or a retry after a
//! lost 202 updates the same incident instead of opening a second one.

use std::path::Path;
use std::time::Duration;

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::config::Secret;

use super::config::field;
use super::message::{AlertInfo, Labels, Notification, Status};
use super::receiver::{Delivered, Receiver, SendContext, SendError, http_client, network_error};
use crate::http_util::retry_after;

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawPagerDuty {
    pub name: String,
    /// The Events API v2 enqueue URL (`https://events.pagerduty.com/v2/enqueue`).
    #[serde(default)]
    pub url: Option<String>,
    /// The integration's routing key, a secret. Empty: the receiver is disabled.
    #[schemars(with = "crate::config::schema::SecretText")]
    pub routing_key: String,
    /// `payload.source` (default `synmon`).
    #[serde(default)]
    pub source: Option<String>,
    #[serde(default)]
    #[schemars(with = "Option<crate::config::schema::Duration>")]
    pub timeout: Option<String>,
}

#[derive(Debug, Clone)]
pub struct PagerDutyConfig {
    pub name: String,
    pub url: reqwest::Url,
    pub routing_key: Secret,
    pub source: Option<String>,
    pub timeout: Duration,
}

pub const DEFAULT_URL: &str = "https://events.pagerduty.com/v2/enqueue";

pub fn validate(
    raw: RawPagerDuty,
    dir: &Path,
    err: &mut dyn FnMut(&str, String),
) -> PagerDutyConfig {
    let url = field::endpoint(raw.url, DEFAULT_URL, "url", err);
    let routing_key = field::secret(&raw.routing_key, dir, "routing_key", err);
    let timeout = field::timeout(raw.timeout.as_deref(), err);
    PagerDutyConfig {
        name: raw.name,
        url,
        routing_key,
        source: raw.source.filter(|s| !s.is_empty()),
        timeout,
    }
}

/// PagerDuty's limit on `payload.summary`, in characters.
pub const MAX_SUMMARY_CHARS: usize = 1024;
/// PagerDuty's limit on a whole event, in bytes of JSON.
pub const MAX_EVENT_BYTES: usize = 512 * 1024;
/// `payload.source` when the config names none.
pub const DEFAULT_SOURCE: &str = "synmon";

/// The routing key as it goes on the wire. Serialized as-is (PagerDuty needs it in the body) but
/// redacted by `Debug`, so an event printed in a test failure or a log line does not leak it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RoutingKey(String);

impl fmt::Debug for RoutingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(crate::config::REDACTED)
    }
}

/// An Events API v2 event. A resolve carries only `routing_key`, `dedup_key` and
/// `event_action`: PagerDuty ignores a payload on resolve, and sending less leaks less.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub routing_key: RoutingKey,
    /// `trigger` or `resolve`.
    pub event_action: String,
    pub dedup_key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload: Option<Payload>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub links: Vec<Link>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub images: Vec<Image>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_url: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Payload {
    /// At most `MAX_SUMMARY_CHARS` characters.
    pub summary: String,
    pub source: String,
    /// `critical`, `error`, `warning` or `info`.
    pub severity: String,
    /// RFC 3339: when the group's earliest firing alert started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<String>,
    /// The check.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub component: Option<String>,
    /// The target (the system the check exercises).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// The alert name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub class: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom_details: Option<serde_json::Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Link {
    pub href: String,
    pub text: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Image {
    pub src: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub href: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alt: Option<String>,
}

/// PagerDuty's severity for a rule's `severity` label. Rules speak in on-call terms (`page`,
/// `ticket`); PagerDuty only knows four levels, and an unknown word must still page someone
/// sensibly, hence `warning` rather than a rejected event.
pub fn map_severity(rule_severity: &str) -> &'static str {
    match rule_severity.trim().to_ascii_lowercase().as_str() {
        "page" | "critical" => "critical",
        "error" => "error",
        "warning" | "ticket" => "warning",
        "info" => "info",
        _ => "warning",
    }
}

/// Cuts `s` to at most `max` characters on a character boundary, ending with `…` when cut.
pub fn truncate_chars(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let keep = max.saturating_sub(1);
    let end = s
        .char_indices()
        .nth(keep)
        .map(|(i, _)| i)
        .unwrap_or(s.len());
    format!("{}…", &s[..end])
}

/// The one line an on-call engineer sees first: the title, then the first firing alert's
/// summary, condition and failing step.
fn summary(n: &Notification) -> String {
    let mut s = n.title();
    if let Some(a) = n.firing().next().or_else(|| n.alerts.first()) {
        if let Some(text) = a
            .annotations
            .get("summary")
            .or_else(|| n.common_annotations.get("summary"))
        {
            s.push_str(": ");
            s.push_str(text);
        }
        if let Some(c) = &a.condition {
            s.push_str(&format!(" [{}]", c.describe()));
        }
        if let Some(r) = &a.run
            && let Some(step) = &r.failing_step
        {
            s.push_str(&format!(" step `{step}`"));
            if let Some(e) = &r.error {
                s.push_str(&format!(": {e}"));
            }
        }
    }
    s.replace(['\n', '\r'], " ")
}

/// A label shared by the group (or the first alert's value, or the run's), for the payload's
/// `component`/`group` fields.
fn group_field(
    n: &Notification,
    label: &str,
    from_run: fn(&AlertInfo) -> Option<&str>,
) -> Option<String> {
    n.common_labels
        .get(label)
        .map(String::as_str)
        .or_else(|| {
            n.alerts
                .first()
                .and_then(|a| a.labels.get(label).map(String::as_str))
        })
        .or_else(|| n.alerts.first().and_then(from_run))
        .filter(|s| !s.is_empty())
        .map(|s| truncate_chars(s, 255))
}

fn alert_details(a: &AlertInfo) -> serde_json::Value {
    let mut d = serde_json::Map::new();
    d.insert("status".into(), a.status.as_str().into());
    d.insert(
        "labels".into(),
        serde_json::to_value(&a.labels).unwrap_or_default(),
    );
    if !a.annotations.is_empty() {
        d.insert(
            "annotations".into(),
            serde_json::to_value(&a.annotations).unwrap_or_default(),
        );
    }
    d.insert("starts_at".into(), rfc3339(a.starts_at).into());
    if let Some(t) = a.ends_at {
        d.insert("ends_at".into(), rfc3339(t).into());
    }
    if let Some(c) = &a.condition {
        d.insert("condition".into(), c.describe().into());
        d.insert("value".into(), serde_json::json!(c.value));
        d.insert("threshold".into(), serde_json::json!(c.threshold));
        d.insert("unit".into(), c.unit.clone().into());
        d.insert("window".into(), c.window.clone().into());
    }
    if let Some(r) = &a.run {
        d.insert("check".into(), r.check.clone().into());
        d.insert("target".into(), r.target.clone().into());
        d.insert("location".into(), r.location.clone().into());
        d.insert("outcome".into(), r.outcome.clone().into());
        d.insert("run_id".into(), r.run_id.clone().into());
        d.insert("run_url".into(), r.run_url.clone().into());
        d.insert("total_ms".into(), serde_json::json!(r.total_ms));
        if let Some(t) = &r.trace_id {
            d.insert("trace_id".into(), t.clone().into());
        }
        if let Some(u) = &r.trace_url {
            d.insert("trace_url".into(), u.clone().into());
        }
        if let Some(s) = &r.failing_step {
            d.insert("failing_step".into(), s.clone().into());
        }
        if let Some(e) = &r.error {
            d.insert("error".into(), e.clone().into());
        }
        if !r.steps.is_empty() {
            d.insert(
                "steps".into(),
                r.steps
                    .iter()
                    .map(|s| serde_json::json!({"name": s.name, "latency_ms": s.latency_ms, "outcome": s.outcome}))
                    .collect(),
            );
        }
        if !r.failing_locations.is_empty() {
            d.insert(
                "failing_locations".into(),
                serde_json::json!(r.failing_locations),
            );
        }
    }
    if !a.affected.is_empty() {
        d.insert(
            "affected".into(),
            a.affected
                .iter()
                .map(|r| {
                    serde_json::json!({
                        "check": r.check,
                        "location": r.location,
                        "outcome": r.outcome,
                        "failing_step": r.failing_step,
                        "error": r.error,
                        "run_url": r.run_url,
                        "screenshot_url": r.screenshot_url,
                        "trace_id": r.trace_id,
                        "trace_url": r.trace_url,
                    })
                })
                .collect(),
        );
    }
    serde_json::Value::Object(d)
}

fn rfc3339(t: chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

fn custom_details(n: &Notification) -> serde_json::Value {
    let mut d = serde_json::Map::new();
    if n.test {
        d.insert(
            "test".into(),
            "a test notification sent by `synmon notify test`".into(),
        );
    }
    d.insert("firing".into(), n.firing().count().into());
    d.insert("resolved".into(), n.resolved().count().into());
    d.insert("group_labels".into(), labels_json(&n.group_labels));
    d.insert(
        "alerts".into(),
        n.alerts.iter().map(alert_details).collect(),
    );
    serde_json::Value::Object(d)
}

fn labels_json(l: &Labels) -> serde_json::Value {
    serde_json::to_value(l).unwrap_or_default()
}

fn links(n: &Notification) -> Vec<Link> {
    let mut out: Vec<Link> = Vec::new();
    let mut push = |href: &str, text: String| {
        if !href.is_empty() && !out.iter().any(|l| l.href == href) {
            out.push(Link {
                href: href.to_string(),
                text,
            });
        }
    };
    let alerts = n.firing().chain(n.resolved());
    for a in alerts {
        for r in a.run.iter().chain(&a.affected) {
            push(
                &r.run_url,
                format!("Run {} of {} from {}", r.run_id, r.check, r.location),
            );
            if let (Some(u), Some(t)) = (&r.trace_url, &r.trace_id) {
                push(u, format!("Trace {t} of {} from {}", r.check, r.location));
            }
        }
        if let Some(rb) = a.annotations.get("runbook_url") {
            push(
                rb,
                format!(
                    "Runbook: {}",
                    a.labels
                        .get("alertname")
                        .map(String::as_str)
                        .unwrap_or("alert")
                ),
            );
        }
    }
    if let Some(rb) = n.common_annotations.get("runbook_url") {
        push(rb, format!("Runbook: {}", n.alertname()));
    }
    out
}

fn images(n: &Notification) -> Vec<Image> {
    let mut out: Vec<Image> = Vec::new();
    for a in n.firing() {
        for r in a.run.iter().chain(&a.affected) {
            let Some(src) = &r.screenshot_url else {
                continue;
            };
            if out.len() >= MAX_IMAGES || out.iter().any(|i| &i.src == src) {
                continue;
            }
            out.push(Image {
                src: src.clone(),
                href: Some(r.run_url.clone()).filter(|u| !u.is_empty()),
                alt: Some(format!(
                    "Failure screenshot of {} ({})",
                    r.check, r.location
                )),
            });
        }
    }
    out
}

/// Screenshots per event: the incident shows the failures, not a gallery of 25 identical
/// error pages.
const MAX_IMAGES: usize = 5;

/// The Events API v2 event for `n`. Pure: tested without a network.
///
/// A trigger larger than PagerDuty's 512 KB is kept deliverable by dropping `custom_details`
/// (then links and images) and saying so in `custom_details.dropped`, because an event refused
/// with 400 would page nobody.
pub fn event(n: &Notification, routing_key: &Secret, source: Option<&str>) -> Event {
    let routing_key = RoutingKey(routing_key.expose().to_string());
    let dedup_key = n.dedup_key();
    if n.status == Status::Resolved {
        return Event {
            routing_key,
            event_action: "resolve".into(),
            dedup_key,
            payload: None,
            links: Vec::new(),
            images: Vec::new(),
            client: None,
            client_url: None,
        };
    }
    let timestamp = n
        .firing()
        .map(|a| a.starts_at)
        .min()
        .unwrap_or(n.created_at);
    let mut ev = Event {
        routing_key,
        event_action: "trigger".into(),
        dedup_key,
        payload: Some(Payload {
            summary: truncate_chars(&summary(n), MAX_SUMMARY_CHARS),
            source: source
                .filter(|s| !s.is_empty())
                .unwrap_or(DEFAULT_SOURCE)
                .to_string(),
            severity: map_severity(n.severity()).to_string(),
            timestamp: Some(rfc3339(timestamp)),
            component: group_field(n, "check", |a| a.run.as_ref().map(|r| r.check.as_str())),
            group: group_field(n, "target", |a| a.run.as_ref().map(|r| r.target.as_str())),
            class: Some(truncate_chars(n.alertname(), 255)),
            custom_details: Some(custom_details(n)),
        }),
        links: links(n),
        images: images(n),
        client: Some("synmon".into()),
        client_url: Some(n.external_url.clone()).filter(|u| !u.is_empty()),
    };
    let full = event_size(&ev);
    if full > MAX_EVENT_BYTES {
        let note = |what: &str| {
            serde_json::json!({
                "dropped": format!(
                    "{what} dropped: the event was {full} bytes, over PagerDuty's {MAX_EVENT_BYTES}-byte limit; see the run on synmon"
                )
            })
        };
        if let Some(p) = ev.payload.as_mut() {
            p.custom_details = Some(note("custom_details"));
        }
        if event_size(&ev) > MAX_EVENT_BYTES {
            ev.links.clear();
            ev.images.clear();
            if let Some(p) = ev.payload.as_mut() {
                p.custom_details = Some(note("custom_details, links and images"));
            }
        }
    }
    ev
}

/// Bytes of `ev` as sent.
pub fn event_size(ev: &Event) -> usize {
    serde_json::to_vec(ev)
        .map(|v| v.len())
        .unwrap_or(usize::MAX)
}

/// PagerDuty's error answer: `{"status":"invalid event","message":..,"errors":[..]}`.
#[derive(Debug, Deserialize)]
struct ErrorBody {
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    errors: Vec<String>,
}

pub struct PagerDuty {
    config: PagerDutyConfig,
    client: reqwest::Client,
}

impl PagerDuty {
    pub fn new(config: PagerDutyConfig) -> Result<Self, String> {
        let client = http_client(config.timeout)?;
        Ok(PagerDuty { config, client })
    }

    /// Removes the routing key from text that came back from the server or the network stack:
    /// an echoing proxy or an error quoting the request must not carry the key into the outbox.
    fn scrub(&self, text: &str) -> String {
        let key = self.config.routing_key.expose();
        if key.is_empty() {
            text.to_string()
        } else {
            text.replace(key, crate::config::REDACTED)
        }
    }
}

#[async_trait::async_trait]
impl Receiver for PagerDuty {
    fn name(&self) -> &str {
        &self.config.name
    }

    fn kind(&self) -> &'static str {
        "pagerduty"
    }

    fn secrets(&self) -> Vec<Secret> {
        vec![self.config.routing_key.clone()]
    }

    async fn send(&self, n: &Notification, _ctx: &SendContext) -> Result<Delivered, SendError> {
        let ev = event(n, &self.config.routing_key, self.config.source.as_deref());
        let body = serde_json::to_vec(&ev)
            .map_err(|e| SendError::permanent(format!("encoding the event: {e}")))?;
        tracing::debug!(
            receiver = %self.config.name,
            dedup_key = %ev.dedup_key,
            event_action = %ev.event_action,
            bytes = body.len(),
            "sending a PagerDuty event"
        );
        let resp = self
            .client
            .post(self.config.url.clone())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body)
            .send()
            .await
            .map_err(|e| network_error(&e))?;
        let status = resp.status();
        if status.is_success() {
            tracing::debug!(
                receiver = %self.config.name,
                dedup_key = %ev.dedup_key,
                %status,
                "PagerDuty accepted the event"
            );
            return Ok(Delivered {
                response: status.to_string(),
                group_state: None,
            });
        }
        let after = retry_after(resp.headers());
        let text = resp.text().await.unwrap_or_default();
        let mut message = format!("HTTP {status}");
        if let Ok(b) = serde_json::from_str::<ErrorBody>(&text) {
            let detail: Vec<String> = b.message.into_iter().chain(b.errors).collect();
            if !detail.is_empty() {
                message.push_str(": ");
                // Scrub before cutting: a cut through the key would leave part of it behind.
                message.push_str(&truncate_chars(&self.scrub(&detail.join("; ")), 300));
            }
        }
        tracing::debug!(
            receiver = %self.config.name,
            dedup_key = %ev.dedup_key,
            %status,
            reason = %message,
            "PagerDuty refused the event"
        );
        // PagerDuty answers 400 to an event it will never accept (and 413 to one too large);
        // any other refusal may come from a proxy in between and is worth retrying.
        let err = match status.as_u16() {
            400 | 413 => SendError::permanent(message),
            _ => SendError::retryable(message),
        };
        Err(err.with_retry_after(after))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notify::message::{Condition, RunEvidence, StepTiming};
    use chrono::TimeZone;

    const KEY: &str = "0123456789abcdef0123456789abcdef";

    fn labels(kv: &[(&str, &str)]) -> Labels {
        kv.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn t(s: i64) -> chrono::DateTime<chrono::Utc> {
        chrono::Utc.timestamp_opt(1_700_000_000 + s, 0).unwrap()
    }

    fn alert(fp: &str, status: Status) -> AlertInfo {
        AlertInfo {
            fingerprint: fp.into(),
            status,
            labels: labels(&[
                ("alertname", "journey_latency_high"),
                ("severity", "page"),
                ("check", "align_category"),
                ("target", "rvp"),
            ]),
            annotations: labels(&[
                ("summary", "align_category is slow"),
                ("runbook_url", "https://runbooks.example/latency"),
            ]),
            starts_at: t(10),
            ends_at: (status == Status::Resolved).then(|| t(100)),
            condition: Some(Condition {
                aggregate: "p95".into(),
                value: Some(612.0),
                op: ">".into(),
                threshold: 400.0,
                unit: "ms".into(),
                window: "5m".into(),
            }),
            affected: Vec::new(),
            run: Some(RunEvidence {
                run_id: format!("run-{fp}"),
                check: "align_category".into(),
                target: "rvp".into(),
                location: "eu-west".into(),
                outcome: "fail".into(),
                started_at: t(5),
                total_ms: 1234.0,
                failing_step: Some("open category".into()),
                error: Some("timeout waiting for #grid".into()),
                steps: vec![StepTiming {
                    name: "login".into(),
                    latency_ms: 210.0,
                    outcome: "pass".into(),
                }],
                run_url: format!("http://synmon.local/runs/run-{fp}"),
                screenshot_path: None,
                screenshot_url: Some(format!("http://synmon.local/artifacts/{fp}.png")),
                failing_locations: vec!["eu-west".into()],
                trace_id: Some("0af7651916cd43dd8448eb211c80319c".into()),
                trace_url: Some(
                    "https://tempo.example/trace/0af7651916cd43dd8448eb211c80319c".into(),
                ),
            }),
        }
    }

    fn notification(status: Status) -> Notification {
        Notification {
            receiver: "pagerduty".into(),
            group_key: "{}/{severity=\"page\"}:{alertname=\"journey_latency_high\"}".into(),
            group_labels: labels(&[("alertname", "journey_latency_high")]),
            common_labels: labels(&[
                ("alertname", "journey_latency_high"),
                ("severity", "page"),
                ("check", "align_category"),
                ("target", "rvp"),
            ]),
            common_annotations: Labels::new(),
            status,
            alerts: vec![alert("aa", status)],
            external_url: "http://synmon.local".into(),
            test: false,
            created_at: t(60),
        }
    }

    fn to_json(ev: &Event) -> serde_json::Value {
        serde_json::to_value(ev).unwrap()
    }

    #[test]
    fn trigger_carries_key_dedup_payload_links_and_images() {
        let n = notification(Status::Firing);
        let ev = event(&n, &Secret::new(KEY), None);
        let j = to_json(&ev);
        assert_eq!(j["routing_key"], KEY);
        assert_eq!(j["event_action"], "trigger");
        assert_eq!(j["dedup_key"], n.dedup_key());
        let p = &j["payload"];
        assert_eq!(p["source"], "synmon");
        assert_eq!(p["severity"], "critical");
        assert_eq!(p["timestamp"], "2023-11-14T22:13:30.000Z");
        assert_eq!(p["component"], "align_category");
        assert_eq!(p["group"], "rvp");
        assert_eq!(p["class"], "journey_latency_high");
        let summary = p["summary"].as_str().unwrap();
        assert!(
            summary.starts_with("[FIRING:1] journey_latency_high"),
            "{summary}"
        );
        assert!(summary.contains("p95 612 ms > 400 ms over 5m"), "{summary}");
        assert!(summary.contains("open category"), "{summary}");
        let a = &p["custom_details"]["alerts"][0];
        assert_eq!(a["labels"]["check"], "align_category");
        assert_eq!(a["condition"], "p95 612 ms > 400 ms over 5m");
        assert_eq!(a["value"], 612.0);
        assert_eq!(a["threshold"], 400.0);
        assert_eq!(a["failing_step"], "open category");
        assert_eq!(a["error"], "timeout waiting for #grid");
        assert_eq!(a["location"], "eu-west");
        assert_eq!(a["steps"][0]["name"], "login");
        assert_eq!(a["steps"][0]["latency_ms"], 210.0);
        assert_eq!(a["trace_id"], "0af7651916cd43dd8448eb211c80319c");
        assert_eq!(
            a["trace_url"],
            "https://tempo.example/trace/0af7651916cd43dd8448eb211c80319c"
        );
        assert_eq!(j["links"][0]["href"], "http://synmon.local/runs/run-aa");
        assert_eq!(
            j["links"][1]["href"],
            "https://tempo.example/trace/0af7651916cd43dd8448eb211c80319c"
        );
        assert_eq!(
            j["links"][1]["text"],
            "Trace 0af7651916cd43dd8448eb211c80319c of align_category from eu-west"
        );
        assert_eq!(j["links"][2]["href"], "https://runbooks.example/latency");
        assert_eq!(
            j["images"][0]["src"],
            "http://synmon.local/artifacts/aa.png"
        );
        assert_eq!(j["client"], "synmon");
        assert_eq!(j["client_url"], "http://synmon.local");
    }

    #[test]
    fn an_alert_about_several_checks_lists_them_with_their_screenshots() {
        let mut n = notification(Status::Firing);
        let a = &mut n.alerts[0];
        let one = a.run.take().unwrap();
        a.affected = (0..8)
            .map(|i| RunEvidence {
                check: format!("check_{i}"),
                run_url: format!("http://synmon.local/runs/{i}"),
                screenshot_url: Some(format!("http://synmon.local/artifacts/{i}.png")),
                ..one.clone()
            })
            .collect();
        let j = to_json(&event(&n, &Secret::new(KEY), None));
        let affected = j["payload"]["custom_details"]["alerts"][0]["affected"]
            .as_array()
            .unwrap();
        assert_eq!(affected.len(), 8);
        assert_eq!(affected[3]["check"], "check_3");
        assert_eq!(affected[3]["failing_step"], "open category");
        assert_eq!(affected[3]["error"], "timeout waiting for #grid");
        assert_eq!(affected[3]["trace_id"], "0af7651916cd43dd8448eb211c80319c");
        // Every run is linked; screenshots are capped.
        let links = j["links"].as_array().unwrap();
        assert!(
            links
                .iter()
                .any(|l| l["href"] == "http://synmon.local/runs/7")
        );
        assert_eq!(j["images"].as_array().unwrap().len(), MAX_IMAGES);
    }

    #[test]
    fn configured_source_is_used() {
        let ev = event(
            &notification(Status::Firing),
            &Secret::new(KEY),
            Some("synmon-eu"),
        );
        assert_eq!(ev.payload.unwrap().source, "synmon-eu");
    }

    #[test]
    fn resolve_carries_only_key_dedup_and_action() {
        let firing = event(&notification(Status::Firing), &Secret::new(KEY), None);
        let j = to_json(&event(
            &notification(Status::Resolved),
            &Secret::new(KEY),
            None,
        ));
        let obj = j.as_object().unwrap();
        let mut keys: Vec<&str> = obj.keys().map(String::as_str).collect();
        keys.sort();
        assert_eq!(keys, ["dedup_key", "event_action", "routing_key"]);
        assert_eq!(j["event_action"], "resolve");
        assert_eq!(j["dedup_key"], firing.dedup_key);
    }

    #[test]
    fn severity_mapping_table() {
        for (rule, pd) in [
            ("page", "critical"),
            ("critical", "critical"),
            ("CRITICAL", "critical"),
            ("error", "error"),
            ("warning", "warning"),
            ("ticket", "warning"),
            ("info", "info"),
            ("", "warning"),
            ("whatever", "warning"),
        ] {
            assert_eq!(map_severity(rule), pd, "{rule}");
        }
    }

    #[test]
    fn summary_is_cut_at_1024_chars_on_a_char_boundary() {
        let mut n = notification(Status::Firing);
        // Multi-byte characters: a byte-based cut would split one and panic.
        n.alerts[0]
            .annotations
            .insert("summary".into(), "é".repeat(3000));
        let ev = event(&n, &Secret::new(KEY), None);
        let s = ev.payload.unwrap().summary;
        assert_eq!(s.chars().count(), MAX_SUMMARY_CHARS);
        assert!(s.ends_with('…'));
        assert_eq!(truncate_chars("short", 1024), "short");
        assert_eq!(truncate_chars("abcdef", 4), "abc…");
    }

    #[test]
    fn oversized_custom_details_are_dropped_with_a_note() {
        let mut n = notification(Status::Firing);
        n.alerts[0].run.as_mut().unwrap().error = Some("x".repeat(600 * 1024));
        let ev = event(&n, &Secret::new(KEY), None);
        assert!(event_size(&ev) <= MAX_EVENT_BYTES, "{}", event_size(&ev));
        let d = ev
            .payload
            .as_ref()
            .unwrap()
            .custom_details
            .as_ref()
            .unwrap();
        assert!(d.get("alerts").is_none());
        assert!(
            d["dropped"]
                .as_str()
                .unwrap()
                .starts_with("custom_details dropped"),
            "{d}"
        );
        // Links survive: the run is one click away.
        assert_eq!(ev.links[0].href, "http://synmon.local/runs/run-aa");
        // The summary still names the error, cut to the limit.
        assert!(ev.payload.unwrap().summary.chars().count() <= MAX_SUMMARY_CHARS);
    }

    #[test]
    fn a_normal_event_keeps_its_custom_details() {
        let ev = event(&notification(Status::Firing), &Secret::new(KEY), None);
        let d = ev.payload.unwrap().custom_details.unwrap();
        assert!(d.get("dropped").is_none());
        assert_eq!(d["firing"], 1);
    }

    #[test]
    fn debug_does_not_show_the_routing_key() {
        let ev = event(&notification(Status::Firing), &Secret::new(KEY), None);
        assert!(!format!("{ev:?}").contains(KEY));
    }

    #[test]
    fn test_notifications_say_so() {
        let mut n = notification(Status::Firing);
        n.test = true;
        let p = event(&n, &Secret::new(KEY), None).payload.unwrap();
        assert!(p.summary.starts_with("[TEST] "), "{}", p.summary);
        assert!(p.custom_details.unwrap().get("test").is_some());
    }
}
