package api

import (
	"context"
	"encoding/json"
	"net/http"

	"github.com/lockbox-dev/lockbox/internal/authz"
	"github.com/lockbox-dev/lockbox/internal/errs"
	"github.com/lockbox-dev/lockbox/internal/project"
)

// projectRoutes serves organizations' projects, environments and folders.
func (s *Server) projectRoutes(m *routeMux) {
	m.Handle("POST /api/v1/projects", s.authed(s.projectCreate))
	m.Handle("POST /api/v2/workspace", s.authed(s.projectCreate))
	m.Handle("GET /api/v1/projects", s.authed(s.projectList))
	m.Handle("GET /api/v1/workspace", s.authed(s.projectListWorkspaces))
	m.Handle("GET /api/v1/projects/{projectId}", s.authed(s.projectGet))
	m.Handle("GET /api/v1/workspace/{projectId}", s.authed(s.workspaceGet))
	// "/api/v1/projects/slug/{slug}" and "/api/v1/projects/{projectId}/<list>"
	// overlap, which ServeMux rejects; one route serves both (projectSubGet).
	m.Handle("GET /api/v1/projects/{projectId}/{sub}", s.authed(s.projectSubGet))
	m.HandleSub(s.projectLists, "GET /api/v1/projects/{projectId}/environments", s.envList)
	// Likewise "/api/v1/workspace/environments/{envId}" and "/api/v1/workspace/{projectId}/<list>".
	m.Handle("GET /api/v1/workspace/{projectId}/{sub}", s.authed(s.workspaceSubGet))
	m.HandleSub(s.workspaceLists, "GET /api/v1/workspace/{projectId}/environments", s.envList)
	m.Handle("GET /api/v1/workspace/environments/{envId}", s.authed(s.envGetByID))
	m.Handle("GET /api/v1/projects/{projectId}/environments/slug/{slug}", s.authed(s.envGetBySlug))
	m.Handle("GET /api/v2/workspace/{slug}", s.authed(s.projectGetBySlug))
	m.Handle("PATCH /api/v1/projects/{projectId}", s.authed(s.projectUpdate))
	m.Handle("PATCH /api/v2/workspace/{slug}", s.authed(s.projectUpdateBySlug))
	m.Handle("DELETE /api/v1/projects/{projectId}", s.authed(s.projectDelete))
	m.Handle("DELETE /api/v2/workspace/{slug}", s.authed(s.projectDeleteBySlug))
	m.Handle("PATCH /api/v1/workspace/{projectId}", s.authed(s.workspaceUpdate))
	m.Handle("DELETE /api/v1/workspace/{projectId}", s.authed(s.workspaceDelete))
	m.Handle("PUT /api/v1/workspace/{projectSlug}/audit-logs-retention", s.authed(s.projectAuditLogsRetention))
	m.Handle("PUT /api/v1/workspace/{projectSlug}/version-limit", s.authed(s.projectVersionLimit))

	for _, base := range []string{"/api/v1/projects/{projectId}/environments", "/api/v1/workspace/{projectId}/environments"} {
		m.Handle("POST "+base, s.authed(s.envCreate))
		m.Handle("GET "+base+"/{envId}", s.authed(s.envGet))
		m.Handle("PATCH "+base+"/{envId}", s.authed(s.envUpdate))
		m.Handle("DELETE "+base+"/{envId}", s.authed(s.envDelete))
	}

	for _, base := range []string{"/api/v1/folders", "/api/v2/folders"} {
		m.Handle("GET "+base, s.authed(s.folderList))
		m.Handle("POST "+base, s.authed(s.folderCreate))
		m.Handle("GET "+base+"/{folderId}", s.authed(s.folderGet))
		m.Handle("PATCH "+base+"/{folderId}", s.authed(s.folderUpdate))
		m.Handle("DELETE "+base+"/{folderId}", s.authed(s.folderDelete))
	}
}

type wireEnvRef struct {
	ID       string `json:"id"`
	Name     string `json:"name"`
	Slug     string `json:"slug"`
	Position int    `json:"position"`
}

type wireProject struct {
	ID                     string       `json:"id"`
	LegacyID               string       `json:"_id"`
	Name                   string       `json:"name"`
	Slug                   string       `json:"slug"`
	Description            string       `json:"description"`
	Type                   string       `json:"type"`
	OrgID                  string       `json:"orgId"`
	Version                int          `json:"version"`
	AutoCapitalization     bool         `json:"autoCapitalization"`
	HasDeleteProtection    bool         `json:"hasDeleteProtection"`
	KmsSecretManagerKeyID  *string      `json:"kmsSecretManagerKeyId"`
	AuditLogsRetentionDays *int         `json:"auditLogsRetentionDays"`
	PitVersionLimit        int          `json:"pitVersionLimit"`
	Environments           []wireEnvRef `json:"environments"`
	CreatedAt              string       `json:"createdAt"`
	UpdatedAt              string       `json:"updatedAt"`
}

func toWireProject(p project.Project) wireProject {
	envs := make([]wireEnvRef, len(p.Environments))
	for i, e := range p.Environments {
		envs[i] = wireEnvRef{e.ID, e.Name, e.Slug, e.Position}
	}
	return wireProject{ID: p.ID, LegacyID: p.ID, Name: p.Name, Slug: p.Slug, Description: p.Description, Type: p.Type,
		OrgID: p.OrgID, Version: p.Version, AutoCapitalization: p.AutoCapitalization, HasDeleteProtection: p.HasDeleteProtection,
		AuditLogsRetentionDays: retentionDays(p), PitVersionLimit: p.PitVersionLimit, Environments: envs, CreatedAt: rfc3339(p.CreatedAt), UpdatedAt: rfc3339(p.UpdatedAt)}
}

// retentionDays is a project's audit log retention, null when unset.
func retentionDays(p project.Project) *int {
	if p.AuditLogsRetentionDays == 0 {
		return nil
	}
	d := p.AuditLogsRetentionDays
	return &d
}

type projectBody struct {
	Project wireProject `json:"project"`
}

func (s *Server) projectCreate(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		ProjectName             string `json:"projectName"`
		ProjectDescription      string `json:"projectDescription"`
		Slug                    string `json:"slug"`
		Type                    string `json:"type"`
		ShouldCreateDefaultEnvs *bool  `json:"shouldCreateDefaultEnvs"`
		HasDeleteProtection     bool   `json:"hasDeleteProtection"`
		Template                string `json:"template"`
	}
	if err := s.decode(r, &req); err != nil {
		return err
	}
	if req.ProjectName == "" {
		return field("projectName", "Required")
	}
	p, err := s.svc.Projects.CreateProject(r.Context(), actorFrom(r.Context()), project.NewProject{
		Name: req.ProjectName, Description: req.ProjectDescription, Slug: req.Slug, Type: req.Type,
		NoDefaultEnvs: req.ShouldCreateDefaultEnvs != nil && !*req.ShouldCreateDefaultEnvs, HasDeleteProtection: req.HasDeleteProtection,
		Template: req.Template})
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, projectBody{toWireProject(p)})
}

func (s *Server) projectsOut(r *http.Request) ([]wireProject, error) {
	ps, err := s.svc.Projects.List(r.Context(), actorFrom(r.Context()))
	if err != nil {
		return nil, err
	}
	out := make([]wireProject, len(ps))
	for i, p := range ps {
		out[i] = toWireProject(p)
	}
	return out, nil
}

func (s *Server) projectList(w http.ResponseWriter, r *http.Request) error {
	out, err := s.projectsOut(r)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, struct {
		Projects []wireProject `json:"projects"`
	}{out})
}

func (s *Server) projectListWorkspaces(w http.ResponseWriter, r *http.Request) error {
	out, err := s.projectsOut(r)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, struct {
		Workspaces []wireProject `json:"workspaces"`
	}{out})
}

func (s *Server) projectGet(w http.ResponseWriter, r *http.Request) error {
	p, err := s.svc.Projects.Get(r.Context(), actorFrom(r.Context()), r.PathValue("projectId"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, projectBody{toWireProject(p)})
}

func (s *Server) workspaceGet(w http.ResponseWriter, r *http.Request) error {
	p, err := s.svc.Projects.Get(r.Context(), actorFrom(r.Context()), r.PathValue("projectId"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, struct {
		Workspace wireProject `json:"workspace"`
	}{toWireProject(p)})
}

// projectSubGet serves GET /api/v1/projects/slug/{slug} and the list
// endpoints under a project registered in s.projectLists.
func (s *Server) projectSubGet(w http.ResponseWriter, r *http.Request) error {
	if r.PathValue("projectId") == "slug" {
		r.SetPathValue("slug", r.PathValue("sub"))
		return s.projectGetBySlug(w, r)
	}
	if h, ok := s.projectLists[r.PathValue("sub")]; ok {
		return h(w, r)
	}
	return errs.NotFoundf("Route GET:%s not found", r.URL.Path)
}

// workspaceSubGet serves the list endpoints under a project registered in
// s.workspaceLists.
func (s *Server) workspaceSubGet(w http.ResponseWriter, r *http.Request) error {
	if h, ok := s.workspaceLists[r.PathValue("sub")]; ok {
		return h(w, r)
	}
	return errs.NotFoundf("Route GET:%s not found", r.URL.Path)
}

// projectGetBySlug answers with the project object itself, not wrapped, as Infisical does.
func (s *Server) projectGetBySlug(w http.ResponseWriter, r *http.Request) error {
	p, err := s.svc.Projects.GetBySlug(r.Context(), actorFrom(r.Context()), r.PathValue("slug"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, toWireProject(p))
}

type projectUpdateRequest struct {
	Name                *string `json:"name"`
	Description         *string `json:"description"`
	Slug                *string `json:"slug"`
	AutoCapitalization  *bool   `json:"autoCapitalization"`
	HasDeleteProtection *bool   `json:"hasDeleteProtection"`
}

func (q projectUpdateRequest) update() project.ProjectUpdate {
	// Empty strings are "absent" (Terraform sends every field).
	blank := func(p *string) *string {
		if p == nil || *p == "" {
			return nil
		}
		return p
	}
	return project.ProjectUpdate{Name: blank(q.Name), Description: q.Description, Slug: blank(q.Slug),
		AutoCapitalization: q.AutoCapitalization, HasDeleteProtection: q.HasDeleteProtection}
}

func (s *Server) updateProject(w http.ResponseWriter, r *http.Request, id string, wrapWorkspace bool) error {
	var req projectUpdateRequest
	if err := s.decode(r, &req); err != nil {
		return err
	}
	p, err := s.svc.Projects.Update(r.Context(), actorFrom(r.Context()), id, req.update())
	if err != nil {
		return err
	}
	if wrapWorkspace {
		return writeJSON(w, http.StatusOK, struct {
			Message   string      `json:"message"`
			Workspace wireProject `json:"workspace"`
		}{"Successfully updated project", toWireProject(p)})
	}
	return writeJSON(w, http.StatusOK, projectBody{toWireProject(p)})
}

func (s *Server) projectUpdate(w http.ResponseWriter, r *http.Request) error {
	return s.updateProject(w, r, r.PathValue("projectId"), false)
}

func (s *Server) projectUpdateBySlug(w http.ResponseWriter, r *http.Request) error {
	id, err := s.svc.Projects.IDBySlug(r.Context(), actorFrom(r.Context()), r.PathValue("slug"))
	if err != nil {
		return err
	}
	return s.updateProject(w, r, id, true)
}

func (s *Server) projectDelete(w http.ResponseWriter, r *http.Request) error {
	p, err := s.svc.Projects.Delete(r.Context(), actorFrom(r.Context()), r.PathValue("projectId"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, projectBody{toWireProject(p)})
}

// workspaceUpdate is PATCH /api/v1/workspace/{projectId}: Infisical's
// by-id update, answered as {message, workspace}.
func (s *Server) workspaceUpdate(w http.ResponseWriter, r *http.Request) error {
	return s.updateProject(w, r, r.PathValue("projectId"), true)
}

// workspaceDelete is DELETE /api/v1/workspace/{projectId}, answered as {workspace}.
func (s *Server) workspaceDelete(w http.ResponseWriter, r *http.Request) error {
	p, err := s.svc.Projects.Delete(r.Context(), actorFrom(r.Context()), r.PathValue("projectId"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, struct {
		Workspace wireProject `json:"workspace"`
	}{toWireProject(p)})
}

// projectAuditLogsRetention stores the project's audit log retention,
// answered as {message, workspace}.
func (s *Server) projectAuditLogsRetention(w http.ResponseWriter, r *http.Request) error {
	return s.projectNumber(w, r, "auditLogsRetentionDays", "Successfully updated project's audit logs retention period",
		s.svc.Projects.SetAuditLogsRetention)
}

// projectVersionLimit sets how many versions of each secret the project
// keeps, answered as {message, workspace}.
func (s *Server) projectVersionLimit(w http.ResponseWriter, r *http.Request) error {
	return s.projectNumber(w, r, "pitVersionLimit", "Successfully changed workspace version limit", s.svc.Projects.SetVersionLimit)
}

// projectNumber serves a PUT of one number of the project named by slug,
// {name: n}, set by set, answered as {message, workspace}.
func (s *Server) projectNumber(w http.ResponseWriter, r *http.Request, name, message string,
	set func(ctx context.Context, actor authz.Actor, slug string, n int) (project.Project, error)) error {
	var req map[string]json.RawMessage
	if err := s.decode(r, &req); err != nil {
		return err
	}
	var n *int
	if raw, ok := req[name]; ok {
		if err := json.Unmarshal(raw, &n); err != nil {
			return field(name, "Expected number")
		}
	}
	if n == nil {
		return field(name, "Required")
	}
	p, err := set(r.Context(), actorFrom(r.Context()), r.PathValue("projectSlug"), *n)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, struct {
		Message   string      `json:"message"`
		Workspace wireProject `json:"workspace"`
	}{message, toWireProject(p)})
}

func (s *Server) projectDeleteBySlug(w http.ResponseWriter, r *http.Request) error {
	id, err := s.svc.Projects.IDBySlug(r.Context(), actorFrom(r.Context()), r.PathValue("slug"))
	if err != nil {
		return err
	}
	p, err := s.svc.Projects.Delete(r.Context(), actorFrom(r.Context()), id)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, struct {
		Workspace wireProject `json:"workspace"`
	}{toWireProject(p)})
}

type wireEnvironment struct {
	ID        string `json:"id"`
	Name      string `json:"name"`
	Slug      string `json:"slug"`
	Position  int    `json:"position"`
	ProjectID string `json:"projectId"`
	CreatedAt string `json:"createdAt"`
	UpdatedAt string `json:"updatedAt"`
}

func toWireEnv(e project.Environment) wireEnvironment {
	return wireEnvironment{ID: e.ID, Name: e.Name, Slug: e.Slug, Position: e.Position, ProjectID: e.ProjectID,
		CreatedAt: rfc3339(e.CreatedAt), UpdatedAt: rfc3339(e.UpdatedAt)}
}

func writeEnvChange(w http.ResponseWriter, msg string, e project.Environment) error {
	return writeJSON(w, http.StatusOK, struct {
		Message     string          `json:"message"`
		ProjectID   string          `json:"projectId"`
		Workspace   string          `json:"workspace"`
		Environment wireEnvironment `json:"environment"`
	}{msg, e.ProjectID, e.ProjectID, toWireEnv(e)})
}

type envRequest struct {
	Name     *string `json:"name"`
	Slug     *string `json:"slug"`
	Position *int    `json:"position"`
}

func (q envRequest) change() project.EnvironmentChange {
	blank := func(p *string) *string {
		if p == nil || *p == "" {
			return nil
		}
		return p
	}
	pos := q.Position
	if pos != nil && *pos == 0 {
		pos = nil
	}
	return project.EnvironmentChange{Name: blank(q.Name), Slug: blank(q.Slug), Position: pos}
}

func (s *Server) envCreate(w http.ResponseWriter, r *http.Request) error {
	var req envRequest
	if err := s.decode(r, &req); err != nil {
		return err
	}
	e, err := s.svc.Projects.CreateEnvironment(r.Context(), actorFrom(r.Context()), r.PathValue("projectId"), req.change())
	if err != nil {
		return err
	}
	return writeEnvChange(w, "Successfully created new environment", e)
}

func (s *Server) envList(w http.ResponseWriter, r *http.Request) error {
	envs, err := s.svc.Projects.Environments(r.Context(), actorFrom(r.Context()), r.PathValue("projectId"))
	if err != nil {
		return err
	}
	out := make([]wireEnvironment, len(envs))
	for i, e := range envs {
		out[i] = toWireEnv(e)
	}
	return writeJSON(w, http.StatusOK, struct {
		Environments []wireEnvironment `json:"environments"`
	}{out})
}

func (s *Server) envGet(w http.ResponseWriter, r *http.Request) error {
	e, err := s.svc.Projects.GetEnvironment(r.Context(), actorFrom(r.Context()), r.PathValue("projectId"), r.PathValue("envId"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, struct {
		Environment wireEnvironment `json:"environment"`
	}{toWireEnv(e)})
}

func (s *Server) envUpdate(w http.ResponseWriter, r *http.Request) error {
	var req envRequest
	if err := s.decode(r, &req); err != nil {
		return err
	}
	e, err := s.svc.Projects.UpdateEnvironment(r.Context(), actorFrom(r.Context()), r.PathValue("projectId"), r.PathValue("envId"), req.change())
	if err != nil {
		return err
	}
	return writeEnvChange(w, "Successfully update environment", e)
}

func (s *Server) envDelete(w http.ResponseWriter, r *http.Request) error {
	e, err := s.svc.Projects.DeleteEnvironment(r.Context(), actorFrom(r.Context()), r.PathValue("projectId"), r.PathValue("envId"))
	if err != nil {
		return err
	}
	return writeEnvChange(w, "Successfully deleted environment", e)
}

func (s *Server) envGetByID(w http.ResponseWriter, r *http.Request) error {
	e, err := s.svc.Projects.EnvironmentByID(r.Context(), actorFrom(r.Context()), r.PathValue("envId"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, struct {
		Environment wireEnvironment `json:"environment"`
	}{toWireEnv(e)})
}

// envGetBySlug answers with the environment itself, which Terraform reads,
// and the same object under "environment".
func (s *Server) envGetBySlug(w http.ResponseWriter, r *http.Request) error {
	e, err := s.svc.Projects.EnvironmentBySlug(r.Context(), actorFrom(r.Context()), r.PathValue("projectId"), r.PathValue("slug"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, struct {
		wireEnvironment
		Environment wireEnvironment `json:"environment"`
	}{toWireEnv(e), toWireEnv(e)})
}
