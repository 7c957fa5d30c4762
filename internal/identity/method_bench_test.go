package identity_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/lockbox-dev/lockbox/internal/authmethod"
	_ "github.com/lockbox-dev/lockbox/internal/authmethod/all"
	"github.com/lockbox-dev/lockbox/internal/authz"
	"github.com/lockbox-dev/lockbox/internal/identity"
	"github.com/lockbox-dev/lockbox/internal/store"
	"github.com/lockbox-dev/lockbox/internal/store/storetest"
)

// methodFixture bootstraps an instance on SQLite and attaches method with
// cfg to its admin identity; it returns the service and the identity id.
func methodFixture(b *testing.B, method string, cfg map[string]any) (*identity.Methods, string) {
	b.Helper()
	ctx := context.Background()
	db := storetest.Open(b, store.SQLite)
	kr := newKeyring(b, db)
	svc := identity.NewService(db, kr, nil)
	res, err := svc.Bootstrap(ctx, "a@b.co", "pw", "Acme", "127.0.0.1", "bench")
	if err != nil {
		b.Fatal(err)
	}
	az := authz.NewResolver(db, nil)
	m := identity.NewMethods(db, identity.NewAdmin(db, az, svc), svc, authmethod.Env{Loopback: true})
	actor := authz.Actor{Kind: authz.ActorIdentity, ID: res.Identity.ID, OrgID: res.Org.ID}
	body, _ := json.Marshal(cfg)
	if _, err := m.Attach(ctx, actor, method, res.Identity.ID, identity.TokenSettings{}, body); err != nil {
		b.Fatal(err)
	}
	return m, res.Identity.ID
}

func benchKey(b *testing.B, alg string) (jwt.SigningMethod, crypto.Signer) {
	switch alg {
	case "RS256":
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			b.Fatal(err)
		}
		return jwt.SigningMethodRS256, k
	case "ES256":
		k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		return jwt.SigningMethodES256, k
	}
	_, k, _ := ed25519.GenerateKey(rand.Reader)
	return jwt.SigningMethodEdDSA, k
}

func benchToken(b *testing.B, m jwt.SigningMethod, k crypto.Signer, iss, kid string) string {
	c := jwt.MapClaims{"iss": iss, "aud": "lockbox", "sub": "repo:org/app", "repo": "org/app",
		"iat": time.Now().Unix(), "exp": time.Now().Add(time.Hour).Unix()}
	t := jwt.NewWithClaims(m, c)
	if kid != "" {
		t.Header["kid"] = kid
	}
	s, err := t.SignedString(k)
	if err != nil {
		b.Fatal(err)
	}
	return s
}

func runLogins(b *testing.B, m *identity.Methods, method, id, tok string) {
	ctx := context.Background()
	if _, err := m.Login(ctx, method, id, authmethod.Credential{Token: tok}, "", "127.0.0.1", "bench"); err != nil {
		b.Fatal(err) // the first login fetches what it caches
	}
	b.ResetTimer()
	for b.Loop() {
		if _, err := m.Login(ctx, method, id, authmethod.Credential{Token: tok}, "", "127.0.0.1", "bench"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPlatformLogin measures a whole JWT Auth or OIDC Auth login
// (configuration read, signature and bounds, token row, audit row, JWT) on
// SQLite with the keys cached: static keys per algorithm, and a JWKS and an
// OIDC issuer on loopback that are fetched once, before the timer. Compare
// with BenchmarkUniversalAuthLogin/secrets=1 in the same run.
func BenchmarkPlatformLogin(b *testing.B) {
	bounds := map[string]any{"boundIssuer": "https://ci.example", "boundAudiences": "lockbox",
		"boundSubject": "repo:org/*", "boundClaims": map[string]string{"repo": "org/*"}}
	with := func(extra map[string]any) map[string]any {
		out := map[string]any{}
		for k, v := range bounds {
			out[k] = v
		}
		for k, v := range extra {
			out[k] = v
		}
		return out
	}
	for _, alg := range []string{"EdDSA", "ES256", "RS256"} {
		b.Run("jwt-static-"+alg, func(b *testing.B) {
			sm, k := benchKey(b, alg)
			der, _ := x509.MarshalPKIXPublicKey(k.Public())
			pemKey := string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
			m, id := methodFixture(b, "jwt-auth", with(map[string]any{"configurationType": "static", "publicKeys": []string{pemKey}}))
			runLogins(b, m, "jwt-auth", id, benchToken(b, sm, k, "https://ci.example", ""))
		})
	}
	sm, k := benchKey(b, "ES256")
	pub := k.Public().(*ecdsa.PublicKey)
	raw, _ := pub.Bytes()
	enc := base64.RawURLEncoding.EncodeToString
	jwks := map[string]any{"keys": []map[string]any{{"kty": "EC", "crv": "P-256", "kid": "k1", "x": enc(raw[1:33]), "y": enc(raw[33:])}}}
	var srv *httptest.Server
	srv = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/.well-known/openid-configuration" {
			json.NewEncoder(w).Encode(map[string]any{"issuer": srv.URL, "jwks_uri": srv.URL + "/keys"})
			return
		}
		json.NewEncoder(w).Encode(jwks)
	}))
	defer srv.Close()
	ca := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}))
	b.Run("jwt-jwks-ES256", func(b *testing.B) {
		m, id := methodFixture(b, "jwt-auth", with(map[string]any{"configurationType": "jwks", "jwksUrl": srv.URL + "/keys", "jwksCaCert": ca}))
		runLogins(b, m, "jwt-auth", id, benchToken(b, sm, k, "https://ci.example", "k1"))
	})
	b.Run("oidc-ES256", func(b *testing.B) {
		m, id := methodFixture(b, "oidc-auth", with(map[string]any{"oidcDiscoveryUrl": srv.URL, "caCert": ca, "boundIssuer": srv.URL}))
		runLogins(b, m, "oidc-auth", id, benchToken(b, sm, k, srv.URL, "k1"))
	})
}
