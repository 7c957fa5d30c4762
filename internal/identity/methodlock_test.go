package identity_test

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lockbox-dev/lockbox/internal/authmethod"
	"github.com/lockbox-dev/lockbox/internal/authz"
	"github.com/lockbox-dev/lockbox/internal/errs"
	"github.com/lockbox-dev/lockbox/internal/identity"
	"github.com/lockbox-dev/lockbox/internal/store/storetest"
)

// guessMethod accepts the password "right" for any user and locks each user
// after 2 wrong ones for 60s.
type guessMethod struct{ calls *int }

func (g guessMethod) Verify(context.Context, string) (authmethod.Verified, error) {
	return authmethod.Verified{}, nil
}

func (g guessMethod) VerifyRequest(_ context.Context, c authmethod.Credential) (authmethod.Verified, error) {
	*g.calls++
	var b struct{ User, Password string }
	json.Unmarshal(c.Body, &b)
	switch b.Password {
	case "right":
		return authmethod.Verified{}, nil
	case "":
		return authmethod.Verified{}, authmethod.Refuse("request", "missing password") // not a guess
	}
	r := authmethod.Refuse("password", "Invalid credentials")
	r.Guess = true
	return authmethod.Verified{}, r
}

func (g guessMethod) LockoutOf(c authmethod.Credential) (string, authmethod.Lockout, bool) {
	var b struct{ User string }
	json.Unmarshal(c.Body, &b)
	return b.User, authmethod.Lockout{Threshold: 2, Duration: time.Minute, CounterReset: 10 * time.Minute}, b.User != ""
}

var (
	registerGuess sync.Once
	guessCalls    int
)

func TestMethodLockoutLocksAGuessedSubjectUntilItEnds(t *testing.T) {
	registerGuess.Do(func() {
		authmethod.Register(authmethod.Registration{Name: "test-guess-auth", WireKey: "identityTestGuessAuth", NoToken: true,
			Configure: func(context.Context, authmethod.Env, json.RawMessage, json.RawMessage) (json.RawMessage, error) {
				return json.RawMessage("{}"), nil
			},
			New: func(authmethod.Env, json.RawMessage) (authmethod.Method, error) { return guessMethod{&guessCalls}, nil }})
	})
	for _, d := range storetest.Engines {
		t.Run(string(d), func(t *testing.T) {
			ctx := context.Background()
			db := storetest.Open(t, d)
			kr := newKeyring(t, db)
			var mu sync.Mutex
			now := time.Now()
			clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
			svc := identity.NewService(db, kr, clock)
			res, err := svc.Bootstrap(ctx, "a@b.co", "pw", "Acme", "127.0.0.1", "test")
			if err != nil {
				t.Fatal(err)
			}
			m := identity.NewMethods(db, identity.NewAdmin(db, authz.NewResolver(db, nil), svc), svc, authmethod.Env{})
			actor := authz.Actor{Kind: authz.ActorIdentity, ID: res.Identity.ID, OrgID: res.Org.ID}
			if _, err := m.Attach(ctx, actor, "test-guess-auth", res.Identity.ID, identity.TokenSettings{}, json.RawMessage("{}")); err != nil {
				t.Fatal(err)
			}
			login := func(user, pw string) error {
				body, _ := json.Marshal(map[string]string{"user": user, "password": pw})
				_, err := m.Login(ctx, "test-guess-auth", res.Identity.ID, authmethod.Credential{Body: body}, "", "127.0.0.1", "test")
				return err
			}
			const lockedMsg = "temporarily locked"
			isLocked := func(err error) bool {
				e, ok := err.(*errs.Error)
				return ok && e.Kind == errs.Unauthorized && strings.Contains(e.Message, lockedMsg)
			}
			// Refusals that are not guesses do not count.
			for range 3 {
				if err := login("alice", ""); err == nil || isLocked(err) {
					t.Fatalf("missing password: %v", err)
				}
			}
			// A success clears the count: wrong, right, wrong does not lock.
			if err := login("alice", "wrong"); isLocked(err) || err == nil {
				t.Fatalf("first guess: %v", err)
			}
			if err := login("alice", "right"); err != nil {
				t.Fatalf("right password below the threshold: %v", err)
			}
			if err := login("alice", "wrong"); isLocked(err) || err == nil {
				t.Fatalf("guess after a success: %v", err)
			}
			if err := login("alice", "wrong"); isLocked(err) || err == nil {
				t.Fatalf("second guess is answered, and locks: %v", err)
			}
			calls := guessCalls
			if err := login("alice", "right"); !isLocked(err) {
				t.Fatalf("right password while locked: %v", err)
			}
			if guessCalls != calls {
				t.Fatal("a locked subject's login reached the method")
			}
			// The lock is per subject.
			if err := login("bob", "right"); err != nil {
				t.Fatalf("another user while alice is locked: %v", err)
			}
			mu.Lock()
			now = now.Add(59 * time.Second)
			mu.Unlock()
			if err := login("alice", "right"); !isLocked(err) {
				t.Fatalf("before the lock ends: %v", err)
			}
			mu.Lock()
			now = now.Add(2 * time.Second)
			mu.Unlock()
			if err := login("alice", "right"); err != nil {
				t.Fatalf("after the lock ends: %v", err)
			}
		})
	}
}
