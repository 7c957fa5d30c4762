package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"slices"
	"strings"
	"time"

	"github.com/lockbox-dev/lockbox/internal/audit"
	"github.com/lockbox-dev/lockbox/internal/dynamic"
	"github.com/lockbox-dev/lockbox/internal/project"
)

var _ dynamic.Store = (*DB)(nil)

const dynCols = `id, project_id, folder_id, name, type, inputs, default_ttl, max_ttl, username_template, metadata, status, status_details, created_at, updated_at`

func scanDyn(sc interface{ Scan(...any) error }) (dynamic.SealedSecret, error) {
	var s dynamic.SealedSecret
	var md string
	err := sc.Scan(&s.ID, &s.ProjectID, &s.FolderID, &s.Name, &s.Type, &s.SealedInputs, &s.DefaultTTL, &s.MaxTTL, &s.UsernameTemplate,
		&md, &s.Status, &s.StatusDetails, timeCol{&s.CreatedAt}, timeCol{&s.UpdatedAt})
	json.Unmarshal([]byte(md), &s.Metadata)
	return s, err
}

func metadataJSON(md []dynamic.Metadata) string {
	if md == nil {
		md = []dynamic.Metadata{}
	}
	b, _ := json.Marshal(md)
	return string(b)
}

// CreateDynamicSecret stores a dynamic secret, unless its folder holds
// dynamic.MaxPerFolder already (counted under the folder's lock: bounded).
func (db *DB) CreateDynamicSecret(ctx context.Context, s dynamic.SealedSecret, ev audit.Event) error {
	return db.Transact(ctx, func(tx *Tx) error {
		if err := tx.guardMoves(ctx); err != nil {
			return err
		}
		if err := tx.bounded(ctx, "folders", "dynamic_secrets", "folder_id", s.FolderID, dynamic.MaxPerFolder, dynamic.TooManyInFolder); err != nil {
			return err
		}
		if _, err := tx.exec(ctx, `INSERT INTO dynamic_secrets (`+dynCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			s.ID, s.ProjectID, s.FolderID, s.Name, s.Type, s.SealedInputs, s.DefaultTTL, s.MaxTTL, s.UsernameTemplate,
			metadataJSON(s.Metadata), s.Status, s.StatusDetails, ts(s.CreatedAt), ts(s.UpdatedAt)); err != nil {
			return dbErr(err, "CreateDynamicSecret")
		}
		return tx.insertAudit(ctx, ev)
	})
}

// DynamicSecretByName finds a folder's dynamic secret.
func (db *DB) DynamicSecretByName(ctx context.Context, folderID, name string) (dynamic.SealedSecret, error) {
	s, err := scanDyn(db.readRow(ctx, `SELECT `+dynCols+` FROM dynamic_secrets WHERE folder_id = ? AND name = ?`, folderID, name))
	return s, dbErr(err, "DynamicSecretByName")
}

// DynamicSecretByID finds a dynamic secret.
func (db *DB) DynamicSecretByID(ctx context.Context, id string) (dynamic.SealedSecret, error) {
	s, err := scanDyn(db.readRow(ctx, `SELECT `+dynCols+` FROM dynamic_secrets WHERE id = ?`, id))
	return s, dbErr(err, "DynamicSecretByID")
}

// DynamicSecrets lists a folder's dynamic secrets by name.
func (db *DB) DynamicSecrets(ctx context.Context, folderID string) ([]dynamic.SealedSecret, error) {
	rows, err := db.readq(ctx, `SELECT `+dynCols+` FROM dynamic_secrets WHERE folder_id = ? ORDER BY name`, folderID)
	if err != nil {
		return nil, dbErr(err, "DynamicSecrets")
	}
	defer rows.Close()
	var out []dynamic.SealedSecret
	for rows.Next() {
		s, err := scanDyn(rows)
		if err != nil {
			return nil, dbErr(err, "scan dynamic secret")
		}
		out = append(out, s)
	}
	return out, dbErr(rows.Err(), "DynamicSecrets")
}

// UpdateDynamicSecret writes a dynamic secret.
func (db *DB) UpdateDynamicSecret(ctx context.Context, s dynamic.SealedSecret, prev time.Time, retarget bool, ev audit.Event) error {
	return db.Transact(ctx, func(tx *Tx) error {
		if err := tx.lockDynamicSecret(ctx, s.ID); err != nil {
			return err
		}
		if retarget {
			if err := tx.noLeasesLeft(ctx, s.ID); err != nil {
				return err
			}
		}
		res, err := tx.exec(ctx, `UPDATE dynamic_secrets SET name = ?, inputs = ?, default_ttl = ?, max_ttl = ?, username_template = ?,
			metadata = ?, status = ?, status_details = ?, updated_at = ? WHERE id = ? AND updated_at = ?`, s.Name, s.SealedInputs, s.DefaultTTL, s.MaxTTL,
			s.UsernameTemplate, metadataJSON(s.Metadata), s.Status, s.StatusDetails, ts(s.UpdatedAt), s.ID, ts(prev))
		if err := staleIfNone(res, err, "UpdateDynamicSecret"); err != nil {
			return err
		}
		return tx.insertAudit(ctx, ev)
	})
}

// noLeasesLeft refuses (dynamic.ErrLeasesLeft) while a dynamic secret has a
// lease not revoked or a cleanup pending: a principal in its target that
// only its current inputs can reach.
func (tx *Tx) noLeasesLeft(ctx context.Context, id string) error {
	var left bool
	if err := tx.queryRow(ctx, `SELECT EXISTS (SELECT 1 FROM dynamic_leases WHERE dynamic_secret_id = ? AND status <> 'revoked')
		OR EXISTS (SELECT 1 FROM dynamic_cleanups WHERE dynamic_secret_id = ?)`, id, id).Scan(&left); err != nil {
		return dbErr(err, "leases left")
	}
	if left {
		return dynamic.ErrLeasesLeft
	}
	return nil
}

// DeleteDynamicSecret deletes a dynamic secret and its lease rows. It locks
// the dynamic secret's row first, as InsertLease does, so no lease can be
// added meanwhile; unless forced, a lease not revoked or a cleanup still
// pending (added since the caller revoked and dropped) refuses the deletion
// (dynamic.ErrLeasesLeft): deleting its row would orphan its principal.
func (db *DB) DeleteDynamicSecret(ctx context.Context, id string, forced bool, ev audit.Event) error {
	return db.Transact(ctx, func(tx *Tx) error {
		if err := tx.lockDynamicSecret(ctx, id); err != nil {
			return err
		}
		if !forced {
			if err := tx.noLeasesLeft(ctx, id); err != nil {
				return err
			}
		}
		if _, err := tx.exec(ctx, `DELETE FROM dynamic_cleanups WHERE dynamic_secret_id = ?`, id); err != nil {
			return dbErr(err, "delete cleanups")
		}
		if _, err := tx.exec(ctx, `DELETE FROM dynamic_leases WHERE dynamic_secret_id = ?`, id); err != nil {
			return dbErr(err, "delete leases")
		}
		if _, err := tx.exec(ctx, `DELETE FROM dynamic_secrets WHERE id = ?`, id); err != nil {
			return dbErr(err, "DeleteDynamicSecret")
		}
		return tx.insertAudit(ctx, ev)
	})
}

// dropDynamicSecrets readies the deletion of the dynamic secrets that match
// cond (a condition on dynamic_secrets' columns, with args) by a folder's,
// an environment's or a project's deletion: it locks their rows, as
// InsertLease does, so no lease is added meanwhile; refuses with
// project.LeasesLeftError if one has a lease not revoked or a user still to
// drop (a cleanup: deleting its row would orphan that principal in the
// target); and otherwise deletes their leases' rows, all revoked, which
// would keep the secrets' rows (no cascade). The cascade deletes the
// secrets themselves.
func (tx *Tx) dropDynamicSecrets(ctx context.Context, cond string, args ...any) error {
	ids, err := scanIDs(tx.query(ctx, `SELECT id FROM dynamic_secrets WHERE `+cond+` ORDER BY id`+tx.db.forUpdate(), args...))
	if err != nil || len(ids) == 0 {
		return dbErr(err, "lock dynamic secrets")
	}
	in := `SELECT id FROM dynamic_secrets WHERE ` + cond
	var left int
	if err := tx.queryRow(ctx, `SELECT COUNT(*) FROM dynamic_secrets d WHERE `+cond+` AND (
		EXISTS (SELECT 1 FROM dynamic_leases l WHERE l.dynamic_secret_id = d.id AND l.status <> 'revoked')
		OR EXISTS (SELECT 1 FROM dynamic_cleanups c WHERE c.dynamic_secret_id = d.id))`, args...).Scan(&left); err != nil {
		return dbErr(err, "leases left")
	}
	if left > 0 {
		return &project.LeasesLeftError{Secrets: left}
	}
	_, err = tx.exec(ctx, `DELETE FROM dynamic_leases WHERE dynamic_secret_id IN (`+in+`)`, args...)
	return dbErr(err, "delete leases")
}

const leaseCols = `id, dynamic_secret_id, project_id, username, data, config, status, status_details, expire_at, due_at, attempts, created_at, updated_at`

func scanLease(sc interface{ Scan(...any) error }) (dynamic.SealedLease, error) {
	var l dynamic.SealedLease
	var cfg string
	err := sc.Scan(&l.ID, &l.DynamicSecretID, &l.ProjectID, &l.Username, &l.SealedData, &cfg, &l.Status, &l.StatusDetails,
		timeCol{&l.ExpireAt}, timeCol{&l.DueAt}, &l.Attempts, timeCol{&l.CreatedAt}, timeCol{&l.UpdatedAt})
	l.Config = json.RawMessage(cfg)
	return l, err
}

// lockDynamicSecret locks a dynamic secret's row for the rest of the
// transaction (PostgreSQL; SQLite's one writer serialises the rest): lease
// inserts and the secret's deletion take it, so they wait for each other.
// errs.NotFound if the secret is gone.
func (tx *Tx) lockDynamicSecret(ctx context.Context, id string) error {
	var locked string
	err := tx.queryRow(ctx, `SELECT id FROM dynamic_secrets WHERE id = ?`+tx.db.forUpdate(), id).Scan(&locked)
	return dbErr(err, "lock dynamic secret")
}

// InsertLease commits a new lease row (state creating) with its audit event,
// unless the dynamic secret already has limit leases not revoked
// (dynamic.ErrLeaseLimit; limit < 1: none). The dynamic secret's row is
// locked first (PostgreSQL; SQLite's one writer serialises the rest), so
// concurrent inserts count each other and a deleted secret gets none.
func (db *DB) InsertLease(ctx context.Context, l dynamic.SealedLease, limit int, ev audit.Event) error {
	return db.transactQuiet(ctx, func(tx *Tx) error {
		if l.SecretStamp.IsZero() {
			if err := tx.lockDynamicSecret(ctx, l.DynamicSecretID); err != nil {
				return err
			}
		} else {
			// Locked and compared in one read.
			var same bool
			if err := tx.queryRow(ctx, `SELECT updated_at = ? FROM dynamic_secrets WHERE id = ?`+tx.db.forUpdate(),
				ts(l.SecretStamp), l.DynamicSecretID).Scan(&same); err != nil {
				return dbErr(err, "lock dynamic secret")
			}
			if !same {
				return project.ErrStale
			}
		}
		if limit > 0 {
			// Counted by the partial index dynamic_leases_secret_due, and no
			// further than the limit.
			var n int
			if err := tx.queryRow(ctx, `SELECT COUNT(*) FROM (SELECT 1 FROM dynamic_leases
				WHERE dynamic_secret_id = ? AND status <> 'revoked' LIMIT ?) live`, l.DynamicSecretID, limit).Scan(&n); err != nil {
				return dbErr(err, "count leases")
			}
			if n >= limit {
				return dynamic.ErrLeaseLimit
			}
		}
		if _, err := tx.exec(ctx, `INSERT INTO dynamic_leases (`+leaseCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?, ?)`,
			l.ID, l.DynamicSecretID, l.ProjectID, l.Username, l.SealedData, string(l.Config), l.Status, l.StatusDetails,
			ts(l.ExpireAt), ts(l.DueAt), ts(l.CreatedAt), ts(l.UpdatedAt)); err != nil {
			return dbErr(err, "InsertLease")
		}
		return tx.insertAudit(ctx, ev)
	})
}

// ActivateLease stores the credentials and makes a creating lease active,
// due at expiry. It reports false if the lease is no longer creating (the
// worker took it as abandoned).
func (db *DB) ActivateLease(ctx context.Context, id string, data []byte, dueAt time.Time) (bool, error) {
	now := db.Now()
	res, err := db.execQuiet(ctx, `UPDATE dynamic_leases SET status = 'active', data = ?, due_at = ?, updated_at = ? WHERE id = ? AND status = 'creating'`,
		data, ts(dueAt), ts(now), id)
	if err != nil {
		return false, dbErr(err, "ActivateLease")
	}
	n, _ := res.RowsAffected()
	return n == 1, nil
}

// LeaseByID finds a lease.
func (db *DB) LeaseByID(ctx context.Context, id string) (dynamic.SealedLease, error) {
	l, err := scanLease(db.readRow(ctx, `SELECT `+leaseCols+` FROM dynamic_leases WHERE id = ?`, id))
	return l, dbErr(err, "LeaseByID")
}

// Leases lists a dynamic secret's leases that are not revoked, oldest first.
func (db *DB) Leases(ctx context.Context, dynamicSecretID string) ([]dynamic.SealedLease, error) {
	rows, err := db.readq(ctx, `SELECT `+leaseCols+` FROM dynamic_leases WHERE dynamic_secret_id = ? AND status <> 'revoked' ORDER BY created_at, id`, dynamicSecretID)
	if err != nil {
		return nil, dbErr(err, "Leases")
	}
	defer rows.Close()
	var out []dynamic.SealedLease
	for rows.Next() {
		l, err := scanLease(rows)
		if err != nil {
			return nil, dbErr(err, "scan lease")
		}
		out = append(out, l)
	}
	return out, dbErr(rows.Err(), "Leases")
}

// RenewLease moves an active lease's expiry and due time from from to
// expireAt; a lease no longer active or no longer expiring at from is NotFound.
func (db *DB) RenewLease(ctx context.Context, id string, from, expireAt time.Time, ev audit.Event) error {
	return db.transactQuiet(ctx, func(tx *Tx) error {
		res, err := tx.exec(ctx, `UPDATE dynamic_leases SET expire_at = ?, due_at = ?, updated_at = ?
			WHERE id = ? AND status = 'active' AND expire_at = ?`,
			ts(expireAt), ts(expireAt), ts(tx.Now), id, ts(from))
		if err != nil {
			return dbErr(err, "RenewLease")
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return dbErr(errNoRows, "RenewLease")
		}
		return tx.insertAudit(ctx, ev)
	})
}

// ClaimLease marks one live lease revoking until claimUntil.
func (db *DB) ClaimLease(ctx context.Context, id string, claimUntil time.Time) (bool, error) {
	now := db.Now()
	res, err := db.execQuiet(ctx, `UPDATE dynamic_leases SET status = 'revoking', due_at = ?, updated_at = ?
		WHERE id = ? AND (status IN ('creating', 'active', 'revoke_failed') OR status = 'revoking' AND due_at <= ?)`,
		ts(claimUntil), ts(now), id, ts(now))
	if err != nil {
		return false, dbErr(err, "ClaimLease")
	}
	n, _ := res.RowsAffected()
	return n == 1, nil
}

// ClaimLeases claims those of the listed leases that are live and not
// claimed (creating, active, revoke_failed, or revoking whose claim ran out)
// until claimUntil, as ClaimLease does one, in one statement; it returns the
// ids it claimed.
func (db *DB) ClaimLeases(ctx context.Context, ids []string, claimUntil time.Time) ([]string, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	var claimed []string
	err := db.transactQuiet(ctx, func(tx *Tx) error {
		var err error
		claimed, err = scanIDs(tx.query(ctx, `UPDATE dynamic_leases SET status = 'revoking', due_at = ?, updated_at = ?
			WHERE (status IN ('creating', 'active', 'revoke_failed') OR status = 'revoking' AND due_at <= ?)
			AND id IN (`+placeholders(len(ids))+`) RETURNING id`,
			withIDs([]any{ts(claimUntil), ts(tx.Now), ts(tx.Now)}, ids)...))
		return dbErr(err, "ClaimLeases")
	})
	return claimed, err
}

// qDueLeases selects the ids of a dynamic secret's leases due at a time, up
// to a limit, longest due first (index dynamic_leases_secret_due).
const qDueLeases = `SELECT id FROM dynamic_leases WHERE dynamic_secret_id = ? AND status <> 'revoked' AND due_at <= ?
	ORDER BY due_at LIMIT ?`

// claimLeasesSQL is ClaimDueLeases' statement; its arguments are the claim's
// end, the time, the dynamic secret, the time again and the limit. On
// PostgreSQL the ids come as one array (= ANY(ARRAY(...))), looked up by
// primary key. Given them as an IN subquery, PostgreSQL planned a claim of
// 1,000 (a burst) as a hash join on a sequential scan of the whole table,
// revoked leases included, which are kept until their dynamic secret is
// deleted: 48 ms a claim with 200,000 of them against 10 ms, and growing
// with them (TestPGLeaseClaimReadsNoRevokedLease). SQLite looks each id up.
func (db *DB) claimLeasesSQL() string {
	ids := `IN (` + qDueLeases + `)`
	if db.dialect == Postgres {
		ids = `= ANY(ARRAY(` + qDueLeases + db.skipLocked() + `))`
	}
	return `UPDATE dynamic_leases SET status = 'revoking', due_at = ?, updated_at = ? WHERE id ` + ids + ` RETURNING ` + leaseCols
}

// ClaimDueLeases takes up to limit leases of one dynamic secret whose due
// time has passed and marks them revoking until claimUntil, so no other node
// takes them meanwhile; a node that dies mid-revocation leaves claims that
// expire and are retaken.
func (db *DB) ClaimDueLeases(ctx context.Context, dynamicSecretID string, now, claimUntil time.Time, limit int) ([]dynamic.SealedLease, error) {
	var out []dynamic.SealedLease
	err := db.transactQuiet(ctx, func(tx *Tx) error {
		out = nil
		rows, err := tx.query(ctx, db.claimLeasesSQL(), ts(claimUntil), ts(now), dynamicSecretID, ts(now), limit)
		if err != nil {
			return dbErr(err, "ClaimDueLeases")
		}
		defer rows.Close()
		for rows.Next() {
			l, err := scanLease(rows)
			if err != nil {
				return dbErr(err, "scan claimed lease")
			}
			out = append(out, l)
		}
		return dbErr(rows.Err(), "ClaimDueLeases")
	})
	return out, err
}

// ExtendClaims moves the claim of those listed leases that are still being
// revoked under the claim ending at from to end at to. It leaves updated_at:
// only outcomes stamp it. On PostgreSQL a locked lease is skipped (SKIP
// LOCKED): it is being recorded, or claimed by another node, and waiting for
// it could deadlock with the record's own update.
func (db *DB) ExtendClaims(ctx context.Context, ids []string, from, to time.Time) error {
	if len(ids) == 0 {
		return nil
	}
	args := append(withIDs([]any{ts(to)}, ids), ts(from))
	sel := `SELECT id FROM dynamic_leases WHERE id IN (` + placeholders(len(ids)) + `) AND status = 'revoking' AND due_at = ?`
	q := `UPDATE dynamic_leases SET due_at = ? WHERE id IN (` + sel + `)`
	if db.dialect == Postgres {
		q = `UPDATE dynamic_leases SET due_at = ? WHERE id = ANY(ARRAY(` + sel + db.skipLocked() + `))`
	}
	_, err := db.execQuiet(ctx, q, args...)
	return dbErr(err, "ExtendClaims")
}

// DueSecrets lists up to limit dynamic secrets, other than except, that have
// leases due at now, the one with the longest-due lease first.
func (db *DB) DueSecrets(ctx context.Context, now time.Time, except []string, limit int) ([]string, error) {
	args := []any{ts(now)}
	for _, id := range except {
		args = append(args, id)
	}
	args = append(args, limit)
	rows, err := db.readq(ctx, `SELECT dynamic_secret_id FROM dynamic_leases WHERE status <> 'revoked' AND due_at <= ?`+notIn(len(except))+`
		GROUP BY dynamic_secret_id ORDER BY MIN(due_at), dynamic_secret_id LIMIT ?`, args...)
	if err != nil {
		return nil, dbErr(err, "DueSecrets")
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, dbErr(err, "DueSecrets")
		}
		out = append(out, id)
	}
	return out, dbErr(rows.Err(), "DueSecrets")
}

// notIn is the condition that excludes n dynamic secret ids, given as arguments.
func notIn(n int) string {
	if n == 0 {
		return ""
	}
	return ` AND dynamic_secret_id NOT IN (` + strings.TrimSuffix(strings.Repeat("?, ", n), ", ") + `)`
}

// skipLocked lets PostgreSQL workers on several nodes claim disjoint rows;
// SQLite has one writer, so there is nothing to skip.
func (db *DB) skipLocked() string {
	if db.dialect == Postgres {
		return " FOR UPDATE SKIP LOCKED"
	}
	return ""
}

// FinishRevoke records a revocation outcome, with its audit events, and
// reports whether it did. A lease another path revoked meanwhile keeps its
// own record: the outcome and its events are not written.
func (db *DB) FinishRevoke(ctx context.Context, id string, ok bool, details string, retryAt time.Time, evs ...audit.Event) (bool, error) {
	return db.finishRevoke(ctx, "FinishRevoke", id, ok, false, details, retryAt, evs)
}

// ForceRevoked records a forced revocation whose target refused it: the
// lease revoked (with details), and its user queued for cleanup due at
// retryAt, which the worker retries until the user is gone; it reports
// whether it recorded (not if the lease was already revoked).
func (db *DB) ForceRevoked(ctx context.Context, id, details string, retryAt time.Time, evs ...audit.Event) (bool, error) {
	return db.finishRevoke(ctx, "ForceRevoked", id, true, true, details, retryAt, evs)
}

// finishRevoke is FinishRevoke, and with cleanup ForceRevoked.
func (db *DB) finishRevoke(ctx context.Context, op, id string, ok, cleanup bool, details string, retryAt time.Time, evs []audit.Event) (bool, error) {
	changed := false
	err := db.transactQuiet(ctx, func(tx *Tx) error {
		changed = false
		now := tx.Now
		if cleanup {
			// Queued while the lease is still unrevoked (as DisabledMany).
			if _, err := tx.exec(ctx, `INSERT INTO dynamic_cleanups (lease_id, dynamic_secret_id, username, due_at, created_at, last_error)
				SELECT id, dynamic_secret_id, username, ?, ?, ? FROM dynamic_leases WHERE status <> 'revoked' AND id = ?
				ON CONFLICT (lease_id) DO NOTHING`, ts(retryAt), ts(now), details, id); err != nil {
				return dbErr(err, op)
			}
		}
		var res sql.Result
		var err error
		if ok {
			res, err = tx.exec(ctx, `UPDATE dynamic_leases SET status = 'revoked', status_details = ?, data = NULL, updated_at = ?
			WHERE id = ? AND status <> 'revoked'`, details, ts(now), id)
		} else {
			res, err = tx.exec(ctx, `UPDATE dynamic_leases SET status = 'revoke_failed', status_details = ?, attempts = attempts + 1,
			due_at = ?, updated_at = ? WHERE id = ? AND status <> 'revoked'`, details, ts(retryAt), ts(now), id)
		}
		if err != nil {
			return dbErr(err, op)
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			return dbErr(err, op)
		}
		changed = true
		return tx.insertAudits(ctx, evs...)
	})
	return changed && err == nil, err
}

// RevokedMany marks leases revoked in one statement; evs[i] is the audit
// event of ids[i]. A lease another path revoked meanwhile keeps its own
// record, and its event is not written. It returns the ids it marked.
func (db *DB) RevokedMany(ctx context.Context, ids []string, evs []audit.Event) ([]string, error) {
	return db.revokeMany(ctx, "RevokedMany", ids, evs, nil)
}

// DisabledMany marks leases revoked and queues their users' cleanups, in
// one transaction; evs[i] is the audit event of ids[i]. A lease another
// path revoked meanwhile (in one phase) needs no cleanup and keeps its own
// record, and its event is not written. It returns the ids it marked.
func (db *DB) DisabledMany(ctx context.Context, ids []string, evs []audit.Event) ([]string, error) {
	return db.revokeMany(ctx, "DisabledMany", ids, evs, func(tx *Tx) error {
		// The cleanups first, while the leases are still unrevoked.
		_, err := tx.exec(ctx, `INSERT INTO dynamic_cleanups (lease_id, dynamic_secret_id, username, due_at, created_at)
			SELECT id, dynamic_secret_id, username, ?, ? FROM dynamic_leases WHERE status <> 'revoked' AND id IN (`+placeholders(len(ids))+`)
			ON CONFLICT (lease_id) DO NOTHING`, withIDs([]any{ts(tx.Now), ts(tx.Now)}, ids)...)
		return err
	})
}

// revokeMany runs first (if set) and markRevoked in one transaction and
// returns the ids marked (none if it did not commit).
func (db *DB) revokeMany(ctx context.Context, op string, ids []string, evs []audit.Event, first func(*Tx) error) ([]string, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	var marked []string
	err := db.transactQuiet(ctx, func(tx *Tx) error {
		if first != nil {
			if err := first(tx); err != nil {
				return dbErr(err, op)
			}
		}
		var err error
		marked, err = tx.markRevoked(ctx, ids, evs)
		return dbErr(err, op)
	})
	if err != nil {
		return nil, err
	}
	return marked, nil
}

// withIDs is args followed by ids, as statement arguments.
func withIDs(args []any, ids []string) []any {
	for _, id := range ids {
		args = append(args, id)
	}
	return args
}

// markRevoked marks the listed leases revoked, all but those already
// revoked, and appends the audit events of those it changed (evs[i] is
// ids[i]'s); it returns their ids.
func (tx *Tx) markRevoked(ctx context.Context, ids []string, evs []audit.Event) ([]string, error) {
	args := withIDs([]any{ts(tx.Now)}, ids)
	rows, err := tx.query(ctx, `UPDATE dynamic_leases SET status = 'revoked', status_details = '', data = NULL, updated_at = ?
		WHERE status <> 'revoked' AND id IN (`+placeholders(len(ids))+`) RETURNING id`, args...)
	if err != nil {
		return nil, err
	}
	changed := make(map[string]bool, len(ids))
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return nil, err
		}
		changed[id] = true
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	keep := make([]audit.Event, 0, len(changed))
	marked := make([]string, 0, len(changed))
	for i, id := range ids {
		if changed[id] {
			marked = append(marked, id)
			if i < len(evs) {
				keep = append(keep, evs[i])
			}
		}
	}
	return marked, tx.insertAudits(ctx, keep...)
}

const cleanupCols = `lease_id, dynamic_secret_id, username, due_at, attempts, last_error, created_at`

func scanCleanups(rows interface {
	Next() bool
	Scan(...any) error
	Err() error
}) ([]dynamic.Cleanup, error) {
	var out []dynamic.Cleanup
	for rows.Next() {
		var c dynamic.Cleanup
		if err := rows.Scan(&c.LeaseID, &c.DynamicSecretID, &c.Username, timeCol{&c.DueAt}, &c.Attempts, &c.LastError, timeCol{&c.CreatedAt}); err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// ClaimCleanups takes up to limit due cleanups of the dynamic secret with
// the longest-due one and moves them to claimUntil, so no other node takes
// them meanwhile (SKIP LOCKED on PostgreSQL); a node that dies leaves claims
// that come due again.
func (db *DB) ClaimCleanups(ctx context.Context, now, claimUntil time.Time, limit int) ([]dynamic.Cleanup, error) {
	var out []dynamic.Cleanup
	err := db.transactQuiet(ctx, func(tx *Tx) error {
		rows, err := tx.query(ctx, `UPDATE dynamic_cleanups SET due_at = ? WHERE lease_id IN (
			SELECT lease_id FROM dynamic_cleanups WHERE due_at <= ? AND dynamic_secret_id =
				(SELECT dynamic_secret_id FROM dynamic_cleanups WHERE due_at <= ? ORDER BY due_at LIMIT 1)
			ORDER BY due_at LIMIT ?`+db.skipLocked()+`)
			RETURNING `+cleanupCols, ts(claimUntil), ts(now), ts(now), limit)
		if err != nil {
			return dbErr(err, "ClaimCleanups")
		}
		defer rows.Close()
		out, err = scanCleanups(rows)
		return dbErr(err, "ClaimCleanups")
	})
	return out, err
}

// FinishCleanups deletes done cleanups, or reschedules failed ones.
func (db *DB) FinishCleanups(ctx context.Context, leaseIDs []string, ok bool, details string, retryAt time.Time) error {
	if len(leaseIDs) == 0 {
		return nil
	}
	return db.transactQuiet(ctx, func(tx *Tx) error {
		// fillChunk ids a statement: a deletion of a dynamic secret finishes
		// all its pending cleanups at once.
		for chunk := range slices.Chunk(leaseIDs, fillChunk) {
			in := ` WHERE lease_id IN (` + placeholders(len(chunk)) + `)`
			var args []any
			if !ok {
				args = append(args, details, ts(retryAt))
			}
			q := `DELETE FROM dynamic_cleanups` + in
			if !ok {
				q = `UPDATE dynamic_cleanups SET last_error = ?, due_at = ?, attempts = attempts + 1` + in
			}
			if _, err := tx.exec(ctx, q, withIDs(args, chunk)...); err != nil {
				return dbErr(err, "FinishCleanups")
			}
		}
		return nil
	})
}

// Cleanups lists a dynamic secret's pending cleanups, oldest first.
func (db *DB) Cleanups(ctx context.Context, dynamicSecretID string) ([]dynamic.Cleanup, error) {
	rows, err := db.readq(ctx, `SELECT `+cleanupCols+` FROM dynamic_cleanups WHERE dynamic_secret_id = ? ORDER BY created_at, lease_id`, dynamicSecretID)
	if err != nil {
		return nil, dbErr(err, "Cleanups")
	}
	defer rows.Close()
	out, err := scanCleanups(rows)
	return out, dbErr(err, "Cleanups")
}

// NextCleanup is the earliest due time of a cleanup (index dynamic_cleanups_due).
func (db *DB) NextCleanup(ctx context.Context) (time.Time, error) {
	var t time.Time
	err := db.readRow(ctx, `SELECT MIN(due_at) FROM dynamic_cleanups`).Scan(timeCol{&t})
	return t, dbErr(err, "NextCleanup")
}

// NextDue is the earliest due time among live leases of dynamic secrets other than except.
func (db *DB) NextDue(ctx context.Context, except ...string) (time.Time, error) {
	args := make([]any, len(except))
	for i, id := range except {
		args[i] = id
	}
	var t time.Time
	err := db.readRow(ctx, `SELECT MIN(due_at) FROM dynamic_leases WHERE status <> 'revoked'`+notIn(len(except)), args...).Scan(timeCol{&t})
	return t, dbErr(err, "NextDue")
}

// qCountLeases counts the leases in a state other than revoked through the
// partial index of those (dynamic_leases_due): revoked leases stay until
// their dynamic secret is deleted, and /metrics, which anyone may read,
// counted them all on every scrape.
const qCountLeases = `SELECT COUNT(*) FROM dynamic_leases WHERE status <> 'revoked' AND status = ?`

// CountLeases counts leases in a state other than revoked.
func (db *DB) CountLeases(ctx context.Context, status string) (int, error) {
	var n int
	err := db.readRow(ctx, qCountLeases, status).Scan(&n)
	return n, dbErr(err, "CountLeases")
}
