package web_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"html"
	"net/http"
	"net/netip"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	qrcode "github.com/skip2/go-qrcode"

	"github.com/lockbox-dev/lockbox/internal/app/apptest"
	"github.com/lockbox-dev/lockbox/internal/audit"
	"github.com/lockbox-dev/lockbox/internal/store"
)

var identityLinkRE = regexp.MustCompile(`/identities/([0-9a-f-]{36})`)

// TestDashboardReaderSeesNoIdentityControls: an organization member (who
// may read identities, not change them) sees no control on the identity
// pages, and each forged POST is refused with 403.
func TestDashboardReaderSeesNoIdentityControls(t *testing.T) {
	forEachEngine(t, func(t *testing.T, d store.Dialect) {
		e := apptest.Bootstrapped(t, d)
		admin := newBrowser(t, e.URL)
		admin.mustLogin(e.UserEmail, e.Password)
		pid := createProject(t, admin, "ids")
		iid := createIdentity(t, admin, "deployer", "member")
		mustStatus(t, admin.post("/identities/"+iid+"/universal-auth", nil, nil), 303, "attach UA")
		cs := admin.post("/identities/"+iid+"/client-secrets", url.Values{"description": {"ci"}}, nil)
		mustStatus(t, cs, 200, "client secret")
		mustStatus(t, admin.post("/identities/"+iid+"/token-auth", nil, nil), 303, "attach Token Auth")
		mustStatus(t, admin.post("/identities/"+iid+"/tokens", url.Values{"name": {"first"}}, nil), 200, "token")
		ap := admin.get("/identities/" + iid)
		for _, ctl := range []string{`id="client-secret-create"`, `id="membership-add"`, `/revoke"`, `id="token-create"`, `/tokens/`} {
			if !strings.Contains(ap.body, ctl) {
				t.Fatalf("the admin lacks control %s", ctl)
			}
		}
		csid := regexp.MustCompile(`/client-secrets/([0-9a-f-]{36})/revoke`).FindStringSubmatch(ap.body)[1]
		tid := regexp.MustCompile(`/tokens/([0-9a-f-]{36})/revoke`).FindStringSubmatch(ap.body)[1]

		addUser(t, e, "reader@example.com", "reader password 1", "member", pid, "viewer")
		r := newBrowser(t, e.URL)
		r.mustLogin("reader@example.com", "reader password 1")
		lp := r.get("/identities")
		mustStatus(t, lp, 200, "reader identities")
		if !strings.Contains(lp.body, "deployer") || strings.Contains(lp.body, `id="add-identity"`) {
			t.Fatalf("reader's identity list: %.1500s", lp.body)
		}
		ip := r.get("/identities/" + iid)
		mustStatus(t, ip, 200, "reader identity page")
		// A member reads identities but not their tokens (get-token).
		if !strings.Contains(ip.body, "Listing client secrets needs the get-token permission") || strings.Contains(ip.body, `data-token="`+tid) {
			t.Errorf("the reader is shown the identity's client secrets or tokens: %.3000s", ip.body)
		}
		for _, ctl := range []string{`id="client-secret-create"`, `id="membership-add"`, `id="add-to-project"`, `/revoke"`,
			`id="ua-attach"`, `method="post" action="/identities/`} {
			if strings.Contains(ip.body, ctl) {
				t.Errorf("reader sees control %s", ctl)
			}
		}
		for _, f := range []struct {
			path string
			form url.Values
		}{
			{"/identities", url.Values{"name": {"forged"}, "role": {"member"}}},
			{"/identities/" + iid + "/universal-auth", nil},
			{"/identities/" + iid + "/client-secrets", url.Values{"description": {"forged"}}},
			{"/identities/" + iid + "/client-secrets/" + csid + "/revoke", nil},
			{"/identities/" + iid + "/token-auth", nil},
			{"/identities/" + iid + "/role", url.Values{"role": {"admin"}}},
			{"/identities/" + iid + "/universal-auth/update", url.Values{"accessTokenTTL": {"5"}}},
			{"/identities/" + iid + "/universal-auth/remove", nil},
			{"/identities/" + iid + "/delete", nil},
			{"/identities/" + iid + "/tokens", url.Values{"name": {"forged"}}},
			{"/identities/" + iid + "/tokens/" + tid + "/revoke", nil},
			{"/identities/" + iid + "/methods", url.Values{"method": {"jwt-auth"}, "config": {`{"configurationType":"static"}`}}},
			{"/identities/" + iid + "/methods/jwt-auth", url.Values{"config": {`{}`}}},
			{"/identities/" + iid + "/methods/jwt-auth/remove", nil},
			{"/identities/" + iid + "/projects", url.Values{"project": {pid}, "role": {"admin"}}},
		} {
			if p := r.post(f.path, f.form, nil); p.status != http.StatusForbidden {
				t.Errorf("reader POST %s: %d, want 403", f.path, p.status)
			}
		}
		// Nothing changed: one active client secret, one active token, no
		// second identity.
		ap = admin.get("/identities/" + iid)
		if strings.Count(ap.body, "<td>active</td>") != 1 || strings.Count(ap.body, `<td class="state">active</td>`) != 1 ||
			strings.Contains(ap.body, "forged") {
			t.Fatalf("a refused POST changed the identity: %.2000s", ap.body)
		}
		if strings.Contains(admin.get("/identities").body, "forged") {
			t.Fatal("a refused POST created an identity")
		}
	})
}

// TestDashboardTokenAuth: an admin attaches Token Auth to an identity and
// creates an access token (shown once); the token works, its use shows on
// the identity page once the node records it, and revoking it there ends it.
func TestDashboardTokenAuth(t *testing.T) {
	forEachEngine(t, func(t *testing.T, d store.Dialect) {
		e := apptest.Bootstrapped(t, d)
		admin := newBrowser(t, e.URL)
		admin.mustLogin(e.UserEmail, e.Password)
		iid := createIdentity(t, admin, "pipeline", "member")
		if ip := admin.get("/identities/" + iid); !strings.Contains(ip.body, `id="token-auth-attach"`) {
			t.Fatalf("no Attach Token Auth: %.2000s", ip.body)
		}
		mustStatus(t, admin.post("/identities/"+iid+"/token-auth", nil, nil), 303, "attach Token Auth")
		shown := admin.post("/identities/"+iid+"/tokens", url.Values{"name": {"deploy-bot"}}, nil)
		mustStatus(t, shown, 200, "create token")
		m := regexp.MustCompile(`id="access-token">([^<]+)<`).FindStringSubmatch(shown.body)
		if m == nil {
			t.Fatal("the new access token is not shown")
		}
		tok := html.UnescapeString(m[1])
		row := func() string {
			ip := admin.get("/identities/" + iid)
			mustStatus(t, ip, 200, "identity page")
			if strings.Contains(ip.body, tok) {
				t.Fatal("the identity page shows the access token again")
			}
			for _, r := range strings.Split(ip.body, "<tr") {
				if strings.Contains(r, "deploy-bot") {
					return r
				}
			}
			t.Fatalf("the token is not listed: %.3000s", ip.body)
			return ""
		}
		if r := row(); !strings.Contains(r, `<td class="last-used">never</td>`) || !strings.Contains(r, `<td class="state">active</td>`) {
			t.Fatalf("a new token's row: %q", r)
		}
		if res := e.Do(t, "GET", "/api/v1/identities/details", tok, nil); res.Status != http.StatusOK {
			t.Fatalf("the new token: %d, want 200", res.Status)
		}
		if err := e.App.TokenUse.Flush(context.Background()); err != nil {
			t.Fatal(err)
		}
		r := row()
		if strings.Contains(r, `<td class="last-used">never</td>`) || !strings.Contains(r, `<td class="last-used">20`) {
			t.Fatalf("the token's use is not shown: %q", r)
		}
		tid := regexp.MustCompile(`/tokens/([0-9a-f-]{36})/revoke`).FindStringSubmatch(r)
		if tid == nil {
			t.Fatalf("no revoke control: %q", r)
		}
		mustStatus(t, admin.post("/identities/"+iid+"/tokens/"+tid[1]+"/revoke", nil, nil), 303, "revoke")
		if r := row(); !strings.Contains(r, `<td class="state">revoked</td>`) || strings.Contains(r, "/revoke") {
			t.Fatalf("after revoking: %q", r)
		}
		if res := e.Do(t, "GET", "/api/v1/identities/details", tok, nil); res.Status != http.StatusUnauthorized {
			t.Fatalf("a revoked token: %d, want 401", res.Status)
		}
		// Another identity's token is not revoked through this one's page.
		other := createIdentity(t, admin, "other", "member")
		mustStatus(t, admin.post("/identities/"+other+"/token-auth", nil, nil), 303, "attach Token Auth")
		mustStatus(t, admin.post("/identities/"+other+"/tokens", url.Values{"name": {"theirs"}}, nil), 200, "other token")
		otid := regexp.MustCompile(`/tokens/([0-9a-f-]{36})/revoke`).FindStringSubmatch(admin.get("/identities/" + other).body)[1]
		mustStatus(t, admin.post("/identities/"+iid+"/tokens/"+otid+"/revoke", nil, nil), 404, "revoke through another identity")
		if op := admin.get("/identities/" + other); !strings.Contains(op.body, `<td class="state">active</td>`) {
			t.Fatalf("the other identity's token after a refused revoke: %.3000s", op.body)
		}
	})
}

// TestDashboardHistoryHidesValues: the history page holds no value; each
// version's changes come on demand, only to a caller who may read values.
func TestDashboardHistoryHidesValues(t *testing.T) {
	forEachEngine(t, func(t *testing.T, d store.Dialect) {
		e := apptest.Bootstrapped(t, d)
		admin := newBrowser(t, e.URL)
		admin.mustLogin(e.UserEmail, e.Password)
		pid := createProject(t, admin, "hist")
		mustStatus(t, admin.post("/projects/"+pid+"/secrets", url.Values{"env": {"dev"}, "path": {"/"}, "key": {"API_KEY"},
			"value": {"first-value-a1"}}, nil), 303, "add")
		mustStatus(t, admin.post("/projects/"+pid+"/secrets/update", url.Values{"env": {"dev"}, "path": {"/"}, "key": {"API_KEY"},
			"value": {"second-value-b2"}}, nil), 303, "update")
		q := "?env=dev&path=/&key=API_KEY"
		h := admin.get("/projects/" + pid + "/secret/history" + q)
		mustStatus(t, h, 200, "history")
		if strings.Contains(h.body, "first-value-a1") || strings.Contains(h.body, "second-value-b2") {
			t.Fatal("the history page renders a value")
		}
		if !strings.Contains(h.body, `id="reveal-1"`) || !strings.Contains(h.body, `id="reveal-2"`) {
			t.Fatalf("no reveal per version: %.2000s", h.body)
		}
		v2 := admin.get("/projects/" + pid + "/secret/version" + q + "&version=2")
		mustStatus(t, v2, 200, "reveal v2")
		if v2.body != "- first-value-a1\n+ second-value-b2\n" {
			t.Fatalf("v2 changes = %q", v2.body)
		}
		v1 := admin.get("/projects/" + pid + "/secret/version" + q + "&version=1")
		if v1.body != "+ first-value-a1\n" {
			t.Fatalf("v1 changes = %q", v1.body)
		}
		mustStatus(t, admin.get("/projects/"+pid+"/secret/version"+q+"&version=9"), 404, "no such version")
		mustStatus(t, admin.get("/projects/"+pid+"/secret/version"+q+"&version=x"), 400, "bad version")

		// A user who may describe secrets and read their history, not their values.
		addUser(t, e, "describer@example.com", "describer pass 1", "member", pid,
			`custom:[{"subject":"secrets","action":["describeSecret"]},{"subject":"secret-rollback","action":["read"]},{"subject":"workspace","action":["read"]}]`)
		u := newBrowser(t, e.URL)
		u.mustLogin("describer@example.com", "describer pass 1")
		sp := u.get("/projects/" + pid + "/secret" + q)
		mustStatus(t, sp, 200, "describer secret page")
		if strings.Contains(sp.body, `id="reveal"`) || !strings.Contains(sp.body, `id="secret-value-hidden"`) {
			t.Fatalf("describer is offered a reveal: %.2000s", sp.body)
		}
		uh := u.get("/projects/" + pid + "/secret/history" + q)
		mustStatus(t, uh, 200, "describer history")
		if strings.Contains(uh.body, `id="reveal-`) || strings.Contains(uh.body, "value-") || strings.Contains(uh.body, `id="rollback-`) {
			t.Fatalf("describer history shows values or controls: %.2000s", uh.body)
		}
		mustStatus(t, u.get("/projects/"+pid+"/secret/version"+q+"&version=2"), 403, "describer reveal")
	})
}

// TestDashboardHistoryShowsTheKeptVersions: a secret written 105 times in a
// project that keeps 100 versions (pitVersionLimit's bound) lists the
// newest 100 on one page with no link to older ones; the oldest kept one is
// revealed as all new, a pruned one is not found, and a page past the kept
// ones links back.
func TestDashboardHistoryShowsTheKeptVersions(t *testing.T) {
	forEachEngine(t, func(t *testing.T, d store.Dialect) {
		e := apptest.Bootstrapped(t, d)
		admin := newBrowser(t, e.URL)
		admin.mustLogin(e.UserEmail, e.Password)
		pid := createProject(t, admin, "long-history")
		p, err := e.DB.ProjectByID(t.Context(), pid)
		if err != nil {
			t.Fatal(err)
		}
		p.PitVersionLimit = 100
		if err := e.DB.UpdateProject(t.Context(), p, p.UpdatedAt, audit.Event{Type: "test", OrgID: p.OrgID}); err != nil {
			t.Fatal(err)
		}
		mustStatus(t, admin.post("/projects/"+pid+"/secrets", url.Values{"env": {"dev"}, "path": {"/"}, "key": {"K"},
			"value": {"value-1"}}, nil), 303, "add")
		for i := 2; i <= 105; i++ {
			mustStatus(t, admin.post("/projects/"+pid+"/secrets/update", url.Values{"env": {"dev"}, "path": {"/"}, "key": {"K"},
				"value": {fmt.Sprintf("value-%d", i)}}, nil), 303, "update")
		}
		q := "?env=dev&path=/&key=K"
		versions := func(body string) []string {
			var out []string
			for _, m := range regexp.MustCompile(`data-version="(\d+)"`).FindAllStringSubmatch(body, -1) {
				out = append(out, m[1])
			}
			return out
		}
		first := admin.get("/projects/" + pid + "/secret/history" + q)
		mustStatus(t, first, 200, "history page 1")
		if v := versions(first.body); len(v) != 100 || v[0] != "105" || v[99] != "6" {
			t.Fatalf("page 1 lists versions %v, want 105..6", v)
		}
		link := func(id, offset string) *regexp.Regexp {
			return regexp.MustCompile(`id="` + id + `" href="/projects/` + pid + `/secret/history\?env=dev&(amp;)?path=[^"&]+&(amp;)?key=K&(amp;)?offset=` + offset + `"`)
		}
		if strings.Contains(first.body, `id="newer"`) {
			t.Fatalf("page 1 links: %.600s", first.body[strings.Index(first.body, "</ol>"):])
		}
		second := admin.get("/projects/" + pid + "/secret/history" + q + "&offset=100")
		mustStatus(t, second, 200, "history page 2")
		if v := versions(second.body); len(v) != 0 {
			t.Fatalf("page 2 lists versions %v, want none (pruned)", v)
		}
		if !link("newer", "0").MatchString(second.body) || strings.Contains(second.body, `id="older"`) {
			t.Fatalf("page 2 links: %.600s", second.body)
		}
		for v, want := range map[string]string{"7": "- value-6\n+ value-7\n", "6": "+ value-6\n", "105": "- value-104\n+ value-105\n"} {
			p := admin.get("/projects/" + pid + "/secret/version" + q + "&version=" + v)
			mustStatus(t, p, 200, "reveal v"+v)
			if p.body != want {
				t.Errorf("v%s changes = %q, want %q", v, p.body, want)
			}
		}
		for _, v := range []string{"0", "5", "1", "106", "-3"} {
			mustStatus(t, admin.get("/projects/"+pid+"/secret/version"+q+"&version="+v), 404, "version "+v)
		}
		for _, o := range []string{"-1", "x"} {
			mustStatus(t, admin.get("/projects/"+pid+"/secret/history"+q+"&offset="+o), 400, "offset "+o)
		}
	})
}

// loginCookie fetches /login with hdr and returns its Set-Cookie headers.
func loginCookie(t *testing.T, e *apptest.Env, hdr map[string]string) string {
	t.Helper()
	req, _ := http.NewRequest("GET", e.URL+"/login", nil)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	return strings.Join(res.Header.Values("Set-Cookie"), "\n")
}

// TestDashboardSecureCookieBehindProxy: X-Forwarded-Proto makes cookies
// Secure only when the peer is a configured trusted proxy.
func TestDashboardSecureCookieBehindProxy(t *testing.T) {
	https := map[string]string{"X-Forwarded-Proto": "https"}
	// Trusted by no one (the default): the header is ignored.
	plain := apptest.Start(t, store.SQLite)
	if c := loginCookie(t, plain, https); !strings.Contains(c, "lockbox_login_csrf=") || strings.Contains(c, "Secure") {
		t.Fatalf("an untrusted X-Forwarded-Proto made the cookie Secure: %q", c)
	}
	// The test client (127.0.0.1) is the trusted proxy.
	proxied := apptest.Bootstrapped(t, store.SQLite, apptest.Options{TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}})
	if c := loginCookie(t, proxied, https); !strings.Contains(c, "Secure") {
		t.Fatalf("behind a trusted TLS proxy the cookie is not Secure: %q", c)
	}
	if c := loginCookie(t, proxied, map[string]string{"X-Forwarded-Proto": "http"}); strings.Contains(c, "Secure") {
		t.Fatalf("X-Forwarded-Proto: http made the cookie Secure: %q", c)
	}
	if c := loginCookie(t, proxied, nil); strings.Contains(c, "Secure") {
		t.Fatalf("no X-Forwarded-Proto made the cookie Secure: %q", c)
	}
	// The nearest proxy's value counts: a client's own "https" appended to
	// by the proxy's "http" is plain HTTP.
	if c := loginCookie(t, proxied, map[string]string{"X-Forwarded-Proto": "https, http"}); strings.Contains(c, "Secure") {
		t.Fatalf("a forged first hop made the cookie Secure: %q", c)
	}
	// The session cookie too.
	b := newBrowser(t, proxied.URL)
	b.get("/login")
	p := b.post("/login", url.Values{"email": {proxied.UserEmail}, "password": {proxied.Password}}, https)
	mustStatus(t, p, 303, "login behind proxy")
	var raw string
	for _, c := range p.header.Values("Set-Cookie") {
		if strings.HasPrefix(c, "lockbox_session=") {
			raw = c
		}
	}
	if !strings.Contains(raw, "Secure") {
		t.Fatalf("session cookie behind a trusted TLS proxy: %q", raw)
	}
}

// TestDashboardSessionTimeoutsConfigured: the server's idle and absolute
// timeouts end sessions on the injected clock.
func TestDashboardSessionTimeoutsConfigured(t *testing.T) {
	forEachEngine(t, func(t *testing.T, d store.Dialect) {
		var offset atomic.Int64
		now := func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }
		e := apptest.Bootstrapped(t, d, apptest.Options{Clock: now, SessionIdleTimeout: 10 * time.Minute,
			SessionAbsoluteTimeout: time.Hour})
		ended := func(b *browser) bool {
			p := b.get("/projects")
			return p.status == http.StatusSeeOther && strings.HasPrefix(p.header.Get("Location"), "/login")
		}
		// Idle: 9 minutes of silence are fine, 11 more end the session.
		b := newBrowser(t, e.URL)
		b.mustLogin(e.UserEmail, e.Password)
		offset.Add(int64(9 * time.Minute))
		if ended(b) {
			t.Fatal("the session ended before its idle timeout")
		}
		offset.Add(int64(11 * time.Minute))
		if !ended(b) {
			t.Fatal("the session outlived its 10 minute idle timeout")
		}
		// Absolute: a request every 8 minutes keeps it alive for the hour, not past it.
		offset.Store(0)
		b = newBrowser(t, e.URL)
		b.mustLogin(e.UserEmail, e.Password)
		for range 7 { // 56 minutes
			offset.Add(int64(8 * time.Minute))
			if ended(b) {
				t.Fatalf("an active session ended after %v", time.Duration(offset.Load()))
			}
		}
		offset.Add(int64(5 * time.Minute)) // 61 minutes
		if !ended(b) {
			t.Fatal("an active session outlived its 1 hour absolute timeout")
		}
	})
}

var (
	qrPathRE  = regexp.MustCompile(`<svg [^>]*id="totp-qr">.*?<path fill="#000" d="([^"]*)"/></svg>`)
	qrCellRE  = regexp.MustCompile(`M(\d+) (\d+)h1v1h-1z`)
	totpURIRE = regexp.MustCompile(`id="totp-uri">([^<]+)<`)
)

// TestDashboardTOTPQRCode: enrolment shows the otpauth URI as an inline
// SVG QR code, module for module the URI's QR code; nothing is fetched and
// the CSP is unchanged.
func TestDashboardTOTPQRCode(t *testing.T) {
	e := apptest.Bootstrapped(t, store.SQLite)
	b := newBrowser(t, e.URL)
	b.mustLogin(e.UserEmail, e.Password)
	b.get("/settings/security")
	p := b.post("/settings/totp/begin", nil, nil)
	mustStatus(t, p, 200, "begin")
	m, u := qrPathRE.FindStringSubmatch(p.body), totpURIRE.FindStringSubmatch(p.body)
	if m == nil || u == nil {
		t.Fatalf("no QR code or URI: %.3000s", p.body)
	}
	uri := html.UnescapeString(u[1])
	if !strings.HasPrefix(uri, "otpauth://totp/") {
		t.Fatalf("uri %q", uri)
	}
	q, err := qrcode.New(uri, qrcode.Medium)
	if err != nil {
		t.Fatal(err)
	}
	want := q.Bitmap()
	got := make([][]bool, len(want))
	for i := range got {
		got[i] = make([]bool, len(want))
	}
	for _, c := range qrCellRE.FindAllStringSubmatch(m[1], -1) {
		x, _ := strconv.Atoi(c[1])
		y, _ := strconv.Atoi(c[2])
		if y >= len(got) || x >= len(got) {
			t.Fatalf("module %d,%d outside a %d code", x, y, len(got))
		}
		got[y][x] = true
	}
	for y := range want {
		for x := range want[y] {
			if got[y][x] != want[y][x] {
				t.Fatalf("module %d,%d differs from the URI's QR code", x, y)
			}
		}
	}
	if strings.Contains(p.body, `src="http`) || strings.Contains(p.body, " style=") {
		t.Fatal("the QR code fetches or styles inline")
	}
	if csp := p.header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") || strings.Contains(csp, "unsafe") {
		t.Fatalf("CSP %q", csp)
	}
}

// withOrgRole makes, through admin's dashboard, a custom organization role
// slug with the identity actions given (a JSON list) and role read, and a
// member email holding it, logged in.
func withOrgRole(t *testing.T, e *apptest.Env, admin *browser, slug, identityActions, email string) *browser {
	t.Helper()
	mustStatus(t, admin.post("/org/roles", url.Values{"name": {slug}, "slug": {slug},
		"advanced": {`[{"subject":"identity","action":` + identityActions + `},{"subject":"role","action":["read"]}]`}}, nil), 303, "role "+slug)
	addUser(t, e, email, "password of "+email, "member", "", "")
	m := memberControl(admin.get("/org/members").body, email)
	mustStatus(t, admin.post("/org/members/"+m[1]+"/role", url.Values{"role": {slug}}, nil), 303, "role of "+email)
	b := newBrowser(t, e.URL)
	b.mustLogin(email, "password of "+email)
	return b
}

// TestDashboardIdentityBeyondTheUser: a user whose organization role may
// manage identities is offered no change to an identity holding more than
// they do (admin, or a role they do not hold), each such POST is refused,
// and an identity within their bounds shows them its controls; those of a
// login method's keys only with create-token.
func TestDashboardIdentityBeyondTheUser(t *testing.T) {
	forEachEngine(t, func(t *testing.T, d store.Dialect) {
		e := apptest.Bootstrapped(t, d)
		admin := newBrowser(t, e.URL)
		admin.mustLogin(e.UserEmail, e.Password)
		k := withOrgRole(t, e, admin, "machine-keeper", `["read","create","edit","delete","create-token","get-token"]`, "mk@example.com")

		ids := map[string]string{}
		for _, role := range []string{"admin", "member", "no-access"} {
			ids[role] = createIdentity(t, admin, "id-"+role, role)
			mustStatus(t, admin.post("/identities/"+ids[role]+"/token-auth", nil, nil), 303, "token auth "+role)
		}
		for _, role := range []string{"admin", "member"} {
			page := k.get("/identities/" + ids[role])
			mustStatus(t, page, 200, "keeper reads "+role)
			if strings.Contains(page.body, `method="post" action="/identities/`) {
				t.Errorf("the keeper is offered a change to the %s identity", role)
			}
			if p := k.post("/identities/"+ids[role]+"/tokens", url.Values{"name": {"mine"}}, nil); p.status != http.StatusForbidden {
				t.Errorf("the keeper minting a token of the %s identity: %d, want 403", role, p.status)
			}
		}
		page := k.get("/identities/" + ids["no-access"])
		// Deleting the identity needs delete alone, not the delete-token
		// the keeper lacks.
		for _, ctl := range []string{`id="token-create"`, `id="ua-attach"`, `id="identity-delete"`, `id="attach-method"`} {
			if !strings.Contains(page.body, ctl) {
				t.Errorf("the keeper is not offered %s on an identity within their bounds", ctl)
			}
		}
		mustStatus(t, k.post("/identities/"+ids["no-access"]+"/tokens", url.Values{"name": {"mine"}}, nil), 200, "token within bounds")

		// Without create-token, no login method's keys: attaching one is
		// neither offered nor allowed, attaching Universal Auth still is.
		ed := withOrgRole(t, e, admin, "machine-editor", `["read","create","edit","delete","revoke-auth"]`, "me@example.com")
		page = ed.get("/identities/" + ids["no-access"])
		if !strings.Contains(page.body, `id="ua-attach"`) || strings.Contains(page.body, `id="attach-method"`) {
			t.Errorf("the editor's controls: Universal Auth offered %v, a login method offered %v",
				strings.Contains(page.body, `id="ua-attach"`), strings.Contains(page.body, `id="attach-method"`))
		}
		if p := ed.post("/identities/"+ids["no-access"]+"/methods", url.Values{"method": {"jwt-auth"},
			"config": {`{"configurationType":"static","publicKeys":[]}`}}, nil); p.status != http.StatusForbidden {
			t.Errorf("the editor attaching a login method: %d, want 403", p.status)
		}
		// Removing one needs revoke-auth, not create-token: the editor is
		// offered that, and not the form that changes its keys.
		key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		der, _ := x509.MarshalPKIXPublicKey(key.Public())
		e.Must(t, 200, "POST", "/api/v1/auth/jwt-auth/identities/"+ids["no-access"], e.Token, map[string]any{"configurationType": "static",
			"publicKeys": []string{string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))}})
		page = ed.get("/identities/" + ids["no-access"])
		if !strings.Contains(page.body, `id="remove-method-jwt-auth"`) || strings.Contains(page.body, `id="edit-method-jwt-auth"`) {
			t.Errorf("the editor's login-method controls: remove offered %v, edit offered %v",
				strings.Contains(page.body, `id="remove-method-jwt-auth"`), strings.Contains(page.body, `id="edit-method-jwt-auth"`))
		}
	})
}
