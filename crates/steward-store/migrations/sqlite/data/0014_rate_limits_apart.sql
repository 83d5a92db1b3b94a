-- The rate-limit counters moved to limits.db, a file of their own (see SqliteStore::limits):
-- the counts here were only ever for the current window.
DROP TABLE rate_limits;
