-- +goose Up
-- Secret metadata (a JSON list of key/value pairs) and the reminder note are
-- sealed with the project's data key like the comment, each with its own
-- associated data; an empty blob is "none" (rows written before this
-- migration). The repeat interval (0 = no reminder) and the recipients (a
-- JSON list of user ids) are plain. History rows carry the same columns so a
-- rollback restores them. The project's audit log retention is 0 when unset.
ALTER TABLE secrets ADD COLUMN metadata BYTEA NOT NULL DEFAULT ''::bytea;
ALTER TABLE secrets ADD COLUMN reminder_note BYTEA NOT NULL DEFAULT ''::bytea;
ALTER TABLE secrets ADD COLUMN reminder_repeat_days INTEGER NOT NULL DEFAULT 0;
ALTER TABLE secrets ADD COLUMN reminder_recipients TEXT NOT NULL DEFAULT '[]';
ALTER TABLE secret_versions ADD COLUMN metadata BYTEA NOT NULL DEFAULT ''::bytea;
ALTER TABLE secret_versions ADD COLUMN reminder_note BYTEA NOT NULL DEFAULT ''::bytea;
ALTER TABLE secret_versions ADD COLUMN reminder_repeat_days INTEGER NOT NULL DEFAULT 0;
ALTER TABLE secret_versions ADD COLUMN reminder_recipients TEXT NOT NULL DEFAULT '[]';
ALTER TABLE projects ADD COLUMN audit_logs_retention_days INTEGER NOT NULL DEFAULT 0;

-- +goose Down
ALTER TABLE projects DROP COLUMN audit_logs_retention_days;
ALTER TABLE secret_versions DROP COLUMN reminder_recipients;
ALTER TABLE secret_versions DROP COLUMN reminder_repeat_days;
ALTER TABLE secret_versions DROP COLUMN reminder_note;
ALTER TABLE secret_versions DROP COLUMN metadata;
ALTER TABLE secrets DROP COLUMN reminder_recipients;
ALTER TABLE secrets DROP COLUMN reminder_repeat_days;
ALTER TABLE secrets DROP COLUMN reminder_note;
ALTER TABLE secrets DROP COLUMN metadata;
