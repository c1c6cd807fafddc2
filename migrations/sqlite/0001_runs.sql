-- Runs with their steps and artifact paths (SQLite dialect).
-- Kept in step with ../postgres/0001_runs.sql: same tables, columns, indexes and order.
-- Timestamps are RFC 3339 UTC text as sqlx writes them (microsecond precision, '+00:00'),
-- which sorts chronologically as text; booleans are 0/1; `page` is JSON text.

CREATE TABLE runs (
    run_id            TEXT    NOT NULL PRIMARY KEY,
    check_name        TEXT    NOT NULL,
    kind              TEXT    NOT NULL,
    attempt           INTEGER NOT NULL,
    scheduled_at      TEXT    NOT NULL,
    started_at        TEXT    NOT NULL,
    target            TEXT    NOT NULL,
    location          TEXT    NOT NULL,
    outcome           TEXT    NOT NULL CHECK (outcome IN ('pass', 'fail', 'error')),
    cancelled         INTEGER NOT NULL,
    timed_latency_ms  REAL    NOT NULL,
    total_ms          REAL    NOT NULL,
    session_wait_ms   REAL    NOT NULL,
    session_create_ms REAL    NOT NULL,
    error             TEXT,
    failed_step       TEXT,
    page              TEXT
);

CREATE INDEX runs_check_started ON runs (check_name, started_at DESC);
CREATE INDEX runs_started ON runs (started_at);

CREATE TABLE run_steps (
    run_id     TEXT    NOT NULL REFERENCES runs (run_id) ON DELETE CASCADE,
    idx        INTEGER NOT NULL,
    name       TEXT    NOT NULL,
    action     TEXT    NOT NULL,
    latency_ms REAL    NOT NULL,
    timed      INTEGER NOT NULL,
    timing     TEXT    NOT NULL,
    outcome    TEXT    NOT NULL CHECK (outcome IN ('pass', 'fail', 'error')),
    error      TEXT,
    PRIMARY KEY (run_id, idx)
);

CREATE TABLE run_artifacts (
    run_id TEXT    NOT NULL REFERENCES runs (run_id) ON DELETE CASCADE,
    idx    INTEGER NOT NULL,
    kind   TEXT    NOT NULL,
    path   TEXT    NOT NULL,
    PRIMARY KEY (run_id, idx)
);
