package identity

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"log/slog"
	"reflect"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/lockbox-dev/lockbox/internal/audit"
	"github.com/lockbox-dev/lockbox/internal/authmethod"
	"github.com/lockbox-dev/lockbox/internal/authz"
	"github.com/lockbox-dev/lockbox/internal/errs"
	"github.com/lockbox-dev/lockbox/internal/project"
)

// AuthConfig is an identity's configuration of a registered login method
// (package authmethod): the shared token settings, and the method's own
// configuration as the method stores it.
type AuthConfig struct {
	ID                      string
	IdentityID              string
	Method                  string // registered name, e.g. "jwt-auth"
	Config                  json.RawMessage
	AccessTokenTTL          int64
	AccessTokenMaxTTL       int64
	AccessTokenNumUsesLimit int64
	AccessTokenTrustedIPs   []TrustedIP
	CreatedAt               time.Time
	UpdatedAt               time.Time
}

// MethodStore is the storage registered login methods need.
type MethodStore interface {
	// AppendAudit records an event that goes with no change.
	AppendAudit(ctx context.Context, ev audit.Event) error
	// CreateAuthConfig stores c; Conflict when the identity has that method.
	CreateAuthConfig(ctx context.Context, c AuthConfig, ev audit.Event) error
	AuthConfig(ctx context.Context, identityID, method string) (AuthConfig, error)
	// AuthConfigLogin reads a configuration with its identity and the slug
	// of the identity's organization, in one query.
	AuthConfigLogin(ctx context.Context, identityID, method string) (AuthConfig, Identity, string, error)
	// UpdateAuthConfig writes c if it is still as read, last updated at
	// prev; project.ErrStale if another change came first.
	UpdateAuthConfig(ctx context.Context, c AuthConfig, prev time.Time, ev audit.Event) error
	// DeleteAuthConfig removes the configuration and revokes its tokens.
	DeleteAuthConfig(ctx context.Context, identityID, method string, ev audit.Event) error
	// LoginWithAuthConfig stores tok, notes the login and records ev, in one
	// transaction, if the configuration c the login was verified against is
	// still there with the same keys and bounds (c.Config; ErrConfigChanged
	// otherwise): a login cannot outlive the removal of its method, or a
	// narrowing of who may log in through it.
	LoginWithAuthConfig(ctx context.Context, tok AccessToken, c AuthConfig, orgID string, ev audit.Event) error

	// The lockout of methods whose credential can be guessed (Locker) keeps
	// its counters in the table of the human login lockout: keys are keyed
	// hashes under their own purpose, prefixed "m:<identity id>:<method>:",
	// so they never meet an email's.

	// ReserveUserLoginAttempt counts one attempt on key before it is judged;
	// false, changing nothing, while key is locked.
	ReserveUserLoginAttempt(ctx context.Context, key string, p LockoutPolicy, now time.Time) (int, bool, error)
	// ReleaseUserLoginAttempt takes back a reservation whose attempt was not a guess.
	ReleaseUserLoginAttempt(ctx context.Context, key string, threshold int) error
	// ClearUserLoginAttempts forgets key's attempts (after a success).
	ClearUserLoginAttempts(ctx context.Context, key string) error
	// RecordFailedUserLogin records evs and prunes lapsed counters.
	RecordFailedUserLogin(ctx context.Context, now time.Time, evs []audit.Event) error
	// ClearUserLoginAttemptsPrefix forgets the attempts of every key that
	// starts with prefix and records ev, in one transaction; it returns how
	// many keys it forgot.
	ClearUserLoginAttemptsPrefix(ctx context.Context, prefix string, ev audit.Event) (int, error)
}

// Methods serves every registered login method (JWT, OIDC, ...):
// configuration on an identity and login, with Universal Auth's rules
// (trusted IPs, token settings, audit of every attempt).
type Methods struct {
	store MethodStore
	admin *Admin
	svc   *Service
	env   authmethod.Env
	now   func() time.Time

	mu    sync.Mutex
	built map[string]builtMethod // by configuration id

	lockKeys KeyedHash // keys the lockout of a Locker method's subject
}

type builtMethod struct {
	updatedAt time.Time
	m         authmethod.Method
}

// maxBuiltMethods bounds the methods (and their key caches) kept in memory.
const maxBuiltMethods = 10_000

// NewMethods returns the service of registered login methods. env is passed
// to every method (its target policy limits what they fetch).
func NewMethods(st MethodStore, admin *Admin, svc *Service, env authmethod.Env) *Methods {
	if env.Now == nil {
		env.Now = svc.now
	}
	return &Methods{store: st, admin: admin, svc: svc, env: env, now: svc.now, built: map[string]builtMethod{},
		lockKeys: KeyedHash{Purpose: "auth-method-lockout-hmac"}}
}

// TokenSettings are the shared settings of a method's tokens; nil fields are absent.
type TokenSettings struct {
	AccessTokenTTL          *int64
	AccessTokenMaxTTL       *int64
	AccessTokenNumUsesLimit *int64
	AccessTokenTrustedIPs   []string
}

func lookupMethod(name string) (authmethod.Registration, error) {
	r, ok := authmethod.Lookup(name)
	if !ok {
		return r, errs.NotFoundf("Auth method %s is not supported", name)
	}
	return r, nil
}

func (c *AuthConfig) apply(s TokenSettings) error {
	ta := TokenAuth{AccessTokenTTL: c.AccessTokenTTL, AccessTokenMaxTTL: c.AccessTokenMaxTTL,
		AccessTokenNumUsesLimit: c.AccessTokenNumUsesLimit, AccessTokenTrustedIPs: c.AccessTokenTrustedIPs}
	if err := (TokenAuthConfig{AccessTokenTTL: s.AccessTokenTTL, AccessTokenMaxTTL: s.AccessTokenMaxTTL,
		AccessTokenNumUsesLimit: s.AccessTokenNumUsesLimit, AccessTokenTrustedIPs: s.AccessTokenTrustedIPs}).apply(&ta); err != nil {
		return err
	}
	c.AccessTokenTTL, c.AccessTokenMaxTTL = ta.AccessTokenTTL, ta.AccessTokenMaxTTL
	c.AccessTokenNumUsesLimit, c.AccessTokenTrustedIPs = ta.AccessTokenNumUsesLimit, ta.AccessTokenTrustedIPs
	return nil
}

func (m *Methods) event(actor authz.Actor, verb string, c AuthConfig) audit.Event {
	return audit.New(actor, verb+"-identity-"+c.Method, map[string]any{"identityId": c.IdentityID,
		"accessTokenTTL": c.AccessTokenTTL, "accessTokenMaxTTL": c.AccessTokenMaxTTL, "config": json.RawMessage(c.Config)})
}

// Attach adds method to an identity with Infisical's defaults (30-day
// tokens usable from any address). body is the request, whose method fields
// the method validates. Besides create on the identity it needs
// create-token: whoever sets a method's keys, issuer or hosts can log in as
// the identity through it (so does Update).
func (m *Methods) Attach(ctx context.Context, actor authz.Actor, method, identityID string, s TokenSettings, body json.RawMessage) (AuthConfig, error) {
	reg, err := lookupMethod(method)
	if err != nil {
		return AuthConfig{}, err
	}
	oi, err := m.admin.get(ctx, actor, identityID, authz.ActCreate)
	if err != nil {
		return AuthConfig{}, err
	}
	if err := checkMint(ctx, m.admin.authz, actor, oi.ID); err != nil {
		return AuthConfig{}, err
	}
	now := m.now().UTC().Truncate(time.Microsecond)
	c := AuthConfig{ID: NewID(), IdentityID: oi.ID, Method: method, AccessTokenTTL: 2592000, AccessTokenMaxTTL: 2592000,
		AccessTokenTrustedIPs: AnyIP, CreatedAt: now, UpdatedAt: now}
	if err := c.apply(s); err != nil {
		return AuthConfig{}, err
	}
	plain, err := reg.Configure(ctx, m.env, nil, body)
	if err != nil {
		return AuthConfig{}, err
	}
	if c.Config, err = m.sealConfig(ctx, reg, oi.OrgID, c.ID, plain); err != nil {
		return AuthConfig{}, err
	}
	shown := c
	if shown.Config, err = redactConfig(reg, plain); err != nil {
		return AuthConfig{}, err
	}
	if err := m.store.CreateAuthConfig(ctx, c, m.event(actor, "add", shown)); err != nil {
		if errs.Is(err, errs.Conflict) {
			return AuthConfig{}, errs.BadRequest("Failed to add %s to already configured identity", reg.DisplayName)
		}
		return AuthConfig{}, err
	}
	return shown, nil
}

// config returns the stored configuration (secret fields sealed) and the
// identity's organization.
func (m *Methods) config(ctx context.Context, actor authz.Actor, method, identityID, action string) (authmethod.Registration, AuthConfig, string, error) {
	reg, err := lookupMethod(method)
	if err != nil {
		return reg, AuthConfig{}, "", err
	}
	oi, err := m.admin.get(ctx, actor, identityID, action)
	if err != nil {
		return reg, AuthConfig{}, "", err
	}
	c, err := m.store.AuthConfig(ctx, oi.ID, method)
	if errs.Is(err, errs.NotFound) {
		return reg, AuthConfig{}, "", errs.BadRequest("The identity does not have %s attached", reg.DisplayName)
	}
	return reg, c, oi.OrgID, err
}

// shown is c as clients see it, without secret fields.
func shown(reg authmethod.Registration, c AuthConfig) (AuthConfig, error) {
	var err error
	c.Config, err = redactConfig(reg, c.Config)
	return c, err
}

// Update changes an identity's configuration of method; absent fields keep their values.
func (m *Methods) Update(ctx context.Context, actor authz.Actor, method, identityID string, s TokenSettings, body json.RawMessage) (AuthConfig, error) {
	return project.RetryStale(ctx, "configuration", func() (AuthConfig, error) {
		return m.update(ctx, actor, method, identityID, s, body)
	})
}

// update is one try of Update.
func (m *Methods) update(ctx context.Context, actor authz.Actor, method, identityID string, s TokenSettings, body json.RawMessage) (AuthConfig, error) {
	reg, c, orgID, err := m.config(ctx, actor, method, identityID, authz.ActEdit)
	if err != nil {
		return AuthConfig{}, err
	}
	if err := checkMint(ctx, m.admin.authz, actor, c.IdentityID); err != nil {
		return AuthConfig{}, err
	}
	prev := c.UpdatedAt
	if err := c.apply(s); err != nil {
		return AuthConfig{}, err
	}
	old, err := m.openConfig(ctx, reg, orgID, c.ID, c.Config)
	if err != nil {
		return AuthConfig{}, err
	}
	plain, err := reg.Configure(ctx, m.env, old, body)
	if err != nil {
		return AuthConfig{}, err
	}
	// An unchanged configuration keeps its stored text: logins in flight
	// go through unless it changes (LoginWithAuthConfig), and sealing
	// again would change it. Compared as JSON values: a configuration
	// with sealed fields is opened into a map (its keys sorted), while
	// Configure writes its struct's order.
	if !sameJSON(plain, old) {
		if c.Config, err = m.sealConfig(ctx, reg, orgID, c.ID, plain); err != nil {
			return AuthConfig{}, err
		}
	}
	c.UpdatedAt = project.NextStamp(m.now(), prev)
	pub, err := shown(reg, c)
	if err != nil {
		return AuthConfig{}, err
	}
	return pub, m.store.UpdateAuthConfig(ctx, c, prev, m.event(actor, "update", pub))
}

// Get returns an identity's configuration of method.
func (m *Methods) Get(ctx context.Context, actor authz.Actor, method, identityID string) (AuthConfig, error) {
	reg, c, _, err := m.config(ctx, actor, method, identityID, authz.ActRead)
	if err != nil {
		return AuthConfig{}, err
	}
	return shown(reg, c)
}

// Remove deletes an identity's configuration of method and revokes every
// token issued through it.
func (m *Methods) Remove(ctx context.Context, actor authz.Actor, method, identityID string) (AuthConfig, error) {
	reg, c, _, err := m.config(ctx, actor, method, identityID, authz.ActEdit)
	if err != nil {
		return AuthConfig{}, err
	}
	if err := m.admin.check(ctx, actor, authz.ActRevokeAuth, c.IdentityID); err != nil {
		return AuthConfig{}, err
	}
	if c, err = shown(reg, c); err != nil {
		return AuthConfig{}, err
	}
	ev := audit.New(actor, "revoke-identity-"+method, map[string]any{"identityId": c.IdentityID})
	if err := m.store.DeleteAuthConfig(ctx, c.IdentityID, method, ev); err != nil {
		return AuthConfig{}, err
	}
	m.mu.Lock()
	delete(m.built, c.ID)
	m.mu.Unlock()
	return c, nil
}

// method returns the built method of c (of an identity in orgID), building
// it once per version of c.
func (m *Methods) method(ctx context.Context, reg authmethod.Registration, orgID string, c AuthConfig) (authmethod.Method, error) {
	m.mu.Lock()
	b, ok := m.built[c.ID]
	m.mu.Unlock()
	if ok && b.updatedAt.Equal(c.UpdatedAt) {
		return b.m, nil
	}
	plain, err := m.openConfig(ctx, reg, orgID, c.ID, c.Config)
	if err != nil {
		return nil, err
	}
	meth, err := reg.New(m.env, plain)
	if err != nil {
		return nil, errs.Internalf(err, "build %s method", c.Method)
	}
	m.mu.Lock()
	if len(m.built) >= maxBuiltMethods {
		clear(m.built)
	}
	m.built[c.ID] = builtMethod{c.UpdatedAt, meth}
	m.mu.Unlock()
	return meth, nil
}

// ErrConfigChanged is the store's refusal of a login whose configuration
// was removed, or its keys or bounds changed, after the login read it.
var ErrConfigChanged = errors.New("the login method's configuration changed during the login")

// Login exchanges a credential from the workload's platform for an access
// token of identityID, through its configuration of method. A refused
// credential is 401 with a message naming the check that failed; every
// attempt on a configured identity is audited, with the reason when refused.
// A non-empty orgSlug must be the slug of the identity's organization, as
// for Universal Auth.
func (m *Methods) Login(ctx context.Context, method, identityID string, credential authmethod.Credential, orgSlug, ip, userAgent string) (res LoginResult, err error) {
	reg, err := lookupMethod(method)
	if err != nil {
		return LoginResult{}, err
	}
	notConfigured := errs.NotFoundf("%s method not found for identity, did you configure %s?", reg.DisplayName, reg.DisplayName)
	if _, perr := uuid.Parse(identityID); perr != nil {
		return LoginResult{}, notConfigured
	}
	c, ident, ownSlug, err := m.store.AuthConfigLogin(ctx, identityID, method)
	if errs.Is(err, errs.NotFound) {
		return LoginResult{}, notConfigured
	}
	if err != nil {
		return LoginResult{}, err
	}
	actor := authz.Actor{Kind: authz.ActorIdentity, ID: ident.ID, OrgID: ident.OrgID, Name: ident.Name, IP: ip, UserAgent: userAgent}
	var check string
	attempt := 0 // of a guess counted towards a lockout
	defer func() {
		if err != nil {
			m.auditFailure(ctx, actor, c, check, attempt, err)
		}
	}()
	// Before the credential is looked at: a caller outside the trusted
	// networks gets nothing it could use, and makes the server fetch nothing.
	if !IPAllowed(c.AccessTokenTrustedIPs, ip) {
		check = "trusted-ip"
		return LoginResult{}, errs.Forbiddenf("You are not allowed to access this resource from the current IP address")
	}
	meth, err := m.method(ctx, reg, ident.OrgID, c)
	if err != nil {
		return LoginResult{}, err
	}
	lk, err := m.reserve(ctx, meth, credential, ident.ID, method)
	if err != nil {
		return LoginResult{}, err
	}
	if lk != nil && lk.locked {
		check = "lockout"
		return LoginResult{}, errs.Unauthorizedf("This identity auth method is temporarily locked, please try again later")
	}
	v, verr := authmethod.VerifyCredential(ctx, meth, credential)
	if lk != nil {
		r, refused := errors.AsType[*authmethod.Refusal](verr)
		guess := refused && r.Guess
		if guess {
			attempt = lk.n
		}
		defer func() { m.settle(ctx, lk, err == nil, guess) }()
	}
	return m.verified(ctx, reg, c, ident, ownSlug, orgSlug, actor, v, verr, &check)
}

// verified finishes a login whose credential was verified (err nil) or
// refused: it names the failed check in *check and issues the token.
func (m *Methods) verified(ctx context.Context, reg authmethod.Registration, c AuthConfig, ident Identity, ownSlug, orgSlug string,
	actor authz.Actor, v authmethod.Verified, err error, check *string) (LoginResult, error) {
	method := reg.Name
	if r, ok := errors.AsType[*authmethod.Refusal](err); ok {
		*check = r.Check
		if r.Err != nil {
			slog.WarnContext(ctx, "login refused", "method", method, "identityId", ident.ID, "check", r.Check, "detail", r.Err.Error())
		}
		if r.Guess {
			// Which of a guessed credential's checks failed (an unknown
			// user, a wrong password) is the operator's to know: every
			// member of the organization reads its audit log.
			slog.InfoContext(ctx, "login refused", "method", method, "identityId", ident.ID, "check", r.Check)
			*check = "credentials"
		}
		return LoginResult{}, errs.Unauthorizedf("%s", r.Message)
	}
	if err != nil {
		return LoginResult{}, errs.Internalf(err, "verify %s credential", method)
	}
	if err := checkOrgSlug(ownSlug, orgSlug); err != nil {
		*check = "organization"
		return LoginResult{}, err
	}
	now := m.now().UTC().Truncate(time.Microsecond)
	tok := AccessToken{ID: NewID(), IdentityID: ident.ID, AuthMethod: method, TTL: c.AccessTokenTTL, MaxTTL: c.AccessTokenMaxTTL,
		NumUsesLimit: c.AccessTokenNumUsesLimit, TrustedIPs: c.AccessTokenTrustedIPs, CreatedAt: now, UpdatedAt: now}
	md := map[string]any{"identityId": ident.ID, "identityAccessTokenId": tok.ID, reg.WireKey + "Id": c.ID}
	if len(v.Metadata) > 0 {
		md["claimMetadata"] = v.Metadata
	}
	if err := m.store.LoginWithAuthConfig(ctx, tok, c, ident.OrgID, audit.New(actor, "login-identity-"+method, md)); err != nil {
		if errors.Is(err, ErrConfigChanged) {
			*check = "configuration"
			return LoginResult{}, errs.Unauthorizedf("The identity's %s configuration was changed or removed during the login; try again", reg.DisplayName)
		}
		return LoginResult{}, err
	}
	return m.svc.issue(ctx, tok, now)
}

// auditFailure records a refused login with its reason (the client's
// message, never the credential); best effort, the login has failed either way.
// attempt, when not 0, is the guess's number in its lockout window.
func (m *Methods) auditFailure(ctx context.Context, actor authz.Actor, c AuthConfig, check string, attempt int, cause error) {
	reason := "internal error"
	if e, ok := errors.AsType[*errs.Error](cause); ok && e.Kind != errs.Internal {
		reason = audit.Clip(e.Message, audit.MaxReasonBytes)
	}
	md := map[string]any{"identityId": c.IdentityID, "authConfigId": c.ID, "reason": reason}
	if check != "" {
		md["check"] = check
	}
	if attempt > 0 {
		md["failedAttempts"] = attempt
	}
	m.store.AppendAudit(context.WithoutCancel(ctx), audit.New(actor, "login-identity-"+c.Method+"-failed", md))
}

// methodLock is the lockout state of one login attempt of a Locker method.
type methodLock struct {
	key    string
	policy LockoutPolicy
	n      int  // the attempt's number in the current window
	locked bool // the subject was locked: nothing was reserved
}

// reserve counts an attempt of credential against its subject's lockout
// before it is verified, so concurrent guesses cannot slip past the
// threshold between a check and an increment. It returns nil when meth has
// no lockout for credential.
func (m *Methods) reserve(ctx context.Context, meth authmethod.Method, credential authmethod.Credential, identityID, method string) (*methodLock, error) {
	lk, ok := meth.(authmethod.Locker)
	if !ok {
		return nil, nil
	}
	subject, p, on := lk.LockoutOf(credential)
	if !on {
		return nil, nil
	}
	h, err := m.lockKeys.Sum(ctx, m.svc.keys, identityID+"\x00"+method+"\x00"+subject)
	if err != nil {
		return nil, err
	}
	l := &methodLock{key: lockPrefix(identityID, method) + hex.EncodeToString(h),
		policy: LockoutPolicy{Threshold: p.Threshold, Duration: p.Duration, CounterReset: p.CounterReset}}
	n, ok, err := m.store.ReserveUserLoginAttempt(ctx, l.key, l.policy, m.now().UTC().Truncate(time.Microsecond))
	if err != nil {
		return nil, err
	}
	l.n, l.locked = n, !ok
	return l, nil
}

// lockPrefix begins the lockout keys of an identity's method.
func lockPrefix(identityID, method string) string { return "m:" + identityID + ":" + method + ":" }

// ClearLockouts lifts every lockout of an identity's method (LDAP: one per
// username), as Infisical's clear-lockouts does, and returns how many it
// lifted. It needs the right to edit the identity.
func (m *Methods) ClearLockouts(ctx context.Context, actor authz.Actor, method, identityID string) (int, error) {
	reg, c, _, err := m.config(ctx, actor, method, identityID, authz.ActEdit)
	if err != nil {
		return 0, err
	}
	if !reg.Lockout {
		return 0, errs.BadRequest("%s has no lockout", reg.DisplayName)
	}
	ev := audit.New(actor, "clear-identity-"+method+"-lockouts", map[string]any{"identityId": c.IdentityID})
	return m.store.ClearUserLoginAttemptsPrefix(ctx, lockPrefix(c.IdentityID, method), ev)
}

// settle ends a reservation: a success clears the subject's count, a guess
// keeps its reservation as the failure it is (and prunes lapsed counters),
// any other outcome takes it back. Best effort: the answer is already decided.
func (m *Methods) settle(ctx context.Context, l *methodLock, success, guess bool) {
	ctx = context.WithoutCancel(ctx)
	var err error
	switch {
	case success:
		err = m.store.ClearUserLoginAttempts(ctx, l.key)
	case guess:
		err = m.store.RecordFailedUserLogin(ctx, m.now().UTC().Truncate(time.Microsecond), nil)
	default:
		err = m.store.ReleaseUserLoginAttempt(ctx, l.key, l.policy.Threshold)
	}
	if err != nil {
		slog.ErrorContext(ctx, "settle a login lockout", "err", err.Error())
	}
}

// MethodNames are the registered login methods.
func MethodNames() []string {
	var out []string
	for _, r := range authmethod.All() {
		out = append(out, r.Name)
	}
	return out
}

// sameJSON reports whether a and b hold the same JSON value, whatever the
// order of their objects' keys.
func sameJSON(a, b []byte) bool {
	if bytes.Equal(a, b) {
		return true
	}
	var va, vb any
	if json.Unmarshal(a, &va) != nil || json.Unmarshal(b, &vb) != nil {
		return false
	}
	return reflect.DeepEqual(va, vb)
}
