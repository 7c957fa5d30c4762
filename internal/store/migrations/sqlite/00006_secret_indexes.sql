-- +goose Up
-- Lists and look-ups by folder must not scan every secret of every project:
-- the partial unique indexes cannot serve "folder_id = ? AND (type = 'shared'
-- OR user_id = ?)", nor a type given as a parameter.
CREATE INDEX secrets_folder_key ON secrets(folder_id, key);

-- +goose Down
DROP INDEX secrets_folder_key;
