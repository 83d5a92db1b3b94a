-- Retention: each person's last recorded activity and the end of their contract (NULL: none
-- recorded; activity then counts from their creation), an index for each rule's due records,
-- and at most one scheduled sweep pending across processes.
ALTER TABLE subjects ADD COLUMN active_at INTEGER;
ALTER TABLE subjects ADD COLUMN contract_ended_at INTEGER;
CREATE INDEX fields_retention ON fields (purpose, category, collected_at);
CREATE INDEX identities_retention ON identities (purpose, kind);
CREATE INDEX consent_by_action ON consent_events (action, purpose, at) WHERE party_kind = 's';
CREATE INDEX requests_finished ON requests (updated_at) WHERE status IN ('completed', 'denied', 'expired');
CREATE UNIQUE INDEX jobs_one_sweep ON jobs (kind) WHERE kind = 'retention' AND done_at IS NULL;
