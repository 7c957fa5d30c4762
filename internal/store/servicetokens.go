package store

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/lockbox-dev/lockbox/internal/audit"
	"github.com/lockbox-dev/lockbox/internal/authz"
	"github.com/lockbox-dev/lockbox/internal/errs"
	"github.com/lockbox-dev/lockbox/internal/identity"
)

var _ identity.ServiceTokenStore = (*DB)(nil)

type wireScope struct {
	Environment string `json:"environment"`
	SecretPath  string `json:"secretPath"`
}

const stCols = `t.id, t.project_id, p.org_id, t.name, t.scopes, t.permissions, t.created_by, t.created_by_type,
	t.expires_at, t.last_used, t.created_at, t.updated_at`

func scanST(sc interface{ Scan(...any) error }, extra ...any) (identity.ServiceToken, error) {
	var t identity.ServiceToken
	var scopes, perms string
	dest := append([]any{&t.ID, &t.ProjectID, &t.OrgID, &t.Name, &scopes, &perms, &t.CreatedBy, &t.CreatedByType,
		optTimeCol{&t.ExpiresAt}, optTimeCol{&t.LastUsed}, timeCol{&t.CreatedAt}, timeCol{&t.UpdatedAt}}, extra...)
	if err := sc.Scan(dest...); err != nil {
		return t, err
	}
	var ws []wireScope
	if err := json.Unmarshal([]byte(scopes), &ws); err != nil {
		return t, fmt.Errorf("service token %s scopes: %w", t.ID, err)
	}
	t.Scopes = make([]authz.TokenScope, len(ws))
	for i, w := range ws {
		t.Scopes[i] = authz.TokenScope{Environment: w.Environment, SecretPath: w.SecretPath}
	}
	if err := json.Unmarshal([]byte(perms), &t.Permissions); err != nil {
		return t, fmt.Errorf("service token %s permissions: %w", t.ID, err)
	}
	return t, nil
}

// CreateServiceToken stores a service token with its secret's keyed hash.
func (db *DB) CreateServiceToken(ctx context.Context, t identity.ServiceToken, hash string, ev audit.Event) error {
	ws := make([]wireScope, len(t.Scopes))
	for i, sc := range t.Scopes {
		ws[i] = wireScope{sc.Environment, sc.SecretPath}
	}
	scopes, err := json.Marshal(ws)
	if err != nil {
		return err
	}
	perms, err := json.Marshal(t.Permissions)
	if err != nil {
		return err
	}
	return db.Transact(ctx, func(tx *Tx) error {
		n, err := tx.countUnder(ctx, "projects", "service_tokens", "project_id", t.ProjectID)
		if err != nil {
			return err
		}
		if n >= identity.MaxServiceTokens {
			return errs.BadRequest("A project has at most %d service tokens; delete one first", identity.MaxServiceTokens)
		}
		if _, err := tx.exec(ctx, `INSERT INTO service_tokens (id, project_id, name, scopes, permissions, secret_hash,
			created_by, created_by_type, expires_at, last_used, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, ?, ?)`,
			t.ID, t.ProjectID, t.Name, string(scopes), string(perms), hash, t.CreatedBy, t.CreatedByType,
			tsp(t.ExpiresAt), ts(t.CreatedAt), ts(t.UpdatedAt)); err != nil {
			return dbErr(err, "CreateServiceToken")
		}
		return tx.insertAudit(ctx, ev)
	})
}

// ServiceTokens lists a project's service tokens, newest first.
func (db *DB) ServiceTokens(ctx context.Context, projectID string) ([]identity.ServiceToken, error) {
	rows, err := db.readq(ctx, `SELECT `+stCols+` FROM service_tokens t JOIN projects p ON p.id = t.project_id
		WHERE t.project_id = ? ORDER BY t.created_at DESC, t.id DESC`, projectID)
	if err != nil {
		return nil, dbErr(err, "ServiceTokens")
	}
	defer rows.Close()
	out := []identity.ServiceToken{}
	for rows.Next() {
		t, err := scanST(rows)
		if err != nil {
			return nil, dbErr(err, "scan service token")
		}
		out = append(out, t)
	}
	return out, dbErr(rows.Err(), "ServiceTokens")
}

const qServiceTokenByID = `SELECT ` + stCols + `, t.secret_hash FROM service_tokens t
	JOIN projects p ON p.id = t.project_id WHERE t.id = ?`

// ServiceTokenByID returns a service token and its secret's keyed hash.
func (db *DB) ServiceTokenByID(ctx context.Context, id string) (identity.ServiceToken, string, error) {
	var hash string
	t, err := scanST(db.readRow(ctx, qServiceTokenByID, id), &hash)
	return t, hash, dbErr(err, "ServiceTokenByID")
}

// DeleteServiceToken removes a service token and records ev, in one transaction.
func (db *DB) DeleteServiceToken(ctx context.Context, id string, ev audit.Event) error {
	return db.Transact(ctx, func(tx *Tx) error {
		res, err := tx.exec(ctx, `DELETE FROM service_tokens WHERE id = ?`, id)
		if err != nil {
			return dbErr(err, "DeleteServiceToken")
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return dbErr(errNoRows, "DeleteServiceToken")
		}
		return tx.insertAudit(ctx, ev)
	})
}
