//! What a run leaves behind: metrics (registry and DogStatsD, runs inside a maintenance window
//! marked as such), the last result per check, a row queued for the store's writer, and a
//! trace queued for the OTLP exporter when one is configured. Scheduling lateness and overruns
//! are recorded here too, so slow periods weigh in the latency histograms as long as they
//! lasted.

use std::sync::Arc;
use std::time::Duration;

use crate::metrics::catalog;
use crate::metrics::registry::Registry;
use crate::run::RunResult;
use crate::scheduler::{CheckSpec, Recorder};
use crate::settings::Config;
use crate::store::StoredRun;
use crate::trace::Exporter;

use super::runner::Engine;

/// The OTLP exporter of `config` (`exporters.otlp`), started, counting into `registry`;
/// `None` when export is off, or when it cannot start (logged: runs go on without export).
pub(super) fn trace_exporter(config: &Config, registry: &Registry) -> Option<Arc<Exporter>> {
    let otlp = config.otlp.as_ref()?;
    let resource = crate::trace::export::resource(&config.replica_id, &config.location);
    match Exporter::start(otlp, &resource, config.redactor(), Some(registry.clone())) {
        Ok(e) => Some(Arc::new(e)),
        Err(e) => {
            tracing::error!(error = %e, "trace export could not start: runs are not exported");
            None
        }
    }
}

impl Recorder for Engine {
    fn record_run(&self, run: &RunResult) {
        // Runs the scheduler made up (timed out, cancelled) do not know the target or location.
        let unplaced = run.target.is_empty() || run.location.is_empty();
        let mut owned;
        let run = if unplaced || run.trace_id.is_none() {
            owned = run.clone();
            if unplaced {
                owned.target = self.target.name.clone();
                owned.location = self.config.location.clone();
            }
            // Every run is a trace: a run whose probe sent no request (TCP, DNS, TLS, SQL) or
            // that the scheduler made up gets its trace id here.
            owned
                .trace_id
                .get_or_insert_with(crate::trace::new_trace_id);
            &owned
        } else {
            run
        };
        let now = self.now();
        // A run inside a maintenance window is recorded as `maintenance` in the metrics (SLO
        // budgets skip it) and stored with the window's name (the gate, the report and the
        // pages skip or show it, and a restart replays it as it was judged now).
        let window = self.shared.mute.maintenance.window_for_run(run);
        // Queued for the store before the registry has it: an evaluation that sees the run
        // waits for its write (see `store::WriteProgress`).
        self.writes.send(StoredRun {
            run: run.clone(),
            maintenance: window.clone(),
        });
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
        if let Some(t) = &self.traces {
            t.export(run);
        }
    }

    fn record_lateness(&self, check: &CheckSpec, lateness: Duration) {
        let _ = self.shared.registry.record(
            catalog::SCHEDULE_LATENESS.name,
            &[("check", &check.name), ("location", &self.config.location)],
            lateness.as_secs_f64() * 1000.0,
            self.now(),
        );
    }

    fn record_missed(&self, check: &CheckSpec, missed: u64) {
        // The same counter as overruns: slots intended and not run, whatever the reason.
        let _ = self.shared.registry.incr(
            catalog::CHECK_OVERRUNS.name,
            &[("check", &check.name), ("location", &self.config.location)],
            missed,
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
