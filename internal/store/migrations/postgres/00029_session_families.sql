-- +goose Up
-- A user's API sessions made from one login (select-organization makes a
-- new session from the caller's) share the login's session id as family:
-- revoking any of them (logout) ends the whole family.
ALTER TABLE user_sessions ADD COLUMN family_id TEXT NOT NULL DEFAULT '';
CREATE INDEX user_sessions_family ON user_sessions(family_id);

-- +goose Down
DROP INDEX user_sessions_family;
ALTER TABLE user_sessions DROP COLUMN family_id;
