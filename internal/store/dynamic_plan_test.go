package store

import (
	"context"
	"strings"
	"testing"
)

// A claim of one dynamic secret's due leases must not visit the secret's
// revoked leases, which accumulate: without ANALYZE statistics SQLite chose
// dynamic_leases_secret, read every lease the secret ever had and sorted them.
func TestLeaseClaimUsesItsIndex(t *testing.T) {
	db, err := Open(context.Background(), Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	plan, err := db.Explain(context.Background(), qDueLeases, "s", 1, 200)
	if err != nil {
		t.Fatal(err)
	}
	joined := strings.Join(plan, "; ")
	if !strings.Contains(joined, "dynamic_leases_secret_due") || strings.Contains(joined, "TEMP B-TREE") {
		t.Fatalf("the claim does not read dynamic_leases_secret_due in order: %s", joined)
	}
	// The claim's UPDATE looks each id up (PostgreSQL's: the pgplan test).
	plan, err = db.Explain(context.Background(), db.claimLeasesSQL(), 2, 1, "s", 1, 200)
	if err != nil {
		t.Fatal(err)
	}
	joined = strings.Join(plan, "; ")
	if strings.Contains(joined, "SCAN dynamic_leases") || !strings.Contains(joined, "INDEX sqlite_autoindex_dynamic_leases_1 (id=?)") {
		t.Fatalf("the claim's UPDATE does not look the ids up: %s", joined)
	}
}
