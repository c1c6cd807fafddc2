-- Work sharing inside a location: each replica advertises its browser session capacity in its
-- heartbeat, and a slot (location, check, intended start) is claimed by exactly one replica
-- before it runs. A slot no replica ran because its owner died is claimed as `missed` by the
-- replica that takes the check over, so the gap is in the store rather than hidden.
-- Times are microseconds since the Unix epoch (UTC).
-- Kept in step with ../postgres/0008_share.sql.
ALTER TABLE cluster_replicas ADD COLUMN sessions BIGINT NOT NULL DEFAULT 0;

CREATE TABLE IF NOT EXISTS slot_claims (
    location   TEXT    NOT NULL,
    check_name TEXT    NOT NULL,
    slot_us    BIGINT  NOT NULL,
    replica    TEXT    NOT NULL,
    missed     BOOLEAN NOT NULL,
    claimed_us BIGINT  NOT NULL,
    PRIMARY KEY (location, check_name, slot_us)
);
CREATE INDEX IF NOT EXISTS slot_claims_claimed ON slot_claims (claimed_us);
