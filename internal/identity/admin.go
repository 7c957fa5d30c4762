package identity

import (
	"context"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/lockbox-dev/lockbox/internal/audit"
	"github.com/lockbox-dev/lockbox/internal/authz"
	"github.com/lockbox-dev/lockbox/internal/errs"
	"github.com/lockbox-dev/lockbox/internal/project"
)

// Authorizer resolves what an actor may do.
type Authorizer interface {
	OrgPermissions(ctx context.Context, actor authz.Actor) (authz.Set, error)
	OrgRole(ctx context.Context, actor authz.Actor) (string, error)
	// OrgRoleSet is the permission set of one of the actor's
	// organization's roles, built-in or custom.
	OrgRoleSet(ctx context.Context, actor authz.Actor, role string) (authz.Set, error)
	// HeldOrgRoles is what a principal of the actor's organization holds:
	// its own role own and its groups' roles.
	HeldOrgRoles(ctx context.Context, actor authz.Actor, kind authz.ActorKind, id, own string) ([]string, error)
	// CoversProjects refuses an actor who is not an organization admin
	// unless it holds, in every project target is a member of, what
	// target holds there.
	CoversProjects(ctx context.Context, actor authz.Actor, target authz.Actor) error
}

// OrgIdentity is an identity seen through its organization membership.
type OrgIdentity struct {
	Identity
	MembershipID string
	// Role is admin, member, no-access or custom; a custom role is named
	// by CustomRoleID, CustomRoleSlug and CustomRoleName.
	Role                string
	CustomRoleID        string
	CustomRoleSlug      string
	CustomRoleName      string
	LastLoginAuthMethod string
	LastLoginTime       *time.Time
	MembershipCreatedAt time.Time
	MembershipUpdatedAt time.Time
}

// RoleSlug is the slug of the identity's organization role, custom or built-in.
func (oi OrgIdentity) RoleSlug() string {
	if oi.Role == "custom" && oi.CustomRoleSlug != "" {
		return oi.CustomRoleSlug
	}
	return oi.Role
}

// OrgRoleRef is an organization role as a membership holds it: a built-in
// slug, or "custom" with the custom role's id.
type OrgRoleRef struct {
	Role         string
	CustomRoleID string
}

// AdminStore is the storage identity administration needs.
type AdminStore interface {
	// CustomOrgRoleID returns the id of the organization's custom role
	// slug; errs.NotFound if there is none.
	CustomOrgRoleID(ctx context.Context, orgID, slug string) (string, error)
	CreateIdentity(ctx context.Context, i Identity, role OrgRoleRef, ev audit.Event) error
	OrgIdentity(ctx context.Context, orgID, id string) (OrgIdentity, error)
	OrgIdentities(ctx context.Context, orgID string, offset, limit int) ([]OrgIdentity, int, error)
	// UpdateIdentity writes name, delete protection, role and, when metadata
	// is not nil, replaces the metadata, if the identity is still as read,
	// last updated at prev; project.ErrStale if another change came first, or it is
	// gone.
	UpdateIdentity(ctx context.Context, i Identity, role OrgRoleRef, metadata []Metadata, prev time.Time, ev audit.Event) error
	DeleteIdentity(ctx context.Context, id string, prev time.Time, ev audit.Event) error

	TokenAuth(ctx context.Context, identityID string) (TokenAuth, error)
	CreateTokenAuth(ctx context.Context, ta TokenAuth, ev audit.Event) error
	// UpdateTokenAuth writes ta if it is still as read, last updated at
	// prev; project.ErrStale if another change came first.
	UpdateTokenAuth(ctx context.Context, ta TokenAuth, prev time.Time, ev audit.Event) error
	// DeleteTokenAuth removes the configuration and revokes its tokens.
	DeleteTokenAuth(ctx context.Context, identityID string, ev audit.Event) error
	CreateTokenAuthToken(ctx context.Context, taID string, t AccessToken, ev audit.Event) error
	AccessTokens(ctx context.Context, identityID, authMethod string, offset, limit int) ([]AccessToken, error)
	AccessTokenByID(ctx context.Context, id string) (AccessToken, IdentityRef, error)
	RenameAccessToken(ctx context.Context, id, name string, ev audit.Event) error
	// RevokeAccessTokenWithEvent revokes a live token; false if it was not live.
	RevokeAccessTokenWithEvent(ctx context.Context, id string, ev audit.Event) (bool, error)
}

// Admin manages machine identities, their organization roles and Token Auth.
type Admin struct {
	store AdminStore
	authz Authorizer
	svc   *Service
	now   func() time.Time
}

// NewAdmin returns the identity administration service; svc signs tokens.
func NewAdmin(st AdminStore, az Authorizer, svc *Service) *Admin {
	return &Admin{store: st, authz: az, svc: svc, now: svc.now}
}

func boundaryError() error {
	return errs.Forbiddenf("Failed to grant a role with more privileges than your own").WithCode("PermissionBoundaryError")
}

func clip(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// resolveRole finds an organization role by slug, built-in or one of the
// organization's custom roles.
func (a *Admin) resolveRole(ctx context.Context, actor authz.Actor, slug string) (OrgRoleRef, error) {
	if authz.IsBuiltinOrgRole(slug) {
		return OrgRoleRef{Role: slug}, nil
	}
	id, err := a.store.CustomOrgRoleID(ctx, actor.OrgID, slug)
	if errs.Is(err, errs.NotFound) || (err == nil && authz.IsReservedOrgRole(slug)) {
		return OrgRoleRef{}, errs.BadRequest("Role '%s' does not exist in this organization", clip(slug, 64))
	}
	if err != nil {
		return OrgRoleRef{}, err
	}
	return OrgRoleRef{Role: "custom", CustomRoleID: id}, nil
}

// checkGrant enforces the privilege boundary, as for users' organization
// roles: organization admins may give any role; others never admin, and
// any other role (built-in or custom) only if they hold all it allows.
func (a *Admin) checkGrant(ctx context.Context, actor authz.Actor, role string) error {
	return withinRole(ctx, a.authz, actor, role, boundaryError())
}

// checkLift refuses to take role away from an identity unless the actor
// holds, for good, what it denies: any set covers a role that only denies
// (withinRole), yet replacing it gives back what it denied (through the
// identity's groups' roles), and an identity could lift its own.
func (a *Admin) checkLift(ctx context.Context, actor authz.Actor, role string) error {
	mine, err := a.authz.OrgRole(ctx, actor)
	if err != nil {
		return err
	}
	if mine == "admin" {
		return nil
	}
	target, err := a.authz.OrgRoleSet(ctx, actor, role)
	if err != nil {
		return err
	}
	if !target.Denies() {
		return nil
	}
	perms, err := a.authz.OrgPermissions(ctx, actor)
	if err != nil {
		return err
	}
	if !perms.CoversLift(target, time.Time{}) {
		return errs.Forbiddenf("change role '%s': it denies what you may not do yourself, and this takes it away", role).WithCode("PermissionBoundaryError")
	}
	return nil
}

// withinRole is the boundary itself: nil for an organization admin, refuse
// for role admin, else refuse unless the actor holds everything role allows.
func withinRole(ctx context.Context, az Authorizer, actor authz.Actor, role string, refuse error) error {
	mine, err := az.OrgRole(ctx, actor)
	if err != nil {
		return err
	}
	if mine == "admin" {
		return nil
	}
	if role == "admin" {
		return refuse
	}
	perms, err := az.OrgPermissions(ctx, actor)
	if err != nil {
		return err
	}
	target, err := az.OrgRoleSet(ctx, actor, role)
	if err != nil {
		return err
	}
	if !perms.Covers(target) {
		return refuse
	}
	return nil
}

func (a *Admin) check(ctx context.Context, actor authz.Actor, action, identityID string) error {
	return checkIdentity(ctx, a.authz, actor, action, identityID)
}

// checkIdentity checks action on identities (on identityID when given).
//
// A token operation needs, besides the action on the identity it goes
// through (create, read, edit, delete), its own action, as in Infisical's
// privilege system: create-token to mint a token or a client secret,
// get-token to list or read them, delete-token to revoke one, revoke-auth
// to remove a login method. A role that may edit identities does not mint
// their tokens unless it says so, and a denial of create-token holds.
func checkIdentity(ctx context.Context, az Authorizer, actor authz.Actor, action, identityID string) error {
	perms, err := az.OrgPermissions(ctx, actor)
	if err != nil {
		return err
	}
	var f *authz.Fields
	if identityID != "" {
		f = &authz.Fields{IdentityID: identityID}
	}
	return perms.Check(action, authz.SubIdentity, f)
}

// checkMint is the check before an identity is given a credential (a client
// secret, a token, a login method's keys or hosts): besides create-token,
// the actor must hold in each of the identity's projects what the identity
// holds there, or the credential would let it act beyond its own rights.
func checkMint(ctx context.Context, az Authorizer, actor authz.Actor, identityID string) error {
	if err := checkIdentity(ctx, az, actor, authz.ActCreateToken, identityID); err != nil {
		return err
	}
	return az.CoversProjects(ctx, actor, authz.Actor{Kind: authz.ActorIdentity, ID: identityID, OrgID: actor.OrgID})
}

func identityNotFound(id string) error {
	return errs.NotFoundf("Failed to find identity with ID %s", id)
}

// get loads an identity of the actor's organization after checking action.
func (a *Admin) get(ctx context.Context, actor authz.Actor, id, action string) (OrgIdentity, error) {
	if err := a.check(ctx, actor, action, id); err != nil {
		return OrgIdentity{}, err
	}
	if _, err := uuid.Parse(id); err != nil {
		return OrgIdentity{}, identityNotFound(id)
	}
	oi, err := a.store.OrgIdentity(ctx, actor.OrgID, id)
	if errs.Is(err, errs.NotFound) {
		return OrgIdentity{}, identityNotFound(id)
	}
	if err != nil {
		return OrgIdentity{}, err
	}
	if action != authz.ActRead {
		if err := guardAdminTarget(ctx, a.authz, actor, oi.ID, oi.RoleSlug()); err != nil {
			return OrgIdentity{}, err
		}
	}
	return oi, nil
}

// guardAdminTarget refuses an actor who is not an organization admin any
// change to identity id whose organization roles — its own role own and
// those of the groups it is in — allow more than the actor holds (admin,
// or a custom role beyond theirs); its login methods, client secrets and
// tokens included: whoever could attach their own key or mint a token for
// it would act with more rights than their own.
func guardAdminTarget(ctx context.Context, az Authorizer, actor authz.Actor, id, own string) error {
	roles, err := az.HeldOrgRoles(ctx, actor, authz.ActorIdentity, id, own)
	if err != nil {
		return err
	}
	for _, role := range roles {
		if err := withinRole(ctx, az, actor, role,
			errs.Forbiddenf("Failed to change an identity with a more privileged role than your own").WithCode("PermissionBoundaryError")); err != nil {
			return err
		}
	}
	return nil
}

// WithinBounds reports whether identity i holds nothing the actor does not
// (guardAdminTarget: for pages, which offer changes to i only then). It
// decides nothing: each change is checked again.
func (a *Admin) WithinBounds(ctx context.Context, actor authz.Actor, i OrgIdentity) (bool, error) {
	err := guardAdminTarget(ctx, a.authz, actor, i.ID, i.RoleSlug())
	if errs.Is(err, errs.Forbidden) {
		return false, nil
	}
	return err == nil, err
}

// NewIdentity is a create request.
type NewIdentity struct {
	OrgID               string
	Name                string
	Role                string
	HasDeleteProtection bool
	Metadata            []Metadata
}

// MaxMetadata bounds an identity's metadata entries: every listing of
// identities (up to 20,000 a page) returns them all.
const MaxMetadata = 100

func checkMetadata(md []Metadata) ([]Metadata, error) {
	if len(md) > MaxMetadata {
		return nil, errs.Invalidf("an identity holds at most %d metadata entries", MaxMetadata)
	}
	out := make([]Metadata, 0, len(md))
	for _, m := range md {
		k := strings.TrimSpace(m.Key)
		if k == "" || len(k) > 255 || len(m.Value) > 1020 {
			return nil, errs.Invalidf("metadata keys must be 1 to 255 characters and values at most 1020")
		}
		out = append(out, Metadata{ID: NewID(), Key: k, Value: m.Value})
	}
	return out, nil
}

func checkName(name string) (string, error) {
	name = strings.TrimSpace(name)
	if name == "" || len(name) > 64 {
		e := errs.Invalidf("name must be 1 to 64 characters")
		e.Details = []string{"name"}
		return "", e
	}
	return name, nil
}

// Create makes an identity in the actor's organization with an org role.
func (a *Admin) Create(ctx context.Context, actor authz.Actor, req NewIdentity) (OrgIdentity, error) {
	if err := a.check(ctx, actor, authz.ActCreate, ""); err != nil {
		return OrgIdentity{}, err
	}
	if req.OrgID != "" && req.OrgID != actor.OrgID {
		return OrgIdentity{}, errs.Forbiddenf("You can only create identities in your own organization")
	}
	name, err := checkName(req.Name)
	if err != nil {
		return OrgIdentity{}, err
	}
	if req.Role == "" {
		req.Role = "no-access"
	}
	ref, err := a.resolveRole(ctx, actor, req.Role)
	if err != nil {
		return OrgIdentity{}, err
	}
	if err := a.checkGrant(ctx, actor, req.Role); err != nil {
		return OrgIdentity{}, err
	}
	md, err := checkMetadata(req.Metadata)
	if err != nil {
		return OrgIdentity{}, err
	}
	now := a.now().UTC().Truncate(time.Microsecond)
	i := Identity{ID: NewID(), OrgID: actor.OrgID, Name: name, HasDeleteProtection: req.HasDeleteProtection, Metadata: md,
		AuthMethods: []string{}, CreatedAt: now, UpdatedAt: now}
	ev := audit.New(actor, "create-identity", map[string]any{"identityId": i.ID, "name": i.Name, "hasDeleteProtection": i.HasDeleteProtection,
		"role": req.Role})
	if err := a.store.CreateIdentity(ctx, i, ref, ev); err != nil {
		return OrgIdentity{}, err
	}
	return a.store.OrgIdentity(ctx, actor.OrgID, i.ID)
}

// Get returns an identity of the actor's organization.
func (a *Admin) Get(ctx context.Context, actor authz.Actor, id string) (OrgIdentity, error) {
	return a.get(ctx, actor, id, authz.ActRead)
}

// List returns the identities of an organization, which must be the actor's.
//
// A role whose read of identities is conditioned on identityId lists only
// the identities it may read, as the project's identity memberships do.
func (a *Admin) List(ctx context.Context, actor authz.Actor, orgID string, offset, limit int) ([]OrgIdentity, int, error) {
	perms, err := a.authz.OrgPermissions(ctx, actor)
	if err != nil {
		return nil, 0, err
	}
	if err := perms.Check(authz.ActRead, authz.SubIdentity, nil); err != nil {
		return nil, 0, err
	}
	if orgID != "" && orgID != actor.OrgID {
		return nil, 0, errs.Forbiddenf("You can only list identities of your own organization")
	}
	if !perms.UsesCondition(authz.SubIdentity, "identityId") {
		return a.store.OrgIdentities(ctx, actor.OrgID, offset, limit)
	}
	all, _, err := a.store.OrgIdentities(ctx, actor.OrgID, 0, 1<<30)
	if err != nil {
		return nil, 0, err
	}
	page, total := project.PageOf(all, func(oi OrgIdentity) bool {
		return perms.Can(authz.ActRead, authz.SubIdentity, &authz.Fields{IdentityID: oi.ID})
	}, offset, limit)
	return page, total, nil
}

// IdentityUpdate changes an identity; nil fields stay.
type IdentityUpdate struct {
	Name                *string
	Role                *string
	HasDeleteProtection *bool
	Metadata            *[]Metadata
}

// Update changes an identity's name, role, delete protection or metadata.
// It writes only the identity as it read it, and otherwise reads and
// applies the change again (project.RetryStale): a rename from an old read must not
// bring back a role another change took away, which its author may not have
// been allowed to give.
func (a *Admin) Update(ctx context.Context, actor authz.Actor, id string, u IdentityUpdate) (OrgIdentity, error) {
	return project.RetryStale(ctx, "identity", func() (OrgIdentity, error) { return a.update(ctx, actor, id, u) })
}

// update is one try of Update.
func (a *Admin) update(ctx context.Context, actor authz.Actor, id string, u IdentityUpdate) (OrgIdentity, error) {
	oi, err := a.get(ctx, actor, id, authz.ActEdit)
	if err != nil {
		return OrgIdentity{}, err
	}
	prev := oi.UpdatedAt
	if u.Name != nil {
		if oi.Name, err = checkName(*u.Name); err != nil {
			return OrgIdentity{}, err
		}
	}
	role := OrgRoleRef{Role: oi.Role, CustomRoleID: oi.CustomRoleID}
	slug := oi.RoleSlug()
	if u.Role != nil && *u.Role != slug {
		if role, err = a.resolveRole(ctx, actor, *u.Role); err != nil {
			return OrgIdentity{}, err
		}
		// Both the role given and the role taken away must be the actor's to give.
		for _, r := range []string{*u.Role, slug} {
			if err := a.checkGrant(ctx, actor, r); err != nil {
				return OrgIdentity{}, err
			}
		}
		if err := a.checkLift(ctx, actor, slug); err != nil {
			return OrgIdentity{}, err
		}
		slug = *u.Role
	}
	if u.HasDeleteProtection != nil {
		oi.HasDeleteProtection = *u.HasDeleteProtection
	}
	var md []Metadata
	if u.Metadata != nil {
		if md, err = checkMetadata(*u.Metadata); err != nil {
			return OrgIdentity{}, err
		}
	}
	oi.UpdatedAt = project.NextStamp(a.now(), prev)
	ev := audit.New(actor, "update-identity", map[string]any{"identityId": oi.ID, "name": oi.Name, "hasDeleteProtection": oi.HasDeleteProtection,
		"role": slug})
	if err := a.store.UpdateIdentity(ctx, oi.Identity, role, md, prev, ev); err != nil {
		return OrgIdentity{}, err
	}
	return a.store.OrgIdentity(ctx, actor.OrgID, oi.ID)
}

// Delete removes an identity; its memberships and tokens go with it, so its
// tokens stop working at once. Delete protection and deleting oneself are
// refused. The identity is deleted only as it was read and checked; one
// changed since (protection turned on, promoted to admin) is read and
// checked again (project.RetryStale).
func (a *Admin) Delete(ctx context.Context, actor authz.Actor, id string) (OrgIdentity, error) {
	return project.RetryStale(ctx, "identity", func() (OrgIdentity, error) { return a.delete(ctx, actor, id) })
}

// delete is one try of Delete.
func (a *Admin) delete(ctx context.Context, actor authz.Actor, id string) (OrgIdentity, error) {
	oi, err := a.get(ctx, actor, id, authz.ActDelete)
	if err != nil {
		return OrgIdentity{}, err
	}
	if oi.HasDeleteProtection {
		return OrgIdentity{}, errs.BadRequest("Identity has delete protection; turn it off before deleting the identity")
	}
	if actor.Kind == authz.ActorIdentity && actor.ID == oi.ID {
		return OrgIdentity{}, errs.BadRequest("An identity cannot delete itself")
	}
	if oi.Role == "admin" {
		if err := a.checkGrant(ctx, actor, "admin"); err != nil {
			return OrgIdentity{}, err
		}
	}
	ev := audit.New(actor, "delete-identity", map[string]any{"identityId": oi.ID, "name": oi.Name})
	if err := a.store.DeleteIdentity(ctx, oi.ID, oi.UpdatedAt, ev); errs.Is(err, errs.NotFound) {
		return OrgIdentity{}, identityNotFound(oi.ID) // deleted since it was read
	} else if err != nil {
		return OrgIdentity{}, err
	}
	return oi, nil
}
