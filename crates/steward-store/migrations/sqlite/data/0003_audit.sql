-- The audit trail: a hash chain (each entry's hash commits to the previous one), MAC'd
-- checkpoints every 1024 entries and a MAC'd head. Pseudonymous ids and taxonomy keys only.
CREATE TABLE audit_entries (
    seq INTEGER PRIMARY KEY,
    at INTEGER NOT NULL,
    request BLOB NOT NULL,
    actor TEXT NOT NULL,
    role TEXT NOT NULL,
    action TEXT NOT NULL,
    purpose TEXT,
    subject BLOB,
    categories TEXT NOT NULL,
    outcome TEXT NOT NULL,
    code TEXT,
    ticket TEXT,
    flagged INTEGER NOT NULL,
    detail TEXT,
    prev BLOB NOT NULL,
    hash BLOB NOT NULL
) STRICT;
CREATE INDEX audit_by_subject ON audit_entries (subject, seq) WHERE subject IS NOT NULL;
CREATE INDEX audit_by_time ON audit_entries (at);

CREATE TABLE audit_checkpoints (
    seq INTEGER PRIMARY KEY,
    hash BLOB NOT NULL,
    mac BLOB NOT NULL
) STRICT;

CREATE TABLE audit_head (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    seq INTEGER NOT NULL,
    hash BLOB NOT NULL,
    mac BLOB NOT NULL
) STRICT;

-- API keys gain scopes (comma-separated; empty: whatever the role allows) and an expiry.
ALTER TABLE api_keys ADD COLUMN purposes TEXT NOT NULL DEFAULT '';
ALTER TABLE api_keys ADD COLUMN categories TEXT NOT NULL DEFAULT '';
ALTER TABLE api_keys ADD COLUMN operations TEXT NOT NULL DEFAULT '';
ALTER TABLE api_keys ADD COLUMN expires_at INTEGER;

-- Staff accounts for the admin console: Argon2id hashes, sealed TOTP secrets, lockout state.
CREATE TABLE staff (
    username TEXT PRIMARY KEY,
    role TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    totp BLOB,
    totp_last_step INTEGER,
    failed INTEGER NOT NULL DEFAULT 0,
    locked_until INTEGER,
    disabled INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL
) STRICT;

-- Sessions: the SHA-256 of each token, never the token.
CREATE TABLE staff_sessions (
    hash BLOB PRIMARY KEY,
    username TEXT NOT NULL REFERENCES staff (username) ON DELETE CASCADE,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    last_seen INTEGER NOT NULL
) STRICT;
CREATE INDEX staff_sessions_by_user ON staff_sessions (username);
