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

// UserMembership is a user's membership of a project.
type UserMembership struct {
	ID          string
	ProjectID   string
	ProjectName string
	UserID      string
	Email       string
	Username    string
	FirstName   string
	LastName    string
	Roles       []MembershipRole
	CreatedAt   time.Time
	UpdatedAt   time.Time
}

// ref names ms as a member of project projectID.
func (ms UserMembership) ref(projectID string) MemberRef {
	return MemberRef{ID: ms.ID, ProjectID: projectID, UserID: ms.UserID}
}

// OrgUser is a user who is a member (invited or accepted) of an organization.
type OrgUser struct {
	ID, Email, Username string
}

// UserStore is the storage project user memberships need, beyond the
// identity memberships' (whose role and delete methods it shares).
type UserStore interface {
	MembershipStore
	// OrgUsersByLogin returns the organization's users whose email or
	// username is one of logins (lowercased).
	OrgUsersByLogin(ctx context.Context, orgID string, logins []string) ([]OrgUser, error)
	// AddUserMemberships makes each user a member with its roles (rolesOf
	// gives each user fresh role rows); users already members are skipped.
	// It returns the memberships created.
	AddUserMemberships(ctx context.Context, projectID string, userIDs []string, rolesOf func() []MembershipRole, ev audit.Event) ([]UserMembership, error)
	UserMembership(ctx context.Context, projectID, membershipID string) (UserMembership, error)
	UserMembershipByUser(ctx context.Context, projectID, userID string) (UserMembership, error)
	UserMemberships(ctx context.Context, projectID string) ([]UserMembership, error)
}

// Users manages which users belong to a project, with which roles. The
// rules are the identity memberships': a project role is granted only by
// someone holding all it allows, temporary roles hold only in their window.
type Users struct {
	store UserStore
	m     *Memberships
}

// NewUsers returns the project user membership service.
func NewUsers(st UserStore, az Authorizer, now func() time.Time) *Users {
	return &Users{store: st, m: NewMemberships(st, az, now)}
}

// MaxUsersPerRequest bounds one add or remove by logins.
const MaxUsersPerRequest = 100

func userMembershipNotFound(id string) error {
	return errs.NotFoundf("Project membership with ID '%s' not found", truncate(id, 64))
}

// load checks action on project members and returns the project and permissions.
func (u *Users) load(ctx context.Context, actor authz.Actor, projectID, action string) (Project, authz.Set, error) {
	if _, err := uuid.Parse(projectID); err != nil {
		return Project{}, authz.Set{}, projectNotFound(projectID)
	}
	perms, err := u.m.authz.ProjectPermissions(ctx, actor, projectID)
	if err != nil {
		return Project{}, authz.Set{}, err
	}
	if err := perms.Check(action, authz.SubMember, nil); err != nil {
		return Project{}, authz.Set{}, err
	}
	p, err := u.store.ProjectByID(ctx, projectID)
	if errs.Is(err, errs.NotFound) {
		return Project{}, authz.Set{}, projectNotFound(projectID)
	}
	return p, perms, err
}

func (u *Users) get(ctx context.Context, projectID, membershipID string) (UserMembership, error) {
	if _, err := uuid.Parse(membershipID); err != nil {
		return UserMembership{}, userMembershipNotFound(membershipID)
	}
	ms, err := u.store.UserMembership(ctx, projectID, membershipID)
	if errs.Is(err, errs.NotFound) {
		return UserMembership{}, userMembershipNotFound(membershipID)
	}
	return ms, err
}

// List returns a project's user memberships.
func (u *Users) List(ctx context.Context, actor authz.Actor, projectID string) ([]UserMembership, error) {
	if _, _, err := u.load(ctx, actor, projectID, authz.ActRead); err != nil {
		return nil, err
	}
	return u.store.UserMemberships(ctx, projectID)
}

// Get returns one user membership of a project.
func (u *Users) Get(ctx context.Context, actor authz.Actor, projectID, membershipID string) (UserMembership, error) {
	if _, _, err := u.load(ctx, actor, projectID, authz.ActRead); err != nil {
		return UserMembership{}, err
	}
	return u.get(ctx, projectID, membershipID)
}

// GetByUser returns the membership of the user with id userID.
func (u *Users) GetByUser(ctx context.Context, actor authz.Actor, projectID, userID string) (UserMembership, error) {
	if _, _, err := u.load(ctx, actor, projectID, authz.ActRead); err != nil {
		return UserMembership{}, err
	}
	notFound := errs.NotFoundf("User %s is not a member of this project", truncate(userID, 64))
	if _, err := uuid.Parse(userID); err != nil {
		return UserMembership{}, notFound
	}
	ms, err := u.store.UserMembershipByUser(ctx, projectID, userID)
	if errs.Is(err, errs.NotFound) {
		return UserMembership{}, notFound
	}
	return ms, err
}

// GetByLogin returns the membership of the user with email or username login.
func (u *Users) GetByLogin(ctx context.Context, actor authz.Actor, projectID, login string) (UserMembership, error) {
	p, _, err := u.load(ctx, actor, projectID, authz.ActRead)
	if err != nil {
		return UserMembership{}, err
	}
	notFound := errs.NotFoundf("User %s is not a member of this project", truncate(login, 320))
	users, err := u.store.OrgUsersByLogin(ctx, p.OrgID, []string{strings.ToLower(strings.TrimSpace(login))})
	if err != nil {
		return UserMembership{}, err
	}
	if len(users) == 0 {
		return UserMembership{}, notFound
	}
	ms, err := u.store.UserMembershipByUser(ctx, p.ID, users[0].ID)
	if errs.Is(err, errs.NotFound) {
		return UserMembership{}, notFound
	}
	return ms, err
}

// users resolves logins (emails or usernames) to users of the project's
// organization; an unknown one is refused, naming it.
func (u *Users) users(ctx context.Context, orgID string, logins []string) ([]OrgUser, error) {
	if len(logins) == 0 {
		return nil, errs.Fieldf("emails", "Either usernames or emails must be provided")
	}
	if len(logins) > MaxUsersPerRequest {
		return nil, errs.Fieldf("emails", "At most %d users per request", MaxUsersPerRequest)
	}
	want := make([]string, 0, len(logins))
	for _, l := range logins {
		l = strings.ToLower(strings.TrimSpace(l))
		if l == "" || len(l) > 320 {
			return nil, errs.Fieldf("emails", "an email or username is empty or too long")
		}
		want = append(want, l)
	}
	found, err := u.store.OrgUsersByLogin(ctx, orgID, want)
	if err != nil {
		return nil, err
	}
	for _, l := range want {
		ok := false
		for _, f := range found {
			if f.Email == l || strings.ToLower(f.Username) == l {
				ok = true
				break
			}
		}
		if !ok {
			return nil, errs.BadRequest("%s is not a member of this organization; invite them first", truncate(l, 320))
		}
	}
	return found, nil
}

// CheckAdd reports whether the actor may add members to a project with
// roles (nil: member), without adding anyone: the checks of Add before it
// looks the users up.
func (u *Users) CheckAdd(ctx context.Context, actor authz.Actor, projectID string, roles []string) error {
	p, perms, err := u.load(ctx, actor, projectID, authz.ActCreate)
	if err != nil {
		return err
	}
	_, err = u.grantable(ctx, perms, p, roles, []authz.Actor{}) // nobody yet: Join checks whom it adds
	return err
}

// grantable resolves role slugs (none: member) and checks the actor may grant them.
func (u *Users) grantable(ctx context.Context, perms authz.Set, p Project, slugs []string, takers []authz.Actor) ([]MembershipRole, error) {
	grants := make([]RoleGrant, len(slugs))
	for i, s := range slugs {
		grants[i] = RoleGrant{Role: s}
	}
	if len(grants) == 0 {
		grants = []RoleGrant{{Role: "member"}}
	}
	roles, err := resolveGrants(ctx, u.store, u.m.now, perms, p.ID, grants, authz.SubMember, nil)
	if err != nil {
		return nil, err
	}
	return roles, u.m.checkGrantRoles(ctx, perms, p.ID, "add the members", takers, roles)
}

// Add makes users of the project's organization (named by email or
// username) members of the project with roles (default: member). Users
// already members are left as they are and not returned.
func (u *Users) Add(ctx context.Context, actor authz.Actor, projectID string, logins []string, grants []RoleGrant) ([]UserMembership, error) {
	p, perms, err := u.load(ctx, actor, projectID, authz.ActCreate)
	if err != nil {
		return nil, err
	}
	users, err := u.users(ctx, p.OrgID, logins)
	if err != nil {
		return nil, err
	}
	if len(grants) == 0 {
		grants = []RoleGrant{{Role: "member"}}
	}
	roles, err := resolveGrants(ctx, u.store, u.m.now, perms, p.ID, grants, authz.SubMember, nil)
	if err != nil {
		return nil, err
	}
	if err := u.m.checkGrantRoles(ctx, perms, p.ID, "add the members", userTakers(actor, userIDs(users)...), roles); err != nil {
		return nil, err
	}
	return u.add(ctx, actor, p, users, roles)
}

// Join adds the users named by logins with role slugs (none: member); it
// is Add for callers that need no memberships back (org.ProjectAdder).
func (u *Users) Join(ctx context.Context, actor authz.Actor, projectID string, logins, roles []string) error {
	p, perms, err := u.load(ctx, actor, projectID, authz.ActCreate)
	if err != nil {
		return err
	}
	users, err := u.users(ctx, p.OrgID, logins)
	if err != nil {
		return err
	}
	rs, err := u.grantable(ctx, perms, p, roles, userTakers(actor, userIDs(users)...))
	if err != nil {
		return err
	}
	_, err = u.add(ctx, actor, p, users, rs)
	return err
}

func userIDs(users []OrgUser) []string {
	ids := make([]string, len(users))
	for i, us := range users {
		ids[i] = us.ID
	}
	return ids
}

func (u *Users) add(ctx context.Context, actor authz.Actor, p Project, users []OrgUser, roles []MembershipRole) ([]UserMembership, error) {
	ids := make([]string, len(users))
	emails := make([]string, len(users))
	for i, us := range users {
		ids[i], emails[i] = us.ID, us.Email
	}
	rolesOf := func() []MembershipRole {
		out := make([]MembershipRole, len(roles))
		for i, r := range roles {
			r.ID = newID()
			out[i] = r
		}
		return out
	}
	ev := audit.New(actor, "add-users-to-project", map[string]any{"emails": emails, "roles": roleSlugs(roles)}).InProject(p.ID, p.Name)
	return u.store.AddUserMemberships(ctx, p.ID, ids, rolesOf, ev)
}

// UpdateRoles replaces the roles of a user membership; the actor must hold
// every privilege of the roles before and after.
func (u *Users) UpdateRoles(ctx context.Context, actor authz.Actor, projectID, membershipID string, grants []RoleGrant) (UserMembership, error) {
	p, perms, err := u.load(ctx, actor, projectID, authz.ActEdit)
	if err != nil {
		return UserMembership{}, err
	}
	ms, err := u.get(ctx, p.ID, membershipID)
	if err != nil {
		return UserMembership{}, err
	}
	if err := u.m.checkBoundary(ctx, perms, p.ID, "change the membership", ms.Roles); err != nil {
		return UserMembership{}, err
	}
	roles, err := resolveGrants(ctx, u.store, u.m.now, perms, p.ID, grants, authz.SubMember, nil)
	if err != nil {
		return UserMembership{}, err
	}
	if err := u.m.checkGrantRoles(ctx, perms, p.ID, "change the membership", userTakers(actor, ms.UserID), roles, ms.Roles...); err != nil {
		return UserMembership{}, err
	}
	ev := audit.New(actor, "update-user-project-membership", map[string]any{"userId": ms.UserID, "email": ms.Email, "roles": roleSlugs(roles)}).InProject(p.ID, p.Name)
	if err := u.store.ReplaceMembershipRoles(ctx, p.ID, ms.ID, roleIDs(ms.Roles), roles, ev); err != nil {
		return UserMembership{}, err
	}
	return u.store.UserMembership(ctx, p.ID, ms.ID)
}

// Remove ends a user membership named by its id.
func (u *Users) Remove(ctx context.Context, actor authz.Actor, projectID, membershipID string) (UserMembership, error) {
	p, perms, err := u.load(ctx, actor, projectID, authz.ActDelete)
	if err != nil {
		return UserMembership{}, err
	}
	ms, err := u.get(ctx, p.ID, membershipID)
	if err != nil {
		return UserMembership{}, err
	}
	return ms, u.remove(ctx, actor, p, perms, ms)
}

func (u *Users) remove(ctx context.Context, actor authz.Actor, p Project, perms authz.Set, ms UserMembership) error {
	if err := u.m.checkRemoval(ctx, perms, ms.ref(p.ID), "remove the membership", ms.Roles); err != nil {
		return err
	}
	return u.store.DeleteMembership(ctx, p.ID, ms.ID, roleIDs(ms.Roles), removalEvent(actor, p, ms))
}

func removalEvent(actor authz.Actor, p Project, ms UserMembership) audit.Event {
	return audit.New(actor, "remove-user-from-project", map[string]any{"userId": ms.UserID, "email": ms.Email}).InProject(p.ID, p.Name)
}

// RemoveByLogins ends the memberships of users named by email or username.
// Every one must be a member; nothing is removed otherwise.
func (u *Users) RemoveByLogins(ctx context.Context, actor authz.Actor, projectID string, logins []string) ([]UserMembership, error) {
	p, perms, err := u.load(ctx, actor, projectID, authz.ActDelete)
	if err != nil {
		return nil, err
	}
	users, err := u.users(ctx, p.OrgID, logins)
	if err != nil {
		return nil, err
	}
	var list []UserMembership
	for _, us := range users {
		ms, err := u.store.UserMembershipByUser(ctx, p.ID, us.ID)
		if errs.Is(err, errs.NotFound) {
			return nil, errs.BadRequest("%s is not a member of this project", us.Email)
		}
		if err != nil {
			return nil, err
		}
		if err := u.m.checkRemoval(ctx, perms, ms.ref(p.ID), "remove the membership", ms.Roles); err != nil {
			return nil, err
		}
		list = append(list, ms)
	}
	dels := make([]MembershipDeletion, len(list))
	for i, ms := range list {
		dels[i] = MembershipDeletion{ID: ms.ID, Expect: roleIDs(ms.Roles), Event: removalEvent(actor, p, ms)}
	}
	if err := u.store.DeleteMemberships(ctx, p.ID, dels); err != nil {
		return nil, err
	}
	return list, nil
}
