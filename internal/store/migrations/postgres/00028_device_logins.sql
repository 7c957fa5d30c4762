-- +goose Up
-- Device logins (RFC 8628's flow) for the CLI: a login started without a
-- browser, approved by a user signed in to the dashboard (by password or
-- SSO), then collected by the CLI as an API session. Only a hash of the
-- device code is stored; the user code is short and lives ten minutes. The
-- requester's address and user agent are shown to the approving user.
-- Rows past expires_at are refused and pruned by later starts.
CREATE TABLE device_logins (
    device_code_hash  TEXT PRIMARY KEY,
    user_code         TEXT NOT NULL UNIQUE,
    status            TEXT NOT NULL DEFAULT 'pending',
    user_id           TEXT REFERENCES users(id) ON DELETE CASCADE,
    org_id            TEXT REFERENCES orgs(id) ON DELETE CASCADE,
    requested_ip      TEXT NOT NULL DEFAULT '',
    requested_ua      TEXT NOT NULL DEFAULT '',
    expires_at        BIGINT NOT NULL,
    created_at        BIGINT NOT NULL
);
CREATE INDEX device_logins_expiry ON device_logins(expires_at);

-- +goose Down
DROP TABLE device_logins;
