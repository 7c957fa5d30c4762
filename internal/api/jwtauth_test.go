package api_test

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/lockbox-dev/lockbox/internal/app/apptest"
	"github.com/lockbox-dev/lockbox/internal/store"
	"github.com/lockbox-dev/lockbox/internal/testsvc/cloudtest"
)

// tokenSigner is a workload's token issuer (cloudtest.Signer).
type tokenSigner = cloudtest.Signer

var newTokenSigner = cloudtest.NewSigner

// workloadClaims are claims inside every bound of boundedJWTConfig.
func workloadClaims() jwt.MapClaims {
	now := time.Now()
	return jwt.MapClaims{"iss": "https://ci.example", "aud": []string{"lockbox"}, "sub": "repo:org/app:ref:main",
		"repo": "org/app", "ref": "refs/heads/main", "iat": now.Unix(), "exp": now.Add(5 * time.Minute).Unix(),
		"ctx": map[string]any{"env": "prod"}}
}

func boundedJWTConfig() map[string]any {
	return map[string]any{"boundIssuer": "https://ci.example", "boundAudiences": "lockbox,  other ",
		"boundClaims":  map[string]string{"repo": "org/*", "ref": "refs/heads/main, refs/heads/release/*", "ctx.env": "prod"},
		"boundSubject": "repo:org/*:ref:main"}
}

func methodLogin(t testing.TB, e *apptest.Env, method, identityID, tok string) (apptest.Response, loginOut) {
	t.Helper()
	r := e.Do(t, "POST", "/api/v1/auth/"+method+"/login", "", map[string]string{"identityId": identityID, "jwt": tok})
	var out loginOut
	if r.Status == 200 {
		r.Decode(t, &out)
	}
	return r, out
}

// assertRefused checks a 401 whose message names check and does not echo tok.
func assertRefused(t *testing.T, r apptest.Response, check, tok string) {
	t.Helper()
	body := assertError(t, r, 401, "UnauthorizedError")
	if msg := fmt.Sprint(body["message"]); !strings.Contains(msg, check) {
		t.Fatalf("refusal %q does not name %q", msg, check)
	}
	if tok != "" && strings.Contains(string(r.Body), tok) {
		t.Fatal("the refusal echoes the token")
	}
}

func withClaims(f func(c jwt.MapClaims)) jwt.MapClaims {
	c := workloadClaims()
	f(c)
	return c
}

func TestJWTAuthStaticKeysLoginAndBounds(t *testing.T) {
	forEachEngine(t, func(t *testing.T, d store.Dialect) {
		e := apptest.Bootstrapped(t, d)
		id, _ := e.NewIdentity(t, "ci-workload", "member")
		rs, es, ed := newTokenSigner(t, "rsa", ""), newTokenSigner(t, "ec", ""), newTokenSigner(t, "ed", "")
		cfg := boundedJWTConfig()
		cfg["configurationType"] = "static"
		cfg["publicKeys"] = []string{rs.PublicPEM(t), es.PublicPEM(t), ed.PublicPEM(t)}
		cfg["accessTokenTTL"], cfg["accessTokenMaxTTL"] = 600, 1200
		var att struct {
			IdentityJwtAuth map[string]any `json:"identityJwtAuth"`
		}
		e.Must(t, 200, "POST", "/api/v1/auth/jwt-auth/identities/"+id, e.Token, cfg).Decode(t, &att)
		got := att.IdentityJwtAuth
		if got["configurationType"] != "static" || got["boundAudiences"] != "lockbox, other" || got["identityId"] != id ||
			got["accessTokenTTL"] != 600.0 || len(got["publicKeys"].([]any)) != 3 || got["id"] == "" {
			t.Fatalf("attach answer %v", got)
		}
		var ident struct {
			Identity struct {
				Identity struct{ AuthMethods []string }
			}
		}
		e.Must(t, 200, "GET", "/api/v1/identities/"+id, e.Token, nil).Decode(t, &ident)
		if !strings.Contains(strings.Join(ident.Identity.Identity.AuthMethods, ","), "jwt-auth") {
			t.Fatalf("authMethods %v", ident.Identity.Identity.AuthMethods)
		}

		for _, s := range []tokenSigner{rs, es, ed} {
			r, out := methodLogin(t, e, "jwt-auth", id, s.Sign(t, workloadClaims()))
			if r.Status != 200 || out.ExpiresIn != 600 || out.AccessTokenMaxTTL != 1200 || out.TokenType != "Bearer" {
				t.Fatalf("%s login: %d %s", s.Method.Alg(), r.Status, r.Body)
			}
			if c := jwtClaims(t, out.AccessToken); c["authMethod"] != "jwt-auth" || c["identityId"] != id {
				t.Fatalf("token claims %v", c)
			}
			e.Must(t, 200, "GET", "/api/v1/identities/details", out.AccessToken, nil)
		}
		// A release branch matches the second policy value's glob.
		if r, _ := methodLogin(t, e, "jwt-auth", id, rs.Sign(t, withClaims(func(c jwt.MapClaims) { c["ref"] = "refs/heads/release/v2" }))); r.Status != 200 {
			t.Fatalf("glob login: %d %s", r.Status, r.Body)
		}

		other := newTokenSigner(t, "rsa", "")
		hsKey := []byte(rs.PublicPEM(t))
		hs, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, workloadClaims()).SignedString(hsKey)
		refused := []struct {
			name, check, tok string
		}{
			{"issuer", "issuer", rs.Sign(t, withClaims(func(c jwt.MapClaims) { c["iss"] = "https://evil.example" }))},
			{"audience", "audience", rs.Sign(t, withClaims(func(c jwt.MapClaims) { c["aud"] = "someone-else" }))},
			{"no audience", "audience", rs.Sign(t, withClaims(func(c jwt.MapClaims) { delete(c, "aud") }))},
			{"claim", "claim mismatch for field repo", rs.Sign(t, withClaims(func(c jwt.MapClaims) { c["repo"] = "evil/app" }))},
			{"claim glob stops at slash", "claim mismatch for field repo", rs.Sign(t, withClaims(func(c jwt.MapClaims) { c["repo"] = "org/app/fork" }))},
			{"nested claim", "claim mismatch for field ctx.env", rs.Sign(t, withClaims(func(c jwt.MapClaims) { c["ctx"] = map[string]any{"env": "dev"} }))},
			{"missing claim", "has no ref field", rs.Sign(t, withClaims(func(c jwt.MapClaims) { delete(c, "ref") }))},
			{"subject", "subject", rs.Sign(t, withClaims(func(c jwt.MapClaims) { c["sub"] = "repo:evil/app:ref:main" }))},
			{"expired", "expired", rs.Sign(t, withClaims(func(c jwt.MapClaims) { c["exp"] = time.Now().Add(-10 * time.Minute).Unix() }))},
			{"not yet valid", "not valid yet", rs.Sign(t, withClaims(func(c jwt.MapClaims) { c["nbf"] = time.Now().Add(10 * time.Minute).Unix() }))},
			{"wrong signature", "signature", other.Sign(t, workloadClaims())},
			{"HS256 with the public key as secret", "signature", hs},
			{"none", "signature", noneToken(t)},
			{"malformed", "not a valid JWT", "not-a-jwt"},
		}
		for _, c := range refused {
			r, _ := methodLogin(t, e, "jwt-auth", id, c.tok)
			if r.Status != 401 {
				t.Fatalf("%s: %d %s", c.name, r.Status, r.Body)
			}
			assertRefused(t, r, c.check, c.tok)
		}
		// Every refusal is audited with its reason, in the identity's organization.
		var evs struct {
			AuditLogs []struct {
				Event struct {
					Metadata map[string]any
				}
			}
		}
		e.Must(t, 200, "GET", "/api/v1/organization/audit-logs?eventType=login-identity-jwt-auth-failed&limit=100", e.Token, nil).Decode(t, &evs)
		if len(evs.AuditLogs) != len(refused) {
			t.Fatalf("%d failed-login events, want %d", len(evs.AuditLogs), len(refused))
		}
		seen := map[string]bool{}
		for _, l := range evs.AuditLogs {
			seen[fmt.Sprint(l.Event.Metadata["check"])] = true
			if !strings.HasPrefix(fmt.Sprint(l.Event.Metadata["reason"]), "Access denied") {
				t.Fatalf("reason %v", l.Event.Metadata)
			}
		}
		for _, want := range []string{"issuer", "audience", "claim", "subject", "expiry", "signature", "token"} {
			if !seen[want] {
				t.Fatalf("no failed login audited for check %s: %v", want, seen)
			}
		}
		e.Must(t, 200, "GET", "/api/v1/organization/audit-logs?eventType=login-identity-jwt-auth", e.Token, nil).Decode(t, &evs)
		if len(evs.AuditLogs) != 4 {
			t.Fatalf("%d login events, want 4", len(evs.AuditLogs))
		}
	})
}

func noneToken(t testing.TB) string {
	tok, err := jwt.NewWithClaims(jwt.SigningMethodNone, workloadClaims()).SignedString(jwt.UnsafeAllowNoneSignatureType)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func TestJWTAuthUseLimitTrustedIPsAndRevoke(t *testing.T) {
	forEachEngine(t, func(t *testing.T, d store.Dialect) {
		e := apptest.Bootstrapped(t, d)
		id, _ := e.NewIdentity(t, "limited", "member")
		s := newTokenSigner(t, "ec", "")
		base := "/api/v1/auth/jwt-auth/identities/" + id
		e.Must(t, 200, "POST", base, e.Token, map[string]any{"configurationType": "static", "publicKeys": []string{s.PublicPEM(t)},
			"accessTokenNumUsesLimit": 2, "accessTokenTrustedIps": []map[string]string{{"ipAddress": "10.0.0.0/8"}}})
		tok := s.Sign(t, workloadClaims())
		r, _ := methodLogin(t, e, "jwt-auth", id, tok)
		assertError(t, r, 403, "ForbiddenError")

		e.Must(t, 200, "PATCH", base, e.Token, map[string]any{"accessTokenTrustedIps": []map[string]string{{"ipAddress": "127.0.0.1"}}})
		r, out := methodLogin(t, e, "jwt-auth", id, tok)
		if r.Status != 200 {
			t.Fatalf("login from a trusted IP: %d %s", r.Status, r.Body)
		}
		// The use limit is the token's, exact as for Universal Auth.
		e.Must(t, 200, "GET", "/api/v1/identities/details", out.AccessToken, nil)
		e.Must(t, 200, "GET", "/api/v1/identities/details", out.AccessToken, nil)
		assertError(t, e.Do(t, "GET", "/api/v1/identities/details", out.AccessToken, nil), 401, "UnauthorizedError")

		var failed struct {
			AuditLogs []struct {
				Event struct{ Metadata map[string]any }
			}
		}
		e.Must(t, 200, "GET", "/api/v1/organization/audit-logs?eventType=login-identity-jwt-auth-failed", e.Token, nil).Decode(t, &failed)
		if len(failed.AuditLogs) != 1 || failed.AuditLogs[0].Event.Metadata["check"] != "trusted-ip" {
			t.Fatalf("trusted-ip refusal audit %+v", failed)
		}

		// PATCH keeps what it does not name; removing the method revokes its tokens.
		var got struct{ IdentityJwtAuth map[string]any }
		e.Must(t, 200, "GET", base, e.Token, nil).Decode(t, &got)
		if got.IdentityJwtAuth["accessTokenNumUsesLimit"] != 2.0 || got.IdentityJwtAuth["configurationType"] != "static" {
			t.Fatalf("after patch %v", got)
		}
		_, live := methodLogin(t, e, "jwt-auth", id, tok)
		e.Must(t, 200, "DELETE", base, e.Token, nil)
		assertError(t, e.Do(t, "GET", "/api/v1/identities/details", live.AccessToken, nil), 401, "UnauthorizedError")
		r, _ = methodLogin(t, e, "jwt-auth", id, tok)
		assertError(t, r, 404, "NotFound")
		assertError(t, e.Do(t, "GET", base, e.Token, nil), 400, "BadRequest")
	})
}

func TestJWTAuthConfigurationIsValidated(t *testing.T) {
	e := apptest.Bootstrapped(t, store.SQLite)
	id, memberTok := e.NewIdentity(t, "cfg", "member")
	base := "/api/v1/auth/jwt-auth/identities/" + id
	s := newTokenSigner(t, "rsa", "")
	weak, _ := rsa.GenerateKey(rand.Reader, 1024)
	weakDER, _ := x509.MarshalPKIXPublicKey(&weak.PublicKey)
	for name, body := range map[string]map[string]any{
		"no type":          {"publicKeys": []string{s.PublicPEM(t)}},
		"unknown type":     {"configurationType": "magic"},
		"static, no keys":  {"configurationType": "static"},
		"static, bad PEM":  {"configurationType": "static", "publicKeys": []string{"not a key"}},
		"static, weak RSA": {"configurationType": "static", "publicKeys": []string{string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: weakDER}))}},
		"jwks, no URL":     {"configurationType": "jwks"},
		"jwks, not http":   {"configurationType": "jwks", "jwksUrl": "file:///etc/passwd"},
		"jwks, bad CA":     {"configurationType": "jwks", "jwksUrl": "https://127.0.0.1:1/keys", "jwksCaCert": "nope"},
		"jwks, no bound":   {"configurationType": "jwks", "jwksUrl": "https://127.0.0.1:1/keys", "boundIssuer": "https://ci.example"},
		"ttl over max":     {"configurationType": "static", "publicKeys": []string{s.PublicPEM(t)}, "accessTokenTTL": 100, "accessTokenMaxTTL": 10},
	} {
		if r := e.Do(t, "POST", base, e.Token, body); r.Status != 422 {
			t.Fatalf("%s: %d %s", name, r.Status, r.Body)
		}
	}
	// Cloud metadata addresses are denied by the target policy, as for dynamic secrets.
	assertError(t, e.Do(t, "POST", base, e.Token, map[string]any{"configurationType": "jwks", "jwksUrl": "http://169.254.169.254/keys"}), 400, "BadRequest")
	// A member may not configure login methods.
	assertError(t, e.Do(t, "POST", base, memberTok, map[string]any{"configurationType": "static", "publicKeys": []string{s.PublicPEM(t)}}), 403, "PermissionDenied")
	e.Must(t, 200, "POST", base, e.Token, map[string]any{"configurationType": "static", "publicKeys": []string{s.PublicPEM(t)}})
	assertError(t, e.Do(t, "POST", base, e.Token, map[string]any{"configurationType": "static", "publicKeys": []string{s.PublicPEM(t)}}), 400, "BadRequest")
	r, _ := methodLogin(t, e, "jwt-auth", "not-a-uuid", s.Sign(t, workloadClaims()))
	assertError(t, r, 404, "NotFound")
	assertError(t, e.Do(t, "POST", "/api/v1/auth/jwt-auth/login", "", map[string]string{"identityId": id}), 422, "ValidationFailure")
}

// jwksServer serves signers' keys over TLS on loopback and counts fetches.
func jwksServer(t *testing.T, signers ...tokenSigner) (srv *httptest.Server, caPEM string, fetches *atomic.Int64) {
	t.Helper()
	fetches = new(atomic.Int64)
	srv = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fetches.Add(1)
		var keys []map[string]any
		for _, s := range signers {
			keys = append(keys, s.JWK())
		}
		json.NewEncoder(w).Encode(map[string]any{"keys": keys})
	}))
	t.Cleanup(srv.Close)
	caPEM = string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}))
	return srv, caPEM, fetches
}

func TestJWTAuthJWKSCachesKeys(t *testing.T) {
	forEachEngine(t, func(t *testing.T, d store.Dialect) {
		e := apptest.Bootstrapped(t, d)
		id, _ := e.NewIdentity(t, "jwks", "member")
		rs, ed := newTokenSigner(t, "rsa", "k-rsa"), newTokenSigner(t, "ed", "k-ed")
		srv, ca, fetches := jwksServer(t, rs, ed)
		cfg := boundedJWTConfig()
		cfg["configurationType"], cfg["jwksUrl"] = "jwks", srv.URL+"/keys"
		// Without the CA the issuer's certificate is not trusted.
		e.Must(t, 200, "POST", "/api/v1/auth/jwt-auth/identities/"+id, e.Token, cfg)
		r, _ := methodLogin(t, e, "jwt-auth", id, rs.Sign(t, workloadClaims()))
		assertRefused(t, r, "signing keys could not be fetched", "")
		cfg["jwksCaCert"] = ca
		e.Must(t, 200, "PATCH", "/api/v1/auth/jwt-auth/identities/"+id, e.Token, cfg)
		fetches.Store(0)
		for i := range 5 {
			s := []tokenSigner{rs, ed}[i%2]
			if r, _ := methodLogin(t, e, "jwt-auth", id, s.Sign(t, workloadClaims())); r.Status != 200 {
				t.Fatalf("login %d: %d %s", i, r.Status, r.Body)
			}
		}
		if n := fetches.Load(); n != 1 {
			t.Fatalf("%d JWKS fetches for 5 logins, want 1", n)
		}
		// Unknown kids right after a fetch are refused without fetching again
		// (the refresh on an unknown kid is rate-limited; jwtcheck's tests
		// show the refresh itself).
		stranger := newTokenSigner(t, "rsa", "k-unknown")
		for range 3 {
			r, _ := methodLogin(t, e, "jwt-auth", id, stranger.Sign(t, workloadClaims()))
			assertRefused(t, r, "signing key", "")
		}
		if n := fetches.Load(); n != 1 {
			t.Fatalf("%d JWKS fetches after unknown kids, want 1 (rate-limited)", n)
		}
		// A token whose kid is known but signed by another key fails on the signature.
		forged := newTokenSigner(t, "rsa", "k-rsa")
		r, _ = methodLogin(t, e, "jwt-auth", id, forged.Sign(t, workloadClaims()))
		assertRefused(t, r, "signature", "")
	})
}

// A login asking for another organization is refused after the token is
// verified, as Universal Auth refuses it (lockbox has no sub-organizations).
func TestJWTAuthOrganizationSlug(t *testing.T) {
	e := apptest.Bootstrapped(t, store.SQLite)
	id, _ := e.NewIdentity(t, "slugged", "member")
	s := newTokenSigner(t, "ed", "")
	e.Must(t, 200, "POST", "/api/v1/auth/jwt-auth/identities/"+id, e.Token, map[string]any{"configurationType": "static",
		"publicKeys": []string{s.PublicPEM(t)}})
	var det struct {
		IdentityDetails struct{ Organization struct{ Slug string } }
	}
	e.Must(t, 200, "GET", "/api/v1/identities/details", e.Token, nil).Decode(t, &det)
	tok := s.Sign(t, workloadClaims())
	r := e.Do(t, "POST", "/api/v1/auth/jwt-auth/login", "", map[string]string{"identityId": id, "jwt": tok, "organizationSlug": "someone-else"})
	assertError(t, r, 400, "BadRequest")
	for _, slug := range []string{"", det.IdentityDetails.Organization.Slug} {
		r := e.Do(t, "POST", "/api/v1/auth/jwt-auth/login", "", map[string]string{"identityId": id, "jwt": tok, "organizationSlug": slug})
		if r.Status != 200 {
			t.Fatalf("slug %q: %d %s", slug, r.Status, r.Body)
		}
	}
}

// A JWT-issued token's use limit is exact under concurrency, as every token's is.
func TestJWTAuthTokenUseLimitIsExactUnderConcurrency(t *testing.T) {
	forEachEngine(t, func(t *testing.T, d store.Dialect) {
		e := apptest.Bootstrapped(t, d)
		id, _ := e.NewIdentity(t, "jwt-concurrent", "member")
		s := newTokenSigner(t, "ed", "")
		e.Must(t, 200, "POST", "/api/v1/auth/jwt-auth/identities/"+id, e.Token, map[string]any{"configurationType": "static",
			"publicKeys": []string{s.PublicPEM(t)}, "accessTokenNumUsesLimit": 5})
		_, out := methodLogin(t, e, "jwt-auth", id, s.Sign(t, workloadClaims()))
		const n = 40
		statuses := make([]int, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() { statuses[i] = e.Do(t, "GET", "/api/v1/identities/details", out.AccessToken, nil).Status })
		}
		wg.Wait()
		count := map[int]int{}
		for _, st := range statuses {
			count[st]++
		}
		if count[200] != 5 || count[401] != n-5 {
			t.Fatalf("statuses %v, want exactly 5 x 200", count)
		}
	})
}

// TestLoginOutlivesNoRemovalOfItsMethod: a login whose credential is being
// verified (here a JWKS fetch held open) when its method is removed, or its
// bounds narrowed, gets no token: the change commits while it waits, and
// the login is answered 401 once the fetch returns. A change of the
// method's token settings alone meanwhile does not fail it.
func TestLoginOutlivesNoRemovalOfItsMethod(t *testing.T) {
	forEachEngine(t, func(t *testing.T, d store.Dialect) {
		e := apptest.Bootstrapped(t, d)
		rs := newTokenSigner(t, "rsa", "k1")
		hit, release := make(chan struct{}, 1), make(chan chan struct{}, 1)
		srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			select {
			case hit <- struct{}{}:
				<-<-release // held until the test has changed the method
			default:
			}
			json.NewEncoder(w).Encode(map[string]any{"keys": []any{rs.JWK()}})
		}))
		t.Cleanup(srv.Close)
		ca := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}))
		cfg := boundedJWTConfig()
		cfg["configurationType"], cfg["jwksUrl"], cfg["jwksCaCert"] = "jwks", srv.URL+"/keys", ca

		for name, c := range map[string]struct {
			change func(id string)
			want   int
		}{
			"removed": {func(id string) { e.Must(t, 200, "DELETE", "/api/v1/auth/jwt-auth/identities/"+id, e.Token, nil) }, 401},
			"TTL changed": {func(id string) {
				e.Must(t, 200, "PATCH", "/api/v1/auth/jwt-auth/identities/"+id, e.Token, map[string]any{"accessTokenTTL": 600})
			}, 200},
			// A narrowing (then, say, a revocation of the identity's
			// tokens) must not be outlived by a login checked before it.
			"subject narrowed": {func(id string) {
				e.Must(t, 200, "PATCH", "/api/v1/auth/jwt-auth/identities/"+id, e.Token, map[string]any{"boundSubject": "repo:org/app:ref:main"})
			}, 401},
		} {
			id, _ := e.NewIdentity(t, "racer-"+strings.ReplaceAll(name, " ", "-"), "member")
			e.Must(t, 200, "POST", "/api/v1/auth/jwt-auth/identities/"+id, e.Token, cfg)
			type res struct {
				r   apptest.Response
				out loginOut
			}
			done := make(chan res, 1)
			go func() { r, out := methodLogin(t, e, "jwt-auth", id, rs.Sign(t, workloadClaims())); done <- res{r, out} }()
			<-hit
			c.change(id)
			ch := make(chan struct{})
			release <- ch
			close(ch)
			got := <-done
			if c.want == 200 {
				if got.r.Status != 200 {
					t.Fatalf("%s: %d %s", name, got.r.Status, got.r.Body)
				}
				continue
			}
			if got.r.Status == 200 {
				t.Fatalf("%s: a login verified against a removed method got a token (authenticates: %d)", name,
					e.Do(t, "GET", "/api/v1/identities/details", got.out.AccessToken, nil).Status)
			}
			assertError(t, got.r, 401, "UnauthorizedError")
		}
	})
}
