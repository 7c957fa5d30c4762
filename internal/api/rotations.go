package api

import (
	"encoding/json"
	"net/http"

	"github.com/lockbox-dev/lockbox/internal/appconn"
	"github.com/lockbox-dev/lockbox/internal/errs"
	"github.com/lockbox-dev/lockbox/internal/rotation"
)

// appConnRoutes serves Infisical's /api/v1/app-connections for postgres,
// mysql, ldap and redis.
func (s *Server) appConnRoutes(m *routeMux) {
	const base = "/api/v1/app-connections"
	m.Handle("GET "+base, s.authed(s.appConnListAll))
	m.Handle("GET "+base+"/options", s.authed(s.appConnOptions))
	m.Handle("GET "+base+"/{app}", s.authed(s.appConnList))
	m.Handle("GET "+base+"/{app}/available", s.authed(s.appConnAvailable))
	m.Handle("POST "+base+"/{app}", s.authed(s.appConnCreate))
	m.Handle("GET "+base+"/{app}/{connectionId}", s.authed(s.appConnGet))
	m.Handle("GET "+base+"/{app}/connection-name/{name}", s.authed(s.appConnGetByName))
	m.Handle("PATCH "+base+"/{app}/{connectionId}", s.authed(s.appConnUpdate))
	m.Handle("DELETE "+base+"/{app}/{connectionId}", s.authed(s.appConnDelete))
}

type wireAppConn struct {
	ID                           string              `json:"id"`
	Name                         string              `json:"name"`
	Description                  *string             `json:"description"`
	App                          string              `json:"app"`
	Method                       string              `json:"method"`
	Credentials                  appconn.Credentials `json:"credentials"`
	CredentialsHash              string              `json:"credentialsHash"`
	Version                      int                 `json:"version"`
	OrgID                        string              `json:"orgId"`
	ProjectID                    *string             `json:"projectId"`
	GatewayID                    *string             `json:"gatewayId"`
	IsPlatformManagedCredentials bool                `json:"isPlatformManagedCredentials"`
	RotationPrincipals           []string            `json:"rotationPrincipals"`
	CreatedAt                    string              `json:"createdAt"`
	UpdatedAt                    string              `json:"updatedAt"`
}

func toWireAppConn(c appconn.Connection) wireAppConn {
	var d *string
	if c.Description != "" {
		d = &c.Description
	}
	principals := c.RotationPrincipals
	if principals == nil {
		principals = []string{}
	}
	return wireAppConn{ID: c.ID, Name: c.Name, Description: d, App: c.App, Method: c.Method, Credentials: c.Credentials.Public(),
		CredentialsHash: c.CredentialsHash, Version: c.Version, OrgID: c.OrgID, RotationPrincipals: principals,
		CreatedAt: rfc3339(c.CreatedAt), UpdatedAt: rfc3339(c.UpdatedAt)}
}

func writeAppConn(w http.ResponseWriter, c appconn.Connection) error {
	return writeJSON(w, http.StatusOK, struct {
		AppConnection wireAppConn `json:"appConnection"`
	}{toWireAppConn(c)})
}

func writeAppConns(w http.ResponseWriter, cs []appconn.Connection) error {
	out := make([]wireAppConn, len(cs))
	for i, c := range cs {
		out[i] = toWireAppConn(c)
	}
	return writeJSON(w, http.StatusOK, struct {
		AppConnections []wireAppConn `json:"appConnections"`
	}{out})
}

func (s *Server) appConnListAll(w http.ResponseWriter, r *http.Request) error {
	cs, err := s.svc.AppConnections.List(r.Context(), actorFrom(r.Context()), "")
	if err != nil {
		return err
	}
	return writeAppConns(w, cs)
}

func (s *Server) appConnList(w http.ResponseWriter, r *http.Request) error {
	cs, err := s.svc.AppConnections.List(r.Context(), actorFrom(r.Context()), r.PathValue("app"))
	if err != nil {
		return err
	}
	return writeAppConns(w, cs)
}

func (s *Server) appConnOptions(w http.ResponseWriter, r *http.Request) error {
	type option struct {
		Name                       string   `json:"name"`
		App                        string   `json:"app"`
		Methods                    []string `json:"methods"`
		SupportsPlatformManagement bool     `json:"supportsPlatformManagement"`
		SupportsGateways           bool     `json:"supportsGateways"`
	}
	out := []option{}
	for _, o := range appconn.Options() {
		out = append(out, option{Name: o.Name, App: o.App, Methods: o.Methods})
	}
	return writeJSON(w, http.StatusOK, map[string]any{"appConnectionOptions": out})
}

// appConnAvailable answers Infisical's /{app}/available: the connections the
// caller may use, in its short form.
func (s *Server) appConnAvailable(w http.ResponseWriter, r *http.Request) error {
	cs, err := s.svc.AppConnections.Available(r.Context(), actorFrom(r.Context()), r.PathValue("app"))
	if err != nil {
		return err
	}
	type avail struct {
		App       string  `json:"app"`
		Name      string  `json:"name"`
		ID        string  `json:"id"`
		ProjectID *string `json:"projectId"`
		OrgID     string  `json:"orgId"`
	}
	out := make([]avail, len(cs))
	for i, c := range cs {
		out[i] = avail{App: c.App, Name: c.Name, ID: c.ID, OrgID: c.OrgID}
	}
	return writeJSON(w, http.StatusOK, map[string]any{"appConnections": out})
}

func (s *Server) appConnCreate(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		Name        string          `json:"name"`
		Description string          `json:"description"`
		Method      string          `json:"method"`
		Credentials json.RawMessage `json:"credentials"`
		// lockbox's own: see appconn.Connection.RotationPrincipals.
		RotationPrincipals []string `json:"rotationPrincipals"`
	}
	if err := s.decode(r, &req); err != nil {
		return err
	}
	c, err := s.svc.AppConnections.Create(r.Context(), actorFrom(r.Context()), appconn.New{App: r.PathValue("app"),
		Method: req.Method, Name: req.Name, Description: req.Description, Credentials: req.Credentials, RotationPrincipals: req.RotationPrincipals})
	if err != nil {
		return err
	}
	return writeAppConn(w, c)
}

func (s *Server) appConnGet(w http.ResponseWriter, r *http.Request) error {
	c, err := s.svc.AppConnections.Get(r.Context(), actorFrom(r.Context()), r.PathValue("app"), r.PathValue("connectionId"))
	if err != nil {
		return err
	}
	return writeAppConn(w, c)
}

func (s *Server) appConnGetByName(w http.ResponseWriter, r *http.Request) error {
	c, err := s.svc.AppConnections.GetByName(r.Context(), actorFrom(r.Context()), r.PathValue("app"), r.PathValue("name"))
	if err != nil {
		return err
	}
	return writeAppConn(w, c)
}

func (s *Server) appConnUpdate(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		Name        *string         `json:"name"`
		Description *string         `json:"description"`
		Credentials json.RawMessage `json:"credentials"`
		// Missing or null: kept; [] clears.
		RotationPrincipals *[]string `json:"rotationPrincipals"`
	}
	if err := s.decode(r, &req); err != nil {
		return err
	}
	c, err := s.svc.AppConnections.Update(r.Context(), actorFrom(r.Context()), r.PathValue("app"), r.PathValue("connectionId"),
		appconn.Update{Name: req.Name, Description: req.Description, Credentials: req.Credentials, RotationPrincipals: req.RotationPrincipals})
	if err != nil {
		return err
	}
	return writeAppConn(w, c)
}

func (s *Server) appConnDelete(w http.ResponseWriter, r *http.Request) error {
	c, err := s.svc.AppConnections.Delete(r.Context(), actorFrom(r.Context()), r.PathValue("app"), r.PathValue("connectionId"))
	if err != nil {
		return err
	}
	return writeAppConn(w, c)
}

// rotationRoutes serves Infisical's /api/v2/secret-rotations.
func (s *Server) rotationRoutes(m *routeMux) {
	const base = "/api/v2/secret-rotations"
	m.Handle("GET "+base, s.authed(s.rotationListAll))
	m.Handle("GET "+base+"/options", s.authed(s.rotationOptions))
	m.Handle("GET "+base+"/{type}", s.authed(s.rotationList))
	m.Handle("POST "+base+"/{type}", s.authed(s.rotationCreate))
	m.Handle("GET "+base+"/{type}/{rotationId}", s.authed(s.rotationGet))
	// GET rotation-name/{name} and GET {rotationId}/generated-credentials
	// overlap for ServeMux; one route serves both.
	m.Handle("GET "+base+"/{type}/{rotationId}/{sub}", s.authed(func(w http.ResponseWriter, r *http.Request) error {
		switch {
		case r.PathValue("rotationId") == "rotation-name":
			r.SetPathValue("name", r.PathValue("sub"))
			return s.rotationGetByName(w, r)
		case r.PathValue("sub") == "generated-credentials":
			return s.rotationCredentials(w, r)
		}
		return errs.NotFoundf("Route GET:%s not found", r.URL.Path)
	}))
	*m.patterns = append(*m.patterns, "GET "+base+"/{type}/rotation-name/{name}", "GET "+base+"/{type}/{rotationId}/generated-credentials")
	m.Handle("PATCH "+base+"/{type}/{rotationId}", s.authed(s.rotationUpdate))
	m.Handle("DELETE "+base+"/{type}/{rotationId}", s.authed(s.rotationDelete))
	m.Handle("POST "+base+"/{type}/{rotationId}/rotate-secrets", s.authed(s.rotationRotate))
}

type wireRotateAt struct {
	Hours   int `json:"hours"`
	Minutes int `json:"minutes"`
}

type wireRotation struct {
	ID                      string            `json:"id"`
	Name                    string            `json:"name"`
	Description             *string           `json:"description"`
	Type                    string            `json:"type"`
	ProjectID               string            `json:"projectId"`
	ConnectionID            string            `json:"connectionId"`
	Connection              map[string]string `json:"connection"`
	Environment             map[string]string `json:"environment"`
	Folder                  map[string]string `json:"folder"`
	SecretPath              string            `json:"secretPath"`
	Parameters              map[string]any    `json:"parameters"`
	SecretsMapping          map[string]string `json:"secretsMapping"`
	IsAutoRotationEnabled   bool              `json:"isAutoRotationEnabled"`
	RotationInterval        int               `json:"rotationInterval"`
	RotateAtUtc             wireRotateAt      `json:"rotateAtUtc"`
	ActiveIndex             int               `json:"activeIndex"`
	RotationStatus          string            `json:"rotationStatus"`
	LastRotatedAt           *string           `json:"lastRotatedAt"`
	LastRotationAttemptedAt *string           `json:"lastRotationAttemptedAt"`
	LastRotationMessage     *string           `json:"lastRotationMessage"`
	IsLastRotationManual    bool              `json:"isLastRotationManual"`
	NextRotationAt          *string           `json:"nextRotationAt"`
	CreatedAt               string            `json:"createdAt"`
	UpdatedAt               string            `json:"updatedAt"`
}

func toWireRotation(rt rotation.Rotation) wireRotation {
	w := wireRotation{ID: rt.ID, Name: rt.Name, Type: rt.Type, ProjectID: rt.ProjectID, ConnectionID: rt.ConnectionID,
		Connection:  map[string]string{"id": rt.ConnectionID, "app": rt.ConnectionApp, "name": rt.ConnectionName},
		Environment: map[string]string{"slug": rt.Environment}, Folder: map[string]string{"path": rt.SecretPath},
		SecretPath: rt.SecretPath, IsAutoRotationEnabled: rt.AutoRotate, RotationInterval: rt.IntervalDays,
		RotateAtUtc: wireRotateAt{rt.RotateAtHours, rt.RotateAtMinutes}, ActiveIndex: rt.ActiveIndex, RotationStatus: rt.Status,
		LastRotatedAt: optTime(rt.LastRotatedAt), LastRotationAttemptedAt: optTime(rt.LastAttemptedAt),
		IsLastRotationManual: rt.LastManual, NextRotationAt: optTime(rt.NextRotationAt),
		CreatedAt: rfc3339(rt.CreatedAt), UpdatedAt: rfc3339(rt.UpdatedAt)}
	if rt.Description != "" {
		w.Description = &rt.Description
	}
	if rt.LastMessage != "" {
		w.LastRotationMessage = &rt.LastMessage
	}
	p := rt.Parameters
	if rt.Type == "ldap-password" {
		w.Parameters = map[string]any{"dn": p.DN, "rotationMethod": "connection-principal"}
		w.SecretsMapping = map[string]string{"dn": rt.Mapping.DN, "password": rt.Mapping.Password}
	} else {
		w.Parameters = map[string]any{"username1": p.Username1, "username2": p.Username2}
		if p.PermissionScope != "" {
			w.Parameters["permissionScope"] = p.PermissionScope
		}
		w.SecretsMapping = map[string]string{"username": rt.Mapping.Username, "password": rt.Mapping.Password}
	}
	if q := p.PasswordRequirements; q != nil {
		w.Parameters["passwordRequirements"] = map[string]any{"length": q.Length, "allowedSymbols": q.AllowedSymbols,
			"required": map[string]int{"digits": q.Digits, "lowercase": q.Lowercase, "uppercase": q.Uppercase, "symbols": q.Symbols}}
	}
	return w
}

func writeRotation(w http.ResponseWriter, rt rotation.Rotation) error {
	return writeJSON(w, http.StatusOK, struct {
		SecretRotation wireRotation `json:"secretRotation"`
	}{toWireRotation(rt)})
}

func (s *Server) rotationOptions(w http.ResponseWriter, r *http.Request) error {
	type option struct {
		Name       string         `json:"name"`
		Type       string         `json:"type"`
		Connection string         `json:"connection"`
		Template   map[string]any `json:"template"`
	}
	out := []option{}
	for _, o := range rotation.Options() {
		out = append(out, option{Name: o.Name, Type: o.Type, Connection: o.Connection, Template: map[string]any{"secretsMapping": o.Mapping}})
	}
	return writeJSON(w, http.StatusOK, map[string]any{"secretRotationOptions": out})
}

func (s *Server) rotationListAll(w http.ResponseWriter, r *http.Request) error {
	return s.rotationListOf(w, r, "")
}

func (s *Server) rotationList(w http.ResponseWriter, r *http.Request) error {
	return s.rotationListOf(w, r, r.PathValue("type"))
}

func (s *Server) rotationListOf(w http.ResponseWriter, r *http.Request, typ string) error {
	rs, err := s.svc.Rotations.List(r.Context(), actorFrom(r.Context()), query(r, "projectId", "workspaceId"), typ)
	if err != nil {
		return err
	}
	out := make([]wireRotation, len(rs))
	for i, rt := range rs {
		out[i] = toWireRotation(rt)
	}
	return writeJSON(w, http.StatusOK, struct {
		SecretRotations []wireRotation `json:"secretRotations"`
	}{out})
}

func (s *Server) rotationCreate(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		Name                  string          `json:"name"`
		Description           string          `json:"description"`
		ProjectID             string          `json:"projectId"`
		ConnectionID          string          `json:"connectionId"`
		Environment           string          `json:"environment"`
		SecretPath            string          `json:"secretPath"`
		Parameters            json.RawMessage `json:"parameters"`
		SecretsMapping        json.RawMessage `json:"secretsMapping"`
		IsAutoRotationEnabled *bool           `json:"isAutoRotationEnabled"`
		RotationInterval      *int            `json:"rotationInterval"`
		RotateAtUtc           *wireRotateAt   `json:"rotateAtUtc"`
	}
	if err := s.decode(r, &req); err != nil {
		return err
	}
	if req.RotationInterval == nil {
		return errs.Fieldf("rotationInterval", "rotationInterval is required (days)")
	}
	at := wireRotateAt{}
	if req.RotateAtUtc != nil {
		at = *req.RotateAtUtc
	}
	rt, err := s.svc.Rotations.Create(r.Context(), actorFrom(r.Context()), rotation.New{Type: r.PathValue("type"),
		ProjectID: req.ProjectID, Name: req.Name, Description: req.Description, ConnectionID: req.ConnectionID,
		Environment: req.Environment, SecretPath: req.SecretPath, Parameters: req.Parameters, SecretsMapping: req.SecretsMapping,
		AutoRotate: req.IsAutoRotationEnabled, IntervalDays: *req.RotationInterval, RotateAtHours: at.Hours, RotateAtMinutes: at.Minutes})
	if err != nil {
		return err
	}
	return writeRotation(w, rt)
}

func (s *Server) rotationGet(w http.ResponseWriter, r *http.Request) error {
	rt, err := s.svc.Rotations.Get(r.Context(), actorFrom(r.Context()), r.PathValue("type"), r.PathValue("rotationId"))
	if err != nil {
		return err
	}
	return writeRotation(w, rt)
}

func (s *Server) rotationGetByName(w http.ResponseWriter, r *http.Request) error {
	rt, err := s.svc.Rotations.GetByName(r.Context(), actorFrom(r.Context()), r.PathValue("type"), query(r, "projectId", "workspaceId"),
		query(r, "environment"), query(r, "secretPath"), r.PathValue("name"))
	if err != nil {
		return err
	}
	return writeRotation(w, rt)
}

func (s *Server) rotationCredentials(w http.ResponseWriter, r *http.Request) error {
	creds, rt, err := s.svc.Rotations.GeneratedCredentials(r.Context(), actorFrom(r.Context()), r.PathValue("type"), r.PathValue("rotationId"))
	if err != nil {
		return err
	}
	out := []map[string]string{}
	for _, c := range creds {
		if c.Username == "" {
			continue
		}
		k := "username"
		if rt.Type == "ldap-password" {
			k = "dn"
		}
		out = append(out, map[string]string{k: c.Username, "password": c.Password})
	}
	return writeJSON(w, http.StatusOK, map[string]any{"generatedCredentials": out, "activeIndex": rt.ActiveIndex,
		"rotationId": rt.ID, "type": rt.Type})
}

func (s *Server) rotationUpdate(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		Name                  *string         `json:"name"`
		Description           *string         `json:"description"`
		SecretsMapping        json.RawMessage `json:"secretsMapping"`
		IsAutoRotationEnabled *bool           `json:"isAutoRotationEnabled"`
		RotationInterval      *int            `json:"rotationInterval"`
		RotateAtUtc           *wireRotateAt   `json:"rotateAtUtc"`
	}
	if err := s.decode(r, &req); err != nil {
		return err
	}
	u := rotation.Update{Name: req.Name, Description: req.Description, SecretsMapping: req.SecretsMapping,
		AutoRotate: req.IsAutoRotationEnabled, IntervalDays: req.RotationInterval}
	if req.RotateAtUtc != nil {
		u.RotateAtHours, u.RotateAtMinutes = &req.RotateAtUtc.Hours, &req.RotateAtUtc.Minutes
	}
	rt, err := s.svc.Rotations.Update(r.Context(), actorFrom(r.Context()), r.PathValue("type"), r.PathValue("rotationId"), u)
	if err != nil {
		return err
	}
	return writeRotation(w, rt)
}

func (s *Server) rotationDelete(w http.ResponseWriter, r *http.Request) error {
	del, err := queryBool(r, false, "deleteSecrets")
	if err != nil {
		return err
	}
	revoke, err := queryBool(r, false, "revokeGeneratedCredentials")
	if err != nil {
		return err
	}
	rt, err := s.svc.Rotations.Delete(r.Context(), actorFrom(r.Context()), r.PathValue("type"), r.PathValue("rotationId"), del, revoke)
	if err != nil {
		return err
	}
	return writeRotation(w, rt)
}

func (s *Server) rotationRotate(w http.ResponseWriter, r *http.Request) error {
	rt, err := s.svc.Rotations.RotateNow(r.Context(), actorFrom(r.Context()), r.PathValue("type"), r.PathValue("rotationId"))
	if err != nil {
		return err
	}
	return writeRotation(w, rt)
}
