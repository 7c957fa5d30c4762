package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"slices"
	"strings"
	"time"

	"github.com/lockbox-dev/lockbox/internal/audit"
	"github.com/lockbox-dev/lockbox/internal/authz"
	"github.com/lockbox-dev/lockbox/internal/errs"
	"github.com/lockbox-dev/lockbox/internal/keyring"
	"github.com/lockbox-dev/lockbox/internal/project"
)

var _ project.Store = (*DB)(nil)

const projectCols = `id, org_id, name, slug, description, type, auto_capitalization, has_delete_protection, version,
	audit_logs_retention_days, pit_version_limit, created_at, updated_at`

func scanProject(sc interface{ Scan(...any) error }) (project.Project, error) {
	var p project.Project
	err := sc.Scan(&p.ID, &p.OrgID, &p.Name, &p.Slug, &p.Description, &p.Type, &p.AutoCapitalization, &p.HasDeleteProtection,
		&p.Version, &p.AuditLogsRetentionDays, &p.PitVersionLimit, timeCol{&p.CreatedAt}, timeCol{&p.UpdatedAt})
	return p, err
}

// CreateProject writes a project with its environments, root folders, data
// key, the creator's admin membership and the audit event, in one transaction.
func (db *DB) CreateProject(ctx context.Context, p project.Project, dataKey []byte, rootKeyID string, creator authz.Actor, ev audit.Event) error {
	if p.PitVersionLimit < 1 {
		p.PitVersionLimit = project.DefaultPitVersionLimit
	}
	return db.Transact(ctx, func(tx *Tx) error {
		// The organization's row first, as a member's removal takes it
		// (keepingOrgAdmin) before the membership held below.
		if err := tx.bounded(ctx, "orgs", "projects", "org_id", p.OrgID, project.MaxProjectsPerOrg, project.TooManyProjects); err != nil {
			return err
		}
		_, err := tx.exec(ctx, `INSERT INTO projects (`+projectCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			p.ID, p.OrgID, p.Name, p.Slug, p.Description, p.Type, p.AutoCapitalization, p.HasDeleteProtection, p.Version,
			p.AuditLogsRetentionDays, p.PitVersionLimit, ts(p.CreatedAt), ts(p.UpdatedAt))
		if err != nil {
			return dbErr(err, "insert project")
		}
		for _, env := range p.Environments {
			if err := tx.insertEnvironment(ctx, env); err != nil {
				return err
			}
		}
		for _, r := range p.Roles {
			perms, err := json.Marshal(r.Permissions)
			if err != nil {
				return errs.Internalf(err, "encode rules")
			}
			if _, err := tx.exec(ctx, `INSERT INTO project_roles (`+roleCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
				r.ID, r.ProjectID, r.Slug, r.Name, r.Description, string(perms), ts(r.CreatedAt), ts(r.UpdatedAt)); err != nil {
				return dbErr(err, "insert project role")
			}
		}
		if err := tx.insertDataKey(ctx, keyring.Project(p.ID), dataKey, rootKeyID); err != nil {
			return err
		}
		userID, identityID := "", creator.ID
		if creator.Kind == authz.ActorUser {
			userID, identityID = creator.ID, ""
			if err := tx.holdOrgMember(ctx, p.OrgID, userID); err != nil {
				return err
			}
		}
		if _, err := tx.insertProjectMembership(ctx, p.ID, userID, identityID, []project.MembershipRole{{Role: "admin"}}); err != nil {
			return err
		}
		for _, m := range p.Members {
			if _, err := tx.insertProjectMembership(ctx, p.ID, "", m.IdentityID, m.Roles); err != nil {
				return err
			}
		}
		return tx.insertAudit(ctx, ev)
	})
}

func (tx *Tx) insertEnvironment(ctx context.Context, env project.Environment) error {
	_, err := tx.exec(ctx, `INSERT INTO environments (id, project_id, name, slug, position, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)`,
		env.ID, env.ProjectID, env.Name, env.Slug, env.Position, ts(env.CreatedAt), ts(env.UpdatedAt))
	if err != nil {
		return dbErr(err, "insert environment")
	}
	_, err = tx.exec(ctx, `INSERT INTO folders (id, env_id, parent_id, name, version, created_at, updated_at) VALUES (?, ?, NULL, ?, 1, ?, ?)`,
		newID(), env.ID, project.RootFolderName, ts(env.CreatedAt), ts(env.UpdatedAt))
	return dbErr(err, "insert root folder")
}

const (
	qProjectByID   = `SELECT ` + projectCols + ` FROM projects WHERE id = ?`
	qProjectBySlug = `SELECT ` + projectCols + ` FROM projects WHERE slug = ?`
)

func (db *DB) projectWithEnvs(ctx context.Context, query string, arg any) (project.Project, error) {
	p, err := scanProject(db.readRow(ctx, query, arg))
	if err != nil {
		return p, dbErr(err, "project")
	}
	p.Environments, err = db.Environments(ctx, p.ID)
	return p, err
}

// ProjectByID returns a project with its environments.
func (db *DB) ProjectByID(ctx context.Context, id string) (project.Project, error) {
	return db.projectWithEnvs(ctx, qProjectByID, id)
}

// ProjectBySlug returns a project with its environments.
func (db *DB) ProjectBySlug(ctx context.Context, slug string) (project.Project, error) {
	return db.projectWithEnvs(ctx, qProjectBySlug, slug)
}

// Projects lists an organization's projects, optionally only the actor's, oldest first.
func (db *DB) Projects(ctx context.Context, orgID string, memberOnly bool, kind authz.ActorKind, actorID string) ([]project.Project, error) {
	q := `SELECT ` + projectCols + ` FROM projects WHERE org_id = ?`
	args := []any{orgID}
	if memberOnly {
		q += ` AND (id IN (SELECT project_id FROM project_memberships WHERE ` + memberCol(kind) + ` = ?)
			OR id IN (SELECT gm.project_id FROM group_members g JOIN project_group_memberships gm ON gm.group_id = g.group_id
			WHERE g.` + memberCol(kind) + ` = ?))`
		args = append(args, actorID, actorID)
	}
	rows, err := db.readq(ctx, q+` ORDER BY created_at, id`, args...)
	if err != nil {
		return nil, dbErr(err, "Projects")
	}
	var out []project.Project
	for rows.Next() {
		p, err := scanProject(rows)
		if err != nil {
			rows.Close()
			return nil, dbErr(err, "scan project")
		}
		out = append(out, p)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, dbErr(err, "Projects")
	}
	ids := make([]string, len(out))
	for i, p := range out {
		ids[i] = p.ID
	}
	envs, err := db.environmentsOf(ctx, ids)
	if err != nil {
		return nil, err
	}
	for i := range out {
		out[i].Environments = envs[out[i].ID]
		if out[i].Environments == nil {
			out[i].Environments = []project.Environment{}
		}
	}
	return out, nil
}

// environmentsOf returns the environments of projects ids by project, each
// by position, one query per fillChunk projects (a listing of an
// organization's projects read them a query per project).
func (db *DB) environmentsOf(ctx context.Context, ids []string) (map[string][]project.Environment, error) {
	out := map[string][]project.Environment{}
	for chunk := range slices.Chunk(ids, fillChunk) {
		rows, err := db.readq(ctx, `SELECT `+envCols+` FROM environments
			WHERE project_id IN (`+placeholders(len(chunk))+`) ORDER BY project_id, position, created_at`, withIDs(nil, chunk)...)
		if err != nil {
			return nil, dbErr(err, "Environments")
		}
		for rows.Next() {
			e, err := scanEnvironment(rows)
			if err != nil {
				rows.Close()
				return nil, dbErr(err, "scan environment")
			}
			out[e.ProjectID] = append(out[e.ProjectID], e)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, dbErr(err, "Environments")
		}
	}
	return out, nil
}

// stampAfter sets updated_at (its two arguments: the transaction's time,
// twice) for a write that does not compare-and-set itself but whose row
// another writer does: the new value is the clock's, or one microsecond
// past the old one when the clock has not moved past it, so no reader's
// stamp matches after the write (project.NextStamp, in SQL).
const stampAfter = `updated_at = CASE WHEN updated_at < ? THEN ? ELSE updated_at + 1 END`

// staleIfNone is a compare-and-set update's outcome (one that matched the
// row's id and the updated_at its caller read): its error, or
// project.ErrStale if it changed no row (the row changed since it was read,
// or is gone: the caller's next read tells which).
func staleIfNone(res sql.Result, err error, op string) error {
	if err != nil {
		return dbErr(err, op)
	}
	if n, err := res.RowsAffected(); err != nil || n == 0 {
		if err == nil {
			err = project.ErrStale
		}
		return err
	}
	return nil
}

// UpdateProject writes a project's settings; a lower pitVersionLimit prunes
// the project's secret versions beyond it. A change of its audit
// retention is stamped with the transaction's time, the time of the
// change's own audit event, which the retention (applied to events written
// after it) therefore does not reach.
func (db *DB) UpdateProject(ctx context.Context, p project.Project, prev time.Time, ev audit.Event) error {
	return db.Transact(ctx, func(tx *Tx) error {
		var limit int
		if err := tx.queryRow(ctx, `SELECT pit_version_limit FROM projects WHERE id = ?`, p.ID).Scan(&limit); err != nil {
			return dbErr(err, "UpdateProject")
		}
		if p.PitVersionLimit < 1 {
			p.PitVersionLimit = limit // a Project not read from the store
		}
		res, err := tx.exec(ctx, `UPDATE projects SET name = ?, slug = ?, description = ?, auto_capitalization = ?,
			has_delete_protection = ?, audit_logs_retention_days = ?,
			audit_logs_retention_since = CASE WHEN audit_logs_retention_days <> ? THEN ? ELSE audit_logs_retention_since END,
			pit_version_limit = ?, updated_at = ? WHERE id = ? AND updated_at = ?`,
			p.Name, p.Slug, p.Description, p.AutoCapitalization, p.HasDeleteProtection, p.AuditLogsRetentionDays,
			p.AuditLogsRetentionDays, ts(tx.Now), p.PitVersionLimit, ts(p.UpdatedAt), p.ID, ts(prev))
		if err := staleIfNone(res, err, "UpdateProject"); err != nil {
			return err
		}
		if p.PitVersionLimit < limit {
			if err := tx.prunePitVersions(ctx, p.ID); err != nil {
				return err
			}
		}
		return tx.insertAudit(ctx, ev)
	})
}

// DeleteProject deletes a project, everything in it (cascades) and its data
// key, unless one of its dynamic secrets has a lease not revoked
// (project.LeasesLeftError).
func (db *DB) DeleteProject(ctx context.Context, id string, ev audit.Event) error {
	return db.Transact(ctx, func(tx *Tx) error {
		var protected bool
		if err := tx.queryRow(ctx, `SELECT has_delete_protection FROM projects WHERE id = ?`+db.forUpdate(), id).Scan(&protected); err != nil {
			return dbErr(err, "DeleteProject")
		}
		if protected {
			return project.ErrDeleteProtected
		}
		if err := tx.dropDynamicSecrets(ctx, `project_id = ?`, id); err != nil {
			return err
		}
		// The cascades delete hosts before host groups, each in its plan's
		// order; a group's change locks the group, then its hosts in id
		// order (touchGroupHosts). Both are locked that way first.
		if db.dialect == Postgres { // SQLite has one writer
			for _, table := range []string{"ssh_host_groups", "ssh_hosts"} {
				if _, err := tx.exec(ctx, `SELECT id FROM `+table+` WHERE project_id = ? ORDER BY id FOR UPDATE`, id); err != nil {
					return dbErr(err, "lock "+table)
				}
			}
		}
		// Membership roles reference custom roles without cascade; remove them first.
		if _, err := tx.exec(ctx, `DELETE FROM project_membership_roles WHERE membership_id IN
			(SELECT id FROM project_memberships WHERE project_id = ?)`, id); err != nil {
			return dbErr(err, "delete membership roles")
		}
		if _, err := tx.exec(ctx, `DELETE FROM project_group_membership_roles WHERE membership_id IN
			(SELECT id FROM project_group_memberships WHERE project_id = ?)`, id); err != nil {
			return dbErr(err, "delete group membership roles")
		}
		if _, err := tx.exec(ctx, `DELETE FROM projects WHERE id = ?`, id); err != nil {
			return dbErr(err, "DeleteProject")
		}
		if _, err := tx.exec(ctx, `DELETE FROM data_keys WHERE owner_type = ? AND owner_id = ?`, keyring.OwnerProject, id); err != nil {
			return dbErr(err, "delete data key")
		}
		return tx.insertAudit(ctx, ev)
	})
}

// CreateEnvironment adds an environment with its root folder.
func (db *DB) CreateEnvironment(ctx context.Context, env project.Environment, ev audit.Event) error {
	return db.Transact(ctx, func(tx *Tx) error {
		n, err := tx.countUnder(ctx, "projects", "environments", "project_id", env.ProjectID)
		if err != nil {
			return err
		}
		if n >= project.MaxEnvironments {
			return project.TooManyEnvironments()
		}
		if err := tx.insertEnvironment(ctx, env); err != nil {
			return err
		}
		return tx.insertAudit(ctx, ev)
	})
}

const envCols = `id, project_id, name, slug, position, created_at, updated_at`

func scanEnvironment(sc interface{ Scan(...any) error }) (project.Environment, error) {
	var e project.Environment
	err := sc.Scan(&e.ID, &e.ProjectID, &e.Name, &e.Slug, &e.Position, timeCol{&e.CreatedAt}, timeCol{&e.UpdatedAt})
	return e, err
}

const qEnvironments = `SELECT ` + envCols + ` FROM environments WHERE project_id = ? ORDER BY position, created_at`

// Environments lists a project's environments by position.
func (db *DB) Environments(ctx context.Context, projectID string) ([]project.Environment, error) {
	rows, err := db.readq(ctx, qEnvironments, projectID)
	if err != nil {
		return nil, dbErr(err, "Environments")
	}
	defer rows.Close()
	out := []project.Environment{}
	for rows.Next() {
		e, err := scanEnvironment(rows)
		if err != nil {
			return nil, dbErr(err, "scan environment")
		}
		out = append(out, e)
	}
	return out, dbErr(rows.Err(), "Environments")
}

// EnvironmentByID returns an environment by id alone.
func (db *DB) EnvironmentByID(ctx context.Context, id string) (project.Environment, error) {
	e, err := scanEnvironment(db.readRow(ctx, `SELECT `+envCols+` FROM environments WHERE id = ?`, id))
	return e, dbErr(err, "EnvironmentByID")
}

// UpdateEnvironment writes an environment.
func (db *DB) UpdateEnvironment(ctx context.Context, env project.Environment, ev audit.Event) error {
	return db.Transact(ctx, func(tx *Tx) error {
		if err := tx.guardMoves(ctx); err != nil {
			return err
		}
		_, err := tx.exec(ctx, `UPDATE environments SET name = ?, slug = ?, position = ?, updated_at = ? WHERE id = ?`,
			env.Name, env.Slug, env.Position, ts(env.UpdatedAt), env.ID)
		if err != nil {
			return dbErr(err, "UpdateEnvironment")
		}
		return tx.insertAudit(ctx, ev)
	})
}

// DeleteEnvironment deletes an environment and its folders, their dynamic
// secrets too unless one has a lease not revoked (project.LeasesLeftError).
func (db *DB) DeleteEnvironment(ctx context.Context, env project.Environment, ev audit.Event) error {
	return db.Transact(ctx, func(tx *Tx) error {
		if err := tx.guardMoves(ctx); err != nil {
			return err
		}
		if err := tx.dropDynamicSecrets(ctx, `folder_id IN (SELECT id FROM folders WHERE env_id = ?)`, env.ID); err != nil {
			return err
		}
		if _, err := tx.exec(ctx, `DELETE FROM environments WHERE id = ?`, env.ID); err != nil {
			return dbErr(err, "DeleteEnvironment")
		}
		return tx.insertAudit(ctx, ev)
	})
}

const folderCols = `id, env_id, COALESCE(parent_id, ''), name, description, version, created_at, updated_at`

// folderColsOf is folderCols of the folders table named alias.
func folderColsOf(alias string) string {
	a := alias + "."
	return a + `id, ` + a + `env_id, COALESCE(` + a + `parent_id, ''), ` + a + `name, ` + a + `description, ` + a + `version, ` + a + `created_at, ` + a + `updated_at`
}

func scanFolder(sc interface{ Scan(...any) error }) (project.Folder, error) {
	var f project.Folder
	err := sc.Scan(&f.ID, &f.EnvID, &f.ParentID, &f.Name, &f.Description, &f.Version, timeCol{&f.CreatedAt}, timeCol{&f.UpdatedAt})
	return f, err
}

// folderQueryer runs walk's reads outside a transaction (DB.walker) or in
// one (Tx.walker).
type folderQueryer struct {
	dialect Dialect
	row     func(ctx context.Context, query string, args ...any) interface{ Scan(...any) error }
	rows    func(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

func (db *DB) walker() folderQueryer {
	return folderQueryer{
		dialect: db.dialect,
		row: func(ctx context.Context, q string, args ...any) interface{ Scan(...any) error } {
			return db.readRow(ctx, q, args...)
		},
		rows: db.readq,
	}
}

func (tx *Tx) walker() folderQueryer {
	return folderQueryer{
		dialect: tx.db.dialect,
		row: func(ctx context.Context, q string, args ...any) interface{ Scan(...any) error } {
			return tx.queryRow(ctx, q, args...)
		},
		rows: tx.query,
	}
}

const (
	qRootFolder  = `SELECT ` + folderCols + ` FROM folders WHERE env_id = ? AND parent_id IS NULL`
	qChildFolder = `SELECT ` + folderCols + ` FROM folders WHERE parent_id = ? AND name = ?`
)

// qWalk resolves a path of two or more segments (a JSON array of names)
// in one statement on PostgreSQL: each step of the recursion finds the
// child named by the next segment. It yields the folders it matched, each
// with its depth (0 for the root), in no particular order.
var qWalk = `WITH RECURSIVE walked(depth, id) AS (
		SELECT 0, id FROM folders WHERE env_id = ? AND parent_id IS NULL
		UNION ALL
		SELECT walked.depth + 1, f.id FROM walked
			JOIN jsonb_array_elements_text(CAST(? AS jsonb)) WITH ORDINALITY s(name, i) ON s.i = walked.depth + 1
			JOIN folders f ON f.parent_id = walked.id AND f.name = s.name)
	SELECT walked.depth, ` + folderColsOf("f") + ` FROM walked JOIN folders f ON f.id = walked.id`

// walk resolves a normalised path from the root folder. It returns the
// deepest folder found and how many segments it matched. On SQLite, and
// for a path of one segment, it reads one folder a segment (prepared
// statements in the process: a path 32 deep costs what the one statement
// of qWalk costs there). On PostgreSQL a deeper path is one statement
// (qWalk), one round trip whatever its depth: a batch whose 9,000 items
// each named a path 32 deep took 33 round trips an item.
func walk(ctx context.Context, q folderQueryer, envID, path string) (project.Folder, int, error) {
	segs := project.Segments(path)
	if len(segs) >= 2 && q.dialect == Postgres {
		return walkDeep(ctx, q, envID, segs)
	}
	f, err := scanFolder(q.row(ctx, qRootFolder, envID))
	if err != nil {
		return f, 0, dbErr(err, "root folder")
	}
	f.Path = "/"
	for i, name := range segs {
		child, err := scanFolder(q.row(ctx, qChildFolder, f.ID, name))
		if err != nil {
			if errs.Is(dbErr(err, "walk"), errs.NotFound) {
				return f, i, nil
			}
			return f, i, dbErr(err, "walk")
		}
		child.Path = project.JoinPath(f.Path, name)
		f = child
	}
	return f, len(segs), nil
}

func walkDeep(ctx context.Context, q folderQueryer, envID string, segs []string) (project.Folder, int, error) {
	names, err := json.Marshal(segs)
	if err != nil {
		return project.Folder{}, 0, err
	}
	rows, err := q.rows(ctx, qWalk, envID, string(names))
	if err != nil {
		return project.Folder{}, 0, dbErr(err, "walk")
	}
	defer rows.Close()
	var f project.Folder
	n := -1
	for rows.Next() {
		var depth int
		var g project.Folder
		if err := rows.Scan(&depth, &g.ID, &g.EnvID, &g.ParentID, &g.Name, &g.Description, &g.Version, timeCol{&g.CreatedAt}, timeCol{&g.UpdatedAt}); err != nil {
			return project.Folder{}, 0, dbErr(err, "walk")
		}
		if depth > n {
			f, n = g, depth
		}
	}
	if err := rows.Err(); err != nil {
		return project.Folder{}, 0, dbErr(err, "walk")
	}
	if n < 0 {
		return project.Folder{}, 0, dbErr(sql.ErrNoRows, "root folder")
	}
	f.Path = "/" + strings.Join(segs[:n], "/")
	return f, n, nil
}

// FolderByPath finds the folder at a normalised path.
func (db *DB) FolderByPath(ctx context.Context, envID, path string) (project.Folder, error) {
	f, n, err := walk(ctx, db.walker(), envID, path)
	if err != nil {
		return project.Folder{}, err
	}
	if n != len(project.Segments(path)) {
		return project.Folder{}, errs.NotFoundf("folder %s not found", path)
	}
	return f, nil
}

// FolderByID finds a folder of an environment and computes its path.
func (db *DB) FolderByID(ctx context.Context, envID, id string) (project.Folder, error) {
	f, err := scanFolder(db.readRow(ctx, `SELECT `+folderCols+` FROM folders WHERE env_id = ? AND id = ?`, envID, id))
	if err != nil {
		return f, dbErr(err, "FolderByID")
	}
	var names []string
	for p := f; p.ParentID != ""; {
		names = append(names, p.Name)
		if p, err = scanFolder(db.readRow(ctx, `SELECT `+folderCols+` FROM folders WHERE id = ?`, p.ParentID)); err != nil {
			return f, dbErr(err, "folder parent")
		}
	}
	for i, j := 0, len(names)-1; i < j; i, j = i+1, j-1 {
		names[i], names[j] = names[j], names[i]
	}
	f.Path = "/" + strings.Join(names, "/")
	return f, nil
}

// ChildFolders lists the folders directly under parentID, by name.
func (db *DB) ChildFolders(ctx context.Context, parentID string) ([]project.Folder, error) {
	rows, err := db.readq(ctx, `SELECT `+folderCols+` FROM folders WHERE parent_id = ? ORDER BY name`, parentID)
	if err != nil {
		return nil, dbErr(err, "ChildFolders")
	}
	defer rows.Close()
	out := []project.Folder{}
	for rows.Next() {
		f, err := scanFolder(rows)
		if err != nil {
			return nil, dbErr(err, "scan folder")
		}
		out = append(out, f)
	}
	return out, dbErr(rows.Err(), "ChildFolders")
}

// SubtreeFolders lists every folder below rootID (not rootID itself) by
// name, in the database's order (ChildFolders'): one recursive query, where
// a walk read each folder's children with its own.
func (db *DB) SubtreeFolders(ctx context.Context, rootID string) ([]project.Folder, error) {
	rows, err := db.readq(ctx, `WITH RECURSIVE sub(id) AS (
			SELECT id FROM folders WHERE parent_id = ?
			UNION ALL
			SELECT f.id FROM folders f JOIN sub ON f.parent_id = sub.id)
		SELECT `+folderColsOf("f")+` FROM folders f JOIN sub ON f.id = sub.id ORDER BY f.name`, rootID)
	if err != nil {
		return nil, dbErr(err, "SubtreeFolders")
	}
	defer rows.Close()
	var out []project.Folder
	for rows.Next() {
		f, err := scanFolder(rows)
		if err != nil {
			return nil, dbErr(err, "scan folder")
		}
		out = append(out, f)
	}
	return out, dbErr(rows.Err(), "SubtreeFolders")
}

func (tx *Tx) insertFolder(ctx context.Context, f project.Folder) error {
	_, err := tx.exec(ctx, `INSERT INTO folders (id, env_id, parent_id, name, description, version, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, f.ID, f.EnvID, f.ParentID, f.Name, f.Description, f.Version, ts(f.CreatedAt), ts(f.UpdatedAt))
	return dbErr(err, "insert folder")
}

// CreateFolder creates f under parentPath, creating the missing folders of
// parentPath first, all in one transaction.
func (db *DB) CreateFolder(ctx context.Context, envID, parentPath string, f project.Folder, ev audit.Event) (project.Folder, error) {
	err := db.Transact(ctx, func(tx *Tx) error {
		if err := tx.guardMoves(ctx); err != nil {
			return err
		}
		have, err := tx.countUnder(ctx, "environments", "folders", "env_id", envID)
		if err != nil {
			return err
		}
		parent, n, err := walk(ctx, tx.walker(), envID, parentPath)
		if err != nil {
			return err
		}
		missing := project.Segments(parentPath)[n:]
		if have+len(missing)+1 > project.MaxFoldersPerEnvironment {
			return project.TooManyFolders()
		}
		for _, name := range missing {
			mid := project.Folder{ID: newID(), EnvID: envID, ParentID: parent.ID, Name: name, Version: 1,
				Path: project.JoinPath(parent.Path, name), CreatedAt: tx.Now, UpdatedAt: tx.Now}
			if err := tx.insertFolder(ctx, mid); err != nil {
				return err
			}
			parent = mid
		}
		f.EnvID, f.ParentID = envID, parent.ID
		if err := tx.insertFolder(ctx, f); err != nil {
			return err
		}
		return tx.insertAudit(ctx, ev)
	})
	return f, err
}

// UpdateFolder writes a folder's name, description and version.
func (db *DB) UpdateFolder(ctx context.Context, f project.Folder, ev audit.Event) error {
	return db.Transact(ctx, func(tx *Tx) error {
		if err := tx.guardMoves(ctx); err != nil {
			return err
		}
		_, err := tx.exec(ctx, `UPDATE folders SET name = ?, description = ?, version = ?, updated_at = ? WHERE id = ?`,
			f.Name, f.Description, f.Version, ts(f.UpdatedAt), f.ID)
		if err != nil {
			return dbErr(err, "UpdateFolder")
		}
		return tx.insertAudit(ctx, ev)
	})
}

// DeleteFolder deletes a folder; its subtree goes with it (ON DELETE
// CASCADE), its dynamic secrets too unless one has a lease not revoked
// (project.LeasesLeftError).
func (db *DB) DeleteFolder(ctx context.Context, f project.Folder, ev audit.Event) error {
	return db.Transact(ctx, func(tx *Tx) error {
		if err := tx.guardMoves(ctx); err != nil {
			return err
		}
		if err := tx.dropDynamicSecrets(ctx, `folder_id IN (WITH RECURSIVE sub(id) AS (SELECT CAST(? AS TEXT)
			UNION ALL SELECT c.id FROM folders c JOIN sub ON c.parent_id = sub.id) SELECT id FROM sub)`, f.ID); err != nil {
			return err
		}
		if _, err := tx.exec(ctx, `DELETE FROM folders WHERE id = ?`, f.ID); err != nil {
			return dbErr(err, "DeleteFolder")
		}
		return tx.insertAudit(ctx, ev)
	})
}

// FolderLocation returns a folder (with its path) and its environment.
func (db *DB) FolderLocation(ctx context.Context, id string) (project.Folder, project.Environment, error) {
	var e project.Environment
	err := db.readRow(ctx, `SELECT e.id, e.project_id, e.name, e.slug, e.position, e.created_at, e.updated_at
		FROM folders f JOIN environments e ON e.id = f.env_id WHERE f.id = ?`, id).
		Scan(&e.ID, &e.ProjectID, &e.Name, &e.Slug, &e.Position, timeCol{&e.CreatedAt}, timeCol{&e.UpdatedAt})
	if err != nil {
		return project.Folder{}, e, dbErr(err, "FolderLocation")
	}
	f, err := db.FolderByID(ctx, e.ID, id)
	return f, e, err
}
