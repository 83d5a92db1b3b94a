-- Data-subject requests. The person's address and requested new values are sealed; `body` is
-- JSON without personal data. `revision` guards against two writers overwriting each other.
CREATE TABLE requests (
    id BLOB PRIMARY KEY,
    kind TEXT NOT NULL,
    status TEXT NOT NULL,
    subject BLOB,
    received_at INTEGER NOT NULL,
    due_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    revision INTEGER NOT NULL,
    contact BLOB NOT NULL,
    payload BLOB,
    body TEXT NOT NULL
) STRICT;
CREATE INDEX requests_by_due ON requests (due_at);
CREATE INDEX requests_by_status ON requests (status, due_at);
CREATE INDEX requests_by_subject ON requests (subject) WHERE subject IS NOT NULL;

-- The durable queue: mail, webhooks, delayed erasure. Claimed with a lease; retried with
-- backoff until done.
CREATE TABLE jobs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    request BLOB,
    run_at INTEGER NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    lease_until INTEGER,
    payload TEXT NOT NULL,
    last_error TEXT,
    done_at INTEGER
) STRICT;
CREATE INDEX jobs_due ON jobs (run_at) WHERE done_at IS NULL;
CREATE INDEX jobs_by_request ON jobs (request) WHERE request IS NOT NULL;
