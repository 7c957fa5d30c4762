package store_test

import (
	"context"
	"strings"
	"testing"

	"github.com/lockbox-dev/lockbox/internal/store"
	"github.com/lockbox-dev/lockbox/internal/store/storetest"
)

// Every statement of the read path must find its rows through an index: a
// full scan makes each read cost grow with the rows of every project (seen
// as falling throughput under the mixed load before migration 00006). And
// its rows must come out of the index in the order it returns rather than
// be sorted on each read (migration 00011): sorting was 23% of a cache
// miss's CPU on SQLite.
func TestHotReadsUseAnIndex(t *testing.T) {
	storetest.ForEachEngine(t, func(t *testing.T, db *store.DB) {
		for _, q := range db.HotReads() {
			args := make([]any, strings.Count(q, "?"))
			for i := range args {
				args[i] = `["x"]` // a text value, and a JSON array where one is expected
			}
			plan, err := db.Explain(context.Background(), q, args...)
			if err != nil {
				t.Fatal(err)
			}
			joined := strings.Join(plan, "; ")
			name := strings.Join(strings.Fields(q), " ")
			switch db.Dialect() {
			case store.SQLite:
				for _, line := range plan {
					if strings.HasPrefix(line, "SCAN ") && line != "SCAN CONSTANT ROW" && !strings.HasPrefix(line, "SCAN json_each") {
						t.Errorf("%.80s… scans a table: %s", name, joined)
					}
				}
				if !strings.Contains(joined, "INDEX") {
					t.Errorf("%.80s… uses no index: %s", name, joined)
				}
				if strings.Contains(joined, "TEMP B-TREE") {
					t.Errorf("%.80s… sorts its rows on each read: %s", name, joined)
				}
			case store.Postgres:
				if !strings.Contains(joined, "Index") || strings.Contains(joined, "Seq Scan") {
					t.Errorf("%.80s… reads no index: %s", name, joined)
				}
				if strings.Contains(joined, "Sort") {
					t.Errorf("%.80s… sorts its rows on each read: %s", name, joined)
				}
			}
		}
	})
}

// TestLeaseCountReadsOnlyUnrevokedLeases: the active-lease gauge, read by
// every scrape of /metrics, counts through the partial index of unrevoked
// leases, not a scan of every lease ever made (revoked ones stay until their
// dynamic secret is deleted: a million of them cost 225 ms a scrape).
func TestLeaseCountReadsOnlyUnrevokedLeases(t *testing.T) {
	db := storetest.Open(t, store.SQLite)
	plan, err := db.Explain(context.Background(), store.QCountLeases, "active")
	if err != nil {
		t.Fatal(err)
	}
	joined := strings.Join(plan, "; ")
	if !strings.Contains(joined, "dynamic_leases_due") {
		t.Fatalf("the lease count does not use the unrevoked leases' index: %s", joined)
	}
}
