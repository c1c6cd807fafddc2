//! The notifier the daemon runs: the dispatcher (routing, groups, mute, dedup) behind a lock,
//! the outbox writes, one delivery worker per receiver, and a timer that flushes groups whose
//! `group_wait` / `group_interval` has come. Before each flush, the refresh hooks bring in what
//! other replicas changed in the shared store (silences), so it applies at that flush.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::task::JoinHandle;

use crate::clock::Clock;
use crate::store::{NewNotification, Store, StoreError};

use super::config::NotifyConfig;
use super::deliver::{Backoff, Deliverer, Pass};
use super::dispatch::{Dispatcher, IncomingAlert};
use super::receiver::Receiver;

/// State a flush depends on that other replicas change in the shared store (the silences):
/// brought up to date before each flush, so what they wrote applies here at the next one.
/// Implementations throttle themselves by `now` (the injected clock) and never fail a flush.
pub trait Refresh: Send + Sync {
    fn refresh(&self, now: chrono::DateTime<chrono::Utc>) -> crate::scheduler::BoxFuture<'_, ()>;
}

/// Builds every enabled receiver; a receiver without its secret (or that cannot be built) is
/// disabled with one warning and its routes fall back to the console.
pub fn build_receivers(
    cfg: &NotifyConfig,
) -> (HashMap<String, Arc<dyn Receiver>>, BTreeSet<String>) {
    let mut built = HashMap::new();
    let mut disabled = BTreeSet::new();
    for rc in &cfg.receivers {
        if let Some(reason) = rc.disabled_reason() {
            tracing::warn!(
                receiver = rc.name(),
                kind = rc.kind(),
                "receiver disabled: {reason}; its routes fall back to the console"
            );
            disabled.insert(rc.name().to_string());
            continue;
        }
        match rc.build() {
            Ok(r) => {
                built.insert(rc.name().to_string(), r);
            }
            Err(e) => {
                tracing::warn!(receiver = rc.name(), kind = rc.kind(), error = %e, "receiver disabled: it cannot be built; its routes fall back to the console");
                disabled.insert(rc.name().to_string());
            }
        }
    }
    (built, disabled)
}

/// Pending notifications of a receiver that no longer exists (or was disabled) are delivered
/// to the console rather than left in the outbox forever.
async fn reassign_orphans(store: &Store, receivers: &HashMap<String, Arc<dyn Receiver>>) {
    let keep: Vec<String> = receivers.keys().cloned().collect();
    match store.outbox_reassign(&keep, super::config::CONSOLE).await {
        Ok(0) => {}
        // Only the leader moves rows; it does so again when it takes over.
        Err(e) if e.is_fenced() => {}
        Ok(n) => tracing::warn!(
            notifications = n,
            "pending notifications of receivers no longer configured or disabled go to the console"
        ),
        Err(e) => tracing::error!(error = %e, "could not reassign pending notifications"),
    }
}

pub struct Notifier {
    store: Store,
    clock: Arc<dyn Clock>,
    dispatcher: tokio::sync::Mutex<Dispatcher>,
    deliverer: Arc<Deliverer>,
    wakes: Mutex<HashMap<String, Arc<Notify>>>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
    metrics: Option<crate::metrics::registry::Registry>,
    /// Run before each flush (see [`Refresh`]).
    refreshers: Mutex<Vec<Arc<dyn Refresh>>>,
    /// Tells workers to stop after the attempt in progress (a graceful stop never leaves a
    /// delivered notification unrecorded).
    stopping: tokio::sync::watch::Sender<bool>,
}

impl Notifier {
    /// Builds the receivers and restores the notification log (and the groups that were firing)
    /// from the store.
    pub async fn new(
        cfg: &NotifyConfig,
        store: Store,
        clock: Arc<dyn Clock>,
        backoff: Backoff,
        external_url: &str,
        metrics: Option<crate::metrics::registry::Registry>,
    ) -> Result<Notifier, StoreError> {
        let (receivers, disabled) = build_receivers(cfg);
        let mut dispatcher = Dispatcher::new(cfg, &disabled, external_url);
        reassign_orphans(&store, &receivers).await;
        let log = store.notification_log().await?;
        dispatcher.restore(&log, clock.now());
        let mut deliverer = Deliverer::new(store.clone(), clock.clone(), backoff);
        if let Some(m) = metrics.clone() {
            deliverer = deliverer.with_metrics(m);
        }
        let deliverer = Arc::new(deliverer);
        deliverer.set_receivers(receivers);
        Ok(Notifier {
            store,
            clock,
            dispatcher: tokio::sync::Mutex::new(dispatcher),
            deliverer,
            wakes: Mutex::new(HashMap::new()),
            tasks: Mutex::new(Vec::new()),
            metrics,
            refreshers: Mutex::new(Vec::new()),
            stopping: tokio::sync::watch::channel(false).0,
        })
    }

    /// Replaces the dispatcher's groups and log with the store's notification log: a replica
    /// taking over leadership continues from what the previous leader recorded, without
    /// re-sending what it sent. Orphaned rows are reassigned (only the leader does that).
    pub async fn restore_from_store(&self) -> Result<usize, StoreError> {
        self.restore_log(false).await
    }

    /// A follower's copy of the leader's notification log. A log the store lost (tables
    /// dropped and re-created: empty) does not wipe the copy: it is what the replica that
    /// takes over needs.
    pub async fn mirror_log(&self) -> Result<usize, StoreError> {
        self.restore_log(true).await
    }

    async fn restore_log(&self, keep_if_empty: bool) -> Result<usize, StoreError> {
        let log = self.store.notification_log().await?;
        if keep_if_empty && log.is_empty() {
            return Ok(0);
        }
        let receivers: HashMap<String, Arc<dyn Receiver>> = self
            .deliverer
            .receiver_names()
            .into_iter()
            .filter_map(|n| self.deliverer.receiver(&n).map(|r| (n, r)))
            .collect();
        reassign_orphans(&self.store, &receivers).await;
        let mut d = self.dispatcher.lock().await;
        d.forget();
        d.restore(&log, self.clock.now());
        Ok(log.len())
    }

    /// Whether delivery workers are running.
    pub fn is_started(&self) -> bool {
        !self.tasks.lock().expect("tasks lock").is_empty()
    }

    /// Adds a mute stage (silences, inhibition, maintenance windows) to the dispatcher.
    pub async fn add_muter(&self, m: Arc<dyn super::dispatch::Muter>) {
        self.dispatcher.lock().await.add_muter(m);
    }

    pub fn deliverer(&self) -> &Arc<Deliverer> {
        &self.deliverer
    }

    /// Adds a hook run before each flush (see [`Refresh`]).
    pub fn add_refresh(&self, r: Arc<dyn Refresh>) {
        self.refreshers.lock().expect("refreshers lock").push(r);
    }

    /// Runs the refresh hooks, outside the dispatcher's lock (they may wait on the store).
    async fn refresh(&self) {
        let hooks = self.refreshers.lock().expect("refreshers lock").clone();
        let now = self.clock.now();
        for h in hooks {
            h.refresh(now).await;
        }
    }

    /// The firing alerts after an evaluation: route and group them, then flush what is due.
    pub async fn sync(&self, firing: &[IncomingAlert]) -> Result<usize, StoreError> {
        self.refresh().await;
        let mut d = self.dispatcher.lock().await;
        d.sync(firing, self.clock.now());
        self.flush_locked(&mut d).await
    }

    /// Flushes the groups that are due; returns how many notifications were written.
    pub async fn flush(&self) -> Result<usize, StoreError> {
        self.refresh().await;
        let mut d = self.dispatcher.lock().await;
        self.flush_locked(&mut d).await
    }

    async fn flush_locked(&self, d: &mut Dispatcher) -> Result<usize, StoreError> {
        let now = self.clock.now();
        let flush = d.flush_due(now);
        if flush.planned.is_empty() {
            d.committed(&flush);
            return Ok(0);
        }
        let mut items = Vec::new();
        for p in &flush.planned {
            if let Some(n) = &p.notification {
                items.push(NewNotification {
                    receiver: n.receiver.clone(),
                    group_key: n.group_key.clone(),
                    payload: serde_json::to_string(n).unwrap_or_default(),
                });
            }
        }
        let logs: Vec<_> = flush.planned.iter().map(|p| p.log.clone()).collect();
        match self
            .store
            .enqueue_notifications(&items, &logs, now, None)
            .await
        {
            Ok(_) => {
                d.committed(&flush);
                for i in &items {
                    tracing::info!(receiver = %i.receiver, group = %i.group_key, "notification queued");
                    self.wake(&i.receiver);
                }
                Ok(items.len())
            }
            Err(e) => {
                d.failed(&flush, now);
                tracing::error!(error = %e, "notifications not written to the outbox; retrying at the next flush");
                Err(e)
            }
        }
    }

    fn wake(&self, receiver: &str) {
        if let Some(w) = self.wakes.lock().expect("wakes lock").get(receiver) {
            w.notify_one();
        }
    }

    /// One delivery pass over every receiver (tests with a manual clock; the workers do this
    /// on their own otherwise).
    pub async fn deliver_all(&self) -> Result<Pass, StoreError> {
        let mut total = Pass::default();
        for name in self.deliverer.receiver_names() {
            let p = self.deliverer.deliver_due(&name).await?;
            total.sent += p.sent;
            total.retried += p.retried;
            total.failed += p.failed;
            if let Some(t) = p.next_due {
                total.next_due = Some(total.next_due.map_or(t, |x| x.min(t)));
            }
        }
        Ok(total)
    }

    /// Starts one delivery worker per receiver and the group timer.
    pub fn start(self: &Arc<Self>) {
        self.stopping.send_replace(false);
        self.deliverer.set_stopping(false);
        let mut tasks = self.tasks.lock().expect("tasks lock");
        let mut wakes = self.wakes.lock().expect("wakes lock");
        wakes.clear();
        for name in self.deliverer.receiver_names() {
            let wake = Arc::new(Notify::new());
            wakes.insert(name.clone(), wake.clone());
            let me = self.clone();
            tasks.push(tokio::spawn(async move { me.worker(name, wake).await }));
        }
        let me = self.clone();
        let mut stopping = self.stopping.subscribe();
        tasks.push(tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    _ = stopping.wait_for(|s| *s) => return,
                }
                let _ = me.flush().await;
                me.export_pending().await;
            }
        }));
    }

    async fn worker(&self, receiver: String, wake: Arc<Notify>) {
        let mut stopping = self.stopping.subscribe();
        loop {
            if *stopping.borrow_and_update() {
                return;
            }
            let wait = match self.deliverer.deliver_due(&receiver).await {
                Ok(p) => p
                    .next_due
                    .map(|t| (t - self.clock.now()).to_std().unwrap_or_default())
                    .unwrap_or(Duration::from_secs(5))
                    .min(Duration::from_secs(5)),
                Err(e) => {
                    tracing::error!(receiver = %receiver, error = %e, "outbox unreadable; retrying");
                    Duration::from_secs(1)
                }
            };
            tokio::select! {
                _ = wake.notified() => {}
                _ = tokio::time::sleep(wait) => {}
                _ = stopping.changed() => {}
            }
        }
    }

    /// A reloaded config: new receivers and routes (workers restart; the outbox keeps every
    /// pending notification).
    pub async fn reload(self: &Arc<Self>, cfg: &NotifyConfig, external_url: &str) {
        let (receivers, disabled) = build_receivers(cfg);
        let running = !self.tasks.lock().expect("tasks lock").is_empty();
        self.stop().await;
        self.dispatcher
            .lock()
            .await
            .reconfigure(cfg, &disabled, external_url);
        reassign_orphans(&self.store, &receivers).await;
        self.deliverer.set_receivers(receivers);
        if running {
            self.start();
        } else {
            // Not started (deliveries on demand, `deliver_all`): `stop` must not leave it
            // refusing every attempt after the reload.
            self.stopping.send_replace(false);
            self.deliverer.set_stopping(false);
        }
    }

    /// Stops the timer and the workers, letting an attempt in progress finish and be recorded
    /// (bounded: a receiver that hangs is cut off after its own timeout or 10 s). Whatever is
    /// pending stays in the outbox.
    pub async fn stop(&self) {
        self.stopping.send_replace(true);
        self.deliverer.set_stopping(true);
        let tasks: Vec<JoinHandle<()>> = self.tasks.lock().expect("tasks lock").drain(..).collect();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        for mut t in tasks {
            if tokio::time::timeout_at(deadline, &mut t).await.is_err() {
                t.abort();
            }
        }
    }

    /// Sets `synmon.outbox.pending` per receiver from the store.
    async fn export_pending(&self) {
        let Some(m) = &self.metrics else { return };
        let Ok(counts) = self.store.outbox_counts().await else {
            return;
        };
        let now = self.clock.now();
        for name in self.deliverer.receiver_names() {
            let pending = counts
                .iter()
                .filter(|(r, s, _)| *r == name && *s == crate::store::OutboxStatus::Pending)
                .map(|(_, _, n)| *n)
                .sum::<i64>();
            let _ = m.set_gauge(
                crate::metrics::catalog::OUTBOX_PENDING.name,
                &[("receiver", &name)],
                pending as f64,
                now,
            );
        }
    }

    /// Active groups, for the API.
    pub async fn groups(&self) -> Vec<(String, String, Vec<super::AlertInfo>)> {
        self.dispatcher.lock().await.groups()
    }
}
