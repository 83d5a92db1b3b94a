-- Breaches and disclosures (GDPR Art. 33, 34, 30(1)(d)). The people and notice tables carry no
-- foreign key to their incident: an incident is never deleted, and a million checks would
-- double the cost of finding its people. An incident's record is JSON with no
-- personal data (what happened, when, its assessment, its notices); the people it affects are
-- pseudonymous subject ids, and each notice to each of them is a delivery row, so that none is
-- sent twice and none is skipped.
CREATE TABLE incidents (
    id BLOB PRIMARY KEY,
    number INTEGER NOT NULL UNIQUE,
    state TEXT NOT NULL,
    aware_at INTEGER NOT NULL,
    opened_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    revision INTEGER NOT NULL,
    body TEXT NOT NULL
) STRICT;

CREATE TABLE incident_subjects (
    incident BLOB NOT NULL,
    subject BLOB NOT NULL,
    source TEXT NOT NULL,
    PRIMARY KEY (incident, subject)
) STRICT, WITHOUT ROWID;

-- channel: email, in-app, password-reset. state: queued, sending, sent, failed (retried),
-- uncertain (a run stopped while it sent: never sent again on its own), posted (in-app),
-- read (in-app, acknowledged), acknowledged (password reset done).
CREATE TABLE incident_deliveries (
    incident BLOB NOT NULL,
    subject BLOB NOT NULL,
    channel TEXT NOT NULL,
    state TEXT NOT NULL,
    queued_at INTEGER NOT NULL,
    run_at INTEGER NOT NULL,
    lease_until INTEGER,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    sent_at INTEGER,
    acked_at INTEGER,
    PRIMARY KEY (incident, channel, subject)
) STRICT, WITHOUT ROWID;
CREATE INDEX incident_deliveries_due ON incident_deliveries (channel, run_at) WHERE state = 'queued';
CREATE INDEX incident_deliveries_subject ON incident_deliveries (subject, channel);

-- The people holding a category (a breach's affected set), read from the index alone in
-- subject order: no row is visited, and they are added in key order.
CREATE INDEX fields_by_category ON fields (category, subject, collected_at);
CREATE INDEX identities_by_kind ON identities (kind, subject);

-- Data shared with partners, processors and authorities (Art. 30(1)(d), Art. 15(1)(c)).
CREATE TABLE disclosures (
    id BLOB PRIMARY KEY,
    at INTEGER NOT NULL,
    recipient TEXT NOT NULL,
    tell INTEGER NOT NULL,
    gag_until INTEGER,
    body TEXT NOT NULL
) STRICT;
CREATE INDEX disclosures_by_time ON disclosures (at);

CREATE TABLE disclosure_subjects (
    subject BLOB NOT NULL,
    disclosure BLOB NOT NULL REFERENCES disclosures(id),
    PRIMARY KEY (subject, disclosure)
) STRICT, WITHOUT ROWID;
