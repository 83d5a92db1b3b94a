-- The blind indexes of an erased person whose data a legal hold keeps: only the keyed hashes
-- (no value), so that the kept data can still be found for its own purpose and for the
-- person's later access request. Deleted with the hold.
CREATE TABLE held_identities (
    subject BLOB NOT NULL,
    kind TEXT NOT NULL,
    idx BLOB NOT NULL,
    PRIMARY KEY (kind, idx, subject)
) STRICT;
CREATE INDEX held_identities_subject ON held_identities(subject);
CREATE INDEX held_fields_until ON held_fields(hold_until) WHERE hold_until IS NOT NULL;
