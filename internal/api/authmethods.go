package api

import (
	"context"

	"encoding/json"
	"net/http"

	"github.com/lockbox-dev/lockbox/internal/authmethod"
	"github.com/lockbox-dev/lockbox/internal/authz"
	"github.com/lockbox-dev/lockbox/internal/identity"
)

// authMethodRoutes serves every registered login method (package
// authmethod) on Infisical's routes: configuration on an identity and login.
func (s *Server) authMethodRoutes(m *routeMux) {
	if s.svc.AuthMethods == nil {
		return
	}
	for _, reg := range authmethod.All() {
		base := "/api/v1/auth/" + reg.Name
		m.Handle("POST "+base+"/login", s.limited(s.handle(s.methodLogin(reg))))
		id := base + "/identities/{identityId}"
		m.Handle("POST "+id, s.authed(s.methodConfig(reg, s.svc.AuthMethods.Attach)))
		m.Handle("PATCH "+id, s.authed(s.methodConfig(reg, s.svc.AuthMethods.Update)))
		m.Handle("GET "+id, s.authed(s.methodRead(reg, s.svc.AuthMethods.Get)))
		m.Handle("DELETE "+id, s.authed(s.methodRead(reg, s.svc.AuthMethods.Remove)))
		if reg.Lockout {
			m.Handle("POST "+id+"/clear-lockouts", s.authed(s.methodClearLockouts(reg)))
		}
	}
}

// methodClearLockouts answers Infisical's {"deleted": n}.
func (s *Server) methodClearLockouts(reg authmethod.Registration) func(http.ResponseWriter, *http.Request) error {
	return func(w http.ResponseWriter, r *http.Request) error {
		n, err := s.svc.AuthMethods.ClearLockouts(r.Context(), actorFrom(r.Context()), reg.Name, r.PathValue("identityId"))
		if err != nil {
			return err
		}
		return writeJSON(w, http.StatusOK, struct {
			Deleted int `json:"deleted"`
		}{n})
	}
}

func (s *Server) methodLogin(reg authmethod.Registration) func(http.ResponseWriter, *http.Request) error {
	return func(w http.ResponseWriter, r *http.Request) error {
		var raw json.RawMessage
		if err := s.decode(r, &raw); err != nil {
			return err
		}
		var req struct {
			IdentityID string `json:"identityId"`
			JWT        string `json:"jwt"`
			// As for Universal Auth: the Go SDK sends organizationSlug.
			OrganizationSlug    string `json:"organizationSlug"`
			SubOrganizationName string `json:"subOrganizationName"`
		}
		if err := decodeJSON(raw, &req); err != nil {
			return err
		}
		if req.IdentityID == "" {
			return field("identityId", "Required")
		}
		if req.JWT == "" && !reg.NoToken {
			return field("jwt", "Required")
		}
		cred := authmethod.Credential{Token: req.JWT, Body: raw}
		if r.TLS != nil && len(r.TLS.VerifiedChains) > 0 {
			// Only a chain the listener verified against its client CAs.
			cred.PeerCertificates = r.TLS.VerifiedChains[0]
		}
		if v := r.Header.Get(s.clientCertHdr); v != "" && s.peerIsTrustedProxy(r) {
			// Any other peer could write the header itself.
			cred.ProxyCertificate = v
		}
		res, err := s.svc.AuthMethods.Login(r.Context(), reg.Name, req.IdentityID, cred,
			first(req.OrganizationSlug, req.SubOrganizationName), clientIP(r), r.UserAgent())
		if err != nil {
			return err
		}
		return writeJSON(w, http.StatusOK, toLoginResponse(res))
	}
}

type configFunc func(ctx context.Context, actor authz.Actor, method, identityID string, s identity.TokenSettings, body json.RawMessage) (identity.AuthConfig, error)

func (s *Server) methodConfig(reg authmethod.Registration, f configFunc) func(http.ResponseWriter, *http.Request) error {
	return func(w http.ResponseWriter, r *http.Request) error {
		var raw json.RawMessage
		if err := s.decode(r, &raw); err != nil {
			return err
		}
		if len(raw) == 0 {
			raw = json.RawMessage("{}")
		}
		var req tokenAuthRequest
		if err := decodeJSON(raw, &req); err != nil {
			return err
		}
		c, err := f(r.Context(), actorFrom(r.Context()), reg.Name, r.PathValue("identityId"), identity.TokenSettings{
			AccessTokenTTL: req.AccessTokenTTL, AccessTokenMaxTTL: req.AccessTokenMaxTTL,
			AccessTokenNumUsesLimit: req.AccessTokenNumUsesLimit, AccessTokenTrustedIPs: ipStrings(req.AccessTokenTrustedIPs)}, raw)
		if err != nil {
			return err
		}
		return writeMethodConfig(w, reg, c)
	}
}

type readFunc func(ctx context.Context, actor authz.Actor, method, identityID string) (identity.AuthConfig, error)

func (s *Server) methodRead(reg authmethod.Registration, f readFunc) func(http.ResponseWriter, *http.Request) error {
	return func(w http.ResponseWriter, r *http.Request) error {
		c, err := f(r.Context(), actorFrom(r.Context()), reg.Name, r.PathValue("identityId"))
		if err != nil {
			return err
		}
		return writeMethodConfig(w, reg, c)
	}
}

// writeMethodConfig answers {"<wireKey>": {...}}: the method's fields, then
// the shared ones, as Infisical's identity<Method>Auth objects.
func writeMethodConfig(w http.ResponseWriter, reg authmethod.Registration, c identity.AuthConfig) error {
	obj := map[string]any{}
	if err := json.Unmarshal(c.Config, &obj); err != nil {
		return err
	}
	obj["id"], obj["identityId"] = c.ID, c.IdentityID
	obj["accessTokenTTL"], obj["accessTokenMaxTTL"] = c.AccessTokenTTL, c.AccessTokenMaxTTL
	obj["accessTokenNumUsesLimit"], obj["accessTokenTrustedIps"] = c.AccessTokenNumUsesLimit, toWireIPs(c.AccessTokenTrustedIPs)
	obj["accessTokenPeriod"] = 0
	obj["createdAt"], obj["updatedAt"] = rfc3339(c.CreatedAt), rfc3339(c.UpdatedAt)
	return writeJSON(w, http.StatusOK, map[string]any{reg.WireKey: obj})
}
