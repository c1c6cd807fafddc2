//! The simulation: a scenario's runs fed through the daemon's own pipeline on a manual clock.
//!
//! What it owns: when each simulated run starts and ends (every check and location on its
//! interval, retests after `retry_on_failure.delay`, overruns), what it yields (from the
//! scenario's incidents and noise, with a seeded generator), and receivers that only remember
//! what they were told (PagerDuty incidents by `dedup_key`, Slack messages by alert group).
//!
//! What it never does: decide anything the daemon decides. Runs are recorded with the
//! registry's `record_run_marked` (the recorder's call), rules are evaluated by
//! `daemon::evaluate_rules` over a `CounterHistory` sampled at each evaluation, firing alerts
//! come from `notify::incoming::firing_alerts`, routing, grouping, muting and dedup are the real
//! `notify::dispatch::Dispatcher` with the real inhibitor, and the PagerDuty event is the real
//! receiver's `pagerduty::event`. Time jumps from one event to the next: nothing sleeps.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::checks::{CheckDef, Schedule};
use crate::metrics::registry::Registry;
use crate::mute::{Inhibitor, Maintenance};
use crate::notify::config::ReceiverConfig;
use crate::notify::dispatch::Dispatcher;
use crate::notify::message::{Notification, Status};
use crate::outcome::Outcome;
use crate::rules::registry_source::CounterHistory;
use crate::run::{CheckKind, RunResult};
use crate::settings::Config;

use super::ReplayError;
use super::scenario::{Effect, Kind, Scenario};

/// How often the daemon's housekeeping freezes the registry's live minutes.
const MAINTAIN_EVERY: Duration = Duration::from_secs(60);

/// One simulated check, from one location.
#[derive(Debug, Clone)]
struct Stream {
    check: String,
    kind: CheckKind,
    location: String,
    schedule: Schedule,
    latency_ms: f64,
    /// An HTTP check's own latency metric (`metric: swis_preview_p95_ms`), fed on a pass.
    metric: Option<String>,
}

/// A run whose result is known, waiting for its end time to be recorded.
#[derive(Debug)]
struct Pending {
    stream: usize,
    run: RunResult,
}

/// A PagerDuty incident as PagerDuty keeps it: opened by a trigger, updated by the next
/// triggers with the same `dedup_key`, closed by a resolve.
#[derive(Debug, Clone)]
pub struct PdIncident {
    pub receiver: String,
    pub dedup_key: String,
    /// Every alert name its triggers carried.
    pub alertnames: BTreeSet<String>,
    /// Every check label its triggers carried.
    pub checks: BTreeSet<String>,
    pub opened_at: DateTime<Utc>,
    pub closed_at: Option<DateTime<Utc>>,
    pub triggers: u32,
}

/// A top-level Slack message (one per alert group and episode, as the Slack receiver posts).
#[derive(Debug, Clone)]
pub struct SlackPost {
    pub receiver: String,
    pub group_key: String,
    pub alertnames: BTreeSet<String>,
    pub opened_at: DateTime<Utc>,
    /// When the message was edited to show the group resolved.
    pub resolved_at: Option<DateTime<Utc>>,
    pub updates: u32,
}

/// What the receivers were told over the whole scenario.
#[derive(Debug, Default)]
pub struct Delivered {
    pub pagerduty: Vec<PdIncident>,
    pub slack: Vec<SlackPost>,
    /// Notifications to console receivers (and webhooks), counted.
    pub console: u32,
    pub webhook: u32,
    pub runs: u64,
    pub evaluations: u64,
}

/// Receivers that remember.
#[derive(Debug, Default)]
struct Receivers {
    out: Delivered,
    /// The open incident per (receiver, dedup key): index into `out.pagerduty`.
    open: HashMap<(String, String), usize>,
    /// The latest message per (receiver, group key): index into `out.slack`.
    posts: HashMap<(String, String), usize>,
}

fn alertnames(n: &Notification) -> BTreeSet<String> {
    n.alerts
        .iter()
        .filter_map(|a| a.labels.get("alertname").cloned())
        .collect()
}

impl Receivers {
    /// Delivers `n` by the kind of its receiver in the config. A receiver the config lacks is
    /// the console (the dispatcher's fallback name).
    fn deliver(&mut self, cfg: &Config, n: &Notification, now: DateTime<Utc>) {
        match cfg.notify.receiver(&n.receiver) {
            Some(ReceiverConfig::PagerDuty(c)) => self.pagerduty(c, n, now),
            Some(ReceiverConfig::Slack(_)) => self.slack(n, now),
            Some(ReceiverConfig::Webhook(_)) => self.out.webhook += 1,
            Some(ReceiverConfig::Console(_)) | None => self.out.console += 1,
        }
    }

    fn pagerduty(
        &mut self,
        c: &crate::notify::pagerduty::PagerDutyConfig,
        n: &Notification,
        now: DateTime<Utc>,
    ) {
        let ev = crate::notify::pagerduty::event(n, &c.routing_key, c.source.as_deref());
        let key = (n.receiver.clone(), ev.dedup_key.clone());
        match ev.event_action.as_str() {
            "trigger" => {
                let checks: BTreeSet<String> = n
                    .firing()
                    .filter_map(|a| a.labels.get("check").cloned())
                    .collect();
                if let Some(&i) = self.open.get(&key) {
                    let inc = &mut self.out.pagerduty[i];
                    inc.triggers += 1;
                    inc.alertnames.extend(alertnames(n));
                    inc.checks.extend(checks);
                } else {
                    self.open.insert(key, self.out.pagerduty.len());
                    self.out.pagerduty.push(PdIncident {
                        receiver: n.receiver.clone(),
                        dedup_key: ev.dedup_key,
                        alertnames: alertnames(n),
                        checks,
                        opened_at: now,
                        closed_at: None,
                        triggers: 1,
                    });
                }
            }
            // A resolve closes the open incident; PagerDuty ignores one with nothing open.
            _ => {
                if let Some(i) = self.open.remove(&key) {
                    self.out.pagerduty[i].closed_at = Some(now);
                }
            }
        }
    }

    /// The Slack receiver's choice ([`crate::notify::slack::edits_message`]): a group whose
    /// message still shows it firing is edited (and so is one being resolved); a firing group
    /// with no message, or whose message shows an earlier resolved episode, gets a new post; a
    /// resolve with no message is posted.
    fn slack(&mut self, n: &Notification, now: DateTime<Utc>) {
        let key = (n.receiver.clone(), n.group_key.clone());
        let resolved = n.status == Status::Resolved;
        let editable = self.posts.get(&key).copied().filter(|&i| {
            crate::notify::slack::edits_message(self.out.slack[i].resolved_at.is_some(), resolved)
        });
        match editable {
            Some(i) => {
                let p = &mut self.out.slack[i];
                p.updates += 1;
                p.alertnames.extend(alertnames(n));
                if resolved && p.resolved_at.is_none() {
                    p.resolved_at = Some(now);
                }
            }
            None => {
                self.posts.insert(key, self.out.slack.len());
                self.out.slack.push(SlackPost {
                    receiver: n.receiver.clone(),
                    group_key: n.group_key.clone(),
                    alertnames: alertnames(n),
                    opened_at: now,
                    resolved_at: resolved.then_some(now),
                    updates: 0,
                });
            }
        }
    }
}

fn chrono(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

/// The streams of the scenario: its checks (or every check of the config) from each location.
fn streams(cfg: &Config, sc: &Scenario) -> Vec<Stream> {
    let defs = cfg.checks.defs();
    let locations: Vec<String> = if sc.locations.is_empty() {
        vec![cfg.location.clone()]
    } else {
        sc.locations.clone()
    };
    let wanted: Vec<(String, f64)> = if sc.checks.is_empty() {
        defs.iter()
            .map(|d| (d.name().to_string(), super::scenario::DEFAULT_LATENCY_MS))
            .collect()
    } else {
        sc.checks
            .iter()
            .map(|c| (c.name.clone(), c.latency_ms))
            .collect()
    };
    let mut out = Vec::new();
    for location in &locations {
        for (name, latency_ms) in &wanted {
            let Some(d) = defs.iter().find(|d| d.name() == name) else {
                continue;
            };
            out.push(Stream {
                check: name.clone(),
                kind: d.kind(),
                location: location.clone(),
                schedule: d.schedule().clone(),
                latency_ms: *latency_ms,
                metric: match d {
                    CheckDef::Http(h) => h.metric.clone(),
                    _ => None,
                },
            });
        }
    }
    out
}

/// The simulation's state between events.
struct Sim<'a> {
    cfg: &'a Config,
    sc: &'a Scenario,
    streams: Vec<Stream>,
    rng: StdRng,
    registry: Registry,
    counters: CounterHistory,
    state: crate::rules::State,
    dispatcher: Dispatcher,
    maintenance: Arc<Maintenance>,
    /// The latest run per check (the evidence notifications carry).
    last: HashMap<String, RunResult>,
    external_url: String,
    receivers: Receivers,
    /// Runs by end time (ties in the order they were made).
    heap: BinaryHeap<Reverse<(DateTime<Utc>, u64)>>,
    pending: HashMap<u64, Pending>,
    seq: u64,
    end: DateTime<Utc>,
}

impl Sim<'_> {
    /// Decides the run of `stream` starting at `started`, and queues it for its end time.
    fn start_run(
        &mut self,
        stream: usize,
        attempt: u32,
        scheduled_at: DateTime<Utc>,
        started: DateTime<Utc>,
    ) {
        if started >= self.end {
            return;
        }
        let s = &self.streams[stream];
        let jitter = self.sc.noise.latency_jitter;
        let wobble = |rng: &mut StdRng| {
            if jitter > 0.0 {
                1.0 + jitter * rng.random_range(-1.0..=1.0)
            } else {
                1.0
            }
        };
        let mut latency = s.latency_ms * wobble(&mut self.rng);
        let mut outcome = if self.sc.noise.fail_rate > 0.0
            && self.rng.random::<f64>() < self.sc.noise.fail_rate
        {
            Outcome::Fail
        } else {
            Outcome::Pass
        };
        let mut cause = None;
        for inc in &self.sc.incidents {
            let begins = inc.starts(self.sc.start);
            if started < begins {
                continue;
            }
            let since = (started - begins).to_std().unwrap_or_default();
            let Some(effect) = inc.effect(&s.check, &s.location, since) else {
                continue;
            };
            let worse = |a: Outcome, b: Outcome| match (a, b) {
                (Outcome::Error, _) | (_, Outcome::Error) => Outcome::Error,
                (Outcome::Fail, _) | (_, Outcome::Fail) => Outcome::Fail,
                _ => Outcome::Pass,
            };
            match effect {
                Effect::Outcome(o) => outcome = worse(outcome, o),
                Effect::Latency(ms) => latency = ms * wobble(&mut self.rng),
                Effect::FailRate(r) => {
                    if self.rng.random::<f64>() < r {
                        outcome = worse(outcome, Outcome::Fail);
                    }
                }
            }
            cause.get_or_insert_with(|| inc.name.clone());
        }
        let s = &self.streams[stream];
        let timeout_ms = s.schedule.timeout.as_secs_f64() * 1000.0;
        let mut error = match (outcome, &cause) {
            (Outcome::Pass, _) => None,
            (_, Some(c)) => Some(format!("replayed incident `{c}`")),
            (_, None) => Some("replayed healthy noise".to_string()),
        };
        if latency >= timeout_ms {
            // The scheduler's verdict on a run past its timeout.
            latency = timeout_ms;
            outcome = Outcome::Fail;
            error = Some(format!(
                "the check did not finish within its timeout of {} ms",
                s.schedule.timeout.as_millis()
            ));
        }
        let target = &self.cfg.default_target;
        let mut run = RunResult::begin(&s.check, s.kind, target, &s.location, started);
        run.run_id = format!("replay-{}", self.seq);
        run.attempt = attempt;
        run.scheduled_at = scheduled_at;
        run.outcome = outcome;
        run.total_ms = latency;
        run.timed_latency_ms = latency;
        run.error = error;
        let ends = started + chrono::Duration::microseconds((latency * 1000.0) as i64);
        self.seq += 1;
        self.heap.push(Reverse((ends, self.seq)));
        self.pending.insert(self.seq, Pending { stream, run });
    }

    /// Records the run that ends at `now` as the daemon's recorder does, then starts what
    /// follows it: its retest, or the stream's next slot.
    fn finish_run(&mut self, id: u64, now: DateTime<Utc>) -> Result<(), ReplayError> {
        let Some(Pending { stream, run }) = self.pending.remove(&id) else {
            return Ok(());
        };
        let window = self.maintenance.window_for_run(&run);
        self.registry
            .record_run_marked(&run, window.as_deref(), now)
            .map_err(ReplayError::Metrics)?;
        let s = &self.streams[stream];
        if let Some(m) = &s.metric
            && run.outcome == Outcome::Pass
        {
            self.registry
                .record(m, &[("location", &s.location)], run.slo_latency_ms(), now)
                .map_err(ReplayError::Metrics)?;
        }
        self.receivers.out.runs += 1;
        let retries = s.schedule.retry.map(|r| r.count).unwrap_or(0);
        if run.outcome != Outcome::Pass && run.attempt <= retries {
            let delay = s.schedule.retry.map(|r| r.delay).unwrap_or_default();
            let (attempt, scheduled) = (run.attempt + 1, run.scheduled_at);
            self.last.insert(run.check.clone(), run);
            self.start_run(stream, attempt, scheduled, now + chrono(delay));
            return Ok(());
        }
        // The next slot is the first intended start still ahead; the ones passed meanwhile are
        // overruns, recorded as the recorder does.
        let interval = chrono(s.schedule.interval);
        let mut next = run.scheduled_at + interval;
        let mut missed = 0u64;
        while next < now {
            missed += 1;
            next += interval;
        }
        if missed > 0 {
            let metrics = crate::metrics::RunMetrics::of(&run);
            let interval_ms = s.schedule.interval.as_secs_f64() * 1000.0;
            let reg = &self.registry;
            metrics
                .try_for_each_overrun_point(missed, interval_ms, |p| reg.record_point(&p, now))
                .map_err(ReplayError::Metrics)?;
        }
        self.last.insert(run.check.clone(), run);
        self.start_run(stream, 1, next, next);
        Ok(())
    }

    /// The scenario's business gauges at `now`: an incident's value while it lasts, else the
    /// healthy value.
    fn set_gauges(&self, now: DateTime<Utc>) -> Result<(), ReplayError> {
        for (metric, healthy) in &self.sc.gauges {
            let mut value = *healthy;
            for inc in &self.sc.incidents {
                if let Kind::Gauge {
                    metric: m,
                    value: v,
                } = &inc.kind
                    && m == metric
                    && inc.starts(self.sc.start) <= now
                    && now < inc.ends(self.sc.start)
                {
                    value = *v;
                }
            }
            self.registry
                .set_gauge(metric, &[], value, now)
                .map_err(ReplayError::Metrics)?;
        }
        Ok(())
    }

    /// One evaluation, as the daemon's evaluator runs it, then the hand-over to the pipeline.
    fn evaluate(&mut self, now: DateTime<Utc>) -> Result<(), ReplayError> {
        self.set_gauges(now)?;
        self.counters.sample(&self.registry, now);
        let state = std::mem::take(&mut self.state);
        let ev = crate::daemon::evaluate_rules(
            &self.cfg.rules,
            &self.registry,
            None,
            &self.counters,
            state,
            now,
            &|| false,
        )
        .map_err(|_| ReplayError::Stopped)?;
        crate::daemon::set_slo_gauges(&self.registry, &ev.slos, now);
        self.state = ev.state;
        self.receivers.out.evaluations += 1;
        let firing = crate::notify::incoming::firing_alerts(
            self.state.alerts.values(),
            &self.cfg.rules,
            &self.last,
            &self.external_url,
            None,
        );
        self.dispatcher.sync(&firing, now);
        self.flush(now);
        Ok(())
    }

    /// Flushes the groups that are due and delivers what they planned; the plan counts as
    /// stored (`committed`), as after the store's write.
    fn flush(&mut self, now: DateTime<Utc>) {
        let flush = self.dispatcher.flush_due(now);
        for p in &flush.planned {
            if let Some(n) = &p.notification {
                self.receivers.deliver(self.cfg, n, now);
            }
        }
        self.dispatcher.committed(&flush);
    }
}

/// Replays `sc` against the rules and routes of `cfg`.
pub fn run(cfg: &Config, sc: &Scenario) -> Result<Delivered, ReplayError> {
    let start = sc.start;
    let end = start + chrono(sc.duration);
    // A replay shows what production would page: every configured receiver counts as enabled,
    // whatever secret this machine has for it.
    let external_url = cfg.public_url(cfg.listen);
    let mut dispatcher = Dispatcher::new(&cfg.notify, &BTreeSet::new(), &external_url);
    // The daemon's mute slot, in its order (`Mute::attach`): inhibition, silences (none in a
    // replay: they live in the store), maintenance windows.
    // The config's inhibit_rules and the rules' own `inhibits:`, as the daemon applies them.
    let inhibit_rules = crate::mute::inhibit_rules(&cfg.mute, &cfg.rules);
    dispatcher.add_muter(Arc::new(Inhibitor::new(inhibit_rules)));
    let maintenance = Arc::new(Maintenance::new(cfg.mute.maintenance_windows.clone()));
    dispatcher.add_muter(maintenance.clone());
    let mut sim = Sim {
        cfg,
        sc,
        streams: streams(cfg, sc),
        rng: StdRng::seed_from_u64(sc.seed),
        registry: Registry::new(),
        counters: CounterHistory::default(),
        state: crate::rules::State::default(),
        dispatcher,
        maintenance,
        last: HashMap::new(),
        external_url,
        receivers: Receivers::default(),
        heap: BinaryHeap::new(),
        pending: HashMap::new(),
        seq: 0,
        end,
    };
    // Each stream's first slot at a start offset drawn once below `max_offset`, as the
    // scheduler spreads checks out.
    for i in 0..sim.streams.len() {
        let max = sim.streams[i].schedule.max_offset.as_millis() as i64;
        let offset = if max > 0 {
            sim.rng.random_range(0..max)
        } else {
            0
        };
        let first = start + chrono::Duration::milliseconds(offset);
        sim.start_run(i, 1, first, first);
    }
    let eval_every = chrono(cfg.rules.interval.max(Duration::from_secs(1)));
    let maintain_every = chrono(MAINTAIN_EVERY);
    // The daemon's evaluation ticker fires at once, then every interval.
    let mut next_eval = start;
    let mut next_maintain = start + maintain_every;
    let mut now = start;
    loop {
        let next_run = sim.heap.peek().map(|Reverse((t, _))| *t);
        let next_flush = sim.dispatcher.next_due().map(|t| t.max(now));
        let at = [next_run, Some(next_eval), Some(next_maintain), next_flush]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or(end);
        if at > end {
            break;
        }
        now = at;
        // At one instant: runs end, then housekeeping, then the evaluation, then flushes.
        if next_run == Some(at) {
            let Some(Reverse((_, id))) = sim.heap.pop() else {
                break;
            };
            sim.finish_run(id, at)?;
        } else if next_maintain == at {
            sim.registry.maintain(at);
            next_maintain += maintain_every;
        } else if next_eval == at {
            sim.evaluate(at)?;
            next_eval += eval_every;
        } else {
            sim.flush(at);
        }
    }
    Ok(sim.receivers.out)
}

/// Which simulated checks an incident touches, by name (for bounds and the table).
pub fn affected_checks(cfg: &Config, sc: &Scenario, checks: &[String]) -> Vec<(String, Schedule)> {
    let defs = cfg.checks.defs();
    let simulated: BTreeMap<String, Schedule> = if sc.checks.is_empty() {
        defs.iter()
            .map(|d| (d.name().to_string(), d.schedule().clone()))
            .collect()
    } else {
        sc.checks
            .iter()
            .filter_map(|c| {
                defs.iter()
                    .find(|d| d.name() == c.name)
                    .map(|d| (c.name.clone(), d.schedule().clone()))
            })
            .collect()
    };
    simulated
        .into_iter()
        .filter(|(n, _)| checks.is_empty() || checks.contains(n))
        .collect()
}
