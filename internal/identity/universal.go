package identity

import (
	"context"
	"encoding/hex"
	"errors"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/lockbox-dev/lockbox/internal/audit"
	"github.com/lockbox-dev/lockbox/internal/authz"
	"github.com/lockbox-dev/lockbox/internal/errs"
	"github.com/lockbox-dev/lockbox/internal/project"
)

// UniversalAuth is the client-id/client-secret login configuration of an identity.
type UniversalAuth struct {
	ID                         string
	IdentityID                 string
	ClientID                   string
	AccessTokenTTL             int64
	AccessTokenMaxTTL          int64
	AccessTokenNumUsesLimit    int64
	AccessTokenPeriod          int64
	ClientSecretTrustedIPs     []TrustedIP
	AccessTokenTrustedIPs      []TrustedIP
	LockoutEnabled             bool
	LockoutThreshold           int
	LockoutDurationSeconds     int
	LockoutCounterResetSeconds int
	CreatedAt                  time.Time
	UpdatedAt                  time.Time
}

// ClientSecret is a Universal Auth client secret; its plaintext is never stored.
type ClientSecret struct {
	ID           string
	IdentityUAID string
	Description  string
	Prefix       string
	NumUses      int64
	NumUsesLimit int64
	TTL          int64 // seconds from CreatedAt; 0 = never expires
	Revoked      bool
	CreatedAt    time.Time
	UpdatedAt    time.Time
}

// Expired reports whether the secret's TTL has run out at now.
func (c ClientSecret) Expired(now time.Time) bool {
	return c.TTL > 0 && !now.Before(c.CreatedAt.Add(time.Duration(c.TTL)*time.Second))
}

// Exhausted reports whether the secret's use limit is reached.
func (c ClientSecret) Exhausted() bool { return c.NumUsesLimit > 0 && c.NumUses >= c.NumUsesLimit }

// LockoutPolicy is when repeated failed logins lock an account: Threshold
// failures, each within CounterReset of the previous one, lock it for Duration.
type LockoutPolicy struct {
	Threshold    int
	Duration     time.Duration
	CounterReset time.Duration
}

// UAStore is the storage Universal Auth needs.
type UAStore interface {
	// AppendAudit records an event that goes with no change; it returns once the event is committed.
	AppendAudit(ctx context.Context, ev audit.Event) error
	// UAIdentity returns an identity with the organization it belongs to.
	UAIdentity(ctx context.Context, identityID string) (Identity, error)
	OrgByID(ctx context.Context, id string) (project.Org, error)
	CreateUniversalAuth(ctx context.Context, ua UniversalAuth, ev audit.Event) error
	UniversalAuthByIdentity(ctx context.Context, identityID string) (UniversalAuth, error)
	UniversalAuthByClientID(ctx context.Context, clientID string) (UniversalAuth, error)
	UpdateUniversalAuth(ctx context.Context, ua UniversalAuth, ev audit.Event) error
	// DeleteUniversalAuth removes the configuration, its secrets and revokes every
	// token issued through it.
	DeleteUniversalAuth(ctx context.Context, identityID string, ev audit.Event) error
	CreateClientSecret(ctx context.Context, cs ClientSecret, hash string, ev audit.Event) error
	ClientSecrets(ctx context.Context, uaID string) ([]ClientSecret, error)
	ClientSecretByID(ctx context.Context, uaID, id string) (ClientSecret, error)
	// RevokeClientSecret marks the secret revoked and revokes its tokens.
	RevokeClientSecret(ctx context.Context, uaID, id string, ev audit.Event) (ClientSecret, error)
	ClientSecretByHash(ctx context.Context, uaID, hash string) (ClientSecret, error)
	// ReserveLoginAttempt counts one attempt before its secret is checked, in
	// one atomic conditional statement; it reports false, changing nothing,
	// when the configuration is locked at now. The attempt that reaches the
	// threshold locks it, so at most threshold attempts are ever checked.
	ReserveLoginAttempt(ctx context.Context, ua UniversalAuth, now time.Time) (bool, error)
	// ReleaseLoginAttempt takes back a reservation whose attempt did not fail
	// on a wrong secret, lifting the lock the reservation may have set.
	ReleaseLoginAttempt(ctx context.Context, ua UniversalAuth) error
	ClearLockout(ctx context.Context, uaID string, ev *audit.Event) (int, error)
	// LoginWithClientSecret consumes one use of the secret with a conditional
	// update and, in the same transaction, stores the token, clears the
	// lockout and records the login. It reports false when the secret is
	// revoked, expired or out of uses at that instant.
	LoginWithClientSecret(ctx context.Context, cs ClientSecret, tok AccessToken, ev audit.Event) (bool, error)
}

// UA implements Universal Auth: configuration, client secrets and login.
type UA struct {
	store UAStore
	authz Authorizer
	svc   *Service
	now   func() time.Time

	secrets keyedHash
}

// NewUA returns the Universal Auth service; svc signs the tokens.
func NewUA(st UAStore, az Authorizer, svc *Service) *UA {
	return &UA{store: st, authz: az, svc: svc, now: svc.now, secrets: keyedHash{purpose: "client-secret-hmac"}}
}

func (u *UA) hash(ctx context.Context, secret string) (string, error) {
	h, err := u.secrets.sum(ctx, u.svc.keys, secret)
	return hex.EncodeToString(h), err
}

// LoginResult is a fresh access token.
type LoginResult struct {
	AccessToken       string
	ExpiresIn         int64
	AccessTokenMaxTTL int64
}

// PeriodicMaxTTL is what Infisical reports as the max TTL of periodic tokens
// (a stand-in for "none" that keeps old clients renewing).
const PeriodicMaxTTL = 1000000000

// Login exchanges a client ID and secret for an access token. Finding the
// secret is one indexed lookup of its keyed hash, whatever the number of
// secrets; use limits are exact under concurrency. A non-empty orgSlug must
// be the slug of the identity's organization.
func (u *UA) Login(ctx context.Context, clientID, clientSecret, orgSlug, ip, userAgent string) (res LoginResult, err error) {
	var failed *UniversalAuth // known once the client ID names a configuration
	defer func() {
		if err != nil && failed != nil {
			u.auditFailure(ctx, *failed, ip, userAgent, err)
		}
	}()
	clientID, clientSecret = strings.TrimSpace(clientID), strings.TrimSpace(clientSecret)
	invalid := errs.Unauthorizedf("Invalid credentials")
	if clientID == "" || clientSecret == "" {
		return LoginResult{}, invalid
	}
	h, err := u.hash(ctx, clientSecret)
	if err != nil {
		return LoginResult{}, err
	}
	if _, err := uuid.Parse(clientID); err != nil {
		return LoginResult{}, invalid
	}
	ua, err := u.store.UniversalAuthByClientID(ctx, clientID)
	if errs.Is(err, errs.NotFound) {
		return LoginResult{}, invalid
	}
	if err != nil {
		return LoginResult{}, err
	}
	failed = &ua
	if !IPAllowed(ua.ClientSecretTrustedIPs, ip) {
		return LoginResult{}, errs.Forbiddenf("You are not allowed to access this resource from the current IP address")
	}
	now := u.now().UTC().Truncate(time.Microsecond)
	// With lockout on, the attempt is counted before the secret is looked
	// at (a success clears the count), so concurrent wrong secrets cannot
	// slip past the threshold between a check and an increment.
	if ua.LockoutEnabled {
		ok, err := u.store.ReserveLoginAttempt(ctx, ua, now)
		if err != nil {
			return LoginResult{}, err
		}
		if !ok {
			return LoginResult{}, errs.Unauthorizedf("This identity auth method is temporarily locked, please try again later")
		}
	}
	// release takes back the reservation of an attempt that did not fail on
	// a wrong secret; a wrong secret keeps it as the failure it is.
	release := func(e error) error {
		if ua.LockoutEnabled {
			if err := u.store.ReleaseLoginAttempt(context.WithoutCancel(ctx), ua); err != nil {
				return err
			}
		}
		return e
	}
	cs, err := u.store.ClientSecretByHash(ctx, ua.ID, h)
	if errs.Is(err, errs.NotFound) || (err == nil && cs.Revoked) {
		return LoginResult{}, invalid
	}
	if err != nil {
		return LoginResult{}, release(err)
	}
	if cs.Expired(now) {
		return LoginResult{}, release(errs.Unauthorizedf("Access denied due to expired client secret"))
	}
	if cs.Exhausted() {
		return LoginResult{}, release(errs.Unauthorizedf("Access denied due to client secret usage limit reached"))
	}
	ident, err := u.store.UAIdentity(ctx, ua.IdentityID)
	if err != nil {
		return LoginResult{}, release(err)
	}
	if err := u.checkOrgSlug(ctx, ident, orgSlug); err != nil {
		return LoginResult{}, release(err)
	}
	tok := AccessToken{ID: NewID(), IdentityID: ua.IdentityID, AuthMethod: MethodUniversalAuth, ClientSecretID: cs.ID,
		TTL: ua.AccessTokenTTL, MaxTTL: ua.AccessTokenMaxTTL, Period: ua.AccessTokenPeriod, NumUsesLimit: ua.AccessTokenNumUsesLimit,
		TrustedIPs: ua.AccessTokenTrustedIPs, CreatedAt: now, UpdatedAt: now}
	actor := authz.Actor{Kind: authz.ActorIdentity, ID: ident.ID, OrgID: ident.OrgID, Name: ident.Name, IP: ip, UserAgent: userAgent}
	ev := audit.New(actor, "login-identity-universal-auth", map[string]any{"clientSecretId": cs.ID, "identityId": ident.ID,
		"identityAccessTokenId": tok.ID, "identityUniversalAuthId": ua.ID})
	ok, err := u.store.LoginWithClientSecret(ctx, cs, tok, ev)
	if err != nil {
		return LoginResult{}, release(err)
	}
	if !ok {
		return LoginResult{}, release(errs.Unauthorizedf("Access denied due to client secret usage limit reached"))
	}
	return u.svc.issue(ctx, tok, now)
}

// checkOrgSlug refuses a login that asks to be scoped to an organization
// other than the identity's own. Infisical scopes such a login to a
// sub-organization; lockbox has none, and ignoring the slug would hand out a
// token for an organization the caller did not ask for. Empty means the
// identity's organization. It runs only once the credentials are proven, so
// it tells a stranger nothing.
func (u *UA) checkOrgSlug(ctx context.Context, ident Identity, slug string) error {
	slug = strings.TrimSpace(slug)
	if slug == "" {
		return nil
	}
	org, err := u.store.OrgByID(ctx, ident.OrgID)
	if err != nil {
		return err
	}
	if org.Slug == slug {
		return nil
	}
	if len(slug) > 64 {
		slug = slug[:64]
	}
	return errs.BadRequest("Organization '%s' is not this identity's organization (lockbox has no sub-organizations): "+
		"leave the organization slug empty or name the identity's own organization", slug)
}

// auditFailure records a failed login of a known configuration with its
// reason (the error's client message; never the secret), in the identity's
// organization. It is best effort: the login has failed either way.
func (u *UA) auditFailure(ctx context.Context, ua UniversalAuth, ip, userAgent string, cause error) {
	ctx = context.WithoutCancel(ctx)
	ident, err := u.store.UAIdentity(ctx, ua.IdentityID)
	if err != nil {
		return
	}
	reason := "internal error"
	if e, ok := errors.AsType[*errs.Error](cause); ok && e.Kind != errs.Internal {
		reason = e.Message
	}
	actor := authz.Actor{Kind: authz.ActorIdentity, ID: ident.ID, OrgID: ident.OrgID, Name: ident.Name, IP: ip, UserAgent: userAgent}
	u.store.AppendAudit(ctx, audit.New(actor, "login-identity-universal-auth-failed", map[string]any{"identityId": ident.ID,
		"identityUniversalAuthId": ua.ID, "reason": reason}))
}

// issue signs a token for the record tok at now, bounded by its max TTL.
func (s *Service) issue(ctx context.Context, tok AccessToken, now time.Time) (LoginResult, error) {
	sig, err := s.signer(ctx)
	if err != nil {
		return LoginResult{}, err
	}
	ttl, maxTTL := tok.TTL, tok.MaxTTL
	reportedMax := maxTTL
	if tok.Period > 0 {
		ttl, maxTTL, reportedMax = tok.Period, 0, PeriodicMaxTTL
	}
	life := lifetime(ttl, maxTTL, tok.CreatedAt, now).Truncate(time.Second)
	if life <= 0 {
		return LoginResult{}, errs.Unauthorizedf("Cannot renew: identity access token has reached its max TTL")
	}
	jwtTok, err := sig.sign(claims{AuthTokenType: TypeIdentityAccessToken, IdentityID: tok.IdentityID,
		IdentityAccessTokenID: tok.ID, ClientSecretID: tok.ClientSecretID, AuthMethod: tok.AuthMethod}, now, life)
	if err != nil {
		return LoginResult{}, err
	}
	return LoginResult{AccessToken: jwtTok, ExpiresIn: int64(life / time.Second), AccessTokenMaxTTL: reportedMax}, nil
}
