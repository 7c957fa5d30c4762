package store

import (
	"context"
	"encoding/json"
	"time"

	"github.com/lockbox-dev/lockbox/internal/audit"
	"github.com/lockbox-dev/lockbox/internal/errs"
	"github.com/lockbox-dev/lockbox/internal/project"
)

var _ project.RoleStore = (*DB)(nil)

const roleCols = `id, project_id, slug, name, description, permissions, created_at, updated_at`

func scanRole(sc interface{ Scan(...any) error }) (project.Role, error) {
	var r project.Role
	var perms string
	if err := sc.Scan(&r.ID, &r.ProjectID, &r.Slug, &r.Name, &r.Description, &perms, timeCol{&r.CreatedAt}, timeCol{&r.UpdatedAt}); err != nil {
		return r, err
	}
	if err := json.Unmarshal([]byte(perms), &r.Permissions); err != nil {
		return r, errs.Internalf(err, "stored rules of role %s", r.ID)
	}
	return r, nil
}

// CreateProjectRole stores a custom role.
func (db *DB) CreateProjectRole(ctx context.Context, r project.Role, permissions string, ev audit.Event) error {
	return db.Transact(ctx, func(tx *Tx) error {
		n, err := tx.countUnder(ctx, "projects", "project_roles", "project_id", r.ProjectID)
		if err != nil {
			return err
		}
		if n >= project.MaxRoles {
			return errs.BadRequest("A project has at most %d custom roles; delete one first", project.MaxRoles)
		}
		if _, err := tx.exec(ctx, `INSERT INTO project_roles (`+roleCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
			r.ID, r.ProjectID, r.Slug, r.Name, r.Description, permissions, ts(r.CreatedAt), ts(r.UpdatedAt)); err != nil {
			return dbErr(err, "CreateProjectRole")
		}
		return tx.insertAudit(ctx, ev)
	})
}

// ProjectRole returns a project's custom role by id.
func (db *DB) ProjectRole(ctx context.Context, projectID, id string) (project.Role, error) {
	r, err := scanRole(db.readRow(ctx, `SELECT `+roleCols+` FROM project_roles WHERE project_id = ? AND id = ?`, projectID, id))
	return r, dbErr(err, "ProjectRole")
}

// ProjectRoleByID returns a custom role by id alone.
func (db *DB) ProjectRoleByID(ctx context.Context, id string) (project.Role, error) {
	r, err := scanRole(db.readRow(ctx, `SELECT `+roleCols+` FROM project_roles WHERE id = ?`, id))
	return r, dbErr(err, "ProjectRoleByID")
}

// ProjectRoleBySlug returns a project's custom role by slug.
func (db *DB) ProjectRoleBySlug(ctx context.Context, projectID, slug string) (project.Role, error) {
	r, err := scanRole(db.readRow(ctx, `SELECT `+roleCols+` FROM project_roles WHERE project_id = ? AND slug = ?`, projectID, slug))
	return r, dbErr(err, "ProjectRoleBySlug")
}

// ProjectRoles lists a project's custom roles by slug.
func (db *DB) ProjectRoles(ctx context.Context, projectID string) ([]project.Role, error) {
	rows, err := db.readq(ctx, `SELECT `+roleCols+` FROM project_roles WHERE project_id = ? ORDER BY slug`, projectID)
	if err != nil {
		return nil, dbErr(err, "ProjectRoles")
	}
	defer rows.Close()
	var out []project.Role
	for rows.Next() {
		r, err := scanRole(rows)
		if err != nil {
			return nil, dbErr(err, "scan role")
		}
		out = append(out, r)
	}
	return out, dbErr(rows.Err(), "ProjectRoles")
}

// UpdateProjectRole writes a custom role.
func (db *DB) UpdateProjectRole(ctx context.Context, r project.Role, permissions string, prev time.Time, ev audit.Event) error {
	return db.Transact(ctx, func(tx *Tx) error {
		res, err := tx.exec(ctx, `UPDATE project_roles SET slug = ?, name = ?, description = ?, permissions = ?, updated_at = ?
			WHERE id = ? AND updated_at = ?`, r.Slug, r.Name, r.Description, permissions, ts(r.UpdatedAt), r.ID, ts(prev))
		if err := staleIfNone(res, err, "UpdateProjectRole"); err != nil {
			return err
		}
		return tx.insertAudit(ctx, ev)
	})
}

// DeleteProjectRole deletes a custom role unless a membership uses it (Conflict).
func (db *DB) DeleteProjectRole(ctx context.Context, r project.Role, ev audit.Event) error {
	return db.Transact(ctx, func(tx *Tx) error {
		var n int
		if err := tx.queryRow(ctx, `SELECT (SELECT COUNT(*) FROM project_membership_roles WHERE custom_role_id = ?)
			+ (SELECT COUNT(*) FROM project_group_membership_roles WHERE custom_role_id = ?)`, r.ID, r.ID).Scan(&n); err != nil {
			return dbErr(err, "role in use")
		}
		if n > 0 {
			return errs.Conflictf("role %s is in use", r.Slug)
		}
		if _, err := tx.exec(ctx, `DELETE FROM project_roles WHERE id = ?`, r.ID); err != nil {
			return dbErr(err, "DeleteProjectRole")
		}
		return tx.insertAudit(ctx, ev)
	})
}
