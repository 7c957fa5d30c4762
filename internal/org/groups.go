package org

import (
	"context"
	"crypto/rand"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/lockbox-dev/lockbox/internal/audit"
	"github.com/lockbox-dev/lockbox/internal/authz"
	"github.com/lockbox-dev/lockbox/internal/errs"
	"github.com/lockbox-dev/lockbox/internal/project"
)

// Group is a set of an organization's users and machine identities. Its
// organization role bounds who may manage it; the roles it is given in
// projects (project.Groups) are held by every member, in addition to their
// own.
type Group struct {
	ID    string
	OrgID string
	Name  string
	Slug  string
	// Role is a built-in organization role slug, or "custom".
	Role           string
	CustomRoleID   string
	CustomRoleSlug string
	CreatedAt      time.Time
	UpdatedAt      time.Time
}

// RoleSlug is the slug of the group's role, custom or built-in.
func (g Group) RoleSlug() string {
	if g.CustomRoleSlug != "" {
		return g.CustomRoleSlug
	}
	return g.Role
}

// GroupUser is a user of the organization as a group listing shows them.
type GroupUser struct {
	ID, Email, Username, FirstName, LastName string
	IsPartOfGroup                            bool
	JoinedGroupAt                            *time.Time
}

// GroupIdentity is a machine identity of the organization as a group
// listing shows it.
type GroupIdentity struct {
	ID, Name      string
	IsPartOfGroup bool
	JoinedGroupAt *time.Time
}

// GroupMember is a user or a machine identity in a group.
type GroupMember struct {
	Kind          authz.ActorKind // ActorUser or ActorIdentity
	User          GroupUser       // for a user
	Identity      GroupIdentity   // for a machine identity
	JoinedGroupAt time.Time
}

// GroupProject is a project as a group listing shows it.
type GroupProject struct {
	ID, Name, Slug, Description, Type string
	JoinedGroupAt                     *time.Time // nil: the group is not in it
}

// VisibleTo limits a project listing to what an actor sees in its own
// list of projects: every project of the organization for its admins
// (All), else those it is a member of, itself or through a group.
type VisibleTo struct {
	All  bool
	Kind authz.ActorKind
	ID   string
}

// GroupFilter narrows a listing of a group's possible members.
type GroupFilter struct {
	Offset, Limit int
	// Search matches part of a user's email, username or name, or of an
	// identity's name (case-insensitive); empty: everyone.
	Search string
	// Username, when set, lists only the user with that username.
	Username string
	// Members: nil lists everyone of the organization; true only the
	// group's members; false only those outside it.
	Members *bool
	// Kinds, for a listing of members, keeps only users or identities
	// (empty: both).
	Kinds []authz.ActorKind
	// Descending reverses a listing's order by name.
	Descending bool
}

// GroupStore is the storage groups need. Each write takes the audit event
// that records it, written in the same transaction.
type GroupStore interface {
	// CreateGroup writes a group; errs.Conflict if its name or slug is taken.
	CreateGroup(ctx context.Context, g Group, ev audit.Event) error
	// Group returns a group of the organization; errs.NotFound if none.
	Group(ctx context.Context, orgID, id string) (Group, error)
	Groups(ctx context.Context, orgID string) ([]Group, error)
	// UpdateGroup writes Name, Slug, Role and CustomRoleID (if seen is nil
	// or still the group's project roles, ErrGroupRolesChanged if not); errs.Conflict
	// if the name or slug is taken.
	UpdateGroup(ctx context.Context, g Group, seen *GrantsSeen, ev audit.Event) error
	// DeleteGroup removes a group, its members and its project memberships,
	// if seen is still what the group holds in projects.
	DeleteGroup(ctx context.Context, g Group, seen *GrantsSeen, ev audit.Event) error
	GroupUsers(ctx context.Context, orgID, groupID string, f GroupFilter) ([]GroupUser, int, error)
	GroupIdentities(ctx context.Context, orgID, groupID string, f GroupFilter) ([]GroupIdentity, int, error)
	// GroupMembers lists the group's users and identities by name (a
	// user's username); Search and Kinds narrow it.
	GroupMembers(ctx context.Context, groupID string, f GroupFilter) ([]GroupMember, int, error)
	// GroupProjects lists the projects of the organization the viewer sees,
	// by name, with when the group joined each; Members and Search narrow it.
	GroupProjects(ctx context.Context, orgID, groupID string, viewer VisibleTo, f GroupFilter) ([]GroupProject, int, error)
	// OrgUserByUsername finds a user of the organization (accepted or
	// invited) by username or email; errs.NotFound if none.
	OrgUserByUsername(ctx context.Context, orgID, username string) (GroupUser, error)
	// IdentityOrg returns the organization of an identity.
	IdentityOrg(ctx context.Context, identityID string) (string, error)
	// AddGroupMember adds a user or identity if the group's project roles
	// are still seen (what the caller's check was made on; nil: not
	// compared); ErrGroupRolesChanged if they changed, errs.Conflict if it
	// is in the group already.
	AddGroupMember(ctx context.Context, groupID string, kind authz.ActorKind, memberID string, seen *GrantsSeen, ev audit.Event) error
	// RemoveGroupMember removes a user or identity, compared as
	// AddGroupMember; errs.NotFound if it is not in the group.
	RemoveGroupMember(ctx context.Context, groupID string, kind authz.ActorKind, memberID string, seen *GrantsSeen, ev audit.Event) error
	// SetUserGroups makes a user of the organization a member of exactly
	// groupIDs among its groups, writing evs (one per change) with the
	// change; errs.NotFound if the user is not a member of the organization.
	SetUserGroups(ctx context.Context, orgID, userID string, groupIDs []string, evs func(added, removed []string) []audit.Event) error
	// GroupsByName returns the organization's groups whose name is among
	// names.
	GroupsByName(ctx context.Context, orgID string, names []string) ([]Group, error)
	// SSOManagesGroups reports whether the organization's active SSO
	// configuration maps its groups' users from a groups claim.
	SSOManagesGroups(ctx context.Context, orgID string) (bool, error)
	// GroupProjectGrants returns, per project, the roles the group holds
	// there (temporary ones whatever their window).
	GroupProjectGrants(ctx context.Context, groupID string) (GroupGrants, error)
	OrgRoleBySlug(ctx context.Context, orgID, slug string) (Role, error)
}

// GroupGrants is what a group holds in projects: its roles per project,
// and what a check of them saw.
type GroupGrants struct {
	ByProject map[string][]authz.Grant
	Seen      GrantsSeen
}

// GrantsSeen identifies a group's roles as a check saw them: one key per
// project role row, of its id and the rules of its custom role, and one
// for its organization role and that role's rules, so that adding,
// replacing or removing a role of the group, changing its organization
// role, or editing the definition of a custom role it holds, changes it.
type GrantsSeen struct{ Keys []string }

// ErrGroupRolesChanged is the store's answer when a group's project roles
// changed between a caller's check and the write it was made for.
var ErrGroupRolesChanged = errs.Conflictf("The group's project roles changed while this request was checked; try again")

// GroupAuthorizer is what groups need of authz: the organization's checks
// and a caller's permissions in the projects a group reaches.
type GroupAuthorizer interface {
	Authorizer
	ProjectPermissions(ctx context.Context, actor authz.Actor, projectID string) (authz.Set, error)
	// HeldFromNow is what target holds in a project now and at each later
	// start or end of its temporary grants.
	HeldFromNow(ctx context.Context, target authz.Actor, projectID string) ([]authz.Set, error)
}

// Groups manages an organization's groups and who is in them.
type Groups struct {
	store GroupStore
	authz GroupAuthorizer
	now   func() time.Time
}

// NewGroups returns the group service.
func NewGroups(st GroupStore, az GroupAuthorizer, now func() time.Time) *Groups {
	if now == nil {
		now = time.Now
	}
	return &Groups{store: st, authz: az, now: now}
}

func groupNotFound(id string) error {
	return errs.NotFoundf("Failed to find group with ID %s", truncate(id, 64))
}

// MaxGroupNameLen and the slug bounds are Infisical's.
const (
	MaxGroupNameLen = 50
	minGroupSlugLen = 5
	maxGroupSlugLen = 36
)

// GroupChange is a create or update request; nil fields are absent.
type GroupChange struct {
	Name *string
	Slug *string
	Role *string
}

// load checks action on groups and returns the actor's permissions, role
// and the group (id empty: none).
func (s *Groups) load(ctx context.Context, actor authz.Actor, action, id string) (authz.Set, string, Group, error) {
	set, mine, err := perms(ctx, s.authz, actor, "", action, authz.SubGroups)
	if err != nil || id == "" {
		return set, mine, Group{}, err
	}
	if _, err := uuid.Parse(id); err != nil {
		return set, mine, Group{}, groupNotFound(id)
	}
	g, err := s.store.Group(ctx, actor.OrgID, id)
	if errs.Is(err, errs.NotFound) {
		return set, mine, Group{}, groupNotFound(id)
	}
	return set, mine, g, err
}

// setRole resolves a role slug (built-in or custom) into g, checking the
// actor may hold it (mayHold: nobody grants more than they hold).
func (s *Groups) setRole(ctx context.Context, actor authz.Actor, set authz.Set, mine, slug string, g *Group) error {
	slug = strings.TrimSpace(slug)
	switch {
	case slug == "":
		return invalidField("role", "role is required")
	case authz.IsBuiltinOrgRole(slug):
		g.Role, g.CustomRoleID, g.CustomRoleSlug = slug, "", ""
	default:
		r, err := s.store.OrgRoleBySlug(ctx, actor.OrgID, slug)
		if errs.Is(err, errs.NotFound) {
			return errs.BadRequest("Role '%s' does not exist in this organization", truncate(slug, 64))
		}
		if err != nil {
			return err
		}
		g.Role, g.CustomRoleID, g.CustomRoleSlug = "custom", r.ID, r.Slug
	}
	return mayHold(ctx, s.authz, actor, set, mine, g.RoleSlug())
}

func (c GroupChange) apply(g *Group) error {
	if c.Name != nil {
		n := strings.TrimSpace(*c.Name)
		if n == "" || len(n) > MaxGroupNameLen {
			return invalidField("name", "name must be 1 to %d characters", MaxGroupNameLen)
		}
		g.Name = n
	}
	if c.Slug != nil {
		sl := strings.TrimSpace(*c.Slug)
		if len(sl) < minGroupSlugLen || len(sl) > maxGroupSlugLen || !validSlug(sl) {
			return invalidField("slug", "slug must be %d to %d lowercase letters, digits and hyphens", minGroupSlugLen, maxGroupSlugLen)
		}
		g.Slug = sl
	}
	return nil
}

// groupSlug makes a slug from a name and four random characters, as
// Infisical does when none is given.
func groupSlug(name string) string {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(name) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			b.WriteRune(r)
			dash = false
		} else if !dash && b.Len() > 0 {
			b.WriteByte('-')
			dash = true
		}
	}
	base := strings.TrimSuffix(b.String(), "-")
	if len(base) > maxGroupSlugLen-5 {
		base = strings.TrimSuffix(base[:maxGroupSlugLen-5], "-")
	}
	const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
	suffix := []byte(rand.Text()[:4])
	for i, c := range suffix {
		suffix[i] = alphabet[int(c)%len(alphabet)]
	}
	if base == "" {
		return "group-" + string(suffix)
	}
	return base + "-" + string(suffix)
}

func conflictOnName(err error, g Group) error {
	if errs.Is(err, errs.Conflict) && !errors.Is(err, ErrGroupRolesChanged) {
		return errs.BadRequest("A group with the name '%s' or the slug '%s' already exists", g.Name, g.Slug)
	}
	return err
}

// Create adds a group to the actor's organization with an organization
// role (default no-access) the actor may grant.
func (s *Groups) Create(ctx context.Context, actor authz.Actor, c GroupChange) (Group, error) {
	set, mine, _, err := s.load(ctx, actor, authz.ActCreate, "")
	if err != nil {
		return Group{}, err
	}
	now := s.now().UTC().Truncate(time.Microsecond)
	g := Group{ID: newID(), OrgID: actor.OrgID, CreatedAt: now, UpdatedAt: now}
	if c.Name == nil {
		return Group{}, invalidField("name", "name is required")
	}
	if err := c.apply(&g); err != nil {
		return Group{}, err
	}
	if g.Slug == "" {
		g.Slug = groupSlug(g.Name)
	}
	role := "no-access"
	if c.Role != nil {
		role = *c.Role
	}
	if err := s.setRole(ctx, actor, set, mine, role, &g); err != nil {
		return Group{}, err
	}
	ev := audit.New(actor, "create-group", map[string]any{"groupId": g.ID, "name": g.Name, "slug": g.Slug, "role": g.RoleSlug()})
	if err := s.store.CreateGroup(ctx, g, ev); err != nil {
		return Group{}, conflictOnName(err, g)
	}
	return s.store.Group(ctx, actor.OrgID, g.ID)
}

// Get returns a group of the actor's organization.
func (s *Groups) Get(ctx context.Context, actor authz.Actor, id string) (Group, error) {
	_, _, g, err := s.load(ctx, actor, authz.ActRead, id)
	return g, err
}

// List returns the groups of the actor's organization orgID (empty: the
// actor's), by name.
func (s *Groups) List(ctx context.Context, actor authz.Actor, orgID string) ([]Group, error) {
	if _, _, err := perms(ctx, s.authz, actor, orgID, authz.ActRead, authz.SubGroups); err != nil {
		return nil, err
	}
	return s.store.Groups(ctx, actor.OrgID)
}

// Update renames a group or changes its slug or role. A role change needs
// the actor to hold both the old role and the new one.
func (s *Groups) Update(ctx context.Context, actor authz.Actor, id string, c GroupChange) (Group, error) {
	set, mine, g, err := s.load(ctx, actor, authz.ActEdit, id)
	if err != nil {
		return Group{}, err
	}
	oldName, oldSlug := g.Name, g.Slug
	if err := c.apply(&g); err != nil {
		return Group{}, err
	}
	var seen *GrantsSeen
	if g.Slug != oldSlug || g.Name != oldName {
		// An identity provider's groups claim names groups: renaming one
		// decides who joins it at their next sign-in.
		grants, err := s.mayManageGrants(ctx, actor, set, mine, g, true)
		if err != nil {
			return Group{}, err
		}
		// ... and who leaves it: whoever the claim names by the old name.
		if on, err := s.store.SSOManagesGroups(ctx, g.OrgID); err != nil {
			return Group{}, err
		} else if on {
			if err := s.mayLift(ctx, actor, set, mine, g, grants); err != nil {
				return Group{}, err
			}
		}
		seen = &grants.Seen
	}
	if c.Role != nil {
		if err := mayHold(ctx, s.authz, actor, set, mine, g.RoleSlug()); err != nil {
			return Group{}, err
		}
		if strings.TrimSpace(*c.Role) != g.RoleSlug() {
			if err := s.mayLiftOrgRole(ctx, actor, set, mine, g); err != nil {
				return Group{}, err
			}
		}
		if err := s.setRole(ctx, actor, set, mine, *c.Role, &g); err != nil {
			return Group{}, err
		}
	}
	g.UpdatedAt = s.now().UTC().Truncate(time.Microsecond)
	ev := audit.New(actor, "update-group", map[string]any{"groupId": g.ID, "name": g.Name, "slug": g.Slug, "role": g.RoleSlug()})
	if err := s.store.UpdateGroup(ctx, g, seen, ev); err != nil {
		return Group{}, conflictOnName(err, g)
	}
	return s.store.Group(ctx, actor.OrgID, g.ID)
}

// Delete removes a group: its members lose the roles it held in projects.
// The actor must hold the group's role and its project roles (nobody
// removes more than they hold).
func (s *Groups) Delete(ctx context.Context, actor authz.Actor, id string) (Group, error) {
	set, mine, g, err := s.load(ctx, actor, authz.ActDelete, id)
	if err != nil {
		return Group{}, err
	}
	grants, err := s.mayManageGrants(ctx, actor, set, mine, g, false)
	if err != nil {
		return Group{}, err
	}
	if err := s.mayLift(ctx, actor, set, mine, g, grants); err != nil {
		return Group{}, err
	}
	seen := &grants.Seen
	ev := audit.New(actor, "delete-group", map[string]any{"groupId": g.ID, "name": g.Name, "slug": g.Slug})
	return g, s.store.DeleteGroup(ctx, g, seen, ev)
}

// mayManageGrants refuses a change of who is in a group (or of the group as a
// whole) unless the actor holds the group's organization role and, in
// every project the group is in, every privilege of the group's roles
// there: adding a member to a group grants them those roles. It returns
// what it saw of the group's project roles, for the store to write only if
// they are unchanged (a project role given to the group between this check
// and the write would otherwise reach a new member unchecked).
//
// Adding (lasting true) is for good, so a permanent project role of the
// group needs what the actor holds for good, a temporary one what it holds
// until that role ends; taking out or deleting needs only what it holds now.
//
// It returns the group's project grants it checked (mayTake weighs the
// same ones; their Seen is what the store compares).
func (s *Groups) mayManageGrants(ctx context.Context, actor authz.Actor, set authz.Set, mine string, g Group, lasting bool) (*GroupGrants, error) {
	if err := mayHold(ctx, s.authz, actor, set, mine, g.RoleSlug()); err != nil {
		return nil, err
	}
	grants, err := s.store.GroupProjectGrants(ctx, g.ID)
	if err != nil {
		return nil, err
	}
	if mine == "admin" {
		return &grants, nil // organization admins hold the admin role in every project
	}
	ids := make([]string, 0, len(grants.ByProject))
	for id := range grants.ByProject {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, pid := range ids {
		ours, err := s.authz.ProjectPermissions(ctx, actor, pid)
		if errs.Is(err, errs.Forbidden) || errs.Is(err, errs.NotFound) {
			return nil, boundaryError("change group '%s': it holds roles in a project you are not a member of", g.Slug)
		}
		if err != nil {
			return nil, err
		}
		for _, grant := range grants.ByProject[pid] {
			theirs, err := authz.GrantsSet([]authz.Grant{grant})
			if err != nil {
				return nil, err
			}
			if !ours.Covers(theirs) {
				return nil, boundaryError("change group '%s': its project roles hold privileges you do not have", g.Slug)
			}
			if lasting && !ours.CoversUntil(theirs, grant.Until) {
				return nil, boundaryError("change group '%s': its project roles would outlast the temporary access you hold them by", g.Slug)
			}
		}
	}
	return &grants, nil
}

// mayLift refuses to take group g away from its members (taking one out,
// deleting it, renaming it while an identity provider's groups claim
// decides who is in it) unless the actor holds what the group's roles
// deny: its organization role's denials for good, each project role's
// for as long as that role would have lasted. Any set covers one that
// only denies, so without this a group editor took itself (or anyone) out
// of a group denying prod and read prod through its own project role. As
// taking away a denying role directly (project.Memberships.checkLift).
func (s *Groups) mayLift(ctx context.Context, actor authz.Actor, set authz.Set, mine string, g Group, grants *GroupGrants) error {
	if mine == "admin" {
		return nil // organization admins hold the admin role in every project
	}
	if err := s.mayLiftOrgRole(ctx, actor, set, mine, g); err != nil {
		return err
	}
	now := s.now()
	ids := make([]string, 0, len(grants.ByProject))
	for id := range grants.ByProject {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, pid := range ids {
		var ours *authz.Set
		for _, grant := range grants.ByProject[pid] {
			if !grant.Until.IsZero() && !grant.Until.After(now) {
				continue // ended: it denies nothing any more
			}
			theirs, err := authz.GrantsSet([]authz.Grant{grant})
			if err != nil {
				return err
			}
			if !theirs.Denies() {
				continue
			}
			if ours == nil {
				p, err := s.authz.ProjectPermissions(ctx, actor, pid)
				if errs.Is(err, errs.Forbidden) || errs.Is(err, errs.NotFound) {
					return boundaryError("change group '%s': it holds roles in a project you are not a member of", g.Slug)
				}
				if err != nil {
					return err
				}
				ours = &p
			}
			if !ours.CoversLift(theirs, grant.Until) {
				return boundaryError("change group '%s': its project roles deny what you may not do yourself, and this takes them away", g.Slug)
			}
		}
	}
	return nil
}

// mayLiftOrgRole is mayLift for group g's organization role alone (its
// role changing to another).
func (s *Groups) mayLiftOrgRole(ctx context.Context, actor authz.Actor, set authz.Set, mine string, g Group) error {
	return mayLift(ctx, s.authz, actor, set, mine, g.RoleSlug())
}

// mayTake refuses to put taker in a group that holds, in some project, a
// role that denies, unless the actor holds for good everything taker holds
// there from now on (an organization admin does): such a role takes from
// whoever joins, and any set covers one that only denies, so a group
// editor put a project admin in a group denying prod and locked it out of
// prod. As a deny privilege or a denying role given directly
// (project.Memberships.checkGrantRoles).
func (s *Groups) mayTake(ctx context.Context, actor authz.Actor, mine string, g Group, grants *GroupGrants, taker authz.Actor) error {
	if mine == "admin" {
		return nil
	}
	// The group's organization role, likewise: one that denies takes from
	// whoever joins what it denies in the organization.
	if orgSet, err := s.authz.OrgRoleSet(ctx, actor, g.RoleSlug()); err != nil {
		return err
	} else if orgSet.Denies() {
		ours, err := s.authz.OrgPermissions(ctx, actor)
		if err != nil {
			return err
		}
		theirs, err := s.authz.OrgPermissions(ctx, taker)
		if err != nil && !errs.Is(err, errs.Forbidden) {
			return err
		}
		if err == nil && !ours.CoversUntil(theirs, time.Time{}) {
			return boundaryError("add to group '%s': its organization role denies what the member holds and you do not", g.Slug)
		}
	}
	for pid, gs := range grants.ByProject {
		theirs, err := authz.GrantsSet(gs)
		if err != nil {
			return err
		}
		if !theirs.Denies() {
			continue
		}
		ours, err := s.authz.ProjectPermissions(ctx, actor, pid)
		if errs.Is(err, errs.Forbidden) || errs.Is(err, errs.NotFound) {
			return boundaryError("change group '%s': it holds roles in a project you are not a member of", g.Slug)
		}
		if err != nil {
			return err
		}
		ok, err := project.CoversTaker(ctx, s.authz, ours, taker, pid)
		if err != nil {
			return err
		}
		if !ok {
			return boundaryError("add to group '%s': its project roles deny what the member holds and you do not", g.Slug)
		}
	}
	return nil
}

// Manageable tells a page which changes to group id to offer: Members,
// whether the actor may change its members, rename or delete it (edit or
// delete permission aside: the checks mayManageGrants makes, for good); Users,
// whether users may be added or removed by hand (not while SSO maps them);
// Remove, whether members may be taken out and the group deleted, which
// also takes away what its roles deny (mayLift); Role, whether its
// organization role may be changed (which takes that role's denials away);
// Rename, whether it may be renamed (while SSO maps members by group name,
// a rename takes them out: Remove's check).
// It decides nothing: each change is checked again when made.
type Manageable struct{ Members, Users, Remove, Role, Rename bool }

// Manageable reports what the actor may change of group id (see the type).
func (s *Groups) Manageable(ctx context.Context, actor authz.Actor, id string) (Manageable, error) {
	set, mine, g, err := s.load(ctx, actor, authz.ActRead, id)
	if err != nil {
		return Manageable{}, err
	}
	grants, err := s.mayManageGrants(ctx, actor, set, mine, g, true)
	if errs.Is(err, errs.Forbidden) {
		return Manageable{}, nil
	}
	if err != nil {
		return Manageable{}, err
	}
	lift := s.mayLift(ctx, actor, set, mine, g, grants)
	if lift != nil && !errs.Is(lift, errs.Forbidden) {
		return Manageable{}, lift
	}
	role := s.mayLiftOrgRole(ctx, actor, set, mine, g)
	if role != nil && !errs.Is(role, errs.Forbidden) {
		return Manageable{}, role
	}
	on, err := s.store.SSOManagesGroups(ctx, g.OrgID)
	return Manageable{Members: true, Users: !on, Remove: lift == nil, Role: role == nil, Rename: !on || lift == nil}, err
}

// Users lists the organization's users with whether each is in the group.
func (s *Groups) Users(ctx context.Context, actor authz.Actor, id string, f GroupFilter) ([]GroupUser, int, error) {
	_, _, g, err := s.load(ctx, actor, authz.ActRead, id)
	if err != nil {
		return nil, 0, err
	}
	return s.store.GroupUsers(ctx, g.OrgID, g.ID, f)
}

// Members lists the group's users and machine identities.
func (s *Groups) Members(ctx context.Context, actor authz.Actor, id string, f GroupFilter) ([]GroupMember, int, error) {
	_, _, g, err := s.load(ctx, actor, authz.ActRead, id)
	if err != nil {
		return nil, 0, err
	}
	return s.store.GroupMembers(ctx, g.ID, f)
}

// Projects lists the projects the actor sees (all of the organization's
// for its admins, else those it is a member of) with whether the group is
// in each: reading a group shows nobody a project they could not list.
func (s *Groups) Projects(ctx context.Context, actor authz.Actor, id string, f GroupFilter) ([]GroupProject, int, error) {
	_, mine, g, err := s.load(ctx, actor, authz.ActRead, id)
	if err != nil {
		return nil, 0, err
	}
	return s.store.GroupProjects(ctx, g.OrgID, g.ID, VisibleTo{All: mine == "admin", Kind: actor.Kind, ID: actor.ID}, f)
}

// Identities lists the organization's machine identities with whether each
// is in the group.
func (s *Groups) Identities(ctx context.Context, actor authz.Actor, id string, f GroupFilter) ([]GroupIdentity, int, error) {
	_, _, g, err := s.load(ctx, actor, authz.ActRead, id)
	if err != nil {
		return nil, 0, err
	}
	return s.store.GroupIdentities(ctx, g.OrgID, g.ID, f)
}

// member loads a group for a membership change, checked as mayManage
// (adding someone when adding is true), with what the check saw.
func (s *Groups) member(ctx context.Context, actor authz.Actor, id string, adding bool) (Group, *GroupGrants, string, error) {
	set, mine, g, err := s.load(ctx, actor, authz.ActEdit, id)
	if err != nil {
		return Group{}, nil, "", err
	}
	grants, err := s.mayManageGrants(ctx, actor, set, mine, g, adding)
	if err == nil && !adding {
		err = s.mayLift(ctx, actor, set, mine, g, grants)
	}
	return g, grants, mine, err
}

func (s *Groups) user(ctx context.Context, orgID, username string) (GroupUser, error) {
	username = strings.TrimSpace(username)
	u, err := s.store.OrgUserByUsername(ctx, orgID, strings.ToLower(username))
	if errs.Is(err, errs.NotFound) || (err == nil && username == "") {
		return GroupUser{}, errs.NotFoundf("Failed to find user with username %s", truncate(username, 320))
	}
	return u, err
}

// mappedBySSO refuses a manual change of a group's users while the
// organization's active SSO configuration maps them from the identity
// provider's groups claim (the next sign-in would undo it).
func (s *Groups) mappedBySSO(ctx context.Context, orgID, what string) error {
	on, err := s.store.SSOManagesGroups(ctx, orgID)
	if err != nil {
		return err
	}
	if on {
		return errs.BadRequest("Cannot %s group: OIDC group membership mapping is enabled - user must be assigned to this group in your OIDC provider.", what)
	}
	return nil
}

// AddUser puts a user of the organization (by username or email) in a group.
func (s *Groups) AddUser(ctx context.Context, actor authz.Actor, id, username string) (GroupUser, Group, error) {
	g, grants, mine, err := s.member(ctx, actor, id, true)
	if err != nil {
		return GroupUser{}, Group{}, err
	}
	if err := s.mappedBySSO(ctx, g.OrgID, "add user to"); err != nil {
		return GroupUser{}, Group{}, err
	}
	u, err := s.user(ctx, g.OrgID, username)
	if err != nil {
		return GroupUser{}, Group{}, err
	}
	if err := s.mayTake(ctx, actor, mine, g, grants, authz.Actor{Kind: authz.ActorUser, ID: u.ID, OrgID: g.OrgID}); err != nil {
		return GroupUser{}, Group{}, err
	}
	ev := audit.New(actor, "add-user-to-group", map[string]any{"groupId": g.ID, "groupName": g.Name, "userId": u.ID, "username": u.Username})
	if err := s.store.AddGroupMember(ctx, g.ID, authz.ActorUser, u.ID, &grants.Seen, ev); err != nil {
		if errs.Is(err, errs.Conflict) && !errors.Is(err, ErrGroupRolesChanged) {
			return GroupUser{}, Group{}, errs.BadRequest("User %s is already part of the group", u.Username)
		}
		return GroupUser{}, Group{}, err
	}
	return u, g, nil
}

// RemoveUser takes a user out of a group.
func (s *Groups) RemoveUser(ctx context.Context, actor authz.Actor, id, username string) (GroupUser, Group, error) {
	g, grants, _, err := s.member(ctx, actor, id, false)
	if err != nil {
		return GroupUser{}, Group{}, err
	}
	if err := s.mappedBySSO(ctx, g.OrgID, "remove user from"); err != nil {
		return GroupUser{}, Group{}, err
	}
	u, err := s.user(ctx, g.OrgID, username)
	if err != nil {
		return GroupUser{}, Group{}, err
	}
	ev := audit.New(actor, "remove-user-from-group", map[string]any{"groupId": g.ID, "groupName": g.Name, "userId": u.ID, "username": u.Username})
	if err := s.store.RemoveGroupMember(ctx, g.ID, authz.ActorUser, u.ID, &grants.Seen, ev); err != nil {
		if errs.Is(err, errs.NotFound) {
			return GroupUser{}, Group{}, errs.BadRequest("User %s is not part of the group", u.Username)
		}
		return GroupUser{}, Group{}, err
	}
	return u, g, nil
}

func (s *Groups) identity(ctx context.Context, orgID, identityID string) error {
	notFound := errs.NotFoundf("Failed to find identity with ID %s", truncate(identityID, 64))
	if _, err := uuid.Parse(identityID); err != nil {
		return notFound
	}
	org, err := s.store.IdentityOrg(ctx, identityID)
	if errs.Is(err, errs.NotFound) || (err == nil && org != orgID) {
		return notFound
	}
	return err
}

// AddIdentity puts a machine identity of the organization in a group.
func (s *Groups) AddIdentity(ctx context.Context, actor authz.Actor, id, identityID string) (Group, error) {
	g, grants, mine, err := s.member(ctx, actor, id, true)
	if err != nil {
		return Group{}, err
	}
	if err := s.identity(ctx, g.OrgID, identityID); err != nil {
		return Group{}, err
	}
	if err := s.mayTake(ctx, actor, mine, g, grants, authz.Actor{Kind: authz.ActorIdentity, ID: identityID, OrgID: g.OrgID}); err != nil {
		return Group{}, err
	}
	ev := audit.New(actor, "add-identity-to-group", map[string]any{"groupId": g.ID, "groupName": g.Name, "identityId": identityID})
	if err := s.store.AddGroupMember(ctx, g.ID, authz.ActorIdentity, identityID, &grants.Seen, ev); err != nil {
		if errs.Is(err, errs.Conflict) && !errors.Is(err, ErrGroupRolesChanged) {
			return Group{}, errs.BadRequest("Identity %s is already part of the group", identityID)
		}
		return Group{}, err
	}
	return g, nil
}

// RemoveIdentity takes a machine identity out of a group.
func (s *Groups) RemoveIdentity(ctx context.Context, actor authz.Actor, id, identityID string) (Group, error) {
	g, grants, _, err := s.member(ctx, actor, id, false)
	if err != nil {
		return Group{}, err
	}
	if err := s.identity(ctx, g.OrgID, identityID); err != nil {
		return Group{}, err
	}
	ev := audit.New(actor, "remove-identity-from-group", map[string]any{"groupId": g.ID, "groupName": g.Name, "identityId": identityID})
	if err := s.store.RemoveGroupMember(ctx, g.ID, authz.ActorIdentity, identityID, &grants.Seen, ev); err != nil {
		if errs.Is(err, errs.NotFound) {
			return Group{}, errs.BadRequest("Identity %s is not part of the group", identityID)
		}
		return Group{}, err
	}
	return g, nil
}

// MaxMappedGroups bounds the groups one sign-in's claim may name.
const MaxMappedGroups = 1000

// SyncUserGroups makes a user of organization orgID a member of exactly
// the groups named (by name, as Infisical matches an identity provider's
// groups claim; names matching no group of the organization are ignored),
// and of no other group of it: the mapping of an identity provider's
// groups claim at sign-in. It is the server acting on its own
// (no caller's permissions are checked, so only trusted code such as the
// SSO login may call it); each group joined or left is audited as actor's
// doing (typically the user signing in). The change is one transaction
// and, like every membership change, reaches every node's permission
// caches on their next request.
func (s *Groups) SyncUserGroups(ctx context.Context, actor authz.Actor, orgID, userID string, names []string) error {
	if _, err := uuid.Parse(userID); err != nil {
		return errs.NotFoundf("User %s not found", truncate(userID, 64))
	}
	want := make([]string, 0, len(names))
	for _, sl := range names {
		if sl = strings.TrimSpace(sl); sl != "" && !slices.Contains(want, sl) {
			want = append(want, sl)
		}
	}
	if len(want) > MaxMappedGroups {
		return errs.BadRequest("The identity provider names %d groups; at most %d can be mapped", len(want), MaxMappedGroups)
	}
	actor.OrgID = orgID // the events belong to the organization whose groups change
	groups, err := s.store.GroupsByName(ctx, orgID, want)
	if err != nil {
		return err
	}
	ids := make([]string, len(groups))
	byID := map[string]Group{}
	for i, g := range groups {
		ids[i] = g.ID
		byID[g.ID] = g
	}
	return s.store.SetUserGroups(ctx, orgID, userID, ids, func(added, removed []string) []audit.Event {
		var evs []audit.Event
		for _, id := range added {
			evs = append(evs, audit.New(actor, "add-user-to-group", map[string]any{"groupId": id, "groupName": byID[id].Name, "userId": userID, "source": "sso"}))
		}
		for _, id := range removed {
			evs = append(evs, audit.New(actor, "remove-user-from-group", map[string]any{"groupId": id, "userId": userID, "source": "sso"}))
		}
		return evs
	})
}
