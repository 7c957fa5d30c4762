-- +goose Up
-- Login methods that trust a credential from the workload's platform (JWT,
-- OIDC, ...): one row per identity and method. The shared token settings are
-- columns; what is particular to a method is its JSON configuration, so a new
-- method needs no migration. Nothing in it is secret for JWT and OIDC (keys,
-- URLs and CA certificates are public).
CREATE TABLE identity_auth_configs (
    id                           TEXT PRIMARY KEY,
    identity_id                  TEXT NOT NULL REFERENCES identities(id) ON DELETE CASCADE,
    method                       TEXT NOT NULL,
    config                       TEXT NOT NULL,
    access_token_ttl             BIGINT NOT NULL,
    access_token_max_ttl         BIGINT NOT NULL,
    access_token_num_uses_limit  BIGINT NOT NULL,
    access_token_trusted_ips     TEXT NOT NULL,
    created_at                   BIGINT NOT NULL,
    updated_at                   BIGINT NOT NULL,
    UNIQUE (identity_id, method)
);

-- +goose Down
DROP TABLE identity_auth_configs;
