package identity_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/lockbox-dev/lockbox/internal/errs"
	"github.com/lockbox-dev/lockbox/internal/identity"
)

// TestPasswordHasherBounds: with every slot held, Acquire fails as rate
// limited after a short wait, and Hash when its context ends; a
// released slot (released twice, harmlessly) serves the next caller.
func TestPasswordHasherBounds(t *testing.T) {
	h := identity.NewPasswordHasher(1)
	release, err := h.Acquire(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.Acquire(t.Context()); !errs.Is(err, errs.RateLimited) {
		t.Fatalf("acquire with no free slot: %v", err)
	}
	short, stop := context.WithTimeout(t.Context(), 20*time.Millisecond)
	defer stop()
	_, err = h.Hash(short, "pw")
	if e, ok := errors.AsType[*errs.Error](err); !ok || e.Kind != errs.RateLimited || e.RetryAfter != 1 {
		t.Fatalf("hash with no free slot: %v", err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := h.Acquire(ctx); !errs.Is(err, errs.RateLimited) {
		t.Fatalf("acquire with a dead context: %v", err)
	}
	release()
	release()
	hash, err := h.Hash(t.Context(), "pw")
	if err != nil || !identity.CheckPassword(hash, "pw") || identity.CheckPassword(hash, "other") {
		t.Fatalf("hash after release: %v", err)
	}
	// Both slots of a two-slot hasher can be held at once.
	h2 := identity.NewPasswordHasher(2)
	r1, err1 := h2.Acquire(t.Context())
	r2, err2 := h2.Acquire(t.Context())
	if err1 != nil || err2 != nil {
		t.Fatalf("two slots: %v %v", err1, err2)
	}
	r1()
	r2()
}
