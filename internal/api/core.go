package api

import (
	"net/http"
	"time"

	"github.com/lockbox-dev/lockbox/internal/errs"
	"github.com/lockbox-dev/lockbox/internal/identity"
	"github.com/lockbox-dev/lockbox/internal/project"
)

// rfc3339 formats times on the wire: RFC 3339 in UTC with milliseconds, as Infisical does.
func rfc3339(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z07:00") }

// optTime is a nullable wire time.
func optTime(t *time.Time) *string {
	if t == nil || t.IsZero() {
		return nil
	}
	s := rfc3339(*t)
	return &s
}

type statusResponse struct {
	Date                     string `json:"date"`
	Message                  string `json:"message"`
	Version                  string `json:"version"`
	SchemaVersion            int64  `json:"schemaVersion"`
	Database                 string `json:"database"`
	EmailConfigured          bool   `json:"emailConfigured"`
	InviteOnlySignup         bool   `json:"inviteOnlySignup"`
	RedisConfigured          bool   `json:"redisConfigured"`
	SecretScanningConfigured bool   `json:"secretScanningConfigured"`
	AuditLogStorageDisabled  bool   `json:"auditLogStorageDisabled"`
}

func (s *Server) status(w http.ResponseWriter, r *http.Request) error {
	if err := s.health.Ping(r.Context()); err != nil {
		return &errs.Error{Kind: errs.Unavailable, Message: "database unavailable", Err: err}
	}
	v, err := s.health.SchemaVersion(r.Context())
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, statusResponse{Date: rfc3339(time.Now()), Message: "Ok", Version: s.version,
		SchemaVersion: v, Database: s.health.Engine(), InviteOnlySignup: true})
}

type wireUser struct {
	ID         string `json:"id"`
	Username   string `json:"username"`
	Email      string `json:"email"`
	FirstName  string `json:"firstName"`
	LastName   string `json:"lastName"`
	SuperAdmin bool   `json:"superAdmin"`
}

type wireOrg struct {
	ID        string `json:"id"`
	Name      string `json:"name"`
	Slug      string `json:"slug"`
	CreatedAt string `json:"createdAt"`
	UpdatedAt string `json:"updatedAt"`
}

func toWireOrg(o project.Org) wireOrg {
	return wireOrg{ID: o.ID, Name: o.Name, Slug: o.Slug, CreatedAt: rfc3339(o.CreatedAt), UpdatedAt: rfc3339(o.UpdatedAt)}
}

func (s *Server) bootstrap(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		Email        string `json:"email"`
		Password     string `json:"password"`
		Organization string `json:"organization"`
	}
	if err := s.decode(r, &req); err != nil {
		return err
	}
	res, err := s.svc.Identity.Bootstrap(r.Context(), req.Email, req.Password, req.Organization, clientIP(r), r.UserAgent())
	if err != nil {
		return err
	}
	type credentials struct {
		Token string `json:"token"`
	}
	type wireIdentity struct {
		ID          string      `json:"id"`
		Name        string      `json:"name"`
		Credentials credentials `json:"credentials"`
	}
	return writeJSON(w, http.StatusOK, struct {
		Message      string       `json:"message"`
		User         wireUser     `json:"user"`
		Organization wireOrg      `json:"organization"`
		Identity     wireIdentity `json:"identity"`
	}{
		Message:      "Successfully bootstrapped instance",
		User:         toWireUser(res.User),
		Organization: toWireOrg(res.Org),
		Identity:     wireIdentity{ID: res.Identity.ID, Name: res.Identity.Name, Credentials: credentials{res.Token}},
	})
}

func toWireUser(u identity.User) wireUser {
	return wireUser{ID: u.ID, Username: u.Username, Email: u.Email, FirstName: u.FirstName, LastName: u.LastName, SuperAdmin: u.SuperAdmin}
}

func (s *Server) userLogin(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		Email    string `json:"email"`
		Password string `json:"password"`
	}
	if err := s.decode(r, &req); err != nil {
		return err
	}
	tok, err := s.svc.Identity.Login(r.Context(), req.Email, req.Password, clientIP(r), r.UserAgent())
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, struct {
		AccessToken string `json:"accessToken"`
	}{tok})
}

func (s *Server) selectOrganization(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		OrganizationID string `json:"organizationId"`
	}
	if err := s.decode(r, &req); err != nil {
		return err
	}
	if req.OrganizationID == "" {
		return field("organizationId", "Required")
	}
	tok, err := s.svc.Identity.SelectOrganization(r.Context(), actorFrom(r.Context()), req.OrganizationID)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, struct {
		Token        string `json:"token"`
		IsMfaEnabled bool   `json:"isMfaEnabled"`
	}{tok, false})
}

func (s *Server) orgList(w http.ResponseWriter, r *http.Request) error {
	orgs, err := s.svc.Identity.UserOrgs(r.Context(), actorFrom(r.Context()))
	if err != nil {
		return err
	}
	out := make([]wireOrg, len(orgs))
	for i, o := range orgs {
		out[i] = toWireOrg(o)
	}
	return writeJSON(w, http.StatusOK, struct {
		Organizations []wireOrg `json:"organizations"`
	}{out})
}
