package identity_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lockbox-dev/lockbox/internal/audit"
	"github.com/lockbox-dev/lockbox/internal/authz"
	"github.com/lockbox-dev/lockbox/internal/errs"
	"github.com/lockbox-dev/lockbox/internal/identity"
	"github.com/lockbox-dev/lockbox/internal/store"
	"github.com/lockbox-dev/lockbox/internal/store/storetest"
)

// clock is a settable time source.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

// TestWebSessionTimeouts: a dashboard session ends after the idle timeout
// without activity, activity keeps it alive, and it ends at the absolute
// timeout whatever the activity; the store holds only the token's hash.
func TestWebSessionTimeouts(t *testing.T) {
	for _, d := range storetest.Engines {
		t.Run(string(d), func(t *testing.T) {
			ctx := context.Background()
			db := storetest.Open(t, d)
			kr := newKeyring(t, db)
			clk := &clock{t: time.Now().UTC()}
			svc := identity.NewService(db, kr, clk.now)
			if _, err := svc.Bootstrap(ctx, "a@b.co", "pw-123456", "Acme", "127.0.0.1", "test"); err != nil {
				t.Fatal(err)
			}
			w := identity.NewWeb(svc, db, clk.now)
			w.Idle, w.Absolute = 30*time.Minute, 2*time.Hour

			login := func() string {
				t.Helper()
				res, err := w.Login(ctx, "a@b.co", "pw-123456", "127.0.0.1", "test")
				if err != nil || res.MFAPending || res.Token == "" {
					t.Fatalf("login: %+v %v", res, err)
				}
				return res.Token
			}
			alive := func(tok string) bool {
				t.Helper()
				_, actor, err := w.Session(ctx, tok, "127.0.0.1", "test")
				if err != nil && errs.KindOf(err) != errs.Unauthorized {
					t.Fatal(err)
				}
				if err == nil && (actor.ID == "" || actor.OrgID == "") {
					t.Fatalf("actor %+v", actor)
				}
				return err == nil
			}

			tok := login()
			if _, _, err := db.WebSessionByID(ctx, tok); !errs.Is(err, errs.NotFound) {
				t.Fatalf("the token itself is a stored id: %v", err)
			}
			clk.add(29 * time.Minute)
			if !alive(tok) {
				t.Fatal("session ended before the idle timeout")
			}
			clk.add(29 * time.Minute) // 58 min since login, 29 since last use
			if !alive(tok) {
				t.Fatal("activity did not extend the idle timeout")
			}
			clk.add(31 * time.Minute)
			if alive(tok) {
				t.Fatal("session survived 31 idle minutes")
			}

			tok = login()
			for range 5 { // active every 25 minutes up to 2h05
				clk.add(25 * time.Minute)
				alive(tok)
			}
			if alive(tok) {
				t.Fatal("session survived its absolute timeout")
			}

			tok = login()
			if err := w.Logout(ctx, tok, authz.Actor{}); err != nil {
				t.Fatal(err)
			}
			if alive(tok) {
				t.Fatal("session alive after logout")
			}
		})
	}
}

// TestNoPasswordLogsInToAnAccountWithoutOne: an account without a password
// (made by SSO, or invited and not yet accepted) is checked against the
// dummy hash so that its answer takes as long as any; even a caller who
// knew the dummy's password gets no session and no token for it.
func TestNoPasswordLogsInToAnAccountWithoutOne(t *testing.T) {
	for _, d := range storetest.Engines {
		t.Run(string(d), func(t *testing.T) {
			ctx := context.Background()
			db := storetest.Open(t, d)
			svc := identity.NewService(db, newKeyring(t, db), nil)
			b, err := svc.Bootstrap(ctx, "a@b.co", "pw-123456", "Acme", "127.0.0.1", "test")
			if err != nil {
				t.Fatal(err)
			}
			now := time.Now().UTC().Truncate(time.Microsecond)
			if _, _, err := db.ProvisionSSOUser(ctx, b.Org.ID, identity.User{ID: identity.NewID(), Email: "sso@b.co", CreatedAt: now, UpdatedAt: now},
				"admin", "", audit.Event{Type: "test", OrgID: b.Org.ID, Metadata: map[string]any{}}); err != nil {
				t.Fatal(err)
			}
			restore := identity.SetDummyPassword("known-dummy")
			defer restore()
			for _, pw := range []string{"known-dummy", ""} {
				if _, err := svc.Login(ctx, "sso@b.co", pw, "127.0.0.1", "test"); err == nil {
					t.Fatalf("password %q logged in to an account without a password", pw)
				}
				if _, err := identity.NewWeb(svc, db, nil).Login(ctx, "sso@b.co", pw, "127.0.0.1", "test"); err == nil {
					t.Fatalf("password %q opened a dashboard session for an account without a password", pw)
				}
			}
		})
	}
}

// slowCodes is the real store, with device-code look-ups that take a while
// and are counted.
type slowCodes struct {
	*store.DB
	lookups atomic.Int64
}

func (s *slowCodes) DeviceLoginByUserCode(ctx context.Context, userCode string, now time.Time) (identity.DeviceLogin, error) {
	s.lookups.Add(1)
	time.Sleep(20 * time.Millisecond)
	return s.DB.DeviceLoginByUserCode(ctx, userCode, now)
}

// TestDeviceCodeGuessesHoldUnderConcurrency: a user's ten wrong codes are
// ten look-ups however many are sent at once (before, every request that
// passed the check of what was left before the first miss was counted got
// a look-up: 224 of 500).
func TestDeviceCodeGuessesHoldUnderConcurrency(t *testing.T) {
	ctx := context.Background()
	db := storetest.Open(t, store.SQLite)
	kr := newKeyring(t, db)
	svc := identity.NewService(db, kr, nil)
	if _, err := svc.Bootstrap(ctx, "a@b.co", "pw-123456", "Acme", "127.0.0.1", "test"); err != nil {
		t.Fatal(err)
	}
	st := &slowCodes{DB: db}
	w := identity.NewWeb(svc, st, nil)
	user := authz.Actor{Kind: authz.ActorUser, ID: "u-1"}
	var wg sync.WaitGroup
	var limited atomic.Int64
	for i := range 100 {
		wg.Go(func() {
			_, err := w.DeviceLogin(ctx, user, fmt.Sprintf("ZZZZ-%04d", i))
			if errs.KindOf(err) == errs.RateLimited {
				limited.Add(1)
			}
		})
	}
	wg.Wait()
	if n := st.lookups.Load(); n > 10 || limited.Load() != 100-n {
		t.Fatalf("100 concurrent wrong codes: %d looked up, %d refused, want at most 10 and the rest refused", n, limited.Load())
	}
}

// endingPoll is the real store, ending the user's sessions (a second factor
// turned on) right after a poll has read an approved device login.
type endingPoll struct {
	*store.DB
	userID string
}

func (s *endingPoll) DeviceLoginByCode(ctx context.Context, codeHash string, now time.Time) (identity.DeviceLogin, error) {
	d, err := s.DB.DeviceLoginByCode(ctx, codeHash, now)
	if err == nil && d.Status == identity.DeviceApproved {
		if err := s.EnableUserTOTP(ctx, s.userID, "", 1, nil); err != nil {
			return d, err
		}
	}
	return d, err
}

// TestADeviceLoginCollectedAsSessionsEndMakesNoSession: a poll that has read
// an approval when the user's sessions end gets no session (before, it
// collected the approval and then made a session the end had missed).
func TestADeviceLoginCollectedAsSessionsEndMakesNoSession(t *testing.T) {
	for _, d := range storetest.Engines {
		t.Run(string(d), func(t *testing.T) {
			ctx := context.Background()
			db := storetest.Open(t, d)
			svc := identity.NewService(db, newKeyring(t, db), nil)
			b, err := svc.Bootstrap(ctx, "a@b.co", "pw-123456", "Acme", "127.0.0.1", "test")
			if err != nil {
				t.Fatal(err)
			}
			w := identity.NewWeb(svc, &endingPoll{DB: db, userID: b.User.ID}, nil)
			start, err := w.StartDeviceLogin(ctx, "127.0.0.1", "cli")
			if err != nil {
				t.Fatal(err)
			}
			user := authz.Actor{Kind: authz.ActorUser, ID: b.User.ID, OrgID: b.Org.ID}
			if err := w.DecideDeviceLogin(ctx, user, start.UserCode, true); err != nil {
				t.Fatal(err)
			}
			got, err := w.PollDeviceLogin(ctx, start.DeviceCode, "127.0.0.1", "cli")
			if err == nil {
				_, verr := svc.Authenticate(ctx, got.Token, "127.0.0.1", "cli")
				t.Fatalf("a poll collected an approval as the sessions ended: a session (authenticates: %v)", verr)
			}
			if errs.KindOf(err) != errs.Invalid {
				t.Fatalf("the poll: %v; want a 400 (expired or denied)", err)
			}
		})
	}
}
