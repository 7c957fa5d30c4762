-- +goose Up
-- Creating a folder counts its environment's folders (at most
-- project.MaxFoldersPerEnvironment, under a lock of the environment): by
-- environment, not by scanning every folder of every project.
CREATE INDEX folders_env ON folders(env_id);

-- +goose Down
DROP INDEX folders_env;
