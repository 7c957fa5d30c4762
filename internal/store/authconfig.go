package store

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/lockbox-dev/lockbox/internal/audit"
	"github.com/lockbox-dev/lockbox/internal/errs"
	"github.com/lockbox-dev/lockbox/internal/identity"
)

var _ identity.MethodStore = (*DB)(nil)

const authConfigCols = `c.id, c.identity_id, c.method, c.config, c.access_token_ttl, c.access_token_max_ttl,
	c.access_token_num_uses_limit, c.access_token_trusted_ips, c.created_at, c.updated_at`

func scanAuthConfig(sc interface{ Scan(...any) error }, extra ...any) (identity.AuthConfig, error) {
	var c identity.AuthConfig
	var cfg, ips string
	err := sc.Scan(append([]any{&c.ID, &c.IdentityID, &c.Method, &cfg, &c.AccessTokenTTL, &c.AccessTokenMaxTTL,
		&c.AccessTokenNumUsesLimit, &ips, timeCol{&c.CreatedAt}, timeCol{&c.UpdatedAt}}, extra...)...)
	c.Config, c.AccessTokenTrustedIPs = []byte(cfg), parseIPs(ips)
	return c, err
}

// CreateAuthConfig stores a method configuration; Conflict if the identity has one of that method.
func (db *DB) CreateAuthConfig(ctx context.Context, c identity.AuthConfig, ev audit.Event) error {
	return db.Transact(ctx, func(tx *Tx) error {
		_, err := tx.exec(ctx, `INSERT INTO identity_auth_configs (id, identity_id, method, config, access_token_ttl,
			access_token_max_ttl, access_token_num_uses_limit, access_token_trusted_ips, created_at, updated_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, c.ID, c.IdentityID, c.Method, string(c.Config), c.AccessTokenTTL,
			c.AccessTokenMaxTTL, c.AccessTokenNumUsesLimit, ipsJSON(c.AccessTokenTrustedIPs), ts(c.CreatedAt), ts(c.UpdatedAt))
		if IsUniqueViolation(err) {
			return errs.Conflictf("the identity already has this auth method")
		}
		if err != nil {
			return dbErr(err, "CreateAuthConfig")
		}
		return tx.insertAudit(ctx, ev)
	})
}

// AuthConfig returns an identity's configuration of method.
func (db *DB) AuthConfig(ctx context.Context, identityID, method string) (identity.AuthConfig, error) {
	c, err := scanAuthConfig(db.readRow(ctx, `SELECT `+authConfigCols+` FROM identity_auth_configs c
		WHERE c.identity_id = ? AND c.method = ?`, identityID, method))
	return c, dbErr(err, "AuthConfig")
}

// AuthConfigLogin returns, in one query, an identity's configuration of
// method with the identity it belongs to and its organization's slug.
func (db *DB) AuthConfigLogin(ctx context.Context, identityID, method string) (identity.AuthConfig, identity.Identity, string, error) {
	var i identity.Identity
	var slug string
	c, err := scanAuthConfig(db.readRow(ctx, `SELECT `+authConfigCols+`, i.name, i.org_id, o.slug FROM identity_auth_configs c
		JOIN identities i ON i.id = c.identity_id JOIN orgs o ON o.id = i.org_id
		WHERE c.identity_id = ? AND c.method = ?`, identityID, method),
		&i.Name, &i.OrgID, &slug)
	i.ID = c.IdentityID
	return c, i, slug, dbErr(err, "AuthConfigLogin")
}

// UpdateAuthConfig writes a changed configuration.
func (db *DB) UpdateAuthConfig(ctx context.Context, c identity.AuthConfig, prev time.Time, ev audit.Event) error {
	return db.Transact(ctx, func(tx *Tx) error {
		res, err := tx.exec(ctx, `UPDATE identity_auth_configs SET config = ?, access_token_ttl = ?, access_token_max_ttl = ?,
			access_token_num_uses_limit = ?, access_token_trusted_ips = ?, updated_at = ? WHERE id = ? AND updated_at = ?`, string(c.Config),
			c.AccessTokenTTL, c.AccessTokenMaxTTL, c.AccessTokenNumUsesLimit, ipsJSON(c.AccessTokenTrustedIPs), ts(c.UpdatedAt), c.ID, ts(prev))
		if err := staleIfNone(res, err, "UpdateAuthConfig"); err != nil {
			return err
		}
		return tx.insertAudit(ctx, ev)
	})
}

// DeleteAuthConfig removes an identity's configuration of method and revokes
// every token issued through it, in one transaction.
func (db *DB) DeleteAuthConfig(ctx context.Context, identityID, method string, ev audit.Event) error {
	return db.Transact(ctx, func(tx *Tx) error {
		// The row first: it waits for the logins holding it (methodLogin),
		// whose tokens the next statement then sees and revokes.
		res, err := tx.exec(ctx, `DELETE FROM identity_auth_configs WHERE identity_id = ? AND method = ?`, identityID, method)
		if err != nil {
			return dbErr(err, "DeleteAuthConfig")
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return dbErr(errNoRows, "DeleteAuthConfig")
		}
		if _, err := tx.exec(ctx, `UPDATE identity_access_tokens SET revoked = TRUE, updated_at = ?
			WHERE identity_id = ? AND auth_method = ? AND revoked = FALSE`, ts(tx.Now), identityID, method); err != nil {
			return dbErr(err, "revoke auth method tokens")
		}
		return tx.insertAudit(ctx, ev)
	})
}

// LoginWithAuthConfig stores a token issued by a login, notes the login on
// the identity's membership of orgID and records ev, in one transaction.
// Nothing is consumed at login (use limits are the token's), so no lock or
// grouping is needed.
func (db *DB) LoginWithAuthConfig(ctx context.Context, tok identity.AccessToken, c identity.AuthConfig, orgID string, ev audit.Event) error {
	r := &methodLogin{tok: tok, configID: c.ID, config: string(c.Config), orgID: orgID, ev: ev}
	db.methodLogins.do(r)
	return r.err
}

// methodLogin is one platform-method login waiting for its group commit:
// concurrent logins (JWT, OIDC, Kubernetes, ...) share one transaction, as
// Universal Auth's do, and each is answered once it is durable.
type methodLogin struct {
	tok      identity.AccessToken
	configID string // the configuration the login was verified against
	config   string // its stored text (keys and bounds) as the login read it
	orgID    string
	ev       audit.Event
	err      error
}

func failMethodLogin(r *methodLogin, err error) { r.err = errs.Internalf(err, "record login") }

// writeMethodLogins commits a group of logins; when the group fails, each
// is tried again on its own, so one bad login fails only itself.
func (db *DB) writeMethodLogins(ctx context.Context, group []*methodLogin) {
	err := db.transactQuiet(ctx, func(tx *Tx) error {
		for _, r := range group {
			if err := tx.methodLogin(ctx, r); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil && len(group) > 1 {
		for _, r := range group {
			r.err = db.transactQuiet(ctx, func(tx *Tx) error { return tx.methodLogin(ctx, r) })
		}
		return
	}
	for _, r := range group {
		r.err = err
	}
}

// methodLogin stores a login's token, notes it on the membership and records its event.
//
// The configuration the login was verified against must still be there,
// with the keys and bounds the login was checked with: a removal, or a
// narrowing followed by a revocation of the identity's tokens, committed
// while the login verified its credential (a JWKS fetch, a TokenReview, an
// LDAP bind: seconds) would otherwise not stop it. On PostgreSQL the row
// is locked FOR SHARE until the token is in, and DeleteAuthConfig deletes
// the row before it revokes the method's tokens, so a removal waits for
// this login and then revokes its token too. A change of the token
// settings alone (TTL, use limit, trusted IPs, read at each use) leaves the
// stored text as it was and does not stop the login.
func (tx *Tx) methodLogin(ctx context.Context, r *methodLogin) error {
	var one int
	err := tx.queryRow(ctx, `SELECT 1 FROM identity_auth_configs WHERE id = ? AND config = ?`+tx.db.forShare(), r.configID, r.config).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return identity.ErrConfigChanged
	}
	if err != nil {
		return dbErr(err, "check login configuration")
	}
	if err := tx.insertAccessToken(ctx, r.tok); err != nil {
		return err
	}
	if _, err := tx.exec(ctx, `UPDATE org_memberships SET last_login_auth_method = ?, last_login_time = ?
		WHERE org_id = ? AND identity_id = ?`, r.tok.AuthMethod, ts(tx.Now), r.orgID, r.tok.IdentityID); err != nil {
		return dbErr(err, "record login")
	}
	return tx.insertAudit(ctx, r.ev)
}
