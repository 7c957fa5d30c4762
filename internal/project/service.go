package project

import (
	"context"
	"time"

	"github.com/lockbox-dev/lockbox/internal/audit"
	"github.com/lockbox-dev/lockbox/internal/authz"
	"github.com/lockbox-dev/lockbox/internal/keyring"
)

// Authorizer resolves what an actor may do.
type Authorizer interface {
	OrgPermissions(ctx context.Context, actor authz.Actor) (authz.Set, error)
	ProjectPermissions(ctx context.Context, actor authz.Actor, projectID string) (authz.Set, error)
	OrgRole(ctx context.Context, actor authz.Actor) (string, error)
	// HeldFromNow is what target holds in a project now and at each later
	// start or end of its temporary grants (none: nothing there).
	HeldFromNow(ctx context.Context, target authz.Actor, projectID string) ([]authz.Set, error)
}

// Store is the storage the project service needs. Each write takes the
// audit event that records it, to be written in the same transaction.
type Store interface {
	// CreateProject writes the project, its environments with their root
	// folders, its data key and the creator's admin membership.
	CreateProject(ctx context.Context, p Project, dataKey []byte, rootKeyID string, creator authz.Actor, ev audit.Event) error
	ProjectByID(ctx context.Context, id string) (Project, error)
	ProjectBySlug(ctx context.Context, slug string) (Project, error)
	// Projects lists the org's projects; with memberOnly, only those the actor is a member of.
	Projects(ctx context.Context, orgID string, memberOnly bool, kind authz.ActorKind, actorID string) ([]Project, error)
	// UpdateProject writes p's settings if the project is still as it was
	// when read, last updated at prev; ErrStale if another change came first.
	UpdateProject(ctx context.Context, p Project, prev time.Time, ev audit.Event) error
	// DeleteProject deletes the project unless it is delete-protected
	// (ErrDeleteProtected), as read in the deletion's own transaction.
	DeleteProject(ctx context.Context, id string, ev audit.Event) error

	CreateEnvironment(ctx context.Context, env Environment, ev audit.Event) error
	Environments(ctx context.Context, projectID string) ([]Environment, error)
	EnvironmentByID(ctx context.Context, id string) (Environment, error)
	UpdateEnvironment(ctx context.Context, env Environment, ev audit.Event) error
	DeleteEnvironment(ctx context.Context, env Environment, ev audit.Event) error

	// FolderByPath finds the folder at a normalised path in an environment.
	FolderByPath(ctx context.Context, envID, path string) (Folder, error)
	FolderByID(ctx context.Context, envID, id string) (Folder, error)
	ChildFolders(ctx context.Context, parentID string) ([]Folder, error)
	SubtreeFolders(ctx context.Context, rootID string) ([]Folder, error)
	// CreateFolder creates the folder name under parentPath, creating any
	// missing folders on parentPath first.
	CreateFolder(ctx context.Context, envID, parentPath string, f Folder, ev audit.Event) (Folder, error)
	UpdateFolder(ctx context.Context, f Folder, ev audit.Event) error
	// FolderLocation returns a folder (with its path) and its environment.
	FolderLocation(ctx context.Context, id string) (Folder, Environment, error)
	// DeleteFolder deletes a folder and its whole subtree.
	DeleteFolder(ctx context.Context, f Folder, ev audit.Event) error
	// RotationsUnder counts the secret rotations writing to env at path or
	// below it (path "" = anywhere in env).
	RotationsUnder(ctx context.Context, projectID, env, path string) (int, error)
	// ProjectMoves returns a project's count of committed moves (MoveGuard).
	ProjectMoves(ctx context.Context, projectID string) (int64, error)
}

// Service manages projects, environments and folders.
type Service struct {
	store Store
	authz Authorizer
	keys  *keyring.Keyring
	now   func() time.Time

	templates *Templates // SetTemplates; nil: only the built-in template

	// AuditRetentionCap, when set, is the server's audit log retention
	// (LOCKBOX_AUDIT_LOG_RETENTION_DAYS): a project's may not exceed it, as
	// Infisical's may not exceed the plan's.
	AuditRetentionCap int
}

// SetTemplates lets projects be created from the templates ts manages.
func (s *Service) SetTemplates(ts *Templates) { s.templates = ts }

// NewService returns a project service.
func NewService(st Store, az Authorizer, kr *keyring.Keyring, now func() time.Time) *Service {
	if now == nil {
		now = time.Now
	}
	return &Service{store: st, authz: az, keys: kr, now: now}
}
