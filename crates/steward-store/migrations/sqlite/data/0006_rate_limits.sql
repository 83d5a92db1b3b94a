-- Rate-limit counters shared by every process on this data folder: a keyed hash of what is
-- counted (never an address, an identity or a name), the end of its current window, and the
-- count in it. Written without waiting for the disk: losing the last counts to a crash is fine.
CREATE TABLE rate_limits (
    key BLOB PRIMARY KEY,
    window_end INTEGER NOT NULL,
    count INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
CREATE INDEX rate_limits_by_end ON rate_limits (window_end);
