//! A journey on the schedule: its entry in `checks.journeys` names a journey of the journeys
//! folder and gives it a schedule; a run drives a browser session through its steps.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Deserialize;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

use super::{Check, Context, RawRetry, Schedule, Validator};
use crate::outcome::Outcome;
use crate::run::{CheckKind, RunResult};

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawJourneyCheck {
    pub name: String,
    #[serde(default)]
    #[schemars(with = "Option<crate::config::schema::Duration>")]
    pub interval: Option<String>,
    #[serde(default)]
    #[schemars(with = "Option<crate::config::schema::Duration>")]
    pub timeout: Option<String>,
    #[serde(default)]
    pub retry_on_failure: Option<RawRetry>,
}

/// A scheduled journey. The journey itself is loaded apart (from the journeys folder) and
/// found by name when it runs.
#[derive(Debug, Clone)]
pub struct JourneyCheck {
    pub name: String,
    pub schedule: Schedule,
}

impl Check for JourneyCheck {
    const KIND: CheckKind = CheckKind::Journey;
    const KEY: &'static str = "journeys";
    type Raw = RawJourneyCheck;

    check_accessors!(retry_on_failure);

    /// Whether the journey exists is checked once the journeys are loaded.
    fn validate(raw: &RawJourneyCheck, _: &str, schedule: Schedule, _: &mut Validator<'_>) -> Self {
        JourneyCheck {
            name: raw.name.clone(),
            schedule,
        }
    }

    /// Steps carry their own timeouts; the scheduler's timeout bounds the whole run.
    async fn run(&self, cx: &Context<'_>, _: Duration) -> RunResult {
        let Some(j) = cx.journeys.iter().find(|j| j.name == self.name) else {
            let mut r = cx.begin(&self.name, Self::KIND);
            r.outcome = Outcome::Error;
            r.error = Some(format!("journey `{}` is not loaded", self.name));
            return r;
        };
        let Some(sessions) = cx.sessions else {
            return cx.runner.run(j, cx.target).await;
        };
        // Waiting for a browser session is not the target's latency: measured apart.
        let waited = Instant::now();
        let permit = sessions.pool.acquire(&self.name).await;
        let wait_ms = waited.elapsed().as_secs_f64() * 1000.0;
        let mut r = cx.runner.run(j, cx.target).await;
        r.session_wait_ms = wait_ms;
        if r.outcome != Outcome::Pass && sessions.retest_follows {
            sessions.pool.keep_for_retest(&self.name, permit);
        }
        r
    }
}

/// The browser sessions journeys share (`webdriver.sessions`), each a Chromium costing about a
/// gigabyte. A failed attempt that the scheduler will retest keeps its slot through the retry
/// delay and hands it to its retest: otherwise, while a target fails, every journey's attempts
/// last until a step times out, the pool is busy, and a retest queues behind other journeys'
/// first attempts and starts seconds after its `delay`. The kept slot idles for `delay`,
/// which first attempts may wait for; their wait is measured apart as `session_wait_ms`.
#[derive(Debug)]
pub struct SessionPool {
    permits: Arc<Semaphore>,
    /// Slots kept by a failed attempt for the retest of the same check.
    kept: Mutex<HashMap<String, OwnedSemaphorePermit>>,
}

impl SessionPool {
    pub fn new(sessions: usize) -> Self {
        SessionPool {
            permits: Arc::new(Semaphore::new(sessions)),
            kept: Mutex::new(HashMap::new()),
        }
    }

    /// A slot for an attempt of `check`: the one its failed attempt kept, else the next free.
    async fn acquire(&self, check: &str) -> OwnedSemaphorePermit {
        let kept = self.kept.lock().expect("session pool lock").remove(check);
        match kept {
            Some(p) => p,
            None => self
                .permits
                .clone()
                .acquire_owned()
                .await
                .expect("the session pool is never closed"),
        }
    }

    /// Keeps `permit` for the next attempt of `check`. A retest that never comes (the daemon
    /// stops or reloads during the delay) drops the pool with it, and the slot with the pool.
    fn keep_for_retest(&self, check: &str, permit: OwnedSemaphorePermit) {
        self.kept
            .lock()
            .expect("session pool lock")
            .insert(check.to_string(), permit);
    }

    /// Free slots now (tests).
    pub fn available(&self) -> usize {
        self.permits.available_permits()
    }
}

/// One attempt's view of the [`SessionPool`].
#[derive(Debug, Clone, Copy)]
pub struct Sessions<'a> {
    pub pool: &'a SessionPool,
    /// A failure of this attempt is retested (the scheduler's `retry_on_failure`), so a failed
    /// run keeps its slot for the retest.
    pub retest_follows: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_kept_slot_goes_to_the_retest_of_its_check_before_anyone_queueing() {
        let pool = SessionPool::new(1);
        let first = pool.acquire("align_category").await;
        pool.keep_for_retest("align_category", first);
        assert_eq!(pool.available(), 0, "the kept slot is not free");
        // Another journey's first attempt queues for it...
        let other = pool.acquire("feed_push");
        tokio::pin!(other);
        assert!(
            tokio::time::timeout(Duration::from_secs(5), &mut other)
                .await
                .is_err()
        );
        // ...while the retest gets it at once, and the other journey once the retest ends.
        let retest = tokio::time::timeout(Duration::ZERO, pool.acquire("align_category"))
            .await
            .expect("the retest does not wait");
        drop(retest);
        let _slot = tokio::time::timeout(Duration::ZERO, other)
            .await
            .expect("the slot is free again");
    }
}
