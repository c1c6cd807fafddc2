//! What one run of a check produced: per-step latencies and outcomes, and evidence. Shared by
//! every runner (browser journeys, HTTP, SQL, TCP/DNS/TLS probes), the store and the metrics.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::outcome::Outcome;

/// How a step's latency was measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Timing {
    /// Inside the page: from the user's input event to the awaited DOM state
    /// (`performance.now()` + MutationObserver). What a user perceives.
    InPage,
    /// Inside the pages, across a navigation: from the input event on the old document (the
    /// navigation's start for a `goto`) to the awaited state on the new one, both clocks
    /// epoch-anchored (`performance.timeOrigin`).
    InPageNavigation,
    /// From outside the browser, around the WebDriver calls (a step no page clock could see).
    Outside,
    /// By synmon's own HTTP or SQL client, around its request (a journey's `http` and `sql`
    /// steps: no browser involved).
    Client,
}

/// A navigation's own timing, in ms from its start (Navigation Timing of the new document).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct NavTiming {
    pub redirect_ms: f64,
    /// Time to the response's first byte.
    pub ttfb_ms: f64,
    pub dom_content_loaded_ms: f64,
    /// The load event's end (0 while the document is still loading).
    pub load_ms: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StepResult {
    pub name: String,
    pub action: String,
    pub latency_ms: f64,
    pub timed: bool,
    pub timing: Timing,
    pub outcome: Outcome,
    pub error: Option<String>,
    /// The navigation a step loaded, for a step timed across one (not kept by the store).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub navigation: Option<NavTiming>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Artifact {
    /// `screenshot`, `html`, `console`, `network`.
    pub kind: String,
    pub path: String,
}

/// How a journey's browser was set up for its run (`viewport`, `device`, `network`): what the
/// run measured through, kept with its result.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Emulation {
    /// The device preset, when one was named.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
    /// CSS pixels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub viewport: Option<(u32, u32)>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_pixel_ratio: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
    /// A touch screen and a mobile layout (`<meta name=viewport>` honoured).
    #[serde(default)]
    pub mobile: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<NetworkConditions>,
}

/// Network conditions a run's browser worked under.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NetworkConditions {
    /// The preset, when one was named (`3g`, `4g`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preset: Option<String>,
    pub offline: bool,
    /// Added to every request's round trip.
    pub latency_ms: u64,
    /// 0: not limited.
    pub down_kbps: u64,
    pub up_kbps: u64,
}

/// Navigation timing and Web Vitals of the last page, where the browser reports them.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct PageMetrics {
    pub url: String,
    pub ttfb_ms: Option<f64>,
    pub dom_content_loaded_ms: Option<f64>,
    pub load_ms: Option<f64>,
    pub lcp_ms: Option<f64>,
    pub cls: Option<f64>,
}

/// What kind of check produced a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckKind {
    Journey,
    Http,
    Sql,
    Tcp,
    Dns,
    Tls,
}

impl CheckKind {
    pub fn as_str(self) -> &'static str {
        match self {
            CheckKind::Journey => "journey",
            CheckKind::Http => "http",
            CheckKind::Sql => "sql",
            CheckKind::Tcp => "tcp",
            CheckKind::Dns => "dns",
            CheckKind::Tls => "tls",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunResult {
    pub run_id: String,
    pub check: String,
    pub kind: CheckKind,
    /// 1 for the first attempt; retries on failure count up. Every attempt is recorded.
    pub attempt: u32,
    /// The slot this run was scheduled for (its intended start), which lateness is measured
    /// against; equal to `started_at` for ad-hoc runs.
    pub scheduled_at: DateTime<Utc>,
    /// Stopped by shutdown: recorded, but never counted as a failure.
    #[serde(default)]
    pub cancelled: bool,
    pub target: String,
    pub location: String,
    pub outcome: Outcome,
    pub started_at: DateTime<Utc>,
    /// The journey's SLO latency: the sum of its timed steps.
    pub timed_latency_ms: f64,
    pub total_ms: f64,
    /// Time spent waiting for a browser session (not target latency).
    pub session_wait_ms: f64,
    /// Time to get the run's browser ready: a pooled browser's liveness check, or a new
    /// session (not target latency).
    pub session_create_ms: f64,
    /// Whether a pooled browser served this journey run (`None`: no browser, or not known
    /// because the run was read back from the store, which does not keep it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub browser_reused: Option<bool>,
    /// For a journey that may reuse its login (`reuse_session`): whether this run did, and so
    /// skipped the login's steps (`false`: it logged in). Not kept by the store.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_reused: Option<bool>,
    /// The journey's `viewport`, `device` and `network`, as applied (not kept by the store).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub emulation: Option<Emulation>,
    pub steps: Vec<StepResult>,
    pub error: Option<String>,
    pub failed_step: Option<String>,
    pub artifacts: Vec<Artifact>,
    pub page: Option<PageMetrics>,
    /// The run's W3C trace id (32 hex digits): the `traceparent` its requests carried and the
    /// trace it is exported as (see `crate::trace`). `None` for runs recorded before tracing.
    #[serde(default)]
    pub trace_id: Option<String>,
}

impl RunResult {
    /// A result with no steps yet, for runners to fill in.
    pub fn begin(
        check: &str,
        kind: CheckKind,
        target: &str,
        location: &str,
        started_at: DateTime<Utc>,
    ) -> Self {
        RunResult {
            run_id: uuid::Uuid::new_v4().to_string(),
            check: check.to_string(),
            kind,
            attempt: 1,
            scheduled_at: started_at,
            cancelled: false,
            target: target.to_string(),
            location: location.to_string(),
            outcome: Outcome::Pass,
            started_at,
            timed_latency_ms: 0.0,
            total_ms: 0.0,
            session_wait_ms: 0.0,
            session_create_ms: 0.0,
            browser_reused: None,
            session_reused: None,
            emulation: None,
            steps: Vec::new(),
            error: None,
            failed_step: None,
            artifacts: Vec::new(),
            page: None,
            trace_id: None,
        }
    }

    /// The latency alerting and SLOs judge: the sum of timed steps, or the whole run when no
    /// step is marked timed (API and SQL checks).
    pub fn slo_latency_ms(&self) -> f64 {
        slo_latency_ms(&self.steps, self.timed_latency_ms, self.total_ms)
    }
}

/// The latency a run's SLO judges: the sum of its timed steps when it timed any, else the
/// total. One rule for a live run and a stored one read back with its steps.
pub fn slo_latency_ms(steps: &[StepResult], timed_latency_ms: f64, total_ms: f64) -> f64 {
    if steps.iter().any(|s| s.timed) {
        timed_latency_ms
    } else {
        total_ms
    }
}
