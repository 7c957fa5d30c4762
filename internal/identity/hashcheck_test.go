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
		if got := hashToCheck(c.u, c.err); got != dummyHash() {
			t.Errorf("%s: checks %q, want the dummy hash", name, got)
		}
	}
	real := HashPassword("a real password")
	if got := hashToCheck(User{ID: "u", PasswordHash: real}, nil); got != real {
		t.Errorf("an account with a password checks %q", got)
	}
}
