package project

import (
	"context"
	"time"

	"github.com/google/uuid"

	"github.com/lockbox-dev/lockbox/internal/audit"
	"github.com/lockbox-dev/lockbox/internal/authz"
	"github.com/lockbox-dev/lockbox/internal/errs"
)

// GroupRef names a group of an organization.
type GroupRef struct {
	ID, OrgID, Name, Slug string
}

// GroupMembership is a group's membership of a project: every member of
// the group holds its roles there, in addition to their own.
type GroupMembership struct {
	ID        string
	ProjectID string
	Group     GroupRef
	Roles     []MembershipRole
	CreatedAt time.Time
	UpdatedAt time.Time
}

// GroupStore is the storage project group memberships need.
type GroupStore interface {
	ProjectByID(ctx context.Context, id string) (Project, error)
	CustomRoleBySlug(ctx context.Context, projectID, slug string) (CustomRole, error)
	ProjectRole(ctx context.Context, projectID, id string) (Role, error)
	// GroupRef finds a group of the organization by id, or by slug or name
	// when idOrName is not a UUID; errs.NotFound if none.
	GroupRef(ctx context.Context, orgID, idOrName string) (GroupRef, error)
	// AddProjectGroup makes a group a member; errs.Conflict if it is one already.
	AddProjectGroup(ctx context.Context, projectID, groupID string, roles []MembershipRole, ev audit.Event) error
	// ProjectGroup returns a group's membership of a project; errs.NotFound if none.
	ProjectGroup(ctx context.Context, projectID, groupID string) (GroupMembership, error)
	ProjectGroups(ctx context.Context, projectID string) ([]GroupMembership, error)
	// ReplaceProjectGroupRoles and DeleteProjectGroup refuse (errs.Conflict)
	// when the membership's role ids are no longer expect, the roles the
	// caller's permission check was made on.
	ReplaceProjectGroupRoles(ctx context.Context, membershipID string, expect []string, roles []MembershipRole, ev audit.Event) error
	DeleteProjectGroup(ctx context.Context, membershipID string, expect []string, ev audit.Event) error
}

// Groups manages which groups belong to a project, with which roles. The
// rules are the other memberships': a role is granted, changed or removed
// only by someone holding all it allows (grant-privileges on groups for
// admin and custom roles), temporary roles hold only in their window.
type Groups struct {
	store GroupStore
	m     *Memberships
}

// NewGroups returns the project group service; st also serves the role
// lookups of the other memberships.
func NewGroups(st interface {
	GroupStore
	MembershipStore
}, az Authorizer, now func() time.Time) *Groups {
	return &Groups{store: st, m: NewMemberships(st, az, now)}
}

func groupMembershipNotFound(groupID string) error {
	return errs.NotFoundf("Group %s is not a member of this project", truncate(groupID, 64))
}

// load checks action on project groups and returns the project and permissions.
func (g *Groups) load(ctx context.Context, actor authz.Actor, projectID, action string) (Project, authz.Set, error) {
	if _, err := uuid.Parse(projectID); err != nil {
		return Project{}, authz.Set{}, projectNotFound(projectID)
	}
	perms, err := g.m.authz.ProjectPermissions(ctx, actor, projectID)
	if err != nil {
		return Project{}, authz.Set{}, err
	}
	if err := perms.Check(action, authz.SubGroups, nil); err != nil {
		return Project{}, authz.Set{}, err
	}
	p, err := g.store.ProjectByID(ctx, projectID)
	if errs.Is(err, errs.NotFound) {
		return Project{}, authz.Set{}, projectNotFound(projectID)
	}
	return p, perms, err
}

// group finds a group of the project's organization by id, slug or name.
func (g *Groups) group(ctx context.Context, p Project, idOrName string) (GroupRef, error) {
	ref, err := g.store.GroupRef(ctx, p.OrgID, idOrName)
	if errs.Is(err, errs.NotFound) || (err == nil && ref.OrgID != p.OrgID) {
		return GroupRef{}, errs.NotFoundf("Failed to find group with ID %s", truncate(idOrName, 64))
	}
	return ref, err
}

// membership loads a group's membership of the project.
func (g *Groups) membership(ctx context.Context, p Project, idOrName string) (GroupMembership, error) {
	ref, err := g.group(ctx, p, idOrName)
	if errs.Is(err, errs.NotFound) {
		return GroupMembership{}, groupMembershipNotFound(idOrName)
	}
	if err != nil {
		return GroupMembership{}, err
	}
	ms, err := g.store.ProjectGroup(ctx, p.ID, ref.ID)
	if errs.Is(err, errs.NotFound) {
		return GroupMembership{}, groupMembershipNotFound(idOrName)
	}
	return ms, err
}

// Add makes a group of the project's organization (by id, slug or name) a
// member of the project with roles.
func (g *Groups) Add(ctx context.Context, actor authz.Actor, projectID, groupIDOrName string, grants []RoleGrant) (GroupMembership, error) {
	p, perms, err := g.load(ctx, actor, projectID, authz.ActCreate)
	if err != nil {
		return GroupMembership{}, err
	}
	ref, err := g.group(ctx, p, groupIDOrName)
	if err != nil {
		return GroupMembership{}, err
	}
	roles, err := resolveGrants(ctx, g.store, g.m.now, perms, p.ID, grants, authz.SubGroups, nil)
	if err != nil {
		return GroupMembership{}, err
	}
	if err := g.m.checkGrantRoles(ctx, perms, p.ID, "add the group", nil, roles); err != nil {
		return GroupMembership{}, err
	}
	ev := audit.New(actor, "add-group-to-project", map[string]any{"groupId": ref.ID, "groupName": ref.Name, "roles": roleSlugs(roles)}).InProject(p.ID, p.Name)
	if err := g.store.AddProjectGroup(ctx, p.ID, ref.ID, roles, ev); err != nil {
		if errs.Is(err, errs.Conflict) {
			return GroupMembership{}, errs.BadRequest("Group %s is already a member of this project", ref.Slug)
		}
		return GroupMembership{}, err
	}
	return g.store.ProjectGroup(ctx, p.ID, ref.ID)
}

// Get returns a group's membership of a project.
func (g *Groups) Get(ctx context.Context, actor authz.Actor, projectID, groupID string) (GroupMembership, error) {
	p, _, err := g.load(ctx, actor, projectID, authz.ActRead)
	if err != nil {
		return GroupMembership{}, err
	}
	return g.membership(ctx, p, groupID)
}

// List returns a project's group memberships.
func (g *Groups) List(ctx context.Context, actor authz.Actor, projectID string) ([]GroupMembership, error) {
	p, _, err := g.load(ctx, actor, projectID, authz.ActRead)
	if err != nil {
		return nil, err
	}
	return g.store.ProjectGroups(ctx, p.ID)
}

// UpdateRoles replaces a group's roles in a project; the actor must hold
// every privilege of the roles before and after.
func (g *Groups) UpdateRoles(ctx context.Context, actor authz.Actor, projectID, groupID string, grants []RoleGrant) (GroupMembership, error) {
	p, perms, err := g.load(ctx, actor, projectID, authz.ActEdit)
	if err != nil {
		return GroupMembership{}, err
	}
	ms, err := g.membership(ctx, p, groupID)
	if err != nil {
		return GroupMembership{}, err
	}
	if err := g.m.checkBoundary(ctx, perms, p.ID, "change the group's roles", ms.Roles); err != nil {
		return GroupMembership{}, err
	}
	roles, err := resolveGrants(ctx, g.store, g.m.now, perms, p.ID, grants, authz.SubGroups, nil)
	if err != nil {
		return GroupMembership{}, err
	}
	if err := g.m.checkGrantRoles(ctx, perms, p.ID, "change the group's roles", nil, roles, ms.Roles...); err != nil {
		return GroupMembership{}, err
	}
	ev := audit.New(actor, "update-group-project-membership", map[string]any{"groupId": ms.Group.ID, "groupName": ms.Group.Name,
		"roles": roleSlugs(roles)}).InProject(p.ID, p.Name)
	if err := g.store.ReplaceProjectGroupRoles(ctx, ms.ID, roleIDs(ms.Roles), roles, ev); err != nil {
		return GroupMembership{}, err
	}
	return g.store.ProjectGroup(ctx, p.ID, ms.Group.ID)
}

// Remove ends a group's membership of a project: its members lose the
// roles it held there (not their own).
func (g *Groups) Remove(ctx context.Context, actor authz.Actor, projectID, groupID string) (GroupMembership, error) {
	p, perms, err := g.load(ctx, actor, projectID, authz.ActDelete)
	if err != nil {
		return GroupMembership{}, err
	}
	ms, err := g.membership(ctx, p, groupID)
	if err != nil {
		return GroupMembership{}, err
	}
	if err := g.m.checkBoundary(ctx, perms, p.ID, "remove the group", ms.Roles); err != nil {
		return GroupMembership{}, err
	}
	if err := g.m.checkLift(ctx, perms, p.ID, "remove the group", ms.Roles); err != nil {
		return GroupMembership{}, err
	}
	ev := audit.New(actor, "remove-group-from-project", map[string]any{"groupId": ms.Group.ID, "groupName": ms.Group.Name}).InProject(p.ID, p.Name)
	return ms, g.store.DeleteProjectGroup(ctx, ms.ID, roleIDs(ms.Roles), ev)
}
