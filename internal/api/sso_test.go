package api_test

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/lockbox-dev/lockbox/internal/app/apptest"
	"github.com/lockbox-dev/lockbox/internal/store"
	"github.com/lockbox-dev/lockbox/internal/testsvc/cloudtest"
)

// ssoIssuer is an OpenID provider on loopback implementing the
// authorization-code flow with PKCE: /authorize signs in whoever the test
// set as user, /token checks the client secret and the PKCE verifier and
// answers an ID token carrying the nonce.
type ssoIssuer struct {
	srv    *httptest.Server
	signer cloudtest.Signer

	mu        sync.Mutex
	email     string
	verified  any
	badNonce  bool
	codes     map[string]ssoGrant
	exchanges int
	authURL   string // the discovery document's authorization_endpoint, when set
	groups    any    // the groups claim, when set
}

type ssoGrant struct{ nonce, challenge, redirect string }

func newSSOIssuer(t *testing.T) *ssoIssuer {
	t.Helper()
	o := &ssoIssuer{signer: cloudtest.NewSigner(t, "rsa", "k1"), codes: map[string]ssoGrant{}, verified: true}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		o.mu.Lock()
		authURL := o.authURL
		o.mu.Unlock()
		if authURL == "" {
			authURL = o.srv.URL + "/authorize"
		}
		writeJSONBody(w, map[string]any{"issuer": o.srv.URL, "authorization_endpoint": authURL,
			"token_endpoint": o.srv.URL + "/token", "jwks_uri": o.srv.URL + "/keys", "id_token_signing_alg_values_supported": []string{"RS256"}})
	})
	mux.HandleFunc("GET /keys", func(w http.ResponseWriter, r *http.Request) {
		writeJSONBody(w, map[string]any{"keys": []any{o.signer.JWK()}})
	})
	mux.HandleFunc("GET /authorize", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		if q.Get("client_id") != "lockbox-client" || q.Get("response_type") != "code" || q.Get("code_challenge_method") != "S256" ||
			q.Get("nonce") == "" || q.Get("state") == "" || !strings.Contains(q.Get("scope"), "openid") {
			http.Error(w, "bad authorization request", 400)
			return
		}
		code := randomHex()
		o.mu.Lock()
		o.codes[code] = ssoGrant{q.Get("nonce"), q.Get("code_challenge"), q.Get("redirect_uri")}
		o.mu.Unlock()
		http.Redirect(w, r, q.Get("redirect_uri")+"?code="+code+"&state="+url.QueryEscape(q.Get("state")), http.StatusFound)
	})
	mux.HandleFunc("POST /token", func(w http.ResponseWriter, r *http.Request) {
		r.ParseForm()
		id, secret, ok := r.BasicAuth()
		if !ok {
			id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
		}
		o.mu.Lock()
		g, found := o.codes[r.PostForm.Get("code")]
		delete(o.codes, r.PostForm.Get("code"))
		o.exchanges++
		email, verified, badNonce, groups := o.email, o.verified, o.badNonce, o.groups
		o.mu.Unlock()
		sum := sha256.Sum256([]byte(r.PostForm.Get("code_verifier")))
		if id != "lockbox-client" || secret != "s3cret-client" || !found || g.redirect != r.PostForm.Get("redirect_uri") ||
			base64.RawURLEncoding.EncodeToString(sum[:]) != g.challenge {
			w.WriteHeader(400)
			writeJSONBody(w, map[string]any{"error": "invalid_grant"})
			return
		}
		nonce := g.nonce
		if badNonce {
			nonce = "not-the-nonce"
		}
		now := time.Now()
		claims := jwt.MapClaims{"iss": o.srv.URL, "aud": "lockbox-client", "sub": "idp|" + email, "email": email,
			"email_verified": verified, "given_name": "Ada", "family_name": "Lovelace", "nonce": nonce,
			"iat": now.Unix(), "exp": now.Add(5 * time.Minute).Unix()}
		if groups != nil {
			claims["groups"] = groups
		}
		tok := jwt.NewWithClaims(jwt.SigningMethodRS256, claims)
		tok.Header["kid"] = "k1"
		signed, err := tok.SignedString(o.signer.Key)
		if err != nil {
			w.WriteHeader(500)
			return
		}
		writeJSONBody(w, map[string]any{"access_token": "at-" + randomHex(), "token_type": "Bearer", "expires_in": 300, "id_token": signed})
	})
	o.srv = httptest.NewServer(mux)
	t.Cleanup(o.srv.Close)
	return o
}

func (o *ssoIssuer) signIn(email string, verified any, badNonce bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.email, o.verified, o.badNonce = email, verified, badNonce
}

// browser is a cookie-keeping client that does not follow redirects.
func browser(t *testing.T) *http.Client {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

func get(t *testing.T, c *http.Client, u string) (*http.Response, string) {
	t.Helper()
	res, err := c.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	return res, string(b)
}

// ssoLogin walks a browser through login → identity provider → callback and
// returns the callback's answer and its URL.
func ssoLogin(t *testing.T, e *apptest.Env, c *http.Client, orgSlug string) (*http.Response, string, string) {
	t.Helper()
	res, _ := get(t, c, e.URL+"/api/v1/sso/oidc/login?orgSlug="+orgSlug+"&next=/projects")
	if res.StatusCode != http.StatusFound {
		t.Fatalf("login: %d", res.StatusCode)
	}
	res, body := get(t, c, res.Header.Get("Location"))
	if res.StatusCode != http.StatusFound {
		t.Fatalf("identity provider: %d %s", res.StatusCode, body)
	}
	cb := res.Header.Get("Location")
	if !strings.HasPrefix(cb, e.URL+"/api/v1/sso/oidc/callback?") {
		t.Fatalf("callback URL %s", cb)
	}
	res, body = get(t, c, cb)
	return res, body, cb
}

type orgMemberOut struct {
	ID, Role, RoleSlug, Status string
	IsActive                   bool
	User                       struct{ ID, Email, FirstName, LastName string }
}

func orgMembers(t *testing.T, e *apptest.Env) map[string]orgMemberOut {
	t.Helper()
	var out struct{ Users []orgMemberOut }
	e.Must(t, 200, "GET", "/api/v2/organizations/"+e.OrgID+"/memberships", e.Token, nil).Decode(t, &out)
	m := map[string]orgMemberOut{}
	for _, u := range out.Users {
		m[u.User.Email] = u
	}
	return m
}

// TestSSOWithOIDC drives the whole story against a local OpenID provider:
// configuration (secret never returned), login redirect with state, nonce
// and PKCE, the callback creating the user with the default role and a
// dashboard session, a second login reusing the user, and the refusals
// (wrong domain, unverified email, state replay, another browser, a wrong
// nonce), all audited.
func TestSSOWithOIDC(t *testing.T) {
	forEachEngine(t, func(t *testing.T, d store.Dialect) {
		e := apptest.Bootstrapped(t, d)
		idp := newSSOIssuer(t)
		slug, err := e.DB.OrgSlug(t.Context(), e.OrgID)
		if err != nil {
			t.Fatal(err)
		}
		const path = "/api/v1/sso/oidc/config"
		// Not configured: no login, and the config is not found.
		assertError(t, e.Do(t, "GET", path+"?orgSlug="+slug, e.Token, nil), 404, "NotFound")
		if res, _ := get(t, browser(t), e.URL+"/api/v1/sso/oidc/login?orgSlug="+slug); res.StatusCode != 404 {
			t.Fatalf("login without configuration: %d", res.StatusCode)
		}
		cfg := map[string]any{"orgSlug": slug, "configurationType": "discoveryURL", "discoveryURL": idp.srv.URL,
			"clientId": "lockbox-client", "clientSecret": "s3cret-client", "allowedEmailDomains": "Example.com, corp.example",
			"isActive": true}
		// Only those allowed to manage SSO may configure it.
		_, memberTok := e.NewIdentity(t, "sso-member", "member")
		assertError(t, e.Do(t, "POST", path, memberTok, cfg), 403, "PermissionDenied")
		// Nor can one who may edit SSO but does not hold all an admin holds:
		// the provider would decide who signs in as which member.
		e.Must(t, 200, "POST", "/api/v1/organization/roles", e.Token, map[string]any{"slug": "sso-only", "name": "SSO only",
			"permissions": []map[string]any{{"subject": "sso", "action": []string{"read", "create", "edit"}}}})
		_, ssoTok := e.NewIdentity(t, "sso-editor", "sso-only")
		if r := e.Do(t, "POST", path, ssoTok, cfg); r.Status != 403 || !strings.Contains(string(r.Body), "admin") {
			t.Fatalf("SSO editor without admin rights: %d %s", r.Status, r.Body)
		}
		// Input is checked, the target policy included.
		for _, bad := range []map[string]any{
			{"discoveryURL": "http://169.254.169.254/latest"},
			{"discoveryURL": "ftp://example.com"},
			{"clientSecret": ""},
			{"configurationType": "saml"},
			{"allowedEmailDomains": "not a domain"},
			{"defaultMembershipRole": "admin"},
			{"defaultMembershipRole": "ghost"},
			{"orgSlug": "another-org"},
		} {
			body := map[string]any{}
			for k, v := range cfg {
				body[k] = v
			}
			for k, v := range bad {
				body[k] = v
			}
			if r := e.Do(t, "POST", path, e.Token, body); r.Status < 400 || r.Status >= 500 {
				t.Fatalf("%v: %d %s", bad, r.Status, r.Body)
			}
		}
		created := e.Must(t, 200, "POST", path, e.Token, cfg)
		got := e.Must(t, 200, "GET", path+"?orgSlug="+slug, e.Token, nil)
		for _, r := range []apptest.Response{created, got} {
			var c struct {
				ID, ClientID, AllowedEmailDomains, DefaultMembershipRole, ConfigurationType string
				IsActive                                                                    bool
			}
			r.Decode(t, &c)
			if c.ID == "" || c.ClientID != "lockbox-client" || c.AllowedEmailDomains != "example.com, corp.example" || !c.IsActive ||
				c.DefaultMembershipRole != "member" || strings.Contains(string(r.Body), "s3cret") || strings.Contains(string(r.Body), "clientSecret") {
				t.Fatalf("config answer %s", r.Body)
			}
		}
		assertError(t, e.Do(t, "POST", path, e.Token, cfg), 400, "BadRequest")

		// First login: the user is created, member of the organization, signed in.
		idp.signIn("ada@example.com", true, false)
		c := browser(t)
		res, body, cb := ssoLogin(t, e, c, slug)
		if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/projects" {
			t.Fatalf("callback: %d %s", res.StatusCode, body)
		}
		if res, _ := get(t, c, e.URL+"/projects"); res.StatusCode != 200 {
			t.Fatalf("dashboard after SSO: %d", res.StatusCode)
		}
		m := orgMembers(t, e)["ada@example.com"]
		if m.Role != "member" || m.Status != "accepted" || !m.IsActive || m.User.FirstName != "Ada" {
			t.Fatalf("provisioned member %+v", m)
		}
		// A discovery document sending the browser to a javascript: URL is refused.
		idp.mu.Lock()
		idp.authURL = "javascript:alert(1)"
		idp.mu.Unlock()
		if res, body := get(t, browser(t), e.URL+"/api/v1/sso/oidc/login?orgSlug="+slug); res.StatusCode != 400 ||
			strings.Contains(res.Header.Get("Location"), "javascript") {
			t.Fatalf("javascript: authorization endpoint: %d %s %s", res.StatusCode, res.Header.Get("Location"), body)
		}
		idp.mu.Lock()
		idp.authURL = ""
		idp.mu.Unlock()
		// The same callback again: the state was used.
		if res, _ := get(t, c, cb); res.StatusCode != 403 && res.StatusCode != 400 {
			t.Fatalf("replayed callback: %d", res.StatusCode)
		}
		// A replay from a browser holding the state cookie of that login.
		c2 := browser(t)
		res, _ = get(t, c2, e.URL+"/api/v1/sso/oidc/login?orgSlug="+slug)
		loc := res.Header.Get("Location")
		res, _ = get(t, c2, loc)
		cb2 := res.Header.Get("Location")
		site, _ := url.Parse(e.URL)
		var state *http.Cookie
		for _, ck := range c2.Jar.Cookies(site) {
			if ck.Name == "lockbox_oidc_state" {
				state = ck
			}
		}
		if state == nil {
			t.Fatal("no state cookie")
		}
		if res, _ := get(t, c2, cb2); res.StatusCode != http.StatusSeeOther {
			t.Fatalf("second login: %d", res.StatusCode)
		}
		c2.Jar.SetCookies(site, []*http.Cookie{{Name: state.Name, Value: state.Value, Path: "/"}})
		if res, body := get(t, c2, cb2); res.StatusCode != 400 || !strings.Contains(body, "start it again") {
			t.Fatalf("state replay: %d %s", res.StatusCode, body)
		}
		// Second login reused the user: one member, same id.
		if again := orgMembers(t, e)["ada@example.com"]; again.User.ID != m.User.ID || again.ID != m.ID {
			t.Fatalf("second login made %+v, first %+v", again, m)
		}

		// A callback in a browser that did not start the login is refused.
		c3 := browser(t)
		res, _ = get(t, c3, e.URL+"/api/v1/sso/oidc/login?orgSlug="+slug)
		res, _ = get(t, c3, res.Header.Get("Location"))
		if res, _ := get(t, browser(t), res.Header.Get("Location")); res.StatusCode != 403 {
			t.Fatalf("callback in another browser: %d", res.StatusCode)
		}

		// Refusals: wrong domain, unverified email, wrong nonce. No user is created.
		for _, tc := range []struct {
			email    string
			verified any
			badNonce bool
			status   int
		}{
			{"eve@evil.example", true, false, 403},
			{"bob@example.com", false, false, 403},
			{"bob@example.com", "false", false, 403},
			{"bob@example.com", nil, false, 403},
			{"bob@example.com", true, true, 401},
			// Unicode that folds to an allowed domain or to another address.
			{"bob@\u017fample.com", true, false, 400},
			{"\u212Aate@example.com", true, false, 400},
			// The instance admin's account is never signed in by an
			// organization's identity provider.
			{e.UserEmail, true, false, 403},
		} {
			idp.signIn(tc.email, tc.verified, tc.badNonce)
			res, body, _ := ssoLogin(t, e, browser(t), slug)
			if res.StatusCode != tc.status || strings.Contains(body, "s3cret") {
				t.Fatalf("%+v: %d %s", tc, res.StatusCode, body)
			}
			if _, ok := orgMembers(t, e)[tc.email]; ok && tc.email != e.UserEmail {
				t.Fatalf("%s became a member", tc.email)
			}
		}
		// "true" as a string counts as verified (some providers send it so);
		// the other allowed domain works; a custom default role is given.
		e.Must(t, 200, "POST", "/api/v1/organization/roles", e.Token, map[string]any{"slug": "sso-people", "name": "SSO people",
			"permissions": []map[string]any{{"subject": "workspace", "action": []string{"read"}}}})
		e.Must(t, 200, "PATCH", path, e.Token, map[string]any{"orgSlug": slug, "defaultMembershipRole": "sso-people"})
		idp.signIn("carol@corp.example", "true", false)
		if res, body, _ := ssoLogin(t, e, browser(t), slug); res.StatusCode != http.StatusSeeOther {
			t.Fatalf("carol: %d %s", res.StatusCode, body)
		}
		if carol := orgMembers(t, e)["carol@corp.example"]; carol.RoleSlug != "sso-people" {
			t.Fatalf("carol %+v", carol)
		}
		// The default role is in use while the configuration names it, even
		// held by nobody: deleting it is refused, renaming it is followed
		// (else every SSO login of a new member was a 500).
		var fresh struct{ Role struct{ ID string } }
		e.Must(t, 200, "POST", "/api/v1/organization/roles", e.Token, map[string]any{"slug": "sso-new", "name": "SSO new",
			"permissions": []map[string]any{{"subject": "workspace", "action": []string{"read"}}}}).Decode(t, &fresh)
		e.Must(t, 200, "PATCH", path, e.Token, map[string]any{"orgSlug": slug, "defaultMembershipRole": "sso-new"})
		assertError(t, e.Do(t, "DELETE", "/api/v1/organization/roles/"+fresh.Role.ID, e.Token, nil), 400, "BadRequest")
		e.Must(t, 200, "PATCH", "/api/v1/organization/roles/"+fresh.Role.ID, e.Token, map[string]any{"slug": "sso-renamed"})
		var renamed struct{ DefaultMembershipRole string }
		e.Must(t, 200, "GET", path+"?orgSlug="+slug, e.Token, nil).Decode(t, &renamed)
		if renamed.DefaultMembershipRole != "sso-renamed" {
			t.Fatalf("default role after the rename: %q", renamed.DefaultMembershipRole)
		}
		idp.signIn("erin@example.com", true, false)
		if res, body, _ := ssoLogin(t, e, browser(t), slug); res.StatusCode != http.StatusSeeOther {
			t.Fatalf("erin: %d %s", res.StatusCode, body)
		}
		if erin := orgMembers(t, e)["erin@example.com"]; erin.RoleSlug != "sso-renamed" {
			t.Fatalf("erin %+v", erin)
		}
		// Endpoints given one by one instead of discovered. Where the client
		// secret goes changes only with the secret given again: the stored
		// one would be sent to the new token endpoint.
		custom := map[string]any{"orgSlug": slug, "configurationType": "custom", "issuer": idp.srv.URL,
			"authorizationEndpoint": idp.srv.URL + "/authorize", "tokenEndpoint": idp.srv.URL + "/token", "jwksUri": idp.srv.URL + "/keys"}
		assertError(t, e.Do(t, "PATCH", path, e.Token, custom), 422, "ValidationFailure")
		assertError(t, e.Do(t, "PATCH", path, e.Token, map[string]any{"orgSlug": slug, "discoveryURL": idp.srv.URL + "/elsewhere"}), 422, "ValidationFailure")
		custom["clientSecret"] = "s3cret-client"
		e.Must(t, 200, "PATCH", path, e.Token, custom)
		assertError(t, e.Do(t, "PATCH", path, e.Token, map[string]any{"orgSlug": slug, "tokenEndpoint": idp.srv.URL + "/other-token"}), 422, "ValidationFailure")
		assertError(t, e.Do(t, "PATCH", path, e.Token, map[string]any{"orgSlug": slug, "jwksUri": "http://169.254.169.254/keys"}), 400, "BadRequest")
		idp.signIn("dave@example.com", true, false)
		if res, body, _ := ssoLogin(t, e, browser(t), slug); res.StatusCode != http.StatusSeeOther {
			t.Fatalf("custom endpoints: %d %s", res.StatusCode, body)
		}
		// Deactivated SSO: no login.
		e.Must(t, 200, "PATCH", path, e.Token, map[string]any{"orgSlug": slug, "isActive": false})
		if res, _ := get(t, browser(t), e.URL+"/api/v1/sso/oidc/login?orgSlug="+slug); res.StatusCode != 404 {
			t.Fatalf("inactive: %d", res.StatusCode)
		}

		// Every change and login is audited.
		for _, ev := range []string{"create-oidc-config", "update-oidc-config", "create-user-sso", "user-login", "user-login-refused"} {
			var logs struct {
				AuditLogs []struct {
					Event struct{ Metadata map[string]any }
				}
			}
			e.Must(t, 200, "GET", "/api/v1/organization/audit-logs?eventType="+ev+"&limit=50", e.Token, nil).Decode(t, &logs)
			if len(logs.AuditLogs) == 0 {
				t.Fatalf("no %s event", ev)
			}
		}
	})
}

func writeJSONBody(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(v)
}

func randomHex() string {
	b := make([]byte, 16)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// TestSSOGroupsClaimMapsGroups: with manageGroupMemberships, each sign-in
// puts the user in exactly the groups its groups claim names (by name, as
// Infisical), a malformed claim refuses the login and changes nothing, and the
// groups' users take no manual change while the mapping is on.
func TestSSOGroupsClaimMapsGroups(t *testing.T) {
	forEachEngine(t, func(t *testing.T, d store.Dialect) {
		e := apptest.Bootstrapped(t, d)
		idp := newSSOIssuer(t)
		slug, err := e.DB.OrgSlug(t.Context(), e.OrgID)
		if err != nil {
			t.Fatal(err)
		}
		const path = "/api/v1/sso/oidc/config"
		var cfg struct{ ManageGroupMemberships bool }
		e.Must(t, 200, "POST", path, e.Token, map[string]any{"orgSlug": slug, "configurationType": "discoveryURL", "discoveryURL": idp.srv.URL,
			"clientId": "lockbox-client", "clientSecret": "s3cret-client", "isActive": true, "manageGroupMemberships": true}).Decode(t, &cfg)
		if !cfg.ManageGroupMemberships {
			t.Fatal("manageGroupMemberships not kept")
		}
		eng := createGroup(t, e, e.Token, map[string]any{"name": "Engineering"})
		ops := createGroup(t, e, e.Token, map[string]any{"name": "Operations", "slug": "ops-team"})
		users := func(g groupOut) []string {
			t.Helper()
			var out struct{ Users []struct{ Email string } }
			e.Must(t, 200, "GET", "/api/v1/groups/"+g.ID+"/users?filter=existingMembers", e.Token, nil).Decode(t, &out)
			var emails []string
			for _, u := range out.Users {
				emails = append(emails, u.Email)
			}
			return emails
		}
		login := func(groups any, want int) {
			t.Helper()
			idp.mu.Lock()
			idp.groups = groups
			idp.mu.Unlock()
			idp.signIn("ada@example.com", true, false)
			if res, body, _ := ssoLogin(t, e, browser(t), slug); res.StatusCode != want {
				t.Fatalf("login with groups %v: %d %s", groups, res.StatusCode, body)
			}
		}
		login([]string{"Engineering", "not-a-group"}, http.StatusSeeOther)
		if got := users(eng); len(got) != 1 || got[0] != "ada@example.com" || len(users(ops)) != 0 {
			t.Fatalf("after [Engineering]: eng %v ops %v", got, users(ops))
		}
		login("ops-team", http.StatusSeeOther) // a slug is not a name: no group
		if len(users(eng)) != 0 || len(users(ops)) != 0 {
			t.Fatalf("after ops-team: eng %v ops %v", users(eng), users(ops))
		}
		login("Operations", http.StatusSeeOther) // one name, not in a list
		if len(users(eng)) != 0 || len(users(ops)) != 1 {
			t.Fatalf("after ops-team: eng %v ops %v", users(eng), users(ops))
		}
		// A claim that is not a list of names refuses the login and changes nothing.
		login([]any{"Engineering", 7}, http.StatusBadRequest)
		login(map[string]any{"name": "Engineering"}, http.StatusBadRequest)
		if len(users(eng)) != 0 || len(users(ops)) != 1 {
			t.Fatalf("after malformed claims: eng %v ops %v", users(eng), users(ops))
		}
		// While the mapping is on, a group's users are the provider's to decide.
		for _, r := range []apptest.Response{
			e.Do(t, "POST", "/api/v1/groups/"+eng.ID+"/users/ada@example.com", e.Token, nil),
			e.Do(t, "DELETE", "/api/v1/groups/"+ops.ID+"/users/ada@example.com", e.Token, nil),
		} {
			if r.Status != 400 || !strings.Contains(string(r.Body), "OIDC group membership mapping is enabled") {
				t.Fatalf("manual change with mapping on: %d %s", r.Status, r.Body)
			}
		}
		e.Must(t, 200, "POST", "/api/v1/groups/"+eng.ID+"/machine-identities/"+e.IdentityID, e.Token, nil) // identities are not mapped
		// No claim at all: the user leaves every group.
		login(nil, http.StatusSeeOther)
		if len(users(eng)) != 0 || len(users(ops)) != 0 {
			t.Fatalf("after no claim: eng %v ops %v", users(eng), users(ops))
		}
		// Mapping off: the claim is ignored and manual changes work again.
		e.Must(t, 200, "PATCH", path, e.Token, map[string]any{"orgSlug": slug, "manageGroupMemberships": false})
		e.Must(t, 200, "POST", "/api/v1/groups/"+eng.ID+"/users/ada@example.com", e.Token, nil)
		login([]string{"Operations"}, http.StatusSeeOther)
		if len(users(eng)) != 1 || len(users(ops)) != 0 {
			t.Fatalf("mapping off: eng %v ops %v", users(eng), users(ops))
		}
		// The mapped changes are audited as the user's, marked as from SSO.
		var logs struct {
			AuditLogs []struct {
				Event struct {
					Type     string
					Metadata map[string]any
				}
			}
		}
		e.Must(t, 200, "GET", "/api/v1/organization/audit-logs?eventType=add-user-to-group&limit=50", e.Token, nil).Decode(t, &logs)
		fromSSO := 0
		for _, l := range logs.AuditLogs {
			if l.Event.Metadata["source"] == "sso" {
				fromSSO++
			}
		}
		if fromSSO != 2 {
			t.Fatalf("%d add-user-to-group events from SSO, want 2: %+v", fromSSO, logs.AuditLogs)
		}
	})
}
