-- The audit trail kept for its declared period ([retention] audit): entries older than it are
-- deleted up to a checkpoint, and that checkpoint, sealed as the trim point with the audit key,
-- is where verification starts. A prefix deleted without the key is still named as deleted.
CREATE TABLE steward.audit_trim (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    seq BIGINT NOT NULL,
    hash BYTEA NOT NULL,
    mac BYTEA NOT NULL
);
