-- +goose Up
-- Additional privileges: extra permission rules for one project member
-- beyond its roles (Infisical's identity- and user-specific privileges). A
-- privilege belongs to a project membership, of an identity or of a user;
-- its rules are v2 JSON as in project_roles. A temporary privilege holds only
-- between its start and end times, checked when permissions are resolved.
CREATE TABLE project_membership_privileges (
    id                           TEXT PRIMARY KEY,
    membership_id                TEXT NOT NULL REFERENCES project_memberships(id) ON DELETE CASCADE,
    slug                         TEXT NOT NULL,
    permissions                  TEXT NOT NULL,
    is_temporary                 BOOLEAN NOT NULL DEFAULT FALSE,
    temporary_mode               TEXT,
    temporary_range              TEXT,
    temporary_access_start_time  BIGINT,
    temporary_access_end_time    BIGINT,
    created_at                   BIGINT NOT NULL,
    updated_at                   BIGINT NOT NULL,
    UNIQUE (membership_id, slug)
);

-- Project templates of an organization: environments, custom roles (v2
-- JSON) and identity memberships ([{identityId, roles}]) applied to a
-- project created with the template's name. environments NULL: none.
CREATE TABLE project_templates (
    id            TEXT PRIMARY KEY,
    org_id        TEXT NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
    name          TEXT NOT NULL,
    description   TEXT NOT NULL DEFAULT '',
    type          TEXT NOT NULL,
    roles         TEXT NOT NULL,
    environments  TEXT,
    identities    TEXT,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL,
    UNIQUE (org_id, name)
);

-- +goose Down
DROP TABLE project_templates;
DROP TABLE project_membership_privileges;
