package dynamic_test

import (
	"context"
	"crypto/rand"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lockbox-dev/lockbox/internal/authz"
	"github.com/lockbox-dev/lockbox/internal/dynamic"
	"github.com/lockbox-dev/lockbox/internal/keyring"
	"github.com/lockbox-dev/lockbox/internal/store"
	"github.com/lockbox-dev/lockbox/internal/store/storetest"
)

// claimCounter is the real store, counting the worker's claims (its only
// write when nothing is due).
type claimCounter struct {
	*store.DB
	claims atomic.Int64
}

func (c *claimCounter) ClaimCleanups(ctx context.Context, now, until time.Time, limit int) ([]dynamic.Cleanup, error) {
	c.claims.Add(1)
	return c.DB.ClaimCleanups(ctx, now, until, limit)
}

func (c *claimCounter) ClaimDueLeases(ctx context.Context, dsID string, now, until time.Time, limit int) ([]dynamic.SealedLease, error) {
	c.claims.Add(1)
	return c.DB.ClaimDueLeases(ctx, dsID, now, until, limit)
}

// TestIdleWorkerDoesNotWrite: with no lease and no cleanup due, ticks and
// Run only read.
func TestIdleWorkerDoesNotWrite(t *testing.T) {
	for _, d := range storetest.Engines {
		t.Run(string(d), func(t *testing.T) {
			db := storetest.Open(t, d)
			root := make([]byte, keyring.KeySize)
			rand.Read(root)
			kr, err := keyring.New(root, db)
			if err != nil {
				t.Fatal(err)
			}
			st := &claimCounter{DB: db}
			svc := dynamic.NewService(st, nil, authz.NewResolver(db, nil), kr, nil)
			w := dynamic.NewWorker(svc, nil)
			for range 5 {
				if n, err := w.Tick(t.Context()); err != nil || n != 0 {
					t.Fatalf("tick: %d, %v", n, err)
				}
			}
			// Run's rounds too: a few dozen with a short MaxWait.
			w.MaxWait = 10 * time.Millisecond
			ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
			defer cancel()
			w.Run(ctx)
			if n := st.claims.Load(); n != 0 {
				t.Fatalf("%d claim transactions with nothing due", n)
			}
		})
	}
}
