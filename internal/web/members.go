package web

import (
	"net/http"
	"strings"
	"time"

	"github.com/lockbox-dev/lockbox/internal/errs"
	"github.com/lockbox-dev/lockbox/internal/identity"
	"github.com/lockbox-dev/lockbox/internal/project"
)

// Project members: users (project.Users) and machine identities
// (project.Memberships), each with their project roles.

// roleSlugs names a membership's roles.
func roleSlugs(rs []project.MembershipRole) string {
	out := make([]string, 0, len(rs))
	for _, r := range rs {
		s := r.Role
		if r.CustomRoleSlug != "" {
			s = r.CustomRoleSlug
		}
		if r.IsTemporary {
			switch end := r.TemporaryAccessEndTime; {
			case end == nil:
				s += " (temporary, not started)"
			case !end.After(time.Now()):
				s += " (temporary, ended " + end.UTC().Format("2006-01-02 15:04 UTC") + ")"
			default:
				s += " (temporary, until " + end.UTC().Format("2006-01-02 15:04 UTC") + ")"
			}
		}
		out = append(out, s)
	}
	return strings.Join(out, ", ")
}

type memberRow struct {
	ID, Name, Roles string
}

func (h *Handler) projectMembers(w http.ResponseWriter, q *req) error {
	pv, err := h.loadProject(q)
	if err != nil {
		return err
	}
	d := map[string]any{"Title": pv.Name + " · Members", "P": pv}
	users, err := h.svc.ProjectUsers.List(q.ctx(), q.actor, pv.ID)
	switch {
	case err == nil:
		rows := make([]memberRow, 0, len(users))
		for _, u := range users {
			rows = append(rows, memberRow{u.ID, u.Email, roleSlugs(u.Roles)})
		}
		d["Users"] = rows
	case errs.KindOf(err) != errs.Forbidden:
		return err
	}
	ids, _, err := h.svc.Memberships.List(q.ctx(), q.actor, pv.ID, 0, 500)
	switch {
	case err == nil:
		rows := make([]memberRow, 0, len(ids))
		for _, m := range ids {
			rows = append(rows, memberRow{m.IdentityID, m.IdentityName, roleSlugs(m.Roles)})
		}
		d["Identities"] = rows
	case errs.KindOf(err) != errs.Forbidden:
		return err
	}
	groups, err := h.projectGroupRows(q, pv.ID)
	if err != nil {
		return err
	}
	d["Groups"] = groups
	if len(groups) > 0 { // link each group to its page only for who may read it
		if d["OrgCan"], err = h.orgCan(q); err != nil {
			return err
		}
	}
	roles, err := h.svc.Roles.List(q.ctx(), q.actor, pv.ID)
	if err != nil && errs.KindOf(err) != errs.Forbidden {
		return err
	}
	d["Roles"] = roles
	if pv.Can["addGroup"] {
		if d["OrgGroups"], err = h.orgGroupChoices(q, groups); err != nil {
			return err
		}
	}
	if pv.Can["addIdentity"] {
		var list []identity.OrgIdentity
		list, _, err = h.svc.Identities.List(q.ctx(), q.actor, q.actor.OrgID, 0, 500)
		if err != nil && errs.KindOf(err) != errs.Forbidden {
			return err
		}
		d["OrgIdentities"] = list
	}
	h.render(w, q, http.StatusOK, "members_project", d)
	return nil
}

func membersURL(q *req) string { return "/projects/" + q.PathValue("pid") + "/members" }

func (h *Handler) projectUserAdd(w http.ResponseWriter, q *req) error {
	if _, err := h.svc.ProjectUsers.Add(q.ctx(), q.actor, q.PathValue("pid"), []string{strings.TrimSpace(q.PostFormValue("login"))},
		[]project.RoleGrant{{Role: q.PostFormValue("role")}}); err != nil {
		return err
	}
	redirect(w, q.Request, membersURL(q))
	return nil
}

func (h *Handler) projectUserRoles(w http.ResponseWriter, q *req) error {
	if _, err := h.svc.ProjectUsers.UpdateRoles(q.ctx(), q.actor, q.PathValue("pid"), q.PathValue("mid"),
		[]project.RoleGrant{{Role: q.PostFormValue("role")}}); err != nil {
		return err
	}
	redirect(w, q.Request, membersURL(q))
	return nil
}

func (h *Handler) projectUserRemove(w http.ResponseWriter, q *req) error {
	if _, err := h.svc.ProjectUsers.Remove(q.ctx(), q.actor, q.PathValue("pid"), q.PathValue("mid")); err != nil {
		return err
	}
	redirect(w, q.Request, membersURL(q))
	return nil
}

func (h *Handler) projectIdentityAdd(w http.ResponseWriter, q *req) error {
	if _, err := h.svc.Memberships.Add(q.ctx(), q.actor, q.PathValue("pid"), q.PostFormValue("identity"),
		[]project.RoleGrant{{Role: q.PostFormValue("role")}}); err != nil {
		return err
	}
	redirect(w, q.Request, membersURL(q))
	return nil
}

func (h *Handler) projectIdentityRoles(w http.ResponseWriter, q *req) error {
	if _, err := h.svc.Memberships.UpdateRoles(q.ctx(), q.actor, q.PathValue("pid"), q.PathValue("iid"),
		[]project.RoleGrant{{Role: q.PostFormValue("role")}}); err != nil {
		return err
	}
	redirect(w, q.Request, membersURL(q))
	return nil
}

func (h *Handler) projectIdentityRemove(w http.ResponseWriter, q *req) error {
	if _, err := h.svc.Memberships.Remove(q.ctx(), q.actor, q.PathValue("pid"), q.PathValue("iid")); err != nil {
		return err
	}
	redirect(w, q.Request, membersURL(q))
	return nil
}
