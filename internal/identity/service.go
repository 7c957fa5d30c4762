package identity

import (
	"cmp"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/lockbox-dev/lockbox/internal/audit"
	"github.com/lockbox-dev/lockbox/internal/authz"
	"github.com/lockbox-dev/lockbox/internal/cache"
	"github.com/lockbox-dev/lockbox/internal/errs"
	"github.com/lockbox-dev/lockbox/internal/keyring"
	"github.com/lockbox-dev/lockbox/internal/project"
)

// Store is the storage the identity service needs.
type Store interface {
	// Bootstrap writes the first user, organization and admin identity. It
	// reports errs.Conflict if the instance was already set up.
	Bootstrap(ctx context.Context, b BootstrapRecord) error
	// AccessTokenByID returns the token with its identity's org and name.
	AccessTokenByID(ctx context.Context, id string) (AccessToken, IdentityRef, error)
	LastUseStore
	// ConsumeAccessTokenUse counts one use of a token with a use limit; it
	// reports false when the limit is already reached or the token is revoked.
	ConsumeAccessTokenUse(ctx context.Context, id string) (bool, error)
	UserByEmail(ctx context.Context, email string) (User, error)
	UserByID(ctx context.Context, id string) (User, error)
	CreateSession(ctx context.Context, s Session) error
	SessionByID(ctx context.Context, id string) (Session, error)
	// RevokeSession ends a user's API session on every node.
	RevokeSession(ctx context.Context, id string) error
	// UserOrgs lists the organizations the user is a member of.
	UserOrgs(ctx context.Context, userID string) ([]project.Org, error)
	// UserTOTP reports errs.NotFound when the user has no second factor.
	UserTOTP(ctx context.Context, userID string) (UserTOTP, error)
	// Initialized reports whether the instance has been bootstrapped.
	Initialized(ctx context.Context) (bool, error)
	// ReserveUserLoginAttempt counts one password login of the email keyed by
	// emailHash before the password is checked, in one atomic conditional
	// statement, and returns its number in the current window; it reports
	// false, changing nothing, while the email is locked. The attempt that
	// reaches the threshold sets the lock.
	ReserveUserLoginAttempt(ctx context.Context, emailHash string, p LockoutPolicy, now time.Time) (int, bool, error)
	// ReleaseUserLoginAttempt takes back a reservation whose password was
	// never judged, lifting the lock it may have set.
	ReleaseUserLoginAttempt(ctx context.Context, emailHash string, threshold int) error
	// ClearUserLoginAttempts forgets an email's failed logins.
	ClearUserLoginAttempts(ctx context.Context, emailHash string) error
	// RecordFailedUserLogin appends evs and prunes lapsed counters.
	RecordFailedUserLogin(ctx context.Context, now time.Time, evs []audit.Event) error
	// AppendAudit records an event that goes with no change; it returns once the event is committed.
	AppendAudit(ctx context.Context, ev audit.Event) error
}

// IdentityRef is an identity's name and the organization it is a member of.
type IdentityRef struct {
	OrgID string
	Name  string
}

// BootstrapRecord is everything bootstrap creates, written in one transaction.
type BootstrapRecord struct {
	User        User
	Org         project.Org
	OrgDataKey  []byte
	RootKeyID   string
	Identity    Identity
	TokenAuth   TokenAuth
	AccessToken AccessToken
	Event       audit.Event
}

// DefaultUserLockout locks an email for 15 minutes after 5 failed password
// logins, each within 15 minutes of the one before.
var DefaultUserLockout = LockoutPolicy{Threshold: 5, Duration: 15 * time.Minute, CounterReset: 15 * time.Minute}

// Service implements authentication and bootstrap.
type Service struct {
	store Store
	keys  *keyring.Keyring
	now   func() time.Time

	// Hasher bounds the argon2id work of password logins and bootstrap.
	Hasher *PasswordHasher
	// UserLockout is the lockout of password logins.
	UserLockout LockoutPolicy
	// ServiceTokens authenticates "st." bearer tokens; nil refuses them.
	ServiceTokens *ServiceTokens
	// LastUse records the last use of the access tokens and service tokens
	// requests are authenticated with; run it with Run(ctx) for the life of
	// the node.
	LastUse *LastUse

	once   sync.Once
	sig    signer
	sigErr error

	emails KeyedHash // keys the lockout of an email without storing it

	// Verified JWTs by digest, and token and session rows by id
	// (SetCache); nil: verify and read each time.
	verified *cache.Map[[sha256.Size]byte, claims]
	tokens   *cache.Map[string, tokenRow]
	sessions *cache.Map[string, sessionRow]
}

type tokenRow struct {
	t   AccessToken
	ref IdentityRef
}

type sessionRow struct {
	s Session
	u User
}

// MaxCachedTokens bounds the access tokens, the sessions and the service
// tokens a node keeps in memory (each).
const MaxCachedTokens = 100_000

// SetCache keeps token and session rows in memory in generation g, so that a
// request with a known token reads nothing; revoking, renewing or deleting
// anything moves the generation.
func (s *Service) SetCache(g *cache.Gen) {
	s.verified = cache.NewMap[[sha256.Size]byte, claims](g, MaxCachedTokens)
	s.tokens = cache.NewMap[string, tokenRow](g, MaxCachedTokens)
	s.sessions = cache.NewMap[string, sessionRow](g, MaxCachedTokens)
}

// NewService returns an identity service with DefaultPasswordHashConcurrency
// and DefaultUserLockout.
func NewService(st Store, kr *keyring.Keyring, now func() time.Time) *Service {
	if now == nil {
		now = time.Now
	}
	return &Service{store: st, keys: kr, now: now, Hasher: NewPasswordHasher(DefaultPasswordHashConcurrency),
		UserLockout: DefaultUserLockout, emails: KeyedHash{Purpose: "login-lockout-hmac"}, LastUse: newLastUse(st)}
}

func (s *Service) signer(ctx context.Context) (signer, error) {
	s.once.Do(func() {
		k, err := s.keys.SystemKey(ctx, "jwt")
		s.sig, s.sigErr = signer{k}, err
	})
	return s.sig, s.sigErr
}

// NewID returns a new time-ordered identifier.
func NewID() string { return uuid.Must(uuid.NewV7()).String() }

// BootstrapResult is what bootstrap returns, once.
type BootstrapResult struct {
	User     User
	Org      project.Org
	Identity Identity
	Token    string
}

// Bootstrap sets up a fresh instance: an admin user, an organization, and an
// admin machine identity with a Token Auth token. It succeeds exactly once per
// instance, even under concurrent calls.
func (s *Service) Bootstrap(ctx context.Context, email, password, orgName, ip, userAgent string) (BootstrapResult, error) {
	email = strings.ToLower(strings.TrimSpace(email))
	orgName = strings.TrimSpace(orgName)
	switch {
	case email == "" || !strings.Contains(email, "@") || strings.ContainsAny(email, " \t\r\n"):
		return BootstrapResult{}, fieldErr("email", "Invalid email")
	case strings.TrimSpace(password) == "":
		return BootstrapResult{}, fieldErr("password", "String must contain at least 1 character(s)")
	case len(password) > 1024:
		return BootstrapResult{}, fieldErr("password", "String must contain at most 1024 character(s)")
	case orgName == "":
		return BootstrapResult{}, fieldErr("organization", "String must contain at least 1 character(s)")
	case len(orgName) > 64:
		return BootstrapResult{}, fieldErr("organization", "String must contain at most 64 character(s)")
	}
	sig, err := s.signer(ctx)
	if err != nil {
		return BootstrapResult{}, err
	}
	// A set-up instance refuses without hashing; a racing bootstrap is
	// refused by the store.
	if done, err := s.store.Initialized(ctx); err != nil {
		return BootstrapResult{}, err
	} else if done {
		return BootstrapResult{}, errAlreadySetUp()
	}
	hash, err := s.Hasher.Hash(ctx, password)
	if err != nil {
		return BootstrapResult{}, err
	}
	now := s.now().UTC().Truncate(time.Microsecond)
	slug := project.Slugify(orgName)
	if slug == "" {
		slug = "org"
	}
	slug += "-" + project.RandomSuffix(4)
	rec := BootstrapRecord{
		User: User{ID: NewID(), Email: email, Username: email, FirstName: "Admin", LastName: "User",
			SuperAdmin: true, PasswordHash: hash, CreatedAt: now, UpdatedAt: now},
		Org:       project.Org{ID: NewID(), Name: orgName, Slug: slug, CreatedAt: now, UpdatedAt: now},
		RootKeyID: s.keys.RootKeyID(),
	}
	rec.OrgDataKey, err = s.keys.NewDataKey(keyring.Org(rec.Org.ID))
	if err != nil {
		return BootstrapResult{}, err
	}
	rec.Identity = Identity{ID: NewID(), OrgID: rec.Org.ID, Name: "Instance Admin Identity",
		AuthMethods: []string{MethodTokenAuth}, CreatedAt: now, UpdatedAt: now}
	rec.TokenAuth = TokenAuth{ID: NewID(), IdentityID: rec.Identity.ID, AccessTokenTrustedIPs: AnyIP, CreatedAt: now, UpdatedAt: now}
	rec.AccessToken = AccessToken{ID: NewID(), IdentityID: rec.Identity.ID, AuthMethod: MethodTokenAuth,
		Name: "Instance Admin Token", TrustedIPs: AnyIP, CreatedAt: now, UpdatedAt: now}
	actor := authz.Actor{Kind: authz.ActorUser, ID: rec.User.ID, OrgID: rec.Org.ID, Name: email, IP: ip, UserAgent: userAgent}
	rec.Event = audit.New(actor, "bootstrap-instance", map[string]any{"organizationId": rec.Org.ID, "identityId": rec.Identity.ID})
	if err := s.store.Bootstrap(ctx, rec); err != nil {
		if errs.Is(err, errs.Conflict) {
			return BootstrapResult{}, errAlreadySetUp()
		}
		return BootstrapResult{}, err
	}
	tok, err := sig.sign(claims{AuthTokenType: TypeIdentityAccessToken, IdentityID: rec.Identity.ID,
		IdentityAccessTokenID: rec.AccessToken.ID, AuthMethod: MethodTokenAuth}, now, lifetime(0, 0, now, now))
	if err != nil {
		return BootstrapResult{}, err
	}
	return BootstrapResult{User: rec.User, Org: rec.Org, Identity: rec.Identity, Token: tok}, nil
}

func errAlreadySetUp() error { return errs.BadRequest("Instance has already been set up") }

func fieldErr(name, msg string) error {
	e := errs.Invalidf("%s", msg)
	e.Details = []string{name}
	return e
}

// Authenticate verifies a bearer token and returns its actor. Every request
// re-checks the token's record, so revocation is immediate.
func (s *Service) Authenticate(ctx context.Context, tok, ip, userAgent string) (authz.Actor, error) {
	return s.authenticate(ctx, tok, ip, userAgent, true)
}

// Recheck reports whether a token that authenticated a long-lived request
// (an event stream) still would: not revoked, deleted or expired, its
// identity or user still a member, from the same address. Unlike
// Authenticate it counts no use and notes no last use: the request it
// authenticated was the use. Given an unsynced context it reads the
// records afresh.
func (s *Service) Recheck(ctx context.Context, tok, ip, userAgent string) error {
	_, err := s.authenticate(ctx, tok, ip, userAgent, false)
	return err
}

func (s *Service) authenticate(ctx context.Context, tok, ip, userAgent string, use bool) (authz.Actor, error) {
	if strings.HasPrefix(tok, ServiceTokenPrefix) {
		if s.ServiceTokens == nil {
			return authz.Actor{}, errs.Unauthorizedf("Invalid service token")
		}
		return s.ServiceTokens.authenticate(ctx, tok, ip, userAgent, use)
	}
	sig, err := s.signer(ctx)
	if err != nil {
		return authz.Actor{}, err
	}
	now := s.now()
	// A JWT that verified once verifies again until it expires: keyed by
	// its digest, so that looking one up compares no token bytes.
	c, err := cache.Load(ctx, s.verified, sha256.Sum256([]byte(tok)), now, func(context.Context) (claims, time.Time, error) {
		c, err := sig.parse(tok, now)
		if err != nil || c.ExpiresAt == nil {
			return c, time.Time{}, err
		}
		return c, c.ExpiresAt.Time, nil
	})
	if err != nil {
		return authz.Actor{}, err
	}
	switch c.AuthTokenType {
	case TypeIdentityAccessToken:
		return s.authIdentity(ctx, c, now, ip, userAgent, use)
	case TypeUserAccessToken:
		return s.authUser(ctx, c, now, ip, userAgent)
	}
	return authz.Actor{}, tokenMalformed()
}

func (s *Service) authIdentity(ctx context.Context, c claims, now time.Time, ip, ua string, use bool) (authz.Actor, error) {
	row, err := cache.Load(ctx, s.tokens, c.IdentityAccessTokenID, now, func(ctx context.Context) (tokenRow, time.Time, error) {
		t, ref, err := s.store.AccessTokenByID(ctx, c.IdentityAccessTokenID)
		return tokenRow{t, ref}, time.Time{}, err
	})
	t, ref := row.t, row.ref
	if errs.Is(err, errs.NotFound) || (err == nil && (t.Revoked || t.IdentityID != c.IdentityID)) {
		return authz.Actor{}, errs.Unauthorizedf("No identity access token found")
	}
	if err != nil {
		return authz.Actor{}, err
	}
	if end, ok := t.ttlEnd(); ok && !now.Before(end) {
		return authz.Actor{}, errs.Unauthorizedf("Failed to authenticate: access token has expired")
	}
	if end, ok := t.maxEnd(); ok && !now.Before(end) {
		return authz.Actor{}, errs.Unauthorizedf("Failed to authenticate: access token has reached its max TTL")
	}
	if !IPAllowed(t.TrustedIPs, ip) {
		return authz.Actor{}, errs.Forbiddenf("You are not allowed to access this resource from the current IP address")
	}
	if t.NumUsesLimit > 0 && use {
		ok, err := s.store.ConsumeAccessTokenUse(ctx, t.ID)
		if err != nil {
			return authz.Actor{}, err
		}
		if !ok {
			return authz.Actor{}, errs.Unauthorizedf("Failed to authorize: token usage limit reached")
		}
	}
	if t.NumUsesLimit == 0 && use { // a limited token's use was counted, with its time
		s.LastUse.note(t.ID, now)
	}
	return authz.Actor{Kind: authz.ActorIdentity, ID: t.IdentityID, OrgID: ref.OrgID, Name: ref.Name,
		TokenID: t.ID, AuthMethod: t.AuthMethod, IP: ip, UserAgent: ua}, nil
}

// SessionLifetime is how long a human session lives.
const SessionLifetime = 10 * 24 * time.Hour

func (s *Service) authUser(ctx context.Context, c claims, now time.Time, ip, ua string) (authz.Actor, error) {
	row, err := cache.Load(ctx, s.sessions, c.TokenVersionID, now, func(ctx context.Context) (sessionRow, time.Time, error) {
		sess, err := s.store.SessionByID(ctx, c.TokenVersionID)
		if err != nil {
			return sessionRow{}, time.Time{}, err
		}
		u, err := s.store.UserByID(ctx, sess.UserID)
		return sessionRow{sess, u}, time.Time{}, err
	})
	sess, u := row.s, row.u
	if errs.Is(err, errs.NotFound) || (err == nil && (sess.Revoked || sess.UserID != c.UserID || !now.Before(sess.ExpiresAt))) {
		return authz.Actor{}, errs.Unauthorizedf("Session is no longer valid")
	}
	if err != nil {
		return authz.Actor{}, err
	}
	return authz.Actor{Kind: authz.ActorUser, ID: u.ID, OrgID: sess.OrgID, Name: u.Email,
		TokenID: sess.ID, AuthMethod: MethodEmail, IP: ip, UserAgent: ua}, nil
}

// Login checks a user's email and password and returns a session token that
// is not yet scoped to an organization.
//
// Each attempt takes a Hasher slot (or fails as rate limited) and is counted
// against the email's lockout before the password is hashed; a locked email
// is refused without hashing. Unknown emails are hashed against a dummy and
// counted and locked alike, so neither the time nor the answer tells whether
// an account exists. A success clears the count. A user with a second factor
// is refused (after the password, without counting it as a guess).
func (s *Service) Login(ctx context.Context, email, password, ip, userAgent string) (string, error) {
	u, key, err := s.checkPassword(ctx, email, password, ip, userAgent)
	if err != nil {
		return "", err
	}
	// The dashboard, which asks for the second factor, is where such a
	// user logs in.
	if err := s.passwordOnly(ctx, u.ID, key, errs.Unauthorizedf("This account has a second factor: log in on the dashboard")); err != nil {
		return "", err
	}
	tok, err := s.newSession(ctx, u.ID, "")
	if err != nil {
		return "", s.giveBack(ctx, key, err)
	}
	if err := s.loginSucceeded(ctx, u, key, ip, userAgent); err != nil {
		return "", err
	}
	return tok, nil
}

// checkPassword is Login's password check and lockout: it returns the user
// and the lockout key of the email, or an error that says nothing about
// whether the account exists. The caller finishes a success with
// loginSucceeded or takes the attempt back with giveBack.
func (s *Service) checkPassword(ctx context.Context, email, password, ip, userAgent string) (User, string, error) {
	email = strings.ToLower(strings.TrimSpace(email))
	if email == "" || password == "" {
		return User{}, "", errs.Invalidf("email and password are required")
	}
	key, err := s.emailHash(ctx, email)
	if err != nil {
		return User{}, "", err
	}
	release, err := s.Hasher.Acquire(ctx)
	if err != nil {
		return User{}, "", err
	}
	defer release()
	now := s.now().UTC().Truncate(time.Microsecond)
	n, ok, err := s.store.ReserveUserLoginAttempt(ctx, key, s.UserLockout, now)
	if err != nil {
		return User{}, "", err
	}
	if !ok {
		return User{}, "", errs.Unauthorizedf("This account is temporarily locked, please try again later")
	}
	u, err := s.store.UserByEmail(ctx, email)
	if err != nil && !errs.Is(err, errs.NotFound) {
		return User{}, "", s.giveBack(ctx, key, err)
	}
	hash, real := hashToCheck(u, err)
	match := CheckPassword(hash, password)
	release()
	if !match || !real {
		if err := s.failedLogin(ctx, u, n, now, ip, userAgent); err != nil {
			return User{}, "", err
		}
		return User{}, "", errs.BadRequest("Invalid credentials")
	}
	return u, key, nil
}

// ProvePassword checks a user's password as Login does (the email's
// lockout, a Hasher slot, the same answers) without starting a session, for
// an act only the account's owner may do: accepting an invitation into an
// organization with an account that already has a password.
//
// A user with a second factor is refused as Login refuses them, the attempt
// handed back and the lockout not cleared: a password alone must not undo
// the count of wrong codes.
func (s *Service) ProvePassword(ctx context.Context, email, password, ip, userAgent string) (User, error) {
	u, key, err := s.checkPassword(ctx, email, password, ip, userAgent)
	if err != nil {
		return User{}, err
	}
	if err := s.passwordOnly(ctx, u.ID, key, errs.Forbiddenf("This account has a second factor, which an invitation cannot check; ask an admin to add you once you are logged in")); err != nil {
		return User{}, err
	}
	return u, s.store.ClearUserLoginAttempts(ctx, key)
}

// passwordOnly lets through a user whose password was just checked only if
// the password is all they have: one with a second factor gets refusal, and
// the attempt (the email's lockout key) is handed back, neither counted as
// a wrong guess nor clearing the count of wrong ones.
func (s *Service) passwordOnly(ctx context.Context, userID, key string, refusal error) error {
	t, err := s.store.UserTOTP(ctx, userID)
	if err != nil && !errs.Is(err, errs.NotFound) {
		return s.giveBack(ctx, key, err)
	}
	if err == nil && t.Enabled {
		return s.giveBack(ctx, key, refusal)
	}
	return nil
}

// loginSucceeded clears the email's failed logins and audits the login in
// every organization of the user.
func (s *Service) loginSucceeded(ctx context.Context, u User, key, ip, userAgent string) error {
	if err := s.store.ClearUserLoginAttempts(ctx, key); err != nil {
		return err
	}
	orgs, err := s.store.UserOrgs(ctx, u.ID)
	if err != nil {
		slog.ErrorContext(ctx, "audit of a login lost", "err", err.Error())
	}
	for _, o := range orgs {
		actor := authz.Actor{Kind: authz.ActorUser, ID: u.ID, OrgID: o.ID, Name: u.Email, IP: ip, UserAgent: userAgent}
		auditBestEffort(ctx, s.store.AppendAudit, audit.New(actor, "user-login", map[string]any{"userId": u.ID}))
	}
	return nil
}

// giveBack takes back the lockout reservation of a login that failed for a
// reason other than its password, and returns cause.
func (s *Service) giveBack(ctx context.Context, key string, cause error) error {
	if err := s.store.ReleaseUserLoginAttempt(context.WithoutCancel(ctx), key, s.UserLockout.Threshold); err != nil {
		return errors.Join(cause, err)
	}
	return cause
}

// failedLogin audits a wrong password of the n-th attempt in the window, in
// every organization of the user, and prunes lapsed counters. Unknown emails
// are not audited: what was typed may be anything, a password included. No
// event carries the password.
func (s *Service) failedLogin(ctx context.Context, u User, n int, now time.Time, ip, userAgent string) error {
	var evs []audit.Event
	if u.ID != "" {
		orgs, err := s.store.UserOrgs(ctx, u.ID)
		if err != nil {
			return err
		}
		locked := n >= s.UserLockout.Threshold
		for _, o := range orgs {
			actor := authz.Actor{Kind: authz.ActorUser, ID: u.ID, OrgID: o.ID, Name: u.Email, IP: ip, UserAgent: userAgent}
			evs = append(evs, audit.New(actor, "user-login-failed", map[string]any{"userId": u.ID,
				"failedAttempts": n, "locked": locked}))
			if locked {
				evs = append(evs, audit.New(actor, "user-login-locked", map[string]any{"userId": u.ID,
					"lockedUntil": now.Add(s.UserLockout.Duration).Format(time.RFC3339)}))
			}
		}
	}
	return s.store.RecordFailedUserLogin(ctx, now, evs)
}

// emailHash keys the lockout of an email without storing the email.
func (s *Service) emailHash(ctx context.Context, email string) (string, error) {
	h, err := s.emails.Sum(ctx, s.keys, email)
	return hex.EncodeToString(h), err
}

// SelectOrganization exchanges a session token for one scoped to orgID, of
// which the user must be a member.
func (s *Service) SelectOrganization(ctx context.Context, actor authz.Actor, orgID string) (string, error) {
	if actor.Kind != authz.ActorUser {
		return "", errs.Forbiddenf("Only users can select an organization")
	}
	if _, ok, err := s.activeOrg(ctx, actor.ID, orgID); err != nil {
		return "", err
	} else if !ok {
		return "", errs.Forbiddenf("User is not a member of organization %s", orgID)
	}
	// The new session ends when the one it comes from does: switching
	// organizations never extends a session.
	until, family := time.Time{}, ""
	if actor.TokenID != "" {
		cur, err := s.store.SessionByID(ctx, actor.TokenID)
		if errs.Is(err, errs.NotFound) {
			return "", errs.Unauthorizedf("Session is no longer valid")
		}
		if err != nil {
			return "", err
		}
		until, family = cur.ExpiresAt, cmp.Or(cur.FamilyID, cur.ID)
	}
	return s.newSessionUntil(ctx, actor.ID, orgID, until, family)
}

// activeOrg returns organization orgID if the user is an accepted, active
// member of it.
func (s *Service) activeOrg(ctx context.Context, userID, orgID string) (project.Org, bool, error) {
	orgs, err := s.store.UserOrgs(ctx, userID)
	if err != nil {
		return project.Org{}, false, err
	}
	for _, o := range orgs {
		if o.ID == orgID {
			return o, true, nil
		}
	}
	return project.Org{}, false, nil
}

// UserOrgs lists the organizations of a user actor.
func (s *Service) UserOrgs(ctx context.Context, actor authz.Actor) ([]project.Org, error) {
	if actor.Kind != authz.ActorUser {
		return nil, errs.Forbiddenf("Only users can list their organizations")
	}
	return s.store.UserOrgs(ctx, actor.ID)
}

func (s *Service) newSession(ctx context.Context, userID, orgID string) (string, error) {
	return s.newSessionUntil(ctx, userID, orgID, time.Time{}, "")
}

// newSessionUntil is newSession ending at until when that is sooner than
// SessionLifetime from now (zero: no bound), in the family of the login
// session family (empty: a login's first session).
func (s *Service) newSessionUntil(ctx context.Context, userID, orgID string, until time.Time, family string) (string, error) {
	sess, token, err := s.prepareSession(ctx, userID, orgID, until, family)
	if err != nil {
		return "", err
	}
	if err := s.store.CreateSession(ctx, sess); err != nil {
		return "", err
	}
	return token, nil
}

// prepareSession is newSessionUntil's session and token, not yet stored:
// the token is good only once the session is.
func (s *Service) prepareSession(ctx context.Context, userID, orgID string, until time.Time, family string) (Session, string, error) {
	sig, err := s.signer(ctx)
	if err != nil {
		return Session{}, "", err
	}
	now := s.now().UTC().Truncate(time.Microsecond)
	life := SessionLifetime
	if !until.IsZero() && until.Sub(now) < life {
		life = until.Sub(now)
	}
	if life < time.Second { // a JWT's exp counts whole seconds
		return Session{}, "", errs.Unauthorizedf("Session is no longer valid")
	}
	sess := Session{ID: NewID(), UserID: userID, OrgID: orgID, FamilyID: family, CreatedAt: now, ExpiresAt: now.Add(life)}
	token, err := sig.sign(claims{AuthTokenType: TypeUserAccessToken, UserID: userID, TokenVersionID: sess.ID,
		OrganizationID: orgID, AuthMethod: MethodEmail}, now, life)
	if err != nil {
		return Session{}, "", err
	}
	return sess, token, nil
}

// revokeUserSession ends the API session behind a verified user token.
func (s *Service) revokeUserSession(ctx context.Context, c claims) error {
	sess, err := s.store.SessionByID(ctx, c.TokenVersionID)
	if errs.Is(err, errs.NotFound) || (err == nil && (sess.UserID != c.UserID || sess.Revoked)) {
		return errs.Unauthorizedf("No session found")
	}
	if err != nil {
		return err
	}
	if err := s.store.RevokeSession(ctx, sess.ID); err != nil {
		return err
	}
	actor := authz.Actor{Kind: authz.ActorUser, ID: sess.UserID, OrgID: sess.OrgID, TokenID: sess.ID}
	auditBestEffort(ctx, s.store.AppendAudit, audit.New(actor, "logout", map[string]any{"sessionId": sess.ID}))
	return nil
}

// randomHex returns n random bytes as lowercase hex.
func randomHex(n int) string {
	const hexdigits = "0123456789abcdef"
	b := make([]byte, n)
	rand.Read(b)
	out := make([]byte, 2*n)
	for i, c := range b {
		out[2*i], out[2*i+1] = hexdigits[c>>4], hexdigits[c&15]
	}
	return string(out)
}

var _ = randomHex
