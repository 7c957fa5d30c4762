-- +goose Up
-- Two-phase revocation (PostgreSQL targets with the default revocation
-- statement): a lease is recorded revoked once its role is disabled, and in
-- the same transaction its role is queued here to be dropped. A row lives
-- until the role is gone. due_at is when the worker may next take it: a
-- claim moves it past the claim's end, a failure to the retry time.
-- Dynamic secrets are deleted only after their rows are worked off (no cascade).
CREATE TABLE dynamic_cleanups (
    lease_id           TEXT PRIMARY KEY,
    dynamic_secret_id  TEXT NOT NULL REFERENCES dynamic_secrets(id),
    username           TEXT NOT NULL,
    due_at             BIGINT NOT NULL,
    attempts           INTEGER NOT NULL DEFAULT 0,
    last_error         TEXT NOT NULL DEFAULT '',
    created_at         BIGINT NOT NULL
);
CREATE INDEX dynamic_cleanups_due ON dynamic_cleanups(due_at);
CREATE INDEX dynamic_cleanups_secret_due ON dynamic_cleanups(dynamic_secret_id, due_at);

-- +goose Down
DROP TABLE dynamic_cleanups;
