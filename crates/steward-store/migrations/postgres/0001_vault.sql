-- Data and keys live in separate schemas, so the data can be backed up (pg_dump -n steward)
-- without any key, and the keys (steward_keys) kept and restored on their own terms.
CREATE SCHEMA IF NOT EXISTS steward;
CREATE SCHEMA IF NOT EXISTS steward_keys;

CREATE TABLE steward.subjects (
    id BYTEA PRIMARY KEY,
    created_at BIGINT NOT NULL
);

CREATE TABLE steward.identities (
    subject BYTEA NOT NULL REFERENCES steward.subjects(id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    idx BYTEA NOT NULL,
    sealed BYTEA NOT NULL,
    PRIMARY KEY (kind, idx)
);
CREATE INDEX identities_subject ON steward.identities(subject);

CREATE TABLE steward.fields (
    id BYTEA PRIMARY KEY,
    subject BYTEA NOT NULL REFERENCES steward.subjects(id) ON DELETE CASCADE,
    category TEXT NOT NULL,
    purpose TEXT NOT NULL,
    source TEXT NOT NULL,
    collected_at BIGINT NOT NULL,
    sealed BYTEA NOT NULL
);
CREATE INDEX fields_subject ON steward.fields(subject);

CREATE TABLE steward.held_fields (
    id BYTEA PRIMARY KEY,
    subject BYTEA NOT NULL,
    category TEXT NOT NULL,
    purpose TEXT NOT NULL,
    source TEXT NOT NULL,
    collected_at BIGINT NOT NULL,
    sealed BYTEA NOT NULL,
    reason TEXT NOT NULL,
    hold_until BIGINT
);
CREATE INDEX held_fields_subject ON steward.held_fields(subject);

CREATE TABLE steward_keys.roots (
    name TEXT PRIMARY KEY,
    kek_version BIGINT NOT NULL,
    wrapped BYTEA NOT NULL
);

CREATE TABLE steward_keys.subject_keys (
    subject BYTEA PRIMARY KEY,
    kek_version BIGINT NOT NULL,
    wrapped BYTEA NOT NULL
);

CREATE TABLE steward_keys.hold_keys (
    subject BYTEA PRIMARY KEY,
    kek_version BIGINT NOT NULL,
    wrapped BYTEA NOT NULL
);
