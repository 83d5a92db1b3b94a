-- The vault's data: only ciphertext, blind indexes and non-personal metadata.
CREATE TABLE subjects (
    id BLOB PRIMARY KEY,
    created_at INTEGER NOT NULL
) STRICT;

CREATE TABLE identities (
    subject BLOB NOT NULL REFERENCES subjects(id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    idx BLOB NOT NULL,
    sealed BLOB NOT NULL,
    PRIMARY KEY (kind, idx)
) STRICT;
CREATE INDEX identities_subject ON identities(subject);

CREATE TABLE fields (
    id BLOB PRIMARY KEY,
    subject BLOB NOT NULL REFERENCES subjects(id) ON DELETE CASCADE,
    category TEXT NOT NULL,
    purpose TEXT NOT NULL,
    source TEXT NOT NULL,
    collected_at INTEGER NOT NULL,
    sealed BLOB NOT NULL
) STRICT;
CREATE INDEX fields_subject ON fields(subject);

-- Fields kept through an erasure by a legal hold, sealed under the subject's hold key.
CREATE TABLE held_fields (
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
CREATE INDEX held_fields_subject ON held_fields(subject);
