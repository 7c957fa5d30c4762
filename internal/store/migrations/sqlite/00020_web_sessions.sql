-- +goose Up
-- Dashboard sessions live in user_sessions beside the API's: for kind 'web'
-- the id is the hex SHA-256 of the cookie's random token, never the token.
-- last_seen_at drives the idle timeout, expires_at the absolute one;
-- mfa_pending marks a session whose password was right but whose second
-- factor is still owed (it reaches nothing but the code form).
ALTER TABLE user_sessions ADD COLUMN kind TEXT NOT NULL DEFAULT 'api';
ALTER TABLE user_sessions ADD COLUMN last_seen_at BIGINT;
ALTER TABLE user_sessions ADD COLUMN mfa_pending BOOLEAN NOT NULL DEFAULT FALSE;

-- A user's TOTP second factor: the seed sealed under a key derived from the
-- root key (AD binds it to the user), enabled once a first code confirmed it;
-- last_step refuses a code used again within its window.
CREATE TABLE user_totp (
    user_id     TEXT PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
    secret      BLOB NOT NULL,
    enabled     BOOLEAN NOT NULL DEFAULT FALSE,
    last_step   BIGINT NOT NULL DEFAULT 0,
    created_at  BIGINT NOT NULL
);

-- Single-use recovery codes, kept as keyed hashes.
CREATE TABLE user_recovery_codes (
    user_id    TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    code_hash  TEXT NOT NULL,
    used_at    BIGINT,
    PRIMARY KEY (user_id, code_hash)
);

-- +goose Down
DROP TABLE user_recovery_codes;
DROP TABLE user_totp;
ALTER TABLE user_sessions DROP COLUMN mfa_pending;
ALTER TABLE user_sessions DROP COLUMN last_seen_at;
ALTER TABLE user_sessions DROP COLUMN kind;
