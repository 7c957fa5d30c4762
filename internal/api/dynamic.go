package api

import (
	"bytes"
	"encoding/json"
	"net/http"

	"github.com/lockbox-dev/lockbox/internal/dynamic"
	"github.com/lockbox-dev/lockbox/internal/dynamic/provider"
	"github.com/lockbox-dev/lockbox/internal/errs"
)

// dynamicRoutes serves dynamic secrets and their leases.
func (s *Server) dynamicRoutes(m *routeMux) {
	const base = "/api/v1/dynamic-secrets"
	m.Handle("POST "+base, s.authed(s.dynCreate))
	m.Handle("GET "+base, s.authed(s.dynList))
	m.Handle("GET "+base+"/{name}", s.authed(s.dynGet))
	m.Handle("PATCH "+base+"/{name}", s.authed(s.dynUpdate))
	m.Handle("DELETE "+base+"/{name}", s.authed(s.dynDelete))
	// GET {name}/leases and GET leases/{leaseId} overlap for ServeMux; one route serves both.
	m.Handle("GET "+base+"/{a}/{b}", s.authed(s.dynSubGet))
	m.Handle("POST "+base+"/leases", s.authed(s.leaseCreate))
	m.Handle("POST "+base+"/leases/{leaseId}/renew", s.authed(s.leaseRenew))
	m.Handle("DELETE "+base+"/leases/{leaseId}", s.authed(s.leaseDelete))
}

type wireDynamic struct {
	ID               string             `json:"id"`
	Name             string             `json:"name"`
	Version          int                `json:"version"`
	Type             string             `json:"type"`
	DefaultTTL       string             `json:"defaultTTL"`
	MaxTTL           *string            `json:"maxTTL"`
	FolderID         string             `json:"folderId"`
	Status           *string            `json:"status"`
	StatusDetails    *string            `json:"statusDetails"`
	UsernameTemplate *string            `json:"usernameTemplate"`
	Metadata         []dynamic.Metadata `json:"metadata"`
	Inputs           map[string]any     `json:"inputs,omitempty"`
	CreatedAt        string             `json:"createdAt"`
	UpdatedAt        string             `json:"updatedAt"`
}

// toWireDynamic renders a dynamic secret; withInputs adds its inputs, with
// every secret input (admin passwords) masked unless the caller may read the
// root credential (as Infisical does, so Terraform's comparison converges).
func toWireDynamic(sec dynamic.Secret, withInputs bool) wireDynamic {
	w := wireDynamic{ID: sec.ID, Name: sec.Name, Version: 1, Type: sec.Type, DefaultTTL: sec.DefaultTTL, MaxTTL: strPtr(sec.MaxTTL),
		FolderID: sec.FolderID, Status: strPtr(sec.Status), StatusDetails: strPtr(sec.StatusDetails),
		UsernameTemplate: strPtr(sec.UsernameTemplate), Metadata: sec.Metadata, CreatedAt: rfc3339(sec.CreatedAt), UpdatedAt: rfc3339(sec.UpdatedAt)}
	if w.Metadata == nil {
		w.Metadata = []dynamic.Metadata{}
	}
	if withInputs && len(sec.Inputs) > 0 {
		var in map[string]any
		if json.Unmarshal(sec.Inputs, &in) == nil {
			if reg, ok := provider.Lookup(sec.Type); ok && !sec.RootCredentialVisible {
				in = reg.Redact(in)
			}
			w.Inputs = in
		}
	}
	return w
}

type wireLease struct {
	ID               string          `json:"id"`
	Version          int             `json:"version"`
	ExternalEntityID string          `json:"externalEntityId"`
	ExpireAt         string          `json:"expireAt"`
	Status           string          `json:"status"`
	StatusDetails    *string         `json:"statusDetails"`
	DynamicSecretID  string          `json:"dynamicSecretId"`
	Config           json.RawMessage `json:"config"`
	CreatedAt        string          `json:"createdAt"`
	UpdatedAt        string          `json:"updatedAt"`
}

// toWireLease answers the lease's config as stored (a JSON object made
// valid JSON by the request that created it), not decoded: a listing of
// thousands of leases costs their bytes, not a tree of values each.
func toWireLease(l dynamic.Lease) wireLease {
	cfg := json.RawMessage(bytes.TrimSpace(l.Config))
	if len(cfg) == 0 || cfg[0] != '{' || !json.Valid(cfg) {
		cfg = json.RawMessage("{}")
	}
	return wireLease{ID: l.ID, Version: 1, ExternalEntityID: l.Username, ExpireAt: rfc3339(l.ExpireAt), Status: l.Status,
		StatusDetails: strPtr(l.StatusDetails), DynamicSecretID: l.DynamicSecretID, Config: cfg,
		CreatedAt: rfc3339(l.CreatedAt), UpdatedAt: rfc3339(l.UpdatedAt)}
}

// dynScope reads projectSlug, environmentSlug and path from the query or a body.
func dynScopeQuery(r *http.Request) dynamic.Scope {
	return dynamic.Scope{ProjectSlug: query(r, "projectSlug"), ProjectID: query(r, "projectId", "workspaceId"),
		Env: query(r, "environmentSlug", "environment"), Path: first(query(r, "path", "secretPath"), "/")}
}

type dynScopeBody struct {
	ProjectSlug     string `json:"projectSlug"`
	ProjectID       string `json:"projectId"`
	EnvironmentSlug string `json:"environmentSlug"`
	Path            string `json:"path"`
}

func (b dynScopeBody) scope() dynamic.Scope {
	return dynamic.Scope{ProjectSlug: b.ProjectSlug, ProjectID: b.ProjectID, Env: b.EnvironmentSlug, Path: first(b.Path, "/")}
}

func writeDynamic(w http.ResponseWriter, sec dynamic.Secret, withInputs bool) error {
	return writeJSON(w, http.StatusOK, struct {
		DynamicSecret wireDynamic `json:"dynamicSecret"`
	}{toWireDynamic(sec, withInputs)})
}

func (s *Server) dynCreate(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		dynScopeBody
		Provider struct {
			Type   string          `json:"type"`
			Inputs json.RawMessage `json:"inputs"`
		} `json:"provider"`
		Name             string             `json:"name"`
		DefaultTTL       string             `json:"defaultTTL"`
		MaxTTL           *string            `json:"maxTTL"`
		UsernameTemplate string             `json:"usernameTemplate"`
		Metadata         []dynamic.Metadata `json:"metadata"`
	}
	if err := s.decode(r, &req); err != nil {
		return err
	}
	if req.Name == "" {
		return field("name", "Required")
	}
	if req.DefaultTTL == "" {
		return field("defaultTTL", "Required")
	}
	if req.Provider.Type == "" || len(req.Provider.Inputs) == 0 {
		return field("provider", "provider.type and provider.inputs are required")
	}
	sec, err := s.svc.Dynamic.Create(r.Context(), actorFrom(r.Context()), req.scope(), dynamic.NewSecret{Name: req.Name,
		Type: req.Provider.Type, Inputs: req.Provider.Inputs, DefaultTTL: req.DefaultTTL, MaxTTL: deref(req.MaxTTL),
		UsernameTemplate: req.UsernameTemplate, Metadata: req.Metadata})
	if err != nil {
		return err
	}
	return writeDynamic(w, sec, true)
}

func (s *Server) dynList(w http.ResponseWriter, r *http.Request) error {
	list, err := s.svc.Dynamic.List(r.Context(), actorFrom(r.Context()), dynScopeQuery(r))
	if err != nil {
		return err
	}
	out := make([]wireDynamic, len(list))
	for i, sec := range list {
		out[i] = toWireDynamic(sec, false)
	}
	return writeJSON(w, http.StatusOK, struct {
		DynamicSecrets []wireDynamic `json:"dynamicSecrets"`
	}{out})
}

func (s *Server) dynGet(w http.ResponseWriter, r *http.Request) error {
	sec, err := s.svc.Dynamic.Get(r.Context(), actorFrom(r.Context()), dynScopeQuery(r), r.PathValue("name"))
	if err != nil {
		return err
	}
	return writeDynamic(w, sec, true)
}

func (s *Server) dynUpdate(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		dynScopeBody
		Data struct {
			Inputs           json.RawMessage     `json:"inputs"`
			DefaultTTL       *string             `json:"defaultTTL"`
			MaxTTL           *string             `json:"maxTTL"`
			NewName          *string             `json:"newName"`
			UsernameTemplate *string             `json:"usernameTemplate"`
			Metadata         *[]dynamic.Metadata `json:"metadata"`
		} `json:"data"`
	}
	if err := s.decode(r, &req); err != nil {
		return err
	}
	sec, err := s.svc.Dynamic.Update(r.Context(), actorFrom(r.Context()), req.scope(), r.PathValue("name"), dynamic.Change{
		Inputs: req.Data.Inputs, DefaultTTL: req.Data.DefaultTTL, MaxTTL: req.Data.MaxTTL, NewName: req.Data.NewName,
		UsernameTemplate: req.Data.UsernameTemplate, Metadata: req.Data.Metadata})
	if err != nil {
		return err
	}
	return writeDynamic(w, sec, true)
}

func (s *Server) dynDelete(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		dynScopeBody
		IsForced bool `json:"isForced"`
	}
	if err := s.decode(r, &req); err != nil {
		return err
	}
	sec, err := s.svc.Dynamic.Delete(r.Context(), actorFrom(r.Context()), req.scope(), r.PathValue("name"), req.IsForced)
	if err != nil {
		return err
	}
	return writeDynamic(w, sec, true)
}

func (s *Server) dynSubGet(w http.ResponseWriter, r *http.Request) error {
	switch a, b := r.PathValue("a"), r.PathValue("b"); {
	case a == "leases":
		r.SetPathValue("leaseId", b)
		return s.leaseGet(w, r)
	case b == "leases":
		r.SetPathValue("name", a)
		return s.leaseList(w, r)
	}
	return errs.NotFoundf("Route GET:%s not found", r.URL.Path)
}

func (s *Server) leaseCreate(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		dynScopeBody
		DynamicSecretName string          `json:"dynamicSecretName"`
		TTL               string          `json:"ttl"`
		Config            json.RawMessage `json:"config"`
	}
	if err := s.decode(r, &req); err != nil {
		return err
	}
	if req.DynamicSecretName == "" {
		return field("dynamicSecretName", "Required")
	}
	l, sec, err := s.svc.Dynamic.CreateLease(r.Context(), actorFrom(r.Context()), req.scope(), req.DynamicSecretName, req.TTL, req.Config)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, struct {
		Lease         wireLease      `json:"lease"`
		DynamicSecret wireDynamic    `json:"dynamicSecret"`
		Data          map[string]any `json:"data"`
	}{toWireLease(l), toWireDynamic(sec, false), l.Data})
}

func (s *Server) leaseGet(w http.ResponseWriter, r *http.Request) error {
	l, sec, err := s.svc.Dynamic.GetLease(r.Context(), actorFrom(r.Context()), dynScopeQuery(r), r.PathValue("leaseId"))
	if err != nil {
		return err
	}
	type leaseWithSecret struct {
		wireLease
		DynamicSecret wireDynamic `json:"dynamicSecret"`
	}
	return writeJSON(w, http.StatusOK, struct {
		Lease         leaseWithSecret `json:"lease"`
		DynamicSecret wireDynamic     `json:"dynamicSecret"`
	}{leaseWithSecret{toWireLease(l), toWireDynamic(sec, false)}, toWireDynamic(sec, false)})
}

func writeLease(w http.ResponseWriter, l dynamic.Lease) error {
	return writeJSON(w, http.StatusOK, struct {
		Lease wireLease `json:"lease"`
	}{toWireLease(l)})
}

func (s *Server) leaseRenew(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		dynScopeBody
		TTL string `json:"ttl"`
	}
	if err := s.decode(r, &req); err != nil {
		return err
	}
	l, err := s.svc.Dynamic.RenewLease(r.Context(), actorFrom(r.Context()), req.scope(), r.PathValue("leaseId"), req.TTL)
	if err != nil {
		return err
	}
	return writeLease(w, l)
}

func (s *Server) leaseDelete(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		dynScopeBody
		IsForced bool `json:"isForced"`
	}
	if err := s.decode(r, &req); err != nil {
		return err
	}
	l, err := s.svc.Dynamic.RevokeLease(r.Context(), actorFrom(r.Context()), req.scope(), r.PathValue("leaseId"), req.IsForced)
	if err != nil {
		return err
	}
	return writeLease(w, l)
}

func (s *Server) leaseList(w http.ResponseWriter, r *http.Request) error {
	list, err := s.svc.Dynamic.Leases(r.Context(), actorFrom(r.Context()), dynScopeQuery(r), r.PathValue("name"))
	if err != nil {
		return err
	}
	out := make([]wireLease, len(list))
	for i, l := range list {
		out[i] = toWireLease(l)
	}
	return writeJSON(w, http.StatusOK, struct {
		Leases []wireLease `json:"leases"`
	}{out})
}
