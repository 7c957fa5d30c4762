package project

import (
	"context"
	"encoding/json"
	"time"

	"github.com/google/uuid"

	"github.com/lockbox-dev/lockbox/internal/audit"
	"github.com/lockbox-dev/lockbox/internal/authz"
	"github.com/lockbox-dev/lockbox/internal/errs"
)

// Privilege is an additional privilege: permission rules one project member
// holds beyond its roles (Infisical's identity- and user-specific
// privileges). It belongs to a project membership, of an identity or a user.
// A temporary privilege holds only between its start and end times; the
// resolver checks them each time it resolves permissions (authz), so it
// stops working at its end with no job to run.
type Privilege struct {
	ID           string
	Slug         string
	MembershipID string
	ProjectID    string
	IdentityID   string // set for an identity's membership
	UserID       string // set for a user's membership
	Permissions  []authz.Rule

	IsTemporary              bool
	TemporaryMode            string // "relative"
	TemporaryRange           string // e.g. "1h"
	TemporaryAccessStartTime *time.Time
	TemporaryAccessEndTime   *time.Time

	CreatedAt time.Time
	UpdatedAt time.Time
}

// MaxPrivileges bounds the additional privileges of one project member:
// every permission check that misses the cache reads them all.
const MaxPrivileges = 100

// PrivilegeStore is the storage additional privileges need.
type PrivilegeStore interface {
	ProjectByID(ctx context.Context, id string) (Project, error)
	IdentityMembership(ctx context.Context, projectID, identityID string) (Membership, error)
	// MembershipOwner returns the project and the user or identity of a
	// project membership, found by its id.
	MembershipOwner(ctx context.Context, membershipID string) (MemberRef, error)
	// CreatePrivilege writes p; errs.Conflict when its membership already
	// has a privilege of that slug, errs.NotFound when the membership is
	// gone, a 400 when it holds MaxPrivileges already.
	CreatePrivilege(ctx context.Context, p Privilege, permissions string, ev audit.Event) error
	// PrivilegeByID finds a privilege in any project, with its ProjectID
	// and member filled in.
	PrivilegeByID(ctx context.Context, id string) (Privilege, error)
	PrivilegeBySlug(ctx context.Context, membershipID, slug string) (Privilege, error)
	Privileges(ctx context.Context, membershipID string) ([]Privilege, error)
	// UpdatePrivilege rewrites p if it is still as read, last updated at
	// prev (ErrStale if another change came first, or it is gone);
	// errs.Conflict on a slug taken by another
	// privilege of the membership.
	UpdatePrivilege(ctx context.Context, p Privilege, permissions string, prev time.Time, ev audit.Event) error
	DeletePrivilege(ctx context.Context, p Privilege, ev audit.Event) error
}

// MemberRef names a project membership and its member: a user or an identity.
type MemberRef struct {
	ID, ProjectID, UserID, IdentityID string
}

// subject is the permission subject that governs the member: member for a
// user, identity (with its identityId condition field) for an identity.
func (m MemberRef) subject() (string, *authz.Fields) {
	if m.UserID != "" {
		return authz.SubMember, nil
	}
	return authz.SubIdentity, &authz.Fields{IdentityID: m.IdentityID}
}

func (m MemberRef) String() string {
	if m.UserID != "" {
		return "user " + m.UserID
	}
	return "identity " + m.IdentityID
}

// kind is the word audit event names use for the member.
func (m MemberRef) kind() string {
	if m.UserID != "" {
		return "user"
	}
	return "identity"
}

// Privileges manages additional privileges of identities and users in projects.
type Privileges struct {
	store PrivilegeStore
	authz Authorizer
	now   func() time.Time
}

// NewPrivileges returns the additional-privilege service; now nil means time.Now.
func NewPrivileges(st PrivilegeStore, az Authorizer, now func() time.Time) *Privileges {
	if now == nil {
		now = time.Now
	}
	return &Privileges{store: st, authz: az, now: now}
}

// TemporaryAccess is the time window requested for a privilege.
type TemporaryAccess struct {
	IsTemporary bool
	Mode        string    // "relative" (the only mode); "" means relative
	Range       string    // e.g. "1h"
	Start       time.Time // zero: now (create) or unchanged (update)
}

// NewPrivilege is a create request: for an identity (ProjectID and
// IdentityID) or, with MembershipID, for the user of that project membership.
type NewPrivilege struct {
	ProjectID    string
	IdentityID   string
	MembershipID string
	Slug         string // empty: a random one
	Permissions  json.RawMessage
	Temporary    TemporaryAccess
}

// PrivilegeChange is an update; nil fields stay as they are.
type PrivilegeChange struct {
	Slug        *string
	Permissions json.RawMessage
	Temporary   *TemporaryAccess
}

func privilegeNotFound(id string) error {
	return errs.NotFoundf("Identity privilege with ID '%s' not found", truncate(id, 64))
}

func userPrivilegeNotFound(id string) error {
	return errs.NotFoundf("User additional privilege with ID '%s' not found", truncate(id, 64))
}

func userMemberNotFound(id string) error {
	return errs.NotFoundf("Project membership with ID '%s' not found", truncate(id, 64))
}

// userMember checks action on members of the project of the user membership
// membershipID and returns the project, the actor's permissions and the
// membership. To a non-member of the project the membership does not exist.
func (ps *Privileges) userMember(ctx context.Context, actor authz.Actor, membershipID, action string) (Project, authz.Set, MemberRef, error) {
	if _, err := uuid.Parse(membershipID); err != nil {
		return Project{}, authz.Set{}, MemberRef{}, userMemberNotFound(membershipID)
	}
	ref, err := ps.store.MembershipOwner(ctx, membershipID)
	if errs.Is(err, errs.NotFound) || (err == nil && ref.UserID == "") {
		return Project{}, authz.Set{}, MemberRef{}, userMemberNotFound(membershipID)
	}
	if err != nil {
		return Project{}, authz.Set{}, MemberRef{}, err
	}
	perms, err := ps.authz.ProjectPermissions(ctx, actor, ref.ProjectID)
	if errs.Is(err, errs.NotFound) || errs.Is(err, errs.Forbidden) {
		return Project{}, authz.Set{}, MemberRef{}, userMemberNotFound(membershipID)
	}
	if err != nil {
		return Project{}, authz.Set{}, MemberRef{}, err
	}
	if err := perms.Check(action, authz.SubMember, nil); err != nil {
		return Project{}, authz.Set{}, MemberRef{}, err
	}
	p, err := ps.store.ProjectByID(ctx, ref.ProjectID)
	if errs.Is(err, errs.NotFound) {
		return Project{}, authz.Set{}, MemberRef{}, userMemberNotFound(membershipID)
	}
	return p, perms, ref, err
}

// member checks action on the identity in the project and returns the
// project, the actor's permissions and the identity's membership.
func (ps *Privileges) member(ctx context.Context, actor authz.Actor, projectID, identityID, action string) (Project, authz.Set, Membership, error) {
	if _, err := uuid.Parse(projectID); err != nil {
		return Project{}, authz.Set{}, Membership{}, projectNotFound(truncate(projectID, 64))
	}
	perms, err := ps.authz.ProjectPermissions(ctx, actor, projectID)
	if err != nil {
		return Project{}, authz.Set{}, Membership{}, err
	}
	if err := perms.Check(action, authz.SubIdentity, &authz.Fields{IdentityID: identityID}); err != nil {
		return Project{}, authz.Set{}, Membership{}, err
	}
	p, err := ps.store.ProjectByID(ctx, projectID)
	if errs.Is(err, errs.NotFound) {
		return Project{}, authz.Set{}, Membership{}, projectNotFound(projectID)
	}
	if err != nil {
		return Project{}, authz.Set{}, Membership{}, err
	}
	notMember := errs.NotFoundf("Failed to find identity with ID %s in project %s", truncate(identityID, 64), projectID)
	if _, err := uuid.Parse(identityID); err != nil {
		return Project{}, authz.Set{}, Membership{}, notMember
	}
	ms, err := ps.store.IdentityMembership(ctx, projectID, identityID)
	if errs.Is(err, errs.NotFound) {
		return Project{}, authz.Set{}, Membership{}, notMember
	}
	return p, perms, ms, err
}

// lifted splits the rules of a privilege being taken away: its denials,
// made grants (taking one away gives the member back what it denied, for
// as long as the privilege would have lasted), and its grants (taken away:
// the actor must hold them now, as for any removal).
func lifted(rules []authz.Rule) (given, taken []authz.Rule) {
	for _, r := range rules {
		if r.Inverted {
			r.Inverted = false
			given = append(given, r)
		} else {
			taken = append(taken, r)
		}
	}
	return given, taken
}

// checkGrant is the privilege boundary: changing a member's privileges
// needs grant-privileges on it (on identities for an identity, on members
// for a user), and the actor must hold every rule it hands out or takes
// away (Covers, conditions included), for as long as the change lasts:
// until the end of a temporary privilege, else for good (CoversUntil: a
// temporary role is no ground for a permanent privilege). Callers pass a
// removed privilege's rules through lifted, with that privilege's end; what
// is taken (the third list) needs only to be held now.
func checkGrant(perms authz.Set, m MemberRef, until time.Time, rules []authz.Rule, taken ...authz.Rule) error {
	sub, f := m.subject()
	if !perms.Can(authz.ActGrantPrivileges, sub, f) {
		what := "identities"
		if sub == authz.SubMember {
			what = "members"
		}
		return boundaryError("change the privileges of %s: it needs the grant-privileges permission on %s", m, what)
	}
	given := authz.NewSet(rules)
	if !perms.Covers(authz.NewSet(taken)) || !perms.Covers(given) {
		return boundaryError("change the privileges of %s: the privilege holds permissions you do not have", m)
	}
	if !perms.CoversUntil(given, until) {
		return boundaryError("change the privileges of %s: the privilege would outlast the temporary access you hold it by", m)
	}
	return nil
}

// checkTarget is the other half of the boundary, as in Infisical: the
// actor must hold everything member m holds in the project (its roles,
// groups and privileges, as the permission check resolves them; an
// organization admin holds the project's admin set). Otherwise a member
// who may grant privileges could give a project admin a privilege of deny
// rules alone, which takes nothing the actor needs to hold, and lock the
// admin out of the project and out of undoing it.
func (ps *Privileges) checkTarget(ctx context.Context, actor authz.Actor, perms authz.Set, projectID string, m MemberRef) error {
	target := authz.Actor{Kind: authz.ActorIdentity, ID: m.IdentityID, OrgID: actor.OrgID}
	if m.UserID != "" {
		target = authz.Actor{Kind: authz.ActorUser, ID: m.UserID, OrgID: actor.OrgID}
	}
	// What it holds from now on, roles scheduled to start included: a deny
	// privilege given before an admin's on-call window opens takes from
	// that admin as much as one given during it.
	sets, err := ps.authz.HeldFromNow(ctx, target, projectID)
	if err != nil {
		return err
	}
	for _, held := range sets {
		if !perms.Covers(held) {
			return boundaryError("change the privileges of %s: it holds permissions you do not have", m)
		}
	}
	return nil
}

// until is when pv stops working: its end if temporary, else zero.
func (pv Privilege) until() time.Time {
	if pv.IsTemporary && pv.TemporaryAccessEndTime != nil {
		return *pv.TemporaryAccessEndTime
	}
	return time.Time{}
}

func (pv Privilege) member() MemberRef {
	return MemberRef{ID: pv.MembershipID, ProjectID: pv.ProjectID, UserID: pv.UserID, IdentityID: pv.IdentityID}
}

// window validates t and returns the privilege's temporary fields, given
// the previous ones (for an update) to fill what t leaves out.
func (ps *Privileges) window(t TemporaryAccess, prev *Privilege) (mode, rng string, start, end *time.Time, err error) {
	if !t.IsTemporary {
		return "", "", nil, nil, nil
	}
	if t.Mode != "" && t.Mode != "relative" {
		return "", "", nil, nil, invalidField("temporaryMode", "temporaryMode must be relative")
	}
	rng = t.Range
	if rng == "" && prev != nil && prev.IsTemporary {
		rng = prev.TemporaryRange
	}
	d, ok := ParseRange(rng)
	if !ok {
		return "", "", nil, nil, invalidField("temporaryRange", "temporaryRange must be a duration such as 30m, 1h or 1d")
	}
	s := t.Start.UTC().Truncate(time.Microsecond)
	if t.Start.IsZero() {
		s = ps.now().UTC().Truncate(time.Microsecond)
		if prev != nil && prev.TemporaryAccessStartTime != nil {
			s = *prev.TemporaryAccessStartTime
		}
	}
	e := s.Add(d)
	return "relative", rng, &s, &e, nil
}

// auditMeta is what an audit event of a change to pv records: who holds
// it, which it is, and its window.
func (pv Privilege) auditMeta() map[string]any {
	m := map[string]any{"privilegeId": pv.ID, "slug": pv.Slug, "isTemporary": pv.IsTemporary, "projectMembershipId": pv.MembershipID}
	if pv.UserID != "" {
		m["userId"] = pv.UserID
	} else {
		m["identityId"] = pv.IdentityID
	}
	if pv.TemporaryAccessEndTime != nil {
		m["temporaryAccessEndTime"] = pv.TemporaryAccessEndTime.UTC().Format(time.RFC3339)
	}
	return m
}

func encodeRules(rules []authz.Rule) (string, error) {
	if rules == nil {
		rules = []authz.Rule{}
	}
	b, err := json.Marshal(rules)
	if err != nil {
		return "", errs.Internalf(err, "encode rules")
	}
	return string(b), nil
}

// Create gives an identity member of a project, or the user of a project
// membership (req.MembershipID), an additional privilege.
func (ps *Privileges) Create(ctx context.Context, actor authz.Actor, req NewPrivilege) (Privilege, error) {
	var p Project
	var perms authz.Set
	var ms MemberRef
	if req.MembershipID != "" {
		var err error
		if p, perms, ms, err = ps.userMember(ctx, actor, req.MembershipID, authz.ActEdit); err != nil {
			return Privilege{}, err
		}
	} else {
		var m Membership
		var err error
		if p, perms, m, err = ps.member(ctx, actor, req.ProjectID, req.IdentityID, authz.ActEdit); err != nil {
			return Privilege{}, err
		}
		ms = MemberRef{ID: m.ID, ProjectID: p.ID, IdentityID: m.IdentityID}
	}
	slug := req.Slug
	if slug == "" {
		slug = RandomSuffix(12)
	} else if !ValidSlug(slug, 1, 60) {
		return Privilege{}, invalidField("slug", "slug must be 1 to 60 lowercase letters, digits and hyphens")
	}
	if len(req.Permissions) == 0 {
		return Privilege{}, invalidField("permissions", "Required")
	}
	rules, err := authz.ParseRules(req.Permissions)
	if err != nil {
		return Privilege{}, err
	}
	mode, rng, start, end, err := ps.window(req.Temporary, nil)
	if err != nil {
		return Privilege{}, err
	}
	var until time.Time
	if end != nil {
		until = *end
	}
	if err := checkGrant(perms, ms, until, rules); err != nil {
		return Privilege{}, err
	}
	if err := ps.checkTarget(ctx, actor, perms, p.ID, ms); err != nil {
		return Privilege{}, err
	}
	now := ps.now().UTC().Truncate(time.Microsecond)
	pv := Privilege{ID: newID(), Slug: slug, MembershipID: ms.ID, ProjectID: p.ID, IdentityID: ms.IdentityID, UserID: ms.UserID, Permissions: rules,
		IsTemporary: req.Temporary.IsTemporary, TemporaryMode: mode, TemporaryRange: rng, TemporaryAccessStartTime: start,
		TemporaryAccessEndTime: end, CreatedAt: now, UpdatedAt: now}
	enc, err := encodeRules(rules)
	if err != nil {
		return Privilege{}, err
	}
	ev := audit.New(actor, "create-"+ms.kind()+"-specific-privilege", pv.auditMeta()).InProject(p.ID, p.Name)
	if err := ps.store.CreatePrivilege(ctx, pv, enc, ev); err != nil {
		if errs.Is(err, errs.Conflict) {
			return Privilege{}, errs.BadRequest("Additional privilege with provided slug already exists")
		}
		if errs.Is(err, errs.NotFound) && ms.UserID != "" {
			return Privilege{}, userMemberNotFound(ms.ID)
		}
		if errs.Is(err, errs.NotFound) {
			return Privilege{}, errs.NotFoundf("Failed to find identity with ID %s in project %s", ms.IdentityID, p.ID)
		}
		return Privilege{}, err
	}
	return pv, nil
}

// byID loads a privilege of an identity (user false) or of a user (user
// true) and checks action on that member in its project. To a non-member
// of the project the privilege does not exist.
func (ps *Privileges) byID(ctx context.Context, actor authz.Actor, id, action string, user bool) (Project, authz.Set, Privilege, error) {
	notFound := privilegeNotFound
	if user {
		notFound = userPrivilegeNotFound
	}
	if _, err := uuid.Parse(id); err != nil {
		return Project{}, authz.Set{}, Privilege{}, notFound(id)
	}
	pv, err := ps.store.PrivilegeByID(ctx, id)
	if errs.Is(err, errs.NotFound) || (err == nil && (pv.UserID != "") != user) {
		return Project{}, authz.Set{}, Privilege{}, notFound(id)
	}
	if err != nil {
		return Project{}, authz.Set{}, Privilege{}, err
	}
	if user {
		p, perms, _, err := ps.userMember(ctx, actor, pv.MembershipID, action)
		if errs.Is(err, errs.NotFound) {
			return Project{}, authz.Set{}, Privilege{}, notFound(id)
		}
		return p, perms, pv, err
	}
	if _, err := ps.authz.ProjectPermissions(ctx, actor, pv.ProjectID); errs.Is(err, errs.NotFound) || errs.Is(err, errs.Forbidden) {
		return Project{}, authz.Set{}, Privilege{}, notFound(id)
	} else if err != nil {
		return Project{}, authz.Set{}, Privilege{}, err
	}
	p, perms, _, err := ps.member(ctx, actor, pv.ProjectID, pv.IdentityID, action)
	if errs.Is(err, errs.NotFound) {
		return Project{}, authz.Set{}, Privilege{}, notFound(id)
	}
	return p, perms, pv, err
}

// Get returns an identity's privilege by id.
func (ps *Privileges) Get(ctx context.Context, actor authz.Actor, id string) (Privilege, error) {
	_, _, pv, err := ps.byID(ctx, actor, id, authz.ActRead, false)
	return pv, err
}

// GetUser returns a user's privilege by id.
func (ps *Privileges) GetUser(ctx context.Context, actor authz.Actor, id string) (Privilege, error) {
	_, _, pv, err := ps.byID(ctx, actor, id, authz.ActRead, true)
	return pv, err
}

// ListUser returns the privileges of the user of a project membership.
func (ps *Privileges) ListUser(ctx context.Context, actor authz.Actor, membershipID string) ([]Privilege, error) {
	_, _, ms, err := ps.userMember(ctx, actor, membershipID, authz.ActRead)
	if err != nil {
		return nil, err
	}
	return ps.store.Privileges(ctx, ms.ID)
}

// GetBySlug returns an identity's privilege in a project by slug.
func (ps *Privileges) GetBySlug(ctx context.Context, actor authz.Actor, projectID, identityID, slug string) (Privilege, error) {
	_, _, ms, err := ps.member(ctx, actor, projectID, identityID, authz.ActRead)
	if err != nil {
		return Privilege{}, err
	}
	pv, err := ps.store.PrivilegeBySlug(ctx, ms.ID, slug)
	if errs.Is(err, errs.NotFound) {
		return Privilege{}, errs.NotFoundf("Identity additional privilege with slug '%s' not found", truncate(slug, 64))
	}
	return pv, err
}

// List returns an identity's privileges in a project.
func (ps *Privileges) List(ctx context.Context, actor authz.Actor, projectID, identityID string) ([]Privilege, error) {
	_, _, ms, err := ps.member(ctx, actor, projectID, identityID, authz.ActRead)
	if err != nil {
		return nil, err
	}
	return ps.store.Privileges(ctx, ms.ID)
}

// Update changes an identity's privilege: its slug, rules or time window.
func (ps *Privileges) Update(ctx context.Context, actor authz.Actor, id string, c PrivilegeChange) (Privilege, error) {
	return ps.update(ctx, actor, id, c, false)
}

// UpdateUser changes a user's privilege: its slug, rules or time window.
func (ps *Privileges) UpdateUser(ctx context.Context, actor authz.Actor, id string, c PrivilegeChange) (Privilege, error) {
	return ps.update(ctx, actor, id, c, true)
}

// update writes only the privilege as it read it, and otherwise reads and
// applies the change again (RetryStale), so that concurrent changes of different
// fields all stay: a new slug from an old read must not bring back a
// window another change shortened.
func (ps *Privileges) update(ctx context.Context, actor authz.Actor, id string, c PrivilegeChange, user bool) (Privilege, error) {
	return RetryStale(ctx, "privilege", func() (Privilege, error) { return ps.updateOnce(ctx, actor, id, c, user) })
}

// updateOnce is one try of update.
func (ps *Privileges) updateOnce(ctx context.Context, actor authz.Actor, id string, c PrivilegeChange, user bool) (Privilege, error) {
	p, perms, pv, err := ps.byID(ctx, actor, id, authz.ActEdit, user)
	if err != nil {
		return Privilege{}, err
	}
	readAt := pv.UpdatedAt
	if c.Slug != nil && *c.Slug != "" && *c.Slug != pv.Slug {
		if !ValidSlug(*c.Slug, 1, 60) {
			return Privilege{}, invalidField("slug", "slug must be 1 to 60 lowercase letters, digits and hyphens")
		}
		pv.Slug = *c.Slug
	}
	old := pv
	if len(c.Permissions) > 0 && string(c.Permissions) != "null" {
		rules, err := authz.ParseRules(c.Permissions)
		if err != nil {
			return Privilege{}, err
		}
		pv.Permissions = rules
	}
	if c.Temporary != nil {
		prev := pv
		mode, rng, start, end, err := ps.window(*c.Temporary, &prev)
		if err != nil {
			return Privilege{}, err
		}
		pv.IsTemporary, pv.TemporaryMode, pv.TemporaryRange = c.Temporary.IsTemporary, mode, rng
		pv.TemporaryAccessStartTime, pv.TemporaryAccessEndTime = start, end
	}
	// What the privilege took away it gives back, what it gives it gives
	// for its new window (lengthening one is giving it for longer).
	given, taken := lifted(old.Permissions)
	if err := checkGrant(perms, pv.member(), old.until(), given, taken...); err != nil {
		return Privilege{}, err
	}
	if err := checkGrant(perms, pv.member(), pv.until(), pv.Permissions); err != nil {
		return Privilege{}, err
	}
	if err := ps.checkTarget(ctx, actor, perms, p.ID, pv.member()); err != nil {
		return Privilege{}, err
	}
	pv.UpdatedAt = NextStamp(ps.now(), readAt)
	enc, err := encodeRules(pv.Permissions)
	if err != nil {
		return Privilege{}, err
	}
	ev := audit.New(actor, "update-"+pv.member().kind()+"-specific-privilege", pv.auditMeta()).InProject(p.ID, p.Name)
	if err := ps.store.UpdatePrivilege(ctx, pv, enc, readAt, ev); err != nil {
		if errs.Is(err, errs.Conflict) {
			return Privilege{}, errs.BadRequest("Additional privilege with provided slug already exists")
		}
		return Privilege{}, err
	}
	return pv, nil
}

// Delete removes an identity's privilege.
func (ps *Privileges) Delete(ctx context.Context, actor authz.Actor, id string) (Privilege, error) {
	return ps.delete(ctx, actor, id, false)
}

// DeleteUser removes a user's privilege.
func (ps *Privileges) DeleteUser(ctx context.Context, actor authz.Actor, id string) (Privilege, error) {
	return ps.delete(ctx, actor, id, true)
}

func (ps *Privileges) delete(ctx context.Context, actor authz.Actor, id string, user bool) (Privilege, error) {
	p, perms, pv, err := ps.byID(ctx, actor, id, authz.ActEdit, user)
	if err != nil {
		return Privilege{}, err
	}
	given, taken := lifted(pv.Permissions)
	if err := checkGrant(perms, pv.member(), pv.until(), given, taken...); err != nil {
		return Privilege{}, err
	}
	if err := ps.checkTarget(ctx, actor, perms, p.ID, pv.member()); err != nil {
		return Privilege{}, err
	}
	ev := audit.New(actor, "delete-"+pv.member().kind()+"-specific-privilege", pv.auditMeta()).InProject(p.ID, p.Name)
	return pv, ps.store.DeletePrivilege(ctx, pv, ev)
}
