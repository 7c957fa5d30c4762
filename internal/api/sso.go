package api

import (
	"net/http"

	"github.com/lockbox-dev/lockbox/internal/sso"
)

// ssoRoutes serves SSO with OpenID Connect: the organization's
// configuration here, and the browser login (login, callback), which ends
// in a dashboard session, forwarded to the dashboard.
func (s *Server) ssoRoutes(m *routeMux) {
	const base = "/api/v1/sso/oidc"
	m.Handle("GET "+base+"/config", s.authed(s.oidcConfigGet))
	m.Handle("POST "+base+"/config", s.authed(s.oidcConfigCreate))
	m.Handle("PATCH "+base+"/config", s.authed(s.oidcConfigUpdate))
	if s.web != nil {
		// Unauthenticated, and each reaches the identity provider: rate
		// limited per client as the other logins are.
		m.Handle("GET "+base+"/login", s.limited(s.web))
		m.Handle("GET "+base+"/callback", s.limited(s.web))
	}
}

// wireOIDCConfig is Infisical's configuration answer, without the client
// secret, which is never returned.
type wireOIDCConfig struct {
	ID                     string `json:"id"`
	OrgID                  string `json:"orgId"`
	ConfigurationType      string `json:"configurationType"`
	DiscoveryURL           string `json:"discoveryURL"`
	Issuer                 string `json:"issuer"`
	AuthorizationEndpoint  string `json:"authorizationEndpoint"`
	TokenEndpoint          string `json:"tokenEndpoint"`
	JwksURI                string `json:"jwksUri"`
	UserinfoEndpoint       string `json:"userinfoEndpoint"`
	ClientID               string `json:"clientId"`
	AllowedEmailDomains    string `json:"allowedEmailDomains"`
	DefaultMembershipRole  string `json:"defaultMembershipRole"`
	IsActive               bool   `json:"isActive"`
	ManageGroupMemberships bool   `json:"manageGroupMemberships"`
	CreatedAt              string `json:"createdAt"`
	UpdatedAt              string `json:"updatedAt"`
}

func writeOIDCConfig(w http.ResponseWriter, c sso.Config) error {
	return writeJSON(w, http.StatusOK, wireOIDCConfig{ID: c.ID, OrgID: c.OrgID, ConfigurationType: c.ConfigurationType,
		DiscoveryURL: c.DiscoveryURL, Issuer: c.Issuer, AuthorizationEndpoint: c.AuthorizationEndpoint, TokenEndpoint: c.TokenEndpoint,
		JwksURI: c.JwksURI, UserinfoEndpoint: c.UserinfoEndpoint, ClientID: c.ClientID, AllowedEmailDomains: c.AllowedEmailDomains,
		DefaultMembershipRole: c.DefaultRole, IsActive: c.IsActive, ManageGroupMemberships: c.ManageGroupMemberships, CreatedAt: rfc3339(c.CreatedAt), UpdatedAt: rfc3339(c.UpdatedAt)})
}

type oidcConfigIn struct {
	OrgSlug                string  `json:"orgSlug"`
	ConfigurationType      *string `json:"configurationType"`
	DiscoveryURL           *string `json:"discoveryURL"`
	Issuer                 *string `json:"issuer"`
	AuthorizationEndpoint  *string `json:"authorizationEndpoint"`
	TokenEndpoint          *string `json:"tokenEndpoint"`
	JwksURI                *string `json:"jwksUri"`
	UserinfoEndpoint       *string `json:"userinfoEndpoint"`
	ClientID               *string `json:"clientId"`
	ClientSecret           *string `json:"clientSecret"`
	AllowedEmailDomains    *string `json:"allowedEmailDomains"`
	DefaultMembershipRole  *string `json:"defaultMembershipRole"`
	IsActive               *bool   `json:"isActive"`
	ManageGroupMemberships *bool   `json:"manageGroupMemberships"`
}

func (in oidcConfigIn) change() sso.ConfigChange {
	return sso.ConfigChange{OrgSlug: in.OrgSlug, ConfigurationType: in.ConfigurationType, DiscoveryURL: in.DiscoveryURL, Issuer: in.Issuer,
		AuthorizationEndpoint: in.AuthorizationEndpoint, TokenEndpoint: in.TokenEndpoint, JwksURI: in.JwksURI,
		UserinfoEndpoint: in.UserinfoEndpoint, ClientID: in.ClientID, ClientSecret: in.ClientSecret,
		AllowedEmailDomains: in.AllowedEmailDomains, DefaultRole: in.DefaultMembershipRole, IsActive: in.IsActive,
		ManageGroupMemberships: in.ManageGroupMemberships}
}

func (s *Server) oidcConfigGet(w http.ResponseWriter, r *http.Request) error {
	c, err := s.svc.SSO.Get(r.Context(), actorFrom(r.Context()), query(r, "orgSlug"))
	if err != nil {
		return err
	}
	return writeOIDCConfig(w, c)
}

func (s *Server) oidcConfigCreate(w http.ResponseWriter, r *http.Request) error {
	var in oidcConfigIn
	if err := s.decode(r, &in); err != nil {
		return err
	}
	if in.IsActive == nil {
		return field("isActive", "Required")
	}
	c, err := s.svc.SSO.Create(r.Context(), actorFrom(r.Context()), in.change())
	if err != nil {
		return err
	}
	return writeOIDCConfig(w, c)
}

func (s *Server) oidcConfigUpdate(w http.ResponseWriter, r *http.Request) error {
	var in oidcConfigIn
	if err := s.decode(r, &in); err != nil {
		return err
	}
	c, err := s.svc.SSO.Update(r.Context(), actorFrom(r.Context()), in.change())
	if err != nil {
		return err
	}
	return writeOIDCConfig(w, c)
}
