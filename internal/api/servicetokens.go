package api

import (
	"net/http"
	"slices"

	"github.com/lockbox-dev/lockbox/internal/authz"
	"github.com/lockbox-dev/lockbox/internal/identity"
)

// serviceTokenRoutes serves Infisical's legacy service tokens.
func (s *Server) serviceTokenRoutes(m *routeMux) {
	m.Handle("GET /api/v2/service-token", s.authed(s.serviceTokenSelf))
	m.Handle("POST /api/v2/service-token", s.authed(s.serviceTokenCreate))
	m.Handle("DELETE /api/v2/service-token/{serviceTokenId}", s.authed(s.serviceTokenDelete))
	m.HandleSub(s.workspaceLists, "GET /api/v1/workspace/{projectId}/service-token-data", s.serviceTokenList)
}

type wireTokenScope struct {
	Environment string `json:"environment"`
	SecretPath  string `json:"secretPath"`
}

// wireServiceToken is Infisical's sanitized service token: no hash, no key material.
type wireServiceToken struct {
	ID                     string           `json:"id"`
	Name                   string           `json:"name"`
	Scopes                 []wireTokenScope `json:"scopes"`
	Permissions            []string         `json:"permissions"`
	LastUsed               *string          `json:"lastUsed"`
	ExpiresAt              *string          `json:"expiresAt"`
	CreatedBy              string           `json:"createdBy"`
	ProjectID              string           `json:"projectId"`
	ExpiryNotificationSent bool             `json:"expiryNotificationSent"`
	CreatedAt              string           `json:"createdAt"`
	UpdatedAt              string           `json:"updatedAt"`
}

func toWireServiceToken(t identity.ServiceToken) wireServiceToken {
	w := wireServiceToken{ID: t.ID, Name: t.Name, Scopes: make([]wireTokenScope, len(t.Scopes)),
		Permissions: slices.Clone(t.Permissions), CreatedBy: t.CreatedBy, ProjectID: t.ProjectID,
		CreatedAt: rfc3339(t.CreatedAt), UpdatedAt: rfc3339(t.UpdatedAt)}
	if w.Permissions == nil {
		w.Permissions = []string{}
	}
	for i, sc := range t.Scopes {
		w.Scopes[i] = wireTokenScope{sc.Environment, sc.SecretPath}
	}
	if t.LastUsed != nil {
		v := rfc3339(*t.LastUsed)
		w.LastUsed = &v
	}
	if t.ExpiresAt != nil {
		v := rfc3339(*t.ExpiresAt)
		w.ExpiresAt = &v
	}
	return w
}

type serviceTokenCreateBody struct {
	Name        string           `json:"name"`
	WorkspaceID string           `json:"workspaceId"`
	Scopes      []wireTokenScope `json:"scopes"`
	// EncryptedKey, IV and Tag belong to Infisical's retired end-to-end
	// scheme: accepted and ignored.
	EncryptedKey string   `json:"encryptedKey"`
	IV           string   `json:"iv"`
	Tag          string   `json:"tag"`
	ExpiresIn    *int64   `json:"expiresIn"`
	Permissions  []string `json:"permissions"`
}

func (s *Server) serviceTokenCreate(w http.ResponseWriter, r *http.Request) error {
	var req serviceTokenCreateBody
	if err := s.decode(r, &req); err != nil {
		return err
	}
	if req.WorkspaceID == "" {
		return field("workspaceId", "Required")
	}
	scopes := make([]authz.TokenScope, len(req.Scopes))
	for i, sc := range req.Scopes {
		scopes[i] = authz.TokenScope{Environment: sc.Environment, SecretPath: sc.SecretPath}
	}
	t, tok, err := s.svc.ServiceTokens.Create(r.Context(), actorFrom(r.Context()), identity.NewServiceToken{
		ProjectID: req.WorkspaceID, Name: req.Name, Scopes: scopes, ExpiresIn: req.ExpiresIn, Permissions: req.Permissions})
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, struct {
		ServiceToken     string           `json:"serviceToken"`
		ServiceTokenData wireServiceToken `json:"serviceTokenData"`
	}{tok, toWireServiceToken(t)})
}

// serviceTokenSelf answers the token's own record, with the legacy _id,
// workspace and user fields old clients read.
func (s *Server) serviceTokenSelf(w http.ResponseWriter, r *http.Request) error {
	t, err := s.svc.ServiceTokens.Self(r.Context(), actorFrom(r.Context()))
	if err != nil {
		return err
	}
	type wireUser struct {
		ID       string `json:"id"`
		LegacyID string `json:"_id"`
		V        int    `json:"__v"`
	}
	return writeJSON(w, http.StatusOK, struct {
		wireServiceToken
		LegacyID  string   `json:"_id"`
		V         int      `json:"__v"`
		Workspace string   `json:"workspace"`
		User      wireUser `json:"user"`
	}{toWireServiceToken(t), t.ID, 0, t.ProjectID, wireUser{t.CreatedBy, t.CreatedBy, 0}})
}

func (s *Server) serviceTokenDelete(w http.ResponseWriter, r *http.Request) error {
	t, err := s.svc.ServiceTokens.Delete(r.Context(), actorFrom(r.Context()), r.PathValue("serviceTokenId"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, struct {
		ServiceTokenData wireServiceToken `json:"serviceTokenData"`
	}{toWireServiceToken(t)})
}

func (s *Server) serviceTokenList(w http.ResponseWriter, r *http.Request) error {
	ts, err := s.svc.ServiceTokens.List(r.Context(), actorFrom(r.Context()), r.PathValue("projectId"))
	if err != nil {
		return err
	}
	out := make([]wireServiceToken, len(ts))
	for i, t := range ts {
		out[i] = toWireServiceToken(t)
	}
	return writeJSON(w, http.StatusOK, struct {
		ServiceTokenData []wireServiceToken `json:"serviceTokenData"`
	}{out})
}
