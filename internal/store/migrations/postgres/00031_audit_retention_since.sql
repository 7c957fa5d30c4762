-- +goose Up
-- When a project's audit log retention was last set (microseconds): the
-- hourly purge applies it to the project's events from then on only, as
-- Infisical stamps each event's expiry when it is written, so shortening it
-- cannot erase history written before. A retention set before this column
-- existed (NULL) counts from the project's creation: it covers all its
-- events, as it was set to.
ALTER TABLE projects ADD COLUMN audit_logs_retention_since BIGINT;

-- +goose Down
ALTER TABLE projects DROP COLUMN audit_logs_retention_since;
