-- +goose Up
CREATE TABLE dynamic_secrets (
    id                 TEXT PRIMARY KEY,
    project_id         TEXT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    folder_id          TEXT NOT NULL REFERENCES folders(id) ON DELETE CASCADE,
    name               TEXT NOT NULL,
    type               TEXT NOT NULL,
    inputs             BYTEA NOT NULL,
    default_ttl        TEXT NOT NULL,
    max_ttl            TEXT NOT NULL DEFAULT '',
    username_template  TEXT NOT NULL DEFAULT '',
    metadata           TEXT NOT NULL DEFAULT '[]',
    status             TEXT NOT NULL DEFAULT '',
    status_details     TEXT NOT NULL DEFAULT '',
    created_at         BIGINT NOT NULL,
    updated_at         BIGINT NOT NULL,
    UNIQUE (folder_id, name)
);

-- A lease row exists before its credential does (status 'creating'); due_at
-- is when the worker must next act on it. Leases keep their dynamic secret
-- alive (no cascade): a secret is deleted only after its leases are revoked.
CREATE TABLE dynamic_leases (
    id                 TEXT PRIMARY KEY,
    dynamic_secret_id  TEXT NOT NULL REFERENCES dynamic_secrets(id),
    project_id         TEXT NOT NULL,
    username           TEXT NOT NULL,
    data               BYTEA,
    config             TEXT NOT NULL DEFAULT '{}',
    status             TEXT NOT NULL,
    status_details     TEXT NOT NULL DEFAULT '',
    expire_at          BIGINT NOT NULL,
    due_at             BIGINT NOT NULL,
    attempts           INTEGER NOT NULL DEFAULT 0,
    created_at         BIGINT NOT NULL,
    updated_at         BIGINT NOT NULL,
    CHECK (status IN ('creating', 'active', 'revoking', 'revoked', 'revoke_failed'))
);
CREATE INDEX dynamic_leases_due ON dynamic_leases(due_at) WHERE status <> 'revoked';
CREATE INDEX dynamic_leases_secret ON dynamic_leases(dynamic_secret_id);

-- +goose Down
DROP TABLE dynamic_leases;
DROP TABLE dynamic_secrets;
