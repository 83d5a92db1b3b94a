-- Breaches and disclosures (GDPR Art. 33, 34, 30(1)(d)). The people and notice tables carry no
-- foreign key to their incident: an incident is never deleted, and a million checks would
-- double the cost of finding its people. An incident's record is JSON with no
-- personal data (what happened, when, its assessment, its notices); the people it affects are
-- pseudonymous subject ids, and each notice to each of them is a delivery row, so that none is
-- sent twice and none is skipped.
CREATE TABLE steward.incidents (
    id BYTEA PRIMARY KEY,
    number BIGINT NOT NULL UNIQUE,
    state TEXT NOT NULL,
    aware_at BIGINT NOT NULL,
    opened_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    revision BIGINT NOT NULL,
    body TEXT NOT NULL
);

CREATE TABLE steward.incident_subjects (
    incident BYTEA NOT NULL,
    subject BYTEA NOT NULL,
    source TEXT NOT NULL,
    PRIMARY KEY (incident, subject)
);

-- channel: email, in-app, password-reset. state: queued, sending, sent, failed (retried),
-- uncertain (a run stopped while it sent: never sent again on its own), posted (in-app),
-- read (in-app, acknowledged), acknowledged (password reset done).
CREATE TABLE steward.incident_deliveries (
    incident BYTEA NOT NULL,
    subject BYTEA NOT NULL,
    channel TEXT NOT NULL,
    state TEXT NOT NULL,
    queued_at BIGINT NOT NULL,
    run_at BIGINT NOT NULL,
    lease_until BIGINT,
    attempts BIGINT NOT NULL DEFAULT 0,
    last_error TEXT,
    sent_at BIGINT,
    acked_at BIGINT,
    PRIMARY KEY (incident, channel, subject)
);
CREATE INDEX incident_deliveries_due ON steward.incident_deliveries (channel, run_at) WHERE state = 'queued';
CREATE INDEX incident_deliveries_subject ON steward.incident_deliveries (subject, channel);

-- The people holding a category (a breach's affected set), read from the index alone in
-- subject order: no row is visited, and they are added in key order.
CREATE INDEX fields_by_category ON steward.fields (category, subject, collected_at);
CREATE INDEX identities_by_kind ON steward.identities (kind, subject);

-- Data shared with partners, processors and authorities (Art. 30(1)(d), Art. 15(1)(c)).
CREATE TABLE steward.disclosures (
    id BYTEA PRIMARY KEY,
    at BIGINT NOT NULL,
    recipient TEXT NOT NULL,
    tell BIGINT NOT NULL,
    gag_until BIGINT,
    body TEXT NOT NULL
);
CREATE INDEX disclosures_by_time ON steward.disclosures (at);

CREATE TABLE steward.disclosure_subjects (
    subject BYTEA NOT NULL,
    disclosure BYTEA NOT NULL REFERENCES steward.disclosures(id),
    PRIMARY KEY (subject, disclosure)
);
