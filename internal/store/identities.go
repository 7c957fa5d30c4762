package store

import (
	"context"
	"slices"
	"strings"
	"time"

	"github.com/lockbox-dev/lockbox/internal/audit"
	"github.com/lockbox-dev/lockbox/internal/errs"
	"github.com/lockbox-dev/lockbox/internal/identity"
	"github.com/lockbox-dev/lockbox/internal/project"
)

var _ identity.AdminStore = (*DB)(nil)

// authMethodsSQL lists an identity's attached auth methods; a method with a
// table of its own is one more UNION line, one of identity_auth_configs none.
const authMethodsSQL = `SELECT identity_id, 'token-auth' FROM identity_token_auths WHERE identity_id IN (%s)
	UNION ALL SELECT identity_id, 'universal-auth' FROM identity_universal_auths WHERE identity_id IN (%s)
	UNION ALL SELECT identity_id, method FROM identity_auth_configs WHERE identity_id IN (%s)`

// authMethodsQuery is authMethodsSQL for ids, with its arguments.
func authMethodsQuery(ids []any) (string, []any) {
	ph := strings.TrimSuffix(strings.Repeat("?, ", len(ids)), ", ")
	n := strings.Count(authMethodsSQL, "%s")
	args := make([]any, 0, n*len(ids))
	for range n {
		args = append(args, ids...)
	}
	return strings.ReplaceAll(authMethodsSQL, "%s", ph), args
}

// CreateIdentity writes an identity, its metadata and its org membership.
func (db *DB) CreateIdentity(ctx context.Context, i identity.Identity, role identity.OrgRoleRef, ev audit.Event) error {
	return db.Transact(ctx, func(tx *Tx) error {
		if err := tx.insertIdentity(ctx, i); err != nil {
			return err
		}
		if err := tx.insertOrgMembership(ctx, i.OrgID, "", i.ID, role.Role); err != nil {
			return err
		}
		if role.CustomRoleID != "" {
			if _, err := tx.exec(ctx, `UPDATE org_memberships SET custom_role_id = ? WHERE identity_id = ? AND org_id = ?`,
				role.CustomRoleID, i.ID, i.OrgID); err != nil {
				return dbErr(err, "set identity custom role")
			}
		}
		return tx.insertAudit(ctx, ev)
	})
}

const orgIdentityCols = `i.id, i.org_id, i.name, i.has_delete_protection, i.created_at, i.updated_at,
	m.id, m.role, COALESCE(m.custom_role_id, ''), COALESCE(cr.slug, ''), COALESCE(cr.name, ''),
	COALESCE(m.last_login_auth_method, ''), m.last_login_time, m.created_at, m.updated_at`

// orgIdentityFrom joins an identity to its organization membership and custom role.
const orgIdentityFrom = ` FROM identities i JOIN org_memberships m ON m.identity_id = i.id AND m.org_id = i.org_id
	LEFT JOIN org_roles cr ON cr.id = m.custom_role_id`

func scanOrgIdentity(sc interface{ Scan(...any) error }) (identity.OrgIdentity, error) {
	var oi identity.OrgIdentity
	err := sc.Scan(&oi.ID, &oi.OrgID, &oi.Name, &oi.HasDeleteProtection, timeCol{&oi.CreatedAt}, timeCol{&oi.UpdatedAt},
		&oi.MembershipID, &oi.Role, &oi.CustomRoleID, &oi.CustomRoleSlug, &oi.CustomRoleName, &oi.LastLoginAuthMethod, optTimeCol{&oi.LastLoginTime},
		timeCol{&oi.MembershipCreatedAt}, timeCol{&oi.MembershipUpdatedAt})
	return oi, err
}

// fillChunk is how many rows one fill query looks up: each names their ids
// (the auth methods' three times), and SQLite takes at most 32,766
// parameters a statement, PostgreSQL 65,535.
const fillChunk = 1000

// fillIdentities loads auth methods and metadata for a page of identities,
// two queries per fillChunk identities.
//
// The metadata of one list is at most MaxListMetadataBytes: an identity
// holds up to 100 entries of 1,275 bytes, and a page up to 20,000
// identities, so a member's one GET built 2.7 GB for an organization whose
// identities were filled with metadata.
func (db *DB) fillIdentities(ctx context.Context, list []identity.OrgIdentity) error {
	budget := MaxListMetadataBytes
	for chunk := range slices.Chunk(list, fillChunk) {
		if err := db.fillIdentitiesChunk(ctx, chunk, &budget); err != nil {
			return err
		}
	}
	return nil
}

// MaxListMetadataBytes bounds the identity metadata (keys and values) one
// list answers with; a page holding more is a 400 asking for fewer. A
// variable so that a test can make it small.
var MaxListMetadataBytes = 16 << 20

func (db *DB) fillIdentitiesChunk(ctx context.Context, list []identity.OrgIdentity, budget *int) error {
	if len(list) == 0 {
		return nil
	}
	idx := map[string]int{}
	args := make([]any, 0, len(list))
	for i := range list {
		idx[list[i].ID] = i
		list[i].AuthMethods, list[i].Metadata = []string{}, []identity.Metadata{}
		args = append(args, list[i].ID)
	}
	ph := strings.TrimSuffix(strings.Repeat("?, ", len(args)), ", ")
	q, qargs := authMethodsQuery(args)
	rows, err := db.readq(ctx, q, qargs...)
	if err != nil {
		return dbErr(err, "auth methods")
	}
	for rows.Next() {
		var id, m string
		if err := rows.Scan(&id, &m); err != nil {
			rows.Close()
			return dbErr(err, "scan auth method")
		}
		list[idx[id]].AuthMethods = append(list[idx[id]].AuthMethods, m)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return dbErr(err, "auth methods")
	}
	rows, err = db.readq(ctx, `SELECT id, identity_id, key, value FROM identity_metadata WHERE identity_id IN (`+ph+`) ORDER BY key, id`, args...)
	if err != nil {
		return dbErr(err, "metadata")
	}
	defer rows.Close()
	for rows.Next() {
		var m identity.Metadata
		var id string
		if err := rows.Scan(&m.ID, &id, &m.Key, &m.Value); err != nil {
			return dbErr(err, "scan metadata")
		}
		if *budget -= len(m.Key) + len(m.Value); *budget < 0 {
			return errs.BadRequest("The identities asked for hold more than %d MiB of metadata; ask for fewer (limit)", MaxListMetadataBytes>>20)
		}
		list[idx[id]].Metadata = append(list[idx[id]].Metadata, m)
	}
	return dbErr(rows.Err(), "metadata")
}

// OrgIdentity returns an identity of an organization with its membership.
func (db *DB) OrgIdentity(ctx context.Context, orgID, id string) (identity.OrgIdentity, error) {
	oi, err := scanOrgIdentity(db.readRow(ctx, `SELECT `+orgIdentityCols+orgIdentityFrom+` WHERE i.org_id = ? AND i.id = ?`, orgID, id))
	if err != nil {
		return oi, dbErr(err, "OrgIdentity")
	}
	list := []identity.OrgIdentity{oi}
	err = db.fillIdentities(ctx, list)
	return list[0], err
}

// OrgIdentities lists an organization's identities by name, with the total count.
func (db *DB) OrgIdentities(ctx context.Context, orgID string, offset, limit int) ([]identity.OrgIdentity, int, error) {
	var total int
	if err := db.readRow(ctx, `SELECT COUNT(*) FROM identities WHERE org_id = ?`, orgID).Scan(&total); err != nil {
		return nil, 0, dbErr(err, "count identities")
	}
	rows, err := db.readq(ctx, `SELECT `+orgIdentityCols+orgIdentityFrom+`
		WHERE i.org_id = ? ORDER BY i.name, i.id LIMIT ? OFFSET ?`, orgID, limit, offset)
	if err != nil {
		return nil, 0, dbErr(err, "OrgIdentities")
	}
	list := []identity.OrgIdentity{}
	for rows.Next() {
		oi, err := scanOrgIdentity(rows)
		if err != nil {
			rows.Close()
			return nil, 0, dbErr(err, "scan identity")
		}
		list = append(list, oi)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, 0, dbErr(err, "OrgIdentities")
	}
	return list, total, db.fillIdentities(ctx, list)
}

// UpdateIdentity writes an identity's fields and org role; non-nil metadata replaces the set.
func (db *DB) UpdateIdentity(ctx context.Context, i identity.Identity, role identity.OrgRoleRef, metadata []identity.Metadata, prev time.Time, ev audit.Event) error {
	return db.Transact(ctx, func(tx *Tx) error {
		return tx.keepingOrgAdmin(ctx, i.OrgID, func() error { return tx.updateIdentity(ctx, i, role, metadata, prev, ev) })
	})
}

// updateIdentity is UpdateIdentity's writes, in its transaction.
func (tx *Tx) updateIdentity(ctx context.Context, i identity.Identity, role identity.OrgRoleRef, metadata []identity.Metadata, prev time.Time, ev audit.Event) error {
	res, err := tx.exec(ctx, `UPDATE identities SET name = ?, has_delete_protection = ?, updated_at = ? WHERE id = ? AND updated_at = ?`,
		i.Name, i.HasDeleteProtection, ts(i.UpdatedAt), i.ID, ts(prev))
	if err := staleIfNone(res, err, "UpdateIdentity"); err != nil {
		return err
	}
	if _, err := tx.exec(ctx, `UPDATE org_memberships SET role = ?, custom_role_id = ?, updated_at = ? WHERE identity_id = ? AND org_id = ?`,
		role.Role, nullStr(role.CustomRoleID), ts(tx.Now), i.ID, i.OrgID); err != nil {
		return dbErr(err, "update identity role")
	}
	if metadata != nil {
		if _, err := tx.exec(ctx, `DELETE FROM identity_metadata WHERE identity_id = ?`, i.ID); err != nil {
			return dbErr(err, "replace metadata")
		}
		for _, m := range metadata {
			if _, err := tx.exec(ctx, `INSERT INTO identity_metadata (id, identity_id, key, value) VALUES (?, ?, ?, ?)`,
				m.ID, i.ID, m.Key, m.Value); err != nil {
				return dbErr(err, "insert metadata")
			}
		}
	}
	return tx.insertAudit(ctx, ev)
}

// DeleteIdentity deletes an identity; memberships and tokens cascade. It
// refuses to leave its organization without an active admin, as a user's
// removal does, and deletes the identity only as read, updated at prev
// (project.ErrStale otherwise): delete protection turned on or a promotion
// to admin since the service's check is checked again.
func (db *DB) DeleteIdentity(ctx context.Context, id string, prev time.Time, ev audit.Event) error {
	return db.Transact(ctx, func(tx *Tx) error {
		var orgID string
		if err := tx.queryRow(ctx, `SELECT org_id FROM identities WHERE id = ?`, id).Scan(&orgID); err != nil {
			return dbErr(err, "DeleteIdentity")
		}
		// The organization's row first (keepingOrgAdmin), then the
		// identity's, as UpdateIdentity takes them: the other order
		// deadlocked a deletion racing an update of the identity.
		return tx.keepingOrgAdmin(ctx, orgID, func() error {
			// FOR NO KEY UPDATE: an update of the identity waits, a login
			// inserting a token that references it does not (it holds its
			// client secret's row, which the deletion's cascade needs).
			var at int64
			if err := tx.queryRow(ctx, `SELECT updated_at FROM identities WHERE id = ?`+tx.db.forNoKeyUpdate(), id).Scan(&at); err != nil {
				return dbErr(err, "DeleteIdentity")
			}
			if at != prev.UnixMicro() {
				return project.ErrStale // its delete protection or role may have changed since it was checked
			}
			if _, err := tx.exec(ctx, `DELETE FROM project_membership_roles WHERE membership_id IN
				(SELECT id FROM project_memberships WHERE identity_id = ?)`, id); err != nil {
				return dbErr(err, "delete membership roles")
			}
			if _, err := tx.exec(ctx, `DELETE FROM identities WHERE id = ?`, id); err != nil {
				return dbErr(err, "DeleteIdentity")
			}
			return tx.insertAudit(ctx, ev)
		})
	})
}

const tokenAuthCols = `id, identity_id, access_token_ttl, access_token_max_ttl, access_token_num_uses_limit, access_token_trusted_ips, created_at, updated_at`

// TokenAuth returns an identity's Token Auth configuration.
func (db *DB) TokenAuth(ctx context.Context, identityID string) (identity.TokenAuth, error) {
	var ta identity.TokenAuth
	var ips string
	err := db.readRow(ctx, `SELECT `+tokenAuthCols+` FROM identity_token_auths WHERE identity_id = ?`, identityID).
		Scan(&ta.ID, &ta.IdentityID, &ta.AccessTokenTTL, &ta.AccessTokenMaxTTL, &ta.AccessTokenNumUsesLimit, &ips,
			timeCol{&ta.CreatedAt}, timeCol{&ta.UpdatedAt})
	ta.AccessTokenTrustedIPs = parseIPs(ips)
	return ta, dbErr(err, "TokenAuth")
}

// CreateTokenAuth stores a Token Auth configuration.
func (db *DB) CreateTokenAuth(ctx context.Context, ta identity.TokenAuth, ev audit.Event) error {
	return db.Transact(ctx, func(tx *Tx) error {
		if err := tx.insertTokenAuth(ctx, ta); err != nil {
			return err
		}
		return tx.insertAudit(ctx, ev)
	})
}

// UpdateTokenAuth writes a Token Auth configuration.
func (db *DB) UpdateTokenAuth(ctx context.Context, ta identity.TokenAuth, prev time.Time, ev audit.Event) error {
	return db.Transact(ctx, func(tx *Tx) error {
		res, err := tx.exec(ctx, `UPDATE identity_token_auths SET access_token_ttl = ?, access_token_max_ttl = ?,
			access_token_num_uses_limit = ?, access_token_trusted_ips = ?, updated_at = ? WHERE id = ? AND updated_at = ?`,
			ta.AccessTokenTTL, ta.AccessTokenMaxTTL, ta.AccessTokenNumUsesLimit, ipsJSON(ta.AccessTokenTrustedIPs), ts(ta.UpdatedAt), ta.ID, ts(prev))
		if err := staleIfNone(res, err, "UpdateTokenAuth"); err != nil {
			return err
		}
		return tx.insertAudit(ctx, ev)
	})
}

// DeleteTokenAuth removes the configuration and revokes its tokens in one transaction.
func (db *DB) DeleteTokenAuth(ctx context.Context, identityID string, ev audit.Event) error {
	return db.Transact(ctx, func(tx *Tx) error {
		// The configuration first: it waits for the token creations holding
		// it (CreateTokenAuthToken), whose tokens the next statement then
		// sees and revokes.
		if _, err := tx.exec(ctx, `DELETE FROM identity_token_auths WHERE identity_id = ?`, identityID); err != nil {
			return dbErr(err, "DeleteTokenAuth")
		}
		if _, err := tx.exec(ctx, `UPDATE identity_access_tokens SET revoked = TRUE, updated_at = ?
			WHERE identity_id = ? AND auth_method = 'token-auth' AND revoked = FALSE`, ts(tx.Now), identityID); err != nil {
			return dbErr(err, "revoke token auth tokens")
		}
		return tx.insertAudit(ctx, ev)
	})
}

// CreateTokenAuthToken stores a token made through the Token Auth
// configuration taID, which must still exist: it is locked until the token
// is in, so a removal of Token Auth either waits and revokes the token or
// went first and the token is refused (errs.NotFound).
func (db *DB) CreateTokenAuthToken(ctx context.Context, taID string, t identity.AccessToken, ev audit.Event) error {
	return db.transactQuiet(ctx, func(tx *Tx) error {
		var one int
		if err := tx.queryRow(ctx, `SELECT 1 FROM identity_token_auths WHERE id = ?`+db.forShare(), taID).Scan(&one); err != nil {
			return dbErr(err, "token auth")
		}
		if err := tx.insertAccessToken(ctx, t); err != nil {
			return err
		}
		return tx.insertAudit(ctx, ev)
	})
}

// AccessTokens lists an identity's tokens of one auth method, most recently updated first.
func (db *DB) AccessTokens(ctx context.Context, identityID, authMethod string, offset, limit int) ([]identity.AccessToken, error) {
	rows, err := db.readq(ctx, `SELECT `+accessTokenCols+` FROM identity_access_tokens t
		WHERE t.identity_id = ? AND t.auth_method = ? ORDER BY t.updated_at DESC, t.id DESC LIMIT ? OFFSET ?`,
		identityID, authMethod, limit, offset)
	if err != nil {
		return nil, dbErr(err, "AccessTokens")
	}
	defer rows.Close()
	out := []identity.AccessToken{}
	for rows.Next() {
		var t identity.AccessToken
		if err := scanAccessToken(rows, &t); err != nil {
			return nil, dbErr(err, "scan access token")
		}
		out = append(out, t)
	}
	return out, dbErr(rows.Err(), "AccessTokens")
}

// RenameAccessToken sets a token's name.
func (db *DB) RenameAccessToken(ctx context.Context, id, name string, ev audit.Event) error {
	return db.Transact(ctx, func(tx *Tx) error {
		if _, err := tx.exec(ctx, `UPDATE identity_access_tokens SET name = ?, updated_at = ? WHERE id = ?`, name, ts(tx.Now), id); err != nil {
			return dbErr(err, "RenameAccessToken")
		}
		return tx.insertAudit(ctx, ev)
	})
}

// RevokeAccessTokenWithEvent revokes a live token and records ev.
func (db *DB) RevokeAccessTokenWithEvent(ctx context.Context, id string, ev audit.Event) (bool, error) {
	ok := false
	err := db.Transact(ctx, func(tx *Tx) error {
		res, err := tx.exec(ctx, `UPDATE identity_access_tokens SET revoked = TRUE, updated_at = ? WHERE id = ? AND revoked = FALSE`, ts(tx.Now), id)
		if err != nil {
			return dbErr(err, "RevokeAccessToken")
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return nil
		}
		ok = true
		return tx.insertAudit(ctx, ev)
	})
	return ok, err
}

// CustomOrgRoleID returns the id of an organization's custom role by slug.
func (db *DB) CustomOrgRoleID(ctx context.Context, orgID, slug string) (string, error) {
	var id string
	err := db.readRow(ctx, `SELECT id FROM org_roles WHERE org_id = ? AND slug = ?`, orgID, slug).Scan(&id)
	return id, dbErr(err, "CustomOrgRoleID")
}
