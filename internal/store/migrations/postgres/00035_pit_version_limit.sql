-- +goose Up
-- How many versions of each secret a project keeps (Infisical's
-- pitVersionLimit, 1 to 100). A write removes the secret's versions older
-- than that many; lowering the limit prunes the project. New projects keep
-- 10, Infisical's default (set when they are created); projects made before
-- this column kept every version, and keep the most there is, 100, until an
-- admin lowers it, so that an upgrade does not cut their history to 10 at
-- the next write.
ALTER TABLE projects ADD COLUMN pit_version_limit INTEGER NOT NULL DEFAULT 10
    CHECK (pit_version_limit BETWEEN 1 AND 100);
UPDATE projects SET pit_version_limit = 100;

-- +goose Down
ALTER TABLE projects DROP COLUMN pit_version_limit;
