package project

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/lockbox-dev/lockbox/internal/audit"
	"github.com/lockbox-dev/lockbox/internal/authz"
	"github.com/lockbox-dev/lockbox/internal/errs"
)

// Role is a project role: a built-in one (ID equals its slug) or a custom one.
type Role struct {
	ID          string
	ProjectID   string
	Slug        string
	Name        string
	Description string
	Permissions []authz.Rule
	CreatedAt   time.Time
	UpdatedAt   time.Time
}

// RoleStore is the storage custom project roles need.
type RoleStore interface {
	ProjectByID(ctx context.Context, id string) (Project, error)
	CreateProjectRole(ctx context.Context, r Role, permissions string, ev audit.Event) error
	ProjectRole(ctx context.Context, projectID, id string) (Role, error)
	ProjectRoleBySlug(ctx context.Context, projectID, slug string) (Role, error)
	// ProjectRoleByID finds a custom role by id alone, in any project.
	ProjectRoleByID(ctx context.Context, id string) (Role, error)
	ProjectRoles(ctx context.Context, projectID string) ([]Role, error)
	// UpdateProjectRole writes r if it is still as read, last updated at
	// prev; ErrStale if another change came first.
	UpdateProjectRole(ctx context.Context, r Role, permissions string, prev time.Time, ev audit.Event) error
	// DeleteProjectRole deletes a role; errs.Conflict while a membership uses it.
	DeleteProjectRole(ctx context.Context, r Role, ev audit.Event) error
}

// Roles manages custom project roles.
type Roles struct {
	store RoleStore
	authz Authorizer
	now   func() time.Time
}

// NewRoles returns the custom role service.
func NewRoles(st RoleStore, az Authorizer, now func() time.Time) *Roles {
	if now == nil {
		now = time.Now
	}
	return &Roles{store: st, authz: az, now: now}
}

var builtinRoleNames = map[string]string{"admin": "Admin", "member": "Developer", "viewer": "Viewer", "no-access": "No Access"}

// BuiltinRoles lists the predefined project roles, as Infisical lists them.
func BuiltinRoles(projectID string) []Role {
	var out []Role
	for _, slug := range []string{"admin", "member", "viewer", "no-access"} {
		rules, _ := authz.ProjectRoleRules(slug)
		out = append(out, Role{ID: slug, ProjectID: projectID, Slug: slug, Name: builtinRoleNames[slug], Permissions: rules})
	}
	return out
}

func (rs *Roles) load(ctx context.Context, actor authz.Actor, projectID, action string) (Project, error) {
	p, _, err := rs.loadWith(ctx, actor, projectID, action)
	return p, err
}

// loadWith is load that also returns the actor's permissions in the project.
func (rs *Roles) loadWith(ctx context.Context, actor authz.Actor, projectID, action string) (Project, authz.Set, error) {
	if _, err := uuid.Parse(projectID); err != nil {
		return Project{}, authz.Set{}, projectNotFound(projectID)
	}
	perms, err := rs.authz.ProjectPermissions(ctx, actor, projectID)
	if err != nil {
		return Project{}, authz.Set{}, err
	}
	if err := perms.Check(action, authz.SubRole, nil); err != nil {
		return Project{}, authz.Set{}, err
	}
	p, err := rs.store.ProjectByID(ctx, projectID)
	if errs.Is(err, errs.NotFound) {
		return Project{}, authz.Set{}, projectNotFound(projectID)
	}
	return p, perms, err
}

// holds refuses a role whose rules the actor does not hold itself: whoever
// may edit roles could otherwise write any rule into a role they (or a
// friend) already hold.
//
// A role outlives whoever defines it, so what it gives must be held for
// good (CoversUntil): temporary access is no ground for a role. What a role
// gave before a change (lasting false) needs only to be held now.
func holds(perms authz.Set, r Role, lasting bool) error {
	set := authz.NewSet(r.Permissions)
	if !perms.Covers(set) {
		return boundaryError("define role '%s': it holds privileges you do not have", r.Slug)
	}
	if lasting && !perms.CoversUntil(set, time.Time{}) {
		return boundaryError("define role '%s': it would outlast the temporary access you hold its privileges by", r.Slug)
	}
	return nil
}

// DenialsChanged reports whether the inverted rules of two rule lists differ.
func DenialsChanged(a, b []authz.Rule) bool {
	inverted := func(rs []authz.Rule) string {
		var out []authz.Rule
		for _, r := range rs {
			if r.Inverted {
				out = append(out, r)
			}
		}
		j, _ := json.Marshal(out)
		return string(j)
	}
	return inverted(a) != inverted(b)
}

// RoleChange is a create or update request; nil fields are absent.
type RoleChange struct {
	Slug        *string
	Name        *string
	Description *string
	Permissions json.RawMessage
}

func (c RoleChange) apply(r *Role) (string, error) {
	if c.Slug != nil {
		if !ValidSlug(*c.Slug, 1, 64) {
			return "", invalidField("slug", "slug must be 1 to 64 lowercase letters, digits and hyphens")
		}
		if authz.IsBuiltinProjectRole(*c.Slug) {
			return "", errs.BadRequest("The slug '%s' is reserved for a built-in role", *c.Slug)
		}
		r.Slug = *c.Slug
	}
	if c.Name != nil {
		n := strings.TrimSpace(*c.Name)
		if n == "" || len(n) > 64 {
			return "", invalidField("name", "name must be 1 to 64 characters")
		}
		r.Name = n
	}
	if c.Description != nil {
		d, err := description("description", *c.Description)
		if err != nil {
			return "", err
		}
		r.Description = d
	}
	if c.Permissions != nil {
		rules, err := authz.ParseRules(c.Permissions)
		if err != nil {
			return "", err
		}
		r.Permissions = rules
	}
	b, err := json.Marshal(r.Permissions)
	if err != nil {
		return "", errs.Internalf(err, "encode rules")
	}
	return string(b), nil
}

// Create adds a custom role to a project.
func (rs *Roles) Create(ctx context.Context, actor authz.Actor, projectID string, c RoleChange) (Role, error) {
	p, mine, err := rs.loadWith(ctx, actor, projectID, authz.ActCreate)
	if err != nil {
		return Role{}, err
	}
	if c.Slug == nil {
		return Role{}, invalidField("slug", "Required")
	}
	if c.Name == nil {
		return Role{}, invalidField("name", "Required")
	}
	if c.Permissions == nil {
		c.Permissions = json.RawMessage("[]")
	}
	now := rs.now().UTC().Truncate(time.Microsecond)
	r := Role{ID: newID(), ProjectID: p.ID, CreatedAt: now, UpdatedAt: now}
	perms, err := c.apply(&r)
	if err != nil {
		return Role{}, err
	}
	if err := holds(mine, r, true); err != nil {
		return Role{}, err
	}
	ev := audit.New(actor, "create-project-role", map[string]any{"roleId": r.ID, "slug": r.Slug, "name": r.Name}).InProject(p.ID, p.Name)
	if err := rs.store.CreateProjectRole(ctx, r, perms, ev); err != nil {
		if errs.Is(err, errs.Conflict) {
			return Role{}, errs.BadRequest("A role with the slug '%s' already exists in this project", r.Slug)
		}
		return Role{}, err
	}
	return r, nil
}

func roleNotFound(id string) error { return errs.NotFoundf("Role with ID '%s' not found", id) }

// Update changes a custom role. It writes only the role as it read it, and
// otherwise reads and applies the change again (RetryStale), so that concurrent
// changes of different fields all stay: a rename must not bring back a
// permission another change took away.
func (rs *Roles) Update(ctx context.Context, actor authz.Actor, projectID, roleID string, c RoleChange) (Role, error) {
	return RetryStale(ctx, "role", func() (Role, error) { return rs.update(ctx, actor, projectID, roleID, c) })
}

// update is one try of Update.
func (rs *Roles) update(ctx context.Context, actor authz.Actor, projectID, roleID string, c RoleChange) (Role, error) {
	p, mine, err := rs.loadWith(ctx, actor, projectID, authz.ActEdit)
	if err != nil {
		return Role{}, err
	}
	r, err := rs.store.ProjectRole(ctx, p.ID, roleID)
	if errs.Is(err, errs.NotFound) {
		return Role{}, roleNotFound(roleID)
	}
	if err != nil {
		return Role{}, err
	}
	if c.Slug != nil && *c.Slug == r.Slug {
		c.Slug = nil
	}
	if err := holds(mine, r, false); err != nil { // what the role gave before
		return Role{}, err
	}
	prev := r.UpdatedAt
	before := slices.Clone(r.Permissions)
	perms, err := c.apply(&r)
	if err != nil {
		return Role{}, err
	}
	if err := holds(mine, r, true); err != nil {
		return Role{}, err
	}
	if DenialsChanged(before, r.Permissions) {
		// Any set covers a rule that only denies, yet adding one takes from
		// everyone holding the role (a member with role edit and no secret
		// access locked a project admin out through a role it held), and
		// removing one gives back to them: as for giving a group such a
		// role, only one who holds all a project admin does may.
		admin, _ := authz.ProjectRoleRules("admin")
		if !mine.Lasting().Covers(authz.NewSet(admin)) {
			return Role{}, boundaryError("change role '%s': its rules that deny take from (or give back to) whoever holds it; only those who hold all a project admin does may change them", r.Slug)
		}
	}
	r.UpdatedAt = NextStamp(rs.now(), prev)
	ev := audit.New(actor, "update-project-role", map[string]any{"roleId": r.ID, "slug": r.Slug, "name": r.Name}).InProject(p.ID, p.Name)
	if err := rs.store.UpdateProjectRole(ctx, r, perms, prev, ev); err != nil {
		if errs.Is(err, errs.Conflict) {
			return Role{}, errs.BadRequest("A role with the slug '%s' already exists in this project", r.Slug)
		}
		return Role{}, err
	}
	return r, nil
}

// Delete removes a custom role that no membership uses.
func (rs *Roles) Delete(ctx context.Context, actor authz.Actor, projectID, roleID string) (Role, error) {
	p, err := rs.load(ctx, actor, projectID, authz.ActDelete)
	if err != nil {
		return Role{}, err
	}
	r, err := rs.store.ProjectRole(ctx, p.ID, roleID)
	if errs.Is(err, errs.NotFound) {
		return Role{}, roleNotFound(roleID)
	}
	if err != nil {
		return Role{}, err
	}
	ev := audit.New(actor, "delete-project-role", map[string]any{"roleId": r.ID, "slug": r.Slug}).InProject(p.ID, p.Name)
	if err := rs.store.DeleteProjectRole(ctx, r, ev); err != nil {
		if errs.Is(err, errs.Conflict) {
			return Role{}, errs.BadRequest("Role '%s' is in use by a project membership; remove it from the memberships first", r.Slug)
		}
		return Role{}, err
	}
	return r, nil
}

// List returns the built-in roles followed by the project's custom roles.
func (rs *Roles) List(ctx context.Context, actor authz.Actor, projectID string) ([]Role, error) {
	p, err := rs.load(ctx, actor, projectID, authz.ActRead)
	if err != nil {
		return nil, err
	}
	custom, err := rs.store.ProjectRoles(ctx, p.ID)
	if err != nil {
		return nil, err
	}
	return append(BuiltinRoles(p.ID), custom...), nil
}

// GetBySlug returns a built-in or custom role of a project by slug.
func (rs *Roles) GetBySlug(ctx context.Context, actor authz.Actor, projectID, slug string) (Role, error) {
	p, err := rs.load(ctx, actor, projectID, authz.ActRead)
	if err != nil {
		return Role{}, err
	}
	for _, r := range BuiltinRoles(p.ID) {
		if r.Slug == slug {
			return r, nil
		}
	}
	r, err := rs.store.ProjectRoleBySlug(ctx, p.ID, slug)
	if errs.Is(err, errs.NotFound) {
		return Role{}, errs.NotFoundf("Role with slug '%s' not found", truncate(slug, 64))
	}
	return r, err
}

// GetByID returns a custom role by id alone. To a non-member of the role's
// project the role does not exist; a member needs read on roles. Built-in
// roles have no id of their own here: they are read by slug.
func (rs *Roles) GetByID(ctx context.Context, actor authz.Actor, roleID string) (Role, error) {
	if _, err := uuid.Parse(roleID); err != nil {
		return Role{}, roleNotFound(truncate(roleID, 64))
	}
	r, err := rs.store.ProjectRoleByID(ctx, roleID)
	if errs.Is(err, errs.NotFound) {
		return Role{}, roleNotFound(roleID)
	}
	if err != nil {
		return Role{}, err
	}
	perms, err := rs.authz.ProjectPermissions(ctx, actor, r.ProjectID)
	if errs.Is(err, errs.NotFound) || errs.Is(err, errs.Forbidden) {
		return Role{}, roleNotFound(roleID)
	}
	if err != nil {
		return Role{}, err
	}
	if err := perms.Check(authz.ActRead, authz.SubRole, nil); err != nil {
		return Role{}, err
	}
	return r, nil
}
