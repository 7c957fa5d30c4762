package store

import (
	"context"

	"github.com/lockbox-dev/lockbox/internal/authz"
	"github.com/lockbox-dev/lockbox/internal/project"
)

// qContentsTree and qContentsRest, around a condition on the root folders
// (f, their environment e), make the tree of folders below them: each
// folder's id, environment slug and path, from the roots' path (the first
// argument).
const qContentsTree = `WITH RECURSIVE tree(id, env, path) AS (
	SELECT f.id, e.slug, CAST(? AS TEXT) FROM folders f JOIN environments e ON e.id = f.env_id WHERE `

const qContentsRest = `
	UNION ALL
	SELECT f.id, t.env, CASE WHEN t.path = '/' THEN '/' || f.name ELSE t.path || '/' || f.name END
	FROM folders f JOIN tree t ON f.parent_id = t.id
)
`

// Contents reads, inside a move's transaction, what the move changes
// (project.Contents): the move's check sees every create that committed
// before the move took the project (guardMoves), and no create can commit
// into what it moves until it has.
type Contents struct{ tx *Tx }

// FolderContents lists what the folder f and every folder below it hold:
// each secret (with its tags), dynamic secret and import, with the
// environment and path of its folder, and each folder below f, with the
// path of the folder that holds it.
func (c Contents) FolderContents(ctx context.Context, f project.Folder) ([]project.Held, error) {
	q := qContentsTree + `f.id = ?` + qContentsRest +
		`SELECT 's', s.id, t.env, t.path, s.key FROM secrets s JOIN tree t ON t.id = s.folder_id
	UNION ALL
	SELECT 'd', d.id, t.env, t.path, d.name FROM dynamic_secrets d JOIN tree t ON t.id = d.folder_id
	UNION ALL
	SELECT 'f', f.id, t.env, t.path, f.name FROM folders f JOIN tree t ON f.parent_id = t.id
	UNION ALL
	SELECT 'i', i.id, t.env, t.path, '' FROM secret_imports i JOIN tree t ON t.id = i.folder_id`
	return c.contents(ctx, "FolderContents", q, f.Path, f.ID)
}

// TaggedSecrets lists the secrets of a project that carry a tag, with their
// environment, path and tags.
func (c Contents) TaggedSecrets(ctx context.Context, projectID, tagID string) ([]project.Held, error) {
	q := qContentsTree + `e.project_id = ? AND f.parent_id IS NULL` + qContentsRest +
		`SELECT 's', s.id, t.env, t.path, s.key FROM secrets s JOIN tree t ON t.id = s.folder_id
	WHERE s.id IN (SELECT secret_id FROM secret_tag_links WHERE tag_id = ?)`
	return c.contents(ctx, "TaggedSecrets", q, "/", projectID, tagID)
}

// heldSubjects are the subjects of contents' kinds of rows.
var heldSubjects = map[string]authz.Subject{"s": authz.SubSecrets, "d": authz.SubDynamicSecrets, "f": authz.SubFolders, "i": authz.SubImports}

func (c Contents) contents(ctx context.Context, op, q string, args ...any) ([]project.Held, error) {
	rows, err := c.tx.query(ctx, q, args...)
	if err != nil {
		return nil, dbErr(err, op)
	}
	var out []project.Held
	var ids []string
	for rows.Next() {
		var h project.Held
		var kind, id string
		if err := rows.Scan(&kind, &id, &h.Env, &h.Path, &h.Name); err != nil {
			rows.Close()
			return nil, dbErr(err, op)
		}
		h.Subject, h.ID = heldSubjects[kind], id
		if h.Subject == authz.SubSecrets {
			ids = append(ids, id)
		}
		out = append(out, h)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, dbErr(err, op)
	}
	tags, err := secretTags(ctx, c.tx.query, c.tx.db.dialect, ids)
	if err != nil {
		return nil, err
	}
	for i := range out {
		for _, t := range tags[out[i].ID] {
			if out[i].Subject == authz.SubSecrets {
				out[i].Tags = append(out[i].Tags, t.Slug)
			}
		}
	}
	return out, nil
}
