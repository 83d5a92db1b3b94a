-- A consent event's personal part (its party, the address's keyed hash, the user agent) can be
-- removed once the proof is no longer kept: events are chained over a digest of that part
-- (`personal`), which stays. Events recorded before have none, and keep their part.
ALTER TABLE steward.consent_events ADD COLUMN personal BYTEA;
-- The ledger key's seal of a removal (only the retention sweep makes one).
ALTER TABLE steward.consent_events ADD COLUMN redacted BYTEA;

-- The one change the ledger allows: an event with a digest loses its personal part (the
-- party becomes the all-zero device, no address, no user agent); everything else as it was.
CREATE OR REPLACE FUNCTION steward.consent_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE'
        AND OLD.personal IS NOT NULL AND NEW.personal IS NOT DISTINCT FROM OLD.personal
        AND OLD.redacted IS NULL AND NEW.redacted IS NOT NULL
        AND NEW.seq = OLD.seq AND NEW.at = OLD.at AND NEW.action = OLD.action
        AND NEW.purpose IS NOT DISTINCT FROM OLD.purpose
        AND NEW.signal IS NOT DISTINCT FROM OLD.signal
        AND NEW.link IS NOT DISTINCT FROM OLD.link
        AND NEW.policy = OLD.policy AND NEW.terms IS NOT DISTINCT FROM OLD.terms
        AND NEW.method = OLD.method AND NEW.notice IS NOT DISTINCT FROM OLD.notice
        AND NEW.actor = OLD.actor AND NEW.prev = OLD.prev AND NEW.hash = OLD.hash
        AND NEW.party_kind = 'd' AND NEW.party = '\x00000000000000000000000000000000'::bytea
        AND NEW.ip IS NULL AND NEW.user_agent IS NULL
    THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'the consent ledger is append-only (but for removing an event''s personal part)';
END;
$$;

-- The sweep finds withdrawals by party and purpose.
CREATE INDEX consent_by_party_purpose ON steward.consent_events (party_kind, party, purpose, seq);
