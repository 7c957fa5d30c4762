package web_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/lockbox-dev/lockbox/internal/app/apptest"
	"github.com/lockbox-dev/lockbox/internal/store"
)

// TestDashboardLoginMethods: an admin attaches JWT Auth to an identity from
// its page (a static key), a workload logs in with a JWT it signed; the
// configuration edited on the page applies at once, and removing the method
// ends its logins. A configuration that is not a JSON object, or one the
// method refuses, is a 400 (422: the method's validation, as the API).
func TestDashboardLoginMethods(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	pub := string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
	signed := func(iss string) string {
		tok, err := jwt.NewWithClaims(jwt.SigningMethodES256, jwt.MapClaims{"iss": iss, "sub": "ci", "aud": "lockbox",
			"iat": time.Now().Unix(), "exp": time.Now().Add(5 * time.Minute).Unix()}).SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	forEachEngine(t, func(t *testing.T, d store.Dialect) {
		e := apptest.Bootstrapped(t, d)
		admin := newBrowser(t, e.URL)
		admin.mustLogin(e.UserEmail, e.Password)
		iid := createIdentity(t, admin, "workload", "member")
		page := admin.get("/identities/" + iid)
		if !strings.Contains(page.body, `id="attach-method"`) || !strings.Contains(page.body, `<option value="jwt-auth">JWT Auth</option>`) {
			t.Fatalf("no attach form offering JWT Auth: %.3000s", page.body)
		}
		login := func(tok string) int {
			return e.Do(t, "POST", "/api/v1/auth/jwt-auth/login", "", map[string]string{"identityId": iid, "jwt": tok}).Status
		}
		for name, cfg := range map[string]string{"not JSON": "publicKeys=x", "not an object": `["x"]`, "refused by the method": `{"configurationType":"magic"}`} {
			p := admin.post("/identities/"+iid+"/methods", url.Values{"method": {"jwt-auth"}, "config": {cfg}}, nil)
			if p.status != http.StatusBadRequest && p.status != http.StatusUnprocessableEntity {
				t.Errorf("%s: %d, want 400 or 422", name, p.status)
			}
		}
		cfg, _ := json.Marshal(map[string]any{"configurationType": "static", "publicKeys": []string{pub},
			"boundIssuer": "https://ci.example", "boundAudiences": "lockbox"})
		mustStatus(t, admin.post("/identities/"+iid+"/methods", url.Values{"method": {"jwt-auth"}, "config": {string(cfg)},
			"accessTokenTTL": {"600"}}, nil), 303, "attach JWT Auth")
		page = admin.get("/identities/" + iid)
		if !strings.Contains(page.body, `id="method-jwt-auth"`) || !strings.Contains(page.body, "https://ci.example") ||
			!strings.Contains(page.body, "Tokens live 600 s") || strings.Contains(page.body, `<option value="jwt-auth">`) {
			t.Fatalf("the attached method is not shown: %.4000s", page.body)
		}
		if s := login(signed("https://ci.example")); s != http.StatusOK {
			t.Fatalf("JWT login after attaching on the page: %d", s)
		}
		mustStatus(t, admin.post("/identities/"+iid+"/methods/jwt-auth", url.Values{"config": {`{"boundIssuer":"https://other.example"}`},
			"accessTokenTTL": {"600"}}, nil), 303, "update")
		if s := login(signed("https://ci.example")); s != http.StatusUnauthorized {
			t.Fatalf("a JWT of the old issuer after the edit: %d, want 401", s)
		}
		if s := login(signed("https://other.example")); s != http.StatusOK {
			t.Fatalf("a JWT of the new issuer (the keys kept): %d", s)
		}
		mustStatus(t, admin.post("/identities/"+iid+"/methods/jwt-auth/remove", nil, nil), 303, "remove")
		if page := admin.get("/identities/" + iid); strings.Contains(page.body, `id="method-jwt-auth"`) {
			t.Fatal("the removed method is still shown")
		}
		if s := login(signed("https://other.example")); s == http.StatusOK {
			t.Fatal("a login through a removed method succeeded")
		}
	})
}
