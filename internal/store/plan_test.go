package store_test

import (
	"context"
	"strings"
	"testing"

	"github.com/lockbox-dev/lockbox/internal/store"
	"github.com/lockbox-dev/lockbox/internal/store/storetest"
)

// The hot secret reads must use an index: a full scan makes every list cost
// grow with the secrets of every project (seen as falling throughput under
// the mixed load before migration 00006). The folder's list must also come
// out of the index in the order it returns, not be sorted on each read
// (migration 00011): sorting was 23% of a cache miss's CPU on SQLite.
func TestHotSecretQueriesUseAnIndex(t *testing.T) {
	storetest.ForEachEngine(t, func(t *testing.T, db *store.DB) {
		for _, q := range []struct {
			name string
			sql  string
			args []any
		}{
			{"FolderSecrets", store.QFolderSecrets, []any{"f", "u"}},
			{"SecretByKey", store.QSecretByKey, []any{"f", "k", "shared"}},
		} {
			plan, err := db.Explain(context.Background(), q.sql, q.args...)
			if err != nil {
				t.Fatal(err)
			}
			joined := strings.Join(plan, "; ")
			switch db.Dialect() {
			case store.SQLite:
				if strings.Contains(joined, "SCAN secrets") || !strings.Contains(joined, "INDEX") {
					t.Errorf("%s scans the secrets table: %s", q.name, joined)
				}
				if strings.Contains(joined, "TEMP B-TREE") {
					t.Errorf("%s sorts its rows on each read: %s", q.name, joined)
				}
			case store.Postgres:
				if !strings.Contains(joined, "Index Scan") || strings.Contains(joined, "Seq Scan") {
					t.Errorf("%s reads no index of secrets: %s", q.name, joined)
				}
				if strings.Contains(joined, "Sort") {
					t.Errorf("%s sorts its rows on each read: %s", q.name, joined)
				}
			}
		}
	})
}
