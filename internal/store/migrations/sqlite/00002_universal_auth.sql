-- +goose Up
CREATE TABLE identity_universal_auths (
    id                             TEXT PRIMARY KEY,
    identity_id                    TEXT NOT NULL UNIQUE REFERENCES identities(id) ON DELETE CASCADE,
    client_id                      TEXT NOT NULL UNIQUE,
    access_token_ttl               BIGINT NOT NULL,
    access_token_max_ttl           BIGINT NOT NULL,
    access_token_num_uses_limit    BIGINT NOT NULL,
    access_token_period            BIGINT NOT NULL,
    client_secret_trusted_ips      TEXT NOT NULL,
    access_token_trusted_ips       TEXT NOT NULL,
    lockout_enabled                BOOLEAN NOT NULL,
    lockout_threshold              INTEGER NOT NULL,
    lockout_duration_seconds       INTEGER NOT NULL,
    lockout_counter_reset_seconds  INTEGER NOT NULL,
    created_at                     BIGINT NOT NULL,
    updated_at                     BIGINT NOT NULL
);

-- Client secrets are 256 random bits; only an HMAC-SHA256 of them is kept,
-- and login finds the row by that keyed hash (unique index): O(1).
CREATE TABLE identity_ua_client_secrets (
    id              TEXT PRIMARY KEY,
    identity_ua_id  TEXT NOT NULL REFERENCES identity_universal_auths(id) ON DELETE CASCADE,
    description     TEXT NOT NULL DEFAULT '',
    secret_hash     TEXT NOT NULL UNIQUE,
    prefix          TEXT NOT NULL,
    num_uses        BIGINT NOT NULL DEFAULT 0,
    num_uses_limit  BIGINT NOT NULL DEFAULT 0,
    ttl             BIGINT NOT NULL DEFAULT 0,
    revoked         BOOLEAN NOT NULL DEFAULT FALSE,
    last_used_at    BIGINT,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL
);
CREATE INDEX identity_ua_client_secrets_ua ON identity_ua_client_secrets(identity_ua_id);

-- Lockout state lives in the database so it holds across server processes.
CREATE TABLE identity_ua_lockouts (
    identity_ua_id   TEXT PRIMARY KEY REFERENCES identity_universal_auths(id) ON DELETE CASCADE,
    failed_attempts  INTEGER NOT NULL,
    counter_reset_at BIGINT NOT NULL,
    locked_until     BIGINT
);

CREATE INDEX identity_access_tokens_client_secret ON identity_access_tokens(client_secret_id);

-- +goose Down
DROP INDEX identity_access_tokens_client_secret;
DROP TABLE identity_ua_lockouts;
DROP TABLE identity_ua_client_secrets;
DROP TABLE identity_universal_auths;
