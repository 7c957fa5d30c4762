package store

import (
	"context"
	"time"

	"github.com/lockbox-dev/lockbox/internal/audit"
	"github.com/lockbox-dev/lockbox/internal/errs"
	"github.com/lockbox-dev/lockbox/internal/identity"
)

var _ identity.DeviceStore = (*DB)(nil)

// PutDeviceLogin stores a device login and prunes expired ones; no cache
// holds these rows, so the write is quiet.
func (db *DB) PutDeviceLogin(ctx context.Context, d identity.DeviceLogin, now time.Time) error {
	return db.transactQuiet(ctx, func(tx *Tx) error {
		if _, err := tx.exec(ctx, `DELETE FROM device_logins WHERE expires_at < ?`, ts(now)); err != nil {
			return dbErr(err, "prune device logins")
		}
		_, err := tx.exec(ctx, `INSERT INTO device_logins (device_code_hash, user_code, status, requested_ip, requested_ua, expires_at, created_at)
			VALUES (?, ?, ?, ?, ?, ?, ?)`, d.CodeHash, d.UserCode, d.Status, d.IP, d.UserAgent, ts(d.ExpiresAt), ts(d.CreatedAt))
		if IsUniqueViolation(err) {
			return errs.Conflictf("user code taken")
		}
		return dbErr(err, "PutDeviceLogin")
	})
}

const deviceCols = `device_code_hash, user_code, status, COALESCE(user_id, ''), COALESCE(org_id, ''), requested_ip, requested_ua,
	expires_at, created_at`

func scanDevice(sc interface{ Scan(...any) error }) (identity.DeviceLogin, error) {
	var d identity.DeviceLogin
	err := sc.Scan(&d.CodeHash, &d.UserCode, &d.Status, &d.UserID, &d.OrgID, &d.IP, &d.UserAgent, timeCol{&d.ExpiresAt}, timeCol{&d.CreatedAt})
	return d, err
}

// DeviceLoginByUserCode returns a pending device login unexpired at now.
func (db *DB) DeviceLoginByUserCode(ctx context.Context, userCode string, now time.Time) (identity.DeviceLogin, error) {
	d, err := scanDevice(db.readRow(ctx, `SELECT `+deviceCols+` FROM device_logins WHERE user_code = ? AND status = ? AND expires_at > ?`,
		userCode, identity.DevicePending, ts(now)))
	return d, dbErr(err, "DeviceLoginByUserCode")
}

// DecideDeviceLogin approves or denies a pending device login; the UPDATE
// decides which of two decisions wins.
func (db *DB) DecideDeviceLogin(ctx context.Context, userCode, status, userID, orgID string, now time.Time, ev audit.Event) error {
	return db.transactQuiet(ctx, func(tx *Tx) error {
		res, err := tx.exec(ctx, `UPDATE device_logins SET status = ?, user_id = ?, org_id = ?
			WHERE user_code = ? AND status = ? AND expires_at > ?`, status, nullStr(userID), nullStr(orgID), userCode, identity.DevicePending, ts(now))
		if err != nil {
			return dbErr(err, "DecideDeviceLogin")
		}
		if n, err := res.RowsAffected(); err != nil || n != 1 {
			return errs.NotFoundf("no pending device login")
		}
		return tx.insertAudit(ctx, ev)
	})
}

// DeviceLoginByCode returns the device login of a code hash unless it expired
// at now. A read: polls of a pending (or unknown) login take no writer.
func (db *DB) DeviceLoginByCode(ctx context.Context, codeHash string, now time.Time) (identity.DeviceLogin, error) {
	d, err := scanDevice(db.readRow(ctx, `SELECT `+deviceCols+` FROM device_logins WHERE device_code_hash = ?`, codeHash))
	if err != nil {
		return d, dbErr(err, "DeviceLoginByCode")
	}
	if !d.ExpiresAt.After(now) {
		return identity.DeviceLogin{}, errs.NotFoundf("device login expired")
	}
	return d, nil
}

// TakeDeviceLogin deletes a device login still in status and stores sess
// (nil: none) in the same transaction. The DELETE decides which of two polls
// collects it, and that the decision read is still the row's: an approval is
// turned into a denial when the user's sessions end (endUserSessions, which
// takes the row first, so a session stored here is one it then ends).
func (db *DB) TakeDeviceLogin(ctx context.Context, codeHash, status string, sess *identity.Session) error {
	return db.transactQuiet(ctx, func(tx *Tx) error {
		res, err := tx.exec(ctx, `DELETE FROM device_logins WHERE device_code_hash = ? AND status = ?`, codeHash, status)
		if err != nil {
			return dbErr(err, "take device login")
		}
		if n, err := res.RowsAffected(); err != nil || n != 1 {
			return errs.NotFoundf("device login already used")
		}
		if sess == nil {
			return nil
		}
		return tx.insertSession(ctx, *sess)
	})
}
