package secret

import (
	"context"
	"errors"
	"time"

	"github.com/google/uuid"

	"github.com/lockbox-dev/lockbox/internal/audit"
	"github.com/lockbox-dev/lockbox/internal/authz"
	"github.com/lockbox-dev/lockbox/internal/errs"
	"github.com/lockbox-dev/lockbox/internal/project"
)

// MaxImportDepth bounds how deep imports of imports are followed.
const MaxImportDepth = 10

// Import makes a folder read the shared secrets of another environment and path.
type Import struct {
	ID        string
	FolderID  string
	EnvID     string
	EnvSlug   string
	EnvName   string
	Path      string
	Position  int
	Version   int
	CreatedAt time.Time
	UpdatedAt time.Time
}

// ImportStore is the storage imports need.
type ImportStore interface {
	CreateImport(ctx context.Context, imp Import, ev audit.Event) error
	// Imports lists a folder's imports by position.
	Imports(ctx context.Context, folderID string) ([]Import, error)
	ImportByID(ctx context.Context, folderID, id string) (Import, error)
	// ImportWithID finds an import by id alone, in any folder.
	ImportWithID(ctx context.Context, id string) (Import, error)
	UpdateImport(ctx context.Context, imp Import, ev audit.Event) error
	DeleteImport(ctx context.Context, imp Import, ev audit.Event) error
}

// ImportedSecrets is one import's contribution to a read.
type ImportedSecrets struct {
	Env      string
	Path     string
	FolderID string
	Secrets  []Secret
}

// Target names what an import reads.
type Target struct {
	Env  string
	Path string
}

// importScope resolves the folder of sc (filling in its project's id) and
// checks action on its imports.
func (s *Service) importScope(ctx context.Context, actor authz.Actor, sc *Scope, action string) (project.Folder, project.Environment, authz.Set, error) {
	f, env, perms, err := s.folder(ctx, actor, sc)
	if err != nil {
		return f, env, perms, err
	}
	err = perms.Check(action, authz.SubImports, &authz.Fields{Environment: env.Slug, SecretPath: f.Path})
	return f, env, perms, err
}

func importEvent(actor authz.Actor, typ string, sc Scope, imp Import) audit.Event {
	return audit.New(actor, typ, map[string]any{"environment": sc.Env, "secretPath": sc.Path, "secretImportId": imp.ID,
		"importFromEnvironment": imp.EnvSlug, "importFromSecretPath": imp.Path}).InProject(sc.ProjectID, "")
}

// MaxImportPosition bounds an import's position: the column is a 32-bit
// integer on PostgreSQL, and a new import goes after the last one, so an
// import moved to 2^31-1 made every later create in its folder a 500.
const MaxImportPosition = 10_000

// importSource resolves the folder an import reads, all of whose secrets'
// values the caller must be allowed to read: before, any importer could point an
// import at any path, and whether it was a 404 told them which folders
// exist where they may read nothing; and one who could only describe the
// secrets there could make their values part of a folder that wider
// readers (a deployment's identity, reading with imports) take into their
// environment, as a reference to them would (checkExpansion). Reads
// through an import are still checked at its source.
func (s *Service) importSource(ctx context.Context, perms authz.Set, projectID, env, path string) (project.Folder, project.Environment, error) {
	norm, err := project.NormalizePath(path)
	if err != nil {
		return project.Folder{}, project.Environment{}, err
	}
	// Every secret there, whatever its name or tags: a denial of some
	// names or tags within the folder would not hold for what the import
	// brings.
	where := authz.Conditions{"environment": {{Op: "$eq", Value: env}}, "secretPath": {{Op: "$eq", Value: norm}}}
	reading := []authz.Action{authz.ActRead, authz.ActReadValue}
	if !perms.AllowsThroughout(authz.SubSecrets, reading, reading, where) {
		return project.Folder{}, project.Environment{}, errs.PermissionDenied(authz.ActReadValue, authz.SubSecrets)
	}
	return s.folders.ResolveFolder(ctx, projectID, env, norm)
}

// CreateImport makes the folder of sc import the shared secrets of target
// (a create: project.Place).
func (s *Service) CreateImport(ctx context.Context, actor authz.Actor, sc Scope, target Target) (Import, error) {
	if err := s.projectOf(ctx, actor, &sc); err != nil {
		return Import{}, err
	}
	var out Import
	err := project.Place(ctx, s.tags, sc.ProjectID, func(ctx context.Context) (err error) {
		out, err = s.createImport(ctx, actor, sc, target)
		return err
	})
	return out, err
}

// createImport is one try of CreateImport.
func (s *Service) createImport(ctx context.Context, actor authz.Actor, sc Scope, target Target) (Import, error) {
	f, env, perms, err := s.importScope(ctx, actor, &sc, authz.ActCreate)
	if err != nil {
		return Import{}, err
	}
	if target.Env == "" {
		return Import{}, invalidField("import.environment", "Required")
	}
	tf, tenv, err := s.importSource(ctx, perms, sc.ProjectID, target.Env, first(target.Path, "/"))
	if err != nil {
		return Import{}, err
	}
	if tf.ID == f.ID {
		return Import{}, errs.BadRequest("A folder cannot import itself")
	}
	existing, err := s.store.Imports(ctx, f.ID)
	if err != nil {
		return Import{}, err
	}
	now := s.now().UTC().Truncate(time.Microsecond)
	imp := Import{ID: uuid.Must(uuid.NewV7()).String(), FolderID: f.ID, EnvID: tenv.ID, EnvSlug: tenv.Slug, EnvName: tenv.Name,
		Path: tf.Path, Position: len(existing) + 1, Version: 1, CreatedAt: now, UpdatedAt: now}
	for _, e := range existing {
		imp.Position = max(imp.Position, e.Position+1)
	}
	imp.Position = min(imp.Position, MaxImportPosition)
	sc.Env, sc.Path = env.Slug, f.Path
	if err := s.store.CreateImport(ctx, imp, importEvent(actor, "create-secret-import", sc, imp)); err != nil {
		if errs.Is(err, errs.Conflict) && !errors.Is(err, project.ErrMoved) {
			return Import{}, errs.BadRequest("This folder already imports %s:%s", tenv.Slug, tf.Path)
		}
		return Import{}, err
	}
	return imp, nil
}

// ListImports returns a folder's imports by position.
func (s *Service) ListImports(ctx context.Context, actor authz.Actor, sc Scope) ([]Import, error) {
	f, _, _, err := s.importScope(ctx, actor, &sc, authz.ActRead)
	if err != nil {
		return nil, err
	}
	return s.store.Imports(ctx, f.ID)
}

func (s *Service) importIn(ctx context.Context, folderID, id string) (Import, error) {
	imp, err := s.store.ImportByID(ctx, folderID, id)
	if errs.Is(err, errs.NotFound) {
		return Import{}, errs.NotFoundf("Secret import with ID '%s' not found", truncate(id, 64))
	}
	return imp, err
}

// ImportLocation is an import read by id alone, with where it lives.
type ImportLocation struct {
	Import
	Folder project.Folder      // the folder that imports
	Env    project.Environment // the folder's environment
}

// GetImport returns an import by id alone. The actor needs read on imports
// at the importing folder; to a non-member of its project the import does
// not exist.
func (s *Service) GetImport(ctx context.Context, actor authz.Actor, id string) (ImportLocation, error) {
	notFound := errs.NotFoundf("Secret import with ID '%s' not found", truncate(id, 64))
	if _, err := uuid.Parse(id); err != nil {
		return ImportLocation{}, notFound
	}
	imp, err := s.store.ImportWithID(ctx, id)
	if errs.Is(err, errs.NotFound) {
		return ImportLocation{}, notFound
	}
	if err != nil {
		return ImportLocation{}, err
	}
	f, env, err := s.folders.FolderLocation(ctx, imp.FolderID)
	if errs.Is(err, errs.NotFound) {
		return ImportLocation{}, notFound
	}
	if err != nil {
		return ImportLocation{}, err
	}
	perms, err := s.authz.ProjectPermissions(ctx, actor, env.ProjectID)
	if errs.Is(err, errs.NotFound) || errs.Is(err, errs.Forbidden) {
		return ImportLocation{}, notFound
	}
	if err != nil {
		return ImportLocation{}, err
	}
	if err := perms.Check(authz.ActRead, authz.SubImports, &authz.Fields{Environment: env.Slug, SecretPath: f.Path}); err != nil {
		return ImportLocation{}, err
	}
	return ImportLocation{Import: imp, Folder: f, Env: env}, nil
}

// ImportChange moves an import or points it elsewhere; zero fields stay.
type ImportChange struct {
	Env      string
	Path     string
	Position int
}

// UpdateImport changes an import's target or position.
func (s *Service) UpdateImport(ctx context.Context, actor authz.Actor, sc Scope, id string, c ImportChange) (Import, error) {
	f, _, perms, err := s.importScope(ctx, actor, &sc, authz.ActEdit)
	if err != nil {
		return Import{}, err
	}
	imp, err := s.importIn(ctx, f.ID, id)
	if err != nil {
		return Import{}, err
	}
	if c.Env != "" || c.Path != "" {
		tf, tenv, err := s.importSource(ctx, perms, sc.ProjectID, first(c.Env, imp.EnvSlug), first(c.Path, imp.Path))
		if err != nil {
			return Import{}, err
		}
		if tf.ID == f.ID {
			return Import{}, errs.BadRequest("A folder cannot import itself")
		}
		imp.EnvID, imp.EnvSlug, imp.EnvName, imp.Path = tenv.ID, tenv.Slug, tenv.Name, tf.Path
	}
	if c.Position < 0 || c.Position > MaxImportPosition {
		return Import{}, invalidField("import.position", "position must be 1 to %d", MaxImportPosition)
	}
	if c.Position > 0 {
		imp.Position = c.Position
	}
	imp.Version++
	imp.UpdatedAt = s.now().UTC().Truncate(time.Microsecond)
	return imp, s.store.UpdateImport(ctx, imp, importEvent(actor, "update-secret-import", sc, imp))
}

// DeleteImport removes an import.
func (s *Service) DeleteImport(ctx context.Context, actor authz.Actor, sc Scope, id string) (Import, error) {
	f, _, _, err := s.importScope(ctx, actor, &sc, authz.ActDelete)
	if err != nil {
		return Import{}, err
	}
	imp, err := s.importIn(ctx, f.ID, id)
	if err != nil {
		return Import{}, err
	}
	return imp, s.store.DeleteImport(ctx, imp, importEvent(actor, "delete-secret-import", sc, imp))
}

// imported reads the shared secrets the folder imports, breadth first, to
// MaxImportDepth, each env:path once. Secrets the actor may not see are left
// out; values it may not read are hidden.
func (s *Service) imported(ctx context.Context, perms authz.Set, projectID, folderID string, o ReadOptions, rd *reader) ([]ImportedSecrets, error) {
	type item struct {
		imp   Import
		depth int
	}
	top, err := s.store.Imports(ctx, folderID)
	if err != nil {
		return nil, err
	}
	var queue []item
	for _, imp := range top {
		queue = append(queue, item{imp, 1})
	}
	seen := map[string]bool{}
	followed := 0
	var out []ImportedSecrets
	for len(queue) > 0 {
		it := queue[0]
		queue = queue[1:]
		key := it.imp.EnvSlug + "=" + it.imp.Path
		if seen[key] || it.depth > MaxImportDepth {
			continue
		}
		seen[key] = true
		if followed++; followed > MaxImportFolders {
			return nil, errs.BadRequest("The folder's imports reach more than %d folders; read the imported folders on their own, or remove imports", MaxImportFolders)
		}
		f, _, err := s.folders.ResolveFolder(ctx, projectID, it.imp.EnvSlug, it.imp.Path)
		if errs.Is(err, errs.NotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		sealed, err := s.importedRows(ctx, f.ID, rd.only)
		if err != nil {
			return nil, err
		}
		tags, err := s.loadTags(ctx, sealed)
		if err != nil {
			return nil, err
		}
		block := ImportedSecrets{Env: it.imp.EnvSlug, Path: f.Path, FolderID: f.ID, Secrets: []Secret{}}
		for _, sl := range sealed {
			describe, value := canSee(perms, it.imp.EnvSlug, f.Path, sl.Key, tags[sl.ID])
			if sl.Type != Shared || !describe {
				continue
			}
			if err := rd.size.opened(sl, value && !o.HideValue); err != nil {
				return nil, err
			}
			sec, err := s.open(ctx, sl, it.imp.EnvSlug, f.Path)
			if err != nil {
				return nil, err
			}
			sec.Tags = tags[sl.ID]
			if !value || o.HideValue {
				sec.Value, sec.ValueHidden = HiddenValue, true
			} else if o.Expand {
				if err := rd.expand(ctx, &sec); err != nil {
					return nil, err
				}
			}
			block.Secrets = append(block.Secrets, sec)
		}
		// A folder the reader may see nothing in is left out: its block
		// told where the imports one may not read lead (paths, folder ids).
		if describe, _ := canSee(perms, it.imp.EnvSlug, f.Path, "", nil); describe || len(block.Secrets) > 0 {
			out = append(out, block)
		}
		nested, err := s.store.Imports(ctx, f.ID)
		if err != nil {
			return nil, err
		}
		for _, n := range nested {
			queue = append(queue, item{n, it.depth + 1})
		}
	}
	return out, nil
}

// importedRows are the shared rows of an imported folder: all of them, or
// only the one named only (getImported: the others are not read).
func (s *Service) importedRows(ctx context.Context, folderID, only string) ([]Sealed, error) {
	if only == "" {
		return s.store.FolderSecrets(ctx, folderID, "")
	}
	sl, err := s.store.SecretByKey(ctx, folderID, only, Shared, "")
	if errs.Is(err, errs.NotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return []Sealed{sl}, nil
}

func first(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
