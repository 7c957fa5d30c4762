package api_test

import (
	"testing"

	"github.com/lockbox-dev/lockbox/internal/app/apptest"
	"github.com/lockbox-dev/lockbox/internal/identity"
	"github.com/lockbox-dev/lockbox/internal/store"
)

func passwordLogin(t *testing.T, e *apptest.Env, email, password string) apptest.Response {
	t.Helper()
	return e.Do(t, "POST", "/api/v3/auth/login", "", map[string]string{"email": email, "password": password})
}

// TestPasswordLoginBusyIs429: with every hashing slot held, password logins
// (known and unknown emails alike) are refused with 429 and Retry-After, do
// succeed once a slot is free.
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
