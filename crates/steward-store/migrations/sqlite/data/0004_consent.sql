-- The consent ledger: append-only, hash-chained events with a MAC'd head. Parties are
-- pseudonymous (subject UUIDs, device ids); the client address is kept only as a keyed hash.
CREATE TABLE consent_events (
    seq INTEGER PRIMARY KEY,
    at INTEGER NOT NULL,
    party_kind TEXT NOT NULL,
    party BLOB NOT NULL,
    action TEXT NOT NULL,
    purpose TEXT,
    signal TEXT,
    link BLOB,
    policy TEXT NOT NULL,
    terms TEXT,
    method TEXT NOT NULL,
    notice TEXT,
    ip TEXT,
    user_agent TEXT,
    actor TEXT NOT NULL,
    prev BLOB NOT NULL,
    hash BLOB NOT NULL
) STRICT;
CREATE INDEX consent_by_party ON consent_events (party, seq);
CREATE INDEX consent_by_link ON consent_events (link) WHERE link IS NOT NULL;

-- Nothing on the ledger is ever changed or removed through Steward; the chain shows it if it
-- is done behind Steward's back.
CREATE TRIGGER consent_events_no_update BEFORE UPDATE ON consent_events
BEGIN SELECT RAISE(ABORT, 'the consent ledger is append-only'); END;
CREATE TRIGGER consent_events_no_delete BEFORE DELETE ON consent_events
BEGIN SELECT RAISE(ABORT, 'the consent ledger is append-only'); END;

CREATE TABLE consent_head (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    seq INTEGER NOT NULL,
    hash BLOB NOT NULL,
    mac BLOB NOT NULL
) STRICT;

-- Every policy version served, with each purpose's terms fingerprint under it.
CREATE TABLE policy_versions (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    version TEXT NOT NULL UNIQUE,
    must_accept INTEGER NOT NULL,
    terms TEXT NOT NULL,
    recorded_at INTEGER NOT NULL
) STRICT;

-- Notices of a must-accept version, one per subject, until sent.
CREATE TABLE policy_notices (
    version TEXT NOT NULL,
    subject BLOB NOT NULL,
    queued_at INTEGER NOT NULL,
    sent_at INTEGER,
    PRIMARY KEY (version, subject)
) STRICT;
CREATE INDEX policy_notices_pending ON policy_notices (version, subject) WHERE sent_at IS NULL;
