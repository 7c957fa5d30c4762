-- +goose Up
-- Infisical's requireTemplateForIssuance: a CA that says so issues and
-- signs only through one of its certificate templates, never from a bare
-- caId with whatever names, usages and lifetime the request asks.
ALTER TABLE pki_cas ADD COLUMN require_template_for_issuance BOOLEAN NOT NULL DEFAULT FALSE;

-- +goose Down
ALTER TABLE pki_cas DROP COLUMN require_template_for_issuance;
