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

const (
	azureTenant    = cloudtest.AzureTenant
	azurePrincipal = cloudtest.AzurePrincipal
	azureResource  = cloudtest.AzureResource
)

var (
	newEntraIssuer = cloudtest.NewEntra
	azureClaims    = cloudtest.AzureClaims
)

func TestAzureAuthLoginAndBounds(t *testing.T) {
	forEachEngine(t, func(t *testing.T, d store.Dialect) {
		e := apptest.Bootstrapped(t, d)
		id, _ := e.NewIdentity(t, "azure-vm", "member")
		a := newEntraIssuer(t)
		cfg := a.Config()
		cfg["accessTokenTTL"] = 90
		var att struct{ IdentityAzureAuth map[string]any }
		e.Must(t, 200, "POST", "/api/v1/auth/azure-auth/identities/"+id, e.Token, cfg).Decode(t, &att)
		if got := att.IdentityAzureAuth; got["tenantId"] != azureTenant || got["resource"] != azureResource ||
			got["authorityHost"] != a.Srv.URL || got["accessTokenTTL"] != 90.0 {
			t.Fatalf("attach answer %v", got)
		}
		for i := range 3 {
			// The body the Go SDK's AzureAuthLogin sends.
			r := e.Do(t, "POST", "/api/v1/auth/azure-auth/login", "", map[string]string{"identityId": id,
				"jwt": a.Signer.Sign(t, azureClaims()), "organizationSlug": ""})
			if r.Status != 200 {
				t.Fatalf("login %d: %d %s", i, r.Status, r.Body)
			}
			var out loginOut
			r.Decode(t, &out)
			if out.ExpiresIn != 90 {
				t.Fatalf("login answer %+v", out)
			}
			if i == 0 {
				e.Must(t, 200, "GET", "/api/v1/identities/details", out.AccessToken, nil)
			}
		}
		if a.Discovery.Load() != 1 || a.Keys.Load() != 1 {
			t.Fatalf("fetches for 3 logins: discovery %d, keys %d; want 1 and 1", a.Discovery.Load(), a.Keys.Load())
		}

		claims := func(f func(c jwt.MapClaims)) jwt.MapClaims {
			c := azureClaims()
			f(c)
			return c
		}
		forged := newTokenSigner(t, "rsa", "entra-1")
		noExp := azureClaims()
		delete(noExp, "exp")
		refused := []struct{ name, check, tok string }{
			{"issuer", "issuer", a.Signer.Sign(t, claims(func(c jwt.MapClaims) {
				c["iss"] = "https://sts.windows.net/11111111-1111-1111-1111-111111111111/"
			}))},
			{"audience", "audience", a.Signer.Sign(t, claims(func(c jwt.MapClaims) { c["aud"] = "https://vault.azure.net" }))},
			{"signature", "signature", forged.Sign(t, azureClaims())},
			{"expired", "expired", a.Signer.Sign(t, claims(func(c jwt.MapClaims) { c["exp"] = time.Now().Add(-time.Hour).Unix() }))},
			{"no expiry", "expiry", a.Signer.Sign(t, noExp)},
			{"tenant", "tenant", a.Signer.Sign(t, claims(func(c jwt.MapClaims) { c["tid"] = "11111111-1111-1111-1111-111111111111" }))},
			{"service principal", "service principal", a.Signer.Sign(t, claims(func(c jwt.MapClaims) {
				c["oid"] = "99999999-9999-9999-9999-999999999999"
			}))},
		}
		for _, c := range refused {
			r, _ := methodLogin(t, e, "azure-auth", id, c.tok)
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
		e.Must(t, 200, "GET", "/api/v1/organization/audit-logs?eventType=login-identity-azure-auth-failed&limit=100", e.Token, nil).Decode(t, &failed)
		if len(failed.AuditLogs) != len(refused) {
			t.Fatalf("%d failed-login events, want %d", len(failed.AuditLogs), len(refused))
		}
		checks := map[string]bool{}
		for _, l := range failed.AuditLogs {
			checks[l.Event.Metadata["check"].(string)] = true
		}
		for _, c := range []string{"issuer", "audience", "signature", "expiry", "tenant", "service-principal"} {
			if !checks[c] {
				t.Fatalf("no failed login audited with check %s: %v", c, checks)
			}
		}
		// The principal's id is in the token, never in the refusal.
		r, _ := methodLogin(t, e, "azure-auth", id, refused[len(refused)-1].tok)
		if body := string(r.Body); strings.Contains(body, "99999999-9999") {
			t.Fatalf("refusal echoes the principal: %s", body)
		}
	})
}

func TestAzureAuthUseLimitAndTrustedIPs(t *testing.T) {
	forEachEngine(t, func(t *testing.T, d store.Dialect) {
		e := apptest.Bootstrapped(t, d)
		id, _ := e.NewIdentity(t, "azure-limited", "member")
		a := newEntraIssuer(t)
		base := "/api/v1/auth/azure-auth/identities/" + id
		cfg := a.Config()
		cfg["accessTokenNumUsesLimit"] = 1
		cfg["accessTokenTrustedIps"] = []map[string]string{{"ipAddress": "192.0.2.0/24"}}
		e.Must(t, 200, "POST", base, e.Token, cfg)
		tok := a.Signer.Sign(t, azureClaims())
		r, _ := methodLogin(t, e, "azure-auth", id, tok)
		assertError(t, r, 403, "ForbiddenError")
		if a.Discovery.Load() != 0 {
			t.Fatal("a caller from an untrusted address made the server fetch")
		}
		e.Must(t, 200, "PATCH", base, e.Token, map[string]any{"accessTokenTrustedIps": []map[string]string{{"ipAddress": "127.0.0.0/8"}}})
		r, out := methodLogin(t, e, "azure-auth", id, tok)
		if r.Status != 200 {
			t.Fatalf("login: %d %s", r.Status, r.Body)
		}
		e.Must(t, 200, "GET", "/api/v1/identities/details", out.AccessToken, nil)
		assertError(t, e.Do(t, "GET", "/api/v1/identities/details", out.AccessToken, nil), 401, "UnauthorizedError")
	})
}

func TestAzureAuthConfigurationIsValidated(t *testing.T) {
	e := apptest.Bootstrapped(t, store.SQLite)
	id, _ := e.NewIdentity(t, "azure-cfg", "member")
	base := "/api/v1/auth/azure-auth/identities/" + id
	for name, body := range map[string]map[string]any{
		"no tenant":       {"resource": azureResource},
		"tenant path":     {"tenantId": "../x", "resource": azureResource},
		"no resource":     {"tenantId": azureTenant},
		"not a URL":       {"tenantId": azureTenant, "resource": azureResource, "authorityHost": "ftp://x"},
		"principals list": {"tenantId": azureTenant, "resource": azureResource, "allowedServicePrincipalIds": []string{"a"}},
	} {
		if r := e.Do(t, "POST", base, e.Token, body); r.Status != 422 {
			t.Fatalf("%s: %d %s", name, r.Status, r.Body)
		}
	}
	assertError(t, e.Do(t, "POST", base, e.Token, map[string]any{"tenantId": azureTenant, "resource": azureResource,
		"authorityHost": "http://169.254.169.254"}), 400, "BadRequest")
	var att struct{ IdentityAzureAuth map[string]any }
	e.Must(t, 200, "POST", base, e.Token, map[string]any{"tenantId": azureTenant, "resource": azureResource}).Decode(t, &att)
	if att.IdentityAzureAuth["authorityHost"] != "" || att.IdentityAzureAuth["allowedServicePrincipalIds"] != "" {
		t.Fatalf("attach answer %v", att.IdentityAzureAuth)
	}
}
