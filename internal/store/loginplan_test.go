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
		plan, err := db.Explain(context.Background(), q, "a", "b", "c", "d", "e", "f")
		if err != nil {
			t.Fatal(err)
		}
		if joined := strings.Join(plan, "; "); strings.Contains(joined, "SCAN ") {
			t.Errorf("a login statement scans a table: %s\n%.80s", joined, q)
		}
	}
}
