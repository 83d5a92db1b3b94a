-- Retention: each person's last recorded activity and the end of their contract (NULL: none
-- recorded; activity then counts from their creation), an index for each rule's due records,
-- and at most one scheduled sweep pending across processes.
ALTER TABLE steward.subjects ADD COLUMN active_at BIGINT;
ALTER TABLE steward.subjects ADD COLUMN contract_ended_at BIGINT;
CREATE INDEX fields_retention ON steward.fields (purpose, category, collected_at);
CREATE INDEX identities_retention ON steward.identities (purpose, kind);
CREATE INDEX consent_by_action ON steward.consent_events (action, purpose, at) WHERE party_kind = 's';
CREATE INDEX requests_finished ON steward.requests (updated_at) WHERE status IN ('completed', 'denied', 'expired');
CREATE UNIQUE INDEX jobs_one_sweep ON steward.jobs (kind) WHERE kind = 'retention' AND done_at IS NULL;
