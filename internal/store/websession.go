package store

import (
	"context"
	"time"

	"github.com/lockbox-dev/lockbox/internal/errs"
	"github.com/lockbox-dev/lockbox/internal/identity"
)

// Dashboard sessions (kind 'web' rows of user_sessions) and users' second
// factors. None of it is cached, so writes go through execQuiet.

var _ identity.WebStore = (*DB)(nil)

// CreateWebSession stores a dashboard session.
func (db *DB) CreateWebSession(ctx context.Context, s identity.WebSession) error {
	_, err := db.execQuiet(ctx, `INSERT INTO user_sessions (id, user_id, org_id, revoked, created_at, expires_at, kind, last_seen_at, mfa_pending)
		VALUES (?, ?, ?, FALSE, ?, ?, 'web', ?, ?)`,
		s.ID, s.UserID, nullStr(s.OrgID), ts(s.CreatedAt), ts(s.ExpiresAt), ts(s.LastSeenAt), s.MFAPending)
	return dbErr(err, "CreateWebSession")
}

// WebSessionByID finds a dashboard session and its user.
func (db *DB) WebSessionByID(ctx context.Context, id string) (identity.WebSession, identity.User, error) {
	var s identity.WebSession
	var u identity.User
	err := db.readRow(ctx, `SELECT s.id, s.user_id, COALESCE(s.org_id, ''), s.revoked, s.created_at, s.expires_at,
		COALESCE(s.last_seen_at, s.created_at), s.mfa_pending,
		u.id, u.email, u.username, u.first_name, u.last_name, u.password_hash, u.super_admin, u.created_at, u.updated_at
		FROM user_sessions s JOIN users u ON u.id = s.user_id WHERE s.id = ? AND s.kind = 'web'`, id).
		Scan(&s.ID, &s.UserID, &s.OrgID, &s.Revoked, timeCol{&s.CreatedAt}, timeCol{&s.ExpiresAt},
			timeCol{&s.LastSeenAt}, &s.MFAPending,
			&u.ID, &u.Email, &u.Username, &u.FirstName, &u.LastName, &u.PasswordHash, &u.SuperAdmin,
			timeCol{&u.CreatedAt}, timeCol{&u.UpdatedAt})
	return s, u, dbErr(err, "WebSessionByID")
}

// TouchWebSession records activity on a session (its idle timeout restarts).
func (db *DB) TouchWebSession(ctx context.Context, id string, at time.Time) error {
	_, err := db.execQuiet(ctx, `UPDATE user_sessions SET last_seen_at = ? WHERE id = ? AND kind = 'web'`, ts(at), id)
	return dbErr(err, "TouchWebSession")
}

// SetWebSessionOrg moves a live web session to another organization.
func (db *DB) SetWebSessionOrg(ctx context.Context, id, orgID string) error {
	_, err := db.execQuiet(ctx, `UPDATE user_sessions SET org_id = ? WHERE id = ? AND kind = 'web' AND revoked = FALSE`, orgID, id)
	return dbErr(err, "SetWebSessionOrg")
}

// CompleteWebSessionMFA ends the pending session pendingID, whose second
// factor was given, and stores next, the full session that replaces it
// under a new token; errs.Unauthorized if pendingID is no longer pending.
func (db *DB) CompleteWebSessionMFA(ctx context.Context, pendingID string, next identity.WebSession) error {
	return db.transactQuiet(ctx, func(tx *Tx) error {
		res, err := tx.exec(ctx, `UPDATE user_sessions SET revoked = TRUE WHERE id = ? AND kind = 'web' AND NOT revoked AND mfa_pending`, pendingID)
		if err != nil {
			return dbErr(err, "CompleteWebSessionMFA")
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return errs.Unauthorizedf("Your session has ended, please log in again")
		}
		_, err = tx.exec(ctx, `INSERT INTO user_sessions (id, user_id, org_id, revoked, created_at, expires_at, kind, last_seen_at, mfa_pending)
			VALUES (?, ?, ?, FALSE, ?, ?, 'web', ?, FALSE)`,
			next.ID, next.UserID, nullStr(next.OrgID), ts(next.CreatedAt), ts(next.ExpiresAt), ts(next.LastSeenAt))
		return dbErr(err, "CompleteWebSessionMFA")
	})
}

// RevokeWebSession ends a session.
func (db *DB) RevokeWebSession(ctx context.Context, id string) error {
	_, err := db.execQuiet(ctx, `UPDATE user_sessions SET revoked = TRUE WHERE id = ? AND kind = 'web'`, id)
	return dbErr(err, "RevokeWebSession")
}

// UserTOTP returns a user's TOTP seed (sealed).
func (db *DB) UserTOTP(ctx context.Context, userID string) (identity.UserTOTP, error) {
	t := identity.UserTOTP{UserID: userID}
	err := db.readRow(ctx, `SELECT secret, enabled, last_step FROM user_totp WHERE user_id = ?`, userID).
		Scan(&t.Secret, &t.Enabled, &t.LastStep)
	return t, dbErr(err, "UserTOTP")
}

// PutUserTOTP replaces a user's seed that is not enabled, dropping old recovery codes.
func (db *DB) PutUserTOTP(ctx context.Context, t identity.UserTOTP, now time.Time) error {
	err := db.Transact(ctx, func(tx *Tx) error {
		if _, err := tx.exec(ctx, `DELETE FROM user_recovery_codes WHERE user_id = ?`, t.UserID); err != nil {
			return err
		}
		if _, err := tx.exec(ctx, `DELETE FROM user_totp WHERE user_id = ? AND NOT enabled`, t.UserID); err != nil {
			return err
		}
		_, err := tx.exec(ctx, `INSERT INTO user_totp (user_id, secret, enabled, last_step, created_at) VALUES (?, ?, FALSE, 0, ?)`,
			t.UserID, t.Secret, ts(now))
		return err
	})
	return dbErr(err, "PutUserTOTP")
}

// EnableUserTOTP enables a user's seed and stores its recovery codes, and
// ends every other session of the user (all but keepSession, the one that
// enabled it): a session taken with the password alone before does not
// outlive the second factor meant to stop it.
func (db *DB) EnableUserTOTP(ctx context.Context, userID, keepSession string, step int64, codeHashes []string) error {
	err := db.Transact(ctx, func(tx *Tx) error {
		if _, err := tx.exec(ctx, `UPDATE user_totp SET enabled = TRUE, last_step = ? WHERE user_id = ?`, step, userID); err != nil {
			return err
		}
		if err := tx.endUserSessions(ctx, userID, keepSession); err != nil {
			return err
		}
		for _, h := range codeHashes {
			if _, err := tx.exec(ctx, `INSERT INTO user_recovery_codes (user_id, code_hash) VALUES (?, ?)`, userID, h); err != nil {
				return err
			}
		}
		return nil
	})
	return dbErr(err, "EnableUserTOTP")
}

// AdvanceTOTPStep records a used TOTP step; false if it or a later one was used.
func (db *DB) AdvanceTOTPStep(ctx context.Context, userID string, step int64) (bool, error) {
	res, err := db.execQuiet(ctx, `UPDATE user_totp SET last_step = ? WHERE user_id = ? AND enabled AND last_step < ?`, step, userID, step)
	if err != nil {
		return false, dbErr(err, "AdvanceTOTPStep")
	}
	n, _ := res.RowsAffected()
	return n == 1, nil
}

// UseRecoveryCode marks an unused recovery code used.
func (db *DB) UseRecoveryCode(ctx context.Context, userID, codeHash string, at time.Time) (bool, error) {
	res, err := db.execQuiet(ctx, `UPDATE user_recovery_codes SET used_at = ? WHERE user_id = ? AND code_hash = ? AND used_at IS NULL`,
		ts(at), userID, codeHash)
	if err != nil {
		return false, dbErr(err, "UseRecoveryCode")
	}
	n, _ := res.RowsAffected()
	return n == 1, nil
}
