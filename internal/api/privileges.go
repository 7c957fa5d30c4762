package api

import (
	"bytes"
	"encoding/json"
	"net/http"
	"time"

	"github.com/lockbox-dev/lockbox/internal/authz"
	"github.com/lockbox-dev/lockbox/internal/project"
)

// privilegeRoutes serves identity-specific (additional) privileges: the v2
// routes by id and the older v1 routes by slug.
func (s *Server) privilegeRoutes(m *routeMux) {
	const v2 = "/api/v2/identity-project-additional-privilege"
	m.Handle("POST "+v2, s.authed(s.privilegeCreateV2))
	m.Handle("GET "+v2, s.authed(s.privilegeListV2))
	m.Handle("GET "+v2+"/{privilegeId}", s.authed(s.privilegeGet))
	m.Handle("PATCH "+v2+"/{privilegeId}", s.authed(s.privilegeUpdateV2))
	m.Handle("DELETE "+v2+"/{privilegeId}", s.authed(s.privilegeDelete))
	m.Handle("GET "+v2+"/slug/{privilegeSlug}", s.authed(s.privilegeGetBySlug))

	const v1 = "/api/v1/additional-privilege/identity"
	m.Handle("POST "+v1+"/permanent", s.authed(s.privilegeCreateV1(false)))
	m.Handle("POST "+v1+"/temporary", s.authed(s.privilegeCreateV1(true)))
	m.Handle("PATCH "+v1, s.authed(s.privilegeUpdateV1))
	m.Handle("DELETE "+v1, s.authed(s.privilegeDeleteV1))
	m.Handle("GET "+v1, s.authed(s.privilegeListV1))
	m.Handle("GET "+v1+"/{privilegeSlug}", s.authed(s.privilegeGetBySlug))
}

// wirePrivilegeFields are the fields an identity's and a user's additional
// privilege share; wirePrivilege and wireUserPrivilege add who holds it.
type wirePrivilegeFields struct {
	ID                       string        `json:"id"`
	Slug                     string        `json:"slug"`
	ProjectMembershipID      string        `json:"projectMembershipId"`
	ProjectID                string        `json:"projectId"`
	IsTemporary              bool          `json:"isTemporary"`
	TemporaryMode            *string       `json:"temporaryMode"`
	TemporaryRange           *string       `json:"temporaryRange"`
	TemporaryAccessStartTime *string       `json:"temporaryAccessStartTime"`
	TemporaryAccessEndTime   *string       `json:"temporaryAccessEndTime"`
	Permissions              *[]authz.Rule `json:"permissions,omitempty"`
	CreatedAt                string        `json:"createdAt"`
	UpdatedAt                string        `json:"updatedAt"`
}

func toWirePrivilegeFields(p project.Privilege, withPermissions bool) wirePrivilegeFields {
	w := wirePrivilegeFields{ID: p.ID, Slug: p.Slug, ProjectMembershipID: p.MembershipID, ProjectID: p.ProjectID,
		IsTemporary: p.IsTemporary, TemporaryMode: strPtr(p.TemporaryMode), TemporaryRange: strPtr(p.TemporaryRange),
		TemporaryAccessStartTime: optTime(p.TemporaryAccessStartTime), TemporaryAccessEndTime: optTime(p.TemporaryAccessEndTime),
		CreatedAt: rfc3339(p.CreatedAt), UpdatedAt: rfc3339(p.UpdatedAt)}
	if withPermissions {
		rules := p.Permissions
		if rules == nil {
			rules = []authz.Rule{}
		}
		w.Permissions = &rules
	}
	return w
}

type wirePrivilege struct {
	wirePrivilegeFields
	IdentityID string `json:"identityId"`
}

func toWirePrivilege(p project.Privilege, withPermissions bool) wirePrivilege {
	return wirePrivilege{toWirePrivilegeFields(p, withPermissions), p.IdentityID}
}

func writePrivilege(w http.ResponseWriter, p project.Privilege) error {
	return writeJSON(w, http.StatusOK, struct {
		Privilege wirePrivilege `json:"privilege"`
	}{toWirePrivilege(p, true)})
}

func writePrivileges(w http.ResponseWriter, list []project.Privilege, withPermissions bool) error {
	out := make([]wirePrivilege, len(list))
	for i, p := range list {
		out[i] = toWirePrivilege(p, withPermissions)
	}
	return writeJSON(w, http.StatusOK, struct {
		Privileges []wirePrivilege `json:"privileges"`
	}{out})
}

// temporaryIn is Infisical's temporary-access fields, as the v2 "type"
// object and the v1 bodies carry them.
type temporaryIn struct {
	IsTemporary              *bool  `json:"isTemporary"`
	TemporaryMode            string `json:"temporaryMode"`
	TemporaryRange           string `json:"temporaryRange"`
	TemporaryAccessStartTime string `json:"temporaryAccessStartTime"`
}

func (t temporaryIn) access(temporary bool) (project.TemporaryAccess, error) {
	a := project.TemporaryAccess{IsTemporary: temporary, Mode: t.TemporaryMode, Range: t.TemporaryRange}
	if !temporary {
		return project.TemporaryAccess{}, nil
	}
	if t.TemporaryAccessStartTime != "" {
		start, err := time.Parse(time.RFC3339Nano, t.TemporaryAccessStartTime)
		if err != nil {
			return a, field("temporaryAccessStartTime", "Invalid datetime")
		}
		if start.Year() > 1 { // Terraform sends 0001-01-01T00:00:00Z for "none"
			a.Start = start
		}
	}
	return a, nil
}

// grant is access for a new grant: a temporary one needs its range.
func (t temporaryIn) grant(temporary bool) (project.TemporaryAccess, error) {
	a, err := t.access(temporary)
	if err == nil && temporary && t.TemporaryRange == "" {
		return a, field("temporaryRange", "Required")
	}
	return a, err
}

// legacyPermission is the v1 single-rule form the Terraform provider sends
// as "privilegePermission".
type legacyPermission struct {
	Actions    []string        `json:"actions"`
	Subject    string          `json:"subject"`
	Conditions json.RawMessage `json:"conditions,omitempty"`
}

// rulesJSON returns the permissions of a request: the "permissions" array,
// or else the v1 "privilegePermission" rule as a one-rule array.
func rulesJSON(permissions json.RawMessage, legacy *legacyPermission) (json.RawMessage, error) {
	if len(bytes.TrimSpace(permissions)) > 0 && string(bytes.TrimSpace(permissions)) != "null" {
		return permissions, nil
	}
	if legacy == nil {
		return nil, nil
	}
	rule := map[string]any{"subject": legacy.Subject, "action": legacy.Actions}
	if c := bytes.TrimSpace(legacy.Conditions); len(c) > 0 && string(c) != "null" {
		rule["conditions"] = legacy.Conditions
	}
	b, err := json.Marshal([]any{rule})
	if err != nil {
		return nil, field("privilegePermission", "Invalid permission")
	}
	return b, nil
}

type privilegeCreateV2In struct {
	IdentityID  string          `json:"identityId"`
	ProjectID   string          `json:"projectId"`
	Slug        string          `json:"slug"`
	Permissions json.RawMessage `json:"permissions"`
	Type        temporaryIn     `json:"type"`
}

func (s *Server) privilegeCreateV2(w http.ResponseWriter, r *http.Request) error {
	var in privilegeCreateV2In
	if err := s.decode(r, &in); err != nil {
		return err
	}
	if in.IdentityID == "" {
		return field("identityId", "Required")
	}
	if in.ProjectID == "" {
		return field("projectId", "Required")
	}
	tmp, err := in.Type.access(in.Type.IsTemporary != nil && *in.Type.IsTemporary)
	if err != nil {
		return err
	}
	p, err := s.svc.Privileges.Create(r.Context(), actorFrom(r.Context()), project.NewPrivilege{ProjectID: in.ProjectID,
		IdentityID: in.IdentityID, Slug: in.Slug, Permissions: in.Permissions, Temporary: tmp})
	if err != nil {
		return err
	}
	return writePrivilege(w, p)
}

type privilegeUpdateV2In struct {
	Slug        *string         `json:"slug"`
	Permissions json.RawMessage `json:"permissions"`
	Type        *temporaryIn    `json:"type"`
}

func (s *Server) privilegeUpdateV2(w http.ResponseWriter, r *http.Request) error {
	var in privilegeUpdateV2In
	if err := s.decode(r, &in); err != nil {
		return err
	}
	c := project.PrivilegeChange{Slug: in.Slug, Permissions: in.Permissions}
	if in.Type != nil && in.Type.IsTemporary != nil {
		tmp, err := in.Type.access(*in.Type.IsTemporary)
		if err != nil {
			return err
		}
		c.Temporary = &tmp
	}
	p, err := s.svc.Privileges.Update(r.Context(), actorFrom(r.Context()), r.PathValue("privilegeId"), c)
	if err != nil {
		return err
	}
	return writePrivilege(w, p)
}

func (s *Server) privilegeGet(w http.ResponseWriter, r *http.Request) error {
	p, err := s.svc.Privileges.Get(r.Context(), actorFrom(r.Context()), r.PathValue("privilegeId"))
	if err != nil {
		return err
	}
	return writePrivilege(w, p)
}

func (s *Server) privilegeDelete(w http.ResponseWriter, r *http.Request) error {
	p, err := s.svc.Privileges.Delete(r.Context(), actorFrom(r.Context()), r.PathValue("privilegeId"))
	if err != nil {
		return err
	}
	return writePrivilege(w, p)
}

func (s *Server) privilegeListV2(w http.ResponseWriter, r *http.Request) error {
	identityID, projectID := query(r, "identityId"), query(r, "projectId")
	if identityID == "" {
		return field("identityId", "Required")
	}
	if projectID == "" {
		return field("projectId", "Required")
	}
	list, err := s.svc.Privileges.List(r.Context(), actorFrom(r.Context()), projectID, identityID)
	if err != nil {
		return err
	}
	return writePrivileges(w, list, false)
}

// projectBySlugQuery resolves a required project slug of the actor's organization.
func (s *Server) projectIDBySlug(r *http.Request, slug string) (string, error) {
	if slug == "" {
		return "", field("projectSlug", "Required")
	}
	return s.svc.Projects.IDBySlug(r.Context(), actorFrom(r.Context()), slug)
}

// privilegeGetBySlug serves GET .../slug/{privilegeSlug} (v2) and
// .../identity/{privilegeSlug} (v1), both with ?identityId&projectSlug.
func (s *Server) privilegeGetBySlug(w http.ResponseWriter, r *http.Request) error {
	identityID := query(r, "identityId")
	if identityID == "" {
		return field("identityId", "Required")
	}
	projectID, err := s.projectIDBySlug(r, query(r, "projectSlug"))
	if err != nil {
		return err
	}
	p, err := s.svc.Privileges.GetBySlug(r.Context(), actorFrom(r.Context()), projectID, identityID, r.PathValue("privilegeSlug"))
	if err != nil {
		return err
	}
	return writePrivilege(w, p)
}

func (s *Server) privilegeListV1(w http.ResponseWriter, r *http.Request) error {
	identityID := query(r, "identityId")
	if identityID == "" {
		return field("identityId", "Required")
	}
	projectID, err := s.projectIDBySlug(r, query(r, "projectSlug"))
	if err != nil {
		return err
	}
	list, err := s.svc.Privileges.List(r.Context(), actorFrom(r.Context()), projectID, identityID)
	if err != nil {
		return err
	}
	return writePrivileges(w, list, true)
}

type privilegeCreateV1In struct {
	IdentityID          string            `json:"identityId"`
	ProjectSlug         string            `json:"projectSlug"`
	Slug                string            `json:"slug"`
	Permissions         json.RawMessage   `json:"permissions"`
	PrivilegePermission *legacyPermission `json:"privilegePermission"`
	temporaryIn
}

func (s *Server) privilegeCreateV1(temporary bool) func(http.ResponseWriter, *http.Request) error {
	return func(w http.ResponseWriter, r *http.Request) error {
		var in privilegeCreateV1In
		if err := s.decode(r, &in); err != nil {
			return err
		}
		if in.IdentityID == "" {
			return field("identityId", "Required")
		}
		projectID, err := s.projectIDBySlug(r, in.ProjectSlug)
		if err != nil {
			return err
		}
		rules, err := rulesJSON(in.Permissions, in.PrivilegePermission)
		if err != nil {
			return err
		}
		tmp, err := in.temporaryIn.grant(temporary)
		if err != nil {
			return err
		}
		p, err := s.svc.Privileges.Create(r.Context(), actorFrom(r.Context()), project.NewPrivilege{ProjectID: projectID,
			IdentityID: in.IdentityID, Slug: in.Slug, Permissions: rules, Temporary: tmp})
		if err != nil {
			return err
		}
		return writePrivilege(w, p)
	}
}

type privilegeSlugIn struct {
	PrivilegeSlug string `json:"privilegeSlug"`
	IdentityID    string `json:"identityId"`
	ProjectSlug   string `json:"projectSlug"`
}

// privilegeBySlug finds the privilege a v1 body names.
func (s *Server) privilegeBySlug(r *http.Request, in privilegeSlugIn) (project.Privilege, error) {
	if in.PrivilegeSlug == "" {
		return project.Privilege{}, field("privilegeSlug", "Required")
	}
	if in.IdentityID == "" {
		return project.Privilege{}, field("identityId", "Required")
	}
	projectID, err := s.projectIDBySlug(r, in.ProjectSlug)
	if err != nil {
		return project.Privilege{}, err
	}
	return s.svc.Privileges.GetBySlug(r.Context(), actorFrom(r.Context()), projectID, in.IdentityID, in.PrivilegeSlug)
}

type privilegeUpdateV1In struct {
	privilegeSlugIn
	PrivilegeDetails struct {
		Slug                *string           `json:"slug"`
		Permissions         json.RawMessage   `json:"permissions"`
		PrivilegePermission *legacyPermission `json:"privilegePermission"`
		temporaryIn
	} `json:"privilegeDetails"`
}

func (s *Server) privilegeUpdateV1(w http.ResponseWriter, r *http.Request) error {
	var in privilegeUpdateV1In
	if err := s.decode(r, &in); err != nil {
		return err
	}
	cur, err := s.privilegeBySlug(r, in.privilegeSlugIn)
	if err != nil {
		return err
	}
	d := in.PrivilegeDetails
	rules, err := rulesJSON(d.Permissions, d.PrivilegePermission)
	if err != nil {
		return err
	}
	c := project.PrivilegeChange{Slug: d.Slug, Permissions: rules}
	if d.IsTemporary != nil {
		tmp, err := d.temporaryIn.access(*d.IsTemporary)
		if err != nil {
			return err
		}
		c.Temporary = &tmp
	}
	p, err := s.svc.Privileges.Update(r.Context(), actorFrom(r.Context()), cur.ID, c)
	if err != nil {
		return err
	}
	return writePrivilege(w, p)
}

func (s *Server) privilegeDeleteV1(w http.ResponseWriter, r *http.Request) error {
	var in privilegeSlugIn
	if err := s.decode(r, &in); err != nil {
		return err
	}
	cur, err := s.privilegeBySlug(r, in)
	if err != nil {
		return err
	}
	p, err := s.svc.Privileges.Delete(r.Context(), actorFrom(r.Context()), cur.ID)
	if err != nil {
		return err
	}
	return writePrivilege(w, p)
}
