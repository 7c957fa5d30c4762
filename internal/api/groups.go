package api

import (
	"net/http"

	"github.com/lockbox-dev/lockbox/internal/authz"
	"github.com/lockbox-dev/lockbox/internal/errs"
	"github.com/lockbox-dev/lockbox/internal/org"
	"github.com/lockbox-dev/lockbox/internal/project"
)

// groupRoutes serves an organization's groups, their members, and groups
// in projects (the current routes and the legacy /api/v2/workspace ones
// the Terraform provider calls).
func (s *Server) groupRoutes(m *routeMux) {
	if s.svc.Groups == nil || s.svc.ProjectGroups == nil {
		return
	}
	const g = "/api/v1/groups"
	m.Handle("POST "+g, s.authed(s.groupCreate))
	m.Handle("GET "+g, s.authed(s.groupList))
	m.Handle("GET "+g+"/{id}", s.authed(s.groupGet))
	m.Handle("PATCH "+g+"/{id}", s.authed(s.groupUpdate))
	m.Handle("DELETE "+g+"/{id}", s.authed(s.groupDelete))
	m.Handle("GET "+g+"/{id}/users", s.authed(s.groupUsers))
	m.Handle("POST "+g+"/{id}/users/{username}", s.authed(s.groupAddUser))
	m.Handle("DELETE "+g+"/{id}/users/{username}", s.authed(s.groupRemoveUser))
	m.Handle("GET "+g+"/{id}/machine-identities", s.authed(s.groupIdentities))
	m.Handle("POST "+g+"/{id}/machine-identities/{identityId}", s.authed(s.groupAddIdentity))
	m.Handle("DELETE "+g+"/{id}/machine-identities/{identityId}", s.authed(s.groupRemoveIdentity))
	m.Handle("GET "+g+"/{id}/members", s.authed(s.groupMembers))
	m.Handle("GET "+g+"/{id}/projects", s.authed(s.groupProjects))
	// GET /api/v1/organization/{organizationId}/groups overlaps
	// /api/v1/organization/roles/{roleId}; one wildcard route serves it.
	m.Handle("GET /api/v1/organization/{organizationId}/{sub}", s.authed(s.orgSubGet))

	m.HandleSub(s.projectLists, "GET /api/v1/projects/{projectId}/groups", s.projectGroupList)
	m.HandleSub(s.workspaceV2Lists, "GET /api/v2/workspace/{projectId}/groups", s.projectGroupList)
	for _, base := range []string{"/api/v1/projects/{projectId}/groups", "/api/v2/workspace/{projectId}/groups"} {
		m.Handle("POST "+base+"/{groupId}", s.authed(s.projectGroupAdd))
		m.Handle("GET "+base+"/{groupId}", s.authed(s.projectGroupGet))
		m.Handle("PATCH "+base+"/{groupId}", s.authed(s.projectGroupUpdate))
		m.Handle("DELETE "+base+"/{groupId}", s.authed(s.projectGroupRemove))
	}
}

type wireGroup struct {
	ID             string  `json:"id"`
	OrgID          string  `json:"orgId"`
	Name           string  `json:"name"`
	Slug           string  `json:"slug"`
	Role           string  `json:"role"`
	RoleID         *string `json:"roleId"`
	CustomRoleSlug *string `json:"customRoleSlug"`
	Type           string  `json:"type"`
	CreatedAt      string  `json:"createdAt"`
	UpdatedAt      string  `json:"updatedAt"`
}

func toWireGroup(g org.Group) wireGroup {
	return wireGroup{ID: g.ID, OrgID: g.OrgID, Name: g.Name, Slug: g.Slug, Role: g.Role, RoleID: strPtr(g.CustomRoleID),
		CustomRoleSlug: strPtr(g.CustomRoleSlug), Type: "users", CreatedAt: rfc3339(g.CreatedAt), UpdatedAt: rfc3339(g.UpdatedAt)}
}

type groupIn struct {
	Name *string `json:"name"`
	Slug *string `json:"slug"`
	Role *string `json:"role"`
}

func (q groupIn) change() org.GroupChange {
	c := org.GroupChange{Name: q.Name, Slug: q.Slug, Role: q.Role}
	// Terraform sends "" for an absent optional attribute.
	if c.Slug != nil && *c.Slug == "" {
		c.Slug = nil
	}
	if c.Role != nil && *c.Role == "" {
		c.Role = nil
	}
	return c
}

func (s *Server) groupCreate(w http.ResponseWriter, r *http.Request) error {
	var req groupIn
	if err := s.decode(r, &req); err != nil {
		return err
	}
	g, err := s.svc.Groups.Create(r.Context(), actorFrom(r.Context()), req.change())
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, toWireGroup(g))
}

func (s *Server) groupList(w http.ResponseWriter, r *http.Request) error {
	list, err := s.svc.Groups.List(r.Context(), actorFrom(r.Context()), "")
	if err != nil {
		return err
	}
	out := make([]wireGroup, len(list))
	for i, g := range list {
		out[i] = toWireGroup(g)
	}
	return writeJSON(w, http.StatusOK, out)
}

// orgSubGet serves GET /api/v1/organization/{organizationId}/groups:
// {groups: [...]}, each with customRole {id, slug} when its role is custom.
func (s *Server) orgSubGet(w http.ResponseWriter, r *http.Request) error {
	if r.PathValue("sub") != "groups" {
		return errs.NotFoundf("Route GET:%s not found", r.URL.Path)
	}
	list, err := s.svc.Groups.List(r.Context(), actorFrom(r.Context()), r.PathValue("organizationId"))
	if err != nil {
		return err
	}
	type customRole struct {
		ID   string `json:"id"`
		Slug string `json:"slug"`
	}
	type item struct {
		wireGroup
		CustomRole *customRole `json:"customRole,omitempty"`
	}
	out := make([]item, len(list))
	for i, g := range list {
		out[i] = item{wireGroup: toWireGroup(g)}
		if g.CustomRoleID != "" {
			out[i].CustomRole = &customRole{g.CustomRoleID, g.CustomRoleSlug}
		}
	}
	return writeJSON(w, http.StatusOK, struct {
		Groups []item `json:"groups"`
	}{out})
}

func (s *Server) groupGet(w http.ResponseWriter, r *http.Request) error {
	g, err := s.svc.Groups.Get(r.Context(), actorFrom(r.Context()), r.PathValue("id"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, toWireGroup(g))
}

func (s *Server) groupUpdate(w http.ResponseWriter, r *http.Request) error {
	var req groupIn
	if err := s.decode(r, &req); err != nil {
		return err
	}
	c := req.change()
	if c.Name != nil && *c.Name == "" { // Terraform's "unchanged"
		c.Name = nil
	}
	g, err := s.svc.Groups.Update(r.Context(), actorFrom(r.Context()), r.PathValue("id"), c)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, toWireGroup(g))
}

func (s *Server) groupDelete(w http.ResponseWriter, r *http.Request) error {
	g, err := s.svc.Groups.Delete(r.Context(), actorFrom(r.Context()), r.PathValue("id"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, toWireGroup(g))
}

// groupPage reads offset, limit (Infisical's default 10, at most 100),
// search and username.
func groupPage(r *http.Request) (org.GroupFilter, error) {
	var f org.GroupFilter
	var err error
	if f.Offset, err = queryInt(r, 0, 0, 1<<30, "offset"); err != nil {
		return f, err
	}
	if f.Limit, err = queryInt(r, 10, 1, 100, "limit"); err != nil {
		return f, err
	}
	f.Search, f.Username = query(r, "search"), query(r, "username")
	if len(f.Search) > 320 || len(f.Username) > 320 {
		return f, field("search", "at most 320 characters")
	}
	return f, nil
}

// groupFilter is groupPage with filter (values in: existing or assigned;
// out: the others).
func groupFilter(r *http.Request, in, out string) (org.GroupFilter, error) {
	f, err := groupPage(r)
	if err != nil {
		return f, err
	}
	switch v := query(r, "filter"); v {
	case "":
	case in:
		t := true
		f.Members = &t
	case out:
		no := false
		f.Members = &no
	default:
		return f, field("filter", "filter must be %s or %s", in, out)
	}
	return f, nil
}

type wireGroupUser struct {
	ID        string `json:"id"`
	Email     string `json:"email"`
	Username  string `json:"username"`
	FirstName string `json:"firstName"`
	LastName  string `json:"lastName"`
}

func toWireGroupUser(u org.GroupUser) wireGroupUser {
	return wireGroupUser{ID: u.ID, Email: u.Email, Username: u.Username, FirstName: u.FirstName, LastName: u.LastName}
}

func (s *Server) groupUsers(w http.ResponseWriter, r *http.Request) error {
	f, err := groupFilter(r, "existingMembers", "nonMembers")
	if err != nil {
		return err
	}
	list, total, err := s.svc.Groups.Users(r.Context(), actorFrom(r.Context()), r.PathValue("id"), f)
	if err != nil {
		return err
	}
	type item struct {
		wireGroupUser
		IsPartOfGroup bool    `json:"isPartOfGroup"`
		JoinedGroupAt *string `json:"joinedGroupAt"`
	}
	out := make([]item, len(list))
	for i, u := range list {
		out[i] = item{toWireGroupUser(u), u.IsPartOfGroup, optTime(u.JoinedGroupAt)}
	}
	return writeJSON(w, http.StatusOK, struct {
		Users      []item `json:"users"`
		TotalCount int    `json:"totalCount"`
	}{out, total})
}

func (s *Server) groupAddUser(w http.ResponseWriter, r *http.Request) error {
	u, _, err := s.svc.Groups.AddUser(r.Context(), actorFrom(r.Context()), r.PathValue("id"), r.PathValue("username"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, toWireGroupUser(u))
}

func (s *Server) groupRemoveUser(w http.ResponseWriter, r *http.Request) error {
	u, _, err := s.svc.Groups.RemoveUser(r.Context(), actorFrom(r.Context()), r.PathValue("id"), r.PathValue("username"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, toWireGroupUser(u))
}

func (s *Server) groupIdentities(w http.ResponseWriter, r *http.Request) error {
	f, err := groupFilter(r, "assignedMachineIdentities", "nonAssignedMachineIdentities")
	if err != nil {
		return err
	}
	list, total, err := s.svc.Groups.Identities(r.Context(), actorFrom(r.Context()), r.PathValue("id"), f)
	if err != nil {
		return err
	}
	type item struct {
		ID            string  `json:"id"`
		Name          string  `json:"name"`
		IsPartOfGroup bool    `json:"isPartOfGroup"`
		JoinedGroupAt *string `json:"joinedGroupAt"`
	}
	out := make([]item, len(list))
	for i, id := range list {
		out[i] = item{id.ID, id.Name, id.IsPartOfGroup, optTime(id.JoinedGroupAt)}
	}
	return writeJSON(w, http.StatusOK, struct {
		MachineIdentities []item `json:"machineIdentities"`
		TotalCount        int    `json:"totalCount"`
	}{out, total})
}

func writeIdentityRef(w http.ResponseWriter, id string) error {
	return writeJSON(w, http.StatusOK, struct {
		ID string `json:"id"`
	}{id})
}

func (s *Server) groupAddIdentity(w http.ResponseWriter, r *http.Request) error {
	if _, err := s.svc.Groups.AddIdentity(r.Context(), actorFrom(r.Context()), r.PathValue("id"), r.PathValue("identityId")); err != nil {
		return err
	}
	return writeIdentityRef(w, r.PathValue("identityId"))
}

func (s *Server) groupRemoveIdentity(w http.ResponseWriter, r *http.Request) error {
	if _, err := s.svc.Groups.RemoveIdentity(r.Context(), actorFrom(r.Context()), r.PathValue("id"), r.PathValue("identityId")); err != nil {
		return err
	}
	return writeIdentityRef(w, r.PathValue("identityId"))
}

type wireProjectGroup struct {
	ID        string               `json:"id"`
	ProjectID string               `json:"projectId"`
	GroupID   string               `json:"groupId"`
	CreatedAt string               `json:"createdAt"`
	UpdatedAt string               `json:"updatedAt"`
	Roles     []wireMembershipRole `json:"roles"`
	Group     struct {
		ID    string `json:"id"`
		Name  string `json:"name"`
		Slug  string `json:"slug"`
		OrgID string `json:"orgId"`
	} `json:"group"`
}

func toWireProjectGroup(m project.GroupMembership) wireProjectGroup {
	w := wireProjectGroup{ID: m.ID, ProjectID: m.ProjectID, GroupID: m.Group.ID, CreatedAt: rfc3339(m.CreatedAt), UpdatedAt: rfc3339(m.UpdatedAt),
		Roles: toWireRoles(m.ID, m.Roles)}
	w.Group.ID, w.Group.Name, w.Group.Slug, w.Group.OrgID = m.Group.ID, m.Group.Name, m.Group.Slug, m.Group.OrgID
	return w
}

func writeProjectGroup(w http.ResponseWriter, m project.GroupMembership) error {
	return writeJSON(w, http.StatusOK, struct {
		GroupMembership wireProjectGroup `json:"groupMembership"`
	}{toWireProjectGroup(m)})
}

func (s *Server) projectGroupAdd(w http.ResponseWriter, r *http.Request) error {
	grants, err := s.decodeGrants(r, "no-access")
	if err != nil {
		return err
	}
	m, err := s.svc.ProjectGroups.Add(r.Context(), actorFrom(r.Context()), r.PathValue("projectId"), r.PathValue("groupId"), grants)
	if err != nil {
		return err
	}
	return writeProjectGroup(w, m)
}

func (s *Server) projectGroupGet(w http.ResponseWriter, r *http.Request) error {
	m, err := s.svc.ProjectGroups.Get(r.Context(), actorFrom(r.Context()), r.PathValue("projectId"), r.PathValue("groupId"))
	if err != nil {
		return err
	}
	return writeProjectGroup(w, m)
}

func (s *Server) projectGroupList(w http.ResponseWriter, r *http.Request) error {
	list, err := s.svc.ProjectGroups.List(r.Context(), actorFrom(r.Context()), r.PathValue("projectId"))
	if err != nil {
		return err
	}
	out := make([]wireProjectGroup, len(list))
	for i, m := range list {
		out[i] = toWireProjectGroup(m)
	}
	return writeJSON(w, http.StatusOK, struct {
		GroupMemberships []wireProjectGroup `json:"groupMemberships"`
	}{out})
}

func (s *Server) projectGroupUpdate(w http.ResponseWriter, r *http.Request) error {
	grants, err := s.decodeGrants(r, "")
	if err != nil {
		return err
	}
	m, err := s.svc.ProjectGroups.UpdateRoles(r.Context(), actorFrom(r.Context()), r.PathValue("projectId"), r.PathValue("groupId"), grants)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, struct {
		Roles []wireMembershipRole `json:"roles"`
	}{toWireRoles(m.ID, m.Roles)})
}

func (s *Server) projectGroupRemove(w http.ResponseWriter, r *http.Request) error {
	m, err := s.svc.ProjectGroups.Remove(r.Context(), actorFrom(r.Context()), r.PathValue("projectId"), r.PathValue("groupId"))
	if err != nil {
		return err
	}
	return writeProjectGroup(w, m)
}

// orderDirection reads orderBy (only "name") and orderDirection (asc, desc).
func orderDirection(r *http.Request, f *org.GroupFilter) error {
	if v := query(r, "orderBy"); v != "" && v != "name" {
		return field("orderBy", "orderBy must be name")
	}
	switch v := query(r, "orderDirection"); v {
	case "", "asc":
	case "desc":
		f.Descending = true
	default:
		return field("orderDirection", "orderDirection must be asc or desc")
	}
	return nil
}

func (s *Server) groupMembers(w http.ResponseWriter, r *http.Request) error {
	f, err := groupPage(r)
	if err != nil {
		return err
	}
	if err := orderDirection(r, &f); err != nil {
		return err
	}
	for _, v := range r.URL.Query()["memberTypeFilter"] {
		switch v {
		case "users":
			f.Kinds = append(f.Kinds, authz.ActorUser)
		case "machineIdentities", "identities":
			f.Kinds = append(f.Kinds, authz.ActorIdentity)
		default:
			return field("memberTypeFilter", "memberTypeFilter must be users or machineIdentities")
		}
	}
	list, total, err := s.svc.Groups.Members(r.Context(), actorFrom(r.Context()), r.PathValue("id"), f)
	if err != nil {
		return err
	}
	type identityRef struct {
		ID   string `json:"id"`
		Name string `json:"name"`
	}
	type item struct {
		ID              string         `json:"id"`
		JoinedGroupAt   string         `json:"joinedGroupAt"`
		Type            string         `json:"type"`
		User            *wireGroupUser `json:"user,omitempty"`
		MachineIdentity *identityRef   `json:"machineIdentity,omitempty"`
	}
	out := make([]item, len(list))
	for i, m := range list {
		if m.Kind == authz.ActorUser {
			u := toWireGroupUser(m.User)
			out[i] = item{ID: u.ID, JoinedGroupAt: rfc3339(m.JoinedGroupAt), Type: "user", User: &u}
		} else {
			out[i] = item{ID: m.Identity.ID, JoinedGroupAt: rfc3339(m.JoinedGroupAt), Type: "machineIdentity",
				MachineIdentity: &identityRef{m.Identity.ID, m.Identity.Name}}
		}
	}
	return writeJSON(w, http.StatusOK, struct {
		Members    []item `json:"members"`
		TotalCount int    `json:"totalCount"`
	}{out, total})
}

func (s *Server) groupProjects(w http.ResponseWriter, r *http.Request) error {
	f, err := groupFilter(r, "assignedProjects", "unassignedProjects")
	if err != nil {
		return err
	}
	if err := orderDirection(r, &f); err != nil {
		return err
	}
	list, total, err := s.svc.Groups.Projects(r.Context(), actorFrom(r.Context()), r.PathValue("id"), f)
	if err != nil {
		return err
	}
	type item struct {
		ID            string  `json:"id"`
		Name          string  `json:"name"`
		Slug          string  `json:"slug"`
		Description   string  `json:"description"`
		Type          string  `json:"type"`
		JoinedGroupAt *string `json:"joinedGroupAt"`
	}
	out := make([]item, len(list))
	for i, p := range list {
		out[i] = item{p.ID, p.Name, p.Slug, p.Description, p.Type, optTime(p.JoinedGroupAt)}
	}
	return writeJSON(w, http.StatusOK, struct {
		Projects   []item `json:"projects"`
		TotalCount int    `json:"totalCount"`
	}{out, total})
}
