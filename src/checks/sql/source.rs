//! SQL metric sources: a named query against the monitored database producing gauge samples,
//! labelled by columns. A query that fails yields no samples: the caller marks the metric
//! stale (no data), never zero.

use std::time::Duration;

use sqlx::{Column, Row};
use tokio::time::Instant;

use super::SqlMetric;
use crate::config::Secret;
use crate::outcome::Outcome;
use crate::probes::sql::scrub;
use crate::run::{RunResult, StepResult, Timing};

/// One gauge value with its labels.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub labels: Vec<(String, String)>,
    pub value: f64,
}

#[derive(Debug, thiserror::Error)]
pub enum SqlError {
    #[error("query failed: {0}")]
    Query(String),
    #[error("query did not finish within {0} ms")]
    Timeout(u128),
    #[error("column `{0}` is missing or not numeric")]
    Column(String),
}

/// A lazily connected pool to the monitored database (PostgreSQL or SQLite).
pub struct SqlSource {
    pool: sqlx::AnyPool,
    dialect: &'static str,
}

impl SqlSource {
    pub fn new(url: &Secret) -> Result<Self, SqlError> {
        sqlx::any::install_default_drivers();
        let pool = sqlx::any::AnyPoolOptions::new()
            .max_connections(2)
            .acquire_timeout(Duration::from_secs(5))
            .connect_lazy(url.expose())
            .map_err(|e| SqlError::Query(scrub(&e.to_string())))?;
        let dialect = if url.expose().starts_with("sqlite:") {
            "sqlite"
        } else {
            "postgres"
        };
        Ok(Self { pool, dialect })
    }

    /// Runs the metric's query; the value column defaults to the first numeric non-label one.
    pub async fn query(&self, m: &SqlMetric, timeout: Duration) -> Result<Vec<Sample>, SqlError> {
        // The query text comes from the reviewed config file; it takes no outside input.
        let sql = m.queries.get(self.dialect).ok_or_else(|| {
            SqlError::Query(format!("no `{}` query for this database", self.dialect))
        })?;
        let q = sqlx::query(sqlx::AssertSqlSafe(sql.clone()));
        let rows = tokio::time::timeout(timeout, q.fetch_all(&self.pool))
            .await
            .map_err(|_| SqlError::Timeout(timeout.as_millis()))?
            .map_err(|e| SqlError::Query(scrub(&e.to_string())))?;
        let mut out = Vec::with_capacity(rows.len());
        for row in &rows {
            let value_col = match &m.value_column {
                Some(c) => c.clone(),
                None => row
                    .columns()
                    .iter()
                    .map(|c| c.name().to_string())
                    .find(|n| !m.label_columns.contains(n))
                    .ok_or_else(|| SqlError::Column("value".into()))?,
            };
            let value =
                number(row, &value_col).ok_or_else(|| SqlError::Column(value_col.clone()))?;
            let labels = m
                .label_columns
                .iter()
                .map(|c| (c.clone(), text(row, c).unwrap_or_default()))
                .collect();
            out.push(Sample { labels, value });
        }
        Ok(out)
    }

    /// One attempt as a run: the query's latency and outcome (a failed source is a probe
    /// `error`: the metric has no data, which is not the same as a bad value).
    pub async fn run(
        &self,
        m: &SqlMetric,
        run: &mut RunResult,
        timeout: Duration,
    ) -> Option<Vec<Sample>> {
        let t = Instant::now();
        let res = self.query(m, timeout).await;
        let ms = t.elapsed().as_secs_f64() * 1000.0;
        let (outcome, error, samples) = match res {
            Ok(s) => (Outcome::Pass, None, Some(s)),
            Err(e) => (Outcome::Error, Some(e.to_string()), None),
        };
        run.steps.push(StepResult {
            name: format!("query {}", m.metric),
            action: "sql".into(),
            latency_ms: ms,
            timed: true,
            timing: Timing::Outside,
            navigation: None,
            outcome,
            error: error.clone(),
        });
        run.outcome = outcome;
        run.error = error;
        if outcome != Outcome::Pass {
            run.failed_step = Some(format!("query {}", m.metric));
        }
        run.total_ms = ms;
        run.timed_latency_ms = ms;
        samples
    }
}

fn number(row: &sqlx::any::AnyRow, col: &str) -> Option<f64> {
    row.try_get::<f64, _>(col)
        .ok()
        .or_else(|| row.try_get::<i64, _>(col).ok().map(|v| v as f64))
        .or_else(|| row.try_get::<i32, _>(col).ok().map(f64::from))
        .or_else(|| {
            row.try_get::<String, _>(col)
                .ok()
                .and_then(|s| s.parse().ok())
        })
}

fn text(row: &sqlx::any::AnyRow, col: &str) -> Option<String> {
    row.try_get::<String, _>(col)
        .ok()
        .or_else(|| row.try_get::<i64, _>(col).ok().map(|v| v.to_string()))
}
