//! The evaluator side: every evaluation interval, rules and SLOs over the registry and the
//! counter history -> alert state transitions, persisted, then handed to the notifier side
//! (`notifier.rs`).

use std::sync::Arc;
use std::sync::atomic::Ordering;

use crate::metrics::catalog;
use crate::metrics::registry::Registry;
use crate::rules;
use crate::rules::registry_source::{CounterHistory, RegistrySource};
use crate::store::{ALERT_STATE_ID, ALERT_VIEW_ID};
use crate::view::{Shared, SloFigures};

const RECENT_TRANSITIONS: usize = 500;

/// How long a notification waits for the runs that caused it to be stored.
const RUNS_STORED_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// What the CPU-bound part of an evaluation computes (see [`evaluate_rules`]).
#[derive(Debug)]
pub struct Evaluation {
    pub transitions: Vec<rules::eval::Transition>,
    /// The alert state after this evaluation.
    pub state: rules::eval::State,
    pub slos: Vec<rules::SloStatus>,
}

/// The CPU-bound part of one evaluation: every rule, then every SLO's status, over the registry
/// (plus, on a cluster's leader, the other replicas' runs in `remote`) and the counter history,
/// starting from `state`. Pure and synchronous: the daemon runs it on a
/// blocking thread, the bench calls it directly. `stop` is asked before each rule and SLO.
pub fn evaluate_rules(
    rules: &rules::RuleSet,
    registry: &Registry,
    remote: Option<&Registry>,
    counters: &CounterHistory,
    mut state: rules::eval::State,
    now: chrono::DateTime<chrono::Utc>,
    stop: &dyn Fn() -> bool,
) -> Result<Evaluation, rules::Stopped> {
    let source = RegistrySource {
        registry,
        remote,
        counters,
    };
    // The burn-rate rules and the SLO status read each burn rate once, and the same figure.
    let burns = rules::BurnRates::default();
    let transitions = rules::evaluate_with(rules, &source, &mut state, now, stop, &burns)?;
    let slos = rules::slo_status_with(&rules.slos, &source, now, stop, &burns)?;
    Ok(Evaluation {
        transitions,
        state,
        slos,
    })
}

/// The SLO gauges (budget remaining, burn rate per alert window, time to exhaustion) of one
/// evaluation's SLO figures: rules and dashboards read them from the registry like any metric,
/// so the daemon and `synmon replay` set them the same way.
pub fn set_slo_gauges(
    reg: &Registry,
    slos: &[rules::SloStatus],
    now: chrono::DateTime<chrono::Utc>,
) {
    for slo in slos {
        let labels = [("slo", slo.name.as_str())];
        let _ = reg.set_gauge(
            catalog::SLO_BUDGET_REMAINING.name,
            &labels,
            slo.error_budget_remaining,
            now,
        );
        for b in &slo.burn_rates {
            let window = b.window.clone();
            let _ = reg.set_gauge(
                catalog::SLO_BURN_RATE.name,
                &[("slo", slo.name.as_str()), ("window", window.as_str())],
                b.burn_rate.unwrap_or(f64::NAN),
                now,
            );
        }
        let _ = reg.set_gauge(
            catalog::SLO_TIME_TO_EXHAUSTION.name,
            &labels,
            slo.time_to_exhaustion_secs
                .map(|s| s as f64)
                .unwrap_or(f64::NAN),
            now,
        );
    }
}

/// `synmon.flag.expiry_days` for every flag of the registry that is not `removed`, at `now`;
/// flags no longer in the registry (after a reload) go stale, so their series disappear.
pub fn set_flag_gauges(
    registry: &Registry,
    flags: &crate::flags::Registry,
    now: chrono::DateTime<chrono::Utc>,
) {
    let name = catalog::FLAG_EXPIRY_DAYS_LEFT.name;
    let _ = registry.mark_all_stale(name);
    for f in &flags.flags {
        if f.state == crate::flags::State::Removed {
            continue;
        }
        if let Some(days) = f.days_left(now) {
            let labels = [
                ("flag", f.key.as_str()),
                ("owner", f.owner.as_str()),
                ("state", f.state.as_str()),
            ];
            let _ = registry.set_gauge(name, &labels, days, now);
        }
    }
}

/// One evaluation: sample counters, evaluate rules against the registry, log and keep the
/// transitions, persist the state when it changed, export the SLO gauges.
///
/// The rules and SLOs run on a blocking thread over a copy of the alert state (with 30 days of
/// data a debug build takes seconds): the runtime's workers stay free for `/healthz`, the API
/// and signals, and readers of the alert state never wait for the computation. When the daemon
/// stops meanwhile, the evaluation gives up and changes nothing (no transitions).
pub async fn evaluate(shared: &Arc<Shared>) -> Vec<rules::eval::Transition> {
    let _turn = shared.evaluating.lock().await;
    // Only the leader evaluates: the others run checks and read its state from the store.
    if !shared.cluster.is_leader() {
        return Vec::new();
    }
    let epoch = shared.cluster.epoch();
    if shared.feed.is_resetting() {
        tracing::info!("evaluation waits: the other replicas' runs are still being read");
        return Vec::new();
    }
    let cfg = shared.config();
    let now = shared.clock.now();
    // Every run recorded so far is in this evaluation's registry.
    let written = shared.runs_written.queued();
    set_flag_gauges(&shared.registry, &cfg.flags.registry, now);
    // Every location's fresh data: what the other replicas stored since the last evaluation
    // (a single-node SQLite store has no other replica: everything is in the own registry).
    if !shared.cluster.is_single_node()
        && let Err(e) = shared
            .feed
            .catch_up(&shared.store, shared.cluster.id(), &shared.registry, now)
            .await
    {
        tracing::warn!(error = %e, "other replicas' runs not read; evaluating on what was read before");
    }
    let remote = shared.feed.registry();
    let (state, counters) = {
        let mut a = shared.alerting.lock().await;
        Arc::make_mut(&mut a.counters).sample_all(&[&shared.registry, &remote], now);
        (a.state.clone(), a.counters.clone())
    };
    let work = {
        let shared = shared.clone();
        let cfg = cfg.clone();
        let span = tracing::info_span!(
            "evaluate",
            rules = cfg.rules.rules.len(),
            slos = cfg.rules.slos.len()
        );
        tokio::task::spawn_blocking(move || {
            let _span = span.enter();
            let stop = || shared.stopping.load(Ordering::Relaxed);
            evaluate_rules(
                &cfg.rules,
                &shared.registry,
                Some(&remote),
                &counters,
                state,
                now,
                &stop,
            )
        })
    };
    let ev = match work.await {
        Ok(Ok(ev)) => ev,
        Ok(Err(rules::Stopped)) => {
            tracing::info!("evaluation given up: synmon is stopping; the alert state is unchanged");
            return Vec::new();
        }
        Err(e) => {
            tracing::error!(error = %e, "evaluation failed; the alert state is unchanged");
            return Vec::new();
        }
    };
    set_slo_gauges(&shared.registry, &ev.slos, now);
    // Leadership changed meanwhile (lost, or lost and taken again at a later epoch): this result
    // starts from a state another leader may have moved on from. Dropped; the next evaluation
    // starts from the state as it is now.
    if !shared.cluster.is_leader() || shared.cluster.epoch() != epoch {
        tracing::info!(
            epoch,
            "evaluation dropped: the leadership changed while it ran"
        );
        return Vec::new();
    }
    let transitions = ev.transitions;
    for t in &transitions {
        let summary = t.annotations.get("summary").cloned().unwrap_or_default();
        let route = t.route.as_deref().unwrap_or("-");
        match t.to {
            rules::eval::Phase::Firing => {
                tracing::warn!(alert = %t.rule, fingerprint = %t.fingerprint, route, value = ?t.value, "FIRING: {summary}")
            }
            rules::eval::Phase::Resolved => {
                tracing::info!(alert = %t.rule, fingerprint = %t.fingerprint, route, "RESOLVED: {summary}")
            }
            _ => {
                tracing::info!(alert = %t.rule, fingerprint = %t.fingerprint, from = ?t.from, to = ?t.to, "alert state changed")
            }
        }
    }
    let (saved, view, firing) = {
        let mut a = shared.alerting.lock().await;
        let a = &mut *a;
        a.state = ev.state;
        a.evaluations += 1;
        a.slos = Some(Arc::new(SloFigures {
            at: now,
            slos: ev.slos,
        }));
        for t in &transitions {
            a.recent.push_back(t.clone());
            while a.recent.len() > RECENT_TRANSITIONS {
                a.recent.pop_front();
            }
        }
        let saved = serde_json::to_value(&a.state);
        let view = serde_json::to_value(super::cluster::AlertView {
            recent: a
                .recent
                .iter()
                .rev()
                .take(super::cluster::VIEW_TRANSITIONS)
                .rev()
                .cloned()
                .collect(),
            evaluations: a.evaluations,
            slos: a.slos.as_deref().cloned(),
        });
        let last = shared.last.read().expect("last lock");
        let firing = crate::notify::incoming::firing_alerts(
            a.state.alerts.values(),
            &cfg.rules,
            &last,
            &cfg.public_url(shared.addr),
            cfg.tracing.ui_url.as_deref(),
        );
        (saved, view, firing)
    };
    // Through the fenced handle: refused once another replica leads. An unsaved state is not
    // lost: it stays in memory and the next evaluation saves it whole.
    for (id, doc) in [(ALERT_STATE_ID, saved), (ALERT_VIEW_ID, view)] {
        match doc {
            Ok(v) => {
                if let Err(e) = shared.leader_store.save_alert_state(id, &v, now).await {
                    tracing::error!(error = %e, id, "alert state not saved; kept in memory");
                }
            }
            Err(e) => tracing::error!(error = %e, id, "alert state not serializable"),
        }
    }
    // The runs behind a change are stored before it is notified: a restart right after the
    // page replays them, so the alert stays firing instead of resolving on an empty window
    // and paging again. A slow or unreachable store delays the page by RUNS_STORED_WAIT at
    // most (its runs stay queued in memory).
    if !transitions.is_empty() && !shared.runs_written.settled(written, RUNS_STORED_WAIT).await {
        tracing::warn!(
            wait = ?RUNS_STORED_WAIT,
            "notifying before the runs behind this evaluation are stored (the store is slow or down)"
        );
    }
    // The alert state is saved before any notification is queued.
    super::notifier::hand_over(shared, &cfg, firing).await;
    transitions
}

/// Alerts survive restarts and takeovers: loads the stored alert state (with its `for:`
/// timers) and the API view, so a firing alert stays firing without paging again. An
/// unreadable or unreachable state starts fresh, with a warning.
pub(super) async fn restore(shared: &Shared) {
    match shared.store.load_alert_state(ALERT_STATE_ID).await {
        Ok(Some(v)) => match serde_json::from_value::<rules::eval::State>(v) {
            Ok(state) => {
                tracing::info!(alerts = state.alerts.len(), "restored alert state");
                shared.alerting.lock().await.state = state;
            }
            Err(e) => {
                tracing::warn!(error = %e, "stored alert state unreadable; starting fresh")
            }
        },
        Ok(None) => {}
        Err(e) => tracing::warn!(error = %e, "could not load alert state"),
    }
    if let Ok(Some(v)) = shared.store.load_alert_state(ALERT_VIEW_ID).await
        && let Ok(view) = serde_json::from_value::<super::cluster::AlertView>(v)
    {
        let mut a = shared.alerting.lock().await;
        a.recent = view.recent.into_iter().collect();
        a.evaluations = view.evaluations;
        a.slos = view.slos.map(Arc::new);
    }
}

pub(super) async fn evaluate_loop(shared: Arc<Shared>) {
    let mut interval = shared.config().rules.interval;
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        evaluate(&shared).await;
        let now_interval = shared.config().rules.interval;
        if now_interval != interval {
            interval = now_interval;
            tick = tokio::time::interval(interval);
            tick.tick().await;
        }
    }
}
