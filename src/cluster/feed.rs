//! The leader's view of the other replicas' runs: a second metrics registry ("remote") filled
//! from the store, which the evaluator reads beside its own (see `rules/registry_source.rs`).
//!
//! What it owns: the remote registry, the cursor into the store's arrival order (`stored_us`,
//! the store's clock) and the run ids read within the overlap, so each run is recorded exactly
//! once although every read starts [`OVERLAP_US`] before the newest run seen (a PostgreSQL row can
//! become visible after rows stored later, see `store/feed.rs`). It records each run at its
//! own end time with every point the live recorder gives it ([`RunMetrics`]), so windows and
//! percentiles are those the other replica measured, and the lag of each read into the
//! leader's own registry ([`catalog::CLUSTER_FEED_LAG`]).
//!
//! What it never does: write the own registry's run metrics (`/metrics` on each replica exports
//! only what that replica measured, or a scrape of every replica would count runs twice), read
//! a clock (`now` is passed in), or decide when it runs (the daemon calls [`Feed::reset`] on
//! becoming leader, [`Feed::catch_up`] before each evaluation and [`Feed::maintain`] on the
//! minute tick). A run stored more than [`OVERLAP_US`] out of order is missed.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};

use chrono::{DateTime, Utc};

use crate::metrics::catalog;
use crate::metrics::registry::Registry;
use crate::metrics::runs::RunMetrics;
use crate::store::{FedRun, Store, StoreError};

/// How far before the newest `stored_us` seen each read starts: longer than any run insert's
/// transaction, so a row that committed late is still read.
const OVERLAP_US: i64 = 30_000_000;

/// Runs per store query.
const PAGE: u32 = 1_000;

/// The history a new leader replays: what the own registry holds after a restart too.
const REPLAY: chrono::TimeDelta = chrono::TimeDelta::hours(24);

/// How much earlier than the replay horizon (by this replica's clock) the first read starts, in
/// the store's arrival order: a run stored up to this long before the horizon by a store clock
/// that runs behind ours may still have started inside it.
const CLOCK_SLACK: chrono::TimeDelta = chrono::TimeDelta::hours(1);

/// Where the reads are: the newest `stored_us` read and the runs read since `OVERLAP_US`
/// before it.
#[derive(Debug, Default)]
struct Cursor {
    /// `None` until the first run is read: the next read starts at the replay horizon.
    newest_us: Option<i64>,
    /// Run id -> its `stored_us`, for the runs a read may return again.
    seen: HashMap<String, i64>,
}

/// The other replicas' runs as metrics, for the leader's evaluation.
#[derive(Debug)]
pub struct Feed {
    /// Replaced whole at [`Feed::reset`]; readers hold a clone (a shared handle).
    remote: RwLock<Registry>,
    /// Held for a whole read, so reads and resets never interleave.
    cursor: Arc<tokio::sync::Mutex<Cursor>>,
    page: u32,
    /// Set from [`Feed::hold`] until the replay it starts is in: the evaluator waits (skips its
    /// turn) rather than judge the other locations on half a history.
    resetting: AtomicBool,
}

/// The feed held for a [`Feed::reset_with`]: taken before the replay is handed to a task of
/// its own, so no read can slip in between.
pub struct FeedTurn(tokio::sync::OwnedMutexGuard<Cursor>);

impl Default for Feed {
    fn default() -> Self {
        Feed::new()
    }
}

impl Feed {
    pub fn new() -> Feed {
        Feed {
            remote: RwLock::new(Registry::new()),
            cursor: Arc::new(tokio::sync::Mutex::new(Cursor::default())),
            page: PAGE,
            resetting: AtomicBool::new(false),
        }
    }

    /// The remote registry: the other replicas' runs. A clone of the handle, so a reader keeps
    /// the registry it started with across a [`reset`](Self::reset).
    pub fn registry(&self) -> Registry {
        self.remote
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Starts over, on becoming leader: a new remote registry holding the other replicas' runs
    /// that started in the last 24 hours, swapped in once they are all in, so the evaluator
    /// never reads half a history. No lag is recorded for them: they were not read late, they
    /// predate this leadership. When the store fails midway, what was read is kept and the next
    /// [`catch_up`](Self::catch_up) reads on from there.
    pub async fn reset(&self, store: &Store, own_replica: &str, now: DateTime<Utc>) {
        let turn = self.hold().await;
        self.reset_with(turn, store, own_replica, now).await;
    }

    /// Holds the feed for a reset: from now until [`Feed::reset_with`] ends, reads wait and
    /// [`Feed::is_resetting`] says so.
    pub async fn hold(&self) -> FeedTurn {
        self.resetting.store(true, Ordering::SeqCst);
        FeedTurn(self.cursor.clone().lock_owned().await)
    }

    /// Whether a replay is in progress (the evaluator skips its turn meanwhile).
    pub fn is_resetting(&self) -> bool {
        self.resetting.load(Ordering::SeqCst)
    }

    /// [`Feed::reset`] on a feed already held (see [`Feed::hold`]).
    pub async fn reset_with(
        &self,
        turn: FeedTurn,
        store: &Store,
        own_replica: &str,
        now: DateTime<Utc>,
    ) {
        let mut guard = turn.0;
        let cursor = &mut *guard;
        *cursor = Cursor::default();
        let fresh = Registry::new();
        let read = self
            .read(cursor, store, own_replica, &fresh, None, now)
            .await;
        *self.remote.write().unwrap_or_else(|e| e.into_inner()) = fresh;
        drop(guard);
        self.resetting.store(false, Ordering::SeqCst);
        match read {
            Ok(runs) => tracing::info!(
                runs,
                "replayed the other replicas' last 24 h of runs for evaluation"
            ),
            Err(e) => tracing::warn!(
                error = %e,
                "could not replay the other replicas' runs; the next read goes on from there"
            ),
        }
    }

    /// Reads the runs the other replicas stored since the last read and records each one into
    /// the remote registry at its end time, and the lag from that end to `now` into
    /// `own_registry` (`synmon.cluster.feed_lag`). Returns how many runs were new. A feed that
    /// never read starts at the replay horizon, as [`reset`](Self::reset) does.
    pub async fn catch_up(
        &self,
        store: &Store,
        own_replica: &str,
        own_registry: &Registry,
        now: DateTime<Utc>,
    ) -> Result<usize, StoreError> {
        let mut cursor = self.cursor.lock().await;
        let remote = self.registry();
        self.read(
            &mut cursor,
            store,
            own_replica,
            &remote,
            Some(own_registry),
            now,
        )
        .await
    }

    /// The minute tick of the remote registry (freezes histogram slices).
    pub fn maintain(&self, now: DateTime<Utc>) {
        self.registry().maintain(now);
    }

    /// One read, page after page until the store has no more: records every run not seen yet
    /// into `into`, and its lag into `lag` when given. A first read (no cursor) starts at the
    /// replay horizon and skips runs that started before it.
    async fn read(
        &self,
        cursor: &mut Cursor,
        store: &Store,
        own_replica: &str,
        into: &Registry,
        lag: Option<&Registry>,
        now: DateTime<Utc>,
    ) -> Result<usize, StoreError> {
        let horizon = now - REPLAY;
        let (mut after, oldest) = match cursor.newest_us {
            Some(newest) => (newest - OVERLAP_US, None),
            None => ((horizon - CLOCK_SLACK).timestamp_micros(), Some(horizon)),
        };
        let mut limit = self.page;
        let mut recorded = 0;
        loop {
            let page = store.runs_stored_since(after, own_replica, limit).await?;
            let full = page.len() >= limit as usize;
            let last_us = page.last().map(|r| r.stored_us);
            for run in &page {
                cursor.newest_us = Some(
                    cursor
                        .newest_us
                        .map_or(run.stored_us, |n| n.max(run.stored_us)),
                );
                if cursor
                    .seen
                    .insert(run.run_id.clone(), run.stored_us)
                    .is_some()
                {
                    continue;
                }
                if oldest.is_some_and(|o| run.started_at < o) {
                    continue;
                }
                record(run, into, lag, now);
                recorded += 1;
            }
            let Some(last_us) = last_us.filter(|_| full) else {
                break;
            };
            // The next page starts just before the last run's instant, since runs stored at
            // that same instant may not all have fit. A page holding nothing but runs of one
            // instant cannot move on that way: ask for a bigger one.
            if last_us - 1 > after {
                after = last_us - 1;
                limit = self.page;
            } else {
                limit = limit.saturating_mul(2);
            }
        }
        if let Some(newest) = cursor.newest_us {
            cursor.seen.retain(|_, us| *us > newest - OVERLAP_US);
        }
        Ok(recorded)
    }
}

/// Records one run into `into` as its own replica recorded it live (same points, at its end),
/// and the time from its end to `now` into `lag`.
fn record(run: &FedRun, into: &Registry, lag: Option<&Registry>, now: DateTime<Utc>) {
    let ended = run.ended_at();
    let metrics = RunMetrics {
        check: &run.check,
        location: &run.location,
        target: &run.target,
        outcome: run.outcome,
        attempt: run.attempt,
        latency_ms: run.slo_latency_ms(),
        steps: &run.steps,
        cancelled: run.cancelled,
        maintenance: run.maintenance.is_some(),
    };
    if let Err(e) = metrics.try_for_each_point(|p| into.record_point(&p, ended)) {
        tracing::warn!(check = %run.check, replica = %run.replica, error = %e, "another replica's run not recorded for evaluation");
    }
    if let Some(own) = lag {
        // Clocks of two replicas may disagree: a run that seems to end after `now` was read
        // without delay.
        let ms = (now - ended).num_microseconds().unwrap_or(i64::MAX).max(0) as f64 / 1000.0;
        let _ = own.record(
            catalog::CLUSTER_FEED_LAG.name,
            &[("location", &run.location)],
            ms,
            now,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::{Clock, SystemClock};
    use crate::config::Secret;
    use crate::metrics::window::Window;
    use crate::outcome::Outcome;
    use crate::run::{CheckKind, RunResult, StepResult, Timing};

    async fn store() -> Store {
        Store::connect(&Secret::new("sqlite::memory:".to_string()))
            .await
            .unwrap()
    }

    fn run(id: &str, location: &str, started_at: DateTime<Utc>) -> RunResult {
        let step = |name: &str, ms: f64, timed: bool| StepResult {
            name: name.into(),
            action: "click".into(),
            latency_ms: ms,
            timed,
            timing: Timing::InPage,
            navigation: None,
            outcome: Outcome::Pass,
            error: None,
        };
        RunResult {
            run_id: id.into(),
            check: "align".into(),
            kind: CheckKind::Journey,
            attempt: 1,
            scheduled_at: started_at,
            cancelled: false,
            target: "staging".into(),
            location: location.into(),
            outcome: Outcome::Pass,
            started_at,
            timed_latency_ms: 120.0,
            total_ms: 2000.0,
            session_wait_ms: 0.0,
            session_create_ms: 0.0,
            browser_reused: None,
            session_reused: None,
            emulation: None,
            steps: vec![step("login", 900.0, false), step("save", 120.0, true)],
            error: None,
            failed_step: None,
            artifacts: vec![],
            page: None,
            trace_id: None,
        }
    }

    fn latency_count(r: &Registry, location: &str, now: DateTime<Utc>) -> u64 {
        let labels = [
            ("check", "align"),
            ("location", location),
            ("target", "staging"),
            ("outcome", "pass"),
        ];
        r.count(catalog::CHECK_LATENCY.name, &labels, Window::H1, now)
    }

    fn lag_count(r: &Registry, location: &str, now: DateTime<Utc>) -> u64 {
        r.count(
            catalog::CLUSTER_FEED_LAG.name,
            &[("location", location)],
            Window::H1,
            now,
        )
    }

    #[tokio::test]
    async fn catch_up_records_each_other_replicas_run_once_with_its_steps_and_lag() {
        let store = store().await;
        let (a, b) = (
            store.clone().for_replica("a-0"),
            store.clone().for_replica("b-0"),
        );
        let now = SystemClock.now();
        b.insert_run(&run("b1", "us", now - chrono::Duration::seconds(10)))
            .await
            .unwrap();
        a.insert_run(&run("a1", "eu", now)).await.unwrap();

        let feed = Feed::new();
        let own = Registry::new();
        assert_eq!(feed.catch_up(&store, "a-0", &own, now).await.unwrap(), 1);
        let remote = feed.registry();
        assert_eq!(latency_count(&remote, "us", now), 1);
        assert_eq!(latency_count(&remote, "eu", now), 0, "own runs are not fed");
        let save = [
            ("check", "align"),
            ("step", "save"),
            ("location", "us"),
            ("target", "staging"),
            ("outcome", "pass"),
        ];
        assert_eq!(
            remote.count(catalog::STEP_LATENCY.name, &save, Window::H1, now),
            1
        );
        let runs = [
            ("check", "align"),
            ("location", "us"),
            ("outcome", "pass"),
            ("attempt", "1"),
        ];
        assert_eq!(remote.counter(catalog::CHECK_RUNS.name, &runs), 1);
        // The lag goes to the own registry (the one `/metrics` exports), the run's metrics do not.
        assert_eq!(lag_count(&own, "us", now), 1);
        assert_eq!(latency_count(&own, "us", now), 0);
        let lag = own
            .quantile(
                catalog::CLUSTER_FEED_LAG.name,
                &[("location", "us")],
                Window::H1,
                1.0,
                now,
            )
            .unwrap();
        assert!(
            (7_900.0..8_100.0).contains(&lag),
            "10 s after start, 2 s run: {lag}"
        );

        b.insert_run(&run("b2", "us", now)).await.unwrap();
        let later = now + chrono::Duration::seconds(5);
        assert_eq!(feed.catch_up(&store, "a-0", &own, later).await.unwrap(), 1);
        assert_eq!(feed.catch_up(&store, "a-0", &own, later).await.unwrap(), 0);
        assert_eq!(latency_count(&feed.registry(), "us", later), 2);
        assert_eq!(lag_count(&own, "us", later), 2);
    }

    #[tokio::test]
    async fn pages_move_past_runs_stored_in_one_instant() {
        let store = store().await;
        let b = store.clone().for_replica("b-0");
        let now = SystemClock.now();
        // Ended before `now` (a run is recorded at its end).
        let started = now - chrono::Duration::minutes(1);
        // One insert: SQLite stamps every row with the same `stored_us`.
        let batch: Vec<RunResult> = (0..5)
            .map(|i| run(&format!("b{i}"), "us", started))
            .collect();
        b.insert_runs(&batch).await.unwrap();
        b.insert_run(&run("b5", "us", started)).await.unwrap();
        let feed = Feed {
            page: 2,
            ..Feed::new()
        };
        let own = Registry::new();
        assert_eq!(feed.catch_up(&store, "a-0", &own, now).await.unwrap(), 6);
        assert_eq!(latency_count(&feed.registry(), "us", now), 6);
        assert_eq!(feed.catch_up(&store, "a-0", &own, now).await.unwrap(), 0);
    }

    #[tokio::test]
    async fn reset_replays_the_last_day_into_a_fresh_registry_without_lag() {
        let store = store().await;
        let b = store.clone().for_replica("b-0");
        let now = SystemClock.now();
        b.insert_runs(&[
            run("old", "us", now - chrono::Duration::hours(25)),
            run("recent", "us", now - chrono::Duration::hours(2)),
            run("new", "us", now - chrono::Duration::minutes(1)),
        ])
        .await
        .unwrap();
        let feed = Feed::new();
        let own = Registry::new();
        let kept = feed.registry();
        kept.record(
            catalog::CHECK_LATENCY.name,
            &[
                ("check", "gone"),
                ("location", "us"),
                ("target", "staging"),
                ("outcome", "pass"),
            ],
            1.0,
            now,
        )
        .unwrap();

        feed.reset(&store, "a-0", now).await;
        let remote = feed.registry();
        let labels = [
            ("check", "align"),
            ("location", "us"),
            ("target", "staging"),
            ("outcome", "pass"),
        ];
        let day = |r: &Registry| r.count(catalog::CHECK_LATENCY.name, &labels, Window::D30, now);
        assert_eq!(day(&remote), 2, "the run older than a day is not replayed");
        assert!(
            remote
                .snapshot(now)
                .find(
                    catalog::CHECK_LATENCY.name,
                    &[
                        ("check", "gone"),
                        ("location", "us"),
                        ("target", "staging"),
                        ("outcome", "pass"),
                    ]
                )
                .is_none(),
            "the previous registry is dropped"
        );
        assert_eq!(lag_count(&own, "us", now), 0);
        // Reading on after the replay records nothing twice.
        assert_eq!(feed.catch_up(&store, "a-0", &own, now).await.unwrap(), 0);
        assert_eq!(day(&feed.registry()), 2);
        feed.maintain(now + chrono::Duration::minutes(1));
    }
}
