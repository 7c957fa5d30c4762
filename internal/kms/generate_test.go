package kms

import (
	"context"
	"testing"

	"github.com/lockbox-dev/lockbox/internal/errs"
)

// Key generation holds one of genSlots; with every slot taken, a generation
// waits genWait and is refused with a 429, and runs again once one frees.
func TestGenerationIsBounded(t *testing.T) {
	for range cap(genSlots) {
		genSlots <- struct{}{}
	}
	_, err := generate(context.Background(), AES256GCM)
	if !errs.Is(err, errs.RateLimited) {
		t.Fatalf("generate with every slot taken: %v, want RateLimited", err)
	}
	<-genSlots
	raw, err := generate(context.Background(), AES256GCM)
	if err != nil || len(raw) != 32 {
		t.Fatalf("generate with a free slot: %d bytes, %v", len(raw), err)
	}
	for range cap(genSlots) - 1 {
		<-genSlots
	}
	if len(genSlots) != 0 {
		t.Fatalf("%d slots still held after generate returned", len(genSlots))
	}
}
