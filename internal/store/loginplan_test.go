package store

import (
	"context"
	"strings"
	"testing"
)

// A login's read and writes find their rows through indexes on SQLite,
// whatever the number of identities, secrets and memberships.
func TestLoginQueriesUseIndexes(t *testing.T) {
	db, err := Open(context.Background(), Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, q := range []string{uaLoginQuery, sqliteConsumeUse, sqliteClearLockout, sqliteNoteLogin} {
		rows, err := db.read.QueryContext(context.Background(), "EXPLAIN QUERY PLAN "+q, "a", "b", "c", "d", "e", "f")
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
		if joined := strings.Join(plan, "; "); strings.Contains(joined, "SCAN ") {
			t.Errorf("a login statement scans a table: %s\n%.80s", joined, q)
		}
	}
}
