package web

import (
	"html/template"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/lockbox-dev/lockbox/internal/errs"
)

// pageNames are the templates under templates/, each executed inside layout.html.
var pageNames = []string{"error", "login", "mfa", "security", "device", "projects", "secrets", "secret", "history",
	"environments", "identities", "identity", "dynamic", "dynsecret", "kms", "audit", "roles", "shown",
	"members", "orgroles", "role", "invite", "members_project", "groups", "group"}

var funcs = template.FuncMap{
	"when": func(t time.Time) string {
		if t.IsZero() {
			return "—"
		}
		return t.UTC().Format("2006-01-02 15:04:05 UTC")
	},
	"whenp": func(t *time.Time) string {
		if t == nil || t.IsZero() {
			return "never"
		}
		return t.UTC().Format("2006-01-02 15:04:05 UTC")
	},
	"join":   strings.Join,
	"iplist": ipList,
	"inc":    func(n int) int { return n + 1 },
	"rule":   ruleSummary,
	// query is a URL's query of name, value pairs, each encoded: a value
	// written into a data- attribute is only HTML-escaped, and a secret
	// key may hold # & % + =.
	"query": func(kv ...string) string {
		v := url.Values{}
		for i := 0; i+1 < len(kv); i += 2 {
			v.Set(kv[i], kv[i+1])
		}
		return v.Encode()
	},
}

func parsePages() map[string]*template.Template {
	layout := template.Must(template.New("layout.html").Funcs(funcs).ParseFS(templateFS, "templates/layout.html"))
	out := make(map[string]*template.Template, len(pageNames))
	for _, n := range pageNames {
		out[n] = template.Must(template.Must(layout.Clone()).ParseFS(templateFS, "templates/"+n+".html"))
	}
	return out
}

func (h *Handler) routes() {
	m := h.mux
	m.HandleFunc("GET /login", h.loginForm)
	m.HandleFunc("POST /login", h.login)
	m.HandleFunc("GET /mfa", h.mfaForm)
	m.HandleFunc("POST /mfa", h.mfa)
	m.Handle("POST /logout", h.authedAllowPending(h.logout))
	m.Handle("GET /{$}", h.authed(func(w http.ResponseWriter, q *req) error {
		redirect(w, q.Request, "/projects")
		return nil
	}))
	m.Handle("GET /settings/security", h.authed(h.security))
	m.Handle("GET /device", h.authed(h.deviceForm))
	m.Handle("POST /device", h.authed(h.deviceDecide))
	m.Handle("POST /settings/totp/begin", h.authed(h.totpBegin))
	m.Handle("POST /settings/totp/confirm", h.authed(h.totpConfirm))

	m.Handle("GET /projects", h.authed(h.projects))
	m.Handle("POST /projects", h.authed(h.projectCreate))
	m.Handle("GET /projects/{pid}/secrets", h.authed(h.secrets))
	m.Handle("POST /projects/{pid}/secrets", h.authed(h.secretCreate))
	m.Handle("POST /projects/{pid}/secrets/update", h.authed(h.secretUpdate))
	m.Handle("POST /projects/{pid}/secrets/delete", h.authed(h.secretDelete))
	m.Handle("POST /projects/{pid}/secrets/row", h.authed(h.secretRow))
	m.Handle("POST /projects/{pid}/secrets/import", h.authed(h.secretImport))
	m.Handle("GET /projects/{pid}/secrets/download", h.authed(h.secretDownload))
	m.Handle("GET /projects/{pid}/secret", h.authed(h.secretPage))
	m.Handle("GET /projects/{pid}/secret/value", h.authed(h.secretValue))
	m.Handle("GET /projects/{pid}/secret/history", h.authed(h.secretHistory))
	m.Handle("GET /projects/{pid}/secret/version", h.authed(h.secretVersionDiff))
	m.Handle("POST /projects/{pid}/secret/rollback", h.authed(h.secretRollback))
	m.Handle("POST /projects/{pid}/tags", h.authed(h.tagCreate))
	m.Handle("POST /projects/{pid}/imports", h.authed(h.importCreate))
	m.Handle("POST /projects/{pid}/imports/delete", h.authed(h.importDelete))
	m.Handle("POST /projects/{pid}/folders", h.authed(h.folderCreate))
	m.Handle("POST /projects/{pid}/folders/delete", h.authed(h.folderDelete))
	m.Handle("POST /projects/{pid}/folders/rename", h.authed(h.folderRename))
	m.Handle("POST /projects/{pid}/tags/{tid}", h.authed(h.tagUpdate))
	m.Handle("POST /projects/{pid}/tags/{tid}/delete", h.authed(h.tagDelete))
	m.Handle("POST /projects/{pid}/environments/{eid}", h.authed(h.environmentUpdate))
	m.Handle("GET /projects/{pid}/environments", h.authed(h.environments))
	m.Handle("POST /projects/{pid}/environments", h.authed(h.environmentCreate))
	m.Handle("POST /projects/{pid}/environments/delete", h.authed(h.environmentDelete))
	m.Handle("GET /projects/{pid}/roles", h.authed(h.roles))
	m.Handle("POST /projects/{pid}/roles", h.authed(h.projectRoleCreate))
	m.Handle("GET /projects/{pid}/roles/{id}", h.authed(h.projectRole))
	m.Handle("POST /projects/{pid}/roles/{id}", h.authed(h.projectRoleUpdate))
	m.Handle("POST /projects/{pid}/roles/{id}/delete", h.authed(h.projectRoleDelete))
	m.Handle("GET /projects/{pid}/members", h.authed(h.projectMembers))
	m.Handle("POST /projects/{pid}/members/users", h.authed(h.projectUserAdd))
	m.Handle("POST /projects/{pid}/members/users/{mid}/roles", h.authed(h.projectUserRoles))
	m.Handle("POST /projects/{pid}/members/users/{mid}/remove", h.authed(h.projectUserRemove))
	m.Handle("POST /projects/{pid}/members/identities", h.authed(h.projectIdentityAdd))
	m.Handle("POST /projects/{pid}/members/identities/{iid}/roles", h.authed(h.projectIdentityRoles))
	m.Handle("POST /projects/{pid}/members/identities/{iid}/remove", h.authed(h.projectIdentityRemove))
	m.Handle("POST /projects/{pid}/members/groups", h.authed(h.projectGroupAdd))
	m.Handle("POST /projects/{pid}/members/groups/{gid}/roles", h.authed(h.projectGroupRoles))
	m.Handle("POST /projects/{pid}/members/groups/{gid}/remove", h.authed(h.projectGroupRemove))
	m.Handle("GET /projects/{pid}/kms", h.authed(h.kmsKeys))
	m.Handle("POST /projects/{pid}/kms", h.authed(h.kmsCreate))
	m.Handle("POST /projects/{pid}/kms/{kid}", h.authed(h.kmsUpdate))
	m.Handle("POST /projects/{pid}/kms/{kid}/rotate", h.authed(h.kmsRotate))
	m.Handle("POST /projects/{pid}/kms/{kid}/delete", h.authed(h.kmsDelete))
	m.Handle("GET /projects/{pid}/dynamic", h.authed(h.dynamicList))
	m.Handle("POST /projects/{pid}/dynamic", h.authed(h.dynamicCreate))
	m.Handle("GET /projects/{pid}/dynamic/{name}", h.authed(h.dynamicSecret))
	m.Handle("POST /projects/{pid}/dynamic/{name}/edit", h.authed(h.dynamicUpdate))
	m.Handle("POST /projects/{pid}/dynamic/{name}/leases", h.authed(h.leaseCreate))
	m.Handle("POST /projects/{pid}/dynamic/{name}/leases/{lid}/renew", h.authed(h.leaseRenew))
	m.Handle("POST /projects/{pid}/dynamic/{name}/leases/{lid}/revoke", h.authed(h.leaseRevoke))

	m.Handle("GET /identities", h.authed(h.identities))
	m.Handle("POST /identities", h.authed(h.identityCreate))
	m.Handle("GET /identities/{id}", h.authed(h.identityPage))
	m.Handle("POST /identities/{id}/universal-auth", h.authed(h.uaAttach))
	m.Handle("POST /identities/{id}/universal-auth/update", h.authed(h.uaUpdate))
	m.Handle("POST /identities/{id}/universal-auth/remove", h.authed(h.uaRemove))
	m.Handle("POST /identities/{id}/role", h.authed(h.identityRole))
	m.Handle("POST /identities/{id}/delete", h.authed(h.identityDelete))
	m.Handle("POST /identities/{id}/client-secrets", h.authed(h.clientSecretCreate))
	m.Handle("POST /identities/{id}/client-secrets/{csid}/revoke", h.authed(h.clientSecretRevoke))
	m.Handle("POST /identities/{id}/token-auth", h.authed(h.tokenAuthAttach))
	m.Handle("POST /identities/{id}/methods", h.authed(h.methodSave))
	m.Handle("POST /identities/{id}/methods/{method}", h.authed(h.methodSave))
	m.Handle("POST /identities/{id}/methods/{method}/remove", h.authed(h.methodRemove))
	m.Handle("POST /identities/{id}/tokens", h.authed(h.tokenCreate))
	m.Handle("POST /identities/{id}/tokens/{tid}/revoke", h.authed(h.tokenRevoke))
	m.Handle("POST /identities/{id}/projects", h.authed(h.identityAddProject))
	m.Handle("GET /audit", h.authed(h.auditLog))

	m.Handle("POST /org/switch", h.authed(h.orgSwitch))
	m.Handle("GET /org/members", h.authed(h.orgMembers))
	m.Handle("POST /org/members/invite", h.authed(h.orgInvite))
	m.Handle("POST /org/members/{mid}/role", h.authed(h.orgMemberRole))
	m.Handle("POST /org/members/{mid}/remove", h.authed(h.orgMemberRemove))
	m.Handle("GET /org/roles", h.authed(h.orgRoles))
	m.Handle("POST /org/roles", h.authed(h.orgRoleCreate))
	m.Handle("GET /org/roles/{id}", h.authed(h.orgRole))
	m.Handle("POST /org/roles/{id}", h.authed(h.orgRoleUpdate))
	m.Handle("POST /org/roles/{id}/delete", h.authed(h.orgRoleDelete))
	m.Handle("GET /org/groups", h.authed(h.orgGroups))
	m.Handle("POST /org/groups", h.authed(h.groupCreate))
	m.Handle("GET /org/groups/{gid}", h.authed(h.groupPage))
	m.Handle("POST /org/groups/{gid}", h.authed(h.groupUpdate))
	m.Handle("POST /org/groups/{gid}/delete", h.authed(h.groupDelete))
	m.Handle("POST /org/groups/{gid}/users", h.authed(h.groupUserAdd))
	m.Handle("POST /org/groups/{gid}/users/remove", h.authed(h.groupUserRemove))
	m.Handle("POST /org/groups/{gid}/identities", h.authed(h.groupIdentityAdd))
	m.Handle("POST /org/groups/{gid}/identities/{iid}/remove", h.authed(h.groupIdentityRemove))
	m.HandleFunc("GET /signupinvite", h.inviteForm)
	m.HandleFunc("POST /signupinvite", h.inviteAccept)
}

// authedAllowPending is authed for logout: a session still owing its second
// factor may end itself.
func (h *Handler) authedAllowPending(fn pageFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q, ok := h.session(w, r)
		if !ok {
			return
		}
		r = q.Request
		if err := h.checkForgery(r, q); err != nil {
			h.fail(w, r, q, err)
			return
		}
		if err := fn(w, q); err != nil {
			h.fail(w, r, q, err)
		}
	})
}

// loginForm shows the login form with a fresh login CSRF token
// (double-submit: a cookie and the form's hidden field must agree).
func (h *Handler) loginForm(w http.ResponseWriter, r *http.Request) {
	h.renderLogin(w, r, http.StatusOK, "")
}

func (h *Handler) renderLogin(w http.ResponseWriter, r *http.Request, code int, msg string) {
	tok := randomToken()
	h.setCookie(w, r, loginCSRFCookie, tok, 30*time.Minute)
	next := r.FormValue("next")
	if !localPath(next) {
		next = ""
	}
	h.render(w, &req{Request: r, csrf: tok}, code, "login", map[string]any{"Title": "Log in", "Error": msg, "Next": next})
}

// maxNextBytes bounds a path to return to after signing in: the SSO login,
// which anyone may start, stores it with the login's state (64 KiB a
// request, from the header limit, before).
const maxNextBytes = 2048

// localPath reports whether p is a path on this site (no open redirect):
// one leading slash, no backslash or control byte (browsers drop a tab, so
// "/\t/evil.example" would be "//evil.example"), no scheme or host, and at
// most maxNextBytes.
func localPath(p string) bool {
	if len(p) > maxNextBytes || !strings.HasPrefix(p, "/") || strings.HasPrefix(p, "//") {
		return false
	}
	for i := 0; i < len(p); i++ {
		if p[i] < 0x20 || p[i] == 0x7f || p[i] == '\\' {
			return false
		}
	}
	u, err := url.Parse(p)
	return err == nil && u.Scheme == "" && u.Host == ""
}

func (h *Handler) loginCSRF(r *http.Request) error {
	if err := checkOrigin(r); err != nil {
		return err
	}
	r.Body = http.MaxBytesReader(nil, r.Body, maxFormBytes)
	c, err := r.Cookie(loginCSRFCookie)
	if err != nil || !sameToken(c.Value, r.PostFormValue(csrfField)) {
		return errs.Forbiddenf("Missing or invalid CSRF token; reload the page and try again")
	}
	return nil
}

func (h *Handler) login(w http.ResponseWriter, r *http.Request) {
	if err := h.loginCSRF(r); err != nil {
		h.renderLogin(w, r, status(err), message(err))
		return
	}
	res, err := h.svc.Sessions.Login(r.Context(), r.PostFormValue("email"), r.PostFormValue("password"), h.clientIP(r), r.UserAgent())
	if err != nil {
		code := status(err)
		if code == http.StatusInternalServerError {
			h.log.ErrorContext(r.Context(), "dashboard login failed", "err", err.Error())
		}
		h.renderLogin(w, r, code, message(err))
		return
	}
	h.clearCookie(w, r, loginCSRFCookie)
	h.setCookie(w, r, sessionCookie, res.Token, 0)
	next := r.PostFormValue("next")
	if !localPath(next) {
		next = "/projects"
	}
	if res.MFAPending {
		redirect(w, r, "/mfa?next="+url.QueryEscape(next))
		return
	}
	redirect(w, r, next)
}

func (h *Handler) pendingSession(w http.ResponseWriter, r *http.Request) (*req, bool) {
	q, ok := h.session(w, r)
	if !ok {
		return nil, false
	}
	if !q.session.MFAPending {
		redirect(w, r, "/projects")
		return nil, false
	}
	return q, true
}

func (h *Handler) mfaForm(w http.ResponseWriter, r *http.Request) {
	q, ok := h.pendingSession(w, r)
	if !ok {
		return
	}
	h.render(w, q, http.StatusOK, "mfa", map[string]any{"Title": "Two-factor authentication", "Next": r.FormValue("next")})
}

func (h *Handler) mfa(w http.ResponseWriter, r *http.Request) {
	q, ok := h.pendingSession(w, r)
	if !ok {
		return
	}
	r = q.Request
	if err := h.checkForgery(r, q); err != nil {
		h.fail(w, r, q, err)
		return
	}
	c, _ := r.Cookie(sessionCookie)
	token, err := h.svc.Sessions.VerifyMFA(r.Context(), c.Value, r.PostFormValue("code"), h.clientIP(r), r.UserAgent())
	if err != nil {
		h.render(w, q, status(err), "mfa", map[string]any{"Title": "Two-factor authentication", "Error": message(err),
			"Next": r.PostFormValue("next")})
		return
	}
	h.setCookie(w, r, sessionCookie, token, 0) // a new token: the pending one has ended
	next := r.PostFormValue("next")
	if !localPath(next) {
		next = "/projects"
	}
	redirect(w, r, next)
}

func (h *Handler) logout(w http.ResponseWriter, q *req) error {
	c, _ := q.Cookie(sessionCookie)
	if err := h.svc.Sessions.Logout(q.ctx(), c.Value, q.actor); err != nil {
		return err
	}
	h.clearCookie(w, q.Request, sessionCookie)
	redirect(w, q.Request, "/login")
	return nil
}

func (h *Handler) security(w http.ResponseWriter, q *req) error {
	on, err := h.svc.Sessions.TOTPEnabled(q.ctx(), q.actor)
	if err != nil {
		return err
	}
	h.render(w, q, http.StatusOK, "security", map[string]any{"Title": "Security", "Enabled": on})
	return nil
}

func (h *Handler) totpBegin(w http.ResponseWriter, q *req) error {
	en, err := h.svc.Sessions.BeginTOTP(q.ctx(), q.actor)
	if err != nil {
		return err
	}
	qr, err := qrSVG(en.URI)
	if err != nil {
		return err
	}
	h.render(w, q, http.StatusOK, "security", map[string]any{"Title": "Security", "Enroll": en, "QR": qr})
	return nil
}

func (h *Handler) totpConfirm(w http.ResponseWriter, q *req) error {
	codes, err := h.svc.Sessions.ConfirmTOTP(q.ctx(), q.actor, q.PostFormValue("code"), q.PostFormValue("password"))
	if err != nil {
		return err
	}
	h.render(w, q, http.StatusOK, "security", map[string]any{"Title": "Security", "Enabled": true, "Codes": codes})
	return nil
}

// deviceForm shows the device login a code names, for the user to approve
// or deny (or a form to type the code).
func (h *Handler) deviceForm(w http.ResponseWriter, q *req) error {
	code := q.URL.Query().Get("code")
	data := map[string]any{"Title": "Sign in the lockbox CLI"}
	if site := q.Header.Get("Sec-Fetch-Site"); code != "" && site != "" && site != "same-origin" && site != "none" {
		// A link from another site (or a sibling one): the code is not looked up (each wrong
		// one counts against the user's guesses, so ten such links would
		// block the user's approvals for a minute); the user goes on from
		// this page.
		data["Typed"] = code
	} else if code != "" {
		d, err := h.svc.Sessions.DeviceLogin(q.ctx(), q.actor, code)
		if err != nil {
			return err
		}
		data["Code"] = d.UserCode
		data["IP"], data["Agent"] = d.IP, d.UserAgent
		data["Started"] = d.CreatedAt.UTC().Format("15:04:05 UTC")
	}
	h.render(w, q, http.StatusOK, "device", data)
	return nil
}

// deviceDecide approves or denies a device login as the session's user, in
// the session's organization.
func (h *Handler) deviceDecide(w http.ResponseWriter, q *req) error {
	approve := q.PostFormValue("decision") == "approve"
	if !approve && q.PostFormValue("decision") != "deny" {
		return errs.BadRequest("Choose approve or deny")
	}
	if err := h.svc.Sessions.DecideDeviceLogin(q.ctx(), q.actor, q.PostFormValue("code"), approve); err != nil {
		return err
	}
	done := "Denied: the CLI is not signed in."
	if approve {
		done = "Approved: the CLI is signed in. You may close this page."
	}
	h.render(w, q, http.StatusOK, "device", map[string]any{"Title": "Sign in the lockbox CLI", "Done": done})
	return nil
}
