package identity

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"strings"
	"time"

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
	ExpiresAt, CreatedAt                      time.Time
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
	// TakeDeviceLogin returns the login of a device code hash, deleting it
	// unless it is still pending; errs.NotFound when there is none or it
	// expired.
	TakeDeviceLogin(ctx context.Context, codeHash string, now time.Time) (DeviceLogin, error)
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

// StartDeviceLogin begins a device login.
func (w *Web) StartDeviceLogin(ctx context.Context) (DeviceStart, error) {
	st, ok := w.store.(DeviceStore)
	if !ok {
		return DeviceStart{}, errs.NotFoundf("Device login is not available")
	}
	b := make([]byte, 32)
	rand.Read(b)
	code := base64.RawURLEncoding.EncodeToString(b)
	now := w.now().UTC().Truncate(time.Microsecond)
	for attempt := 0; ; attempt++ {
		d := DeviceLogin{CodeHash: deviceCodeHash(code), UserCode: newUserCode(), Status: DevicePending,
			ExpiresAt: now.Add(DeviceLoginTTL), CreatedAt: now}
		err := st.PutDeviceLogin(ctx, d, now)
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

// DeviceLogin returns the pending device login a user code names, for the
// dashboard to show before the user decides.
func (w *Web) DeviceLogin(ctx context.Context, actor authz.Actor, userCode string) (DeviceLogin, error) {
	st, ok := w.store.(DeviceStore)
	if !ok || actor.Kind != authz.ActorUser {
		return DeviceLogin{}, errNoDeviceLogin
	}
	d, err := st.DeviceLoginByUserCode(ctx, NormalizeUserCode(userCode), w.now().UTC())
	if errs.Is(err, errs.NotFound) {
		return DeviceLogin{}, errNoDeviceLogin
	}
	return d, err
}

// DecideDeviceLogin approves (or denies) a device login as the dashboard
// user actor, in the organization of its session.
func (w *Web) DecideDeviceLogin(ctx context.Context, actor authz.Actor, userCode string, approve bool) error {
	st, ok := w.store.(DeviceStore)
	if !ok || actor.Kind != authz.ActorUser {
		return errNoDeviceLogin
	}
	if actor.OrgID == "" {
		return errs.BadRequest("Select an organization first")
	}
	status, event := DeviceDenied, "deny-cli-login"
	if approve {
		status, event = DeviceApproved, "approve-cli-login"
	}
	code := NormalizeUserCode(userCode)
	ev := audit.New(actor, event, map[string]any{"userCode": code})
	err := st.DecideDeviceLogin(ctx, code, status, actor.ID, actor.OrgID, w.now().UTC(), ev)
	if errs.Is(err, errs.NotFound) {
		return errNoDeviceLogin
	}
	return err
}

// Device login poll answers (RFC 8628 section 3.5), as error codes.
var (
	ErrDevicePending = errs.BadRequest("The login has not been approved yet").WithCode("authorization_pending")
	errDeviceDenied  = errs.BadRequest("The login was denied in the dashboard").WithCode("access_denied")
	errDeviceExpired = errs.BadRequest("The login expired or was already used; start it again").WithCode("expired_token")
)

// PollDeviceLogin is the CLI asking for the session of a device login:
// ErrDevicePending until a user approves it, then, once, an API session
// of that user in the organization they approved it in.
func (w *Web) PollDeviceLogin(ctx context.Context, deviceCode, ip, ua string) (token string, expiresIn int, err error) {
	st, ok := w.store.(DeviceStore)
	if !ok {
		return "", 0, errDeviceExpired
	}
	if deviceCode == "" || len(deviceCode) > 128 {
		return "", 0, errs.Fieldf("deviceCode", "deviceCode is required")
	}
	d, err := st.TakeDeviceLogin(ctx, deviceCodeHash(deviceCode), w.now().UTC())
	if errs.Is(err, errs.NotFound) {
		return "", 0, errDeviceExpired
	}
	if err != nil {
		return "", 0, err
	}
	switch d.Status {
	case DevicePending:
		return "", 0, ErrDevicePending
	case DeviceDenied:
		return "", 0, errDeviceDenied
	}
	tok, err := w.svc.newSession(ctx, d.UserID, d.OrgID)
	if err != nil {
		return "", 0, err
	}
	actor := authz.Actor{Kind: authz.ActorUser, ID: d.UserID, OrgID: d.OrgID, AuthMethod: "device", IP: ip, UserAgent: ua}
	if err := w.store.AppendAudit(ctx, audit.New(actor, "user-login", map[string]any{"authMethod": "device"})); err != nil {
		return "", 0, err
	}
	return tok, int(SessionLifetime / time.Second), nil
}
