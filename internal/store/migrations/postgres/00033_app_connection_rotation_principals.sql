-- +goose Up
-- The principals (names, or patterns with *) that a member holding only
-- app-connections connect may rotate through a connection, as a JSON
-- array; empty, only those who may edit the connection may rotate through
-- it.
ALTER TABLE app_connections ADD COLUMN rotation_principals TEXT NOT NULL DEFAULT '[]';

-- +goose Down
ALTER TABLE app_connections DROP COLUMN rotation_principals;
