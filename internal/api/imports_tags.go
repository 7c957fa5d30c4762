package api

import (
	"net/http"
	"strings"

	"github.com/lockbox-dev/lockbox/internal/secret"
)

// importTagRoutes serves secret imports and project tags.
func (s *Server) importTagRoutes(m *routeMux) {
	for _, base := range []string{"/api/v1/secret-imports", "/api/v2/secret-imports"} {
		m.Handle("POST "+base, s.authed(s.importCreate))
		m.Handle("GET "+base, s.authed(s.importList))
		m.Handle("GET "+base+"/{importId}", s.authed(s.importGet))
		m.Handle("PATCH "+base+"/{importId}", s.authed(s.importUpdate))
		m.Handle("DELETE "+base+"/{importId}", s.authed(s.importDelete))
	}
	m.HandleSub(s.projectLists, "GET /api/v1/projects/{projectId}/tags", s.tagList)
	m.HandleSub(s.workspaceLists, "GET /api/v1/workspace/{projectId}/tags", s.tagList)
	for _, base := range []string{"/api/v1/projects/{projectId}/tags", "/api/v1/workspace/{projectId}/tags"} {
		m.Handle("POST "+base, s.authed(s.tagCreate))
		m.Handle("GET "+base+"/{tagId}", s.authed(s.tagGet))
		m.Handle("GET "+base+"/slug/{tagSlug}", s.authed(s.tagGetBySlug))
		m.Handle("PATCH "+base+"/{tagId}", s.authed(s.tagUpdate))
		m.Handle("DELETE "+base+"/{tagId}", s.authed(s.tagDelete))
	}
}

type wireImportEnv struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	Slug string `json:"slug"`
}

type wireSecretImport struct {
	ID            string        `json:"id"`
	Version       int           `json:"version"`
	ImportPath    string        `json:"importPath"`
	ImportEnv     wireImportEnv `json:"importEnv"`
	Position      int           `json:"position"`
	FolderID      string        `json:"folderId"`
	IsReplication bool          `json:"isReplication"`
	CreatedAt     string        `json:"createdAt"`
	UpdatedAt     string        `json:"updatedAt"`
}

func toWireImport(im secret.Import) wireSecretImport {
	return wireSecretImport{ID: im.ID, Version: im.Version, ImportPath: im.Path, ImportEnv: wireImportEnv{im.EnvID, im.EnvName, im.EnvSlug},
		Position: im.Position, FolderID: im.FolderID, CreatedAt: rfc3339(im.CreatedAt), UpdatedAt: rfc3339(im.UpdatedAt)}
}

type importBody struct {
	WorkspaceID string `json:"workspaceId"`
	ProjectID   string `json:"projectId"`
	Environment string `json:"environment"`
	Path        string `json:"path"`
	Import      struct {
		Environment string `json:"environment"`
		Path        string `json:"path"`
		Position    int    `json:"position"`
	} `json:"import"`
}

func (b importBody) scope() secret.Scope {
	return secret.Scope{ProjectID: first(b.WorkspaceID, b.ProjectID), Env: b.Environment, Path: first(b.Path, "/")}
}

func writeImport(w http.ResponseWriter, msg string, im secret.Import) error {
	return writeJSON(w, http.StatusOK, struct {
		Message      string           `json:"message"`
		SecretImport wireSecretImport `json:"secretImport"`
	}{msg, toWireImport(im)})
}

func (s *Server) importCreate(w http.ResponseWriter, r *http.Request) error {
	var req importBody
	if err := s.decode(r, &req); err != nil {
		return err
	}
	im, err := s.svc.Secrets.CreateImport(r.Context(), actorFrom(r.Context()), req.scope(),
		secret.Target{Env: req.Import.Environment, Path: first(req.Import.Path, "/")})
	if err != nil {
		return err
	}
	return writeImport(w, "Successfully created secret import", im)
}

func (s *Server) importList(w http.ResponseWriter, r *http.Request) error {
	sc := secret.Scope{ProjectID: query(r, "workspaceId", "projectId"), Env: query(r, "environment"), Path: first(query(r, "path"), "/")}
	list, err := s.svc.Secrets.ListImports(r.Context(), actorFrom(r.Context()), sc)
	if err != nil {
		return err
	}
	out := make([]wireSecretImport, len(list))
	for i, im := range list {
		out[i] = toWireImport(im)
	}
	return writeJSON(w, http.StatusOK, struct {
		Message       string             `json:"message"`
		SecretImports []wireSecretImport `json:"secretImports"`
	}{"Successfully fetched secret imports", out})
}

// wireImportDetail is an import read by id: Terraform reads projectId,
// secretPath and environment (where the import lives) from it.
type wireImportDetail struct {
	wireSecretImport
	ProjectID   string        `json:"projectId"`
	SecretPath  string        `json:"secretPath"`
	Environment wireImportEnv `json:"environment"`
}

func (s *Server) importGet(w http.ResponseWriter, r *http.Request) error {
	loc, err := s.svc.Secrets.GetImport(r.Context(), actorFrom(r.Context()), r.PathValue("importId"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, struct {
		SecretImport wireImportDetail `json:"secretImport"`
	}{wireImportDetail{toWireImport(loc.Import), loc.Env.ProjectID, loc.Folder.Path, wireImportEnv{loc.Env.ID, loc.Env.Name, loc.Env.Slug}}})
}

func (s *Server) importUpdate(w http.ResponseWriter, r *http.Request) error {
	var req importBody
	if err := s.decode(r, &req); err != nil {
		return err
	}
	im, err := s.svc.Secrets.UpdateImport(r.Context(), actorFrom(r.Context()), req.scope(), r.PathValue("importId"),
		secret.ImportChange{Env: req.Import.Environment, Path: req.Import.Path, Position: req.Import.Position})
	if err != nil {
		return err
	}
	return writeImport(w, "Successfully updated secret import", im)
}

func (s *Server) importDelete(w http.ResponseWriter, r *http.Request) error {
	var req importBody
	if err := s.decode(r, &req); err != nil {
		return err
	}
	im, err := s.svc.Secrets.DeleteImport(r.Context(), actorFrom(r.Context()), req.scope(), r.PathValue("importId"))
	if err != nil {
		return err
	}
	return writeImport(w, "Successfully deleted secret import", im)
}

type wireTag struct {
	ID                 string `json:"id"`
	Slug               string `json:"slug"`
	Name               string `json:"name"`
	Color              string `json:"color"`
	ProjectID          string `json:"projectId"`
	CreatedBy          string `json:"createdBy"`
	CreatedByActorType string `json:"createdByActorType"`
	CreatedAt          string `json:"createdAt"`
	UpdatedAt          string `json:"updatedAt"`
}

func toWireTag(t secret.Tag) wireTag {
	return wireTag{ID: t.ID, Slug: t.Slug, Name: t.Name, Color: t.Color, ProjectID: t.ProjectID, CreatedBy: t.CreatedBy,
		CreatedByActorType: t.CreatedByActorType, CreatedAt: rfc3339(t.CreatedAt), UpdatedAt: rfc3339(t.UpdatedAt)}
}

func toWireTags(ts []secret.Tag) []wireTag {
	out := make([]wireTag, len(ts))
	for i, t := range ts {
		out[i] = toWireTag(t)
	}
	return out
}

// legacyTagKeys reports a /workspace/ tag route: Infisical wraps its answers
// in workspaceTag and workspaceTags, which Terraform reads; lockbox sends the
// /projects/ keys (tag, tags) too.
func legacyTagKeys(r *http.Request) bool { return strings.HasPrefix(r.URL.Path, "/api/v1/workspace/") }

func writeTag(w http.ResponseWriter, r *http.Request, t secret.Tag) error {
	if legacyTagKeys(r) {
		return writeJSON(w, http.StatusOK, struct {
			Tag          wireTag `json:"tag"`
			WorkspaceTag wireTag `json:"workspaceTag"`
		}{toWireTag(t), toWireTag(t)})
	}
	return writeJSON(w, http.StatusOK, struct {
		Tag wireTag `json:"tag"`
	}{toWireTag(t)})
}

type tagBody struct {
	Slug  *string `json:"slug"`
	Name  *string `json:"name"`
	Color *string `json:"color"`
}

func (b tagBody) change() secret.TagChange {
	c := secret.TagChange{Slug: b.Slug, Name: b.Name, Color: b.Color}
	if c.Slug != nil && *c.Slug == "" {
		c.Slug = nil
	}
	return c
}

func (s *Server) tagCreate(w http.ResponseWriter, r *http.Request) error {
	var req tagBody
	if err := s.decode(r, &req); err != nil {
		return err
	}
	t, err := s.svc.Secrets.CreateTag(r.Context(), actorFrom(r.Context()), r.PathValue("projectId"), req.change())
	if err != nil {
		return err
	}
	return writeTag(w, r, t)
}

func (s *Server) tagList(w http.ResponseWriter, r *http.Request) error {
	list, err := s.svc.Secrets.Tags(r.Context(), actorFrom(r.Context()), r.PathValue("projectId"))
	if err != nil {
		return err
	}
	if legacyTagKeys(r) {
		return writeJSON(w, http.StatusOK, struct {
			Tags          []wireTag `json:"tags"`
			WorkspaceTags []wireTag `json:"workspaceTags"`
		}{toWireTags(list), toWireTags(list)})
	}
	return writeJSON(w, http.StatusOK, struct {
		Tags []wireTag `json:"tags"`
	}{toWireTags(list)})
}

func (s *Server) tagGet(w http.ResponseWriter, r *http.Request) error {
	t, err := s.svc.Secrets.Tag(r.Context(), actorFrom(r.Context()), r.PathValue("projectId"), r.PathValue("tagId"), false)
	if err != nil {
		return err
	}
	return writeTag(w, r, t)
}

func (s *Server) tagGetBySlug(w http.ResponseWriter, r *http.Request) error {
	t, err := s.svc.Secrets.Tag(r.Context(), actorFrom(r.Context()), r.PathValue("projectId"), r.PathValue("tagSlug"), true)
	if err != nil {
		return err
	}
	return writeTag(w, r, t)
}

func (s *Server) tagUpdate(w http.ResponseWriter, r *http.Request) error {
	var req tagBody
	if err := s.decode(r, &req); err != nil {
		return err
	}
	t, err := s.svc.Secrets.UpdateTag(r.Context(), actorFrom(r.Context()), r.PathValue("projectId"), r.PathValue("tagId"), req.change())
	if err != nil {
		return err
	}
	return writeTag(w, r, t)
}

func (s *Server) tagDelete(w http.ResponseWriter, r *http.Request) error {
	t, err := s.svc.Secrets.DeleteTag(r.Context(), actorFrom(r.Context()), r.PathValue("projectId"), r.PathValue("tagId"))
	if err != nil {
		return err
	}
	return writeTag(w, r, t)
}
