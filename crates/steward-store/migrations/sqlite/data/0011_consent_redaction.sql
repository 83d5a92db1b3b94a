-- A consent event's personal part (its party, the address's keyed hash, the user agent) can be
-- removed once the proof is no longer kept: events are chained over a digest of that part
-- (`personal`), which stays. Events recorded before have none, and keep their part.
ALTER TABLE consent_events ADD COLUMN personal BLOB;
-- The ledger key's seal of a removal (only the retention sweep makes one).
ALTER TABLE consent_events ADD COLUMN redacted BLOB;

-- The one change the ledger allows: an event with a digest loses its personal part (the
-- party becomes the all-zero device, no address, no user agent); everything else as it was.
DROP TRIGGER consent_events_no_update;
CREATE TRIGGER consent_events_no_update BEFORE UPDATE ON consent_events
WHEN NOT (
    OLD.personal IS NOT NULL AND NEW.personal IS OLD.personal
    AND OLD.redacted IS NULL AND NEW.redacted IS NOT NULL
    AND NEW.seq = OLD.seq AND NEW.at = OLD.at AND NEW.action = OLD.action
    AND NEW.purpose IS OLD.purpose AND NEW.signal IS OLD.signal AND NEW.link IS OLD.link
    AND NEW.policy = OLD.policy AND NEW.terms IS OLD.terms AND NEW.method = OLD.method
    AND NEW.notice IS OLD.notice AND NEW.actor = OLD.actor
    AND NEW.prev = OLD.prev AND NEW.hash = OLD.hash
    AND NEW.party_kind = 'd' AND NEW.party = zeroblob(16)
    AND NEW.ip IS NULL AND NEW.user_agent IS NULL
)
BEGIN SELECT RAISE(ABORT, 'the consent ledger is append-only (but for removing an event''s personal part)'); END;

-- The sweep finds withdrawals by party and purpose.
CREATE INDEX consent_by_party_purpose ON consent_events (party_kind, party, purpose, seq);
