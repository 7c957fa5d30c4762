package main

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// `lockbox identities jwt-auth attach|get|update|revoke` configure JWT Auth,
// and `lockbox login --method jwt-auth` logs in with a token; a refused
// token's check reaches the user, never the token.
func TestCLIJWTAuthAttachAndLogin(t *testing.T) {
	addr, _, _, _ := startServer(t, t.TempDir(), nil)
	c := newCLI(t, addr)
	admin, _ := adminSetup(t, c)
	id := strings.TrimSpace(c.must(admin, "identities", "create", "ci-jwt", "--role", "member", "--plain"))

	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	der, _ := x509.MarshalPKIXPublicKey(pub)
	pubPEM := string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
	cfg, _ := json.Marshal(map[string]any{"configurationType": "static", "publicKeys": []string{pubPEM},
		"boundIssuer": "https://ci.example", "boundAudiences": "lockbox", "accessTokenTTL": 600})
	cfgFile := filepath.Join(t.TempDir(), "jwt.json")
	os.WriteFile(cfgFile, cfg, 0o600)
	if out := c.must(admin, "identities", "jwt-auth", "attach", id, "--config", "@"+cfgFile); !strings.Contains(out, "https://ci.example") {
		t.Fatalf("attach:\n%s", out)
	}
	c.must(admin, "identities", "jwt-auth", "update", id, "--config", `{"boundSubject":"repo:acme/app"}`)
	var got map[string]any
	json.Unmarshal([]byte(c.must(admin, "identities", "jwt-auth", "get", id, "-o", "json")), &got)
	if got["boundSubject"] != "repo:acme/app" || got["boundIssuer"] != "https://ci.example" || got["accessTokenTTL"] != 600.0 {
		t.Fatalf("get after update: %v", got)
	}
	if r := c.run(admin, "identities", "jwt-auth", "attach", id, "--config", "{not json"); r.code == 0 || !strings.Contains(r.stderr, "JSON object") {
		t.Fatalf("bad --config: exit %d, %s", r.code, r.stderr)
	}

	sign := func(iss string) string {
		s, err := jwt.NewWithClaims(jwt.SigningMethodEdDSA, jwt.MapClaims{"iss": iss, "aud": "lockbox", "sub": "repo:acme/app",
			"exp": time.Now().Add(time.Hour).Unix()}).SignedString(priv)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	tok := strings.TrimSpace(c.must(nil, "login", "--method", "jwt-auth", "--machine-identity-id", id, "--jwt", sign("https://ci.example"), "--plain"))
	if strings.Count(tok, ".") != 2 {
		t.Fatalf("login --plain printed %q", tok)
	}
	bad := sign("https://evil.example")
	r := c.run([]string{"INFISICAL_MACHINE_IDENTITY_ID=" + id, "INFISICAL_JWT=" + bad}, "login", "--method", "jwt-auth")
	if r.code == 0 || !strings.Contains(strings.ToLower(r.stderr), "issuer") || strings.Contains(r.stderr, bad) {
		t.Fatalf("login with a foreign issuer: exit %d, %s", r.code, r.stderr)
	}
	if r := c.run(nil, "login", "--method", "jwt-auth", "--jwt", bad); r.code == 0 || !strings.Contains(r.stderr, "--machine-identity-id") {
		t.Fatalf("login without an identity: exit %d, %s", r.code, r.stderr)
	}
	if r := c.run(nil, "login", "--method", "kubernetes", "--machine-identity-id", id, "--service-account-token-path", filepath.Join(t.TempDir(), "none")); r.code == 0 || !strings.Contains(r.stderr, "service-account token") {
		t.Fatalf("kubernetes login without a token file: exit %d, %s", r.code, r.stderr)
	}

	c.must(admin, "identities", "jwt-auth", "revoke", id)
	if r := c.run(nil, "login", "--method", "jwt-auth", "--machine-identity-id", id, "--jwt", sign("https://ci.example")); r.code == 0 {
		t.Fatal("login after revoke succeeded")
	}
}
