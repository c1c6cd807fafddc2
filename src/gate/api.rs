//! The daemon's side of `synmon gate --source URL`: `GET /api/v1/gate?window=1h` answers the
//! [`Samples`] of that window — the stored runs summarised per check, the feed-push success
//! gauge as the daemon last measured it, and the page alerts firing now in its evaluator — so a
//! pipeline judges a running daemon exactly as it would judge the daemon's store. Nothing in the
//! answer is a secret: check names, counts, latencies, alert names and labels.

use axum::Json;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use super::samples::{self, AlertsReading, GaugeReading, Mode, Samples};
use crate::config::duration::{Bound, DAY};
use crate::view::DaemonView;

/// How far back a gate or a report may look: the longest store retention. Also the bound of
/// `synmon gate --window` and `synmon report --since`.
pub const WINDOW: Bound = Bound::positive("window", DAY.saturating_mul(400));

#[derive(Debug, Deserialize)]
pub struct GateQuery {
    /// How far back, e.g. `1h`, `30d`.
    pub window: String,
}

/// `GET /api/v1/gate?window=1h`.
pub async fn gate_samples(State(s): State<DaemonView>, Query(q): Query<GateQuery>) -> Response {
    let window = match WINDOW.parse(&q.window) {
        Ok(w) => w,
        Err(e) => {
            return (
                StatusCode::BAD_REQUEST,
                Json(json!({"error": format!("window: {e}")})),
            )
                .into_response();
        }
    };
    let now = s.now();
    let from = super::window_start(now, window);
    let runs = match s.store().gate_runs(from, now).await {
        Ok(p) => p,
        Err(e) => {
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({"error": e.to_string()})),
            )
                .into_response();
        }
    };
    let cfg = s.config();
    let feed = if cfg
        .checks
        .sql
        .iter()
        .any(|m| m.metric == super::FEED_PUSH_METRIC && m.label_columns.is_empty())
    {
        match s.registry().gauge(super::FEED_PUSH_METRIC, &[]) {
            Some(v) if v.is_finite() => GaugeReading::Value { value: v },
            _ => GaugeReading::Unavailable {
                reason: "the daemon has no current value (not measured yet, or its source failed)"
                    .into(),
            },
        }
    } else {
        GaugeReading::NotConfigured
    };
    let alerts = {
        let a = s.alerting().await;
        AlertsReading::Firing {
            alerts: samples::page_alerts(&a.state),
        }
    };
    let body = Samples {
        mode: Mode::Window { window: q.window },
        from,
        to: now,
        checks: samples::from_gate_runs(runs),
        feed_push_success_rate: feed,
        page_alerts: alerts,
    };
    Json(body).into_response()
}
