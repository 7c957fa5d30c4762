package api

import (
	"encoding/json"
	"net/http"
	"time"

	"github.com/lockbox-dev/lockbox/internal/authz"
	"github.com/lockbox-dev/lockbox/internal/errs"
	"github.com/lockbox-dev/lockbox/internal/project"
)

// membershipRoutes serves project identity memberships and custom project roles.
func (s *Server) membershipRoutes(m *routeMux) {
	for _, base := range []string{"/api/v1/projects/{projectId}/identity-memberships", "/api/v2/workspace/{projectId}/identity-memberships"} {
		m.Handle("POST "+base+"/{identityId}", s.authed(s.membershipAdd))
		m.Handle("GET "+base+"/{identityId}", s.authed(s.membershipGet))
		m.Handle("PATCH "+base+"/{identityId}", s.authed(s.membershipUpdate))
		m.Handle("DELETE "+base+"/{identityId}", s.authed(s.membershipRemove))
	}
	// "/api/v2/workspace/identity-memberships/{membershipId}" overlaps the lists
	// under "/api/v2/workspace/{projectId}", which one wildcard route serves.
	m.Handle("GET /api/v2/workspace/{projectId}/{sub}", s.authed(s.workspaceV2SubGet))
	m.HandleSub(s.workspaceV2Lists, "GET /api/v2/workspace/{projectId}/identity-memberships", s.membershipList)
	m.Handle("GET /api/v2/workspace/identity-memberships/{membershipId}", s.authed(s.membershipGetByID))
	m.HandleSub(s.projectLists, "GET /api/v1/projects/{projectId}/identity-memberships", s.membershipList)

	m.HandleSub(s.projectLists, "GET /api/v1/projects/{projectId}/roles", s.roleList)
	m.HandleSub(s.workspaceV2Lists, "GET /api/v2/workspace/{projectId}/roles", s.roleList)
	for _, roles := range []string{"/api/v1/projects/{projectId}/roles", "/api/v2/workspace/{projectId}/roles"} {
		m.Handle("POST "+roles, s.authed(s.roleCreate))
		m.Handle("PATCH "+roles+"/{roleId}", s.authed(s.roleUpdate))
		m.Handle("DELETE "+roles+"/{roleId}", s.authed(s.roleDelete))
		m.Handle("GET "+roles+"/slug/{roleSlug}", s.authed(s.roleGetBySlug))
	}
	m.Handle("GET /api/v1/projects/roles/{roleId}", s.authed(s.roleGet))
	// The legacy routes name the project by slug.
	const legacy = "/api/v1/workspace/{projectSlug}/roles"
	m.Handle("POST "+legacy, s.authed(s.bySlug(s.roleCreate)))
	m.HandleSub(s.workspaceLists, "GET "+legacy, func(w http.ResponseWriter, r *http.Request) error {
		r.SetPathValue("projectSlug", r.PathValue("projectId")) // served by GET /api/v1/workspace/{projectId}/{sub}
		return s.bySlug(s.roleList)(w, r)
	})
	m.Handle("PATCH "+legacy+"/{roleId}", s.authed(s.bySlug(s.roleUpdate)))
	m.Handle("DELETE "+legacy+"/{roleId}", s.authed(s.bySlug(s.roleDelete)))
	m.Handle("GET "+legacy+"/slug/{roleSlug}", s.authed(s.bySlug(s.roleGetBySlug)))
}

// bySlug resolves the {projectSlug} of a legacy route into the {projectId}
// that h reads. Another organization's project is not found.
func (s *Server) bySlug(h func(http.ResponseWriter, *http.Request) error) func(http.ResponseWriter, *http.Request) error {
	return func(w http.ResponseWriter, r *http.Request) error {
		id, err := s.svc.Projects.IDBySlug(r.Context(), actorFrom(r.Context()), r.PathValue("projectSlug"))
		if err != nil {
			return err
		}
		r.SetPathValue("projectId", id)
		return h(w, r)
	}
}

type wireMembershipRole struct {
	ID                       string  `json:"id"`
	ProjectMembershipID      string  `json:"projectMembershipId"`
	Role                     string  `json:"role"`
	CustomRoleID             *string `json:"customRoleId"`
	CustomRoleName           *string `json:"customRoleName"`
	CustomRoleSlug           *string `json:"customRoleSlug"`
	IsTemporary              bool    `json:"isTemporary"`
	TemporaryMode            *string `json:"temporaryMode"`
	TemporaryRange           *string `json:"temporaryRange"`
	TemporaryAccessStartTime *string `json:"temporaryAccessStartTime"`
	TemporaryAccessEndTime   *string `json:"temporaryAccessEndTime"`
	CreatedAt                string  `json:"createdAt"`
	UpdatedAt                string  `json:"updatedAt"`
}

func toWireRoles(membershipID string, roles []project.MembershipRole) []wireMembershipRole {
	out := make([]wireMembershipRole, len(roles))
	for i, r := range roles {
		out[i] = wireMembershipRole{ID: r.ID, ProjectMembershipID: membershipID, Role: r.Role, CustomRoleID: strPtr(r.CustomRoleID), CustomRoleName: strPtr(r.CustomRoleName),
			CustomRoleSlug: strPtr(r.CustomRoleSlug), IsTemporary: r.IsTemporary, TemporaryMode: strPtr(r.TemporaryMode),
			TemporaryRange: strPtr(r.TemporaryRange), TemporaryAccessStartTime: optTime(r.TemporaryAccessStartTime),
			TemporaryAccessEndTime: optTime(r.TemporaryAccessEndTime), CreatedAt: rfc3339(r.CreatedAt), UpdatedAt: rfc3339(r.UpdatedAt)}
	}
	return out
}

type wireMembership struct {
	ID                  string               `json:"id"`
	IdentityID          string               `json:"identityId"`
	ProjectID           string               `json:"projectId"`
	Roles               []wireMembershipRole `json:"roles"`
	LastLoginAuthMethod *string              `json:"lastLoginAuthMethod"`
	LastLoginTime       *string              `json:"lastLoginTime"`
	CreatedAt           string               `json:"createdAt"`
	UpdatedAt           string               `json:"updatedAt"`
	Identity            struct {
		ID                  string   `json:"id"`
		Name                string   `json:"name"`
		HasDeleteProtection bool     `json:"hasDeleteProtection"`
		AuthMethods         []string `json:"authMethods"`
	} `json:"identity"`
	Project struct {
		ID   string `json:"id"`
		Name string `json:"name"`
	} `json:"project"`
}

func toWireMembership(m project.Membership) wireMembership {
	w := wireMembership{ID: m.ID, IdentityID: m.IdentityID, ProjectID: m.ProjectID, Roles: toWireRoles(m.ID, m.Roles),
		LastLoginAuthMethod: strPtr(m.LastLoginAuthMethod), LastLoginTime: optTime(m.LastLoginTime),
		CreatedAt: rfc3339(m.CreatedAt), UpdatedAt: rfc3339(m.UpdatedAt)}
	w.Identity.ID, w.Identity.Name, w.Identity.AuthMethods = m.IdentityID, m.IdentityName, m.IdentityAuthMethods
	w.Identity.HasDeleteProtection = m.IdentityHasDeleteProtection
	w.Project.ID, w.Project.Name = m.ProjectID, m.ProjectName
	return w
}

func writeMembership(w http.ResponseWriter, m project.Membership) error {
	return writeJSON(w, http.StatusOK, struct {
		IdentityMembership wireMembership `json:"identityMembership"`
	}{toWireMembership(m)})
}

type roleGrantIn struct {
	Role                     string `json:"role"`
	IsTemporary              bool   `json:"isTemporary"`
	TemporaryMode            string `json:"temporaryMode"`
	TemporaryRange           string `json:"temporaryRange"`
	TemporaryAccessStartTime string `json:"temporaryAccessStartTime"`
}

type membershipRequest struct {
	Role  string        `json:"role"`
	Roles []roleGrantIn `json:"roles"`
}

// decodeGrants reads a membership request's roles (Infisical's "roles", or
// the single "role"), defaultRole when it names none.
func (s *Server) decodeGrants(r *http.Request, defaultRole string) ([]project.RoleGrant, error) {
	var req membershipRequest
	if err := s.decode(r, &req); err != nil {
		return nil, err
	}
	return req.grants(defaultRole)
}

func (q membershipRequest) grants(defaultRole string) ([]project.RoleGrant, error) {
	in := q.Roles
	if len(in) == 0 && q.Role != "" {
		in = []roleGrantIn{{Role: q.Role}}
	}
	if len(in) == 0 && defaultRole != "" {
		in = []roleGrantIn{{Role: defaultRole}}
	}
	out := make([]project.RoleGrant, len(in))
	for i, g := range in {
		var start time.Time
		if g.TemporaryAccessStartTime != "" {
			t, err := time.Parse(time.RFC3339Nano, g.TemporaryAccessStartTime)
			if err != nil {
				return nil, field("temporaryAccessStartTime", "Invalid datetime")
			}
			if t.Year() > 1 { // Terraform sends 0001-01-01T00:00:00Z for "none"
				start = t
			}
		}
		out[i] = project.RoleGrant{Role: g.Role, IsTemporary: g.IsTemporary, TemporaryMode: g.TemporaryMode,
			TemporaryRange: g.TemporaryRange, TemporaryAccessStartTime: start}
	}
	return out, nil
}

func (s *Server) membershipAdd(w http.ResponseWriter, r *http.Request) error {
	grants, err := s.decodeGrants(r, "no-access")
	if err != nil {
		return err
	}
	m, err := s.svc.Memberships.Add(r.Context(), actorFrom(r.Context()), r.PathValue("projectId"), r.PathValue("identityId"), grants)
	if err != nil {
		return err
	}
	return writeMembership(w, m)
}

func (s *Server) membershipGet(w http.ResponseWriter, r *http.Request) error {
	m, err := s.svc.Memberships.Get(r.Context(), actorFrom(r.Context()), r.PathValue("projectId"), r.PathValue("identityId"))
	if err != nil {
		return err
	}
	return writeMembership(w, m)
}

// workspaceV2SubGet serves the list endpoints under a project registered in
// s.workspaceV2Lists.
func (s *Server) workspaceV2SubGet(w http.ResponseWriter, r *http.Request) error {
	if h, ok := s.workspaceV2Lists[r.PathValue("sub")]; ok {
		return h(w, r)
	}
	return errs.NotFoundf("Route GET:%s not found", r.URL.Path)
}

func (s *Server) membershipGetByID(w http.ResponseWriter, r *http.Request) error {
	m, err := s.svc.Memberships.GetByID(r.Context(), actorFrom(r.Context()), r.PathValue("membershipId"))
	if err != nil {
		return err
	}
	return writeMembership(w, m)
}

func (s *Server) membershipList(w http.ResponseWriter, r *http.Request) error {
	offset, err := queryInt(r, 0, 0, 1<<30, "offset")
	if err != nil {
		return err
	}
	limit, err := queryInt(r, 100, 1, 20000, "limit")
	if err != nil {
		return err
	}
	list, total, err := s.svc.Memberships.List(r.Context(), actorFrom(r.Context()), r.PathValue("projectId"), offset, limit)
	if err != nil {
		return err
	}
	out := make([]wireMembership, len(list))
	for i, m := range list {
		out[i] = toWireMembership(m)
	}
	return writeJSON(w, http.StatusOK, struct {
		IdentityMemberships []wireMembership `json:"identityMemberships"`
		TotalCount          int              `json:"totalCount"`
	}{out, total})
}

func (s *Server) membershipUpdate(w http.ResponseWriter, r *http.Request) error {
	grants, err := s.decodeGrants(r, "")
	if err != nil {
		return err
	}
	m, err := s.svc.Memberships.UpdateRoles(r.Context(), actorFrom(r.Context()), r.PathValue("projectId"), r.PathValue("identityId"), grants)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, struct {
		Roles              []wireMembershipRole `json:"roles"`
		IdentityMembership wireMembership       `json:"identityMembership"`
	}{toWireRoles(m.ID, m.Roles), toWireMembership(m)})
}

func (s *Server) membershipRemove(w http.ResponseWriter, r *http.Request) error {
	m, err := s.svc.Memberships.Remove(r.Context(), actorFrom(r.Context()), r.PathValue("projectId"), r.PathValue("identityId"))
	if err != nil {
		return err
	}
	return writeMembership(w, m)
}

type wireRole struct {
	ID          string       `json:"id"`
	ProjectID   string       `json:"projectId"`
	Slug        string       `json:"slug"`
	Name        string       `json:"name"`
	Description string       `json:"description"`
	Permissions []authz.Rule `json:"permissions,omitempty"`
	CreatedAt   *string      `json:"createdAt"`
	UpdatedAt   *string      `json:"updatedAt"`
}

func toWireRole(r project.Role, withPermissions bool) wireRole {
	w := wireRole{ID: r.ID, ProjectID: r.ProjectID, Slug: r.Slug, Name: r.Name, Description: r.Description,
		CreatedAt: optTime(&r.CreatedAt), UpdatedAt: optTime(&r.UpdatedAt)}
	if withPermissions {
		w.Permissions = r.Permissions
		if w.Permissions == nil {
			w.Permissions = []authz.Rule{}
		}
	}
	return w
}

func writeRole(w http.ResponseWriter, r project.Role) error {
	return writeJSON(w, http.StatusOK, struct {
		Role wireRole `json:"role"`
	}{toWireRole(r, true)})
}

type roleRequest struct {
	Slug        *string         `json:"slug"`
	Name        *string         `json:"name"`
	Description *string         `json:"description"`
	Permissions json.RawMessage `json:"permissions"`
}

func (q roleRequest) change() project.RoleChange {
	c := project.RoleChange{Slug: q.Slug, Name: q.Name, Description: q.Description}
	if len(q.Permissions) > 0 && string(q.Permissions) != "null" {
		c.Permissions = q.Permissions
	}
	if c.Slug != nil && *c.Slug == "" {
		c.Slug = nil
	}
	if c.Name != nil && *c.Name == "" {
		c.Name = nil
	}
	return c
}

func (s *Server) roleCreate(w http.ResponseWriter, r *http.Request) error {
	var req roleRequest
	if err := s.decode(r, &req); err != nil {
		return err
	}
	role, err := s.svc.Roles.Create(r.Context(), actorFrom(r.Context()), r.PathValue("projectId"), req.change())
	if err != nil {
		return err
	}
	return writeRole(w, role)
}

func (s *Server) roleUpdate(w http.ResponseWriter, r *http.Request) error {
	var req roleRequest
	if err := s.decode(r, &req); err != nil {
		return err
	}
	role, err := s.svc.Roles.Update(r.Context(), actorFrom(r.Context()), r.PathValue("projectId"), r.PathValue("roleId"), req.change())
	if err != nil {
		return err
	}
	return writeRole(w, role)
}

func (s *Server) roleDelete(w http.ResponseWriter, r *http.Request) error {
	role, err := s.svc.Roles.Delete(r.Context(), actorFrom(r.Context()), r.PathValue("projectId"), r.PathValue("roleId"))
	if err != nil {
		return err
	}
	return writeRole(w, role)
}

func (s *Server) roleList(w http.ResponseWriter, r *http.Request) error {
	roles, err := s.svc.Roles.List(r.Context(), actorFrom(r.Context()), r.PathValue("projectId"))
	if err != nil {
		return err
	}
	out := make([]wireRole, len(roles))
	for i, role := range roles {
		out[i] = toWireRole(role, false)
	}
	return writeJSON(w, http.StatusOK, struct {
		Roles []wireRole `json:"roles"`
	}{out})
}

func (s *Server) roleGetBySlug(w http.ResponseWriter, r *http.Request) error {
	role, err := s.svc.Roles.GetBySlug(r.Context(), actorFrom(r.Context()), r.PathValue("projectId"), r.PathValue("roleSlug"))
	if err != nil {
		return err
	}
	return writeRole(w, role)
}

func (s *Server) roleGet(w http.ResponseWriter, r *http.Request) error {
	role, err := s.svc.Roles.GetByID(r.Context(), actorFrom(r.Context()), r.PathValue("roleId"))
	if err != nil {
		return err
	}
	return writeRole(w, role)
}
