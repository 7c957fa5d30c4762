package api

import (
	"net/http"

	"github.com/lockbox-dev/lockbox/internal/identity"
)

// universalRoutes serves Universal Auth: configuration, client secrets and login.
func (s *Server) universalRoutes(m *routeMux) {
	m.Handle("POST /api/v1/auth/universal-auth/login", s.limited(s.handle(s.uaLogin)))
	const base = "/api/v1/auth/universal-auth/identities/{identityId}"
	m.Handle("POST "+base, s.authed(s.uaAttach))
	m.Handle("PATCH "+base, s.authed(s.uaUpdate))
	m.Handle("GET "+base, s.authed(s.uaGet))
	m.Handle("DELETE "+base, s.authed(s.uaRemove))
	m.Handle("POST "+base+"/client-secrets", s.authed(s.uaSecretCreate))
	m.Handle("GET "+base+"/client-secrets", s.authed(s.uaSecretList))
	m.Handle("GET "+base+"/client-secrets/{clientSecretId}", s.authed(s.uaSecretGet))
	m.Handle("POST "+base+"/client-secrets/{clientSecretId}/revoke", s.authed(s.uaSecretRevoke))
	m.Handle("POST "+base+"/clear-lockouts", s.authed(s.uaClearLockouts))
}

type loginResponse struct {
	AccessToken       string `json:"accessToken"`
	ExpiresIn         int64  `json:"expiresIn"`
	AccessTokenMaxTTL int64  `json:"accessTokenMaxTTL"`
	TokenType         string `json:"tokenType"`
}

func toLoginResponse(r identity.LoginResult) loginResponse {
	return loginResponse{AccessToken: r.AccessToken, ExpiresIn: r.ExpiresIn, AccessTokenMaxTTL: r.AccessTokenMaxTTL, TokenType: "Bearer"}
}

func (s *Server) uaLogin(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		ClientID     string `json:"clientId"`
		ClientSecret string `json:"clientSecret"`
		// The Go SDK (so the CLI's --organization-slug) sends
		// organizationSlug; newer Infisical names it subOrganizationName.
		OrganizationSlug    string `json:"organizationSlug"`
		SubOrganizationName string `json:"subOrganizationName"`
	}
	if err := s.decode(r, &req); err != nil {
		return err
	}
	if req.ClientID == "" {
		return field("clientId", "Required")
	}
	if req.ClientSecret == "" {
		return field("clientSecret", "Required")
	}
	res, err := s.svc.UniversalAuth.Login(r.Context(), req.ClientID, req.ClientSecret,
		first(req.OrganizationSlug, req.SubOrganizationName), clientIP(r), r.UserAgent())
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, toLoginResponse(res))
}

type wireTrustedIP struct {
	IPAddress string `json:"ipAddress"`
	Type      string `json:"type"`
	Prefix    int    `json:"prefix"`
}

func toWireIPs(ips []identity.TrustedIP) []wireTrustedIP {
	out := make([]wireTrustedIP, len(ips))
	for i, ip := range ips {
		out[i] = wireTrustedIP{ip.IPAddress, ip.Type, ip.Prefix}
	}
	return out
}

type wireUA struct {
	ID                         string          `json:"id"`
	ClientID                   string          `json:"clientId"`
	AccessTokenTTL             int64           `json:"accessTokenTTL"`
	AccessTokenMaxTTL          int64           `json:"accessTokenMaxTTL"`
	AccessTokenNumUsesLimit    int64           `json:"accessTokenNumUsesLimit"`
	ClientSecretTrustedIPs     []wireTrustedIP `json:"clientSecretTrustedIps"`
	AccessTokenTrustedIPs      []wireTrustedIP `json:"accessTokenTrustedIps"`
	CreatedAt                  string          `json:"createdAt"`
	UpdatedAt                  string          `json:"updatedAt"`
	IdentityID                 string          `json:"identityId"`
	AccessTokenPeriod          int64           `json:"accessTokenPeriod"`
	LockoutEnabled             bool            `json:"lockoutEnabled"`
	LockoutThreshold           int             `json:"lockoutThreshold"`
	LockoutDurationSeconds     int             `json:"lockoutDurationSeconds"`
	LockoutCounterResetSeconds int             `json:"lockoutCounterResetSeconds"`
}

func writeUA(w http.ResponseWriter, ua identity.UniversalAuth) error {
	return writeJSON(w, http.StatusOK, struct {
		IdentityUniversalAuth wireUA `json:"identityUniversalAuth"`
	}{wireUA{ID: ua.ID, ClientID: ua.ClientID, AccessTokenTTL: ua.AccessTokenTTL, AccessTokenMaxTTL: ua.AccessTokenMaxTTL,
		AccessTokenNumUsesLimit: ua.AccessTokenNumUsesLimit, ClientSecretTrustedIPs: toWireIPs(ua.ClientSecretTrustedIPs),
		AccessTokenTrustedIPs: toWireIPs(ua.AccessTokenTrustedIPs), CreatedAt: rfc3339(ua.CreatedAt), UpdatedAt: rfc3339(ua.UpdatedAt),
		IdentityID: ua.IdentityID, AccessTokenPeriod: ua.AccessTokenPeriod, LockoutEnabled: ua.LockoutEnabled,
		LockoutThreshold: ua.LockoutThreshold, LockoutDurationSeconds: ua.LockoutDurationSeconds,
		LockoutCounterResetSeconds: ua.LockoutCounterResetSeconds}})
}

type ipEntry struct {
	IPAddress string `json:"ipAddress"`
}

// uaConfigRequest is the attach/update body; Terraform omits zero values, so
// pointers tell "absent" from a value.
type uaConfigRequest struct {
	ClientSecretTrustedIPs     []ipEntry `json:"clientSecretTrustedIps"`
	AccessTokenTrustedIPs      []ipEntry `json:"accessTokenTrustedIps"`
	AccessTokenTTL             *int64    `json:"accessTokenTTL"`
	AccessTokenMaxTTL          *int64    `json:"accessTokenMaxTTL"`
	AccessTokenNumUsesLimit    *int64    `json:"accessTokenNumUsesLimit"`
	AccessTokenPeriod          *int64    `json:"accessTokenPeriod"`
	LockoutEnabled             *bool     `json:"lockoutEnabled"`
	LockoutThreshold           *int      `json:"lockoutThreshold"`
	LockoutDurationSeconds     *int      `json:"lockoutDurationSeconds"`
	LockoutCounterResetSeconds *int      `json:"lockoutCounterResetSeconds"`
}

func ipStrings(in []ipEntry) []string {
	if len(in) == 0 {
		return nil // empty lists are "absent" (Terraform sends none)
	}
	out := make([]string, len(in))
	for i, e := range in {
		out[i] = e.IPAddress
	}
	return out
}

func (q uaConfigRequest) config() identity.UAConfig {
	return identity.UAConfig{AccessTokenTTL: q.AccessTokenTTL, AccessTokenMaxTTL: q.AccessTokenMaxTTL,
		AccessTokenNumUsesLimit: q.AccessTokenNumUsesLimit, AccessTokenPeriod: q.AccessTokenPeriod,
		ClientSecretTrustedIPs: ipStrings(q.ClientSecretTrustedIPs), AccessTokenTrustedIPs: ipStrings(q.AccessTokenTrustedIPs),
		LockoutEnabled: q.LockoutEnabled, LockoutThreshold: q.LockoutThreshold, LockoutDurationSeconds: q.LockoutDurationSeconds,
		LockoutCounterResetSeconds: q.LockoutCounterResetSeconds}
}

func (s *Server) uaAttach(w http.ResponseWriter, r *http.Request) error {
	var req uaConfigRequest
	if err := s.decode(r, &req); err != nil {
		return err
	}
	ua, err := s.svc.UniversalAuth.Attach(r.Context(), actorFrom(r.Context()), r.PathValue("identityId"), req.config())
	if err != nil {
		return err
	}
	return writeUA(w, ua)
}

func (s *Server) uaUpdate(w http.ResponseWriter, r *http.Request) error {
	var req uaConfigRequest
	if err := s.decode(r, &req); err != nil {
		return err
	}
	ua, err := s.svc.UniversalAuth.Update(r.Context(), actorFrom(r.Context()), r.PathValue("identityId"), req.config())
	if err != nil {
		return err
	}
	return writeUA(w, ua)
}

func (s *Server) uaGet(w http.ResponseWriter, r *http.Request) error {
	ua, err := s.svc.UniversalAuth.Get(r.Context(), actorFrom(r.Context()), r.PathValue("identityId"))
	if err != nil {
		return err
	}
	return writeUA(w, ua)
}

func (s *Server) uaRemove(w http.ResponseWriter, r *http.Request) error {
	ua, err := s.svc.UniversalAuth.Remove(r.Context(), actorFrom(r.Context()), r.PathValue("identityId"))
	if err != nil {
		return err
	}
	return writeUA(w, ua)
}

type wireClientSecret struct {
	ID                       string `json:"id"`
	CreatedAt                string `json:"createdAt"`
	UpdatedAt                string `json:"updatedAt"`
	Description              string `json:"description"`
	ClientSecretPrefix       string `json:"clientSecretPrefix"`
	ClientSecretNumUses      int64  `json:"clientSecretNumUses"`
	ClientSecretNumUsesLimit int64  `json:"clientSecretNumUsesLimit"`
	ClientSecretTTL          int64  `json:"clientSecretTTL"`
	IdentityUAID             string `json:"identityUAId"`
	IsClientSecretRevoked    bool   `json:"isClientSecretRevoked"`
}

func toWireCS(c identity.ClientSecret) wireClientSecret {
	return wireClientSecret{ID: c.ID, CreatedAt: rfc3339(c.CreatedAt), UpdatedAt: rfc3339(c.UpdatedAt), Description: c.Description,
		ClientSecretPrefix: c.Prefix, ClientSecretNumUses: c.NumUses, ClientSecretNumUsesLimit: c.NumUsesLimit,
		ClientSecretTTL: c.TTL, IdentityUAID: c.IdentityUAID, IsClientSecretRevoked: c.Revoked}
}

func (s *Server) uaSecretCreate(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		Description  string  `json:"description"`
		NumUsesLimit float64 `json:"numUsesLimit"`
		TTL          float64 `json:"ttl"`
	}
	if err := s.decode(r, &req); err != nil {
		return err
	}
	if req.NumUsesLimit != float64(int64(req.NumUsesLimit)) {
		return field("numUsesLimit", "Expected integer, received float")
	}
	if req.TTL != float64(int64(req.TTL)) {
		return field("ttl", "Expected integer, received float")
	}
	secret, cs, err := s.svc.UniversalAuth.NewClientSecret(r.Context(), actorFrom(r.Context()), r.PathValue("identityId"),
		req.Description, int64(req.NumUsesLimit), int64(req.TTL))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, struct {
		ClientSecret     string           `json:"clientSecret"`
		ClientSecretData wireClientSecret `json:"clientSecretData"`
	}{secret, toWireCS(cs)})
}

func (s *Server) uaSecretList(w http.ResponseWriter, r *http.Request) error {
	list, err := s.svc.UniversalAuth.ClientSecrets(r.Context(), actorFrom(r.Context()), r.PathValue("identityId"))
	if err != nil {
		return err
	}
	out := make([]wireClientSecret, len(list))
	for i, c := range list {
		out[i] = toWireCS(c)
	}
	return writeJSON(w, http.StatusOK, struct {
		ClientSecretData []wireClientSecret `json:"clientSecretData"`
	}{out})
}

func writeCS(w http.ResponseWriter, c identity.ClientSecret) error {
	return writeJSON(w, http.StatusOK, struct {
		ClientSecretData wireClientSecret `json:"clientSecretData"`
	}{toWireCS(c)})
}

func (s *Server) uaSecretGet(w http.ResponseWriter, r *http.Request) error {
	c, err := s.svc.UniversalAuth.ClientSecret(r.Context(), actorFrom(r.Context()), r.PathValue("identityId"), r.PathValue("clientSecretId"))
	if err != nil {
		return err
	}
	return writeCS(w, c)
}

func (s *Server) uaSecretRevoke(w http.ResponseWriter, r *http.Request) error {
	c, err := s.svc.UniversalAuth.RevokeClientSecret(r.Context(), actorFrom(r.Context()), r.PathValue("identityId"), r.PathValue("clientSecretId"))
	if err != nil {
		return err
	}
	return writeCS(w, c)
}

func (s *Server) uaClearLockouts(w http.ResponseWriter, r *http.Request) error {
	n, err := s.svc.UniversalAuth.ClearLockouts(r.Context(), actorFrom(r.Context()), r.PathValue("identityId"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, struct {
		Deleted int `json:"deleted"`
	}{n})
}
