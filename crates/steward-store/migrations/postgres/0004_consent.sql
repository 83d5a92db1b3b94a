-- The consent ledger: append-only, hash-chained events with a MAC'd head. Parties are
-- pseudonymous (subject UUIDs, device ids); the client address is kept only as a keyed hash.
CREATE TABLE steward.consent_events (
    seq BIGINT PRIMARY KEY,
    at BIGINT NOT NULL,
    party_kind TEXT NOT NULL,
    party BYTEA NOT NULL,
    action TEXT NOT NULL,
    purpose TEXT,
    signal TEXT,
    link BYTEA,
    policy TEXT NOT NULL,
    terms TEXT,
    method TEXT NOT NULL,
    notice TEXT,
    ip TEXT,
    user_agent TEXT,
    actor TEXT NOT NULL,
    prev BYTEA NOT NULL,
    hash BYTEA NOT NULL
);
CREATE INDEX consent_by_party ON steward.consent_events (party, seq);
CREATE INDEX consent_by_link ON steward.consent_events (link) WHERE link IS NOT NULL;

CREATE FUNCTION steward.consent_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the consent ledger is append-only';
END;
$$;
CREATE TRIGGER consent_events_append_only BEFORE UPDATE OR DELETE ON steward.consent_events
    FOR EACH ROW EXECUTE FUNCTION steward.consent_append_only();

CREATE TABLE steward.consent_head (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    seq BIGINT NOT NULL,
    hash BYTEA NOT NULL,
    mac BYTEA NOT NULL
);

CREATE TABLE steward.policy_versions (
    seq BIGSERIAL PRIMARY KEY,
    version TEXT NOT NULL UNIQUE,
    must_accept BOOLEAN NOT NULL,
    terms TEXT NOT NULL,
    recorded_at BIGINT NOT NULL
);

CREATE TABLE steward.policy_notices (
    version TEXT NOT NULL,
    subject BYTEA NOT NULL,
    queued_at BIGINT NOT NULL,
    sent_at BIGINT,
    PRIMARY KEY (version, subject)
);
CREATE INDEX policy_notices_pending ON steward.policy_notices (version, subject) WHERE sent_at IS NULL;
