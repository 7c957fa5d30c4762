-- +goose Up
-- SSH certificate authorities of a project. The private key is sealed with
-- the project's data key (associated data: the CA's row) and never leaves
-- the server; the public key is served to anyone who asks.
CREATE TABLE ssh_cas (
    id             TEXT PRIMARY KEY,
    org_id         TEXT NOT NULL,
    project_id     TEXT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    friendly_name  TEXT NOT NULL,
    key_algorithm  TEXT NOT NULL,
    status         TEXT NOT NULL,
    public_key     TEXT NOT NULL,
    private_key    BYTEA NOT NULL,
    created_at     BIGINT NOT NULL,
    updated_at     BIGINT NOT NULL
);
CREATE INDEX ssh_cas_project ON ssh_cas (project_id, created_at);

-- Certificate templates: what a CA may sign through them. Lists and maps
-- are JSON text.
CREATE TABLE ssh_certificate_templates (
    id                    TEXT PRIMARY KEY,
    project_id            TEXT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    ssh_ca_id             TEXT NOT NULL REFERENCES ssh_cas(id) ON DELETE CASCADE,
    name                  TEXT NOT NULL,
    status                TEXT NOT NULL,
    ttl                   TEXT NOT NULL,
    max_ttl               TEXT NOT NULL,
    allowed_users         TEXT NOT NULL,
    allowed_hosts         TEXT NOT NULL,
    allow_user_certs      BOOLEAN NOT NULL,
    allow_host_certs      BOOLEAN NOT NULL,
    allow_custom_key_ids  BOOLEAN NOT NULL,
    extensions            TEXT NOT NULL,
    critical_options      TEXT NOT NULL,
    created_at            BIGINT NOT NULL,
    updated_at            BIGINT NOT NULL,
    UNIQUE (project_id, name)
);
CREATE INDEX ssh_certificate_templates_ca ON ssh_certificate_templates (ssh_ca_id);

-- SSH hosts: a hostname, the CAs that sign its user and host certificates,
-- and who may log in as which login user (login_mappings, JSON).
CREATE TABLE ssh_hosts (
    id              TEXT PRIMARY KEY,
    org_id          TEXT NOT NULL,
    project_id      TEXT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    hostname        TEXT NOT NULL,
    alias           TEXT NOT NULL DEFAULT '',
    user_cert_ttl   TEXT NOT NULL,
    host_cert_ttl   TEXT NOT NULL,
    user_ssh_ca_id  TEXT NOT NULL REFERENCES ssh_cas(id),
    host_ssh_ca_id  TEXT NOT NULL REFERENCES ssh_cas(id),
    login_mappings  TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL,
    UNIQUE (project_id, hostname)
);
CREATE INDEX ssh_hosts_org ON ssh_hosts (org_id);

-- Every certificate issued: recorded in the transaction that audits it.
-- The serial is unique per CA.
CREATE TABLE ssh_certificates (
    id           TEXT PRIMARY KEY,
    project_id   TEXT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    ssh_ca_id    TEXT NOT NULL REFERENCES ssh_cas(id) ON DELETE CASCADE,
    template_id  TEXT,
    host_id      TEXT,
    serial       TEXT NOT NULL,
    cert_type    TEXT NOT NULL,
    principals   TEXT NOT NULL,
    key_id       TEXT NOT NULL,
    not_before   BIGINT NOT NULL,
    not_after    BIGINT NOT NULL,
    created_at   BIGINT NOT NULL,
    UNIQUE (ssh_ca_id, serial)
);
CREATE INDEX ssh_certificates_project ON ssh_certificates (project_id, created_at);

-- +goose Down
DROP TABLE ssh_certificates;
DROP TABLE ssh_hosts;
DROP TABLE ssh_certificate_templates;
DROP TABLE ssh_cas;
