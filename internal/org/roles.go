package org

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
	"github.com/lockbox-dev/lockbox/internal/project"
)

// Roles manages custom organization roles.
type Roles struct {
	store Store
	authz Authorizer
	now   func() time.Time
}

// NewRoles returns the organization role service.
func NewRoles(st Store, az Authorizer, now func() time.Time) *Roles {
	if now == nil {
		now = time.Now
	}
	return &Roles{store: st, authz: az, now: now}
}

// MaxRoles bounds an organization's custom roles: the role list returns
// them all, each parsed again.
const MaxRoles = 1000

var builtinNames = map[string]string{"admin": "Admin", "member": "Member", "no-access": "No Access"}

// BuiltinRoles lists the predefined organization roles.
func BuiltinRoles(orgID string) []Role {
	var out []Role
	for _, slug := range []string{"admin", "member", "no-access"} {
		rules, _ := authz.OrgRoleRules(slug)
		out = append(out, Role{ID: slug, OrgID: orgID, Slug: slug, Name: builtinNames[slug], Permissions: rules})
	}
	return out
}

func roleNotFound(id string) error {
	return errs.NotFoundf("Organization role with ID '%s' not found", truncate(id, 64))
}

// RoleChange is a create or update request; nil fields are absent.
type RoleChange struct {
	Slug        *string
	Name        *string
	Description *string
	Permissions json.RawMessage
}

func validSlug(s string) bool {
	if len(s) < 1 || len(s) > 64 || strings.HasPrefix(s, "-") || strings.HasSuffix(s, "-") || strings.Contains(s, "--") {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-') {
			return false
		}
	}
	return true
}

func (c RoleChange) apply(r *Role) error {
	if c.Slug != nil {
		if !validSlug(*c.Slug) {
			return invalidField("slug", "slug must be 1 to 64 lowercase letters, digits and hyphens")
		}
		if authz.IsReservedOrgRole(*c.Slug) {
			return errs.BadRequest("The slug '%s' is reserved for a built-in role", *c.Slug)
		}
		r.Slug = *c.Slug
	}
	if c.Name != nil {
		n := strings.TrimSpace(*c.Name)
		if n == "" || len(n) > 64 {
			return invalidField("name", "name must be 1 to 64 characters")
		}
		r.Name = n
	}
	if c.Description != nil {
		d := strings.TrimSpace(*c.Description)
		if len(d) > 500 {
			return invalidField("description", "description must be at most 500 characters")
		}
		r.Description = d
	}
	if c.Permissions != nil {
		rules, err := authz.ParseOrgRules(c.Permissions)
		if err != nil {
			return err
		}
		r.Permissions = rules
	}
	return nil
}

// covers refuses a role whose rules the actor does not hold itself.
func covers(set authz.Set, mine string, r Role) error {
	if mine == "admin" || set.Covers(authz.NewSet(r.Permissions)) {
		return nil
	}
	return boundaryError("define role '%s': it holds privileges you do not have", r.Slug)
}

// List returns the built-in roles followed by the organization's custom ones.
func (rs *Roles) List(ctx context.Context, actor authz.Actor) ([]Role, error) {
	if _, _, err := perms(ctx, rs.authz, actor, "", authz.ActRead, authz.SubRole); err != nil {
		return nil, err
	}
	return rs.all(ctx, actor.OrgID)
}

// all is the organization's built-in and custom roles, with no check.
func (rs *Roles) all(ctx context.Context, orgID string) ([]Role, error) {
	custom, err := rs.store.OrgRoles(ctx, orgID)
	if err != nil {
		return nil, err
	}
	return append(BuiltinRoles(orgID), custom...), nil
}

// Grantable lists the roles the actor may give a member, an identity or a
// group (mayHold: every role for an organization admin; for anyone else the
// roles their own permissions cover, never admin), for pages to offer.
// Each grant is checked again when made.
func (rs *Roles) Grantable(ctx context.Context, actor authz.Actor) ([]Role, error) {
	set, mine, err := perms(ctx, rs.authz, actor, "", authz.ActRead, authz.SubRole)
	if err != nil {
		return nil, err
	}
	all, err := rs.all(ctx, actor.OrgID) // read permission was checked just above
	if err != nil {
		return nil, err
	}
	out := all[:0]
	for _, r := range all {
		err := mayHold(ctx, rs.authz, actor, set, mine, r.Slug)
		if errs.Is(err, errs.Forbidden) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}

// Get returns a role by id (a built-in role's id is its slug).
func (rs *Roles) Get(ctx context.Context, actor authz.Actor, id string) (Role, error) {
	if _, _, err := perms(ctx, rs.authz, actor, "", authz.ActRead, authz.SubRole); err != nil {
		return Role{}, err
	}
	for _, b := range BuiltinRoles(actor.OrgID) {
		if b.ID == id {
			return b, nil
		}
	}
	return rs.custom(ctx, actor, id)
}

func (rs *Roles) custom(ctx context.Context, actor authz.Actor, id string) (Role, error) {
	if _, err := uuid.Parse(id); err != nil {
		return Role{}, roleNotFound(id)
	}
	r, err := rs.store.OrgRoleByID(ctx, actor.OrgID, id)
	if errs.Is(err, errs.NotFound) {
		return Role{}, roleNotFound(id)
	}
	return r, err
}

// GetBySlug returns a role by slug.
func (rs *Roles) GetBySlug(ctx context.Context, actor authz.Actor, slug string) (Role, error) {
	if _, _, err := perms(ctx, rs.authz, actor, "", authz.ActRead, authz.SubRole); err != nil {
		return Role{}, err
	}
	for _, b := range BuiltinRoles(actor.OrgID) {
		if b.Slug == slug {
			return b, nil
		}
	}
	r, err := rs.store.OrgRoleBySlug(ctx, actor.OrgID, slug)
	if errs.Is(err, errs.NotFound) {
		return Role{}, errs.NotFoundf("Organization role with slug '%s' not found", truncate(slug, 64))
	}
	return r, err
}

func rulesJSON(rules []authz.Rule) (string, error) {
	if rules == nil {
		rules = []authz.Rule{}
	}
	b, err := json.Marshal(rules)
	return string(b), err
}

// Create defines a custom role; the actor must hold every rule it grants.
func (rs *Roles) Create(ctx context.Context, actor authz.Actor, c RoleChange) (Role, error) {
	set, mine, err := perms(ctx, rs.authz, actor, "", authz.ActCreate, authz.SubRole)
	if err != nil {
		return Role{}, err
	}
	if c.Slug == nil {
		return Role{}, invalidField("slug", "slug is required")
	}
	if c.Name == nil {
		c.Name = c.Slug
	}
	if c.Permissions == nil {
		c.Permissions = json.RawMessage("[]")
	}
	now := rs.now().UTC().Truncate(time.Microsecond)
	r := Role{ID: newID(), OrgID: actor.OrgID, CreatedAt: now, UpdatedAt: now}
	if err := c.apply(&r); err != nil {
		return Role{}, err
	}
	if err := covers(set, mine, r); err != nil {
		return Role{}, err
	}
	perms, err := rulesJSON(r.Permissions)
	if err != nil {
		return Role{}, err
	}
	ev := audit.New(actor, "create-org-role", map[string]any{"roleId": r.ID, "slug": r.Slug})
	if err := rs.store.CreateOrgRole(ctx, r, perms, ev); err != nil {
		if errs.Is(err, errs.Conflict) {
			return Role{}, errs.BadRequest("A role with slug '%s' already exists", r.Slug)
		}
		return Role{}, err
	}
	return r, nil
}

// Update changes a custom role; the actor must hold every rule of the role
// before and after the change. It writes only the role as it read it, and
// otherwise reads and applies the change again (project.RetryStale), so that
// concurrent changes of different fields all stay: a rename must not bring
// back a permission another change took away.
func (rs *Roles) Update(ctx context.Context, actor authz.Actor, id string, c RoleChange) (Role, error) {
	return project.RetryStale(ctx, "role", func() (Role, error) { return rs.update(ctx, actor, id, c) })
}

// update is one try of Update.
func (rs *Roles) update(ctx context.Context, actor authz.Actor, id string, c RoleChange) (Role, error) {
	set, mine, err := perms(ctx, rs.authz, actor, "", authz.ActEdit, authz.SubRole)
	if err != nil {
		return Role{}, err
	}
	if authz.IsBuiltinOrgRole(id) {
		return Role{}, errs.BadRequest("Built-in roles cannot be changed")
	}
	r, err := rs.custom(ctx, actor, id)
	if err != nil {
		return Role{}, err
	}
	if err := covers(set, mine, r); err != nil {
		return Role{}, err
	}
	prev := r.UpdatedAt
	before := slices.Clone(r.Permissions)
	if err := c.apply(&r); err != nil {
		return Role{}, err
	}
	if err := covers(set, mine, r); err != nil {
		return Role{}, err
	}
	// Rules that deny take from (or, removed, give back to) everyone
	// holding the role, and any set covers them: only an admin changes them.
	if mine != "admin" && project.DenialsChanged(before, r.Permissions) {
		return Role{}, boundaryError("change role '%s': its rules that deny take from (or give back to) whoever holds it; only organization admins may change them", r.Slug)
	}
	r.UpdatedAt = project.NextStamp(rs.now(), prev)
	perms, err := rulesJSON(r.Permissions)
	if err != nil {
		return Role{}, err
	}
	ev := audit.New(actor, "update-org-role", map[string]any{"roleId": r.ID, "slug": r.Slug})
	if err := rs.store.UpdateOrgRole(ctx, r, perms, prev, ev); err != nil {
		if errs.Is(err, errs.Conflict) {
			return Role{}, errs.BadRequest("A role with slug '%s' already exists", r.Slug)
		}
		return Role{}, err
	}
	return r, nil
}

// Delete removes a custom role that no membership uses.
func (rs *Roles) Delete(ctx context.Context, actor authz.Actor, id string) (Role, error) {
	set, mine, err := perms(ctx, rs.authz, actor, "", authz.ActDelete, authz.SubRole)
	if err != nil {
		return Role{}, err
	}
	if authz.IsBuiltinOrgRole(id) {
		return Role{}, errs.BadRequest("Built-in roles cannot be deleted")
	}
	r, err := rs.custom(ctx, actor, id)
	if err != nil {
		return Role{}, err
	}
	if err := covers(set, mine, r); err != nil {
		return Role{}, err
	}
	ev := audit.New(actor, "delete-org-role", map[string]any{"roleId": r.ID, "slug": r.Slug})
	if err := rs.store.DeleteOrgRole(ctx, r, ev); err != nil {
		if errs.Is(err, errs.Conflict) {
			return Role{}, errs.BadRequest("Role '%s' is assigned to members; change their role first", r.Slug)
		}
		return Role{}, err
	}
	return r, nil
}
