package store

import (
	"cmp"
	"context"
	"encoding/json"
	"maps"
	"slices"
	"time"

	"github.com/lockbox-dev/lockbox/internal/audit"
	"github.com/lockbox-dev/lockbox/internal/errs"
	"github.com/lockbox-dev/lockbox/internal/identity"
	"github.com/lockbox-dev/lockbox/internal/keyring"
	"github.com/lockbox-dev/lockbox/internal/project"
)

// Bootstrap writes the instance's first user, org, admin identity and token.
// The server_config row is inserted first: a second bootstrap, even a racing
// one, fails on its primary key and changes nothing.
func (db *DB) Bootstrap(ctx context.Context, b identity.BootstrapRecord) error {
	return db.Transact(ctx, func(tx *Tx) error {
		if _, err := tx.exec(ctx, `INSERT INTO server_config (id, admin_identity_id, initialized_at) VALUES (1, ?, ?)`,
			b.Identity.ID, ts(tx.Now)); err != nil {
			return dbErr(err, "claim server config")
		}
		if err := tx.insertUser(ctx, b.User); err != nil {
			return err
		}
		if err := tx.insertOrg(ctx, b.Org); err != nil {
			return err
		}
		if err := tx.insertDataKey(ctx, keyring.Org(b.Org.ID), b.OrgDataKey, b.RootKeyID); err != nil {
			return err
		}
		if err := tx.insertOrgMembership(ctx, b.Org.ID, b.User.ID, "", "admin"); err != nil {
			return err
		}
		if err := tx.insertIdentity(ctx, b.Identity); err != nil {
			return err
		}
		if err := tx.insertOrgMembership(ctx, b.Org.ID, "", b.Identity.ID, "admin"); err != nil {
			return err
		}
		if err := tx.insertTokenAuth(ctx, b.TokenAuth); err != nil {
			return err
		}
		if err := tx.insertAccessToken(ctx, b.AccessToken); err != nil {
			return err
		}
		return tx.insertAudit(ctx, b.Event)
	})
}

// Initialized reports whether the instance has been bootstrapped.
func (db *DB) Initialized(ctx context.Context) (bool, error) {
	var n int
	err := db.readRow(ctx, `SELECT COUNT(*) FROM server_config`).Scan(&n)
	return n > 0, dbErr(err, "Initialized")
}

func (tx *Tx) insertUser(ctx context.Context, u identity.User) error {
	_, err := tx.exec(ctx, `INSERT INTO users (id, email, username, first_name, last_name, password_hash, super_admin, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`, u.ID, u.Email, u.Username, u.FirstName, u.LastName, u.PasswordHash, u.SuperAdmin, ts(u.CreatedAt), ts(u.UpdatedAt))
	if IsUniqueViolation(err) {
		return errs.BadRequest("User already exists")
	}
	return dbErr(err, "insert user")
}

func (tx *Tx) insertOrg(ctx context.Context, o project.Org) error {
	_, err := tx.exec(ctx, `INSERT INTO orgs (id, name, slug, created_at, updated_at) VALUES (?, ?, ?, ?, ?)`,
		o.ID, o.Name, o.Slug, ts(o.CreatedAt), ts(o.UpdatedAt))
	return dbErr(err, "insert org")
}

func (tx *Tx) insertOrgMembership(ctx context.Context, orgID, userID, identityID, role string) error {
	_, err := tx.exec(ctx, `INSERT INTO org_memberships (id, org_id, user_id, identity_id, role, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?)`, newID(), orgID, nullStr(userID), nullStr(identityID), role, ts(tx.Now), ts(tx.Now))
	return dbErr(err, "insert org membership")
}

func (tx *Tx) insertIdentity(ctx context.Context, i identity.Identity) error {
	_, err := tx.exec(ctx, `INSERT INTO identities (id, org_id, name, has_delete_protection, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)`,
		i.ID, i.OrgID, i.Name, i.HasDeleteProtection, ts(i.CreatedAt), ts(i.UpdatedAt))
	if err != nil {
		return dbErr(err, "insert identity")
	}
	for _, m := range i.Metadata {
		if m.ID == "" {
			m.ID = newID()
		}
		if _, err := tx.exec(ctx, `INSERT INTO identity_metadata (id, identity_id, key, value) VALUES (?, ?, ?, ?)`, m.ID, i.ID, m.Key, m.Value); err != nil {
			return dbErr(err, "insert identity metadata")
		}
	}
	return nil
}

func ipsJSON(ips []identity.TrustedIP) string {
	type wire struct {
		IPAddress string `json:"ipAddress"`
		Type      string `json:"type"`
		Prefix    int    `json:"prefix"`
	}
	out := make([]wire, len(ips))
	for i, ip := range ips {
		out[i] = wire{ip.IPAddress, ip.Type, ip.Prefix}
	}
	b, _ := json.Marshal(out)
	return string(b)
}

func parseIPs(s string) []identity.TrustedIP {
	var in []struct {
		IPAddress string `json:"ipAddress"`
		Type      string `json:"type"`
		Prefix    int    `json:"prefix"`
	}
	json.Unmarshal([]byte(s), &in)
	out := make([]identity.TrustedIP, len(in))
	for i, w := range in {
		out[i] = identity.TrustedIP{IPAddress: w.IPAddress, Type: w.Type, Prefix: w.Prefix}
	}
	return out
}

func (tx *Tx) insertTokenAuth(ctx context.Context, t identity.TokenAuth) error {
	_, err := tx.exec(ctx, `INSERT INTO identity_token_auths (id, identity_id, access_token_ttl, access_token_max_ttl,
		access_token_num_uses_limit, access_token_trusted_ips, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
		t.ID, t.IdentityID, t.AccessTokenTTL, t.AccessTokenMaxTTL, t.AccessTokenNumUsesLimit, ipsJSON(t.AccessTokenTrustedIPs), ts(t.CreatedAt), ts(t.UpdatedAt))
	if IsUniqueViolation(err) {
		return errs.BadRequest("Failed to add token auth to already configured identity")
	}
	return dbErr(err, "insert token auth")
}

func (tx *Tx) insertAccessToken(ctx context.Context, t identity.AccessToken) error {
	_, err := tx.exec(ctx, `INSERT INTO identity_access_tokens (`+newTokenCols+`) VALUES (`+newTokenVals+`)`, newTokenArgs(t)...)
	return dbErr(err, "insert access token")
}

// newTokenCols are the columns a new access token row sets, newTokenVals
// the expressions that fill them from newTokenArgs.
const (
	newTokenCols = `id, identity_id, auth_method, name, client_secret_id, access_token_ttl, access_token_max_ttl,
		access_token_period, num_uses, num_uses_limit, trusted_ips, revoked, created_at, updated_at`
	newTokenVals = `?, ?, ?, ?, ?, ?, ?, ?, 0, ?, ?, FALSE, ?, ?`
)

func newTokenArgs(t identity.AccessToken) []any {
	return []any{t.ID, t.IdentityID, t.AuthMethod, t.Name, nullStr(t.ClientSecretID), t.TTL, t.MaxTTL, t.Period, t.NumUsesLimit,
		ipsJSON(t.TrustedIPs), ts(t.CreatedAt), ts(t.UpdatedAt)}
}

const accessTokenCols = accessTokenColsA + `t.trusted_ips` + accessTokenColsB

// accessTokenColsA and accessTokenColsB are accessTokenCols around its
// trusted IPs, which qAccessTokenByID reads from elsewhere.
const (
	accessTokenColsA = `t.id, t.identity_id, t.auth_method, t.name, COALESCE(t.client_secret_id, ''), t.access_token_ttl,
	t.access_token_max_ttl, t.access_token_period, t.num_uses, t.num_uses_limit, `
	accessTokenColsB = `, t.last_used_at,
	t.last_renewed_at, t.revoked, t.created_at, t.updated_at`
)

func scanAccessToken(sc interface{ Scan(...any) error }, t *identity.AccessToken, extra ...any) error {
	var ips string
	dest := []any{&t.ID, &t.IdentityID, &t.AuthMethod, &t.Name, &t.ClientSecretID, &t.TTL, &t.MaxTTL, &t.Period,
		&t.NumUses, &t.NumUsesLimit, &ips, optTimeCol{&t.LastUsedAt}, optTimeCol{&t.LastRenewedAt}, &t.Revoked,
		timeCol{&t.CreatedAt}, timeCol{&t.UpdatedAt}}
	if err := sc.Scan(append(dest, extra...)...); err != nil {
		return err
	}
	t.TrustedIPs = parseIPs(ips)
	return nil
}

// qAccessTokenByID reads a token with its identity's org and name and the
// trusted IPs its login method has now: Universal Auth's, Token Auth's, or
// the platform method's configuration (each a lookup by a unique key).
const qAccessTokenByID = `SELECT ` + accessTokenColsA +
	`COALESCE(ua.access_token_trusted_ips, ta.access_token_trusted_ips, ac.access_token_trusted_ips, t.trusted_ips)` +
	accessTokenColsB + `, i.org_id, i.name
	FROM identity_access_tokens t
	JOIN identities i ON i.id = t.identity_id
	JOIN org_memberships m ON m.identity_id = i.id AND m.org_id = i.org_id
	LEFT JOIN identity_universal_auths ua ON t.auth_method = '` + identity.MethodUniversalAuth + `' AND ua.identity_id = t.identity_id
	LEFT JOIN identity_token_auths ta ON t.auth_method = '` + identity.MethodTokenAuth + `' AND ta.identity_id = t.identity_id
	LEFT JOIN identity_auth_configs ac ON ac.identity_id = t.identity_id AND ac.method = t.auth_method
	WHERE t.id = ?`

// AccessTokenByID returns a token with its identity's org and name, in one
// query. Its TrustedIPs are its login method's as configured now, as
// Infisical checks them: narrowing them reaches the tokens already issued.
// (A token whose method was removed was revoked with it; it keeps those it
// was issued with.)
func (db *DB) AccessTokenByID(ctx context.Context, id string) (identity.AccessToken, identity.IdentityRef, error) {
	var t identity.AccessToken
	var ref identity.IdentityRef
	row := db.readRow(ctx, qAccessTokenByID, id)
	if err := scanAccessToken(row, &t, &ref.OrgID, &ref.Name); err != nil {
		return t, ref, dbErr(err, "AccessTokenByID")
	}
	return t, ref, nil
}

// ConsumeAccessTokenUse counts one use with a single conditional UPDATE, so
// concurrent requests can never exceed the limit.
func (db *DB) ConsumeAccessTokenUse(ctx context.Context, id string) (bool, error) {
	now := db.Now()
	res, err := db.execQuiet(ctx, `UPDATE identity_access_tokens SET num_uses = num_uses + 1, last_used_at = ?
		WHERE id = ? AND revoked = FALSE AND (num_uses_limit = 0 OR num_uses < num_uses_limit)`, ts(now), id)
	if err != nil {
		return false, dbErr(err, "ConsumeAccessTokenUse")
	}
	n, err := res.RowsAffected()
	return n == 1, dbErr(err, "ConsumeAccessTokenUse")
}

// NoteAccessTokensUsed records the last use of access tokens (a later one
// already recorded stays), in transactions of at most 500 tokens that change
// nothing a cache holds: on PostgreSQL one statement each (the ids and times
// as two arrays), on SQLite one local UPDATE per token. Unknown tokens are
// skipped.
func (db *DB) NoteAccessTokensUsed(ctx context.Context, used map[string]time.Time) error {
	return db.noteLastUse(ctx, "identity_access_tokens", "last_used_at", used)
}

// NoteServiceTokensUsed records the last use of service tokens as
// NoteAccessTokensUsed does for access tokens.
func (db *DB) NoteServiceTokensUsed(ctx context.Context, used map[string]time.Time) error {
	return db.noteLastUse(ctx, "service_tokens", "last_used", used)
}

// noteLastUse sets column col of table's rows (by id) to the times in used
// where it is unset or earlier. table and col are the callers' constants.
func (db *DB) noteLastUse(ctx context.Context, table, col string, used map[string]time.Time) error {
	ids := slices.Sorted(maps.Keys(used)) // one lock order for concurrent nodes
	what := "note last use of " + table
	for chunk := range slices.Chunk(ids, 500) {
		err := db.transactQuiet(ctx, func(tx *Tx) error {
			if db.dialect == Postgres {
				ats := make([]int64, len(chunk))
				for i, id := range chunk {
					ats[i] = used[id].UnixMicro() // as ts() writes a time
				}
				_, err := tx.exec(ctx, `UPDATE `+table+` t SET `+col+` = u.at
					FROM unnest(?::text[], ?::bigint[]) AS u(id, at)
					WHERE t.id = u.id AND (t.`+col+` IS NULL OR t.`+col+` < u.at)`, chunk, ats)
				return dbErr(err, what)
			}
			for _, id := range chunk {
				at := ts(used[id])
				if _, err := tx.exec(ctx, `UPDATE `+table+` SET `+col+` = ?
					WHERE id = ? AND (`+col+` IS NULL OR `+col+` < ?)`, at, id, at); err != nil {
					return dbErr(err, what)
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}

const userCols = `id, email, username, first_name, last_name, password_hash, super_admin, created_at, updated_at`

func scanUser(sc interface{ Scan(...any) error }, u *identity.User) error {
	return sc.Scan(&u.ID, &u.Email, &u.Username, &u.FirstName, &u.LastName, &u.PasswordHash, &u.SuperAdmin,
		timeCol{&u.CreatedAt}, timeCol{&u.UpdatedAt})
}

// UserByEmail finds a user by lowercased email.
func (db *DB) UserByEmail(ctx context.Context, email string) (identity.User, error) {
	var u identity.User
	err := scanUser(db.readRow(ctx, `SELECT `+userCols+` FROM users WHERE email = ?`, email), &u)
	return u, dbErr(err, "UserByEmail")
}

const qUserByID = `SELECT ` + userCols + ` FROM users WHERE id = ?`

// UserByID finds a user.
func (db *DB) UserByID(ctx context.Context, id string) (identity.User, error) {
	var u identity.User
	err := scanUser(db.readRow(ctx, qUserByID, id), &u)
	return u, dbErr(err, "UserByID")
}

// CreateSession stores a human session. One of a family (s.FamilyID set)
// is stored only while the family's first session is not revoked, which
// it holds FOR SHARE until the insert is in: a logout (RevokeSession)
// either waits for it and revokes it too, or went first and the session is
// refused (errs.Unauthorized).
func (db *DB) CreateSession(ctx context.Context, s identity.Session) error {
	if s.FamilyID == "" {
		_, err := db.execQuiet(ctx, insertSession, s.ID, s.UserID, nullStr(s.OrgID), s.FamilyID, ts(s.CreatedAt), ts(s.ExpiresAt))
		return dbErr(err, "CreateSession")
	}
	return db.transactQuiet(ctx, func(tx *Tx) error {
		var one int
		err := tx.queryRow(ctx, `SELECT 1 FROM user_sessions WHERE id = ? AND user_id = ? AND kind = 'api' AND revoked = FALSE`+db.forShare(),
			s.FamilyID, s.UserID).Scan(&one)
		if err := dbErr(err, "CreateSession"); errs.Is(err, errs.NotFound) {
			return errs.Unauthorizedf("Session is no longer valid")
		} else if err != nil {
			return err
		}
		return tx.insertSession(ctx, s)
	})
}

const insertSession = `INSERT INTO user_sessions (id, user_id, org_id, family_id, revoked, created_at, expires_at) VALUES (?, ?, ?, ?, FALSE, ?, ?)`

// insertSession stores a new API session.
func (tx *Tx) insertSession(ctx context.Context, s identity.Session) error {
	_, err := tx.exec(ctx, insertSession, s.ID, s.UserID, nullStr(s.OrgID), s.FamilyID, ts(s.CreatedAt), ts(s.ExpiresAt))
	return dbErr(err, "CreateSession")
}

// RevokeSession ends a user's API session and every session of its family
// (the login's first session and those made from it); the change advances
// the cache epoch, so no node's session cache serves them afterwards.
func (db *DB) RevokeSession(ctx context.Context, id string) error {
	return db.Transact(ctx, func(tx *Tx) error {
		var user, family string
		if err := tx.queryRow(ctx, `SELECT user_id, family_id FROM user_sessions WHERE id = ? AND kind = 'api'`, id).Scan(&user, &family); err != nil {
			return dbErr(err, "RevokeSession")
		}
		root := cmp.Or(family, id)
		// The first session on its own first: this waits for the sessions
		// being made from it (CreateSession), which the next statement, on a
		// snapshot taken after them, then sees and revokes.
		if _, err := tx.exec(ctx, `UPDATE user_sessions SET revoked = TRUE WHERE kind = 'api' AND user_id = ? AND id = ?`, user, root); err != nil {
			return dbErr(err, "RevokeSession")
		}
		_, err := tx.exec(ctx, `UPDATE user_sessions SET revoked = TRUE WHERE kind = 'api' AND user_id = ? AND family_id = ? AND revoked = FALSE`, user, root)
		return dbErr(err, "RevokeSession")
	})
}

const qSessionByID = `SELECT id, user_id, COALESCE(org_id, ''), family_id, revoked, created_at, expires_at FROM user_sessions WHERE id = ?`

// SessionByID finds a session.
func (db *DB) SessionByID(ctx context.Context, id string) (identity.Session, error) {
	var s identity.Session
	err := db.readRow(ctx, qSessionByID, id).
		Scan(&s.ID, &s.UserID, &s.OrgID, &s.FamilyID, &s.Revoked, timeCol{&s.CreatedAt}, timeCol{&s.ExpiresAt})
	return s, dbErr(err, "SessionByID")
}

// UserOrgs lists the organizations a user belongs to.
func (db *DB) UserOrgs(ctx context.Context, userID string) ([]project.Org, error) {
	rows, err := db.readq(ctx, `SELECT o.id, o.name, o.slug, o.created_at, o.updated_at FROM orgs o
		JOIN org_memberships m ON m.org_id = o.id WHERE m.user_id = ? AND m.status = 'accepted' AND m.is_active ORDER BY o.created_at`, userID)
	if err != nil {
		return nil, dbErr(err, "UserOrgs")
	}
	defer rows.Close()
	var out []project.Org
	for rows.Next() {
		var o project.Org
		if err := rows.Scan(&o.ID, &o.Name, &o.Slug, timeCol{&o.CreatedAt}, timeCol{&o.UpdatedAt}); err != nil {
			return nil, dbErr(err, "scan org")
		}
		out = append(out, o)
	}
	return out, dbErr(rows.Err(), "UserOrgs")
}

// Engine names the database engine for /api/status.
func (db *DB) Engine() string { return string(db.dialect) }

// ReserveUserLoginAttempt counts one password login for the email keyed by
// emailHash before the password is checked, in one conditional upsert (see
// reserveAttempt); it reports false, changing nothing, while the email is locked.
func (db *DB) ReserveUserLoginAttempt(ctx context.Context, emailHash string, p identity.LockoutPolicy, now time.Time) (int, bool, error) {
	return db.reserveAttempt(ctx, "user_login_lockouts", "email_hash", emailHash, p, now)
}

// ReleaseUserLoginAttempt takes back a reservation whose password was never
// judged, lifting the lock it may have set.
func (db *DB) ReleaseUserLoginAttempt(ctx context.Context, emailHash string, threshold int) error {
	return db.releaseAttempt(ctx, "user_login_lockouts", "email_hash", emailHash, threshold)
}

// ClearUserLoginAttempts forgets an email's failed logins (after a success).
func (db *DB) ClearUserLoginAttempts(ctx context.Context, emailHash string) error {
	_, err := db.execQuiet(ctx, `DELETE FROM user_login_lockouts WHERE email_hash = ?`, emailHash)
	return dbErr(err, "ClearUserLoginAttempts")
}

// ClearUserLoginAttemptsPrefix forgets the counters of every key beginning
// with prefix (an identity's method lockouts) and records ev.
func (db *DB) ClearUserLoginAttemptsPrefix(ctx context.Context, prefix string, ev audit.Event) (int, error) {
	var n int64
	err := db.Transact(ctx, func(tx *Tx) error {
		res, err := tx.exec(ctx, `DELETE FROM user_login_lockouts WHERE substr(email_hash, 1, ?) = ?`, len(prefix), prefix)
		if err != nil {
			return dbErr(err, "ClearUserLoginAttemptsPrefix")
		}
		n, _ = res.RowsAffected()
		return tx.insertAudit(ctx, ev)
	})
	return int(n), err
}

// RecordFailedUserLogin appends evs and prunes the counters that have lapsed
// at now (window passed, no lock in force), which keeps the table as small as
// the failures of the last window.
func (db *DB) RecordFailedUserLogin(ctx context.Context, now time.Time, evs []audit.Event) error {
	return db.transactQuiet(ctx, func(tx *Tx) error {
		if _, err := tx.exec(ctx, `DELETE FROM user_login_lockouts WHERE counter_reset_at <= ?
			AND (locked_until IS NULL OR locked_until <= ?)`, ts(now), ts(now)); err != nil {
			return dbErr(err, "prune login lockouts")
		}
		return tx.insertAudits(ctx, evs...)
	})
}
