-- The key store, kept in its own file: a backup of the data alone holds no key.
CREATE TABLE roots (
    name TEXT PRIMARY KEY,
    kek_version INTEGER NOT NULL,
    wrapped BLOB NOT NULL
) STRICT;

CREATE TABLE subject_keys (
    subject BLOB PRIMARY KEY,
    kek_version INTEGER NOT NULL,
    wrapped BLOB NOT NULL
) STRICT;

CREATE TABLE hold_keys (
    subject BLOB PRIMARY KEY,
    kek_version INTEGER NOT NULL,
    wrapped BLOB NOT NULL
) STRICT;
