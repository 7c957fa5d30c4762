-- +goose Up
-- PKI: a project's certificate authorities, the certificates they issue and
-- the templates that bound issuance. Private keys (a CA's always, a
-- certificate's when lockbox generated it) are sealed with the project's
-- data key, the associated data naming the row (pki.CAKeyAD, pki.CertKeyAD).
CREATE TABLE pki_cas (
    id               TEXT PRIMARY KEY,
    org_id           TEXT NOT NULL,
    project_id       TEXT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    ca_type          TEXT NOT NULL,
    status           TEXT NOT NULL,
    friendly_name    TEXT NOT NULL DEFAULT '',
    common_name      TEXT NOT NULL DEFAULT '',
    organization     TEXT NOT NULL DEFAULT '',
    ou               TEXT NOT NULL DEFAULT '',
    country          TEXT NOT NULL DEFAULT '',
    province         TEXT NOT NULL DEFAULT '',
    locality         TEXT NOT NULL DEFAULT '',
    dn               TEXT NOT NULL,
    key_algorithm    TEXT NOT NULL,
    max_path_length  INTEGER NOT NULL DEFAULT -1,
    parent_ca_id     TEXT NOT NULL DEFAULT '',
    serial_number    TEXT NOT NULL DEFAULT '',
    not_before       BIGINT,
    not_after        BIGINT,
    certificate      TEXT NOT NULL DEFAULT '',
    certificate_chain TEXT NOT NULL DEFAULT '',
    private_key      BYTEA NOT NULL,
    crl              BYTEA,
    crl_number       BIGINT NOT NULL DEFAULT 0,
    -- revocation_rev counts the CA's revocations; crl_rev is the count the
    -- stored CRL covers. A CRL behind is made again when next read.
    revocation_rev   BIGINT NOT NULL DEFAULT 0,
    crl_rev          BIGINT NOT NULL DEFAULT 0,
    crl_this_update  BIGINT,
    crl_next_update  BIGINT,
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL
);
CREATE INDEX pki_cas_project ON pki_cas (project_id, created_at);

CREATE TABLE pki_certificate_templates (
    id                       TEXT PRIMARY KEY,
    project_id               TEXT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    ca_id                    TEXT NOT NULL REFERENCES pki_cas(id) ON DELETE CASCADE,
    name                     TEXT NOT NULL,
    common_name              TEXT NOT NULL,
    subject_alternative_name TEXT NOT NULL,
    ttl                      TEXT NOT NULL,
    key_usages               TEXT NOT NULL DEFAULT '',
    extended_key_usages      TEXT NOT NULL DEFAULT '',
    created_at               BIGINT NOT NULL,
    updated_at               BIGINT NOT NULL,
    UNIQUE (project_id, name)
);

CREATE TABLE pki_certificates (
    id                  TEXT PRIMARY KEY,
    project_id          TEXT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    ca_id               TEXT NOT NULL REFERENCES pki_cas(id) ON DELETE CASCADE,
    template_id         TEXT NOT NULL DEFAULT '',
    status              TEXT NOT NULL,
    serial_number       TEXT NOT NULL UNIQUE,
    friendly_name       TEXT NOT NULL DEFAULT '',
    common_name         TEXT NOT NULL,
    alt_names           TEXT NOT NULL DEFAULT '',
    key_usages          TEXT NOT NULL DEFAULT '',
    extended_key_usages TEXT NOT NULL DEFAULT '',
    not_before          BIGINT NOT NULL,
    not_after           BIGINT NOT NULL,
    revoked_at          BIGINT,
    revocation_reason   INTEGER NOT NULL DEFAULT 0,
    certificate         TEXT NOT NULL,
    certificate_chain   TEXT NOT NULL DEFAULT '',
    private_key         BYTEA,
    created_at          BIGINT NOT NULL,
    updated_at          BIGINT NOT NULL
);
CREATE INDEX pki_certificates_project ON pki_certificates (project_id, created_at);
CREATE INDEX pki_certificates_expiry ON pki_certificates (project_id, status, not_after);
CREATE INDEX pki_certificates_revoked ON pki_certificates (ca_id, status);

-- +goose Down
DROP TABLE pki_certificates;
DROP TABLE pki_certificate_templates;
DROP TABLE pki_cas;
