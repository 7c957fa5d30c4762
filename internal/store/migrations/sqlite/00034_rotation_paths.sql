-- +goose Up
-- Rotations saved before secretPath was normalised as the secrets service
-- names its folders (project.NormalizePath) may hold paths such as //prod or
-- /prod//: the permission checks, the guards of hand edits and the one-
-- rotation-per-secret check compared them with the secrets' /prod and missed.
-- Runs of slashes are collapsed (ten passes: the old limit was 1,024 bytes)
-- and trailing ones dropped. A rotation whose normalised path and name would
-- equal another's keeps its path's meaning under a new name, its name (at
-- most 23 characters of it) followed by - and the last 8 characters of its
-- id (a rotation name is a slug of at most 32), so that no UNIQUE (project,
-- environment, path, name) stops the migration.
UPDATE secret_rotations SET name = substr(name, 1, 23) || '-' || substr(id, -8)
WHERE COALESCE(NULLIF(RTRIM(REPLACE(REPLACE(REPLACE(REPLACE(REPLACE(REPLACE(REPLACE(REPLACE(REPLACE(REPLACE(secret_path, '//', '/'), '//', '/'), '//', '/'), '//', '/'), '//', '/'), '//', '/'), '//', '/'), '//', '/'), '//', '/'), '//', '/'), '/'), ''), '/') <> secret_path
  AND EXISTS (SELECT 1 FROM secret_rotations o
              WHERE o.id <> secret_rotations.id AND o.project_id = secret_rotations.project_id
                AND o.environment = secret_rotations.environment AND o.name = secret_rotations.name
                AND COALESCE(NULLIF(RTRIM(REPLACE(REPLACE(REPLACE(REPLACE(REPLACE(REPLACE(REPLACE(REPLACE(REPLACE(REPLACE(o.secret_path, '//', '/'), '//', '/'), '//', '/'), '//', '/'), '//', '/'), '//', '/'), '//', '/'), '//', '/'), '//', '/'), '//', '/'), '/'), ''), '/') = COALESCE(NULLIF(RTRIM(REPLACE(REPLACE(REPLACE(REPLACE(REPLACE(REPLACE(REPLACE(REPLACE(REPLACE(REPLACE(secret_path, '//', '/'), '//', '/'), '//', '/'), '//', '/'), '//', '/'), '//', '/'), '//', '/'), '//', '/'), '//', '/'), '//', '/'), '/'), ''), '/'));

UPDATE secret_rotations SET secret_path = COALESCE(NULLIF(RTRIM(REPLACE(REPLACE(REPLACE(REPLACE(REPLACE(REPLACE(REPLACE(REPLACE(REPLACE(REPLACE(secret_path, '//', '/'), '//', '/'), '//', '/'), '//', '/'), '//', '/'), '//', '/'), '//', '/'), '//', '/'), '//', '/'), '//', '/'), '/'), ''), '/')
WHERE COALESCE(NULLIF(RTRIM(REPLACE(REPLACE(REPLACE(REPLACE(REPLACE(REPLACE(REPLACE(REPLACE(REPLACE(REPLACE(secret_path, '//', '/'), '//', '/'), '//', '/'), '//', '/'), '//', '/'), '//', '/'), '//', '/'), '//', '/'), '//', '/'), '//', '/'), '/'), ''), '/') <> secret_path;

-- +goose Down
-- Nothing to undo: the normalised paths name the same folders.
SELECT 1;
