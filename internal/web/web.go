// Package web is the dashboard: server-rendered pages served at / by the same
// binary as the API, acting through the same domain services and permission
// checks as the API does, with a user's session as the actor.
package web

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/subtle"
	"embed"
	"encoding/base64"
	"errors"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/lockbox-dev/lockbox/internal/audit"
	"github.com/lockbox-dev/lockbox/internal/authz"
	"github.com/lockbox-dev/lockbox/internal/cache"
	"github.com/lockbox-dev/lockbox/internal/dynamic"
	"github.com/lockbox-dev/lockbox/internal/errs"
	"github.com/lockbox-dev/lockbox/internal/identity"
	"github.com/lockbox-dev/lockbox/internal/kms"
	"github.com/lockbox-dev/lockbox/internal/org"
	"github.com/lockbox-dev/lockbox/internal/project"
	"github.com/lockbox-dev/lockbox/internal/secret"
	"github.com/lockbox-dev/lockbox/internal/sso"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Services are the domain services the pages call.
type Services struct {
	Sessions      *identity.Web
	Identities    *identity.Admin
	UniversalAuth *identity.UA
	Authz         *authz.Resolver
	Projects      *project.Service
	Memberships   *project.Memberships
	Roles         *project.Roles
	Secrets       *secret.Service
	Dynamic       *dynamic.Service
	KMS           *kms.Service
	Audit         *audit.Service
	SSO           *sso.Service // nil: no SSO login
	OrgMembers    *org.Members
	OrgRoles      *org.Roles
	ProjectUsers  *project.Users
	Groups        *org.Groups
	ProjectGroups *project.Groups
	AuthMethods   *identity.Methods // the registered login methods (JWT, OIDC, ...)
}

// Options configure a Handler.
type Options struct {
	Services
	// ClientIP names the client of a request (the API's trusted-proxy rules);
	// nil: the peer address.
	ClientIP func(*http.Request) string
	// OverTLS reports whether the client reached the server over TLS (the
	// API's trusted-proxy rules for X-Forwarded-Proto); it makes cookies
	// Secure. nil: the connection itself is TLS.
	OverTLS func(*http.Request) bool
	Logger  *slog.Logger
	// Cache is the node's cache generation: each page begins by reading the
	// change counter, as API requests do (nil: no caching).
	Cache *cache.Gen
	// SiteURL is the public address of the server (LOCKBOX_SITE_URL); the
	// SSO callback URL is under it. Empty: the address a request reached.
	SiteURL string
}

// Handler serves the dashboard.
type Handler struct {
	svc      Services
	mux      *http.ServeMux
	log      *slog.Logger
	clientIP func(*http.Request) string
	overTLS  func(*http.Request) bool
	cache    *cache.Gen
	pages    map[string]*template.Template
	static   http.Handler
	siteURL  string
}

// Cookie names. The session cookie is host-only, HttpOnly, SameSite=Lax, and
// Secure when the request came over TLS.
const (
	sessionCookie    = "lockbox_session"
	loginCSRFCookie  = "lockbox_login_csrf"
	csrfField        = "csrf_token"
	csrfHeader       = "X-CSRF-Token"
	maxFormBytes     = 1 << 20
	contentSecPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
		"connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)

// New builds the dashboard.
func New(o Options) *Handler {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.ClientIP == nil {
		o.ClientIP = func(r *http.Request) string {
			host := r.RemoteAddr
			if i := strings.LastIndexByte(host, ':'); i > 0 {
				host = strings.Trim(host[:i], "[]")
			}
			return host
		}
	}
	if o.OverTLS == nil {
		o.OverTLS = func(r *http.Request) bool { return r.TLS != nil }
	}
	sub, _ := fs.Sub(staticFS, "static")
	h := &Handler{svc: o.Services, mux: http.NewServeMux(), log: o.Logger, clientIP: o.ClientIP, overTLS: o.OverTLS, cache: o.Cache,
		pages: parsePages(), static: http.StripPrefix("/static/", http.FileServerFS(sub)), siteURL: o.SiteURL}
	h.routes()
	h.ssoRoutes()
	return h
}

// ServeHTTP sets the security headers of every response and dispatches.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hd := w.Header()
	hd.Set("Content-Security-Policy", contentSecPolicy)
	hd.Set("X-Frame-Options", "DENY")
	hd.Set("Referrer-Policy", "no-referrer")
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Cross-Origin-Opener-Policy", "same-origin")
	if h.overTLS(r) {
		// Browsers that reached the dashboard over TLS never try plain HTTP
		// again, where a network attacker could plant a session cookie.
		hd.Set("Strict-Transport-Security", "max-age=31536000")
	}
	if strings.HasPrefix(r.URL.Path, "/static/") {
		hd.Set("Cache-Control", "public, max-age=3600")
		h.static.ServeHTTP(w, r)
		return
	}
	hd.Set("Cache-Control", "no-store")
	h.mux.ServeHTTP(w, r)
}

// req is what an authenticated page handler gets.
type req struct {
	*http.Request
	actor   authz.Actor
	session identity.WebSession
	csrf    string
}

func (q *req) ctx() context.Context { return q.Context() }

// pageFunc handles an authenticated request; an error is rendered as a page.
type pageFunc func(w http.ResponseWriter, q *req) error

// authed wraps a page: it requires a complete session and, for anything but
// GET and HEAD, a same-origin request carrying the session's CSRF token.
func (h *Handler) authed(fn pageFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q, ok := h.session(w, r)
		if !ok {
			return
		}
		r = q.Request // with the cache-synchronised context
		if q.session.MFAPending {
			http.Redirect(w, r, "/mfa", http.StatusSeeOther)
			return
		}
		if unsafeMethod(r.Method) {
			if err := h.checkForgery(r, q); err != nil {
				h.fail(w, r, q, err)
				return
			}
		}
		if err := fn(w, q); err != nil {
			if errs.KindOf(err) == errs.Forbidden && h.svc.Audit != nil {
				if aerr := h.svc.Audit.Denied(r.Context(), q.actor, r.Method, r.Pattern, message(err)); aerr != nil {
					h.log.ErrorContext(r.Context(), "audit of a denied request", "err", aerr.Error())
				}
			}
			h.fail(w, r, q, err)
		}
	})
}

func unsafeMethod(m string) bool { return m != http.MethodGet && m != http.MethodHead }

// session loads the request's session; without one it sends a browser to
// the login page (and a script a 401) and reports false.
func (h *Handler) session(w http.ResponseWriter, r *http.Request) (*req, bool) {
	// Caches answer this request only once the change counter was read.
	if ctx, err := h.cache.Begin(r.Context()); err == nil {
		r = r.WithContext(ctx)
	} else {
		h.log.DebugContext(r.Context(), "cache epoch unreadable; page served uncached", "err", err.Error())
	}
	c, err := r.Cookie(sessionCookie)
	var tok string
	if err == nil {
		tok = c.Value
	}
	s, actor, err := h.svc.Sessions.Session(r.Context(), tok, h.clientIP(r), r.UserAgent())
	if err != nil {
		if errs.KindOf(err) == errs.Internal {
			h.fail(w, r, nil, err)
			return nil, false
		}
		if tok != "" {
			h.clearCookie(w, r, sessionCookie)
		}
		if r.Method == http.MethodGet && r.Header.Get(csrfHeader) == "" {
			http.Redirect(w, r, "/login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
		} else {
			http.Error(w, "Your session has ended, please log in again", http.StatusUnauthorized)
		}
		return nil, false
	}
	csrf, err := h.svc.Sessions.CSRFToken(r.Context(), s)
	if err != nil {
		h.fail(w, r, nil, err)
		return nil, false
	}
	return &req{Request: r, actor: actor, session: s, csrf: csrf}, true
}

// checkForgery refuses a state-changing request from another origin or
// without the session's CSRF token (form field csrf_token or header
// X-CSRF-Token).
func (h *Handler) checkForgery(r *http.Request, q *req) error {
	if err := checkOrigin(r); err != nil {
		return err
	}
	r.Body = http.MaxBytesReader(nil, r.Body, maxFormBytes)
	tok := r.Header.Get(csrfHeader)
	if tok == "" {
		if err := r.ParseMultipartForm(maxFormBytes); err != nil && !errors.Is(err, http.ErrNotMultipart) {
			return errs.BadRequest("Could not read the form")
		}
		tok = r.PostFormValue(csrfField)
	}
	if !h.svc.Sessions.CheckCSRF(r.Context(), q.session, tok) {
		return errs.Forbiddenf("Missing or invalid CSRF token; reload the page and try again")
	}
	return nil
}

// crossOrigin is the standard library's check: Sec-Fetch-Site, else the
// Origin's host against the request's Host.
var crossOrigin = http.NewCrossOriginProtection()

// checkOrigin refuses a cross-origin state change: crossOrigin's verdict
// (which refuses "Origin: null" unless Sec-Fetch-Site says same-origin, as
// our no-referrer pages make browsers send), and, from a browser that sends
// neither header, a Referer naming another host. The CSRF token is checked
// as well, whatever this says.
func checkOrigin(r *http.Request) error {
	refused := errs.Forbiddenf("Cross-origin request refused")
	if crossOrigin.Check(r) != nil {
		return refused
	}
	if r.Header.Get("Sec-Fetch-Site") == "" && r.Header.Get("Origin") == "" {
		if ref := r.Header.Get("Referer"); ref != "" {
			if u, err := url.Parse(ref); err != nil || u.Host != r.Host {
				return refused
			}
		}
	}
	return nil
}

// setCookie sets a host-only HttpOnly SameSite=Lax cookie, Secure when the
// client came over TLS (directly or through a trusted TLS-terminating proxy).
func (h *Handler) setCookie(w http.ResponseWriter, r *http.Request, name, value string, maxAge time.Duration) {
	http.SetCookie(w, &http.Cookie{Name: name, Value: value, Path: "/", HttpOnly: true, Secure: h.overTLS(r),
		SameSite: http.SameSiteLaxMode, MaxAge: int(maxAge.Seconds())})
}

func (h *Handler) clearCookie(w http.ResponseWriter, r *http.Request, name string) {
	http.SetCookie(w, &http.Cookie{Name: name, Value: "", Path: "/", HttpOnly: true, Secure: h.overTLS(r),
		SameSite: http.SameSiteLaxMode, MaxAge: -1})
}

func randomToken() string {
	b := make([]byte, 32)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

func sameToken(a, b string) bool {
	return a != "" && subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

// status maps a domain error kind to an HTTP status.
func status(err error) int {
	switch errs.KindOf(err) {
	case errs.Invalid:
		return http.StatusBadRequest
	case errs.Validation:
		return http.StatusUnprocessableEntity
	case errs.Unauthorized:
		return http.StatusUnauthorized
	case errs.Forbidden:
		return http.StatusForbidden
	case errs.NotFound:
		return http.StatusNotFound
	case errs.Conflict:
		return http.StatusConflict
	case errs.TooLarge:
		return http.StatusRequestEntityTooLarge
	case errs.RateLimited:
		return http.StatusTooManyRequests
	case errs.Unavailable:
		return http.StatusServiceUnavailable
	case errs.PreconditionFailed:
		return http.StatusPreconditionFailed
	}
	return http.StatusInternalServerError
}

// message is what a user may read about err: a domain error's message, or a
// fixed text for an internal one (logged in full).
func message(err error) string {
	if e, ok := errors.AsType[*errs.Error](err); ok && e.Kind != errs.Internal {
		return e.Message
	}
	return "Something went wrong on our side; the error was logged"
}

// fail renders err as an error page.
func (h *Handler) fail(w http.ResponseWriter, r *http.Request, q *req, err error) {
	code := status(err)
	if code == http.StatusInternalServerError {
		h.log.ErrorContext(r.Context(), "dashboard request failed", "path", r.URL.Path, "err", err.Error())
	}
	if r.Header.Get(csrfHeader) != "" || strings.HasPrefix(r.Header.Get("Accept"), "text/plain") {
		http.Error(w, message(err), code)
		return
	}
	back := "/"
	if ref := r.Header.Get("Referer"); ref != "" {
		if u, e := url.Parse(ref); e == nil && u.Host == r.Host {
			back = u.RequestURI()
		}
	}
	h.render(w, q, code, "error", map[string]any{"Title": http.StatusText(code), "Message": message(err), "Back": back})
}

// view is the data every page template gets.
type view struct {
	User  string
	CSRF  string
	Data  any
	Title string
	// Orgs are the user's organizations when there is more than one (the
	// switcher); OrgID is the session's.
	Orgs  []project.Org
	OrgID string
}

// renderBufs keeps the buffers pages are rendered into (a 3,000-cell grid
// is ~1 MB: growing a new buffer for each page was a third of its
// allocations). Each is reset before use and only its written part is sent.
var renderBufs = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// maxPooledRender is the largest buffer put back in renderBufs.
const maxPooledRender = 4 << 20

// render executes page name into the layout; a rendering failure is a 500
// with no partial page.
func (h *Handler) render(w http.ResponseWriter, q *req, code int, name string, data any) {
	v := view{Data: data}
	if q != nil {
		v.User, v.CSRF, v.OrgID = q.actor.Name, q.csrf, q.actor.OrgID
		if q.actor.ID != "" && !q.session.MFAPending {
			orgs, err := h.svc.Sessions.Orgs(q.ctx(), q.actor)
			if err != nil {
				h.log.ErrorContext(q.ctx(), "list the user's organizations", "err", err.Error())
			}
			if len(orgs) > 1 {
				v.Orgs = orgs
			}
		}
	}
	if m, ok := data.(map[string]any); ok {
		if t, ok := m["Title"].(string); ok {
			v.Title = t
		}
	}
	t, ok := h.pages[name]
	if !ok {
		http.Error(w, "no such page", http.StatusInternalServerError)
		return
	}
	buf := renderBufs.Get().(*bytes.Buffer)
	buf.Reset()
	defer func() {
		if buf.Cap() <= maxPooledRender {
			renderBufs.Put(buf)
		}
	}()
	if err := t.ExecuteTemplate(buf, "layout", v); err != nil {
		h.log.Error("render page", "page", name, "err", err.Error())
		http.Error(w, "page rendering failed", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(code)
	w.Write(buf.Bytes())
}

// redirect answers a successful POST (post/redirect/get).
func redirect(w http.ResponseWriter, r *http.Request, to string) {
	http.Redirect(w, r, to, http.StatusSeeOther)
}
