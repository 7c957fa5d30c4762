-- +goose Up
-- A project's count of committed moves: renames of folders, environment
-- slugs and tags, and secrets renamed or retagged. A move is checked against
-- what it moves (it must not widen the caller's access) and written only if
-- no other move committed since the count was read, so two moves checked
-- side by side cannot together reveal what neither could alone.
ALTER TABLE projects ADD COLUMN moves BIGINT NOT NULL DEFAULT 0;

-- +goose Down
ALTER TABLE projects DROP COLUMN moves;
