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
    /// The maintenance window the run fell in when it was recorded (its name), `None` outside
    /// any (and for runs stored before the mark existed).
    pub maintenance: Option<String>,
}

/// A run as the store keeps it: what the runner produced plus what the recorder knew when it
/// stored it. `RunResult` is the runners' type and stays free of recorder concerns; the mark
/// lives beside it and is serialized as one flat object (`maintenance` next to the run's keys).
#[derive(Debug, Clone, Serialize)]
pub struct StoredRun {
    #[serde(flatten)]
    pub run: RunResult,
    /// The maintenance window the run fell in when it was recorded (its name), if any.
    pub maintenance: Option<String>,
}

impl StoredRun {
    /// A run outside any maintenance window.
    pub fn unmarked(run: RunResult) -> StoredRun {
        StoredRun {
            run,
            maintenance: None,
        }
    }
}

/// What [`Store::insert_runs`] takes: a bare run (no mark) or a [`StoredRun`].
pub trait RunRow: Sync {
    fn result(&self) -> &RunResult;
    fn maintenance(&self) -> Option<&str>;
}

impl RunRow for RunResult {
    fn result(&self) -> &RunResult {
        self
    }
    fn maintenance(&self) -> Option<&str> {
        None
    }
}

impl RunRow for StoredRun {
    fn result(&self) -> &RunResult {
        &self.run
    }
    fn maintenance(&self) -> Option<&str> {
        self.maintenance.as_deref()
    }
}

/// One run as the release gate and the report see it: which check, where, when, its outcome
/// and its SLO latency (see [`Store::run_points_since`]).
#[derive(Debug, Clone, PartialEq)]
pub struct RunPoint {
    pub check: std::sync::Arc<str>,
    pub kind: CheckKind,
    pub location: std::sync::Arc<str>,
    pub attempt: u32,
    pub scheduled_at: DateTime<Utc>,
    pub started_at: DateTime<Utc>,
    pub outcome: Outcome,
    pub cancelled: bool,
    /// The timed steps of a journey, or the whole run for other checks.
    pub latency_ms: f64,
    /// Recorded inside a maintenance window: reported apart, never judged.
    pub maintenance: bool,
}

/// What [`Store::gate_runs`] reads.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GateRuns {
    /// Per check with passing runs in the window: its kind and their SLO latencies (ms).
    pub passes: Vec<(String, CheckKind, Vec<f64>)>,
    /// Every failed or probe-error run, every retry (attempt > 1), passing or not, and every
    /// run recorded inside a maintenance window (the passes above leave those out).
    pub others: Vec<RunPoint>,
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

/// A CTE `names (check_name)` of the distinct check names, walked through the
/// `(check_name, started_at)` index (a loose index scan: the cost grows with the number of
/// checks, not of runs); its last row is NULL.
macro_rules! check_names {
    () => {
        "WITH RECURSIVE names (check_name) AS ( \
           SELECT MIN(check_name) FROM runs \
           UNION ALL \
           SELECT (SELECT MIN(x.check_name) FROM runs x WHERE x.check_name > n.check_name) \
           FROM names n WHERE n.check_name IS NOT NULL \
         ) "
    };
}

/// The columns a [`RunSummary`] is read from, in every query that returns summaries.
macro_rules! summary_columns {
    () => {
        "r.run_id, r.check_name, r.kind, r.attempt, r.scheduled_at, r.started_at, r.target, \
         r.location, r.outcome, r.cancelled, r.timed_latency_ms, r.total_ms, r.error, \
         r.failed_step, r.maintenance"
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
            maintenance: row.try_get("maintenance")?,
        })
    }};
}

/// The columns a whole [`RunResult`] (without steps and artifacts) is read from.
macro_rules! full_columns {
    () => {
        concat!(
            summary_columns!(),
            ", r.session_wait_ms, r.session_create_ms, r.page, r.trace_id"
        )
    };
}

/// Reads a [`StoredRun`] with no steps or artifacts yet from a row of `full_columns!()`.
macro_rules! run_from_row {
    ($row:expr) => {{
        let row = $row;
        let summary = summary_from_row!(row)?;
        let page: Option<Json<PageMetrics>> = row.try_get("page")?;
        let run = RunResult {
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
            session_wait_ms: row.try_get("session_wait_ms")?,
            session_create_ms: row.try_get("session_create_ms")?,
            browser_reused: None,
            session_reused: None,
            emulation: None,
            steps: Vec::new(),
            error: summary.error,
            failed_step: summary.failed_step,
            artifacts: Vec::new(),
            page: page.map(|Json(p)| p),
            trace_id: row.try_get("trace_id")?,
        };
        Ok::<StoredRun, StoreError>(StoredRun {
            run,
            maintenance: summary.maintenance,
        })
    }};
}

/// The columns a [`RunPoint`] is read from, in every query that returns points.
macro_rules! point_columns {
    () => {
        "r.check_name, r.kind, r.location, r.attempt, r.scheduled_at, r.started_at, r.outcome, \
         r.cancelled, r.timed_latency_ms, r.total_ms, r.maintenance"
    };
}

/// Reads a [`RunPoint`] from a row of `point_columns!()` (any dialect).
macro_rules! point_from_row {
    ($row:expr) => {{
        let row = $row;
        let kind: CheckKind = parse_enum("kind", row.try_get("kind")?)?;
        let timed: f64 = row.try_get("timed_latency_ms")?;
        let total: f64 = row.try_get("total_ms")?;
        let check: String = row.try_get("check_name")?;
        let location: String = row.try_get("location")?;
        Ok::<RunPoint, StoreError>(RunPoint {
            check: check.into(),
            kind,
            location: location.into(),
            attempt: attempt(row.try_get("attempt")?)?,
            scheduled_at: row.try_get("scheduled_at")?,
            started_at: row.try_get("started_at")?,
            outcome: parse_enum("outcome", row.try_get("outcome")?)?,
            cancelled: row.try_get("cancelled")?,
            // As `RunResult::slo_latency_ms`: a journey's timed steps, else the whole run.
            latency_ms: if kind == CheckKind::Journey && timed > 0.0 {
                timed
            } else {
                total
            },
            maintenance: row.try_get::<Option<String>, _>("maintenance")?.is_some(),
        })
    }};
}

macro_rules! step_columns {
    () => {
        "s.name, s.action, s.latency_ms, s.timed, s.timing, s.outcome, s.error"
    };
}

macro_rules! step_from_row {
    ($row:expr) => {{
        let row = $row;
        Ok::<StepResult, StoreError>(StepResult {
            name: row.try_get("name")?,
            action: row.try_get("action")?,
            latency_ms: row.try_get("latency_ms")?,
            timed: row.try_get("timed")?,
            timing: parse_enum::<Timing>("timing", row.try_get("timing")?)?,
            outcome: parse_enum("outcome", row.try_get("outcome")?)?,
            error: row.try_get("error")?,
            navigation: None,
        })
    }};
}

macro_rules! artifact_columns {
    () => {
        "a.kind, a.path"
    };
}

macro_rules! artifact_from_row {
    ($row:expr) => {{
        let row = $row;
        Ok::<Artifact, StoreError>(Artifact {
            kind: row.try_get("kind")?,
            path: row.try_get("path")?,
        })
    }};
}

impl Store {
    /// Records a run with its steps and artifacts in one transaction. A second insert of the
    /// same `run_id` fails and changes nothing.
    pub async fn insert_run(&self, run: &impl RunRow) -> Result<()> {
        self.insert_runs(std::slice::from_ref(run)).await
    }

    /// Records several runs in one transaction (all or none), with multi-row inserts: a recorder
    /// that batches what finished in the last moment keeps up with far more runs per second than
    /// one transaction per run (see the `insert_rate` benchmark in `tests/it/daemon/store.rs`).
    ///
    /// On PostgreSQL the transaction commits with `synchronous_commit = off`: a database crash
    /// may lose the last fraction of a second of run history (never corrupting it), and a commit
    /// does not wait for a disk flush (~8 ms here). SQLite runs in WAL mode with
    /// `synchronous = NORMAL`, the same trade.
    ///
    /// `runs` are bare [`RunResult`]s (no mark) or [`StoredRun`]s with their maintenance mark.
    /// A run id already stored fails the whole transaction.
    pub async fn insert_runs<R: RunRow>(&self, runs: &[R]) -> Result<()> {
        self.insert_runs_with(runs, false).await
    }

    /// The daemon's writer: as [`Store::insert_runs`], but idempotent: a run already stored (a
    /// retry after a commit whose answer was lost) is left as it is and the others go in.
    pub async fn record_runs<R: RunRow>(&self, runs: &[R]) -> Result<()> {
        self.insert_runs_with(runs, true).await
    }

    async fn insert_runs_with<R: RunRow>(&self, runs: &[R], ignore_stored: bool) -> Result<()> {
        if runs.is_empty() {
            return Ok(());
        }
        let postgres = matches!(self.pool, super::Pool::Postgres(_));
        with_pool!(self, pool, Db => {
            let mut tx = pool.begin().await?;
            if postgres {
                sqlx::query("SET LOCAL synchronous_commit = off")
                    .execute(&mut *tx)
                    .await?;
            }
            // When the store received the run, by its own clock: the leader reads other
            // replicas' runs in that order (see `runs_stored_since`).
            let stored_now = super::cluster::now_sql(postgres);
            for chunk in super::statement_chunks(runs, BINDS_PER_STATEMENT / 20) {
                let mut q = QueryBuilder::<Db>::new(
                    "INSERT INTO runs (run_id, check_name, kind, attempt, scheduled_at, \
                     started_at, target, location, outcome, cancelled, timed_latency_ms, \
                     total_ms, session_wait_ms, session_create_ms, error, failed_step, page, \
                     maintenance, replica, trace_id, stored_us) ",
                );
                q.push_values(chunk, |mut b, row| {
                    let run = row.result();
                    b.push_bind(&run.run_id)
                        .push_bind(&run.check)
                        .push_bind(run.kind.as_str())
                        .push_bind(i64::from(run.attempt))
                        .push_bind(micros(run.scheduled_at))
                        .push_bind(micros(run.started_at))
                        .push_bind(&run.target)
                        .push_bind(&run.location)
                        .push_bind(run.outcome.as_str())
                        .push_bind(run.cancelled)
                        .push_bind(run.timed_latency_ms)
                        .push_bind(run.total_ms)
                        .push_bind(run.session_wait_ms)
                        .push_bind(run.session_create_ms)
                        .push_bind(&run.error)
                        .push_bind(&run.failed_step)
                        .push_bind(run.page.as_ref().map(Json))
                        .push_bind(row.maintenance())
                        .push_bind(self.replica.as_deref())
                        .push_bind(run.trace_id.as_deref())
                        .push_unseparated(", ")
                        .push_unseparated(stored_now);
                });
                if ignore_stored {
                    q.push(" ON CONFLICT (run_id) DO NOTHING");
                }
                q.build().execute(&mut *tx).await?;
            }

            let steps: Vec<(&RunResult, i64, &StepResult)> = runs
                .iter()
                .map(RunRow::result)
                .flat_map(|r| r.steps.iter().zip(0i64..).map(move |(s, i)| (r, i, s)))
                .collect();
            for chunk in super::statement_chunks(&steps, BINDS_PER_STATEMENT / 9) {
                let mut q = QueryBuilder::<Db>::new(
                    "INSERT INTO run_steps (run_id, idx, name, action, latency_ms, timed, timing, \
                     outcome, error) ",
                );
                q.push_values(chunk, |mut b, (run, idx, s)| {
                    b.push_bind(&run.run_id)
                        .push_bind(*idx)
                        .push_bind(&s.name)
                        .push_bind(&s.action)
                        .push_bind(s.latency_ms)
                        .push_bind(s.timed)
                        .push_bind(enum_str(&s.timing))
                        .push_bind(s.outcome.as_str())
                        .push_bind(&s.error);
                });
                if ignore_stored {
                    q.push(" ON CONFLICT (run_id, idx) DO NOTHING");
                }
                q.build().execute(&mut *tx).await?;
            }

            let artifacts: Vec<(&RunResult, i64, &Artifact)> = runs
                .iter()
                .map(RunRow::result)
                .flat_map(|r| r.artifacts.iter().zip(0i64..).map(move |(a, i)| (r, i, a)))
                .collect();
            for chunk in super::statement_chunks(&artifacts, BINDS_PER_STATEMENT / 4) {
                let mut q =
                    QueryBuilder::<Db>::new("INSERT INTO run_artifacts (run_id, idx, kind, path) ");
                q.push_values(chunk, |mut b, (run, idx, a)| {
                    b.push_bind(&run.run_id)
                        .push_bind(*idx)
                        .push_bind(&a.kind)
                        .push_bind(&a.path);
                });
                if ignore_stored {
                    q.push(" ON CONFLICT (run_id, idx) DO NOTHING");
                }
                q.build().execute(&mut *tx).await?;
            }
            tx.commit().await?;
        });
        Ok(())
    }

    /// The whole run, steps and artifacts in recorded order; `None` if unknown (or pruned).
    pub async fn run(&self, run_id: &str) -> Result<Option<RunResult>> {
        Ok(self.stored_run(run_id).await?.map(|s| s.run))
    }

    /// [`Store::run`] with the marks the recorder stored beside it (the maintenance window).
    pub async fn stored_run(&self, run_id: &str) -> Result<Option<StoredRun>> {
        with_pool!(self, pool, _Db => {
            let mut tx = pool.begin().await?;
            let Some(row) = sqlx::query(concat!(
                "SELECT ",
                full_columns!(),
                " FROM runs r WHERE r.run_id = $1"
            ))
            .bind(run_id)
            .fetch_optional(&mut *tx)
            .await?
            else {
                return Ok(None);
            };
            let mut stored = run_from_row!(&row)?;
            let run = &mut stored.run;
            for row in sqlx::query(concat!(
                "SELECT ",
                step_columns!(),
                " FROM run_steps s WHERE s.run_id = $1 ORDER BY s.idx"
            ))
            .bind(run_id)
            .fetch_all(&mut *tx)
            .await?
            .iter()
            {
                run.steps.push(step_from_row!(row)?);
            }
            for row in sqlx::query(concat!(
                "SELECT ",
                artifact_columns!(),
                " FROM run_artifacts a WHERE a.run_id = $1 ORDER BY a.idx"
            ))
            .bind(run_id)
            .fetch_all(&mut *tx)
            .await?
            .iter()
            {
                run.artifacts.push(artifact_from_row!(row)?);
            }
            tx.commit().await?;
            Ok(Some(stored))
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

    /// [`Store::runs_since`] restricted to the runs `replica` stored: what a cluster replica
    /// replays into its own metrics (the leader reads everyone else's through the feed, so no
    /// run is counted twice).
    pub async fn runs_since_of(
        &self,
        since: DateTime<Utc>,
        replica: &str,
    ) -> Result<Vec<RunSummary>> {
        let since = micros(since);
        with_pool!(self, pool, _Db => {
            sqlx::query(concat!(
                "SELECT ",
                summary_columns!(),
                " FROM runs r WHERE r.started_at >= $1 AND r.replica = $2 \
                 ORDER BY r.started_at, r.run_id"
            ))
            .bind(since)
            .bind(replica)
            .fetch_all(pool)
            .await?
            .iter()
            .map(|row| summary_from_row!(row))
            .collect()
        })
    }

    /// Whole runs (steps, artifacts, page) that started at or after `since`, oldest first (by
    /// `started_at`, then `run_id`), one page of at most `limit` runs per call: pass the last
    /// run of a page as `after` for the next one; an empty page is the end. Three queries per
    /// page, for replaying history into the metrics after a restart without one round trip per
    /// run or the whole window in memory at once.
    pub async fn full_runs_since(
        &self,
        since: DateTime<Utc>,
        after: Option<&RunResult>,
        limit: u32,
    ) -> Result<Vec<RunResult>> {
        // `$1` limit, `$2` since, `$3`/`$4` the cursor (started_at, run_id) of the previous page.
        macro_rules! page {
            (first) => {
                " FROM runs r WHERE r.started_at >= $2 ORDER BY r.started_at, r.run_id LIMIT $1"
            };
            (next) => {
                " FROM runs r WHERE r.started_at >= $2 \
                 AND (r.started_at > $3 OR (r.started_at = $3 AND r.run_id > $4)) \
                 ORDER BY r.started_at, r.run_id LIMIT $1"
            };
        }
        // The three queries of one page: its runs, then their steps and artifacts.
        macro_rules! queries {
            ($page:ident) => {
                (
                    concat!("SELECT ", full_columns!(), page!($page)),
                    concat!(
                        "SELECT s.run_id, ",
                        step_columns!(),
                        " FROM run_steps s WHERE s.run_id IN (SELECT r.run_id",
                        page!($page),
                        ") ORDER BY s.run_id, s.idx"
                    ),
                    concat!(
                        "SELECT a.run_id, ",
                        artifact_columns!(),
                        " FROM run_artifacts a WHERE a.run_id IN (SELECT r.run_id",
                        page!($page),
                        ") ORDER BY a.run_id, a.idx"
                    ),
                )
            };
        }
        let (runs_sql, steps_sql, artifacts_sql) = if after.is_some() {
            queries!(next)
        } else {
            queries!(first)
        };
        let since = micros(since);
        let cursor = after.map(|r| (micros(r.started_at), r.run_id.clone()));
        let limit = i64::from(limit);
        with_pool!(self, pool, _Db => {
            let mut tx = pool.begin().await?;
            let bind = |sql| {
                let q = sqlx::query(sql).bind(limit).bind(since);
                match &cursor {
                    Some((t, id)) => q.bind(*t).bind(id.clone()),
                    None => q,
                }
            };
            let mut runs = bind(runs_sql)
                .fetch_all(&mut *tx)
                .await?
                .iter()
                .map(|row| run_from_row!(row).map(|s| s.run))
                .collect::<Result<Vec<RunResult>>>()?;
            let index: std::collections::HashMap<String, usize> = runs
                .iter()
                .enumerate()
                .map(|(i, r)| (r.run_id.clone(), i))
                .collect();
            for row in bind(steps_sql).fetch_all(&mut *tx).await?.iter() {
                let run_id: String = row.try_get("run_id")?;
                if let Some(&i) = index.get(&run_id) {
                    runs[i].steps.push(step_from_row!(row)?);
                }
            }
            for row in bind(artifacts_sql).fetch_all(&mut *tx).await?.iter() {
                let run_id: String = row.try_get("run_id")?;
                if let Some(&i) = index.get(&run_id) {
                    runs[i].artifacts.push(artifact_from_row!(row)?);
                }
            }
            tx.commit().await?;
            Ok(runs)
        })
    }

    /// The few columns the release gate and the report judge, for every run that started at or
    /// after `since` (oldest first): one narrow query instead of whole summaries, so 30 days of
    /// ~390k runs read in well under a second (see `benches/gate.rs`).
    pub async fn run_points_since(&self, since: DateTime<Utc>) -> Result<Vec<RunPoint>> {
        let since = micros(since);
        with_pool!(self, pool, _Db => {
            let rows = sqlx::query(concat!(
                "SELECT ",
                point_columns!(),
                " FROM runs r WHERE r.started_at >= $1 ORDER BY r.started_at"
            ))
            .bind(since)
            .fetch_all(pool)
            .await?;
            rows.iter().map(|row| point_from_row!(row)).collect()
        })
    }

    /// What the release gate judges over a window (`since` ..= `until`), read the cheap way:
    /// per check, only the SLO latency of its passing runs (one number a row, through the
    /// `(check_name, started_at)` index), plus every other run in full — failures, probe errors
    /// and retries, which are few. A pass is never retried, so it is never superseded; the
    /// caller counts a retried slot once from `others`. Runs recorded inside a maintenance window
    /// are never among the passes: they come with `others`, marked, for the caller to count
    /// apart. 30 days of ~390k runs read in a fraction of what whole rows cost (see
    /// `benches/gate.rs`).
    pub async fn gate_runs(&self, since: DateTime<Utc>, until: DateTime<Utc>) -> Result<GateRuns> {
        let (since, until) = (micros(since), micros(until));
        // Each check's name and the kind of its latest run.
        let names: Vec<(String, String)> = with_pool!(self, pool, _Db => {
            sqlx::query_as(concat!(
                check_names!(),
                "SELECT n.check_name, (SELECT k.kind FROM runs k WHERE k.check_name = n.check_name \
                   ORDER BY k.started_at DESC LIMIT 1) AS kind \
                 FROM names n WHERE n.check_name IS NOT NULL ORDER BY n.check_name"
            ))
            .fetch_all(pool)
            .await?
        });
        let mut passes = Vec::with_capacity(names.len());
        for (name, kind) in names {
            let kind: CheckKind = parse_enum("kind", kind)?;
            let latencies: Vec<f64> = with_pool!(self, pool, _Db => {
                sqlx::query_scalar(
                    "SELECT CASE WHEN r.kind = 'journey' AND r.timed_latency_ms > 0 \
                       THEN r.timed_latency_ms ELSE r.total_ms END \
                     FROM runs r WHERE r.check_name = $1 AND r.started_at >= $2 \
                     AND r.started_at <= $3 AND r.outcome = 'pass' AND r.cancelled = false \
                     AND r.maintenance IS NULL",
                )
                .bind(&name)
                .bind(since)
                .bind(until)
                .fetch_all(pool)
                .await?
            });
            if !latencies.is_empty() {
                passes.push((name, kind, latencies));
            }
        }
        let others = with_pool!(self, pool, _Db => {
            let rows = sqlx::query(concat!(
                "SELECT ",
                point_columns!(),
                " FROM runs r WHERE r.started_at >= $1 AND r.started_at <= $2 \
                 AND (r.outcome <> 'pass' OR r.attempt > 1 OR r.maintenance IS NOT NULL) \
                 ORDER BY r.started_at"
            ))
            .bind(since)
            .bind(until)
            .fetch_all(pool)
            .await?;
            rows.iter().map(|row| point_from_row!(row)).collect::<Result<Vec<RunPoint>>>()?
        });
        Ok(GateRuns { passes, others })
    }

    /// The latest run (by `started_at`) of every check that has one, ordered by check name.
    ///
    /// Walks the distinct check names through the `(check_name, started_at)` index (a loose
    /// index scan), so the cost grows with the number of checks, not of runs.
    pub async fn last_run_per_check(&self) -> Result<Vec<RunSummary>> {
        with_pool!(self, pool, _Db => {
            sqlx::query(concat!(
                check_names!(),
                "SELECT ",
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

/// Bound values per multi-row statement, well below SQLite's (32,766) and PostgreSQL's (65,535)
/// limits; divided by the columns of each table to size its chunks.
const BINDS_PER_STATEMENT: usize = 10_000;

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
