//! Membership in a cluster of replicas sharing one store: heartbeats, the leader lease, and the
//! role changes the daemon acts on.
//!
//! The replicas of a location share its checks (see [`share`]). Exactly one, the leader, evaluates rules and SLOs
//! over every location's data and owns notification. Leadership is a lease row in the store
//! (see `store::cluster`): renewed every `renew_every`, judged by the store's clock, taken over
//! by a follower once it has expired, each takeover with a higher epoch that fences the former
//! leader's writes. This module owns the lease's bookkeeping; what leading means (restoring
//! alert state, starting delivery, reading the other replicas' runs) is the daemon's, behind
//! [`Roles`].
//!
//! Locally, a leader believes it leads only until `renewed at + remaining lease`, measured on
//! the monotonic clock from *before* the renewal was sent: a process stopped past its lease
//! (SIGSTOP, a long pause) knows it no longer leads as soon as it runs again, before asking the
//! store, and the store refuses its writes anyway.
//!
//! A single-node SQLite store takes the lease by force: its file lock (see [`SqliteLock`])
//! already makes this process the only one.

pub mod feed;
pub mod share;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::metrics::catalog;
use crate::metrics::registry::Registry;
use crate::scheduler::BoxFuture;
use crate::store::{Fence, ReplicaRow, Store};

/// The lease's timing (`cluster:` in the config).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ClusterConfig {
    /// How long a lease lasts unless renewed: a dead leader is replaced within about this plus
    /// `renew_every`.
    pub lease: Duration,
    /// How often the lease is renewed (or, by a follower, tried) and the heartbeat written.
    pub renew_every: Duration,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        ClusterConfig {
            lease: Duration::from_secs(10),
            renew_every: Duration::from_secs(2),
        }
    }
}

/// `<host name>-<pid>`: unique per process on one host, readable in the API.
pub fn default_replica_id() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok().filter(|h| !h.is_empty()))
        .unwrap_or_else(|| "synmon".to_string());
    format!("{host}-{}", std::process::id())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Leader,
    Follower,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Leader => "leader",
            Role::Follower => "follower",
        }
    }
}

/// What the daemon does when this replica's role changes, and at every membership tick.
pub trait Roles: Send + Sync {
    /// This replica now leads at `epoch`. `continuity`: it also held the epoch just before and
    /// no other replica led in between (its memory is the latest state; otherwise the store's
    /// is). Called with the fence already set to `epoch`.
    fn lead(&self, epoch: i64, continuity: bool) -> BoxFuture<'_, ()>;
    /// This replica no longer leads (lease lost, expired or given up). The fence is cleared
    /// before the call.
    fn follow(&self) -> BoxFuture<'_, ()>;
    /// After every tick, with the role then.
    fn tick(&self, role: Role) -> BoxFuture<'_, ()>;
}

#[derive(Debug, Clone, Default)]
struct State {
    leading: bool,
    epoch: i64,
    /// Until when, on this host's monotonic clock, the lease is certainly still ours.
    valid_until: Option<Instant>,
    /// The epoch this replica last held (continuity of a re-taken lease).
    last_held: i64,
    /// The highest epoch seen: a lease recreated after its table was dropped starts above it.
    max_seen: i64,
    leader: Option<String>,
}

/// Whether the store could be written at the last heartbeat.
#[derive(Debug, Clone)]
pub struct StoreHealth {
    pub writable: bool,
    /// The last write error (the store's message; it never holds the password).
    pub error: Option<String>,
    pub checked: Option<Instant>,
}

/// What `GET /api/v1/cluster` answers.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Status {
    pub replica: String,
    pub location: String,
    pub role: Role,
    /// The current lease's epoch (the leader's, as every replica sees it).
    pub epoch: i64,
    pub leader: Option<String>,
    pub replicas: Vec<ReplicaStatus>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct ReplicaStatus {
    pub id: String,
    pub location: String,
    pub role: Role,
    /// RFC 3339, UTC, whole seconds.
    pub last_seen: String,
    /// The browser sessions it advertises (`webdriver.sessions`).
    pub sessions: i64,
    /// How many of this replica's location's checks it owns in this replica's view; `null` for
    /// another location's replicas (their checks are not known here).
    pub checks: Option<usize>,
}

pub struct Membership {
    id: String,
    location: String,
    config: ClusterConfig,
    store: Store,
    fence: Arc<Fence>,
    single_node: bool,
    registry: Registry,
    state: Mutex<State>,
    health: Mutex<StoreHealth>,
    live: Mutex<usize>,
    share: Arc<share::Share>,
}

impl Membership {
    /// `store` is the replica's plain handle (not fenced); `single_node`: a SQLite store, whose
    /// lease is taken by force.
    pub fn new(
        id: &str,
        location: &str,
        config: ClusterConfig,
        store: Store,
        registry: Registry,
    ) -> Arc<Membership> {
        let single_node = !store.is_postgres();
        let share = share::Share::new(id, location, store.clone());
        Arc::new(Membership {
            share,
            id: id.to_string(),
            location: location.to_string(),
            config,
            fence: Fence::new(id),
            store,
            single_node,
            registry,
            state: Mutex::new(State::default()),
            health: Mutex::new(StoreHealth {
                writable: true,
                error: None,
                checked: None,
            }),
            live: Mutex::new(1),
        })
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    /// A SQLite store: this daemon is the only replica.
    pub fn is_single_node(&self) -> bool {
        self.single_node
    }

    pub fn location(&self) -> &str {
        &self.location
    }

    /// This replica's share of the location's checks.
    pub fn share(&self) -> Arc<share::Share> {
        self.share.clone()
    }

    pub fn config(&self) -> ClusterConfig {
        self.config
    }

    /// The fence a leader's store handle carries.
    pub fn fence(&self) -> Arc<Fence> {
        self.fence.clone()
    }

    /// Whether this replica leads now (and its lease is certainly unexpired).
    pub fn is_leader(&self) -> bool {
        let s = self.state.lock().expect("cluster state");
        s.leading && (self.single_node || s.valid_until.is_some_and(|v| Instant::now() < v))
    }

    /// How long this replica certainly still leads, by its monotonic clock; `None` when it
    /// does not lead. Unbounded on a single node.
    pub fn lease_remaining(&self) -> Option<Duration> {
        let s = self.state.lock().expect("cluster state");
        if !s.leading {
            return None;
        }
        if self.single_node {
            return Some(Duration::MAX);
        }
        s.valid_until
            .and_then(|v| v.checked_duration_since(Instant::now()))
            .filter(|d| !d.is_zero())
    }

    pub fn role(&self) -> Role {
        if self.is_leader() {
            Role::Leader
        } else {
            Role::Follower
        }
    }

    pub fn epoch(&self) -> i64 {
        self.state.lock().expect("cluster state").epoch
    }

    pub fn store_health(&self) -> StoreHealth {
        self.health.lock().expect("cluster health").clone()
    }

    /// One membership round: heartbeat, then renew or try the lease; role changes go to
    /// `roles`. Called once at start (so the first evaluation already knows its role) and then
    /// every `renew_every` by [`Membership::run`].
    pub async fn round(&self, roles: &dyn Roles) {
        let started = Instant::now();
        self.beat().await;
        let (leading, epoch, last_held, max_seen) = {
            let s = self.state.lock().expect("cluster state");
            (s.leading, s.epoch, s.last_held, s.max_seen)
        };
        if leading {
            match self
                .store
                .renew_lease(&self.id, epoch, self.config.lease)
                .await
            {
                Ok(Some(l)) => {
                    let mut s = self.state.lock().expect("cluster state");
                    s.valid_until = Some(started + l.remaining);
                    s.leader = Some(self.id.clone());
                }
                Ok(None) if self.single_node => self.take(roles, true, last_held).await,
                Ok(None) => {
                    tracing::warn!(replica = %self.id, epoch, "leader lease lost: another replica took it or it expired; following");
                    self.step_down(roles).await;
                }
                Err(e) => {
                    if !self.is_leader() {
                        tracing::error!(replica = %self.id, epoch, error = %e, "leader lease expired while the store could not be reached; following");
                        self.step_down(roles).await;
                    } else {
                        tracing::warn!(replica = %self.id, epoch, error = %e, "leader lease not renewed; retrying");
                    }
                }
            }
        } else {
            self.take(roles, self.single_node, last_held.max(max_seen))
                .await;
        }
        let role = self.role();
        self.export(role);
        roles.tick(role).await;
    }

    async fn take(&self, roles: &dyn Roles, force: bool, known: i64) {
        let started = Instant::now();
        match self
            .store
            .acquire_lease(&self.id, self.config.lease, known + 1, force)
            .await
        {
            Ok(Some(l)) => {
                let continuity = {
                    let mut s = self.state.lock().expect("cluster state");
                    let continuity = s.last_held > 0 && l.epoch == s.last_held + 1;
                    s.leading = true;
                    s.epoch = l.epoch;
                    s.last_held = l.epoch;
                    s.max_seen = s.max_seen.max(l.epoch);
                    s.valid_until = Some(started + l.remaining);
                    s.leader = Some(self.id.clone());
                    continuity
                };
                self.fence.set(l.epoch);
                tracing::info!(replica = %self.id, location = %self.location, epoch = l.epoch, continuity, "leading: evaluating rules and SLOs and delivering notifications");
                roles.lead(l.epoch, continuity).await;
            }
            Ok(None) => match self.store.current_lease().await {
                Ok(Some(l)) => {
                    let mut s = self.state.lock().expect("cluster state");
                    s.max_seen = s.max_seen.max(l.epoch);
                    s.leader = (!l.remaining.is_zero()).then_some(l.holder);
                }
                Ok(None) => self.state.lock().expect("cluster state").leader = None,
                Err(e) => tracing::debug!(error = %e, "leader lease unreadable"),
            },
            Err(e) => {
                tracing::warn!(replica = %self.id, error = %e, "could not try the leader lease")
            }
        }
    }

    async fn step_down(&self, roles: &dyn Roles) {
        self.fence.clear();
        {
            let mut s = self.state.lock().expect("cluster state");
            s.leading = false;
            s.valid_until = None;
            s.leader = None;
        }
        roles.follow().await;
    }

    /// A heartbeat written now, for `/readyz`: whether the store takes writes at this moment
    /// (a database whose tables were dropped still answers pings). The membership round
    /// repairs a missing schema; this only reports.
    pub async fn check_writable(&self) -> Result<(), String> {
        // Probes hammering `/readyz` share one write per second.
        {
            let h = self.health.lock().expect("cluster health");
            if h.checked
                .is_some_and(|t| t.elapsed() < Duration::from_secs(1))
            {
                return match (&h.error, h.writable) {
                    (Some(e), false) => Err(e.clone()),
                    _ => Ok(()),
                };
            }
        }
        let result = self
            .store
            .heartbeat_with(
                &self.id,
                &self.location,
                self.role().as_str(),
                self.epoch(),
                self.share.sessions(),
            )
            .await
            .map_err(|e| e.to_string());
        let mut h = self.health.lock().expect("cluster health");
        h.writable = result.is_ok();
        h.error = result.as_ref().err().cloned();
        h.checked = Some(Instant::now());
        result
    }

    /// The heartbeat: a write. A schema that vanished (tables dropped under the running
    /// daemon) is re-applied here, without a restart.
    async fn beat(&self) {
        let role = self.role().as_str();
        let epoch = self.epoch();
        let sessions = self.share.sessions();
        let mut result = self
            .store
            .heartbeat_with(&self.id, &self.location, role, epoch, sessions)
            .await;
        if let Err(e) = &result
            && e.is_missing_table()
        {
            tracing::error!(error = %e, "the store's tables are missing; applying the migrations again");
            match self.store.migrate().await {
                Ok(()) => {
                    tracing::info!("store schema re-applied");
                    result = self
                        .store
                        .heartbeat_with(&self.id, &self.location, role, epoch, sessions)
                        .await;
                }
                Err(e) => tracing::error!(error = %e, "could not re-apply the store's schema"),
            }
        }
        let mut h = self.health.lock().expect("cluster health");
        match result {
            Ok(()) => {
                if !h.writable {
                    tracing::info!("the store accepts writes again");
                }
                h.writable = true;
                h.error = None;
            }
            Err(e) => {
                if h.writable {
                    tracing::error!(error = %e, "the store refuses writes");
                }
                h.writable = false;
                h.error = Some(e.to_string());
            }
        }
        h.checked = Some(Instant::now());
    }

    fn export(&self, role: Role) {
        let now = chrono::Utc::now();
        let labels = [
            ("replica", self.id.as_str()),
            ("location", self.location.as_str()),
        ];
        let r = &self.registry;
        let leading = if role == Role::Leader { 1.0 } else { 0.0 };
        let _ = r.set_gauge(catalog::CLUSTER_LEADER.name, &labels, leading, now);
        let _ = r.set_gauge(
            catalog::CLUSTER_EPOCH.name,
            &labels,
            self.state.lock().expect("cluster state").max_seen as f64,
            now,
        );
        let live = *self.live.lock().expect("cluster live");
        let _ = r.set_gauge(catalog::CLUSTER_REPLICAS.name, &labels, live as f64, now);
    }

    /// Runs rounds every `renew_every` until `stop` turns true; then gives the lease up, so a
    /// follower takes over at once rather than after the expiry.
    pub async fn run(
        self: Arc<Self>,
        roles: Arc<dyn Roles>,
        mut stop: tokio::sync::watch::Receiver<bool>,
    ) {
        let mut tick = tokio::time::interval(self.config.renew_every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = stop.wait_for(|s| *s) => break,
            }
            self.round(roles.as_ref()).await;
            self.refresh_live().await;
        }
    }

    /// Gives the lease up if this replica holds it (a graceful stop).
    pub async fn leave(&self, roles: &dyn Roles) {
        let (leading, epoch) = {
            let s = self.state.lock().expect("cluster state");
            (s.leading, s.epoch)
        };
        if leading {
            // Delivery stops first, while the fence still holds, so an attempt in progress is
            // recorded as sent rather than left for the next leader to send again.
            roles.follow().await;
            self.step_down(roles).await;
            if let Err(e) = self.store.release_lease(&self.id, epoch).await {
                tracing::warn!(error = %e, "leader lease not released; a follower takes over when it expires");
            } else {
                tracing::info!(replica = %self.id, epoch, "leader lease released");
            }
        }
    }

    /// Closes the membership's own connections (a graceful stop).
    pub async fn close(&self) {
        self.store.close().await;
    }

    /// How long a replica's heartbeat may be old and it still count as live.
    fn live_within(&self) -> Duration {
        (self.config.renew_every * 3).max(self.config.lease)
    }

    /// Reads the live replicas: their count for the gauge, this location's for the share of
    /// checks. Kept as it was while the store cannot be read.
    pub async fn refresh_live(&self) {
        match self.store.replicas(self.live_within()).await {
            Ok(rows) => {
                *self.live.lock().expect("cluster live") = rows.len().max(1);
                self.share.set_replicas(&rows);
            }
            Err(e) => {
                tracing::debug!(error = %e, "live replicas unreadable; keeping the last view")
            }
        }
    }

    /// The cluster as the store knows it, for the API. A replica's role is judged by the
    /// lease, not by what it last wrote: a leader killed mid-term is shown as it was only
    /// until its lease expires.
    pub async fn status(&self) -> Result<Status, crate::store::StoreError> {
        let rows = self.store.replicas(self.live_within()).await?;
        let lease = self.store.current_lease().await?;
        let epoch = lease.as_ref().map_or(0, |l| l.epoch);
        let leader = lease.filter(|l| !l.remaining.is_zero()).map(|l| l.holder);
        let replicas = rows
            .into_iter()
            .map(|r: ReplicaRow| ReplicaStatus {
                role: if leader.as_deref() == Some(r.id.as_str()) {
                    Role::Leader
                } else {
                    Role::Follower
                },
                last_seen: r
                    .last_seen
                    .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                sessions: r.sessions,
                checks: (r.location == self.location).then(|| self.share.owned_by(&r.id)),
                id: r.id,
                location: r.location,
            })
            .collect();
        Ok(Status {
            replica: self.id.clone(),
            location: self.location.clone(),
            role: self.role(),
            epoch,
            leader,
            replicas,
        })
    }
}

/// Refuses a second daemon on one SQLite store: an exclusive lock on `<store>.lock`, held for
/// the process's life (the OS releases it when the process dies, even by SIGKILL).
#[derive(Debug)]
pub struct SqliteLock {
    _file: std::fs::File,
    pub path: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error(
        "the SQLite store {store} is in use by another synmon daemon{holder}: SQLite serves one replica; to run several, give them one PostgreSQL store (`store.url: postgres://...`)"
    )]
    Busy { store: String, holder: String },
    #[error("cannot lock the SQLite store at {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
}

impl SqliteLock {
    pub fn acquire(db: &Path, replica: &str) -> Result<SqliteLock, LockError> {
        use std::io::{Read, Seek, Write};
        let mut path = db.as_os_str().to_owned();
        path.push(".lock");
        let path = PathBuf::from(path);
        let io = |source| LockError::Io {
            path: path.display().to_string(),
            source,
        };
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                let holder = holder.trim();
                return Err(LockError::Busy {
                    store: db.display().to_string(),
                    holder: if holder.is_empty() {
                        String::new()
                    } else {
                        format!(" (replica {holder})")
                    },
                });
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(io(e)),
        }
        file.set_len(0).map_err(io)?;
        file.rewind().map_err(io)?;
        file.write_all(replica.as_bytes()).map_err(io)?;
        Ok(SqliteLock { _file: file, path })
    }
}
