-- +goose Up
-- When a project's audit log retention was last set (microseconds): the
-- hourly purge applies it to the project's events from then on only, as
-- Infisical stamps each event's expiry when it is written, so shortening it
-- cannot erase history written before. Retentions set before this column
-- existed count from the migration.
ALTER TABLE projects ADD COLUMN audit_logs_retention_since BIGINT;
UPDATE projects SET audit_logs_retention_since = (extract(epoch FROM now()) * 1000000)::bigint
WHERE audit_logs_retention_days > 0;

-- +goose Down
ALTER TABLE projects DROP COLUMN audit_logs_retention_since;
