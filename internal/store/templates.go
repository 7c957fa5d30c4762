package store

import (
	"context"
	"strings"

	"github.com/lockbox-dev/lockbox/internal/audit"
	"github.com/lockbox-dev/lockbox/internal/errs"
	"github.com/lockbox-dev/lockbox/internal/project"
)

var _ project.TemplateStore = (*DB)(nil)

const templateCols = `id, org_id, name, description, type, roles, COALESCE(environments, ''), COALESCE(identities, ''), created_at, updated_at`

func scanProjectTemplate(sc interface{ Scan(...any) error }) (project.Template, error) {
	var t project.Template
	var j project.TemplateJSON
	if err := sc.Scan(&t.ID, &t.OrgID, &t.Name, &t.Description, &t.Type, &j.Roles, &j.Environments, &j.Identities,
		timeCol{&t.CreatedAt}, timeCol{&t.UpdatedAt}); err != nil {
		return t, err
	}
	return t, project.DecodeTemplate(&t, j)
}

// CreateTemplate stores a project template.
func (db *DB) CreateProjectTemplate(ctx context.Context, t project.Template, j project.TemplateJSON, ev audit.Event) error {
	return db.Transact(ctx, func(tx *Tx) error {
		if _, err := tx.exec(ctx, `INSERT INTO project_templates (id, org_id, name, description, type, roles, environments, identities,
			created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, t.ID, t.OrgID, t.Name, t.Description, t.Type, j.Roles,
			nullStr(j.Environments), nullStr(j.Identities), ts(t.CreatedAt), ts(t.UpdatedAt)); err != nil {
			return dbErr(err, "CreateTemplate")
		}
		return tx.insertAudit(ctx, ev)
	})
}

// TemplateByID returns a template by id.
func (db *DB) TemplateByID(ctx context.Context, id string) (project.Template, error) {
	t, err := scanProjectTemplate(db.readRow(ctx, `SELECT `+templateCols+` FROM project_templates WHERE id = ?`, id))
	return t, dbErr(err, "TemplateByID")
}

// TemplateByName returns an organization's template by name.
func (db *DB) TemplateByName(ctx context.Context, orgID, name string) (project.Template, error) {
	t, err := scanProjectTemplate(db.readRow(ctx, `SELECT `+templateCols+` FROM project_templates WHERE org_id = ? AND name = ?`, orgID, name))
	return t, dbErr(err, "TemplateByName")
}

// Templates lists an organization's templates by name, of one type unless typ is "".
func (db *DB) ProjectTemplates(ctx context.Context, orgID, typ string) ([]project.Template, error) {
	rows, err := db.readq(ctx, `SELECT `+templateCols+` FROM project_templates WHERE org_id = ? AND (? = '' OR type = ?) ORDER BY name`, orgID, typ, typ)
	if err != nil {
		return nil, dbErr(err, "Templates")
	}
	defer rows.Close()
	var out []project.Template
	for rows.Next() {
		t, err := scanProjectTemplate(rows)
		if err != nil {
			return nil, dbErr(err, "scan template")
		}
		out = append(out, t)
	}
	return out, dbErr(rows.Err(), "Templates")
}

// UpdateTemplate rewrites a template.
func (db *DB) UpdateProjectTemplate(ctx context.Context, t project.Template, j project.TemplateJSON, ev audit.Event) error {
	return db.Transact(ctx, func(tx *Tx) error {
		res, err := tx.exec(ctx, `UPDATE project_templates SET name = ?, description = ?, roles = ?, environments = ?, identities = ?,
			updated_at = ? WHERE id = ?`, t.Name, t.Description, j.Roles, nullStr(j.Environments), nullStr(j.Identities), ts(t.UpdatedAt), t.ID)
		if err != nil {
			return dbErr(err, "UpdateTemplate")
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return errs.NotFoundf("Could not find project template with ID %s", t.ID)
		}
		return tx.insertAudit(ctx, ev)
	})
}

// DeleteTemplate deletes a template.
func (db *DB) DeleteProjectTemplate(ctx context.Context, t project.Template, ev audit.Event) error {
	return db.Transact(ctx, func(tx *Tx) error {
		res, err := tx.exec(ctx, `DELETE FROM project_templates WHERE id = ?`, t.ID)
		if err != nil {
			return dbErr(err, "DeleteTemplate")
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return errs.NotFoundf("Could not find project template with ID %s", t.ID)
		}
		return tx.insertAudit(ctx, ev)
	})
}

// IdentityNames returns the names of those of ids that are identities of org.
func (db *DB) IdentityNames(ctx context.Context, orgID string, ids []string) (map[string]string, error) {
	out := make(map[string]string, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	args := []any{orgID}
	for _, id := range ids {
		args = append(args, id)
	}
	rows, err := db.readq(ctx, `SELECT id, name FROM identities WHERE org_id = ? AND id IN (?`+strings.Repeat(", ?", len(ids)-1)+`)`, args...)
	if err != nil {
		return nil, dbErr(err, "IdentityNames")
	}
	defer rows.Close()
	for rows.Next() {
		var id, name string
		if err := rows.Scan(&id, &name); err != nil {
			return nil, dbErr(err, "scan identity name")
		}
		out[id] = name
	}
	return out, dbErr(rows.Err(), "IdentityNames")
}
