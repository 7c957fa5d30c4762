-- +goose Up
-- SSO group mapping: when set, a user's groups follow the identity
-- provider's groups claim at each sign-in (groups named there are joined,
-- others left), and the organization's groups take no manual change of
-- their users.
ALTER TABLE oidc_configs ADD COLUMN manage_group_memberships BOOLEAN NOT NULL DEFAULT FALSE;

-- +goose Down
ALTER TABLE oidc_configs DROP COLUMN manage_group_memberships;
