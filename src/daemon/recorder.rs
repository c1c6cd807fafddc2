//! What a run leaves behind: metrics (registry and DogStatsD, runs inside a maintenance window
//! marked as such), the last result per check, and a row queued for the store's writer.
//! Scheduling lateness and overruns are recorded here too, so slow periods weigh in the
//! latency histograms as long as they lasted.

use std::time::Duration;

use crate::metrics::catalog;
use crate::run::RunResult;
use crate::scheduler::{CheckSpec, Recorder};
use crate::store::StoredRun;

use super::runner::Engine;

impl Recorder for Engine {
    fn record_run(&self, run: &RunResult) {
        // Runs the scheduler made up (timed out, cancelled) do not know the target or location.
        let mut owned;
        let run = if run.target.is_empty() || run.location.is_empty() {
            owned = run.clone();
            owned.target = self.target.name.clone();
            owned.location = self.config.location.clone();
            &owned
        } else {
            run
        };
        let now = self.now();
        // A run inside a maintenance window is recorded as `maintenance` in the metrics (SLO
        // budgets skip it) and stored with the window's name (the gate, the report and the
        // pages skip or show it, and a restart replays it as it was judged now).
        let window = self.shared.mute.maintenance.window_for_run(run);
        let recorded = self
            .shared
            .registry
            .record_run_marked(run, window.as_deref(), now);
        match (&window, recorded) {
            (_, Err(e)) => {
                tracing::warn!(check = %run.check, error = %e, "run not recorded in metrics")
            }
            (Some(w), Ok(())) => {
                tracing::info!(check = %run.check, window = %w, outcome = %run.outcome, "run inside a maintenance window: recorded as maintenance")
            }
            (None, Ok(())) => {}
        }
        if let Some(s) = &self.statsd
            && let Err(e) = s.emit_run_marked(run, window.as_deref())
        {
            tracing::debug!(error = %e, "DogStatsD send failed");
        }
        if !run.cancelled {
            // Both maps under the `last` lock's turn, so a reader never pairs a run with the
            // previous run's mark for long.
            let mut last = self.shared.last.write().expect("last lock");
            let mut marks = self
                .shared
                .last_maintenance
                .write()
                .expect("last_maintenance lock");
            match &window {
                Some(w) => marks.insert(run.check.clone(), w.clone()),
                None => marks.remove(&run.check),
            };
            last.insert(run.check.clone(), run.clone());
        }
        let _ = self.writes.send(StoredRun {
            run: run.clone(),
            maintenance: window,
        });
    }

    fn record_lateness(&self, check: &CheckSpec, lateness: Duration) {
        let _ = self.shared.registry.record(
            catalog::SCHEDULE_LATENESS.name,
            &[("check", &check.name), ("location", &self.config.location)],
            lateness.as_secs_f64() * 1000.0,
            self.now(),
        );
    }

    fn record_overrun(&self, check: &CheckSpec, missed: u64, run: &RunResult) {
        // A run the scheduler made up (timed out) has no location: the daemon's is the one.
        let metrics = crate::metrics::RunMetrics {
            location: &self.config.location,
            ..crate::metrics::RunMetrics::of(run)
        };
        let interval = check.schedule.interval.as_secs_f64() * 1000.0;
        let reg = &self.shared.registry;
        let now = self.now();
        let _ = metrics.try_for_each_overrun_point(missed, interval, |p| reg.record_point(&p, now));
    }
}
