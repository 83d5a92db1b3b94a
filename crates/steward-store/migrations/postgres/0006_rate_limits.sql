-- Rate-limit counters shared by every `steward serve` on this database: a keyed hash of what
-- is counted (never an address, an identity or a name), the end of its current window, and
-- the count in it. Unlogged: cheap to write, and losing the last counts to a crash is fine.
CREATE UNLOGGED TABLE steward.rate_limits (
    key BYTEA PRIMARY KEY,
    window_end BIGINT NOT NULL,
    count BIGINT NOT NULL
);
CREATE INDEX rate_limits_by_end ON steward.rate_limits (window_end);
