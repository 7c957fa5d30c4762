-- +goose Up
-- App connections: an organization's admin credentials for a system
-- (postgres, mysql, ldap, redis) that secret rotations act with. The
-- credentials are sealed with the organization's data key (associated data:
-- the row) and never returned; config holds the non-secret part as JSON.
CREATE TABLE app_connections (
    id           TEXT PRIMARY KEY,
    org_id       TEXT NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
    app          TEXT NOT NULL,
    method       TEXT NOT NULL,
    name         TEXT NOT NULL,
    description  TEXT NOT NULL DEFAULT '',
    config       TEXT NOT NULL DEFAULT '{}',
    credentials  BYTEA NOT NULL,
    version      INTEGER NOT NULL DEFAULT 1,
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL,
    UNIQUE (org_id, name)
);

-- Secret rotations. A rotation alternates two principals (active_index says
-- which one the mapped secrets name). Crash-safe order: a run first records
-- the password it is about to set (pending_password, sealed with the
-- project's data key) for the inactive principal, then changes it in the
-- target, then writes the secrets, then flips active_index and clears
-- pending_password in one update. due_at is when a worker next acts: the
-- next rotation, a retry after a failure (with backoff), or, while a run
-- holds the row (claimed_by, claim_until), the end of its claim: a run that
-- dies leaves pending_password set and the row due when the claim ends, and
-- the next run sets the same password again and finishes.
CREATE TABLE secret_rotations (
    id                          TEXT PRIMARY KEY,
    org_id                      TEXT NOT NULL,
    project_id                  TEXT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    connection_id               TEXT NOT NULL REFERENCES app_connections(id),
    type                        TEXT NOT NULL,
    name                        TEXT NOT NULL,
    description                 TEXT NOT NULL DEFAULT '',
    environment                 TEXT NOT NULL,
    secret_path                 TEXT NOT NULL,
    parameters                  TEXT NOT NULL DEFAULT '{}',
    secrets_mapping             TEXT NOT NULL DEFAULT '{}',
    auto_rotate                 BOOLEAN NOT NULL DEFAULT TRUE,
    rotation_interval           INTEGER NOT NULL,
    rotate_at_hours             INTEGER NOT NULL DEFAULT 0,
    rotate_at_minutes           INTEGER NOT NULL DEFAULT 0,
    active_index                INTEGER NOT NULL DEFAULT 1,
    credentials                 BYTEA,
    pending_password            BYTEA,
    pending_index               INTEGER NOT NULL DEFAULT 0,
    status                      TEXT NOT NULL DEFAULT 'pending',
    last_message                TEXT NOT NULL DEFAULT '',
    last_rotated_at             BIGINT,
    last_attempted_at           BIGINT,
    last_manual                 BOOLEAN NOT NULL DEFAULT FALSE,
    next_rotation_at            BIGINT,
    due_at                      BIGINT,
    attempts                    INTEGER NOT NULL DEFAULT 0,
    claimed_by                  TEXT NOT NULL DEFAULT '',
    claim_until                 BIGINT NOT NULL DEFAULT 0,
    rotations                   INTEGER NOT NULL DEFAULT 0,
    created_at                  BIGINT NOT NULL,
    updated_at                  BIGINT NOT NULL,
    UNIQUE (project_id, environment, secret_path, name),
    CHECK (status IN ('pending', 'success', 'failed'))
);
CREATE INDEX secret_rotations_due ON secret_rotations(due_at) WHERE due_at IS NOT NULL;
CREATE INDEX secret_rotations_connection ON secret_rotations(connection_id);

-- +goose Down
DROP TABLE secret_rotations;
DROP TABLE app_connections;
