package api_test

import (
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/lockbox-dev/lockbox/internal/app/apptest"
	"github.com/lockbox-dev/lockbox/internal/store"
)

// certPEM is a self-signed certificate of s's key, as Google publishes its
// signing keys ({kid: PEM certificate}).
func (s tokenSigner) certPEM(t testing.TB) string {
	t.Helper()
	tpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: s.kid},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tpl, tpl, s.key.Public(), s.key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}

// googleKeys stands in for www.googleapis.com on loopback, over TLS with its
// own certificate: Google's OAuth2 certificates and service accounts'
// certificates, counting the fetches.
type googleKeys struct {
	srv      *httptest.Server
	caPEM    string
	google   tokenSigner
	accounts map[string]tokenSigner
	certs    atomic.Int64
	account  atomic.Int64
}

const gcpAccount = "api@proj-1.iam.gserviceaccount.com"

func newGoogleKeys(t *testing.T) *googleKeys {
	t.Helper()
	g := &googleKeys{google: newTokenSigner(t, "rsa", "g1"),
		accounts: map[string]tokenSigner{gcpAccount: newTokenSigner(t, "rsa", "sa1"),
			"batch@proj-1.iam.gserviceaccount.com": newTokenSigner(t, "rsa", "sa2")}}
	gcert := g.google.certPEM(t)
	acerts := map[string]string{}
	for email, s := range g.accounts {
		acerts[email] = s.certPEM(t)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /oauth2/v1/certs", func(w http.ResponseWriter, r *http.Request) {
		g.certs.Add(1)
		json.NewEncoder(w).Encode(map[string]string{g.google.kid: gcert, "other": "not a certificate"})
	})
	mux.HandleFunc("GET /service_accounts/v1/metadata/x509/{email}", func(w http.ResponseWriter, r *http.Request) {
		g.account.Add(1)
		email := r.PathValue("email")
		c, ok := acerts[email]
		if !ok {
			http.NotFound(w, r)
			return
		}
		json.NewEncoder(w).Encode(map[string]string{g.accounts[email].kid: c})
	})
	g.srv = httptest.NewTLSServer(mux)
	t.Cleanup(g.srv.Close)
	g.caPEM = string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: g.srv.Certificate().Raw}))
	return g
}

// gceClaims are the claims of a "full" format instance ID token for audience.
func gceClaims(audience string) jwt.MapClaims {
	now := time.Now()
	return jwt.MapClaims{"iss": "https://accounts.google.com", "aud": audience, "azp": "1234", "sub": "1234",
		"email": gcpAccount, "email_verified": true, "iat": now.Unix(), "exp": now.Add(time.Hour).Unix(),
		"google": map[string]any{"compute_engine": map[string]any{"project_id": "proj-1", "project_number": 42,
			"zone": "us-central1-a", "instance_id": "99", "instance_name": "vm-1"}}}
}

// iamClaims are what the SDK's GcpIamAuthLogin has signJwt sign: sub and
// aud, with the exp that signJwt adds.
func iamClaims(email, audience string) jwt.MapClaims {
	return jwt.MapClaims{"sub": email, "aud": audience, "exp": time.Now().Add(time.Hour).Unix()}
}

func TestGCPAuthGCELoginAndBounds(t *testing.T) {
	forEachEngine(t, func(t *testing.T, d store.Dialect) {
		e := apptest.Bootstrapped(t, d)
		id, _ := e.NewIdentity(t, "gce-vm", "member")
		g := newGoogleKeys(t)
		var att struct{ IdentityGcpAuth map[string]any }
		e.Must(t, 200, "POST", "/api/v1/auth/gcp-auth/identities/"+id, e.Token, map[string]any{"type": "gce",
			"allowedServiceAccounts": gcpAccount + " ,other@proj-1.iam.gserviceaccount.com", "allowedProjects": "proj-1",
			"allowedZones": "us-central1-a, europe-west1-b", "certsUrl": g.srv.URL + "/oauth2/v1/certs", "caCert": g.caPEM,
			"accessTokenTTL": 120}).Decode(t, &att)
		if got := att.IdentityGcpAuth; got["type"] != "gce" || got["allowedServiceAccounts"] != gcpAccount+", other@proj-1.iam.gserviceaccount.com" ||
			got["allowedZones"] != "us-central1-a, europe-west1-b" || got["accessTokenTTL"] != 120.0 {
			t.Fatalf("attach answer %v", got)
		}
		for i := range 3 {
			// The body the Go SDK's GcpIdTokenAuthLogin sends.
			r := e.Do(t, "POST", "/api/v1/auth/gcp-auth/login", "", map[string]string{"identityId": id,
				"jwt": g.google.sign(t, gceClaims(id)), "organizationSlug": ""})
			if r.Status != 200 {
				t.Fatalf("login %d: %d %s", i, r.Status, r.Body)
			}
			var out loginOut
			r.Decode(t, &out)
			if out.ExpiresIn != 120 || out.TokenType != "Bearer" {
				t.Fatalf("login answer %+v", out)
			}
			if i == 0 {
				e.Must(t, 200, "GET", "/api/v1/identities/details", out.AccessToken, nil)
			}
		}
		if g.certs.Load() != 1 {
			t.Fatalf("Google's certificates fetched %d times for 3 logins, want 1", g.certs.Load())
		}

		claims := func(f func(c jwt.MapClaims)) jwt.MapClaims {
			c := gceClaims(id)
			f(c)
			return c
		}
		ce := func(c jwt.MapClaims) map[string]any {
			return c["google"].(map[string]any)["compute_engine"].(map[string]any)
		}
		forged := newTokenSigner(t, "rsa", "g1") // Google's kid, another key
		refused := []struct{ name, check, tok string }{
			{"issuer", "issuer", g.google.sign(t, claims(func(c jwt.MapClaims) { c["iss"] = "accounts.example.com" }))},
			{"audience", "audience", g.google.sign(t, claims(func(c jwt.MapClaims) { c["aud"] = "00000000-0000-0000-0000-000000000000" }))},
			{"signature", "signature", forged.sign(t, gceClaims(id))},
			{"expiry", "expired", g.google.sign(t, claims(func(c jwt.MapClaims) { c["exp"] = time.Now().Add(-time.Hour).Unix() }))},
			{"service account", "service account", g.google.sign(t, claims(func(c jwt.MapClaims) {
				c["email"] = "intruder@proj-1.iam.gserviceaccount.com"
			}))},
			{"project", "project", g.google.sign(t, claims(func(c jwt.MapClaims) { ce(c)["project_id"] = "proj-2" }))},
			{"zone", "zone", g.google.sign(t, claims(func(c jwt.MapClaims) { ce(c)["zone"] = "asia-east1-a" }))},
			{"standard format (no project)", "project", g.google.sign(t, claims(func(c jwt.MapClaims) { delete(c, "google") }))},
		}
		for _, c := range refused {
			r, _ := methodLogin(t, e, "gcp-auth", id, c.tok)
			if r.Status != 401 {
				t.Fatalf("%s: %d %s", c.name, r.Status, r.Body)
			}
			assertRefused(t, r, c.check, c.tok)
		}
		var failed struct {
			AuditLogs []struct {
				Event struct{ Metadata map[string]any }
			}
		}
		e.Must(t, 200, "GET", "/api/v1/organization/audit-logs?eventType=login-identity-gcp-auth-failed&limit=100", e.Token, nil).Decode(t, &failed)
		if len(failed.AuditLogs) != len(refused) {
			t.Fatalf("%d failed-login events, want %d", len(failed.AuditLogs), len(refused))
		}
		checks := map[string]bool{}
		for _, a := range failed.AuditLogs {
			checks[a.Event.Metadata["check"].(string)] = true
		}
		for _, c := range []string{"issuer", "audience", "signature", "expiry", "service-account", "project", "zone"} {
			if !checks[c] {
				t.Fatalf("no failed login audited with check %s: %v", c, checks)
			}
		}
	})
}

func TestGCPAuthIAMLoginAndBounds(t *testing.T) {
	forEachEngine(t, func(t *testing.T, d store.Dialect) {
		e := apptest.Bootstrapped(t, d)
		id, _ := e.NewIdentity(t, "gcp-sa", "member")
		g := newGoogleKeys(t)
		base := "/api/v1/auth/gcp-auth/identities/" + id
		e.Must(t, 200, "POST", base, e.Token, map[string]any{"type": "iam", "allowedServiceAccounts": gcpAccount,
			"serviceAccountCertsUrl": g.srv.URL + "/service_accounts/v1/metadata/x509/", "caCert": g.caPEM})
		sa := g.accounts[gcpAccount]
		for i := range 2 {
			r, out := methodLogin(t, e, "gcp-auth", id, sa.sign(t, iamClaims(gcpAccount, id)))
			if r.Status != 200 {
				t.Fatalf("login %d: %d %s", i, r.Status, r.Body)
			}
			if i == 0 {
				e.Must(t, 200, "GET", "/api/v1/identities/details", out.AccessToken, nil)
			}
		}
		if g.account.Load() != 1 {
			t.Fatalf("the account's certificates fetched %d times for 2 logins, want 1", g.account.Load())
		}
		other := g.accounts["batch@proj-1.iam.gserviceaccount.com"]
		forged := newTokenSigner(t, "rsa", "sa1")
		noExp := iamClaims(gcpAccount, id)
		delete(noExp, "exp")
		refused := []struct{ name, check, tok string }{
			{"audience", "audience", sa.sign(t, iamClaims(gcpAccount, "00000000-0000-0000-0000-000000000000"))},
			{"signature", "signature", forged.sign(t, iamClaims(gcpAccount, id))},
			{"expiry", "expired", sa.sign(t, jwt.MapClaims{"sub": gcpAccount, "aud": id, "exp": time.Now().Add(-time.Hour).Unix()})},
			{"no expiry", "expiry", sa.sign(t, noExp)},
			{"service account", "service account", other.sign(t, iamClaims("batch@proj-1.iam.gserviceaccount.com", id))},
			{"not an account", "service account", sa.sign(t, iamClaims("someone@example.com", id))},
		}
		for _, c := range refused {
			r, _ := methodLogin(t, e, "gcp-auth", id, c.tok)
			if r.Status != 401 {
				t.Fatalf("%s: %d %s", c.name, r.Status, r.Body)
			}
			assertRefused(t, r, c.check, c.tok)
		}
		// Accounts outside the bound make the server fetch nothing.
		if g.account.Load() != 1 {
			t.Fatalf("refused accounts made %d fetches", g.account.Load()-1)
		}
		// The project bound holds an iam token by the project in its email.
		e.Must(t, 200, "PATCH", base, e.Token, map[string]any{"allowedServiceAccounts": "", "allowedProjects": "proj-2"})
		tok := sa.sign(t, iamClaims(gcpAccount, id))
		r, _ := methodLogin(t, e, "gcp-auth", id, tok)
		assertRefused(t, r, "project", tok)
		e.Must(t, 200, "PATCH", base, e.Token, map[string]any{"allowedProjects": "proj-1"})
		if r, _ := methodLogin(t, e, "gcp-auth", id, other.sign(t, iamClaims("batch@proj-1.iam.gserviceaccount.com", id))); r.Status != 200 {
			t.Fatalf("any account of proj-1: %d %s", r.Status, r.Body)
		}
	})
}

func TestGCPAuthUseLimitAndTrustedIPs(t *testing.T) {
	forEachEngine(t, func(t *testing.T, d store.Dialect) {
		e := apptest.Bootstrapped(t, d)
		id, _ := e.NewIdentity(t, "gce-limited", "member")
		g := newGoogleKeys(t)
		base := "/api/v1/auth/gcp-auth/identities/" + id
		e.Must(t, 200, "POST", base, e.Token, map[string]any{"type": "gce", "certsUrl": g.srv.URL + "/oauth2/v1/certs",
			"caCert": g.caPEM, "allowedProjects": "proj-1", "accessTokenNumUsesLimit": 1, "accessTokenTrustedIps": []map[string]string{{"ipAddress": "192.0.2.0/24"}}})
		tok := g.google.sign(t, gceClaims(id))
		r, _ := methodLogin(t, e, "gcp-auth", id, tok)
		assertError(t, r, 403, "ForbiddenError")
		if g.certs.Load() != 0 {
			t.Fatal("a caller from an untrusted address made the server fetch")
		}
		e.Must(t, 200, "PATCH", base, e.Token, map[string]any{"accessTokenTrustedIps": []map[string]string{{"ipAddress": "127.0.0.0/8"}}})
		r, out := methodLogin(t, e, "gcp-auth", id, tok)
		if r.Status != 200 {
			t.Fatalf("login: %d %s", r.Status, r.Body)
		}
		e.Must(t, 200, "GET", "/api/v1/identities/details", out.AccessToken, nil)
		assertError(t, e.Do(t, "GET", "/api/v1/identities/details", out.AccessToken, nil), 401, "UnauthorizedError")
	})
}

func TestGCPAuthConfigurationIsValidated(t *testing.T) {
	e := apptest.Bootstrapped(t, store.SQLite)
	id, _ := e.NewIdentity(t, "gcp-cfg", "member")
	base := "/api/v1/auth/gcp-auth/identities/" + id
	for name, body := range map[string]map[string]any{
		"no type":         {"allowedProjects": "p"},
		"unknown type":    {"type": "gke"},
		"zones with iam":  {"type": "iam", "allowedZones": "us-central1-a"},
		"not a URL":       {"type": "gce", "certsUrl": "ftp://x"},
		"bad CA":          {"type": "gce", "caCert": "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----"},
		"accounts a list": {"type": "gce", "allowedServiceAccounts": []string{"a"}},
		"no bound":        {"type": "gce"},
		"empty bounds":    {"type": "iam", "allowedServiceAccounts": " ", "allowedProjects": ""},
	} {
		if r := e.Do(t, "POST", base, e.Token, body); r.Status != 422 {
			t.Fatalf("%s: %d %s", name, r.Status, r.Body)
		}
	}
	assertError(t, e.Do(t, "POST", base, e.Token, map[string]any{"type": "iam",
		"serviceAccountCertsUrl": "http://169.254.169.254/x509/"}), 400, "BadRequest")
	// Without key URLs the configuration is Google's, with nothing fetched at attach.
	var att struct{ IdentityGcpAuth map[string]any }
	e.Must(t, 200, "POST", base, e.Token, map[string]any{"type": "iam", "allowedProjects": "proj-1"}).Decode(t, &att)
	if att.IdentityGcpAuth["certsUrl"] != "" || !strings.Contains(string(e.Do(t, "GET", base, e.Token, nil).Body), `"type":"iam"`) {
		t.Fatalf("attach answer %v", att.IdentityGcpAuth)
	}
	// An update may not remove the last bound.
	r := e.Do(t, "PATCH", base, e.Token, map[string]any{"allowedProjects": ""})
	assertError(t, r, 422, "ValidationFailure")
	if !strings.Contains(string(r.Body), "any Google Cloud workload") {
		t.Fatalf("clearing the bounds: %s", r.Body)
	}
}
