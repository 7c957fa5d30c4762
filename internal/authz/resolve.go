package authz

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/lockbox-dev/lockbox/internal/cache"
	"github.com/lockbox-dev/lockbox/internal/errs"
)

// Grant is one role an actor holds in a project: a built-in role slug, or a
// custom role whose rules are given as JSON.
type Grant struct {
	Role        string
	Permissions []byte    // custom role rules (v2 JSON); nil for built-in roles
	Until       time.Time // end of a temporary grant; zero for a permanent one
}

// Memberships is the storage view the resolver needs.
type Memberships interface {
	// OrgRole returns the actor's role slug in org, or errs.NotFound if it is not a member.
	OrgRole(ctx context.Context, orgID string, kind ActorKind, actorID string) (string, error)
	// ProjectGrants returns the project's organization and the roles the actor
	// holds in it at time now (temporary roles outside their window are left
	// out), then its additional privileges in force at now as grants with
	// Permissions (their rules come after the roles' rules, so a privilege's
	// inverted rule can narrow a role), and the next moment a temporary role
	// or privilege starts or ends (zero: none).
	// errs.NotFound if the project does not exist.
	ProjectGrants(ctx context.Context, projectID string, kind ActorKind, actorID string, now time.Time) (orgID string, grants []Grant, next time.Time, err error)
}

// Resolver turns an actor into its permission sets.
type Resolver struct {
	m   Memberships
	now func() time.Time

	// Cached lookups (SetCache); nil: read each time.
	orgRoles *cache.Map[memberKey, orgMember]
	grants   *cache.Map[memberKey, projectGrants]
}

// memberKey names an actor in an organization or a project, as seen from
// the organization its session is in: the answer depends on that
// organization's role (a user may be admin of one and not of another).
type memberKey struct {
	scope string // organization or project id
	kind  ActorKind
	id    string
	org   string // the actor's session organization
}

// orgMember is an actor's organization role and those of the groups it is in.
type orgMember struct {
	role   string
	groups []string
}

// admin reports whether the member is an organization admin, by its own
// role or a group's.
func (m orgMember) admin() bool { return m.role == "admin" || slices.Contains(m.groups, "admin") }

// OrgGroupRoles is the storage of the organization roles an actor holds
// through groups. A Memberships that does not implement it knows no
// group roles.
type OrgGroupRoles interface {
	// OrgGroupRoles returns the organization role slugs (built-in, or a
	// custom role's slug) of the groups of orgID the actor is in, one per
	// group (a slug may repeat).
	OrgGroupRoles(ctx context.Context, orgID string, kind ActorKind, actorID string) ([]string, error)
}

type projectGrants struct {
	orgID     string
	set       Set
	notMember bool  // holding no role in force
	setErr    error // the grants do not make a set (a stored custom role is invalid)
}

// MaxCachedGrants bounds the memberships a node keeps resolved in memory,
// and MaxCachedGrantBytes the memory they hold (setBytes): a member holding
// a hundred custom roles keeps megabytes.
const (
	MaxCachedGrants     = 100_000
	MaxCachedGrantBytes = 512 << 20
)

// grantBytes is the memory a cached membership holds, roughly.
func grantBytes(pg projectGrants) int {
	n := 128 + setBytes(pg.set)
	if pg.set.lasting != nil {
		n += setBytes(*pg.set.lasting)
	}
	return n
}

// setBytes is roughly the memory of a set's rules: 128 bytes a rule, and
// a compiled $glob about 2 KiB and 150 bytes a character (measured).
func setBytes(s Set) int {
	n, chars := globs(s.rules)
	return 128*len(s.rules) + 2048*n + 150*chars
}

// SetCache keeps organization roles and resolved project permission sets in
// memory in generation g; a change to any membership, role or project moves
// the generation, and a set holding a temporary role is kept only until the
// role's window opens or closes.
func (r *Resolver) SetCache(g *cache.Gen) {
	r.orgRoles = cache.NewMap[memberKey, orgMember](g, MaxCachedGrants)
	r.grants = cache.NewMap[memberKey, projectGrants](g, MaxCachedGrants).Sized(MaxCachedGrantBytes, grantBytes)
}

// NewResolver returns a resolver over m; now nil means time.Now.
func NewResolver(m Memberships, now func() time.Time) *Resolver {
	if now == nil {
		now = time.Now
	}
	return &Resolver{m: m, now: now}
}

// OrgRole returns the actor's organization role slug: "admin" when it or
// a group it is in holds the admin role, else its own role.
func (r *Resolver) OrgRole(ctx context.Context, actor Actor) (string, error) {
	m, err := r.orgMember(ctx, actor)
	if err != nil {
		return "", err
	}
	if m.admin() {
		return "admin", nil
	}
	return m.role, nil
}

// orgMember loads the actor's own organization role and its groups' roles;
// a member whose own membership is not in force (not accepted, deactivated)
// holds neither.
func (r *Resolver) orgMember(ctx context.Context, actor Actor) (orgMember, error) {
	if actor.Kind == ActorServiceToken {
		return orgMember{}, errs.Forbiddenf("Service tokens cannot act on the organization").WithCode("PermissionDenied")
	}
	if actor.OrgID == "" {
		return orgMember{}, errs.Unauthorizedf("Select an organization first")
	}
	m, err := cache.Load(ctx, r.orgRoles, memberKey{actor.OrgID, actor.Kind, actor.ID, actor.OrgID}, r.now(), func(ctx context.Context) (orgMember, time.Time, error) {
		role, err := r.m.OrgRole(ctx, actor.OrgID, actor.Kind, actor.ID)
		if err != nil {
			return orgMember{}, time.Time{}, err
		}
		m := orgMember{role: role}
		if gr, ok := r.m.(OrgGroupRoles); ok {
			if m.groups, err = gr.OrgGroupRoles(ctx, actor.OrgID, actor.Kind, actor.ID); err != nil {
				return orgMember{}, time.Time{}, err
			}
		}
		return m, time.Time{}, nil
	})
	if errs.Is(err, errs.NotFound) {
		return orgMember{}, errs.Forbiddenf("You are not a member of this organization")
	}
	return m, err
}

// HeldOrgRoles returns the organization roles a principal of the actor's
// organization holds: own, its own role as stored (whatever the state of
// its membership: a check on a change that may reactivate it must count
// it), then those of the groups it is in. A change to a principal is
// bounded by all of them.
func (r *Resolver) HeldOrgRoles(ctx context.Context, actor Actor, kind ActorKind, id, own string) ([]string, error) {
	roles := []string{}
	if own != "" {
		roles = append(roles, own)
	}
	gr, ok := r.m.(OrgGroupRoles)
	if !ok {
		return roles, nil
	}
	groups, err := gr.OrgGroupRoles(ctx, actor.OrgID, kind, id)
	if err != nil {
		return nil, err
	}
	for _, g := range groups {
		if !slices.Contains(roles, g) {
			roles = append(roles, g)
		}
	}
	return roles, nil
}

// PrincipalProjects is the storage of the projects a principal is a member
// of. A Memberships that does not implement it knows none.
type PrincipalProjects interface {
	// PrincipalProjects returns the ids of the projects the principal is a
	// member of, itself or through a group.
	PrincipalProjects(ctx context.Context, kind ActorKind, id string) ([]string, error)
}

// CoversProjects refuses (403 PermissionBoundaryError) an actor who is not
// an organization admin unless, in every project target is a member of, the
// actor holds for good everything target holds there. Whoever gives a
// principal a credential (a client secret, a token, a login method it
// configures) acts as that principal: an identity manager of the
// organization who is in no project could otherwise mint a login for a
// project admin identity and read the project's secrets.
func (r *Resolver) CoversProjects(ctx context.Context, actor Actor, target Actor) error {
	return r.coversProjects(ctx, actor, target, "give a credential to", func(p string) ([]Set, error) {
		return r.HeldFromNow(ctx, target, p)
	})
}

// CoversReactivation is CoversProjects for bringing back a deactivated
// member whose organization role will be role: a deactivated principal
// holds nothing, and reactivating it gives back every project role it kept,
// so whoever does it must hold what it will hold there (an organization
// member manager who is in no project would otherwise hand a project admin
// role back to a member an admin took it from).
func (r *Resolver) CoversReactivation(ctx context.Context, actor Actor, target Actor, role string) error {
	return r.coversProjects(ctx, actor, target, "reactivate", func(p string) ([]Set, error) {
		return r.heldFromNow(ctx, target, role, p)
	})
}

func (r *Resolver) coversProjects(ctx context.Context, actor Actor, target Actor, what string, heldIn func(p string) ([]Set, error)) error {
	m, err := r.orgMember(ctx, actor)
	if err != nil {
		return err
	}
	if m.admin() {
		return nil
	}
	pp, ok := r.m.(PrincipalProjects)
	if !ok {
		return nil
	}
	projects, err := pp.PrincipalProjects(ctx, target.Kind, target.ID)
	if err != nil {
		return err
	}
	for _, p := range projects {
		held, err := heldIn(p)
		if err != nil {
			return err
		}
		if len(held) == 0 {
			continue // holding nothing there, now or later
		}
		mine, err := r.ProjectPermissions(ctx, actor, p)
		if err != nil && !errs.Is(err, errs.Forbidden) && !errs.Is(err, errs.NotFound) {
			return err
		}
		for _, theirs := range held {
			if err != nil || !mine.CoversUntil(theirs, time.Time{}) {
				// No project id: the caller may not be in the project.
				return errs.Forbiddenf("Failed to %s a principal that holds more in one of its projects than you do", what).WithCode("PermissionBoundaryError")
			}
		}
	}
	return nil
}

// maxWindows bounds the moments HeldFromNow looks at: each temporary grant
// adds two (its start and end), and grants per member are bounded.
const maxWindows = 1000

// HeldFromNow returns what target holds in project p now and at each
// moment from now on that one of its temporary roles or privileges starts
// or ends (an organization admin: the admin set). A credential outlives
// now: a role scheduled to start later is the target's as much as one in
// force, and a login minted before it starts acts with it once it does.
func (r *Resolver) HeldFromNow(ctx context.Context, target Actor, p string) ([]Set, error) {
	role, err := r.OrgRole(ctx, target)
	if err != nil {
		return nil, err
	}
	return r.heldFromNow(ctx, target, role, p)
}

// heldFromNow is HeldFromNow for a target whose organization role is role.
func (r *Resolver) heldFromNow(ctx context.Context, target Actor, role, p string) ([]Set, error) {
	if role == "admin" {
		return []Set{projectAdminSet()}, nil
	}
	var out []Set
	at := r.now()
	for range maxWindows {
		orgID, grants, next, err := r.m.ProjectGrants(ctx, p, target.Kind, target.ID, at)
		if errs.Is(err, errs.NotFound) || err == nil && orgID != target.OrgID {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		if len(grants) > 0 {
			set, err := projectSet("", grants)
			if err != nil {
				return nil, err
			}
			out = append(out, set)
		}
		if next.IsZero() {
			return out, nil
		}
		at = next
	}
	return nil, errs.Forbiddenf("Failed to weigh what a principal holds: its access in one of its projects changes more than %d times", maxWindows).WithCode("PermissionBoundaryError")
}

// OrgPermissions returns what the actor may do in its organization: what
// its own role allows and what the roles of the groups it is in allow.
func (r *Resolver) OrgPermissions(ctx context.Context, actor Actor) (Set, error) {
	m, err := r.orgMember(ctx, actor)
	if err != nil {
		return Set{}, err
	}
	if m.admin() {
		return r.orgRoleSet(ctx, actor.OrgID, "admin")
	}
	var seen []string
	var rules [][]Rule
	for _, role := range append([]string{m.role}, m.groups...) {
		if slices.Contains(seen, role) {
			continue
		}
		seen = append(seen, role)
		rs, err := r.orgRoleSet(ctx, actor.OrgID, role)
		if err != nil {
			return Set{}, err
		}
		rules = append(rules, rs.rules)
	}
	// Denying roles last, as in a project: the deny of a member's own role
	// was lost under a group's role that allows, or not, by their order.
	return JoinRoles(rules), nil
}

// ProjectPermissions returns what the actor may do in a project. A project of
// another organization is reported as not found. Organization admins hold the
// project admin role in every project of their organization.
//
// A service token has its scope's rules in its own project and nothing
// anywhere else: another project is not found.
func (r *Resolver) ProjectPermissions(ctx context.Context, actor Actor, projectID string) (Set, error) {
	if actor.Kind == ActorServiceToken {
		if actor.Service == nil || actor.Service.ProjectID != projectID {
			return Set{}, errs.NotFoundf("Project with ID '%s' not found", projectID)
		}
		return NewSet(actor.Service.Rules), nil
	}
	if actor.Kind == ActorPlatform {
		// The server acting in a project of its actor's organization: the
		// project admin's rules there, nothing in another organization.
		orgID, _, _, err := r.m.ProjectGrants(ctx, projectID, actor.Kind, actor.ID, r.now())
		if errs.Is(err, errs.NotFound) || (err == nil && (orgID != actor.OrgID || orgID == "")) {
			return Set{}, errs.NotFoundf("Project with ID '%s' not found", projectID)
		}
		if err != nil {
			return Set{}, err
		}
		admin, _ := ProjectRoleRules("admin")
		return NewSet(admin), nil
	}
	role, err := r.OrgRole(ctx, actor)
	if err != nil {
		return Set{}, err
	}
	now := r.now()
	// What is cached is the project's grants alone, never the organization
	// role read above: that read is not part of the load's generation, so a
	// set built from it could be stored after the role changed (an admin
	// demoted between the two reads would keep the admin set).
	pg, err := cache.Load(ctx, r.grants, memberKey{projectID, actor.Kind, actor.ID, actor.OrgID}, now, func(ctx context.Context) (projectGrants, time.Time, error) {
		orgID, grants, next, err := r.m.ProjectGrants(ctx, projectID, actor.Kind, actor.ID, now)
		if err != nil {
			return projectGrants{}, next, err
		}
		if len(grants) == 0 {
			return projectGrants{orgID: orgID, notMember: true}, next, nil
		}
		// A grant that does not parse fails the member's checks, not an
		// organization admin's, who holds the admin set whatever it holds.
		set, err := projectSet("", grants)
		return projectGrants{orgID: orgID, set: set, setErr: err}, next, nil
	})
	if errs.Is(err, errs.NotFound) || (err == nil && pg.orgID != actor.OrgID) {
		return Set{}, errs.NotFoundf("Project with ID '%s' not found", projectID)
	}
	if err != nil {
		return Set{}, err
	}
	if role == "admin" {
		return projectAdminSet(), nil
	}
	if pg.setErr != nil {
		return Set{}, pg.setErr
	}
	if pg.notMember {
		return Set{}, errs.Forbiddenf("You are not a member of project %s", projectID).WithCode("PermissionDenied")
	}
	return pg.set, nil
}

// projectAdminSet is what an organization admin holds in every project of
// its organization: the project admin role, for good.
var projectAdminSet = sync.OnceValue(func() Set {
	admin, _ := ProjectRoleRules("admin")
	return NewSet(admin)
})

// projectSet is the permission set of an actor holding grants in a project
// (an organization admin holds projectAdminSet instead).
func projectSet(role string, grants []Grant) (Set, error) {
	if role == "admin" {
		return projectAdminSet(), nil
	}
	set, err := grantsSet(grants)
	if err != nil {
		return Set{}, err
	}
	// The part that lasts: the same grants less the temporary ones, in
	// order (a privilege's denial narrows what comes before it).
	var until time.Time
	lasting := make([]Grant, 0, len(grants))
	for _, g := range grants {
		if g.Until.IsZero() {
			lasting = append(lasting, g)
		} else if until.IsZero() || g.Until.Before(until) {
			until = g.Until
		}
	}
	if until.IsZero() {
		return set, nil
	}
	l, err := grantsSet(lasting)
	if err != nil {
		return Set{}, err
	}
	set.lasting, set.until = &l, until
	return set, nil
}

func grantsSet(grants []Grant) (Set, error) {
	// Roles joined by OrderRoles (the database gives them in no order),
	// then privileges in theirs.
	var roles, privileges [][]Rule
	for _, g := range grants {
		var rules []Rule
		if g.Permissions != nil {
			var err error
			if rules, err = parseRules(g.Permissions); err != nil {
				return Set{}, errs.Internalf(err, "stored custom role %s is invalid", g.Role)
			}
		} else {
			var ok bool
			if rules, ok = ProjectRoleRules(g.Role); !ok {
				return Set{}, errs.Internalf(fmt.Errorf("unknown role %q", g.Role), "resolve project role")
			}
		}
		if g.Role == "privilege" {
			privileges = append(privileges, rules)
		} else {
			roles = append(roles, rules)
		}
	}
	return JoinRoles(roles, privileges...), nil
}

// OrderRoles puts the roles that deny something (hold an inverted rule)
// after those that only allow, keeping each role's own rules in order. The
// last matching rule decides (CASL), so a deny-only role beside member
// (no-prod) used to take effect or not by where the database happened to
// list it; now a role's denial holds against any other role's grant, as a
// privilege's does. Roles that deny are ordered among themselves by their
// rules' text, so that the resolver and the boundary checks, which get
// them from different places and orders, join them alike (and JoinRoles
// keeps each one's denial against the others' grants).
func OrderRoles(lists [][]Rule) {
	// key: "" for a role that only allows (their order does not matter),
	// the rules' text (never empty) for one that denies.
	type role struct {
		rules []Rule
		key   string
	}
	rs := make([]role, len(lists))
	for i, l := range lists {
		rs[i].rules = l
		if slices.ContainsFunc(l, func(r Rule) bool { return r.Inverted }) {
			b, _ := json.Marshal(l)
			rs[i].key = string(b)
		}
	}
	slices.SortStableFunc(rs, func(a, b role) int { return strings.Compare(a.key, b.key) })
	for i := range rs {
		lists[i] = rs[i].rules
	}
}

// GrantsSet is the permission set a member holding grants has in a project
// (built-in roles by slug, custom roles and privileges by their rules),
// whatever its organization role.
func GrantsSet(grants []Grant) (Set, error) { return projectSet("", grants) }
