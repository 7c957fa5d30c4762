package api

import (
	"net/http"

	"github.com/lockbox-dev/lockbox/internal/identity"
)

// identityRoutes serves machine identities and Token Auth.
func (s *Server) identityRoutes(m *routeMux) {
	m.Handle("POST /api/v1/identities", s.authed(s.identityCreate))
	m.Handle("GET /api/v1/identities", s.authed(s.identityList))
	m.Handle("GET /api/v1/identities/{identityId}", s.authed(s.identityGet))
	m.Handle("PATCH /api/v1/identities/{identityId}", s.authed(s.identityUpdate))
	m.Handle("DELETE /api/v1/identities/{identityId}", s.authed(s.identityDelete))

	const ta = "/api/v1/auth/token-auth"
	m.Handle("POST "+ta+"/identities/{identityId}", s.authed(s.tokenAuthAttach))
	m.Handle("PATCH "+ta+"/identities/{identityId}", s.authed(s.tokenAuthUpdate))
	m.Handle("GET "+ta+"/identities/{identityId}", s.authed(s.tokenAuthGet))
	m.Handle("DELETE "+ta+"/identities/{identityId}", s.authed(s.tokenAuthRemove))
	m.Handle("POST "+ta+"/identities/{identityId}/tokens", s.authed(s.tokenAuthCreateToken))
	m.Handle("GET "+ta+"/identities/{identityId}/tokens", s.authed(s.tokenAuthListTokens))
	m.Handle("GET "+ta+"/tokens/{tokenId}", s.authed(s.tokenAuthGetToken))
	m.Handle("PATCH "+ta+"/tokens/{tokenId}", s.authed(s.tokenAuthRenameToken))
	m.Handle("POST "+ta+"/tokens/{tokenId}/revoke", s.authed(s.tokenAuthRevokeToken))
}

type wireMetadata struct {
	ID    string `json:"id"`
	Key   string `json:"key"`
	Value string `json:"value"`
}

func toWireMetadata(md []identity.Metadata) []wireMetadata {
	out := make([]wireMetadata, len(md))
	for i, m := range md {
		out[i] = wireMetadata{m.ID, m.Key, m.Value}
	}
	return out
}

// wireIdentity is the flat identity shape of create and update.
type wireIdentity struct {
	ID                  string         `json:"id"`
	Name                string         `json:"name"`
	OrgID               string         `json:"orgId"`
	HasDeleteProtection bool           `json:"hasDeleteProtection"`
	AuthMethods         []string       `json:"authMethods"`
	Metadata            []wireMetadata `json:"metadata"`
	CreatedAt           string         `json:"createdAt"`
	UpdatedAt           string         `json:"updatedAt"`
}

func toWireIdentity(oi identity.OrgIdentity) wireIdentity {
	return wireIdentity{ID: oi.ID, Name: oi.Name, OrgID: oi.OrgID, HasDeleteProtection: oi.HasDeleteProtection,
		AuthMethods: oi.AuthMethods, Metadata: toWireMetadata(oi.Metadata), CreatedAt: rfc3339(oi.CreatedAt), UpdatedAt: rfc3339(oi.UpdatedAt)}
}

// wireIdentityMembership is the nested shape of GET (what Terraform reads).
type wireIdentityMembership struct {
	ID                  string             `json:"id"`
	Role                string             `json:"role"`
	RoleID              *string            `json:"roleId"`
	OrgID               string             `json:"orgId"`
	IdentityID          string             `json:"identityId"`
	LastLoginAuthMethod *string            `json:"lastLoginAuthMethod"`
	LastLoginTime       *string            `json:"lastLoginTime"`
	CustomRole          *wireCustomOrgRole `json:"customRole"`
	Metadata            []wireMetadata     `json:"metadata"`
	CreatedAt           string             `json:"createdAt"`
	UpdatedAt           string             `json:"updatedAt"`
	Identity            struct {
		ID                       string   `json:"id"`
		Name                     string   `json:"name"`
		OrgID                    string   `json:"orgId"`
		HasDeleteProtection      bool     `json:"hasDeleteProtection"`
		AuthMethods              []string `json:"authMethods"`
		ActiveLockoutAuthMethods []string `json:"activeLockoutAuthMethods"`
	} `json:"identity"`
}

// wireCustomOrgRole names the custom organization role of a membership.
type wireCustomOrgRole struct {
	ID   string `json:"id"`
	Slug string `json:"slug"`
	Name string `json:"name"`
}

func toWireIdentityMembership(oi identity.OrgIdentity) wireIdentityMembership {
	w := wireIdentityMembership{ID: oi.MembershipID, Role: oi.Role, RoleID: strPtr(oi.CustomRoleID), OrgID: oi.OrgID, IdentityID: oi.ID,
		LastLoginAuthMethod: strPtr(oi.LastLoginAuthMethod), LastLoginTime: optTime(oi.LastLoginTime),
		Metadata: toWireMetadata(oi.Metadata), CreatedAt: rfc3339(oi.MembershipCreatedAt), UpdatedAt: rfc3339(oi.MembershipUpdatedAt)}
	w.Identity.ID, w.Identity.Name, w.Identity.OrgID = oi.ID, oi.Name, oi.OrgID
	w.Identity.HasDeleteProtection, w.Identity.AuthMethods = oi.HasDeleteProtection, oi.AuthMethods
	w.Identity.ActiveLockoutAuthMethods = []string{}
	if oi.CustomRoleID != "" {
		w.CustomRole = &wireCustomOrgRole{ID: oi.CustomRoleID, Slug: oi.CustomRoleSlug, Name: oi.CustomRoleName}
	}
	return w
}

type metadataIn struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

func fromMetadata(in []metadataIn) []identity.Metadata {
	out := make([]identity.Metadata, len(in))
	for i, m := range in {
		out[i] = identity.Metadata{Key: m.Key, Value: m.Value}
	}
	return out
}

func writeIdentity(w http.ResponseWriter, oi identity.OrgIdentity) error {
	return writeJSON(w, http.StatusOK, struct {
		Identity wireIdentity `json:"identity"`
	}{toWireIdentity(oi)})
}

func (s *Server) identityCreate(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		Name                string       `json:"name"`
		OrganizationID      string       `json:"organizationId"`
		Role                string       `json:"role"`
		HasDeleteProtection bool         `json:"hasDeleteProtection"`
		Metadata            []metadataIn `json:"metadata"`
	}
	if err := s.decode(r, &req); err != nil {
		return err
	}
	if req.Name == "" {
		return field("name", "Required")
	}
	oi, err := s.svc.Identities.Create(r.Context(), actorFrom(r.Context()), identity.NewIdentity{OrgID: req.OrganizationID,
		Name: req.Name, Role: req.Role, HasDeleteProtection: req.HasDeleteProtection, Metadata: fromMetadata(req.Metadata)})
	if err != nil {
		return err
	}
	return writeIdentity(w, oi)
}

func (s *Server) identityList(w http.ResponseWriter, r *http.Request) error {
	offset, err := queryInt(r, 0, 0, 1<<30, "offset")
	if err != nil {
		return err
	}
	limit, err := queryInt(r, 100, 1, 20000, "limit")
	if err != nil {
		return err
	}
	list, total, err := s.svc.Identities.List(r.Context(), actorFrom(r.Context()), query(r, "orgId"), offset, limit)
	if err != nil {
		return err
	}
	out := make([]wireIdentityMembership, len(list))
	for i, oi := range list {
		out[i] = toWireIdentityMembership(oi)
	}
	return writeJSON(w, http.StatusOK, struct {
		Identities []wireIdentityMembership `json:"identities"`
		TotalCount int                      `json:"totalCount"`
	}{out, total})
}

func (s *Server) identityGet(w http.ResponseWriter, r *http.Request) error {
	oi, err := s.svc.Identities.Get(r.Context(), actorFrom(r.Context()), r.PathValue("identityId"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, struct {
		Identity wireIdentityMembership `json:"identity"`
	}{toWireIdentityMembership(oi)})
}

func (s *Server) identityUpdate(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		Name                *string       `json:"name"`
		Role                *string       `json:"role"`
		HasDeleteProtection *bool         `json:"hasDeleteProtection"`
		Metadata            *[]metadataIn `json:"metadata"`
	}
	if err := s.decode(r, &req); err != nil {
		return err
	}
	u := identity.IdentityUpdate{HasDeleteProtection: req.HasDeleteProtection}
	if req.Name != nil && *req.Name != "" {
		u.Name = req.Name
	}
	if req.Role != nil && *req.Role != "" {
		u.Role = req.Role
	}
	if req.Metadata != nil {
		md := fromMetadata(*req.Metadata)
		u.Metadata = &md
	}
	oi, err := s.svc.Identities.Update(r.Context(), actorFrom(r.Context()), r.PathValue("identityId"), u)
	if err != nil {
		return err
	}
	return writeIdentity(w, oi)
}

func (s *Server) identityDelete(w http.ResponseWriter, r *http.Request) error {
	oi, err := s.svc.Identities.Delete(r.Context(), actorFrom(r.Context()), r.PathValue("identityId"))
	if err != nil {
		return err
	}
	return writeIdentity(w, oi)
}

type tokenAuthRequest struct {
	AccessTokenTTL          *int64    `json:"accessTokenTTL"`
	AccessTokenMaxTTL       *int64    `json:"accessTokenMaxTTL"`
	AccessTokenNumUsesLimit *int64    `json:"accessTokenNumUsesLimit"`
	AccessTokenTrustedIPs   []ipEntry `json:"accessTokenTrustedIps"`
}

func (q tokenAuthRequest) config() identity.TokenAuthConfig {
	return identity.TokenAuthConfig{AccessTokenTTL: q.AccessTokenTTL, AccessTokenMaxTTL: q.AccessTokenMaxTTL,
		AccessTokenNumUsesLimit: q.AccessTokenNumUsesLimit, AccessTokenTrustedIPs: ipStrings(q.AccessTokenTrustedIPs)}
}

func writeTokenAuth(w http.ResponseWriter, ta identity.TokenAuth) error {
	type wire struct {
		ID                      string          `json:"id"`
		AccessTokenTTL          int64           `json:"accessTokenTTL"`
		AccessTokenMaxTTL       int64           `json:"accessTokenMaxTTL"`
		AccessTokenNumUsesLimit int64           `json:"accessTokenNumUsesLimit"`
		AccessTokenTrustedIPs   []wireTrustedIP `json:"accessTokenTrustedIps"`
		CreatedAt               string          `json:"createdAt"`
		UpdatedAt               string          `json:"updatedAt"`
		IdentityID              string          `json:"identityId"`
	}
	return writeJSON(w, http.StatusOK, struct {
		IdentityTokenAuth wire `json:"identityTokenAuth"`
	}{wire{ta.ID, ta.AccessTokenTTL, ta.AccessTokenMaxTTL, ta.AccessTokenNumUsesLimit, toWireIPs(ta.AccessTokenTrustedIPs),
		rfc3339(ta.CreatedAt), rfc3339(ta.UpdatedAt), ta.IdentityID}})
}

func (s *Server) tokenAuthAttach(w http.ResponseWriter, r *http.Request) error {
	var req tokenAuthRequest
	if err := s.decode(r, &req); err != nil {
		return err
	}
	ta, err := s.svc.Identities.AttachTokenAuth(r.Context(), actorFrom(r.Context()), r.PathValue("identityId"), req.config())
	if err != nil {
		return err
	}
	return writeTokenAuth(w, ta)
}

func (s *Server) tokenAuthUpdate(w http.ResponseWriter, r *http.Request) error {
	var req tokenAuthRequest
	if err := s.decode(r, &req); err != nil {
		return err
	}
	ta, err := s.svc.Identities.UpdateTokenAuth(r.Context(), actorFrom(r.Context()), r.PathValue("identityId"), req.config())
	if err != nil {
		return err
	}
	return writeTokenAuth(w, ta)
}

func (s *Server) tokenAuthGet(w http.ResponseWriter, r *http.Request) error {
	ta, err := s.svc.Identities.GetTokenAuth(r.Context(), actorFrom(r.Context()), r.PathValue("identityId"))
	if err != nil {
		return err
	}
	return writeTokenAuth(w, ta)
}

func (s *Server) tokenAuthRemove(w http.ResponseWriter, r *http.Request) error {
	ta, err := s.svc.Identities.RemoveTokenAuth(r.Context(), actorFrom(r.Context()), r.PathValue("identityId"))
	if err != nil {
		return err
	}
	return writeTokenAuth(w, ta)
}

type wireAccessToken struct {
	ID                       string  `json:"id"`
	AccessTokenTTL           int64   `json:"accessTokenTTL"`
	AccessTokenMaxTTL        int64   `json:"accessTokenMaxTTL"`
	AccessTokenNumUses       int64   `json:"accessTokenNumUses"`
	AccessTokenNumUsesLimit  int64   `json:"accessTokenNumUsesLimit"`
	AccessTokenLastUsedAt    *string `json:"accessTokenLastUsedAt"`
	AccessTokenLastRenewedAt *string `json:"accessTokenLastRenewedAt"`
	IsAccessTokenRevoked     bool    `json:"isAccessTokenRevoked"`
	IdentityID               string  `json:"identityId"`
	Name                     string  `json:"name"`
	AuthMethod               string  `json:"authMethod"`
	CreatedAt                string  `json:"createdAt"`
	UpdatedAt                string  `json:"updatedAt"`
}

func toWireToken(t identity.AccessToken) wireAccessToken {
	return wireAccessToken{ID: t.ID, AccessTokenTTL: t.TTL, AccessTokenMaxTTL: t.MaxTTL, AccessTokenNumUses: t.NumUses,
		AccessTokenNumUsesLimit: t.NumUsesLimit, AccessTokenLastUsedAt: optTime(t.LastUsedAt),
		AccessTokenLastRenewedAt: optTime(t.LastRenewedAt), IsAccessTokenRevoked: t.Revoked, IdentityID: t.IdentityID,
		Name: t.Name, AuthMethod: t.AuthMethod, CreatedAt: rfc3339(t.CreatedAt), UpdatedAt: rfc3339(t.UpdatedAt)}
}

func (s *Server) tokenAuthCreateToken(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		Name string `json:"name"`
	}
	if err := s.decode(r, &req); err != nil {
		return err
	}
	res, t, err := s.svc.Identities.CreateToken(r.Context(), actorFrom(r.Context()), r.PathValue("identityId"), req.Name)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, struct {
		loginResponse
		TokenData wireAccessToken `json:"tokenData"`
	}{toLoginResponse(res), toWireToken(t)})
}

func (s *Server) tokenAuthListTokens(w http.ResponseWriter, r *http.Request) error {
	offset, err := queryInt(r, 0, 0, 100, "offset")
	if err != nil {
		return err
	}
	limit, err := queryInt(r, 20, 1, 100, "limit")
	if err != nil {
		return err
	}
	list, err := s.svc.Identities.Tokens(r.Context(), actorFrom(r.Context()), r.PathValue("identityId"), offset, limit)
	if err != nil {
		return err
	}
	out := make([]wireAccessToken, len(list))
	for i, t := range list {
		out[i] = toWireToken(t)
	}
	return writeJSON(w, http.StatusOK, struct {
		Tokens []wireAccessToken `json:"tokens"`
	}{out})
}

func writeToken(w http.ResponseWriter, t identity.AccessToken) error {
	return writeJSON(w, http.StatusOK, struct {
		Token wireAccessToken `json:"token"`
	}{toWireToken(t)})
}

func (s *Server) tokenAuthGetToken(w http.ResponseWriter, r *http.Request) error {
	t, err := s.svc.Identities.Token(r.Context(), actorFrom(r.Context()), r.PathValue("tokenId"))
	if err != nil {
		return err
	}
	return writeToken(w, t)
}

func (s *Server) tokenAuthRenameToken(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		Name string `json:"name"`
	}
	if err := s.decode(r, &req); err != nil {
		return err
	}
	t, err := s.svc.Identities.RenameToken(r.Context(), actorFrom(r.Context()), r.PathValue("tokenId"), req.Name)
	if err != nil {
		return err
	}
	return writeToken(w, t)
}

func (s *Server) tokenAuthRevokeToken(w http.ResponseWriter, r *http.Request) error {
	if err := s.svc.Identities.RevokeToken(r.Context(), actorFrom(r.Context()), r.PathValue("tokenId")); err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, struct {
		Message string `json:"message"`
	}{"Successfully revoked access token"})
}
