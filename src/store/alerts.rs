//! The alert evaluator's persisted state: one JSON document per evaluator id, replaced whole
//! after each evaluation that changed it.

use chrono::{DateTime, Utc};

use super::{Result, Store, with_pool};

/// The store key of the evaluator's state.
pub const ALERT_STATE_ID: &str = "evaluator";

impl Store {
    /// Saves the state document for `id` (replacing the previous one).
    pub async fn save_alert_state(
        &self,
        id: &str,
        state: &serde_json::Value,
        at: DateTime<Utc>,
    ) -> Result<()> {
        let text = state.to_string();
        let at = at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
        with_pool!(self, pool, _Db => {
            let sql = if matches!(self.pool, super::Pool::Postgres(_)) {
                "INSERT INTO alert_state (id, state, updated_at) VALUES ($1, CAST($2 AS jsonb), CAST($3 AS timestamptz)) \
                 ON CONFLICT (id) DO UPDATE SET state = excluded.state, updated_at = excluded.updated_at"
            } else {
                "INSERT INTO alert_state (id, state, updated_at) VALUES ($1, $2, $3) \
                 ON CONFLICT (id) DO UPDATE SET state = excluded.state, updated_at = excluded.updated_at"
            };
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(id)
                .bind(&text)
                .bind(&at)
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    /// The saved state document for `id`, if any.
    pub async fn load_alert_state(&self, id: &str) -> Result<Option<serde_json::Value>> {
        let text: Option<String> = with_pool!(self, pool, _Db => {
            let sql = if matches!(self.pool, super::Pool::Postgres(_)) {
                "SELECT CAST(state AS text) FROM alert_state WHERE id = $1"
            } else {
                "SELECT state FROM alert_state WHERE id = $1"
            };
            sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
                .bind(id)
                .fetch_optional(pool)
                .await?
        });
        Ok(text.and_then(|t| serde_json::from_str(&t).ok()))
    }
}
