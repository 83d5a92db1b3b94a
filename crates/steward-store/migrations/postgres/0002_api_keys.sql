-- API keys: only a SHA-256 hash of each key is stored, beside its visible prefix.
CREATE TABLE steward.api_keys (
    prefix TEXT PRIMARY KEY,
    hash BYTEA NOT NULL,
    role TEXT NOT NULL,
    name TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    revoked_at BIGINT
);
