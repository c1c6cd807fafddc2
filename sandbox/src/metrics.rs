//! Business metrics (the ones the platform's dashboards show), each one SQL query over real rows.
//!
//! Every query excludes the `synthetic` tenant, so synthetic monitoring never
//! moves the numbers it watches. Each returns one row with one nullable
//! double-precision column `value` (NULL when there is nothing to measure).
//! Rates and percentages are in percent (0-100). The PostgreSQL text is what
//! `sandbox/README.md` documents for synmon's SQL probes; the SQLite text is the
//! same definition in SQLite's dialect.

use serde_json::{Map, Value, json};

use crate::db::{Db, now, rfc3339};
use crate::error::ApiResult;

pub struct Metric {
    pub name: &'static str,
    pub unit: &'static str,
    pub description: &'static str,
    pub postgres: &'static str,
    pub sqlite: &'static str,
}

/// SQLite expression for "now minus N", in the fixed-width text format the sandbox stores.
macro_rules! sqlite_since {
    ($modifier:literal) => {
        concat!(
            "strftime('%Y-%m-%dT%H:%M:%f000Z', 'now', '",
            $modifier,
            "')"
        )
    };
}

pub const METRICS: &[Metric] = &[
    Metric {
        name: "feed_approval_rate",
        unit: "percent",
        description: "Share of Merchant Center reviews in the last 30 days that approved the product.",
        postgres: "SELECT (100.0 * count(*) FILTER (WHERE a.status = 'approved') / NULLIF(count(*), 0))::float8 AS value \
                   FROM merchant_approvals a JOIN tenants t ON t.id = a.tenant_id \
                   WHERE t.slug <> 'synthetic' AND a.reviewed_at >= now() - interval '30 days'",
        sqlite: concat!(
            "SELECT 100.0 * sum(CASE WHEN a.status = 'approved' THEN 1 ELSE 0 END) / NULLIF(count(*), 0) AS value ",
            "FROM merchant_approvals a JOIN tenants t ON t.id = a.tenant_id ",
            "WHERE t.slug <> 'synthetic' AND a.reviewed_at >= ",
            sqlite_since!("-30 days")
        ),
    },
    Metric {
        name: "category_mapping_coverage_pct",
        unit: "percent",
        description: "Share of store categories mapped to a Google taxonomy category.",
        postgres: "SELECT (100.0 * count(m.category_id) / NULLIF(count(*), 0))::float8 AS value \
                   FROM categories c JOIN tenants t ON t.id = c.tenant_id \
                   LEFT JOIN category_mappings m ON m.category_id = c.id \
                   WHERE t.slug <> 'synthetic'",
        sqlite: "SELECT 100.0 * count(m.category_id) / NULLIF(count(*), 0) AS value \
                 FROM categories c JOIN tenants t ON t.id = c.tenant_id \
                 LEFT JOIN category_mappings m ON m.category_id = c.id \
                 WHERE t.slug <> 'synthetic'",
    },
    Metric {
        name: "qa_footer_engagement_rate",
        unit: "percent",
        description: "Share of users active in the last 30 days (logged in) who used the Quick Actions footer in that window.",
        postgres: "SELECT (100.0 * count(*) FILTER (WHERE EXISTS (SELECT 1 FROM qa_events q \
                     WHERE q.user_id = u.id AND q.created_at >= now() - interval '30 days')) \
                     / NULLIF(count(*), 0))::float8 AS value \
                   FROM users u JOIN tenants t ON t.id = u.tenant_id \
                   WHERE t.slug <> 'synthetic' AND u.last_login_at >= now() - interval '30 days'",
        sqlite: concat!(
            "SELECT 100.0 * sum(CASE WHEN EXISTS (SELECT 1 FROM qa_events q ",
            "WHERE q.user_id = u.id AND q.created_at >= ",
            sqlite_since!("-30 days"),
            ") THEN 1 ELSE 0 END) ",
            "/ NULLIF(count(*), 0) AS value ",
            "FROM users u JOIN tenants t ON t.id = u.tenant_id ",
            "WHERE t.slug <> 'synthetic' AND u.last_login_at >= ",
            sqlite_since!("-30 days")
        ),
    },
    Metric {
        name: "time_to_alignment_median_ms",
        unit: "milliseconds",
        description: "Median time from a category's creation to its first alignment (audit_log action 'align').",
        postgres: "SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY x.ms)::float8 AS value FROM ( \
                     SELECT EXTRACT(EPOCH FROM (min(a.timestamp) - c.created_at)) * 1000 AS ms \
                     FROM categories c JOIN tenants t ON t.id = c.tenant_id \
                     JOIN audit_log a ON a.entity = 'category' AND a.action = 'align' AND a.entity_id = c.id::text \
                     WHERE t.slug <> 'synthetic' GROUP BY c.id, c.created_at) x",
        sqlite: "WITH x AS ( \
                   SELECT (julianday(min(a.timestamp)) - julianday(c.created_at)) * 86400000.0 AS ms \
                   FROM categories c JOIN tenants t ON t.id = c.tenant_id \
                   JOIN audit_log a ON a.entity = 'category' AND a.action = 'align' AND a.entity_id = c.id \
                   WHERE t.slug <> 'synthetic' GROUP BY c.id), \
                 o AS (SELECT ms, row_number() OVER (ORDER BY ms) AS rn, count(*) OVER () AS n FROM x) \
                 SELECT avg(ms) AS value FROM o WHERE rn IN ((n + 1) / 2, (n + 2) / 2)",
    },
    Metric {
        name: "taxonomy_version_active_age_days",
        unit: "days",
        description: "Age of the active Google taxonomy version since its activation.",
        postgres: "SELECT (EXTRACT(EPOCH FROM (now() - activated_at)) / 86400.0)::float8 AS value \
                   FROM taxonomy_versions WHERE active ORDER BY activated_at DESC LIMIT 1",
        sqlite: "SELECT julianday('now') - julianday(activated_at) AS value \
                 FROM taxonomy_versions WHERE active = 1 ORDER BY activated_at DESC LIMIT 1",
    },
    Metric {
        name: "feed_push_success_rate",
        unit: "percent",
        description: "Share of feed push jobs created in the last 24 hours and finished that succeeded (success / (success + failed)).",
        postgres: "SELECT (100.0 * count(*) FILTER (WHERE j.job_status = 'success') \
                     / NULLIF(count(*) FILTER (WHERE j.job_status IN ('success', 'failed')), 0))::float8 AS value \
                   FROM feed_push_jobs j JOIN tenants t ON t.id = j.tenant_id \
                   WHERE t.slug <> 'synthetic' AND j.created_at >= now() - interval '24 hours'",
        sqlite: concat!(
            "SELECT 100.0 * sum(CASE WHEN j.job_status = 'success' THEN 1 ELSE 0 END) ",
            "/ NULLIF(sum(CASE WHEN j.job_status IN ('success', 'failed') THEN 1 ELSE 0 END), 0) AS value ",
            "FROM feed_push_jobs j JOIN tenants t ON t.id = j.tenant_id ",
            "WHERE t.slug <> 'synthetic' AND j.created_at >= ",
            sqlite_since!("-24 hours")
        ),
    },
    Metric {
        name: "feed_queue_depth",
        unit: "jobs",
        description: "Feed push jobs waiting or running (queued + processing).",
        postgres: "SELECT count(*)::float8 AS value \
                   FROM feed_push_jobs j JOIN tenants t ON t.id = j.tenant_id \
                   WHERE t.slug <> 'synthetic' AND j.job_status IN ('queued', 'processing')",
        sqlite: "SELECT count(*) * 1.0 AS value \
                 FROM feed_push_jobs j JOIN tenants t ON t.id = j.tenant_id \
                 WHERE t.slug <> 'synthetic' AND j.job_status IN ('queued', 'processing')",
    },
    Metric {
        name: "oauth_error_rate",
        unit: "percent",
        description: "Share of Google OAuth connection attempts in the last 30 days that ended in an error.",
        postgres: "SELECT (100.0 * count(*) FILTER (WHERE o.outcome = 'error') / NULLIF(count(*), 0))::float8 AS value \
                   FROM oauth_attempts o JOIN tenants t ON t.id = o.tenant_id \
                   WHERE t.slug <> 'synthetic' AND o.created_at >= now() - interval '30 days'",
        sqlite: concat!(
            "SELECT 100.0 * sum(CASE WHEN o.outcome = 'error' THEN 1 ELSE 0 END) / NULLIF(count(*), 0) AS value ",
            "FROM oauth_attempts o JOIN tenants t ON t.id = o.tenant_id ",
            "WHERE t.slug <> 'synthetic' AND o.created_at >= ",
            sqlite_since!("-30 days")
        ),
    },
    Metric {
        name: "pilot_satisfaction_pct",
        unit: "percent",
        description: "Share of outreach feedback scores of 4 or 5 in the last 30 days.",
        postgres: "SELECT (100.0 * count(*) FILTER (WHERE f.score >= 4) / NULLIF(count(*), 0))::float8 AS value \
                   FROM outreach_feedback f JOIN tenants t ON t.id = f.tenant_id \
                   WHERE t.slug <> 'synthetic' AND f.created_at >= now() - interval '30 days'",
        sqlite: concat!(
            "SELECT 100.0 * sum(CASE WHEN f.score >= 4 THEN 1 ELSE 0 END) / NULLIF(count(*), 0) AS value ",
            "FROM outreach_feedback f JOIN tenants t ON t.id = f.tenant_id ",
            "WHERE t.slug <> 'synthetic' AND f.created_at >= ",
            sqlite_since!("-30 days")
        ),
    },
];

/// Runs one metric's query.
pub async fn value(db: &Db, m: &Metric) -> ApiResult<Option<f64>> {
    Ok(match db {
        Db::Sqlite(p) => {
            sqlx::query_scalar::<_, Option<f64>>(m.sqlite)
                .fetch_one(p)
                .await?
        }
        Db::Pg(p) => {
            sqlx::query_scalar::<_, Option<f64>>(m.postgres)
                .fetch_one(p)
                .await?
        }
    })
}

/// All metrics as one JSON object (`null` where there is nothing to measure).
pub async fn compute(db: &Db) -> ApiResult<Value> {
    let mut out = Map::new();
    for m in METRICS {
        let v = value(db, m).await?;
        // Round to 4 decimals so the JSON stays readable; NaN never occurs (NULLIF).
        let v = v.map(|x| (x * 10_000.0).round() / 10_000.0);
        out.insert(m.name.into(), json!(v));
    }
    let units: Map<String, Value> = METRICS
        .iter()
        .map(|m| (m.name.to_string(), json!(m.unit)))
        .collect();
    out.insert("units".into(), Value::Object(units));
    out.insert("excluded_tenants".into(), json!(["synthetic"]));
    out.insert("computed_at".into(), json!(rfc3339(now())));
    Ok(Value::Object(out))
}
