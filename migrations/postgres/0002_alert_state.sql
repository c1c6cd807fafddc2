-- The alert evaluator's state (one row per evaluator; JSON), so a restart neither re-pages a
-- firing alert nor loses a pending alert's active_at.
CREATE TABLE IF NOT EXISTS alert_state (
    id text PRIMARY KEY,
    state jsonb NOT NULL,
    updated_at timestamptz NOT NULL
);
