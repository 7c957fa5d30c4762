// Package jwtcheck verifies a workload's JWT for the JWT and OIDC login
// methods: the signature and time claims with golang-jwt against a key set,
// then the configured bounds (issuer, audiences, subject, claims with globs).
package jwtcheck

import (
	"context"
	"crypto"
	"errors"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/lockbox-dev/lockbox/internal/authmethod"
)

// Algorithms are the signature algorithms accepted: asymmetric only, so that
// a public key can never serve as an HMAC secret, and never "none".
var Algorithms = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}

// Leeway is the clock skew tolerated on exp, nbf and iat.
const Leeway = 60 * time.Second

// MaxTokenBytes bounds a presented token.
const MaxTokenBytes = 16 << 10

// KeyFunc returns the keys that may have signed a token whose header names
// kid ("" when it names none); a *authmethod.Refusal when there are none.
type KeyFunc func(ctx context.Context, kid string) ([]crypto.PublicKey, error)

// Parse verifies tok's signature with keys and its time claims at now, and
// returns its claims. Every failure is a *authmethod.Refusal naming the check.
func Parse(ctx context.Context, tok string, keys KeyFunc, now time.Time) (jwt.MapClaims, error) {
	if len(tok) > MaxTokenBytes {
		return nil, authmethod.Refuse("token", "Access denied: the token is larger than %d bytes", MaxTokenBytes)
	}
	// exp is required: a signed token without one, once leaked, would log
	// in for ever (Infisical accepts such tokens; lockbox does not).
	p := jwt.NewParser(jwt.WithValidMethods(Algorithms), jwt.WithLeeway(Leeway), jwt.WithIssuedAt(),
		jwt.WithExpirationRequired(), jwt.WithTimeFunc(func() time.Time { return now }))
	claims := jwt.MapClaims{}
	_, err := p.ParseWithClaims(tok, claims, func(t *jwt.Token) (any, error) {
		kid, _ := t.Header["kid"].(string)
		ks, err := keys(ctx, kid)
		if err != nil {
			return nil, err
		}
		set := jwt.VerificationKeySet{}
		for _, k := range ks {
			set.Keys = append(set.Keys, k)
		}
		return set, nil
	})
	if err == nil {
		return claims, nil
	}
	if r, ok := errors.AsType[*authmethod.Refusal](err); ok {
		return nil, r
	}
	switch {
	case errors.Is(err, jwt.ErrTokenMalformed):
		return nil, authmethod.Refuse("token", "Access denied: the token is not a valid JWT")
	case errors.Is(err, jwt.ErrTokenSignatureInvalid), errors.Is(err, jwt.ErrTokenUnverifiable), errors.Is(err, jwt.ErrInvalidKeyType):
		return nil, &authmethod.Refusal{Check: "signature", Message: "Access denied: signature verification failed", Err: err}
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		return nil, authmethod.Refuse("expiry", "Access denied: the token has no expiry (exp)")
	case errors.Is(err, jwt.ErrTokenExpired):
		return nil, authmethod.Refuse("expiry", "Access denied: the token has expired")
	case errors.Is(err, jwt.ErrTokenNotValidYet), errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		return nil, authmethod.Refuse("expiry", "Access denied: the token is not valid yet")
	}
	return nil, &authmethod.Refusal{Check: "token", Message: "Access denied: the token's claims are invalid", Err: err}
}

// Bounds are what a verified token's claims must match. Empty bounds are not checked.
type Bounds struct {
	Issuer    string              // exact
	Audiences []string            // any of these globs matches any audience of the token
	Subject   string              // glob
	Claims    map[string][]string // claim (dot path) -> any of these globs
}

// SplitPolicy splits Infisical's comma-separated policy values ("a, b").
func SplitPolicy(s string) []string {
	var out []string
	for _, v := range strings.Split(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	return out
}

// JoinPolicy is the stored form of a policy list, as Infisical stores it.
func JoinPolicy(s string) string { return strings.Join(SplitPolicy(s), ", ") }

// NewBounds are the bounds of a configuration's policy values, each
// comma-separated as Infisical stores them (but the subject, one glob).
func NewBounds(issuer, audiences, subject string, claims map[string]string) Bounds {
	b := Bounds{Issuer: issuer, Subject: subject, Audiences: SplitPolicy(audiences)}
	if len(claims) > 0 {
		b.Claims = make(map[string][]string, len(claims))
		for k, v := range claims {
			b.Claims[k] = SplitPolicy(v)
		}
	}
	return b
}

// restricts reports whether alternatives narrow anything: some given and
// none made only of wildcards and slashes ("*", "**", "*/*"), which would
// match every value.
func restricts(alts []string) bool {
	for _, a := range alts {
		if strings.Trim(a, "*?/") == "" {
			return false
		}
	}
	return len(alts) > 0
}

// Narrows reports whether the subject or one of the claims restricts who
// may log in, beyond the issuer. The audiences do not count: on a public
// issuer the workload names the audience it wants (a GitHub Actions job
// asks for any), so an audience alone would let in anyone the issuer
// serves.
func (b Bounds) Narrows() bool {
	if restricts(SplitPolicy(b.Subject)) {
		return true
	}
	for k, alts := range b.Claims {
		if !notABound[k] && restricts(alts) {
			return true
		}
	}
	return false
}

// notABound are the registered claims a bound on which says nothing of who
// the workload is: the audience it asked for, the issuer (already bound),
// and the token's times and id.
var notABound = map[string]bool{"aud": true, "iss": true, "exp": true, "nbf": true, "iat": true, "jti": true}

// ErrUnbounded refuses a login through a stored configuration that bounds
// no subject or claim (saved before an audience stopped counting as one):
// every token its issuer signs, for anyone, would log in.
func ErrUnbounded() error {
	return authmethod.Refuse("bounds", "Access denied: this configuration bounds no subject or claim; set boundSubject or boundClaims")
}

// Check refuses claims outside b, naming the first bound that fails (and
// the claim's name, never its value).
func (b Bounds) Check(c jwt.MapClaims) error {
	if b.Issuer != "" {
		if iss, _ := c["iss"].(string); iss != b.Issuer {
			return authmethod.Refuse("issuer", "Access denied: issuer mismatch")
		}
	}
	if b.Subject != "" {
		sub, _ := c["sub"].(string)
		if sub == "" {
			return authmethod.Refuse("subject", "Access denied: token has no subject field")
		}
		if !Match(b.Subject, sub) {
			return authmethod.Refuse("subject", "Access denied: subject not allowed")
		}
	}
	if len(b.Audiences) > 0 {
		auds := values(c["aud"])
		if len(auds) == 0 {
			return authmethod.Refuse("audience", "Access denied: token has no audience field")
		}
		if !anyMatch(b.Audiences, auds) {
			return authmethod.Refuse("audience", "Access denied: token audience not allowed")
		}
	}
	names := make([]string, 0, len(b.Claims))
	for k := range b.Claims {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		vs := values(Lookup(c, k))
		if len(vs) == 0 {
			return authmethod.Refuse("claim", "Access denied: token has no %s field", k)
		}
		if !anyMatch(b.Claims[k], vs) {
			return authmethod.Refuse("claim", "Access denied: claim mismatch for field %s", k)
		}
	}
	return nil
}

func anyMatch(patterns, vs []string) bool {
	for _, p := range patterns {
		for _, v := range vs {
			if Match(p, v) {
				return true
			}
		}
	}
	return false
}

// Lookup returns the claim at a dot path ("a.b.c"); nil if absent. A key
// that itself holds dots ("kubernetes.io") is found too.
func Lookup(c map[string]any, path string) any {
	if v, ok := c[path]; ok {
		return v
	}
	for i := 0; i < len(path); i++ {
		if path[i] != '.' {
			continue
		}
		if sub, ok := c[path[:i]].(map[string]any); ok {
			if v := Lookup(sub, path[i+1:]); v != nil {
				return v
			}
		}
	}
	return nil
}

// values is a claim as the strings a policy compares: a string, number or
// boolean, or each such element of an array. Objects compare as nothing.
func values(v any) []string {
	switch v := v.(type) {
	case string:
		if v == "" {
			return nil
		}
		return []string{v}
	case float64:
		return []string{strconv.FormatFloat(v, 'f', -1, 64)}
	case bool:
		return []string{strconv.FormatBool(v)}
	case []any:
		var out []string
		for _, e := range v {
			if _, nested := e.([]any); !nested {
				out = append(out, values(e)...)
			}
		}
		return out
	case []string:
		return v
	}
	return nil
}

// MetadataFrom maps names to the claims at the mapped paths; a mapped claim
// missing from the token is refused.
func MetadataFrom(c jwt.MapClaims, mapping map[string]string) (map[string]string, error) {
	if len(mapping) == 0 {
		return nil, nil
	}
	out := make(map[string]string, len(mapping))
	for name, path := range mapping {
		vs := values(Lookup(c, path))
		if len(vs) == 0 {
			return nil, authmethod.Refuse("claim", "Access denied: token has no %s field", path)
		}
		out[name] = strings.Join(vs, ",")
	}
	return out, nil
}

// Match reports whether s matches the glob pattern, as Infisical's policies
// match (picomatch): equal strings match; "*" is any run of characters
// other than "/", "**" any run at all, "?" one character other than "/".
func Match(pattern, s string) bool {
	if pattern == s {
		return true
	}
	type item struct {
		kind byte // 'l' literal, '*', 'A' (**), '?'
		r    rune
	}
	var items []item
	pr := []rune(pattern)
	for i := 0; i < len(pr); i++ {
		switch {
		case pr[i] == '*' && i+1 < len(pr) && pr[i+1] == '*':
			items = append(items, item{kind: 'A'})
			for i+1 < len(pr) && pr[i+1] == '*' {
				i++
			}
		case pr[i] == '*':
			items = append(items, item{kind: '*'})
		case pr[i] == '?':
			items = append(items, item{kind: '?'})
		default:
			items = append(items, item{kind: 'l', r: pr[i]})
		}
	}
	sr := []rune(s)
	// cur[j]: items[:i] match sr[:j]; dynamic programming, O(len(items)*len(s)).
	cur := make([]bool, len(sr)+1)
	next := make([]bool, len(sr)+1)
	cur[0] = true
	for _, it := range items {
		clear(next)
		switch it.kind {
		case 'A':
			reach := false
			for j := 0; j <= len(sr); j++ {
				reach = reach || cur[j]
				next[j] = reach
			}
		case '*':
			reach := false
			for j := 0; j <= len(sr); j++ {
				if cur[j] {
					reach = true
				}
				next[j] = reach
				if j < len(sr) && sr[j] == '/' {
					reach = false
				}
			}
		default:
			for j := 1; j <= len(sr); j++ {
				c := sr[j-1]
				next[j] = cur[j-1] && ((it.kind == '?' && c != '/') || (it.kind == 'l' && c == it.r))
			}
		}
		cur, next = next, cur
	}
	return cur[len(sr)]
}
