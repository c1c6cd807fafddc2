//! Runs, their steps and artifacts: recording, reading back, retention.
//!
//! Timestamps are stored with microsecond precision (PostgreSQL's `timestamptz` resolution);
//! both dialects truncate the same way, so what comes back is the value written, truncated to
//! the microsecond.

use chrono::{DateTime, SubsecRound, Utc};
use serde::de::{DeserializeOwned, IntoDeserializer};
use serde::{Deserialize, Serialize};
use sqlx::types::Json;
use sqlx::{QueryBuilder, Row};

use super::{Result, Store, StoreError, with_pool};
use crate::outcome::Outcome;
use crate::run::{Artifact, CheckKind, PageMetrics, RunResult, StepResult, Timing};

/// One run without its steps, artifacts and page metrics: what lists, the gate and the metrics
/// rebuild need.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunSummary {
    pub run_id: String,
    pub check: String,
    pub kind: CheckKind,
    pub attempt: u32,
    pub scheduled_at: DateTime<Utc>,
    pub started_at: DateTime<Utc>,
    pub target: String,
    pub location: String,
    pub outcome: Outcome,
    pub cancelled: bool,
    pub timed_latency_ms: f64,
    pub total_ms: f64,
    pub error: Option<String>,
    pub failed_step: Option<String>,
}

/// What [`Store::prune`] deleted. The store does not touch files: the caller removes
/// `artifact_paths` (as recorded, relative or absolute) from disk.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pruned {
    pub runs: u64,
    pub steps: u64,
    pub artifacts: u64,
    pub artifact_paths: Vec<String>,
}

impl Pruned {
    /// Rows deleted over the three tables.
    pub fn rows(&self) -> u64 {
        self.runs + self.steps + self.artifacts
    }
}

/// The columns a [`RunSummary`] is read from, in every query that returns summaries.
macro_rules! summary_columns {
    () => {
        "r.run_id, r.check_name, r.kind, r.attempt, r.scheduled_at, r.started_at, r.target, \
         r.location, r.outcome, r.cancelled, r.timed_latency_ms, r.total_ms, r.error, \
         r.failed_step"
    };
}

/// Reads a [`RunSummary`] from a row of `summary_columns!()` (any dialect).
macro_rules! summary_from_row {
    ($row:expr) => {{
        let row = $row;
        Ok::<RunSummary, StoreError>(RunSummary {
            run_id: row.try_get("run_id")?,
            check: row.try_get("check_name")?,
            kind: parse_enum("kind", row.try_get("kind")?)?,
            attempt: attempt(row.try_get("attempt")?)?,
            scheduled_at: row.try_get("scheduled_at")?,
            started_at: row.try_get("started_at")?,
            target: row.try_get("target")?,
            location: row.try_get("location")?,
            outcome: parse_enum("outcome", row.try_get("outcome")?)?,
            cancelled: row.try_get("cancelled")?,
            timed_latency_ms: row.try_get("timed_latency_ms")?,
            total_ms: row.try_get("total_ms")?,
            error: row.try_get("error")?,
            failed_step: row.try_get("failed_step")?,
        })
    }};
}

impl Store {
    /// Records a run with its steps and artifacts in one transaction. A second insert of the
    /// same `run_id` fails and changes nothing.
    pub async fn insert_run(&self, run: &RunResult) -> Result<()> {
        let page = run.page.as_ref().map(Json);
        let scheduled_at = micros(run.scheduled_at);
        let started_at = micros(run.started_at);
        with_pool!(self, pool, Db => {
            let mut tx = pool.begin().await?;
            sqlx::query(
                "INSERT INTO runs (run_id, check_name, kind, attempt, scheduled_at, started_at, \
                 target, location, outcome, cancelled, timed_latency_ms, total_ms, \
                 session_wait_ms, session_create_ms, error, failed_step, page) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)",
            )
            .bind(&run.run_id)
            .bind(&run.check)
            .bind(run.kind.as_str())
            .bind(i64::from(run.attempt))
            .bind(scheduled_at)
            .bind(started_at)
            .bind(&run.target)
            .bind(&run.location)
            .bind(run.outcome.as_str())
            .bind(run.cancelled)
            .bind(run.timed_latency_ms)
            .bind(run.total_ms)
            .bind(run.session_wait_ms)
            .bind(run.session_create_ms)
            .bind(&run.error)
            .bind(&run.failed_step)
            .bind(page)
            .execute(&mut *tx)
            .await?;

            if !run.steps.is_empty() {
                let mut q = QueryBuilder::<Db>::new(
                    "INSERT INTO run_steps (run_id, idx, name, action, latency_ms, timed, timing, \
                     outcome, error) ",
                );
                q.push_values(run.steps.iter().zip(0i64..), |mut b, (s, idx)| {
                    b.push_bind(&run.run_id)
                        .push_bind(idx)
                        .push_bind(&s.name)
                        .push_bind(&s.action)
                        .push_bind(s.latency_ms)
                        .push_bind(s.timed)
                        .push_bind(enum_str(&s.timing))
                        .push_bind(s.outcome.as_str())
                        .push_bind(&s.error);
                });
                q.build().execute(&mut *tx).await?;
            }

            if !run.artifacts.is_empty() {
                let mut q =
                    QueryBuilder::<Db>::new("INSERT INTO run_artifacts (run_id, idx, kind, path) ");
                q.push_values(run.artifacts.iter().zip(0i64..), |mut b, (a, idx)| {
                    b.push_bind(&run.run_id)
                        .push_bind(idx)
                        .push_bind(&a.kind)
                        .push_bind(&a.path);
                });
                q.build().execute(&mut *tx).await?;
            }
            tx.commit().await?;
        });
        Ok(())
    }

    /// The whole run, steps and artifacts in recorded order; `None` if unknown (or pruned).
    pub async fn run(&self, run_id: &str) -> Result<Option<RunResult>> {
        with_pool!(self, pool, _Db => {
            let mut tx = pool.begin().await?;
            let Some(row) = sqlx::query(concat!(
                "SELECT ",
                summary_columns!(),
                ", r.session_wait_ms, r.session_create_ms, r.page FROM runs r WHERE r.run_id = $1"
            ))
            .bind(run_id)
            .fetch_optional(&mut *tx)
            .await?
            else {
                return Ok(None);
            };
            let summary = summary_from_row!(&row)?;
            let session_wait_ms: f64 = row.try_get("session_wait_ms")?;
            let session_create_ms: f64 = row.try_get("session_create_ms")?;
            let page: Option<Json<PageMetrics>> = row.try_get("page")?;

            let steps = sqlx::query(
                "SELECT name, action, latency_ms, timed, timing, outcome, error \
                 FROM run_steps WHERE run_id = $1 ORDER BY idx",
            )
            .bind(run_id)
            .fetch_all(&mut *tx)
            .await?
            .iter()
            .map(|s| {
                Ok(StepResult {
                    name: s.try_get("name")?,
                    action: s.try_get("action")?,
                    latency_ms: s.try_get("latency_ms")?,
                    timed: s.try_get("timed")?,
                    timing: parse_enum::<Timing>("timing", s.try_get("timing")?)?,
                    outcome: parse_enum("outcome", s.try_get("outcome")?)?,
                    error: s.try_get("error")?,
                })
            })
            .collect::<Result<Vec<_>>>()?;

            let artifacts = sqlx::query(
                "SELECT kind, path FROM run_artifacts WHERE run_id = $1 ORDER BY idx",
            )
            .bind(run_id)
            .fetch_all(&mut *tx)
            .await?
            .iter()
            .map(|a| {
                Ok(Artifact {
                    kind: a.try_get("kind")?,
                    path: a.try_get("path")?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
            tx.commit().await?;

            Ok(Some(RunResult {
                run_id: summary.run_id,
                check: summary.check,
                kind: summary.kind,
                attempt: summary.attempt,
                scheduled_at: summary.scheduled_at,
                cancelled: summary.cancelled,
                target: summary.target,
                location: summary.location,
                outcome: summary.outcome,
                started_at: summary.started_at,
                timed_latency_ms: summary.timed_latency_ms,
                total_ms: summary.total_ms,
                session_wait_ms,
                session_create_ms,
                steps,
                error: summary.error,
                failed_step: summary.failed_step,
                artifacts,
                page: page.map(|Json(p)| p),
            }))
        })
    }

    /// The check's latest `limit` runs, newest first (by `started_at`, then `run_id`).
    pub async fn runs_for_check(&self, check: &str, limit: u32) -> Result<Vec<RunSummary>> {
        with_pool!(self, pool, _Db => {
            sqlx::query(concat!(
                "SELECT ",
                summary_columns!(),
                " FROM runs r WHERE r.check_name = $1 \
                 ORDER BY r.started_at DESC, r.run_id DESC LIMIT $2"
            ))
            .bind(check)
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await?
            .iter()
            .map(|row| summary_from_row!(row))
            .collect()
        })
    }

    /// Every run that started at or after `since`, oldest first (by `started_at`, then
    /// `run_id`), so a consumer can replay them in time order.
    pub async fn runs_since(&self, since: DateTime<Utc>) -> Result<Vec<RunSummary>> {
        let since = micros(since);
        with_pool!(self, pool, _Db => {
            sqlx::query(concat!(
                "SELECT ",
                summary_columns!(),
                " FROM runs r WHERE r.started_at >= $1 ORDER BY r.started_at, r.run_id"
            ))
            .bind(since)
            .fetch_all(pool)
            .await?
            .iter()
            .map(|row| summary_from_row!(row))
            .collect()
        })
    }

    /// The latest run (by `started_at`) of every check that has one, ordered by check name.
    ///
    /// Walks the distinct check names through the `(check_name, started_at)` index (a loose
    /// index scan), so the cost grows with the number of checks, not of runs.
    pub async fn last_run_per_check(&self) -> Result<Vec<RunSummary>> {
        with_pool!(self, pool, _Db => {
            sqlx::query(concat!(
                "WITH RECURSIVE names (check_name) AS ( \
                   SELECT MIN(check_name) FROM runs \
                   UNION ALL \
                   SELECT (SELECT MIN(x.check_name) FROM runs x WHERE x.check_name > n.check_name) \
                   FROM names n WHERE n.check_name IS NOT NULL \
                 ) \
                 SELECT ",
                summary_columns!(),
                " FROM names n JOIN runs r ON r.run_id = ( \
                   SELECT l.run_id FROM runs l WHERE l.check_name = n.check_name \
                   ORDER BY l.started_at DESC, l.run_id DESC LIMIT 1 \
                 ) \
                 ORDER BY r.check_name"
            ))
            .fetch_all(pool)
            .await?
            .iter()
            .map(|row| summary_from_row!(row))
            .collect()
        })
    }

    /// Deletes every run that started before `older_than`, with its steps and artifact rows, in
    /// one transaction. Returns the counts and the artifact paths, which the caller deletes from
    /// disk (the store never touches files). The caller computes the cutoff from its clock and
    /// the retention setting.
    pub async fn prune(&self, older_than: DateTime<Utc>) -> Result<Pruned> {
        let cutoff = micros(older_than);
        with_pool!(self, pool, _Db => {
            let mut tx = pool.begin().await?;
            let artifact_paths: Vec<String> = sqlx::query_scalar(
                "SELECT a.path FROM run_artifacts a JOIN runs r ON r.run_id = a.run_id \
                 WHERE r.started_at < $1 ORDER BY r.started_at, a.run_id, a.idx",
            )
            .bind(cutoff)
            .fetch_all(&mut *tx)
            .await?;
            let artifacts = sqlx::query(
                "DELETE FROM run_artifacts WHERE run_id IN \
                 (SELECT run_id FROM runs WHERE started_at < $1)",
            )
            .bind(cutoff)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            let steps = sqlx::query(
                "DELETE FROM run_steps WHERE run_id IN \
                 (SELECT run_id FROM runs WHERE started_at < $1)",
            )
            .bind(cutoff)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            let runs = sqlx::query("DELETE FROM runs WHERE started_at < $1")
                .bind(cutoff)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            tx.commit().await?;
            Ok(Pruned {
                runs,
                steps,
                artifacts,
                artifact_paths,
            })
        })
    }
}

/// The precision both databases keep.
fn micros(t: DateTime<Utc>) -> DateTime<Utc> {
    t.trunc_subsecs(6)
}

fn attempt(value: i64) -> Result<u32> {
    u32::try_from(value).map_err(|_| StoreError::Corrupt {
        column: "attempt",
        value: value.to_string(),
    })
}

/// The serde spelling of a unit enum variant (`in_page`, `pass`, ...).
fn enum_str<T: Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(s)) => s,
        other => unreachable!("unit enum variants serialize as strings, got {other:?}"),
    }
}

/// Parses a stored enum spelling back, through the same serde names it was written with.
fn parse_enum<T: DeserializeOwned>(column: &'static str, value: String) -> Result<T> {
    T::deserialize(IntoDeserializer::<serde::de::value::Error>::into_deserializer(value.as_str()))
        .map_err(|_| StoreError::Corrupt { column, value })
}
