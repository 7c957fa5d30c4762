package api

import (
	"net/http"

	"net/url"
	"strings"

	"github.com/lockbox-dev/lockbox/internal/errs"
)

// publicURL is the server's public URL: SiteURL when set, else the address
// the request reached.
func (s *Server) publicURL(r *http.Request) string {
	if s.siteURL != "" {
		return strings.TrimSuffix(s.siteURL, "/")
	}
	return origin(r)
}

// deviceStart begins a CLI device login: the user approves it at
// verificationUri in the dashboard.
func (s *Server) deviceStart(w http.ResponseWriter, r *http.Request) error {
	var in map[string]any
	if err := s.decode(r, &in); err != nil {
		return err
	}
	if in == nil || len(in) > 0 {
		return errs.BadRequest("Expected an empty object body: {}")
	}
	d, err := s.svc.Devices.StartDeviceLogin(r.Context(), clientIP(r), r.UserAgent())
	if err != nil {
		return err
	}
	verify := s.publicURL(r) + "/device"
	return writeJSON(w, http.StatusOK, struct {
		DeviceCode              string `json:"deviceCode"`
		UserCode                string `json:"userCode"`
		VerificationURI         string `json:"verificationUri"`
		VerificationURIComplete string `json:"verificationUriComplete"`
		ExpiresIn               int    `json:"expiresIn"`
		Interval                int    `json:"interval"`
	}{d.DeviceCode, d.UserCode, verify, verify + "?code=" + url.QueryEscape(d.UserCode), d.ExpiresIn, d.Interval})
}

// deviceToken is the CLI's poll: 400 authorization_pending until the login
// is approved, then the session, once.
func (s *Server) deviceToken(w http.ResponseWriter, r *http.Request) error {
	var in struct {
		DeviceCode string `json:"deviceCode"`
	}
	if err := s.decode(r, &in); err != nil {
		return err
	}
	d, err := s.svc.Devices.PollDeviceLogin(r.Context(), in.DeviceCode, clientIP(r), r.UserAgent())
	if err != nil {
		return err
	}
	type ref struct {
		ID   string `json:"id,omitempty"`
		Name string `json:"name,omitempty"`
		// Email is the user's.
		Email string `json:"email,omitempty"`
	}
	return writeJSON(w, http.StatusOK, struct {
		AccessToken  string `json:"accessToken"`
		ExpiresIn    int    `json:"expiresIn"`
		TokenType    string `json:"tokenType"`
		User         ref    `json:"user"`
		Organization ref    `json:"organization"`
	}{d.Token, d.ExpiresIn, "Bearer", ref{Email: d.Email}, ref{ID: d.OrgID, Name: d.OrgName}})
}
