package identity

import (
	"context"
	"strings"

	"github.com/google/uuid"

	"github.com/lockbox-dev/lockbox/internal/audit"
	"github.com/lockbox-dev/lockbox/internal/authz"
	"github.com/lockbox-dev/lockbox/internal/errs"
	"github.com/lockbox-dev/lockbox/internal/project"
)

// MaxTTLSeconds is the largest TTL Infisical accepts (10 years).
const MaxTTLSeconds = 315360000

// UAConfig is an attach or update request; nil fields are absent.
type UAConfig struct {
	AccessTokenTTL             *int64
	AccessTokenMaxTTL          *int64
	AccessTokenNumUsesLimit    *int64
	AccessTokenPeriod          *int64
	ClientSecretTrustedIPs     []string
	AccessTokenTrustedIPs      []string
	LockoutEnabled             *bool
	LockoutThreshold           *int
	LockoutDurationSeconds     *int
	LockoutCounterResetSeconds *int
}

// identityFor loads an identity of the actor's organization and checks the
// actor may act on identities with action.
func (u *UA) identityFor(ctx context.Context, actor authz.Actor, identityID, action string) (Identity, error) {
	perms, err := u.authz.OrgPermissions(ctx, actor)
	if err != nil {
		return Identity{}, err
	}
	// The permission first, as Admin.get: a caller who may not act on the
	// identity learns nothing of whether it exists (403 either way).
	if err := perms.Check(action, authz.SubIdentity, &authz.Fields{IdentityID: identityID}); err != nil {
		return Identity{}, err
	}
	notFound := errs.NotFoundf("Failed to find identity with ID %s", identityID)
	if _, err := uuid.Parse(identityID); err != nil {
		return Identity{}, notFound
	}
	ident, err := u.store.UAIdentity(ctx, identityID)
	if errs.Is(err, errs.NotFound) || (err == nil && ident.OrgID != actor.OrgID) {
		return Identity{}, notFound
	}
	if err != nil {
		return Identity{}, err
	}
	if action != authz.ActRead {
		role, err := u.authz.OrgRole(ctx, authz.Actor{Kind: authz.ActorIdentity, ID: ident.ID, OrgID: actor.OrgID})
		if err != nil && !errs.Is(err, errs.Forbidden) {
			return Identity{}, err
		}
		if err := guardAdminTarget(ctx, u.authz, actor, ident.ID, role); err != nil {
			return Identity{}, err
		}
	}
	return ident, nil
}

func parseIPList(field string, in []string) ([]TrustedIP, error) {
	if in == nil {
		return nil, nil
	}
	if len(in) == 0 {
		e := errs.Invalidf("Array must contain at least 1 element(s)")
		e.Details = []string{field}
		return nil, e
	}
	out := make([]TrustedIP, 0, len(in))
	for _, s := range in {
		t, ok := ParseTrustedIP(strings.TrimSpace(s))
		if !ok {
			return nil, errs.BadRequest("The IP is not a valid IPv4, IPv6, or CIDR block")
		}
		out = append(out, t)
	}
	return out, nil
}

func rangeErr(field string, lo, hi int64) error {
	e := errs.Invalidf("%s must be between %d and %d", field, lo, hi)
	e.Details = []string{field}
	return e
}

// apply validates c and writes its present fields into ua.
func (c UAConfig) apply(ua *UniversalAuth) error {
	ints := []struct {
		name   string
		v      *int64
		lo, hi int64
		dst    *int64
	}{
		{"accessTokenTTL", c.AccessTokenTTL, 0, MaxTTLSeconds, &ua.AccessTokenTTL},
		{"accessTokenMaxTTL", c.AccessTokenMaxTTL, 0, MaxTTLSeconds, &ua.AccessTokenMaxTTL},
		{"accessTokenNumUsesLimit", c.AccessTokenNumUsesLimit, 0, 1 << 53, &ua.AccessTokenNumUsesLimit},
		{"accessTokenPeriod", c.AccessTokenPeriod, 0, MaxTTLSeconds, &ua.AccessTokenPeriod},
	}
	for _, f := range ints {
		if f.v == nil {
			continue
		}
		if *f.v < f.lo || *f.v > f.hi {
			return rangeErr(f.name, f.lo, f.hi)
		}
		*f.dst = *f.v
	}
	smalls := []struct {
		name   string
		v      *int
		lo, hi int
		dst    *int
	}{
		{"lockoutThreshold", c.LockoutThreshold, 1, 30, &ua.LockoutThreshold},
		{"lockoutDurationSeconds", c.LockoutDurationSeconds, 30, 86400, &ua.LockoutDurationSeconds},
		{"lockoutCounterResetSeconds", c.LockoutCounterResetSeconds, 5, 3600, &ua.LockoutCounterResetSeconds},
	}
	for _, f := range smalls {
		if f.v == nil {
			continue
		}
		if *f.v < f.lo || *f.v > f.hi {
			return rangeErr(f.name, int64(f.lo), int64(f.hi))
		}
		*f.dst = *f.v
	}
	if c.LockoutEnabled != nil {
		ua.LockoutEnabled = *c.LockoutEnabled
	}
	var err error
	if ips, e := parseIPList("clientSecretTrustedIps", c.ClientSecretTrustedIPs); e != nil {
		return e
	} else if ips != nil {
		ua.ClientSecretTrustedIPs = ips
	}
	if ips, e := parseIPList("accessTokenTrustedIps", c.AccessTokenTrustedIPs); e != nil {
		return e
	} else if ips != nil {
		ua.AccessTokenTrustedIPs = ips
	}
	// Checked against the resulting (stored + new) values, so lowering only the
	// max TTL below the stored TTL is caught too.
	if ua.AccessTokenMaxTTL > 0 && ua.AccessTokenTTL > ua.AccessTokenMaxTTL {
		e := errs.Invalidf("Access token TTL cannot be greater than max TTL")
		e.Details = []string{"accessTokenTTL"}
		return e
	}
	return err
}

// Attach adds Universal Auth to an identity, with Infisical's defaults.
func (u *UA) Attach(ctx context.Context, actor authz.Actor, identityID string, c UAConfig) (UniversalAuth, error) {
	ident, err := u.identityFor(ctx, actor, identityID, authz.ActCreate)
	if err != nil {
		return UniversalAuth{}, err
	}
	now := u.now().UTC()
	ua := UniversalAuth{ID: NewID(), IdentityID: ident.ID, ClientID: uuid.NewString(),
		AccessTokenTTL: 2592000, AccessTokenMaxTTL: 2592000, ClientSecretTrustedIPs: AnyIP, AccessTokenTrustedIPs: AnyIP,
		LockoutEnabled: true, LockoutThreshold: 3, LockoutDurationSeconds: 300, LockoutCounterResetSeconds: 30,
		CreatedAt: now, UpdatedAt: now}
	if err := c.apply(&ua); err != nil {
		return UniversalAuth{}, err
	}
	ev := audit.New(actor, "add-identity-universal-auth", map[string]any{"identityId": ident.ID,
		"accessTokenTTL": ua.AccessTokenTTL, "accessTokenMaxTTL": ua.AccessTokenMaxTTL})
	if err := u.store.CreateUniversalAuth(ctx, ua, ev); err != nil {
		if errs.Is(err, errs.Conflict) {
			return UniversalAuth{}, errs.BadRequest("Failed to add universal auth to already configured identity")
		}
		return UniversalAuth{}, err
	}
	return ua, nil
}

func (u *UA) config(ctx context.Context, actor authz.Actor, identityID, action string) (Identity, UniversalAuth, error) {
	ident, err := u.identityFor(ctx, actor, identityID, action)
	if err != nil {
		return Identity{}, UniversalAuth{}, err
	}
	ua, err := u.store.UniversalAuthByIdentity(ctx, ident.ID)
	if errs.Is(err, errs.NotFound) {
		return Identity{}, UniversalAuth{}, errs.BadRequest("The identity does not have universal auth")
	}
	return ident, ua, err
}

// Update changes an identity's Universal Auth configuration.
func (u *UA) Update(ctx context.Context, actor authz.Actor, identityID string, c UAConfig) (UniversalAuth, error) {
	return project.RetryStale(ctx, "configuration", func() (UniversalAuth, error) {
		ident, ua, err := u.config(ctx, actor, identityID, authz.ActEdit)
		if err != nil {
			return UniversalAuth{}, err
		}
		// Its settings (trusted IPs, TTLs, period, use limits, lockout)
		// bound the logins of every client secret: loosening them makes a
		// leaked, IP-bound secret a login from anywhere. As for the other
		// login methods, changing them needs what giving a credential does.
		if err := checkMint(ctx, u.authz, actor, ident.ID); err != nil {
			return UniversalAuth{}, err
		}
		prev := ua.UpdatedAt
		if err := c.apply(&ua); err != nil {
			return UniversalAuth{}, err
		}
		ua.UpdatedAt = project.NextStamp(u.now(), prev)
		ev := audit.New(actor, "update-identity-universal-auth", map[string]any{"identityId": ident.ID,
			"accessTokenTTL": ua.AccessTokenTTL, "accessTokenMaxTTL": ua.AccessTokenMaxTTL})
		return ua, u.store.UpdateUniversalAuth(ctx, ua, prev, ev)
	})
}

// Get returns an identity's Universal Auth configuration.
func (u *UA) Get(ctx context.Context, actor authz.Actor, identityID string) (UniversalAuth, error) {
	_, ua, err := u.config(ctx, actor, identityID, authz.ActRead)
	return ua, err
}

// Remove deletes the configuration and its client secrets, and revokes every
// token issued through it.
func (u *UA) Remove(ctx context.Context, actor authz.Actor, identityID string) (UniversalAuth, error) {
	ident, ua, err := u.config(ctx, actor, identityID, authz.ActEdit)
	if err != nil {
		return UniversalAuth{}, err
	}
	if err := checkIdentity(ctx, u.authz, actor, authz.ActRevokeAuth, ident.ID); err != nil {
		return UniversalAuth{}, err
	}
	ev := audit.New(actor, "revoke-identity-universal-auth", map[string]any{"identityId": ident.ID})
	return ua, u.store.DeleteUniversalAuth(ctx, ident.ID, ev)
}

// MaxClientSecrets bounds an identity's client secrets that can still log
// in (not revoked, expired or used up): the list returns them all. The
// store counts them under a lock of the identity's Universal Auth
// configuration; those that can no longer log in do not count, so
// rotating secrets never runs into it.
const MaxClientSecrets = 1000

// TooManyClientSecrets is the refusal of a client secret past
// MaxClientSecrets.
func TooManyClientSecrets() error {
	return errs.BadRequest("An identity has at most %d client secrets that can log in; revoke one first", MaxClientSecrets)
}

// MaxClientSecretDescription bounds a client secret's description: an
// identity's list of up to MaxClientSecrets answers every one.
const MaxClientSecretDescription = 1 << 10

// NewClientSecret makes a client secret; its plaintext is returned only here.
func (u *UA) NewClientSecret(ctx context.Context, actor authz.Actor, identityID, description string, numUsesLimit, ttl int64) (string, ClientSecret, error) {
	ident, ua, err := u.config(ctx, actor, identityID, authz.ActCreate)
	if err != nil {
		return "", ClientSecret{}, err
	}
	if err := checkMint(ctx, u.authz, actor, ident.ID); err != nil {
		return "", ClientSecret{}, err
	}
	if numUsesLimit < 0 {
		return "", ClientSecret{}, rangeErr("numUsesLimit", 0, 1<<53)
	}
	if ttl < 0 || ttl > MaxTTLSeconds {
		return "", ClientSecret{}, rangeErr("ttl", 0, MaxTTLSeconds)
	}
	description = strings.TrimSpace(description)
	if len(description) > MaxClientSecretDescription {
		return "", ClientSecret{}, errs.Fieldf("description", "description must be at most %d bytes", MaxClientSecretDescription)
	}
	secret := randomHex(32)
	h, err := u.hash(ctx, secret)
	if err != nil {
		return "", ClientSecret{}, err
	}
	now := u.now().UTC()
	cs := ClientSecret{ID: NewID(), IdentityUAID: ua.ID, Description: description, Prefix: secret[:4],
		NumUsesLimit: numUsesLimit, TTL: ttl, CreatedAt: now, UpdatedAt: now}
	ev := audit.New(actor, "create-identity-universal-auth-client-secret", map[string]any{"identityId": ident.ID, "clientSecretId": cs.ID})
	if err := u.store.CreateClientSecret(ctx, cs, h, ev); err != nil {
		return "", ClientSecret{}, err
	}
	return secret, cs, nil
}

// ClientSecrets lists an identity's client secrets that can still log in.
func (u *UA) ClientSecrets(ctx context.Context, actor authz.Actor, identityID string) ([]ClientSecret, error) {
	ident, ua, err := u.config(ctx, actor, identityID, authz.ActRead)
	if err != nil {
		return nil, err
	}
	if err := checkIdentity(ctx, u.authz, actor, authz.ActGetToken, ident.ID); err != nil {
		return nil, err
	}
	// Expired and used-up secrets are left out as of now, not revoked lazily.
	return u.store.ClientSecrets(ctx, ua.ID, u.now())
}

// ClientSecret returns one client secret.
func (u *UA) ClientSecret(ctx context.Context, actor authz.Actor, identityID, secretID string) (ClientSecret, error) {
	ident, ua, err := u.config(ctx, actor, identityID, authz.ActRead)
	if err != nil {
		return ClientSecret{}, err
	}
	if err := checkIdentity(ctx, u.authz, actor, authz.ActGetToken, ident.ID); err != nil {
		return ClientSecret{}, err
	}
	cs, err := u.store.ClientSecretByID(ctx, ua.ID, secretID)
	if errs.Is(err, errs.NotFound) {
		return ClientSecret{}, errs.NotFoundf("Client secret with ID %s not found", secretID)
	}
	return cs, err
}

// RevokeClientSecret revokes a client secret and, at once, every token issued from it.
func (u *UA) RevokeClientSecret(ctx context.Context, actor authz.Actor, identityID, secretID string) (ClientSecret, error) {
	ident, ua, err := u.config(ctx, actor, identityID, authz.ActDelete)
	if err != nil {
		return ClientSecret{}, err
	}
	if err := checkIdentity(ctx, u.authz, actor, authz.ActDeleteToken, ident.ID); err != nil {
		return ClientSecret{}, err
	}
	ev := audit.New(actor, "revoke-identity-universal-auth-client-secret", map[string]any{"identityId": ident.ID, "clientSecretId": secretID})
	cs, err := u.store.RevokeClientSecret(ctx, ua.ID, secretID, ev)
	if errs.Is(err, errs.NotFound) {
		return ClientSecret{}, errs.NotFoundf("Client secret with ID %s not found", secretID)
	}
	return cs, err
}

// ClearLockouts lifts a lockout; it reports how many were cleared.
func (u *UA) ClearLockouts(ctx context.Context, actor authz.Actor, identityID string) (int, error) {
	ident, ua, err := u.config(ctx, actor, identityID, authz.ActEdit)
	if err != nil {
		return 0, err
	}
	ev := audit.New(actor, "clear-identity-universal-auth-lockouts", map[string]any{"identityId": ident.ID})
	return u.store.ClearLockout(ctx, ua.ID, &ev)
}
