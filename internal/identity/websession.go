package identity

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base32"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/lockbox-dev/lockbox/internal/audit"
	"github.com/lockbox-dev/lockbox/internal/authz"
	"github.com/lockbox-dev/lockbox/internal/dynamic/provider/totp"
	"github.com/lockbox-dev/lockbox/internal/errs"
	"github.com/lockbox-dev/lockbox/internal/keyring"
	"github.com/lockbox-dev/lockbox/internal/project"
)

// WebSession is a dashboard login. Its ID is the hex SHA-256 of the random
// token in the browser's cookie; the token itself is never stored.
type WebSession struct {
	ID         string
	UserID     string
	OrgID      string
	CreatedAt  time.Time
	ExpiresAt  time.Time // absolute timeout
	LastSeenAt time.Time // idle timeout runs from here
	MFAPending bool      // password right, second factor still owed
	Revoked    bool
}

// UserTOTP is a user's TOTP second factor; Secret is sealed.
type UserTOTP struct {
	UserID   string
	Secret   []byte
	Enabled  bool
	LastStep int64
}

// WebStore is the storage of dashboard sessions and second factors.
type WebStore interface {
	CreateWebSession(ctx context.Context, s WebSession) error
	// WebSessionByID returns a session of kind web with its user.
	WebSessionByID(ctx context.Context, id string) (WebSession, User, error)
	TouchWebSession(ctx context.Context, id string, at time.Time) error
	// CompleteWebSessionMFA ends the pending session pendingID and stores
	// next, which replaces it under a new token (errs.Unauthorized if
	// pendingID is no longer pending).
	CompleteWebSessionMFA(ctx context.Context, pendingID string, next WebSession) error
	RevokeWebSession(ctx context.Context, id string) error
	// SetWebSessionOrg moves a live session to another organization.
	SetWebSessionOrg(ctx context.Context, id, orgID string) error
	// UserTOTP reports errs.NotFound when the user has none.
	UserTOTP(ctx context.Context, userID string) (UserTOTP, error)
	// PutUserTOTP replaces the user's (not yet enabled) TOTP seed and
	// deletes its recovery codes.
	PutUserTOTP(ctx context.Context, t UserTOTP, now time.Time) error
	// EnableUserTOTP enables the seed, stores the recovery code hashes and
	// ends every session of the user but keepSession.
	EnableUserTOTP(ctx context.Context, userID, keepSession string, step int64, codeHashes []string) error
	// AdvanceTOTPStep records step as used; false when it (or a later one) was.
	AdvanceTOTPStep(ctx context.Context, userID string, step int64) (bool, error)
	// UseRecoveryCode marks an unused code used; false when there is none.
	UseRecoveryCode(ctx context.Context, userID, codeHash string, at time.Time) (bool, error)
	AppendAudit(ctx context.Context, ev audit.Event) error
	DeviceStore
}

// Default dashboard session timeouts.
const (
	DefaultWebIdleTimeout     = 30 * time.Minute
	DefaultWebAbsoluteTimeout = 12 * time.Hour
	// mfaWindow is how long a session may wait for its second factor.
	mfaWindow = 5 * time.Minute
	// touchEvery bounds the writes of last_seen_at to one per minute per session.
	touchEvery = time.Minute
)

// Web signs users in to the dashboard: password and lockout through the
// identity Service, optional TOTP, server-side sessions.
type Web struct {
	svc   *Service
	store WebStore
	now   func() time.Time

	Idle     time.Duration
	Absolute time.Duration

	csrf     KeyedHash
	recovery KeyedHash

	deviceMu     sync.Mutex
	deviceMisses map[string]*guesses // by user id: wrong device codes
}

// NewWeb returns the dashboard's session service.
func NewWeb(svc *Service, st WebStore, now func() time.Time) *Web {
	if now == nil {
		now = time.Now
	}
	return &Web{svc: svc, store: st, now: now, Idle: DefaultWebIdleTimeout, Absolute: DefaultWebAbsoluteTimeout,
		csrf: KeyedHash{Purpose: "web-csrf"}, recovery: KeyedHash{Purpose: "recovery-code-hmac"}}
}

// WebLogin is the outcome of a password login: a session token for the
// cookie, and whether a TOTP code is still owed.
type WebLogin struct {
	Token      string
	MFAPending bool
}

func sessionID(token string) string {
	h := sha256.Sum256([]byte(token))
	return hex.EncodeToString(h[:])
}

// Login checks email and password (with the lockout and hashing cap of
// Service.Login) and opens a session in the user's first organization.
func (w *Web) Login(ctx context.Context, email, password, ip, ua string) (WebLogin, error) {
	u, key, err := w.svc.checkPassword(ctx, email, password, ip, ua)
	if err != nil {
		return WebLogin{}, err
	}
	orgs, err := w.svc.store.UserOrgs(ctx, u.ID)
	if err != nil {
		return WebLogin{}, w.svc.giveBack(ctx, key, err)
	}
	if len(orgs) == 0 {
		return WebLogin{}, w.svc.giveBack(ctx, key, errs.Forbiddenf("User is not a member of any organization"))
	}
	t, err := w.store.UserTOTP(ctx, u.ID)
	if err != nil && !errs.Is(err, errs.NotFound) {
		return WebLogin{}, w.svc.giveBack(ctx, key, err)
	}
	pending := err == nil && t.Enabled
	now := w.now().UTC().Truncate(time.Microsecond)
	token := base64.RawURLEncoding.EncodeToString(randBytes(32))
	s := WebSession{ID: sessionID(token), UserID: u.ID, OrgID: orgs[0].ID, CreatedAt: now,
		ExpiresAt: now.Add(w.Absolute), LastSeenAt: now, MFAPending: pending}
	if pending {
		s.ExpiresAt = now.Add(mfaWindow)
	}
	if err := w.store.CreateWebSession(ctx, s); err != nil {
		return WebLogin{}, w.svc.giveBack(ctx, key, err)
	}
	if !pending {
		if err := w.svc.loginSucceeded(ctx, u, key, ip, ua); err != nil {
			return WebLogin{}, err
		}
	}
	return WebLogin{Token: token, MFAPending: pending}, nil
}

// LoginSSO opens a session in orgID for a user its organization's identity
// provider vouched for (package sso checked the login), the same session a
// password login opens, TOTP included when the user enabled it. It audits
// the login.
func (w *Web) LoginSSO(ctx context.Context, u User, orgID, ip, ua string) (WebLogin, error) {
	t, err := w.store.UserTOTP(ctx, u.ID)
	if err != nil && !errs.Is(err, errs.NotFound) {
		return WebLogin{}, err
	}
	pending := err == nil && t.Enabled
	now := w.now().UTC().Truncate(time.Microsecond)
	token := base64.RawURLEncoding.EncodeToString(randBytes(32))
	s := WebSession{ID: sessionID(token), UserID: u.ID, OrgID: orgID, CreatedAt: now,
		ExpiresAt: now.Add(w.Absolute), LastSeenAt: now, MFAPending: pending}
	if pending {
		s.ExpiresAt = now.Add(mfaWindow)
	}
	if err := w.store.CreateWebSession(ctx, s); err != nil {
		return WebLogin{}, err
	}
	actor := authz.Actor{Kind: authz.ActorUser, ID: u.ID, OrgID: orgID, Name: u.Email, IP: ip, UserAgent: ua}
	if err := w.store.AppendAudit(ctx, audit.New(actor, "user-login", map[string]any{"userId": u.ID, "authMethod": "oidc",
		"mfaPending": pending})); err != nil {
		return WebLogin{}, err
	}
	return WebLogin{Token: token, MFAPending: pending}, nil
}

func randBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

var errSession = errs.Unauthorizedf("Your session has ended, please log in again")

// Session returns the session of a cookie token and the actor it acts as.
// A session that is revoked, past its absolute timeout or idle too long is
// refused; a pending second factor is reported through WebSession.MFAPending
// (the caller lets such a session reach the code form only).
func (w *Web) Session(ctx context.Context, token, ip, ua string) (WebSession, authz.Actor, error) {
	if token == "" || len(token) > 128 {
		return WebSession{}, authz.Actor{}, errSession
	}
	s, u, err := w.store.WebSessionByID(ctx, sessionID(token))
	if errs.Is(err, errs.NotFound) {
		return WebSession{}, authz.Actor{}, errSession
	}
	if err != nil {
		return WebSession{}, authz.Actor{}, err
	}
	now := w.now().UTC()
	if s.Revoked || !now.Before(s.ExpiresAt) || !now.Before(s.LastSeenAt.Add(w.Idle)) {
		return WebSession{}, authz.Actor{}, errSession
	}
	if now.Sub(s.LastSeenAt) >= touchEvery {
		if err := w.store.TouchWebSession(ctx, s.ID, now.Truncate(time.Microsecond)); err != nil {
			return WebSession{}, authz.Actor{}, err
		}
	}
	return s, authz.Actor{Kind: authz.ActorUser, ID: u.ID, OrgID: s.OrgID, Name: u.Email,
		TokenID: s.ID, AuthMethod: MethodEmail, IP: ip, UserAgent: ua}, nil
}

// Orgs lists the organizations the actor (a user) is a member of.
func (w *Web) Orgs(ctx context.Context, actor authz.Actor) ([]project.Org, error) {
	if actor.Kind != authz.ActorUser {
		return nil, nil
	}
	return w.svc.store.UserOrgs(ctx, actor.ID)
}

// SwitchOrg moves session s to organization orgID, one the user is a member
// of; anything else is refused as not found. The switch is audited in the
// organization entered.
func (w *Web) SwitchOrg(ctx context.Context, s WebSession, actor authz.Actor, orgID string) error {
	orgs, err := w.Orgs(ctx, actor)
	if err != nil {
		return err
	}
	if !slices.ContainsFunc(orgs, func(o project.Org) bool { return o.ID == orgID }) {
		return errs.NotFoundf("Organization not found")
	}
	if err := w.store.SetWebSessionOrg(ctx, s.ID, orgID); err != nil {
		return err
	}
	actor.OrgID = orgID
	auditBestEffort(ctx, w.store.AppendAudit, audit.New(actor, "user-switch-org", map[string]any{"userId": actor.ID, "orgId": orgID}))
	return nil
}

// Logout revokes the session of token; an unknown token is no error.
func (w *Web) Logout(ctx context.Context, token string, actor authz.Actor) error {
	if err := w.store.RevokeWebSession(ctx, sessionID(token)); err != nil {
		return err
	}
	if actor.ID != "" {
		auditBestEffort(ctx, w.store.AppendAudit, audit.New(actor, "user-logout", map[string]any{"userId": actor.ID}))
	}
	return nil
}

// CSRFToken is the anti-forgery token of a session: a keyed hash of its id,
// so it needs no storage and dies with the session.
func (w *Web) CSRFToken(ctx context.Context, s WebSession) (string, error) {
	h, err := w.csrf.Sum(ctx, w.svc.keys, s.ID)
	return base64.RawURLEncoding.EncodeToString(h), err
}

// CheckCSRF reports whether tok is the session's anti-forgery token.
func (w *Web) CheckCSRF(ctx context.Context, s WebSession, tok string) bool {
	want, err := w.CSRFToken(ctx, s)
	return err == nil && tok != "" && subtle.ConstantTimeCompare([]byte(want), []byte(tok)) == 1
}

// VerifyMFA completes a pending session with a TOTP code or an unused
// recovery code: it ends the pending session and returns the token of the
// full one that replaces it, for the cookie. Wrong codes count against the
// email's lockout like wrong passwords.
func (w *Web) VerifyMFA(ctx context.Context, token, code, ip, ua string) (string, error) {
	s, u, err := w.store.WebSessionByID(ctx, sessionID(token))
	now := w.now().UTC()
	if errs.Is(err, errs.NotFound) || (err == nil && (s.Revoked || !s.MFAPending || !now.Before(s.ExpiresAt))) {
		return "", errSession
	}
	if err != nil {
		return "", err
	}
	key, err := w.svc.emailHash(ctx, u.Email)
	if err != nil {
		return "", err
	}
	n, ok, err := w.svc.store.ReserveUserLoginAttempt(ctx, key, w.svc.UserLockout, now.Truncate(time.Microsecond))
	if err != nil {
		return "", err
	}
	if !ok {
		return "", errs.Unauthorizedf("This account is temporarily locked, please try again later")
	}
	good, err := w.checkCode(ctx, u.ID, code, now)
	if err != nil {
		return "", w.svc.giveBack(ctx, key, err)
	}
	if !good {
		if err := w.svc.failedLogin(ctx, u, n, now.Truncate(time.Microsecond), ip, ua); err != nil {
			return "", err
		}
		return "", errs.BadRequest("Invalid code")
	}
	// A new token for the full session: whoever planted the pending one in
	// the user's browser (a cookie set from a sibling host, or over plain
	// HTTP) holds a token that has just ended, not the user's session.
	token = base64.RawURLEncoding.EncodeToString(randBytes(32))
	next := WebSession{ID: sessionID(token), UserID: s.UserID, OrgID: s.OrgID, CreatedAt: s.CreatedAt,
		ExpiresAt: s.CreatedAt.Add(w.Absolute), LastSeenAt: now.Truncate(time.Microsecond)}
	if err := w.store.CompleteWebSessionMFA(ctx, s.ID, next); err != nil {
		return "", w.svc.giveBack(ctx, key, err) // completed (or ended) meanwhile
	}
	return token, w.svc.loginSucceeded(ctx, u, key, ip, ua)
}

// checkCode accepts a current TOTP code once, or an unused recovery code.
func (w *Web) checkCode(ctx context.Context, userID, code string, now time.Time) (bool, error) {
	code = strings.ReplaceAll(strings.TrimSpace(code), " ", "")
	t, err := w.store.UserTOTP(ctx, userID)
	if err != nil {
		return false, err
	}
	if len(code) == 6 {
		seed, err := w.openSeed(ctx, t)
		if err != nil {
			return false, err
		}
		if step, ok := matchTOTP(seed, code, now); ok {
			return w.store.AdvanceTOTPStep(ctx, userID, step)
		}
		return false, nil
	}
	h, err := w.recovery.Sum(ctx, w.svc.keys, userID+"|"+strings.ToLower(code))
	if err != nil {
		return false, err
	}
	return w.store.UseRecoveryCode(ctx, userID, hex.EncodeToString(h), now.Truncate(time.Microsecond))
}

// TOTPEnrollment is a fresh seed to show the user once, as text and URI.
type TOTPEnrollment struct {
	Secret string // base32, no padding
	URI    string // otpauth://
}

// BeginTOTP makes a new seed for actor, not yet enabled. A user whose TOTP
// is already enabled is refused.
func (w *Web) BeginTOTP(ctx context.Context, actor authz.Actor) (TOTPEnrollment, error) {
	if actor.Kind != authz.ActorUser {
		return TOTPEnrollment{}, errs.Forbiddenf("Only users have a second factor")
	}
	if t, err := w.store.UserTOTP(ctx, actor.ID); err == nil && t.Enabled {
		return TOTPEnrollment{}, errs.BadRequest("Two-factor authentication is already enabled")
	} else if err != nil && !errs.Is(err, errs.NotFound) {
		return TOTPEnrollment{}, err
	}
	seed := randBytes(20)
	sealed, err := w.sealSeed(ctx, actor.ID, seed)
	if err != nil {
		return TOTPEnrollment{}, err
	}
	if err := w.store.PutUserTOTP(ctx, UserTOTP{UserID: actor.ID, Secret: sealed}, w.now().UTC()); err != nil {
		return TOTPEnrollment{}, err
	}
	sec := base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(seed)
	uri := fmt.Sprintf("otpauth://totp/lockbox:%s?secret=%s&issuer=lockbox&algorithm=SHA1&digits=6&period=30",
		url.PathEscape(actor.Name), sec)
	return TOTPEnrollment{Secret: sec, URI: uri}, nil
}

// ConfirmTOTP enables the pending seed if code is current and returns ten
// single-use recovery codes, shown once. A user with a password must give
// it (ProvePassword, which counts wrong ones against the lockout): a
// session alone, stolen, turned the factor on, ended the owner's sessions
// and kept the recovery codes, locking the owner out for good.
func (w *Web) ConfirmTOTP(ctx context.Context, actor authz.Actor, code, password string) ([]string, error) {
	u, err := w.svc.store.UserByID(ctx, actor.ID)
	if err != nil {
		return nil, err
	}
	if u.PasswordHash != "" {
		if password == "" {
			return nil, errs.Fieldf("password", "Enter your password to turn on two-factor authentication")
		}
		if _, err := w.svc.ProvePassword(ctx, u.Email, password, actor.IP, actor.UserAgent); errs.Is(err, errs.Unauthorized) {
			// Locked out: not a 401, the session itself is fine.
			return nil, errs.Forbiddenf("Too many wrong passwords; try again later")
		} else if err != nil {
			return nil, err
		}
	}
	t, err := w.store.UserTOTP(ctx, actor.ID)
	if errs.Is(err, errs.NotFound) || (err == nil && t.Enabled) {
		return nil, errs.BadRequest("Start two-factor enrolment first")
	}
	if err != nil {
		return nil, err
	}
	seed, err := w.openSeed(ctx, t)
	if err != nil {
		return nil, err
	}
	step, ok := matchTOTP(seed, strings.TrimSpace(code), w.now().UTC())
	if !ok {
		return nil, errs.BadRequest("Invalid code")
	}
	codes := make([]string, 10)
	hashes := make([]string, 10)
	for i := range codes {
		b := randBytes(5)
		codes[i] = hex.EncodeToString(b)
		h, err := w.recovery.Sum(ctx, w.svc.keys, actor.ID+"|"+codes[i])
		if err != nil {
			return nil, err
		}
		hashes[i] = hex.EncodeToString(h)
	}
	if err := w.store.EnableUserTOTP(ctx, actor.ID, actor.TokenID, step, hashes); err != nil {
		return nil, err
	}
	auditBestEffort(ctx, w.store.AppendAudit, audit.New(actor, "user-enable-totp", map[string]any{"userId": actor.ID}))
	return codes, nil
}

// TOTPEnabled reports whether the actor has an enabled second factor.
func (w *Web) TOTPEnabled(ctx context.Context, actor authz.Actor) (bool, error) {
	t, err := w.store.UserTOTP(ctx, actor.ID)
	if errs.Is(err, errs.NotFound) {
		return false, nil
	}
	return err == nil && t.Enabled, err
}

// seedOwner and seedAD seal a user's TOTP seed with the instance's system
// data key, bound to the user.
var seedOwner = keyring.Owner{Type: keyring.OwnerSystem, ID: "instance"}

func seedAD(userID string) string { return keyring.AD("user_totp", "secret", userID) }

func (w *Web) sealSeed(ctx context.Context, userID string, seed []byte) ([]byte, error) {
	return w.svc.keys.Seal(ctx, seedOwner, seed, seedAD(userID))
}

func (w *Web) openSeed(ctx context.Context, t UserTOTP) ([]byte, error) {
	seed, err := w.svc.keys.Open(ctx, seedOwner, t.Secret, seedAD(t.UserID))
	if err != nil {
		return nil, fmt.Errorf("open totp seed of %s: %w", t.UserID, err)
	}
	return seed, nil
}

// matchTOTP accepts the code of the current step or one step either side
// (clock drift) and returns the step it matched.
func matchTOTP(seed []byte, code string, now time.Time) (int64, bool) {
	if len(code) != 6 {
		return 0, false
	}
	cur := now.Unix() / 30
	for _, st := range []int64{cur, cur - 1, cur + 1} {
		want, _ := totp.Code(seed, "sha1", 6, 30, time.Unix(st*30, 0))
		if subtle.ConstantTimeCompare([]byte(want), []byte(code)) == 1 {
			return st, true
		}
	}
	return 0, false
}
