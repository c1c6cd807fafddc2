-- Notifications. Times are microseconds since the Unix epoch (UTC).
-- The durable outbox: every notification is written here before any send and marked `sent` only
-- after its receiver accepted it, so a crash or a receiver outage never loses one.
CREATE TABLE IF NOT EXISTS outbox (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    receiver        TEXT    NOT NULL,
    group_key       TEXT    NOT NULL,
    status          TEXT    NOT NULL CHECK (status IN ('pending', 'sent', 'failed')),
    payload         TEXT    NOT NULL,
    created_us      INTEGER NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_us INTEGER NOT NULL,
    lease_until_us  INTEGER,
    last_error      TEXT,
    response        TEXT,
    done_us         INTEGER
);
CREATE INDEX IF NOT EXISTS outbox_by_receiver_status ON outbox (receiver, status, id);
CREATE INDEX IF NOT EXISTS outbox_by_done ON outbox (done_us);

-- The notification log (Alertmanager's nflog): what each receiver was last told about each alert
-- group, so dedup survives restarts.
CREATE TABLE IF NOT EXISTS notification_log (
    receiver     TEXT    NOT NULL,
    group_key    TEXT    NOT NULL,
    route_id     TEXT    NOT NULL,
    group_labels TEXT    NOT NULL,
    firing       TEXT    NOT NULL,
    resolved     TEXT    NOT NULL,
    alerts       TEXT    NOT NULL,
    sent_us      INTEGER NOT NULL,
    PRIMARY KEY (receiver, group_key)
);

-- What a receiver keeps per alert group (Slack: the channel and ts of the message to update).
CREATE TABLE IF NOT EXISTS receiver_state (
    receiver   TEXT    NOT NULL,
    group_key  TEXT    NOT NULL,
    state      TEXT    NOT NULL,
    updated_us INTEGER NOT NULL,
    PRIMARY KEY (receiver, group_key)
);
