package identity

import (
	"testing"

	"github.com/lockbox-dev/lockbox/internal/errs"
)

// TestPasswordlessAccountsCostALogin: a login for an account without a
// password checks the dummy hash, as one for an unknown address does, so
// the time taken does not tell them from accounts that do not exist.
func TestPasswordlessAccountsCostALogin(t *testing.T) {
	for name, c := range map[string]struct {
		u   User
		err error
	}{
		"unknown":     {User{}, errs.NotFoundf("no such user")},
		"no password": {User{ID: "u", Email: "invited@example.com"}, nil},
	} {
		if got, real := hashToCheck(c.u, c.err); got != dummyHash() || real {
			t.Errorf("%s: checks %q (a login: %v), want the dummy hash, no login", name, got, real)
		}
	}
	pw := HashPassword("a real password")
	if got, real := hashToCheck(User{ID: "u", PasswordHash: pw}, nil); got != pw || !real {
		t.Errorf("an account with a password checks %q (a login: %v)", got, real)
	}
}
