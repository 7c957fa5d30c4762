package project

import (
	"context"
	"slices"
	"strconv"
	"time"

	"github.com/google/uuid"

	"github.com/lockbox-dev/lockbox/internal/audit"
	"github.com/lockbox-dev/lockbox/internal/authz"
	"github.com/lockbox-dev/lockbox/internal/errs"
	"github.com/lockbox-dev/lockbox/internal/lazyre"
)

// MembershipRole is one role of a project membership; temporary roles hold
// only between their start and end times.
type MembershipRole struct {
	ID                       string
	Role                     string // built-in slug, or "custom"
	CustomRoleID             string
	CustomRoleSlug           string
	CustomRoleName           string
	IsTemporary              bool
	TemporaryMode            string // "relative"
	TemporaryRange           string // e.g. "1h"
	TemporaryAccessStartTime *time.Time
	TemporaryAccessEndTime   *time.Time
	CreatedAt                time.Time
	UpdatedAt                time.Time
}

// Membership is an identity's membership of a project.
type Membership struct {
	ID                  string
	ProjectID           string
	ProjectName         string
	IdentityID          string
	IdentityName        string
	IdentityAuthMethods []string
	// IdentityHasDeleteProtection is the identity's own setting.
	IdentityHasDeleteProtection bool
	Roles                       []MembershipRole
	LastLoginAuthMethod         string
	LastLoginTime               *time.Time
	CreatedAt                   time.Time
	UpdatedAt                   time.Time
}

// CustomRole names a project's custom role.
type CustomRole struct {
	ID, Slug, Name string
}

// MembershipStore is the storage project memberships need.
type MembershipStore interface {
	ProjectByID(ctx context.Context, id string) (Project, error)
	// IdentityOrg returns the organization of an identity.
	IdentityOrg(ctx context.Context, identityID string) (string, error)
	CustomRoleBySlug(ctx context.Context, projectID, slug string) (CustomRole, error)
	ProjectRole(ctx context.Context, projectID, id string) (Role, error)
	AddIdentityMembership(ctx context.Context, projectID, identityID string, roles []MembershipRole, ev audit.Event) error
	IdentityMembership(ctx context.Context, projectID, identityID string) (Membership, error)
	IdentityMemberships(ctx context.Context, projectID string, offset, limit int) ([]Membership, int, error)
	// IdentityMembershipByID finds an identity membership by its own id, in any project.
	IdentityMembershipByID(ctx context.Context, membershipID string) (Membership, error)
	// ReplaceMembershipRoles and DeleteMembership refuse (errs.Invalid) to
	// leave a project that has a permanent admin without one.
	// Both refuse (errs.Conflict) when the membership's role ids are no
	// longer expect, the roles the caller's permission check was made on.
	ReplaceMembershipRoles(ctx context.Context, projectID, membershipID string, expect []string, roles []MembershipRole, ev audit.Event) error
	DeleteMembership(ctx context.Context, projectID, membershipID string, expect []string, ev audit.Event) error
	// DeleteMemberships is DeleteMembership for several, in one
	// transaction: all of them are removed, or none.
	DeleteMemberships(ctx context.Context, projectID string, dels []MembershipDeletion) error
	// Privileges are a membership's additional privileges (deleted with it).
	Privileges(ctx context.Context, membershipID string) ([]Privilege, error)
}

// MembershipDeletion is one membership to delete: its id, the role ids the
// caller's check was made on, and its audit event.
type MembershipDeletion struct {
	ID     string
	Expect []string
	Event  audit.Event
}

// Memberships manages which identities belong to a project, with which roles.
type Memberships struct {
	store MembershipStore
	authz Authorizer
	now   func() time.Time
}

// NewMemberships returns the membership service.
func NewMemberships(st MembershipStore, az Authorizer, now func() time.Time) *Memberships {
	if now == nil {
		now = time.Now
	}
	return &Memberships{store: st, authz: az, now: now}
}

// RoleGrant is a role requested for a membership.
type RoleGrant struct {
	Role                     string
	IsTemporary              bool
	TemporaryMode            string
	TemporaryRange           string
	TemporaryAccessStartTime time.Time // zero = now
}

var rangeRE = lazyre.New(`^(\d+)(ms|s|m|h|d|w|y)$`)

// maxRange bounds a temporary grant's range: 100 years.
const maxRange = 100 * 365 * 24 * time.Hour

// ParseRange parses Infisical's (ms-style) durations: "30s", "15m", "1h", "1d".
func ParseRange(s string) (time.Duration, bool) {
	m := rangeRE().FindStringSubmatch(s)
	if m == nil {
		return 0, false
	}
	n, err := strconv.ParseInt(m[1], 10, 64)
	if err != nil || n <= 0 || n > 100000 {
		return 0, false
	}
	unit := map[string]time.Duration{"ms": time.Millisecond, "s": time.Second, "m": time.Minute, "h": time.Hour,
		"d": 24 * time.Hour, "w": 7 * 24 * time.Hour, "y": 365 * 24 * time.Hour}[m[2]]
	if n > int64(maxRange/unit) {
		return 0, false // "300y" would overflow into a negative duration
	}
	return time.Duration(n) * unit, true
}

// isBuiltinRole reports whether role is a predefined project role
// (cryptographic-operator included).
func isBuiltinRole(role string) bool {
	_, ok := authz.ProjectRoleRules(role)
	return ok
}

// resolveRoles validates requested roles and checks the actor may grant them:
// built-in roles other than admin need identity create; admin and custom
// roles need grant-privileges (the privilege boundary).
func (m *Memberships) resolveRoles(ctx context.Context, perms authz.Set, projectID, identityID string, grants []RoleGrant) ([]MembershipRole, error) {
	return resolveGrants(ctx, m.store, m.now, perms, projectID, grants, authz.SubIdentity, &authz.Fields{IdentityID: identityID})
}

// MaxRolesPerMembership bounds the roles one membership (of an identity, a
// user or a group) is given at once: each is a row, looked up and inserted
// in the request, and read by every permission check of the member.
const MaxRolesPerMembership = 100

// MaxRoles bounds a project's custom roles: the role list returns them all,
// each up to authz.MaxRulesBytes of rules. Concurrent creates may pass it
// by a few.
const MaxRoles = 1000

// resolveGrants validates requested roles of a member of kind subject
// (identity or member) and checks the actor may grant them: admin and
// custom roles need grant-privileges on subject, for that member (fields:
// an identity's, so that a grant-privileges limited to some identities
// does not reach others; the privilege boundary).
func resolveGrants(ctx context.Context, st interface {
	CustomRoleBySlug(ctx context.Context, projectID, slug string) (CustomRole, error)
}, clock func() time.Time, perms authz.Set, projectID string, grants []RoleGrant, subject string, fields *authz.Fields) ([]MembershipRole, error) {
	if len(grants) == 0 {
		return nil, invalidField("roles", "At least one role is required")
	}
	if len(grants) > MaxRolesPerMembership {
		return nil, invalidField("roles", "A membership holds at most %d roles", MaxRolesPerMembership)
	}
	now := clock().UTC().Truncate(time.Microsecond)
	out := make([]MembershipRole, 0, len(grants))
	for _, g := range grants {
		r := MembershipRole{ID: newID(), Role: g.Role, CreatedAt: now, UpdatedAt: now}
		switch {
		case isBuiltinRole(g.Role):
		case g.Role == "":
			return nil, invalidField("roles", "role is required")
		default:
			cr, err := st.CustomRoleBySlug(ctx, projectID, g.Role)
			if errs.Is(err, errs.NotFound) {
				return nil, errs.BadRequest("Role '%s' does not exist in this project", truncate(g.Role, 64))
			}
			if err != nil {
				return nil, err
			}
			r.Role, r.CustomRoleID, r.CustomRoleSlug, r.CustomRoleName = "custom", cr.ID, cr.Slug, cr.Name
		}
		if r.Role == "admin" || r.Role == "custom" {
			if !perms.Can(authz.ActGrantPrivileges, subject, fields) {
				return nil, boundaryError("grant role '%s': it can hold privileges you do not have", g.Role)
			}
		}
		if g.IsTemporary {
			d, ok := ParseRange(g.TemporaryRange)
			if !ok {
				return nil, invalidField("temporaryRange", "temporaryRange must be a duration such as 30m, 1h or 1d")
			}
			start := g.TemporaryAccessStartTime.UTC().Truncate(time.Microsecond)
			if g.TemporaryAccessStartTime.IsZero() {
				start = now
			}
			end := start.Add(d)
			r.IsTemporary, r.TemporaryMode, r.TemporaryRange = true, "relative", g.TemporaryRange
			r.TemporaryAccessStartTime, r.TemporaryAccessEndTime = &start, &end
		}
		out = append(out, r)
	}
	return out, nil
}

func boundaryError(format string, args ...any) error {
	return errs.Forbiddenf("Failed to "+format, args...).WithCode("PermissionBoundaryError")
}

// roleSet is the permission set of roles, temporary ones included whatever
// their window.
func (m *Memberships) roleSet(ctx context.Context, projectID string, roles []MembershipRole) (authz.Set, error) {
	lists := make([][]authz.Rule, 0, len(roles))
	for _, r := range roles {
		if r.Role == "custom" {
			cr, err := m.store.ProjectRole(ctx, projectID, r.CustomRoleID)
			if err != nil {
				return authz.Set{}, err
			}
			lists = append(lists, cr.Permissions)
			continue
		}
		rules, ok := authz.ProjectRoleRules(r.Role)
		if !ok {
			return authz.Set{}, errs.Internalf(nil, "unknown role %q", r.Role)
		}
		lists = append(lists, rules)
	}
	return authz.JoinRoles(lists), nil // as the resolver joins them
}

// checkGrantRoles refuses to hand out roles unless the actor's permissions
// cover each of them (conditions included) for as long as it lasts: a
// permanent role needs what the actor holds for good, a temporary one may
// rest on the actor's temporary access if it ends no later than that does.
// A role the member already holds, with the same window (in had), is
// kept, not handed out; but on a change (had given) the actor must cover
// the roles that remain, together: dropping a role that denies something
// gives back what it denied, so a member whose deny role an admin added
// beside a broader one cannot take it off itself (or off a group it is in)
// unless it holds that access anyway. Temporary roles are left out of that
// set: a denial given for a window lapses (a deny role given back for a
// window that has ended took it off all the same), and a temporary grant
// is checked on its own below.
//
// A role that denies anything takes from whoever receives it, and any set
// covers one that only denies: so to give one the actor must also hold,
// from now on, everything each receiver holds in the project (takers, as
// Privileges.checkTarget asks of a deny privilege); a group's receivers are
// whoever is or will be in it, so giving a group such a role needs the
// actor to hold everything the project's admin role does (takers nil).
func (m *Memberships) checkGrantRoles(ctx context.Context, perms authz.Set, projectID, what string, takers []authz.Actor, roles []MembershipRole, had ...MembershipRole) error {
	if len(had) > 0 {
		lasting := slices.DeleteFunc(slices.Clone(roles), func(r MembershipRole) bool { return r.IsTemporary })
		set, err := m.roleSet(ctx, projectID, lasting)
		if err != nil {
			return err
		}
		if !perms.Covers(set) {
			return boundaryError("%s: the roles that would remain hold privileges you do not have", what)
		}
		dropped := slices.DeleteFunc(slices.Clone(had), func(h MembershipRole) bool { return slices.ContainsFunc(roles, h.sameGrant) })
		if err := m.checkLift(ctx, perms, projectID, what, dropped); err != nil {
			return err
		}
	}
	for _, r := range roles {
		if slices.ContainsFunc(had, r.sameGrant) {
			continue
		}
		set, err := m.roleSet(ctx, projectID, []MembershipRole{r})
		if err != nil {
			return err
		}
		var until time.Time
		if r.IsTemporary && r.TemporaryAccessEndTime != nil {
			until = *r.TemporaryAccessEndTime
		}
		if !perms.Covers(set) {
			return boundaryError("%s: the roles concerned hold privileges you do not have", what)
		}
		if !perms.CoversUntil(set, until) {
			return boundaryError("%s: a role would outlast the temporary access you hold it by", what)
		}
		if set.Denies() {
			if err := m.checkTakers(ctx, perms, projectID, what, takers); err != nil {
				return err
			}
		}
	}
	return nil
}

// identityTaker is the identity whose roles change, as checkGrantRoles' taker.
func identityTaker(actor authz.Actor, identityID string) []authz.Actor {
	return []authz.Actor{{Kind: authz.ActorIdentity, ID: identityID, OrgID: actor.OrgID}}
}

// userTakers are the users whose roles change, as checkGrantRoles' takers.
func userTakers(actor authz.Actor, ids ...string) []authz.Actor {
	out := make([]authz.Actor, 0, len(ids))
	for _, id := range ids {
		out = append(out, authz.Actor{Kind: authz.ActorUser, ID: id, OrgID: actor.OrgID})
	}
	return out
}

// checkTakers is checkGrantRoles' rule for a role that denies: the actor
// holds for good everything each taker holds from now on, or, for a group
// (takers nil), everything the admin role holds.
func (m *Memberships) checkTakers(ctx context.Context, perms authz.Set, projectID, what string, takers []authz.Actor) error {
	if takers == nil {
		admin, _ := authz.ProjectRoleRules("admin")
		if !perms.Lasting().Covers(authz.NewSet(admin)) {
			return boundaryError("%s: a role that denies, given to a group, takes from whoever is in it; only those who hold all a project admin does may give one", what)
		}
		return nil
	}
	for _, t := range takers {
		ok, err := CoversTaker(ctx, m.authz, perms, t, projectID)
		if err != nil {
			return err
		}
		if !ok {
			return boundaryError("%s: a role that denies would take from a member who holds permissions you do not have", what)
		}
	}
	return nil
}

// CoversTaker reports whether perms holds for good everything target
// holds in projectID from now on: the rule for taking from target (a role
// or group that denies). A principal not in force in the organization
// (invited, deactivated) holds nothing.
func CoversTaker(ctx context.Context, az interface {
	HeldFromNow(ctx context.Context, target authz.Actor, projectID string) ([]authz.Set, error)
}, perms authz.Set, target authz.Actor, projectID string) (bool, error) {
	sets, err := az.HeldFromNow(ctx, target, projectID)
	if errs.Is(err, errs.Forbidden) {
		return true, nil
	}
	if err != nil {
		return false, err
	}
	for _, held := range sets {
		if !perms.CoversUntil(held, time.Time{}) {
			return false, nil
		}
	}
	return true, nil
}

// sameGrant reports whether o gives what r gives for the same window.
func (r MembershipRole) sameGrant(o MembershipRole) bool {
	sameEnd := func(a, b *time.Time) bool { return a == nil && b == nil || a != nil && b != nil && a.Equal(*b) }
	return r.Role == o.Role && r.CustomRoleID == o.CustomRoleID && r.IsTemporary == o.IsTemporary &&
		sameEnd(r.TemporaryAccessStartTime, o.TemporaryAccessStartTime) && sameEnd(r.TemporaryAccessEndTime, o.TemporaryAccessEndTime)
}

// checkBoundary refuses to take roles away (or act on a member holding
// them) unless the actor's permissions cover them (conditions included).
func (m *Memberships) checkBoundary(ctx context.Context, perms authz.Set, projectID, what string, roles []MembershipRole) error {
	set, err := m.roleSet(ctx, projectID, roles)
	if err != nil {
		return err
	}
	if !perms.Covers(set) {
		return boundaryError("%s: the roles concerned hold privileges you do not have", what)
	}
	return nil
}

// checkLift refuses to take away roles that deny something (dropped)
// unless the actor holds what each denies, for as long as the role would
// have lasted (for good for a permanent one; a temporary role that has
// ended denies nothing any more). Any set covers one that only denies, so
// without this a member who may remove groups or members took a deny role
// off itself, or a group it is in, and read what the role kept from it
// through its other roles; as deleting a deny privilege (lifted).
func (m *Memberships) checkLift(ctx context.Context, perms authz.Set, projectID, what string, dropped []MembershipRole) error {
	now := m.now()
	for _, r := range dropped {
		var until time.Time
		if r.IsTemporary && r.TemporaryAccessEndTime != nil {
			if !r.TemporaryAccessEndTime.After(now) {
				continue
			}
			until = *r.TemporaryAccessEndTime
		}
		set, err := m.roleSet(ctx, projectID, []MembershipRole{r})
		if err != nil {
			return err
		}
		if !perms.CoversLift(set, until) {
			return boundaryError("%s: it takes away a role that denies what you may not do yourself", what)
		}
	}
	return nil
}

// checkRemoval is the boundary of ending membership ref: the actor must
// hold its roles (checkBoundary) and be one who may delete each of its
// additional privileges (checkGrant on what each gives and takes away, as
// deleting it does). Ending a membership deletes its privileges with it:
// otherwise removing and adding a member again lifted a deny privilege its
// remover could not delete, or took from the member allowances the remover
// does not hold.
func (m *Memberships) checkRemoval(ctx context.Context, perms authz.Set, ref MemberRef, what string, roles []MembershipRole) error {
	if err := m.checkBoundary(ctx, perms, ref.ProjectID, what, roles); err != nil {
		return err
	}
	if err := m.checkLift(ctx, perms, ref.ProjectID, what, roles); err != nil {
		return err
	}
	pvs, err := m.store.Privileges(ctx, ref.ID)
	if err != nil {
		return err
	}
	for _, pv := range pvs {
		given, taken := lifted(pv.Permissions)
		if checkGrant(perms, ref, pv.until(), given, taken...) != nil {
			return boundaryError("%s: its additional privilege '%s' is one you may not delete", what, pv.Slug)
		}
	}
	return nil
}

func membershipNotFound(identityID string) error {
	return errs.NotFoundf("Identity %s is not a member of this project", identityID)
}

// load checks action on project identities and returns the project and permissions.
func (m *Memberships) load(ctx context.Context, actor authz.Actor, projectID, identityID, action string) (Project, authz.Set, error) {
	if _, err := uuid.Parse(projectID); err != nil {
		return Project{}, authz.Set{}, projectNotFound(projectID)
	}
	perms, err := m.authz.ProjectPermissions(ctx, actor, projectID)
	if err != nil {
		return Project{}, authz.Set{}, err
	}
	var f *authz.Fields
	if identityID != "" {
		f = &authz.Fields{IdentityID: identityID}
	}
	if err := perms.Check(action, authz.SubIdentity, f); err != nil {
		return Project{}, authz.Set{}, err
	}
	p, err := m.store.ProjectByID(ctx, projectID)
	if errs.Is(err, errs.NotFound) {
		return Project{}, authz.Set{}, projectNotFound(projectID)
	}
	return p, perms, err
}

// Add makes an identity of the actor's organization a member of a project.
func (m *Memberships) Add(ctx context.Context, actor authz.Actor, projectID, identityID string, grants []RoleGrant) (Membership, error) {
	p, perms, err := m.load(ctx, actor, projectID, identityID, authz.ActCreate)
	if err != nil {
		return Membership{}, err
	}
	if _, err := uuid.Parse(identityID); err != nil {
		return Membership{}, errs.NotFoundf("Failed to find identity with ID %s", identityID)
	}
	org, err := m.store.IdentityOrg(ctx, identityID)
	if errs.Is(err, errs.NotFound) || (err == nil && org != p.OrgID) {
		return Membership{}, errs.NotFoundf("Failed to find identity with ID %s", identityID)
	}
	if err != nil {
		return Membership{}, err
	}
	roles, err := m.resolveRoles(ctx, perms, p.ID, identityID, grants)
	if err != nil {
		return Membership{}, err
	}
	if err := m.checkGrantRoles(ctx, perms, p.ID, "add the membership", identityTaker(actor, identityID), roles); err != nil {
		return Membership{}, err
	}
	ev := audit.New(actor, "create-identity-project-membership", map[string]any{"identityId": identityID, "roles": roleSlugs(roles)}).InProject(p.ID, p.Name)
	if err := m.store.AddIdentityMembership(ctx, p.ID, identityID, roles, ev); err != nil {
		if errs.Is(err, errs.Conflict) {
			return Membership{}, errs.BadRequest("Identity %s is already a member of this project", identityID)
		}
		return Membership{}, err
	}
	return m.store.IdentityMembership(ctx, p.ID, identityID)
}

func roleIDs(roles []MembershipRole) []string {
	out := make([]string, len(roles))
	for i, r := range roles {
		out[i] = r.ID
	}
	return out
}

func roleSlugs(roles []MembershipRole) []string {
	out := make([]string, len(roles))
	for i, r := range roles {
		out[i] = r.Role
		if r.CustomRoleSlug != "" {
			out[i] = r.CustomRoleSlug
		}
	}
	return out
}

// Get returns an identity's membership of a project.
func (m *Memberships) Get(ctx context.Context, actor authz.Actor, projectID, identityID string) (Membership, error) {
	if _, _, err := m.load(ctx, actor, projectID, identityID, authz.ActRead); err != nil {
		return Membership{}, err
	}
	ms, err := m.store.IdentityMembership(ctx, projectID, identityID)
	if errs.Is(err, errs.NotFound) {
		return Membership{}, membershipNotFound(identityID)
	}
	return ms, err
}

// GetByID returns an identity membership by its own id, with the checks of
// Get. To a non-member of its project the membership does not exist.
func (m *Memberships) GetByID(ctx context.Context, actor authz.Actor, membershipID string) (Membership, error) {
	notFound := errs.NotFoundf("Identity membership with ID '%s' not found", truncate(membershipID, 64))
	if _, err := uuid.Parse(membershipID); err != nil {
		return Membership{}, notFound
	}
	ms, err := m.store.IdentityMembershipByID(ctx, membershipID)
	if errs.Is(err, errs.NotFound) {
		return Membership{}, notFound
	}
	if err != nil {
		return Membership{}, err
	}
	if _, err := m.authz.ProjectPermissions(ctx, actor, ms.ProjectID); errs.Is(err, errs.NotFound) || errs.Is(err, errs.Forbidden) {
		return Membership{}, notFound
	} else if err != nil {
		return Membership{}, err
	}
	return m.Get(ctx, actor, ms.ProjectID, ms.IdentityID)
}

// List returns a project's identity memberships.
// With identityId conditions on the caller's identity rules, only the
// memberships it may read are listed (and counted).
func (m *Memberships) List(ctx context.Context, actor authz.Actor, projectID string, offset, limit int) ([]Membership, int, error) {
	_, perms, err := m.load(ctx, actor, projectID, "", authz.ActRead)
	if err != nil {
		return nil, 0, err
	}
	if !perms.UsesCondition(authz.SubIdentity, "identityId") {
		return m.store.IdentityMemberships(ctx, projectID, offset, limit)
	}
	all, _, err := m.store.IdentityMemberships(ctx, projectID, 0, 1<<30)
	if err != nil {
		return nil, 0, err
	}
	page, total := PageOf(all, func(ms Membership) bool {
		return perms.Can(authz.ActRead, authz.SubIdentity, &authz.Fields{IdentityID: ms.IdentityID})
	}, offset, limit)
	return page, total, nil
}

// PageOf keeps the items keep accepts and returns the page of them at offset
// (at most limit) with their count: a list whose items the caller's rules
// allow one by one is filtered before it is paged and counted.
func PageOf[T any](all []T, keep func(T) bool, offset, limit int) ([]T, int) {
	all = slices.DeleteFunc(all, func(v T) bool { return !keep(v) })
	total := len(all)
	all = all[min(offset, total):]
	return all[:min(limit, len(all))], total
}

// UpdateRoles replaces the roles of a membership.
func (m *Memberships) UpdateRoles(ctx context.Context, actor authz.Actor, projectID, identityID string, grants []RoleGrant) (Membership, error) {
	p, perms, err := m.load(ctx, actor, projectID, identityID, authz.ActEdit)
	if err != nil {
		return Membership{}, err
	}
	ms, err := m.store.IdentityMembership(ctx, p.ID, identityID)
	if errs.Is(err, errs.NotFound) {
		return Membership{}, membershipNotFound(identityID)
	}
	if err != nil {
		return Membership{}, err
	}
	if err := m.checkBoundary(ctx, perms, p.ID, "change the membership", ms.Roles); err != nil {
		return Membership{}, err
	}
	roles, err := m.resolveRoles(ctx, perms, p.ID, identityID, grants)
	if err != nil {
		return Membership{}, err
	}
	if err := m.checkGrantRoles(ctx, perms, p.ID, "change the membership", identityTaker(actor, identityID), roles, ms.Roles...); err != nil {
		return Membership{}, err
	}
	ev := audit.New(actor, "update-identity-project-membership", map[string]any{"identityId": identityID, "roles": roleSlugs(roles)}).InProject(p.ID, p.Name)
	if err := m.store.ReplaceMembershipRoles(ctx, p.ID, ms.ID, roleIDs(ms.Roles), roles, ev); err != nil {
		return Membership{}, err
	}
	return m.store.IdentityMembership(ctx, p.ID, identityID)
}

// Remove ends an identity's membership of a project.
func (m *Memberships) Remove(ctx context.Context, actor authz.Actor, projectID, identityID string) (Membership, error) {
	p, perms, err := m.load(ctx, actor, projectID, identityID, authz.ActDelete)
	if err != nil {
		return Membership{}, err
	}
	ms, err := m.store.IdentityMembership(ctx, p.ID, identityID)
	if errs.Is(err, errs.NotFound) {
		return Membership{}, membershipNotFound(identityID)
	}
	if err != nil {
		return Membership{}, err
	}
	ref := MemberRef{ID: ms.ID, ProjectID: p.ID, IdentityID: identityID}
	if err := m.checkRemoval(ctx, perms, ref, "remove the membership", ms.Roles); err != nil {
		return Membership{}, err
	}
	ev := audit.New(actor, "delete-identity-project-membership", map[string]any{"identityId": identityID}).InProject(p.ID, p.Name)
	return ms, m.store.DeleteMembership(ctx, p.ID, ms.ID, roleIDs(ms.Roles), ev)
}
