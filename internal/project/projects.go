package project

import (
	"context"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/lockbox-dev/lockbox/internal/audit"
	"github.com/lockbox-dev/lockbox/internal/authz"
	"github.com/lockbox-dev/lockbox/internal/errs"
	"github.com/lockbox-dev/lockbox/internal/keyring"
)

// Project is a set of environments holding secrets, owned by an organization.
type Project struct {
	ID                  string
	OrgID               string
	Name                string
	Slug                string
	Description         string
	Type                string
	AutoCapitalization  bool
	HasDeleteProtection bool
	Version             int
	// AuditLogsRetentionDays is the project's audit log retention setting,
	// 0 when unset; the store's hourly purge applies it.
	AuditLogsRetentionDays int
	// PitVersionLimit is how many versions of each secret the project keeps
	// (DefaultPitVersionLimit unless set, 1 to MaxPitVersionLimit).
	PitVersionLimit int
	Environments    []Environment
	// Roles are custom roles, and Members identity memberships, created
	// together with the project (from a template); CreateProject writes
	// them, reads leave them empty.
	Roles     []Role
	Members   []InitialMember
	CreatedAt time.Time
	UpdatedAt time.Time
}

// Project types Infisical knows.
var projectTypes = []string{"secret-manager", "cert-manager", "kms", "ssh", "secret-scanning", "pam", "ai"}

// DefaultEnvironments are created with a project unless asked not to.
var DefaultEnvironments = []struct{ Name, Slug string }{{"Development", "dev"}, {"Staging", "staging"}, {"Production", "prod"}}

// NewProject is a create request; empty fields take defaults.
type NewProject struct {
	Name                string
	Description         string
	Slug                string
	Type                string
	NoDefaultEnvs       bool
	HasDeleteProtection bool
	// Template names a project template of the organization whose
	// environments, roles and identity members the project starts with; ""
	// or "default" is the built-in one.
	Template string
}

func newID() string { return uuid.Must(uuid.NewV7()).String() }

// MaxProjectsPerOrg bounds an organization's projects: any member may
// create one (the built-in member role can), and an organization admin's
// project list answers every one with its environments.
const MaxProjectsPerOrg = 10000

// TooManyProjects refuses a project past MaxProjectsPerOrg.
func TooManyProjects(n int) error {
	return errs.BadRequest("The organization has %d projects, the most it may have; delete one first", n)
}

// MaxDescriptionBytes bounds the description of a project, a folder and a
// role: lists answer them whole (a member's projects, with 1 MB
// descriptions, made each project list 40 MB).
const MaxDescriptionBytes = 1024

// description trims d and holds it to MaxDescriptionBytes (422 naming field).
func description(field, d string) (string, error) {
	d = strings.TrimSpace(d)
	if len(d) > MaxDescriptionBytes {
		return "", invalidField(field, "%s must be at most %d bytes", field, MaxDescriptionBytes)
	}
	return d, nil
}

func invalidField(field, format string, args ...any) error {
	e := errs.Invalidf(format, args...)
	e.Details = []string{field}
	return e
}

// CreateProject creates a project in the actor's organization; the actor
// becomes its admin.
func (s *Service) CreateProject(ctx context.Context, actor authz.Actor, req NewProject) (Project, error) {
	perms, err := s.authz.OrgPermissions(ctx, actor)
	if err != nil {
		return Project{}, err
	}
	if err := perms.Check(authz.ActCreate, authz.SubWorkspace, nil); err != nil {
		return Project{}, err
	}
	name := strings.TrimSpace(req.Name)
	if name == "" || len(name) > 64 {
		return Project{}, invalidField("projectName", "projectName must be 1 to 64 characters")
	}
	slug := strings.TrimSpace(req.Slug)
	if slug == "" {
		base := Slugify(name)
		if len(base) > 28 {
			base = strings.Trim(base[:28], "-")
		}
		if base == "" {
			base = "project"
		}
		slug = base + "-" + RandomSuffix(6)
	} else if !ValidSlug(slug, 5, 36) {
		return Project{}, invalidField("slug", "slug must be 5 to 36 lowercase letters, digits and hyphens")
	}
	typ := req.Type
	if typ == "" {
		typ = "secret-manager"
	}
	if !contains(projectTypes, typ) {
		return Project{}, invalidField("type", "type must be one of %s", strings.Join(projectTypes, ", "))
	}
	tmpl, err := s.template(ctx, actor, req.Template, req.Type)
	if err != nil {
		return Project{}, err
	}
	if tmpl != nil {
		typ = tmpl.Type
	}
	desc, err := description("projectDescription", req.Description)
	if err != nil {
		return Project{}, err
	}
	now := s.now().UTC().Truncate(time.Microsecond)
	p := Project{ID: newID(), OrgID: actor.OrgID, Name: name, Slug: slug, Description: desc,
		Type: typ, HasDeleteProtection: req.HasDeleteProtection, Version: 3, PitVersionLimit: DefaultPitVersionLimit,
		CreatedAt: now, UpdatedAt: now}
	if tmpl != nil {
		for _, e := range tmpl.Environments {
			p.Environments = append(p.Environments, Environment{ID: newID(), ProjectID: p.ID, Name: e.Name, Slug: e.Slug,
				Position: e.Position, CreatedAt: now, UpdatedAt: now})
		}
		for _, r := range tmpl.Roles {
			p.Roles = append(p.Roles, Role{ID: newID(), ProjectID: p.ID, Slug: r.Slug, Name: r.Name, Permissions: r.Permissions,
				CreatedAt: now, UpdatedAt: now})
		}
		p.Members = templateMembers(actor, tmpl, p, now)
	} else if !req.NoDefaultEnvs {
		for i, d := range DefaultEnvironments {
			p.Environments = append(p.Environments, Environment{ID: newID(), ProjectID: p.ID, Name: d.Name, Slug: d.Slug,
				Position: i + 1, CreatedAt: now, UpdatedAt: now})
		}
	}
	wrapped, err := s.keys.NewDataKey(keyring.Project(p.ID))
	if err != nil {
		return Project{}, err
	}
	ev := audit.New(actor, "create-project", map[string]any{"projectId": p.ID, "name": p.Name, "slug": p.Slug}).InProject(p.ID, p.Name)
	if err := s.store.CreateProject(ctx, p, wrapped, s.keys.RootKeyID(), actor, ev); err != nil {
		s.keys.Forget(keyring.Project(p.ID))
		if errs.Is(err, errs.Conflict) {
			return Project{}, errs.BadRequest("A project with the slug '%s' already exists", slug)
		}
		return Project{}, err
	}
	return p, nil
}

// InitialMember is an identity made a member of a project as the project is
// created.
type InitialMember struct {
	IdentityID string
	Roles      []MembershipRole
}

// templateMembers turns a template's identities into memberships of p,
// whose Roles are the template's roles as created. The creator, already
// the project's admin, is left out.
func templateMembers(actor authz.Actor, t *Template, p Project, now time.Time) []InitialMember {
	var out []InitialMember
	for _, ti := range t.Identities {
		if actor.Kind == authz.ActorIdentity && ti.IdentityID == actor.ID {
			continue
		}
		m := InitialMember{IdentityID: ti.IdentityID}
		for _, slug := range ti.Roles {
			r := MembershipRole{ID: newID(), Role: slug, CreatedAt: now, UpdatedAt: now}
			if i := slices.IndexFunc(p.Roles, func(cr Role) bool { return cr.Slug == slug }); i >= 0 {
				r.Role, r.CustomRoleID, r.CustomRoleSlug, r.CustomRoleName = "custom", p.Roles[i].ID, p.Roles[i].Slug, p.Roles[i].Name
			}
			m.Roles = append(m.Roles, r)
		}
		out = append(out, m)
	}
	return out
}

// template returns the stored template a project is created with, or nil
// for none or the built-in one. A template of another type than the one
// asked for is refused.
func (s *Service) template(ctx context.Context, actor authz.Actor, name, typ string) (*Template, error) {
	if name == "" || name == DefaultTemplateName {
		return nil, nil
	}
	if s.templates == nil {
		return nil, errs.BadRequest("Project templates are not available")
	}
	t, err := s.templates.byName(ctx, actor, name)
	if err != nil {
		return nil, err
	}
	if typ != "" && typ != t.Type {
		return nil, errs.BadRequest("Project type %s does not match the template's type %s", typ, t.Type)
	}
	return &t, nil
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func projectNotFound(id string) error { return errs.NotFoundf("Project with ID '%s' not found", id) }

// load returns the project with id and the actor's permissions in it, after
// checking action on subject. Another organization's project is not found.
func (s *Service) load(ctx context.Context, actor authz.Actor, id, action, subject string) (Project, authz.Set, error) {
	if _, err := uuid.Parse(id); err != nil {
		return Project{}, authz.Set{}, projectNotFound(id)
	}
	perms, err := s.authz.ProjectPermissions(ctx, actor, id)
	if err != nil {
		return Project{}, authz.Set{}, err
	}
	if err := perms.Check(action, subject, nil); err != nil {
		return Project{}, authz.Set{}, err
	}
	p, err := s.store.ProjectByID(ctx, id)
	if errs.Is(err, errs.NotFound) {
		return Project{}, authz.Set{}, projectNotFound(id)
	}
	return p, perms, err
}

// Get returns a project the actor may read.
func (s *Service) Get(ctx context.Context, actor authz.Actor, id string) (Project, error) {
	p, _, err := s.load(ctx, actor, id, authz.ActRead, authz.SubWorkspace)
	return p, err
}

// IDBySlug resolves a project slug within the actor's organization.
func (s *Service) IDBySlug(ctx context.Context, actor authz.Actor, slug string) (string, error) {
	p, err := s.store.ProjectBySlug(ctx, slug)
	if errs.Is(err, errs.NotFound) || (err == nil && p.OrgID != actor.OrgID) {
		return "", errs.NotFoundf("Project with slug '%s' not found", slug)
	}
	return p.ID, err
}

// GetBySlug returns a project by its slug.
func (s *Service) GetBySlug(ctx context.Context, actor authz.Actor, slug string) (Project, error) {
	id, err := s.IDBySlug(ctx, actor, slug)
	if err != nil {
		return Project{}, err
	}
	return s.Get(ctx, actor, id)
}

// List returns the projects of the actor's organization it can see: all of
// them for organization admins, otherwise those it is a member of.
func (s *Service) List(ctx context.Context, actor authz.Actor) ([]Project, error) {
	role, err := s.authz.OrgRole(ctx, actor)
	if err != nil {
		return nil, err
	}
	return s.store.Projects(ctx, actor.OrgID, role != "admin", actor.Kind, actor.ID)
}

// ProjectUpdate changes a project; nil fields stay.
type ProjectUpdate struct {
	Name                *string
	Description         *string
	Slug                *string
	AutoCapitalization  *bool
	HasDeleteProtection *bool
}

// ErrStale is the store's refusal to write settings changed since they were
// read (compare-and-set on updated_at): a project's, a role's, a
// privilege's, an identity's, a membership's or a login method's. RetryStale
// reads and applies the change again.
var ErrStale = errors.New("changed since it was read")

// NextStamp is the updated_at a compare-and-set write gives a row it read
// at prev: now, to the microsecond the store keeps, made later than prev, so
// that another write from the same read cannot match the new row.
func NextStamp(now, prev time.Time) time.Time {
	t := now.UTC().Truncate(time.Microsecond)
	if !t.After(prev) {
		t = prev.Add(time.Microsecond)
	}
	return t
}

// ErrDeleteProtected is the store's refusal to delete a project under
// delete protection.
var ErrDeleteProtected = errors.New("the project has delete protection")

// write applies change to the project as read now and writes it unless
// another change committed in between, when it reads and applies it again
// (RetryStale): two changes of different settings both
// stay. change returns the audit event, or an error to stop.
func (s *Service) write(ctx context.Context, actor authz.Actor, id, subject string, change func(*Project) (audit.Event, error)) (Project, error) {
	return RetryStale(ctx, "project", func() (Project, error) {
		p, _, err := s.load(ctx, actor, id, authz.ActEdit, subject)
		if err != nil {
			return Project{}, err
		}
		prev := p.UpdatedAt
		ev, err := change(&p)
		if err != nil {
			return Project{}, err
		}
		p.UpdatedAt = NextStamp(s.now(), prev)
		err = s.store.UpdateProject(ctx, p, prev, ev)
		if errs.Is(err, errs.Conflict) { // the only unique setting
			return Project{}, errs.BadRequest("A project with the slug '%s' already exists", p.Slug)
		}
		if err != nil {
			return Project{}, err
		}
		return p, nil
	})
}

// Update changes a project's settings.
func (s *Service) Update(ctx context.Context, actor authz.Actor, id string, u ProjectUpdate) (Project, error) {
	return s.write(ctx, actor, id, authz.SubWorkspace, func(p *Project) (audit.Event, error) {
		return s.applyUpdate(actor, p, u)
	})
}

// applyUpdate applies u to p and returns the change's audit event.
func (s *Service) applyUpdate(actor authz.Actor, p *Project, u ProjectUpdate) (audit.Event, error) {
	fail := func(err error) (audit.Event, error) { return audit.Event{}, err }
	if u.Name != nil {
		n := strings.TrimSpace(*u.Name)
		if n == "" || len(n) > 64 {
			return fail(invalidField("name", "name must be 1 to 64 characters"))
		}
		p.Name = n
	}
	if u.Description != nil {
		d, err := description("description", *u.Description)
		if err != nil {
			return fail(err)
		}
		p.Description = d
	}
	if u.Slug != nil && *u.Slug != p.Slug {
		if !ValidSlug(*u.Slug, 5, 36) {
			return fail(invalidField("slug", "slug must be 5 to 36 lowercase letters, digits and hyphens"))
		}
		p.Slug = *u.Slug
	}
	if u.AutoCapitalization != nil {
		p.AutoCapitalization = *u.AutoCapitalization
	}
	if u.HasDeleteProtection != nil {
		p.HasDeleteProtection = *u.HasDeleteProtection
	}
	return audit.New(actor, "update-project", map[string]any{"projectId": p.ID, "name": p.Name, "slug": p.Slug}).InProject(p.ID, p.Name), nil
}

// Delete removes a project with everything in it, unless it is delete-protected.
func (s *Service) Delete(ctx context.Context, actor authz.Actor, id string) (Project, error) {
	p, _, err := s.load(ctx, actor, id, authz.ActDelete, authz.SubWorkspace)
	if err != nil {
		return Project{}, err
	}
	protected := errs.BadRequest("Project '%s' has delete protection; turn it off before deleting the project", p.Slug)
	if p.HasDeleteProtection {
		return Project{}, protected
	}
	ev := audit.New(actor, "delete-project", map[string]any{"projectId": p.ID, "name": p.Name, "slug": p.Slug}).InProject(p.ID, p.Name)
	switch err := s.store.DeleteProject(ctx, p.ID, ev); {
	case errors.Is(err, ErrDeleteProtected):
		return Project{}, protected // turned on since it was read
	case errs.Is(err, errs.NotFound):
		return Project{}, projectNotFound(p.ID) // deleted since it was read
	case err != nil:
		return Project{}, leasesLeft(err, "delete this project")
	}
	s.keys.Forget(keyring.Project(p.ID))
	return p, nil
}

// DefaultPitVersionLimit and MaxPitVersionLimit are Infisical's default and
// bound of the versions kept per secret.
const (
	DefaultPitVersionLimit = 10
	MaxPitVersionLimit     = 100
)

// SetVersionLimit sets how many versions of each secret the project with
// slug keeps, 1 to MaxPitVersionLimit; lowering it removes the older
// versions at once. It needs edit on the project's settings.
func (s *Service) SetVersionLimit(ctx context.Context, actor authz.Actor, slug string, limit int) (Project, error) {
	if limit < 1 || limit > MaxPitVersionLimit {
		return Project{}, invalidField("pitVersionLimit", "pitVersionLimit must be 1 to %d", MaxPitVersionLimit)
	}
	id, err := s.IDBySlug(ctx, actor, slug)
	if err != nil {
		return Project{}, err
	}
	return s.write(ctx, actor, id, authz.SubSettings, func(p *Project) (audit.Event, error) {
		p.PitVersionLimit = limit
		return audit.New(actor, "update-project-version-limit", map[string]any{"projectId": p.ID, "pitVersionLimit": limit}).InProject(p.ID, p.Name), nil
	})
}

// MaxAuditLogsRetentionDays bounds a project's audit log retention setting.
const MaxAuditLogsRetentionDays = 3650

// SetAuditLogsRetention stores the audit log retention of the project with
// slug (0 clears it). It needs edit on the project's settings. The store's
// hourly purge deletes the project's audit events older than that many days,
// among those written since it was set.
func (s *Service) SetAuditLogsRetention(ctx context.Context, actor authz.Actor, slug string, days int) (Project, error) {
	if days < 0 || days > MaxAuditLogsRetentionDays {
		return Project{}, invalidField("auditLogsRetentionDays", "auditLogsRetentionDays must be 0 to %d", MaxAuditLogsRetentionDays)
	}
	id, err := s.IDBySlug(ctx, actor, slug)
	if err != nil {
		return Project{}, err
	}
	return s.write(ctx, actor, id, authz.SubSettings, func(p *Project) (audit.Event, error) {
		if s.AuditRetentionCap > 0 && days > s.AuditRetentionCap {
			return audit.Event{}, errs.BadRequest("Audit logs retention cannot exceed the server's %d days", s.AuditRetentionCap)
		}
		p.AuditLogsRetentionDays = days
		return audit.New(actor, "update-project-audit-logs-retention", map[string]any{"projectId": p.ID, "auditLogsRetentionDays": days}).InProject(p.ID, p.Name), nil
	})
}
