-- +goose Up
-- A project's default SSH CAs: hosts registered without CA ids use them.
-- Created with two fresh CAs on the project's first host, as Infisical does.
CREATE TABLE project_ssh_configs (
    id                      TEXT PRIMARY KEY,
    project_id              TEXT NOT NULL UNIQUE REFERENCES projects(id) ON DELETE CASCADE,
    default_user_ssh_ca_id  TEXT REFERENCES ssh_cas(id) ON DELETE SET NULL,
    default_host_ssh_ca_id  TEXT REFERENCES ssh_cas(id) ON DELETE SET NULL,
    created_at              BIGINT NOT NULL,
    updated_at              BIGINT NOT NULL
);

-- SSH host groups: login mappings that apply to every host in the group.
-- Names are unique in the organization, as Infisical's.
CREATE TABLE ssh_host_groups (
    id              TEXT PRIMARY KEY,
    org_id          TEXT NOT NULL,
    project_id      TEXT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    name            TEXT NOT NULL,
    login_mappings  TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL,
    UNIQUE (org_id, name)
);
CREATE INDEX ssh_host_groups_project ON ssh_host_groups (project_id, name);

CREATE TABLE ssh_host_group_members (
    ssh_host_group_id  TEXT NOT NULL REFERENCES ssh_host_groups(id) ON DELETE CASCADE,
    ssh_host_id        TEXT NOT NULL REFERENCES ssh_hosts(id) ON DELETE CASCADE,
    created_at         BIGINT NOT NULL,
    PRIMARY KEY (ssh_host_group_id, ssh_host_id)
);
CREATE INDEX ssh_host_group_members_host ON ssh_host_group_members (ssh_host_id);

-- Revocation of issued certificates; the CA's KRL lists the revoked serials
-- that have not yet expired.
ALTER TABLE ssh_certificates ADD COLUMN revoked_at BIGINT;
CREATE INDEX ssh_certificates_revoked ON ssh_certificates (ssh_ca_id, revoked_at);
CREATE INDEX ssh_certificates_serial ON ssh_certificates (serial);

-- +goose Down
DROP INDEX ssh_certificates_serial;
DROP INDEX ssh_certificates_revoked;
ALTER TABLE ssh_certificates DROP COLUMN revoked_at;
DROP TABLE ssh_host_group_members;
DROP TABLE ssh_host_groups;
DROP TABLE project_ssh_configs;
