//! The store as the cluster's only coordination service: the leader lease, the replicas'
//! heartbeats, and the fence every leader write passes.
//!
//! Time is the store's: a lease's expiry and a heartbeat's `last_seen` are read from the
//! database's clock (`clock_timestamp()` in PostgreSQL, `julianday('now')` in SQLite), so
//! replicas whose clocks disagree still agree on who leads. A session advisory lock would not
//! do: a stopped (SIGSTOP) process keeps its connection, and so its lock, forever.
//!
//! **Fencing.** The epoch grows at every takeover. The leader's store handle carries a
//! [`Fence`]; each of its writes to alert state, the notification log and the outbox runs in a
//! transaction that first reads the lease row (`FOR SHARE` in PostgreSQL, so a takeover waits
//! for the write or the write for the takeover) and is refused unless this replica still holds
//! the lease of its epoch, unexpired. A paused former leader that wakes up can therefore
//! neither queue, claim nor mark a notification.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::{Result, Store, StoreError, with_pool};

/// The lease the evaluator and notifier run under.
pub const LEADER: &str = "leader";

/// Lease statements give up rather than wait long for the lease row's lock (held, at worst, by
/// a stopped process's open transaction until the server ends it): the next round tries again.
const LOCK_TIMEOUT: &str = "SET LOCAL lock_timeout = '2s'";

/// The store's clock in microseconds since the Unix epoch, as SQL.
pub(crate) fn now_sql(postgres: bool) -> &'static str {
    if postgres {
        "CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000000 AS BIGINT)"
    } else {
        "CAST((julianday('now') - 2440587.5) * 86400000000.0 AS INTEGER)"
    }
}

/// What a leader's handle checks its writes against: this replica's id and the epoch of the
/// lease it holds (0 while it holds none: every fenced write is refused).
#[derive(Debug)]
pub struct Fence {
    holder: String,
    epoch: AtomicI64,
}

impl Fence {
    pub fn new(holder: &str) -> Arc<Fence> {
        Arc::new(Fence {
            holder: holder.to_string(),
            epoch: AtomicI64::new(0),
        })
    }

    pub fn holder(&self) -> &str {
        &self.holder
    }

    /// The epoch writes are checked against; 0 when not leading.
    pub fn epoch(&self) -> i64 {
        self.epoch.load(Ordering::SeqCst)
    }

    pub fn set(&self, epoch: i64) {
        self.epoch.store(epoch, Ordering::SeqCst);
    }

    pub fn clear(&self) {
        self.set(0);
    }
}

/// A lease as the store answered: its holder, epoch and how long it has left by the store's
/// clock when the statement ran.
#[derive(Debug, Clone, PartialEq)]
pub struct Lease {
    pub holder: String,
    pub epoch: i64,
    /// Zero once expired.
    pub remaining: Duration,
}

/// One replica's heartbeat row.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ReplicaRow {
    pub id: String,
    pub location: String,
    pub role: String,
    pub epoch: i64,
    pub started_at: DateTime<Utc>,
    pub last_seen: DateTime<Utc>,
    /// The browser sessions it advertises (`webdriver.sessions`): journeys are shared by it.
    pub sessions: i64,
    /// How long ago `last_seen` was, by the store's clock.
    #[serde(skip)]
    pub age: Duration,
}

fn from_us(v: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(v).unwrap_or_default()
}

fn remaining(us: i64) -> Duration {
    Duration::from_micros(us.max(0) as u64)
}

/// Inside a transaction on `$conn`: refuses the write (returns `StoreError::Fenced` from the
/// enclosing function) unless the handle's fence still holds the lease. A handle without a
/// fence (the CLI, single-purpose tools) passes, and so does any SQLite handle.
macro_rules! check_fence {
    ($store:expr, $conn:expr) => {
        // SQLite: one daemon per store (its file lock), so nothing to fence; and a read first
        // would turn the transaction into a deferred read-then-write that SQLite refuses
        // (SQLITE_BUSY_SNAPSHOT) whenever the runs writer commits in between.
        if let Some(f) = $store.fence.as_ref().filter(|_| $store.is_postgres()) {
            let epoch = f.epoch();
            let held: Option<i64> = if epoch > 0 {
                ::sqlx::query_scalar(::sqlx::AssertSqlSafe($store.fence_sql()))
                    .bind(f.holder())
                    .bind(epoch)
                    .fetch_optional($conn)
                    .await?
            } else {
                None
            };
            if held.is_none() {
                return Err($crate::store::StoreError::Fenced {
                    holder: f.holder().to_string(),
                    epoch,
                });
            }
        }
    };
}
pub(crate) use check_fence;

impl Store {
    /// The epoch leader writes carry (NULL outside a fenced handle).
    pub(crate) fn write_epoch(&self) -> Option<i64> {
        self.fence.as_ref().map(|f| f.epoch())
    }

    /// The fence's holder, for claims.
    pub(crate) fn fence_holder(&self) -> Option<&str> {
        self.fence.as_ref().map(|f| f.holder())
    }

    pub(crate) fn fence_sql(&self) -> String {
        let pg = self.is_postgres();
        format!(
            "SELECT epoch FROM cluster_lease WHERE name = '{LEADER}' AND holder = $1 \
             AND epoch = $2 AND expires_us > {}{}",
            now_sql(pg),
            if pg { " FOR SHARE" } else { "" }
        )
    }

    /// Takes the leader lease for `holder` when it is free or expired (or always, with
    /// `force`: a single-node SQLite store, whose file lock already makes the process the only
    /// one). The new epoch is one more than the row's, and at least `min_epoch` (so epochs keep
    /// growing even when the table was dropped and recreated). `None`: another replica holds it.
    pub async fn acquire_lease(
        &self,
        holder: &str,
        lease: Duration,
        min_epoch: i64,
        force: bool,
    ) -> Result<Option<Lease>> {
        let pg = self.is_postgres();
        let now = now_sql(pg);
        let greatest = if pg { "GREATEST" } else { "MAX" };
        let guard = if force {
            String::new()
        } else {
            format!(" WHERE cluster_lease.expires_us < {now}")
        };
        let sql = format!(
            "INSERT INTO cluster_lease (name, holder, epoch, expires_us) \
             VALUES ('{LEADER}', $1, $2, {now} + $3) \
             ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, \
             epoch = {greatest}(cluster_lease.epoch + 1, excluded.epoch), \
             expires_us = excluded.expires_us{guard} \
             RETURNING epoch, expires_us - {now}"
        );
        let row: Option<(i64, i64)> = with_pool!(self, pool, _Db => {
            let mut tx = pool.begin().await?;
            if pg {
                sqlx::query(LOCK_TIMEOUT).execute(&mut *tx).await?;
            }
            let row = sqlx::query_as(sqlx::AssertSqlSafe(sql))
                .bind(holder)
                .bind(min_epoch.max(1))
                .bind(crate::config::duration::micros_i64(lease))
                .fetch_optional(&mut *tx)
                .await?;
            tx.commit().await?;
            row
        });
        Ok(row.map(|(epoch, left)| Lease {
            holder: holder.to_string(),
            epoch,
            remaining: remaining(left),
        }))
    }

    /// Extends the lease `holder` holds at `epoch`, if it still does and it has not expired.
    pub async fn renew_lease(
        &self,
        holder: &str,
        epoch: i64,
        lease: Duration,
    ) -> Result<Option<Lease>> {
        let pg = self.is_postgres();
        let now = now_sql(pg);
        let sql = format!(
            "UPDATE cluster_lease SET expires_us = {now} + $3 WHERE name = '{LEADER}' \
             AND holder = $1 AND epoch = $2 AND expires_us > {now} RETURNING expires_us - {now}"
        );
        let left: Option<i64> = with_pool!(self, pool, _Db => {
            let mut tx = pool.begin().await?;
            if pg {
                sqlx::query(LOCK_TIMEOUT).execute(&mut *tx).await?;
            }
            let left = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
                .bind(holder)
                .bind(epoch)
                .bind(crate::config::duration::micros_i64(lease))
                .fetch_optional(&mut *tx)
                .await?;
            tx.commit().await?;
            left
        });
        Ok(left.map(|l| Lease {
            holder: holder.to_string(),
            epoch,
            remaining: remaining(l),
        }))
    }

    /// Gives the lease up (a graceful stop), so a follower takes over at its next try instead
    /// of after the expiry.
    pub async fn release_lease(&self, holder: &str, epoch: i64) -> Result<()> {
        let now = now_sql(self.is_postgres());
        let sql = format!(
            "UPDATE cluster_lease SET expires_us = {now} - 1 WHERE name = '{LEADER}' \
             AND holder = $1 AND epoch = $2"
        );
        with_pool!(self, pool, _Db => {
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(holder)
                .bind(epoch)
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    /// The leader lease as it stands (expired or not), if one was ever taken.
    pub async fn current_lease(&self) -> Result<Option<Lease>> {
        let now = now_sql(self.is_postgres());
        let sql = format!(
            "SELECT holder, epoch, expires_us - {now} FROM cluster_lease WHERE name = '{LEADER}'"
        );
        let row: Option<(String, i64, i64)> = with_pool!(self, pool, _Db => {
            sqlx::query_as(sqlx::AssertSqlSafe(sql)).fetch_optional(pool).await?
        });
        Ok(row.map(|(holder, epoch, left)| Lease {
            holder,
            epoch,
            remaining: remaining(left),
        }))
    }

    /// Records that replica `id` is alive, with its role and the epoch it knows. This is a
    /// write on purpose: `/readyz` reports whether the store can be written, not just reached.
    pub async fn heartbeat(&self, id: &str, location: &str, role: &str, epoch: i64) -> Result<()> {
        self.heartbeat_with(id, location, role, epoch, 0).await
    }

    /// [`Store::heartbeat`] advertising `sessions` browser sessions (the share of journeys
    /// this replica takes, see `cluster::share`).
    pub async fn heartbeat_with(
        &self,
        id: &str,
        location: &str,
        role: &str,
        epoch: i64,
        sessions: i64,
    ) -> Result<()> {
        let now = now_sql(self.is_postgres());
        let sql = format!(
            "INSERT INTO cluster_replicas (id, location, role, epoch, started_us, last_seen_us, \
             sessions) VALUES ($1, $2, $3, $4, {now}, {now}, $5) ON CONFLICT (id) DO UPDATE SET \
             location = excluded.location, role = excluded.role, epoch = excluded.epoch, \
             last_seen_us = excluded.last_seen_us, sessions = excluded.sessions"
        );
        with_pool!(self, pool, _Db => {
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(id)
                .bind(location)
                .bind(role)
                .bind(epoch)
                .bind(sessions)
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    /// Replicas seen within `within` (by the store's clock), by id.
    pub async fn replicas(&self, within: Duration) -> Result<Vec<ReplicaRow>> {
        let now = now_sql(self.is_postgres());
        let sql = format!(
            "SELECT id, location, role, epoch, started_us, last_seen_us, {now} - last_seen_us, \
             sessions FROM cluster_replicas WHERE last_seen_us > {now} - $1 ORDER BY id"
        );
        type Row = (String, String, String, i64, i64, i64, i64, i64);
        let rows: Vec<Row> = with_pool!(self, pool, _Db => {
            sqlx::query_as(sqlx::AssertSqlSafe(sql))
                .bind(crate::config::duration::micros_i64(within))
                .fetch_all(pool)
                .await?
        });
        Ok(rows
            .into_iter()
            .map(
                |(id, location, role, epoch, started, seen, age, sessions)| ReplicaRow {
                    id,
                    location,
                    role,
                    epoch,
                    started_at: from_us(started),
                    last_seen: from_us(seen),
                    sessions,
                    age: remaining(age),
                },
            )
            .collect())
    }

    /// Forgets replicas not seen for `older_than` (housekeeping).
    pub async fn prune_replicas(&self, older_than: Duration) -> Result<u64> {
        let now = now_sql(self.is_postgres());
        let sql = format!("DELETE FROM cluster_replicas WHERE last_seen_us < {now} - $1");
        let n = with_pool!(self, pool, _Db => {
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(crate::config::duration::micros_i64(older_than))
                .execute(pool)
                .await?
                .rows_affected()
        });
        Ok(n)
    }
}

/// What a replica taking a check over finds before its first slot: the last slot claimed
/// before it, by whom, and the intended start of the last run stored for the check.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SlotHistory {
    pub last_claim: Option<(i64, String)>,
    pub last_run_us: Option<i64>,
}

impl Store {
    /// Claims slots of `location` for `replica`, all in one statement: each `(check, slot_us)`
    /// is claimed by exactly one replica whatever the views of membership say. Returns the
    /// slots this call won (the others were claimed before).
    pub async fn claim_slots(
        &self,
        location: &str,
        replica: &str,
        slots: &[(String, i64)],
    ) -> Result<Vec<(String, i64)>> {
        self.insert_claims(location, replica, slots, false).await
    }

    /// Records `slots` of `check` as missed (no replica ran them); a slot already claimed (by
    /// a replica that died before storing its run) keeps its claimer and is marked missed.
    pub async fn claim_missed(
        &self,
        location: &str,
        replica: &str,
        check: &str,
        slots: &[i64],
    ) -> Result<u64> {
        let rows: Vec<(String, i64)> = slots.iter().map(|s| (check.to_string(), *s)).collect();
        Ok(self
            .insert_claims(location, replica, &rows, true)
            .await?
            .len() as u64)
    }

    async fn insert_claims(
        &self,
        location: &str,
        replica: &str,
        slots: &[(String, i64)],
        missed: bool,
    ) -> Result<Vec<(String, i64)>> {
        if slots.is_empty() {
            return Ok(Vec::new());
        }
        let now = now_sql(self.is_postgres());
        let mut won = Vec::with_capacity(slots.len());
        with_pool!(self, pool, Db => {
            for chunk in super::statement_chunks(slots, 1_000) {
                let mut q = sqlx::QueryBuilder::<Db>::new(
                    "INSERT INTO slot_claims (location, check_name, slot_us, replica, missed, \
                     claimed_us) ",
                );
                q.push_values(chunk, |mut b, (check, slot)| {
                    b.push_bind(location)
                        .push_bind(check.as_str())
                        .push_bind(*slot)
                        .push_bind(replica)
                        .push_bind(missed)
                        .push_unseparated(", ")
                        .push_unseparated(now);
                });
                // A missed slot its departed claimer never ran is marked, keeping the claimer.
                q.push(if missed {
                    " ON CONFLICT (location, check_name, slot_us) DO UPDATE SET missed = TRUE \
                     RETURNING check_name, slot_us"
                } else {
                    " ON CONFLICT (location, check_name, slot_us) DO NOTHING \
                     RETURNING check_name, slot_us"
                });
                let rows: Vec<(String, i64)> = q.build_query_as().fetch_all(pool).await?;
                won.extend(rows);
            }
        });
        Ok(won)
    }

    /// The last slot of `check` claimed before `before_us`, and its last stored run's slot.
    pub async fn slot_history(
        &self,
        location: &str,
        check: &str,
        before_us: i64,
    ) -> Result<SlotHistory> {
        let claim: Option<(i64, String)> = with_pool!(self, pool, _Db => {
            sqlx::query_as(
                "SELECT slot_us, replica FROM slot_claims WHERE location = $1 AND check_name = $2 \
                 AND slot_us < $3 ORDER BY slot_us DESC LIMIT 1",
            )
            .bind(location)
            .bind(check)
            .bind(before_us)
            .fetch_optional(pool)
            .await?
        });
        let before = from_us(before_us);
        let run: Option<DateTime<Utc>> = with_pool!(self, pool, _Db => {
            sqlx::query_scalar(
                "SELECT scheduled_at FROM runs WHERE check_name = $2 AND location = $1 \
                 AND started_at < $3 ORDER BY started_at DESC LIMIT 1",
            )
            .bind(location)
            .bind(check)
            .bind(before)
            .fetch_optional(pool)
            .await?
        });
        Ok(SlotHistory {
            last_claim: claim,
            last_run_us: run.map(|t| t.timestamp_micros()),
        })
    }

    /// Forgets slot claims older than `older_than` (housekeeping).
    pub async fn prune_claims(&self, older_than: Duration) -> Result<u64> {
        let now = now_sql(self.is_postgres());
        let sql = format!("DELETE FROM slot_claims WHERE claimed_us < {now} - $1");
        let n = with_pool!(self, pool, _Db => {
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(crate::config::duration::micros_i64(older_than))
                .execute(pool)
                .await?
                .rows_affected()
        });
        Ok(n)
    }
}

impl StoreError {
    /// A write refused because this replica no longer leads.
    pub fn is_fenced(&self) -> bool {
        matches!(self, StoreError::Fenced { .. })
    }
}
