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
	LastUsedAt   *time.Time // the last login with it
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

// UALogin is what one login attempt reads, in one query: the configuration
// named by the client ID, its identity, the slug of the identity's
// organization, the configuration's client secret with the presented keyed
// hash, if there is one, and the end of the configuration's lock.
type UALogin struct {
	UA          UniversalAuth
	Identity    Identity
	OrgSlug     string
	Secret      ClientSecret
	Found       bool      // Secret is set: a secret of UA has the presented hash
	LockedUntil time.Time // zero when not locked
}

// UAStore is the storage Universal Auth needs.
type UAStore interface {
	// AppendAudit records an event that goes with no change; it returns once the event is committed.
	AppendAudit(ctx context.Context, ev audit.Event) error
	// UAIdentity returns an identity with the organization it belongs to.
	UAIdentity(ctx context.Context, identityID string) (Identity, error)
	CreateUniversalAuth(ctx context.Context, ua UniversalAuth, ev audit.Event) error
	UniversalAuthByIdentity(ctx context.Context, identityID string) (UniversalAuth, error)
	// UniversalAuthLogin reads what a login with clientID and the secret
	// whose keyed hash is hash needs; NotFound when no configuration has
	// that client ID (Found false when only the secret is unknown).
	UniversalAuthLogin(ctx context.Context, clientID, hash string) (UALogin, error)
	// UpdateUniversalAuth writes ua if it is still as read, last updated at
	// prev; project.ErrStale if another change came first.
	UpdateUniversalAuth(ctx context.Context, ua UniversalAuth, prev time.Time, ev audit.Event) error
	// DeleteUniversalAuth removes the configuration, its secrets and revokes every
	// token issued through it.
	DeleteUniversalAuth(ctx context.Context, identityID string, ev audit.Event) error
	CreateClientSecret(ctx context.Context, cs ClientSecret, hash string, ev audit.Event) error
	// ClientSecrets lists the secrets that can log in at now, newest first.
	ClientSecrets(ctx context.Context, uaID string, now time.Time) ([]ClientSecret, error)
	ClientSecretByID(ctx context.Context, uaID, id string) (ClientSecret, error)
	// RevokeClientSecret marks the secret revoked and revokes its tokens.
	RevokeClientSecret(ctx context.Context, uaID, id string, ev audit.Event) (ClientSecret, error)
	// ReserveLoginAttempt counts one attempt before its answer is given, in
	// one atomic conditional statement; it reports false, changing nothing,
	// when the configuration is locked at now. The attempt that reaches the
	// threshold locks it, so at most threshold attempts are ever answered
	// other than "locked".
	ReserveLoginAttempt(ctx context.Context, ua UniversalAuth, now time.Time) (bool, error)
	// ReleaseLoginAttempt takes back a reservation whose attempt did not fail
	// on a wrong secret, lifting the lock the reservation may have set.
	ReleaseLoginAttempt(ctx context.Context, ua UniversalAuth) error
	ClearLockout(ctx context.Context, uaID string, ev *audit.Event) (int, error)
	// LoginWithClientSecret consumes one use of l.Secret with a conditional
	// update and, in the same transaction, stores the token, clears the
	// lockout, notes the login on the identity's membership and records ev.
	// It reports false, changing nothing, when at that instant the secret is
	// revoked, expired or out of uses or, with lockout enabled on l.UA, the
	// configuration is locked.
	LoginWithClientSecret(ctx context.Context, l UALogin, tok AccessToken, ev audit.Event) (bool, error)
}

// UA implements Universal Auth: configuration, client secrets and login.
type UA struct {
	store UAStore
	authz Authorizer
	svc   *Service
	now   func() time.Time

	secrets KeyedHash
}

// NewUA returns the Universal Auth service; svc signs the tokens.
func NewUA(st UAStore, az Authorizer, svc *Service) *UA {
	return &UA{store: st, authz: az, svc: svc, now: svc.now, secrets: KeyedHash{Purpose: "client-secret-hmac"}}
}

func (u *UA) hash(ctx context.Context, secret string) (string, error) {
	h, err := u.secrets.Sum(ctx, u.svc.keys, secret)
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
//
// A login that passes every check is one read and one write: the write
// consumes the use only if the configuration is not locked, so it needs no
// reservation. With lockout enabled, every other answer is given only after
// the attempt has been reserved (ReserveLoginAttempt), so at most the
// threshold of wrong secrets are ever answered as wrong, and a configuration
// locked when read costs a right secret the same read and reservation as a
// wrong one: neither the answer nor the work tells them apart.
func (u *UA) Login(ctx context.Context, clientID, clientSecret, orgSlug, ip, userAgent string) (res LoginResult, err error) {
	var failed *UALogin // known once the client ID names a configuration
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
	l, err := u.store.UniversalAuthLogin(ctx, clientID, h)
	if errs.Is(err, errs.NotFound) {
		return LoginResult{}, invalid
	}
	if err != nil {
		return LoginResult{}, err
	}
	failed = &l
	ua, cs := l.UA, l.Secret
	if !IPAllowed(ua.ClientSecretTrustedIPs, ip) {
		return LoginResult{}, errs.Forbiddenf("You are not allowed to access this resource from the current IP address")
	}
	now := u.now().UTC().Truncate(time.Microsecond)
	locked := errs.Unauthorizedf("This identity auth method is temporarily locked, please try again later")
	wrong := !l.Found || cs.Revoked
	var refusal error
	switch {
	case wrong:
		refusal = invalid
	case cs.Expired(now):
		refusal = errs.Unauthorizedf("Access denied due to expired client secret")
	case cs.Exhausted():
		refusal = errs.Unauthorizedf("Access denied due to client secret usage limit reached")
	case ua.LockoutEnabled && now.Before(l.LockedUntil):
		refusal = locked // answered, like any attempt, after the reservation below
	default:
		refusal = checkOrgSlug(l.OrgSlug, orgSlug)
	}
	if refusal == nil {
		tok := AccessToken{ID: NewID(), IdentityID: ua.IdentityID, AuthMethod: MethodUniversalAuth, ClientSecretID: cs.ID,
			TTL: ua.AccessTokenTTL, MaxTTL: ua.AccessTokenMaxTTL, Period: ua.AccessTokenPeriod, NumUsesLimit: ua.AccessTokenNumUsesLimit,
			TrustedIPs: ua.AccessTokenTrustedIPs, CreatedAt: now, UpdatedAt: now}
		ident := l.Identity
		actor := authz.Actor{Kind: authz.ActorIdentity, ID: ident.ID, OrgID: ident.OrgID, Name: ident.Name, IP: ip, UserAgent: userAgent}
		ev := audit.New(actor, "login-identity-universal-auth", map[string]any{"clientSecretId": cs.ID, "identityId": ident.ID,
			"identityAccessTokenId": tok.ID, "identityUniversalAuthId": ua.ID})
		ok, err := u.store.LoginWithClientSecret(ctx, l, tok, ev)
		if err != nil {
			return LoginResult{}, err
		}
		if ok {
			return u.svc.issue(ctx, tok, now)
		}
		// Locked, or the secret was revoked or used up since it was read.
		refusal = errs.Unauthorizedf("Access denied due to client secret usage limit reached")
	}
	if !ua.LockoutEnabled {
		return LoginResult{}, refusal
	}
	// The attempt is counted before it is answered (a success clears the
	// count), so concurrent wrong secrets cannot slip past the threshold
	// between a check and an increment.
	ok, err := u.store.ReserveLoginAttempt(ctx, ua, now)
	if err != nil {
		return LoginResult{}, err
	}
	if !ok {
		return LoginResult{}, locked
	}
	if wrong {
		return LoginResult{}, refusal // a guess: the reservation stays as the failure it is
	}
	// Not a guess (an expired or used-up secret, another organization, a
	// lock lifted since it was read): take the reservation back.
	if err := u.store.ReleaseLoginAttempt(context.WithoutCancel(ctx), ua); err != nil {
		return LoginResult{}, err
	}
	return LoginResult{}, refusal
}

// checkOrgSlug refuses a login that asks to be scoped to an organization
// other than the identity's own. Infisical scopes such a login to a
// sub-organization; lockbox has none, and ignoring the slug would hand out a
// token for an organization the caller did not ask for. Empty means the
// identity's organization. It runs only once the credentials are proven (and,
// under lockout, is answered only once the attempt is reserved), so it tells
// a stranger nothing.
func checkOrgSlug(own, slug string) error {
	slug = strings.TrimSpace(slug)
	if slug == "" || own == slug {
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
func (u *UA) auditFailure(ctx context.Context, l UALogin, ip, userAgent string, cause error) {
	ctx = context.WithoutCancel(ctx)
	ident, ua := l.Identity, l.UA
	reason := "internal error"
	if e, ok := errors.AsType[*errs.Error](cause); ok && e.Kind != errs.Internal {
		reason = audit.Clip(e.Message, audit.MaxReasonBytes)
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
