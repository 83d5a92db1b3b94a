-- Erasures whose keys are destroyed but whose rows in steward.db are not yet deleted: SQLite
-- commits the two files apart, and an erasure cut off between them (the disk full, a crash)
-- is finished from here — with the fields its legal hold keeps, sealed under the hold key —
-- when the store next opens or writes. Empty but for that moment.
CREATE TABLE erasures (
    subject BLOB PRIMARY KEY
) STRICT;

CREATE TABLE erasure_held_fields (
    id BLOB PRIMARY KEY,
    subject BLOB NOT NULL,
    category TEXT NOT NULL,
    purpose TEXT NOT NULL,
    source TEXT NOT NULL,
    collected_at INTEGER NOT NULL,
    sealed BLOB NOT NULL,
    reason TEXT NOT NULL,
    hold_until INTEGER
) STRICT;
CREATE INDEX erasure_held_fields_subject ON erasure_held_fields(subject);
