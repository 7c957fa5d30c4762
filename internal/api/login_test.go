package api_test

import (
	"bytes"
	"fmt"
	"sync"
	"testing"

	"github.com/lockbox-dev/lockbox/internal/app/apptest"
	"github.com/lockbox-dev/lockbox/internal/identity"
	"github.com/lockbox-dev/lockbox/internal/store"
)

const accountLocked = "This account is temporarily locked, please try again later"

func passwordLogin(t *testing.T, e *apptest.Env, email, password string) apptest.Response {
	t.Helper()
	return e.Do(t, "POST", "/api/v3/auth/login", "", map[string]string{"email": email, "password": password})
}

// TestPasswordLoginBusyIs429: with every hashing slot held, password logins
// (known and unknown emails alike) are refused with 429 and Retry-After, do
// not count toward the lockout, and succeed once a slot is free.
func TestPasswordLoginBusyIs429(t *testing.T) {
	h := identity.NewPasswordHasher(1)
	e := apptest.Bootstrapped(t, store.SQLite, apptest.Options{PasswordHasher: h})
	release, err := h.Acquire(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for range 8 {
		for _, email := range []string{e.UserEmail, "nobody@example.com"} {
			r := passwordLogin(t, e, email, "wrong")
			assertError(t, r, 429, "RateLimitExceeded")
			if got := r.Header.Get("Retry-After"); got != "1" {
				t.Fatalf("Retry-After %q, want 1", got)
			}
		}
	}
	release()
	e.Must(t, 200, "POST", "/api/v3/auth/login", "", map[string]string{"email": e.UserEmail, "password": e.Password})
}

// TestPasswordLoginLockout: of many concurrent wrong passwords exactly the
// threshold (5) are judged, the rest are refused as locked; the right
// password is then refused too, without hashing. Unknown emails lock alike.
// Failures are audited without the password.
func TestPasswordLoginLockout(t *testing.T) {
	forEachEngine(t, func(t *testing.T, d store.Dialect) {
		e := apptest.Bootstrapped(t, d, apptest.Options{PasswordHasher: identity.NewPasswordHasher(32)})
		const wrong = "Tr0ub4dor&3-not-it"
		for _, email := range []string{e.UserEmail, "nobody@example.com"} {
			const n = 20
			answers := make([]string, n)
			var wg sync.WaitGroup
			start := make(chan struct{})
			for i := range n {
				wg.Go(func() {
					<-start
					r := passwordLogin(t, e, email, wrong)
					msg, _ := r.JSON(t)["message"].(string)
					answers[i] = fmt.Sprintf("%d %s", r.Status, msg)
				})
			}
			close(start)
			wg.Wait()
			count := map[string]int{}
			for _, a := range answers {
				count[a]++
			}
			if count["400 Invalid credentials"] != 5 || count["401 "+accountLocked] != n-5 {
				t.Fatalf("%s: answers %v, want exactly 5 x invalid credentials and %d x locked", email, count, n-5)
			}
		}
		m := assertError(t, passwordLogin(t, e, e.UserEmail, e.Password), 401, "UnauthorizedError")
		if m["message"] != accountLocked {
			t.Fatalf("right password while locked: %v", m["message"])
		}
		for typ, want := range map[string]int{"user-login-failed": 5, "user-login-locked": 1} {
			r := e.Must(t, 200, "GET", "/api/v1/organization/audit-logs?eventType="+typ, e.Token, nil)
			var evs struct{ AuditLogs []any }
			r.Decode(t, &evs)
			if len(evs.AuditLogs) != want {
				t.Fatalf("%s events %d, want %d", typ, len(evs.AuditLogs), want)
			}
			if bytes.Contains(r.Body, []byte(wrong)) || bytes.Contains(r.Body, []byte("nobody@example.com")) {
				t.Fatalf("audit log holds the password or an unknown email: %s", r.Body)
			}
		}
	})
}

// TestPasswordLoginSuccessResetsCount: failures below the threshold are
// forgotten after a successful login.
func TestPasswordLoginSuccessResetsCount(t *testing.T) {
	forEachEngine(t, func(t *testing.T, d store.Dialect) {
		e := apptest.Bootstrapped(t, d)
		for range 2 {
			for range 4 {
				assertError(t, passwordLogin(t, e, e.UserEmail, "wrong"), 400, "BadRequest")
			}
			e.Must(t, 200, "POST", "/api/v3/auth/login", "", map[string]string{"email": e.UserEmail, "password": e.Password})
		}
	})
}
