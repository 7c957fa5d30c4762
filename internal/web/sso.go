package web

import (
	"html/template"
	"net/http"
	"net/url"
	"strings"

	"github.com/lockbox-dev/lockbox/internal/sso"
)

// ssoStateCookie carries a login's state from the redirect to the identity
// provider to its callback, binding the login to the browser that began it.
const ssoStateCookie = "lockbox_oidc_state"

// Paths of the SSO login (Infisical's), served by the dashboard because
// they end in a dashboard session; the API's route table forwards them.
const (
	SSOLoginPath    = "/api/v1/sso/oidc/login"
	SSOCallbackPath = "/api/v1/sso/oidc/callback"
)

func (h *Handler) ssoRoutes() {
	h.mux.HandleFunc("GET "+SSOLoginPath, h.ssoLogin)
	h.mux.HandleFunc("GET "+SSOCallbackPath, h.ssoCallback)
}

// ssoRedirectURL is the callback URL the identity provider sends the
// browser back to: under SiteURL when set, else the address this request
// reached.
func (h *Handler) ssoRedirectURL(r *http.Request) string {
	if h.siteURL != "" {
		return strings.TrimSuffix(h.siteURL, "/") + SSOCallbackPath
	}
	scheme := "http"
	if h.overTLS(r) { // behind a trusted TLS proxy too
		scheme = "https"
	}
	return scheme + "://" + r.Host + SSOCallbackPath
}

func (h *Handler) ssoFail(w http.ResponseWriter, r *http.Request, err error) {
	code := status(err)
	if code == http.StatusInternalServerError {
		h.log.ErrorContext(r.Context(), "SSO login failed", "err", err.Error())
	}
	h.renderLogin(w, r, code, message(err))
}

// ssoLogin sends the browser to the organization's identity provider.
func (h *Handler) ssoLogin(w http.ResponseWriter, r *http.Request) {
	if h.svc.SSO == nil {
		http.NotFound(w, r)
		return
	}
	next := r.URL.Query().Get("next")
	if !localPath(next) {
		next = ""
	}
	authURL, state, err := h.svc.SSO.Begin(r.Context(), strings.TrimSpace(r.URL.Query().Get("orgSlug")), h.ssoRedirectURL(r), next)
	if err != nil {
		h.ssoFail(w, r, err)
		return
	}
	h.setCookie(w, r, ssoStateCookie, state, sso.LoginTTL)
	if r.URL.Query().Get("via") == "form" {
		// The dashboard's form: browsers hold a form submission's redirects
		// to the page's form-action 'self', so the identity provider is
		// reached by a navigation of a page of ours instead.
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		if err := ssoHop.Execute(w, authURL); err != nil {
			h.log.ErrorContext(r.Context(), "SSO redirect page", "err", err.Error())
		}
		return
	}
	http.Redirect(w, r, authURL, http.StatusFound)
}

var ssoHop = template.Must(template.New("hop").Parse(`<!doctype html><meta charset="utf-8">` +
	`<meta http-equiv="refresh" content="0;url={{.}}"><title>Signing in</title>` +
	`<p><a href="{{.}}">Continue to your identity provider</a></p>`))

// ssoCallback finishes the login and opens the dashboard session, as the
// password login does.
func (h *Handler) ssoCallback(w http.ResponseWriter, r *http.Request) {
	if h.svc.SSO == nil {
		http.NotFound(w, r)
		return
	}
	q := r.URL.Query()
	var browser string
	if c, err := r.Cookie(ssoStateCookie); err == nil {
		browser = c.Value
	}
	h.clearCookie(w, r, ssoStateCookie)
	ip, ua := h.clientIP(r), r.UserAgent()
	res, err := h.svc.SSO.Finish(r.Context(), sso.Callback{State: q.Get("state"), Code: q.Get("code"), Error: q.Get("error"),
		BrowserState: browser, RedirectURL: h.ssoRedirectURL(r), IP: ip, UserAgent: ua})
	if err != nil {
		h.ssoFail(w, r, err)
		return
	}
	login, err := h.svc.Sessions.LoginSSO(r.Context(), res.User, res.OrgID, ip, ua)
	if err != nil {
		h.ssoFail(w, r, err)
		return
	}
	h.setCookie(w, r, sessionCookie, login.Token, 0)
	next := res.Next
	if !localPath(next) {
		next = "/projects"
	}
	if login.MFAPending {
		redirect(w, r, "/mfa?next="+url.QueryEscape(next))
		return
	}
	redirect(w, r, next)
}
