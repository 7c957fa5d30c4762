-- +goose Up
-- A folder's list returns its rows ORDER BY key, type DESC (FolderSecrets).
-- With type in the index, in that direction, the index hands the rows over
-- in order: no temporary B-tree on SQLite, no Sort on PostgreSQL. It serves
-- every query secrets_folder_key served, which it replaces.
CREATE INDEX secrets_folder_key_type ON secrets(folder_id, key, type DESC);
DROP INDEX secrets_folder_key;

-- +goose Down
CREATE INDEX secrets_folder_key ON secrets(folder_id, key);
DROP INDEX secrets_folder_key_type;
