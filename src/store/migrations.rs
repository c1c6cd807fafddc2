//! The store's schema history, one entry per version with both dialects side by side, so the
//! SQLite and PostgreSQL schemas cannot drift apart: a version exists for both or for neither.
//!
//! The SQL lives in `migrations/{sqlite,postgres}/NNNN_name.sql` at the repository root and is
//! embedded with `include_str!`, so editing a file rebuilds the crate, and adding one means adding
//! a line here. Applied migrations are tracked by sqlx in `_sqlx_migrations`; an applied file must
//! never be edited again (sqlx refuses to start on a checksum mismatch), only followed by a new one.
//!
//! Later versions add the alert state (`alert_state`), the notification outbox (`outbox`) and the
//! notification log (`notification_log`) tables, with their queries in `src/store/alerts.rs`,
//! `src/store/outbox.rs` and `src/store/notifications.rs`.

use std::borrow::Cow;

use sqlx::SqlSafeStr;
use sqlx::migrate::{Migration, MigrationType, Migrator};

/// One schema version in both dialects.
pub(crate) struct Version {
    pub version: i64,
    pub description: &'static str,
    pub sqlite: &'static str,
    pub postgres: &'static str,
}

pub(crate) const VERSIONS: &[Version] = &[
    Version {
        version: 1,
        description: "runs",
        sqlite: include_str!("../../migrations/sqlite/0001_runs.sql"),
        postgres: include_str!("../../migrations/postgres/0001_runs.sql"),
    },
    Version {
        version: 2,
        description: "alert state",
        sqlite: include_str!("../../migrations/sqlite/0002_alert_state.sql"),
        postgres: include_str!("../../migrations/postgres/0002_alert_state.sql"),
    },
    Version {
        version: 3,
        description: "notification outbox, log and receiver state",
        sqlite: include_str!("../../migrations/sqlite/0003_notify.sql"),
        postgres: include_str!("../../migrations/postgres/0003_notify.sql"),
    },
    Version {
        version: 4,
        description: "silences",
        sqlite: include_str!("../../migrations/sqlite/0004_silences.sql"),
        postgres: include_str!("../../migrations/postgres/0004_silences.sql"),
    },
    Version {
        version: 5,
        description: "maintenance mark on runs",
        sqlite: include_str!("../../migrations/sqlite/0005_run_maintenance.sql"),
        postgres: include_str!("../../migrations/postgres/0005_run_maintenance.sql"),
    },
    Version {
        version: 6,
        description: "cluster: leader lease, replicas, run origin, outbox claims, epochs",
        sqlite: include_str!("../../migrations/sqlite/0006_cluster.sql"),
        postgres: include_str!("../../migrations/postgres/0006_cluster.sql"),
    },
    Version {
        version: 7,
        description: "trace id on runs",
        sqlite: include_str!("../../migrations/sqlite/0007_run_trace.sql"),
        postgres: include_str!("../../migrations/postgres/0007_run_trace.sql"),
    },
    Version {
        version: 8,
        description: "work sharing: session capacity in heartbeats, slot claims",
        sqlite: include_str!("../../migrations/sqlite/0008_share.sql"),
        postgres: include_str!("../../migrations/postgres/0008_share.sql"),
    },
];

#[derive(Clone, Copy, Debug)]
pub(crate) enum Dialect {
    Sqlite,
    Postgres,
}

/// The migrator for one dialect. sqlx takes a PostgreSQL advisory lock while migrating, so several
/// replicas starting at once against one database apply each version exactly once.
pub(crate) fn migrator(dialect: Dialect) -> Migrator {
    Migrator::with_migrations(
        VERSIONS
            .iter()
            .map(|v| {
                let sql = match dialect {
                    Dialect::Sqlite => v.sqlite,
                    Dialect::Postgres => v.postgres,
                };
                Migration::new(
                    v.version,
                    Cow::Borrowed(v.description),
                    MigrationType::Simple,
                    sql.into_sql_str(),
                    false,
                )
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_ascending_and_unique() {
        for pair in VERSIONS.windows(2) {
            assert!(pair[0].version < pair[1].version);
        }
    }

    #[test]
    fn both_dialects_create_the_same_tables_and_indexes() {
        fn objects(sql: &str) -> Vec<String> {
            sql.lines()
                .map(str::trim)
                .filter(|l| l.starts_with("CREATE "))
                .map(|l| l.split('(').next().unwrap_or(l).trim().to_string())
                .collect()
        }
        for v in VERSIONS {
            assert_eq!(
                objects(v.sqlite),
                objects(v.postgres),
                "version {}",
                v.version
            );
        }
    }
}
