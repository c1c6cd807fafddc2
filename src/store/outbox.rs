//! The notification outbox, the notification log and per-group receiver state.
//!
//! The outbox is what makes delivery durable: the pipeline writes a notification (and the log
//! entry that records it, in the same transaction) before any receiver is called; a row leaves
//! `pending` only when its receiver accepted it (`sent`) or refused it for good (`failed`). A
//! crash between a send and its `sent` mark means one resend, never a loss.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use sqlx::Row;

use super::cluster::check_fence;
use super::{Result, Store, StoreError, with_pool};

fn us(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

fn from_us(v: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(v).unwrap_or_default()
}

/// A notification to write to the outbox.
#[derive(Debug, Clone)]
pub struct NewNotification {
    pub receiver: String,
    pub group_key: String,
    /// The `notify::Notification` as JSON.
    pub payload: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OutboxStatus {
    Pending,
    Sent,
    Failed,
}

impl OutboxStatus {
    fn parse(s: &str) -> Result<Self> {
        match s {
            "pending" => Ok(OutboxStatus::Pending),
            "sent" => Ok(OutboxStatus::Sent),
            "failed" => Ok(OutboxStatus::Failed),
            other => Err(StoreError::Corrupt {
                column: "outbox.status",
                value: other.to_string(),
            }),
        }
    }
}

/// One outbox row.
#[derive(Debug, Clone, serde::Serialize)]
pub struct OutboxRow {
    pub id: i64,
    pub receiver: String,
    pub group_key: String,
    pub status: OutboxStatus,
    #[serde(skip)]
    pub payload: String,
    pub created_at: DateTime<Utc>,
    pub attempts: u32,
    pub next_attempt_at: DateTime<Utc>,
    pub lease_until: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    pub response: Option<String>,
    pub done_at: Option<DateTime<Utc>>,
}

/// What a receiver was last told about an alert group (Alertmanager's nflog entry).
#[derive(Debug, Clone, PartialEq)]
pub struct LogEntry {
    pub receiver: String,
    pub group_key: String,
    /// The key of the route the group belongs to (`notify::Route::key`), to rebuild the group
    /// after a restart.
    pub route_id: String,
    pub group_labels: BTreeMap<String, String>,
    /// Fingerprints of the alerts notified as firing / resolved.
    pub firing: Vec<String>,
    pub resolved: Vec<String>,
    /// The notified alerts (`notify::AlertInfo` JSON array), so a group that was firing when the
    /// daemon stopped can still be resolved after it starts again.
    pub alerts: String,
    pub sent_at: DateTime<Utc>,
}

const ROW_COLUMNS: &str = "id, receiver, group_key, status, payload, created_us, attempts, \
     next_attempt_us, lease_until_us, last_error, response, done_us";

fn row_of<R: Row>(r: &R) -> Result<OutboxRow>
where
    for<'a> i64: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    for<'a> i32: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    for<'a> String: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    for<'a> &'a str: sqlx::ColumnIndex<R>,
{
    let status: String = r.try_get("status")?;
    let lease: Option<i64> = r.try_get("lease_until_us")?;
    let done: Option<i64> = r.try_get("done_us")?;
    Ok(OutboxRow {
        id: r.try_get("id")?,
        receiver: r.try_get("receiver")?,
        group_key: r.try_get("group_key")?,
        status: OutboxStatus::parse(&status)?,
        payload: r.try_get("payload")?,
        created_at: from_us(r.try_get("created_us")?),
        attempts: r.try_get::<i32, _>("attempts")?.max(0) as u32,
        next_attempt_at: from_us(r.try_get("next_attempt_us")?),
        lease_until: lease.map(from_us),
        last_error: r.try_get("last_error")?,
        response: r.try_get("response")?,
        done_at: done.map(from_us),
    })
}

impl Store {
    /// Writes notifications and the log entries that record them, in one transaction: either
    /// both or neither, so the log never claims a notification the outbox does not hold.
    /// `lease_until` keeps the daemon's workers off the rows until then (`synmon notify test`
    /// delivers its own rows; if it dies, the daemon delivers them after the lease).
    pub async fn enqueue_notifications(
        &self,
        items: &[NewNotification],
        log: &[LogEntry],
        now: DateTime<Utc>,
        lease_until: Option<DateTime<Utc>>,
    ) -> Result<Vec<i64>> {
        let mut ids = Vec::with_capacity(items.len());
        with_pool!(self, pool, _Db => {
            let mut tx = pool.begin().await?;
            check_fence!(self, &mut *tx);
            let epoch = self.write_epoch();
            for n in items {
                let id: i64 = sqlx::query_scalar(
                    "INSERT INTO outbox (receiver, group_key, status, payload, created_us, \
                     attempts, next_attempt_us, lease_until_us, epoch) \
                     VALUES ($1, $2, 'pending', $3, $4, 0, $4, $5, $6) RETURNING id",
                )
                .bind(&n.receiver)
                .bind(&n.group_key)
                .bind(&n.payload)
                .bind(us(now))
                .bind(lease_until.map(us))
                .bind(epoch)
                .fetch_one(&mut *tx)
                .await?;
                ids.push(id);
            }
            for e in log {
                sqlx::query(
                    "INSERT INTO notification_log (receiver, group_key, route_id, group_labels, \
                     firing, resolved, alerts, sent_us, epoch) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
                     ON CONFLICT (receiver, group_key) DO UPDATE SET route_id = excluded.route_id, \
                     group_labels = excluded.group_labels, firing = excluded.firing, \
                     resolved = excluded.resolved, alerts = excluded.alerts, \
                     sent_us = excluded.sent_us, epoch = excluded.epoch",
                )
                .bind(&e.receiver)
                .bind(&e.group_key)
                .bind(&e.route_id)
                .bind(serde_json::to_string(&e.group_labels).unwrap_or_default())
                .bind(serde_json::to_string(&e.firing).unwrap_or_default())
                .bind(serde_json::to_string(&e.resolved).unwrap_or_default())
                .bind(&e.alerts)
                .bind(us(e.sent_at))
                .bind(epoch)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
        });
        Ok(ids)
    }

    /// Every notification log entry.
    pub async fn notification_log(&self) -> Result<Vec<LogEntry>> {
        let rows = with_pool!(self, pool, _Db => {
            let rows = sqlx::query(
                "SELECT receiver, group_key, route_id, group_labels, firing, resolved, alerts, \
                 sent_us FROM notification_log ORDER BY receiver, group_key",
            )
            .fetch_all(pool)
            .await?;
            let mut out = Vec::with_capacity(rows.len());
            for r in &rows {
                let json = |c: &str| -> Result<String> { Ok(r.try_get::<String, _>(c)?) };
                out.push(LogEntry {
                    receiver: r.try_get("receiver")?,
                    group_key: r.try_get("group_key")?,
                    route_id: r.try_get("route_id")?,
                    group_labels: serde_json::from_str(&json("group_labels")?).unwrap_or_default(),
                    firing: serde_json::from_str(&json("firing")?).unwrap_or_default(),
                    resolved: serde_json::from_str(&json("resolved")?).unwrap_or_default(),
                    alerts: json("alerts")?,
                    sent_at: from_us(r.try_get("sent_us")?),
                });
            }
            out
        });
        Ok(rows)
    }

    /// Claims the pending rows of `receiver` that nobody else holds, oldest first, for
    /// `lease`: no other worker picks them until the lease ends, so no row is sent by two.
    /// A row is free when it has no lease, its lease has ended, this handle's replica holds it
    /// (its own earlier pass), or a leader of an older epoch claimed it (that leader's writes
    /// are fenced off: it can no longer send). Rows `synmon notify test` leases stay its own.
    /// PostgreSQL skips rows another transaction is claiming (`FOR UPDATE SKIP LOCKED`).
    pub async fn outbox_claim(
        &self,
        receiver: &str,
        now: DateTime<Utc>,
        limit: u32,
        lease: std::time::Duration,
    ) -> Result<Vec<OutboxRow>> {
        let claimer = self.fence_holder().unwrap_or("local").to_string();
        let epoch = self.write_epoch();
        let until = us(now).saturating_add(crate::config::duration::micros_i64(lease));
        let skip = if self.is_postgres() {
            " FOR UPDATE SKIP LOCKED"
        } else {
            ""
        };
        let sql = format!(
            "UPDATE outbox SET claimed_by = $2, lease_until_us = $4, epoch = $6 WHERE id IN \
             (SELECT id FROM outbox WHERE receiver = $1 AND status = 'pending' AND \
             (lease_until_us IS NULL OR lease_until_us < $3 OR claimed_by = $2 OR epoch < $6) \
             ORDER BY id LIMIT $5{skip}) RETURNING {ROW_COLUMNS}"
        );
        let mut rows = with_pool!(self, pool, _Db => {
            let mut tx = pool.begin().await?;
            check_fence!(self, &mut *tx);
            let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(receiver)
                .bind(&claimer)
                .bind(us(now))
                .bind(until)
                .bind(i64::from(limit))
                .bind(epoch)
                .fetch_all(&mut *tx)
                .await?;
            tx.commit().await?;
            rows.iter().map(row_of).collect::<Result<Vec<_>>>()?
        });
        // RETURNING follows no ORDER BY.
        rows.sort_by_key(|r| r.id);
        Ok(rows)
    }

    /// One outbox row by id.
    pub async fn outbox_row(&self, id: i64) -> Result<Option<OutboxRow>> {
        with_pool!(self, pool, _Db => {
            let sql = format!("SELECT {ROW_COLUMNS} FROM outbox WHERE id = $1");
            let row = sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(id)
                .fetch_optional(pool)
                .await?;
            row.as_ref().map(row_of).transpose()
        })
    }

    /// The latest rows, newest first (the API's view of deliveries).
    pub async fn outbox_recent(&self, limit: u32) -> Result<Vec<OutboxRow>> {
        with_pool!(self, pool, _Db => {
            let sql = format!("SELECT {ROW_COLUMNS} FROM outbox ORDER BY id DESC LIMIT $1");
            let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(i64::from(limit))
                .fetch_all(pool)
                .await?;
            rows.iter().map(row_of).collect()
        })
    }

    /// Marks a row delivered and, in the same transaction, stores the receiver's new state for
    /// the group (so a resolve can update the message a crash-resend would otherwise duplicate).
    pub async fn outbox_sent(
        &self,
        id: i64,
        attempts: u32,
        now: DateTime<Utc>,
        response: &str,
        group_state: Option<(&str, &str, &serde_json::Value)>,
    ) -> Result<()> {
        const SENT: &str = "UPDATE outbox SET status = 'sent', attempts = $2, response = $3, \
             done_us = $4, last_error = NULL, lease_until_us = NULL, claimed_by = NULL \
             WHERE id = $1";
        with_pool!(self, pool, _Db => {
            let mut tx = pool.begin().await?;
            check_fence!(self, &mut *tx);
            let Some((receiver, group_key, state)) = group_state else {
                sqlx::query(SENT)
                    .bind(id)
                    .bind(attempts as i32)
                    .bind(response)
                    .bind(us(now))
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                return Ok(());
            };
            sqlx::query(SENT)
                .bind(id)
                .bind(attempts as i32)
                .bind(response)
                .bind(us(now))
                .execute(&mut *tx)
                .await?;
            {
                sqlx::query(
                    "INSERT INTO receiver_state (receiver, group_key, state, updated_us) \
                     VALUES ($1, $2, $3, $4) ON CONFLICT (receiver, group_key) DO UPDATE \
                     SET state = excluded.state, updated_us = excluded.updated_us",
                )
                .bind(receiver)
                .bind(group_key)
                .bind(state.to_string())
                .bind(us(now))
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
        });
        Ok(())
    }

    /// Records that attempt number `attempts` is starting, before the receiver is called, so a
    /// crash during the call leaves a trace: the next attempt is numbered after it. `false`:
    /// the row is no longer this handle's to send (delivered, or claimed by another replica
    /// meanwhile); the caller must not send it.
    pub async fn outbox_attempt_started(&self, id: i64, attempts: u32) -> Result<bool> {
        let claimer = self.fence_holder().unwrap_or("local").to_string();
        let n = with_pool!(self, pool, _Db => {
            let mut tx = pool.begin().await?;
            check_fence!(self, &mut *tx);
            let n = sqlx::query(
                "UPDATE outbox SET attempts = $2 WHERE id = $1 AND status = 'pending' \
                 AND (claimed_by IS NULL OR claimed_by = $3)",
            )
            .bind(id)
            .bind(attempts as i32)
            .bind(&claimer)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            tx.commit().await?;
            n
        });
        Ok(n == 1)
    }

    /// Records a failed attempt that will be retried at `next`.
    pub async fn outbox_retry(
        &self,
        id: i64,
        attempts: u32,
        next: DateTime<Utc>,
        error: &str,
    ) -> Result<()> {
        with_pool!(self, pool, _Db => {
            let mut tx = pool.begin().await?;
            check_fence!(self, &mut *tx);
            sqlx::query(
                "UPDATE outbox SET attempts = $2, next_attempt_us = $3, last_error = $4 \
                 WHERE id = $1",
            )
            .bind(id)
            .bind(attempts as i32)
            .bind(us(next))
            .bind(error)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
        });
        Ok(())
    }

    /// Records a refusal that retrying cannot fix; the row stays for inspection.
    pub async fn outbox_failed(
        &self,
        id: i64,
        attempts: u32,
        now: DateTime<Utc>,
        error: &str,
    ) -> Result<()> {
        with_pool!(self, pool, _Db => {
            let mut tx = pool.begin().await?;
            check_fence!(self, &mut *tx);
            sqlx::query(
                "UPDATE outbox SET status = 'failed', attempts = $2, done_us = $3, \
                 last_error = $4, lease_until_us = NULL, claimed_by = NULL WHERE id = $1",
            )
            .bind(id)
            .bind(attempts as i32)
            .bind(us(now))
            .bind(error)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
        });
        Ok(())
    }

    /// What `receiver` stored for `group_key` at its last delivery.
    pub async fn receiver_state(
        &self,
        receiver: &str,
        group_key: &str,
    ) -> Result<Option<serde_json::Value>> {
        let text: Option<String> = with_pool!(self, pool, _Db => {
            sqlx::query_scalar(
                "SELECT state FROM receiver_state WHERE receiver = $1 AND group_key = $2",
            )
            .bind(receiver)
            .bind(group_key)
            .fetch_optional(pool)
            .await?
        });
        Ok(text.and_then(|t| serde_json::from_str(&t).ok()))
    }

    /// Every receiver state, newest first (at most 10,000).
    pub async fn receiver_states(&self) -> Result<Vec<(String, String, serde_json::Value)>> {
        let rows: Vec<(String, String, String)> = with_pool!(self, pool, _Db => {
            sqlx::query_as(
                "SELECT receiver, group_key, state FROM receiver_state \
                 ORDER BY updated_us DESC LIMIT 10000",
            )
            .fetch_all(pool)
            .await?
        });
        Ok(rows
            .into_iter()
            .filter_map(|(r, g, t)| serde_json::from_str(&t).ok().map(|v| (r, g, v)))
            .collect())
    }

    /// Moves the pending rows of receivers not in `keep` to `to` (a receiver removed, renamed
    /// or disabled by a reload or restart: its queued notifications go to the console instead
    /// of waiting forever). Returns how many moved.
    pub async fn outbox_reassign(&self, keep: &[String], to: &str) -> Result<u64> {
        let mut sql = String::from("UPDATE outbox SET receiver = $1 WHERE status = 'pending'");
        if !keep.is_empty() {
            let marks: Vec<String> = (0..keep.len()).map(|i| format!("${}", i + 2)).collect();
            sql.push_str(&format!(" AND receiver NOT IN ({})", marks.join(", ")));
        }
        let n = with_pool!(self, pool, _Db => {
            let mut tx = pool.begin().await?;
            check_fence!(self, &mut *tx);
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(to);
            for k in keep {
                q = q.bind(k);
            }
            let n = q.execute(&mut *tx).await?.rows_affected();
            tx.commit().await?;
            n
        });
        Ok(n)
    }

    /// Rows per receiver and status (for `/metrics` and the API).
    pub async fn outbox_counts(&self) -> Result<Vec<(String, OutboxStatus, i64)>> {
        let rows: Vec<(String, String, i64)> = with_pool!(self, pool, _Db => {
            sqlx::query_as(
                "SELECT receiver, status, count(*) FROM outbox GROUP BY receiver, status \
                 ORDER BY receiver, status",
            )
            .fetch_all(pool)
            .await?
        });
        rows.into_iter()
            .map(|(r, s, n)| Ok((r, OutboxStatus::parse(&s)?, n)))
            .collect()
    }

    /// Deletes delivered or failed rows finished before `before` (pending rows are never pruned).
    pub async fn prune_outbox(&self, before: DateTime<Utc>) -> Result<u64> {
        let n = with_pool!(self, pool, _Db => {
            sqlx::query("DELETE FROM outbox WHERE status <> 'pending' AND done_us < $1")
                .bind(us(before))
                .execute(pool)
                .await?
                .rows_affected()
        });
        Ok(n)
    }
}
