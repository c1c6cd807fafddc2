//! A SQL metric: a query against the monitored database whose rows set a catalogued gauge,
//! labelled by columns. A failed query has no data: the gauge goes stale, never zero.

mod source;

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

pub use source::{Sample, SqlError, SqlSource};

use super::{Check, Context, Schedule, Validator};
use crate::outcome::Outcome;
use crate::run::{CheckKind, RunResult};

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawSqlMetric {
    pub name: String,
    /// The catalogued gauge the query produces.
    pub metric: String,
    /// One query, or one per dialect (`postgres:`, `sqlite:`) so a config works on both.
    pub query: RawQuery,
    #[serde(default)]
    pub value_column: Option<String>,
    #[serde(default)]
    pub label_columns: Vec<String>,
    #[serde(default)]
    #[schemars(with = "Option<crate::config::schema::Duration>")]
    pub interval: Option<String>,
    #[serde(default)]
    #[schemars(with = "Option<crate::config::schema::Duration>")]
    pub timeout: Option<String>,
}

#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(untagged)]
pub enum RawQuery {
    One(String),
    PerDialect {
        #[serde(default)]
        postgres: Option<String>,
        #[serde(default)]
        sqlite: Option<String>,
    },
}

#[derive(Debug, Clone)]
pub struct SqlMetric {
    pub name: String,
    pub metric: String,
    /// The query for each dialect the config provides (`postgres`, `sqlite`).
    pub queries: BTreeMap<&'static str, String>,
    pub value_column: Option<String>,
    pub label_columns: Vec<String>,
    pub schedule: Schedule,
}

impl Check for SqlMetric {
    const KIND: CheckKind = CheckKind::Sql;
    const KEY: &'static str = "sql";
    type Raw = RawSqlMetric;

    check_accessors!();

    fn validate(s: &RawSqlMetric, p: &str, schedule: Schedule, v: &mut Validator<'_>) -> Self {
        let mut queries = BTreeMap::new();
        match &s.query {
            RawQuery::One(q) => {
                queries.insert("postgres", q.clone());
                queries.insert("sqlite", q.clone());
            }
            RawQuery::PerDialect { postgres, sqlite } => {
                if let Some(q) = postgres {
                    queries.insert("postgres", q.clone());
                }
                if let Some(q) = sqlite {
                    queries.insert("sqlite", q.clone());
                }
            }
        }
        if queries.is_empty() || queries.values().any(|q| q.trim().is_empty()) {
            v.error(&format!("{p}.query"), "must not be empty");
        }
        v.catalogued(&format!("{p}.metric"), &s.metric);
        SqlMetric {
            name: s.name.clone(),
            metric: s.metric.clone(),
            queries,
            value_column: s.value_column.clone(),
            label_columns: s.label_columns.clone(),
            schedule,
        }
    }

    /// Sets the metric's gauge from the rows; a failed source marks it stale.
    async fn run(&self, cx: &Context<'_>, timeout: Duration) -> RunResult {
        let mut r = cx.begin(&self.name, Self::KIND);
        let Some(src) = cx.sql else {
            r.outcome = Outcome::Error;
            r.error = Some("no monitored database configured (`database.url`)".into());
            return r;
        };
        let samples = src.run(self, &mut r, timeout).await;
        let Some(reg) = cx.registry else {
            return r;
        };
        match samples {
            Some(samples) => {
                let now = cx.clock.now();
                for s in samples {
                    let labels: Vec<(&str, &str)> = s
                        .labels
                        .iter()
                        .map(|(k, v)| (k.as_str(), v.as_str()))
                        .collect();
                    if let Err(e) = reg.set_gauge(&self.metric, &labels, s.value, now) {
                        tracing::warn!(check = %self.name, error = %e, "gauge not recorded");
                    }
                }
            }
            // A failed source has no data: stale, never zero.
            None => {
                let _ = reg.mark_all_stale(&self.metric);
            }
        }
        r
    }
}
