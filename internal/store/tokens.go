package store

import (
	"context"
	"time"

	"github.com/lockbox-dev/lockbox/internal/identity"
	"github.com/lockbox-dev/lockbox/internal/project"
)

var _ identity.RenewStore = (*DB)(nil)

// RenewAccessToken restarts a live token's TTL.
func (db *DB) RenewAccessToken(ctx context.Context, id string, now time.Time) (bool, error) {
	res, err := db.exec(ctx, `UPDATE identity_access_tokens SET last_renewed_at = ?, updated_at = ? WHERE id = ? AND revoked = FALSE`, ts(now), ts(now), id)
	if err != nil {
		return false, dbErr(err, "RenewAccessToken")
	}
	n, _ := res.RowsAffected()
	return n == 1, nil
}

// RevokeAccessToken revokes a live token.
func (db *DB) RevokeAccessToken(ctx context.Context, id string) (bool, error) {
	now := db.Now()
	res, err := db.exec(ctx, `UPDATE identity_access_tokens SET revoked = TRUE, updated_at = ? WHERE id = ? AND revoked = FALSE`, ts(now), id)
	if err != nil {
		return false, dbErr(err, "RevokeAccessToken")
	}
	n, _ := res.RowsAffected()
	return n == 1, nil
}

// OrgByID returns an organization.
func (db *DB) OrgByID(ctx context.Context, id string) (project.Org, error) {
	var o project.Org
	err := db.readRow(ctx, `SELECT id, name, slug, created_at, updated_at FROM orgs WHERE id = ?`, id).
		Scan(&o.ID, &o.Name, &o.Slug, timeCol{&o.CreatedAt}, timeCol{&o.UpdatedAt})
	return o, dbErr(err, "OrgByID")
}
