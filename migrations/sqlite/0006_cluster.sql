-- Running as a cluster: the leader lease, the replicas' heartbeats, which replica stored each
-- run and when (by the store's clock), outbox claims, and the fencing epoch leader writes carry.
-- Times are microseconds since the Unix epoch (UTC), read from the store's clock where a lease
-- or a heartbeat is judged, so replicas with skewed clocks agree.
-- Kept in step with ../postgres/0006_cluster.sql.

-- One row per lease (`leader`): who holds it, the epoch that grows at each takeover, and when
-- it expires unless renewed.
CREATE TABLE IF NOT EXISTS cluster_lease (
    name       TEXT   NOT NULL PRIMARY KEY,
    holder     TEXT   NOT NULL,
    epoch      INTEGER NOT NULL,
    expires_us INTEGER NOT NULL
);

-- Every replica's heartbeat (also the write `/readyz` judges).
CREATE TABLE IF NOT EXISTS cluster_replicas (
    id           TEXT   NOT NULL PRIMARY KEY,
    location     TEXT   NOT NULL,
    role         TEXT   NOT NULL,
    epoch        INTEGER NOT NULL,
    started_us   INTEGER NOT NULL,
    last_seen_us INTEGER NOT NULL
);

-- Which replica stored a run, and when by the store's clock: the leader reads the other
-- replicas' runs as they arrive. Runs stored before this version carry neither.
ALTER TABLE runs ADD COLUMN replica TEXT;
ALTER TABLE runs ADD COLUMN stored_us INTEGER;
CREATE INDEX IF NOT EXISTS runs_stored ON runs (stored_us);

-- Who claimed a pending notification (with `lease_until_us`), and the epoch of the leader that
-- wrote a row.
ALTER TABLE outbox ADD COLUMN claimed_by TEXT;
ALTER TABLE outbox ADD COLUMN epoch INTEGER;
ALTER TABLE notification_log ADD COLUMN epoch INTEGER;
ALTER TABLE alert_state ADD COLUMN epoch INTEGER;
