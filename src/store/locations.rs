//! The latest run of every (check, location) pair in the store, with how that pair's runs ended
//! lately: what any replica lists for the checks it does not run itself (other locations, or
//! other replicas of its own location), so every replica's API and status page show the whole
//! cluster.
//!
//! One statement, both dialects: a `GROUP BY check_name, location` over the last 24 h finds each
//! pair's latest start and counts its runs per window in the same pass (a hash aggregate, no
//! sort of the window), then joins back to the run itself through the
//! `(check_name, started_at)` index, one probe per pair. Its cost grows with the runs of the
//! last 24 h: the schema has no index that leads with `location`, so no plan can visit the pairs
//! without reading the window once.

use chrono::{DateTime, SubsecRound, Utc};
use serde::de::{DeserializeOwned, IntoDeserializer};
use sqlx::Row;

use super::{Result, RunSummary, Store, StoreError, with_pool};
use crate::run::CheckKind;

/// Runs of one pair by outcome over a window: every attempt, cancelled runs and runs inside a
/// maintenance window left out, as the metrics registry counts a replica's own runs (which
/// also counts the slots an overrun made a check skip: the store has no row for those).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OutcomeCounts {
    pub pass: u64,
    pub fail: u64,
    pub error: u64,
}

/// The latest run of one (check, location) pair and that pair's recent outcomes.
#[derive(Debug, Clone, PartialEq)]
pub struct LocationLatest {
    /// The pair's latest run that was not cancelled (by `started_at`, then `run_id`).
    pub run: RunSummary,
    /// The replica that stored it; `None` for runs stored before replicas were recorded.
    pub replica: Option<String>,
    /// The SLO latency of that run (ms): a journey's timed steps, else the whole run.
    pub latency_ms: f64,
    /// Over the last 5 minutes, hour and 24 hours before `now`.
    pub m5: OutcomeCounts,
    pub h1: OutcomeCounts,
    pub h24: OutcomeCounts,
}

/// Per window (`5m`, `1h`, `24h`) and outcome, the pair's runs: the aggregate's columns.
macro_rules! window_counts {
    () => {
        "SUM(CASE WHEN started_at >= $3 AND outcome = 'pass' AND maintenance IS NULL \
           THEN 1 ELSE 0 END) AS m5_pass, \
         SUM(CASE WHEN started_at >= $3 AND outcome = 'fail' AND maintenance IS NULL \
           THEN 1 ELSE 0 END) AS m5_fail, \
         SUM(CASE WHEN started_at >= $3 AND outcome = 'error' AND maintenance IS NULL \
           THEN 1 ELSE 0 END) AS m5_error, \
         SUM(CASE WHEN started_at >= $2 AND outcome = 'pass' AND maintenance IS NULL \
           THEN 1 ELSE 0 END) AS h1_pass, \
         SUM(CASE WHEN started_at >= $2 AND outcome = 'fail' AND maintenance IS NULL \
           THEN 1 ELSE 0 END) AS h1_fail, \
         SUM(CASE WHEN started_at >= $2 AND outcome = 'error' AND maintenance IS NULL \
           THEN 1 ELSE 0 END) AS h1_error, \
         SUM(CASE WHEN outcome = 'pass' AND maintenance IS NULL THEN 1 ELSE 0 END) AS h24_pass, \
         SUM(CASE WHEN outcome = 'fail' AND maintenance IS NULL THEN 1 ELSE 0 END) AS h24_fail, \
         SUM(CASE WHEN outcome = 'error' AND maintenance IS NULL THEN 1 ELSE 0 END) AS h24_error"
    };
}

/// `$1` 24 h ago, `$2` 1 h ago, `$3` 5 minutes ago.
const LATEST_PER_LOCATION: &str = concat!(
    "WITH pairs AS ( \
       SELECT check_name, location, MAX(started_at) AS last_at, ",
    window_counts!(),
    " FROM runs WHERE started_at >= $1 AND cancelled = false \
       GROUP BY check_name, location \
     ) \
     SELECT r.run_id, r.check_name, r.kind, r.attempt, r.scheduled_at, r.started_at, r.target, \
       r.location, r.outcome, r.cancelled, r.timed_latency_ms, r.total_ms, r.error, \
       r.failed_step, r.maintenance, r.replica, \
       p.m5_pass, p.m5_fail, p.m5_error, p.h1_pass, p.h1_fail, p.h1_error, \
       p.h24_pass, p.h24_fail, p.h24_error \
     FROM pairs p JOIN runs r ON r.check_name = p.check_name AND r.started_at = p.last_at \
       AND r.location = p.location AND r.cancelled = false \
     ORDER BY r.location, r.check_name, r.run_id DESC"
);

impl Store {
    /// The latest run of every (check, location) pair that ran in the 24 hours before `now`,
    /// ordered by location then check, with each pair's runs by outcome over the last 5
    /// minutes, hour and 24 hours. One query (see the module doc for its cost).
    pub async fn latest_per_location(&self, now: DateTime<Utc>) -> Result<Vec<LocationLatest>> {
        let ago = |d: chrono::Duration| (now - d).trunc_subsecs(6);
        let (h24, h1, m5) = (
            ago(chrono::Duration::hours(24)),
            ago(chrono::Duration::hours(1)),
            ago(chrono::Duration::minutes(5)),
        );
        let mut out: Vec<LocationLatest> = with_pool!(self, pool, _Db => {
            sqlx::query(LATEST_PER_LOCATION)
                .bind(h24)
                .bind(h1)
                .bind(m5)
                .fetch_all(pool)
                .await?
                .iter()
                .map(|row| {
                    let count = |col: &'static str| -> Result<u64> {
                        let n: i64 = row.try_get(col)?;
                        u64::try_from(n).map_err(|_| StoreError::Corrupt {
                            column: col,
                            value: n.to_string(),
                        })
                    };
                    let counts = |[pass, fail, error]: [&'static str; 3]| -> Result<OutcomeCounts> {
                        Ok(OutcomeCounts {
                            pass: count(pass)?,
                            fail: count(fail)?,
                            error: count(error)?,
                        })
                    };
                    let kind: CheckKind = parse("kind", row.try_get("kind")?)?;
                    let attempt: i64 = row.try_get("attempt")?;
                    let timed: f64 = row.try_get("timed_latency_ms")?;
                    let total: f64 = row.try_get("total_ms")?;
                    let run = RunSummary {
                        run_id: row.try_get("run_id")?,
                        check: row.try_get("check_name")?,
                        kind,
                        attempt: u32::try_from(attempt).map_err(|_| StoreError::Corrupt {
                            column: "attempt",
                            value: attempt.to_string(),
                        })?,
                        scheduled_at: row.try_get("scheduled_at")?,
                        started_at: row.try_get("started_at")?,
                        target: row.try_get("target")?,
                        location: row.try_get("location")?,
                        outcome: parse("outcome", row.try_get("outcome")?)?,
                        cancelled: row.try_get("cancelled")?,
                        timed_latency_ms: timed,
                        total_ms: total,
                        error: row.try_get("error")?,
                        failed_step: row.try_get("failed_step")?,
                        maintenance: row.try_get("maintenance")?,
                    };
                    Ok(LocationLatest {
                        // As the store reads SLO latency elsewhere (the gate's points).
                        latency_ms: if kind == CheckKind::Journey && timed > 0.0 {
                            timed
                        } else {
                            total
                        },
                        replica: row.try_get("replica")?,
                        m5: counts(["m5_pass", "m5_fail", "m5_error"])?,
                        h1: counts(["h1_pass", "h1_fail", "h1_error"])?,
                        h24: counts(["h24_pass", "h24_fail", "h24_error"])?,
                        run,
                    })
                })
                .collect::<Result<_>>()?
        });
        // Two runs of a pair that started in the same microsecond (two replicas of a location):
        // the rows come highest `run_id` first, and that one is kept.
        out.dedup_by(|b, a| a.run.location == b.run.location && a.run.check == b.run.check);
        Ok(out)
    }
}

/// A stored enum spelling read back through its serde name.
fn parse<T: DeserializeOwned>(column: &'static str, value: String) -> Result<T> {
    T::deserialize(IntoDeserializer::<serde::de::value::Error>::into_deserializer(value.as_str()))
        .map_err(|_| StoreError::Corrupt { column, value })
}
