-- +goose Up
-- Secret values and comments are sealed with the project's data key; the
-- associated data names the secret and its version, so a ciphertext cannot
-- be moved to another secret or version.
CREATE TABLE secrets (
    id                       TEXT PRIMARY KEY,
    project_id               TEXT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    folder_id                TEXT NOT NULL REFERENCES folders(id) ON DELETE CASCADE,
    key                      TEXT NOT NULL,
    type                     TEXT NOT NULL,
    user_id                  TEXT REFERENCES users(id) ON DELETE CASCADE,
    version                  INTEGER NOT NULL,
    value                    BYTEA NOT NULL,
    comment                  BYTEA NOT NULL,
    skip_multiline_encoding  BOOLEAN NOT NULL DEFAULT FALSE,
    created_at               BIGINT NOT NULL,
    updated_at               BIGINT NOT NULL,
    CHECK (type IN ('shared', 'personal')),
    CHECK ((type = 'personal') = (user_id IS NOT NULL))
);
CREATE UNIQUE INDEX secrets_shared_key ON secrets(folder_id, key) WHERE type = 'shared';
CREATE UNIQUE INDEX secrets_personal_key ON secrets(folder_id, key, user_id) WHERE type = 'personal';

CREATE TABLE secret_versions (
    id                       TEXT PRIMARY KEY,
    secret_id                TEXT NOT NULL REFERENCES secrets(id) ON DELETE CASCADE,
    version                  INTEGER NOT NULL,
    key                      TEXT NOT NULL,
    value                    BYTEA NOT NULL,
    comment                  BYTEA NOT NULL,
    skip_multiline_encoding  BOOLEAN NOT NULL DEFAULT FALSE,
    actor_type               TEXT NOT NULL,
    actor_id                 TEXT NOT NULL,
    created_at               BIGINT NOT NULL,
    UNIQUE (secret_id, version)
);

-- +goose Down
DROP TABLE secret_versions;
DROP TABLE secrets;
