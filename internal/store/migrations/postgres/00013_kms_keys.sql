-- +goose Up
-- KMS keys of a project (Infisical's "cmek" keys). The key row names the
-- current version; each version's material lives in kms_key_versions,
-- sealed with the project's data key (associated data: the version row), so
-- deleting a key or a version destroys its material.
CREATE TABLE kms_keys (
    id           TEXT PRIMARY KEY,
    org_id       TEXT NOT NULL,
    project_id   TEXT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    name         TEXT NOT NULL,
    description  TEXT NOT NULL DEFAULT '',
    key_usage    TEXT NOT NULL,
    algorithm    TEXT NOT NULL,
    is_disabled  BOOLEAN NOT NULL DEFAULT FALSE,
    version      INTEGER NOT NULL,
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL,
    UNIQUE (project_id, name)
);

CREATE TABLE kms_key_versions (
    key_id      TEXT NOT NULL REFERENCES kms_keys(id) ON DELETE CASCADE,
    version     INTEGER NOT NULL,
    material    BYTEA NOT NULL,
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (key_id, version)
);

-- +goose Down
DROP TABLE kms_key_versions;
DROP TABLE kms_keys;
