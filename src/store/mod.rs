//! The store: runs with their steps and artifacts (SQLite by default, PostgreSQL for HA).
//!
//! One [`Store`] speaks to either database, chosen by URL: `sqlite://PATH` (the file and its
//! folder are created if missing, WAL mode) or `postgres://...` (several replicas may share one).
//! [`Store::connect`] applies the same schema versions to both at start (see [`migrations`]).
//!
//! Every query is written once in SQL both dialects accept (`$1` placeholders work in SQLite too)
//! and compiled for each pool by the `with_pool!` macro, so the two cannot drift apart.
//!
//! Layout, one file per area (later issues add theirs beside these, with a migration each):
//! - `runs.rs`: runs, steps, artifacts; retention ([`Store::prune`]).
//! - `alerts.rs`: the alert evaluator's state.
//! - `outbox.rs`: the notification outbox, the notification log and per-group receiver state.
//! - `cluster.rs`: the leader lease, replica heartbeats and the fence of leader writes.
//! - `feed.rs`: other replicas' runs in arrival order (the leader's evaluation input).
//! - `locations.rs`: the latest run per check and location (every location's status).
//!
//! Errors never carry the database password: connection errors are reported with the URL's
//! password replaced by `***` and any occurrence of it scrubbed from the driver's message.

mod alerts;
pub mod cluster;
mod feed;
mod locations;
mod migrations;
mod outbox;
mod progress;
mod runs;
mod silences;

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Connection, PgConnection, PgPool, SqliteConnection, SqlitePool};

use crate::config::{REDACTED, Redactor, Secret};
use migrations::Dialect;

pub use alerts::{ALERT_STATE_ID, ALERT_VIEW_ID};
pub use cluster::{Fence, Lease, ReplicaRow, SlotHistory};
pub use feed::FedRun;
pub use locations::{LocationLatest, OutcomeCounts};
pub use outbox::{LogEntry, NewNotification, OutboxRow, OutboxStatus};
pub use progress::WriteProgress;
pub use runs::{GateRuns, Pruned, RunPoint, RunRow, RunSummary, StoredRun};
pub use silences::StoredSilence;

/// How long a query waits for a free connection (or SQLite for a lock) before failing, so
/// `/readyz` and the recorder report a stuck database instead of hanging.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

/// How long PostgreSQL lets a session sit idle inside a transaction before ending it (see
/// `connect`). Every transaction here runs its statements back to back.
const IDLE_IN_TRANSACTION_MS: &str = "5000";

/// How long re-applying the schema under a running daemon may take before it is given up (and
/// tried again at the next heartbeat).
const MIGRATE_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("unsupported store URL {url}: expected sqlite://PATH or postgres://...")]
    UnsupportedUrl { url: String },
    #[error("cannot open the store at {url}: {message}")]
    Connect { url: String, message: String },
    #[error("cannot migrate the store at {url}: {message}")]
    Migrate { url: String, message: String },
    #[error("store query failed")]
    Query(#[from] sqlx::Error),
    #[error("the store holds an unreadable {column} value {value:?}")]
    Corrupt { column: &'static str, value: String },
    /// A leader write after another replica took the lease (or after this one's expired).
    #[error("write refused: replica {holder} no longer holds the leader lease of epoch {epoch}")]
    Fenced { holder: String, epoch: i64 },
}

impl StoreError {
    /// Whether the same write may succeed later: the database unreachable, restarting, out of
    /// connections or locked, or its tables missing (migrations re-apply them). A write
    /// refused for its content (a constraint) is not.
    pub fn is_transient(&self) -> bool {
        match self {
            StoreError::Connect { .. } => true,
            StoreError::Query(e) => match e {
                sqlx::Error::Io(_)
                | sqlx::Error::PoolTimedOut
                | sqlx::Error::PoolClosed
                | sqlx::Error::WorkerCrashed
                | sqlx::Error::Tls(_)
                | sqlx::Error::Protocol(_) => true,
                sqlx::Error::Database(d) => {
                    let code = d.code().unwrap_or_default();
                    ["08", "53", "57", "42P01"]
                        .iter()
                        .any(|c| code.starts_with(c))
                        || d.message().contains("no such table")
                        || d.message().contains("database is locked")
                }
                _ => false,
            },
            _ => false,
        }
    }

    /// The schema is gone (tables dropped): migrations must run again.
    pub fn is_missing_table(&self) -> bool {
        let StoreError::Query(e) = self else {
            return false;
        };
        match e {
            sqlx::Error::Database(d) => {
                d.code().as_deref() == Some("42P01") || d.message().contains("no such table")
            }
            _ => false,
        }
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

#[derive(Clone, Debug)]
enum Pool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// Runs `$body` against whichever pool the store holds, with `$pool` bound to it and `$db` a type
/// alias for its `sqlx::Database`; the body is compiled once per dialect.
macro_rules! with_pool {
    ($store:expr, $pool:ident, $db:ident => $body:expr) => {
        match &$store.pool {
            $crate::store::Pool::Sqlite($pool) => {
                #[allow(dead_code)]
                type $db = ::sqlx::Sqlite;
                $body
            }
            $crate::store::Pool::Postgres($pool) => {
                #[allow(dead_code)]
                type $db = ::sqlx::Postgres;
                $body
            }
        }
    };
}
pub(crate) use with_pool;

/// Each SQLite connection's page cache, as SQLite's `cache_size` pragma (negative: KiB), 512 KiB
/// instead of SQLite's 2 MiB. The pool's four connections filled their 2 MiB caches within two
/// minutes of the daemon's start, 7.5 MiB of its resident memory (BENCHMARKS.md, "Peak RSS,
/// session 12"), and nothing gained by it: the writer appends at the right edge of the runs
/// table and its indexes, and the gate's and the report's 30-day reads are larger than any
/// cache and come from the OS's page cache either way (`cargo bench --bench gate` read the same
/// with 256 KiB, 512 KiB and 2 MiB: "Peak RSS, session 13").
const SQLITE_CACHE_SIZE: &str = "-512";

/// Runs, steps and artifacts in SQLite or PostgreSQL. Cheap to clone (a shared pool).
#[derive(Clone, Debug)]
pub struct Store {
    pool: Pool,
    /// The URL with its password replaced, for messages.
    url: String,
    /// The replica whose runs this handle stores (`runs.replica`); `None` outside the daemon.
    replica: Option<Arc<str>>,
    /// Set on the leader's handle: its writes to alert state, the notification log and the
    /// outbox are refused once another replica holds the lease (see [`cluster`]).
    fence: Option<Arc<Fence>>,
}

impl Store {
    /// Opens the store named by `url` and brings its schema up to date (idempotent; safe to run
    /// from several replicas at once on PostgreSQL).
    pub async fn connect(url: &Secret) -> Result<Store> {
        let raw = url.expose();
        let scrub = Scrubber::new(raw);
        let shown = scrub.url.clone();
        let connect_err = |e: sqlx::Error| StoreError::Connect {
            url: shown.clone(),
            message: scrub.text(&e.to_string()),
        };

        let (pool, dialect) = if raw.starts_with("sqlite:") {
            let options = SqliteConnectOptions::from_str(raw)
                .map_err(connect_err)?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                // With WAL, NORMAL is durable across process crashes; a power loss may drop the
                // last transactions, which a monitoring history can afford.
                .synchronous(SqliteSynchronous::Normal)
                .foreign_keys(true)
                .busy_timeout(ACQUIRE_TIMEOUT)
                .pragma("cache_size", SQLITE_CACHE_SIZE);
            let memory = raw.contains(":memory:") || raw.contains("mode=memory");
            if !memory
                && let Some(dir) = options.get_filename().parent()
                && !dir.as_os_str().is_empty()
            {
                tokio::fs::create_dir_all(dir)
                    .await
                    .map_err(|e| StoreError::Connect {
                        url: shown.clone(),
                        message: scrub.text(&format!("creating {}: {e}", dir.display())),
                    })?;
            }
            // An in-memory database lives in one connection: keep exactly that one forever.
            let pool_options = if memory {
                SqlitePoolOptions::new()
                    .max_connections(1)
                    .min_connections(1)
                    .idle_timeout(None)
                    .max_lifetime(None)
            } else {
                SqlitePoolOptions::new().max_connections(4)
            };
            // One plain connection first: a pool reports only "timed out" when it cannot connect.
            SqliteConnection::connect_with(&options)
                .await
                .map_err(connect_err)?
                .close()
                .await
                .map_err(connect_err)?;
            let pool = pool_options
                .acquire_timeout(ACQUIRE_TIMEOUT)
                .connect_with(options)
                .await
                .map_err(connect_err)?;
            (Pool::Sqlite(pool), Dialect::Sqlite)
        } else if raw.starts_with("postgres://") || raw.starts_with("postgresql://") {
            // A transaction left idle by a stopped (SIGSTOP) or hung process is ended by the
            // server: a leader's fenced write holds a share lock on the lease row, which would
            // otherwise keep every follower from taking the lease for as long as it is stopped.
            let options = PgConnectOptions::from_str(raw)
                .map_err(connect_err)?
                .options([(
                    "idle_in_transaction_session_timeout",
                    IDLE_IN_TRANSACTION_MS,
                )]);
            // One plain connection first: a pool reports only "timed out" when it cannot connect.
            PgConnection::connect_with(&options)
                .await
                .map_err(connect_err)?
                .close()
                .await
                .map_err(connect_err)?;
            let pool = PgPoolOptions::new()
                .max_connections(8)
                .acquire_timeout(ACQUIRE_TIMEOUT)
                .connect_with(options)
                .await
                .map_err(connect_err)?;
            (Pool::Postgres(pool), Dialect::Postgres)
        } else {
            return Err(StoreError::UnsupportedUrl { url: shown });
        };

        let store = Store {
            pool,
            url: shown,
            replica: None,
            fence: None,
        };
        let migrator = migrations::migrator(dialect);
        let migrated = match &store.pool {
            Pool::Sqlite(p) => migrator.run(p).await,
            Pool::Postgres(p) => migrator.run(p).await,
        };
        if let Err(e) = migrated {
            store.close().await;
            return Err(StoreError::Migrate {
                url: store.url.clone(),
                message: scrub.text(&e.to_string()),
            });
        }
        tracing::debug!(store = %store.url, "store ready");
        Ok(store)
    }

    /// A handle that marks the runs it stores as `replica`'s.
    pub fn for_replica(mut self, replica: &str) -> Store {
        self.replica = Some(Arc::from(replica));
        self
    }

    /// The replica this handle stores runs for, if any.
    pub fn replica(&self) -> Option<&str> {
        self.replica.as_deref()
    }

    /// A handle whose leader writes (alert state, notification log, outbox) are checked
    /// against `fence` in their transaction (see [`cluster`]).
    pub fn fenced(mut self, fence: Arc<Fence>) -> Store {
        self.fence = Some(fence);
        self
    }

    /// Applies the schema versions again (after the tables were dropped under a running
    /// daemon); a no-op when they are in place.
    ///
    /// In PostgreSQL the migrator holds an advisory lock while it works (so replicas apply
    /// each version once) and does not release it when a step fails: on a pooled connection
    /// that lock would outlive the failure and every later attempt, from any replica, would
    /// wait for it forever. So it runs on a connection of its own, closed (or dropped: the
    /// session ends and its locks with it) whatever happens, and within [`MIGRATE_TIMEOUT`].
    pub async fn migrate(&self) -> Result<()> {
        let err = |message: String| StoreError::Migrate {
            url: self.url.clone(),
            message,
        };
        let work = async {
            match &self.pool {
                Pool::Sqlite(p) => migrations::migrator(Dialect::Sqlite)
                    .run(p)
                    .await
                    .map_err(|e| e.to_string()),
                Pool::Postgres(p) => {
                    let own = PgPoolOptions::new()
                        .max_connections(1)
                        .acquire_timeout(ACQUIRE_TIMEOUT)
                        .connect_with((*p.connect_options()).clone())
                        .await
                        .map_err(|e| e.to_string())?;
                    let migrated = migrations::migrator(Dialect::Postgres)
                        .run(&own)
                        .await
                        .map_err(|e| e.to_string());
                    own.close().await;
                    migrated
                }
            }
        };
        match tokio::time::timeout(MIGRATE_TIMEOUT, work).await {
            Ok(r) => r.map_err(err),
            Err(_) => Err(err(format!(
                "timed out after {} s",
                MIGRATE_TIMEOUT.as_secs()
            ))),
        }
    }

    /// A handle on a pool of its own, of `connections` connections (the same database and
    /// options): the cluster's heartbeats and lease renewals must not queue behind the runs
    /// writer, the feed and API readers. On SQLite, the same pool (one process, one file).
    pub async fn with_own_pool(&self, connections: u32) -> Result<Store> {
        let pool = match &self.pool {
            Pool::Sqlite(p) => Pool::Sqlite(p.clone()),
            Pool::Postgres(p) => Pool::Postgres(
                PgPoolOptions::new()
                    .max_connections(connections)
                    .acquire_timeout(ACQUIRE_TIMEOUT)
                    .connect_with((*p.connect_options()).clone())
                    .await
                    .map_err(|e| self.own_pool_error(e))?,
            ),
        };
        Ok(Store {
            pool,
            ..self.clone()
        })
    }

    /// A handle for the daemon's run writer. On a SQLite file, a pool of its own with one
    /// connection, kept open; on PostgreSQL and in memory, the same pool.
    ///
    /// Why: a pool hands its idle connections out in turn, so every connection of the shared
    /// pool served the writer: each prepared the writer's multi-row inserts (one statement per
    /// chunk length and table, up to ~15 KB of SQLite program each) and filled its page cache
    /// with the right edge of the runs table. Four connections held four copies of both:
    /// heaptrack put SQLite at 6.5 MB of a 1,000-check daemon's heap (BENCHMARKS.md, "Peak
    /// RSS, session 15"). With one connection writing runs, the shared pool's connections
    /// serve the other reads and writes and close when idle. PostgreSQL keeps statements and
    /// pages in the server; an in-memory database is its one connection.
    pub async fn for_run_writer(&self) -> Result<Store> {
        let Pool::Sqlite(p) = &self.pool else {
            return Ok(self.clone());
        };
        if self.sqlite_file().is_none() || self.url.contains("mode=memory") {
            return Ok(self.clone());
        }
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_with((*p.connect_options()).clone())
            .await
            .map_err(|e| self.own_pool_error(e))?;
        Ok(Store {
            pool: Pool::Sqlite(pool),
            ..self.clone()
        })
    }

    /// A pool of a handle's own (same database, same options) that could not connect.
    fn own_pool_error(&self, e: sqlx::Error) -> StoreError {
        StoreError::Connect {
            url: self.url.clone(),
            message: e.to_string(),
        }
    }

    /// Whether this is a PostgreSQL store (several replicas may share it).
    pub fn is_postgres(&self) -> bool {
        matches!(self.pool, Pool::Postgres(_))
    }

    /// The SQLite database file, when the store is one (not in memory).
    pub fn sqlite_file(&self) -> Option<std::path::PathBuf> {
        let Pool::Sqlite(p) = &self.pool else {
            return None;
        };
        let path = p.connect_options().get_filename().to_path_buf();
        (!path.as_os_str().is_empty() && path.to_str() != Some(":memory:")).then_some(path)
    }

    /// The store's URL with any password replaced by `***`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// `sqlite` or `postgres`.
    pub fn dialect(&self) -> &'static str {
        match self.pool {
            Pool::Sqlite(_) => "sqlite",
            Pool::Postgres(_) => "postgres",
        }
    }

    /// A round trip to the database, for `/readyz`.
    pub async fn ping(&self) -> Result<()> {
        with_pool!(self, pool, _Db => {
            sqlx::query("SELECT 1").execute(pool).await?;
        });
        Ok(())
    }

    /// Waits for in-flight queries and closes every connection (SQLite checkpoints its WAL).
    /// Closes the pool shared by every clone of this store.
    pub async fn close(&self) {
        with_pool!(self, pool, _Db => pool.close().await)
    }
}

/// Keeps a URL's password out of messages.
struct Scrubber {
    url: String,
    redactor: Redactor,
}

impl Scrubber {
    fn new(raw: &str) -> Scrubber {
        let mut redactor = Redactor::default();
        let url = match url::Url::parse(raw) {
            Ok(mut parsed) => {
                if let Some(password) = parsed.password().map(str::to_string) {
                    redactor.add(&Secret::new(password.clone()));
                    if let Ok(decoded) = urlencoding_decode(&password) {
                        redactor.add(&Secret::new(decoded));
                    }
                    let _ = parsed.set_password(Some(REDACTED));
                }
                parsed.to_string()
            }
            // Not a URL at all: show only its scheme, the rest may be anything.
            Err(_) => match raw.split_once(':') {
                Some((scheme, _)) if !scheme.is_empty() => format!("{scheme}:{REDACTED}"),
                _ => REDACTED.to_string(),
            },
        };
        Scrubber { url, redactor }
    }

    fn text(&self, s: &str) -> String {
        self.redactor.redact(s)
    }
}

/// Percent-decoding of a URL component (the password as the driver sees it).
fn urlencoding_decode(s: &str) -> Result<String, std::string::FromUtf8Error> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Some(b) = std::str::from_utf8(&bytes[i + 1..i + 3])
                .ok()
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(b);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out)
}

/// `rows` cut into chunks for multi-row statements: each chunk's length a power of two at most
/// `max` (the largest that fits first), so a table's inserts use at most ~log2(max) distinct
/// statements. Every distinct SQL text is a prepared statement in the connection's cache:
/// chunks of whatever length a batch happened to have filled that cache with up to 100 large
/// statements (tens of MiB of SQLite VM programs at 1,000 runs/s; BENCHMARKS.md, "Core
/// performance, session 10").
pub(crate) fn statement_chunks<T>(rows: &[T], max: usize) -> impl Iterator<Item = &[T]> {
    let max = max.max(1);
    let mut rest = rows;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let n = rest.len().min(max);
        let len = 1usize << (usize::BITS - 1 - n.leading_zeros());
        let (chunk, tail) = rest.split_at(len);
        rest = tail;
        Some(chunk)
    })
}

#[cfg(test)]
mod statement_chunk_tests {
    use super::statement_chunks;

    #[test]
    fn chunks_are_powers_of_two_at_most_max_and_cover_every_row_in_order() {
        for n in 0..300usize {
            for max in [1usize, 3, 64, 500] {
                let rows: Vec<usize> = (0..n).collect();
                let chunks: Vec<&[usize]> = statement_chunks(&rows, max).collect();
                assert_eq!(chunks.concat(), rows, "n={n} max={max}");
                for c in &chunks {
                    assert!(
                        c.len().is_power_of_two() && c.len() <= max,
                        "n={n} max={max}"
                    );
                }
                // Lengths never grow: the largest that fits is always taken first.
                assert!(chunks.windows(2).all(|w| w[0].len() >= w[1].len()));
            }
        }
        // 100 rows: 64 + 32 + 4.
        let rows = [0u8; 100];
        let lens: Vec<usize> = statement_chunks(&rows, 1_000).map(<[u8]>::len).collect();
        assert_eq!(lens, [64, 32, 4]);
    }
}

#[cfg(test)]
mod sqlite_cache_tests {
    use super::*;

    /// Every pooled connection, not only the first, opens with the small page cache.
    #[tokio::test]
    async fn every_sqlite_connection_opens_with_a_512_kib_page_cache() {
        let dir = tempfile::tempdir().unwrap();
        let url = Secret::new(format!("sqlite://{}", dir.path().join("s.db").display()));
        let store = Store::connect(&url).await.unwrap();
        let Pool::Sqlite(pool) = &store.pool else {
            panic!("a sqlite:// URL opens a SQLite pool");
        };
        let mut held = Vec::new();
        for _ in 0..4 {
            let mut conn = pool.acquire().await.unwrap();
            let size: i64 = sqlx::query_scalar("PRAGMA cache_size")
                .fetch_one(&mut *conn)
                .await
                .unwrap();
            assert_eq!(size.to_string(), SQLITE_CACHE_SIZE);
            held.push(conn);
        }
        drop(held);
        store.close().await;
    }
}
