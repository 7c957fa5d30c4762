-- +goose Up
-- The read path's lists come out of an index in the order they return, so
-- no read sorts (no temporary B-tree on SQLite, no Sort on PostgreSQL):
-- a folder's secrets ORDER BY key, type DESC (FolderSecrets), a project's
-- environments ORDER BY position, created_at, a folder's imports ORDER BY
-- position, created_at. Each new index serves every query the one it
-- replaces served (that one is a prefix of it).
CREATE INDEX secrets_folder_key_type ON secrets(folder_id, key, type DESC);
DROP INDEX secrets_folder_key;
CREATE INDEX environments_project_position ON environments(project_id, position, created_at);
CREATE INDEX secret_imports_folder_position ON secret_imports(folder_id, position, created_at);
DROP INDEX secret_imports_folder;

-- +goose Down
CREATE INDEX secret_imports_folder ON secret_imports(folder_id, position);
DROP INDEX secret_imports_folder_position;
DROP INDEX environments_project_position;
CREATE INDEX secrets_folder_key ON secrets(folder_id, key);
DROP INDEX secrets_folder_key_type;
