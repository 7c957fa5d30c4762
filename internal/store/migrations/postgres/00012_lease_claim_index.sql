-- +goose Up
-- The lease worker claims one dynamic secret's due leases, longest due
-- first. dynamic_leases_secret would serve that by visiting every lease the
-- secret ever had (revoked ones stay) and sorting them, for every claim.
CREATE INDEX dynamic_leases_secret_due ON dynamic_leases(dynamic_secret_id, due_at) WHERE status <> 'revoked';

-- +goose Down
DROP INDEX dynamic_leases_secret_due;
