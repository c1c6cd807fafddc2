//! Database access for both dialects.
//!
//! The sandbox talks to SQLite (default) or PostgreSQL through one enum. SQL is
//! written once with `$N` placeholders (both drivers accept them) and every
//! query body is compiled for both pools by [`dispatch!`]. Two newtypes keep
//! the column types faithful: [`Id`] is `uuid` on PostgreSQL and hyphenated
//! text on SQLite; [`Ts`] is `timestamptz` on PostgreSQL and fixed-width
//! RFC 3339 text (`YYYY-MM-DDTHH:MM:SS.ffffffZ`, so text order is time order)
//! on SQLite.

use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Timelike, Utc};
use serde::{Deserialize, Serialize};
use sqlx::encode::IsNull;
use sqlx::error::BoxDynError;
use sqlx::postgres::{PgPool, PgPoolOptions, PgTypeInfo, PgValueRef};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteTypeInfo,
    SqliteValueRef,
};
use sqlx::{Database, Decode, Encode, Postgres, Sqlite, Type};
use uuid::Uuid;

/// A pool for one of the two supported dialects.
#[derive(Clone, Debug)]
pub enum Db {
    Sqlite(SqlitePool),
    Pg(PgPool),
}

/// Runs `$body` with `$p` bound to the concrete pool; the body is compiled once
/// per dialect.
macro_rules! dispatch {
    ($db:expr, |$p:ident| $body:expr) => {
        match $db {
            $crate::db::Db::Sqlite($p) => $body,
            $crate::db::Db::Pg($p) => $body,
        }
    };
}
pub(crate) use dispatch;

impl Db {
    pub async fn connect(url: &str) -> anyhow::Result<Db> {
        if url.starts_with("sqlite:") {
            let opts = SqliteConnectOptions::from_str(url)?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .busy_timeout(Duration::from_secs(5))
                .foreign_keys(true);
            // One connection: SQLite serialises writers anyway, and a single
            // connection rules out SQLITE_BUSY on read-to-write upgrades.
            let pool = SqlitePoolOptions::new()
                .max_connections(1)
                .acquire_timeout(Duration::from_secs(10))
                .connect_with(opts)
                .await?;
            Ok(Db::Sqlite(pool))
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            let pool = PgPoolOptions::new()
                .max_connections(5)
                .acquire_timeout(Duration::from_secs(10))
                .connect(url)
                .await?;
            Ok(Db::Pg(pool))
        } else {
            anyhow::bail!("unsupported database URL (use sqlite://PATH or postgres://...)")
        }
    }

    pub fn is_pg(&self) -> bool {
        matches!(self, Db::Pg(_))
    }

    /// Creates the schema; idempotent.
    pub async fn migrate(&self) -> anyhow::Result<()> {
        match self {
            Db::Sqlite(p) => {
                sqlx::raw_sql(SQLITE_SCHEMA).execute(p).await?;
            }
            Db::Pg(p) => {
                sqlx::raw_sql(PG_SCHEMA).execute(p).await?;
            }
        }
        Ok(())
    }

    pub async fn close(&self) {
        dispatch!(self, |p| p.close().await)
    }
}

/// Current wall time, truncated to microseconds (the precision both databases keep).
pub fn now() -> DateTime<Utc> {
    let t = Utc::now();
    let micros = t.nanosecond() / 1_000 * 1_000;
    t.with_nanosecond(micros).unwrap_or(t)
}

/// RFC 3339 with microseconds and `Z`.
pub fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// A uuid column (`uuid` on PostgreSQL, text on SQLite).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Id(pub Uuid);

impl Id {
    pub fn new() -> Id {
        Id(Uuid::new_v4())
    }
}

impl Default for Id {
    fn default() -> Self {
        Id::new()
    }
}

impl std::fmt::Display for Id {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.hyphenated().fmt(f)
    }
}

impl Type<Sqlite> for Id {
    fn type_info() -> SqliteTypeInfo {
        <String as Type<Sqlite>>::type_info()
    }
    fn compatible(ty: &SqliteTypeInfo) -> bool {
        <String as Type<Sqlite>>::compatible(ty)
    }
}

impl Encode<'_, Sqlite> for Id {
    fn encode_by_ref(
        &self,
        buf: &mut <Sqlite as Database>::ArgumentBuffer,
    ) -> Result<IsNull, BoxDynError> {
        <String as Encode<Sqlite>>::encode(self.to_string(), buf)
    }
}

impl<'r> Decode<'r, Sqlite> for Id {
    fn decode(value: SqliteValueRef<'r>) -> Result<Self, BoxDynError> {
        let s = <&str as Decode<Sqlite>>::decode(value)?;
        Ok(Id(Uuid::parse_str(s)?))
    }
}

impl Type<Postgres> for Id {
    fn type_info() -> PgTypeInfo {
        <Uuid as Type<Postgres>>::type_info()
    }
}

impl Encode<'_, Postgres> for Id {
    fn encode_by_ref(
        &self,
        buf: &mut <Postgres as Database>::ArgumentBuffer,
    ) -> Result<IsNull, BoxDynError> {
        <Uuid as Encode<Postgres>>::encode_by_ref(&self.0, buf)
    }
}

impl<'r> Decode<'r, Postgres> for Id {
    fn decode(value: PgValueRef<'r>) -> Result<Self, BoxDynError> {
        Ok(Id(<Uuid as Decode<Postgres>>::decode(value)?))
    }
}

/// A timestamp column (`timestamptz` on PostgreSQL, fixed-width RFC 3339 text on SQLite).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Ts(pub DateTime<Utc>);

impl Ts {
    pub fn sqlite_text(&self) -> String {
        self.0.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
    }
}

impl Type<Sqlite> for Ts {
    fn type_info() -> SqliteTypeInfo {
        <String as Type<Sqlite>>::type_info()
    }
    fn compatible(ty: &SqliteTypeInfo) -> bool {
        <String as Type<Sqlite>>::compatible(ty)
    }
}

impl Encode<'_, Sqlite> for Ts {
    fn encode_by_ref(
        &self,
        buf: &mut <Sqlite as Database>::ArgumentBuffer,
    ) -> Result<IsNull, BoxDynError> {
        <String as Encode<Sqlite>>::encode(self.sqlite_text(), buf)
    }
}

impl<'r> Decode<'r, Sqlite> for Ts {
    fn decode(value: SqliteValueRef<'r>) -> Result<Self, BoxDynError> {
        let s = <&str as Decode<Sqlite>>::decode(value)?;
        Ok(Ts(DateTime::parse_from_rfc3339(s)?.with_timezone(&Utc)))
    }
}

impl Type<Postgres> for Ts {
    fn type_info() -> PgTypeInfo {
        <DateTime<Utc> as Type<Postgres>>::type_info()
    }
}

impl Encode<'_, Postgres> for Ts {
    fn encode_by_ref(
        &self,
        buf: &mut <Postgres as Database>::ArgumentBuffer,
    ) -> Result<IsNull, BoxDynError> {
        <DateTime<Utc> as Encode<Postgres>>::encode_by_ref(&self.0, buf)
    }
}

impl<'r> Decode<'r, Postgres> for Ts {
    fn decode(value: PgValueRef<'r>) -> Result<Self, BoxDynError> {
        Ok(Ts(<DateTime<Utc> as Decode<Postgres>>::decode(value)?))
    }
}

/// PostgreSQL schema: the platform's own tables verbatim (plus `IF NOT EXISTS` on the
/// indexes so a restart is a no-op) and the tables the pages need.
pub const PG_SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS audit_log (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  tenant_id uuid NOT NULL,
  entity text NOT NULL,
  entity_id text NOT NULL,
  action text NOT NULL,
  actor_id uuid,
  timestamp timestamptz DEFAULT now(),
  diff jsonb
);
CREATE INDEX IF NOT EXISTS idx_audit_log_tenant ON audit_log(tenant_id, timestamp DESC);
CREATE INDEX IF NOT EXISTS idx_audit_log_entity ON audit_log(entity, entity_id);

CREATE TABLE IF NOT EXISTS feed_push_jobs (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  tenant_id uuid NOT NULL,
  sku text,
  job_status text CHECK (job_status IN ('queued','processing','success','failed')),
  retry_count int DEFAULT 0,
  last_attempt timestamptz,
  next_retry timestamptz,
  error_message text,
  created_at timestamptz DEFAULT now()
);
CREATE INDEX IF NOT EXISTS idx_feed_jobs_tenant ON feed_push_jobs(tenant_id, job_status);
CREATE INDEX IF NOT EXISTS idx_feed_jobs_retry ON feed_push_jobs(next_retry) WHERE job_status = 'queued';

CREATE TABLE IF NOT EXISTS outreach_feedback (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  tenant_id uuid,
  feedback jsonb,
  score integer CHECK (score BETWEEN 1 AND 5),
  created_at timestamptz DEFAULT now()
);
CREATE INDEX IF NOT EXISTS idx_feedback_tenant ON outreach_feedback(tenant_id, created_at DESC);

CREATE TABLE IF NOT EXISTS tenants (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  slug text NOT NULL UNIQUE,
  name text NOT NULL,
  segment text NOT NULL CHECK (segment IN ('synthetic','single_location','small_chain','large_chain')),
  locations integer NOT NULL DEFAULT 1,
  industry text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS users (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  tenant_id uuid NOT NULL REFERENCES tenants(id),
  email text NOT NULL UNIQUE,
  password_hash text NOT NULL,
  last_login_at timestamptz,
  created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS categories (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  tenant_id uuid NOT NULL REFERENCES tenants(id),
  name text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  UNIQUE (tenant_id, name)
);

CREATE TABLE IF NOT EXISTS category_mappings (
  category_id uuid PRIMARY KEY REFERENCES categories(id),
  tenant_id uuid NOT NULL REFERENCES tenants(id),
  taxonomy_id integer NOT NULL,
  taxonomy_path text NOT NULL,
  taxonomy_version text NOT NULL,
  mapped_by uuid,
  mapped_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS idx_mappings_tenant ON category_mappings(tenant_id);

CREATE TABLE IF NOT EXISTS skus (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  tenant_id uuid NOT NULL REFERENCES tenants(id),
  sku text NOT NULL,
  title text NOT NULL,
  category_id uuid REFERENCES categories(id),
  price_cents integer NOT NULL CHECK (price_cents >= 0),
  quantity integer NOT NULL CHECK (quantity >= 0),
  updated_at timestamptz NOT NULL DEFAULT now(),
  UNIQUE (tenant_id, sku)
);

CREATE TABLE IF NOT EXISTS profiles (
  tenant_id uuid PRIMARY KEY REFERENCES tenants(id),
  name text NOT NULL DEFAULT '',
  address text NOT NULL DEFAULT '',
  phone text NOT NULL DEFAULT '',
  hours text NOT NULL DEFAULT '',
  nap_complete boolean NOT NULL DEFAULT false,
  updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS merchant_approvals (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  tenant_id uuid NOT NULL REFERENCES tenants(id),
  sku text NOT NULL,
  job_id uuid,
  status text NOT NULL CHECK (status IN ('approved','disapproved')),
  reason text,
  reviewed_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS idx_approvals_tenant ON merchant_approvals(tenant_id, reviewed_at DESC);

CREATE TABLE IF NOT EXISTS oauth_attempts (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  tenant_id uuid NOT NULL REFERENCES tenants(id),
  provider text NOT NULL,
  outcome text NOT NULL CHECK (outcome IN ('success','error')),
  error_code text,
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS idx_oauth_tenant ON oauth_attempts(tenant_id, created_at DESC);

CREATE TABLE IF NOT EXISTS qa_events (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  tenant_id uuid NOT NULL REFERENCES tenants(id),
  user_id uuid,
  action text NOT NULL,
  page text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS idx_qa_events_tenant ON qa_events(tenant_id, created_at DESC);

CREATE TABLE IF NOT EXISTS taxonomy_versions (
  version text PRIMARY KEY,
  activated_at timestamptz NOT NULL,
  active boolean NOT NULL DEFAULT false
);

CREATE TABLE IF NOT EXISTS feed_push_attempts (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  job_id uuid NOT NULL,
  tenant_id uuid NOT NULL,
  attempt integer NOT NULL CHECK (attempt BETWEEN 1 AND 5),
  started_at timestamptz NOT NULL,
  finished_at timestamptz NOT NULL,
  outcome text NOT NULL CHECK (outcome IN ('success','failure')),
  error_message text,
  next_retry timestamptz,
  UNIQUE (job_id, attempt)
);
"#;

/// SQLite schema: the same tables, uuids and timestamps as text.
pub const SQLITE_SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS audit_log (
  id TEXT PRIMARY KEY,
  tenant_id TEXT NOT NULL,
  entity TEXT NOT NULL,
  entity_id TEXT NOT NULL,
  action TEXT NOT NULL,
  actor_id TEXT,
  timestamp TEXT DEFAULT (strftime('%Y-%m-%dT%H:%M:%f000Z', 'now')),
  diff TEXT
);
CREATE INDEX IF NOT EXISTS idx_audit_log_tenant ON audit_log(tenant_id, timestamp DESC);
CREATE INDEX IF NOT EXISTS idx_audit_log_entity ON audit_log(entity, entity_id);

CREATE TABLE IF NOT EXISTS feed_push_jobs (
  id TEXT PRIMARY KEY,
  tenant_id TEXT NOT NULL,
  sku TEXT,
  job_status TEXT CHECK (job_status IN ('queued','processing','success','failed')),
  retry_count INTEGER DEFAULT 0,
  last_attempt TEXT,
  next_retry TEXT,
  error_message TEXT,
  created_at TEXT DEFAULT (strftime('%Y-%m-%dT%H:%M:%f000Z', 'now'))
);
CREATE INDEX IF NOT EXISTS idx_feed_jobs_tenant ON feed_push_jobs(tenant_id, job_status);
CREATE INDEX IF NOT EXISTS idx_feed_jobs_retry ON feed_push_jobs(next_retry) WHERE job_status = 'queued';

CREATE TABLE IF NOT EXISTS outreach_feedback (
  id TEXT PRIMARY KEY,
  tenant_id TEXT,
  feedback TEXT,
  score INTEGER CHECK (score BETWEEN 1 AND 5),
  created_at TEXT DEFAULT (strftime('%Y-%m-%dT%H:%M:%f000Z', 'now'))
);
CREATE INDEX IF NOT EXISTS idx_feedback_tenant ON outreach_feedback(tenant_id, created_at DESC);

CREATE TABLE IF NOT EXISTS tenants (
  id TEXT PRIMARY KEY,
  slug TEXT NOT NULL UNIQUE,
  name TEXT NOT NULL,
  segment TEXT NOT NULL CHECK (segment IN ('synthetic','single_location','small_chain','large_chain')),
  locations INTEGER NOT NULL DEFAULT 1,
  industry TEXT NOT NULL,
  created_at TEXT NOT NULL
);

CREATE TABLE IF NOT EXISTS users (
  id TEXT PRIMARY KEY,
  tenant_id TEXT NOT NULL REFERENCES tenants(id),
  email TEXT NOT NULL UNIQUE,
  password_hash TEXT NOT NULL,
  last_login_at TEXT,
  created_at TEXT NOT NULL
);

CREATE TABLE IF NOT EXISTS categories (
  id TEXT PRIMARY KEY,
  tenant_id TEXT NOT NULL REFERENCES tenants(id),
  name TEXT NOT NULL,
  created_at TEXT NOT NULL,
  UNIQUE (tenant_id, name)
);

CREATE TABLE IF NOT EXISTS category_mappings (
  category_id TEXT PRIMARY KEY REFERENCES categories(id),
  tenant_id TEXT NOT NULL REFERENCES tenants(id),
  taxonomy_id INTEGER NOT NULL,
  taxonomy_path TEXT NOT NULL,
  taxonomy_version TEXT NOT NULL,
  mapped_by TEXT,
  mapped_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS idx_mappings_tenant ON category_mappings(tenant_id);

CREATE TABLE IF NOT EXISTS skus (
  id TEXT PRIMARY KEY,
  tenant_id TEXT NOT NULL REFERENCES tenants(id),
  sku TEXT NOT NULL,
  title TEXT NOT NULL,
  category_id TEXT REFERENCES categories(id),
  price_cents INTEGER NOT NULL CHECK (price_cents >= 0),
  quantity INTEGER NOT NULL CHECK (quantity >= 0),
  updated_at TEXT NOT NULL,
  UNIQUE (tenant_id, sku)
);

CREATE TABLE IF NOT EXISTS profiles (
  tenant_id TEXT PRIMARY KEY REFERENCES tenants(id),
  name TEXT NOT NULL DEFAULT '',
  address TEXT NOT NULL DEFAULT '',
  phone TEXT NOT NULL DEFAULT '',
  hours TEXT NOT NULL DEFAULT '',
  nap_complete INTEGER NOT NULL DEFAULT 0,
  updated_at TEXT NOT NULL
);

CREATE TABLE IF NOT EXISTS merchant_approvals (
  id TEXT PRIMARY KEY,
  tenant_id TEXT NOT NULL REFERENCES tenants(id),
  sku TEXT NOT NULL,
  job_id TEXT,
  status TEXT NOT NULL CHECK (status IN ('approved','disapproved')),
  reason TEXT,
  reviewed_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS idx_approvals_tenant ON merchant_approvals(tenant_id, reviewed_at DESC);

CREATE TABLE IF NOT EXISTS oauth_attempts (
  id TEXT PRIMARY KEY,
  tenant_id TEXT NOT NULL REFERENCES tenants(id),
  provider TEXT NOT NULL,
  outcome TEXT NOT NULL CHECK (outcome IN ('success','error')),
  error_code TEXT,
  created_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS idx_oauth_tenant ON oauth_attempts(tenant_id, created_at DESC);

CREATE TABLE IF NOT EXISTS qa_events (
  id TEXT PRIMARY KEY,
  tenant_id TEXT NOT NULL REFERENCES tenants(id),
  user_id TEXT,
  action TEXT NOT NULL,
  page TEXT NOT NULL,
  created_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS idx_qa_events_tenant ON qa_events(tenant_id, created_at DESC);

CREATE TABLE IF NOT EXISTS taxonomy_versions (
  version TEXT PRIMARY KEY,
  activated_at TEXT NOT NULL,
  active INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE IF NOT EXISTS feed_push_attempts (
  id TEXT PRIMARY KEY,
  job_id TEXT NOT NULL,
  tenant_id TEXT NOT NULL,
  attempt INTEGER NOT NULL CHECK (attempt BETWEEN 1 AND 5),
  started_at TEXT NOT NULL,
  finished_at TEXT NOT NULL,
  outcome TEXT NOT NULL CHECK (outcome IN ('success','failure')),
  error_message TEXT,
  next_retry TEXT,
  UNIQUE (job_id, attempt)
);
"#;

/// Masks the password in a database URL for printing.
pub fn mask_url(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        return url.to_string();
    };
    let rest = &url[scheme_end + 3..];
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    let Some(at) = authority.rfind('@') else {
        return url.to_string();
    };
    let userinfo = &authority[..at];
    match userinfo.find(':') {
        Some(colon) => format!(
            "{}{}:****{}",
            &url[..scheme_end + 3],
            &userinfo[..colon],
            &rest[at..]
        ),
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_passwords() {
        assert_eq!(
            mask_url("postgres://u:secret@h:5432/db"),
            "postgres://u:****@h:5432/db"
        );
        assert_eq!(mask_url("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(
            mask_url("sqlite://rvp-sandbox.db"),
            "sqlite://rvp-sandbox.db"
        );
    }

    #[test]
    fn sqlite_text_is_fixed_width() {
        let t = DateTime::parse_from_rfc3339("2025-01-02T03:04:05Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(Ts(t).sqlite_text(), "2025-01-02T03:04:05.000000Z");
    }
}
