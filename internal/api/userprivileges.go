package api

import (
	"encoding/json"
	"net/http"

	"github.com/lockbox-dev/lockbox/internal/project"
)

// userPrivilegeRoutes serves user-specific (additional) privileges, found
// by project membership: Infisical's current prefix and its older one.
func (s *Server) userPrivilegeRoutes(m *routeMux) {
	for _, prefix := range []string{"/api/v1/user-project-additional-privilege", "/api/v1/additional-privilege/users"} {
		m.Handle("POST "+prefix, s.authed(s.userPrivilegeCreate))
		m.Handle("GET "+prefix, s.authed(s.userPrivilegeList))
		m.Handle("GET "+prefix+"/{privilegeId}", s.authed(s.userPrivilegeGet))
		m.Handle("PATCH "+prefix+"/{privilegeId}", s.authed(s.userPrivilegeUpdate))
		m.Handle("DELETE "+prefix+"/{privilegeId}", s.authed(s.userPrivilegeDelete))
	}
	// The older API's create routes with the window in the body.
	m.Handle("POST /api/v1/additional-privilege/users/permanent", s.authed(s.userPrivilegeCreateV1(false)))
	m.Handle("POST /api/v1/additional-privilege/users/temporary", s.authed(s.userPrivilegeCreateV1(true)))
}

// wireUserPrivilege is Infisical's user additional privilege.
type wireUserPrivilege struct {
	wirePrivilegeFields
	UserID string `json:"userId"`
}

func toWireUserPrivilege(p project.Privilege, withPermissions bool) wireUserPrivilege {
	return wireUserPrivilege{toWirePrivilegeFields(p, withPermissions), p.UserID}
}

func writeUserPrivilege(w http.ResponseWriter, p project.Privilege) error {
	return writeJSON(w, http.StatusOK, struct {
		Privilege wireUserPrivilege `json:"privilege"`
	}{toWireUserPrivilege(p, true)})
}

type userPrivilegeCreateIn struct {
	ProjectMembershipID string          `json:"projectMembershipId"`
	Slug                string          `json:"slug"`
	Permissions         json.RawMessage `json:"permissions"`
	Type                temporaryIn     `json:"type"`
}

func (s *Server) userPrivilegeCreate(w http.ResponseWriter, r *http.Request) error {
	var in userPrivilegeCreateIn
	if err := s.decode(r, &in); err != nil {
		return err
	}
	if in.ProjectMembershipID == "" {
		return field("projectMembershipId", "Required")
	}
	tmp, err := in.Type.grant(in.Type.IsTemporary != nil && *in.Type.IsTemporary)
	if err != nil {
		return err
	}
	p, err := s.svc.Privileges.Create(r.Context(), actorFrom(r.Context()), project.NewPrivilege{MembershipID: in.ProjectMembershipID,
		Slug: in.Slug, Permissions: in.Permissions, Temporary: tmp})
	if err != nil {
		return err
	}
	return writeUserPrivilege(w, p)
}

type userPrivilegeCreateV1In struct {
	ProjectMembershipID string            `json:"projectMembershipId"`
	Slug                string            `json:"slug"`
	Permissions         json.RawMessage   `json:"permissions"`
	PrivilegePermission *legacyPermission `json:"privilegePermission"`
	temporaryIn
}

func (s *Server) userPrivilegeCreateV1(temporary bool) func(http.ResponseWriter, *http.Request) error {
	return func(w http.ResponseWriter, r *http.Request) error {
		var in userPrivilegeCreateV1In
		if err := s.decode(r, &in); err != nil {
			return err
		}
		if in.ProjectMembershipID == "" {
			return field("projectMembershipId", "Required")
		}
		rules, err := rulesJSON(in.Permissions, in.PrivilegePermission)
		if err != nil {
			return err
		}
		tmp, err := in.temporaryIn.grant(temporary)
		if err != nil {
			return err
		}
		p, err := s.svc.Privileges.Create(r.Context(), actorFrom(r.Context()), project.NewPrivilege{MembershipID: in.ProjectMembershipID,
			Slug: in.Slug, Permissions: rules, Temporary: tmp})
		if err != nil {
			return err
		}
		return writeUserPrivilege(w, p)
	}
}

func (s *Server) userPrivilegeUpdate(w http.ResponseWriter, r *http.Request) error {
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
	p, err := s.svc.Privileges.UpdateUser(r.Context(), actorFrom(r.Context()), r.PathValue("privilegeId"), c)
	if err != nil {
		return err
	}
	return writeUserPrivilege(w, p)
}

func (s *Server) userPrivilegeGet(w http.ResponseWriter, r *http.Request) error {
	p, err := s.svc.Privileges.GetUser(r.Context(), actorFrom(r.Context()), r.PathValue("privilegeId"))
	if err != nil {
		return err
	}
	return writeUserPrivilege(w, p)
}

func (s *Server) userPrivilegeDelete(w http.ResponseWriter, r *http.Request) error {
	p, err := s.svc.Privileges.DeleteUser(r.Context(), actorFrom(r.Context()), r.PathValue("privilegeId"))
	if err != nil {
		return err
	}
	return writeUserPrivilege(w, p)
}

// userPrivilegeList lists a membership's privileges without their rules,
// as Infisical's list does.
func (s *Server) userPrivilegeList(w http.ResponseWriter, r *http.Request) error {
	id := query(r, "projectMembershipId")
	if id == "" {
		return field("projectMembershipId", "Required")
	}
	list, err := s.svc.Privileges.ListUser(r.Context(), actorFrom(r.Context()), id)
	if err != nil {
		return err
	}
	out := make([]wireUserPrivilege, len(list))
	for i, p := range list {
		out[i] = toWireUserPrivilege(p, false)
	}
	return writeJSON(w, http.StatusOK, struct {
		Privileges []wireUserPrivilege `json:"privileges"`
	}{out})
}
