package api_test

import (
	"encoding/json"
	"encoding/pem"
	"fmt"
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

// oidcIssuer is an OpenID provider on loopback, over TLS with its own
// certificate (given to lockbox as caCert), counting the documents it serves.
type oidcIssuer struct {
	srv       *httptest.Server
	caPEM     string
	discovery atomic.Int64
	jwks      atomic.Int64
	signers   []tokenSigner
}

func newOIDCIssuer(t *testing.T, signers ...tokenSigner) *oidcIssuer {
	t.Helper()
	o := &oidcIssuer{signers: signers}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		o.discovery.Add(1)
		json.NewEncoder(w).Encode(map[string]any{"issuer": o.srv.URL, "jwks_uri": o.srv.URL + "/oauth2/keys",
			"id_token_signing_alg_values_supported": []string{"RS256", "ES256", "EdDSA"}})
	})
	mux.HandleFunc("GET /oauth2/keys", func(w http.ResponseWriter, r *http.Request) {
		o.jwks.Add(1)
		var keys []map[string]any
		for _, s := range o.signers {
			keys = append(keys, s.JWK())
		}
		json.NewEncoder(w).Encode(map[string]any{"keys": keys})
	})
	o.srv = httptest.NewTLSServer(mux)
	t.Cleanup(o.srv.Close)
	o.caPEM = string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: o.srv.Certificate().Raw}))
	return o
}

// idClaims are an ID token's claims inside every bound of oidcConfig.
func (o *oidcIssuer) idClaims() jwt.MapClaims {
	now := time.Now()
	return jwt.MapClaims{"iss": o.srv.URL, "aud": "lockbox", "sub": "system:serviceaccount:apps:api",
		"iat": now.Unix(), "exp": now.Add(5 * time.Minute).Unix(),
		"kubernetes.io": map[string]any{"namespace": "apps"}, "team": "payments"}
}

func (o *oidcIssuer) config() map[string]any {
	return map[string]any{"oidcDiscoveryUrl": o.srv.URL, "caCert": o.caPEM, "boundIssuer": o.srv.URL,
		"boundAudiences": "lockbox", "boundClaims": map[string]string{"kubernetes.io.namespace": "apps, batch"},
		"claimMetadataMapping": map[string]string{"team": "team"}, "boundSubject": "system:serviceaccount:apps:*"}
}

func TestOIDCAuthLoginBoundsAndKeyCache(t *testing.T) {
	forEachEngine(t, func(t *testing.T, d store.Dialect) {
		e := apptest.Bootstrapped(t, d)
		id, _ := e.NewIdentity(t, "k8s-workload", "member")
		rs, es := newTokenSigner(t, "rsa", "r1"), newTokenSigner(t, "ec", "e1")
		iss := newOIDCIssuer(t, rs, es)
		cfg := iss.config()
		cfg["accessTokenTTL"] = 300
		var att struct{ IdentityOidcAuth map[string]any }
		e.Must(t, 200, "POST", "/api/v1/auth/oidc-auth/identities/"+id, e.Token, cfg).Decode(t, &att)
		if got := att.IdentityOidcAuth; got["oidcDiscoveryUrl"] != iss.srv.URL || got["caCert"] != strings.TrimSpace(iss.caPEM) ||
			got["boundIssuer"] != iss.srv.URL || got["accessTokenTTL"] != 300.0 || got["claimMetadataMapping"] == nil {
			t.Fatalf("attach answer %v", got)
		}
		var ident struct {
			Identity struct {
				Identity struct{ AuthMethods []string }
			}
		}
		e.Must(t, 200, "GET", "/api/v1/identities/"+id, e.Token, nil).Decode(t, &ident)
		if fmt.Sprint(ident.Identity.Identity.AuthMethods) != "[oidc-auth token-auth]" && fmt.Sprint(ident.Identity.Identity.AuthMethods) != "[token-auth oidc-auth]" {
			t.Fatalf("authMethods %v", ident.Identity.Identity.AuthMethods)
		}

		for i := range 6 {
			s := []tokenSigner{rs, es}[i%2]
			r, out := methodLogin(t, e, "oidc-auth", id, s.Sign(t, iss.idClaims()))
			if r.Status != 200 || out.ExpiresIn != 300 || out.TokenType != "Bearer" {
				t.Fatalf("login %d: %d %s", i, r.Status, r.Body)
			}
			if i == 0 {
				e.Must(t, 200, "GET", "/api/v1/identities/details", out.AccessToken, nil)
			}
		}
		// Discovery and keys were fetched once for all six logins.
		if iss.discovery.Load() != 1 || iss.jwks.Load() != 1 {
			t.Fatalf("fetches: discovery %d, jwks %d; want 1 and 1", iss.discovery.Load(), iss.jwks.Load())
		}
		var ok struct {
			AuditLogs []struct {
				Event struct{ Metadata map[string]any }
			}
		}
		e.Must(t, 200, "GET", "/api/v1/organization/audit-logs?eventType=login-identity-oidc-auth&limit=1", e.Token, nil).Decode(t, &ok)
		if len(ok.AuditLogs) != 1 || fmt.Sprint(ok.AuditLogs[0].Event.Metadata["claimMetadata"]) != "map[team:payments]" {
			t.Fatalf("login audit %+v", ok)
		}

		claims := func(f func(c jwt.MapClaims)) jwt.MapClaims {
			c := iss.idClaims()
			f(c)
			return c
		}
		unknown := newTokenSigner(t, "rsa", "r1") // known kid, other key
		refused := []struct{ name, check, tok string }{
			{"issuer", "issuer", rs.Sign(t, claims(func(c jwt.MapClaims) { c["iss"] = "https://other.example" }))},
			{"audience", "audience", rs.Sign(t, claims(func(c jwt.MapClaims) { c["aud"] = []string{"a", "b"} }))},
			{"claim", "claim mismatch for field kubernetes.io.namespace", rs.Sign(t, claims(func(c jwt.MapClaims) {
				c["kubernetes.io"] = map[string]any{"namespace": "kube-system"}
			}))},
			{"subject", "subject", rs.Sign(t, claims(func(c jwt.MapClaims) { c["sub"] = "system:serviceaccount:kube-system:admin" }))},
			{"expired", "expired", rs.Sign(t, claims(func(c jwt.MapClaims) { c["exp"] = time.Now().Add(-time.Hour).Unix() }))},
			{"wrong signature", "signature", unknown.Sign(t, iss.idClaims())},
			{"mapped claim missing", "has no team field", rs.Sign(t, claims(func(c jwt.MapClaims) { delete(c, "team") }))},
		}
		for _, c := range refused {
			r, _ := methodLogin(t, e, "oidc-auth", id, c.tok)
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
		e.Must(t, 200, "GET", "/api/v1/organization/audit-logs?eventType=login-identity-oidc-auth-failed&limit=100", e.Token, nil).Decode(t, &failed)
		if len(failed.AuditLogs) != len(refused) {
			t.Fatalf("%d failed-login events, want %d", len(failed.AuditLogs), len(refused))
		}
		if iss.discovery.Load() != 1 {
			t.Fatalf("refusals fetched discovery again: %d", iss.discovery.Load())
		}
	})
}

func TestOIDCAuthTLSUseLimitAndTrustedIPs(t *testing.T) {
	forEachEngine(t, func(t *testing.T, d store.Dialect) {
		e := apptest.Bootstrapped(t, d)
		id, _ := e.NewIdentity(t, "oidc-limited", "member")
		s := newTokenSigner(t, "ed", "k")
		iss := newOIDCIssuer(t, s)
		base := "/api/v1/auth/oidc-auth/identities/" + id
		cfg := iss.config()
		delete(cfg, "caCert") // the issuer's certificate is not trusted without it
		cfg["accessTokenNumUsesLimit"] = 1
		cfg["accessTokenTrustedIps"] = []map[string]string{{"ipAddress": "192.0.2.0/24"}}
		e.Must(t, 200, "POST", base, e.Token, cfg)
		tok := s.Sign(t, iss.idClaims())
		r, _ := methodLogin(t, e, "oidc-auth", id, tok)
		assertError(t, r, 403, "ForbiddenError")
		if iss.discovery.Load() != 0 {
			t.Fatal("a caller from an untrusted address made the server fetch")
		}
		e.Must(t, 200, "PATCH", base, e.Token, map[string]any{"accessTokenTrustedIps": []map[string]string{{"ipAddress": "127.0.0.0/8"}}})
		r, _ = methodLogin(t, e, "oidc-auth", id, tok)
		assertRefused(t, r, "signing keys could not be fetched", tok)
		e.Must(t, 200, "PATCH", base, e.Token, map[string]any{"caCert": iss.caPEM})
		r, out := methodLogin(t, e, "oidc-auth", id, tok)
		if r.Status != 200 {
			t.Fatalf("login with the CA: %d %s", r.Status, r.Body)
		}
		e.Must(t, 200, "GET", "/api/v1/identities/details", out.AccessToken, nil)
		assertError(t, e.Do(t, "GET", "/api/v1/identities/details", out.AccessToken, nil), 401, "UnauthorizedError")
	})
}

func TestOIDCAuthConfigurationIsValidated(t *testing.T) {
	e := apptest.Bootstrapped(t, store.SQLite)
	id, _ := e.NewIdentity(t, "oidc-cfg", "member")
	base := "/api/v1/auth/oidc-auth/identities/" + id
	// Each body fails one check (the others bounded), and the 422 names its field.
	for name, c := range map[string]struct {
		body  map[string]any
		field string
	}{
		"no discovery URL": {map[string]any{"boundIssuer": "https://x", "boundSubject": "x"}, "oidcDiscoveryUrl"},
		"no issuer":        {map[string]any{"oidcDiscoveryUrl": "https://127.0.0.1:1", "boundSubject": "x"}, "boundIssuer"},
		"not a URL":        {map[string]any{"oidcDiscoveryUrl": "ftp://x", "boundIssuer": "x", "boundSubject": "x"}, "oidcDiscoveryUrl"},
		"bad CA": {map[string]any{"oidcDiscoveryUrl": "https://127.0.0.1:1", "boundIssuer": "x", "boundSubject": "x",
			"caCert": "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----"}, "caCert"},
		"claims not text": {map[string]any{"oidcDiscoveryUrl": "https://127.0.0.1:1", "boundIssuer": "x", "boundClaims": map[string]any{"a": 1}}, "boundClaims"},
		// An issuer's tokens for anyone it serves would log in.
		"no bound":       {map[string]any{"oidcDiscoveryUrl": "https://127.0.0.1:1", "boundIssuer": "x", "boundAudiences": " "}, "boundSubject"},
		"wildcard bound": {map[string]any{"oidcDiscoveryUrl": "https://127.0.0.1:1", "boundIssuer": "x", "boundSubject": "**", "boundAudiences": "*"}, "boundSubject"},
		// The workload asks for the audience it wants.
		"audience only": {map[string]any{"oidcDiscoveryUrl": "https://127.0.0.1:1", "boundIssuer": "x", "boundAudiences": "https://lockbox.example"}, "boundSubject"},
	} {
		r := e.Do(t, "POST", base, e.Token, c.body)
		if r.Status != 422 || !strings.Contains(string(r.Body), `"path":["`+c.field+`"]`) {
			t.Fatalf("%s: %d %s, want a 422 naming %s", name, r.Status, r.Body, c.field)
		}
	}
	assertError(t, e.Do(t, "POST", base, e.Token, map[string]any{"oidcDiscoveryUrl": "http://169.254.169.254", "boundIssuer": "x", "boundSubject": "x"}), 400, "BadRequest")
}
