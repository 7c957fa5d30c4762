// Package jwtauth is the JWT Auth login method: a workload presents a JWT
// signed by keys the administrator configured, either PEM public keys
// ("static") or a JWKS URL ("jwks"), and bounded by issuer, audiences,
// subject and claims.
package jwtauth

import (
	"context"
	"crypto"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/lockbox-dev/lockbox/internal/authmethod"
	"github.com/lockbox-dev/lockbox/internal/authmethod/fetch"
	"github.com/lockbox-dev/lockbox/internal/authmethod/jwtcheck"
	"github.com/lockbox-dev/lockbox/internal/errs"
)

func init() {
	authmethod.Register(authmethod.Registration{Name: "jwt-auth", DisplayName: "JWT Auth", WireKey: "identityJwtAuth",
		Configure: Configure, New: New})
}

// Configuration types.
const (
	Static = "static"
	JWKS   = "jwks"
)

// Config is a stored configuration, in Infisical's field names.
type Config struct {
	ConfigurationType string            `json:"configurationType"`
	JwksURL           string            `json:"jwksUrl"`
	JwksCACert        string            `json:"jwksCaCert"`
	PublicKeys        []string          `json:"publicKeys"`
	BoundIssuer       string            `json:"boundIssuer"`
	BoundAudiences    string            `json:"boundAudiences"`
	BoundClaims       map[string]string `json:"boundClaims"`
	BoundSubject      string            `json:"boundSubject"`
}

type patch struct {
	ConfigurationType *string            `json:"configurationType"`
	JwksURL           *string            `json:"jwksUrl"`
	JwksCACert        *string            `json:"jwksCaCert"`
	PublicKeys        *[]string          `json:"publicKeys"`
	BoundIssuer       *string            `json:"boundIssuer"`
	BoundAudiences    *string            `json:"boundAudiences"`
	BoundClaims       *map[string]string `json:"boundClaims"`
	BoundSubject      *string            `json:"boundSubject"`
}

// Limits of a configuration.
const (
	maxKeys   = 20
	maxClaims = 50
	maxText   = 16 << 10
)

// Configure validates an attach (old nil) or an update over old.
func Configure(ctx context.Context, env authmethod.Env, old, body json.RawMessage) (json.RawMessage, error) {
	c := Config{PublicKeys: []string{}, BoundClaims: map[string]string{}}
	if old != nil {
		if err := json.Unmarshal(old, &c); err != nil {
			return nil, errs.Internalf(err, "decode stored jwt-auth configuration")
		}
	}
	var p patch
	if err := json.Unmarshal(body, &p); err != nil {
		return nil, errs.BadRequest("Invalid JWT Auth configuration: %v", jsonProblem(err))
	}
	set := func(dst *string, v *string) {
		if v != nil {
			*dst = strings.TrimSpace(*v)
		}
	}
	set(&c.ConfigurationType, p.ConfigurationType)
	set(&c.JwksURL, p.JwksURL)
	set(&c.JwksCACert, p.JwksCACert)
	set(&c.BoundIssuer, p.BoundIssuer)
	set(&c.BoundSubject, p.BoundSubject)
	if p.BoundAudiences != nil {
		c.BoundAudiences = jwtcheck.JoinPolicy(*p.BoundAudiences)
	}
	if p.PublicKeys != nil {
		c.PublicKeys = *p.PublicKeys
	}
	if p.BoundClaims != nil {
		c.BoundClaims = map[string]string{}
		for k, v := range *p.BoundClaims {
			c.BoundClaims[strings.TrimSpace(k)] = jwtcheck.JoinPolicy(v)
		}
	}
	if err := c.validate(ctx, env); err != nil {
		return nil, err
	}
	return json.Marshal(c)
}

func jsonProblem(err error) string {
	if te, ok := err.(*json.UnmarshalTypeError); ok {
		return fmt.Sprintf("%s must be a %s", te.Field, te.Type)
	}
	return "malformed JSON"
}

func (c *Config) validate(ctx context.Context, env authmethod.Env) error {
	for _, s := range []struct{ name, v string }{{"jwksUrl", c.JwksURL}, {"jwksCaCert", c.JwksCACert},
		{"boundIssuer", c.BoundIssuer}, {"boundAudiences", c.BoundAudiences}, {"boundSubject", c.BoundSubject}} {
		if len(s.v) > maxText {
			return errs.Fieldf(s.name, "%s must be at most %d characters", s.name, maxText)
		}
	}
	if len(c.BoundClaims) > maxClaims {
		return errs.Fieldf("boundClaims", "boundClaims may hold at most %d claims", maxClaims)
	}
	for k, v := range c.BoundClaims {
		if k == "" || v == "" || len(k) > 256 || len(v) > maxText {
			return errs.Fieldf("boundClaims", "boundClaims needs non-empty claim names and values")
		}
	}
	switch c.ConfigurationType {
	case JWKS:
		if c.JwksURL == "" {
			return errs.Fieldf("jwksUrl", "jwksUrl is required with configurationType jwks")
		}
		if _, err := fetch.CheckURL(ctx, env, "jwksUrl", c.JwksURL); err != nil {
			return err
		}
		if _, err := fetch.ParseCA("jwksCaCert", c.JwksCACert); err != nil {
			return err
		}
		// A published key set (a CI service's, a cloud's) signs tokens for
		// everyone it serves: which of them may log in must be said.
		if !c.bounds().Narrows() {
			return errs.Fieldf("boundSubject", "boundSubject or boundClaims is required with configurationType jwks, and not only wildcards: "+
				"without one, every token the key set signs, for anyone, would log in (an audience does not do: the workload asks for it)")
		}
	case Static:
		if len(c.PublicKeys) == 0 {
			return errs.Fieldf("publicKeys", "publicKeys needs at least one key with configurationType static")
		}
		if len(c.PublicKeys) > maxKeys {
			return errs.Fieldf("publicKeys", "publicKeys may hold at most %d keys", maxKeys)
		}
		for i, k := range c.PublicKeys {
			if len(k) > maxText {
				return errs.Fieldf("publicKeys", "publicKeys[%d] is too long", i)
			}
			if _, err := jwtcheck.ParsePEMKey(k); err != nil {
				return errs.Fieldf("publicKeys", "publicKeys[%d] is not a usable PEM public key: %v", i, err)
			}
		}
	default:
		return errs.Fieldf("configurationType", "configurationType must be %q or %q", Static, JWKS)
	}
	return nil
}

// Method verifies tokens for one configuration.
type Method struct {
	env       authmethod.Env
	bounds    jwtcheck.Bounds
	keys      jwtcheck.KeyFunc
	unbounded bool // a key set's configuration without a subject or claim bound
}

// New builds the method of a stored configuration.
func New(env authmethod.Env, raw json.RawMessage) (authmethod.Method, error) {
	var c Config
	if err := json.Unmarshal(raw, &c); err != nil {
		return nil, fmt.Errorf("decode jwt-auth configuration: %w", err)
	}
	m := &Method{env: env, bounds: c.bounds()}
	switch c.ConfigurationType {
	case Static:
		var keys []crypto.PublicKey
		for _, s := range c.PublicKeys {
			k, err := jwtcheck.ParsePEMKey(s)
			if err != nil {
				return nil, fmt.Errorf("jwt-auth public key: %w", err)
			}
			keys = append(keys, k)
		}
		m.keys = func(context.Context, string) ([]crypto.PublicKey, error) { return keys, nil }
	case JWKS:
		m.unbounded = !m.bounds.Narrows()
		cl, err := fetch.NewClient(env, c.JwksCACert)
		if err != nil {
			return nil, err
		}
		kc := &jwtcheck.KeyCache{Now: env.Clock(), Fetch: func(ctx context.Context) (jwtcheck.JWKS, error) {
			var doc jwtcheck.JWKS
			err := cl.GetJSON(ctx, c.JwksURL, &doc)
			return doc, err
		}}
		m.keys = kc.Keys
	default:
		return nil, fmt.Errorf("jwt-auth: configuration type %q", c.ConfigurationType)
	}
	return m, nil
}

// bounds are the configuration's bounds.
func (c Config) bounds() jwtcheck.Bounds {
	return jwtcheck.NewBounds(c.BoundIssuer, c.BoundAudiences, c.BoundSubject, c.BoundClaims)
}

// Verify checks a JWT's signature, times and bounds.
func (m *Method) Verify(ctx context.Context, tok string) (authmethod.Verified, error) {
	if m.unbounded {
		return authmethod.Verified{}, jwtcheck.ErrUnbounded()
	}
	claims, err := jwtcheck.Parse(ctx, tok, m.keys, m.env.Clock()())
	if err != nil {
		return authmethod.Verified{}, err
	}
	return authmethod.Verified{}, m.bounds.Check(claims)
}
