// Package oidcauth is the OIDC Auth login method: a workload presents an ID
// token of an OpenID Connect issuer (a CI system, a cluster), verified with
// the keys the issuer's discovery document points to, and bounded by issuer,
// audiences, subject and claims; mapped claims are kept with the login.
package oidcauth

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"

	"github.com/lockbox-dev/lockbox/internal/authmethod"
	"github.com/lockbox-dev/lockbox/internal/authmethod/fetch"
	"github.com/lockbox-dev/lockbox/internal/authmethod/jwtcheck"
	"github.com/lockbox-dev/lockbox/internal/errs"
)

func init() {
	authmethod.Register(authmethod.Registration{Name: "oidc-auth", DisplayName: "OIDC Auth", WireKey: "identityOidcAuth",
		Configure: Configure, New: New})
}

// Config is a stored configuration, in Infisical's field names.
type Config struct {
	OIDCDiscoveryURL     string            `json:"oidcDiscoveryUrl"`
	CACert               string            `json:"caCert"`
	BoundIssuer          string            `json:"boundIssuer"`
	BoundAudiences       string            `json:"boundAudiences"`
	BoundClaims          map[string]string `json:"boundClaims"`
	ClaimMetadataMapping map[string]string `json:"claimMetadataMapping"`
	BoundSubject         string            `json:"boundSubject"`
}

type patch struct {
	OIDCDiscoveryURL     *string            `json:"oidcDiscoveryUrl"`
	CACert               *string            `json:"caCert"`
	BoundIssuer          *string            `json:"boundIssuer"`
	BoundAudiences       *string            `json:"boundAudiences"`
	BoundClaims          *map[string]string `json:"boundClaims"`
	ClaimMetadataMapping *map[string]string `json:"claimMetadataMapping"`
	BoundSubject         *string            `json:"boundSubject"`
}

const (
	maxClaims = 50
	maxText   = 16 << 10
)

// Configure validates an attach (old nil) or an update over old.
func Configure(ctx context.Context, env authmethod.Env, old, body json.RawMessage) (json.RawMessage, error) {
	c := Config{BoundClaims: map[string]string{}, ClaimMetadataMapping: map[string]string{}}
	if old != nil {
		if err := json.Unmarshal(old, &c); err != nil {
			return nil, errs.Internalf(err, "decode stored oidc-auth configuration")
		}
	}
	var p patch
	if err := json.Unmarshal(body, &p); err != nil {
		if te, ok := err.(*json.UnmarshalTypeError); ok {
			return nil, errs.Fieldf(te.Field, "%s must be a %s", te.Field, te.Type)
		}
		return nil, errs.BadRequest("Invalid OIDC Auth configuration")
	}
	for _, s := range []struct {
		dst *string
		v   *string
	}{{&c.OIDCDiscoveryURL, p.OIDCDiscoveryURL}, {&c.CACert, p.CACert}, {&c.BoundIssuer, p.BoundIssuer}, {&c.BoundSubject, p.BoundSubject}} {
		if s.v != nil {
			*s.dst = strings.TrimSpace(*s.v)
		}
	}
	if p.BoundAudiences != nil {
		c.BoundAudiences = jwtcheck.JoinPolicy(*p.BoundAudiences)
	}
	if p.BoundClaims != nil {
		c.BoundClaims = map[string]string{}
		for k, v := range *p.BoundClaims {
			c.BoundClaims[strings.TrimSpace(k)] = jwtcheck.JoinPolicy(v)
		}
	}
	if p.ClaimMetadataMapping != nil {
		c.ClaimMetadataMapping = map[string]string{}
		for k, v := range *p.ClaimMetadataMapping {
			c.ClaimMetadataMapping[strings.TrimSpace(k)] = strings.TrimSpace(v)
		}
	}
	if err := c.validate(ctx, env); err != nil {
		return nil, err
	}
	return json.Marshal(c)
}

func (c *Config) validate(ctx context.Context, env authmethod.Env) error {
	for _, s := range []struct{ name, v string }{{"oidcDiscoveryUrl", c.OIDCDiscoveryURL}, {"caCert", c.CACert},
		{"boundIssuer", c.BoundIssuer}, {"boundAudiences", c.BoundAudiences}, {"boundSubject", c.BoundSubject}} {
		if len(s.v) > maxText {
			return errs.Fieldf(s.name, "%s must be at most %d characters", s.name, maxText)
		}
	}
	if c.OIDCDiscoveryURL == "" {
		return errs.Fieldf("oidcDiscoveryUrl", "oidcDiscoveryUrl is required")
	}
	if c.BoundIssuer == "" {
		return errs.Fieldf("boundIssuer", "boundIssuer is required")
	}
	// An OpenID provider (a CI service, a cloud, a shared IdP) issues tokens
	// for everyone it serves: which of them may log in must be said.
	if !c.bounds().Narrows() {
		return errs.Fieldf("boundSubject", "boundSubject or boundClaims is required, and not only wildcards: "+
			"without one, every token the issuer signs, for anyone, would log in (an audience does not do: the workload asks for it)")
	}
	for name, m := range map[string]map[string]string{"boundClaims": c.BoundClaims, "claimMetadataMapping": c.ClaimMetadataMapping} {
		if len(m) > maxClaims {
			return errs.Fieldf(name, "%s may hold at most %d entries", name, maxClaims)
		}
		for k, v := range m {
			if k == "" || v == "" || len(k) > 256 || len(v) > maxText {
				return errs.Fieldf(name, "%s needs non-empty names and values", name)
			}
		}
	}
	if _, err := fetch.CheckURL(ctx, env, "oidcDiscoveryUrl", c.OIDCDiscoveryURL); err != nil {
		return err
	}
	_, err := fetch.ParseCA("caCert", c.CACert)
	return err
}

// Method verifies ID tokens for one configuration.
type Method struct {
	env       authmethod.Env
	bounds    jwtcheck.Bounds
	mapping   map[string]string
	keys      *jwtcheck.KeyCache
	unbounded bool // no subject or claim bound (saved before an audience stopped counting)
}

// bounds are the configuration's bounds.
func (c Config) bounds() jwtcheck.Bounds {
	return jwtcheck.NewBounds(c.BoundIssuer, c.BoundAudiences, c.BoundSubject, c.BoundClaims)
}

// discovery is the part of an OpenID Provider's metadata we read.
type discovery struct {
	Issuer  string `json:"issuer"`
	JWKSURI string `json:"jwks_uri"`
}

// New builds the method of a stored configuration.
func New(env authmethod.Env, raw json.RawMessage) (authmethod.Method, error) {
	var c Config
	if err := json.Unmarshal(raw, &c); err != nil {
		return nil, fmt.Errorf("decode oidc-auth configuration: %w", err)
	}
	cl, err := fetch.NewClient(env, c.CACert)
	if err != nil {
		return nil, err
	}
	b := c.bounds()
	m := &Method{env: env, mapping: c.ClaimMetadataMapping, bounds: b, unbounded: !b.Narrows()}
	discoveryURL := strings.TrimSuffix(c.OIDCDiscoveryURL, "/") + "/.well-known/openid-configuration"
	// Each key refresh reads the discovery document again, so an issuer
	// that moves its keys is followed.
	m.keys = &jwtcheck.KeyCache{Now: env.Clock(), Fetch: func(ctx context.Context) (jwtcheck.JWKS, error) {
		var d discovery
		if err := cl.GetJSON(ctx, discoveryURL, &d); err != nil {
			return jwtcheck.JWKS{}, err
		}
		u, err := url.Parse(d.JWKSURI)
		if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
			return jwtcheck.JWKS{}, fmt.Errorf("discovery document of %s has no usable jwks_uri", c.OIDCDiscoveryURL)
		}
		// The key set is fetched under the same policy and CA; an https
		// issuer may not send us to plain http.
		if strings.HasPrefix(discoveryURL, "https:") && u.Scheme != "https" {
			return jwtcheck.JWKS{}, fmt.Errorf("discovery document of %s names a non-https jwks_uri", c.OIDCDiscoveryURL)
		}
		var doc jwtcheck.JWKS
		err = cl.GetJSON(ctx, u.String(), &doc)
		return doc, err
	}}
	return m, nil
}

// Verify checks an ID token's signature, times and bounds, and maps its claims.
func (m *Method) Verify(ctx context.Context, tok string) (authmethod.Verified, error) {
	if m.unbounded {
		return authmethod.Verified{}, jwtcheck.ErrUnbounded()
	}
	claims, err := jwtcheck.Parse(ctx, tok, m.keys.Keys, m.env.Clock()())
	if err != nil {
		return authmethod.Verified{}, err
	}
	if err := m.bounds.Check(claims); err != nil {
		return authmethod.Verified{}, err
	}
	md, err := jwtcheck.MetadataFrom(claims, m.mapping)
	return authmethod.Verified{Metadata: md}, err
}
