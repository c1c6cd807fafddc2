//! The store: runs with their steps and artifacts (SQLite by default, PostgreSQL for HA).
