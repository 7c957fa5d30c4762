package api_test

import (
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lockbox-dev/lockbox/internal/app/apptest"
	"github.com/lockbox-dev/lockbox/internal/store"
)

var csrfRE = regexp.MustCompile(`name="csrf_token" value="([^"]+)"`)

type deviceStartOut struct {
	DeviceCode, UserCode, VerificationURI, VerificationURIComplete string
	ExpiresIn, Interval                                            int
}

// TestDeviceLoginSignsAnSSOUserInToTheAPI: a user who signs in to the
// dashboard with the organization's identity provider approves a CLI's
// device login there, and the CLI collects an API session of that user,
// once; a denied, unknown, forged or expired login gets nothing.
func TestDeviceLoginSignsAnSSOUserInToTheAPI(t *testing.T) {
	forEachEngine(t, func(t *testing.T, d store.Dialect) {
		var mu sync.Mutex
		now := time.Now()
		clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
		e := apptest.Bootstrapped(t, d, apptest.Options{Clock: clock})
		idp := newSSOIssuer(t)
		slug, err := e.DB.OrgSlug(t.Context(), e.OrgID)
		if err != nil {
			t.Fatal(err)
		}
		e.Must(t, 200, "POST", "/api/v1/sso/oidc/config", e.Token, map[string]any{"orgSlug": slug, "configurationType": "discoveryURL",
			"discoveryURL": idp.srv.URL, "clientId": "lockbox-client", "clientSecret": "s3cret-client", "isActive": true})
		p := createProject(t, e, e.Token, map[string]any{"projectName": "device-visible"})

		start := func() deviceStartOut {
			t.Helper()
			var s deviceStartOut
			e.Must(t, 200, "POST", "/api/v1/auth/device", "", map[string]any{}).Decode(t, &s)
			if len(s.DeviceCode) < 40 || !regexp.MustCompile(`^[A-Z]{4}-[A-Z]{4}$`).MatchString(s.UserCode) ||
				s.VerificationURI != e.URL+"/device" || s.VerificationURIComplete != e.URL+"/device?code="+s.UserCode ||
				s.ExpiresIn != 600 || s.Interval < 1 {
				t.Fatalf("device start %+v", s)
			}
			return s
		}
		poll := func(code string) apptest.Response {
			return e.Do(t, "POST", "/api/v1/auth/device/token", "", map[string]any{"deviceCode": code})
		}
		s := start()
		assertError(t, poll(s.DeviceCode), 400, "authorization_pending")

		// Without a dashboard session the page sends the browser to log in, and back.
		if res, _ := get(t, browser(t), s.VerificationURIComplete); res.StatusCode != http.StatusSeeOther ||
			!strings.HasPrefix(res.Header.Get("Location"), "/login?next=") {
			t.Fatalf("device page without a session: %d %s", res.StatusCode, res.Header.Get("Location"))
		}
		// Signed in with SSO (the user has no password), the user sees the code.
		idp.signIn("dev@example.com", true, false)
		c := browser(t)
		if res, body, _ := ssoLogin(t, e, c, slug); res.StatusCode != http.StatusSeeOther {
			t.Fatalf("SSO login: %d %s", res.StatusCode, body)
		}
		typed := strings.ToLower(strings.ReplaceAll(s.UserCode, "-", ""))
		res, body := get(t, c, e.URL+"/device?code="+typed)
		m := csrfRE.FindStringSubmatch(body)
		if res.StatusCode != 200 || !strings.Contains(body, s.UserCode) || m == nil || !strings.Contains(body, `id="device-ip">127.0.0.1<`) {
			t.Fatalf("device page (code, requester's address): %d %s", res.StatusCode, body)
		}
		decide := func(c *http.Client, csrf, code, decision string) (int, string) {
			t.Helper()
			form := url.Values{"code": {code}, "decision": {decision}}
			if csrf != "" {
				form.Set("csrf_token", csrf)
			}
			req, _ := http.NewRequest("POST", e.URL+"/device", strings.NewReader(form.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.Header.Set("Origin", e.URL)
			res, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			b := new(strings.Builder)
			_, _ = io.Copy(b, res.Body)
			return res.StatusCode, b.String()
		}
		// A forged approval (no CSRF token) is refused and changes nothing.
		if code, _ := decide(c, "", s.UserCode, "approve"); code != 403 {
			t.Fatalf("approval without CSRF token: %d", code)
		}
		assertError(t, poll(s.DeviceCode), 400, "authorization_pending")
		if code, body := decide(c, m[1], typed, "approve"); code != 200 || !strings.Contains(body, "Approved") {
			t.Fatalf("approve: %d %s", code, body)
		}
		// Decided once: a second decision finds nothing.
		if code, _ := decide(c, m[1], s.UserCode, "deny"); code != 404 {
			t.Fatalf("second decision: %d", code)
		}
		// The CLI collects the user's session, once.
		var tok struct {
			AccessToken  string
			ExpiresIn    int
			User         struct{ Email string }
			Organization struct{ ID string }
		}
		r := poll(s.DeviceCode)
		if r.Status != 200 {
			t.Fatalf("poll after approval: %d %s", r.Status, r.Body)
		}
		r.Decode(t, &tok)
		if tok.AccessToken == "" || tok.ExpiresIn <= 0 || tok.User.Email != "dev@example.com" || tok.Organization.ID != e.OrgID {
			// Not the body: it holds the access token.
			t.Fatalf("token answer: token set %v, expiresIn %d, user %q, organization %q", tok.AccessToken != "", tok.ExpiresIn,
				tok.User.Email, tok.Organization.ID)
		}
		assertError(t, poll(s.DeviceCode), 400, "expired_token")
		// It acts as the SSO user in the organization: a plain member sees
		// no project until one is shared with them.
		var ws struct{ Workspaces []struct{ ID string } }
		e.Must(t, 200, "GET", "/api/v1/workspace", tok.AccessToken, nil).Decode(t, &ws)
		if len(ws.Workspaces) != 0 {
			t.Fatalf("a new SSO member lists %+v", ws)
		}
		e.Must(t, 200, "POST", "/api/v2/workspace/"+p.ID+"/memberships", e.Token, map[string]any{"emails": []string{"dev@example.com"}, "roleSlugs": []string{"viewer"}})
		e.Must(t, 200, "GET", "/api/v1/workspace", tok.AccessToken, nil).Decode(t, &ws)
		if len(ws.Workspaces) != 1 || ws.Workspaces[0].ID != p.ID {
			t.Fatalf("the device session does not act as the user: %+v", ws)
		}
		// Switching organizations does not extend the session.
		var sel struct{ Token string }
		e.Must(t, 200, "POST", "/api/v3/auth/select-organization", tok.AccessToken, map[string]any{"organizationId": e.OrgID}).Decode(t, &sel)
		if jwtExp(t, sel.Token) > jwtExp(t, tok.AccessToken) {
			t.Fatalf("select-organization extended the session: %d > %d", jwtExp(t, sel.Token), jwtExp(t, tok.AccessToken))
		}
		// Logging out of the switched session revokes it and the one it came
		// from, at once.
		e.Must(t, 200, "GET", "/api/v1/workspace", sel.Token, nil)
		e.Must(t, 200, "POST", "/api/v1/auth/token/revoke", "", map[string]any{"accessToken": sel.Token})
		for _, tk := range []string{tok.AccessToken, sel.Token} {
			if r := e.Do(t, "GET", "/api/v1/workspace", tk, nil); r.Status != 401 {
				t.Fatalf("a revoked device session: %d %s", r.Status, r.Body)
			}
		}

		// Denied: the CLI is told so and gets nothing.
		s = start()
		res, body = get(t, c, s.VerificationURIComplete)
		if code, _ := decide(c, csrfRE.FindStringSubmatch(body)[1], s.UserCode, "deny"); code != 200 {
			t.Fatalf("deny: %d", code)
		}
		assertError(t, poll(s.DeviceCode), 400, "access_denied")
		// Unknown code and device code.
		if res, _ := get(t, c, e.URL+"/device?code=BCDF-GHJK"); res.StatusCode != 404 {
			t.Fatalf("unknown code: %d", res.StatusCode)
		}
		assertError(t, poll("not-a-device-code"), 400, "expired_token")
		// Expired: ten minutes later neither the page nor the poll works.
		s = start()
		mu.Lock()
		now = now.Add(11 * time.Minute)
		mu.Unlock()
		if res, _ := get(t, c, s.VerificationURIComplete); res.StatusCode != 404 {
			t.Fatalf("expired code page: %d", res.StatusCode)
		}
		assertError(t, poll(s.DeviceCode), 400, "expired_token")

		// A link from another site is not looked up, so it counts no miss
		// (ten would block the user's approvals): the page offers the code.
		for i := range 12 {
			req, _ := http.NewRequest("GET", e.URL+"/device?code=YYYY-YYY"+string(rune('B'+i)), nil)
			req.Header.Set("Sec-Fetch-Site", "cross-site")
			res, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if res.StatusCode != 200 || !strings.Contains(string(b), `value="YYYY-YYY`) || strings.Contains(string(b), `id="device-approve"`) {
				t.Fatalf("a cross-site link to a code: %d %.300s", res.StatusCode, b)
			}
		}
		// Guessing codes: after ten wrong ones, even a right one waits.
		s = start()
		misses := 0
		for i := 0; i < 12; i++ {
			res, _ := get(t, c, e.URL+"/device?code=ZZZZ-ZZZ"+string(rune('B'+i)))
			if res.StatusCode == 404 {
				misses++
			} else if res.StatusCode != 429 {
				t.Fatalf("wrong code %d: %d", i, res.StatusCode)
			}
		}
		if misses != 9 { // the unknown code above was the first of ten
			t.Fatalf("%d wrong codes answered before the limit, want 9", misses)
		}
		if res, _ := get(t, c, s.VerificationURIComplete); res.StatusCode != 429 {
			t.Fatalf("a right code after too many wrong ones: %d", res.StatusCode)
		}

		// Audited.
		for _, ev := range []string{"approve-cli-login", "deny-cli-login"} {
			var logs struct{ AuditLogs []any }
			e.Must(t, 200, "GET", "/api/v1/organization/audit-logs?eventType="+ev, e.Token, nil).Decode(t, &logs)
			if len(logs.AuditLogs) != 1 {
				t.Fatalf("%s events: %d", ev, len(logs.AuditLogs))
			}
		}
	})
}

// jwtExp is a JWT's exp claim, read without verifying it.
func jwtExp(t *testing.T, tok string) int64 {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %d parts", len(parts))
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var c struct{ Exp int64 }
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	return c.Exp
}
