package jwtcheck_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"

	"github.com/lockbox-dev/lockbox/internal/authmethod"
	"github.com/lockbox-dev/lockbox/internal/authmethod/jwtauth"
	"github.com/lockbox-dev/lockbox/internal/authmethod/oidcauth"
)

// TestStoredAudienceOnlyConfigurationsLetNobodyIn: a key-set JWT Auth or
// an OIDC Auth configuration stored with an audience as its only bound
// (accepted before an audience stopped counting as one) refuses every
// login before fetching anything, where it used to let in any workload of
// the issuer that asked for that audience.
func TestStoredAudienceOnlyConfigurationsLetNobodyIn(t *testing.T) {
	for name, c := range map[string]struct {
		new func(authmethod.Env, json.RawMessage) (authmethod.Method, error)
		raw string
	}{
		"jwt-auth jwks": {jwtauth.New, `{"configurationType":"jwks","jwksUrl":"https://127.0.0.1:1/keys","boundIssuer":"https://ci",` +
			`"boundAudiences":"https://lockbox.example"}`},
		"oidc-auth": {oidcauth.New, `{"oidcDiscoveryUrl":"https://127.0.0.1:1","boundIssuer":"https://ci","boundAudiences":"https://lockbox.example"}`},
	} {
		m, err := c.new(authmethod.Env{}, json.RawMessage(c.raw))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		v, ok := m.(interface {
			Verify(context.Context, string) (authmethod.Verified, error)
		})
		if !ok {
			t.Fatalf("%s: no Verify", name)
		}
		_, err = v.Verify(context.Background(), "any.token.at-all")
		var r *authmethod.Refusal
		if !errors.As(err, &r) || r.Check != "bounds" {
			t.Fatalf("%s: %v, want the bounds refusal", name, err)
		}
	}
}
