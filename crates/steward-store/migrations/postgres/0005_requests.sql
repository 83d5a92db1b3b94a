-- Data-subject requests. The person's address and requested new values are sealed; `body` is
-- JSON without personal data. `revision` guards against two writers overwriting each other.
CREATE TABLE steward.requests (
    id BYTEA PRIMARY KEY,
    kind TEXT NOT NULL,
    status TEXT NOT NULL,
    subject BYTEA,
    received_at BIGINT NOT NULL,
    due_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    revision BIGINT NOT NULL,
    contact BYTEA NOT NULL,
    payload BYTEA,
    body TEXT NOT NULL
);
CREATE INDEX requests_by_due ON steward.requests (due_at);
CREATE INDEX requests_by_status ON steward.requests (status, due_at);
CREATE INDEX requests_by_subject ON steward.requests (subject) WHERE subject IS NOT NULL;

-- The durable queue: mail, webhooks, delayed erasure. Claimed with a lease; retried with
-- backoff until done.
CREATE TABLE steward.jobs (
    id BIGSERIAL PRIMARY KEY,
    kind TEXT NOT NULL,
    request BYTEA,
    run_at BIGINT NOT NULL,
    attempts BIGINT NOT NULL DEFAULT 0,
    lease_until BIGINT,
    payload TEXT NOT NULL,
    last_error TEXT,
    done_at BIGINT
);
CREATE INDEX jobs_due ON steward.jobs (run_at) WHERE done_at IS NULL;
CREATE INDEX jobs_by_request ON steward.jobs (request) WHERE request IS NOT NULL;
