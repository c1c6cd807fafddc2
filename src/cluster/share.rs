//! Work sharing inside a location: the replicas of one location split its checks so each check
//! runs once per interval there, whichever replica runs it.
//!
//! Two layers, because views of membership differ for a moment whenever a replica joins or
//! dies and ownership alone cannot prevent a double run then:
//!
//! - **Ownership** (who tries): rendezvous (highest-random-weight) hashing of the check's name
//!   over the live replicas of this location, as the store's heartbeat table lists them
//!   (refreshed every `renew_every`). Journeys are weighted by each replica's advertised browser
//!   sessions (`webdriver.sessions`), other kinds spread by count. When a replica joins or
//!   leaves, only the checks that move to or from it change owner (about 1/n of them), so a
//!   join moves a fair share without reshuffling everything.
//! - **Exclusion** (who runs): before running a slot (location, check, intended start) its
//!   owner claims it in the store (`INSERT .. ON CONFLICT DO NOTHING`; the claims of all
//!   slots due together go in one statement). Only the winner runs. Two replicas that both
//!   think they own a check for a moment therefore run each slot once.
//!
//! Intended starts are on a grid every replica computes alike: `phase + k * interval` from the
//! Unix epoch, the phase a hash of the check's name (see [`phase`]). A replica that takes a
//! check over (it did not own it continuously since its last claim) reads the check's last claim:
//! slots in between that nobody ran are claimed as `missed` in the store and counted in the
//! overruns counter, never hidden. When the previous claimer has departed (died), the slots it
//! claimed but whose runs never reached the store are missed too.
//!
//! A SQLite store serves one replica: it owns every check and claims nothing.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use crate::run::CheckKind;
use crate::scheduler::{Admission, BoxFuture, CheckSpec, Gate, OverrunLog};
use crate::store::{ReplicaRow, Store};

/// A live replica of this location as the ownership hash sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct Peer {
    pub id: String,
    /// Advertised browser sessions (`webdriver.sessions`).
    pub sessions: i64,
}

/// What a replica advertises as its sessions until its scheduler runs: the others leave its
/// share to it only from then (otherwise they stop running checks it has not started yet, and
/// a join leaves gaps).
const NOT_RUNNING: i64 = -1;

/// At most this far back a takeover counts missed slots (claims older than this may have
/// been pruned; a longer silence is the whole location's outage, not a takeover's gap).
const GAP_HORIZON: Duration = Duration::from_secs(3_600);

/// 64-bit FNV-1a followed by the splitmix64 finaliser: stable across builds and platforms
/// (replicas of different versions during a rolling upgrade must agree), and well mixed.
fn hash64(parts: &[&str]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for p in parts {
        for b in p.bytes().chain(std::iter::once(0xff)) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    h = (h ^ (h >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h = (h ^ (h >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
}

/// The check's start phase within its interval: the same on every replica, so every replica
/// computes the same intended starts (`phase + k * interval` from the Unix epoch). Below
/// `max_offset` (and the interval), whole milliseconds.
pub fn phase(name: &str, max_offset: Duration, interval: Duration) -> Duration {
    let cap = crate::config::duration::millis_u64(max_offset.min(interval));
    if cap == 0 {
        return Duration::ZERO;
    }
    Duration::from_millis(hash64(&["phase", name]) % cap)
}

/// The replica of `peers` that owns `check`: weighted rendezvous hashing. Journeys weigh each
/// replica by its advertised sessions (a replica advertising none takes none, unless none
/// advertises any); other kinds weigh every replica 1.
pub fn owner<'a>(check: &str, kind: CheckKind, peers: &'a [Peer]) -> Option<&'a str> {
    let by_sessions = kind == CheckKind::Journey && peers.iter().any(|p| p.sessions > 0);
    peers
        .iter()
        .filter_map(|p| {
            let w = if by_sessions { p.sessions as f64 } else { 1.0 };
            if w <= 0.0 {
                return None;
            }
            // u in (0, 1); -w / ln(u) is the weighted HRW score (larger wins).
            let u = ((hash64(&[check, &p.id]) >> 11) as f64 + 0.5) / (1u64 << 53) as f64;
            Some((-w / u.ln(), p.id.as_str()))
        })
        .max_by(|a, b| a.0.total_cmp(&b.0).then_with(|| b.1.cmp(a.1)))
        .map(|(_, id)| id)
}

struct ClaimReq {
    check: String,
    slot_us: i64,
    /// Won, or the store's error message (it never holds the password).
    answer: oneshot::Sender<Result<bool, String>>,
}

/// This replica's side of the sharing: its view of the location's live replicas, the slots it
/// claimed last, and the claims writer.
pub struct Share {
    me: String,
    location: String,
    /// Off on a SQLite store: this replica is the only one.
    enabled: bool,
    sessions: AtomicI64,
    peers: RwLock<Vec<Peer>>,
    /// The checks of this replica's config, for the owned counts in the API.
    checks: RwLock<Vec<(String, CheckKind)>>,
    /// Per check, the last slot this replica claimed (µs): a slot whose predecessor is not
    /// here is a takeover.
    last: Mutex<HashMap<String, i64>>,
    store: Store,
    claims: mpsc::UnboundedSender<ClaimReq>,
}

impl Share {
    /// `store`: the membership's handle (its own small pool, away from the runs writer).
    pub fn new(me: &str, location: &str, store: Store) -> Arc<Share> {
        let enabled = store.is_postgres();
        let (tx, rx) = mpsc::unbounded_channel();
        let share = Arc::new(Share {
            me: me.to_string(),
            location: location.to_string(),
            enabled,
            sessions: AtomicI64::new(NOT_RUNNING),
            peers: RwLock::new(vec![Peer {
                id: me.to_string(),
                sessions: 0,
            }]),
            checks: RwLock::new(Vec::new()),
            last: Mutex::new(HashMap::new()),
            store: store.clone(),
            claims: tx,
        });
        if enabled {
            tokio::spawn(claim_writer(
                store,
                location.to_string(),
                me.to_string(),
                rx,
            ));
        }
        share
    }

    /// Whether checks are shared (a PostgreSQL store).
    pub fn is_enabled(&self) -> bool {
        self.enabled
    }

    /// The sessions this replica advertises in its heartbeat (-1 until its checks are
    /// scheduled).
    pub fn sessions(&self) -> i64 {
        self.sessions.load(Ordering::Relaxed)
    }

    /// The config's checks and browser sessions (at start and at each reload).
    pub fn configure(&self, checks: &[CheckSpec], sessions: u32) {
        self.sessions.store(i64::from(sessions), Ordering::Relaxed);
        *self.checks.write().expect("share checks") =
            checks.iter().map(|c| (c.name.clone(), c.kind)).collect();
        let mut peers = self.peers.write().expect("share peers");
        if let Some(p) = peers.iter_mut().find(|p| p.id == self.me) {
            p.sessions = i64::from(sessions);
        }
    }

    /// The live replicas as the store listed them: this location's become the view (this
    /// replica always in it, even when its own heartbeat could not be written).
    pub fn set_replicas(&self, rows: &[ReplicaRow]) {
        let mut peers: Vec<Peer> = rows
            .iter()
            .filter(|r| r.location == self.location && r.id != self.me && r.sessions >= 0)
            .map(|r| Peer {
                id: r.id.clone(),
                sessions: r.sessions,
            })
            .collect();
        peers.push(Peer {
            id: self.me.clone(),
            sessions: self.sessions().max(0),
        });
        peers.sort_by(|a, b| a.id.cmp(&b.id));
        *self.peers.write().expect("share peers") = peers;
    }

    pub fn peers(&self) -> Vec<Peer> {
        self.peers.read().expect("share peers").clone()
    }

    /// How many of this replica's configured checks `id` owns in the current view.
    pub fn owned_by(&self, id: &str) -> usize {
        let peers = self.peers();
        if !self.enabled {
            return if id == self.me {
                self.checks.read().expect("share checks").len()
            } else {
                0
            };
        }
        self.checks
            .read()
            .expect("share checks")
            .iter()
            .filter(|(name, kind)| owner(name, *kind, &peers) == Some(id))
            .count()
    }

    async fn claim(&self, check: &str, slot_us: i64) -> Result<bool, String> {
        let (answer, rx) = oneshot::channel();
        let req = ClaimReq {
            check: check.to_string(),
            slot_us,
            answer,
        };
        if self.claims.send(req).is_err() {
            return Err("the claims writer stopped".into());
        }
        rx.await
            .unwrap_or_else(|_| Err("the claims writer stopped".into()))
    }

    /// The slots of `check` before `slot_us` that nobody ran, found when this replica takes it
    /// over: recorded as missed in the store; returns how many.
    async fn account_gap(&self, check: &CheckSpec, slot_us: i64) -> u64 {
        let interval = crate::config::duration::micros_i64(check.schedule.interval).max(1);
        let h = match self
            .store
            .slot_history(&self.location, &check.name, slot_us)
            .await
        {
            Ok(h) => h,
            Err(e) => {
                tracing::warn!(check = %check.name, error = %e, "taking a check over: its last slots are unreadable; a gap, if any, is not counted");
                return 0;
            }
        };
        let Some((claimed, holder)) = h.last_claim else {
            return 0;
        };
        let live = self.peers().iter().any(|p| p.id == holder);
        // A live former owner runs (and stores) what it claimed. A departed one's claimed
        // slots after its last stored run died with it.
        let from = if live || holder == self.me {
            claimed
        } else {
            h.last_run_us
                .filter(|r| *r <= claimed)
                .map_or(claimed, |r| r.max(claimed - 64 * interval))
        };
        let from = from.max(slot_us - crate::config::duration::micros_i64(GAP_HORIZON));
        // Only slots on this check's grid (a config change may have moved the phase).
        let mut slots = Vec::new();
        let mut s = slot_us - interval;
        while s > from {
            slots.push(s);
            s -= interval;
        }
        if slots.is_empty() {
            return 0;
        }
        if let Err(e) = self
            .store
            .claim_missed(&self.location, &self.me, &check.name, &slots)
            .await
        {
            tracing::warn!(check = %check.name, error = %e, "missed slots not recorded in the store");
        }
        tracing::warn!(check = %check.name, missed = slots.len(), previous = %holder, "took the check over: slots nobody ran are counted as missed");
        slots.len() as u64
    }
}

impl Gate for Share {
    fn admit<'a>(
        &'a self,
        check: &'a CheckSpec,
        scheduled_at: DateTime<Utc>,
    ) -> BoxFuture<'a, Admission> {
        Box::pin(async move {
            if !self.enabled {
                return Admission::run(0);
            }
            let peers = self.peers();
            if owner(&check.name, check.kind, &peers) != Some(self.me.as_str()) {
                self.last.lock().expect("share last").remove(&check.name);
                return Admission::skip();
            }
            let slot_us = scheduled_at.timestamp_micros();
            match self.claim(&check.name, slot_us).await {
                Ok(true) => {}
                Ok(false) => {
                    self.last.lock().expect("share last").remove(&check.name);
                    tracing::debug!(check = %check.name, %scheduled_at, "slot claimed by another replica");
                    return Admission::skip();
                }
                // The store is unreachable: run what this replica owns in its last view. A
                // double run (views differing during the outage) is better than a blind spot.
                // Kept as this replica's last slot: once the store is back, the slots it ran
                // meanwhile are not taken for a takeover's gap.
                // The claims writer logs the outage (once, then once a minute): a line per
                // check and slot would flood the log of a replica running thousands.
                Err(e) => {
                    tracing::debug!(check = %check.name, error = %e, "slot not claimed (store unreachable); running it as its owner");
                    self.last
                        .lock()
                        .expect("share last")
                        .insert(check.name.clone(), slot_us);
                    return Admission::run(0);
                }
            }
            // Still this replica's since its last claim: slots skipped in between were its own
            // overruns, which the scheduler counts. Otherwise it takes the check over.
            let previous = self
                .last
                .lock()
                .expect("share last")
                .insert(check.name.clone(), slot_us);
            let missed = match previous {
                Some(_) => 0,
                None => self.account_gap(check, slot_us).await,
            };
            Admission::run(missed)
        })
    }
}

/// The claims writer's view of a store outage: when it began, the slots run unclaimed in it,
/// and its warning, throttled like the scheduler's overrun warning (once, then once a minute).
#[derive(Debug, Default)]
struct Outage {
    since: Option<Instant>,
    log: OverrunLog,
    unclaimed_total: u64,
}

impl Outage {
    /// `slots` failed to be claimed at `now`; the count to log if a line is due (the first
    /// failure, then once a minute).
    fn failed(&mut self, now: Instant, slots: u64) -> Option<u64> {
        self.since.get_or_insert(now);
        self.unclaimed_total += slots;
        self.log.note(now, slots)
    }

    /// A claim went through at `now`: how long the outage lasted and the slots run unclaimed,
    /// if there was one.
    fn ended(&mut self, now: Instant) -> Option<(Duration, u64)> {
        let since = self.since.take()?;
        let total = self.unclaimed_total;
        *self = Outage::default();
        Some((now.saturating_duration_since(since), total))
    }
}

/// Claims the slots due together in one statement: while one statement runs, the next
/// requests queue and go in the next one.
async fn claim_writer(
    store: Store,
    location: String,
    me: String,
    mut rx: mpsc::UnboundedReceiver<ClaimReq>,
) {
    let mut batch: Vec<ClaimReq> = Vec::with_capacity(64);
    let mut outage = Outage::default();
    while rx.recv_many(&mut batch, 1_000).await > 0 {
        let slots: Vec<(String, i64)> =
            batch.iter().map(|r| (r.check.clone(), r.slot_us)).collect();
        match store.claim_slots(&location, &me, &slots).await {
            Ok(won) => {
                if let Some((lasted, unclaimed)) = outage.ended(Instant::now()) {
                    tracing::info!(
                        lasted_s = lasted.as_secs(),
                        unclaimed,
                        "slot claims reach the store again"
                    );
                }
                let won: std::collections::HashSet<(String, i64)> = won.into_iter().collect();
                for r in batch.drain(..) {
                    let ok = won.contains(&(r.check, r.slot_us));
                    let _ = r.answer.send(Ok(ok));
                }
            }
            Err(e) => {
                let msg = e.to_string();
                if let Some(unclaimed) = outage.failed(Instant::now(), batch.len() as u64) {
                    tracing::warn!(
                        error = %msg,
                        unclaimed,
                        "slot claims fail (store unreachable): each replica runs the checks it owns in its last view (logged at most once a minute)"
                    );
                }
                for r in batch.drain(..) {
                    let _ = r.answer.send(Err(msg.clone()));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peers(n: usize, sessions: i64) -> Vec<Peer> {
        (0..n)
            .map(|i| Peer {
                id: format!("r{i}"),
                sessions,
            })
            .collect()
    }

    fn counts(names: &[String], kind: CheckKind, peers: &[Peer]) -> HashMap<String, usize> {
        let mut c = HashMap::new();
        for n in names {
            *c.entry(owner(n, kind, peers).unwrap().to_string())
                .or_insert(0) += 1;
        }
        c
    }

    #[test]
    fn checks_spread_evenly_and_a_join_moves_only_the_newcomers_share() {
        let names: Vec<String> = (0..300).map(|i| format!("http_{i:03}")).collect();
        let three = peers(3, 2);
        let c = counts(&names, CheckKind::Http, &three);
        assert_eq!(c.len(), 3);
        assert!(c.values().all(|n| (50..=150).contains(n)), "{c:?}");
        let four = peers(4, 2);
        let moved: Vec<&String> = names
            .iter()
            .filter(|n| owner(n, CheckKind::Http, &three) != owner(n, CheckKind::Http, &four))
            .collect();
        // Every moved check moved to the newcomer.
        assert!(
            moved
                .iter()
                .all(|n| owner(n, CheckKind::Http, &four) == Some("r3"))
        );
        assert!((38..=112).contains(&moved.len()), "{}", moved.len());
    }

    #[test]
    fn journeys_follow_sessions_and_skip_replicas_without_any() {
        let names: Vec<String> = (0..400).map(|i| format!("journey_{i}")).collect();
        let p = vec![
            Peer {
                id: "big".into(),
                sessions: 3,
            },
            Peer {
                id: "small".into(),
                sessions: 1,
            },
            Peer {
                id: "none".into(),
                sessions: 0,
            },
        ];
        let c = counts(&names, CheckKind::Journey, &p);
        assert_eq!(c.get("none"), None);
        let big = c["big"] as f64 / 400.0;
        assert!((0.65..=0.85).contains(&big), "{c:?}");
        // HTTP checks ignore sessions.
        let h = counts(&names, CheckKind::Http, &p);
        assert!(h.values().all(|n| (90..=180).contains(n)), "{h:?}");
    }

    #[test]
    fn a_claims_outage_is_logged_once_a_minute_and_its_end_once() {
        let t0 = Instant::now();
        let mut o = Outage::default();
        assert_eq!(o.ended(t0), None, "no outage, nothing to say");
        assert_eq!(
            o.failed(t0, 10),
            Some(10),
            "the first failure is logged at once"
        );
        assert_eq!(o.failed(t0 + Duration::from_secs(1), 5), None);
        assert_eq!(o.failed(t0 + Duration::from_secs(30), 5), None);
        assert_eq!(o.failed(t0 + Duration::from_secs(60), 1), Some(11));
        assert_eq!(
            o.ended(t0 + Duration::from_secs(70)),
            Some((Duration::from_secs(70), 21)),
            "the end says how long it lasted and every slot run unclaimed"
        );
        assert_eq!(
            o.failed(t0 + Duration::from_secs(71), 2),
            Some(2),
            "a new outage is logged at once"
        );
    }

    #[test]
    fn phases_are_deterministic_and_below_the_cap() {
        let p = phase(
            "auth_health",
            Duration::from_secs(5),
            Duration::from_secs(5),
        );
        assert_eq!(
            p,
            phase(
                "auth_health",
                Duration::from_secs(5),
                Duration::from_secs(5)
            )
        );
        assert!(p < Duration::from_secs(5));
        assert_eq!(
            phase("x", Duration::ZERO, Duration::from_secs(5)),
            Duration::ZERO
        );
        let spread: std::collections::HashSet<u128> = (0..100)
            .map(|i| {
                phase(
                    &format!("c{i}"),
                    Duration::from_secs(30),
                    Duration::from_secs(60),
                )
                .as_millis()
                    / 1000
            })
            .collect();
        assert!(spread.len() > 15, "{spread:?}");
    }
}
