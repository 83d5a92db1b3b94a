-- Each recipient's webhook signing secret is derived from the master key and a generation; this
-- table keeps the generation, the one before the last rotation (it keeps signing for a day),
-- when that rotation was, and when the current one was shown (it is shown once). No secret is
-- stored.
CREATE TABLE recipient_secrets (
    recipient TEXT PRIMARY KEY,
    generation INTEGER NOT NULL,
    previous INTEGER,
    rotated_at INTEGER,
    shown_at INTEGER
) STRICT;
