//! The alert evaluator's persisted state: one JSON document per evaluator id, replaced whole
//! after each evaluation that changed it.

use chrono::{DateTime, Utc};

use super::cluster::check_fence;
use super::{Result, Store, with_pool};

/// The store key of the evaluator's state.
pub const ALERT_STATE_ID: &str = "evaluator";

/// The store key of what the leader's API shows beside the state (recent transitions, the
/// evaluation count, SLO figures), so any replica can answer with the leader's view.
pub const ALERT_VIEW_ID: &str = "evaluator.view";

impl Store {
    /// Saves the state document for `id` (replacing the previous one). Through a leader's
    /// handle, refused once it no longer holds the lease.
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
                "INSERT INTO alert_state (id, state, updated_at, epoch) VALUES ($1, CAST($2 AS jsonb), CAST($3 AS timestamptz), $4) \
                 ON CONFLICT (id) DO UPDATE SET state = excluded.state, updated_at = excluded.updated_at, epoch = excluded.epoch"
            } else {
                "INSERT INTO alert_state (id, state, updated_at, epoch) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (id) DO UPDATE SET state = excluded.state, updated_at = excluded.updated_at, epoch = excluded.epoch"
            };
            let mut tx = pool.begin().await?;
            check_fence!(self, &mut *tx);
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(id)
                .bind(&text)
                .bind(&at)
                .bind(self.write_epoch())
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
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
