package api

import (
	"net/http"
)

// tokenRoutes serves access-token renewal and revocation, and identity details.
func (s *Server) tokenRoutes(m *routeMux) {
	m.Handle("POST /api/v1/auth/token/renew", s.limited(s.handle(s.tokenRenew)))
	m.Handle("POST /api/v1/auth/token/revoke", s.limited(s.handle(s.tokenRevoke)))
	m.Handle("GET /api/v1/identities/details", s.authed(s.identityDetails))
}

type accessTokenBody struct {
	AccessToken string `json:"accessToken"`
}

func (s *Server) tokenRenew(w http.ResponseWriter, r *http.Request) error {
	var req accessTokenBody
	if err := s.decode(r, &req); err != nil {
		return err
	}
	if req.AccessToken == "" {
		return field("accessToken", "Required")
	}
	res, err := s.svc.Tokens.Renew(r.Context(), req.AccessToken, clientIP(r))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, toLoginResponse(res))
}

func (s *Server) tokenRevoke(w http.ResponseWriter, r *http.Request) error {
	var req accessTokenBody
	if err := s.decode(r, &req); err != nil {
		return err
	}
	if req.AccessToken == "" {
		return field("accessToken", "Required")
	}
	if err := s.svc.Tokens.Revoke(r.Context(), req.AccessToken); err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, struct {
		Message string `json:"message"`
	}{"Successfully revoked access token"})
}

func (s *Server) identityDetails(w http.ResponseWriter, r *http.Request) error {
	org, err := s.svc.Tokens.Details(r.Context(), actorFrom(r.Context()))
	if err != nil {
		return err
	}
	type orgRef struct {
		ID   string `json:"id"`
		Name string `json:"name"`
		Slug string `json:"slug"`
	}
	type details struct {
		Organization orgRef `json:"organization"`
	}
	return writeJSON(w, http.StatusOK, struct {
		IdentityDetails details `json:"identityDetails"`
	}{details{orgRef{org.ID, org.Name, org.Slug}}})
}
