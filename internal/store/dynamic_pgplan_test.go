package store_test

import (
	"context"
	"strings"
	"testing"

	"github.com/lockbox-dev/lockbox/internal/store"
	"github.com/lockbox-dev/lockbox/internal/store/storetest"
)

// On PostgreSQL the claim of due leases reads their ids from a partial
// index and updates them by primary key, whatever the number of revoked
// leases kept beside them (until their dynamic secret is deleted), its own
// dynamic secret's and another's: with its
// ids in an IN subquery, PostgreSQL joined them to a sequential scan of the
// whole table for a claim of 1,000 (a burst), so every such claim cost more
// as leases accumulated.
func TestPGLeaseClaimReadsNoRevokedLease(t *testing.T) {
	db := storetest.Open(t, store.Postgres)
	for _, limit := range []int{200, 1000} {
		plan, err := db.PGLeaseClaimPlan(context.Background(), 50000, limit)
		if err != nil {
			t.Fatal(err)
		}
		joined := strings.Join(plan, "; ")
		if strings.Contains(joined, "Seq Scan") || !strings.Contains(joined, "dynamic_leases_pkey") {
			t.Fatalf("a claim of %d scans the leases table: %s", limit, joined)
		}
		// The due ids come from a partial index, which holds no revoked lease.
		if strings.Contains(joined, "using dynamic_leases_secret on") ||
			!strings.Contains(joined, "using dynamic_leases_secret_due on") && !strings.Contains(joined, "using dynamic_leases_due on") {
			t.Fatalf("a claim of %d reads the due ids from an index that holds revoked leases: %s", limit, joined)
		}
	}
}
