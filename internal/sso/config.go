package sso

import (
	"context"
	"net/url"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/lockbox-dev/lockbox/internal/audit"
	"github.com/lockbox-dev/lockbox/internal/authmethod"
	"github.com/lockbox-dev/lockbox/internal/authmethod/fetch"
	"github.com/lockbox-dev/lockbox/internal/authz"
	"github.com/lockbox-dev/lockbox/internal/errs"
	"github.com/lockbox-dev/lockbox/internal/identity"
	"github.com/lockbox-dev/lockbox/internal/keyring"
	"github.com/lockbox-dev/lockbox/internal/project"
)

// Configuration types, as Infisical names them.
const (
	TypeDiscovery = "discoveryURL" // endpoints read from the issuer's discovery document
	TypeCustom    = "custom"       // endpoints given one by one
)

// Config is an organization's OpenID Connect configuration.
type Config struct {
	ID, OrgID             string
	ConfigurationType     string
	DiscoveryURL          string
	Issuer                string
	AuthorizationEndpoint string
	TokenEndpoint         string
	JwksURI               string
	UserinfoEndpoint      string
	ClientID              string
	ClientSecret          []byte // sealed; never leaves the service
	AllowedEmailDomains   string // "a.example, b.example"; empty: any
	DefaultRole           string // organization role slug of users created on first login
	IsActive              bool
	// ManageGroupMemberships makes a user's groups follow the provider's
	// groups claim at every sign-in; the groups then take no manual change
	// of their users.
	ManageGroupMemberships bool
	CreatedAt, UpdatedAt   time.Time
}

// LoginState is a login in flight, stored under the keyed hash of its state.
type LoginState struct {
	StateHash, OrgID, Nonce, CodeVerifier, Next string
	ExpiresAt                                   time.Time
}

// Store is the storage SSO needs.
type Store interface {
	OrgIDBySlug(ctx context.Context, slug string) (string, error)
	OrgSlug(ctx context.Context, orgID string) (string, error)
	OIDCConfig(ctx context.Context, orgID string) (Config, error)
	// CreateOIDCConfig stores c; errs.Conflict when the organization has one.
	CreateOIDCConfig(ctx context.Context, c Config, ev audit.Event) error
	// UpdateOIDCConfig writes c if it is still as read at prev:
	// project.ErrStale otherwise.
	UpdateOIDCConfig(ctx context.Context, c Config, prev time.Time, ev audit.Event) error
	CustomOrgRoleID(ctx context.Context, orgID, slug string) (string, error)
	// PutOIDCLoginState stores a login in flight and prunes expired ones.
	PutOIDCLoginState(ctx context.Context, s LoginState, now time.Time) error
	// TakeOIDCLoginState deletes and returns the login of a state hash;
	// errs.NotFound when there is none (never issued, used, or expired at now).
	TakeOIDCLoginState(ctx context.Context, stateHash string, now time.Time) (LoginState, error)
	// ProvisionSSOUser returns the user with u.Email, creating it when there
	// is none, and makes it an accepted member of orgID with role (or
	// "custom" and customRoleID) unless it is a member already (an
	// invitation is accepted). created reports a new user; errs.Forbidden
	// when its membership is deactivated.
	ProvisionSSOUser(ctx context.Context, orgID string, u identity.User, role, customRoleID string, ev audit.Event) (identity.User, bool, error)
	AppendAudit(ctx context.Context, ev audit.Event) error
}

// Authorizer resolves what an actor may do in its organization.
type Authorizer interface {
	OrgPermissions(ctx context.Context, actor authz.Actor) (authz.Set, error)
	OrgRoleSet(ctx context.Context, actor authz.Actor, role string) (authz.Set, error)
}

// Service manages SSO configurations and logins.
type Service struct {
	store Store
	authz Authorizer
	keys  *keyring.Keyring
	env   authmethod.Env
	now   func() time.Time
	state identity.KeyedHash
	// Groups maps a groups claim to the organization's groups when the
	// configuration asks for it (org.Groups).
	Groups GroupSyncer
}

// GroupSyncer puts a user in exactly the organization's groups named.
type GroupSyncer interface {
	SyncUserGroups(ctx context.Context, actor authz.Actor, orgID, userID string, names []string) error
}

// New returns the SSO service; env bounds the requests to identity
// providers as it bounds login methods' (target policy, no loopback
// outside tests); now nil means time.Now.
func New(st Store, az Authorizer, kr *keyring.Keyring, env authmethod.Env, now func() time.Time) *Service {
	if now == nil {
		now = time.Now
	}
	return &Service{store: st, authz: az, keys: kr, env: env, now: now, state: identity.KeyedHash{Purpose: "oidc-sso-state"}}
}

func secretAD(id string) string { return keyring.AD("oidc_configs", "client_secret", id) }

// ConfigChange is a create (all fields) or an update (nil: unchanged).
type ConfigChange struct {
	OrgSlug                string
	ConfigurationType      *string
	DiscoveryURL           *string
	Issuer                 *string
	AuthorizationEndpoint  *string
	TokenEndpoint          *string
	JwksURI                *string
	UserinfoEndpoint       *string
	ClientID               *string
	ClientSecret           *string
	AllowedEmailDomains    *string
	DefaultRole            *string
	IsActive               *bool
	ManageGroupMemberships *bool
}

// orgOf checks action on SSO in the actor's organization, which orgSlug
// must name.
func (s *Service) orgOf(ctx context.Context, actor authz.Actor, orgSlug, action string) error {
	perms, err := s.authz.OrgPermissions(ctx, actor)
	if err != nil {
		return err
	}
	if err := perms.Check(action, authz.SubSSO, nil); err != nil {
		return err
	}
	if action != authz.ActRead {
		// Whoever sets up SSO decides who signs in as which member, so it
		// takes everything the organization's admin holds.
		admin, err := s.authz.OrgRoleSet(ctx, actor, "admin")
		if err != nil {
			return err
		}
		if !perms.Covers(admin) {
			return errs.Forbiddenf("Configuring SSO needs the permissions of an organization admin")
		}
	}
	if orgSlug == "" {
		return errs.Fieldf("orgSlug", "orgSlug is required")
	}
	slug, err := s.store.OrgSlug(ctx, actor.OrgID)
	if err != nil {
		return err
	}
	if slug != orgSlug {
		return errs.Forbiddenf("You can only configure SSO of your own organization")
	}
	return nil
}

// Get returns the configuration of the actor's organization.
func (s *Service) Get(ctx context.Context, actor authz.Actor, orgSlug string) (Config, error) {
	if err := s.orgOf(ctx, actor, orgSlug, authz.ActRead); err != nil {
		return Config{}, err
	}
	c, err := s.store.OIDCConfig(ctx, actor.OrgID)
	if errs.Is(err, errs.NotFound) {
		return Config{}, errs.NotFoundf("Failed to find organization OIDC configuration")
	}
	return c, err
}

// Create configures SSO for the actor's organization.
func (s *Service) Create(ctx context.Context, actor authz.Actor, ch ConfigChange) (Config, error) {
	if err := s.orgOf(ctx, actor, ch.OrgSlug, authz.ActCreate); err != nil {
		return Config{}, err
	}
	now := s.now().UTC().Truncate(time.Microsecond)
	c := Config{ID: uuid.Must(uuid.NewV7()).String(), OrgID: actor.OrgID, ConfigurationType: TypeDiscovery, DefaultRole: "member",
		CreatedAt: now, UpdatedAt: now}
	if ch.ClientSecret == nil || strings.TrimSpace(*ch.ClientSecret) == "" {
		return Config{}, errs.Fieldf("clientSecret", "clientSecret is required")
	}
	if err := s.apply(ctx, actor, &c, ch); err != nil {
		return Config{}, err
	}
	ev := audit.New(actor, "create-oidc-config", c.auditMeta())
	if err := s.store.CreateOIDCConfig(ctx, c, ev); err != nil {
		if errs.Is(err, errs.Conflict) {
			return Config{}, errs.BadRequest("This organization already has an OIDC configuration; update it instead")
		}
		return Config{}, err
	}
	return c, nil
}

// Update changes the configuration of the actor's organization. A change
// that commits first is read again, not undone.
func (s *Service) Update(ctx context.Context, actor authz.Actor, ch ConfigChange) (Config, error) {
	if err := s.orgOf(ctx, actor, ch.OrgSlug, authz.ActEdit); err != nil {
		return Config{}, err
	}
	return project.RetryStale(ctx, "OIDC configuration", func() (Config, error) {
		c, err := s.store.OIDCConfig(ctx, actor.OrgID)
		if errs.Is(err, errs.NotFound) {
			return Config{}, errs.NotFoundf("Failed to find organization OIDC configuration")
		}
		if err != nil {
			return Config{}, err
		}
		if err := s.apply(ctx, actor, &c, ch); err != nil {
			return Config{}, err
		}
		prev := c.UpdatedAt
		c.UpdatedAt = project.NextStamp(s.now(), prev)
		ev := audit.New(actor, "update-oidc-config", c.auditMeta())
		return c, s.store.UpdateOIDCConfig(ctx, c, prev, ev)
	})
}

func (c Config) auditMeta() map[string]any {
	return map[string]any{"configurationType": c.ConfigurationType, "issuer": c.Issuer, "discoveryURL": c.DiscoveryURL,
		"clientId": c.ClientID, "allowedEmailDomains": c.AllowedEmailDomains, "defaultMembershipRole": c.DefaultRole, "isActive": c.IsActive,
		"manageGroupMemberships": c.ManageGroupMemberships}
}

const maxField = 2048

// apply validates ch over c and seals a new client secret.
func (s *Service) apply(ctx context.Context, actor authz.Actor, c *Config, ch ConfigChange) error {
	set := func(dst *string, v *string) {
		if v != nil {
			*dst = strings.TrimSpace(*v)
		}
	}
	// Where the client secret is sent: the token endpoint, given or found
	// through discovery.
	sentTo := func() [3]string { return [3]string{c.ConfigurationType, c.DiscoveryURL, c.TokenEndpoint} }
	hadSecret, before := len(c.ClientSecret) > 0, sentTo()
	set(&c.ConfigurationType, ch.ConfigurationType)
	set(&c.DiscoveryURL, ch.DiscoveryURL)
	set(&c.Issuer, ch.Issuer)
	set(&c.AuthorizationEndpoint, ch.AuthorizationEndpoint)
	set(&c.TokenEndpoint, ch.TokenEndpoint)
	set(&c.JwksURI, ch.JwksURI)
	set(&c.UserinfoEndpoint, ch.UserinfoEndpoint)
	set(&c.ClientID, ch.ClientID)
	set(&c.DefaultRole, ch.DefaultRole)
	if ch.AllowedEmailDomains != nil {
		domains, err := parseDomains(*ch.AllowedEmailDomains)
		if err != nil {
			return err
		}
		c.AllowedEmailDomains = strings.Join(domains, ", ")
	}
	if ch.IsActive != nil {
		c.IsActive = *ch.IsActive
	}
	if ch.ManageGroupMemberships != nil {
		c.ManageGroupMemberships = *ch.ManageGroupMemberships
	}
	for name, v := range map[string]string{"discoveryURL": c.DiscoveryURL, "issuer": c.Issuer, "authorizationEndpoint": c.AuthorizationEndpoint,
		"tokenEndpoint": c.TokenEndpoint, "jwksUri": c.JwksURI, "userinfoEndpoint": c.UserinfoEndpoint, "clientId": c.ClientID,
		"allowedEmailDomains": c.AllowedEmailDomains} {
		if len(v) > maxField {
			return errs.Fieldf(name, "%s must be at most %d characters", name, maxField)
		}
	}
	switch c.ConfigurationType {
	case TypeDiscovery:
		if c.DiscoveryURL == "" {
			return errs.Fieldf("discoveryURL", "discoveryURL is required")
		}
		if _, err := fetch.CheckURL(ctx, s.env, "discoveryURL", c.DiscoveryURL); err != nil {
			return err
		}
	case TypeCustom:
		for _, f := range []struct{ name, v string }{{"issuer", c.Issuer}, {"authorizationEndpoint", c.AuthorizationEndpoint},
			{"tokenEndpoint", c.TokenEndpoint}, {"jwksUri", c.JwksURI}} {
			if f.v == "" {
				return errs.Fieldf(f.name, "%s is required", f.name)
			}
		}
		// The server fetches the token endpoint and the keys: they are
		// bound by the target policy. The browser alone visits the
		// authorization endpoint, which must still be an http(s) URL.
		for _, f := range []struct{ name, v string }{{"tokenEndpoint", c.TokenEndpoint}, {"jwksUri", c.JwksURI}} {
			if _, err := fetch.CheckURL(ctx, s.env, f.name, f.v); err != nil {
				return err
			}
		}
		if c.UserinfoEndpoint != "" {
			if _, err := fetch.CheckURL(ctx, s.env, "userinfoEndpoint", c.UserinfoEndpoint); err != nil {
				return err
			}
		}
		if u, err := url.Parse(c.AuthorizationEndpoint); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return errs.Fieldf("authorizationEndpoint", "authorizationEndpoint must be an http or https URL")
		}
	default:
		return errs.Fieldf("configurationType", "configurationType must be discoveryURL or custom")
	}
	if c.ClientID == "" {
		return errs.Fieldf("clientId", "clientId is required")
	}
	if c.DefaultRole == "" {
		c.DefaultRole = "member"
	}
	if c.DefaultRole == "admin" {
		// A stranger the identity provider vouches for should not own the organization.
		return errs.Fieldf("defaultMembershipRole", "defaultMembershipRole cannot be admin")
	}
	if !authz.IsBuiltinOrgRole(c.DefaultRole) {
		if _, err := s.store.CustomOrgRoleID(ctx, actor.OrgID, c.DefaultRole); errs.Is(err, errs.NotFound) {
			return errs.Fieldf("defaultMembershipRole", "defaultMembershipRole names no role of this organization")
		} else if err != nil {
			return err
		}
	}
	newSecret := ch.ClientSecret != nil && strings.TrimSpace(*ch.ClientSecret) != ""
	if hadSecret && !newSecret && sentTo() != before {
		// As LDAP's bind password and Kubernetes' reviewer token: whoever
		// may point the configuration elsewhere must know the secret, or
		// the stored one would be sent to their endpoint.
		return errs.Fieldf("clientSecret", "clientSecret must be given again when the discovery URL, token endpoint or configuration type changes")
	}
	if newSecret {
		sec := strings.TrimSpace(*ch.ClientSecret)
		if len(sec) > maxField {
			return errs.Fieldf("clientSecret", "clientSecret must be at most %d characters", maxField)
		}
		sealed, err := s.keys.Seal(ctx, keyring.Org(c.OrgID), []byte(sec), secretAD(c.ID))
		if err != nil {
			return err
		}
		c.ClientSecret = sealed
	}
	return nil
}

// parseDomains splits a comma-separated list of email domains, lowercased.
func parseDomains(s string) ([]string, error) {
	var out []string
	for _, d := range strings.Split(s, ",") {
		d = strings.ToLower(strings.TrimSpace(d))
		if d == "" {
			continue
		}
		if strings.ContainsAny(d, "@/ \t") || !strings.Contains(d, ".") || len(d) > 253 {
			return nil, errs.Fieldf("allowedEmailDomains", "allowedEmailDomains must be domains separated by commas, such as example.com")
		}
		out = append(out, d)
	}
	return out, nil
}
