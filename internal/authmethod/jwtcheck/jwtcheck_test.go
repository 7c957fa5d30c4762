package jwtcheck_test

import (
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/lockbox-dev/lockbox/internal/authmethod"
	"github.com/lockbox-dev/lockbox/internal/authmethod/jwtcheck"
)

func TestMatch(t *testing.T) {
	cases := []struct {
		pattern, s string
		want       bool
	}{
		{"org/app", "org/app", true},
		{"org/*", "org/app", true},
		{"org/*", "org/app/fork", false},
		{"org/**", "org/app/fork", true},
		{"repo:org/*:ref:main", "repo:org/app:ref:main", true},
		{"repo:org/*:ref:main", "repo:org/app:ref:dev", false},
		{"a?c", "abc", true},
		{"a?c", "a/c", false},
		{"*", "", true},
		{"*", "x/y", false},
		{"[a]", "[a]", true}, // brackets are literal here; equal strings always match
		{"prod", "production", false},
		{"**/main", "refs/heads/main", true},
	}
	for _, c := range cases {
		if got := jwtcheck.Match(c.pattern, c.s); got != c.want {
			t.Errorf("Match(%q, %q) = %v, want %v", c.pattern, c.s, got, c.want)
		}
	}
}

func TestMatchIsLinear(t *testing.T) {
	// Backtracking globs are exponential in stars; this finishes at once.
	p := strings.Repeat("*a", 200) + "b"
	if jwtcheck.Match(p, strings.Repeat("a", 5000)) {
		t.Fatal("matched")
	}
}

func edJWKS(kid string) (jwtcheck.JWKS, ed25519.PublicKey) {
	pub, _, _ := ed25519.GenerateKey(rand.Reader)
	return jwtcheck.JWKS{Keys: []jwtcheck.JWK{{Kty: "OKP", Crv: "Ed25519", Kid: kid, X: base64.RawURLEncoding.EncodeToString(pub)}}}, pub
}

func TestKeyCacheRefreshesOnUnknownKidRateLimited(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	doc, _ := edJWKS("k1")
	fetches := 0
	var fail error
	kc := &jwtcheck.KeyCache{Now: func() time.Time { return now }, Fetch: func(context.Context) (jwtcheck.JWKS, error) {
		fetches++
		return doc, fail
	}}
	ctx := context.Background()
	if ks, err := kc.Keys(ctx, "k1"); err != nil || len(ks) != 1 || fetches != 1 {
		t.Fatalf("first use: %v %v fetches=%d", ks, err, fetches)
	}
	kc.Keys(ctx, "k1")
	if fetches != 1 {
		t.Fatal("a known kid fetched again")
	}
	// The issuer rotates: a token with k2 arrives within the rate limit and is refused without a fetch.
	doc, _ = edJWKS("k2")
	now = now.Add(5 * time.Second)
	if _, err := kc.Keys(ctx, "k2"); !isRefusal(err, "signature") || fetches != 1 {
		t.Fatalf("unknown kid within the limit: %v fetches=%d", err, fetches)
	}
	// Once the limit has passed, the unknown kid refreshes the set.
	now = now.Add(jwtcheck.KeysMinRefresh)
	if ks, err := kc.Keys(ctx, "k2"); err != nil || len(ks) != 1 || fetches != 2 {
		t.Fatalf("refresh on unknown kid: %v fetches=%d", err, fetches)
	}
	// Made-up kids cannot make it fetch more than once per interval.
	for i := range 20 {
		now = now.Add(time.Second)
		kc.Keys(ctx, "made-up-"+string(rune('a'+i)))
	}
	if fetches > 2+20/int(jwtcheck.KeysMinRefresh/time.Second)+1 {
		t.Fatalf("%d fetches for 20 made-up kids in 20s", fetches)
	}
	// Keys past their age are fetched again; if that fails, stale keys still serve.
	now = now.Add(jwtcheck.KeysMaxAge + time.Minute)
	fail = errors.New("issuer down")
	before := fetches
	if _, err := kc.Keys(ctx, "k2"); err != nil || fetches != before+1 {
		t.Fatalf("stale keys on a failed refresh: %v fetches=%d", err, fetches-before)
	}
}

func TestKeyCacheFetchFailureIsARefusal(t *testing.T) {
	kc := &jwtcheck.KeyCache{Now: time.Now, Fetch: func(context.Context) (jwtcheck.JWKS, error) {
		return jwtcheck.JWKS{}, errors.New("connection refused")
	}}
	_, err := kc.Keys(context.Background(), "k")
	if !isRefusal(err, "signature") || strings.Contains(err.Error(), "connection refused") {
		t.Fatalf("%v", err)
	}
}

func isRefusal(err error, check string) bool {
	r, ok := errors.AsType[*authmethod.Refusal](err)
	return ok && r.Check == check
}

func TestLookupDotPaths(t *testing.T) {
	c := map[string]any{"a": map[string]any{"b": "x"}, "kubernetes.io": map[string]any{"namespace": "apps"}, "c.d": "flat"}
	for path, want := range map[string]any{"a.b": "x", "kubernetes.io.namespace": "apps", "c.d": "flat", "a.z": nil, "z": nil} {
		if got := jwtcheck.Lookup(c, path); got != want {
			t.Errorf("Lookup(%q) = %v, want %v", path, got, want)
		}
	}
}

func TestKeyCacheKeysWithoutKid(t *testing.T) {
	doc, _ := edJWKS("")
	fetches := 0
	kc := &jwtcheck.KeyCache{Now: time.Now, Fetch: func(context.Context) (jwtcheck.JWKS, error) { fetches++; return doc, nil }}
	for _, kid := range []string{"", "any", "other"} {
		if ks, err := kc.Keys(context.Background(), kid); err != nil || len(ks) != 1 {
			t.Fatalf("kid %q: %v %v", kid, ks, err)
		}
	}
	if fetches != 1 {
		t.Fatalf("%d fetches", fetches)
	}
}

// A token without exp is refused (check "expiry"); the same token with one
// is accepted.
func TestParseRequiresExp(t *testing.T) {
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	keys := func(context.Context, string) ([]crypto.PublicKey, error) { return []crypto.PublicKey{pub}, nil }
	now := time.Now()
	sign := func(c jwt.MapClaims) string {
		s, err := jwt.NewWithClaims(jwt.SigningMethodEdDSA, c).SignedString(priv)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	_, err := jwtcheck.Parse(context.Background(), sign(jwt.MapClaims{"iss": "i", "sub": "s"}), keys, now)
	r, ok := errors.AsType[*authmethod.Refusal](err)
	if !ok || r.Check != "expiry" || !strings.Contains(r.Message, "no expiry") {
		t.Fatalf("token without exp: %v", err)
	}
	if _, err := jwtcheck.Parse(context.Background(), sign(jwt.MapClaims{"iss": "i", "exp": now.Add(time.Minute).Unix()}), keys, now); err != nil {
		t.Fatalf("token with exp: %v", err)
	}
}

func TestBoundedNeedsALiteral(t *testing.T) {
	for _, c := range []struct {
		aud, sub string
		claims   map[string]string
		want     bool
	}{
		{"", "", nil, false},
		{" , ", "", nil, false},
		{"*", "**", map[string]string{"repository": "*/*"}, false},
		{"lockbox, *", "", nil, false}, // one alternative lets every audience in
		{"lockbox", "", nil, false},    // the workload picks its audience
		{"", "", map[string]string{"aud": "lockbox", "iss": "https://ci"}, false},
		{"", "", map[string]string{"aud": "lockbox", "repository": "acme/app"}, true},
		{"lockbox", "repo:acme/*", nil, true},
		{"", "repo:acme/*", nil, true},
		{"", "", map[string]string{"repository": "*/*", "ref": "refs/heads/main"}, true},
		{"?", "", nil, false},
	} {
		if got := jwtcheck.NewBounds("", c.aud, c.sub, c.claims).Narrows(); got != c.want {
			t.Errorf("NewBounds(%q, %q, %v).Narrows() = %v", c.aud, c.sub, c.claims, got)
		}
	}
}

// TestKeyCacheFetchOutlivesItsCaller: a login that goes away while the keys
// are being fetched does not fail the fetch. (It did: the fetch ran on the
// caller's context, and the failed attempt kept every login out for
// KeysMinRefresh; anyone could start logins and hang up to keep an identity
// out.)
func TestKeyCacheFetchOutlivesItsCaller(t *testing.T) {
	doc, _ := edJWKS("k1")
	kc := &jwtcheck.KeyCache{Now: time.Now, Fetch: func(ctx context.Context) (jwtcheck.JWKS, error) {
		select {
		case <-time.After(100 * time.Millisecond): // the issuer's latency
			return doc, nil
		case <-ctx.Done():
			return jwtcheck.JWKS{}, ctx.Err()
		}
	}}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	kc.Keys(ctx, "k1") // the caller hangs up
	if ks, err := kc.Keys(context.Background(), "k1"); err != nil || len(ks) != 1 {
		t.Fatalf("a login after a caller hung up: %v, %v", ks, err)
	}
}
