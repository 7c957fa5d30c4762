-- +goose Up
-- SSO with OpenID Connect for users: one configuration per organization.
-- The client secret is sealed under the organization's data key (AD binds it
-- to the row); nothing else in it is secret. default_role is the
-- organization role (built-in slug, or a custom role's slug) a user gets on
-- first login.
CREATE TABLE oidc_configs (
    id                      TEXT PRIMARY KEY,
    org_id                  TEXT NOT NULL UNIQUE REFERENCES orgs(id) ON DELETE CASCADE,
    configuration_type      TEXT NOT NULL,
    discovery_url           TEXT NOT NULL DEFAULT '',
    issuer                  TEXT NOT NULL DEFAULT '',
    authorization_endpoint  TEXT NOT NULL DEFAULT '',
    token_endpoint          TEXT NOT NULL DEFAULT '',
    jwks_uri                TEXT NOT NULL DEFAULT '',
    userinfo_endpoint       TEXT NOT NULL DEFAULT '',
    client_id               TEXT NOT NULL,
    client_secret           BYTEA NOT NULL,
    allowed_email_domains   TEXT NOT NULL DEFAULT '',
    default_role            TEXT NOT NULL DEFAULT 'member',
    is_active               BOOLEAN NOT NULL DEFAULT FALSE,
    created_at              BIGINT NOT NULL,
    updated_at              BIGINT NOT NULL
);

-- A login in flight: only the keyed hash of the state is stored, with the
-- nonce and PKCE verifier of that login; taking it deletes it, so a state
-- works once. Rows past expires_at are refused and pruned by later logins.
CREATE TABLE oidc_login_states (
    state_hash     TEXT PRIMARY KEY,
    org_id         TEXT NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
    nonce          TEXT NOT NULL,
    code_verifier  TEXT NOT NULL,
    next_path      TEXT NOT NULL DEFAULT '',
    expires_at     BIGINT NOT NULL
);
CREATE INDEX oidc_login_states_expiry ON oidc_login_states(expires_at);

-- +goose Down
DROP TABLE oidc_login_states;
DROP TABLE oidc_configs;
