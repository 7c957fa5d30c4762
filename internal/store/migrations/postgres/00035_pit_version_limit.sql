-- +goose Up
-- How many versions of each secret a project keeps (Infisical's
-- pitVersionLimit, 1 to 100, default 10). A write removes the secret's
-- versions older than that many; changing the limit prunes the project.
-- Versions kept beyond it before this column existed go at the secret's
-- next write.
ALTER TABLE projects ADD COLUMN pit_version_limit INTEGER NOT NULL DEFAULT 10
    CHECK (pit_version_limit BETWEEN 1 AND 100);

-- +goose Down
ALTER TABLE projects DROP COLUMN pit_version_limit;
