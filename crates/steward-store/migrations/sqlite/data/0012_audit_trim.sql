-- The audit trail kept for its declared period ([retention] audit): entries older than it are
-- deleted up to a checkpoint, and that checkpoint, sealed as the trim point with the audit key,
-- is where verification starts. A prefix deleted without the key is still named as deleted.
CREATE TABLE audit_trim (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    seq INTEGER NOT NULL,
    hash BLOB NOT NULL,
    mac BLOB NOT NULL
) STRICT;
