-- +goose Up
-- Groups of an organization's users and machine identities. A group holds
-- an organization role (built-in slug, or 'custom' with custom_role_id) and,
-- through project_group_memberships, roles in projects: every member holds
-- the group's project roles in addition to their own (resolved with the
-- project grants, see internal/store/authz.go). The table is org_groups
-- because GROUPS is a keyword of both engines' window syntax.
CREATE TABLE org_groups (
    id              TEXT PRIMARY KEY,
    org_id          TEXT NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
    name            TEXT NOT NULL,
    slug            TEXT NOT NULL,
    role            TEXT NOT NULL,
    custom_role_id  TEXT REFERENCES org_roles(id),
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL,
    UNIQUE (org_id, slug),
    UNIQUE (org_id, name)
);
CREATE INDEX org_groups_custom_role ON org_groups(custom_role_id);

-- group_members: exactly one of user_id, identity_id is set. Looked up by
-- member first (permission resolution), by group for listings.
CREATE TABLE group_members (
    id           TEXT PRIMARY KEY,
    group_id     TEXT NOT NULL REFERENCES org_groups(id) ON DELETE CASCADE,
    user_id      TEXT REFERENCES users(id) ON DELETE CASCADE,
    identity_id  TEXT REFERENCES identities(id) ON DELETE CASCADE,
    created_at   BIGINT NOT NULL,
    CHECK ((user_id IS NULL) <> (identity_id IS NULL))
);
CREATE UNIQUE INDEX group_members_user ON group_members(user_id, group_id) WHERE user_id IS NOT NULL;
CREATE UNIQUE INDEX group_members_identity ON group_members(identity_id, group_id) WHERE identity_id IS NOT NULL;
CREATE INDEX group_members_group ON group_members(group_id);

-- A group's membership of a project, with its roles (the columns of
-- project_membership_roles; a custom role in use cannot be deleted).
CREATE TABLE project_group_memberships (
    id          TEXT PRIMARY KEY,
    project_id  TEXT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    group_id    TEXT NOT NULL REFERENCES org_groups(id) ON DELETE CASCADE,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL,
    UNIQUE (group_id, project_id)
);
CREATE INDEX project_group_memberships_project ON project_group_memberships(project_id);

CREATE TABLE project_group_membership_roles (
    id                           TEXT PRIMARY KEY,
    membership_id                TEXT NOT NULL REFERENCES project_group_memberships(id) ON DELETE CASCADE,
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
CREATE INDEX project_group_membership_roles_membership ON project_group_membership_roles(membership_id);
CREATE INDEX project_group_membership_roles_custom ON project_group_membership_roles(custom_role_id);

-- +goose Down
DROP TABLE project_group_membership_roles;
DROP TABLE project_group_memberships;
DROP TABLE group_members;
DROP TABLE org_groups;
