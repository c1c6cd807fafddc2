//! The feed-push worker: `queued -> processing -> success | failed`, with the
//! platform's retry schedule (attempt 1 immediate, then +1 min, +5 min, +15 min, +1 h;
//! five attempts in all), delays divided by `time_scale`.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use rand::Rng;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;

use crate::AppState;
use crate::db::{Db, Id, Ts, dispatch, now};

/// Delay before attempt n+1 after attempt n failed (n = 1..=4).
pub const RETRY_DELAYS_SECS: [u64; 4] = [60, 5 * 60, 15 * 60, 60 * 60];
/// Attempts in all.
pub const MAX_ATTEMPTS: i32 = 5;
/// How long one simulated push to Merchant Center takes.
pub const PUSH_DURATION: Duration = Duration::from_millis(50);
/// Poll interval when nothing wakes the worker.
pub const POLL: Duration = Duration::from_millis(20);
/// Jobs processed at once.
const CONCURRENCY: usize = 8;
/// Probability that the simulated Merchant Center review approves a product.
const APPROVAL_PROBABILITY: f64 = 0.965;

/// Inserts (or, after a recovered crash, replaces) one `feed_push_attempts` row.
macro_rules! record_attempt {
    ($tx:ident, $job:expr, $attempt:expr, $started:expr, $finished:expr, $outcome:expr, $err:expr, $next:expr) => {
        sqlx::query(
            "INSERT INTO feed_push_attempts \
               (id, job_id, tenant_id, attempt, started_at, finished_at, outcome, error_message, next_retry) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
             ON CONFLICT (job_id, attempt) DO UPDATE SET started_at = excluded.started_at, \
               finished_at = excluded.finished_at, outcome = excluded.outcome, \
               error_message = excluded.error_message, next_retry = excluded.next_retry",
        )
        .bind(Id::new())
        .bind($job.id)
        .bind($job.tenant_id)
        .bind($attempt.min(MAX_ATTEMPTS))
        .bind(Ts($started))
        .bind(Ts($finished))
        .bind($outcome)
        .bind($err)
        .bind($next)
        .execute(&mut *$tx)
        .await?;
    };
}

/// The delay after failed attempt `attempt` (1-based), scaled.
pub fn retry_delay(attempt: i32, time_scale: f64) -> chrono::Duration {
    let idx = usize::try_from(attempt.clamp(1, 4) - 1).unwrap_or(0);
    let micros = (RETRY_DELAYS_SECS[idx] as f64 * 1_000_000.0 / time_scale).round() as i64;
    chrono::Duration::microseconds(micros.max(0))
}

#[derive(Debug, sqlx::FromRow)]
struct Claimed {
    id: Id,
    tenant_id: Id,
    sku: Option<String>,
    retry_count: Option<i32>,
}

/// Re-queues jobs left in `processing` by an interrupted run.
pub async fn recover(db: &Db) -> anyhow::Result<()> {
    let at = Ts(now());
    dispatch!(db, |p| {
        sqlx::query(
            "UPDATE feed_push_jobs SET job_status = 'queued', next_retry = $1 WHERE job_status = 'processing'",
        )
        .bind(at)
        .execute(p)
        .await?;
    });
    Ok(())
}

async fn claim(db: &Db, at: DateTime<Utc>) -> sqlx::Result<Option<Claimed>> {
    dispatch!(db, |p| {
        sqlx::query_as::<_, Claimed>(
            "UPDATE feed_push_jobs SET job_status = 'processing', last_attempt = $1 \
             WHERE id = (SELECT id FROM feed_push_jobs WHERE job_status = 'queued' AND next_retry <= $1 \
                         ORDER BY next_retry LIMIT 1) \
               AND job_status = 'queued' \
             RETURNING id, tenant_id, sku, retry_count",
        )
        .bind(Ts(at))
        .fetch_optional(p)
        .await
    })
}

/// Runs until the sandbox shuts down.
pub async fn run(st: Arc<AppState>) {
    let permits = Arc::new(Semaphore::new(CONCURRENCY));
    let mut tasks = JoinSet::new();
    let mut shutdown = st.shutdown.clone();
    loop {
        if *shutdown.borrow() {
            break;
        }
        while tasks.try_join_next().is_some() {}
        // The db_down fault pauses the worker.
        if !st.faults.db_down()
            && let Ok(permit) = permits.clone().try_acquire_owned()
        {
            let started = now();
            match claim(&st.db, started).await {
                Ok(Some(job)) => {
                    tasks.spawn(process(st.clone(), job, started, permit));
                    continue;
                }
                Ok(None) => {}
                Err(e) => tracing::warn!(error = %e, "claiming a feed job failed"),
            }
        }
        tokio::select! {
            _ = st.worker_wake.notified() => {}
            _ = tokio::time::sleep(POLL) => {}
            _ = shutdown.changed() => {}
        }
    }
    let drain = async { while tasks.join_next().await.is_some() {} };
    if tokio::time::timeout(Duration::from_secs(2), drain)
        .await
        .is_err()
    {
        tasks.abort_all();
    }
}

async fn process(
    st: Arc<AppState>,
    job: Claimed,
    started: DateTime<Utc>,
    _permit: OwnedSemaphorePermit,
) {
    tokio::time::sleep(PUSH_DURATION).await;
    let attempt = job.retry_count.unwrap_or(0) + 1;
    let fail_rate = st.faults.feed_fail_rate();
    let failed = fail_rate > 0.0 && rand::rng().random::<f64>() < fail_rate;
    let finished = now();
    let res = if failed {
        fail(&st, &job, attempt, started, finished).await
    } else {
        succeed(&st, &job, attempt, started, finished).await
    };
    if let Err(e) = res {
        tracing::warn!(job = %job.id, error = %e, "recording a feed job attempt failed");
    }
}

async fn succeed(
    st: &AppState,
    job: &Claimed,
    attempt: i32,
    started: DateTime<Utc>,
    finished: DateTime<Utc>,
) -> sqlx::Result<()> {
    // The simulated Merchant Center review: never for the synthetic tenant.
    let review = job.tenant_id != st.synthetic_tenant;
    dispatch!(&st.db, |p| {
        let mut tx = p.begin().await?;
        sqlx::query(
            "UPDATE feed_push_jobs SET job_status = 'success', next_retry = NULL, error_message = NULL \
             WHERE id = $1 AND job_status = 'processing'",
        )
        .bind(job.id)
        .execute(&mut *tx)
        .await?;
        record_attempt!(
            tx,
            job,
            attempt,
            started,
            finished,
            "success",
            None::<String>,
            None::<Ts>
        );
        if review {
            let skus: Vec<String> =
                match &job.sku {
                    Some(s) => {
                        sqlx::query_scalar("SELECT sku FROM skus WHERE tenant_id = $1 AND sku = $2")
                            .bind(job.tenant_id)
                            .bind(s)
                            .fetch_all(&mut *tx)
                            .await?
                    }
                    None => sqlx::query_scalar(
                        "SELECT sku FROM skus WHERE tenant_id = $1 AND quantity > 0 ORDER BY sku",
                    )
                    .bind(job.tenant_id)
                    .fetch_all(&mut *tx)
                    .await?,
                };
            let reviews: Vec<(String, bool)> = {
                let mut rng = rand::rng();
                skus.into_iter()
                    .map(|s| (s, rng.random::<f64>() < APPROVAL_PROBABILITY))
                    .collect()
            };
            for chunk in reviews.chunks(500) {
                let mut qb = sqlx::QueryBuilder::new(
                    "INSERT INTO merchant_approvals (id, tenant_id, sku, job_id, status, reason, reviewed_at) ",
                );
                qb.push_values(chunk, |mut b, (sku, ok)| {
                    b.push_bind(Id::new())
                        .push_bind(job.tenant_id)
                        .push_bind(sku.clone())
                        .push_bind(job.id)
                        .push_bind(if *ok { "approved" } else { "disapproved" })
                        .push_bind((!*ok).then_some("Missing GTIN"))
                        .push_bind(Ts(finished));
                });
                qb.build().execute(&mut *tx).await?;
            }
        }
        tx.commit().await?;
    });
    Ok(())
}

async fn fail(
    st: &AppState,
    job: &Claimed,
    attempt: i32,
    started: DateTime<Utc>,
    finished: DateTime<Utc>,
) -> sqlx::Result<()> {
    let reason = format!(
        "Merchant Center push failed: simulated upstream error 503 (attempt {attempt} of {MAX_ATTEMPTS})"
    );
    let next =
        (attempt < MAX_ATTEMPTS).then(|| Ts(finished + retry_delay(attempt, st.config.time_scale)));
    let status = if next.is_some() { "queued" } else { "failed" };
    let message = if next.is_some() {
        reason.clone()
    } else {
        format!("gave up after {MAX_ATTEMPTS} attempts; last error: {reason}")
    };
    dispatch!(&st.db, |p| {
        let mut tx = p.begin().await?;
        sqlx::query(
            "UPDATE feed_push_jobs SET job_status = $2, retry_count = $3, next_retry = $4, error_message = $5 \
             WHERE id = $1 AND job_status = 'processing'",
        )
        .bind(job.id)
        .bind(status)
        .bind(attempt)
        .bind(next)
        .bind(&message)
        .execute(&mut *tx)
        .await?;
        record_attempt!(
            tx,
            job,
            attempt,
            started,
            finished,
            "failure",
            Some(reason.clone()),
            next
        );
        tx.commit().await?;
    });
    if next.is_some() {
        st.worker_wake.notify_one();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedule_is_r2_scaled() {
        assert_eq!(retry_delay(1, 1.0), chrono::Duration::minutes(1));
        assert_eq!(retry_delay(2, 1.0), chrono::Duration::minutes(5));
        assert_eq!(retry_delay(3, 1.0), chrono::Duration::minutes(15));
        assert_eq!(retry_delay(4, 1.0), chrono::Duration::hours(1));
        assert_eq!(retry_delay(1, 6000.0), chrono::Duration::milliseconds(10));
        assert_eq!(retry_delay(4, 6000.0), chrono::Duration::milliseconds(600));
    }
}
