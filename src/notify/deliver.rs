//! Delivery from the durable outbox: one worker per receiver, each with its own backoff, so a
//! PagerDuty outage neither delays nor duplicates Slack. Within a receiver, notifications of
//! one alert group go out in the order they were written (a later one waits while an earlier
//! one is retried); different groups do not wait for each other.

use std::collections::HashMap;

use futures_util::StreamExt;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use chrono::{DateTime, Utc};
use rand::Rng;

use crate::clock::Clock;
use crate::config::Redactor;
use crate::store::{OutboxRow, Store, StoreError};

use super::message::Notification;
use super::receiver::{FailureKind, Receiver, SendContext};

/// Exponential backoff with jitter between attempts of one notification: `initial` x 2^(n-1),
/// capped at `max`, plus up to 20% (off in tests, so they are exact). A receiver's
/// `Retry-After` wins when it is longer.
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    pub initial: Duration,
    pub max: Duration,
    pub jitter: bool,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            initial: Duration::from_secs(1),
            max: Duration::from_secs(300),
            jitter: true,
        }
    }
}

impl Backoff {
    /// The wait after the `attempts`-th failed attempt (1-based).
    pub fn delay(&self, attempts: u32) -> Duration {
        let exp = attempts.saturating_sub(1).min(30);
        let base = self
            .initial
            .checked_mul(1u32 << exp.min(20))
            .unwrap_or(self.max)
            .min(self.max);
        if self.jitter {
            base + base.mul_f64(0.2 * rand::rng().random::<f64>())
        } else {
            base
        }
    }
}

/// What one attempt ended in.
#[derive(Debug, Clone, PartialEq)]
pub enum Attempt {
    Sent {
        response: String,
    },
    Retry {
        error: String,
        at: DateTime<Utc>,
    },
    Failed {
        error: String,
    },
    /// The row was delivered or claimed by another replica meanwhile: not sent.
    Taken,
}

/// What a delivery pass over one receiver's outbox did.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Pass {
    pub sent: usize,
    pub retried: usize,
    pub failed: usize,
    /// When something becomes due (a retry, the end of a pacing interval).
    pub next_due: Option<DateTime<Utc>>,
}

pub struct Deliverer {
    store: Store,
    clock: Arc<dyn Clock>,
    receivers: RwLock<HashMap<String, Arc<dyn Receiver>>>,
    /// Pacing key -> earliest time of the next send.
    paced: Mutex<HashMap<String, DateTime<Utc>>>,
    backoff: Backoff,
    /// Where delivery outcomes are counted (`synmon.notifications`).
    metrics: Option<crate::metrics::registry::Registry>,
    /// Set while stopping: no new attempt starts (one in progress finishes and is recorded).
    stopping: std::sync::atomic::AtomicBool,
    /// A copy of what receivers stored per group (`receiver_state`), written through on each
    /// delivery and, on a follower, mirrored from the store: used when the store has lost it.
    states: Mutex<HashMap<(String, String), serde_json::Value>>,
    /// How long this process may still send (its leader lease, see `crate::cluster`); `None`
    /// from the guard: it must not send. Without a guard (the CLI): always.
    lease: RwLock<Option<LeaseGuard>>,
}

/// Asked before each send: how long the sender certainly still leads.
pub type LeaseGuard = Arc<dyn Fn() -> Option<Duration> + Send + Sync>;

/// Below this much lease left, a send is not started: the next leader will make it.
const MIN_LEASE_TO_SEND: Duration = Duration::from_millis(500);

/// Groups whose receiver state is copied in memory; beyond, the copy starts over (it is only
/// a fallback for a store that lost its tables).
const STATES_MAX: usize = 10_000;

/// How long a delivery pass holds the rows it claimed. Another worker takes them after this if
/// the pass never finishes (its process died); a newer leader takes them at once.
const CLAIM: Duration = Duration::from_secs(60);

/// Alert groups of one receiver delivered at once (an unpaced receiver: webhooks, PagerDuty).
const CONCURRENCY: usize = 16;

fn chrono_of(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

fn min_time(a: Option<DateTime<Utc>>, b: DateTime<Utc>) -> Option<DateTime<Utc>> {
    Some(a.map_or(b, |a| a.min(b)))
}

impl Deliverer {
    pub fn new(store: Store, clock: Arc<dyn Clock>, backoff: Backoff) -> Self {
        Deliverer {
            store,
            clock,
            receivers: RwLock::new(HashMap::new()),
            paced: Mutex::new(HashMap::new()),
            backoff,
            metrics: None,
            stopping: std::sync::atomic::AtomicBool::new(false),
            states: Mutex::new(HashMap::new()),
            lease: RwLock::new(None),
        }
    }

    /// While set, passes start no new attempt.
    pub fn set_stopping(&self, stopping: bool) {
        self.stopping
            .store(stopping, std::sync::atomic::Ordering::SeqCst);
    }

    /// Counts delivery outcomes in `registry`.
    pub fn with_metrics(mut self, registry: crate::metrics::registry::Registry) -> Self {
        self.metrics = Some(registry);
        self
    }

    fn count(&self, receiver: &str, outcome: &str) {
        if let Some(m) = &self.metrics {
            let _ = m.incr(
                crate::metrics::catalog::NOTIFICATIONS.name,
                &[("receiver", receiver), ("outcome", outcome)],
                1,
            );
        }
    }

    /// Starts a send only while `guard` says the lease lasts.
    pub fn set_lease_guard(&self, guard: LeaseGuard) {
        *self.lease.write().expect("lease lock") = Some(guard);
    }

    fn remember_state(&self, receiver: &str, group: &str, state: serde_json::Value) {
        let mut states = self.states.lock().expect("states lock");
        let key = (receiver.to_string(), group.to_string());
        if states.len() >= STATES_MAX && !states.contains_key(&key) {
            states.clear();
        }
        states.insert(key, state);
    }

    /// Copies every receiver state the store holds (a follower, so that it can continue a
    /// group's message if it takes over from a store that then loses its tables).
    pub async fn mirror_states(&self) -> Result<(), StoreError> {
        let rows = self.store.receiver_states().await?;
        if rows.is_empty() {
            return Ok(());
        }
        for (receiver, group, state) in rows {
            self.remember_state(&receiver, &group, state);
        }
        Ok(())
    }

    pub fn set_receivers(&self, receivers: HashMap<String, Arc<dyn Receiver>>) {
        *self.receivers.write().expect("receivers lock") = receivers;
    }

    pub fn receiver(&self, name: &str) -> Option<Arc<dyn Receiver>> {
        self.receivers
            .read()
            .expect("receivers lock")
            .get(name)
            .cloned()
    }

    pub fn receiver_names(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .receivers
            .read()
            .expect("receivers lock")
            .keys()
            .cloned()
            .collect();
        v.sort();
        v
    }

    /// Sends every due notification of `receiver`, oldest first, one attempt each. Groups are
    /// independent: up to `CONCURRENCY` groups are delivered at once (a paced receiver, such as
    /// a Slack channel, one at a time); within a group, rows go strictly in order and a row
    /// waiting for its retry holds back the rows written after it.
    pub async fn deliver_due(&self, receiver: &str) -> Result<Pass, StoreError> {
        let Some(r) = self.receiver(receiver) else {
            return Ok(Pass::default());
        };
        let rows = self
            .store
            .outbox_claim(receiver, self.clock.now(), 256, CLAIM)
            .await?;
        let mut order: Vec<String> = Vec::new();
        let mut groups: HashMap<String, Vec<OutboxRow>> = HashMap::new();
        for row in rows {
            let g = groups.entry(row.group_key.clone()).or_default();
            if g.is_empty() {
                order.push(row.group_key.clone());
            }
            g.push(row);
        }
        let lanes = if r.pacing().is_some() { 1 } else { CONCURRENCY };
        let r = r.as_ref();
        let results: Vec<Result<Pass, StoreError>> =
            futures_util::stream::iter(order.into_iter().filter_map(|k| groups.remove(&k)))
                .map(|rows| self.deliver_group(rows, r))
                .buffer_unordered(lanes)
                .collect()
                .await;
        let mut pass = Pass::default();
        for p in results {
            let p = p?;
            pass.sent += p.sent;
            pass.retried += p.retried;
            pass.failed += p.failed;
            if let Some(t) = p.next_due {
                pass.next_due = min_time(pass.next_due, t);
            }
        }
        Ok(pass)
    }

    /// One group's due rows, in order, stopping at the first that must wait.
    async fn deliver_group(
        &self,
        rows: Vec<OutboxRow>,
        r: &dyn Receiver,
    ) -> Result<Pass, StoreError> {
        let mut pass = Pass::default();
        for row in rows {
            if self.stopping.load(std::sync::atomic::Ordering::SeqCst) {
                break;
            }
            let now = self.clock.now();
            if row.next_attempt_at > now {
                pass.next_due = min_time(pass.next_due, row.next_attempt_at);
                break;
            }
            if let Some((key, _)) = r.pacing()
                && let Some(t) = self.paced.lock().expect("pacing lock").get(&key)
                && *t > now
            {
                pass.next_due = min_time(pass.next_due, *t);
                break;
            }
            match self.attempt(&row, r).await? {
                Attempt::Sent { .. } => pass.sent += 1,
                Attempt::Retry { at, .. } => {
                    pass.retried += 1;
                    pass.next_due = min_time(pass.next_due, at);
                    break;
                }
                Attempt::Failed { .. } => pass.failed += 1,
                // Not ours any more: the rest of the group waits for whoever has it.
                Attempt::Taken => break,
            }
        }
        Ok(pass)
    }

    /// One attempt at one row, recorded in the store before returning.
    pub async fn attempt(&self, row: &OutboxRow, r: &dyn Receiver) -> Result<Attempt, StoreError> {
        let mut redactor = Redactor::default();
        for s in r.secrets() {
            redactor.add(&s);
        }
        let attempts = row.attempts + 1;
        let span = tracing::info_span!(
            "notify",
            receiver = %row.receiver,
            outbox_id = row.id,
            group = %row.group_key,
            attempt = attempts
        );
        let _guard = span.enter();
        let n: Notification = match serde_json::from_str(&row.payload) {
            Ok(n) => n,
            Err(e) => {
                let error = format!("unreadable notification in the outbox: {e}");
                tracing::error!("{error}");
                self.store
                    .outbox_failed(row.id, attempts, self.clock.now(), &error)
                    .await?;
                return Ok(Attempt::Failed { error });
            }
        };
        let group_state = if r.uses_group_state() {
            let key = (row.receiver.clone(), row.group_key.clone());
            match self
                .store
                .receiver_state(&row.receiver, &row.group_key)
                .await?
            {
                Some(v) => Some(v),
                // The store lost it (its tables were dropped and re-created): the copy kept
                // here still lets a resolve update its message instead of posting a new one.
                None => self.states.lock().expect("states lock").get(&key).cloned(),
            }
        } else {
            None
        };
        // Always, not only for receivers that check before a resend: this is also where a row
        // claimed by another replica since this pass read it is let go.
        if !self.store.outbox_attempt_started(row.id, attempts).await? {
            tracing::info!("notification taken by another replica or already delivered; not sent");
            return Ok(Attempt::Taken);
        }
        let ctx = SendContext {
            group_state,
            outbox_id: row.id,
            attempt: attempts,
        };
        // The last moment to find out this process no longer leads (paused past its lease, it
        // wakes up here): then the next leader sends it. The send itself is not cut off at the
        // lease's end: a request cut off has often arrived, and would be sent again.
        let guard = self.lease.read().expect("lease lock").clone();
        if let Some(g) = guard
            && g().is_none_or(|left| left <= MIN_LEASE_TO_SEND)
        {
            tracing::info!("not leading any more; the notification is left to the next leader");
            return Ok(Attempt::Taken);
        }
        let result = r.send(&n, &ctx).await;
        let now = self.clock.now();
        if let Some((key, interval)) = r.pacing() {
            self.paced
                .lock()
                .expect("pacing lock")
                .insert(key, now + chrono_of(interval));
        }
        match result {
            Ok(d) => {
                let response = redactor.redact(&d.response);
                // Delivered: recording it must not fail lightly, or the row would be sent again.
                // A store hiccup is retried here (about 3 s in all) before giving up.
                let mut tries = 0;
                loop {
                    let r = self
                        .store
                        .outbox_sent(
                            row.id,
                            attempts,
                            now,
                            &response,
                            d.group_state
                                .as_ref()
                                .map(|s| (row.receiver.as_str(), row.group_key.as_str(), s)),
                        )
                        .await;
                    match r {
                        Ok(()) => break,
                        // Another replica leads: retrying cannot succeed.
                        Err(e) if e.is_fenced() => return Err(e),
                        Err(e) if tries < 5 => {
                            tries += 1;
                            tracing::warn!(error = %e, "delivered, but not yet recorded; retrying the record");
                            tokio::time::sleep(Duration::from_millis(100 << tries)).await;
                        }
                        Err(e) => return Err(e),
                    }
                }
                if let Some(state) = &d.group_state {
                    self.remember_state(&row.receiver, &row.group_key, state.clone());
                }
                self.count(&row.receiver, "sent");
                tracing::info!(response = %response, status = n.status.as_str(), "notification delivered");
                Ok(Attempt::Sent { response })
            }
            Err(e) if e.kind == FailureKind::Retryable => {
                let error = redactor.redact(&e.message);
                let wait = self
                    .backoff
                    .delay(attempts)
                    .max(e.retry_after.unwrap_or_default());
                let at = now + chrono_of(wait);
                self.store
                    .outbox_retry(row.id, attempts, at, &error)
                    .await?;
                tracing::warn!(error = %error, retry_in_ms = crate::config::duration::millis_u64(wait), "notification not delivered; will retry");
                Ok(Attempt::Retry { error, at })
            }
            Err(e) => {
                let error = redactor.redact(&e.message);
                self.store
                    .outbox_failed(row.id, attempts, now, &error)
                    .await?;
                tracing::error!(error = %error, "notification refused by the receiver; not retried");
                Ok(Attempt::Failed { error })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_caps() {
        let b = Backoff {
            initial: Duration::from_secs(1),
            max: Duration::from_secs(300),
            jitter: false,
        };
        let got: Vec<u64> = (1..=11).map(|n| b.delay(n).as_secs()).collect();
        assert_eq!(got, [1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300]);
        assert_eq!(b.delay(1000).as_secs(), 300);
        let j = Backoff { jitter: true, ..b };
        for n in 1..8 {
            let d = j.delay(n);
            assert!(
                d >= b.delay(n) && d <= b.delay(n).mul_f64(1.2),
                "{n}: {d:?}"
            );
        }
    }
}
