package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/lockbox-dev/lockbox/internal/appconn"
	"github.com/lockbox-dev/lockbox/internal/audit"
	"github.com/lockbox-dev/lockbox/internal/errs"
	"github.com/lockbox-dev/lockbox/internal/rotation"
)

var _ rotation.Store = (*DB)(nil)

const rotCols = `r.id, r.org_id, r.project_id, r.connection_id, r.type, r.name, r.description, r.environment, r.secret_path,
	r.parameters, r.secrets_mapping, r.auto_rotate, r.rotation_interval, r.rotate_at_hours, r.rotate_at_minutes,
	r.active_index, r.credentials, r.pending_password, r.pending_index, r.status, r.last_message, r.last_rotated_at,
	r.last_attempted_at, r.last_manual, r.next_rotation_at, r.due_at, r.attempts, r.claimed_by, r.rotations,
	r.created_at, r.updated_at, c.app, c.name`

const rotFrom = ` FROM secret_rotations r JOIN app_connections c ON c.id = r.connection_id`

type rotParams struct {
	Username1       string `json:"username1,omitempty"`
	Username2       string `json:"username2,omitempty"`
	DN              string `json:"dn,omitempty"`
	PermissionScope string `json:"permissionScope,omitempty"`
	// Stored with the domain type's field names.
	PasswordRequirements *rotation.PasswordRequirements `json:"passwordRequirements,omitempty"`
}

type rotMapping struct {
	Username string `json:"username,omitempty"`
	Password string `json:"password,omitempty"`
	DN       string `json:"dn,omitempty"`
}

func scanRotation(sc interface{ Scan(...any) error }) (rotation.State, error) {
	var st rotation.State
	r := &st.Rotation
	var params, mapping string
	err := sc.Scan(&r.ID, &r.OrgID, &r.ProjectID, &r.ConnectionID, &r.Type, &r.Name, &r.Description, &r.Environment, &r.SecretPath,
		&params, &mapping, &r.AutoRotate, &r.IntervalDays, &r.RotateAtHours, &r.RotateAtMinutes,
		&r.ActiveIndex, &st.Credentials, &st.Pending, &st.PendingIndex, &r.Status, &r.LastMessage, optTimeCol{&r.LastRotatedAt},
		optTimeCol{&r.LastAttemptedAt}, &r.LastManual, optTimeCol{&r.NextRotationAt}, optTimeCol{&st.DueAt}, &r.Attempts, &st.Claim, &r.Rotations,
		timeCol{&r.CreatedAt}, timeCol{&r.UpdatedAt}, &r.ConnectionApp, &r.ConnectionName)
	if err != nil {
		return st, err
	}
	var p rotParams
	var m rotMapping
	if err := json.Unmarshal([]byte(params), &p); err != nil {
		return st, errs.Internalf(err, "decode rotation parameters")
	}
	if err := json.Unmarshal([]byte(mapping), &m); err != nil {
		return st, errs.Internalf(err, "decode rotation mapping")
	}
	r.Parameters = rotation.Parameters(p)
	r.Mapping = rotation.Mapping(m)
	return st, nil
}

func rotationJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// CreateRotation stores st with ev. free, when set, is given the other
// rotations on st's connection's server (through it or another of the
// organization's connections to the same app, host and port:
// appconn.SameTarget) as they are in the transaction, the organization's
// connections of that app locked (PostgreSQL, in id order; SQLite has one
// writer): two creates of rotations of one principal on one server cannot
// both pass it, nor a connection made or repointed to the server meanwhile
// escape it.
func (db *DB) CreateRotation(ctx context.Context, st rotation.State, ev audit.Event, free func(others []rotation.State) error) error {
	r := st.Rotation
	return db.Transact(ctx, func(tx *Tx) error {
		if err := tx.mappingFree(ctx, r); err != nil {
			return err
		}
		if free != nil {
			rows, err := tx.query(ctx, `SELECT `+appConnCols+` FROM app_connections
				WHERE org_id = ? AND app = (SELECT app FROM app_connections WHERE id = ?) ORDER BY id`+db.forUpdate(), r.OrgID, r.ConnectionID)
			if err != nil {
				return dbErr(err, "CreateRotation")
			}
			var conns []appconn.Connection
			for rows.Next() {
				c, _, err := scanAppConn(rows)
				if err != nil {
					rows.Close()
					return dbErr(err, "CreateRotation")
				}
				conns = append(conns, c)
			}
			rows.Close()
			if err := rows.Err(); err != nil {
				return dbErr(err, "CreateRotation")
			}
			own := slices.IndexFunc(conns, func(c appconn.Connection) bool { return c.ID == r.ConnectionID })
			if own < 0 {
				return dbErr(sql.ErrNoRows, "CreateRotation")
			}
			var ids []string
			for _, c := range conns {
				if appconn.SameTarget(conns[own], c) {
					ids = append(ids, c.ID)
				}
			}
			rows, err = tx.query(ctx, `SELECT `+rotCols+rotFrom+` WHERE r.connection_id IN (`+placeholders(len(ids))+`)`, withIDs(nil, ids)...)
			if err != nil {
				return dbErr(err, "CreateRotation")
			}
			others, err := scanRotations(rows, "CreateRotation")
			if err != nil {
				return err
			}
			if err := free(others); err != nil {
				return err
			}
		}
		if _, err := tx.exec(ctx, `INSERT INTO secret_rotations (id, org_id, project_id, connection_id, type, name, description,
			environment, secret_path, parameters, secrets_mapping, auto_rotate, rotation_interval, rotate_at_hours, rotate_at_minutes,
			active_index, status, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			r.ID, r.OrgID, r.ProjectID, r.ConnectionID, r.Type, r.Name, r.Description, r.Environment, r.SecretPath,
			rotationJSON(rotParams(r.Parameters)), rotationJSON(rotMapping(r.Mapping)), r.AutoRotate, r.IntervalDays, r.RotateAtHours, r.RotateAtMinutes,
			r.ActiveIndex, r.Status, ts(r.CreatedAt), ts(r.UpdatedAt)); err != nil {
			return dbErr(err, "CreateRotation")
		}
		return tx.insertAudit(ctx, ev)
	})
}

// RotationsOfConnection lists the rotations that use a connection, in any
// project of its organization.
func (db *DB) RotationsOfConnection(ctx context.Context, connectionID string) ([]rotation.State, error) {
	return db.rotations(ctx, "RotationsOfConnection", ` WHERE r.connection_id = ? ORDER BY r.created_at, r.id`, connectionID)
}

// Rotation finds a rotation by id.
func (db *DB) Rotation(ctx context.Context, id string) (rotation.State, error) {
	st, err := scanRotation(db.readRow(ctx, `SELECT `+rotCols+rotFrom+` WHERE r.id = ?`, id))
	return st, dbErr(err, "Rotation")
}

// Rotations lists a project's rotations of typ (empty: all).
func (db *DB) Rotations(ctx context.Context, projectID, typ string) ([]rotation.State, error) {
	q, args := ` WHERE r.project_id = ?`, []any{projectID}
	if typ != "" {
		q, args = q+` AND r.type = ?`, append(args, typ)
	}
	return db.rotations(ctx, "Rotations", q+` ORDER BY r.name, r.id LIMIT 1000`, args...)
}

// rotations reads the rotations a WHERE (and ORDER) clause selects.
func (db *DB) rotations(ctx context.Context, op, where string, args ...any) ([]rotation.State, error) {
	rows, err := db.readq(ctx, `SELECT `+rotCols+rotFrom+where, args...)
	if err != nil {
		return nil, dbErr(err, op)
	}
	return scanRotations(rows, op)
}

// scanRotations reads rows of rotCols and closes them.
func scanRotations(rows *sql.Rows, op string) ([]rotation.State, error) {
	defer rows.Close()
	var out []rotation.State
	for rows.Next() {
		st, err := scanRotation(rows)
		if err != nil {
			return nil, dbErr(err, "scan rotation")
		}
		out = append(out, st)
	}
	return out, dbErr(rows.Err(), op)
}

// UpdateRotation writes r's settings and due time with ev.
func (db *DB) UpdateRotation(ctx context.Context, r rotation.Rotation, dueAt *time.Time, ev audit.Event) error {
	return db.Transact(ctx, func(tx *Tx) error {
		// A remapping is checked (mappingFree); other settings are not held
		// up by what the rotation already writes.
		var stored string
		if err := tx.queryRow(ctx, `SELECT secrets_mapping FROM secret_rotations WHERE id = ?`, r.ID).Scan(&stored); err != nil {
			return dbErr(err, "UpdateRotation")
		}
		if stored != rotationJSON(rotMapping(r.Mapping)) {
			if err := tx.mappingFree(ctx, r); err != nil {
				return err
			}
		}
		res, err := tx.exec(ctx, `UPDATE secret_rotations SET name = ?, description = ?, secrets_mapping = ?, auto_rotate = ?,
			rotation_interval = ?, rotate_at_hours = ?, rotate_at_minutes = ?, next_rotation_at = ?, due_at = ?, updated_at = ? WHERE id = ?`,
			r.Name, r.Description, rotationJSON(rotMapping(r.Mapping)), r.AutoRotate, r.IntervalDays, r.RotateAtHours, r.RotateAtMinutes,
			tsp(r.NextRotationAt), tsp(dueAt), ts(r.UpdatedAt), r.ID)
		if err != nil {
			return dbErr(err, "UpdateRotation")
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return dbErr(errNoRows, "UpdateRotation")
		}
		return tx.insertAudit(ctx, ev)
	})
}

// DeleteRotation deletes a rotation with ev.
func (db *DB) DeleteRotation(ctx context.Context, id string, ev audit.Event) error {
	return db.Transact(ctx, func(tx *Tx) error {
		res, err := tx.exec(ctx, `DELETE FROM secret_rotations WHERE id = ?`, id)
		if err != nil {
			return dbErr(err, "DeleteRotation")
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return dbErr(errNoRows, "DeleteRotation")
		}
		return tx.insertAudit(ctx, ev)
	})
}

// ClaimRotation claims one rotation for a run, unless a live claim holds it.
// A claimed rotation is due when its claim ends (the run that finishes
// moves due_at on), so a run that dies is taken up again, and due_at alone
// (indexed) says when a worker next has work.
func (db *DB) ClaimRotation(ctx context.Context, id, claim string, now, until time.Time) (rotation.State, bool, error) {
	var st rotation.State
	ok := false
	err := db.transactQuiet(ctx, func(tx *Tx) error {
		res, err := tx.exec(ctx, `UPDATE secret_rotations SET claimed_by = ?, claim_until = ?, due_at = ? WHERE id = ? AND claim_until <= ?`,
			claim, ts(until), ts(until), id, ts(now))
		if err != nil {
			return dbErr(err, "ClaimRotation")
		}
		n, _ := res.RowsAffected()
		if ok = n == 1; !ok {
			return nil
		}
		st, err = scanRotation(tx.queryRow(ctx, `SELECT `+rotCols+rotFrom+` WHERE r.id = ?`, id))
		return dbErr(err, "ClaimRotation")
	})
	return st, ok, err
}

// claimedCols are rotCols for UPDATE ... RETURNING, which may not join:
// the connection's app and name come from subqueries.
var claimedCols = strings.NewReplacer("r.", "", "c.app, c.name",
	"(SELECT c.app FROM app_connections c WHERE c.id = secret_rotations.connection_id), "+
		"(SELECT c.name FROM app_connections c WHERE c.id = secret_rotations.connection_id)").Replace(rotCols)

// ClaimDueRotations claims up to limit due rotations no live claim holds, in
// one statement: each gets its own token (a per-call prefix and its id), is
// due again when the claim ends, and comes back whole.
func (db *DB) ClaimDueRotations(ctx context.Context, now, until time.Time, limit int) ([]rotation.State, error) {
	var out []rotation.State
	err := db.transactQuiet(ctx, func(tx *Tx) error {
		out = nil
		rows, err := tx.query(ctx, `UPDATE secret_rotations SET claimed_by = ? || id, claim_until = ?, due_at = ?
			WHERE id IN (SELECT id FROM secret_rotations WHERE due_at <= ? AND claim_until <= ?
				ORDER BY due_at, id LIMIT ?`+db.skipLocked()+`)
			AND due_at <= ? AND claim_until <= ?
			RETURNING `+claimedCols,
			uuid.NewString()+":", ts(until), ts(until), ts(now), ts(now), limit, ts(now), ts(now))
		if err != nil {
			return dbErr(err, "ClaimDueRotations")
		}
		defer rows.Close()
		for rows.Next() {
			st, err := scanRotation(rows)
			if err != nil {
				return dbErr(err, "scan claimed rotation")
			}
			out = append(out, st)
		}
		return dbErr(rows.Err(), "ClaimDueRotations")
	})
	return out, err
}

// NextRotationDue is the earliest due time of any rotation (zero: none).
func (db *DB) NextRotationDue(ctx context.Context) (time.Time, error) {
	var t time.Time
	err := db.readRow(ctx, `SELECT MIN(due_at) FROM secret_rotations WHERE due_at IS NOT NULL`).Scan(timeCol{&t})
	return t, dbErr(err, "NextRotationDue")
}

// SetRotationPending records the password a run is about to set; the
// rotation falls due when the claim ends, so a run that dies is finished.
func (db *DB) SetRotationPending(ctx context.Context, id, claim string, sealed []byte, index int) error {
	res, err := db.execQuiet(ctx, `UPDATE secret_rotations SET pending_password = ?, pending_index = ?, due_at = claim_until WHERE id = ? AND claimed_by = ?`,
		sealed, index, id, claim)
	if err != nil {
		return dbErr(err, "SetRotationPending")
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return errs.Conflictf("the rotation was claimed by another run")
	}
	return nil
}

// FinishRotation records a run's outcome and releases its claim.
func (db *DB) FinishRotation(ctx context.Context, id, claim string, o rotation.Outcome, ev audit.Event) error {
	return db.transactQuiet(ctx, func(tx *Tx) error {
		var res interface{ RowsAffected() (int64, error) }
		var err error
		if o.OK {
			res, err = tx.exec(ctx, `UPDATE secret_rotations SET active_index = ?, credentials = ?, pending_password = NULL,
				status = 'success', last_message = '', last_rotated_at = ?, last_attempted_at = ?, last_manual = ?,
				next_rotation_at = ?, due_at = ?, attempts = 0, rotations = rotations + 1, claimed_by = '', claim_until = 0, updated_at = ?
				WHERE id = ? AND claimed_by = ?`,
				o.ActiveIndex, o.Credentials, ts(o.At), ts(o.At), o.Manual, tsp(o.NextRotationAt), tsp(o.DueAt), ts(o.At), id, claim)
		} else {
			res, err = tx.exec(ctx, `UPDATE secret_rotations SET status = 'failed', last_message = ?, last_attempted_at = ?,
				last_manual = ?, due_at = ?, attempts = attempts + 1, claimed_by = '', claim_until = 0, updated_at = ?
				WHERE id = ? AND claimed_by = ?`,
				o.Message, ts(o.At), o.Manual, tsp(o.DueAt), ts(o.At), id, claim)
		}
		if err != nil {
			return dbErr(err, "FinishRotation")
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return errs.Conflictf("the rotation was claimed by another run")
		}
		return tx.insertAudit(ctx, ev)
	})
}

// RotatedSecrets maps the keys the rotations at projectID/env/path write to
// the rotation's id (the unique index on project, environment, path and
// name finds them).
func (db *DB) RotatedSecrets(ctx context.Context, projectID, env, path string) (map[string]string, error) {
	return rotatedSecrets(db.readq(ctx, qRotatedSecrets, projectID, env, path))
}

const qRotatedSecrets = `SELECT id, secrets_mapping FROM secret_rotations WHERE project_id = ? AND environment = ? AND secret_path = ?`

// mappingFree refuses r's mapping if another rotation at its place writes
// one of its secrets (rotation.MappingTaken), counted under a lock of the
// project's row (PostgreSQL; SQLite has one writer): the service checked
// on what it read, and two creates or updates naming one secret both
// passed that check, leaving two rotations to write it.
func (tx *Tx) mappingFree(ctx context.Context, r rotation.Rotation) error {
	if err := tx.lockRow(ctx, "projects", r.ProjectID); err != nil {
		return err
	}
	// Every other writer of a name counts (a name-to-owner map keeps one
	// of two rotations that already share it, maybe r itself).
	mine := []string{r.Mapping.Username, r.Mapping.DN, r.Mapping.Password}
	taken := ""
	rows, err := tx.query(ctx, qRotatedSecrets, r.ProjectID, r.Environment, r.SecretPath)
	if err := eachRotatedSecret(rows, err, func(id, secret string) {
		if id != r.ID && taken == "" && slices.Contains(mine, secret) {
			taken = secret
		}
	}); err != nil {
		return err
	}
	if taken != "" {
		return rotation.MappingTaken(taken)
	}
	return nil
}

// rotatedSecrets maps the secret names of rows (id, secrets_mapping) to
// their rotation's id.
func rotatedSecrets(rows *sql.Rows, err error) (map[string]string, error) {
	var out map[string]string
	err = eachRotatedSecret(rows, err, func(id, secret string) {
		if out == nil {
			out = map[string]string{}
		}
		out[secret] = id
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// eachRotatedSecret calls fn with each secret name of rows (id,
// secrets_mapping) and its rotation's id.
func eachRotatedSecret(rows *sql.Rows, err error, fn func(id, secret string)) error {
	if err != nil {
		return dbErr(err, "RotatedSecrets")
	}
	defer rows.Close()
	for rows.Next() {
		var id, mapping string
		if err := rows.Scan(&id, &mapping); err != nil {
			return dbErr(err, "RotatedSecrets")
		}
		var m rotMapping
		if err := json.Unmarshal([]byte(mapping), &m); err != nil {
			return errs.Internalf(err, "decode rotation mapping")
		}
		for _, k := range []string{m.Username, m.DN, m.Password} {
			if k != "" {
				fn(id, k)
			}
		}
	}
	return dbErr(rows.Err(), "RotatedSecrets")
}

// ReleaseRotation ends a claim no run used, making the rotation due at
// dueAt again.
func (db *DB) ReleaseRotation(ctx context.Context, id, claim string, dueAt *time.Time) error {
	_, err := db.execQuiet(ctx, `UPDATE secret_rotations SET claimed_by = '', claim_until = 0, due_at = ? WHERE id = ? AND claimed_by = ?`,
		tsp(dueAt), id, claim)
	return dbErr(err, "ReleaseRotation")
}

// RotationByName finds the rotation called name at projectID/env/path (one
// lookup on the unique index).
func (db *DB) RotationByName(ctx context.Context, projectID, env, path, name string) (rotation.State, error) {
	st, err := scanRotation(db.readRow(ctx, `SELECT `+rotCols+rotFrom+` WHERE r.project_id = ? AND r.environment = ? AND r.secret_path = ? AND r.name = ?`,
		projectID, env, path, name))
	return st, dbErr(err, "RotationByName")
}

// RotationsUnder counts the rotations of projectID writing to env at path or
// below it; path "" counts every rotation of env.
func (db *DB) RotationsUnder(ctx context.Context, projectID, env, path string) (int, error) {
	q := `SELECT COUNT(*) FROM secret_rotations WHERE project_id = ? AND environment = ?`
	args := []any{projectID, env}
	if path != "" && path != "/" {
		prefix := strings.TrimSuffix(path, "/") + "/"
		q += fmt.Sprintf(` AND (secret_path = ? OR substr(secret_path, 1, %d) = ?)`, len(prefix))
		args = append(args, strings.TrimSuffix(path, "/"), prefix)
	}
	var n int
	err := db.readRow(ctx, q, args...).Scan(&n)
	return n, dbErr(err, "RotationsUnder")
}
