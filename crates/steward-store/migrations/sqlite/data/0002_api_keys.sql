-- API keys: only a SHA-256 hash of each key is stored, beside its visible prefix.
CREATE TABLE api_keys (
    prefix TEXT PRIMARY KEY,
    hash BLOB NOT NULL,
    role TEXT NOT NULL,
    name TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    revoked_at INTEGER
) STRICT;
