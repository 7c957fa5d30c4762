-- +goose Up
-- Failed password logins per email, for the human login lockout. The key is a
-- keyed hash of the normalised email, so unknown emails (and passwords typed
-- into the email field) are never stored; rows exist for unknown emails too,
-- so a lockout does not reveal whether an account exists. Stale rows are
-- pruned on failed logins (index on counter_reset_at).
CREATE TABLE user_login_lockouts (
    email_hash       TEXT PRIMARY KEY,
    failed_attempts  INTEGER NOT NULL,
    counter_reset_at BIGINT NOT NULL,
    locked_until     BIGINT
);
CREATE INDEX user_login_lockouts_reset ON user_login_lockouts(counter_reset_at);

-- +goose Down
DROP TABLE user_login_lockouts;
