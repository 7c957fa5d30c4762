package store

import (
	"context"
	"encoding/json"
	"time"

	"github.com/lockbox-dev/lockbox/internal/appconn"
	"github.com/lockbox-dev/lockbox/internal/audit"
	"github.com/lockbox-dev/lockbox/internal/errs"
)

var _ appconn.Store = (*DB)(nil)

const appConnCols = `id, org_id, app, method, name, description, config, rotation_principals, version, created_at, updated_at, credentials`

func scanAppConn(sc interface{ Scan(...any) error }) (appconn.Connection, []byte, error) {
	var c appconn.Connection
	var config, principals string
	var sealed []byte
	err := sc.Scan(&c.ID, &c.OrgID, &c.App, &c.Method, &c.Name, &c.Description, &config, &principals, &c.Version,
		timeCol{&c.CreatedAt}, timeCol{&c.UpdatedAt}, &sealed)
	if err == nil {
		c.CredentialsHash = appconn.HashSealed(sealed)
		if jerr := json.Unmarshal([]byte(config), &c.Credentials); jerr != nil {
			return c, nil, errs.Internalf(jerr, "decode app connection config")
		}
		if jerr := json.Unmarshal([]byte(principals), &c.RotationPrincipals); jerr != nil {
			return c, nil, errs.Internalf(jerr, "decode app connection rotation principals")
		}
	}
	return c, sealed, err
}

func appConnConfig(c appconn.Connection) string {
	b, _ := json.Marshal(c.Credentials.Public())
	return string(b)
}

func appConnPrincipals(c appconn.Connection) string {
	if len(c.RotationPrincipals) == 0 {
		return "[]"
	}
	b, _ := json.Marshal(c.RotationPrincipals)
	return string(b)
}

// CreateAppConnection stores c with ev.
func (db *DB) CreateAppConnection(ctx context.Context, c appconn.Connection, sealed []byte, ev audit.Event) error {
	return db.Transact(ctx, func(tx *Tx) error {
		if _, err := tx.exec(ctx, `INSERT INTO app_connections (`+appConnCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			c.ID, c.OrgID, c.App, c.Method, c.Name, c.Description, appConnConfig(c), appConnPrincipals(c), c.Version,
			ts(c.CreatedAt), ts(c.UpdatedAt), sealed); err != nil {
			return dbErr(err, "CreateAppConnection")
		}
		return tx.insertAudit(ctx, ev)
	})
}

// AppConnection finds a connection by id.
func (db *DB) AppConnection(ctx context.Context, id string) (appconn.Connection, []byte, error) {
	c, sealed, err := scanAppConn(db.readRow(ctx, `SELECT `+appConnCols+` FROM app_connections WHERE id = ?`, id))
	return c, sealed, dbErr(err, "AppConnection")
}

// AppConnectionByName finds an org's connection by name.
func (db *DB) AppConnectionByName(ctx context.Context, orgID, name string) (appconn.Connection, []byte, error) {
	c, sealed, err := scanAppConn(db.readRow(ctx, `SELECT `+appConnCols+` FROM app_connections WHERE org_id = ? AND name = ?`, orgID, name))
	return c, sealed, dbErr(err, "AppConnectionByName")
}

// AppConnections lists an org's connections of app (empty: all) by name.
func (db *DB) AppConnections(ctx context.Context, orgID, app string) ([]appconn.Connection, error) {
	q, args := `SELECT `+appConnCols+` FROM app_connections WHERE org_id = ?`, []any{orgID}
	if app != "" {
		q, args = q+` AND app = ?`, append(args, app)
	}
	rows, err := db.readq(ctx, q+` ORDER BY name, id LIMIT 1000`, args...)
	if err != nil {
		return nil, dbErr(err, "AppConnections")
	}
	defer rows.Close()
	out := []appconn.Connection{}
	for rows.Next() {
		c, _, err := scanAppConn(rows)
		if err != nil {
			return nil, dbErr(err, "scan app connection")
		}
		out = append(out, c)
	}
	return out, dbErr(rows.Err(), "AppConnections")
}

// UpdateAppConnection writes c's changeable columns with ev.
// The row must still be stamped prev (compare-and-set).
func (db *DB) UpdateAppConnection(ctx context.Context, c appconn.Connection, prev time.Time, sealed []byte, ev audit.Event) error {
	return db.Transact(ctx, func(tx *Tx) error {
		// Another server, while rotations use it: their principals are the
		// old server's, and one-principal-one-rotation is judged per server
		// when a rotation is made (a repointed connection would let two
		// rotations manage one account).
		old, _, err := scanAppConn(tx.queryRow(ctx, `SELECT `+appConnCols+` FROM app_connections WHERE id = ?`+db.forUpdate(), c.ID))
		if err != nil {
			return dbErr(err, "UpdateAppConnection")
		}
		if !appconn.SameTarget(old, c) {
			var n int
			if err := tx.queryRow(ctx, `SELECT COUNT(*) FROM secret_rotations WHERE connection_id = ?`, c.ID).Scan(&n); err != nil {
				return dbErr(err, "UpdateAppConnection")
			}
			if n > 0 {
				return errs.BadRequest("%d secret rotations use this connection; delete them before pointing it at another server", n)
			}
		}
		res, err := tx.exec(ctx, `UPDATE app_connections SET name = ?, description = ?, config = ?, rotation_principals = ?, credentials = ?, version = ?, updated_at = ?
			WHERE id = ? AND updated_at = ?`, c.Name, c.Description, appConnConfig(c), appConnPrincipals(c), sealed, c.Version, ts(c.UpdatedAt), c.ID, ts(prev))
		if err := staleIfNone(res, err, "UpdateAppConnection"); err != nil {
			return err
		}
		return tx.insertAudit(ctx, ev)
	})
}

// DeleteAppConnection deletes a connection no rotation uses.
func (db *DB) DeleteAppConnection(ctx context.Context, id string, ev audit.Event) error {
	return db.Transact(ctx, func(tx *Tx) error {
		var n int
		if err := tx.queryRow(ctx, `SELECT COUNT(*) FROM secret_rotations WHERE connection_id = ?`, id).Scan(&n); err != nil {
			return dbErr(err, "DeleteAppConnection")
		}
		if n > 0 {
			return errs.Conflictf("the connection is in use")
		}
		res, err := tx.exec(ctx, `DELETE FROM app_connections WHERE id = ?`, id)
		if err != nil {
			return dbErr(err, "DeleteAppConnection")
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return dbErr(errNoRows, "DeleteAppConnection")
		}
		return tx.insertAudit(ctx, ev)
	})
}
