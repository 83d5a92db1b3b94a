-- Each recipient's webhook signing secret is derived from the master key and a generation; this
-- table keeps the generation, the one before the last rotation (it keeps signing for a day),
-- when that rotation was, and when the current one was shown (it is shown once). No secret is
-- stored.
CREATE TABLE steward.recipient_secrets (
    recipient TEXT PRIMARY KEY,
    generation BIGINT NOT NULL,
    previous BIGINT,
    rotated_at BIGINT,
    shown_at BIGINT
);
