//! When each check runs. Runs are anchored to *intended* start times (`offset + k * interval`),
//! a check never overlaps itself, and a run that overruns its interval makes the skipped slots
//! visible (counted and accounted for in the latency histograms) instead of silently dropping
//! them: that silence is coordinated omission, which makes slow periods look fast.
//!
//! Time comes from `tokio::time` (paused in tests, so they are exact) and the injected wall
//! clock, read once at start to stamp intended start times.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use rand::{Rng, SeedableRng};
use tokio::sync::watch;
use tokio::time::Instant;
use tracing::Instrument;

use crate::checks::Schedule;
use crate::clock::Clock;
use crate::outcome::Outcome;
use crate::run::{CheckKind, RunResult};

/// One scheduled check.
#[derive(Debug, Clone)]
pub struct CheckSpec {
    pub name: String,
    pub kind: CheckKind,
    pub schedule: Schedule,
}

/// What one attempt is asked to do.
#[derive(Debug, Clone)]
pub struct Attempt {
    pub attempt: u32,
    pub scheduled_at: DateTime<Utc>,
    pub timeout: Duration,
    /// Whether a failure of this attempt is retested (`retry_on_failure` has attempts left):
    /// an executor may keep what the retest needs (a browser session) instead of queueing
    /// for it again.
    pub retest_follows: bool,
}

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Runs checks (the daemon dispatches to the browser, HTTP, SQL... runners).
pub trait Executor: Send + Sync + 'static {
    fn execute<'a>(&'a self, check: &'a CheckSpec, attempt: Attempt) -> BoxFuture<'a, RunResult>;
}

/// Where results and scheduling facts go (store + metrics + exporters in the daemon).
pub trait Recorder: Send + Sync + 'static {
    fn record_run(&self, run: &RunResult);
    /// How late a slot started (the scheduler's own health).
    fn record_lateness(&self, check: &CheckSpec, lateness: Duration);
    /// `missed` slots passed while the run of `slot_latency` was still going.
    fn record_overrun(&self, check: &CheckSpec, missed: u64, run: &RunResult);
    /// `missed` slots of `check` that no replica ran (found when this one took it over).
    fn record_missed(&self, check: &CheckSpec, missed: u64);
}

/// What a [`Gate`] answers for one slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Admission {
    /// This replica runs the slot.
    pub run: bool,
    /// Earlier slots of the check nobody ran (a takeover's gap), to be counted.
    pub missed: u64,
}

impl Admission {
    pub fn run(missed: u64) -> Admission {
        Admission { run: true, missed }
    }

    pub fn skip() -> Admission {
        Admission {
            run: false,
            missed: 0,
        }
    }
}

/// Decides, slot by slot, whether this replica runs a check (work sharing between the
/// replicas of a location, see `cluster::share`).
pub trait Gate: Send + Sync + 'static {
    fn admit<'a>(
        &'a self,
        check: &'a CheckSpec,
        scheduled_at: DateTime<Utc>,
    ) -> BoxFuture<'a, Admission>;
}

/// Draws each check's start offset once, in [0, max_offset).
pub fn draw_offsets(checks: &[CheckSpec], seed: Option<u64>) -> Vec<Duration> {
    let mut rng = match seed {
        Some(s) => rand::rngs::StdRng::seed_from_u64(s),
        None => rand::rngs::StdRng::from_os_rng(),
    };
    checks
        .iter()
        .map(|c| {
            let max = crate::config::duration::millis_u64(c.schedule.max_offset);
            if max == 0 {
                Duration::ZERO
            } else {
                Duration::from_millis(rng.random_range(0..max))
            }
        })
        .collect()
}

pub struct Scheduler {
    tasks: tokio::task::JoinSet<()>,
    stop: watch::Sender<bool>,
}

impl Scheduler {
    /// Starts one task per check. `offsets[i]` is check i's start offset (see `draw_offsets`).
    pub fn start(
        checks: Vec<CheckSpec>,
        offsets: Vec<Duration>,
        exec: Arc<dyn Executor>,
        rec: Arc<dyn Recorder>,
        clock: Arc<dyn Clock>,
    ) -> Scheduler {
        let unbounded = Arc::new(InFlight::new(tokio::sync::Semaphore::MAX_PERMITS));
        Scheduler::start_with(checks, offsets, exec, rec, clock, None, unbounded)
    }

    /// [`Scheduler::start`], optionally with a `gate` asked before each slot (work sharing),
    /// and with at most `in_flight`'s places of attempts running at once.
    /// With a gate, `offsets` are phases on the Unix-epoch grid: check i's intended starts are
    /// `offsets[i] + k * interval` since the epoch, the same on every replica.
    pub fn start_with(
        checks: Vec<CheckSpec>,
        offsets: Vec<Duration>,
        exec: Arc<dyn Executor>,
        rec: Arc<dyn Recorder>,
        clock: Arc<dyn Clock>,
        gate: Option<Arc<dyn Gate>>,
        in_flight: Arc<InFlight>,
    ) -> Scheduler {
        let (stop, stopped) = watch::channel(false);
        let anchor = anchor(clock.as_ref());
        let epoch_ms = anchor.1.timestamp_millis().max(0) as u64;
        let on_grid = gate.is_some();
        let loops = Arc::new(Loops {
            exec,
            rec,
            gate,
            in_flight,
            anchor,
        });
        let mut tasks = tokio::task::JoinSet::new();
        for (check, offset) in checks.into_iter().zip(offsets) {
            let offset = if on_grid {
                grid_delay(epoch_ms, offset, check.schedule.interval)
            } else {
                offset
            };
            let span =
                tracing::info_span!("check", check = %check.name, kind = check.kind.as_str());
            tasks.spawn(check_loop(check, offset, loops.clone(), stopped.clone()).instrument(span));
        }
        Scheduler { tasks, stop }
    }

    /// Stops scheduling; in-flight runs are cancelled and recorded as cancelled.
    pub async fn stop(mut self) {
        let _ = self.stop.send(true);
        while self.tasks.join_next().await.is_some() {}
    }
}

/// The monotonic instant and wall time everything is measured from, the wall time on a whole
/// millisecond (so intended starts are whole milliseconds, alike on every replica).
fn anchor(clock: &dyn Clock) -> (Instant, DateTime<Utc>) {
    use chrono::SubsecRound;
    let now = Instant::now();
    let wall = clock.now();
    let whole = wall.trunc_subsecs(3);
    let sub = (wall - whole).to_std().unwrap_or_default();
    match now.checked_sub(sub) {
        Some(i) => (i, whole),
        None => (now, wall),
    }
}

/// How long from `now_ms` (since the epoch) until the next start on the grid
/// `phase + k * interval`.
fn grid_delay(now_ms: u64, phase: Duration, interval: Duration) -> Duration {
    let interval = crate::config::duration::millis_u64(interval).max(1);
    let phase = crate::config::duration::millis_u64(phase) % interval;
    Duration::from_millis((phase + interval - now_ms % interval) % interval)
}

/// How often a check that keeps overrunning may say so in the log.
const OVERRUN_WARN_EVERY: Duration = Duration::from_secs(60);

/// Throttles a log line that could repeat every slot: the first note is logged at once, later
/// ones at most every `every`, carrying the count noted since the last line.
///
/// Why: an overloaded replica (or one whose store is slow) overruns every slot of every check;
/// a line per slot was tens of thousands of lines a minute, and writing them cost the CPU the
/// runs lacked. Every skipped slot is still counted in `synmon_check_overruns_total`. The
/// claims writer throttles its store-outage warning with it too.
#[derive(Debug)]
pub(crate) struct OverrunLog {
    every: Duration,
    last: Option<Instant>,
    pending: u64,
}

impl Default for OverrunLog {
    fn default() -> Self {
        OverrunLog {
            every: OVERRUN_WARN_EVERY,
            last: None,
            pending: 0,
        }
    }
}

impl OverrunLog {
    /// Notes `missed` at `now`; the count to log, if a line is due.
    pub(crate) fn note(&mut self, now: Instant, missed: u64) -> Option<u64> {
        self.pending += missed;
        let due = self
            .last
            .is_none_or(|last| now.saturating_duration_since(last) >= self.every);
        if !due {
            return None;
        }
        self.last = Some(now);
        Some(std::mem::take(&mut self.pending))
    }
}

/// At most `max` attempts of a scheduler's probes (every kind but journeys, which the browser
/// session pool bounds) run at once (`checks.max_in_flight`); an attempt due while every place
/// is taken waits for one, first come first served.
///
/// Why: a replica that stalls for a second or two (a paused VM, a noisy neighbour, a debugger)
/// wakes up with every check's slot due at once. With 1,000 HTTP checks at 1 s, a 2 s pause
/// put ~1,000 probes in flight together and the daemon's RSS grew by 17-23 MiB, which glibc
/// kept; with 256 places, by 10 MiB (BENCHMARKS.md, "Peak RSS, session 14"). In ordinary
/// operation a handful are in flight and the cap never delays anything. The wait is not hidden:
/// a held-back first attempt records it as lateness (`synmon_schedule_lateness_seconds`), and a
/// line says so, at most once a minute.
pub struct InFlight {
    permits: tokio::sync::Semaphore,
    max: usize,
    waits: std::sync::Mutex<OverrunLog>,
}

impl InFlight {
    /// `max` places (at least one).
    pub fn new(max: usize) -> InFlight {
        let max = max.max(1);
        InFlight {
            permits: tokio::sync::Semaphore::new(max),
            max,
            waits: std::sync::Mutex::new(OverrunLog::default()),
        }
    }

    /// A place for one attempt, held until the permit is dropped.
    async fn enter(&self) -> tokio::sync::SemaphorePermit<'_> {
        if let Ok(p) = self.permits.try_acquire() {
            return p;
        }
        let waited = self
            .waits
            .lock()
            .expect("in-flight log lock")
            .note(Instant::now(), 1);
        if let Some(waited) = waited {
            tracing::warn!(
                waited,
                max_in_flight = self.max,
                "checks.max_in_flight reached: runs wait for a free place, and the wait counts as their lateness (logged at most once a minute)"
            );
        }
        self.permits
            .acquire()
            .await
            .expect("the in-flight semaphore is never closed")
    }
}

fn wall(anchor: (Instant, DateTime<Utc>), at: Instant) -> DateTime<Utc> {
    let since = at.saturating_duration_since(anchor.0);
    anchor.1 + chrono::Duration::from_std(since).unwrap_or_default()
}

/// What every check's loop of one scheduler shares.
struct Loops {
    exec: Arc<dyn Executor>,
    rec: Arc<dyn Recorder>,
    gate: Option<Arc<dyn Gate>>,
    in_flight: Arc<InFlight>,
    anchor: (Instant, DateTime<Utc>),
}

async fn check_loop(
    check: CheckSpec,
    offset: Duration,
    loops: Arc<Loops>,
    mut stopped: watch::Receiver<bool>,
) {
    let Loops {
        exec,
        rec,
        gate,
        in_flight,
        anchor,
    } = &*loops;
    let anchor = *anchor;
    let interval = check.schedule.interval;
    let mut slot = anchor.0 + offset;
    let mut overrun_log = OverrunLog::default();
    loop {
        tokio::select! {
            _ = tokio::time::sleep_until(slot) => {}
            _ = stopped.changed() => return,
        }
        let scheduled_at = wall(anchor, slot);
        if let Some(g) = &gate {
            let admission = tokio::select! {
                a = g.admit(&check, scheduled_at) => a,
                _ = stopped.changed() => return,
            };
            if admission.missed > 0 {
                rec.record_missed(&check, admission.missed);
            }
            if !admission.run {
                slot += interval;
                continue;
            }
        }
        let mut attempt = 1u32;
        let retries = check.schedule.retry.map(|r| r.count).unwrap_or(0);
        let last = loop {
            // A place per attempt, not per slot: a retest's delay holds none. Journeys take
            // none: the browser session pool (`webdriver.sessions`) bounds them, and a journey
            // queued for a session must not hold a place the probes need.
            let place = if check.kind == CheckKind::Journey {
                None
            } else {
                tokio::select! {
                    p = in_flight.enter() => Some(p),
                    _ = stopped.changed() => return,
                }
            };
            if attempt == 1 {
                // After the gate and the wait for a place: the claim's round trip and the
                // wait are lateness too.
                rec.record_lateness(&check, Instant::now().saturating_duration_since(slot));
            }
            let a = Attempt {
                attempt,
                scheduled_at,
                timeout: check.schedule.timeout,
                retest_follows: attempt <= retries,
            };
            let started = Instant::now();
            let run = tokio::select! {
                r = tokio::time::timeout(check.schedule.timeout, exec.execute(&check, a.clone())) => match r {
                    Ok(mut run) => {
                        run.attempt = attempt;
                        run.scheduled_at = scheduled_at;
                        run
                    }
                    Err(_) => timed_out(&check, &a, wall(anchor, started), started.elapsed()),
                },
                _ = stopped.changed() => {
                    let mut run = timed_out(&check, &a, wall(anchor, started), started.elapsed());
                    run.cancelled = true;
                    run.error = Some("cancelled by shutdown".into());
                    rec.record_run(&run);
                    return;
                }
            };
            rec.record_run(&run);
            drop(place);
            if run.outcome == Outcome::Pass || attempt > retries {
                break run;
            }
            attempt += 1;
            let delay = check.schedule.retry.map(|r| r.delay).unwrap_or_default();
            tracing::info!(
                attempt,
                delay_ms = crate::config::duration::millis_u64(delay),
                "retesting after a failure"
            );
            tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                _ = stopped.changed() => return,
            }
        };
        // The next slot is the first intended start still ahead; any passed while this slot
        // ran are overruns, made visible rather than silently skipped.
        let now = Instant::now();
        let mut next = slot + interval;
        let mut missed = 0u64;
        while next < now {
            missed += 1;
            next += interval;
        }
        if missed > 0 {
            if let Some(missed) = overrun_log.note(now, missed) {
                tracing::warn!(
                    missed,
                    "run overran its interval; slots skipped (logged at most once a minute, all counted in synmon_check_overruns_total)"
                );
            }
            rec.record_overrun(&check, missed, &last);
        }
        slot = next;
    }
}

/// The result of a run that did not finish within the check's timeout: the target did not
/// deliver in time, so it is a failure.
fn timed_out(
    check: &CheckSpec,
    a: &Attempt,
    started_at: DateTime<Utc>,
    took: Duration,
) -> RunResult {
    let mut run = RunResult::begin(&check.name, check.kind, "", "", started_at);
    run.attempt = a.attempt;
    run.scheduled_at = a.scheduled_at;
    run.outcome = Outcome::Fail;
    run.total_ms = took.as_secs_f64() * 1000.0;
    run.error = Some(format!(
        "the check did not finish within its timeout of {} ms",
        a.timeout.as_millis()
    ));
    run
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::Retry;
    use crate::clock::ManualClock;
    use std::collections::HashMap;
    use std::sync::Mutex;

    /// Runs take the listed durations in turn and pass or fail as listed.
    struct FakeExec {
        plan: Mutex<HashMap<String, Vec<(u64, Outcome)>>>,
        starts: Mutex<Vec<(String, u32, u64)>>,
        /// `(attempt, retest_follows)` of every attempt.
        follows: Mutex<Vec<(u32, bool)>>,
        t0: Instant,
    }

    impl Executor for FakeExec {
        fn execute<'a>(&'a self, check: &'a CheckSpec, a: Attempt) -> BoxFuture<'a, RunResult> {
            Box::pin(async move {
                let (ms, outcome) = {
                    let mut plan = self.plan.lock().unwrap();
                    let p = plan.get_mut(&check.name).unwrap();
                    if p.len() > 1 { p.remove(0) } else { p[0] }
                };
                let at = Instant::now().duration_since(self.t0).as_millis() as u64;
                self.starts
                    .lock()
                    .unwrap()
                    .push((check.name.clone(), a.attempt, at));
                self.follows
                    .lock()
                    .unwrap()
                    .push((a.attempt, a.retest_follows));
                tokio::time::sleep(Duration::from_millis(ms)).await;
                let mut r = RunResult::begin(&check.name, check.kind, "t", "l", a.scheduled_at);
                r.outcome = outcome;
                r.total_ms = ms as f64;
                r
            })
        }
    }

    #[derive(Default)]
    struct Rec {
        runs: Mutex<Vec<RunResult>>,
        overruns: Mutex<Vec<(String, u64)>>,
        missed: Mutex<Vec<(String, u64)>>,
        late: Mutex<Vec<Duration>>,
    }

    impl Recorder for Rec {
        fn record_run(&self, run: &RunResult) {
            self.runs.lock().unwrap().push(run.clone());
        }
        fn record_lateness(&self, _: &CheckSpec, l: Duration) {
            self.late.lock().unwrap().push(l);
        }
        fn record_overrun(&self, c: &CheckSpec, missed: u64, _: &RunResult) {
            self.overruns.lock().unwrap().push((c.name.clone(), missed));
        }
        fn record_missed(&self, c: &CheckSpec, missed: u64) {
            self.missed.lock().unwrap().push((c.name.clone(), missed));
        }
    }

    fn spec(name: &str, interval_ms: u64, retry: Option<Retry>) -> CheckSpec {
        CheckSpec {
            name: name.into(),
            kind: CheckKind::Http,
            schedule: Schedule {
                interval: Duration::from_millis(interval_ms),
                timeout: Duration::from_millis(interval_ms * 3),
                max_offset: Duration::from_millis(interval_ms),
                retry,
            },
        }
    }

    fn start_at() -> DateTime<Utc> {
        "2026-11-26T00:00:00Z".parse().unwrap()
    }

    async fn run_for(
        checks: Vec<CheckSpec>,
        offsets: Vec<u64>,
        plan: Vec<(&str, Vec<(u64, Outcome)>)>,
        for_ms: u64,
    ) -> (Arc<FakeExec>, Arc<Rec>) {
        let unbounded = InFlight::new(tokio::sync::Semaphore::MAX_PERMITS);
        run_limited(checks, offsets, plan, for_ms, unbounded).await
    }

    /// [`run_for`] with at most `in_flight`'s places of attempts at once.
    async fn run_limited(
        checks: Vec<CheckSpec>,
        offsets: Vec<u64>,
        plan: Vec<(&str, Vec<(u64, Outcome)>)>,
        for_ms: u64,
        in_flight: InFlight,
    ) -> (Arc<FakeExec>, Arc<Rec>) {
        let exec = Arc::new(FakeExec {
            plan: Mutex::new(plan.into_iter().map(|(k, v)| (k.to_string(), v)).collect()),
            starts: Mutex::new(Vec::new()),
            follows: Mutex::new(Vec::new()),
            t0: Instant::now(),
        });
        let rec = Arc::new(Rec::default());
        let s = Scheduler::start_with(
            checks,
            offsets.into_iter().map(Duration::from_millis).collect(),
            exec.clone(),
            rec.clone(),
            Arc::new(ManualClock::new(start_at())),
            None,
            Arc::new(in_flight),
        );
        tokio::time::sleep(Duration::from_millis(for_ms)).await;
        s.stop().await;
        (exec, rec)
    }

    #[tokio::test(start_paused = true)]
    async fn runs_start_exactly_at_offset_plus_k_intervals() {
        let (exec, rec) = run_for(
            vec![spec("a", 1000, None), spec("b", 3000, None)],
            vec![250, 1700],
            vec![
                ("a", vec![(100, Outcome::Pass)]),
                ("b", vec![(10, Outcome::Pass)]),
            ],
            7000,
        )
        .await;
        let starts = exec.starts.lock().unwrap().clone();
        let a: Vec<u64> = starts.iter().filter(|s| s.0 == "a").map(|s| s.2).collect();
        let b: Vec<u64> = starts.iter().filter(|s| s.0 == "b").map(|s| s.2).collect();
        assert_eq!(a, vec![250, 1250, 2250, 3250, 4250, 5250, 6250]);
        assert_eq!(b, vec![1700, 4700]);
        let runs = rec.runs.lock().unwrap();
        let first = runs.iter().find(|r| r.check == "b").unwrap();
        assert_eq!(
            first.scheduled_at,
            start_at() + chrono::Duration::milliseconds(1700)
        );
        assert!(rec.late.lock().unwrap().iter().all(|l| l.is_zero()));
        assert!(rec.overruns.lock().unwrap().is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn an_overrun_never_overlaps_and_counts_the_skipped_slots() {
        // Interval 1 s; the second run takes 2.5 s: slots at 2 s and 3 s pass while it runs.
        let (exec, rec) = run_for(
            vec![spec("a", 1000, None)],
            vec![0],
            vec![(
                "a",
                vec![
                    (100, Outcome::Pass),
                    (2500, Outcome::Pass),
                    (100, Outcome::Pass),
                ],
            )],
            5500,
        )
        .await;
        let a: Vec<u64> = exec.starts.lock().unwrap().iter().map(|s| s.2).collect();
        // 0, 1000 (runs to 3500), then the next slot still ahead: 4000, 5000.
        assert_eq!(a, vec![0, 1000, 4000, 5000]);
        assert_eq!(*rec.overruns.lock().unwrap(), vec![("a".to_string(), 2)]);
        let runs = rec.runs.lock().unwrap();
        let scheduled: Vec<i64> = runs
            .iter()
            .filter(|r| !r.cancelled)
            .map(|r| (r.scheduled_at - start_at()).num_milliseconds())
            .collect();
        assert_eq!(scheduled, vec![0, 1000, 4000, 5000]);
    }

    #[tokio::test(start_paused = true)]
    async fn failures_are_retested_and_every_attempt_is_recorded() {
        let retry = Some(Retry {
            count: 2,
            delay: Duration::from_millis(200),
        });
        let (exec, rec) = run_for(
            vec![spec("a", 10_000, retry)],
            vec![0],
            vec![(
                "a",
                vec![
                    (50, Outcome::Fail),
                    (50, Outcome::Fail),
                    (50, Outcome::Pass),
                ],
            )],
            1000,
        )
        .await;
        let starts = exec.starts.lock().unwrap().clone();
        assert_eq!(
            starts,
            vec![
                ("a".into(), 1, 0),
                ("a".into(), 2, 250),
                ("a".into(), 3, 500)
            ]
        );
        // The last attempt is told no retest follows it.
        assert_eq!(
            *exec.follows.lock().unwrap(),
            vec![(1, true), (2, true), (3, false)]
        );
        let runs = rec.runs.lock().unwrap();
        let attempts: Vec<(u32, Outcome)> = runs.iter().map(|r| (r.attempt, r.outcome)).collect();
        assert_eq!(
            attempts,
            vec![(1, Outcome::Fail), (2, Outcome::Fail), (3, Outcome::Pass)]
        );
        assert!(runs.iter().all(|r| r.scheduled_at == start_at()));
    }

    #[tokio::test(start_paused = true)]
    async fn probes_past_max_in_flight_wait_in_turn_and_the_wait_is_their_lateness() {
        let retry = Some(Retry {
            count: 1,
            delay: Duration::from_millis(50),
        });
        // One place; `a` (due at 0) fails once, `b` and `c` are due at 10 and 20 ms, while `a`
        // runs; every attempt takes 100 ms. Journey `j`, due at 30 ms, needs no place.
        let mut journey = spec("j", 10_000, None);
        journey.kind = CheckKind::Journey;
        let (exec, rec) = run_limited(
            vec![
                spec("a", 10_000, retry),
                spec("b", 10_000, None),
                spec("c", 10_000, None),
                journey,
            ],
            vec![0, 10, 20, 30],
            vec![
                ("a", vec![(100, Outcome::Fail), (100, Outcome::Pass)]),
                ("b", vec![(100, Outcome::Pass)]),
                ("c", vec![(100, Outcome::Pass)]),
                ("j", vec![(100, Outcome::Pass)]),
            ],
            1000,
            InFlight::new(1),
        )
        .await;
        // One probe at a time, in the order they became due; `a`'s retest, asked for at 150 ms,
        // queues behind `c`, which took the place while `a` waited out its delay.
        assert_eq!(
            *exec.starts.lock().unwrap(),
            vec![
                ("a".into(), 1, 0),
                ("j".into(), 1, 30),
                ("b".into(), 1, 100),
                ("c".into(), 1, 200),
                ("a".into(), 2, 300)
            ]
        );
        // Each slot's wait for a place is its lateness (a retest has none of its own).
        assert_eq!(
            *rec.late.lock().unwrap(),
            vec![
                Duration::ZERO,
                Duration::ZERO,
                Duration::from_millis(90),
                Duration::from_millis(180)
            ]
        );
        assert_eq!(rec.runs.lock().unwrap().len(), 5);
    }

    #[tokio::test(start_paused = true)]
    async fn a_run_past_its_timeout_fails_and_shutdown_cancels_in_flight_runs() {
        let mut c = spec("a", 1000, None);
        c.schedule.timeout = Duration::from_millis(300);
        let (_, rec) = run_for(
            vec![c],
            vec![0],
            vec![("a", vec![(400, Outcome::Pass), (5000, Outcome::Pass)])],
            1100,
        )
        .await;
        let runs = rec.runs.lock().unwrap();
        assert_eq!(runs.len(), 2);
        assert_eq!(runs[0].outcome, Outcome::Fail);
        assert!(
            runs[0]
                .error
                .as_deref()
                .unwrap()
                .contains("timeout of 300 ms")
        );
        assert!(!runs[0].cancelled);
        assert!(
            runs[1].cancelled,
            "the run in flight at shutdown is cancelled"
        );
    }

    #[test]
    fn overrun_warnings_are_throttled_to_one_a_minute_and_carry_the_skipped_count() {
        let t0 = Instant::now();
        let mut log = OverrunLog::default();
        assert_eq!(
            log.note(t0, 2),
            Some(2),
            "the first overrun is logged at once"
        );
        assert_eq!(log.note(t0 + Duration::from_secs(1), 1), None);
        assert_eq!(log.note(t0 + Duration::from_secs(59), 3), None);
        assert_eq!(
            log.note(t0 + Duration::from_secs(60), 1),
            Some(5),
            "a minute on, the line counts every slot skipped since the last one"
        );
        assert_eq!(log.note(t0 + Duration::from_secs(61), 1), None);
        assert_eq!(log.note(t0 + Duration::from_secs(200), 4), Some(5));
    }

    #[test]
    fn offsets_are_drawn_below_the_cap_and_reproducible_with_a_seed() {
        let checks: Vec<CheckSpec> = (0..50)
            .map(|i| spec(&format!("c{i}"), 30_000, None))
            .collect();
        let a = draw_offsets(&checks, Some(7));
        assert_eq!(a, draw_offsets(&checks, Some(7)));
        assert!(a.iter().all(|o| *o < Duration::from_secs(30)));
        assert!(a.iter().any(|o| *o > Duration::from_secs(1)), "spread out");
    }
}
