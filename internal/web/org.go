package web

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/lockbox-dev/lockbox/internal/authz"
	"github.com/lockbox-dev/lockbox/internal/org"
)

// Organization members, invitations and roles (org.Members, org.Roles).

func (h *Handler) orgMembers(w http.ResponseWriter, q *req) error {
	list, err := h.svc.OrgMembers.List(q.ctx(), q.actor, q.actor.OrgID)
	if err != nil {
		return err
	}
	can, err := h.orgCan(q)
	if err != nil {
		return err
	}
	var members, invited []org.Member
	for _, m := range list {
		if m.Status == org.StatusInvited {
			invited = append(invited, m)
		} else {
			members = append(members, m)
		}
	}
	d := map[string]any{"Title": "Members", "Members": members, "Invited": invited, "Can": can, "Me": q.actor.ID}
	if can["readRoles"] {
		roles, err := h.svc.OrgRoles.Grantable(q.ctx(), q.actor)
		if err != nil {
			return err
		}
		d["Roles"] = roles
	}
	h.render(w, q, http.StatusOK, "members", d)
	return nil
}

// siteBase is the scheme and host the request reached (what an invitation
// link starts with unless LOCKBOX_SITE_URL is set).
func (h *Handler) siteBase(r *http.Request) string {
	if h.overTLS(r) {
		return "https://" + r.Host
	}
	return "http://" + r.Host
}

// orgInvite invites the emails of the form (one per line or comma
// separated) and shows each one-time link once.
func (h *Handler) orgInvite(w http.ResponseWriter, q *req) error {
	emails := strings.FieldsFunc(q.PostFormValue("emails"), func(r rune) bool { return r == ',' || r == '\n' || r == '\r' || r == ' ' })
	links, err := h.svc.OrgMembers.Invite(q.ctx(), q.actor, org.InviteRequest{OrgID: q.actor.OrgID, Emails: emails,
		Role: q.PostFormValue("role"), LinkBase: h.siteBase(q.Request)})
	if err != nil {
		return err
	}
	// A mailed link is not shown: it is the invitee's alone.
	items := make([]shownItem, 0, len(links))
	var mailed, unsent []string
	for i, l := range links {
		switch {
		case l.Mailed:
			mailed = append(mailed, l.Email)
		case l.Link == "":
			unsent = append(unsent, l.Email)
		default:
			items = append(items, shownItem{l.Email, l.Link, "invite-link-" + strconv.Itoa(i)})
		}
	}
	var intro []string
	if len(mailed) > 0 {
		intro = append(intro, "Mailed to "+strings.Join(mailed, ", ")+".")
	}
	if len(unsent) > 0 {
		intro = append(intro, "The mail to "+strings.Join(unsent, ", ")+" failed; invite them again once mail works.")
	}
	if len(items) > 0 {
		intro = append(intro, "Send each person below their link: it works once, for 72 hours, and is shown only now.")
	}
	h.render(w, q, http.StatusOK, "shown", map[string]any{"Title": "Invitations created", "Intro": strings.Join(intro, " "), "Items": items,
		"Back": "/org/members"})
	return nil
}

func (h *Handler) orgMemberRole(w http.ResponseWriter, q *req) error {
	role := q.PostFormValue("role")
	if _, err := h.svc.OrgMembers.Update(q.ctx(), q.actor, q.actor.OrgID, q.PathValue("mid"), org.MemberChange{Role: &role}); err != nil {
		return err
	}
	redirect(w, q.Request, "/org/members")
	return nil
}

// orgMemberRemove removes a member, or revokes a pending invitation (an
// invited membership and its link).
func (h *Handler) orgMemberRemove(w http.ResponseWriter, q *req) error {
	if _, err := h.svc.OrgMembers.Remove(q.ctx(), q.actor, q.actor.OrgID, q.PathValue("mid")); err != nil {
		return err
	}
	redirect(w, q.Request, "/org/members")
	return nil
}

// Organization roles.

func (h *Handler) orgRoles(w http.ResponseWriter, q *req) error {
	roles, err := h.svc.OrgRoles.List(q.ctx(), q.actor)
	if err != nil {
		return err
	}
	can, err := h.orgCan(q)
	if err != nil {
		return err
	}
	h.render(w, q, http.StatusOK, "orgroles", map[string]any{"Title": "Organization roles", "Roles": roles, "Can": can,
		"Editor": newRoleEditor(authz.OrgSubjects(), nil)})
	return nil
}

func (h *Handler) orgRole(w http.ResponseWriter, q *req) error {
	r, err := h.svc.OrgRoles.Get(q.ctx(), q.actor, q.PathValue("id"))
	if err != nil {
		return err
	}
	can, err := h.orgCan(q)
	if err != nil {
		return err
	}
	builtin := authz.IsBuiltinOrgRole(r.ID)
	h.render(w, q, http.StatusOK, "role", map[string]any{"Title": r.Name, "Kind": "Organization role", "Name": r.Name,
		"Slug": r.Slug, "Description": r.Description, "Rules": r.Permissions, "Builtin": builtin,
		"CanEdit": can["editRole"] && !builtin, "CanDelete": can["deleteRole"] && !builtin,
		"Action": "/org/roles/" + r.ID, "Back": "/org/roles", "Editor": newRoleEditor(authz.OrgSubjects(), r.Permissions)})
	return nil
}

func roleChange(q *req, specs []authz.SubjectSpec) (org.RoleChange, error) {
	perms, err := rulesFromForm(q.PostForm, specs)
	if err != nil {
		return org.RoleChange{}, err
	}
	name, slug, desc := q.PostFormValue("name"), strings.TrimSpace(q.PostFormValue("slug")), q.PostFormValue("description")
	c := org.RoleChange{Name: &name, Description: &desc, Permissions: perms}
	if slug != "" {
		c.Slug = &slug
	}
	return c, nil
}

func (h *Handler) orgRoleCreate(w http.ResponseWriter, q *req) error {
	c, err := roleChange(q, authz.OrgSubjects())
	if err != nil {
		return err
	}
	r, err := h.svc.OrgRoles.Create(q.ctx(), q.actor, c)
	if err != nil {
		return err
	}
	redirect(w, q.Request, "/org/roles/"+r.ID)
	return nil
}

func (h *Handler) orgRoleUpdate(w http.ResponseWriter, q *req) error {
	c, err := roleChange(q, authz.OrgSubjects())
	if err != nil {
		return err
	}
	r, err := h.svc.OrgRoles.Update(q.ctx(), q.actor, q.PathValue("id"), c)
	if err != nil {
		return err
	}
	redirect(w, q.Request, "/org/roles/"+r.ID)
	return nil
}

func (h *Handler) orgRoleDelete(w http.ResponseWriter, q *req) error {
	if _, err := h.svc.OrgRoles.Delete(q.ctx(), q.actor, q.PathValue("id")); err != nil {
		return err
	}
	redirect(w, q.Request, "/org/roles")
	return nil
}

// Accepting an invitation: the link's page, outside any session, with the
// login form's double-submit CSRF token.

func (h *Handler) inviteForm(w http.ResponseWriter, r *http.Request) {
	h.renderInvite(w, r, http.StatusOK, "")
}

func (h *Handler) renderInvite(w http.ResponseWriter, r *http.Request, code int, msg string) {
	tok := randomToken()
	h.setCookie(w, r, loginCSRFCookie, tok, 30*time.Minute)
	d := map[string]any{"Title": "Join lockbox", "Error": msg, "Token": r.FormValue("token"), "To": r.FormValue("to"),
		"Org": r.FormValue("organization_id")}
	if msg == "" {
		if _, err := h.svc.OrgMembers.VerifyInvite(r.Context(), r.FormValue("organization_id"), r.FormValue("to"), r.FormValue("token")); err != nil {
			code, d["Error"], d["Invalid"] = status(err), message(err), true
		}
	}
	h.render(w, &req{Request: r, csrf: tok}, code, "invite", d)
}

func (h *Handler) inviteAccept(w http.ResponseWriter, r *http.Request) {
	if err := h.loginCSRF(r); err != nil {
		h.renderInvite(w, r, status(err), message(err))
		return
	}
	if r.PostFormValue("password") != r.PostFormValue("password2") {
		h.renderInvite(w, r, http.StatusBadRequest, "The two passwords differ")
		return
	}
	_, err := h.svc.OrgMembers.AcceptInvite(r.Context(), r.PostFormValue("organization_id"), r.PostFormValue("to"),
		r.PostFormValue("token"), r.PostFormValue("password"), r.PostFormValue("firstName"), r.PostFormValue("lastName"),
		h.clientIP(r), r.UserAgent())
	if err != nil {
		if status(err) == http.StatusInternalServerError {
			h.log.ErrorContext(r.Context(), "accept invitation", "err", err.Error())
		}
		h.renderInvite(w, r, status(err), message(err))
		return
	}
	h.clearCookie(w, r, loginCSRFCookie)
	redirect(w, r, "/login?joined=1")
}

// orgSwitch moves the session to another of the user's organizations.
func (h *Handler) orgSwitch(w http.ResponseWriter, q *req) error {
	if err := h.svc.Sessions.SwitchOrg(q.ctx(), q.session, q.actor, q.PostFormValue("org")); err != nil {
		return err
	}
	redirect(w, q.Request, "/projects")
	return nil
}
