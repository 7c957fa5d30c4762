package api

import (
	"net/http"

	"github.com/lockbox-dev/lockbox/internal/project"
)

type wireFolder struct {
	ID          string  `json:"id"`
	Name        string  `json:"name"`
	Description string  `json:"description"`
	Version     int     `json:"version"`
	EnvID       string  `json:"envId"`
	ParentID    *string `json:"parentId"`
	IsReserved  bool    `json:"isReserved"`
	Path        string  `json:"path"`
	CreatedAt   string  `json:"createdAt"`
	UpdatedAt   string  `json:"updatedAt"`
}

func toWireFolder(f project.Folder) wireFolder {
	return wireFolder{ID: f.ID, Name: f.Name, Description: f.Description, Version: f.Version, EnvID: f.EnvID,
		ParentID: strPtr(f.ParentID), Path: f.Path, CreatedAt: rfc3339(f.CreatedAt), UpdatedAt: rfc3339(f.UpdatedAt)}
}

func writeFolder(w http.ResponseWriter, f project.Folder) error {
	return writeJSON(w, http.StatusOK, struct {
		Folder wireFolder `json:"folder"`
	}{toWireFolder(f)})
}

// folderBody is what clients send to folder routes; the CLI uses directory,
// the SDKs path, older clients projectId.
type folderBody struct {
	WorkspaceID string `json:"workspaceId"`
	ProjectID   string `json:"projectId"`
	Environment string `json:"environment"`
	Name        string `json:"name"`
	FolderName  string `json:"folderName"`
	Path        string `json:"path"`
	Directory   string `json:"directory"`
	Description string `json:"description"`
}

func (b folderBody) ref() project.FolderRef {
	return project.FolderRef{ProjectID: first(b.WorkspaceID, b.ProjectID), Env: b.Environment, Path: first(b.Path, b.Directory)}
}

func (s *Server) folderList(w http.ResponseWriter, r *http.Request) error {
	ref := project.FolderRef{ProjectID: query(r, "workspaceId", "projectId"), Env: query(r, "environment"),
		Path: query(r, "path", "directory", "secretPath")}
	fs, err := s.svc.Projects.ListFolders(r.Context(), actorFrom(r.Context()), ref)
	if err != nil {
		return err
	}
	out := make([]wireFolder, len(fs))
	for i, f := range fs {
		out[i] = toWireFolder(f)
	}
	return writeJSON(w, http.StatusOK, struct {
		Folders []wireFolder `json:"folders"`
	}{out})
}

func (s *Server) folderCreate(w http.ResponseWriter, r *http.Request) error {
	var req folderBody
	if err := s.decode(r, &req); err != nil {
		return err
	}
	f, err := s.svc.Projects.CreateFolder(r.Context(), actorFrom(r.Context()), req.ref(), first(req.Name, req.FolderName), req.Description)
	if err != nil {
		return err
	}
	return writeFolder(w, f)
}

func (s *Server) folderUpdate(w http.ResponseWriter, r *http.Request) error {
	var req folderBody
	if err := s.decode(r, &req); err != nil {
		return err
	}
	f, err := s.svc.Projects.UpdateFolder(r.Context(), actorFrom(r.Context()), req.ref(), r.PathValue("folderId"), req.Name, req.Description)
	if err != nil {
		return err
	}
	return writeFolder(w, f)
}

func (s *Server) folderDelete(w http.ResponseWriter, r *http.Request) error {
	var req folderBody
	if err := s.decode(r, &req); err != nil {
		return err
	}
	f, err := s.svc.Projects.DeleteFolder(r.Context(), actorFrom(r.Context()), req.ref(), r.PathValue("folderId"))
	if err != nil {
		return err
	}
	return writeFolder(w, f)
}

// wireFolderDetail is a folder read by id: Terraform reads projectId, path
// and the environment from it.
type wireFolderDetail struct {
	wireFolder
	ProjectID   string `json:"projectId"`
	Environment struct {
		EnvID   string `json:"envId"`
		EnvName string `json:"envName"`
		EnvSlug string `json:"envSlug"`
	} `json:"environment"`
}

func (s *Server) folderGet(w http.ResponseWriter, r *http.Request) error {
	f, env, err := s.svc.Projects.GetFolder(r.Context(), actorFrom(r.Context()), r.PathValue("folderId"))
	if err != nil {
		return err
	}
	d := wireFolderDetail{wireFolder: toWireFolder(f), ProjectID: env.ProjectID}
	d.Environment.EnvID, d.Environment.EnvName, d.Environment.EnvSlug = env.ID, env.Name, env.Slug
	return writeJSON(w, http.StatusOK, struct {
		Folder wireFolderDetail `json:"folder"`
	}{d})
}
