package provider_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/lockbox-dev/lockbox/internal/dynamic/provider"
)

// TestKeyedLock: one holder per key, other keys free, a wait ends with its
// context, and a key no one holds or waits for is forgotten.
func TestKeyedLock(t *testing.T) {
	l := provider.NewKeyedLock()
	ctx := context.Background()
	unlockA, err := l.Lock(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	unlockB, err := l.Lock(ctx, "b")
	if err != nil {
		t.Fatal("another key waited for the first:", err)
	}
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if _, err := l.Lock(short, "a"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("a held key was taken again: %v", err)
	}
	got := make(chan struct{})
	go func() {
		unlock, err := l.Lock(ctx, "a")
		if err == nil {
			unlock()
		}
		close(got)
	}()
	unlockA()
	<-got
	unlockB()
	if n := l.Len(); n != 0 {
		t.Fatalf("%d keys kept with no holder", n)
	}
}
