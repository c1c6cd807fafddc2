//! Housekeeping: the minute tick that freezes histogram slices, the hourly pruning of runs and
//! notifications past the retention, and the replay at start that rebuilds recent percentiles
//! from the store.

use std::sync::Arc;
use std::time::Duration;

use crate::clock::Clock;
use crate::metrics::registry::Registry;
use crate::metrics::{PointValue, RunMetrics};
use crate::rules::registry_source::CounterHistory;
use crate::run::CheckKind;
use crate::store::Store;
use crate::view::Shared;

/// Percentiles survive a restart: replays the last day of this location's runs into the windows (check latency
/// and outcome counts, from the run summaries: one query, not one per run). A run's maintenance
/// mark is the one stored with it, judged when it ran: windows edited since do not rewrite
/// history. Returns the run counter's history rebuilt from the same runs (per attempt, which the
/// latency windows do not keep), for the evaluator to start from.
pub(super) async fn replay(
    store: &Store,
    registry: &Registry,
    clock: &dyn Clock,
    location: &str,
) -> CounterHistory {
    let now = clock.now();
    let since = now - chrono::Duration::hours(24);
    let mut counters = CounterHistory::default();
    // On a single node (SQLite) every run of this location is this daemon's. In a cluster,
    // only the runs this replica stored: the leader reads every other run (other locations,
    // sibling replicas, this replica's earlier processes under another id) through the feed,
    // and the two are summed, so a run must be in exactly one of them.
    let runs = match store.replica() {
        Some(id) if store.is_postgres() => store.runs_since_of(since, id).await,
        _ => store.runs_since(since).await,
    };
    match runs {
        Ok(runs) => {
            let runs: Vec<_> = runs
                .into_iter()
                .filter(|r| r.location == location)
                .collect();
            for r in &runs {
                // A summary has no steps: its latency is the timed latency of a journey that
                // timed any, else the total. Only the latency distributions are replayed;
                // counters and gauges start from this process.
                let latency_ms = if r.kind == CheckKind::Journey && r.timed_latency_ms > 0.0 {
                    r.timed_latency_ms
                } else {
                    r.total_ms
                };
                let metrics = RunMetrics {
                    check: &r.check,
                    location: &r.location,
                    target: &r.target,
                    outcome: r.outcome,
                    attempt: r.attempt,
                    latency_ms,
                    steps: &[],
                    cancelled: r.cancelled,
                    maintenance: r.maintenance.is_some(),
                };
                let _ = metrics.try_for_each_point(|p| match p.value {
                    PointValue::Latency(_) => registry.record_point(&p, r.started_at),
                    _ => Ok(()),
                });
            }
            counters.seed_runs(
                // As the recorder counts them: cancelled runs not at all, runs inside a
                // maintenance window under their own outcome.
                runs.iter().filter(|r| !r.cancelled).map(|r| {
                    let outcome = if r.maintenance.is_some() {
                        crate::metrics::runs::MAINTENANCE_OUTCOME
                    } else {
                        r.outcome.as_str()
                    };
                    (
                        r.started_at,
                        r.check.as_str(),
                        r.location.as_str(),
                        outcome,
                        r.attempt,
                    )
                }),
                since,
                now,
            );
            tracing::info!(
                runs = runs.len(),
                "replayed the last 24 h of runs into the metrics"
            );
        }
        Err(e) => tracing::warn!(error = %e, "could not replay stored runs"),
    }
    counters
}

/// Once a minute: freeze histogram slices; once an hour: prune runs past the retention.
pub(super) async fn tick(shared: Arc<Shared>) {
    let mut tick = tokio::time::interval(Duration::from_secs(60));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut n: u64 = 0;
    loop {
        tick.tick().await;
        let now = shared.clock.now();
        shared.registry.maintain(now);
        shared.feed.maintain(now);
        if n.is_multiple_of(60) {
            let retention = shared.config().retention;
            let cutoff = now - chrono::Duration::from_std(retention).unwrap_or_default();
            match shared.store.prune(cutoff).await {
                Ok(p) => {
                    for path in &p.artifact_paths {
                        let _ = std::fs::remove_file(path);
                    }
                    if p.runs > 0 {
                        tracing::info!(runs = p.runs, "pruned runs past the retention");
                    }
                }
                Err(e) => tracing::warn!(error = %e, "pruning failed"),
            }
            // Replicas gone for a day (their ids die with their processes or pods).
            if let Err(e) = shared
                .store
                .prune_replicas(Duration::from_secs(86_400))
                .await
            {
                tracing::warn!(error = %e, "pruning departed replicas failed");
            }
            // Slot claims matter only around a takeover (the gap since the last claimed slot):
            // an hour is plenty, and keeps the table at one hour of slots.
            if shared.store.is_postgres()
                && let Err(e) = shared.store.prune_claims(Duration::from_secs(3_600)).await
            {
                tracing::warn!(error = %e, "pruning slot claims failed");
            }
            // Delivered and refused notifications follow the same retention; pending ones stay.
            match shared.store.prune_outbox(cutoff).await {
                Ok(0) => {}
                Ok(n) => {
                    tracing::info!(notifications = n, "pruned notifications past the retention")
                }
                Err(e) => tracing::warn!(error = %e, "pruning the outbox failed"),
            }
        }
        n += 1;
    }
}
