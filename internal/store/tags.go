package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"slices"
	"strings"

	"github.com/lockbox-dev/lockbox/internal/audit"
	"github.com/lockbox-dev/lockbox/internal/secret"
)

const tagCols = `id, project_id, slug, name, color, created_by, created_by_actor_type, created_at, updated_at`

func scanTag(sc interface{ Scan(...any) error }) (secret.Tag, error) {
	var t secret.Tag
	err := sc.Scan(&t.ID, &t.ProjectID, &t.Slug, &t.Name, &t.Color, &t.CreatedBy, &t.CreatedByActorType, timeCol{&t.CreatedAt}, timeCol{&t.UpdatedAt})
	return t, err
}

// CreateTag stores a tag, unless its project has secret.MaxTagsPerProject
// already (counted under the project's lock: bounded).
func (db *DB) CreateTag(ctx context.Context, t secret.Tag, ev audit.Event) error {
	return db.Transact(ctx, func(tx *Tx) error {
		if err := tx.bounded(ctx, "projects", "secret_tags", "project_id", t.ProjectID, secret.MaxTagsPerProject, secret.TooManyTags); err != nil {
			return err
		}
		if _, err := tx.exec(ctx, `INSERT INTO secret_tags (`+tagCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			t.ID, t.ProjectID, t.Slug, t.Name, t.Color, t.CreatedBy, t.CreatedByActorType, ts(t.CreatedAt), ts(t.UpdatedAt)); err != nil {
			return dbErr(err, "CreateTag")
		}
		return tx.insertAudit(ctx, ev)
	})
}

// Tags lists a project's tags by slug.
func (db *DB) Tags(ctx context.Context, projectID string) ([]secret.Tag, error) {
	rows, err := db.readq(ctx, `SELECT `+tagCols+` FROM secret_tags WHERE project_id = ? ORDER BY slug`, projectID)
	if err != nil {
		return nil, dbErr(err, "Tags")
	}
	defer rows.Close()
	out := []secret.Tag{}
	for rows.Next() {
		t, err := scanTag(rows)
		if err != nil {
			return nil, dbErr(err, "scan tag")
		}
		out = append(out, t)
	}
	return out, dbErr(rows.Err(), "Tags")
}

// TagByID finds a project's tag.
func (db *DB) TagByID(ctx context.Context, projectID, id string) (secret.Tag, error) {
	t, err := scanTag(db.readRow(ctx, `SELECT `+tagCols+` FROM secret_tags WHERE project_id = ? AND id = ?`, projectID, id))
	return t, dbErr(err, "TagByID")
}

// TagBySlug finds a project's tag by slug.
func (db *DB) TagBySlug(ctx context.Context, projectID, slug string) (secret.Tag, error) {
	t, err := scanTag(db.readRow(ctx, `SELECT `+tagCols+` FROM secret_tags WHERE project_id = ? AND slug = ?`, projectID, slug))
	return t, dbErr(err, "TagBySlug")
}

// UpdateTag writes a tag.
func (db *DB) UpdateTag(ctx context.Context, t secret.Tag, ev audit.Event) error {
	return db.Transact(ctx, func(tx *Tx) error {
		if err := tx.guardMoves(ctx); err != nil {
			return err
		}
		if _, err := tx.exec(ctx, `UPDATE secret_tags SET slug = ?, name = ?, color = ?, updated_at = ? WHERE id = ?`,
			t.Slug, t.Name, t.Color, ts(t.UpdatedAt), t.ID); err != nil {
			return dbErr(err, "UpdateTag")
		}
		return tx.insertAudit(ctx, ev)
	})
}

// DeleteTag deletes a tag; its links to secrets cascade.
func (db *DB) DeleteTag(ctx context.Context, t secret.Tag, ev audit.Event) error {
	return db.Transact(ctx, func(tx *Tx) error {
		if err := tx.guardMoves(ctx); err != nil {
			return err
		}
		if _, err := tx.exec(ctx, `DELETE FROM secret_tags WHERE id = ?`, t.ID); err != nil {
			return dbErr(err, "DeleteTag")
		}
		return tx.insertAudit(ctx, ev)
	})
}

const qProjectHasTags = `SELECT EXISTS (SELECT 1 FROM secret_tags WHERE project_id = ?)`

// ProjectHasTags reports whether a project has any tag.
func (db *DB) ProjectHasTags(ctx context.Context, projectID string) (bool, error) {
	var has bool
	err := db.readRow(ctx, qProjectHasTags, projectID).Scan(&has)
	return has, dbErr(err, "ProjectHasTags")
}

// qSecretTags lists the tag links of the secrets whose ids are the JSON
// array bound to its one placeholder. Its text is the same for any number of
// secrets, so it is prepared once (hotReads), where an IN list of
// placeholders is a new statement for each length.
var qSecretTags = byDialect{
	SQLite: `SELECT l.secret_id, t.id, t.project_id, t.slug, t.name, t.color, t.created_by, t.created_by_actor_type,
	t.created_at, t.updated_at FROM secret_tag_links l JOIN secret_tags t ON t.id = l.tag_id
	WHERE l.secret_id IN (SELECT value FROM json_each(?))`,
	Postgres: `SELECT l.secret_id, t.id, t.project_id, t.slug, t.name, t.color, t.created_by, t.created_by_actor_type,
	t.created_at, t.updated_at FROM secret_tag_links l JOIN secret_tags t ON t.id = l.tag_id
	WHERE l.secret_id IN (SELECT jsonb_array_elements_text(CAST(? AS jsonb)))`,
}

// SecretTags returns each secret's tags, by slug.
func (db *DB) SecretTags(ctx context.Context, secretIDs []string) (map[string][]secret.Tag, error) {
	return secretTags(ctx, db.readq, db.dialect, secretIDs)
}

// rowsQueryer runs a query: on the read pool (DB.readq) or in a
// transaction (Tx.query).
type rowsQueryer func(ctx context.Context, query string, args ...any) (*sql.Rows, error)

func secretTags(ctx context.Context, query rowsQueryer, d Dialect, secretIDs []string) (map[string][]secret.Tag, error) {
	out := map[string][]secret.Tag{}
	if len(secretIDs) == 0 {
		return out, nil
	}
	ids, err := json.Marshal(secretIDs)
	if err != nil {
		return nil, err
	}
	rows, err := query(ctx, qSecretTags[d], string(ids))
	if err != nil {
		return nil, dbErr(err, "SecretTags")
	}
	defer rows.Close()
	for rows.Next() {
		var sid string
		var t secret.Tag
		if err := rows.Scan(&sid, &t.ID, &t.ProjectID, &t.Slug, &t.Name, &t.Color, &t.CreatedBy, &t.CreatedByActorType,
			timeCol{&t.CreatedAt}, timeCol{&t.UpdatedAt}); err != nil {
			return nil, dbErr(err, "scan secret tag")
		}
		out[sid] = append(out[sid], t)
	}
	if err := rows.Err(); err != nil {
		return nil, dbErr(err, "SecretTags")
	}
	for _, tags := range out {
		slices.SortFunc(tags, func(a, b secret.Tag) int { return strings.Compare(a.Slug, b.Slug) })
	}
	return out, nil
}

// setSecretTags replaces a secret's tag links when ids is not nil.
func (tx *Tx) setSecretTags(ctx context.Context, secretID string, ids []string) error {
	if ids == nil {
		return nil
	}
	if _, err := tx.exec(ctx, `DELETE FROM secret_tag_links WHERE secret_id = ?`, secretID); err != nil {
		return dbErr(err, "clear secret tags")
	}
	for _, id := range ids {
		if _, err := tx.exec(ctx, `INSERT INTO secret_tag_links (secret_id, tag_id) VALUES (?, ?)`, secretID, id); err != nil && !IsUniqueViolation(err) {
			return dbErr(err, "link secret tag")
		}
	}
	return nil
}

const importCols = `i.id, i.folder_id, i.import_env_id, e.slug, e.name, i.import_path, i.position, i.version, i.created_at, i.updated_at`

func scanImport(sc interface{ Scan(...any) error }) (secret.Import, error) {
	var im secret.Import
	err := sc.Scan(&im.ID, &im.FolderID, &im.EnvID, &im.EnvSlug, &im.EnvName, &im.Path, &im.Position, &im.Version,
		timeCol{&im.CreatedAt}, timeCol{&im.UpdatedAt})
	return im, err
}

// CreateImport stores an import.
func (db *DB) CreateImport(ctx context.Context, im secret.Import, ev audit.Event) error {
	return db.Transact(ctx, func(tx *Tx) error {
		if err := tx.guardMoves(ctx); err != nil {
			return err
		}
		if _, err := tx.exec(ctx, `INSERT INTO secret_imports (id, folder_id, import_env_id, import_path, position, version, created_at, updated_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, im.ID, im.FolderID, im.EnvID, im.Path, im.Position, im.Version, ts(im.CreatedAt), ts(im.UpdatedAt)); err != nil {
			return dbErr(err, "CreateImport")
		}
		return tx.insertAudit(ctx, ev)
	})
}

const qImports = `SELECT ` + importCols + ` FROM secret_imports i JOIN environments e ON e.id = i.import_env_id
	WHERE i.folder_id = ? ORDER BY i.position, i.created_at`

// Imports lists a folder's imports by position.
func (db *DB) Imports(ctx context.Context, folderID string) ([]secret.Import, error) {
	rows, err := db.readq(ctx, qImports, folderID)
	if err != nil {
		return nil, dbErr(err, "Imports")
	}
	defer rows.Close()
	out := []secret.Import{}
	for rows.Next() {
		im, err := scanImport(rows)
		if err != nil {
			return nil, dbErr(err, "scan import")
		}
		out = append(out, im)
	}
	return out, dbErr(rows.Err(), "Imports")
}

// ImportByID finds an import of a folder.
func (db *DB) ImportByID(ctx context.Context, folderID, id string) (secret.Import, error) {
	im, err := scanImport(db.readRow(ctx, `SELECT `+importCols+` FROM secret_imports i JOIN environments e ON e.id = i.import_env_id
		WHERE i.folder_id = ? AND i.id = ?`, folderID, id))
	return im, dbErr(err, "ImportByID")
}

// ImportWithID finds an import by id alone, in any folder.
func (db *DB) ImportWithID(ctx context.Context, id string) (secret.Import, error) {
	im, err := scanImport(db.readRow(ctx, `SELECT `+importCols+` FROM secret_imports i JOIN environments e ON e.id = i.import_env_id
		WHERE i.id = ?`, id))
	return im, dbErr(err, "ImportWithID")
}

// UpdateImport writes an import.
func (db *DB) UpdateImport(ctx context.Context, im secret.Import, ev audit.Event) error {
	return db.Transact(ctx, func(tx *Tx) error {
		// The project first (through the environment the import names,
		// which may be another): a 400 if that was deleted meanwhile.
		if err := tx.holdProjectOf(ctx, "environments", im.EnvID); err != nil {
			return referenceGone(err)
		}
		res, err := tx.exec(ctx, `UPDATE secret_imports SET import_env_id = ?, import_path = ?, position = ?, version = ?, updated_at = ? WHERE id = ?`,
			im.EnvID, im.Path, im.Position, im.Version, ts(im.UpdatedAt), im.ID)
		if err != nil {
			return dbErr(err, "UpdateImport")
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return dbErr(errNoRows, "UpdateImport") // deleted meanwhile
		}
		return tx.insertAudit(ctx, ev)
	})
}

// DeleteImport deletes an import.
func (db *DB) DeleteImport(ctx context.Context, im secret.Import, ev audit.Event) error {
	return db.Transact(ctx, func(tx *Tx) error {
		if _, err := tx.exec(ctx, `DELETE FROM secret_imports WHERE id = ?`, im.ID); err != nil {
			return dbErr(err, "DeleteImport")
		}
		return tx.insertAudit(ctx, ev)
	})
}
