package project

import (
	"context"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/lockbox-dev/lockbox/internal/audit"
	"github.com/lockbox-dev/lockbox/internal/authz"
	"github.com/lockbox-dev/lockbox/internal/errs"
)

// Environment is one stage of a project (dev, staging, prod, ...).
type Environment struct {
	ID        string
	ProjectID string
	Name      string
	Slug      string
	Position  int
	CreatedAt time.Time
	UpdatedAt time.Time
}

func envNotFound(id string) error { return errs.NotFoundf("Environment with ID '%s' not found", id) }

func findEnv(envs []Environment, match func(Environment) bool) (Environment, bool) {
	for _, e := range envs {
		if match(e) {
			return e, true
		}
	}
	return Environment{}, false
}

// EnvironmentChange is a create or update request; nil fields are absent.
type EnvironmentChange struct {
	Name     *string
	Slug     *string
	Position *int
}

// MaxEnvironmentPosition bounds an environment's position (the column is a
// 32-bit integer on PostgreSQL).
const MaxEnvironmentPosition = 10_000

// MaxEnvironments bounds a project's environments: every read of a
// project loads them all. CreateEnvironment checks it on what it read; the
// store counts again under a lock of the project, for concurrent creates.
const MaxEnvironments = 100

// TooManyEnvironments is the refusal of an environment past MaxEnvironments.
func TooManyEnvironments() error {
	return errs.BadRequest("A project has at most %d environments", MaxEnvironments)
}

func (c EnvironmentChange) apply(env *Environment) error {
	if c.Name != nil {
		n := strings.TrimSpace(*c.Name)
		if n == "" || len(n) > 64 {
			return invalidField("name", "name must be 1 to 64 characters")
		}
		env.Name = n
	}
	if c.Slug != nil {
		if !ValidSlug(*c.Slug, 1, 64) {
			return invalidField("slug", "slug must be 1 to 64 lowercase letters, digits and hyphens")
		}
		env.Slug = *c.Slug
	}
	if c.Position != nil {
		if *c.Position < 1 || *c.Position > MaxEnvironmentPosition {
			return invalidField("position", "position must be from 1 to %d", MaxEnvironmentPosition)
		}
		env.Position = *c.Position
	}
	return nil
}

// CreateEnvironment adds an environment (with its root folder) to a project.
func (s *Service) CreateEnvironment(ctx context.Context, actor authz.Actor, projectID string, c EnvironmentChange) (Environment, error) {
	p, _, err := s.load(ctx, actor, projectID, authz.ActCreate, authz.SubEnvironments)
	if err != nil {
		return Environment{}, err
	}
	if c.Name == nil || c.Slug == nil {
		if c.Name == nil {
			return Environment{}, invalidField("name", "Required")
		}
		return Environment{}, invalidField("slug", "Required")
	}
	if len(p.Environments) >= MaxEnvironments {
		return Environment{}, TooManyEnvironments()
	}
	now := s.now().UTC().Truncate(time.Microsecond)
	env := Environment{ID: newID(), ProjectID: p.ID, Position: len(p.Environments) + 1, CreatedAt: now, UpdatedAt: now}
	for _, e := range p.Environments {
		env.Position = max(env.Position, e.Position+1)
	}
	if err := c.apply(&env); err != nil {
		return Environment{}, err
	}
	if _, dup := findEnv(p.Environments, func(e Environment) bool { return e.Slug == env.Slug }); dup {
		return Environment{}, errs.BadRequest("Environment with slug '%s' already exists", env.Slug)
	}
	ev := audit.New(actor, "create-environment", map[string]any{"name": env.Name, "slug": env.Slug}).InProject(p.ID, p.Name)
	if err := s.store.CreateEnvironment(ctx, env, ev); err != nil {
		if errs.Is(err, errs.Conflict) {
			return Environment{}, errs.BadRequest("Environment with slug '%s' already exists", env.Slug)
		}
		return Environment{}, err
	}
	return env, nil
}

// Environments lists a project's environments by position.
func (s *Service) Environments(ctx context.Context, actor authz.Actor, projectID string) ([]Environment, error) {
	p, _, err := s.load(ctx, actor, projectID, authz.ActRead, authz.SubEnvironments)
	return p.Environments, err
}

// GetEnvironment returns one environment by id.
func (s *Service) GetEnvironment(ctx context.Context, actor authz.Actor, projectID, envID string) (Environment, error) {
	p, _, err := s.load(ctx, actor, projectID, authz.ActRead, authz.SubEnvironments)
	if err != nil {
		return Environment{}, err
	}
	env, ok := findEnv(p.Environments, func(e Environment) bool { return e.ID == envID })
	if !ok {
		return Environment{}, envNotFound(envID)
	}
	return env, nil
}

// EnvironmentByID returns an environment by id alone. To a non-member of its
// project the environment does not exist.
func (s *Service) EnvironmentByID(ctx context.Context, actor authz.Actor, envID string) (Environment, error) {
	if _, err := uuid.Parse(envID); err != nil {
		return Environment{}, envNotFound(truncate(envID, 64))
	}
	env, err := s.store.EnvironmentByID(ctx, envID)
	if errs.Is(err, errs.NotFound) {
		return Environment{}, envNotFound(envID)
	}
	if err != nil {
		return Environment{}, err
	}
	perms, err := s.memberPerms(ctx, actor, env.ProjectID, envNotFound(envID))
	if err != nil {
		return Environment{}, err
	}
	if err := perms.Check(authz.ActRead, authz.SubEnvironments, nil); err != nil {
		return Environment{}, err
	}
	return env, nil
}

// EnvironmentBySlug returns one environment of a project by slug.
func (s *Service) EnvironmentBySlug(ctx context.Context, actor authz.Actor, projectID, slug string) (Environment, error) {
	p, _, err := s.load(ctx, actor, projectID, authz.ActRead, authz.SubEnvironments)
	if err != nil {
		return Environment{}, err
	}
	env, ok := findEnv(p.Environments, func(e Environment) bool { return e.Slug == slug })
	if !ok {
		return Environment{}, errs.NotFoundf("Environment with slug '%s' in project '%s' not found", truncate(slug, 64), p.ID)
	}
	return env, nil
}

// UpdateEnvironment renames, re-slugs or moves an environment.
func (s *Service) UpdateEnvironment(ctx context.Context, actor authz.Actor, projectID, envID string, c EnvironmentChange) (Environment, error) {
	var out Environment
	err := RetryMoves(ctx, func() (err error) {
		out, err = s.updateEnvironment(ctx, actor, projectID, envID, c)
		return err
	})
	return out, err
}

// updateEnvironment is one try of UpdateEnvironment.
func (s *Service) updateEnvironment(ctx context.Context, actor authz.Actor, projectID, envID string, c EnvironmentChange) (Environment, error) {
	ctx, seen, serr := BeginMove(ctx, s.store, projectID)
	p, perms, err := s.load(ctx, actor, projectID, authz.ActEdit, authz.SubEnvironments)
	if err != nil {
		return Environment{}, err
	}
	old, ok := findEnv(p.Environments, func(e Environment) bool { return e.ID == envID })
	if !ok {
		return Environment{}, envNotFound(envID)
	}
	env := old
	if err := c.apply(&env); err != nil {
		return Environment{}, err
	}
	if _, dup := findEnv(p.Environments, func(e Environment) bool { return e.Slug == env.Slug && e.ID != env.ID }); dup {
		return Environment{}, errs.BadRequest("Environment with slug '%s' already exists", env.Slug)
	}
	if env.Slug != old.Slug {
		if err := s.rotationsGuard(ctx, p.ID, old.Slug, "", "change this environment's slug"); err != nil {
			return Environment{}, err
		}
		root, err := s.store.FolderByPath(ctx, old.ID, "/")
		if err != nil {
			return Environment{}, err
		}
		if ctx, err = s.checkMove(ctx, perms, MoveGuard{ProjectID: p.ID, Seen: seen}, serr, root, "environment", func(h Held) Held {
			h.Env = env.Slug
			return h
		}); err != nil {
			return Environment{}, err
		}
	}
	env.UpdatedAt = s.now().UTC().Truncate(time.Microsecond)
	ev := audit.New(actor, "update-environment", map[string]any{"oldName": old.Name, "oldSlug": old.Slug, "oldPos": old.Position,
		"newName": env.Name, "newSlug": env.Slug, "newPos": env.Position}).InProject(p.ID, p.Name)
	if err := s.store.UpdateEnvironment(ctx, env, ev); err != nil {
		return Environment{}, err
	}
	return env, nil
}

// DeleteEnvironment removes an environment and everything in it, which the
// caller must be allowed to delete (a move: MoveGuard).
func (s *Service) DeleteEnvironment(ctx context.Context, actor authz.Actor, projectID, envID string) (Environment, error) {
	var out Environment
	err := RetryMoves(ctx, func() (err error) {
		out, err = s.deleteEnvironment(ctx, actor, projectID, envID)
		return err
	})
	return out, err
}

// deleteEnvironment is one try of DeleteEnvironment.
func (s *Service) deleteEnvironment(ctx context.Context, actor authz.Actor, projectID, envID string) (Environment, error) {
	ctx, seen, serr := BeginMove(ctx, s.store, projectID)
	p, perms, err := s.load(ctx, actor, projectID, authz.ActDelete, authz.SubEnvironments)
	if err != nil {
		return Environment{}, err
	}
	env, ok := findEnv(p.Environments, func(e Environment) bool { return e.ID == envID })
	if !ok {
		return Environment{}, envNotFound(envID)
	}
	if err := s.rotationsGuard(ctx, p.ID, env.Slug, "", "delete this environment"); err != nil {
		return Environment{}, err
	}
	root, err := s.store.FolderByPath(ctx, env.ID, "/")
	if err != nil {
		return Environment{}, err
	}
	if ctx, err = checkDelete(ctx, perms, MoveGuard{ProjectID: p.ID, Seen: seen}, serr, root); err != nil {
		return Environment{}, err
	}
	ev := audit.New(actor, "delete-environment", map[string]any{"name": env.Name, "slug": env.Slug}).InProject(p.ID, p.Name)
	return env, leasesLeft(s.store.DeleteEnvironment(ctx, env, ev), "delete this environment")
}
