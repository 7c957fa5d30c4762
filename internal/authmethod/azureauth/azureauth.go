// Package azureauth is the Azure Auth login method: a workload presents an
// access token Microsoft Entra ID issued to its managed identity (or service
// principal) for a configured resource, verified with the tenant's published
// keys and bounded by tenant and service principal ids.
package azureauth

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"sync"

	"github.com/golang-jwt/jwt/v5"

	"github.com/lockbox-dev/lockbox/internal/authmethod"
	"github.com/lockbox-dev/lockbox/internal/authmethod/fetch"
	"github.com/lockbox-dev/lockbox/internal/authmethod/jwtcheck"
	"github.com/lockbox-dev/lockbox/internal/errs"
	"github.com/lockbox-dev/lockbox/internal/lazyre"
)

func init() {
	authmethod.Register(authmethod.Registration{Name: "azure-auth", DisplayName: "Azure Auth", WireKey: "identityAzureAuth",
		Configure: Configure, New: New})
}

// DefaultAuthorityHost is Entra ID's public-cloud authority; the tenant's
// OpenID configuration is <authorityHost>/<tenantId>/.well-known/openid-configuration.
const DefaultAuthorityHost = "https://login.microsoftonline.com"

// Config is a stored configuration: Infisical's fields (tenantId, resource,
// allowedServicePrincipalIds) and lockbox's authority for sovereign and
// air-gapped clouds (empty: Entra ID's public cloud).
type Config struct {
	TenantID                   string `json:"tenantId"`
	Resource                   string `json:"resource"`
	AllowedServicePrincipalIDs string `json:"allowedServicePrincipalIds"`
	AuthorityHost              string `json:"authorityHost"`
	CACert                     string `json:"caCert"`
}

type patch struct {
	TenantID                   *string `json:"tenantId"`
	Resource                   *string `json:"resource"`
	AllowedServicePrincipalIDs *string `json:"allowedServicePrincipalIds"`
	AuthorityHost              *string `json:"authorityHost"`
	CACert                     *string `json:"caCert"`
}

const maxText = 16 << 10

// tenantID is a tenant's id (a GUID) or one of its domain names: it goes
// into the discovery URL's path.
var tenantID = lazyre.New(`^[A-Za-z0-9][A-Za-z0-9.-]{0,252}$`)

// Configure validates an attach (old nil) or an update over old.
func Configure(ctx context.Context, env authmethod.Env, old, body json.RawMessage) (json.RawMessage, error) {
	var c Config
	if old != nil {
		if err := json.Unmarshal(old, &c); err != nil {
			return nil, errs.Internalf(err, "decode stored azure-auth configuration")
		}
	}
	var p patch
	if err := json.Unmarshal(body, &p); err != nil {
		if te, ok := err.(*json.UnmarshalTypeError); ok {
			return nil, errs.Fieldf(te.Field, "%s must be a %s", te.Field, te.Type)
		}
		return nil, errs.BadRequest("Invalid Azure Auth configuration")
	}
	for _, s := range []struct {
		dst *string
		v   *string
	}{{&c.TenantID, p.TenantID}, {&c.Resource, p.Resource}, {&c.AuthorityHost, p.AuthorityHost}, {&c.CACert, p.CACert}} {
		if s.v != nil {
			*s.dst = strings.TrimSpace(*s.v)
		}
	}
	if p.AllowedServicePrincipalIDs != nil {
		c.AllowedServicePrincipalIDs = jwtcheck.JoinPolicy(*p.AllowedServicePrincipalIDs)
	}
	c.AuthorityHost = strings.TrimSuffix(c.AuthorityHost, "/")
	if err := c.validate(ctx, env); err != nil {
		return nil, err
	}
	return json.Marshal(c)
}

func (c *Config) validate(ctx context.Context, env authmethod.Env) error {
	for _, s := range []struct{ name, v string }{{"tenantId", c.TenantID}, {"resource", c.Resource},
		{"allowedServicePrincipalIds", c.AllowedServicePrincipalIDs}, {"authorityHost", c.AuthorityHost}, {"caCert", c.CACert}} {
		if len(s.v) > maxText {
			return errs.Fieldf(s.name, "%s must be at most %d characters", s.name, maxText)
		}
	}
	if !tenantID().MatchString(c.TenantID) {
		return errs.Fieldf("tenantId", "tenantId must be a tenant id or domain name")
	}
	if c.Resource == "" {
		return errs.Fieldf("resource", "resource is required")
	}
	if c.AuthorityHost != "" {
		if _, err := fetch.CheckURL(ctx, env, "authorityHost", c.AuthorityHost); err != nil {
			return err
		}
	}
	_, err := fetch.ParseCA("caCert", c.CACert)
	return err
}

// Method verifies Entra ID tokens for one configuration.
type Method struct {
	env        authmethod.Env
	cfg        Config
	principals []string
	keys       *jwtcheck.KeyCache

	mu     sync.Mutex
	issuer string // from the tenant's OpenID configuration, with the keys
}

// discovery is the part of the tenant's OpenID configuration we read.
type discovery struct {
	Issuer  string `json:"issuer"`
	JWKSURI string `json:"jwks_uri"`
}

// New builds the method of a stored configuration.
func New(env authmethod.Env, raw json.RawMessage) (authmethod.Method, error) {
	var c Config
	if err := json.Unmarshal(raw, &c); err != nil {
		return nil, fmt.Errorf("decode azure-auth configuration: %w", err)
	}
	cl, err := fetch.NewClient(env, c.CACert)
	if err != nil {
		return nil, err
	}
	authority := c.AuthorityHost
	if authority == "" {
		authority = DefaultAuthorityHost
	}
	m := &Method{env: env, cfg: c, principals: jwtcheck.SplitPolicy(c.AllowedServicePrincipalIDs)}
	discoveryURL := authority + "/" + url.PathEscape(c.TenantID) + "/.well-known/openid-configuration"
	// The tenant's (v1) OpenID configuration names its issuer
	// (https://sts.windows.net/<tenant>/ in the public cloud, another host
	// in sovereign clouds) and its keys; both are read again on each refresh.
	m.keys = &jwtcheck.KeyCache{Now: env.Clock(), Fetch: func(ctx context.Context) (jwtcheck.JWKS, error) {
		var d discovery
		if err := cl.GetJSON(ctx, discoveryURL, &d); err != nil {
			return jwtcheck.JWKS{}, err
		}
		iss := strings.ReplaceAll(d.Issuer, "{tenantid}", c.TenantID)
		if iss == "" || !strings.Contains(iss, c.TenantID) {
			return jwtcheck.JWKS{}, fmt.Errorf("the OpenID configuration of tenant %s names no issuer of the tenant", c.TenantID)
		}
		u, err := url.Parse(d.JWKSURI)
		if err != nil || u.Host == "" || u.Scheme != "https" && u.Scheme != "http" ||
			strings.HasPrefix(discoveryURL, "https:") && u.Scheme != "https" {
			return jwtcheck.JWKS{}, fmt.Errorf("the OpenID configuration of tenant %s has no usable jwks_uri", c.TenantID)
		}
		var doc jwtcheck.JWKS
		if err := cl.GetJSON(ctx, u.String(), &doc); err != nil {
			return jwtcheck.JWKS{}, err
		}
		m.mu.Lock()
		m.issuer = iss
		m.mu.Unlock()
		return doc, nil
	}}
	return m, nil
}

// Verify checks an access token's signature, times, issuer, audience,
// tenant and service principal.
func (m *Method) Verify(ctx context.Context, tok string) (authmethod.Verified, error) {
	claims, err := jwtcheck.Parse(ctx, tok, m.keys.Keys, m.env.Clock()())
	if err != nil {
		return authmethod.Verified{}, err
	}
	return authmethod.Verified{}, m.check(claims)
}

func (m *Method) check(claims jwt.MapClaims) error {
	if _, ok := claims["exp"]; !ok {
		return authmethod.Refuse("expiry", "Access denied: the token has no expiry")
	}
	m.mu.Lock()
	want := m.issuer
	m.mu.Unlock()
	if iss, _ := claims["iss"].(string); want == "" || iss != want {
		return authmethod.Refuse("issuer", "Access denied: the token's issuer is not the tenant's")
	}
	if !audienceMatches(claims["aud"], m.cfg.Resource) {
		return authmethod.Refuse("audience", "Access denied: the token's audience is not the configured resource")
	}
	if tid, _ := claims["tid"].(string); !strings.EqualFold(tid, m.cfg.TenantID) {
		return authmethod.Refuse("tenant", "Access denied: tenant ID mismatch")
	}
	oid, _ := claims["oid"].(string)
	if oid == "" {
		return authmethod.Refuse("service-principal", "Access denied: the token has no service principal id (oid)")
	}
	if len(m.principals) > 0 && !slices.Contains(m.principals, oid) {
		return authmethod.Refuse("service-principal", "Access denied: service principal not allowed")
	}
	return nil
}

// audienceMatches reports whether aud (a string or an array) is resource
// exactly, or resource without its trailing slash: a token asked for with a
// custom resource carries an audience without one.
func audienceMatches(aud any, resource string) bool {
	ok := func(a string) bool { return a != "" && (a == resource || a == strings.TrimSuffix(resource, "/")) }
	switch aud := aud.(type) {
	case string:
		return ok(aud)
	case []any:
		for _, a := range aud {
			if s, _ := a.(string); ok(s) {
				return true
			}
		}
	}
	return false
}

var _ authmethod.Method = (*Method)(nil)
