//! Silences (migration 0004): written by the API, read back whole at start and then, on every
//! replica, the rows changed since (`updated_us`), so a silence created or expired through one
//! replica reaches the others sharing the store. A silence is never deleted; expiring one moves
//! its end to the moment it was expired.

use chrono::{DateTime, Utc};
use sqlx::Row;

use super::{Result, Store, with_pool};

fn us(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

fn from_us(v: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(v).unwrap_or_default()
}

/// One silence as stored; `matchers` is the JSON object of written matchers
/// (`{"alertname": "x", "check": "=~align_.*"}`), parsed by the silences of the mute stage.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredSilence {
    pub id: String,
    pub matchers: String,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub created_by: String,
    pub comment: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Store {
    /// Inserts a silence, or replaces the one with the same id.
    pub async fn upsert_silence(&self, s: &StoredSilence) -> Result<()> {
        with_pool!(self, pool, _Db => {
            sqlx::query(
                "INSERT INTO silences (id, matchers, starts_us, ends_us, created_by, comment, \
                 created_us, updated_us) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
                 ON CONFLICT (id) DO UPDATE SET matchers = excluded.matchers, \
                 starts_us = excluded.starts_us, ends_us = excluded.ends_us, \
                 created_by = excluded.created_by, comment = excluded.comment, \
                 updated_us = excluded.updated_us",
            )
            .bind(&s.id)
            .bind(&s.matchers)
            .bind(us(s.starts_at))
            .bind(us(s.ends_at))
            .bind(&s.created_by)
            .bind(&s.comment)
            .bind(us(s.created_at))
            .bind(us(s.updated_at))
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    /// Every silence, oldest first.
    pub async fn silences(&self) -> Result<Vec<StoredSilence>> {
        self.silences_updated_since(None).await
    }

    /// The silences last written at or after `since` (every one for `None`), oldest first.
    /// `updated_at` is the writer's clock: callers that poll re-read an overlap (the mute
    /// stage's silences do).
    pub async fn silences_updated_since(
        &self,
        since: Option<DateTime<Utc>>,
    ) -> Result<Vec<StoredSilence>> {
        let mut out = Vec::new();
        with_pool!(self, pool, _Db => {
            let rows = sqlx::query(
                "SELECT id, matchers, starts_us, ends_us, created_by, comment, created_us, \
                 updated_us FROM silences WHERE updated_us >= $1 ORDER BY created_us, id",
            )
            .bind(since.map_or(i64::MIN, us))
            .fetch_all(pool)
            .await?;
            for r in rows {
                out.push(StoredSilence {
                    id: r.try_get("id")?,
                    matchers: r.try_get("matchers")?,
                    starts_at: from_us(r.try_get("starts_us")?),
                    ends_at: from_us(r.try_get("ends_us")?),
                    created_by: r.try_get("created_by")?,
                    comment: r.try_get("comment")?,
                    created_at: from_us(r.try_get("created_us")?),
                    updated_at: from_us(r.try_get("updated_us")?),
                });
            }
        });
        Ok(out)
    }
}
