package kms

import (
	"context"
	"testing"
	"time"

	"github.com/lockbox-dev/lockbox/internal/errs"
	"github.com/lockbox-dev/lockbox/internal/keygen"
)

// Key generation holds a slot of genPool; with every slot taken, a
// generation waits and is refused with a 429, and runs again once one frees.
func TestGenerationIsBounded(t *testing.T) {
	pool := keygen.NewPool(2, 50*time.Millisecond)
	pool0 := genPool
	genPool = pool
	t.Cleanup(func() { genPool = pool0 })
	var held []func()
	for range pool.Cap() {
		release, err := pool.Acquire(context.Background(), "test")
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, release)
	}
	_, err := generate(context.Background(), AES256GCM)
	if !errs.Is(err, errs.RateLimited) {
		t.Fatalf("generate with every slot taken: %v, want RateLimited", err)
	}
	held[0]()
	raw, err := generate(context.Background(), AES256GCM)
	if err != nil || len(raw) != 32 {
		t.Fatalf("generate with a free slot: %d bytes, %v", len(raw), err)
	}
	for _, release := range held[1:] {
		release()
	}
	if pool.InUse() != 0 {
		t.Fatalf("%d slots still held after generate returned", pool.InUse())
	}
}
