-- The audit trail: a hash chain (each entry's hash commits to the previous one), MAC'd
-- checkpoints every 1024 entries and a MAC'd head. Pseudonymous ids and taxonomy keys only.
CREATE TABLE steward.audit_entries (
    seq BIGINT PRIMARY KEY,
    at BIGINT NOT NULL,
    request BYTEA NOT NULL,
    actor TEXT NOT NULL,
    role TEXT NOT NULL,
    action TEXT NOT NULL,
    purpose TEXT,
    subject BYTEA,
    categories TEXT NOT NULL,
    outcome TEXT NOT NULL,
    code TEXT,
    ticket TEXT,
    flagged BOOLEAN NOT NULL,
    detail TEXT,
    prev BYTEA NOT NULL,
    hash BYTEA NOT NULL
);
CREATE INDEX audit_by_subject ON steward.audit_entries (subject, seq) WHERE subject IS NOT NULL;
CREATE INDEX audit_by_time ON steward.audit_entries (at);

CREATE TABLE steward.audit_checkpoints (
    seq BIGINT PRIMARY KEY,
    hash BYTEA NOT NULL,
    mac BYTEA NOT NULL
);

CREATE TABLE steward.audit_head (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    seq BIGINT NOT NULL,
    hash BYTEA NOT NULL,
    mac BYTEA NOT NULL
);

ALTER TABLE steward.api_keys ADD COLUMN purposes TEXT NOT NULL DEFAULT '';
ALTER TABLE steward.api_keys ADD COLUMN categories TEXT NOT NULL DEFAULT '';
ALTER TABLE steward.api_keys ADD COLUMN operations TEXT NOT NULL DEFAULT '';
ALTER TABLE steward.api_keys ADD COLUMN expires_at BIGINT;

-- Staff accounts for the admin console: Argon2id hashes, sealed TOTP secrets, lockout state.
CREATE TABLE steward.staff (
    username TEXT PRIMARY KEY,
    role TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    totp BYTEA,
    totp_last_step BIGINT,
    failed BIGINT NOT NULL DEFAULT 0,
    locked_until BIGINT,
    disabled BOOLEAN NOT NULL DEFAULT FALSE,
    created_at BIGINT NOT NULL
);

-- Sessions: the SHA-256 of each token, never the token.
CREATE TABLE steward.staff_sessions (
    hash BYTEA PRIMARY KEY,
    username TEXT NOT NULL REFERENCES steward.staff (username) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    last_seen BIGINT NOT NULL
);
CREATE INDEX staff_sessions_by_user ON steward.staff_sessions (username);
