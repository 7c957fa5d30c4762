-- +goose Up
-- People in organizations: custom organization roles, the state of a user's
-- organization membership (invited until the invitation is accepted, and
-- deactivated by an admin without removing it) and one-time invitations.

CREATE TABLE org_roles (
    id           TEXT PRIMARY KEY,
    org_id       TEXT NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
    slug         TEXT NOT NULL,
    name         TEXT NOT NULL,
    description  TEXT NOT NULL DEFAULT '',
    permissions  TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL,
    UNIQUE (org_id, slug)
);

-- role is 'custom' when custom_role_id is set; a role in use cannot be deleted.
ALTER TABLE org_memberships ADD COLUMN custom_role_id TEXT REFERENCES org_roles(id);
ALTER TABLE org_memberships ADD COLUMN status TEXT NOT NULL DEFAULT 'accepted';
ALTER TABLE org_memberships ADD COLUMN is_active BOOLEAN NOT NULL DEFAULT TRUE;
CREATE INDEX org_memberships_custom_role ON org_memberships(custom_role_id);

-- org_invitations: only the keyed hash of the one-time token is stored.
CREATE TABLE org_invitations (
    id          TEXT PRIMARY KEY,
    org_id      TEXT NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
    user_id     TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    token_hash  TEXT NOT NULL UNIQUE,
    expires_at  BIGINT NOT NULL,
    created_at  BIGINT NOT NULL
);
CREATE INDEX org_invitations_user ON org_invitations(org_id, user_id);

-- +goose Down
DROP TABLE org_invitations;
DROP INDEX org_memberships_custom_role;
ALTER TABLE org_memberships DROP COLUMN is_active;
ALTER TABLE org_memberships DROP COLUMN status;
ALTER TABLE org_memberships DROP COLUMN custom_role_id;
DROP TABLE org_roles;
