-- Runs with their steps and artifact paths (PostgreSQL dialect).
-- Kept in step with ../sqlite/0001_runs.sql: same tables, columns, indexes and order.

CREATE TABLE runs (
    run_id            TEXT             NOT NULL PRIMARY KEY,
    check_name        TEXT             NOT NULL,
    kind              TEXT             NOT NULL,
    attempt           BIGINT           NOT NULL,
    scheduled_at      TIMESTAMPTZ      NOT NULL,
    started_at        TIMESTAMPTZ      NOT NULL,
    target            TEXT             NOT NULL,
    location          TEXT             NOT NULL,
    outcome           TEXT             NOT NULL CHECK (outcome IN ('pass', 'fail', 'error')),
    cancelled         BOOLEAN          NOT NULL,
    timed_latency_ms  DOUBLE PRECISION NOT NULL,
    total_ms          DOUBLE PRECISION NOT NULL,
    session_wait_ms   DOUBLE PRECISION NOT NULL,
    session_create_ms DOUBLE PRECISION NOT NULL,
    error             TEXT,
    failed_step       TEXT,
    page              JSONB
);

CREATE INDEX runs_check_started ON runs (check_name, started_at DESC);
CREATE INDEX runs_started ON runs (started_at);

CREATE TABLE run_steps (
    run_id     TEXT             NOT NULL REFERENCES runs (run_id) ON DELETE CASCADE,
    idx        BIGINT           NOT NULL,
    name       TEXT             NOT NULL,
    action     TEXT             NOT NULL,
    latency_ms DOUBLE PRECISION NOT NULL,
    timed      BOOLEAN          NOT NULL,
    timing     TEXT             NOT NULL,
    outcome    TEXT             NOT NULL CHECK (outcome IN ('pass', 'fail', 'error')),
    error      TEXT,
    PRIMARY KEY (run_id, idx)
);

CREATE TABLE run_artifacts (
    run_id TEXT   NOT NULL REFERENCES runs (run_id) ON DELETE CASCADE,
    idx    BIGINT NOT NULL,
    kind   TEXT   NOT NULL,
    path   TEXT   NOT NULL,
    PRIMARY KEY (run_id, idx)
);
