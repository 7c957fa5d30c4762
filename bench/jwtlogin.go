package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/lockbox-dev/lockbox/internal/client"
)

// prepareJWTLogin makes a no-access identity with JWT Auth (a static ES256
// public key, bound issuer and audience) and returns one login with a token
// signed by that key: the cost of a platform login whose keys are in
// memory, next to the login scenario's Universal Auth.
func prepareJWTLogin(ctx context.Context, c *client.Client, url string) (func(*http.Client) error, error) {
	org, err := c.IdentityOrgID(ctx)
	if err != nil {
		return nil, err
	}
	var id struct {
		Identity struct{ ID string } `json:"identity"`
	}
	if err := c.Do(ctx, "POST", "/api/v1/identities", map[string]any{"name": "bench-jwt", "organizationId": org, "role": "no-access"}, &id); err != nil {
		return nil, err
	}
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.MarshalPKIXPublicKey(&key.PublicKey)
	pub := string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
	if err := c.Do(ctx, "POST", "/api/v1/auth/jwt-auth/identities/"+id.Identity.ID, map[string]any{"configurationType": "static",
		"publicKeys": []string{pub}, "boundIssuer": "https://bench.example", "boundAudiences": "lockbox"}, nil); err != nil {
		return nil, err
	}
	tok, err := jwt.NewWithClaims(jwt.SigningMethodES256, jwt.MapClaims{"iss": "https://bench.example", "aud": "lockbox",
		"sub": "bench", "exp": time.Now().Add(24 * time.Hour).Unix()}).SignedString(key)
	if err != nil {
		return nil, err
	}
	body, _ := json.Marshal(map[string]string{"identityId": id.Identity.ID, "jwt": tok})
	return func(hc *http.Client) error {
		return send(hc, "POST", url+"/api/v1/auth/jwt-auth/login", "", string(body))
	}, nil
}
