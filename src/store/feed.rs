//! The leader's read of the other replicas' runs, in the order the store received them.
//!
//! Every replica stores its own runs; the leader evaluates rules over all of them, so it reads
//! what the others stored since it last looked. The order is `stored_us` (the store's clock when
//! the run arrived, see `insert_runs`), never `started_at`: a replica that was cut off from the
//! store delivers old runs late, and they must still be read.
//!
//! `stored_us` is read from the clock when the row is written, not when its transaction commits:
//! on PostgreSQL a row can become visible after rows with a later `stored_us`, up to a
//! transaction's length later. A reader that only ever asks for rows after the highest
//! `stored_us` it has seen would skip it; it re-reads an overlap and drops what it already has
//! (see `daemon/feed.rs`).

use chrono::{DateTime, Utc};
use serde::de::{DeserializeOwned, IntoDeserializer};
use sqlx::Row;

use super::{Result, Store, StoreError, with_pool};
use crate::outcome::Outcome;
use crate::run::{CheckKind, StepResult, Timing};

/// One run another replica stored: what its metric points are made from (the fields
/// [`crate::metrics::RunMetrics`] reads, and its steps), plus when the store received it.
#[derive(Debug, Clone)]
pub struct FedRun {
    pub run_id: String,
    /// The replica that stored it.
    pub replica: String,
    /// When the store received it, microseconds since the Unix epoch by the store's clock.
    pub stored_us: i64,
    pub check: String,
    pub kind: CheckKind,
    pub location: String,
    pub target: String,
    pub outcome: Outcome,
    pub attempt: u32,
    pub cancelled: bool,
    pub started_at: DateTime<Utc>,
    pub timed_latency_ms: f64,
    pub total_ms: f64,
    /// The maintenance window the run fell in when it was recorded, if any.
    pub maintenance: Option<String>,
    /// In recorded order.
    pub steps: Vec<StepResult>,
}

impl FedRun {
    /// When the run ended on its replica (its start plus its total duration), by that
    /// replica's clock: the time its live metrics were recorded at.
    pub fn ended_at(&self) -> DateTime<Utc> {
        self.started_at + chrono::Duration::microseconds((self.total_ms * 1000.0).round() as i64)
    }

    /// The latency alerting and SLOs judge, as `RunResult::slo_latency_ms` computes it: the
    /// sum of the timed steps, or the whole run when no step is timed.
    pub fn slo_latency_ms(&self) -> f64 {
        crate::run::slo_latency_ms(&self.steps, self.timed_latency_ms, self.total_ms)
    }
}

/// The runs of one page: `$1` after (exclusive), `$2` the replica left out, `$3` the limit.
/// Runs without a replica predate the cluster (every replica stored its own history then)
/// and are never fed.
macro_rules! fed_page {
    () => {
        " FROM runs r WHERE r.stored_us > $1 AND r.replica IS NOT NULL AND r.replica <> $2 \
         ORDER BY r.stored_us, r.run_id LIMIT $3"
    };
}

impl Store {
    /// Runs stored after `after_us` (exclusive; the store's clock, microseconds since the Unix
    /// epoch) by replicas other than `exclude_replica`, oldest first by `stored_us`, then
    /// `run_id`, at most `limit`, each with its steps. Runs stored before the cluster schema
    /// (no replica) are left out.
    ///
    /// Two queries whatever the page size: the runs, then the steps of every run stored in the
    /// page's `stored_us` range. Rows sharing a `stored_us` (one SQLite insert stores a batch at
    /// the same instant) may straddle pages: a caller paging on `stored_us` alone re-reads from
    /// just before the last one it got and drops what it has.
    pub async fn runs_stored_since(
        &self,
        after_us: i64,
        exclude_replica: &str,
        limit: u32,
    ) -> Result<Vec<FedRun>> {
        let limit = i64::from(limit);
        with_pool!(self, pool, _Db => {
            let mut tx = pool.begin().await?;
            let mut runs = sqlx::query(concat!(
                "SELECT r.run_id, r.replica, r.stored_us, r.check_name, r.kind, r.location, \
                 r.target, r.outcome, r.attempt, r.cancelled, r.started_at, r.timed_latency_ms, \
                 r.total_ms, r.maintenance",
                fed_page!()
            ))
            .bind(after_us)
            .bind(exclude_replica)
            .bind(limit)
            .fetch_all(&mut *tx)
            .await?
            .iter()
            .map(|row| {
                Ok(FedRun {
                    run_id: row.try_get("run_id")?,
                    replica: row.try_get("replica")?,
                    stored_us: row.try_get("stored_us")?,
                    check: row.try_get("check_name")?,
                    kind: parse_enum("kind", row.try_get("kind")?)?,
                    location: row.try_get("location")?,
                    target: row.try_get("target")?,
                    outcome: parse_enum("outcome", row.try_get("outcome")?)?,
                    attempt: attempt(row.try_get("attempt")?)?,
                    cancelled: row.try_get("cancelled")?,
                    started_at: row.try_get("started_at")?,
                    timed_latency_ms: row.try_get("timed_latency_ms")?,
                    total_ms: row.try_get("total_ms")?,
                    maintenance: row.try_get("maintenance")?,
                    steps: Vec::new(),
                })
            })
            .collect::<Result<Vec<FedRun>>>()?;
            let (Some(first), Some(last)) = (runs.first(), runs.last()) else {
                tx.commit().await?;
                return Ok(runs);
            };
            // The steps of every run in the page's `stored_us` range: a superset of the page
            // even when a row committed in between (PostgreSQL reads each statement's own
            // snapshot); the extra rows are dropped below.
            let (low, high) = (first.stored_us, last.stored_us);
            let index: std::collections::HashMap<String, usize> = runs
                .iter()
                .enumerate()
                .map(|(i, r)| (r.run_id.clone(), i))
                .collect();
            let steps = sqlx::query(
                "SELECT s.run_id, s.name, s.action, s.latency_ms, s.timed, s.timing, s.outcome, \
                 s.error FROM run_steps s WHERE s.run_id IN (SELECT r.run_id FROM runs r \
                 WHERE r.stored_us >= $1 AND r.stored_us <= $2 AND r.replica IS NOT NULL \
                 AND r.replica <> $3) ORDER BY s.run_id, s.idx",
            )
            .bind(low)
            .bind(high)
            .bind(exclude_replica)
            .fetch_all(&mut *tx)
            .await?;
            tx.commit().await?;
            for row in &steps {
                let run_id: String = row.try_get("run_id")?;
                let Some(&i) = index.get(&run_id) else {
                    continue;
                };
                runs[i].steps.push(StepResult {
                    name: row.try_get("name")?,
                    action: row.try_get("action")?,
                    latency_ms: row.try_get("latency_ms")?,
                    timed: row.try_get("timed")?,
                    timing: parse_enum::<Timing>("timing", row.try_get("timing")?)?,
                    outcome: parse_enum("outcome", row.try_get("outcome")?)?,
                    error: row.try_get("error")?,
                    navigation: None,
                });
            }
            Ok(runs)
        })
    }
}

fn attempt(value: i64) -> Result<u32> {
    u32::try_from(value).map_err(|_| StoreError::Corrupt {
        column: "attempt",
        value: value.to_string(),
    })
}

/// Parses a stored enum spelling back through the serde names it was written with.
fn parse_enum<T: DeserializeOwned>(column: &'static str, value: String) -> Result<T> {
    T::deserialize(IntoDeserializer::<serde::de::value::Error>::into_deserializer(value.as_str()))
        .map_err(|_| StoreError::Corrupt { column, value })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Secret;
    use crate::run::RunResult;

    fn step(name: &str, ms: f64, timed: bool) -> StepResult {
        StepResult {
            name: name.into(),
            action: "click".into(),
            latency_ms: ms,
            timed,
            timing: Timing::InPage,
            navigation: None,
            outcome: Outcome::Pass,
            error: None,
        }
    }

    fn run(id: &str, steps: Vec<StepResult>) -> RunResult {
        let started_at = "2026-11-26T00:00:00Z".parse().unwrap();
        RunResult {
            run_id: id.into(),
            check: "c".into(),
            kind: CheckKind::Journey,
            attempt: 1,
            scheduled_at: started_at,
            cancelled: false,
            target: "staging".into(),
            location: "eu".into(),
            outcome: Outcome::Pass,
            started_at,
            timed_latency_ms: steps.iter().filter(|s| s.timed).map(|s| s.latency_ms).sum(),
            total_ms: 1500.0,
            session_wait_ms: 0.0,
            session_create_ms: 0.0,
            browser_reused: None,
            session_reused: None,
            emulation: None,
            steps,
            error: None,
            failed_step: None,
            artifacts: vec![],
            page: None,
            trace_id: None,
        }
    }

    #[tokio::test]
    async fn own_and_legacy_runs_are_left_out_and_steps_come_along() {
        let store = Store::connect(&Secret::new("sqlite::memory:".to_string()))
            .await
            .unwrap();
        store.insert_run(&run("legacy", vec![])).await.unwrap();
        let a = store.clone().for_replica("a-0");
        let b = store.clone().for_replica("b-0");
        a.insert_run(&run("mine", vec![step("x", 1.0, true)]))
            .await
            .unwrap();
        b.insert_runs(&[
            run(
                "theirs-1",
                vec![step("login", 900.0, false), step("save", 120.0, true)],
            ),
            run("theirs-2", vec![]),
        ])
        .await
        .unwrap();

        let got = store.runs_stored_since(0, "a-0", 10).await.unwrap();
        let ids: Vec<&str> = got.iter().map(|r| r.run_id.as_str()).collect();
        assert_eq!(ids, ["theirs-1", "theirs-2"]);
        assert!(got.iter().all(|r| r.replica == "b-0" && r.stored_us > 0));
        let names: Vec<&str> = got[0].steps.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["login", "save"]);
        assert_eq!(got[0].slo_latency_ms(), 120.0);
        assert_eq!(got[1].slo_latency_ms(), 1500.0);
        assert_eq!(
            got[0].ended_at(),
            got[0].started_at + chrono::Duration::milliseconds(1500)
        );

        // A limit cuts the page; asking from just before its last `stored_us` reads on.
        let first = store.runs_stored_since(0, "a-0", 1).await.unwrap();
        assert_eq!(first.len(), 1);
        assert_eq!(first[0].steps.len(), 2);
        let rest = store
            .runs_stored_since(first[0].stored_us - 1, "a-0", 10)
            .await
            .unwrap();
        assert_eq!(rest.len(), 2, "ties at one instant are read again");
        let last = got.last().unwrap().stored_us;
        assert!(
            store
                .runs_stored_since(last, "a-0", 10)
                .await
                .unwrap()
                .is_empty()
        );
        // From b-0's side only a-0's run is fed.
        let other = store.runs_stored_since(0, "b-0", 10).await.unwrap();
        assert_eq!(other.len(), 1);
        assert_eq!(other[0].run_id, "mine");
        assert_eq!(other[0].steps.len(), 1);
    }
}
