//! The metric catalog: every metric synmon records or exports is declared here exactly once,
//! with both of its names, its kind, unit and help text.
//!
//! Why two names: Datadog dashboards of the platform already use names such as
//! `feed_push_success_rate` (a percentage) or `swis_preview_p95_ms`, while Prometheus wants base
//! units and suffixes that `promtool check metrics` accepts (`_ratio`, `_seconds`, `_total`).
//! Keeping both in one constant means the two exporters cannot drift apart, and dashboards and
//! alert rules can be linted against [`lookup`].

/// How a metric is recorded and aggregated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MetricKind {
    /// Monotonic count since process start (`_total` on Prometheus, `c` on DogStatsD).
    Counter,
    /// Last value set; may be marked stale (no value) when its source fails.
    Gauge,
    /// Latency samples in milliseconds kept in windowed HDR histograms; a summary with
    /// quantiles on Prometheus, a distribution (`d`) on DogStatsD.
    Distribution,
}

impl MetricKind {
    /// The Prometheus `# TYPE` word.
    pub fn prom_type(self) -> &'static str {
        match self {
            MetricKind::Counter => "counter",
            MetricKind::Gauge => "gauge",
            MetricKind::Distribution => "summary",
        }
    }
}

/// The unit values are *recorded* in (what callers pass and DogStatsD carries).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Unit {
    Milliseconds,
    Seconds,
    /// 0..1.
    Ratio,
    /// 0..100: the platform's dashboards say ">= 95%".
    Percent,
    Count,
    Days,
}

/// What DogStatsD receives for a metric.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum StatsdForm {
    /// Every sample as a distribution (`|d`), in the recorded unit.
    Distribution,
    /// Increments as a count (`|c`).
    Count,
    /// The current value as a gauge (`|g`).
    Gauge,
    /// A gauge of one quantile over the 5-minute window, computed from the registry (how the
    /// platform's `swis_preview_p95_ms` is defined).
    QuantileGauge(f64),
}

/// One metric: declared once, used by the registry, both exporters, and config/rule linting.
#[derive(Debug, PartialEq)]
pub struct MetricDef {
    /// The platform / DogStatsD name, e.g. `feed_push_success_rate` or `synmon.check.latency`.
    pub name: &'static str,
    /// The Prometheus name in base units, e.g. `feed_push_success_ratio`,
    /// `synmon_check_latency_seconds`.
    pub prom_name: &'static str,
    pub kind: MetricKind,
    /// The unit values are recorded in.
    pub unit: Unit,
    /// Multiply a recorded value by this for Prometheus (ms -> s 0.001, percent -> ratio 0.01,
    /// days -> s 86400).
    pub prom_scale: f64,
    /// DogStatsD form; usually follows `kind`.
    pub statsd: StatsdForm,
    pub help: &'static str,
    /// Label names, in export order. Every series of the metric carries exactly these.
    pub labels: &'static [&'static str],
}

impl MetricDef {
    /// Convert a recorded value to the Prometheus unit. Divides by the inverse when the scale is
    /// 1/n (so 95 % reads `0.95`, not `0.9500000000000001`).
    pub fn to_prom(&self, value: f64) -> f64 {
        if self.prom_scale == 1.0 {
            return value;
        }
        let inverse = 1.0 / self.prom_scale;
        let rounded = inverse.round();
        if self.prom_scale < 1.0 && (inverse - rounded).abs() < 1e-9 {
            value / rounded
        } else {
            value * self.prom_scale
        }
    }
}

const MS_TO_S: f64 = 0.001;
const PCT_TO_RATIO: f64 = 0.01;
const DAYS_TO_S: f64 = 86_400.0;

// ---- synmon's own metrics -------------------------------------------------------------------

/// A check's SLO latency per run: the sum of its timed steps, or its total when no step is timed.
pub const CHECK_LATENCY: MetricDef = MetricDef {
    name: "synmon.check.latency",
    prom_name: "synmon_check_latency_seconds",
    kind: MetricKind::Distribution,
    unit: Unit::Milliseconds,
    prom_scale: MS_TO_S,
    statsd: StatsdForm::Distribution,
    help: "Latency of a check run: the sum of the journey's timed steps, or the total when no step is timed.",
    labels: &["check", "location", "target", "outcome"],
};

/// Every step's latency, timed or not.
pub const STEP_LATENCY: MetricDef = MetricDef {
    name: "synmon.step.latency",
    prom_name: "synmon_step_latency_seconds",
    kind: MetricKind::Distribution,
    unit: Unit::Milliseconds,
    prom_scale: MS_TO_S,
    statsd: StatsdForm::Distribution,
    help: "Latency of one step of a check run.",
    labels: &["check", "step", "location", "target", "outcome"],
};

/// Runs by outcome and attempt; retries are counted, cancelled runs are not.
pub const CHECK_RUNS: MetricDef = MetricDef {
    name: "synmon.check.runs",
    prom_name: "synmon_check_runs_total",
    kind: MetricKind::Counter,
    unit: Unit::Count,
    prom_scale: 1.0,
    statsd: StatsdForm::Count,
    help: "Completed check runs by outcome and attempt (cancelled runs are not counted).",
    labels: &["check", "location", "outcome", "attempt"],
};

/// Slots skipped because the previous run of the check was still going (coordinated omission
/// made visible).
pub const CHECK_OVERRUNS: MetricDef = MetricDef {
    name: "synmon.check.overruns",
    prom_name: "synmon_check_overruns_total",
    kind: MetricKind::Counter,
    unit: Unit::Count,
    prom_scale: 1.0,
    statsd: StatsdForm::Count,
    help: "Scheduled slots of a check that were missed because its previous run overran.",
    labels: &["check", "location"],
};

/// How late runs start against their intended start time.
pub const SCHEDULE_LATENESS: MetricDef = MetricDef {
    name: "synmon.schedule.lateness",
    prom_name: "synmon_schedule_lateness_seconds",
    kind: MetricKind::Distribution,
    unit: Unit::Milliseconds,
    prom_scale: MS_TO_S,
    statsd: StatsdForm::Distribution,
    help: "Delay between a run's intended start time and its actual start.",
    labels: &["check", "location"],
};

/// 1 while the probe itself is broken (chromedriver, browser, session), never the target.
pub const PROBE_UNHEALTHY: MetricDef = MetricDef {
    name: "synmon.probe.unhealthy",
    prom_name: "synmon_probe_unhealthy",
    kind: MetricKind::Gauge,
    unit: Unit::Count,
    prom_scale: 1.0,
    statsd: StatsdForm::Gauge,
    help: "1 when the probe itself is broken (the last run ended in error), 0 otherwise.",
    labels: &["check", "location"],
};

/// HTTP 429 responses seen by HTTP checks.
pub const RATE_LIMIT_HITS: MetricDef = MetricDef {
    name: "rate_limit_hits",
    prom_name: "rate_limit_hits_total",
    kind: MetricKind::Counter,
    unit: Unit::Count,
    prom_scale: 1.0,
    statsd: StatsdForm::Count,
    help: "HTTP 429 responses received by HTTP checks.",
    labels: &["check", "service"],
};

/// HTTP errors (5xx, 4xx other than 429, transport errors) by service.
pub const HTTP_ERRORS: MetricDef = MetricDef {
    name: "synmon.http.errors",
    prom_name: "synmon_http_errors_total",
    kind: MetricKind::Counter,
    unit: Unit::Count,
    prom_scale: 1.0,
    statsd: StatsdForm::Count,
    help: "HTTP errors seen by HTTP checks, by service and status (a status code or timeout/connect).",
    labels: &["check", "service", "status"],
};

/// Days until the served TLS certificate expires.
pub const TLS_CERT_DAYS_LEFT: MetricDef = MetricDef {
    name: "synmon.tls.cert_days_left",
    prom_name: "synmon_tls_certificate_expiry_remaining_seconds",
    kind: MetricKind::Gauge,
    unit: Unit::Days,
    prom_scale: DAYS_TO_S,
    statsd: StatsdForm::Gauge,
    help: "Time left until the served TLS certificate expires.",
    labels: &["check", "target"],
};

/// Days until a feature flag of the registry expires (negative once expired); set by the
/// daemon at every evaluation from `flags:` (removed flags are not exported).
pub const FLAG_EXPIRY_DAYS_LEFT: MetricDef = MetricDef {
    name: "synmon.flag.expiry_days",
    prom_name: "synmon_flag_expiry_remaining_seconds",
    kind: MetricKind::Gauge,
    unit: Unit::Days,
    prom_scale: DAYS_TO_S,
    statsd: StatsdForm::Gauge,
    help: "Time left until a feature flag of the registry expires (negative once expired).",
    labels: &["flag", "owner", "state"],
};

// ---- the platform's metrics (names from its dashboards) -------------------------------------

/// SWIS preview API latency; the platform's `swis_preview_p95_ms` is its 5-minute p95.
pub const SWIS_PREVIEW: MetricDef = MetricDef {
    name: "swis_preview_p95_ms",
    prom_name: "swis_preview_latency_seconds",
    kind: MetricKind::Distribution,
    unit: Unit::Milliseconds,
    prom_scale: MS_TO_S,
    statsd: StatsdForm::QuantileGauge(0.95),
    help: "Latency of the SWIS preview API (DogStatsD carries its 5-minute p95).",
    labels: &["location"],
};

pub const FEED_PUSH_SUCCESS_RATE: MetricDef = MetricDef {
    name: "feed_push_success_rate",
    prom_name: "feed_push_success_ratio",
    kind: MetricKind::Gauge,
    unit: Unit::Percent,
    prom_scale: PCT_TO_RATIO,
    statsd: StatsdForm::Gauge,
    help: "Share of finished feed push jobs that succeeded.",
    labels: &[],
};

pub const FEED_APPROVAL_RATE: MetricDef = MetricDef {
    name: "feed_approval_rate",
    prom_name: "feed_approval_ratio",
    kind: MetricKind::Gauge,
    unit: Unit::Percent,
    prom_scale: PCT_TO_RATIO,
    statsd: StatsdForm::Gauge,
    help: "Share of pushed products approved by Merchant Center.",
    labels: &[],
};

pub const CATEGORY_MAPPING_COVERAGE: MetricDef = MetricDef {
    name: "category_mapping_coverage_pct",
    prom_name: "category_mapping_coverage_ratio",
    kind: MetricKind::Gauge,
    unit: Unit::Percent,
    prom_scale: PCT_TO_RATIO,
    statsd: StatsdForm::Gauge,
    help: "Share of categories mapped to the Google product taxonomy.",
    labels: &[],
};

pub const QA_FOOTER_ENGAGEMENT_RATE: MetricDef = MetricDef {
    name: "qa_footer_engagement_rate",
    prom_name: "qa_footer_engagement_ratio",
    kind: MetricKind::Gauge,
    unit: Unit::Percent,
    prom_scale: PCT_TO_RATIO,
    statsd: StatsdForm::Gauge,
    help: "Share of sessions that used the Quick Actions footer.",
    labels: &[],
};

pub const TIME_TO_ALIGNMENT_MEDIAN: MetricDef = MetricDef {
    name: "time_to_alignment_median_ms",
    prom_name: "time_to_alignment_median_seconds",
    kind: MetricKind::Gauge,
    unit: Unit::Milliseconds,
    prom_scale: MS_TO_S,
    statsd: StatsdForm::Gauge,
    help: "Median time from a category's creation to its taxonomy alignment.",
    labels: &[],
};

pub const TAXONOMY_VERSION_AGE: MetricDef = MetricDef {
    name: "taxonomy_version_active_age_days",
    prom_name: "taxonomy_version_active_age_seconds",
    kind: MetricKind::Gauge,
    unit: Unit::Days,
    prom_scale: DAYS_TO_S,
    statsd: StatsdForm::Gauge,
    help: "Age of the active Google taxonomy version.",
    labels: &[],
};

pub const OAUTH_ERROR_RATE: MetricDef = MetricDef {
    name: "oauth_error_rate",
    prom_name: "oauth_error_ratio",
    kind: MetricKind::Gauge,
    unit: Unit::Percent,
    prom_scale: PCT_TO_RATIO,
    statsd: StatsdForm::Gauge,
    help: "Share of OAuth attempts that failed.",
    labels: &[],
};

pub const FEED_PUSH_QUEUE_DEPTH: MetricDef = MetricDef {
    name: "feed_push_queue_depth",
    prom_name: "feed_push_queue_depth",
    kind: MetricKind::Gauge,
    unit: Unit::Count,
    prom_scale: 1.0,
    statsd: StatsdForm::Gauge,
    help: "Feed push jobs waiting (queued or processing).",
    labels: &[],
};

/// The retry distribution as one gauge per retry count (a SQL `GROUP BY retry_count`).
pub const FEED_PUSH_RETRIES: MetricDef = MetricDef {
    name: "feed_push_jobs_by_retries",
    prom_name: "feed_push_jobs_by_retries",
    kind: MetricKind::Gauge,
    unit: Unit::Count,
    prom_scale: 1.0,
    statsd: StatsdForm::Gauge,
    help: "Feed push jobs by number of retries so far (the retry distribution).",
    labels: &["retry_count"],
};

pub const FEED_PUSH_AVG_PROCESSING_TIME: MetricDef = MetricDef {
    name: "feed_push_avg_processing_time_ms",
    prom_name: "feed_push_avg_processing_time_seconds",
    kind: MetricKind::Gauge,
    unit: Unit::Milliseconds,
    prom_scale: MS_TO_S,
    statsd: StatsdForm::Gauge,
    help: "Average processing time of finished feed push jobs.",
    labels: &[],
};

pub const FEED_PUSH_ERROR_RATE: MetricDef = MetricDef {
    name: "feed_push_error_rate",
    prom_name: "feed_push_error_ratio",
    kind: MetricKind::Gauge,
    unit: Unit::Percent,
    prom_scale: PCT_TO_RATIO,
    statsd: StatsdForm::Gauge,
    help: "Share of feed push jobs that failed, by tenant.",
    labels: &["tenant"],
};

pub const PILOT_SATISFACTION: MetricDef = MetricDef {
    name: "pilot_satisfaction_rate",
    prom_name: "pilot_satisfaction_ratio",
    kind: MetricKind::Gauge,
    unit: Unit::Percent,
    prom_scale: PCT_TO_RATIO,
    statsd: StatsdForm::Gauge,
    help: "Share of outreach feedback scores of 4 or 5 over the last 30 days.",
    labels: &[],
};

pub const SLO_BUDGET_REMAINING: MetricDef = MetricDef {
    name: "synmon_slo_error_budget_remaining",
    prom_name: "synmon_slo_error_budget_remaining_ratio",
    kind: MetricKind::Gauge,
    unit: Unit::Ratio,
    prom_scale: 1.0,
    statsd: StatsdForm::Gauge,
    help: "Share of the SLO's error budget left over its period: 1 untouched, 0 spent, negative overspent.",
    labels: &["slo"],
};

pub const SLO_BURN_RATE: MetricDef = MetricDef {
    name: "synmon_slo_burn_rate",
    prom_name: "synmon_slo_burn_rate",
    kind: MetricKind::Gauge,
    unit: Unit::Count,
    prom_scale: 1.0,
    statsd: StatsdForm::Gauge,
    help: "How fast the SLO's error budget burns over a window (1 spends it exactly over the period).",
    labels: &["slo", "window"],
};

pub const SLO_TIME_TO_EXHAUSTION: MetricDef = MetricDef {
    name: "synmon_slo_time_to_exhaustion",
    prom_name: "synmon_slo_time_to_exhaustion_seconds",
    kind: MetricKind::Gauge,
    unit: Unit::Seconds,
    prom_scale: 1.0,
    statsd: StatsdForm::Gauge,
    help: "At the 1 h burn rate, seconds until the SLO's error budget is spent.",
    labels: &["slo"],
};

/// Notification delivery attempts by receiver and outcome (`sent`, `retry`, `failed`).
pub const NOTIFICATIONS: MetricDef = MetricDef {
    name: "synmon.notifications",
    prom_name: "synmon_notifications_total",
    kind: MetricKind::Counter,
    unit: Unit::Count,
    prom_scale: 1.0,
    statsd: StatsdForm::Count,
    help: "Notification delivery attempts by receiver and outcome (sent, retry, failed).",
    labels: &["receiver", "outcome"],
};

/// Notifications waiting in the durable outbox (a receiver outage shows here first).
pub const OUTBOX_PENDING: MetricDef = MetricDef {
    name: "synmon.outbox.pending",
    prom_name: "synmon_outbox_pending",
    kind: MetricKind::Gauge,
    unit: Unit::Count,
    prom_scale: 1.0,
    statsd: StatsdForm::Gauge,
    help: "Notifications written to the outbox and not yet delivered, per receiver.",
    labels: &["receiver"],
};

/// 1 on the replica that leads the cluster (evaluates and notifies), 0 on the others.
pub const CLUSTER_LEADER: MetricDef = MetricDef {
    name: "synmon.cluster.leader",
    prom_name: "synmon_cluster_leader",
    kind: MetricKind::Gauge,
    unit: Unit::Count,
    prom_scale: 1.0,
    statsd: StatsdForm::Gauge,
    help: "1 on the replica that holds the leader lease (evaluates rules and sends notifications), 0 on the others.",
    labels: &["replica", "location"],
};

/// The highest leader epoch this replica has seen; it grows at every takeover.
pub const CLUSTER_EPOCH: MetricDef = MetricDef {
    name: "synmon.cluster.epoch",
    prom_name: "synmon_cluster_epoch",
    kind: MetricKind::Gauge,
    unit: Unit::Count,
    prom_scale: 1.0,
    statsd: StatsdForm::Gauge,
    help: "The highest leader epoch this replica has seen (it grows at every takeover).",
    labels: &["replica", "location"],
};

/// Replicas whose heartbeat the store holds, as this replica sees them.
pub const CLUSTER_REPLICAS: MetricDef = MetricDef {
    name: "synmon.cluster.replicas",
    prom_name: "synmon_cluster_replicas",
    kind: MetricKind::Gauge,
    unit: Unit::Count,
    prom_scale: 1.0,
    statsd: StatsdForm::Gauge,
    help: "Live replicas sharing the store (a recent heartbeat), as this replica sees them.",
    labels: &["replica", "location"],
};

/// How far behind the leader's evaluation is on another replica's runs: from a run's end there to
/// the leader reading it from the store. Recorded by the leader only, in its own registry.
pub const CLUSTER_FEED_LAG: MetricDef = MetricDef {
    name: "synmon.cluster.feed_lag",
    prom_name: "synmon_cluster_feed_lag_seconds",
    kind: MetricKind::Distribution,
    unit: Unit::Milliseconds,
    prom_scale: MS_TO_S,
    statsd: StatsdForm::Distribution,
    help: "Time from a run's end on another replica to the leader reading it for evaluation.",
    labels: &["location"],
};

/// Runs handed to the OTLP trace exporter, by what became of them (see `crate::trace::export`).
pub const TRACE_EXPORTS: MetricDef = MetricDef {
    name: "synmon.trace.exports",
    prom_name: "synmon_trace_exports_total",
    kind: MetricKind::Counter,
    unit: Unit::Count,
    prom_scale: 1.0,
    statsd: StatsdForm::Count,
    help: "Runs handed to the OTLP trace exporter, by result (exported; dropped: the queue was full; failed: the collector did not take them).",
    labels: &["result"],
};

/// Every metric, in export order.
pub const CATALOG: &[MetricDef] = &[
    CHECK_LATENCY,
    SLO_BUDGET_REMAINING,
    SLO_BURN_RATE,
    SLO_TIME_TO_EXHAUSTION,
    STEP_LATENCY,
    CHECK_RUNS,
    CHECK_OVERRUNS,
    SCHEDULE_LATENESS,
    PROBE_UNHEALTHY,
    NOTIFICATIONS,
    OUTBOX_PENDING,
    CLUSTER_LEADER,
    CLUSTER_EPOCH,
    CLUSTER_REPLICAS,
    CLUSTER_FEED_LAG,
    TRACE_EXPORTS,
    RATE_LIMIT_HITS,
    HTTP_ERRORS,
    TLS_CERT_DAYS_LEFT,
    FLAG_EXPIRY_DAYS_LEFT,
    SWIS_PREVIEW,
    FEED_PUSH_SUCCESS_RATE,
    FEED_APPROVAL_RATE,
    CATEGORY_MAPPING_COVERAGE,
    QA_FOOTER_ENGAGEMENT_RATE,
    TIME_TO_ALIGNMENT_MEDIAN,
    TAXONOMY_VERSION_AGE,
    OAUTH_ERROR_RATE,
    FEED_PUSH_QUEUE_DEPTH,
    FEED_PUSH_RETRIES,
    FEED_PUSH_AVG_PROCESSING_TIME,
    FEED_PUSH_ERROR_RATE,
    PILOT_SATISFACTION,
];

/// Find a metric by its platform/DogStatsD name or its Prometheus name.
pub fn lookup(name: &str) -> Option<&'static MetricDef> {
    CATALOG
        .iter()
        .find(|def| def.name == name || def.prom_name == name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn names_are_unique_across_both_namespaces() {
        let mut seen = HashSet::new();
        for def in CATALOG {
            assert!(seen.insert(def.name), "duplicate name {}", def.name);
            if def.prom_name != def.name {
                assert!(seen.insert(def.prom_name), "duplicate {}", def.prom_name);
            }
        }
    }

    #[test]
    fn prometheus_names_follow_conventions() {
        for def in CATALOG {
            let p = def.prom_name;
            assert!(
                p.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'),
                "{p} is not snake_case"
            );
            assert_eq!(
                def.kind == MetricKind::Counter,
                p.ends_with("_total"),
                "{p}: counters and only counters end in _total"
            );
            match def.unit {
                Unit::Milliseconds | Unit::Seconds | Unit::Days => {
                    assert!(p.ends_with("_seconds"), "{p} must be in seconds")
                }
                Unit::Percent | Unit::Ratio => assert!(p.ends_with("_ratio"), "{p}"),
                Unit::Count => {}
            }
            assert!(!def.help.is_empty());
            if def.kind == MetricKind::Distribution {
                assert_eq!(
                    def.unit,
                    Unit::Milliseconds,
                    "{p}: distributions are latencies"
                );
            }
            if def.kind != MetricKind::Distribution {
                for reserved in ["_count", "_sum", "_bucket"] {
                    assert!(!p.ends_with(reserved), "{p}: {reserved} is for summaries");
                }
            }
            for label in def.labels {
                assert!(
                    *label != "quantile" && *label != "le",
                    "{p}: reserved label"
                );
            }
        }
    }

    #[test]
    fn lookup_matches_either_name() {
        assert_eq!(
            lookup("feed_push_success_rate"),
            Some(&FEED_PUSH_SUCCESS_RATE)
        );
        assert_eq!(
            lookup("feed_push_success_ratio"),
            Some(&FEED_PUSH_SUCCESS_RATE)
        );
        assert_eq!(lookup("synmon_check_overruns_total"), Some(&CHECK_OVERRUNS));
        assert_eq!(lookup("swis_preview_p95_ms"), Some(&SWIS_PREVIEW));
        assert_eq!(lookup("nope"), None);
    }

    #[test]
    fn prom_scaling_is_exact_for_round_scales() {
        assert_eq!(FEED_PUSH_SUCCESS_RATE.to_prom(95.0), 0.95);
        assert_eq!(CHECK_LATENCY.to_prom(250.0), 0.25);
        assert_eq!(TAXONOMY_VERSION_AGE.to_prom(2.0), 172_800.0);
        assert_eq!(CHECK_RUNS.to_prom(3.0), 3.0);
    }
}
