package project

import (
	"context"
	"errors"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/lockbox-dev/lockbox/internal/audit"
	"github.com/lockbox-dev/lockbox/internal/authz"
	"github.com/lockbox-dev/lockbox/internal/cache"
	"github.com/lockbox-dev/lockbox/internal/errs"
	"github.com/lockbox-dev/lockbox/internal/lazyre"
)

// Folder is a node of an environment's folder tree; the root folder has no parent.
type Folder struct {
	ID          string
	EnvID       string
	ParentID    string
	Name        string
	Description string
	Version     int
	Path        string // the folder's own path, e.g. "/a/b"
	CreatedAt   time.Time
	UpdatedAt   time.Time
}

// RootFolderName is the name of every environment's root folder.
const RootFolderName = "root"

var folderName = lazyre.New(`^[a-zA-Z0-9_-]{1,64}$`)

// ValidFolderName reports whether s is a folder name Infisical accepts.
func ValidFolderName(s string) bool { return folderName().MatchString(s) }

// NormalizePath cleans a folder path: it must start with "/", duplicate and
// trailing slashes are dropped, and every segment must be a valid folder name
// (so "." and ".." are rejected). The root is "/".
func NormalizePath(p string) (string, error) {
	p = strings.TrimSpace(p)
	if p == "" {
		return "/", nil
	}
	if !strings.HasPrefix(p, "/") {
		return "", invalidField("path", "Path must start with /")
	}
	var segs []string
	for _, s := range strings.Split(p, "/") {
		if s == "" {
			continue
		}
		if !ValidFolderName(s) {
			return "", invalidField("path", "Path segment %q is not a valid folder name (letters, digits, - and _ only)", truncate(s, 64))
		}
		segs = append(segs, s)
	}
	if len(segs) > 32 {
		return "", invalidField("path", "Path is deeper than 32 folders")
	}
	return "/" + strings.Join(segs, "/"), nil
}

// MaxFoldersPerEnvironment bounds the folders of one environment, its root
// included: a recursive read loads every folder below its path, and deleting
// a folder or the environment takes all below it in one transaction. The
// store counts them under a lock of the environment, missing parents
// included, so concurrent creates do not pass it.
const MaxFoldersPerEnvironment = 10_000

// TooManyFolders is the refusal of a folder past MaxFoldersPerEnvironment.
func TooManyFolders() error {
	return errs.BadRequest("An environment has at most %d folders", MaxFoldersPerEnvironment)
}

// Segments splits a normalised path into folder names; "/" has none.
func Segments(path string) []string {
	if path == "/" {
		return nil
	}
	return strings.Split(strings.TrimPrefix(path, "/"), "/")
}

// JoinPath appends a folder name to a normalised path.
func JoinPath(parent, name string) string {
	if parent == "/" {
		return "/" + name
	}
	return parent + "/" + name
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// FolderRef names an environment and path in a project.
type FolderRef struct {
	ProjectID string
	Env       string // environment slug
	Path      string
}

// projectEnv loads a project the actor belongs to, one of its environments,
// and the actor's permissions there. Permission on folders is checked by the
// caller, on the path it acts on.
func (s *Service) projectEnv(ctx context.Context, actor authz.Actor, projectID, envSlug string) (Project, Environment, authz.Set, error) {
	if projectID == "" {
		return Project{}, Environment{}, authz.Set{}, invalidField("workspaceId", "Required")
	}
	if envSlug == "" {
		return Project{}, Environment{}, authz.Set{}, invalidField("environment", "Required")
	}
	if _, err := uuid.Parse(projectID); err != nil {
		return Project{}, Environment{}, authz.Set{}, projectNotFound(projectID)
	}
	perms, err := s.authz.ProjectPermissions(ctx, actor, projectID)
	if err != nil {
		return Project{}, Environment{}, authz.Set{}, err
	}
	p, err := s.store.ProjectByID(ctx, projectID)
	if errs.Is(err, errs.NotFound) {
		return Project{}, Environment{}, authz.Set{}, projectNotFound(projectID)
	}
	if err != nil {
		return Project{}, Environment{}, authz.Set{}, err
	}
	env, ok := findEnv(p.Environments, func(e Environment) bool { return e.Slug == envSlug })
	if !ok {
		return Project{}, Environment{}, authz.Set{}, errs.NotFoundf("Environment with slug '%s' in project '%s' not found", truncate(envSlug, 64), p.ID)
	}
	return p, env, perms, nil
}

func checkFolders(perms authz.Set, action string, env Environment, path string) error {
	return perms.Check(action, authz.SubFolders, &authz.Fields{Environment: env.Slug, SecretPath: path})
}

// ErrNoFolder is wrapped by the NotFound of ResolveFolder when the
// environment exists but no folder has the path. Infisical lists such a path
// as empty, and `infisical run --path /new` relies on it.
var ErrNoFolder = errors.New("no folder at this path")

// ResolveFolder finds the folder at path in a project's environment. It checks
// no permission: callers check their own subject. When only the folder is
// missing, the error wraps ErrNoFolder and the environment is returned with a
// Folder that has the normalised Path and no ID.
func (s *Service) ResolveFolder(ctx context.Context, projectID, envSlug, path string) (Folder, Environment, error) {
	path, err := NormalizePath(path)
	if err != nil {
		return Folder{}, Environment{}, err
	}
	p, err := s.store.ProjectByID(ctx, projectID)
	if err != nil {
		return Folder{}, Environment{}, err
	}
	env, ok := findEnv(p.Environments, func(e Environment) bool { return e.Slug == envSlug })
	if !ok {
		return Folder{}, Environment{}, errs.NotFoundf("Environment with slug '%s' not found", envSlug)
	}
	f, err := s.store.FolderByPath(ctx, env.ID, path)
	if errs.Is(err, errs.NotFound) {
		e := errs.NotFoundf("Folder with path '%s' in environment '%s' not found", path, envSlug)
		e.Err = ErrNoFolder
		return Folder{EnvID: env.ID, Path: path}, env, e
	}
	return f, env, err
}

// FolderLocation returns a folder (with its path) and its environment. It
// checks no permission: callers check their own subject.
func (s *Service) FolderLocation(ctx context.Context, folderID string) (Folder, Environment, error) {
	return s.store.FolderLocation(ctx, folderID)
}

// ChildFolders lists the folders directly under folderID. It checks no
// permission: callers check their own subject.
func (s *Service) ChildFolders(ctx context.Context, folderID string) ([]Folder, error) {
	return s.store.ChildFolders(ctx, folderID)
}

// SubtreeFolders lists every folder below folderID, by name (the
// database's order). It checks no permission: callers check their own subject.
func (s *Service) SubtreeFolders(ctx context.Context, folderID string) ([]Folder, error) {
	return s.store.SubtreeFolders(ctx, folderID)
}

func folderMeta(env Environment, f Folder) map[string]any {
	return map[string]any{"environment": env.Slug, "folderId": f.ID, "folderName": f.Name, "folderPath": f.Path}
}

// ListFolders returns the folders directly under ref.Path, each with its
// full path; a path that does not exist (yet) has none, as in Infisical.
func (s *Service) ListFolders(ctx context.Context, actor authz.Actor, ref FolderRef) ([]Folder, error) {
	path, err := NormalizePath(ref.Path)
	if err != nil {
		return nil, err
	}
	_, env, perms, err := s.projectEnv(ctx, actor, ref.ProjectID, ref.Env)
	if err != nil {
		return nil, err
	}
	if err := checkFolders(perms, authz.ActRead, env, path); err != nil {
		return nil, err
	}
	parent, err := s.store.FolderByPath(ctx, env.ID, path)
	if errs.Is(err, errs.NotFound) {
		return []Folder{}, nil
	}
	if err != nil {
		return nil, err
	}
	kids, err := s.store.ChildFolders(ctx, parent.ID)
	for i := range kids {
		kids[i].Path = JoinPath(path, kids[i].Name)
	}
	return kids, err
}

// CreateFolder creates folder name under ref.Path, creating missing parents
// (a create: Place).
func (s *Service) CreateFolder(ctx context.Context, actor authz.Actor, ref FolderRef, name, desc string) (Folder, error) {
	path, err := NormalizePath(ref.Path)
	if err != nil {
		return Folder{}, err
	}
	name = strings.TrimSpace(name)
	var out Folder
	err = Place(ctx, s.store, ref.ProjectID, func(ctx context.Context) (err error) {
		out, err = s.createFolder(ctx, actor, ref, path, name, desc)
		return err
	})
	return out, err
}

// createFolder is one try of CreateFolder.
func (s *Service) createFolder(ctx context.Context, actor authz.Actor, ref FolderRef, path, name, desc string) (Folder, error) {
	p, env, perms, err := s.projectEnv(ctx, actor, ref.ProjectID, ref.Env)
	if err != nil {
		return Folder{}, err
	}
	if err := checkFolders(perms, authz.ActCreate, env, path); err != nil {
		return Folder{}, err
	}
	if !ValidFolderName(name) {
		return Folder{}, invalidField("name", "Folder name must be 1 to 64 letters, digits, - or _")
	}
	desc, err = description("description", desc)
	if err != nil {
		return Folder{}, err
	}
	now := s.now().UTC().Truncate(time.Microsecond)
	f := Folder{ID: newID(), EnvID: env.ID, Name: name, Description: desc, Version: 1,
		Path: JoinPath(path, name), CreatedAt: now, UpdatedAt: now}
	ev := audit.New(actor, "create-folder", folderMeta(env, f)).InProject(p.ID, p.Name)
	f, err = s.store.CreateFolder(ctx, env.ID, path, f, ev)
	if errs.Is(err, errs.Conflict) && !errors.Is(err, ErrMoved) {
		return Folder{}, errs.BadRequest("Folder with name '%s' already exists in '%s'", name, path)
	}
	return f, err
}

// folderIn finds a folder by id, or by name under ref.Path.
func (s *Service) folderIn(ctx context.Context, env Environment, path, idOrName string) (Folder, error) {
	if _, err := uuid.Parse(idOrName); err == nil {
		f, err := s.store.FolderByID(ctx, env.ID, idOrName)
		if err == nil || !errs.Is(err, errs.NotFound) {
			return f, err
		}
	}
	if !ValidFolderName(idOrName) {
		return Folder{}, errs.NotFoundf("Folder '%s' not found", truncate(idOrName, 64))
	}
	f, err := s.store.FolderByPath(ctx, env.ID, JoinPath(path, idOrName))
	if errs.Is(err, errs.NotFound) {
		return Folder{}, errs.NotFoundf("Folder '%s' not found in '%s'", idOrName, path)
	}
	return f, err
}

// parentPath is the path of the folder that holds f.
func parentPath(f Folder) string {
	i := strings.LastIndex(f.Path, "/")
	if i <= 0 {
		return "/"
	}
	return f.Path[:i]
}

// target finds the folder an update or delete names (by id, or by name under
// ref.Path) and checks action on the path that holds it. The root folder
// cannot be the target.
func (s *Service) target(ctx context.Context, actor authz.Actor, ref FolderRef, idOrName, action string) (Project, Environment, Folder, authz.Set, error) {
	path, err := NormalizePath(ref.Path)
	if err != nil {
		return Project{}, Environment{}, Folder{}, authz.Set{}, err
	}
	p, env, perms, err := s.projectEnv(ctx, actor, ref.ProjectID, ref.Env)
	if err != nil {
		return Project{}, Environment{}, Folder{}, authz.Set{}, err
	}
	// Refuse early an actor that may not act on folders anywhere, so it
	// cannot probe which folders exist.
	if !perms.Can(action, authz.SubFolders, nil) {
		return Project{}, Environment{}, Folder{}, authz.Set{}, errs.PermissionDenied(action, authz.SubFolders)
	}
	f, err := s.folderIn(ctx, env, path, idOrName)
	if err != nil {
		return Project{}, Environment{}, Folder{}, authz.Set{}, err
	}
	if f.ParentID == "" {
		return Project{}, Environment{}, Folder{}, authz.Set{}, errs.BadRequest("The root folder cannot be changed or deleted")
	}
	if err := checkFolders(perms, action, env, parentPath(f)); err != nil {
		return Project{}, Environment{}, Folder{}, authz.Set{}, err
	}
	return p, env, f, perms, nil
}

// UpdateFolder renames a folder (given by id, or by name under ref.Path).
// The permission is checked on the path that holds the folder.
func (s *Service) UpdateFolder(ctx context.Context, actor authz.Actor, ref FolderRef, idOrName, newName, desc string) (Folder, error) {
	newName = strings.TrimSpace(newName)
	if !ValidFolderName(newName) {
		return Folder{}, invalidField("name", "Folder name must be 1 to 64 letters, digits, - or _")
	}
	var out Folder
	err := RetryMoves(ctx, func() (err error) {
		out, err = s.updateFolder(ctx, actor, ref, idOrName, newName, desc)
		return err
	})
	return out, err
}

// updateFolder is one try of UpdateFolder.
func (s *Service) updateFolder(ctx context.Context, actor authz.Actor, ref FolderRef, idOrName, newName, desc string) (Folder, error) {
	ctx, seen, serr := BeginMove(ctx, s.store, ref.ProjectID)
	p, env, f, perms, err := s.target(ctx, actor, ref, idOrName, authz.ActEdit)
	if err != nil {
		return Folder{}, err
	}
	old := f
	if newName != f.Name {
		if err := s.rotationsGuard(ctx, p.ID, env.Slug, f.Path, "rename this folder"); err != nil {
			return Folder{}, err
		}
		newPath := JoinPath(parentPath(old), newName)
		if ctx, err = s.checkMove(ctx, perms, MoveGuard{ProjectID: p.ID, Seen: seen}, serr, f, "secretPath", func(h Held) Held {
			h.Path = newPath + strings.TrimPrefix(h.Path, old.Path)
			return h
		}); err != nil {
			return Folder{}, err
		}
	}
	f.Name, f.Version = newName, f.Version+1
	if desc != "" {
		if f.Description, err = description("description", desc); err != nil {
			return Folder{}, err
		}
	}
	f.Path = JoinPath(parentPath(old), newName)
	f.UpdatedAt = s.now().UTC().Truncate(time.Microsecond)
	meta := folderMeta(env, f)
	meta["oldFolderName"] = old.Name
	ev := audit.New(actor, "update-folder", meta).InProject(p.ID, p.Name)
	if err := s.store.UpdateFolder(ctx, f, ev); err != nil {
		if errs.Is(err, errs.Conflict) && !errors.Is(err, ErrMoved) {
			return Folder{}, errs.BadRequest("Folder with name '%s' already exists in '%s'", newName, parentPath(f))
		}
		return Folder{}, err
	}
	return f, nil
}

// DeleteFolder deletes a folder (given by id, or by name under ref.Path) and
// its whole subtree. The permission is checked on the path that holds it,
// and the caller must be allowed to delete what the subtree holds (a move:
// MoveGuard).
func (s *Service) DeleteFolder(ctx context.Context, actor authz.Actor, ref FolderRef, idOrName string) (Folder, error) {
	var out Folder
	err := RetryMoves(ctx, func() (err error) {
		out, err = s.deleteFolder(ctx, actor, ref, idOrName)
		return err
	})
	return out, err
}

// deleteFolder is one try of DeleteFolder.
func (s *Service) deleteFolder(ctx context.Context, actor authz.Actor, ref FolderRef, idOrName string) (Folder, error) {
	ctx, seen, serr := BeginMove(ctx, s.store, ref.ProjectID)
	p, env, f, perms, err := s.target(ctx, actor, ref, idOrName, authz.ActDelete)
	if err != nil {
		return Folder{}, err
	}
	if err := s.rotationsGuard(ctx, p.ID, env.Slug, f.Path, "delete this folder"); err != nil {
		return Folder{}, err
	}
	if ctx, err = checkDelete(ctx, perms, MoveGuard{ProjectID: p.ID, Seen: seen}, serr, f); err != nil {
		return Folder{}, err
	}
	ev := audit.New(actor, "delete-folder", folderMeta(env, f)).InProject(p.ID, p.Name)
	return f, leasesLeft(s.store.DeleteFolder(ctx, f, ev), "delete this folder")
}

func folderNotFound(id string) error {
	return errs.NotFoundf("Folder with ID '%s' not found", truncate(id, 64))
}

// memberPerms returns the actor's permissions in the project a resource
// named by id alone belongs to. An actor that is not a member (or is of
// another organization) gets notFound, so ids cannot be probed.
func (s *Service) memberPerms(ctx context.Context, actor authz.Actor, projectID string, notFound error) (authz.Set, error) {
	perms, err := s.authz.ProjectPermissions(ctx, actor, projectID)
	if errs.Is(err, errs.NotFound) || errs.Is(err, errs.Forbidden) {
		return authz.Set{}, notFound
	}
	return perms, err
}

// GetFolder returns a folder by id, with its path and environment. The actor
// needs read on folders at the folder's own path; to a non-member of its
// project the folder does not exist.
func (s *Service) GetFolder(ctx context.Context, actor authz.Actor, id string) (Folder, Environment, error) {
	if _, err := uuid.Parse(id); err != nil {
		return Folder{}, Environment{}, folderNotFound(id)
	}
	f, env, err := s.store.FolderLocation(ctx, id)
	if errs.Is(err, errs.NotFound) {
		return Folder{}, Environment{}, folderNotFound(id)
	}
	if err != nil {
		return Folder{}, Environment{}, err
	}
	perms, err := s.memberPerms(ctx, actor, env.ProjectID, folderNotFound(id))
	if err != nil {
		return Folder{}, Environment{}, err
	}
	if err := checkFolders(perms, authz.ActRead, env, f.Path); err != nil {
		return Folder{}, Environment{}, err
	}
	return f, env, nil
}

// rotationsGuard refuses a change that would move or remove secrets a
// secret rotation writes (its location is an environment slug and a path):
// renaming and renaming back would otherwise let anyone edit a rotated
// value, and deleting would leave the rotation writing nowhere.
func (s *Service) rotationsGuard(ctx context.Context, projectID, env, path, what string) error {
	n, err := s.store.RotationsUnder(ctx, projectID, env, path)
	if err != nil {
		return err
	}
	if n > 0 {
		return errs.BadRequest("Cannot %s: it holds secrets of %d secret rotation(s); delete the rotation(s) first", what, n)
	}
	return nil
}

// LeasesLeftError is the store's refusal to delete a folder, an environment
// or a project that holds dynamic secrets with leases not yet revoked (or
// users still to drop): deleting their rows would leave those users in
// their targets, where nothing would ever revoke them. Secrets is how many
// such dynamic secrets there are.
type LeasesLeftError struct{ Secrets int }

func (e *LeasesLeftError) Error() string { return "dynamic secrets with live leases" }

// leasesLeft turns the store's LeasesLeftError into the caller's 400. It
// gives a count, as rotationsGuard does, not names: the caller may delete
// the whole but not read every dynamic secret in it.
func leasesLeft(err error, what string) error {
	le, ok := errors.AsType[*LeasesLeftError](err)
	if !ok {
		return err
	}
	return errs.BadRequest("Cannot %s: it holds %d dynamic secret(s) with leases not yet revoked, or revoked users not yet dropped from their targets; delete those dynamic secrets first (which revokes their leases) or revoke their leases, and retry shortly",
		what, le.Secrets)
}

// Held is what a folder holds as permission checks see it: a secret, a
// dynamic secret, a folder or an import (Subject), where it is (for a
// folder, the path of the folder that holds it, where its permissions are
// checked), its name (a secret's key) and, for a secret, its tags' slugs.
type Held struct {
	ID        string
	Subject   authz.Subject
	Env, Path string
	Name      string
	Tags      []string
}

func (h Held) subject() (authz.Subject, *authz.Fields) {
	if h.Subject == authz.SubSecrets {
		return authz.SubSecrets, &authz.Fields{Environment: h.Env, SecretPath: h.Path, SecretName: h.Name, SecretTags: h.Tags}
	}
	return h.Subject, &authz.Fields{Environment: h.Env, SecretPath: h.Path}
}

// movable are the subjects whose permissions a move of their folder, or
// of its environment, can change: their conditions name both.
var movable = []authz.Subject{authz.SubSecrets, authz.SubDynamicSecrets, authz.SubFolders, authz.SubImports}

// MayMove refuses a change that moves what held lists (a rename of its
// folder, environment or tag; moved gives the new place) if, once moved,
// perms would allow an action on any of it that they refuse where it is
// now: a role kept out of a folder, an environment or tagged secrets (or
// their dynamic secrets, subfolders or imports) must not rename its way in.
func MayMove(perms authz.Set, held []Held, moved func(Held) Held) error {
	for _, h := range held {
		sub, before := h.subject()
		_, after := moved(h).subject()
		if perms.Widens(sub, before, after) {
			return errs.Forbiddenf("This change would give you access to secrets you cannot access now").WithCode("PermissionDenied")
		}
	}
	return nil
}

// MayDelete refuses the deletion of a folder, an environment or what else
// holds held unless perms may delete each of them.
func MayDelete(perms authz.Set, held []Held) error {
	for _, h := range held {
		sub, f := h.subject()
		action := authz.ActDelete
		switch h.Subject {
		case authz.SubDynamicSecrets:
			action = authz.ActDeleteRootCredential
		case authz.SubFolders, authz.SubImports:
			continue // deleted with their folder, on the folder's permission
		}
		if !perms.Can(action, sub, f) {
			return errs.Forbiddenf("This would delete secrets you may not delete").WithCode("PermissionDenied")
		}
	}
	return nil
}

// checkMove is MayMove for what folder f and the folders below it hold,
// when a change moves it (to where moved says) by changing its condition
// field (secretPath or environment); it returns ctx with guard (read by
// BeginMove, failed if serr) for the move's write, which reads the contents
// and checks them once it holds the project (MoveGuard.Check). A set with
// no rule on what a folder holds that names that field allows the same
// wherever it is moved: the contents are not read (the move is guarded all
// the same).
func (s *Service) checkMove(ctx context.Context, perms authz.Set, guard MoveGuard, serr error, f Folder, field string, moved func(Held) Held) (context.Context, error) {
	if serr != nil {
		return ctx, serr
	}
	if slices.ContainsFunc(movable, func(sub authz.Subject) bool { return perms.UsesCondition(sub, field) }) {
		guard.Check = judgeContents(f, func(held []Held) error { return MayMove(perms, held, moved) })
	}
	return WithMoveGuard(ctx, guard), nil
}

// judgeContents is a MoveGuard.Check that reads what folder f and the
// folders below it hold and lets judge refuse the move.
func judgeContents(f Folder, judge func([]Held) error) func(context.Context, Contents) error {
	return func(ctx context.Context, c Contents) error {
		held, err := c.FolderContents(ctx, f)
		if err != nil {
			return err
		}
		return judge(held)
	}
}

// checkDelete returns ctx with guard (read by BeginMove, failed if serr)
// for the deletion of folder f, with what is below it: its write checks
// MayDelete on what they hold once it holds the project.
func checkDelete(ctx context.Context, perms authz.Set, guard MoveGuard, serr error, f Folder) (context.Context, error) {
	if serr != nil {
		return ctx, serr
	}
	guard.Check = judgeContents(f, func(held []Held) error { return MayDelete(perms, held) })
	return WithMoveGuard(ctx, guard), nil
}

// RetryMoves runs move until it fails for another reason than ErrMoved (a
// move of the project committed between its check and its write), or
// succeeds, or has tried MoveTries times (then its 409 is returned). Each try
// reads what it checks again.
func RetryMoves(ctx context.Context, move func() error) error {
	return Retry(ctx, func(err error) bool { return errors.Is(err, ErrMoved) }, MoveTries, move)
}

// MoveTries is how many times a move that others keep beating is tried.
const MoveTries = 20

// Retry runs try until it succeeds, or fails with an error again does not
// accept, or (max > 0) has run max times; ctx bounds the whole. Between
// tries it waits a jittered time that doubles from 1 ms up to 32 ms, so
// that writers that lost a race do not collide again in lockstep. It
// returns the last try's error.
func Retry(ctx context.Context, again func(error) bool, max int, try func() error) error {
	wait := time.Millisecond
	for n := 1; ; n++ {
		err := try()
		if err == nil || !again(err) || n == max {
			return err
		}
		t := time.NewTimer(rand.N(wait) + time.Microsecond)
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
		wait = min(2*wait, 32*time.Millisecond)
	}
}

// RetryStale runs a compare-and-set write (try: read, check, apply, write
// only if the row is still as read) until it does not lose to a concurrent
// change (ErrStale), under Retry, up to MoveTries times; losing every time
// is a 409 naming what. Settings are written as whole rows: without it, a
// change from an earlier read would undo one committed since.
func RetryStale[T any](ctx context.Context, what string, try func() (T, error)) (T, error) {
	var out T
	err := Retry(ctx, func(err error) bool { return errors.Is(err, ErrStale) }, MoveTries, func() (err error) {
		out, err = try()
		return err
	})
	var zero T
	switch {
	case errors.Is(err, ErrStale):
		return zero, errs.Conflictf("The %s is being changed by other requests; retry", what)
	case err != nil:
		return zero, err
	}
	return out, nil
}

// RetryChecked runs do with c, a request checked before, as RetryStale
// runs try; when do reports ErrStale (what c was checked against changed
// before do's write), check makes c again from things as they now are, or
// refuses, and do runs again with it.
func RetryChecked[C, T any](ctx context.Context, what string, c C, check func() (C, error), do func(C) (T, error)) (T, error) {
	first := true
	return RetryStale(ctx, what, func() (T, error) {
		if !first {
			var err error
			if c, err = check(); err != nil {
				var zero T
				return zero, err
			}
		}
		first = false
		return do(c)
	})
}

// MoveGuard makes a move (a rename of a folder, an environment's slug or a
// tag, the deletion of a folder, an environment or a tag, a secret renamed
// or retagged) conditional: it is written only if the project's count of
// moves is still Seen, the count read before the move's permission check
// read anything it checks. Two moves checked at the same time (each allowed
// alone, together revealing a secret: a path denial lifted by one, a tag
// denial by the other) cannot both commit: the second fails with ErrMoved
// and is resolved, checked and tried again.
//
// A move whose contents are not checked (the caller's rules do not name
// what it changes) is guarded all the same: it resolved where it writes
// before another move may have changed that place (a secret renamed by id
// in a folder renamed meanwhile lands where its caller never looked).
//
// A create (Place: a secret, dynamic secret, folder or import put in a
// folder) is guarded too, without counting itself: it is written only if no
// move committed since it resolved the folder, environment and tags it
// checked, and holds moves off until it commits. So a move's Check, run once
// the move holds the project, sees every create that will land in what it
// moves: a create cannot slip into a folder between the check of its rename
// (or deletion) and its write.
type MoveGuard struct {
	ProjectID string
	Seen      int64
	Place     bool
	// Check, if set, is run in the move's transaction once it holds the
	// project; it reads what the move changes (c) and refuses the move.
	Check func(ctx context.Context, c Contents) error
}

// Contents reads what a move changes, in its transaction (MoveGuard.Check).
type Contents interface {
	// FolderContents lists what a folder and the folders below it hold:
	// secrets (with their tags), dynamic secrets, subfolders and imports.
	FolderContents(ctx context.Context, f Folder) ([]Held, error)
	// TaggedSecrets lists the secrets of a project that carry a tag.
	TaggedSecrets(ctx context.Context, projectID, tagID string) ([]Held, error)
}

type moveGuardKey struct{}

// ErrMoved is wrapped by the 409 of a move that another committed before.
var ErrMoved = errors.New("another move in the project committed first")

// WithMoveGuard returns ctx carrying g, for the store's write of the move;
// a zero g takes a guard off.
func WithMoveGuard(ctx context.Context, g MoveGuard) context.Context {
	return context.WithValue(ctx, moveGuardKey{}, g)
}

// MoveGuardOf returns the guard ctx carries, if any.
func MoveGuardOf(ctx context.Context) (MoveGuard, bool) {
	g, ok := ctx.Value(moveGuardKey{}).(MoveGuard)
	return g, ok && g.ProjectID != ""
}

// BeginMove starts a move (or a create) in a project: it returns the
// project's count of moves, read before anything the move is checked
// against, and a context whose lookups are at least as new as the count
// (caches synchronised with the database again after it: cache.Resync).
// Give the count to WithMoveGuard for the write.
func BeginMove(ctx context.Context, s interface {
	ProjectMoves(ctx context.Context, projectID string) (int64, error)
}, projectID string) (context.Context, int64, error) {
	n, err := s.ProjectMoves(cache.Unsynced(ctx), projectID)
	return cache.Resync(ctx), n, err
}

// Place runs create, a write that puts something in a folder of a project
// (a secret, a dynamic secret, a folder, an import), under a Place guard:
// ctx for create is BeginMove's, so create resolves and checks what it
// writes from the database after the count is read, and the write fails
// with ErrMoved if a move committed since; then create is tried again
// (RetryMoves). A project that does not exist is left to create to
// report.
func Place(ctx context.Context, s interface {
	ProjectMoves(ctx context.Context, projectID string) (int64, error)
}, projectID string, create func(ctx context.Context) error) error {
	if _, err := uuid.Parse(projectID); err != nil {
		return create(ctx) // names no project: create says so, writing nothing
	}
	return RetryMoves(ctx, func() error {
		ctx, seen, err := BeginMove(ctx, s, projectID)
		if errs.Is(err, errs.NotFound) {
			return create(ctx) // no such project: as above
		}
		if err != nil {
			return err
		}
		return create(WithMoveGuard(ctx, MoveGuard{ProjectID: projectID, Seen: seen, Place: true}))
	})
}
