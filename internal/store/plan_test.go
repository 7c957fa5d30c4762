package store

import (
	"context"
	"strings"
	"testing"
)

// The hot secret reads must use an index: a full scan makes every list cost
// grow with the secrets of every project (seen as falling throughput under
// the mixed load before migration 00006).
func TestHotSecretQueriesUseAnIndex(t *testing.T) {
	db, err := Open(context.Background(), Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for name, q := range map[string]struct {
		sql  string
		args []any
	}{
		"FolderSecrets": {qFolderSecrets, []any{"f", "u"}},
		"SecretByKey":   {qSecretByKey, []any{"f", "k", "shared"}},
	} {
		rows, err := db.read.QueryContext(context.Background(), "EXPLAIN QUERY PLAN "+q.sql, q.args...)
		if err != nil {
			t.Fatal(err)
		}
		var plan []string
		for rows.Next() {
			var id, parent, notused int
			var detail string
			if err := rows.Scan(&id, &parent, &notused, &detail); err != nil {
				t.Fatal(err)
			}
			plan = append(plan, detail)
		}
		rows.Close()
		joined := strings.Join(plan, "; ")
		if strings.Contains(joined, "SCAN secrets") || !strings.Contains(joined, "INDEX") {
			t.Errorf("%s scans the secrets table: %s", name, joined)
		}
	}
}
