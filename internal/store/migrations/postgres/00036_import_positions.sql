-- +goose Up
-- An import's position is at most 10,000 (secret.MaxImportPosition): one
-- moved to 2^31-1 before that bound made every later import of its folder
-- overflow the column. Higher positions win; those past the bound keep
-- their rank among themselves only as far as their ties do.
UPDATE secret_imports SET position = 10000 WHERE position > 10000;

-- +goose Down
SELECT 1;
