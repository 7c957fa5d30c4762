package api_test

import (
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/lockbox-dev/lockbox/internal/app/apptest"
	"github.com/lockbox-dev/lockbox/internal/store"
	"github.com/lockbox-dev/lockbox/internal/testsvc/cloudtest"
)

const gcpAccount = cloudtest.GCPAccount

var (
	newGoogleKeys = cloudtest.NewGoogleKeys
	gceClaims     = cloudtest.GCEClaims
	iamClaims     = cloudtest.IAMClaims
)

func TestGCPAuthGCELoginAndBounds(t *testing.T) {
	forEachEngine(t, func(t *testing.T, d store.Dialect) {
		e := apptest.Bootstrapped(t, d)
		id, _ := e.NewIdentity(t, "gce-vm", "member")
		g := newGoogleKeys(t)
		var att struct{ IdentityGcpAuth map[string]any }
		e.Must(t, 200, "POST", "/api/v1/auth/gcp-auth/identities/"+id, e.Token, map[string]any{"type": "gce",
			"allowedServiceAccounts": gcpAccount + " ,other@proj-1.iam.gserviceaccount.com", "allowedProjects": "proj-1",
			"allowedZones": "us-central1-a, europe-west1-b", "certsUrl": g.Srv.URL + "/oauth2/v1/certs", "caCert": g.CAPEM,
			"accessTokenTTL": 120}).Decode(t, &att)
		if got := att.IdentityGcpAuth; got["type"] != "gce" || got["allowedServiceAccounts"] != gcpAccount+", other@proj-1.iam.gserviceaccount.com" ||
			got["allowedZones"] != "us-central1-a, europe-west1-b" || got["accessTokenTTL"] != 120.0 {
			t.Fatalf("attach answer %v", got)
		}
		for i := range 3 {
			// The body the Go SDK's GcpIdTokenAuthLogin sends.
			r := e.Do(t, "POST", "/api/v1/auth/gcp-auth/login", "", map[string]string{"identityId": id,
				"jwt": g.Google.Sign(t, gceClaims(id)), "organizationSlug": ""})
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
		if g.Certs.Load() != 1 {
			t.Fatalf("Google's certificates fetched %d times for 3 logins, want 1", g.Certs.Load())
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
			{"issuer", "issuer", g.Google.Sign(t, claims(func(c jwt.MapClaims) { c["iss"] = "accounts.example.com" }))},
			{"audience", "audience", g.Google.Sign(t, claims(func(c jwt.MapClaims) { c["aud"] = "00000000-0000-0000-0000-000000000000" }))},
			{"signature", "signature", forged.Sign(t, gceClaims(id))},
			{"expiry", "expired", g.Google.Sign(t, claims(func(c jwt.MapClaims) { c["exp"] = time.Now().Add(-time.Hour).Unix() }))},
			{"service account", "service account", g.Google.Sign(t, claims(func(c jwt.MapClaims) {
				c["email"] = "intruder@proj-1.iam.gserviceaccount.com"
			}))},
			{"project", "project", g.Google.Sign(t, claims(func(c jwt.MapClaims) { ce(c)["project_id"] = "proj-2" }))},
			{"zone", "zone", g.Google.Sign(t, claims(func(c jwt.MapClaims) { ce(c)["zone"] = "asia-east1-a" }))},
			{"standard format (no project)", "project", g.Google.Sign(t, claims(func(c jwt.MapClaims) { delete(c, "google") }))},
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
			"serviceAccountCertsUrl": g.Srv.URL + "/service_accounts/v1/metadata/x509/", "caCert": g.CAPEM})
		sa := g.Accounts[gcpAccount]
		for i := range 2 {
			r, out := methodLogin(t, e, "gcp-auth", id, sa.Sign(t, iamClaims(gcpAccount, id)))
			if r.Status != 200 {
				t.Fatalf("login %d: %d %s", i, r.Status, r.Body)
			}
			if i == 0 {
				e.Must(t, 200, "GET", "/api/v1/identities/details", out.AccessToken, nil)
			}
		}
		if g.Account.Load() != 1 {
			t.Fatalf("the account's certificates fetched %d times for 2 logins, want 1", g.Account.Load())
		}
		other := g.Accounts["batch@proj-1.iam.gserviceaccount.com"]
		forged := newTokenSigner(t, "rsa", "sa1")
		noExp := iamClaims(gcpAccount, id)
		delete(noExp, "exp")
		refused := []struct{ name, check, tok string }{
			{"audience", "audience", sa.Sign(t, iamClaims(gcpAccount, "00000000-0000-0000-0000-000000000000"))},
			{"signature", "signature", forged.Sign(t, iamClaims(gcpAccount, id))},
			{"expiry", "expired", sa.Sign(t, jwt.MapClaims{"sub": gcpAccount, "aud": id, "exp": time.Now().Add(-time.Hour).Unix()})},
			{"no expiry", "expiry", sa.Sign(t, noExp)},
			{"service account", "service account", other.Sign(t, iamClaims("batch@proj-1.iam.gserviceaccount.com", id))},
			{"not an account", "service account", sa.Sign(t, iamClaims("someone@example.com", id))},
		}
		for _, c := range refused {
			r, _ := methodLogin(t, e, "gcp-auth", id, c.tok)
			if r.Status != 401 {
				t.Fatalf("%s: %d %s", c.name, r.Status, r.Body)
			}
			assertRefused(t, r, c.check, c.tok)
		}
		// Accounts outside the bound make the server fetch nothing.
		if g.Account.Load() != 1 {
			t.Fatalf("refused accounts made %d fetches", g.Account.Load()-1)
		}
		// The project bound holds an iam token by the project in its email.
		e.Must(t, 200, "PATCH", base, e.Token, map[string]any{"allowedServiceAccounts": "", "allowedProjects": "proj-2"})
		tok := sa.Sign(t, iamClaims(gcpAccount, id))
		r, _ := methodLogin(t, e, "gcp-auth", id, tok)
		assertRefused(t, r, "project", tok)
		e.Must(t, 200, "PATCH", base, e.Token, map[string]any{"allowedProjects": "proj-1"})
		if r, _ := methodLogin(t, e, "gcp-auth", id, other.Sign(t, iamClaims("batch@proj-1.iam.gserviceaccount.com", id))); r.Status != 200 {
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
		e.Must(t, 200, "POST", base, e.Token, map[string]any{"type": "gce", "certsUrl": g.Srv.URL + "/oauth2/v1/certs",
			"caCert": g.CAPEM, "allowedProjects": "proj-1", "accessTokenNumUsesLimit": 1, "accessTokenTrustedIps": []map[string]string{{"ipAddress": "192.0.2.0/24"}}})
		tok := g.Google.Sign(t, gceClaims(id))
		r, _ := methodLogin(t, e, "gcp-auth", id, tok)
		assertError(t, r, 403, "ForbiddenError")
		if g.Certs.Load() != 0 {
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
