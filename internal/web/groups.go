package web

import (
	"net/http"
	"slices"
	"strings"

	"github.com/lockbox-dev/lockbox/internal/authz"
	"github.com/lockbox-dev/lockbox/internal/errs"
	"github.com/lockbox-dev/lockbox/internal/org"
	"github.com/lockbox-dev/lockbox/internal/project"
)

// Groups of the organization (org.Groups) and their project memberships
// (project.Groups). A group's project roles are held by every member; its
// organization role adds to theirs.

// maxGroupListing bounds the members, projects and candidate identities
// one group page lists.
const maxGroupListing = 500

func (h *Handler) orgGroups(w http.ResponseWriter, q *req) error {
	list, err := h.svc.Groups.List(q.ctx(), q.actor, q.actor.OrgID)
	if err != nil {
		return err
	}
	can, err := h.orgCan(q)
	if err != nil {
		return err
	}
	d := map[string]any{"Title": "Groups", "Groups": list, "Can": can}
	if can["createGroup"] && can["readRoles"] {
		roles, err := h.svc.OrgRoles.Grantable(q.ctx(), q.actor)
		if err != nil {
			return err
		}
		d["Roles"] = roles
	}
	h.render(w, q, http.StatusOK, "groups", d)
	return nil
}

func (h *Handler) groupCreate(w http.ResponseWriter, q *req) error {
	name := strings.TrimSpace(q.PostFormValue("name"))
	c := org.GroupChange{Name: &name}
	if role := q.PostFormValue("role"); role != "" { // none: the domain's default, no-access
		c.Role = &role
	}
	if slug := strings.TrimSpace(q.PostFormValue("slug")); slug != "" {
		c.Slug = &slug
	}
	g, err := h.svc.Groups.Create(q.ctx(), q.actor, c)
	if err != nil {
		return err
	}
	redirect(w, q.Request, "/org/groups/"+g.ID)
	return nil
}

// groupRow is one member of a group as its page lists them.
type groupRow struct {
	Kind     string // "user" or "identity"
	ID, Name string // a user's username (what removal names), an identity's name
	Email    string
	Joined   string
}

func (h *Handler) groupPage(w http.ResponseWriter, q *req) error {
	g, err := h.svc.Groups.Get(q.ctx(), q.actor, q.PathValue("gid"))
	if err != nil {
		return err
	}
	can, err := h.orgCan(q)
	if err != nil {
		return err
	}
	members, total, err := h.svc.Groups.Members(q.ctx(), q.actor, g.ID, org.GroupFilter{Limit: maxGroupListing})
	if err != nil {
		return err
	}
	rows := make([]groupRow, 0, len(members))
	for _, m := range members {
		r := groupRow{Joined: m.JoinedGroupAt.UTC().Format("2006-01-02 15:04 UTC")}
		if m.Kind == authz.ActorIdentity {
			r.Kind, r.ID, r.Name = "identity", m.Identity.ID, m.Identity.Name
		} else {
			r.Kind, r.ID, r.Name, r.Email = "user", m.User.Username, m.User.Username, m.User.Email
		}
		rows = append(rows, r)
	}
	in := true
	projects, _, err := h.svc.Groups.Projects(q.ctx(), q.actor, g.ID, org.GroupFilter{Limit: maxGroupListing, Members: &in})
	if err != nil {
		return err
	}
	m, err := h.svc.Groups.Manageable(q.ctx(), q.actor, g.ID)
	if err != nil {
		return err
	}
	d := map[string]any{"Title": g.Name + " · Group", "G": g, "Members": rows, "More": total > len(rows),
		"Projects": projects, "Can": can, "M": m}
	if can["editGroup"] && m.Members {
		if can["readRoles"] {
			roles, err := h.svc.OrgRoles.Grantable(q.ctx(), q.actor)
			if err != nil {
				return err
			}
			d["Roles"] = roles
		}
		out := false
		ids, _, err := h.svc.Groups.Identities(q.ctx(), q.actor, g.ID, org.GroupFilter{Limit: maxGroupListing, Members: &out})
		if err != nil && errs.KindOf(err) != errs.Forbidden {
			return err
		}
		d["Candidates"] = ids
	}
	h.render(w, q, http.StatusOK, "group", d)
	return nil
}

func groupURL(q *req) string { return "/org/groups/" + q.PathValue("gid") }

func (h *Handler) groupUpdate(w http.ResponseWriter, q *req) error {
	var c org.GroupChange
	if v := strings.TrimSpace(q.PostFormValue("name")); v != "" {
		c.Name = &v
	}
	if v := strings.TrimSpace(q.PostFormValue("slug")); v != "" {
		c.Slug = &v
	}
	if v := q.PostFormValue("role"); v != "" {
		c.Role = &v
	}
	if _, err := h.svc.Groups.Update(q.ctx(), q.actor, q.PathValue("gid"), c); err != nil {
		return err
	}
	redirect(w, q.Request, groupURL(q))
	return nil
}

func (h *Handler) groupDelete(w http.ResponseWriter, q *req) error {
	if _, err := h.svc.Groups.Delete(q.ctx(), q.actor, q.PathValue("gid")); err != nil {
		return err
	}
	redirect(w, q.Request, "/org/groups")
	return nil
}

func (h *Handler) groupUserAdd(w http.ResponseWriter, q *req) error {
	if _, _, err := h.svc.Groups.AddUser(q.ctx(), q.actor, q.PathValue("gid"), strings.TrimSpace(q.PostFormValue("username"))); err != nil {
		return err
	}
	redirect(w, q.Request, groupURL(q))
	return nil
}

func (h *Handler) groupUserRemove(w http.ResponseWriter, q *req) error {
	if _, _, err := h.svc.Groups.RemoveUser(q.ctx(), q.actor, q.PathValue("gid"), q.PostFormValue("username")); err != nil {
		return err
	}
	redirect(w, q.Request, groupURL(q))
	return nil
}

func (h *Handler) groupIdentityAdd(w http.ResponseWriter, q *req) error {
	if _, err := h.svc.Groups.AddIdentity(q.ctx(), q.actor, q.PathValue("gid"), q.PostFormValue("identity")); err != nil {
		return err
	}
	redirect(w, q.Request, groupURL(q))
	return nil
}

func (h *Handler) groupIdentityRemove(w http.ResponseWriter, q *req) error {
	if _, err := h.svc.Groups.RemoveIdentity(q.ctx(), q.actor, q.PathValue("gid"), q.PathValue("iid")); err != nil {
		return err
	}
	redirect(w, q.Request, groupURL(q))
	return nil
}

// projectGroupRows are the project's groups with their roles, or nil when
// the actor may not list them.
func (h *Handler) projectGroupRows(q *req, pid string) ([]memberRow, error) {
	gs, err := h.svc.ProjectGroups.List(q.ctx(), q.actor, pid)
	if errs.KindOf(err) == errs.Forbidden {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	rows := make([]memberRow, 0, len(gs))
	for _, g := range gs {
		rows = append(rows, memberRow{g.Group.ID, g.Group.Name, roleSlugs(g.Roles)})
	}
	return rows, nil
}

// orgGroupChoices are the organization's groups not yet in the project
// (for the Add group form), or nil when the actor may not list them.
func (h *Handler) orgGroupChoices(q *req, in []memberRow) ([]org.Group, error) {
	all, err := h.svc.Groups.List(q.ctx(), q.actor, q.actor.OrgID)
	if errs.KindOf(err) == errs.Forbidden {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return slices.DeleteFunc(all, func(g org.Group) bool {
		return slices.ContainsFunc(in, func(r memberRow) bool { return r.ID == g.ID })
	}), nil
}

func (h *Handler) projectGroupAdd(w http.ResponseWriter, q *req) error {
	if _, err := h.svc.ProjectGroups.Add(q.ctx(), q.actor, q.PathValue("pid"), q.PostFormValue("group"),
		[]project.RoleGrant{{Role: q.PostFormValue("role")}}); err != nil {
		return err
	}
	redirect(w, q.Request, membersURL(q))
	return nil
}

func (h *Handler) projectGroupRoles(w http.ResponseWriter, q *req) error {
	if _, err := h.svc.ProjectGroups.UpdateRoles(q.ctx(), q.actor, q.PathValue("pid"), q.PathValue("gid"),
		[]project.RoleGrant{{Role: q.PostFormValue("role")}}); err != nil {
		return err
	}
	redirect(w, q.Request, membersURL(q))
	return nil
}

func (h *Handler) projectGroupRemove(w http.ResponseWriter, q *req) error {
	if _, err := h.svc.ProjectGroups.Remove(q.ctx(), q.actor, q.PathValue("pid"), q.PathValue("gid")); err != nil {
		return err
	}
	redirect(w, q.Request, membersURL(q))
	return nil
}
