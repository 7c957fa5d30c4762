-- +goose Up
-- Legacy Infisical service tokens ("st.<id>.<secret>"). The secret is 256
-- random bits; only an HMAC-SHA256 of it under a key derived from the root
-- key is kept, checked in constant time against the row found by id.
-- scopes is a JSON array of {environment, secretPath}; permissions a JSON
-- array of "read"/"write".
CREATE TABLE service_tokens (
    id               TEXT PRIMARY KEY,
    project_id       TEXT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    name             TEXT NOT NULL,
    scopes           TEXT NOT NULL,
    permissions      TEXT NOT NULL,
    secret_hash      TEXT NOT NULL,
    created_by       TEXT NOT NULL,
    created_by_type  TEXT NOT NULL,
    expires_at       BIGINT,
    last_used        BIGINT,
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL
);
CREATE INDEX service_tokens_project ON service_tokens(project_id, created_at);

-- +goose Down
DROP TABLE service_tokens;
