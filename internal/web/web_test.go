package web_test

import (
	"context"
	"crypto/x509"
	"database/sql"
	"encoding/base32"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/lockbox-dev/lockbox/internal/app/apptest"
	"github.com/lockbox-dev/lockbox/internal/dynamic/provider/totp"
	"github.com/lockbox-dev/lockbox/internal/identity"
	"github.com/lockbox-dev/lockbox/internal/secret"
	"github.com/lockbox-dev/lockbox/internal/store"
	"github.com/lockbox-dev/lockbox/internal/store/storetest"
)

func forEachEngine(t *testing.T, fn func(t *testing.T, d store.Dialect)) {
	for _, d := range storetest.Engines {
		t.Run(string(d), func(t *testing.T) { fn(t, d) })
	}
}

// browser is a cookie-keeping HTTP client that does not follow redirects,
// so tests see each 303.
type browser struct {
	t    testing.TB
	base string
	c    *http.Client
	csrf string // from the last page that had one
}

func newBrowser(t testing.TB, base string) *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{t: t, base: base, c: &http.Client{Jar: jar, Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

var csrfRE = regexp.MustCompile(`name="csrf_token" value="([^"]+)"`)

type page struct {
	status int
	header http.Header
	body   string
}

func (b *browser) do(req *http.Request) page {
	b.t.Helper()
	res, err := b.c.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	if m := csrfRE.FindStringSubmatch(string(body)); m != nil {
		b.csrf = m[1]
	}
	return page{res.StatusCode, res.Header, string(body)}
}

func (b *browser) get(path string) page {
	b.t.Helper()
	req, _ := http.NewRequest("GET", b.base+path, nil)
	return b.do(req)
}

// post sends a form with the current CSRF token and a same-origin Origin;
// hdr overrides or removes ("" value) headers and csrf_token.
func (b *browser) post(path string, form url.Values, hdr map[string]string) page {
	b.t.Helper()
	if form == nil {
		form = url.Values{}
	}
	if _, ok := form["csrf_token"]; !ok {
		form.Set("csrf_token", b.csrf)
	}
	req, _ := http.NewRequest("POST", b.base+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", b.base)
	for k, v := range hdr {
		if v == "" {
			req.Header.Del(k)
		} else {
			req.Header.Set(k, v)
		}
	}
	return b.do(req)
}

func (b *browser) login(email, password string) page {
	b.t.Helper()
	b.get("/login")
	return b.post("/login", url.Values{"email": {email}, "password": {password}}, nil)
}

func (b *browser) mustLogin(email, password string) {
	b.t.Helper()
	p := b.login(email, password)
	if p.status != http.StatusSeeOther || p.header.Get("Location") != "/projects" {
		b.t.Fatalf("login: %d %s %s", p.status, p.header.Get("Location"), p.body)
	}
	b.get("/projects") // picks up the session's CSRF token
}

func (b *browser) cookie(name string) *http.Cookie {
	u, _ := url.Parse(b.base)
	for _, c := range b.c.Jar.Cookies(u) {
		if c.Name == name {
			return c
		}
	}
	return nil
}

func mustStatus(t testing.TB, p page, want int, what string) {
	t.Helper()
	if p.status != want {
		t.Fatalf("%s: status %d, want %d: %.600s", what, p.status, want, p.body)
	}
}

func TestDashboardSecurityHeadersAndCookie(t *testing.T) {
	e := apptest.Bootstrapped(t, store.SQLite)
	b := newBrowser(t, e.URL)
	p := b.get("/login")
	mustStatus(t, p, 200, "login page")
	for k, want := range map[string]string{"X-Frame-Options": "DENY", "Referrer-Policy": "no-referrer",
		"X-Content-Type-Options": "nosniff", "Strict-Transport-Security": ""} { // no HSTS over plain HTTP
		if got := p.header.Get(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	csp := p.header.Get("Content-Security-Policy")
	for _, part := range []string{"default-src 'none'", "script-src 'self'", "style-src 'self'", "frame-ancestors 'none'"} {
		if !strings.Contains(csp, part) {
			t.Errorf("CSP %q lacks %q", csp, part)
		}
	}
	if strings.Contains(csp, "unsafe-inline") || strings.Contains(p.body, "<script>") || strings.Contains(p.body, " style=") {
		t.Errorf("inline script or style allowed or used")
	}
	// The session cookie: HttpOnly, SameSite=Lax, not Secure over plain HTTP.
	b.csrf = csrfRE.FindStringSubmatch(p.body)[1]
	lp := b.post("/login", url.Values{"email": {e.UserEmail}, "password": {e.Password}}, nil)
	mustStatus(t, lp, 303, "login")
	var raw string
	for _, c := range lp.header.Values("Set-Cookie") {
		if strings.HasPrefix(c, "lockbox_session=") {
			raw = c
		}
	}
	if !strings.Contains(raw, "HttpOnly") || !strings.Contains(raw, "SameSite=Lax") || strings.Contains(raw, "Secure") ||
		!strings.Contains(raw, "Path=/") {
		t.Fatalf("session cookie %q", raw)
	}
	// Only a SHA-256 of the token is stored.
	tok := b.cookie("lockbox_session").Value
	if _, _, err := e.DB.WebSessionByID(t.Context(), tok); err == nil {
		t.Fatal("the raw session token is a session id")
	}
	// API paths stay JSON; the dashboard answers the rest.
	r := e.Do(t, "GET", "/api/v1/nonexistent", "", nil)
	if r.Status != 404 || !strings.Contains(r.Header.Get("Content-Type"), "json") {
		t.Fatalf("api 404 = %d %s", r.Status, r.Header.Get("Content-Type"))
	}
	if p := b.get("/static/app.js"); p.status != 200 || !strings.Contains(p.body, "reveal") {
		t.Fatalf("static js: %d", p.status)
	}
}

func TestDashboardSecureCookieOverTLS(t *testing.T) {
	e := apptest.Start(t, store.SQLite, apptest.Options{ClientCAs: x509.NewCertPool()})
	c := e.Server.Client()
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	res, err := c.Get(e.URL + "/login")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	var raw string
	for _, v := range res.Header.Values("Set-Cookie") {
		raw += v
	}
	if !strings.Contains(raw, "lockbox_login_csrf=") || !strings.Contains(raw, "Secure") {
		t.Fatalf("cookie over TLS is not Secure: %q", raw)
	}
	if got := res.Header.Get("Strict-Transport-Security"); got != "max-age=31536000" {
		t.Fatalf("Strict-Transport-Security over TLS = %q", got)
	}
}

func TestDashboardCSRFAndOrigin(t *testing.T) {
	forEachEngine(t, func(t *testing.T, d store.Dialect) {
		e := apptest.Bootstrapped(t, d)
		b := newBrowser(t, e.URL)
		// Login itself needs its CSRF token.
		b.get("/login")
		p := b.post("/login", url.Values{"email": {e.UserEmail}, "password": {e.Password}, "csrf_token": {"forged"}}, nil)
		mustStatus(t, p, 403, "login without csrf")
		b.mustLogin(e.UserEmail, e.Password)

		form := func() url.Values { return url.Values{"name": {"csrf-probe"}} }
		mustStatus(t, b.post("/projects", url.Values{"name": {"x"}, "csrf_token": {""}}, nil), 403, "no token")
		mustStatus(t, b.post("/projects", url.Values{"name": {"x"}, "csrf_token": {"AAAA"}}, nil), 403, "wrong token")
		mustStatus(t, b.post("/projects", form(), map[string]string{"Origin": "http://evil.example"}), 403, "wrong origin")
		mustStatus(t, b.post("/projects", form(), map[string]string{"Origin": "", "Referer": "http://evil.example/x"}), 403, "wrong referer")
		mustStatus(t, b.post("/projects", form(), map[string]string{"Origin": "", "Sec-Fetch-Site": "cross-site"}), 403, "cross-site fetch")
		if p := b.get("/projects"); strings.Contains(p.body, "csrf-probe") || strings.Contains(p.body, ">x<") {
			t.Fatal("a refused request created a project")
		}
		// The header works for scripts.
		p = b.post("/projects", url.Values{"name": {"csrf-probe"}, "csrf_token": {""}}, map[string]string{"X-CSRF-Token": b.csrf})
		mustStatus(t, p, 303, "header token")
		if p := b.get("/projects"); !strings.Contains(p.body, "csrf-probe") {
			t.Fatal("project not created")
		}
	})
}

func TestDashboardLogoutEndsSession(t *testing.T) {
	forEachEngine(t, func(t *testing.T, d store.Dialect) {
		e := apptest.Bootstrapped(t, d)
		b := newBrowser(t, e.URL)
		b.mustLogin(e.UserEmail, e.Password)
		tok := b.cookie("lockbox_session").Value
		mustStatus(t, b.get("/logout"), 405, "logout by GET")
		mustStatus(t, b.post("/logout", url.Values{"csrf_token": {""}}, nil), 403, "logout without token")
		p := b.post("/logout", nil, nil)
		mustStatus(t, p, 303, "logout")
		// Replaying the old cookie gets the login page, not the dashboard.
		b2 := newBrowser(t, e.URL)
		u, _ := url.Parse(e.URL)
		b2.c.Jar.SetCookies(u, []*http.Cookie{{Name: "lockbox_session", Value: tok, Path: "/"}})
		p = b2.get("/projects")
		if p.status != 303 || !strings.HasPrefix(p.header.Get("Location"), "/login") {
			t.Fatalf("old session still works: %d %s", p.status, p.header.Get("Location"))
		}
		// The audit log has the logout with the user as actor.
		evs := auditTypes(t, e, "user-logout")
		if len(evs) != 1 || evs[0] != "user" {
			t.Fatalf("logout audit = %v", evs)
		}
	})
}

// auditTypes returns the actor types of the org's events of type typ.
func auditTypes(t testing.TB, e *apptest.Env, typ string) []string {
	t.Helper()
	r := e.Do(t, "GET", "/api/v1/organization/audit-logs?eventType="+typ, e.Token, nil)
	var body struct {
		AuditLogs []struct {
			Actor struct {
				Type string `json:"type"`
			} `json:"actor"`
		} `json:"auditLogs"`
	}
	r.Decode(t, &body)
	var out []string
	for _, l := range body.AuditLogs {
		out = append(out, l.Actor.Type)
	}
	return out
}

// rawDB opens the server's database beside it, for what no API does yet
// (a user with a project role).
func rawDB(t testing.TB, e *apptest.Env) (*sql.DB, func(string) string) {
	t.Helper()
	var db *sql.DB
	var err error
	rebind := func(q string) string { return q }
	if u := e.DBURL(); u != "" {
		db, err = sql.Open("pgx", u)
		rebind = func(q string) string {
			n := 0
			var b strings.Builder
			for _, c := range q {
				if c == '?' {
					n++
					fmt.Fprintf(&b, "$%d", n)
					continue
				}
				b.WriteRune(c)
			}
			return b.String()
		}
	} else {
		db, err = sql.Open("sqlite", "file:"+e.DB.Path()+"?_pragma=busy_timeout(10000)")
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db, rebind
}

// addUser creates a user with a password, an org role and, when projectID
// is set, a project role.
func addUser(t testing.TB, e *apptest.Env, email, password, orgRole, projectID, projectRole string) string {
	t.Helper()
	db, q := rawDB(t, e)
	ctx := context.Background()
	now := time.Now().UnixMicro()
	uid := uuid.NewString()
	exec := func(s string, args ...any) {
		if _, err := db.ExecContext(ctx, q(s), args...); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
	exec(`INSERT INTO users (id, email, username, password_hash, super_admin, created_at, updated_at) VALUES (?, ?, ?, ?, FALSE, ?, ?)`,
		uid, email, email, identity.HashPassword(password), now, now)
	exec(`INSERT INTO org_memberships (id, org_id, user_id, role, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)`,
		uuid.NewString(), e.OrgID, uid, orgRole, now, now)
	if projectID != "" {
		mid := uuid.NewString()
		exec(`INSERT INTO project_memberships (id, project_id, user_id, created_at, updated_at) VALUES (?, ?, ?, ?, ?)`,
			mid, projectID, uid, now, now)
		role, custom := projectRole, any(nil)
		if rules, ok := strings.CutPrefix(projectRole, "custom:"); ok { // a custom role with these rules (JSON)
			rid := uuid.NewString()
			exec(`INSERT INTO project_roles (id, project_id, slug, name, permissions, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)`,
				rid, projectID, "r-"+rid[:8], "custom", rules, now, now)
			role, custom = "custom", rid
		}
		exec(`INSERT INTO project_membership_roles (id, membership_id, role, custom_role_id, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)`,
			uuid.NewString(), mid, role, custom, now, now)
	}
	if err := e.DB.BumpEpoch(ctx); err != nil { // caches drop what they hold
		t.Fatal(err)
	}
	return uid
}

var projectLinkRE = regexp.MustCompile(`href="/projects/([0-9a-f-]{36})/secrets"`)

// createIdentity creates a machine identity with an organization role
// through the dashboard and returns its id.
func createIdentity(t testing.TB, b *browser, name, role string) string {
	t.Helper()
	p := b.post("/identities", url.Values{"name": {name}, "role": {role}}, nil)
	mustStatus(t, p, 303, "create identity "+name)
	m := identityLinkRE.FindStringSubmatch(p.header.Get("Location"))
	if m == nil {
		t.Fatalf("created identity at %q", p.header.Get("Location"))
	}
	return m[1]
}

func createProject(t testing.TB, b *browser, name string) string {
	t.Helper()
	p := b.post("/projects", url.Values{"name": {name}}, nil)
	mustStatus(t, p, 303, "create project")
	m := regexp.MustCompile(`/projects/([0-9a-f-]{36})/secrets`).FindStringSubmatch(p.header.Get("Location"))
	if m == nil {
		t.Fatalf("create project redirected to %q", p.header.Get("Location"))
	}
	return m[1]
}

func TestDashboardViewerCannotWrite(t *testing.T) {
	forEachEngine(t, func(t *testing.T, d store.Dialect) {
		e := apptest.Bootstrapped(t, d)
		admin := newBrowser(t, e.URL)
		admin.mustLogin(e.UserEmail, e.Password)
		pid := createProject(t, admin, "shared")
		mustStatus(t, admin.post("/projects/"+pid+"/secrets", url.Values{"env": {"dev"}, "path": {"/"}, "key": {"DB_URL"},
			"value": {"postgres://x"}}, nil), 303, "admin adds secret")
		mustStatus(t, admin.post("/projects/"+pid+"/folders", url.Values{"env": {"dev"}, "path": {"/"}, "name": {"app"}}, nil), 303, "folder")
		mustStatus(t, admin.post("/projects/"+pid+"/tags", url.Values{"name": {"ops"}, "path": {"/"}}, nil), 303, "tag")
		mustStatus(t, admin.post("/projects/"+pid+"/kms", url.Values{"name": {"k1"}, "usage": {"encrypt-decrypt"}, "algorithm": {"aes-256-gcm"}}, nil), 303, "key")
		tagID := regexp.MustCompile(`/tags/([0-9a-f-]{36})/delete`).FindStringSubmatch(admin.get("/projects/" + pid + "/secrets").body)[1]
		keyID := regexp.MustCompile(`/kms/([0-9a-f-]{36})/delete`).FindStringSubmatch(admin.get("/projects/" + pid + "/kms").body)[1]
		envID := regexp.MustCompile(`/environments/([0-9a-f-]{36})"`).FindStringSubmatch(admin.get("/projects/" + pid + "/environments").body)[1]

		addUser(t, e, "viewer@example.com", "viewer password 1", "member", pid, "viewer")
		v := newBrowser(t, e.URL)
		v.mustLogin("viewer@example.com", "viewer password 1")
		p := v.get("/projects/" + pid + "/secrets")
		mustStatus(t, p, 200, "viewer grid")
		if !strings.Contains(p.body, "DB_URL") {
			t.Fatal("viewer does not see the key")
		}
		for _, ctl := range []string{`id="add-secret"`, `id="bulk-import"`, `id="add-folder"`, `id="add-tag"`, `/tags/`} {
			if strings.Contains(p.body, ctl) {
				t.Errorf("viewer sees edit control %s", ctl)
			}
		}
		if !strings.Contains(p.body, `data-tag="ops"`) {
			t.Error("viewer does not see the project's tags")
		}
		for page, ctls := range map[string][]string{
			"/secrets?path=/app": {`id="rename-folder"`, `id="delete-folder"`, `id="this-folder"`},
			"/environments":      {`/environments/`, `id="add-environment"`},
			"/kms":               {`/kms/`, `id="add-kms-key"`},
		} {
			body := v.get("/projects/" + pid + page).body
			for _, ctl := range ctls {
				if strings.Contains(body, ctl) {
					t.Errorf("viewer sees %s on %s", ctl, page)
				}
			}
		}
		sp := v.get("/projects/" + pid + "/secret?env=dev&path=/&key=DB_URL")
		mustStatus(t, sp, 200, "viewer secret page")
		if strings.Contains(sp.body, `id="edit-secret"`) || strings.Contains(sp.body, `id="delete-secret"`) {
			t.Error("viewer sees edit or delete")
		}
		// Forged POSTs, with a valid token, are refused by the domain layer.
		for _, f := range []struct {
			path string
			form url.Values
		}{
			{"/projects/" + pid + "/secrets", url.Values{"env": {"dev"}, "key": {"NEW"}, "value": {"v"}}},
			{"/projects/" + pid + "/secrets/update", url.Values{"env": {"dev"}, "key": {"DB_URL"}, "value": {"hacked"}}},
			{"/projects/" + pid + "/secrets/delete", url.Values{"env": {"dev"}, "key": {"DB_URL"}}},
			{"/projects/" + pid + "/secrets/import", url.Values{"env": {"dev"}, "dotenv": {"A=1"}}},
			{"/projects/" + pid + "/environments", url.Values{"name": {"QA"}, "slug": {"qa"}}},
			{"/projects/" + pid + "/environments/" + envID, url.Values{"name": {"Hacked"}}},
			{"/projects/" + pid + "/folders/rename", url.Values{"env": {"dev"}, "path": {"/"}, "name": {"app"}, "newName": {"hacked"}}},
			{"/projects/" + pid + "/folders/delete", url.Values{"env": {"dev"}, "path": {"/"}, "name": {"app"}}},
			{"/projects/" + pid + "/tags/" + tagID, url.Values{"name": {"hacked"}}},
			{"/projects/" + pid + "/tags/" + tagID + "/delete", nil},
			{"/projects/" + pid + "/kms/" + keyID, url.Values{"disabled": {"true"}}},
			{"/projects/" + pid + "/kms/" + keyID + "/rotate", nil},
			{"/projects/" + pid + "/kms/" + keyID + "/delete", nil},
		} {
			p := v.post(f.path, f.form, nil)
			if p.status != 403 {
				t.Errorf("viewer POST %s: %d, want 403", f.path, p.status)
			}
		}
		// Nothing changed.
		r := admin.get("/projects/" + pid + "/secret/value?env=dev&path=/&key=DB_URL")
		if r.body != "postgres://x" {
			t.Fatalf("value after forged posts = %q", r.body)
		}
		grid := admin.get("/projects/" + pid + "/secrets").body
		if !strings.Contains(grid, "📁 app") || !strings.Contains(grid, `data-tag="ops"`) {
			t.Fatal("a forged POST renamed or deleted the folder or the tag")
		}
		if k := rowOf(admin.get("/projects/"+pid+"/kms").body, `data-key="k1"`); !strings.Contains(k, `<td class="state">enabled</td>`) || !strings.Contains(k, "<td>1</td>") {
			t.Fatalf("a forged POST changed the key: %q", k)
		}
		if strings.Contains(admin.get("/projects/"+pid+"/environments").body, "Hacked") {
			t.Fatal("a forged POST renamed an environment")
		}
	})
}

func TestDashboardLockout(t *testing.T) {
	e := apptest.Bootstrapped(t, store.SQLite)
	b := newBrowser(t, e.URL)
	for i := range 5 {
		p := b.login(e.UserEmail, "wrong password")
		if p.status != 400 || !strings.Contains(p.body, "Invalid credentials") {
			t.Fatalf("attempt %d: %d %.300s", i, p.status, p.body)
		}
	}
	p := b.login(e.UserEmail, e.Password)
	if p.status != 401 || !strings.Contains(p.body, "temporarily locked") {
		t.Fatalf("locked login: %d %.300s", p.status, p.body)
	}
	if b.cookie("lockbox_session") != nil {
		t.Fatal("a locked login got a session")
	}
}

var totpSecretRE = regexp.MustCompile(`id="totp-secret">([A-Z2-7]+)<`)
var recoveryRE = regexp.MustCompile(`<li><code>([0-9a-f]{10})</code></li>`)

func TestDashboardTOTP(t *testing.T) {
	forEachEngine(t, func(t *testing.T, d store.Dialect) {
		e := apptest.Bootstrapped(t, d)
		b := newBrowser(t, e.URL)
		b.mustLogin(e.UserEmail, e.Password)
		b.get("/settings/security")
		p := b.post("/settings/totp/begin", nil, nil)
		mustStatus(t, p, 200, "begin")
		m := totpSecretRE.FindStringSubmatch(p.body)
		if m == nil {
			t.Fatalf("no secret shown: %.500s", p.body)
		}
		seed, err := base32Decode(m[1])
		if err != nil {
			t.Fatal(err)
		}
		mustStatus(t, b.post("/settings/totp/confirm", url.Values{"code": {"000000"}, "password": {e.Password}}, nil), 400, "wrong confirm code")
		// The session alone does not turn it on: a stolen one would lock the
		// owner out and keep the recovery codes.
		mustStatus(t, b.post("/settings/totp/confirm", url.Values{"code": {totpCode(seed, time.Now())}}, nil), 422, "confirm without the password")
		mustStatus(t, b.post("/settings/totp/confirm", url.Values{"code": {totpCode(seed, time.Now())}, "password": {"wrong password!"}}, nil),
			400, "confirm with a wrong password")
		// Sessions taken with the password alone before the second factor
		// (another browser, the API) end when it is enabled; this one stays.
		other := newBrowser(t, e.URL)
		other.mustLogin(e.UserEmail, e.Password)
		var apiLogin struct{ AccessToken string }
		e.Must(t, 200, "POST", "/api/v3/auth/login", "", map[string]string{"email": e.UserEmail, "password": e.Password}).Decode(t, &apiLogin)
		p = b.post("/settings/totp/confirm", url.Values{"code": {totpCode(seed, time.Now())}, "password": {e.Password}}, nil)
		mustStatus(t, p, 200, "confirm")
		if p := other.get("/projects"); p.status != 303 || !strings.HasPrefix(p.header.Get("Location"), "/login") {
			t.Fatalf("another dashboard session after TOTP was enabled: %d %s", p.status, p.header.Get("Location"))
		}
		if r := e.Do(t, "POST", "/api/v3/auth/select-organization", apiLogin.AccessToken, map[string]string{"organizationId": e.OrgID}); r.Status != 401 {
			t.Fatalf("an API session after TOTP was enabled: %d", r.Status)
		}
		mustStatus(t, b.get("/projects"), 200, "the enabling session")
		codes := recoveryRE.FindAllStringSubmatch(p.body, -1)
		if len(codes) != 10 {
			t.Fatalf("%d recovery codes", len(codes))
		}
		mustStatus(t, b.post("/logout", nil, nil), 303, "logout")

		// The API's password login does not skip the second factor.
		r := e.Do(t, "POST", "/api/v3/auth/login", "", map[string]string{"email": e.UserEmail, "password": e.Password})
		if r.Status != 401 || strings.Contains(string(r.Body), "accessToken") || strings.Contains(string(r.Body), "token\"") {
			t.Fatalf("API login of a user with TOTP: %d", r.Status)
		}

		// Password alone leaves the session pending: pages send to /mfa.
		c := newBrowser(t, e.URL)
		p = c.login(e.UserEmail, e.Password)
		if p.status != 303 || !strings.HasPrefix(p.header.Get("Location"), "/mfa") {
			t.Fatalf("login with totp: %d %s", p.status, p.header.Get("Location"))
		}
		if p := c.get("/projects"); p.status != 303 || p.header.Get("Location") != "/mfa" {
			t.Fatalf("pending session reached /projects: %d", p.status)
		}
		c.get("/mfa")
		mustStatus(t, c.post("/mfa", url.Values{"code": {"123456"}}, nil), 400, "wrong code")
		// The code confirmed at enrolment is spent; wait for a fresh step
		// if the clock has not moved on.
		now := time.Now()
		code := totpCode(seed, now)
		if now.Unix()/30 == time.Now().Unix()/30 {
			code = totpCode(seed, now.Add(30*time.Second)) // next step is accepted (drift window)
		}
		pending := c.cookie("lockbox_session").Value // as an attacker who planted it holds it
		mustStatus(t, c.post("/mfa", url.Values{"code": {code}}, nil), 303, "right code")
		mustStatus(t, c.get("/projects"), 200, "after mfa")
		// The full session has a new token: the pending one has ended.
		if c.cookie("lockbox_session").Value == pending {
			t.Fatal("the second factor kept the pending session's token")
		}
		planted := newBrowser(t, e.URL)
		u, _ := url.Parse(e.URL)
		planted.c.Jar.SetCookies(u, []*http.Cookie{{Name: "lockbox_session", Value: pending, Path: "/"}})
		if p := planted.get("/projects"); p.status != 303 || !strings.HasPrefix(p.header.Get("Location"), "/login") {
			t.Fatalf("the pending token after the second factor: %d %s", p.status, p.header.Get("Location"))
		}
		// The same code again is refused (replay).
		c2 := newBrowser(t, e.URL)
		c2.login(e.UserEmail, e.Password)
		c2.get("/mfa")
		mustStatus(t, c2.post("/mfa", url.Values{"code": {code}}, nil), 400, "replayed code")
		// A recovery code works once.
		rc := codes[3][1]
		mustStatus(t, c2.post("/mfa", url.Values{"code": {rc}}, nil), 303, "recovery code")
		c3 := newBrowser(t, e.URL)
		c3.login(e.UserEmail, e.Password)
		c3.get("/mfa")
		mustStatus(t, c3.post("/mfa", url.Values{"code": {rc}}, nil), 400, "recovery code reused")
	})
}

// totpCode is an authenticator app's code of seed at t.
func totpCode(seed []byte, t time.Time) string {
	c, _ := totp.Code(seed, "sha1", 6, 30, t)
	return c
}

func base32Decode(s string) ([]byte, error) {
	return base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(s)
}

// TestDashboardGridDeniedEnvironment: a user whose role reads only dev sees
// the grid with the other environments listed as denied, and no prod value.
func TestDashboardGridDeniedEnvironment(t *testing.T) {
	forEachEngine(t, func(t *testing.T, d store.Dialect) {
		e := apptest.Bootstrapped(t, d)
		admin := newBrowser(t, e.URL)
		admin.mustLogin(e.UserEmail, e.Password)
		pid := createProject(t, admin, "scoped")
		for _, env := range []string{"dev", "prod"} {
			mustStatus(t, admin.post("/projects/"+pid+"/secrets", url.Values{"env": {env}, "path": {"/"}, "key": {"K_" + env},
				"value": {"v"}}, nil), 303, "add")
		}
		addUser(t, e, "dev@example.com", "dev password 12", "member", pid,
			`custom:[{"subject":"secrets","action":["read"],"conditions":{"environment":"dev"}},{"subject":"workspace","action":["read"]}]`)
		u := newBrowser(t, e.URL)
		u.mustLogin("dev@example.com", "dev password 12")
		p := u.get("/projects/" + pid + "/secrets")
		mustStatus(t, p, 200, "scoped grid")
		if !strings.Contains(p.body, `id="denied-envs"`) || !strings.Contains(p.body, "staging, prod") {
			t.Fatalf("denied environments not listed: %.2000s", p.body)
		}
		if !strings.Contains(p.body, `data-key="K_dev"`) || strings.Contains(p.body, `data-key="K_prod"`) {
			t.Fatal("the grid shows the wrong keys")
		}
		mustStatus(t, u.get("/projects/"+pid+"/secret/value?env=prod&path=/&key=K_prod"), 403, "prod value")
	})
}

// TestPastedDotenvIsBounded: a .env pasted into the dashboard is one batch
// like the API's, bounded by secret.MaxBatch (a 1 MiB form holds ~350,000
// lines of "A=", each a write with its version and audit event): one line
// more is refused whole, and nothing is written.
func TestPastedDotenvIsBounded(t *testing.T) {
	e := apptest.Bootstrapped(t, store.SQLite)
	br := newBrowser(t, e.URL)
	br.mustLogin(e.UserEmail, e.Password)
	pid := createProject(t, br, "bounded")
	var sb strings.Builder
	for i := range secret.MaxBatch + 1 {
		fmt.Fprintf(&sb, "K%d=\n", i)
	}
	p := br.post("/projects/"+pid+"/secrets/import", url.Values{"env": {"dev"}, "path": {"/"}, "dotenv": {sb.String()}}, nil)
	mustStatus(t, p, 422, "a paste of MaxBatch+1 lines")
	if !strings.Contains(p.body, "At most") {
		t.Fatalf("the refusal does not say why: %.600s", p.body)
	}
	var out struct{ Secrets []struct{ SecretKey string } }
	e.Must(t, 200, "GET", "/api/v3/secrets/raw?workspaceId="+pid+"&environment=dev&secretPath=/", e.Token, nil).Decode(t, &out)
	if len(out.Secrets) != 0 {
		t.Fatalf("%d secrets written by a refused paste", len(out.Secrets))
	}
}
