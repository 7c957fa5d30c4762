package store

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"time"

	"github.com/lockbox-dev/lockbox/internal/audit"
	"github.com/lockbox-dev/lockbox/internal/identity"
)

var _ identity.UAStore = (*DB)(nil)

// UAIdentity returns an identity and its organization.
func (db *DB) UAIdentity(ctx context.Context, id string) (identity.Identity, error) {
	var i identity.Identity
	err := db.readRow(ctx, `SELECT id, org_id, name, has_delete_protection, created_at, updated_at FROM identities WHERE id = ?`, id).
		Scan(&i.ID, &i.OrgID, &i.Name, &i.HasDeleteProtection, timeCol{&i.CreatedAt}, timeCol{&i.UpdatedAt})
	return i, dbErr(err, "UAIdentity")
}

const uaCols = `id, identity_id, client_id, access_token_ttl, access_token_max_ttl, access_token_num_uses_limit,
	access_token_period, client_secret_trusted_ips, access_token_trusted_ips, lockout_enabled, lockout_threshold,
	lockout_duration_seconds, lockout_counter_reset_seconds, created_at, updated_at`

// scanUA scans uaCols and then the extra destinations.
func scanUA(sc interface{ Scan(...any) error }, extra ...any) (identity.UniversalAuth, error) {
	var ua identity.UniversalAuth
	var csIPs, atIPs string
	err := sc.Scan(append([]any{&ua.ID, &ua.IdentityID, &ua.ClientID, &ua.AccessTokenTTL, &ua.AccessTokenMaxTTL, &ua.AccessTokenNumUsesLimit,
		&ua.AccessTokenPeriod, &csIPs, &atIPs, &ua.LockoutEnabled, &ua.LockoutThreshold, &ua.LockoutDurationSeconds,
		&ua.LockoutCounterResetSeconds, timeCol{&ua.CreatedAt}, timeCol{&ua.UpdatedAt}}, extra...)...)
	ua.ClientSecretTrustedIPs, ua.AccessTokenTrustedIPs = parseIPs(csIPs), parseIPs(atIPs)
	return ua, err
}

// CreateUniversalAuth stores a new configuration; Conflict if the identity has one.
func (db *DB) CreateUniversalAuth(ctx context.Context, ua identity.UniversalAuth, ev audit.Event) error {
	return db.Transact(ctx, func(tx *Tx) error {
		_, err := tx.exec(ctx, `INSERT INTO identity_universal_auths (`+uaCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			ua.ID, ua.IdentityID, ua.ClientID, ua.AccessTokenTTL, ua.AccessTokenMaxTTL, ua.AccessTokenNumUsesLimit,
			ua.AccessTokenPeriod, ipsJSON(ua.ClientSecretTrustedIPs), ipsJSON(ua.AccessTokenTrustedIPs), ua.LockoutEnabled,
			ua.LockoutThreshold, ua.LockoutDurationSeconds, ua.LockoutCounterResetSeconds, ts(tx.Now), ts(tx.Now))
		if err != nil {
			return dbErr(err, "CreateUniversalAuth")
		}
		return tx.insertAudit(ctx, ev)
	})
}

// UniversalAuthByIdentity returns an identity's configuration.
func (db *DB) UniversalAuthByIdentity(ctx context.Context, identityID string) (identity.UniversalAuth, error) {
	ua, err := scanUA(db.readRow(ctx, `SELECT `+uaCols+` FROM identity_universal_auths WHERE identity_id = ?`, identityID))
	return ua, dbErr(err, "UniversalAuthByIdentity")
}

// UniversalAuthLogin reads, in one query on the unique client id and
// secret hash indexes, the configuration with clientID, its identity, the
// identity's organization slug, the configuration's client secret whose
// keyed hash is hash (Found false when it has none) and its lock.
func (db *DB) UniversalAuthLogin(ctx context.Context, clientID, hash string) (identity.UALogin, error) {
	var l identity.UALogin
	var csID string
	ua, err := scanUA(db.readRow(ctx, uaLoginQuery, hash, clientID),
		&l.Identity.Name, &l.Identity.OrgID, &l.Identity.HasDeleteProtection, timeCol{&l.Identity.CreatedAt}, timeCol{&l.Identity.UpdatedAt},
		&l.OrgSlug, &csID, &l.Secret.Description, &l.Secret.Prefix, &l.Secret.NumUses, &l.Secret.NumUsesLimit, &l.Secret.TTL,
		&l.Secret.Revoked, timeCol{&l.Secret.CreatedAt}, timeCol{&l.Secret.UpdatedAt}, timeCol{&l.LockedUntil})
	if err != nil {
		return identity.UALogin{}, dbErr(err, "UniversalAuthLogin")
	}
	l.UA, l.Identity.ID = ua, ua.IdentityID
	if csID != "" {
		l.Found, l.Secret.ID, l.Secret.IdentityUAID = true, csID, ua.ID
	}
	return l, nil
}

var uaLoginQuery = `SELECT ` + qualify("ua", uaCols) + `,
	i.name, i.org_id, i.has_delete_protection, i.created_at, i.updated_at, o.slug,
	COALESCE(cs.id, ''), COALESCE(cs.description, ''), COALESCE(cs.prefix, ''), COALESCE(cs.num_uses, 0),
	COALESCE(cs.num_uses_limit, 0), COALESCE(cs.ttl, 0), COALESCE(cs.revoked, FALSE), cs.created_at, cs.updated_at,
	lk.locked_until
	FROM identity_universal_auths ua
	JOIN identities i ON i.id = ua.identity_id
	JOIN orgs o ON o.id = i.org_id
	LEFT JOIN identity_ua_client_secrets cs ON cs.secret_hash = ? AND cs.identity_ua_id = ua.id
	LEFT JOIN identity_ua_lockouts lk ON lk.identity_ua_id = ua.id
	WHERE ua.client_id = ?`

// qualify prefixes each column of a comma-separated list with alias.
func qualify(alias, cols string) string {
	parts := strings.Split(cols, ",")
	for i, c := range parts {
		parts[i] = alias + "." + strings.TrimSpace(c)
	}
	return strings.Join(parts, ", ")
}

// UpdateUniversalAuth writes a changed configuration.
func (db *DB) UpdateUniversalAuth(ctx context.Context, ua identity.UniversalAuth, prev time.Time, ev audit.Event) error {
	return db.Transact(ctx, func(tx *Tx) error {
		res, err := tx.exec(ctx, `UPDATE identity_universal_auths SET access_token_ttl = ?, access_token_max_ttl = ?,
			access_token_num_uses_limit = ?, access_token_period = ?, client_secret_trusted_ips = ?, access_token_trusted_ips = ?,
			lockout_enabled = ?, lockout_threshold = ?, lockout_duration_seconds = ?, lockout_counter_reset_seconds = ?, updated_at = ?
			WHERE id = ? AND updated_at = ?`, ua.AccessTokenTTL, ua.AccessTokenMaxTTL, ua.AccessTokenNumUsesLimit, ua.AccessTokenPeriod,
			ipsJSON(ua.ClientSecretTrustedIPs), ipsJSON(ua.AccessTokenTrustedIPs), ua.LockoutEnabled, ua.LockoutThreshold,
			ua.LockoutDurationSeconds, ua.LockoutCounterResetSeconds, ts(ua.UpdatedAt), ua.ID, ts(prev))
		if err := staleIfNone(res, err, "UpdateUniversalAuth"); err != nil {
			return err
		}
		return tx.insertAudit(ctx, ev)
	})
}

// DeleteUniversalAuth removes the configuration (secrets cascade) and revokes its tokens.
func (db *DB) DeleteUniversalAuth(ctx context.Context, identityID string, ev audit.Event) error {
	return db.Transact(ctx, func(tx *Tx) error {
		// The configuration first: its client secrets' deletion waits for the
		// logins holding them (the login statement locks the secret it
		// consumes), whose tokens the next statement then sees and revokes.
		// Revoking first missed a token such a login inserted meanwhile.
		if _, err := tx.exec(ctx, `DELETE FROM identity_universal_auths WHERE identity_id = ?`, identityID); err != nil {
			return dbErr(err, "DeleteUniversalAuth")
		}
		if _, err := tx.exec(ctx, `UPDATE identity_access_tokens SET revoked = TRUE, updated_at = ?
			WHERE identity_id = ? AND auth_method = 'universal-auth' AND revoked = FALSE`, ts(tx.Now), identityID); err != nil {
			return dbErr(err, "revoke universal auth tokens")
		}
		return tx.insertAudit(ctx, ev)
	})
}

const csCols = `id, identity_ua_id, description, prefix, num_uses, num_uses_limit, ttl, revoked, created_at, updated_at, last_used_at`

func scanCS(sc interface{ Scan(...any) error }) (identity.ClientSecret, error) {
	var c identity.ClientSecret
	err := sc.Scan(&c.ID, &c.IdentityUAID, &c.Description, &c.Prefix, &c.NumUses, &c.NumUsesLimit, &c.TTL, &c.Revoked,
		timeCol{&c.CreatedAt}, timeCol{&c.UpdatedAt}, optTimeCol{&c.LastUsedAt})
	return c, err
}

// liveSecret is true of a client secret that can still log in at the
// time given as its one argument (not revoked, expired or used up): the
// login's own conditions.
const liveSecret = `revoked = FALSE AND (num_uses_limit = 0 OR num_uses < num_uses_limit) AND (ttl = 0 OR created_at + ttl * 1000000 > ?)`

// CreateClientSecret stores a secret's keyed hash, unless its
// configuration has identity.MaxClientSecrets that can log in, counted
// under a lock of the configuration's row so that concurrent creates do
// not pass the bound. Secrets that expired or were used up count for
// nothing (and stay as they are: a login with one is told why it failed).
func (db *DB) CreateClientSecret(ctx context.Context, cs identity.ClientSecret, hash string, ev audit.Event) error {
	return db.Transact(ctx, func(tx *Tx) error {
		if err := tx.lockRow(ctx, "identity_universal_auths", cs.IdentityUAID); err != nil {
			return err
		}
		var n int
		if err := tx.queryRow(ctx, `SELECT COUNT(*) FROM identity_ua_client_secrets WHERE identity_ua_id = ? AND `+liveSecret,
			cs.IdentityUAID, ts(tx.Now)).Scan(&n); err != nil {
			return dbErr(err, "count client secrets")
		}
		if n >= identity.MaxClientSecrets {
			return identity.TooManyClientSecrets()
		}
		_, err := tx.exec(ctx, `INSERT INTO identity_ua_client_secrets (id, identity_ua_id, description, secret_hash, prefix,
			num_uses, num_uses_limit, ttl, revoked, created_at, updated_at) VALUES (?, ?, ?, ?, ?, 0, ?, ?, FALSE, ?, ?)`,
			cs.ID, cs.IdentityUAID, cs.Description, hash, cs.Prefix, cs.NumUsesLimit, cs.TTL, ts(cs.CreatedAt), ts(cs.UpdatedAt))
		if err != nil {
			return dbErr(err, "CreateClientSecret")
		}
		return tx.insertAudit(ctx, ev)
	})
}

// ClientSecrets lists a configuration's secrets that can log in at now,
// newest first: at most identity.MaxClientSecrets, and those past it only
// if they were created before the bound (the list read every secret ever
// made, revoked, expired and used up included).
func (db *DB) ClientSecrets(ctx context.Context, uaID string, now time.Time) ([]identity.ClientSecret, error) {
	rows, err := db.readq(ctx, `SELECT `+csCols+` FROM identity_ua_client_secrets WHERE identity_ua_id = ? AND `+liveSecret+`
		ORDER BY created_at DESC, id DESC`, uaID, ts(now))
	if err != nil {
		return nil, dbErr(err, "ClientSecrets")
	}
	defer rows.Close()
	var out []identity.ClientSecret
	for rows.Next() {
		c, err := scanCS(rows)
		if err != nil {
			return nil, dbErr(err, "scan client secret")
		}
		out = append(out, c)
	}
	return out, dbErr(rows.Err(), "ClientSecrets")
}

// ClientSecretByID returns one secret of a configuration.
func (db *DB) ClientSecretByID(ctx context.Context, uaID, id string) (identity.ClientSecret, error) {
	c, err := scanCS(db.readRow(ctx, `SELECT `+csCols+` FROM identity_ua_client_secrets WHERE identity_ua_id = ? AND id = ?`, uaID, id))
	return c, dbErr(err, "ClientSecretByID")
}

// RevokeClientSecret revokes a secret and every token issued from it, in one transaction.
func (db *DB) RevokeClientSecret(ctx context.Context, uaID, id string, ev audit.Event) (identity.ClientSecret, error) {
	var c identity.ClientSecret
	err := db.Transact(ctx, func(tx *Tx) error {
		res, err := tx.exec(ctx, `UPDATE identity_ua_client_secrets SET revoked = TRUE, updated_at = ? WHERE identity_ua_id = ? AND id = ?`,
			ts(tx.Now), uaID, id)
		if err != nil {
			return dbErr(err, "RevokeClientSecret")
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return dbErr(errNoRows, "RevokeClientSecret")
		}
		if _, err := tx.exec(ctx, `UPDATE identity_access_tokens SET revoked = TRUE, updated_at = ? WHERE client_secret_id = ? AND revoked = FALSE`,
			ts(tx.Now), id); err != nil {
			return dbErr(err, "revoke client secret tokens")
		}
		c, err = scanCS(tx.queryRow(ctx, `SELECT `+csCols+` FROM identity_ua_client_secrets WHERE id = ?`, id))
		if err != nil {
			return dbErr(err, "RevokeClientSecret")
		}
		return tx.insertAudit(ctx, ev)
	})
	return c, err
}

// ReserveLoginAttempt counts one login attempt before its secret is checked,
// in one conditional upsert: a configuration that is locked at now is left
// untouched and the reservation refused; otherwise the counter (restarted
// after its reset window or an expired lock) grows by one, and the attempt
// that reaches the threshold sets the lock. So at most threshold attempts are
// ever checked against a secret before the lock, however many run at once.
func (db *DB) ReserveLoginAttempt(ctx context.Context, ua identity.UniversalAuth, now time.Time) (bool, error) {
	_, ok, err := db.reserveAttempt(ctx, "identity_ua_lockouts", "identity_ua_id", ua.ID, identity.LockoutPolicy{
		Threshold:    ua.LockoutThreshold,
		Duration:     time.Duration(ua.LockoutDurationSeconds) * time.Second,
		CounterReset: time.Duration(ua.LockoutCounterResetSeconds) * time.Second,
	}, now)
	return ok, err
}

// ReleaseLoginAttempt takes back a reservation whose attempt was not a wrong
// secret (an expired or used-up secret), lifting the lock it may have set.
func (db *DB) ReleaseLoginAttempt(ctx context.Context, ua identity.UniversalAuth) error {
	return db.releaseAttempt(ctx, "identity_ua_lockouts", "identity_ua_id", ua.ID, ua.LockoutThreshold)
}

// reserveAttempt is the one statement behind every lockout counter: table has
// columns keyCol, failed_attempts, counter_reset_at and locked_until. It
// returns the attempt's number in the current window, or false when locked.
func (db *DB) reserveAttempt(ctx context.Context, table, keyCol, key string, p identity.LockoutPolicy, now time.Time) (int, bool, error) {
	until := ts(now.Add(p.Duration))
	var first any // locked_until of a fresh row
	if p.Threshold <= 1 {
		first = until
	}
	// The SET expressions read the row as it was; the counter restarts when its
	// window has passed or when a (necessarily expired) lock is on the row.
	restart := table + `.counter_reset_at <= ? OR ` + table + `.locked_until IS NOT NULL`
	var n int
	err := db.write.QueryRowContext(ctx, db.q(`INSERT INTO `+table+` (`+keyCol+`, failed_attempts, counter_reset_at, locked_until)
		VALUES (?, 1, ?, CAST(? AS BIGINT)) ON CONFLICT (`+keyCol+`) DO UPDATE SET
		failed_attempts = CASE WHEN `+restart+` THEN 1 ELSE `+table+`.failed_attempts + 1 END,
		counter_reset_at = excluded.counter_reset_at,
		locked_until = CASE WHEN (CASE WHEN `+restart+` THEN 1 ELSE `+table+`.failed_attempts + 1 END) >= ?
			THEN CAST(? AS BIGINT) ELSE NULL END
		WHERE `+table+`.locked_until IS NULL OR `+table+`.locked_until <= ?
		RETURNING failed_attempts`),
		key, ts(now.Add(p.CounterReset)), first,
		ts(now), ts(now), p.Threshold, until, ts(now)).Scan(&n)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, dbErr(err, "reserve login attempt")
	}
	return n, true, nil
}

func (db *DB) releaseAttempt(ctx context.Context, table, keyCol, key string, threshold int) error {
	_, err := db.execQuiet(ctx, `UPDATE `+table+` SET failed_attempts = failed_attempts - 1,
		locked_until = CASE WHEN failed_attempts - 1 < ? THEN NULL ELSE locked_until END
		WHERE `+keyCol+` = ? AND failed_attempts > 0`, threshold, key)
	return dbErr(err, "release login attempt")
}

// ClearLockout deletes a configuration's lockout state; ev, if given, is recorded.
func (db *DB) ClearLockout(ctx context.Context, uaID string, ev *audit.Event) (int, error) {
	var n int64
	err := db.Transact(ctx, func(tx *Tx) error {
		res, err := tx.exec(ctx, `DELETE FROM identity_ua_lockouts WHERE identity_ua_id = ?`, uaID)
		if err != nil {
			return dbErr(err, "ClearLockout")
		}
		n, _ = res.RowsAffected()
		if ev != nil {
			return tx.insertAudit(ctx, *ev)
		}
		return nil
	})
	return int(n), err
}
