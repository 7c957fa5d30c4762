-- +goose Up
-- PKI collections (named sets of a project's CAs and certificates), expiry
-- alerts on them, and the certificates a CA had before it was renewed.
CREATE TABLE pki_collections (
    id          TEXT PRIMARY KEY,
    project_id  TEXT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);
CREATE INDEX pki_collections_project ON pki_collections (project_id, created_at);

-- An item is a CA (ca_id) or a certificate (cert_id), never both; it goes
-- with what it names.
CREATE TABLE pki_collection_items (
    id            TEXT PRIMARY KEY,
    collection_id TEXT NOT NULL REFERENCES pki_collections(id) ON DELETE CASCADE,
    ca_id         TEXT REFERENCES pki_cas(id) ON DELETE CASCADE,
    cert_id       TEXT REFERENCES pki_certificates(id) ON DELETE CASCADE,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL,
    UNIQUE (collection_id, ca_id),
    UNIQUE (collection_id, cert_id)
);
CREATE INDEX pki_collection_items_list ON pki_collection_items (collection_id, created_at);

-- due_at is when the alert worker next looks at the alert: a claim moves
-- it a day on before the mail goes, so an alert mails at most once a day.
CREATE TABLE pki_alerts (
    id                TEXT PRIMARY KEY,
    project_id        TEXT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    collection_id     TEXT NOT NULL REFERENCES pki_collections(id) ON DELETE CASCADE,
    name              TEXT NOT NULL,
    alert_before_days INTEGER NOT NULL,
    recipient_emails  TEXT NOT NULL,
    due_at            BIGINT NOT NULL,
    last_sent_at      BIGINT,
    created_at        BIGINT NOT NULL,
    updated_at        BIGINT NOT NULL,
    UNIQUE (project_id, name)
);
CREATE INDEX pki_alerts_due ON pki_alerts (due_at);

-- A CA's earlier certificates, archived when it is renewed; the current
-- one stays on pki_cas. version counts from 1.
CREATE TABLE pki_ca_certificates (
    ca_id             TEXT NOT NULL REFERENCES pki_cas(id) ON DELETE CASCADE,
    version           INTEGER NOT NULL,
    serial_number     TEXT NOT NULL,
    certificate       TEXT NOT NULL,
    certificate_chain TEXT NOT NULL DEFAULT '',
    not_before        BIGINT NOT NULL,
    not_after         BIGINT NOT NULL,
    created_at        BIGINT NOT NULL,
    PRIMARY KEY (ca_id, version)
);

-- +goose Down
DROP TABLE pki_ca_certificates;
DROP TABLE pki_alerts;
DROP TABLE pki_collection_items;
DROP TABLE pki_collections;
