package store

import (
	"context"
	"time"

	"github.com/lockbox-dev/lockbox/internal/audit"
	"github.com/lockbox-dev/lockbox/internal/authz"
	"github.com/lockbox-dev/lockbox/internal/errs"
	"github.com/lockbox-dev/lockbox/internal/identity"
	"github.com/lockbox-dev/lockbox/internal/org"
	"github.com/lockbox-dev/lockbox/internal/sso"
)

var _ sso.Store = (*DB)(nil)

// OrgIDBySlug returns the id of the organization with slug.
func (db *DB) OrgIDBySlug(ctx context.Context, slug string) (string, error) {
	var id string
	err := db.readRow(ctx, `SELECT id FROM orgs WHERE slug = ?`, slug).Scan(&id)
	return id, dbErr(err, "OrgIDBySlug")
}

// OrgSlug returns an organization's slug.
func (db *DB) OrgSlug(ctx context.Context, orgID string) (string, error) {
	var slug string
	err := db.readRow(ctx, `SELECT slug FROM orgs WHERE id = ?`, orgID).Scan(&slug)
	return slug, dbErr(err, "OrgSlug")
}

const oidcConfigCols = `id, org_id, configuration_type, discovery_url, issuer, authorization_endpoint, token_endpoint, jwks_uri,
	userinfo_endpoint, client_id, client_secret, allowed_email_domains, default_role, is_active, created_at, updated_at,
	manage_group_memberships`

// OIDCConfig returns an organization's OIDC SSO configuration.
func (db *DB) OIDCConfig(ctx context.Context, orgID string) (sso.Config, error) {
	var c sso.Config
	err := db.readRow(ctx, `SELECT `+oidcConfigCols+` FROM oidc_configs WHERE org_id = ?`, orgID).Scan(&c.ID, &c.OrgID,
		&c.ConfigurationType, &c.DiscoveryURL, &c.Issuer, &c.AuthorizationEndpoint, &c.TokenEndpoint, &c.JwksURI, &c.UserinfoEndpoint,
		&c.ClientID, &c.ClientSecret, &c.AllowedEmailDomains, &c.DefaultRole, &c.IsActive, timeCol{&c.CreatedAt}, timeCol{&c.UpdatedAt},
		&c.ManageGroupMemberships)
	return c, dbErr(err, "OIDCConfig")
}

// CreateOIDCConfig stores an organization's configuration; errs.Conflict if it has one.
func (db *DB) CreateOIDCConfig(ctx context.Context, c sso.Config, ev audit.Event) error {
	return db.Transact(ctx, func(tx *Tx) error {
		if err := tx.holdDefaultRole(ctx, c.OrgID, c.DefaultRole); err != nil {
			return err
		}
		_, err := tx.exec(ctx, `INSERT INTO oidc_configs (`+oidcConfigCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			c.ID, c.OrgID, c.ConfigurationType, c.DiscoveryURL, c.Issuer, c.AuthorizationEndpoint, c.TokenEndpoint, c.JwksURI,
			c.UserinfoEndpoint, c.ClientID, c.ClientSecret, c.AllowedEmailDomains, c.DefaultRole, c.IsActive, ts(c.CreatedAt), ts(c.UpdatedAt),
			c.ManageGroupMemberships)
		if IsUniqueViolation(err) {
			return errs.Conflictf("the organization has an OIDC configuration")
		}
		if err != nil {
			return dbErr(err, "CreateOIDCConfig")
		}
		return tx.insertAudit(ctx, ev)
	})
}

// UpdateOIDCConfig rewrites an organization's configuration if it is still
// as read at prev (project.ErrStale otherwise).
func (db *DB) UpdateOIDCConfig(ctx context.Context, c sso.Config, prev time.Time, ev audit.Event) error {
	return db.Transact(ctx, func(tx *Tx) error {
		if err := tx.holdDefaultRole(ctx, c.OrgID, c.DefaultRole); err != nil {
			return err
		}
		res, err := tx.exec(ctx, `UPDATE oidc_configs SET configuration_type = ?, discovery_url = ?, issuer = ?, authorization_endpoint = ?,
			token_endpoint = ?, jwks_uri = ?, userinfo_endpoint = ?, client_id = ?, client_secret = ?, allowed_email_domains = ?,
			default_role = ?, is_active = ?, manage_group_memberships = ?, updated_at = ? WHERE id = ? AND updated_at = ?`,
			c.ConfigurationType, c.DiscoveryURL, c.Issuer, c.AuthorizationEndpoint, c.TokenEndpoint, c.JwksURI, c.UserinfoEndpoint,
			c.ClientID, c.ClientSecret, c.AllowedEmailDomains, c.DefaultRole, c.IsActive, c.ManageGroupMemberships, ts(c.UpdatedAt), c.ID, ts(prev))
		if err := staleIfNone(res, err, "UpdateOIDCConfig"); err != nil {
			return err
		}
		return tx.insertAudit(ctx, ev)
	})
}

// PutOIDCLoginState stores a login in flight and prunes expired ones. No
// cache holds these rows: the write is quiet.
func (db *DB) PutOIDCLoginState(ctx context.Context, s sso.LoginState, now time.Time) error {
	return db.transactQuiet(ctx, func(tx *Tx) error {
		if _, err := tx.exec(ctx, `DELETE FROM oidc_login_states WHERE expires_at < ?`, ts(now)); err != nil {
			return dbErr(err, "prune login states")
		}
		_, err := tx.exec(ctx, `INSERT INTO oidc_login_states (state_hash, org_id, nonce, code_verifier, next_path, expires_at)
			VALUES (?, ?, ?, ?, ?, ?)`, s.StateHash, s.OrgID, s.Nonce, s.CodeVerifier, s.Next, ts(s.ExpiresAt))
		return dbErr(err, "PutOIDCLoginState")
	})
}

// TakeOIDCLoginState deletes a login in flight and returns it; the DELETE
// decides which of two uses of one state wins.
func (db *DB) TakeOIDCLoginState(ctx context.Context, stateHash string, now time.Time) (sso.LoginState, error) {
	var s sso.LoginState
	err := db.transactQuiet(ctx, func(tx *Tx) error {
		if err := tx.queryRow(ctx, `SELECT state_hash, org_id, nonce, code_verifier, next_path, expires_at FROM oidc_login_states
			WHERE state_hash = ?`, stateHash).Scan(&s.StateHash, &s.OrgID, &s.Nonce, &s.CodeVerifier, &s.Next, timeCol{&s.ExpiresAt}); err != nil {
			return dbErr(err, "TakeOIDCLoginState")
		}
		res, err := tx.exec(ctx, `DELETE FROM oidc_login_states WHERE state_hash = ?`, stateHash)
		if err != nil {
			return dbErr(err, "take login state")
		}
		if n, err := res.RowsAffected(); err != nil || n != 1 {
			return errs.NotFoundf("login state already used")
		}
		return nil
	})
	if err == nil && !s.ExpiresAt.After(now) {
		return sso.LoginState{}, errs.NotFoundf("login state expired")
	}
	return s, err
}

// ProvisionSSOUser finds or creates the user of an SSO login and makes it
// an accepted member of the organization.
func (db *DB) ProvisionSSOUser(ctx context.Context, orgID string, u identity.User, role, customRoleID string, ev audit.Event) (identity.User, bool, error) {
	created := false
	err := db.Transact(ctx, func(tx *Tx) error {
		created = false
		err := tx.queryRow(ctx, `SELECT id, email, username, first_name, last_name, password_hash, super_admin, created_at, updated_at
			FROM users WHERE email = ?`, u.Email).Scan(&u.ID, &u.Email, &u.Username, &u.FirstName, &u.LastName, &u.PasswordHash,
			&u.SuperAdmin, timeCol{&u.CreatedAt}, timeCol{&u.UpdatedAt})
		switch {
		case err == errNoRows:
			if err := tx.insertUser(ctx, u); err != nil {
				return err
			}
			created = true
		case err != nil:
			return dbErr(err, "user by email")
		default:
			// An existing account is signed in by this organization's identity
			// provider only if it belongs to this organization alone: whoever
			// runs that provider could otherwise sign in as anyone's email
			// (an instance admin, a member of another organization).
			if u.SuperAdmin {
				return errs.Forbiddenf("An instance administrator signs in with a password, not SSO")
			}
			var others int
			if err := tx.queryRow(ctx, `SELECT COUNT(*) FROM org_memberships WHERE user_id = ? AND org_id <> ?`, u.ID, orgID).Scan(&others); err != nil {
				return dbErr(err, "other memberships")
			}
			if others > 0 {
				return errs.Forbiddenf("This account belongs to another organization too; sign in with its password")
			}
		}
		var status string
		var active bool
		err = tx.queryRow(ctx, `SELECT status, is_active FROM org_memberships WHERE org_id = ? AND user_id = ?`, orgID, u.ID).Scan(&status, &active)
		switch {
		case err == errNoRows && !created:
			return errs.Forbiddenf("An account with this email exists but is not a member of this organization; ask an admin to invite it")
		case err == errNoRows:
			if _, err := tx.exec(ctx, `INSERT INTO org_memberships (id, org_id, user_id, role, custom_role_id, status, is_active, created_at, updated_at)
				VALUES (?, ?, ?, ?, ?, ?, TRUE, ?, ?)`, newID(), orgID, u.ID, role, nullStr(customRoleID), org.StatusAccepted, ts(tx.Now), ts(tx.Now)); err != nil {
				return dbErr(err, "insert org membership")
			}
		case err != nil:
			return dbErr(err, "org membership")
		case !active:
			return errs.Forbiddenf("Your membership of this organization is deactivated")
		case status != org.StatusAccepted:
			if _, err := tx.exec(ctx, `UPDATE org_memberships SET status = ?, `+stampAfter+` WHERE org_id = ? AND user_id = ?`,
				org.StatusAccepted, ts(tx.Now), ts(tx.Now), orgID, u.ID); err != nil {
				return dbErr(err, "accept membership")
			}
			if _, err := tx.exec(ctx, `DELETE FROM org_invitations WHERE org_id = ? AND user_id = ?`, orgID, u.ID); err != nil {
				return dbErr(err, "delete invitations")
			}
		default:
			return nil // nothing changed; the login itself is audited by the session
		}
		ev.ActorID = u.ID
		if ev.ActorMetadata != nil {
			ev.ActorMetadata["userId"] = u.ID
		}
		ev.Metadata["userId"] = u.ID
		ev.Metadata["userCreated"] = created
		return tx.insertAudit(ctx, ev)
	})
	return u, created, err
}

// holdDefaultRole checks that slug, the configuration's default role, is
// built in or a custom role of org, and holds that role against deletion
// until the transaction ends (FOR SHARE on PostgreSQL; DeleteOrgRole locks
// the role first, so it either sees the configuration naming it or this
// write sees the role gone). The service checked on what it read; a role
// deleted since left every SSO sign-up refused, and one made later under
// the slug would be handed to new users.
func (tx *Tx) holdDefaultRole(ctx context.Context, orgID, slug string) error {
	if authz.IsBuiltinOrgRole(slug) {
		return nil
	}
	var id string
	err := tx.queryRow(ctx, `SELECT id FROM org_roles WHERE org_id = ? AND slug = ?`+tx.db.forShare(), orgID, slug).Scan(&id)
	if errs.Is(dbErr(err, "default role"), errs.NotFound) {
		return errs.Fieldf("defaultMembershipRole", "defaultMembershipRole names no role of this organization")
	}
	return dbErr(err, "default role")
}
