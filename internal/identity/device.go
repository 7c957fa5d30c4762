package identity

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"strings"
	"time"

	"golang.org/x/time/rate"

	"github.com/lockbox-dev/lockbox/internal/audit"
	"github.com/lockbox-dev/lockbox/internal/authz"
	"github.com/lockbox-dev/lockbox/internal/errs"
)

// Device logins: the CLI signs a user in without a password (RFC 8628's
// device authorization flow). The CLI starts a login and shows a short user
// code; the user opens the dashboard (signed in by password, second factor
// or SSO), checks the code and approves; the CLI, polling with the device
// code only it holds, collects an API session of that user in the
// organization the dashboard session was in. A code works once.
const (
	// DeviceLoginTTL is how long a device login waits for its approval.
	DeviceLoginTTL = 10 * time.Minute
	// DevicePollInterval is how often, in seconds, the CLI may poll.
	DevicePollInterval = 2
)

// Device login states.
const (
	DevicePending  = "pending"
	DeviceApproved = "approved"
	DeviceDenied   = "denied"
)

// DeviceLogin is a device login in flight.
type DeviceLogin struct {
	CodeHash, UserCode, Status, UserID, OrgID string
	// IP and UserAgent are the requester's, shown to the approving user.
	IP, UserAgent        string
	ExpiresAt, CreatedAt time.Time
}

// DeviceStore keeps device logins.
type DeviceStore interface {
	// PutDeviceLogin stores a new login and prunes expired ones;
	// errs.Conflict when its user code is taken.
	PutDeviceLogin(ctx context.Context, d DeviceLogin, now time.Time) error
	// DeviceLoginByUserCode returns a pending login unexpired at now;
	// errs.NotFound otherwise.
	DeviceLoginByUserCode(ctx context.Context, userCode string, now time.Time) (DeviceLogin, error)
	// DecideDeviceLogin records a pending, unexpired login as approved for
	// userID in orgID, or denied, with ev; errs.NotFound otherwise.
	DecideDeviceLogin(ctx context.Context, userCode, status, userID, orgID string, now time.Time, ev audit.Event) error
	// DeviceLoginByCode returns the login of a device code hash;
	// errs.NotFound when there is none or it expired at now.
	DeviceLoginByCode(ctx context.Context, codeHash string, now time.Time) (DeviceLogin, error)
	// TakeDeviceLogin deletes the login of a device code hash if its
	// status is still status, and stores sess (nil: none) in the same
	// transaction: an approval turned into a denial meanwhile (the user's
	// sessions ended) makes no session. errs.NotFound when it is gone or
	// its status changed.
	TakeDeviceLogin(ctx context.Context, codeHash, status string, sess *Session) error
}

// DeviceStart is what the CLI gets when it starts a device login.
type DeviceStart struct {
	DeviceCode, UserCode string
	ExpiresIn, Interval  int
}

// userCodeAlphabet has no vowels (no words) and no look-alikes.
const userCodeAlphabet = "BCDFGHJKLMNPQRSTVWXZ"

func newUserCode() string {
	b := make([]byte, 8)
	rand.Read(b)
	var sb strings.Builder
	for i, c := range b {
		if i == 4 {
			sb.WriteByte('-')
		}
		// 256 is not a multiple of 20: the small bias costs a fraction of a
		// bit of the code's ~34, and the code lives ten minutes.
		sb.WriteByte(userCodeAlphabet[int(c)%len(userCodeAlphabet)])
	}
	return sb.String()
}

// NormalizeUserCode uppercases a typed user code and restores its dash.
func NormalizeUserCode(s string) string {
	s = strings.ToUpper(strings.NewReplacer("-", "", " ", "").Replace(strings.TrimSpace(s)))
	if len(s) != 8 {
		return s
	}
	return s[:4] + "-" + s[4:]
}

func deviceCodeHash(code string) string {
	sum := sha256.Sum256([]byte(code))
	return hex.EncodeToString(sum[:])
}

// StartDeviceLogin begins a device login requested from ip with userAgent.
func (w *Web) StartDeviceLogin(ctx context.Context, ip, userAgent string) (DeviceStart, error) {
	b := make([]byte, 32)
	rand.Read(b)
	code := base64.RawURLEncoding.EncodeToString(b)
	now := w.now().UTC().Truncate(time.Microsecond)
	for attempt := 0; ; attempt++ {
		d := DeviceLogin{CodeHash: deviceCodeHash(code), UserCode: newUserCode(), Status: DevicePending,
			IP: strings.ToValidUTF8(clip(ip, 64), ""), UserAgent: strings.ToValidUTF8(clip(userAgent, 256), ""), ExpiresAt: now.Add(DeviceLoginTTL), CreatedAt: now}
		err := w.store.PutDeviceLogin(ctx, d, now)
		if errs.Is(err, errs.Conflict) && attempt < 3 {
			continue // a user code in use: draw another
		}
		if err != nil {
			return DeviceStart{}, err
		}
		return DeviceStart{DeviceCode: code, UserCode: d.UserCode, ExpiresIn: int(DeviceLoginTTL / time.Second),
			Interval: DevicePollInterval}, nil
	}
}

var errNoDeviceLogin = errs.NotFoundf("No device login waits with this code; start the login again from the CLI")

// Codes a user may get wrong: a burst of deviceMissBurst, then one per
// deviceMissEvery (per node). A right code costs nothing.
const (
	deviceMissBurst = 10
	deviceMissEvery = time.Minute
)

// guesses are a user's wrong codes (a limiter) and its look-ups in flight.
type guesses struct {
	wrong    *rate.Limiter
	inFlight int
}

// takeGuess holds one of userID's guesses while a code is looked up:
// look-ups in flight count against what is left, so concurrent ones cannot
// all pass one check of it. done gives it back, counting it as a wrong
// code if wrong. false when the user is out of guesses.
func (w *Web) takeGuess(userID string) (done func(wrong bool), ok bool) {
	w.deviceMu.Lock()
	defer w.deviceMu.Unlock()
	if w.deviceMisses == nil || len(w.deviceMisses) > 100_000 {
		w.deviceMisses = map[string]*guesses{}
	}
	g, ok := w.deviceMisses[userID]
	if !ok {
		g = &guesses{wrong: rate.NewLimiter(rate.Every(deviceMissEvery), deviceMissBurst)}
		w.deviceMisses[userID] = g
	}
	if g.wrong.TokensAt(w.now())-float64(g.inFlight) < 1 {
		return nil, false
	}
	g.inFlight++
	return func(wrong bool) {
		w.deviceMu.Lock()
		defer w.deviceMu.Unlock()
		g.inFlight--
		if wrong {
			g.wrong.AllowN(w.now(), 1)
		}
	}, true
}

var errDeviceGuesses = errs.RateLimitedf("Too many wrong codes; wait a minute and check the code the CLI shows")

// lookup finds the pending login of a typed code for user actor, counting
// a miss against its guesses.
func (w *Web) lookup(ctx context.Context, actor authz.Actor, userCode string) (DeviceLogin, error) {
	if actor.Kind != authz.ActorUser {
		return DeviceLogin{}, errNoDeviceLogin
	}
	done, ok := w.takeGuess(actor.ID)
	if !ok {
		return DeviceLogin{}, errDeviceGuesses
	}
	d, err := w.store.DeviceLoginByUserCode(ctx, NormalizeUserCode(userCode), w.now().UTC())
	done(errs.Is(err, errs.NotFound))
	if errs.Is(err, errs.NotFound) {
		return DeviceLogin{}, errNoDeviceLogin
	}
	return d, err
}

// DeviceLogin returns the pending device login a user code names, for the
// dashboard to show before the user decides.
func (w *Web) DeviceLogin(ctx context.Context, actor authz.Actor, userCode string) (DeviceLogin, error) {
	return w.lookup(ctx, actor, userCode)
}

// DecideDeviceLogin approves (or denies) a device login as the dashboard
// user actor, in the organization of its session, which it must still be
// an active member of.
func (w *Web) DecideDeviceLogin(ctx context.Context, actor authz.Actor, userCode string, approve bool) error {
	if actor.Kind != authz.ActorUser {
		return errNoDeviceLogin
	}
	if actor.OrgID == "" {
		return errs.BadRequest("Select an organization first")
	}
	d, err := w.lookup(ctx, actor, userCode)
	if err != nil {
		return err
	}
	if _, ok, err := w.svc.activeOrg(ctx, actor.ID, actor.OrgID); err != nil {
		return err
	} else if !ok {
		return errs.Forbiddenf("You are not an active member of this organization")
	}
	status, event := DeviceDenied, "deny-cli-login"
	if approve {
		status, event = DeviceApproved, "approve-cli-login"
	}
	ev := audit.New(actor, event, map[string]any{"userCode": d.UserCode, "requestedFromIp": d.IP, "requestedUserAgent": d.UserAgent})
	err = w.store.DecideDeviceLogin(ctx, d.UserCode, status, actor.ID, actor.OrgID, w.now().UTC(), ev)
	if errs.Is(err, errs.NotFound) {
		return errNoDeviceLogin
	}
	return err
}

// Device login poll answers (RFC 8628 section 3.5), as error codes.
var (
	errDevicePending = errs.BadRequest("The login has not been approved yet").WithCode("authorization_pending")
	errDeviceDenied  = errs.BadRequest("The login was denied in the dashboard").WithCode("access_denied")
	errDeviceExpired = errs.BadRequest("The login expired or was already used; start it again").WithCode("expired_token")
)

// DeviceSession is a collected device login: an API session of a user.
type DeviceSession struct {
	Token          string
	ExpiresIn      int
	Email          string
	OrgID, OrgName string
}

// PollDeviceLogin is the CLI asking for the session of a device login:
// errDevicePending until a user approves it, then, once, an API session
// of that user in the organization they approved it in (if they are still
// an active member of it).
func (w *Web) PollDeviceLogin(ctx context.Context, deviceCode, ip, ua string) (DeviceSession, error) {
	if deviceCode == "" || len(deviceCode) > 128 {
		return DeviceSession{}, errs.Fieldf("deviceCode", "deviceCode is required")
	}
	hash := deviceCodeHash(deviceCode)
	d, err := w.store.DeviceLoginByCode(ctx, hash, w.now().UTC())
	if errs.Is(err, errs.NotFound) {
		return DeviceSession{}, errDeviceExpired
	}
	if err != nil {
		return DeviceSession{}, err
	}
	switch d.Status {
	case DevicePending:
		return DeviceSession{}, errDevicePending
	case DeviceDenied:
		if err := w.store.TakeDeviceLogin(ctx, hash, DeviceDenied, nil); err != nil && !errs.Is(err, errs.NotFound) {
			return DeviceSession{}, err
		}
		return DeviceSession{}, errDeviceDenied
	}
	u, err := w.svc.store.UserByID(ctx, d.UserID)
	if err != nil {
		return DeviceSession{}, err
	}
	o, ok, err := w.svc.activeOrg(ctx, d.UserID, d.OrgID)
	if err != nil {
		return DeviceSession{}, err
	}
	if !ok {
		return DeviceSession{}, errDeviceDenied
	}
	sess, token, err := w.svc.prepareSession(ctx, d.UserID, d.OrgID, time.Time{}, "")
	if err != nil {
		return DeviceSession{}, err
	}
	// The approval is collected and its session stored at once: the user's
	// sessions ending in between (deactivated, a second factor turned on)
	// deny the approval, and then no session is made.
	if err := w.store.TakeDeviceLogin(ctx, hash, DeviceApproved, &sess); errs.Is(err, errs.NotFound) {
		return DeviceSession{}, errDeviceExpired // another poll took it, or it was denied meanwhile
	} else if err != nil {
		return DeviceSession{}, err
	}
	out := DeviceSession{Token: token, Email: u.Email, OrgID: o.ID, OrgName: o.Name, ExpiresIn: int(SessionLifetime / time.Second)}
	actor := authz.Actor{Kind: authz.ActorUser, ID: d.UserID, OrgID: d.OrgID, Name: u.Email, AuthMethod: "device", IP: ip, UserAgent: ua}
	if err := w.store.AppendAudit(ctx, audit.New(actor, "user-login", map[string]any{"authMethod": "device", "userCode": d.UserCode})); err != nil {
		return DeviceSession{}, err
	}
	return out, nil
}
