package api

import (
	"encoding/json"
	"net/http"
	"strings"
	"time"

	"github.com/lockbox-dev/lockbox/internal/authz"
	"github.com/lockbox-dev/lockbox/internal/project"
)

// templateRoutes serves the organization's project templates.
func (s *Server) templateRoutes(m *routeMux) {
	const base = "/api/v1/project-templates"
	m.Handle("POST "+base, s.authed(s.templateCreate))
	m.Handle("GET "+base, s.authed(s.templateList))
	m.Handle("GET "+base+"/{templateId}", s.authed(s.templateGet))
	m.Handle("PATCH "+base+"/{templateId}", s.authed(s.templateUpdate))
	m.Handle("DELETE "+base+"/{templateId}", s.authed(s.templateDelete))
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

type wireTemplateID struct {
	IdentityID   string   `json:"identityId"`
	IdentityName string   `json:"identityName"`
	Roles        []string `json:"roles"`
}

type wireProjectTemplate struct {
	ID                       string             `json:"id"`
	Name                     string             `json:"name"`
	Description              string             `json:"description"`
	Type                     string             `json:"type"`
	OrgID                    string             `json:"orgId"`
	Roles                    []wireTemplateRole `json:"roles"`
	Environments             []wireTemplateEnv  `json:"environments"`
	Users                    []any              `json:"users"`
	Groups                   []any              `json:"groups"`
	Identities               []wireTemplateID   `json:"identities"`
	ProjectManagedIdentities []any              `json:"projectManagedIdentities"`
	CreatedAt                string             `json:"createdAt"`
	UpdatedAt                string             `json:"updatedAt"`
}

// toWireProjectTemplate lists the predefined roles before the template's own, as Infisical does.
func toWireProjectTemplate(t project.Template) wireProjectTemplate {
	w := wireProjectTemplate{ID: t.ID, Name: t.Name, Description: t.Description, Type: t.Type, OrgID: t.OrgID,
		Users: []any{}, Groups: []any{}, Identities: []wireTemplateID{}, CreatedAt: rfc3339(t.CreatedAt), UpdatedAt: rfc3339(t.UpdatedAt)}
	for _, ti := range t.Identities {
		w.Identities = append(w.Identities, wireTemplateID{ti.IdentityID, ti.IdentityName, ti.Roles})
	}
	for _, r := range append(project.PredefinedTemplateRoles(), t.Roles...) {
		perms := r.Permissions
		if perms == nil {
			perms = []authz.Rule{}
		}
		w.Roles = append(w.Roles, wireTemplateRole{r.Name, r.Slug, perms})
	}
	if t.Environments != nil {
		w.Environments = make([]wireTemplateEnv, len(t.Environments))
		for i, e := range t.Environments {
			w.Environments[i] = wireTemplateEnv{e.Name, e.Slug, e.Position}
		}
	}
	if t.CreatedAt.IsZero() { // the built-in template is not stored
		w.CreatedAt, w.UpdatedAt = rfc3339(time.Now()), rfc3339(time.Now())
	}
	return w
}

func writeProjectTemplate(w http.ResponseWriter, t project.Template) error {
	return writeJSON(w, http.StatusOK, struct {
		ProjectTemplate wireProjectTemplate `json:"projectTemplate"`
	}{toWireProjectTemplate(t)})
}

type templateIn struct {
	Name                     *string         `json:"name"`
	Description              *string         `json:"description"`
	Type                     *string         `json:"type"`
	Roles                    json.RawMessage `json:"roles"`
	Environments             json.RawMessage `json:"environments"`
	Users                    json.RawMessage `json:"users"`
	Groups                   json.RawMessage `json:"groups"`
	Identities               json.RawMessage `json:"identities"`
	ProjectManagedIdentities json.RawMessage `json:"projectManagedIdentities"`
}

// change refuses users, groups and project-managed identities in a
// template: lockbox applies environments, roles and organization identities
// only (an empty list or null is accepted, as Terraform sends them).
func (in templateIn) change() (project.TemplateChange, error) {
	for name, raw := range map[string]json.RawMessage{"users": in.Users, "groups": in.Groups,
		"projectManagedIdentities": in.ProjectManagedIdentities} {
		if s := strings.TrimSpace(string(raw)); s != "" && s != "null" && s != "[]" {
			var list []json.RawMessage
			if err := json.Unmarshal(raw, &list); err != nil || len(list) > 0 {
				return project.TemplateChange{}, field(name, "Project templates with %s are not supported; templates hold environments, roles and identities", name)
			}
		}
	}
	return project.TemplateChange{Name: in.Name, Description: in.Description, Type: in.Type, Roles: in.Roles, Environments: in.Environments,
		Identities: in.Identities}, nil
}

func (s *Server) templateCreate(w http.ResponseWriter, r *http.Request) error {
	var in templateIn
	if err := s.decode(r, &in); err != nil {
		return err
	}
	c, err := in.change()
	if err != nil {
		return err
	}
	t, err := s.svc.Templates.Create(r.Context(), actorFrom(r.Context()), c)
	if err != nil {
		return err
	}
	return writeProjectTemplate(w, t)
}

func (s *Server) templateList(w http.ResponseWriter, r *http.Request) error {
	list, err := s.svc.Templates.List(r.Context(), actorFrom(r.Context()), query(r, "type"))
	if err != nil {
		return err
	}
	out := make([]wireProjectTemplate, len(list))
	for i, t := range list {
		out[i] = toWireProjectTemplate(t)
	}
	return writeJSON(w, http.StatusOK, struct {
		ProjectTemplates []wireProjectTemplate `json:"projectTemplates"`
	}{out})
}

func (s *Server) templateGet(w http.ResponseWriter, r *http.Request) error {
	t, err := s.svc.Templates.Get(r.Context(), actorFrom(r.Context()), r.PathValue("templateId"))
	if err != nil {
		return err
	}
	return writeProjectTemplate(w, t)
}

func (s *Server) templateUpdate(w http.ResponseWriter, r *http.Request) error {
	var in templateIn
	if err := s.decode(r, &in); err != nil {
		return err
	}
	in.Type = nil // a template's type is fixed (Terraform sends it back unchanged)
	c, err := in.change()
	if err != nil {
		return err
	}
	t, err := s.svc.Templates.Update(r.Context(), actorFrom(r.Context()), r.PathValue("templateId"), c)
	if err != nil {
		return err
	}
	return writeProjectTemplate(w, t)
}

func (s *Server) templateDelete(w http.ResponseWriter, r *http.Request) error {
	t, err := s.svc.Templates.Delete(r.Context(), actorFrom(r.Context()), r.PathValue("templateId"))
	if err != nil {
		return err
	}
	return writeProjectTemplate(w, t)
}
