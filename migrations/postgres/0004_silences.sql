-- Silences (issue 7). Times are microseconds since the Unix epoch (UTC).
-- A silence is never deleted: expiring it moves `ends_us` to the moment it was expired, so the
-- API can still show who muted what, when and why.
CREATE TABLE IF NOT EXISTS silences (
    id         TEXT    NOT NULL PRIMARY KEY,
    matchers   TEXT    NOT NULL,
    starts_us  BIGINT  NOT NULL,
    ends_us    BIGINT  NOT NULL,
    created_by TEXT    NOT NULL,
    comment    TEXT    NOT NULL,
    created_us BIGINT  NOT NULL,
    updated_us BIGINT  NOT NULL
);
CREATE INDEX IF NOT EXISTS silences_by_end ON silences (ends_us);
