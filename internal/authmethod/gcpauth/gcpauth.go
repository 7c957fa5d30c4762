// Package gcpauth is the GCP Auth login method: a workload presents either a
// Compute Engine instance's ID token signed by Google ("gce") or a JWT signed
// with a service account's Google-managed key ("iam"), whose audience is the
// identity's id, bounded by service accounts, projects and zones.
package gcpauth

import (
	"context"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/big"
	"net/url"
	"slices"
	"sort"
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
	authmethod.Register(authmethod.Registration{Name: "gcp-auth", DisplayName: "GCP Auth", WireKey: "identityGcpAuth",
		Configure: Configure, New: New})
}

// Types of configuration.
const (
	GCE = "gce" // an instance's ID token, signed by Google
	IAM = "iam" // a JWT signed by the service account's key (iamcredentials signJwt)
)

// Google's public endpoints, used when a configuration names none.
const (
	// DefaultCertsURL serves Google's OAuth2 signing certificates, {kid: PEM}.
	DefaultCertsURL = "https://www.googleapis.com/oauth2/v1/certs"
	// DefaultServiceAccountCertsURL, followed by a service account's email,
	// serves that account's public certificates, {kid: PEM}.
	DefaultServiceAccountCertsURL = "https://www.googleapis.com/service_accounts/v1/metadata/x509/"
	// Issuer is the issuer of Google's ID tokens.
	Issuer = "https://accounts.google.com"
)

// Config is a stored configuration: Infisical's fields (type,
// allowedServiceAccounts, allowedProjects, allowedZones) and lockbox's key
// endpoints for air-gapped and sovereign deployments (empty: Google's).
type Config struct {
	Type                   string `json:"type"`
	AllowedServiceAccounts string `json:"allowedServiceAccounts"`
	AllowedProjects        string `json:"allowedProjects"`
	AllowedZones           string `json:"allowedZones"`
	CertsURL               string `json:"certsUrl"`
	ServiceAccountCertsURL string `json:"serviceAccountCertsUrl"`
	CACert                 string `json:"caCert"`
}

type patch struct {
	Type                   *string `json:"type"`
	AllowedServiceAccounts *string `json:"allowedServiceAccounts"`
	AllowedProjects        *string `json:"allowedProjects"`
	AllowedZones           *string `json:"allowedZones"`
	CertsURL               *string `json:"certsUrl"`
	ServiceAccountCertsURL *string `json:"serviceAccountCertsUrl"`
	CACert                 *string `json:"caCert"`
}

const maxText = 16 << 10

// Configure validates an attach (old nil) or an update over old.
func Configure(ctx context.Context, env authmethod.Env, old, body json.RawMessage) (json.RawMessage, error) {
	var c Config
	if old != nil {
		if err := json.Unmarshal(old, &c); err != nil {
			return nil, errs.Internalf(err, "decode stored gcp-auth configuration")
		}
	}
	var p patch
	if err := json.Unmarshal(body, &p); err != nil {
		if te, ok := err.(*json.UnmarshalTypeError); ok {
			return nil, errs.Fieldf(te.Field, "%s must be a %s", te.Field, te.Type)
		}
		return nil, errs.BadRequest("Invalid GCP Auth configuration")
	}
	for _, s := range []struct {
		dst *string
		v   *string
	}{{&c.Type, p.Type}, {&c.CertsURL, p.CertsURL}, {&c.ServiceAccountCertsURL, p.ServiceAccountCertsURL}, {&c.CACert, p.CACert}} {
		if s.v != nil {
			*s.dst = strings.TrimSpace(*s.v)
		}
	}
	for _, s := range []struct {
		dst *string
		v   *string
	}{{&c.AllowedServiceAccounts, p.AllowedServiceAccounts}, {&c.AllowedProjects, p.AllowedProjects}, {&c.AllowedZones, p.AllowedZones}} {
		if s.v != nil {
			*s.dst = jwtcheck.JoinPolicy(*s.v)
		}
	}
	if err := c.validate(ctx, env); err != nil {
		return nil, err
	}
	return json.Marshal(c)
}

func (c *Config) validate(ctx context.Context, env authmethod.Env) error {
	for _, s := range []struct{ name, v string }{{"allowedServiceAccounts", c.AllowedServiceAccounts},
		{"allowedProjects", c.AllowedProjects}, {"allowedZones", c.AllowedZones}, {"certsUrl", c.CertsURL},
		{"serviceAccountCertsUrl", c.ServiceAccountCertsURL}, {"caCert", c.CACert}} {
		if len(s.v) > maxText {
			return errs.Fieldf(s.name, "%s must be at most %d characters", s.name, maxText)
		}
	}
	if c.Type != GCE && c.Type != IAM {
		return errs.Fieldf("type", "type must be one of gce, iam")
	}
	// An IAM token says nothing of a zone: a zone bound there could never
	// be checked, and an ignored bound is worse than a refused one.
	if c.Type == IAM && c.AllowedZones != "" {
		return errs.Fieldf("allowedZones", "allowedZones applies to type gce only")
	}
	for _, u := range []struct{ name, v string }{{"certsUrl", c.CertsURL}, {"serviceAccountCertsUrl", c.ServiceAccountCertsURL}} {
		if u.v == "" {
			continue
		}
		if _, err := fetch.CheckURL(ctx, env, u.name, u.v); err != nil {
			return err
		}
	}
	if _, err := fetch.ParseCA("caCert", c.CACert); err != nil {
		return err
	}
	// Google signs an ID token for any VM that asks, with any audience, and
	// any service account can sign its own JWT: with neither bound, anyone on
	// Google Cloud who knows the identity's id could log in as it (Infisical
	// allows that configuration; lockbox does not).
	if c.AllowedServiceAccounts == "" && c.AllowedProjects == "" {
		return errs.Fieldf("allowedServiceAccounts", "allowedServiceAccounts or allowedProjects is required: without either, any Google Cloud workload could log in")
	}
	return nil
}

// serviceAccountEmail is what an iam token's subject must look like before
// it goes into a key URL: a Google service account's email.
var serviceAccountEmail = lazyre.New(`^[a-z0-9-]+@[a-z0-9-]+(\.[a-z0-9-]+)*\.gserviceaccount\.com$`)

// Method verifies GCP tokens for one configuration.
type Method struct {
	env      authmethod.Env
	cfg      Config
	accounts []string
	projects []string
	zones    []string
	cl       *fetch.Client
	gce      *jwtcheck.KeyCache // Google's signing keys

	mu  sync.Mutex
	iam map[string]*jwtcheck.KeyCache // by service account email
}

// maxAccounts bounds the service accounts whose keys one method caches.
const maxAccounts = 1000

// New builds the method of a stored configuration.
func New(env authmethod.Env, raw json.RawMessage) (authmethod.Method, error) {
	var c Config
	if err := json.Unmarshal(raw, &c); err != nil {
		return nil, fmt.Errorf("decode gcp-auth configuration: %w", err)
	}
	cl, err := fetch.NewClient(env, c.CACert)
	if err != nil {
		return nil, err
	}
	if c.CertsURL == "" {
		c.CertsURL = DefaultCertsURL
	}
	if c.ServiceAccountCertsURL == "" {
		c.ServiceAccountCertsURL = DefaultServiceAccountCertsURL
	}
	m := &Method{env: env, cfg: c, cl: cl, iam: map[string]*jwtcheck.KeyCache{},
		accounts: jwtcheck.SplitPolicy(c.AllowedServiceAccounts),
		projects: jwtcheck.SplitPolicy(c.AllowedProjects), zones: jwtcheck.SplitPolicy(c.AllowedZones)}
	m.gce = m.cache(c.CertsURL)
	return m, nil
}

// cache returns a key cache of the {kid: PEM certificate} document at u.
func (m *Method) cache(u string) *jwtcheck.KeyCache {
	return &jwtcheck.KeyCache{Now: m.env.Clock(), Fetch: func(ctx context.Context) (jwtcheck.JWKS, error) {
		var doc map[string]string
		if err := m.cl.GetJSON(ctx, u, &doc); err != nil {
			return jwtcheck.JWKS{}, err
		}
		return pemSet(doc), nil
	}}
}

// pemSet turns Google's {kid: PEM certificate} into a key set of its RSA keys.
func pemSet(doc map[string]string) jwtcheck.JWKS {
	kids := make([]string, 0, len(doc))
	for kid := range doc {
		kids = append(kids, kid)
	}
	sort.Strings(kids)
	var set jwtcheck.JWKS
	for _, kid := range kids {
		if len(set.Keys) == jwtcheck.MaxKeys {
			break
		}
		k, err := jwtcheck.ParsePEMKey(doc[kid])
		if err != nil {
			continue
		}
		if rk, ok := k.(*rsa.PublicKey); ok {
			set.Keys = append(set.Keys, rsaJWK(kid, rk))
		}
	}
	return set
}

func rsaJWK(kid string, k *rsa.PublicKey) jwtcheck.JWK {
	enc := base64.RawURLEncoding.EncodeToString
	return jwtcheck.JWK{Kty: "RSA", Kid: kid, Use: "sig", N: enc(k.N.Bytes()), E: enc(big.NewInt(int64(k.E)).Bytes())}
}

// accountKeys returns the key cache of a service account's certificates.
func (m *Method) accountKeys(email string) *jwtcheck.KeyCache {
	m.mu.Lock()
	defer m.mu.Unlock()
	if c, ok := m.iam[email]; ok {
		return c
	}
	if len(m.iam) >= maxAccounts {
		clear(m.iam)
	}
	c := m.cache(m.cfg.ServiceAccountCertsURL + url.PathEscape(email))
	m.iam[email] = c
	return c
}

// Verify checks a token with no identity to compare its audience with, so
// it is always refused; logins go through VerifyRequest.
func (m *Method) Verify(ctx context.Context, tok string) (authmethod.Verified, error) {
	return m.VerifyRequest(ctx, authmethod.Credential{Token: tok})
}

// VerifyRequest checks the login's token: its signature by Google (gce) or
// by the service account's key (iam), its times, that its audience is the
// identity logging in, and the configuration's bounds.
func (m *Method) VerifyRequest(ctx context.Context, c authmethod.Credential) (authmethod.Verified, error) {
	var body struct {
		IdentityID string `json:"identityId"`
	}
	if len(c.Body) > 0 {
		if err := json.Unmarshal(c.Body, &body); err != nil {
			return authmethod.Verified{}, authmethod.Refuse("audience", "Access denied: the login names no identity")
		}
	}
	var err error
	if m.cfg.Type == IAM {
		err = m.verifyIAM(ctx, c.Token, body.IdentityID)
	} else {
		err = m.verifyGCE(ctx, c.Token, body.IdentityID)
	}
	return authmethod.Verified{}, err
}

func (m *Method) verifyGCE(ctx context.Context, tok, identityID string) error {
	claims, err := jwtcheck.Parse(ctx, tok, m.gce.Keys, m.env.Clock()())
	if err != nil {
		return err
	}
	if err := checkCommon(claims, identityID); err != nil {
		return err
	}
	if iss, _ := claims["iss"].(string); iss != Issuer {
		return authmethod.Refuse("issuer", "Access denied: the token's issuer is not %s", Issuer)
	}
	email, _ := claims["email"].(string)
	if email == "" {
		return authmethod.Refuse("service-account", "Access denied: the token has no service account email")
	}
	if len(m.accounts) > 0 && !slices.Contains(m.accounts, email) {
		return authmethod.Refuse("service-account", "Access denied: GCP service account not allowed")
	}
	if len(m.projects) == 0 && len(m.zones) == 0 {
		return nil
	}
	// Project and zone are in a "full" format token only; without them a
	// bound cannot be checked, so the login is refused (Infisical lets it
	// through).
	ce, _ := jwtcheck.Lookup(claims, "google.compute_engine").(map[string]any)
	if len(m.projects) > 0 {
		p, _ := ce["project_id"].(string)
		if p == "" {
			return authmethod.Refuse("project", "Access denied: the token has no Compute Engine project (request it with format=full)")
		}
		if !slices.Contains(m.projects, p) {
			return authmethod.Refuse("project", "Access denied: GCP project not allowed")
		}
	}
	if len(m.zones) > 0 {
		z, _ := ce["zone"].(string)
		if z == "" {
			return authmethod.Refuse("zone", "Access denied: the token has no Compute Engine zone (request it with format=full)")
		}
		if !slices.Contains(m.zones, z) {
			return authmethod.Refuse("zone", "Access denied: GCP zone not allowed")
		}
	}
	return nil
}

func (m *Method) verifyIAM(ctx context.Context, tok, identityID string) error {
	if len(tok) > jwtcheck.MaxTokenBytes {
		return authmethod.Refuse("token", "Access denied: the token is larger than %d bytes", jwtcheck.MaxTokenBytes)
	}
	// The subject names the account whose keys sign the token; it is read
	// unverified only to choose those keys, and bounded first, so a token
	// for an account outside the bound makes the server fetch nothing.
	var unverified jwt.MapClaims
	if _, _, err := jwt.NewParser().ParseUnverified(tok, &unverified); err != nil {
		return authmethod.Refuse("token", "Access denied: the token is not a valid JWT")
	}
	email, _ := unverified["sub"].(string)
	if !serviceAccountEmail().MatchString(email) {
		return authmethod.Refuse("service-account", "Access denied: the token's subject is not a service account email")
	}
	if err := m.checkAccount(email); err != nil {
		return err
	}
	keys := m.accountKeys(email)
	claims, err := jwtcheck.Parse(ctx, tok, keys.Keys, m.env.Clock()())
	if err != nil {
		return err
	}
	if sub, _ := claims["sub"].(string); sub != email {
		return authmethod.Refuse("service-account", "Access denied: the token's subject is not a service account email")
	}
	return checkCommon(claims, identityID)
}

// checkAccount holds an iam token's account to the bounds: the allowed
// accounts, and the allowed projects by the project its email names
// (name@project.iam.gserviceaccount.com).
func (m *Method) checkAccount(email string) error {
	if len(m.accounts) > 0 && !slices.Contains(m.accounts, email) {
		return authmethod.Refuse("service-account", "Access denied: GCP service account not allowed")
	}
	if len(m.projects) > 0 {
		_, domain, _ := strings.Cut(email, "@")
		project, ok := strings.CutSuffix(domain, ".iam.gserviceaccount.com")
		if !ok || !slices.Contains(m.projects, project) {
			return authmethod.Refuse("project", "Access denied: GCP project not allowed")
		}
	}
	return nil
}

// checkCommon requires an expiry (signJwt always sets one; a token without
// would be good forever) and the identity's id as the audience.
func checkCommon(claims jwt.MapClaims, identityID string) error {
	if _, ok := claims["exp"]; !ok {
		return authmethod.Refuse("expiry", "Access denied: the token has no expiry")
	}
	if identityID == "" || !hasAudience(claims, identityID) {
		return authmethod.Refuse("audience", "Access denied: the token's audience is not this identity")
	}
	return nil
}

// hasAudience reports whether aud (a string or an array) holds want exactly.
func hasAudience(claims jwt.MapClaims, want string) bool {
	switch aud := claims["aud"].(type) {
	case string:
		return aud == want
	case []any:
		for _, a := range aud {
			if s, _ := a.(string); s == want {
				return true
			}
		}
	}
	return false
}

var (
	_ authmethod.Method          = (*Method)(nil)
	_ authmethod.RequestVerifier = (*Method)(nil)
)
