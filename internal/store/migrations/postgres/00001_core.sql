-- +goose Up
-- Times are BIGINT microseconds since the Unix epoch, UTC, on both engines.

-- server_config has at most one row; inserting it is how bootstrap claims the instance.
CREATE TABLE server_config (
    id                 INTEGER PRIMARY KEY CHECK (id = 1),
    admin_identity_id  TEXT NOT NULL,
    initialized_at     BIGINT NOT NULL
);

-- data_keys holds each org's and project's data key, wrapped by the root key.
CREATE TABLE data_keys (
    owner_type   TEXT NOT NULL,
    owner_id     TEXT NOT NULL,
    wrapped      BYTEA NOT NULL,
    root_key_id  TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL,
    PRIMARY KEY (owner_type, owner_id)
);

CREATE TABLE users (
    id             TEXT PRIMARY KEY,
    email          TEXT NOT NULL UNIQUE,
    username       TEXT NOT NULL,
    first_name     TEXT NOT NULL DEFAULT '',
    last_name      TEXT NOT NULL DEFAULT '',
    password_hash  TEXT NOT NULL,
    super_admin    BOOLEAN NOT NULL DEFAULT FALSE,
    created_at     BIGINT NOT NULL,
    updated_at     BIGINT NOT NULL
);

CREATE TABLE orgs (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    slug        TEXT NOT NULL UNIQUE,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);

CREATE TABLE user_sessions (
    id          TEXT PRIMARY KEY,
    user_id     TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    org_id      TEXT REFERENCES orgs(id) ON DELETE CASCADE,
    revoked     BOOLEAN NOT NULL DEFAULT FALSE,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL
);
CREATE INDEX user_sessions_user ON user_sessions(user_id);

CREATE TABLE identities (
    id                     TEXT PRIMARY KEY,
    org_id                 TEXT NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
    name                   TEXT NOT NULL,
    has_delete_protection  BOOLEAN NOT NULL DEFAULT FALSE,
    created_at             BIGINT NOT NULL,
    updated_at             BIGINT NOT NULL
);
CREATE INDEX identities_org ON identities(org_id);

CREATE TABLE identity_metadata (
    id           TEXT PRIMARY KEY,
    identity_id  TEXT NOT NULL REFERENCES identities(id) ON DELETE CASCADE,
    key          TEXT NOT NULL,
    value        TEXT NOT NULL
);
CREATE INDEX identity_metadata_identity ON identity_metadata(identity_id);

-- org_memberships: exactly one of user_id, identity_id is set.
CREATE TABLE org_memberships (
    id                      TEXT PRIMARY KEY,
    org_id                  TEXT NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
    user_id                 TEXT REFERENCES users(id) ON DELETE CASCADE,
    identity_id             TEXT REFERENCES identities(id) ON DELETE CASCADE,
    role                    TEXT NOT NULL,
    last_login_auth_method  TEXT,
    last_login_time         BIGINT,
    created_at              BIGINT NOT NULL,
    updated_at              BIGINT NOT NULL,
    CHECK ((user_id IS NULL) <> (identity_id IS NULL))
);
CREATE UNIQUE INDEX org_memberships_user ON org_memberships(org_id, user_id) WHERE user_id IS NOT NULL;
CREATE UNIQUE INDEX org_memberships_identity ON org_memberships(org_id, identity_id) WHERE identity_id IS NOT NULL;

CREATE TABLE projects (
    id                     TEXT PRIMARY KEY,
    org_id                 TEXT NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
    name                   TEXT NOT NULL,
    slug                   TEXT NOT NULL UNIQUE,
    description            TEXT NOT NULL DEFAULT '',
    type                   TEXT NOT NULL,
    auto_capitalization    BOOLEAN NOT NULL DEFAULT FALSE,
    has_delete_protection  BOOLEAN NOT NULL DEFAULT FALSE,
    version                INTEGER NOT NULL DEFAULT 3,
    created_at             BIGINT NOT NULL,
    updated_at             BIGINT NOT NULL
);
CREATE INDEX projects_org ON projects(org_id);

CREATE TABLE environments (
    id          TEXT PRIMARY KEY,
    project_id  TEXT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    slug        TEXT NOT NULL,
    position    INTEGER NOT NULL,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL,
    UNIQUE (project_id, slug)
);

-- folders: each environment has one root folder (parent_id NULL, name 'root').
CREATE TABLE folders (
    id           TEXT PRIMARY KEY,
    env_id       TEXT NOT NULL REFERENCES environments(id) ON DELETE CASCADE,
    parent_id    TEXT REFERENCES folders(id) ON DELETE CASCADE,
    name         TEXT NOT NULL,
    description  TEXT NOT NULL DEFAULT '',
    version      INTEGER NOT NULL DEFAULT 1,
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL
);
CREATE UNIQUE INDEX folders_root ON folders(env_id) WHERE parent_id IS NULL;
CREATE UNIQUE INDEX folders_child ON folders(parent_id, name) WHERE parent_id IS NOT NULL;

CREATE TABLE project_roles (
    id           TEXT PRIMARY KEY,
    project_id   TEXT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    slug         TEXT NOT NULL,
    name         TEXT NOT NULL,
    description  TEXT NOT NULL DEFAULT '',
    permissions  TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL,
    UNIQUE (project_id, slug)
);

-- project_memberships: exactly one of user_id, identity_id is set.
CREATE TABLE project_memberships (
    id                      TEXT PRIMARY KEY,
    project_id              TEXT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    user_id                 TEXT REFERENCES users(id) ON DELETE CASCADE,
    identity_id             TEXT REFERENCES identities(id) ON DELETE CASCADE,
    last_login_auth_method  TEXT,
    last_login_time         BIGINT,
    created_at              BIGINT NOT NULL,
    updated_at              BIGINT NOT NULL,
    CHECK ((user_id IS NULL) <> (identity_id IS NULL))
);
CREATE UNIQUE INDEX project_memberships_user ON project_memberships(project_id, user_id) WHERE user_id IS NOT NULL;
CREATE UNIQUE INDEX project_memberships_identity ON project_memberships(project_id, identity_id) WHERE identity_id IS NOT NULL;
CREATE INDEX project_memberships_identity_id ON project_memberships(identity_id);

-- A custom role in use cannot be deleted (no ON DELETE action).
CREATE TABLE project_membership_roles (
    id                           TEXT PRIMARY KEY,
    membership_id                TEXT NOT NULL REFERENCES project_memberships(id) ON DELETE CASCADE,
    role                         TEXT NOT NULL,
    custom_role_id               TEXT REFERENCES project_roles(id),
    is_temporary                 BOOLEAN NOT NULL DEFAULT FALSE,
    temporary_mode               TEXT,
    temporary_range              TEXT,
    temporary_access_start_time  BIGINT,
    temporary_access_end_time    BIGINT,
    created_at                   BIGINT NOT NULL,
    updated_at                   BIGINT NOT NULL
);
CREATE INDEX project_membership_roles_membership ON project_membership_roles(membership_id);
CREATE INDEX project_membership_roles_custom ON project_membership_roles(custom_role_id);

CREATE TABLE identity_token_auths (
    id                           TEXT PRIMARY KEY,
    identity_id                  TEXT NOT NULL UNIQUE REFERENCES identities(id) ON DELETE CASCADE,
    access_token_ttl             BIGINT NOT NULL,
    access_token_max_ttl         BIGINT NOT NULL,
    access_token_num_uses_limit  BIGINT NOT NULL,
    access_token_trusted_ips     TEXT NOT NULL,
    created_at                   BIGINT NOT NULL,
    updated_at                   BIGINT NOT NULL
);

-- identity_access_tokens: one row per issued machine-identity token; the JWT carries the id.
CREATE TABLE identity_access_tokens (
    id                    TEXT PRIMARY KEY,
    identity_id           TEXT NOT NULL REFERENCES identities(id) ON DELETE CASCADE,
    auth_method           TEXT NOT NULL,
    name                  TEXT NOT NULL DEFAULT '',
    client_secret_id      TEXT,
    access_token_ttl      BIGINT NOT NULL,
    access_token_max_ttl  BIGINT NOT NULL,
    access_token_period   BIGINT NOT NULL DEFAULT 0,
    num_uses              BIGINT NOT NULL DEFAULT 0,
    num_uses_limit        BIGINT NOT NULL DEFAULT 0,
    trusted_ips           TEXT NOT NULL DEFAULT '[]',
    last_used_at          BIGINT,
    last_renewed_at       BIGINT,
    revoked               BOOLEAN NOT NULL DEFAULT FALSE,
    created_at            BIGINT NOT NULL,
    updated_at            BIGINT NOT NULL
);
CREATE INDEX identity_access_tokens_identity ON identity_access_tokens(identity_id);

-- audit_logs is append-only and keeps no foreign keys, so events outlive what they describe.
CREATE TABLE audit_logs (
    id               TEXT PRIMARY KEY,
    org_id           TEXT NOT NULL,
    project_id       TEXT,
    project_name     TEXT,
    actor_type       TEXT NOT NULL,
    actor_id         TEXT NOT NULL,
    actor_metadata   TEXT NOT NULL,
    event_type       TEXT NOT NULL,
    event_metadata   TEXT NOT NULL,
    ip_address       TEXT NOT NULL DEFAULT '',
    user_agent       TEXT NOT NULL DEFAULT '',
    user_agent_type  TEXT NOT NULL DEFAULT 'other',
    created_at       BIGINT NOT NULL,
    expires_at       BIGINT
);
CREATE INDEX audit_logs_org_time ON audit_logs(org_id, created_at);
CREATE INDEX audit_logs_org_event_time ON audit_logs(org_id, event_type, created_at);

-- +goose Down
DROP TABLE audit_logs;
DROP TABLE identity_access_tokens;
DROP TABLE identity_token_auths;
DROP TABLE project_membership_roles;
DROP TABLE project_memberships;
DROP TABLE project_roles;
DROP TABLE folders;
DROP TABLE environments;
DROP TABLE projects;
DROP TABLE org_memberships;
DROP TABLE identity_metadata;
DROP TABLE identities;
DROP TABLE user_sessions;
DROP TABLE orgs;
DROP TABLE users;
DROP TABLE data_keys;
DROP TABLE server_config;
