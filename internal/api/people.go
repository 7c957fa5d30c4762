package api

import (
	"encoding/json"
	"net/http"
	"time"

	"github.com/lockbox-dev/lockbox/internal/authz"
	"github.com/lockbox-dev/lockbox/internal/errs"
	"github.com/lockbox-dev/lockbox/internal/identity"
	"github.com/lockbox-dev/lockbox/internal/org"
	"github.com/lockbox-dev/lockbox/internal/project"
)

// peopleRoutes serves users in organizations (memberships, invitations),
// organization roles, and users in projects.
func (s *Server) peopleRoutes(m *routeMux) {
	if s.svc.OrgMembers == nil {
		return
	}
	const om = "/api/v2/organizations/{orgId}/memberships"
	m.Handle("GET "+om, s.authed(s.orgMemberList))
	m.Handle("DELETE "+om, s.authed(s.orgMemberDeleteMany))
	m.Handle("GET "+om+"/{membershipId}", s.authed(s.orgMemberGet))
	m.Handle("PATCH "+om+"/{membershipId}", s.authed(s.orgMemberUpdate))
	m.Handle("DELETE "+om+"/{membershipId}", s.authed(s.orgMemberDelete))
	m.Handle("GET /api/v2/organizations/{orgId}/identity-memberships", s.authed(s.orgIdentityMemberships))

	m.Handle("POST /api/v1/invite-org/signup", s.authed(s.inviteSignup))
	m.Handle("POST /api/v1/invite-org/verify", s.limited(s.handle(s.inviteVerify)))
	m.Handle("POST /api/v1/invite-org/accept", s.limited(s.handle(s.inviteAccept)))

	const roles = "/api/v1/organization/roles"
	m.Handle("GET "+roles, s.authed(s.orgRoleList))
	m.Handle("POST "+roles, s.authed(s.orgRoleCreate))
	m.Handle("GET "+roles+"/{roleId}", s.authed(s.orgRoleGet))
	m.Handle("GET "+roles+"/slug/{roleSlug}", s.authed(s.orgRoleGetBySlug))
	m.Handle("PATCH "+roles+"/{roleId}", s.authed(s.orgRoleUpdate))
	m.Handle("DELETE "+roles+"/{roleId}", s.authed(s.orgRoleDelete))

	// Project users: current routes, and the legacy ones clients still call.
	m.HandleSub(s.projectLists, "GET /api/v1/projects/{projectId}/memberships", s.projectUserList)
	m.HandleSub(s.workspaceLists, "GET /api/v1/workspace/{projectId}/memberships", s.projectUserList)
	for _, base := range []string{"/api/v1/projects/{projectId}/memberships", "/api/v1/workspace/{projectId}/memberships"} {
		m.Handle("GET "+base+"/{membershipId}", s.authed(s.projectUserGet))
		m.Handle("PATCH "+base+"/{membershipId}", s.authed(s.projectUserUpdate))
		m.Handle("DELETE "+base+"/{membershipId}", s.authed(s.projectUserDelete))
		m.Handle("POST "+base+"/details", s.authed(s.projectUserDetails))
	}
	m.Handle("GET /api/v1/projects/{projectId}/user/{userId}/membership", s.authed(s.projectUserByUserID))
	for _, base := range []string{"/api/v1/projects/{projectId}/memberships", "/api/v2/workspace/{projectId}/memberships"} {
		m.Handle("POST "+base, s.authed(s.projectUserAdd))
		m.Handle("DELETE "+base, s.authed(s.projectUserRemoveMany))
	}
}

type wireOrgUser struct {
	ID              string  `json:"id"`
	Email           string  `json:"email"`
	Username        string  `json:"username"`
	FirstName       string  `json:"firstName"`
	LastName        string  `json:"lastName"`
	IsEmailVerified bool    `json:"isEmailVerified"`
	PublicKey       *string `json:"publicKey"`
}

type wireOrgMember struct {
	ID          string      `json:"id"`
	OrgID       string      `json:"orgId"`
	UserID      string      `json:"userId"`
	Role        string      `json:"role"`
	RoleID      *string     `json:"roleId"`
	RoleSlug    string      `json:"roleSlug"`
	Status      string      `json:"status"`
	IsActive    bool        `json:"isActive"`
	InviteEmail string      `json:"inviteEmail"`
	CreatedAt   string      `json:"createdAt"`
	UpdatedAt   string      `json:"updatedAt"`
	User        wireOrgUser `json:"user"`
}

func toWireOrgMember(m org.Member) wireOrgMember {
	return wireOrgMember{ID: m.ID, OrgID: m.OrgID, UserID: m.UserID, Role: m.Role, RoleID: strPtr(m.CustomRoleID), RoleSlug: m.RoleSlug(),
		Status: m.Status, IsActive: m.IsActive, InviteEmail: m.Email, CreatedAt: rfc3339(m.CreatedAt), UpdatedAt: rfc3339(m.UpdatedAt),
		User: wireOrgUser{ID: m.UserID, Email: m.Email, Username: m.Username, FirstName: m.FirstName, LastName: m.LastName,
			IsEmailVerified: m.Status == org.StatusAccepted}}
}

func writeOrgMember(w http.ResponseWriter, m org.Member) error {
	return writeJSON(w, http.StatusOK, struct {
		Membership wireOrgMember `json:"membership"`
	}{toWireOrgMember(m)})
}

func (s *Server) orgMemberList(w http.ResponseWriter, r *http.Request) error {
	list, err := s.svc.OrgMembers.List(r.Context(), actorFrom(r.Context()), r.PathValue("orgId"))
	if err != nil {
		return err
	}
	out := make([]wireOrgMember, len(list))
	for i, m := range list {
		out[i] = toWireOrgMember(m)
	}
	return writeJSON(w, http.StatusOK, struct {
		Users []wireOrgMember `json:"users"`
	}{out})
}

func (s *Server) orgMemberGet(w http.ResponseWriter, r *http.Request) error {
	m, err := s.svc.OrgMembers.Get(r.Context(), actorFrom(r.Context()), r.PathValue("orgId"), r.PathValue("membershipId"))
	if err != nil {
		return err
	}
	return writeOrgMember(w, m)
}

func (s *Server) orgMemberUpdate(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		Role     *string `json:"role"`
		IsActive *bool   `json:"isActive"`
	}
	if err := s.decode(r, &req); err != nil {
		return err
	}
	m, err := s.svc.OrgMembers.Update(r.Context(), actorFrom(r.Context()), r.PathValue("orgId"), r.PathValue("membershipId"),
		org.MemberChange{Role: req.Role, IsActive: req.IsActive})
	if err != nil {
		return err
	}
	return writeOrgMember(w, m)
}

func (s *Server) orgMemberDelete(w http.ResponseWriter, r *http.Request) error {
	m, err := s.svc.OrgMembers.Remove(r.Context(), actorFrom(r.Context()), r.PathValue("orgId"), r.PathValue("membershipId"))
	if err != nil {
		return err
	}
	return writeOrgMember(w, m)
}

func (s *Server) orgMemberDeleteMany(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		MembershipIDs []string `json:"membershipIds"`
	}
	if err := s.decode(r, &req); err != nil {
		return err
	}
	list, err := s.svc.OrgMembers.RemoveMany(r.Context(), actorFrom(r.Context()), r.PathValue("orgId"), req.MembershipIDs)
	if err != nil {
		return err
	}
	out := make([]wireOrgMember, len(list))
	for i, m := range list {
		out[i] = toWireOrgMember(m)
	}
	return writeJSON(w, http.StatusOK, struct {
		Memberships []wireOrgMember `json:"memberships"`
	}{out})
}

func (s *Server) orgIdentityMemberships(w http.ResponseWriter, r *http.Request) error {
	actor := actorFrom(r.Context())
	if orgID := r.PathValue("orgId"); orgID != actor.OrgID {
		return errs.Forbiddenf("You are not a member of organization %s", orgID).WithCode("PermissionDenied")
	}
	offset, err := queryInt(r, 0, 0, 1<<30, "offset")
	if err != nil {
		return err
	}
	limit, err := queryInt(r, 100, 1, 20000, "limit")
	if err != nil {
		return err
	}
	list, total, err := s.svc.Identities.List(r.Context(), actor, actor.OrgID, offset, limit)
	if err != nil {
		return err
	}
	out := make([]wireIdentityMembership, len(list))
	for i, oi := range list {
		out[i] = toWireIdentityMembership(oi)
	}
	return writeJSON(w, http.StatusOK, struct {
		IdentityMemberships []wireIdentityMembership `json:"identityMemberships"`
		TotalCount          int                      `json:"totalCount"`
	}{out, total})
}

// origin is the scheme and host the request reached, the default base of
// invitation links when LOCKBOX_SITE_URL is not set.
func origin(r *http.Request) string {
	scheme := "http"
	if OverTLS(r) {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

type wireInviteLink struct {
	Email        string `json:"email"`
	Link         string `json:"link"`
	MembershipID string `json:"membershipId"`
	Mailed       bool   `json:"mailed"`
}

func (s *Server) inviteSignup(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		InviteeEmails        []string `json:"inviteeEmails"`
		OrganizationID       string   `json:"organizationId"`
		OrganizationRoleSlug string   `json:"organizationRoleSlug"`
		Projects             []struct {
			ID              string   `json:"id"`
			ProjectRoleSlug []string `json:"projectRoleSlug"`
		} `json:"projects"`
	}
	if err := s.decode(r, &req); err != nil {
		return err
	}
	if req.OrganizationID == "" {
		return field("organizationId", "Required")
	}
	projects := make([]org.ProjectInvite, len(req.Projects))
	for i, p := range req.Projects {
		if p.ID == "" {
			return field("projects", "each project needs an id")
		}
		projects[i] = org.ProjectInvite{ProjectID: p.ID, Roles: p.ProjectRoleSlug}
	}
	links, err := s.svc.OrgMembers.Invite(r.Context(), actorFrom(r.Context()), org.InviteRequest{OrgID: req.OrganizationID,
		Emails: req.InviteeEmails, Role: req.OrganizationRoleSlug, LinkBase: origin(r), Projects: projects})
	if err != nil {
		return err
	}
	out := make([]wireInviteLink, len(links))
	for i, l := range links {
		out[i] = wireInviteLink{Email: l.Email, Link: l.Link, MembershipID: l.Member.ID, Mailed: l.Mailed}
	}
	return writeJSON(w, http.StatusOK, struct {
		Message             string           `json:"message"`
		CompleteInviteLinks []wireInviteLink `json:"completeInviteLinks"`
	}{"User(s) invited to the organization", out})
}

type inviteIn struct {
	Email          string `json:"email"`
	OrganizationID string `json:"organizationId"`
	Code           string `json:"code"`
	Token          string `json:"token"`
}

func (q inviteIn) code() string {
	if q.Code != "" {
		return q.Code
	}
	return q.Token
}

func toWireOrgUser(u identity.User) wireOrgUser {
	return wireOrgUser{ID: u.ID, Email: u.Email, Username: u.Username, FirstName: u.FirstName, LastName: u.LastName, IsEmailVerified: true}
}

func (s *Server) inviteVerify(w http.ResponseWriter, r *http.Request) error {
	var req inviteIn
	if err := s.decode(r, &req); err != nil {
		return err
	}
	u, err := s.svc.OrgMembers.VerifyInvite(r.Context(), req.OrganizationID, req.Email, req.code())
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, struct {
		Message string      `json:"message"`
		User    wireOrgUser `json:"user"`
		// HasPassword tells the page whether to ask for a new password.
		HasPassword bool `json:"hasPassword"`
	}{"Successfully verified invitation", toWireOrgUser(u), u.PasswordHash != ""})
}

func (s *Server) inviteAccept(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		inviteIn
		Password  string `json:"password"`
		FirstName string `json:"firstName"`
		LastName  string `json:"lastName"`
	}
	if err := s.decode(r, &req); err != nil {
		return err
	}
	u, err := s.svc.OrgMembers.AcceptInvite(r.Context(), req.OrganizationID, req.Email, req.code(), req.Password, req.FirstName, req.LastName,
		clientIP(r), r.UserAgent())
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, struct {
		Message string      `json:"message"`
		User    wireOrgUser `json:"user"`
	}{"Invitation accepted; log in with your email and password", toWireOrgUser(u)})
}

type wireOrgRole struct {
	ID          string       `json:"id"`
	OrgID       string       `json:"orgId"`
	Slug        string       `json:"slug"`
	Name        string       `json:"name"`
	Description string       `json:"description"`
	Permissions []authz.Rule `json:"permissions"`
	CreatedAt   string       `json:"createdAt"`
	UpdatedAt   string       `json:"updatedAt"`
}

func toWireOrgRole(r org.Role) wireOrgRole {
	perms := r.Permissions
	if perms == nil {
		perms = []authz.Rule{}
	}
	created, updated := r.CreatedAt, r.UpdatedAt
	if created.IsZero() { // built-in roles
		created, updated = time.Unix(0, 0), time.Unix(0, 0)
	}
	return wireOrgRole{ID: r.ID, OrgID: r.OrgID, Slug: r.Slug, Name: r.Name, Description: r.Description, Permissions: perms,
		CreatedAt: rfc3339(created), UpdatedAt: rfc3339(updated)}
}

func writeOrgRole(w http.ResponseWriter, r org.Role) error {
	return writeJSON(w, http.StatusOK, struct {
		Role wireOrgRole `json:"role"`
	}{toWireOrgRole(r)})
}

func (s *Server) orgRoleList(w http.ResponseWriter, r *http.Request) error {
	list, err := s.svc.OrgRoles.List(r.Context(), actorFrom(r.Context()))
	if err != nil {
		return err
	}
	out := make([]wireOrgRole, len(list))
	for i, ro := range list {
		out[i] = toWireOrgRole(ro)
	}
	// Infisical's shape: {data: {roles}}.
	var body struct {
		Data struct {
			Roles []wireOrgRole `json:"roles"`
		} `json:"data"`
	}
	body.Data.Roles = out
	return writeJSON(w, http.StatusOK, body)
}

type orgRoleIn struct {
	Slug        *string         `json:"slug"`
	Name        *string         `json:"name"`
	Description *string         `json:"description"`
	Permissions json.RawMessage `json:"permissions"`
}

func (q orgRoleIn) change() org.RoleChange {
	c := org.RoleChange{Slug: q.Slug, Name: q.Name, Description: q.Description}
	if len(q.Permissions) > 0 && string(q.Permissions) != "null" {
		c.Permissions = q.Permissions
	}
	if c.Slug != nil && *c.Slug == "" { // Terraform sends "" for "unchanged"
		c.Slug = nil
	}
	if c.Name != nil && *c.Name == "" {
		c.Name = nil
	}
	return c
}

func (s *Server) orgRoleCreate(w http.ResponseWriter, r *http.Request) error {
	var req orgRoleIn
	if err := s.decode(r, &req); err != nil {
		return err
	}
	ro, err := s.svc.OrgRoles.Create(r.Context(), actorFrom(r.Context()), req.change())
	if err != nil {
		return err
	}
	return writeOrgRole(w, ro)
}

func (s *Server) orgRoleGet(w http.ResponseWriter, r *http.Request) error {
	ro, err := s.svc.OrgRoles.Get(r.Context(), actorFrom(r.Context()), r.PathValue("roleId"))
	if err != nil {
		return err
	}
	return writeOrgRole(w, ro)
}

func (s *Server) orgRoleGetBySlug(w http.ResponseWriter, r *http.Request) error {
	ro, err := s.svc.OrgRoles.GetBySlug(r.Context(), actorFrom(r.Context()), r.PathValue("roleSlug"))
	if err != nil {
		return err
	}
	return writeOrgRole(w, ro)
}

func (s *Server) orgRoleUpdate(w http.ResponseWriter, r *http.Request) error {
	var req orgRoleIn
	if err := s.decode(r, &req); err != nil {
		return err
	}
	ro, err := s.svc.OrgRoles.Update(r.Context(), actorFrom(r.Context()), r.PathValue("roleId"), req.change())
	if err != nil {
		return err
	}
	return writeOrgRole(w, ro)
}

func (s *Server) orgRoleDelete(w http.ResponseWriter, r *http.Request) error {
	ro, err := s.svc.OrgRoles.Delete(r.Context(), actorFrom(r.Context()), r.PathValue("roleId"))
	if err != nil {
		return err
	}
	return writeOrgRole(w, ro)
}

type wireProjectUser struct {
	ID        string               `json:"id"`
	UserID    string               `json:"userId"`
	ProjectID string               `json:"projectId"`
	Roles     []wireMembershipRole `json:"roles"`
	CreatedAt string               `json:"createdAt"`
	UpdatedAt string               `json:"updatedAt"`
	User      wireOrgUser          `json:"user"`
	Project   struct {
		ID   string `json:"id"`
		Name string `json:"name"`
	} `json:"project"`
}

func toWireProjectUser(m project.UserMembership) wireProjectUser {
	w := wireProjectUser{ID: m.ID, UserID: m.UserID, ProjectID: m.ProjectID, Roles: toWireRoles(m.ID, m.Roles),
		CreatedAt: rfc3339(m.CreatedAt), UpdatedAt: rfc3339(m.UpdatedAt),
		User: wireOrgUser{ID: m.UserID, Email: m.Email, Username: m.Username, FirstName: m.FirstName, LastName: m.LastName, IsEmailVerified: true}}
	w.Project.ID, w.Project.Name = m.ProjectID, m.ProjectName
	return w
}

func writeProjectUser(w http.ResponseWriter, m project.UserMembership) error {
	return writeJSON(w, http.StatusOK, struct {
		Membership wireProjectUser `json:"membership"`
	}{toWireProjectUser(m)})
}

func writeProjectUsers(w http.ResponseWriter, list []project.UserMembership) error {
	out := make([]wireProjectUser, len(list))
	for i, m := range list {
		out[i] = toWireProjectUser(m)
	}
	return writeJSON(w, http.StatusOK, struct {
		Memberships []wireProjectUser `json:"memberships"`
	}{out})
}

func (s *Server) projectUserList(w http.ResponseWriter, r *http.Request) error {
	list, err := s.svc.ProjectUsers.List(r.Context(), actorFrom(r.Context()), r.PathValue("projectId"))
	if err != nil {
		return err
	}
	return writeProjectUsers(w, list)
}

func (s *Server) projectUserGet(w http.ResponseWriter, r *http.Request) error {
	m, err := s.svc.ProjectUsers.Get(r.Context(), actorFrom(r.Context()), r.PathValue("projectId"), r.PathValue("membershipId"))
	if err != nil {
		return err
	}
	return writeProjectUser(w, m)
}

func (s *Server) projectUserByUserID(w http.ResponseWriter, r *http.Request) error {
	m, err := s.svc.ProjectUsers.GetByUser(r.Context(), actorFrom(r.Context()), r.PathValue("projectId"), r.PathValue("userId"))
	if err != nil {
		return err
	}
	return writeProjectUser(w, m)
}

func (s *Server) projectUserDetails(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		Username string `json:"username"`
		Email    string `json:"email"`
	}
	if err := s.decode(r, &req); err != nil {
		return err
	}
	login := req.Username
	if login == "" {
		login = req.Email
	}
	if login == "" {
		return field("username", "Required")
	}
	m, err := s.svc.ProjectUsers.GetByLogin(r.Context(), actorFrom(r.Context()), r.PathValue("projectId"), login)
	if err != nil {
		return err
	}
	return writeProjectUser(w, m)
}

func (s *Server) projectUserUpdate(w http.ResponseWriter, r *http.Request) error {
	grants, err := s.decodeGrants(r, "")
	if err != nil {
		return err
	}
	m, err := s.svc.ProjectUsers.UpdateRoles(r.Context(), actorFrom(r.Context()), r.PathValue("projectId"), r.PathValue("membershipId"), grants)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, struct {
		Roles []wireMembershipRole `json:"roles"`
	}{toWireRoles(m.ID, m.Roles)})
}

func (s *Server) projectUserDelete(w http.ResponseWriter, r *http.Request) error {
	m, err := s.svc.ProjectUsers.Remove(r.Context(), actorFrom(r.Context()), r.PathValue("projectId"), r.PathValue("membershipId"))
	if err != nil {
		return err
	}
	return writeProjectUser(w, m)
}

type projectUsersIn struct {
	Emails    []string `json:"emails"`
	Usernames []string `json:"usernames"`
	RoleSlugs []string `json:"roleSlugs"`
}

func (q projectUsersIn) logins() []string {
	return append(append([]string{}, q.Emails...), q.Usernames...)
}

func (s *Server) projectUserAdd(w http.ResponseWriter, r *http.Request) error {
	var req projectUsersIn
	if err := s.decode(r, &req); err != nil {
		return err
	}
	grants := make([]project.RoleGrant, len(req.RoleSlugs))
	for i, slug := range req.RoleSlugs {
		grants[i] = project.RoleGrant{Role: slug}
	}
	list, err := s.svc.ProjectUsers.Add(r.Context(), actorFrom(r.Context()), r.PathValue("projectId"), req.logins(), grants)
	if err != nil {
		return err
	}
	return writeProjectUsers(w, list)
}

func (s *Server) projectUserRemoveMany(w http.ResponseWriter, r *http.Request) error {
	var req projectUsersIn
	if err := s.decode(r, &req); err != nil {
		return err
	}
	list, err := s.svc.ProjectUsers.RemoveByLogins(r.Context(), actorFrom(r.Context()), r.PathValue("projectId"), req.logins())
	if err != nil {
		return err
	}
	return writeProjectUsers(w, list)
}
