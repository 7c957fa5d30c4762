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

// Template is a project template of an organization: the environments,
// custom roles and identity memberships a project created with its name
// starts with. Environments nil means none. The built-in "default" template
// (DefaultTemplate) is not stored.
type Template struct {
	ID           string
	OrgID        string
	Name         string
	Description  string
	Type         string
	Roles        []TemplateRole
	Environments []TemplateEnvironment
	// Identities are made members of the project with their roles
	// (predefined slugs or the template's own); identities deleted since
	// the template was saved are left out when it is read.
	Identities []TemplateIdentity
	CreatedAt  time.Time
	UpdatedAt  time.Time
}

// TemplateIdentity is an identity of the organization and the roles it gets
// in a project made from the template.
type TemplateIdentity struct {
	IdentityID   string
	IdentityName string // filled when read
	Roles        []string
}

// TemplateRole is a custom role of a template.
type TemplateRole struct {
	Name        string
	Slug        string
	Permissions []authz.Rule
}

// TemplateEnvironment is an environment of a template; positions run from 1.
type TemplateEnvironment struct {
	Name     string
	Slug     string
	Position int
}

// DefaultTemplateName names the built-in template, which creates the default
// environments and no custom roles.
const DefaultTemplateName = "default"

// DefaultTemplateID is the fixed id Infisical gives its built-in template.
const DefaultTemplateID = "b11b49a9-09a9-4443-916a-4246f9ff2c69"

// DefaultTemplate is the built-in template of a project type.
func DefaultTemplate(orgID, typ string) Template {
	t := Template{ID: DefaultTemplateID, OrgID: orgID, Name: DefaultTemplateName, Type: typ,
		Description: "Infisical's " + typ + " default project template"}
	if typ == "secret-manager" {
		for i, d := range DefaultEnvironments {
			t.Environments = append(t.Environments, TemplateEnvironment{Name: d.Name, Slug: d.Slug, Position: i + 1})
		}
	}
	return t
}

// PredefinedTemplateRoles are the built-in roles every template lists
// before its own.
func PredefinedTemplateRoles() []TemplateRole {
	var out []TemplateRole
	for _, r := range BuiltinRoles("") {
		out = append(out, TemplateRole{Name: r.Name, Slug: r.Slug, Permissions: r.Permissions})
	}
	return out
}

// TemplateStore is the storage project templates need. Roles, environments
// and identities travel as JSON (TemplateJSON); "" is NULL (none).
type TemplateStore interface {
	// CreateTemplate writes t; errs.Conflict when its organization has a
	// template of that name.
	CreateProjectTemplate(ctx context.Context, t Template, j TemplateJSON, ev audit.Event) error
	TemplateByID(ctx context.Context, id string) (Template, error)
	TemplateByName(ctx context.Context, orgID, name string) (Template, error)
	// Templates lists an organization's templates by name; typ "" lists all.
	ProjectTemplates(ctx context.Context, orgID, typ string) ([]Template, error)
	UpdateProjectTemplate(ctx context.Context, t Template, j TemplateJSON, ev audit.Event) error
	DeleteProjectTemplate(ctx context.Context, t Template, ev audit.Event) error
	// IdentityNames returns the names of those of ids that are identities of org.
	IdentityNames(ctx context.Context, orgID string, ids []string) (map[string]string, error)
}

// TemplateJSON is a template's stored roles, environments and identities;
// "" is NULL.
type TemplateJSON struct {
	Roles, Environments, Identities string
}

// Templates manages project templates.
type Templates struct {
	store TemplateStore
	authz Authorizer
	now   func() time.Time
}

// NewTemplates returns the project template service; now nil means time.Now.
func NewTemplates(st TemplateStore, az Authorizer, now func() time.Time) *Templates {
	if now == nil {
		now = time.Now
	}
	return &Templates{store: st, authz: az, now: now}
}

// TemplateChange is a create or update request; nil fields are absent.
// Roles and Environments are JSON arrays as Infisical's API takes them;
// Environments "null" clears them.
type TemplateChange struct {
	Name         *string
	Description  *string
	Type         *string
	Roles        json.RawMessage
	Environments json.RawMessage
	Identities   json.RawMessage
}

// maxTemplateJSON bounds a template's roles and its environments, as Infisical's.
const maxTemplateJSON = 32 << 10

var reservedRoleNames = []string{"custom", "admin", "viewer", "member", "no access"}

func (ts *Templates) check(ctx context.Context, actor authz.Actor, action string) error {
	perms, err := ts.authz.OrgPermissions(ctx, actor)
	if err != nil {
		return err
	}
	return perms.Check(action, authz.SubProjectTemplates, nil)
}

func parseTemplateRoles(raw json.RawMessage) ([]TemplateRole, error) {
	if len(raw) > maxTemplateJSON {
		return nil, invalidField("roles", "Size limit exceeded")
	}
	var in []struct {
		Name        string          `json:"name"`
		Slug        string          `json:"slug"`
		Permissions json.RawMessage `json:"permissions"`
	}
	if err := json.Unmarshal(raw, &in); err != nil {
		return nil, invalidField("roles", "roles must be an array of {name, slug, permissions}")
	}
	out := make([]TemplateRole, 0, len(in))
	slugs, names := map[string]bool{}, map[string]bool{}
	for _, r := range in {
		name := strings.TrimSpace(r.Name)
		switch {
		case name == "" || len(name) > 64:
			return nil, invalidField("roles", "role name must be 1 to 64 characters")
		case !ValidSlug(r.Slug, 1, 64):
			return nil, invalidField("roles", "role slug must be 1 to 64 lowercase letters, digits and hyphens")
		case authz.IsBuiltinProjectRole(r.Slug):
			return nil, invalidField("roles", "Role slug %q is reserved", r.Slug)
		case contains(reservedRoleNames, strings.ToLower(name)):
			return nil, invalidField("roles", "Role name %q is reserved", name)
		case slugs[r.Slug]:
			return nil, invalidField("roles", "Role slugs must be unique")
		case names[name]:
			return nil, invalidField("roles", "Role names must be unique")
		}
		slugs[r.Slug], names[name] = true, true
		if len(r.Permissions) == 0 {
			r.Permissions = json.RawMessage("[]")
		}
		rules, err := authz.ParseRules(r.Permissions)
		if err != nil {
			return nil, err
		}
		out = append(out, TemplateRole{Name: name, Slug: r.Slug, Permissions: rules})
	}
	return out, nil
}

func parseTemplateEnvironments(raw json.RawMessage) ([]TemplateEnvironment, error) {
	if len(raw) > maxTemplateJSON {
		return nil, invalidField("environments", "Size limit exceeded")
	}
	var in []TemplateEnvironment
	var wire []struct {
		Name     string `json:"name"`
		Slug     string `json:"slug"`
		Position int    `json:"position"`
	}
	if err := json.Unmarshal(raw, &wire); err != nil {
		return nil, invalidField("environments", "environments must be an array of {name, slug, position}")
	}
	if len(wire) > MaxEnvironments {
		return nil, invalidField("environments", "A template has at most %d environments", MaxEnvironments)
	}
	slugs, names, positions := map[string]bool{}, map[string]bool{}, map[int]bool{}
	for _, e := range wire {
		name := strings.TrimSpace(e.Name)
		switch {
		case name == "" || len(name) > 64:
			return nil, invalidField("environments", "environment name must be 1 to 64 characters")
		case !ValidSlug(e.Slug, 1, 64):
			return nil, invalidField("environments", "environment slug must be 1 to 64 lowercase letters, digits and hyphens")
		case names[name]:
			return nil, invalidField("environments", "Environment names must be unique")
		case slugs[e.Slug]:
			return nil, invalidField("environments", "Environment slugs must be unique")
		case e.Position < 1 || e.Position > len(wire) || positions[e.Position]:
			return nil, invalidField("environments", "One or more of the positions specified is invalid. Positions must be sequential starting from 1.")
		}
		slugs[e.Slug], names[name], positions[e.Position] = true, true, true
		in = append(in, TemplateEnvironment{Name: name, Slug: e.Slug, Position: e.Position})
	}
	if in == nil {
		in = []TemplateEnvironment{}
	}
	return in, nil
}

func parseTemplateIdentities(raw json.RawMessage) ([]TemplateIdentity, error) {
	if len(raw) > maxTemplateJSON {
		return nil, invalidField("identities", "Size limit exceeded")
	}
	var wire []struct {
		IdentityID string   `json:"identityId"`
		Roles      []string `json:"roles"`
	}
	if err := json.Unmarshal(raw, &wire); err != nil {
		return nil, invalidField("identities", "identities must be an array of {identityId, roles}")
	}
	seen := map[string]bool{}
	out := []TemplateIdentity{}
	for _, w := range wire {
		if _, err := uuid.Parse(w.IdentityID); err != nil {
			return nil, invalidField("identities", "identityId must be a UUID")
		}
		if seen[w.IdentityID] {
			return nil, invalidField("identities", "Identity IDs must be unique")
		}
		seen[w.IdentityID] = true
		if len(w.Roles) == 0 {
			return nil, invalidField("identities", "each identity needs at least one role")
		}
		ti := TemplateIdentity{IdentityID: w.IdentityID}
		for _, r := range w.Roles {
			r = strings.TrimSpace(r)
			if r == "" {
				return nil, invalidField("identities", "role slugs must not be empty")
			}
			ti.Roles = append(ti.Roles, r)
		}
		out = append(out, ti)
	}
	return out, nil
}

// predefinedTemplateSlugs are the role slugs a template's identities may
// hold besides the template's own roles.
var predefinedTemplateSlugs = []string{"admin", "member", "viewer", "no-access"}

// checkIdentityRoles refuses identities holding a role that is neither
// predefined nor one of t's roles.
func checkIdentityRoles(t Template) error {
	for _, ti := range t.Identities {
		for _, r := range ti.Roles {
			if contains(predefinedTemplateSlugs, r) || slices.ContainsFunc(t.Roles, func(tr TemplateRole) bool { return tr.Slug == r }) {
				continue
			}
			return errs.BadRequest("Identity %s references invalid role slug %q. Role must be a predefined role or defined in the template roles.",
				ti.IdentityID, truncate(r, 64))
		}
	}
	return nil
}

func isNull(raw json.RawMessage) bool {
	s := strings.TrimSpace(string(raw))
	return s == "" || s == "null"
}

// apply validates c into t; create says whether t is new.
func (c TemplateChange) apply(t *Template, create bool) error {
	if c.Name != nil {
		n := strings.TrimSpace(*c.Name)
		if !ValidSlug(n, 1, 64) {
			return invalidField("name", "name must be 1 to 64 lowercase letters, digits and hyphens")
		}
		if n == DefaultTemplateName {
			return invalidField("name", "The requested project template name is reserved.")
		}
		t.Name = n
	} else if create {
		return invalidField("name", "Required")
	}
	if c.Description != nil {
		d := strings.TrimSpace(*c.Description)
		if len(d) > 256 {
			return invalidField("description", "description must be at most 256 characters")
		}
		t.Description = d
	}
	if create {
		if c.Type == nil || *c.Type == "" {
			return invalidField("type", "Required")
		}
		if !contains(projectTypes, *c.Type) || *c.Type == "ai" {
			return invalidField("type", "type must be one of secret-manager, cert-manager, kms, ssh, secret-scanning, pam")
		}
		t.Type = *c.Type
	}
	if !isNull(c.Roles) {
		roles, err := parseTemplateRoles(c.Roles)
		if err != nil {
			return err
		}
		t.Roles = roles
	} else if create {
		t.Roles = []TemplateRole{}
	}
	if c.Environments != nil {
		if isNull(c.Environments) {
			t.Environments = nil
		} else {
			envs, err := parseTemplateEnvironments(c.Environments)
			if err != nil {
				return err
			}
			if t.Type != "secret-manager" {
				return errs.BadRequest("Cannot configure environments for non-SecretManager project templates")
			}
			t.Environments = envs
		}
	}
	if !isNull(c.Identities) {
		ids, err := parseTemplateIdentities(c.Identities)
		if err != nil {
			return err
		}
		t.Identities = ids
	} else if c.Identities != nil {
		t.Identities = nil
	}
	return checkIdentityRoles(*t)
}

type wireTemplateRole struct {
	Name        string       `json:"name"`
	Slug        string       `json:"slug"`
	Permissions []authz.Rule `json:"permissions"`
}

type wireTemplateEnv struct {
	Name     string `json:"name"`
	Slug     string `json:"slug"`
	Position int    `json:"position"`
}

type wireTemplateIdentity struct {
	IdentityID string   `json:"identityId"`
	Roles      []string `json:"roles"`
}

func encodeTemplate(t Template) (TemplateJSON, error) {
	var j TemplateJSON
	rs := make([]wireTemplateRole, len(t.Roles))
	for i, r := range t.Roles {
		perms := r.Permissions
		if perms == nil {
			perms = []authz.Rule{}
		}
		rs[i] = wireTemplateRole{r.Name, r.Slug, perms}
	}
	b, err := json.Marshal(rs)
	if err != nil {
		return j, errs.Internalf(err, "encode template roles")
	}
	j.Roles = string(b)
	if t.Environments != nil {
		es := make([]wireTemplateEnv, len(t.Environments))
		for i, e := range t.Environments {
			es[i] = wireTemplateEnv{e.Name, e.Slug, e.Position}
		}
		b, err := json.Marshal(es)
		if err != nil {
			return j, errs.Internalf(err, "encode template environments")
		}
		j.Environments = string(b)
	}
	if len(t.Identities) > 0 {
		is := make([]wireTemplateIdentity, len(t.Identities))
		for i, ti := range t.Identities {
			is[i] = wireTemplateIdentity{ti.IdentityID, ti.Roles}
		}
		b, err := json.Marshal(is)
		if err != nil {
			return j, errs.Internalf(err, "encode template identities")
		}
		j.Identities = string(b)
	}
	return j, nil
}

// DecodeTemplate fills t's roles, environments and identities from their
// stored JSON ("" is none), for the store.
func DecodeTemplate(t *Template, j TemplateJSON) error {
	var rs []wireTemplateRole
	if err := json.Unmarshal([]byte(j.Roles), &rs); err != nil {
		return errs.Internalf(err, "stored roles of template %s", t.ID)
	}
	t.Roles = make([]TemplateRole, len(rs))
	for i, r := range rs {
		t.Roles[i] = TemplateRole{Name: r.Name, Slug: r.Slug, Permissions: r.Permissions}
	}
	t.Environments = nil
	if j.Environments != "" {
		var es []wireTemplateEnv
		if err := json.Unmarshal([]byte(j.Environments), &es); err != nil {
			return errs.Internalf(err, "stored environments of template %s", t.ID)
		}
		t.Environments = make([]TemplateEnvironment, len(es))
		for i, e := range es {
			t.Environments[i] = TemplateEnvironment{Name: e.Name, Slug: e.Slug, Position: e.Position}
		}
	}
	t.Identities = nil
	if j.Identities != "" {
		var is []wireTemplateIdentity
		if err := json.Unmarshal([]byte(j.Identities), &is); err != nil {
			return errs.Internalf(err, "stored identities of template %s", t.ID)
		}
		for _, ti := range is {
			t.Identities = append(t.Identities, TemplateIdentity{IdentityID: ti.IdentityID, Roles: ti.Roles})
		}
	}
	return nil
}

// named fills the names of t's identities, leaving out those that are no
// longer identities of its organization. With strict, such an identity is
// an error instead (a template being saved).
func (ts *Templates) named(ctx context.Context, t *Template, strict bool) error {
	if len(t.Identities) == 0 {
		return nil
	}
	ids := make([]string, len(t.Identities))
	for i, ti := range t.Identities {
		ids[i] = ti.IdentityID
	}
	names, err := ts.store.IdentityNames(ctx, t.OrgID, ids)
	if err != nil {
		return err
	}
	var missing []string
	kept := t.Identities[:0]
	for _, ti := range t.Identities {
		name, ok := names[ti.IdentityID]
		if !ok {
			missing = append(missing, ti.IdentityID)
			continue
		}
		ti.IdentityName = name
		kept = append(kept, ti)
	}
	if strict && len(missing) > 0 {
		return errs.BadRequest("The following identities do not exist in this organization: %s", strings.Join(missing, ", "))
	}
	t.Identities = kept
	return nil
}

// Create adds a template to the actor's organization.
func (ts *Templates) Create(ctx context.Context, actor authz.Actor, c TemplateChange) (Template, error) {
	if err := ts.check(ctx, actor, authz.ActCreate); err != nil {
		return Template{}, err
	}
	now := ts.now().UTC().Truncate(time.Microsecond)
	t := Template{ID: newID(), OrgID: actor.OrgID, CreatedAt: now, UpdatedAt: now}
	if err := c.apply(&t, true); err != nil {
		return Template{}, err
	}
	if err := ts.named(ctx, &t, true); err != nil {
		return Template{}, err
	}
	j, err := encodeTemplate(t)
	if err != nil {
		return Template{}, err
	}
	ev := audit.New(actor, "create-project-template", map[string]any{"templateId": t.ID, "name": t.Name, "type": t.Type})
	if err := ts.store.CreateProjectTemplate(ctx, t, j, ev); err != nil {
		if errs.Is(err, errs.Conflict) {
			return Template{}, errs.BadRequest("A project template with the name %q already exists.", t.Name)
		}
		return Template{}, err
	}
	return t, nil
}

func templateNotFound(id string) error {
	return errs.NotFoundf("Could not find project template with ID %s", truncate(id, 64))
}

// byID returns a stored template of the actor's organization after checking action.
func (ts *Templates) byID(ctx context.Context, actor authz.Actor, id, action string) (Template, error) {
	if err := ts.check(ctx, actor, action); err != nil {
		return Template{}, err
	}
	if _, err := uuid.Parse(id); err != nil {
		return Template{}, templateNotFound(id)
	}
	t, err := ts.store.TemplateByID(ctx, id)
	if errs.Is(err, errs.NotFound) || (err == nil && t.OrgID != actor.OrgID) {
		return Template{}, templateNotFound(id)
	}
	if err != nil {
		return Template{}, err
	}
	return t, ts.named(ctx, &t, false)
}

// Get returns a template by id; the built-in one is read through List.
func (ts *Templates) Get(ctx context.Context, actor authz.Actor, id string) (Template, error) {
	if id == DefaultTemplateID {
		if err := ts.check(ctx, actor, authz.ActRead); err != nil {
			return Template{}, err
		}
		return DefaultTemplate(actor.OrgID, "secret-manager"), nil
	}
	return ts.byID(ctx, actor, id, authz.ActRead)
}

// List returns the built-in templates (one per project type, or of typ)
// followed by the organization's own.
func (ts *Templates) List(ctx context.Context, actor authz.Actor, typ string) ([]Template, error) {
	if err := ts.check(ctx, actor, authz.ActRead); err != nil {
		return nil, err
	}
	if typ != "" && !contains(projectTypes, typ) {
		return nil, invalidField("type", "type must be one of %s", strings.Join(projectTypes, ", "))
	}
	var out []Template
	for _, pt := range projectTypes {
		if pt == "ssh" || (typ != "" && pt != typ) {
			continue
		}
		out = append(out, DefaultTemplate(actor.OrgID, pt))
	}
	own, err := ts.store.ProjectTemplates(ctx, actor.OrgID, typ)
	if err != nil {
		return nil, err
	}
	for i := range own {
		if err := ts.named(ctx, &own[i], false); err != nil {
			return nil, err
		}
	}
	return append(out, own...), nil
}

// Update changes a template.
func (ts *Templates) Update(ctx context.Context, actor authz.Actor, id string, c TemplateChange) (Template, error) {
	if id == DefaultTemplateID {
		return Template{}, errs.BadRequest("The default project template cannot be changed")
	}
	t, err := ts.byID(ctx, actor, id, authz.ActEdit)
	if err != nil {
		return Template{}, err
	}
	if err := c.apply(&t, false); err != nil {
		return Template{}, err
	}
	if err := ts.named(ctx, &t, c.Identities != nil); err != nil {
		return Template{}, err
	}
	t.UpdatedAt = ts.now().UTC().Truncate(time.Microsecond)
	j, err := encodeTemplate(t)
	if err != nil {
		return Template{}, err
	}
	ev := audit.New(actor, "update-project-template", map[string]any{"templateId": t.ID, "name": t.Name})
	if err := ts.store.UpdateProjectTemplate(ctx, t, j, ev); err != nil {
		if errs.Is(err, errs.Conflict) {
			return Template{}, errs.BadRequest("A project template with the name %q already exists.", t.Name)
		}
		return Template{}, err
	}
	return t, nil
}

// Delete removes a template; projects made from it keep what it gave them.
func (ts *Templates) Delete(ctx context.Context, actor authz.Actor, id string) (Template, error) {
	if id == DefaultTemplateID {
		return Template{}, errs.BadRequest("The default project template cannot be deleted")
	}
	t, err := ts.byID(ctx, actor, id, authz.ActDelete)
	if err != nil {
		return Template{}, err
	}
	ev := audit.New(actor, "delete-project-template", map[string]any{"templateId": t.ID, "name": t.Name})
	return t, ts.store.DeleteProjectTemplate(ctx, t, ev)
}

// byName returns the template a project is created with, checking the
// actor may read templates. Another organization's template is not found.
func (ts *Templates) byName(ctx context.Context, actor authz.Actor, name string) (Template, error) {
	if err := ts.check(ctx, actor, authz.ActRead); err != nil {
		return Template{}, err
	}
	t, err := ts.store.TemplateByName(ctx, actor.OrgID, name)
	if errs.Is(err, errs.NotFound) {
		return Template{}, errs.NotFoundf("Could not find project template with Name %q", truncate(name, 64))
	}
	if err != nil {
		return Template{}, err
	}
	return t, ts.named(ctx, &t, false)
}
